"""The Audiences area: activated audiences in the campaign store.

A table of audiences (size, last activation, a trend of sizes) beside the
highlighted audience's detail: a chart of its sizes over past activations
(bars from zero, dated) and its history with added/removed per activation. Enter pages through the
members with their fields; r refreshes (review, then activate at now, with
the segment's current saved definition); e exports CSV; x deactivates; m
opens its deliveries; s sets its refresh schedule; o compares audiences.
An audience whose saved segment changed since its last activation says so
until it is refreshed; a split audience shows its groups.

All reads and writes run in thread workers on their own connections; the
workers post messages and the handlers update the widgets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, OptionList, Static
from textual.widgets.option_list import Option

from store.campaign.schedule import SCHEDULES, next_run
from store.campaign.splits import SplitSpec, is_holdout
from store.campaign.store import (
    ActivationRecord,
    Audience,
    Member,
    export_csv_file,
    find_audience,
    history,
    open_campaign,
    overview,
    read_member_page,
    set_schedule,
    set_status,
    split_counts,
)
from store.engines.base import Connection
from store.errors import AudiencesError
from store.segments.describe import rule_lines
from store.segments.yamlio import load_segment_text
from tui.host import host
from tui.messages import WorkerResult
from tui.report import markdown_table
from tui.screens.activation import (
    ActivationScreen,
    error_text,
    profile_reader,
)
from tui.widgets.chart import SizeChart
from tui.widgets.dialog import Choice, ConfirmModal, Dialog, TextPrompt
from tui.widgets.footer import AppFooter
from tui.widgets.format import field_label, plural, tone
from tui.widgets.list_table import ListTable

BLOCKS = "▁▂▃▄▅▆▇█"
MEMBERS_PAGE = 100
TREND_POINTS = 12
# The profile ids of a store are text; this sorts after any of them (the start of the last page).
AFTER_EVERY_ID = "\U0010ffff"


def trend(sizes: list[int], width: int = TREND_POINTS) -> str:
    """A one-line text sparkline of the last ``width`` sizes (for a table cell).

    One size is no trend: nothing is drawn for fewer than two activations. The blocks
    start at zero (the lowest block is an empty audience), so a change of a few members
    looks like one.
    """
    points = sizes[-width:]
    if len(points) < 2:
        return ""
    high = max(points)
    if high == 0:
        return BLOCKS[0] * len(points)
    return "".join(BLOCKS[round(p / high * (len(BLOCKS) - 1))] for p in points)


def sizes_caption(sizes: list[int]) -> tuple[str, bool]:
    """What the detail pane says about an audience's past sizes, and whether a sparkline helps.

    A chart is drawn only for at least two activations of different
    sizes; otherwise a sentence says what there is to say.
    """
    if not sizes:
        return "No activation recorded yet.", False
    if len(sizes) == 1:
        return f"One activation so far: {plural(sizes[0], 'member')}.", False
    if min(sizes) == max(sizes):
        return (f"The last {len(sizes)} activations had the same size: "
                f"{plural(sizes[0], 'member')}."), False
    return (f"Size over the last {len(sizes)} activations: {min(sizes):,} – "
            f"{plural(max(sizes), 'member')}"), True


def shown_path(path: Path) -> str:
    """A path as short as it can be said: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def activated_moment(stamp: str) -> dt.datetime:
    """An activation's ``activated_at`` (``2026-11-29 05:03:31``) as an instant for the chart."""
    return dt.datetime.fromisoformat(stamp)


def short_time(stamp: str) -> str:
    """``2026-11-29 05:03:31`` as ``2026-11-29 05:03`` (the seconds say nothing here)."""
    return stamp[:16] if len(stamp) >= 16 else stamp


def open_campaign_reader(path: Path) -> Connection | None:
    """A read-only connection to the campaign store, or None when it does not exist yet."""
    if not path.exists():
        return None
    return open_campaign(path, readonly=True)


# ------------------------------------------------------------------ messages


class AudiencesLoaded(WorkerResult):
    """The list of audiences as read by the load of ``generation`` (older loads are dropped)."""

    def __init__(self, generation: int, audiences: list[Audience], sizes: dict[int, list[int]],
                 states: dict[int, str] | None = None,
                 groups: dict[int, dict[str, int]] | None = None) -> None:
        super().__init__(generation)
        self.audiences = audiences
        self.sizes = sizes
        self.states = states or {}  # audience id -> "changed" | "deleted" (its saved segment)
        self.groups = groups or {}  # audience id -> members per group (split audiences)


class HistoryLoaded(Message):
    def __init__(self, audience_id: int, records: list[ActivationRecord]) -> None:
        super().__init__()
        self.audience_id = audience_id
        self.records = records


class CampaignFailed(Message):
    def __init__(self, what: str, message: str) -> None:
        super().__init__()
        self.what = what
        self.message = message


class CampaignDone(Message):
    """A write (deactivate, export) finished; ``note`` says what was done."""

    def __init__(self, note: str) -> None:
        super().__init__()
        self.note = note


class MembersLoaded(Message):
    def __init__(self, members: list[Member], direction: str, total: int) -> None:
        super().__init__()
        self.members = members
        self.direction = direction
        self.total = total


# ------------------------------------------------------------------ small modals


class ScheduleScreen(Dialog[str | None]):
    """Pick when ``refresh --due`` (cron, a systemd timer) refreshes the audience."""

    HELP_TITLE = "Schedule"
    DEFAULT_CSS = """
    ScheduleScreen #schedule-options { height: auto; max-height: 8; border: none; padding: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="schedule.cancel")]

    def __init__(self, audience: Audience) -> None:
        super().__init__()
        self.audience = audience

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"Refresh {self.audience.name} …"), classes="title")
            yield OptionList(*(Option(word, id=word) for word in SCHEDULES), id="schedule-options")
            yield Static("enter: choose · escape: cancel · runs when cron or a systemd timer calls"
                         " `audiences-tui refresh --due` (see docs/activation.md)", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one("#schedule-options", OptionList)
        options.highlighted = list(SCHEDULES).index(self.audience.schedule) \
            if self.audience.schedule in SCHEDULES else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def schedule_words(audience: Audience) -> str:
    """``Last run 2026-11-29 05:03 · next 2026-11-30 05:03 (daily)``, or the schedule is off."""
    upcoming = next_run(audience.schedule, audience.activated_at)
    last = f"Last run {short_time(audience.activated_at)}"
    if upcoming is None:
        return f"{last} · no schedule (s sets one)"
    return f"{last} · next {upcoming:%Y-%m-%d %H:%M} ({audience.schedule})"


def groups_words(groups: dict[str, int]) -> str:
    """``Groups: A 91 · B 90 · holdout 20 (never delivered to)``."""
    parts = [f"{name} {n:,}" + (" (never delivered to)" if is_holdout(name) else "")
             for name, n in groups.items()]
    return "Groups: " + " · ".join(parts)


# ------------------------------------------------------------------ the area


class AudienceTable(ListTable):
    """The activated audiences; enter pages through the highlighted one's members."""

    HELP_TITLE = "Audience list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.open_members", "Members", id="audiences.members",
                tooltip="Page through the audience's members"),
    ]


class HistoryTable(ListTable):
    """The highlighted audience's activations, newest first."""

    HELP_TITLE = "Activation history"


class AudiencesScreen(Screen[None]):
    """Activated audiences with their sizes and history."""

    TITLE = "Audiences"
    HELP_TITLE = "Audiences"
    AUTO_FOCUS = "#audiences-table"
    DEFAULT_CSS = """
    #audiences-hint { width: 1fr; color: $text-muted; }
    #audiences-body { height: 1fr; }
    #audiences-left { width: 3fr; }
    #audiences-table { height: 1fr; scrollbar-size-vertical: 1; }
    #audiences-detail { width: 2fr; min-width: 50; border-left: solid $primary-darken-2;
                        padding: 0 1; }
    #detail-title { text-style: bold; }
    #sizes { height: 7; margin: 1 0 0 0; }
    #sizes-caption { color: $text-muted; margin: 1 0 1 0; }
    #history-table { height: 1fr; scrollbar-size-vertical: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_members", "Members", id="audiences.members",
                tooltip="Page through the audience's members"),
        # The footer keeps what fits at 120 columns; deactivate and reload are in F1 and ctrl+p.
        Binding("r", "refresh_audience", "Refresh", id="audiences.refresh",
                tooltip="Review the audience again, then activate it now"),
        Binding("e", "export", "Export", id="audiences.export",
                tooltip="Write the members to a CSV file (asks before replacing one)"),
        Binding("x", "deactivate", "Deactivate", id="audiences.deactivate", show=False,
                tooltip="Mark the audience inactive (asks first; members are kept)"),
        Binding("m", "deliveries", "Deliveries", id="audiences.deliveries",
                tooltip="Write and preview messages for the audience"),
        Binding("s", "schedule", "Schedule", id="audiences.schedule", show=False,
                tooltip="When `refresh --due` refreshes the audience: off, hourly, daily, weekly"),
        Binding("o", "overlap", "Overlap", id="audiences.overlap", show=False,
                tooltip="Compare audiences: how many members they share"),
        Binding("t", "trend", "Trend", id="audiences.trend", show=False,
                tooltip="Size over time: the audience's exact size at past dates"),
        Binding("ctrl+r", "reload", "Reload", id="audiences.reload", show=False,
                tooltip="Read the campaign store again"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audiences: dict[int, Audience] = {}
        self.sizes: dict[int, list[int]] = {}
        self.order: list[Audience] = []
        self.loaded = False
        self.generation = 0  # of the latest list load; older loads' results are dropped
        self.history_records: list[ActivationRecord] = []
        self.states: dict[int, str] = {}
        self.groups: dict[int, dict[str, int]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="audiences-toolbar", classes="toolbar"):
            yield Static("Audiences", classes="area-title")
            yield Static("Loading audiences…", id="audiences-hint")
        with Horizontal(id="audiences-body"):
            with Vertical(id="audiences-left"):
                yield AudienceTable(id="audiences-table", zebra_stripes=True)
            with Vertical(id="audiences-detail"):
                yield Static("", id="detail-title")
                yield SizeChart(unit="members", id="sizes")
                yield Static("", id="sizes-caption")
                yield HistoryTable(id="history-table", show_cursor=False)
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one("#audiences-table", DataTable)
        # The numbers come first, so they stay on screen however narrow the list is.
        table.add_column("Id", key="id")
        table.add_column("Audience", key="name", width=26)
        table.add_column(Text("Members", justify="right"), key="members")
        table.add_column("Status", key="status")
        table.add_column("Last activation", key="activated")
        table.add_column("Schedule", key="schedule")
        table.add_column("Trend", key="trend")
        table.add_column("Segment", key="segment")
        history_table = self.query_one("#history-table", DataTable)
        history_table.add_column("Activated", key="at")
        history_table.add_column(Text("Count", justify="right"), key="count")
        history_table.add_column(Text("Added", justify="right"), key="added")
        history_table.add_column(Text("Removed", justify="right"), key="removed")
        history_table.add_column(Text("ms", justify="right"), key="ms")
        history_table.add_column("By", key="by")
        self.query_one("#sizes", SizeChart).display = False
        self.app.theme_changed_signal.subscribe(self, self.theme_changed)
        table.focus()  # AUTO_FOCUS is skipped while the terminal has no focus
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.action_reload()

    def theme_changed(self, _theme: object) -> None:
        """Colours come from the theme: draw the rows again in the new one."""
        if self.loaded:
            self.show_audiences(AudiencesLoaded(self.generation, self.order, self.sizes,
                                                self.states, self.groups))

    # -- helpers
    @property
    def campaign_path(self) -> Path:
        return host(self).campaign_db_path

    def current(self) -> Audience | None:
        table = self.query_one("#audiences-table", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return self.audiences.get(int(key)) if key is not None else None

    def _fail(self, message: str) -> None:
        host(self).show_error(message)

    # -- workers
    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-list")
    def load_audiences(self, generation: int) -> None:
        try:
            conn = open_campaign_reader(self.campaign_path)
            if conn is None:
                self.post_message(AudiencesLoaded(generation, [], {}))
                return
            try:
                audiences, sizes = overview(conn)
                groups = {a.id: split_counts(conn, a.id) for a in audiences if a.splits}
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("load", error_text(exc)))
            return
        self.post_message(AudiencesLoaded(generation, audiences, sizes, self.read_states(audiences),
                                          groups))

    def read_states(self, audiences: list[Audience]) -> dict[int, str]:
        """Which audiences' saved segments changed or went since their last activation (the
        profile store says; when it cannot be read the list still shows)."""
        from store.campaign.activation import definition_states

        try:
            conn = profile_reader(self)
            try:
                return definition_states(conn, audiences, host(self).catalog)
            finally:
                conn.close()
        except Exception:
            return {}

    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-history")
    def load_history(self, audience_id: int) -> None:
        try:
            conn = open_campaign_reader(self.campaign_path)
            records = [] if conn is None else history(conn, audience_id, limit=200)
            if conn is not None:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("history", error_text(exc)))
        else:
            self.post_message(HistoryLoaded(audience_id, records))

    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-write")
    def write_status(self, audience_id: int, status: str) -> None:
        try:
            conn = open_campaign(self.campaign_path)
            try:
                set_status(conn, audience_id, status)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("deactivate", error_text(exc)))
        else:
            self.post_message(CampaignDone(f"Audience {audience_id} is now {status}."))

    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-export")
    def write_export(self, audience_id: int, path: Path) -> None:
        try:
            conn = open_campaign(self.campaign_path, readonly=True)
            try:
                written = export_csv_file(conn, find_audience(conn, audience_id), path)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("export", error_text(exc)))
        else:
            self.post_message(CampaignDone(f"Exported {plural(written, 'member')} to {path}."))

    # -- handlers
    @on(AudiencesLoaded)
    def show_audiences(self, message: AudiencesLoaded) -> None:
        # A load started before a write can finish after the load the write started: a thread
        # worker is not stopped by a newer one, so its late, older list is dropped here.
        if message.generation != self.generation:
            return
        self.loaded = True
        table = self.query_one("#audiences-table", DataTable)
        selected = self.current()
        table.clear()
        self.order = list(message.audiences)
        self.audiences = {a.id: a for a in message.audiences}
        self.sizes = message.sizes
        self.states = message.states
        self.groups = message.groups
        active, warning = tone(self.app, "success"), tone(self.app, "warning")
        for audience in message.audiences:
            status = Text(audience.status, style=active if audience.status == "active" else "dim")
            state = message.states.get(audience.id)
            if state is not None:
                status.append(f" · {'definition changed' if state == 'changed' else 'segment deleted'}",
                              style=warning)
            table.add_row(
                str(audience.id), Text(audience.name, no_wrap=True, overflow="ellipsis"),
                Text(f"{audience.member_count:,}", justify="right"), status,
                short_time(audience.activated_at),
                Text(audience.schedule, style="" if audience.schedule != "off" else "dim"),
                trend(message.sizes.get(audience.id, [])), Text(audience.segment_id, style="dim"),
                key=str(audience.id))
        hint = self.query_one("#audiences-hint", Static)
        if message.audiences:
            hint.update(f"{plural(len(message.audiences), 'audience')} in {shown_path(self.campaign_path)}")
            hint.tooltip = str(self.campaign_path)
        else:
            hint.update("No audience activated yet. Activate a segment from the Segments area, or run"
                        " `audiences-tui activate SEGMENT.yaml`.")
            self.show_detail(None)
        if selected is not None and selected.id in self.audiences:
            table.move_cursor(row=table.get_row_index(str(selected.id)))
        elif message.audiences:
            self.show_detail(message.audiences[0])

    @on(DataTable.RowHighlighted, "#audiences-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None and int(key) in self.audiences:
            self.show_detail(self.audiences[int(key)])

    @on(DataTable.RowSelected, "#audiences-table")
    def selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_members()

    # -- the demo report (F6)
    def report_title(self) -> str:
        audience = self.current()
        return f"Audience: {audience.name}" if audience is not None else "Audiences"

    def report_lines(self) -> list[str]:
        """The highlighted audience: size, status, schedule, groups, rule in words, recent runs."""
        audience = self.current()
        if audience is None:
            return ["No audience activated yet."]
        lines = [f"**{audience.name}** (audience {audience.id}, segment `{audience.segment_id}`):"
                 f" **{audience.member_count:,}** members, {audience.status}.", "",
                 f"Fields: {', '.join(self.field_labels(audience.fields)) or 'none'}.", "",
                 schedule_words(audience) + "."]
        if audience.id in self.groups:
            split = SplitSpec.from_json(audience.splits)
            lines += ["", f"Split {split.describe()}.", ""]
            lines += markdown_table(["Group", "Members"], [
                [name + (" (holdout, never delivered to)" if is_holdout(name) else ""), f"{n:,}"]
                for name, n in self.groups[audience.id].items()])
        try:
            segment, _ = load_segment_text(audience.definition, f"audience {audience.id}")
            lines += ["", "Rule at the last activation:", ""]
            lines += ["    " + line for line in rule_lines(segment.rule, host(self).catalog)]
        except AudiencesError:
            pass  # an audience activated by an older version: its size and runs still say enough
        if self.history_records:
            lines += ["", "Recent runs:", ""]
            lines += markdown_table(["Run (UTC)", "Members", "Added", "Removed"], [
                [short_time(r.activated_at), f"{r.count:,}", f"+{r.added:,}", f"−{r.removed:,}"]
                for r in reversed(self.history_records[-5:])])
        return lines

    def show_detail(self, audience: Audience | None) -> None:
        title = self.query_one("#detail-title", Static)
        chart = self.query_one("#sizes", SizeChart)
        caption = self.query_one("#sizes-caption", Static)
        if audience is None:
            title.update("")
            chart.points = []
            chart.display = False
            caption.update("")
            self.query_one("#history-table", DataTable).clear()
            return
        title.update(Text(f"{audience.name} · {plural(audience.member_count, 'member')}"
                          f" · {audience.status}"))
        sizes = self.sizes.get(audience.id, [])
        sentence, draw = sizes_caption(sizes)
        chart.points = []  # dated when the history arrives
        chart.display = draw
        lines = Text(f"{sentence}\nFields: {', '.join(self.field_labels(audience.fields)) or 'none'}")
        lines.append(f"\n{schedule_words(audience)}")
        if audience.id in self.groups:
            split = SplitSpec.from_json(audience.splits)
            lines.append(f"\nSplit {split.describe()}\n{groups_words(self.groups[audience.id])}")
        state = self.states.get(audience.id)
        if state == "changed":
            lines.append("\nThe segment's definition changed since the last activation;"
                         " r refreshes the audience with it.", style=tone(self.app, "warning"))
        elif state == "deleted":
            lines.append(f"\nThe segment '{audience.segment_id}' is no longer saved; the audience"
                         " keeps its members but cannot be refreshed.", style=tone(self.app, "warning"))
        caption.update(lines)
        self.load_history(audience.id)

    def field_labels(self, fields: Sequence[str]) -> list[str]:
        return [field_label(host(self).catalog, name) for name in fields]

    @on(HistoryLoaded)
    def show_history(self, message: HistoryLoaded) -> None:
        current = self.current()
        if current is None or current.id != message.audience_id:
            return
        self.history_records = list(message.records)
        chart = self.query_one("#sizes", SizeChart)
        if chart.display:
            chart.points = [(activated_moment(r.activated_at), r.count) for r in message.records[-30:]]
        table = self.query_one("#history-table", DataTable)
        table.clear()
        added, removed = tone(self.app, "success"), tone(self.app, "error")
        for record in reversed(message.records):
            table.add_row(
                short_time(record.activated_at), Text(f"{record.count:,}", justify="right"),
                Text(f"+{record.added:,}", style=added, justify="right"),
                Text(f"−{record.removed:,}", style=removed, justify="right"),
                Text(f"{record.duration_ms:,.0f}", justify="right"),
                Text(record.trigger, style="" if record.trigger == "schedule" else "dim"))

    @on(CampaignFailed)
    def failed(self, message: CampaignFailed) -> None:
        if message.what == "load":
            self.query_one("#audiences-hint", Static).update(
                Text(message.message, style=tone(self.app, "error")))
        self._fail(message.message)

    @on(CampaignDone)
    def done(self, message: CampaignDone) -> None:
        self.notify(message.note)
        self.action_reload()

    # -- actions
    def action_reload(self) -> None:
        self.generation += 1
        self.load_audiences(self.generation)

    def action_open_members(self) -> None:
        audience = self.current()
        if audience is not None:
            self.app.push_screen(AudienceMembersScreen(audience))

    def action_refresh_audience(self) -> None:
        audience = self.current()
        if audience is None:
            return

        def finished(result: Any) -> None:
            self.action_reload()

        self.app.push_screen(ActivationScreen(audience, fields=audience.fields, name=audience.name),
                             finished)

    def action_export(self) -> None:
        audience = self.current()
        if audience is None:
            return

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            problem = export_problem(path)
            if problem is not None:
                self._fail(problem)
            elif path.exists():
                self.confirm_replace(audience.id, path)
            else:
                self.write_export(audience.id, path)

        def typed(text: str | None) -> None:
            chosen(Path(text.strip()).expanduser() if text is not None else None)

        self.app.push_screen(TextPrompt(
            f"Export {plural(audience.member_count, 'member')} of {audience.name} as CSV to:",
            f"{audience.segment_id}.csv",  # in the folder the app was started from
            check=lambda text: None if text.strip() else "Type the path of the CSV file.",
            hint="enter: export · escape: cancel · an existing file is replaced only after you"
                 " confirm"), typed)

    def confirm_replace(self, audience_id: int, path: Path) -> None:
        """The export file exists: replace it only when the user says so (as the YAML export does)."""

        def answered(key: str | None) -> None:
            if key == "y":
                self.write_export(audience_id, path)

        self.app.push_screen(ConfirmModal("Replace the file?", f"{path} exists. Replace it?",
                                          [Choice("y", "Replace", "warning"), Choice("n", "Keep")],
                                          warning=True, focus="n"), answered)

    def action_deactivate(self) -> None:
        audience = self.current()
        if audience is None or audience.status == "inactive":
            return

        def answered(key: str | None) -> None:
            if key == "y":
                self.write_status(audience.id, "inactive")

        self.app.push_screen(ConfirmModal(
            f"Deactivate {audience.name}?",
            f"Deactivate audience {audience.id} ({audience.name})? Its members are kept;"
            " refreshing it activates it again.",
            [Choice("y", "Deactivate", "warning"), Choice("n", "Keep active")],
            warning=True, focus="n"), answered)

    def action_schedule(self) -> None:
        audience = self.current()
        if audience is None:
            return

        def chosen(word: str | None) -> None:
            if word is not None and word != audience.schedule:
                self.write_schedule(audience.id, word)

        self.app.push_screen(ScheduleScreen(audience), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-write")
    def write_schedule(self, audience_id: int, word: str) -> None:
        try:
            conn = open_campaign(self.campaign_path)
            try:
                set_schedule(conn, audience_id, word)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("schedule", error_text(exc)))
        else:
            note = "has no schedule" if word == "off" else f"is refreshed {word} by `refresh --due`"
            self.post_message(CampaignDone(f"Audience {audience_id} {note}."))

    def action_overlap(self) -> None:
        from tui.screens.overlap import OverlapScreen

        audience = self.current()
        self.app.push_screen(OverlapScreen("audiences", [str(audience.id)] if audience else []))

    def action_trend(self) -> None:
        from store.campaign.activation import resolve_audience
        from tui.screens.trend import TrendScreen

        audience = self.current()
        if audience is None:
            return
        self.app.push_screen(TrendScreen(
            audience.name, lambda conn, catalog: resolve_audience(conn, audience, catalog),
            what="audience"))

    def action_deliveries(self) -> None:
        audience = self.current()
        if audience is None:
            return
        from tui.screens.delivery import DeliveryScreen

        self.app.push_screen(DeliveryScreen(audience))


def export_problem(path: Path) -> str | None:
    """Why the CSV cannot be written to ``path`` (None when it can be tried)."""
    try:
        if path.is_dir():
            return f"{path} is a folder; give a file name."
        if not path.parent.exists():
            return f"The folder {path.parent} does not exist."
    except OSError as exc:
        return f"Cannot write {path.name[:40]}: {exc.strerror or exc}."
    return None


# ------------------------------------------------------------------ members


class MembersTable(ListTable):
    """One page of an audience's members; home and end go to the first and the last member."""

    HELP_TITLE = "Member list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.open_profile", "Open", id="members.profile",
                tooltip="Open the member's profile"),
        Binding("home,ctrl+home,g", "screen.first_member", "First", id="table.first", show=False,
                tooltip="Jump to the audience's first member"),
        Binding("end,ctrl+end,G", "screen.last_member", "Last", id="table.last", show=False,
                tooltip="Jump to the audience's last member"),
    ]


class AudienceMembersScreen(Screen[None]):
    """One audience's members with their fields, a keyset page at a time."""

    TITLE = "Audience members"
    HELP_TITLE = "Members"
    AUTO_FOCUS = "#members-table"
    DEFAULT_CSS = """
    #members-title { text-style: bold; padding: 0 1; margin: 1 0 0 0; }
    #members-table { height: 1fr; scrollbar-size-vertical: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "next_page", "Next page", id="members.next",
                tooltip=f"The next {MEMBERS_PAGE} members"),
        Binding("p", "previous_page", "Previous page", id="members.previous",
                tooltip=f"The previous {MEMBERS_PAGE} members"),
        Binding("enter", "open_profile", "Open", id="members.profile",
                tooltip="Open the member's profile"),
        Binding("escape", "back", "Back", id="members.back", tooltip="Back to the audiences"),
    ]

    def __init__(self, audience: Audience, page_size: int = MEMBERS_PAGE) -> None:
        super().__init__()
        self.audience = audience
        self.page_size = page_size
        self.members: list[Member] = []
        self.first_row = 0  # index of the first shown member within the audience
        self.total = audience.member_count

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="members-title")
        yield MembersTable(id="members-table", zebra_stripes=True)
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one("#members-table", DataTable)
        table.add_column("Profile id", key="profile_id")
        for name in self.audience.fields:
            table.add_column(field_label(host(self).catalog, name), key=f"field:{name}")
        table.focus()
        self.load_page(None, "first")

    @work(thread=True, exclusive=True, exit_on_error=False, group="audience-members")
    def load_page(self, key: str | None, direction: str) -> None:
        try:
            conn = open_campaign(host(self).campaign_db_path, readonly=True)
            try:
                if direction == "last":
                    page = read_member_page(conn, self.audience.id, before=AFTER_EVERY_ID,
                                            limit=self.page_size)
                elif direction == "previous":
                    page = read_member_page(conn, self.audience.id, before=key, limit=self.page_size)
                else:
                    page = read_member_page(conn, self.audience.id, after=key, limit=self.page_size)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("members", error_text(exc)))
        else:
            self.post_message(MembersLoaded(page.members, direction, page.total))

    @on(MembersLoaded)
    def show_page(self, message: MembersLoaded) -> None:
        self.total = message.total
        if not message.members and message.direction != "first":
            return
        if message.direction == "next":
            self.first_row += len(self.members)
        elif message.direction == "previous":
            self.first_row = max(0, self.first_row - len(message.members))
        elif message.direction == "last":
            self.first_row = max(0, message.total - len(message.members))
        else:
            self.first_row = 0
        self.members = message.members
        table = self.query_one("#members-table", DataTable)
        table.clear()
        for member in message.members:
            table.add_row(Text(member.profile_id),
                          *(Text(_shown(member.fields.get(name))) for name in self.audience.fields),
                          key=member.profile_id)
        if message.direction == "last" and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        last = self.first_row + len(self.members)
        span = f"{self.first_row + 1:,}–{last:,}" if self.members else "none"
        self.query_one("#members-title", Static).update(Text(
            f"{self.audience.name}: members {span} of {self.total:,}"))

    @on(CampaignFailed)
    def failed(self, message: CampaignFailed) -> None:
        self.notify(message.message, severity="error")

    def action_next_page(self) -> None:
        if self.members and self.first_row + len(self.members) < self.total:
            self.load_page(self.members[-1].profile_id, "next")

    def action_previous_page(self) -> None:
        if self.members and self.first_row > 0:
            self.load_page(self.members[0].profile_id, "previous")

    def action_first_member(self) -> None:
        """Home: the audience's first member (the first page, read again if another is shown)."""
        table = self.query_one("#members-table", DataTable)
        if self.first_row > 0:
            self.load_page(None, "first")
        elif table.row_count:
            table.move_cursor(row=0)

    def action_last_member(self) -> None:
        """End: the audience's last member (its last page, read if it is not the one shown)."""
        table = self.query_one("#members-table", DataTable)
        if self.first_row + len(self.members) < self.total:
            self.load_page(None, "last")
        elif table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_profile(self) -> None:
        table = self.query_one("#members-table", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            self.find_profile(str(key))

    @on(DataTable.RowSelected, "#members-table")
    def member_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_profile()

    @work(thread=True, exclusive=True, exit_on_error=False, group="audience-member-profile")
    def find_profile(self, profile_id: str) -> None:
        from store.query.profiles import pk_of

        try:
            conn = profile_reader(self)
            try:
                pk = pk_of(conn, profile_id)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("profile", error_text(exc)))
            return
        if pk is None:
            self.post_message(CampaignFailed(
                "profile", f"Profile {profile_id} is no longer in the profile store."))
            return
        self.app.call_from_thread(host(self).open_profile, pk)


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
