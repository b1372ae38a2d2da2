"""Fuzzy pickers for attributes, event types, event fields and segments.

Typing filters with rapidfuzz; exact and prefix matches of a name or label
come first, so "age" finds Age before Page view. Each row shows the label,
the name rules use, its type and its group; the highlighted row's
description is shown below. Up/down move, enter picks, escape backs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rapidfuzz import fuzz, utils
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from store.schema.catalog import Catalog
from store.segments.describe import field_label, humanize, inline
from store.segments.model import PROFILE_PREFIX, comparable_types
from tui.widgets.dialog import Dialog
from tui.widgets.format import tone

ANY_EVENT = "*"
NO_FIELD = ""


@dataclass(frozen=True)
class PickItem:
    """One choice: ``value`` is what the rule stores, the rest is for people."""

    value: str
    label: str
    kind: str = ""
    group: str = ""
    description: str = ""

    @property
    def haystack(self) -> str:
        return f"{self.label} {self.value} {self.group}"


def words(text: str) -> list[str]:
    """Lowercase words of a label or a name (``email_marketing_consent`` has three)."""
    return utils.default_process(text).split()


def score(query: str, item: PickItem) -> float:
    """How well ``query`` matches ``item``, in tiers so that more of what was typed wins:

    - 300: the name or label exactly;
    - 200+: the name or label starts with the query, or one of its words does;
    - 150+: every typed word starts a word of the label, name or group
      ("email cons" finds *Email marketing consent*);
    - 120+: every typed word is somewhere in them;
    - otherwise rapidfuzz's WRatio (typos), plus 5 per typed word found, below 120:
      a candidate with every typed word always ranks above one with fewer.

    Within a tier the shorter label (the closer fit) comes first.
    """
    wanted = utils.default_process(query)
    if not wanted:
        return 0.0
    names = [utils.default_process(item.value), utils.default_process(item.label)]
    if wanted in names:
        return 300.0
    for name in names:
        if name.startswith(wanted) or any(word.startswith(wanted) for word in name.split()):
            return 200.0 + 50.0 * len(wanted) / max(len(name), 1)
    typed = wanted.split()
    own = words(f"{item.label} {item.value} {item.group}")
    fit = 30.0 * len(wanted) / max(len(names[1]), len(wanted), 1)
    if all(any(word.startswith(part) for word in own) for part in typed):
        return 150.0 + fit
    haystack = " ".join(own)
    found = sum(part in haystack for part in typed)
    if found == len(typed):
        return 120.0 + fit
    return min(119.0, float(fuzz.WRatio(wanted, utils.default_process(item.haystack)))
               + 5.0 * found)


def rank(query: str, items: Sequence[PickItem], cutoff: float = 60.0) -> list[PickItem]:
    """The items matching ``query``, best first (ties keep the original order)."""
    if not query.strip():
        return list(items)
    scored = [(score(query, item), index, item) for index, item in enumerate(items)]
    return [item for value, _, item in sorted(scored, key=lambda s: (-s[0], s[1]))
            if value >= cutoff]


class FuzzyPicker(Dialog[str | None]):
    """Pick one item by typing part of its name or label; returns its value."""

    AUTO_FOCUS = "#picker-query"
    DEFAULT_CSS = """
    FuzzyPicker .dialog { width: 96; height: 32; }
    FuzzyPicker OptionList { height: 1fr; border: none; padding: 0; }
    FuzzyPicker #picker-detail { height: 3; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="fuzzy_picker.cancel"),
        Binding("down", "move(1)", "Next", id="fuzzy_picker.next", show=False),
        Binding("up", "move(-1)", "Previous", id="fuzzy_picker.previous", show=False),
        Binding("pagedown", "move(10)", "Page down", id="fuzzy_picker.page_down", show=False),
        Binding("pageup", "move(-10)", "Page up", id="fuzzy_picker.page_up", show=False),
    ]

    def __init__(self, title: str, items: Iterable[PickItem], *, query: str = "",
                 empty_text: str = "Nothing matches.") -> None:
        super().__init__()
        self.title_text = title
        self.items = list(items)
        self.initial_query = query
        self.empty_text = empty_text
        self.shown: list[PickItem] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Input(self.initial_query, placeholder="Type to search…", id="picker-query")
            yield OptionList(id="picker-options")
            yield Static("", id="picker-detail", markup=False)
            yield Static("type to filter · up/down: move · enter: pick · escape: cancel",
                         classes="hint")

    def on_mount(self) -> None:
        self.refilter(self.initial_query)

    @on(Input.Changed, "#picker-query")
    def query_changed(self, event: Input.Changed) -> None:
        self.refilter(event.value)

    def refilter(self, query: str) -> None:
        self.shown = rank(query, self.items)
        options = self.query_one(OptionList)
        options.clear_options()
        width = max((len(item.label) for item in self.shown[:200]), default=10)
        width = min(max(width, 12), 34)
        options.add_options(Option(self.prompt(item, width), id=f"pick-{i}")
                            for i, item in enumerate(self.shown))
        if self.shown:
            options.highlighted = 0
        self.show_detail()

    def prompt(self, item: PickItem, width: int) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(item.label.ljust(width)[:width], style="bold")
        text.append("  ")
        if item.value != item.label:
            text.append(item.value.ljust(26)[:26], style="dim")
        else:
            text.append(" " * 26)
        text.append(f"  {item.kind:<9}", style=tone(self.app, "accent"))
        text.append(f" {item.group}", style="italic dim")
        return text

    def highlighted_item(self) -> PickItem | None:
        index = self.query_one(OptionList).highlighted
        return self.shown[index] if index is not None and 0 <= index < len(self.shown) else None

    @on(OptionList.OptionHighlighted)
    def show_detail(self) -> None:
        item = self.highlighted_item()
        detail = self.query_one("#picker-detail", Static)
        if item is None:
            detail.update(self.empty_text)
        else:
            detail.update(item.description or f"{item.label} ({item.value})")

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if not self.shown:
            return
        current = options.highlighted or 0
        options.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    @on(Input.Submitted, "#picker-query")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.pick()

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick()

    def pick(self) -> None:
        item = self.highlighted_item()
        if item is None:
            self.app.bell()
            return
        self.dismiss(item.value)



# ------------------------------------------------------------- items from the catalog


def attribute_items(catalog: Catalog) -> list[PickItem]:
    """Profile attributes, grouped as the catalog groups them."""
    items = [PickItem(a.name, a.display_label, a.type, a.group or "Other", a.description)
             for a in catalog.attributes.values()]
    groups = list(dict.fromkeys(item.group for item in items))
    return sorted(items, key=lambda item: groups.index(item.group))


def event_type_items(catalog: Catalog, *, allow_any: bool = True) -> list[PickItem]:
    items = [PickItem(t.name, t.label or humanize(t.name), "event", "Events", t.description)
             for t in catalog.event_types.values()]
    if allow_any:
        items.append(PickItem(ANY_EVENT, "Any event", "event", "Events",
                              "Events of every type count."))
    return items


def event_field_items(catalog: Catalog, types: tuple[str, ...] | None = None,
                      *, numeric_only: bool = False) -> list[PickItem]:
    """Fields of the given event types (all when None), then ``entity.field`` of linked entities."""
    allowed: set[str] | None = None
    if types is not None:
        allowed = {f for name in types if name in catalog.event_types
                   for f in catalog.event_types[name].fields}
    items = []
    for field in catalog.event_fields.values():
        if allowed is not None and field.name not in allowed:
            continue
        items.append(PickItem(field.name, field.label or humanize(field.name), field.type,
                              "Event fields", field.description))
    for entity in catalog.entities.values():
        if allowed is not None and entity.link_field not in allowed:
            continue
        for entity_field in entity.fields.values():
            name = f"{entity.name}.{entity_field.name}"
            items.append(PickItem(name, field_label(name, catalog), entity_field.type,
                                  entity.label or humanize(entity.name), entity_field.description))
    if numeric_only:
        items = [item for item in items if item.kind in ("integer", "number")]
    return items


def segment_items(segments: Iterable[tuple[str, str, str]]) -> list[PickItem]:
    """Saved segments as (id, name, description)."""
    return [PickItem(seg_id, name, "segment", "Saved segments", description)
            for seg_id, name, description in segments]


def comparable_items(catalog: Catalog, left: str, left_type: str, *,
                     event_types: tuple[str, ...] | None = None,
                     in_event: bool = False) -> list[PickItem]:
    """The fields a condition on ``left`` may compare with (spec: Field comparisons): other
    profile attributes of a compatible type; in an event's ``where``, the event's fields and
    linked entities' fields, then the profile's attributes as ``profile.NAME``."""
    items: list[PickItem] = []
    if in_event:
        items.extend(event_field_items(catalog, event_types))
    for item in attribute_items(catalog):
        if in_event:
            items.append(PickItem(PROFILE_PREFIX + item.value, "Profile " + inline(item.label),
                                  item.kind, "Profile", item.description))
        else:
            items.append(item)
    return [item for item in items
            if item.value != left and comparable_types(left_type, item.kind)]
