"""The segment builder: the rule tree on the left, the live exact audience on the right.

Every edit goes through the model (``store.editing.SegmentDraft``), then the
tree is rebuilt from it and a count is scheduled: a 0.25 s debounce, then one
exclusive thread worker on its own read-only connection. Starting a count
cancels the previous one inside the database (``store.engines.cancel.Cancel``) and bumps
the generation number, so a result of a superseded edit is dropped even if
it arrives late. The worker posts, in order: the problems it found (bad
references), the count, a sample of members, the breakdown, the per-node
counts and waterfall. Invalid conditions are marked in red and left out of
the count (the rest still counts).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static, Tree

from store.engines.base import Connection, Engine
from store.engines.cancel import Cancel
from store.errors import AudiencesError, QueryCancelled
from store.query import audience
from store.query.membersets import MemberSetCache
from store.schema.catalog import Catalog
from store.schema.values_lookup import breakdown_candidate
from store.segments.describe import attribute_label, describe, rule_lines
from store.segments.editing import (
    EditError,
    Problem,
    SegmentDraft,
    leaf_problems,
    node_at,
    reference_at,
    resolve_countable,
)
from store.segments.library import (
    SavedSegment,
    get_segment,
    list_segments,
    resolve_segment,
    save_segment,
)
from store.segments.model import (
    AllOf,
    AnyOf,
    AttributeCondition,
    EventCondition,
    Node,
    NotOf,
    Segment,
    SegmentRef,
    SequenceCondition,
    SequenceStep,
    fixed_attributes,
    walk,
)
from store.segments.timeutil import as_of_date
from store.segments.validate import ResolvedSegment
from store.segments.yamlio import dump_segment
from tui.builder.condition_editor import ConditionEditor
from tui.builder.event_editor import EventEditor
from tui.builder.messages import (
    BrokenDown,
    Counted,
    PreviewDone,
    PreviewFailed,
    ProblemsFound,
    ReferenceLoaded,
    Sampled,
    SavedSegmentsLoaded,
    SaveFailed,
    SegmentSaved,
    Uncountable,
)
from tui.builder.modals import SegmentInfo, SegmentInfoModal
from tui.builder.pickers import (
    FuzzyPicker,
    attribute_items,
    comparable_items,
    event_type_items,
    segment_items,
)
from tui.builder.preview import PreviewPanel, SampleList
from tui.builder.rule_tree import RuleTree
from tui.builder.sequence_editor import SequenceEditor
from tui.builder.value_text import plain_message
from tui.builder.yaml_modal import YamlModal
from tui.host import Clipboard, host
from tui.widgets.dialog import Choice, ConfirmModal
from tui.widgets.footer import AppFooter
from tui.widgets.format import plain_value, tone
from tui.widgets.queries import SerialConnection

DEBOUNCE_SECONDS = 0.25
SAMPLE_SIZE = 10
SAMPLE_SEED = 7
SAMPLE_FIELDS = 2  # attribute values shown beside each sampled member's name
BREAKDOWN_TOP = 8

# Called by the preview worker after each stage, before its result is posted:
# hook(stage, generation). Tests use it to make a count slow on purpose.
PreviewHook = Callable[[str, int], None]

# Below this many columns the live preview goes under the rule tree (class "narrow").
NARROW_COLUMNS = 100

# What happens once the unsaved-changes question is answered with "save" (or "discard").
Then = Literal["close", "quit", "activate"]


def node_shown(node: Node) -> Node:
    """The node a tree row stands for, under the ``not``s the row folds into its words."""
    while isinstance(node, NotOf):
        node = node.child
    return node


def member_lines(conn: Connection, catalog: Catalog, members: list[tuple[int, str]],
                 resolved: ResolvedSegment, as_of: dt.datetime) -> list[tuple[int, str]]:
    """(pk, line) per sampled member: the id, the name and the values of the first
    ``SAMPLE_FIELDS`` attributes the rule tests ("C0000702  Inés Uribe  Age 55"), so a
    sample says who is in the audience and why at a glance."""
    from store.query.profiles import load_attributes
    from tui.screens.profile_view import display_name

    tested: list[str] = []
    same_for_all = fixed_attributes(resolved.segment.rule)  # "Gender male" on every line: left out
    for _path, node in walk(resolved.segment.rule):
        if isinstance(node, AttributeCondition) and node.attribute not in tested \
                and node.attribute not in same_for_all and node.attribute in catalog.attributes:
            tested.append(node.attribute)
    today = as_of_date(as_of)
    lines = []
    for pk, profile_id in members:
        attributes = load_attributes(conn, catalog, pk, today) or []
        by_name = {a.name: a for a in attributes}
        parts = [profile_id]
        name = display_name(attributes) if attributes else profile_id
        if name != profile_id:
            parts.append(name)
        for attribute in tested[:SAMPLE_FIELDS]:
            found = by_name.get(attribute)
            if found is not None and attribute != "id":
                parts.append(f"{found.label} {plain_value(found.value, found.type)}")
        lines.append((pk, "  ".join(parts)))
    return lines


class BuilderScreen(Screen[str | None]):
    """Build or edit one segment; dismisses with the saved segment's id (None if never saved)."""

    TITLE = "Segment builder"
    AUTO_FOCUS = "RuleTree"
    HELP_TITLE = "Segment builder"
    DEFAULT_CSS = """
    BuilderScreen #builder-title { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    BuilderScreen #builder-body { height: 1fr; }
    BuilderScreen #tree-pane { width: 1fr; }
    BuilderScreen RuleTree { height: 1fr; background: $surface; }
    BuilderScreen #node-status { height: auto; max-height: 4; padding: 0 1; }
    BuilderScreen PreviewPanel { width: 38%; min-width: 40; max-width: 56; }
    BuilderScreen.narrow #builder-body { layout: vertical; }
    BuilderScreen.narrow #tree-pane { width: 1fr; height: 1fr; min-height: 7; }
    BuilderScreen.narrow #node-status { max-height: 2; }
    BuilderScreen.narrow PreviewPanel { width: 1fr; min-width: 0; max-width: 100%;
                                        height: 40%; min-height: 10; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # Save and Code lead the footer: after Help and Quit, the last to be cut off.
        Binding("s,ctrl+s", "save", "Save", id="builder.save", tooltip="Save the segment in the store"),
        Binding("y", "yaml", "Code", id="builder.yaml",
                tooltip="Show, copy or edit the definition as YAML and PQL"),
        Binding("a", "add_condition", "Add", id="builder.add_condition",
                tooltip="Add a condition on a profile attribute"),
        Binding("e", "add_event", "Event", id="builder.add_event",
                tooltip="Add a condition on events (did / did not)"),
        Binding("g", "add_group", "Group", id="builder.add_group", tooltip="Add an empty 'all of' group"),
        Binding("f", "add_sequence", "Sequence", id="builder.add_sequence", show=False,
                tooltip="Add a sequence: events in order, with gaps (followed by)"),
        Binding("r", "add_reference", "Segment", id="builder.add_reference",
                tooltip="Add a reference to a saved segment"),
        Binding("R", "inline_reference", "Inline", id="builder.inline_reference", show=False,
                tooltip="Convert the highlighted segment reference to its rules (undoable)"),
        Binding("d,delete", "delete", "Delete", id="builder.delete", tooltip="Delete the highlighted node"),
        Binding("n", "negate", "Not", id="builder.negate",
                tooltip="Negate the highlighted node (or remove its not)"),
        Binding("w", "wrap", "Wrap", id="builder.wrap", show=False,
                tooltip="Wrap the highlighted node in a group"),
        Binding("t", "toggle_group", "All/Any", id="builder.toggle_group",
                tooltip="Switch the group between all and any"),
        Binding("ctrl+up,K", "move(-1)", "Move up", id="builder.move_up", show=False,
                tooltip="Move the highlighted node up among its siblings"),
        Binding("ctrl+down,J", "move(1)", "Move down", id="builder.move_down", show=False,
                tooltip="Move the highlighted node down among its siblings"),
        Binding("ctrl+right,greater_than_sign", "indent", "Indent", id="builder.indent", show=False,
                tooltip="Move the highlighted node into the group just above it"),
        Binding("ctrl+left,less_than_sign", "outdent", "Outdent", id="builder.outdent", show=False,
                tooltip="Move the highlighted node out of its group, just after it"),
        Binding("c", "copy", "Copy", id="builder.copy", show=False, tooltip="Copy the highlighted node"),
        Binding("p", "paste", "Paste", id="builder.paste", show=False,
                tooltip="Paste the copied node after it"),
        Binding("ctrl+z", "undo", "Undo", id="builder.undo", tooltip="Undo the last change"),
        Binding("ctrl+y", "redo", "Redo", id="builder.redo", show=False, tooltip="Redo the change undone"),
        Binding("i", "info", "Rename", id="builder.info", show=False,
                tooltip="Change the name and description"),
        Binding("b", "breakdown", "Breakdown", id="builder.breakdown", show=False,
                tooltip="Break the audience down by an attribute"),
        Binding("A", "activate", "Activate", id="builder.activate", show=False,
                tooltip="Activate the saved segment's audience"),
        Binding("o", "overlap", "Overlap", id="builder.overlap", show=False,
                tooltip="Overlap of this draft with saved segments: how many profiles they share"),
        Binding("T", "trend", "Trend", id="builder.trend", show=False,
                tooltip="Size over time: the draft's exact size at past dates (weekly, 12 weeks)"),
        Binding("x", "stop_count", "Stop count", id="builder.stop_count", show=False,
                tooltip="Stop the running count (a slow engine), or count again"),
        Binding("escape", "back", "Back", id="builder.back", show=False,
                tooltip="Back to the segments (asks if unsaved)"),
        # The app's area keys work here as everywhere, but stay out of this footer: it is
        # full of editing keys, and at 120 columns Help and Quit were cut off.
        Binding("f2", "app.area('profiles')", "Profiles", id="app.profiles", show=False,
                tooltip="Browse and search the profiles"),
        Binding("f3", "app.area('segments')", "Segments", id="app.segments", show=False,
                tooltip="Build and manage segments"),
        Binding("f4", "app.area('audiences')", "Audiences", id="app.audiences", show=False,
                tooltip="Activated audiences"),
    ]

    preview_hook: PreviewHook | None = None
    # How a count is timed; snapshot tests swap it for a constant clock.
    clock: ClassVar[Callable[[], float]] = time.perf_counter

    def __init__(self, segment: Segment | None = None, *, saved: bool = False) -> None:
        super().__init__()
        self.draft = SegmentDraft(segment or Segment("new-segment", "New segment", AllOf()),
                                  saved=saved)
        self.generation = 0
        self.problems: dict[str, Problem] = {}
        self.saved_segments: list[SavedSegment] = []
        self.breakdown_attribute: str | None = None
        self.shown_count: int | None = None
        self.shown_total: int | None = None  # profiles in the store when the count was made
        self.previewed = -1  # the last edit whose preview is complete on screen
        self.resolved: ResolvedSegment | None = None
        self._debounce: Timer | None = None
        self._cancels: list[Cancel] = []
        self.counts_stopped = False
        self._selected = "rule"
        self._as_of: dt.datetime | None = None
        # Counts reuse the member sets of unchanged conditions between edits; the cache
        # belongs to one connection, kept for this screen's preview workers (one at a time).
        self._members_cache = MemberSetCache()
        self._count_conn = SerialConnection(self.read_connection)
        self.leaving = False  # dismissed (or dismissing): answers nothing more
        self.discarded = False  # its changes were given up to quit the app
        self.asking = False  # the unsaved-changes question is on screen

    # -- app services ------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return host(self).catalog

    @property
    def engine(self) -> Engine:
        """The profile store, on whichever engine holds it."""
        return host(self).engine

    def read_connection(self) -> Connection:
        """A fresh read-only connection, for one worker run (closed by the caller)."""
        return self.engine.open_store(readonly=True)

    def as_of(self) -> dt.datetime:
        """The app's as-of instant (fixed for demos and tests), else the moment the builder
        opened: every count of one editing session is taken at the same instant, so the
        member sets of unchanged conditions stay valid between edits."""
        if self._as_of is None:
            self._as_of = host(self).as_of_instant()
        return self._as_of

    @property
    def segment_names(self) -> dict[str, str]:
        return {s.id: s.name for s in self.saved_segments}

    # -- the demo report (F6) -----------------------------------------------------------
    def report_title(self) -> str:
        return f"Segment: {self.draft.segment.name}"

    def report_lines(self) -> list[str]:
        """The segment in words, its size and its share of the store."""
        segment = self.draft.segment
        state = "not saved yet" if not self.draft.saved else (
            "unsaved changes" if self.draft.dirty else "saved")
        lines = [f"**{segment.name}** (`{segment.id}`, {state})"]
        if segment.description:
            lines += ["", segment.description]
        lines += ["", "Rule:", ""]
        lines += ["    " + line for line in rule_lines(segment.rule, self.catalog, self.segment_names)]
        lines.append("")
        if self.shown_count is None:
            lines.append("Size: not counted yet.")
        elif self.shown_total:
            share = self.shown_count / self.shown_total
            lines.append(f"Size: **{self.shown_count:,}** of {self.shown_total:,} profiles ({share:.1%}),"
                         f" as of {self.as_of():%Y-%m-%d %H:%M} UTC.")
        else:
            lines.append(f"Size: **{self.shown_count:,}** profiles.")
        return lines

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="builder-toolbar", classes="toolbar"):
            yield Static("Segment builder", classes="area-title")
            yield Static("", id="builder-title")
        with Horizontal(id="builder-body"):
            with Vertical(id="tree-pane", classes="panel") as pane:
                pane.border_title = "Rules"
                yield RuleTree(id="rule-tree")
                yield Static("", id="node-status")
            panel = PreviewPanel(id="preview", classes="panel")
            panel.border_title = "Live preview"
            yield panel
        yield AppFooter()

    def on_unmount(self) -> None:
        host(self).queries.interrupt_prefix(f"builder-{id(self)}:")
        self._count_conn.close()

    def token(self, kind: str) -> Cancel:
        """The cancellation token of a new ``kind`` request (preview, breakdown) of this builder;
        the previous one of that kind is cancelled (tui/messages.py)."""
        return host(self).queries.start(f"builder-{id(self)}:{kind}")

    def on_resize(self) -> None:
        self.fit_terminal()

    def fit_terminal(self) -> None:
        """On a narrow terminal the preview goes under the tree, the tree keeps the width."""
        narrow = self.app.size.width < NARROW_COLUMNS
        if narrow != self.has_class("narrow"):
            self.set_class(narrow, "narrow")
            self.preview.fit(narrow)

    def on_mount(self) -> None:
        self.fit_terminal()
        self.problems = leaf_problems(self.draft.rule, self.catalog, self.as_of())
        self.rule_tree.show(self.draft.rule, "rule", self.catalog, {}, self.problems)
        self.update_title()
        self.load_saved_segments()
        self.schedule_preview(delay=0.01)

    @property
    def rule_tree(self) -> RuleTree:
        return self.query_one(RuleTree)

    @property
    def preview(self) -> PreviewPanel:
        return self.query_one(PreviewPanel)

    def update_title(self) -> None:
        segment = self.draft.segment
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(segment.name, style="bold")
        title.append(f"  {segment.id}", style="dim")
        if not self.draft.saved:
            title.append("  ● new, not saved yet", style=tone(self.app, "warning"))
        elif self.draft.dirty:
            title.append("  ● unsaved changes", style=tone(self.app, "warning"))
        else:
            title.append("  ✓ saved", style=tone(self.app, "success"))
        if segment.description:
            title.append(f"  — {segment.description}", style="italic dim")
        self.query_one("#builder-title", Static).update(title)
        self.sub_title = segment.name

    # -- after every change -----------------------------------------------------------
    def after_edit(self, select: str) -> None:
        """Rebuild the tree from the model, re-check it, and schedule a count."""
        self.problems = leaf_problems(self.draft.rule, self.catalog, self.as_of())
        self.rule_tree.show(self.draft.rule, select, self.catalog, self.segment_names, self.problems)
        self.update_title()
        self.update_status()
        self.schedule_preview()

    def schedule_preview(self, delay: float = DEBOUNCE_SECONDS) -> None:
        """Supersede any running count; count again after a short pause in the edits."""
        self.generation += 1
        self.cancel_running()
        self.counts_stopped = False
        if self._debounce is not None:
            self._debounce.stop()
        self.shown_count = None
        self.preview.show_counting(type(self).clock)
        self.rule_tree.set_pending()
        self._debounce = self.set_timer(delay, self.start_preview)

    def action_stop_count(self) -> None:
        """Stop the count running in the engine (the builder stays usable meanwhile), or start
        it again once stopped."""
        if self.shown_count is not None:
            return
        if self._cancels or self._debounce is not None:
            self.generation += 1  # whatever the stopped workers still post is dropped
            self.cancel_running()
            if self._debounce is not None:
                self._debounce.stop()
                self._debounce = None
            self.counts_stopped = True
            self.preview.show_stopped()
            self.rule_tree.set_pending()
        elif self.counts_stopped:
            self.counts_stopped = False
            self.schedule_preview(0.01)

    def cancel_running(self) -> None:
        """Stop the counts of the previous edit inside the database."""
        for cancel in self._cancels:
            cancel.cancel()
        self._cancels = []

    def start_preview(self) -> None:
        """Count first; once the count is on screen the tree's counts start beside the rest."""
        self._debounce = None
        self._cancels = [self.token("preview")]
        self.run_preview(self.generation, self.draft.segment, dict(self.problems), self.as_of(),
                         self.breakdown_attribute, self._cancels[0])

    def poster(self, generation: int, cancel: Cancel) -> Callable[[str, Any], None]:
        """Posts a worker's result unless its request was superseded or stopped (test hook
        first): the token is cancelled by the next edit, escape, leaving and quitting."""

        def post(stage: str, message: Any) -> None:
            if self.preview_hook is not None:
                self.preview_hook(stage, generation)
            if not cancel.cancelled:
                self.post_message(message)

        return post

    # -- the preview workers ----------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-preview")
    def run_preview(self, generation: int, segment: Segment, problems: dict[str, Problem],
                    as_of: dt.datetime, breakdown_by: str | None, cancel: Cancel) -> None:
        """Count (the total and every node's count in one pass), then sample and break down.

        The counts come from the member sets of the leaf conditions, kept between edits
        on this screen's own connection (``store.query.membersets``): after an edit only the
        changed condition is read again, so the new total and the tree's counts arrive
        together, sooner than one SQL count of the whole segment would.
        """
        catalog = self.catalog
        post = self.poster(generation, cancel)
        clock = type(self).clock
        try:
            with self._count_conn.use() as conn:
                resolved, found = resolve_countable(
                    segment, catalog, lambda s: resolve_segment(conn, s, catalog=catalog), problems)
                post("problems", ProblemsFound(generation, found))
                if resolved is None:
                    post("count", Uncountable(generation, "nothing to count yet: fix the condition"
                                              " marked in red"))
                    return
                started = clock()
                nodes = audience.node_counts(conn, resolved, as_of, catalog, cancel,
                                             cache=self._members_cache)
                elapsed = clock() - started
                everyone = audience.total(conn, cancel)
            size = next(node.own for node in nodes if node.path == "rule")
            post("count", Counted(generation, size, everyone, elapsed, resolved, as_of, nodes))
            self.sample_and_break_down(post, generation, resolved, size, as_of, breakdown_by,
                                       cancel)
        except QueryCancelled:
            return
        except AudiencesError as exc:
            post("failed", PreviewFailed(generation, str(exc)))
        finally:
            post("done", PreviewDone(generation))  # dropped when cancelled, like every result

    def sample_and_break_down(self, post: Callable[[str, Any], None], generation: int,
                              resolved: ResolvedSegment, size: int, as_of: dt.datetime,
                              breakdown_by: str | None, cancel: Cancel) -> None:
        """The preview's sample of members and its breakdown (a fresh connection, in the
        preview worker; errors reach the worker)."""
        catalog = self.catalog
        conn = self.read_connection()
        try:
            members = audience.sample(conn, resolved, as_of, SAMPLE_SIZE, SAMPLE_SEED, catalog,
                                      cancel)
            post("sample", Sampled(generation, member_lines(conn, catalog, members, resolved,
                                                            as_of), size))
            if breakdown_by is None:
                breakdown_by = breakdown_candidate(conn, catalog,
                                                   fixed_attributes(resolved.segment.rule))
            if breakdown_by is not None and breakdown_by in catalog.attributes:
                rows = audience.breakdown(conn, resolved, as_of, breakdown_by, BREAKDOWN_TOP,
                                          catalog, cancel)
                post("breakdown", BrokenDown(generation, breakdown_by, rows, size))
        finally:
            conn.close()

    def current(self, message: Any) -> bool:
        """Whether a worker result belongs to the edit on screen (older ones are dropped)."""
        return bool(message.generation == self.generation)

    @on(ProblemsFound)
    def problems_found(self, message: ProblemsFound) -> None:
        if not self.current(message):
            return
        self.problems = message.problems
        self.rule_tree.set_problems(self.problems)
        self.update_status()

    @on(Counted)
    def counted(self, message: Counted) -> None:
        if not self.current(message):
            return
        self.shown_count = message.count
        self.shown_total = message.total
        self.resolved = message.resolved
        self.rule_tree.set_counts(message.nodes)
        self.preview.show_count(message.count, message.total, message.elapsed, len(self.problems))
        if self.breakdown_attribute is not None:
            self.preview.show_breakdown_pending(self.attribute_text(self.breakdown_attribute))

    @on(Uncountable)
    def uncountable(self, message: Uncountable) -> None:
        if self.current(message):
            self.preview.show_uncountable(message.reason)
            self.rule_tree.set_counts({})

    @on(Sampled)
    def sampled(self, message: Sampled) -> None:
        if self.current(message):
            self.preview.show_sample(message.members, message.audience)

    @on(BrokenDown)
    def broken_down(self, message: BrokenDown) -> None:
        if self.current(message):
            # an attribute picked by the app is not kept: after the next edit the rule may fix
            # it ("Gender is male"), and another one says more
            self.preview.show_breakdown(self.attribute_text(message.attribute), message.rows,
                                        message.audience)

    @on(PreviewDone)
    def preview_done(self, message: PreviewDone) -> None:
        if self.current(message):
            self.previewed = message.generation

    @on(PreviewFailed)
    def preview_failed(self, message: PreviewFailed) -> None:
        if self.current(message):
            self.preview.show_failure(message.message)

    def attribute_text(self, name: str) -> str:
        return attribute_label(name, self.catalog)

    # -- saved segments (for references and names) ---------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-segments")
    def load_saved_segments(self) -> None:
        try:
            conn = self.read_connection()
        except AudiencesError:
            return
        try:
            self.post_message(SavedSegmentsLoaded(0, list_segments(conn)))
        finally:
            conn.close()

    @on(SavedSegmentsLoaded)
    def saved_segments_loaded(self, message: SavedSegmentsLoaded) -> None:
        self.saved_segments = message.segments
        self.rule_tree.relabel(self.catalog, self.segment_names)

    # -- status line under the tree -----------------------------------------------------
    @on(Tree.NodeHighlighted)
    def highlighted(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        row = self.rule_tree.selected_row
        status = self.query_one("#node-status", Static)
        if row is None:
            status.update("")
            return
        if row.problem is not None:
            status.update(Text(f"✗ {row.problem.path}: {plain_message(row.problem.message)}",
                               style=f"bold {tone(self.app, 'error')}"))
            return
        hint = Text(row.text)
        if isinstance(node_shown(row.node), SequenceCondition):
            hint.append("   enter: edit the steps · n: not · d: delete · K/J: move", style="dim")
        elif row.is_group:
            hint.append("   a: add inside · t: all/any · n: not · d: delete", style="dim")
        elif self.is_reference(self.rule_tree.selected_path):
            hint.append("   R: convert to its rules · enter: change · n: not · d: delete", style="dim")
        else:
            hint.append("   enter: edit · n: not · d: delete · K/J: move", style="dim")
        status.update(hint)

    def is_reference(self, path: str) -> bool:
        try:
            reference_at(self.draft.rule, path)
        except EditError:
            return False
        return True

    # -- edits ----------------------------------------------------------------------------
    def edit(self, operation: Callable[[str], str]) -> None:
        """Run one model operation on the selection; refusals become a message."""
        try:
            select = operation(self.rule_tree.selected_path)
        except EditError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.after_edit(select)

    def insert(self, node: Node) -> None:
        self.edit(lambda path: self.draft.insert(path, node))

    def action_add_condition(self) -> None:
        def picked(name: str | None) -> None:
            if name is not None:
                self.edit_attribute_condition(AttributeCondition(name, ""), self.insert)

        self.app.push_screen(FuzzyPicker("Add a condition on…", attribute_items(self.catalog)),
                             picked)

    def action_add_event(self) -> None:
        def picked(name: str | None) -> None:
            if name is not None:
                types = None if name == "*" else (name,)
                self.edit_event_condition(EventCondition(types), self.insert)

        self.app.push_screen(FuzzyPicker("Add a condition on events of type…",
                                         event_type_items(self.catalog)), picked)

    def action_add_group(self) -> None:
        self.insert(AllOf())

    def action_add_sequence(self) -> None:
        """Pick the first step's events, then build the rest of the sequence in its editor."""
        def picked(name: str | None) -> None:
            if name is not None:
                types = None if name == "*" else (name,)
                self.edit_sequence(SequenceCondition((SequenceStep(types),)), self.insert, 0)

        self.app.push_screen(FuzzyPicker("A sequence: first, events of type…",
                                         event_type_items(self.catalog)), picked)

    def action_add_reference(self) -> None:
        def picked(segment_id: str | None) -> None:
            if segment_id is not None:
                self.insert(SegmentRef(segment_id))

        self.app.push_screen(self.segment_picker("Add a reference to the saved segment…"), picked)

    def segment_picker(self, title: str) -> FuzzyPicker:
        others = [(s.id, s.name, s.description) for s in self.saved_segments
                  if s.id != self.draft.segment.id]
        return FuzzyPicker(title, segment_items(others), empty_text="No other saved segment.")

    def action_edit(self) -> None:
        """Edit the highlighted condition (a group: show what can be done with it)."""
        row = self.rule_tree.selected_row
        if row is None:
            return
        target = row.covers[-1]
        node = node_at(self.draft.rule, target)

        def replace(new: Node) -> None:
            self.edit(lambda _path: self.draft.replace(target, new))

        if isinstance(node, AttributeCondition):
            self.edit_attribute_condition(node, replace)
        elif isinstance(node, EventCondition):
            self.edit_event_condition(node, replace)
        elif isinstance(node, SequenceCondition):
            self.edit_sequence(node, replace, row.step or 0)
        elif isinstance(node, SegmentRef):
            def picked(segment_id: str | None) -> None:
                if segment_id is not None:
                    replace(SegmentRef(segment_id))

            self.app.push_screen(self.segment_picker("Refer to the saved segment…"), picked)
        elif isinstance(node, AllOf | AnyOf | NotOf):
            self.notify("A group: a adds inside it, t switches all/any, n negates it.",
                        title=describe(node, self.catalog))

    def edit_attribute_condition(self, condition: AttributeCondition,
                                 done: Callable[[Node], None]) -> None:
        attribute = self.catalog.attributes.get(condition.attribute)
        if attribute is None:
            self.notify(f"Unknown attribute {condition.attribute!r}; fix it in the YAML (y).",
                        severity="error")
            return
        label = attribute.display_label

        def check(candidate: AttributeCondition) -> str | None:
            from store.segments.editing import check_condition

            found = check_condition(candidate, self.catalog, as_of=self.as_of())
            return None if found is None else found.message

        def finished(result: AttributeCondition | None) -> None:
            if result is not None:
                done(result)

        title = f"{label} · {attribute.type}" + (f" · {attribute.group}" if attribute.group else "")
        editor = ConditionEditor(condition, field_type=attribute.type, title=title,
                                 description=attribute.description, check=check,
                                 describe=lambda c: describe(c, self.catalog),
                                 catalog=self.catalog, connect=self.read_connection,
                                 other_fields=comparable_items(self.catalog, attribute.name,
                                                               attribute.type))
        self.app.push_screen(editor, finished)

    def edit_event_condition(self, condition: EventCondition,
                             done: Callable[[Node], None]) -> None:
        def finished(result: EventCondition | None) -> None:
            if result is not None:
                done(result)

        self.app.push_screen(EventEditor(condition, catalog=self.catalog,
                                         connect=self.read_connection), finished)

    def edit_sequence(self, sequence: SequenceCondition, done: Callable[[Node], None],
                      step: int) -> None:
        def finished(result: SequenceCondition | None) -> None:
            if result is not None:
                done(result)

        self.app.push_screen(SequenceEditor(sequence, catalog=self.catalog,
                                            connect=self.read_connection,
                                            funnel=self.sequence_funnel, step=step), finished)

    def sequence_funnel(self, sequence: SequenceCondition) -> tuple[int, ...]:
        """How many profiles match the first 1, 2, ... steps of a sequence being edited, at
        the builder's as-of instant (run in the editor's worker, on its own connection)."""
        rule: Node = sequence if len(sequence.steps) > 1 else sequence.prefix(1)
        conn = self.read_connection()
        try:
            resolved = resolve_segment(conn, Segment("funnel", "Funnel", rule),
                                       catalog=self.catalog)
            nodes = audience.node_counts(conn, resolved, self.as_of(), self.catalog)
        finally:
            conn.close()
        found = next(node for node in nodes if node.path == "rule")
        return found.funnel or (found.own,)

    def action_inline_reference(self) -> None:
        try:
            path, segment_id = reference_at(self.draft.rule, self.rule_tree.selected_path)
        except EditError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.load_reference(self.generation, path, segment_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-inline")
    def load_reference(self, generation: int, path: str, segment_id: str) -> None:
        try:
            conn = self.read_connection()
            try:
                found = get_segment(conn, segment_id)
            finally:
                conn.close()
        except AudiencesError as exc:
            self.post_message(ReferenceLoaded(generation, path, segment_id, None, str(exc)))
            return
        if found is None:
            self.post_message(ReferenceLoaded(generation, path, segment_id, None,
                                              f"no saved segment {segment_id!r}"))
            return
        self.post_message(ReferenceLoaded(generation, path, segment_id, found[0].rule))

    @on(ReferenceLoaded)
    def reference_loaded(self, message: ReferenceLoaded) -> None:
        if not self.current(message):  # the draft changed meanwhile: ask again
            return
        if message.rule is None:
            self.notify(f"Cannot convert the reference: {message.error}.", severity="warning")
            return
        rule = message.rule
        self.edit(lambda _selected: self.draft.inline(message.path, rule))
        name = self.segment_names.get(message.segment_id, message.segment_id)
        self.notify(f"Replaced the reference to {name!r} with its rules (ctrl+z undoes it).")

    def action_delete(self) -> None:
        self.edit(self.draft.delete)

    def action_negate(self) -> None:
        self.edit(self.draft.negate)

    def action_wrap(self) -> None:
        self.edit(self.draft.wrap)

    def action_toggle_group(self) -> None:
        self.edit(self.draft.toggle_group)

    def action_move(self, delta: int) -> None:
        self.edit(lambda path: self.draft.move(path, delta))

    def action_indent(self) -> None:
        self.edit(self.draft.indent)

    def action_outdent(self) -> None:
        self.edit(self.draft.outdent)

    @property
    def clipboard(self) -> Clipboard:
        """Shared by every builder of the app: copy in one segment, paste in another."""
        return host(self).builder_clipboard

    def action_copy(self) -> None:
        node = self.draft.copy(self.rule_tree.selected_path)
        self.clipboard.node = node
        self.notify(f"Copied: {describe(node, self.catalog, self.segment_names)}"
                    "  (p pastes, in this segment or another)")

    def action_paste(self) -> None:
        self.edit(lambda path: self.draft.paste(path, self.clipboard.node))

    def action_undo(self) -> None:
        select = self.draft.undo()
        if select is None:
            self.notify("Nothing to undo.")
            return
        self.after_edit(select)

    def action_redo(self) -> None:
        select = self.draft.redo()
        if select is None:
            self.notify("Nothing to redo.")
            return
        self.after_edit(select)

    # -- YAML, name, breakdown -----------------------------------------------------------
    def action_yaml(self) -> None:
        def applied(segment: Segment | None) -> None:
            if segment is not None:
                self.after_edit(self.draft.set_segment(segment))

        known = {s.id for s in self.saved_segments}
        self.app.push_screen(YamlModal(dump_segment(self.draft.segment), catalog=self.catalog,
                                       known_segments=known, segment=self.draft.segment,
                                       locked_id=self.draft.segment.id if self.draft.saved
                                       else None), applied)

    def info_modal(self, title: str) -> SegmentInfoModal:
        segment = self.draft.segment
        taken = {s.id for s in self.saved_segments}
        name = "" if not self.draft.saved and segment.name == "New segment" else segment.name
        seg_id = "" if not name else segment.id
        return SegmentInfoModal(title, SegmentInfo(name, seg_id, segment.description),
                                id_locked=self.draft.saved, taken=taken,
                                names=self.segment_names)

    def action_info(self) -> None:
        self.ask_info(save=False, then=None)

    def ask_info(self, *, save: bool, then: Then | None) -> None:
        """Ask for the name (and id, the first time); then save if asked to."""
        def chosen(info: SegmentInfo | None) -> None:
            if info is None:
                return
            self.after_edit(self.draft.set_info(info.name, info.description, info.id,
                                                self.rule_tree.selected_path))
            if save:
                self.save(then)

        self.app.push_screen(self.info_modal("Name the segment" if not self.draft.saved
                                             else "Rename the segment"), chosen)

    def action_breakdown(self) -> None:
        def picked(name: str | None) -> None:
            if name is None:
                return
            self.breakdown_attribute = name
            if self.resolved is not None and self.shown_count is not None:
                self.preview.show_breakdown_pending(self.attribute_text(name))
                self.run_breakdown(self.generation, self.resolved, self.as_of(), name,
                                   self.shown_count, self.token("breakdown"))

        self.app.push_screen(FuzzyPicker("Break the audience down by…",
                                         attribute_items(self.catalog)), picked)

    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-breakdown")
    def run_breakdown(self, generation: int, resolved: ResolvedSegment, as_of: dt.datetime,
                      attribute: str, size: int, cancel: Cancel) -> None:
        try:
            conn = self.read_connection()
        except AudiencesError as exc:
            self.post_message(PreviewFailed(generation, str(exc)))
            return
        try:
            rows = audience.breakdown(conn, resolved, as_of, attribute, BREAKDOWN_TOP, self.catalog,
                                      cancel)
            self.post_message(BrokenDown(generation, attribute, rows, size))
        except QueryCancelled:
            return
        except AudiencesError as exc:
            self.post_message(PreviewFailed(generation, str(exc)))
        finally:
            conn.close()

    # -- saving, activating, leaving --------------------------------------------------------
    def action_save(self, then: Then | None = None) -> None:
        if not self.draft.saved:
            self.ask_info(save=True, then=then)
            return
        self.save(then)

    def save(self, then: Then | None) -> None:
        if self.problems:
            count = len(self.problems)
            self.notify(f"{count} condition{'s' if count > 1 else ''} marked in red must be fixed"
                        " before saving.", severity="error", title="Not saved")
            return
        self.save_segment(self.draft.segment, then)

    @work(thread=True, exclusive=True, exit_on_error=False, group="builder-save")
    def save_segment(self, segment: Segment, then: Then | None) -> None:
        try:
            conn = self.engine.open_store()
        except AudiencesError as exc:
            self.post_message(SaveFailed(0, str(exc)))
            return
        try:
            save_segment(conn, resolve_segment(conn, segment, catalog=self.catalog))
            self.post_message(SegmentSaved(0, segment.id, then))
        except AudiencesError as exc:
            self.post_message(SaveFailed(0, str(exc)))
        finally:
            conn.close()

    @on(SegmentSaved)
    def segment_saved(self, message: SegmentSaved) -> None:
        if message.segment_id == self.draft.segment.id:
            self.draft.mark_saved()
        self.update_title()
        self.notify(f"Saved {self.draft.segment.name!r} ({message.segment_id}).")
        self.load_saved_segments()
        if message.then == "close":
            self.leave()
        elif message.then == "quit":
            self.app.call_later(self.app.run_action, "app.quit")  # asks about other builders
        elif message.then == "activate":
            self.action_activate()

    @on(SaveFailed)
    def save_failed(self, message: SaveFailed) -> None:
        self.notify(message.message, severity="error", title="Not saved")

    def action_activate(self) -> None:
        if not self.draft.saved or self.draft.dirty:
            self.notify("Save the segment first (s); activation uses the saved definition.",
                        severity="warning")
            return
        host(self).action_activate_segment(self.draft.segment.id)

    def action_overlap(self) -> None:
        """"Overlap of this draft with ...": the draft as it is now (saved or not)."""
        if self.resolved is None:
            self.notify("The draft is not valid yet; fix it to compare it.", severity="warning")
            return
        from tui.screens.overlap import OverlapScreen

        self.app.push_screen(OverlapScreen("segments", draft=self.resolved))

    def action_trend(self) -> None:
        """The draft's size over time, as it is now (saved or not)."""
        resolved = self.resolved
        if resolved is None:
            self.notify("The draft is not valid yet; fix it to chart its size.", severity="warning")
            return
        from tui.screens.trend import TrendScreen

        self.app.push_screen(TrendScreen(resolved.segment.name, lambda conn, catalog: resolved,
                                         what="draft"))

    def action_open_member(self) -> None:
        pk = self.preview.member_pk()
        if pk is None:
            return
        target: str | Segment = (self.draft.segment.id
                                 if self.draft.saved and not self.draft.dirty
                                 else self.draft.segment)
        host(self).open_profile(pk, target)

    @on(SampleList.OptionSelected)
    def member_selected(self, event: SampleList.OptionSelected) -> None:
        event.stop()
        self.action_open_member()

    @property
    def has_unsaved_work(self) -> bool:
        """Whether quitting the app now would lose changes made here (the app asks first)."""
        return self.draft.dirty and not (self.leaving or self.discarded)

    def action_back(self) -> None:
        if self.leaving:
            return
        if not self.draft.dirty:
            self.leave()
            return
        self.ask_unsaved("close")

    def ask_unsaved(self, then: Literal["close", "quit"]) -> None:
        """Save, discard or keep editing, before leaving the builder or quitting the app.

        Save saves (a new segment asks for its name first), then closes or quits;
        discard closes or quits at once; keep editing (escape) stays, so quitting is
        called off. Asked once at a time, however often escape or q is pressed.
        """
        if self.asking or self.leaving:
            return

        def answered(choice: str | None) -> None:
            self.asking = False
            if choice == "s":
                self.action_save(then)
            elif choice == "d" and then == "close":
                self.leave()
            elif choice == "d":
                self.discarded = True
                self.app.call_later(self.app.run_action, "app.quit")

        self.asking = True
        name = self.draft.segment.name
        leaving = "leaving" if then == "close" else "quitting"
        self.app.push_screen(ConfirmModal(
            "Unsaved changes",
            f"{name!r} has changes that are not saved. Save them before {leaving}?",
            [Choice("s", "Save", "primary"), Choice("d", "Discard", "error"),
             Choice("escape", "Keep editing")]), answered)

    def leave(self) -> None:
        if self.leaving or not self.is_active:
            return  # closing already, or a dialog is open above it: stay
        self.cancel_running()
        if self._debounce is not None:
            self._debounce.stop()
        self.generation += 1
        self.dismiss(self.draft.segment.id if self.draft.saved else None)

    def dismiss(self, result: str | None = None) -> AwaitComplete:
        """Close the builder once, and only from the top of the stack (never the screen
        below it, whatever keys were queued)."""
        if self.leaving or not self.is_active:
            return AwaitComplete.nothing()
        self.leaving = True
        return super().dismiss(result)
