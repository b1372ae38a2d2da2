"""Small modal pickers: which columns to show, how to sort, which saved segment to filter by.

Each returns its choice through ``dismiss`` (None when cancelled with escape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.strip import Strip
from textual.widgets import Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist
from textual.widgets.selection_list import Selection

from store.schema.catalog import Catalog
from tui.widgets.dialog import Dialog


class PickerScreen(Dialog[object]):
    """Common frame of the pickers: a titled box, a hint line, escape to cancel."""

    DEFAULT_CSS = """
    PickerScreen .picker { width: 70; max-height: 85%; }
    PickerScreen .picker OptionList, PickerScreen .picker SelectionList {
        height: auto; max-height: 26; border: none; background: $surface; padding: 0;
    }
    PickerScreen .picker Input { border: round $border; background: $surface; margin: 0 0 1 0; }
    PickerScreen .picker Input:focus { border: round $primary; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel", tooltip="Close without changing anything"),
    ]
    TITLE_TEXT = ""
    HINT = ""

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(self.TITLE_TEXT, classes="title")
            yield from self.compose_body()
            yield Static(self.HINT, classes="hint")



class CheckList(SelectionList[str]):
    """A ``SelectionList`` whose boxes read ``[x]`` / ``[ ]``: ticked or not shows without colour."""

    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        segments = list(line)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return line
        if len(segments) < 4:
            return line
        ticked = selection.value in self._selected
        underlying = segments[3].style or Style()
        button = segments[1].style or Style()
        mark = Style(bold=True, color=button.bgcolor if ticked else None)
        meta = Style(meta=button.meta) if button.meta else Style()
        box = [Segment("[", underlying + meta), Segment("x" if ticked else " ", underlying + mark + meta),
               Segment("]", underlying + meta)]
        return Strip([*box, *segments[3:]], line.cell_length)


class ColumnPicker(PickerScreen):
    """Check the attributes to show as columns (space toggles, enter applies)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "apply", "Apply", id="columns.apply", priority=True,
                tooltip="Show the checked columns"),
        Binding("escape", "cancel", "Cancel", id="picker.cancel",
                tooltip="Close without changing the columns"),
    ]
    TITLE_TEXT = "Columns"
    HINT = "space toggle · enter apply · esc cancel"

    def __init__(self, catalog: Catalog, chosen: Sequence[str]) -> None:
        super().__init__()
        self.catalog = catalog
        self.chosen = list(chosen)

    def compose_body(self) -> ComposeResult:
        selections = []
        order = self.chosen + [n for n in self.catalog.attributes if n not in self.chosen]
        for name in order:
            attribute = self.catalog.attributes[name]
            prompt = Text(attribute.display_label)
            if attribute.group:
                prompt.append(f"  {attribute.group}", style="dim")
            selections.append(Selection(prompt, name, name in self.chosen))
        yield CheckList(*selections, id="column-list")

    def action_apply(self) -> None:
        selected = set(self.query_one(SelectionList).selected)
        if not selected:
            self.notify("Choose at least one column.", severity="warning")
            return
        order = self.chosen + [n for n in self.catalog.attributes if n not in self.chosen]
        self.dismiss([name for name in order if name in selected])


@dataclass(frozen=True)
class SortChoice:
    """A sort order: by ``column`` (None: the store's order) ascending or descending."""

    column: str | None
    descending: bool


_DIRECTION_WORDS = {
    "string": ("A → Z", "Z → A"),
    "integer": ("lowest first", "highest first"),
    "number": ("lowest first", "highest first"),
    "date": ("oldest first", "newest first"),
    "datetime": ("oldest first", "newest first"),
    "boolean": ("No first", "Yes first"),
}


def describe_sort(catalog: Catalog, choice: SortChoice) -> str:
    """``Last name, A → Z`` / ``store order`` for the status line and the picker."""
    if choice.column is None:
        return "Store order" if not choice.descending else "Store order, newest first"
    attribute = catalog.attributes[choice.column]
    words = _DIRECTION_WORDS.get(attribute.type, ("ascending", "descending"))
    return f"{attribute.display_label}, {words[1] if choice.descending else words[0]}"


class SortPicker(PickerScreen):
    """Pick a column and a direction to sort the profiles by."""

    TITLE_TEXT = "Sort profiles by"
    HINT = "enter choose · esc cancel · missing values always come last"

    def __init__(self, catalog: Catalog, columns: Sequence[str], current: SortChoice) -> None:
        super().__init__()
        self.catalog = catalog
        self.columns = list(columns)
        self.current = current
        self.choices: list[SortChoice] = [SortChoice(None, False), SortChoice(None, True)]
        for name in self.columns:
            self.choices += [SortChoice(name, False), SortChoice(name, True)]

    def compose_body(self) -> ComposeResult:
        options = []
        for index, choice in enumerate(self.choices):
            label = Text(describe_sort(self.catalog, choice))
            if choice == self.current:
                label.append("  (current)", style="dim")
            options.append(Option(label, id=str(index)))
        yield OptionList(*options, id="sort-list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[int(event.option.id or 0)])


@dataclass(frozen=True)
class SegmentOption:
    """A saved segment as a picker shows it."""

    id: str
    name: str
    description: str = ""


ALL_PROFILES = ""


class SegmentPicker(PickerScreen):
    """Pick a saved segment (or all profiles); type to narrow the list."""

    TITLE_TEXT = "Show the members of"
    HINT = "type to filter · ↑↓ move · enter choose · esc cancel"

    def __init__(self, segments: Sequence[SegmentOption], current: str | None,
                 allow_all: bool = True, title: str | None = None) -> None:
        super().__init__()
        self.segments = sorted(segments, key=lambda s: (s.name.casefold(), s.id))
        self.current = current
        self.allow_all = allow_all
        if title:
            self.TITLE_TEXT = title

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="Filter segments…", id="segment-filter")
        yield OptionList(id="segment-list")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, text: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        needle = text.lower().strip()
        if self.allow_all and not needle:
            options.add_option(Option(Text("All profiles", style="bold"), id=ALL_PROFILES or "*"))
        highlight = None
        for segment in self.segments:
            haystack = f"{segment.name} {segment.id} {segment.description}".lower()
            if needle and needle not in haystack:
                continue
            prompt = Text.assemble((segment.name, "bold"), (f"  {segment.id}", "dim"))
            if segment.description:
                prompt.append("\n" + segment.description, style="dim italic")
            if segment.id == self.current:
                highlight = options.option_count
            options.add_option(Option(prompt, id=segment.id))
        if options.option_count:
            options.highlighted = highlight if highlight is not None else 0
        if not options.option_count:
            options.add_option(Option(Text("No saved segment matches.", style="dim"), disabled=True))

    @on(Input.Changed)
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        self._fill(event.value)

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            option = options.get_option_at_index(options.highlighted)
            if not option.disabled:
                self._choose(option.id)

    def on_key(self, event: events.Key) -> None:
        """Arrow keys in the filter box move through the list."""
        if event.key in ("down", "up") and self.query_one(Input).has_focus:
            options = self.query_one(OptionList)
            if event.key == "down":
                options.action_cursor_down()
            else:
                options.action_cursor_up()
            event.stop()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def _choose(self, option_id: str | None) -> None:
        if option_id is None:
            return
        self.dismiss(ALL_PROFILES if option_id == "*" else option_id)
