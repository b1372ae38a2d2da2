"""The 360° view of one profile: attributes, activity summary, timeline, segments and "why".

Everything is read in thread workers: the attributes and summary, the
timeline (keyset pages, newest first), and which saved segments the profile
belongs to (the plain-Python evaluator on the profile's own data). Picking a
segment in the list explains it: each condition matched (✓) or not (✗), with
the values the evaluator looked at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.widgets.tree import TreeNode

from store.engines.cancel import Cancel
from store.query.profiles import (
    AttributeValue,
    ProfileSummary,
    TimelineEvent,
    TimelineSource,
    load_attributes,
    profile_summary,
)
from store.schema.catalog import Catalog
from store.segments.model import Segment
from tui.host import AppHost, host
from tui.messages import Explained, MembershipLoaded, ProfileLoaded, QueryFailed
from tui.widgets.footer import AppFooter
from tui.widgets.format import MISSING, format_money, format_ts, plain_value, relative_day, tone
from tui.widgets.keyset_table import GROW_ALL, ColumnSpec, KeysetTable, describe_error
from tui.widgets.queries import is_interrupt

DRAFT_ID = "\0draft"  # the option id of an unsaved segment handed over by the builder
_NAME_PARTS = (("first_name", "last_name"), ("given_name", "family_name"), ("full_name",), ("name",))
_PLACE_PARTS = ("city", "country")


def display_name(attributes: Sequence[AttributeValue]) -> str:
    """The profile's name from its name attributes, else its id."""
    values = {a.name: a.value for a in attributes}
    for parts in _NAME_PARTS:
        found = [str(values[p]) for p in parts if values.get(p)]
        if found:
            return " ".join(found)
    return str(values.get("id") or "Profile")


class AttributeTable:
    """Attributes grouped as the catalog says, label and value side by side.

    Drawn for the width it gets: labels take up to 24 columns but never more than
    half a narrow panel (a cut label ends in "…"), so every value stays readable.
    """

    def __init__(self, attributes: Sequence[AttributeValue]) -> None:
        self.attributes = attributes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        groups: dict[str, list[AttributeValue]] = {}
        longest = min(max((len(a.label) for a in self.attributes), default=8), 24)
        label_width = max(6, min(longest, (options.max_width - 2) // 2))
        for attribute in self.attributes:
            groups.setdefault(attribute.group or "Other", []).append(attribute)
        first = True
        for group, members in groups.items():
            table = Table.grid(padding=(0, 2), expand=True)
            table.add_column(style="dim", no_wrap=True, width=label_width, overflow="ellipsis")
            table.add_column(ratio=1, overflow="fold")
            for attribute in members:
                shown = plain_value(attribute.value, attribute.type)
                value = Text(shown, style="dim" if shown == MISSING else "")
                if attribute.derived and attribute.value is not None:
                    value.append("  derived", style="dim italic")
                table.add_row(attribute.label, value)
            if not first:
                yield Text("")
            first = False
            yield Text(group.upper(), style="bold")
            yield table


class WhyTree(Tree[Any]):
    """The explanation of one segment: each condition ✓/✗ with the values seen; a condition
    too long for the panel ends in "…" instead of being cut mid-word."""

    def render_label(self, node: TreeNode[Any], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        depth, parent = 0, node.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        room = self.scrollable_content_region.width - depth * self.guide_depth - 1
        if room > 4 and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        return text


def attribute_table(attributes: Sequence[AttributeValue]) -> RenderableType:
    """Attributes grouped as the catalog says (see ``AttributeTable``)."""
    return AttributeTable(attributes)


def summary_table(summary: ProfileSummary, today: dt.date) -> RenderableType:
    """Orders, spend, first and last activity, and the channels seen, one line each."""

    def facts(*items: tuple[str, str, str]) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for index, (label, value, note) in enumerate(items):
            if index:
                line.append("     ")
            line.append(f"{label}  ", style="dim")
            line.append(value, style="bold")
            if note:
                line.append(f" ({note})", style="dim")
        return line

    if summary.orders is None and summary.spend is None:  # a store without purchases
        totals = facts(("Events", f"{summary.events:,}", ""))
    else:
        orders = MISSING if summary.orders is None else f"{summary.orders:,}"
        totals = facts(("Orders", orders, ""), ("Total spend", format_money(summary.spend), ""),
                       ("Events", f"{summary.events:,}", ""))
    when = facts(("First activity", format_ts(summary.first_ts, with_time=False),
                  relative_day(summary.first_ts, today)),
                 ("Last activity", format_ts(summary.last_ts, with_time=False),
                  relative_day(summary.last_ts, today)))
    channels = Text.assemble(("Channels  ", "dim"))
    if summary.activity:
        for index, activity in enumerate(summary.activity):
            if index:
                channels.append(" · ", style="dim")
            channels.append(activity.label)
            channels.append(f" {activity.count:,}", style="bold")
    else:
        channels.append("no events yet", style="dim italic")
    return Group(totals, when, channels)


def event_details(event: TimelineEvent) -> Text:
    """``Product Trail runner · Category Shoes · Amount 89.00`` for one timeline line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, detail in enumerate(event.details):
        if index:
            text.append("  ·  ", style="dim")
        text.append(f"{detail.label} ", style="dim")
        text.append(plain_value(detail.value, detail.type))
    return text


def describe_seen(value: Any, today: dt.date) -> str:
    """A value the evaluator looked at, in plain words."""
    from store.segments.describe import format_value

    if value is None:
        return "missing"
    if isinstance(value, list | set | frozenset):
        items = sorted(value, key=str)
        shown = ", ".join(format_value(v) for v in items[:5])
        return shown + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
    return format_value(value)


def explanation_label(explanation: Any, today: dt.date, yes: str = "green",
                      no: str = "red") -> Text:
    """``✓ Age is greater than 50   age: 62`` for one node of the why tree (``yes``/``no``: colours)."""
    mark, style = ("✓", yes) if explanation.matched else ("✗", no)
    text = Text.assemble((f"{mark} ", f"bold {style}"), str(explanation.label))
    seen = dict(explanation.seen)
    if "matched" in seen and "of" in seen:
        text.append(f"   {seen.pop('matched')} of {seen.pop('of')} matched", style="dim")
    if seen:
        shown = " · ".join(f"{key} {describe_seen(value, today)}" for key, value in seen.items())
        text.append(f"   {shown}", style="dim")
    return text


class TimelineTable(KeysetTable):
    """A profile's events, newest first, paged as the cursor moves."""

    HELP_TITLE = "Timeline"
    PAGE_SIZE = 100
    MAX_ROWS = 500
    KEEP_ROWS = 300
    EDGE = 20


class ProfileViewScreen(Screen[None]):
    """One profile, all of it; escape goes back."""

    TITLE = "Profile"
    HELP_TITLE = "Profile"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="profile_view.back", tooltip="Back to where you came from"),
        Binding("t", "focus_panel('pv-timeline')", "Timeline", id="profile_view.timeline",
                tooltip="Move to the event timeline"),
        Binding("w", "focus_panel('pv-segments')", "Why", id="profile_view.why",
                tooltip="Pick a saved segment to see why the profile is in it or not"),
        Binding("a", "focus_panel('pv-attributes')", "Attributes", id="profile_view.attributes", show=False,
                tooltip="Move to the attributes"),
        Binding("ctrl+r", "reload", "Reload", id="profile_view.reload", show=False,
                tooltip="Read the profile again"),
    ]

    def __init__(self, pk: int, segment: str | Segment | None = None) -> None:
        super().__init__()
        self.pk = pk
        self.draft = segment if isinstance(segment, Segment) else None
        self.segment_id = DRAFT_ID if self.draft is not None else segment
        self.attributes: list[AttributeValue] | None = None
        self.summary: ProfileSummary | None = None
        self.member_of: list[tuple[str, str]] = []
        self.segments: list[tuple[str, str]] = []
        self.explanation: Any = None
        self._profile_data: Any = None
        self._resolved: dict[str, Any] = {}
        self._failed_segments: list[tuple[str, str]] = []
        self._explained_name = ""
        self._generations = {"profile": 0, "membership": 0, "explain": 0}

    @property
    def audiences(self) -> AppHost:
        """The app's services (tui/host.py)."""
        return host(self)

    @property
    def catalog(self) -> Catalog:
        return self.audiences.catalog

    def _next(self, what: str) -> int:
        self._generations[what] += 1
        return self._generations[what]

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pv-heading", classes="toolbar"):
            yield Static("Profile", id="pv-name", classes="area-title")
            yield Static("", id="pv-meta", classes="chip muted")
        with Horizontal(id="pv-body"):
            with VerticalScroll(id="pv-attributes", classes="panel") as attributes:
                attributes.border_title = "Attributes"
                attributes.can_focus = True
                yield Static(Text("loading…", style="dim italic"), id="pv-attribute-list")
            with Vertical(id="pv-main"):
                summary = Static(Text("loading…", style="dim italic"), id="pv-summary",
                                 classes="panel")
                summary.border_title = "Activity"
                yield summary
                timeline = TimelineTable(id="pv-timeline", classes="panel")
                timeline.border_title = "Timeline · newest first"
                yield timeline
                with Horizontal(id="pv-explain"):
                    segments = OptionList(id="pv-segments", classes="panel")
                    segments.border_title = "Saved segments"
                    yield segments
                    why = WhyTree("Why", id="pv-why", classes="panel")
                    why.border_title = "Why"
                    why.show_root = True
                    yield why
                    hint = Static(Text("Pick a segment to see why", style="dim italic"),
                                  id="pv-why-hint", classes="panel")
                    hint.border_title = "Why"
                    yield hint
        yield AppFooter()

    def on_mount(self) -> None:
        timeline = self.query_one(TimelineTable)
        timeline.runner = self.audiences.queries
        timeline.set_columns([ColumnSpec("when", "When (UTC)", 16), ColumnSpec("type", "Event", 14),
                              ColumnSpec("details", "Details", 30, grow=GROW_ALL)])
        timeline.show(TimelineSource(self.catalog, self.pk), self._render_event)
        self.query_one("#pv-segments", OptionList).add_option(
            Option(Text("checking…", style="dim italic"), disabled=True))
        self._show_hint("Pick a segment to see why")
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._start_loading()
        timeline.focus()

    def _start_loading(self) -> None:
        queries = self.audiences.queries
        self._load_profile(self._next("profile"), queries.start(f"profile-{id(self)}:profile"))
        self._load_membership(self._next("membership"),
                              queries.start(f"profile-{id(self)}:membership"))

    def on_unmount(self) -> None:
        self.audiences.queries.interrupt_prefix(f"profile-{id(self)}:")

    def _render_event(self, event: TimelineEvent) -> list[Text]:
        return [Text(format_ts(event.ts)), Text(event.label, style="bold"), event_details(event)]

    # ------------------------------------------------------------ actions
    def action_back(self) -> None:
        self.dismiss(None)

    def action_focus_panel(self, panel_id: str) -> None:
        self.query_one(f"#{panel_id}").focus()

    def action_reload(self) -> None:
        self.query_one(TimelineTable).reload()
        self._start_loading()

    # ------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="profile", exit_on_error=False)
    def _load_profile(self, generation: int, token: Cancel) -> None:
        try:
            with self.audiences.queries.connection(token) as conn:
                attributes = load_attributes(conn, self.catalog, self.pk, self.audiences.today())
                summary = profile_summary(conn, self.catalog, self.pk) if attributes else None
        except Exception as exc:
            if not is_interrupt(exc):
                message = describe_error(exc, self.audiences.engine)
                self.post_message(QueryFailed(generation, "profile", message))
            return
        self.post_message(ProfileLoaded(generation, attributes, summary))

    @work(thread=True, exclusive=True, group="membership", exit_on_error=False)
    def _load_membership(self, generation: int, token: Cancel) -> None:
        from store.query.evaluator import load_profile, matches
        from store.segments.library import list_segments, resolve_saved, resolve_segment

        as_of = self.audiences.as_of_instant()
        member_of: list[tuple[str, str]] = []
        segments: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        resolved_by_id: dict[str, Any] = {}
        try:
            with self.audiences.queries.connection(token) as conn:
                candidates: list[tuple[str, str, Any]] = []
                if self.draft is not None:
                    candidates.append((DRAFT_ID, f"{self.draft.name} (unsaved)",
                                       lambda: resolve_segment(conn, self.draft, None, self.catalog)))
                for saved in sorted(list_segments(conn), key=lambda s: (s.name.casefold(), s.id)):
                    candidates.append((saved.id, saved.name,
                                       lambda sid=saved.id: resolve_saved(conn, sid)))
                if not candidates:
                    self.post_message(MembershipLoaded(generation, [], [], []))
                    return
                profile = load_profile(conn, self.catalog, self.pk)
                for segment_id, name, resolve in candidates:
                    token.check()
                    segments.append((segment_id, name))
                    try:
                        resolved = resolve()
                    except Exception as exc:  # one broken segment must not hide the others
                        if is_interrupt(exc):
                            raise
                        failed.append((segment_id, str(exc)))
                        continue
                    resolved_by_id[segment_id] = resolved
                    if matches(profile, resolved, as_of):
                        member_of.append((segment_id, name))
        except Exception as exc:
            if not is_interrupt(exc):
                message = describe_error(exc, self.audiences.engine)
                self.post_message(QueryFailed(generation, "membership", message))
            return
        self.post_message(MembershipLoaded(generation, member_of, segments, failed, profile,
                                           resolved_by_id))

    @work(thread=True, exclusive=True, group="explain", exit_on_error=False)
    def _explain(self, generation: int, segment_id: str, name: str, profile: Any,
                 resolved: Any) -> None:
        from store.query.evaluator import explain

        try:
            explanation = explain(profile, resolved, self.audiences.as_of_instant(), self.audiences.catalog)
        except Exception as exc:
            message = describe_error(exc, self.audiences.engine)
            self.post_message(QueryFailed(generation, "explain", message))
            return
        self.post_message(Explained(generation, segment_id, name, explanation))

    # ------------------------------------------------------------ results
    @on(ProfileLoaded)
    def _profile_loaded(self, message: ProfileLoaded) -> None:
        if message.generation != self._generations["profile"]:
            return
        if message.attributes is None:
            self.audiences.show_error(f"Profile {self.pk} no longer exists.")
            self.dismiss(None)
            return
        self.attributes = message.attributes
        self.summary = message.summary
        values = {a.name: a for a in message.attributes}
        name = display_name(message.attributes)
        self.title = f"Profile · {name}"
        self.query_one("#pv-name", Static).update(Text(name, style="bold"))
        # the id once: it is the heading already when the profile has no name
        meta = [str(values["id"].value)] if "id" in values and name != str(values["id"].value) \
            else []
        for name in ("email",):
            if name in values and values[name].value:
                meta.append(str(values[name].value))
        place = [str(values[p].value) for p in _PLACE_PARTS if p in values and values[p].value]
        if place:
            meta.append(", ".join(place))
        self.query_one("#pv-meta", Static).update(Text("  ·  ".join(meta)))
        self.query_one("#pv-attribute-list", Static).update(attribute_table(message.attributes))
        if message.summary is not None:
            self.query_one("#pv-summary", Static).update(
                summary_table(message.summary, self.audiences.today()))
        if not self.catalog.event_types:
            # a store of profiles only (an imported table): no activity or timeline to show,
            # the segments and the explanation take the height
            self.query_one("#pv-summary").display = False
            self.query_one(TimelineTable).display = False
            self.query_one("#pv-explain").styles.height = "1fr"

    @on(MembershipLoaded)
    def _membership_loaded(self, message: MembershipLoaded) -> None:
        if message.generation != self._generations["membership"]:
            return
        self.member_of = message.member_of
        self.segments = message.segments
        self._profile_data = message.profile
        self._resolved = message.resolved
        self._failed_segments = list(message.failed)
        options = self.query_one("#pv-segments", OptionList)
        options.clear_options()
        members = {segment_id for segment_id, _ in message.member_of}
        broken = dict(message.failed)
        if not message.segments:
            options.add_option(Option(Text("No saved segments yet", style="dim italic"),
                                      disabled=True))
            self._show_hint("Save a segment (F3, then s in the builder) to see why a profile"
                            " is in it or not.")
            return
        warning, yes, no = (tone(self.app, "warning"), tone(self.app, "success"),
                            tone(self.app, "error"))
        for segment_id, name in message.segments:
            if segment_id in broken:
                prompt = Text.assemble(("! ", f"bold {warning}"), (name, "dim"))
            elif segment_id in members:
                prompt = Text.assemble(("✓ ", f"bold {yes}"), (name, "bold"))
            else:
                prompt = Text.assemble(("✗ ", no), name)
            options.add_option(Option(prompt, id=segment_id))
        count = len(message.member_of)
        options.border_title = f"Saved segments · in {count} of {len(message.segments)}"
        wanted = self.segment_id or (message.member_of[0][0] if message.member_of else None)
        ids = [segment_id for segment_id, _ in message.segments]
        index = ids.index(wanted) if wanted in ids else 0
        options.highlighted = index
        self._show_why(ids[index])

    @on(OptionList.OptionHighlighted, "#pv-segments")
    def _segment_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self._show_why(event.option.id)

    def _show_why(self, segment_id: str) -> None:
        resolved = self._resolved.get(segment_id)
        tree = self.query_one("#pv-why", Tree)
        if resolved is None or self._profile_data is None:
            tree.clear()
            name = dict(self.segments).get(segment_id, segment_id)
            self._show_hint(f"'{name}' cannot be evaluated (see the error).")
            return
        self.segment_id = segment_id
        self._explain(self._next("explain"), segment_id,
                      dict(self.segments).get(segment_id, resolved.segment.name),
                      self._profile_data, resolved)

    @on(Explained)
    def _explained(self, message: Explained) -> None:
        if message.generation != self._generations["explain"]:
            return
        self.explanation = message.explanation
        self._explained_name = message.segment_name
        self._draw_why()

    def _draw_why(self) -> None:
        """The explanation as a tree, in the current theme's colours."""
        if self.explanation is None:
            return
        tree = self.query_one("#pv-why", Tree)
        tree.display = True
        self.query_one("#pv-why-hint").display = False
        tree.clear()
        today = self.audiences.today()
        verdict = "in the audience" if self.explanation.matched else "not in the audience"
        tree.border_title = f"Why · {self._explained_name} · {verdict}"
        tree.root.set_label(self._why_label(self.explanation, today))
        self._grow_why(tree.root, self.explanation, today)
        tree.root.expand_all()

    def _why_label(self, explanation: Any, today: dt.date) -> Text:
        return explanation_label(explanation, today, tone(self.app, "success"),
                                 tone(self.app, "error"))

    def _show_hint(self, text: str) -> None:
        """A sentence in place of the why tree (wrapped to the panel, never cut)."""
        self.explanation = None
        hint = self.query_one("#pv-why-hint", Static)
        hint.update(Text(text, style="dim italic"))
        hint.display = True
        self.query_one("#pv-why", Tree).display = False

    def _theme_changed(self, _theme: object) -> None:
        """The marks are coloured from the theme: draw them again in the new one."""
        if not self.is_mounted:
            return
        self._draw_why()
        if self.segments:
            self._membership_loaded(MembershipLoaded(
                self._generations["membership"], self.member_of, self.segments,
                list(self._failed_segments), self._profile_data, self._resolved))

    def _grow_why(self, node: TreeNode[Any], explanation: Any, today: dt.date) -> None:
        for child in explanation.children:
            if child.children:
                branch = node.add(self._why_label(child, today), expand=True)
                self._grow_why(branch, child, today)
            else:
                node.add_leaf(self._why_label(child, today))

    @on(QueryFailed)
    def _failed(self, message: QueryFailed) -> None:
        if message.generation != self._generations.get(message.what):
            return
        self.audiences.show_error(message.message)

    @on(KeysetTable.Failed)
    def _timeline_failed(self, message: KeysetTable.Failed) -> None:
        self.audiences.show_error(message.message)

    @on(KeysetTable.Loaded)
    def _timeline_loaded(self, message: KeysetTable.Loaded) -> None:
        table = message.table
        if message.kind in ("first", "last") and not table.window:
            table.border_title = "Timeline · no events"
