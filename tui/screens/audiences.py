"""The Audiences area: activated audiences in the campaign store.

A table of audiences (size, last activation, a trend of sizes) beside the
highlighted audience's detail: a sparkline of its sizes over past activations
and its history with added/removed per activation. Enter pages through the
members with their fields; r refreshes (review, then activate at now); e
exports CSV; x deactivates; m opens its deliveries.

All reads and writes run in thread workers on their own connections; the
workers post messages and the handlers update the widgets.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Sparkline, Static

from store.campaign import (
    ActivationRecord,
    Audience,
    Member,
    export_csv_file,
    find_audience,
    history,
    open_campaign,
    overview,
    read_member_page,
    set_status,
)
from tui.screens.activation import ActivationScreen, campaign_path_of, error_text, profile_reader

BLOCKS = "▁▂▃▄▅▆▇█"
MEMBERS_PAGE = 100
TREND_POINTS = 12

def trend(sizes: list[int], width: int = TREND_POINTS) -> str:
    """A one-line text sparkline of the last ``width`` sizes (for a table cell)."""
    points = sizes[-width:]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high == low:
        return BLOCKS[3] * len(points)
    return "".join(BLOCKS[round((p - low) / (high - low) * (len(BLOCKS) - 1))] for p in points)


def open_campaign_reader(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to the campaign store, or None when it does not exist yet."""
    if not path.exists():
        return None
    return open_campaign(path, readonly=True)


# ------------------------------------------------------------------ messages


class AudiencesLoaded(Message):
    def __init__(self, audiences: list[Audience], sizes: dict[int, list[int]]) -> None:
        super().__init__()
        self.audiences = audiences
        self.sizes = sizes


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


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no, with the question in words."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    #confirm-dialog { width: 70; height: auto; border: thick $warning; background: $surface;
                      padding: 1 2; }
    #confirm-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    #confirm-buttons Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(Text(self.question))
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes", id="yes", variant="warning")
                yield Button("No", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ExportScreen(ModalScreen[Path | None]):
    """Ask where to write the CSV export."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    #export-dialog { width: 80; height: auto; border: thick $primary; background: $surface;
                     padding: 1 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, default: Path, members: int) -> None:
        super().__init__()
        self.default = default
        self.members = members

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog"):
            yield Label(f"Export {self.members:,} members as CSV to:")
            yield Input(str(self.default), id="export-path")
            yield Label("enter: export · escape: cancel", classes="hint")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(Path(text).expanduser())

    def action_cancel(self) -> None:
        self.dismiss(None)


# ------------------------------------------------------------------ the area


class AudiencesScreen(Screen[None]):
    """Activated audiences with their sizes and history."""

    DEFAULT_CSS = """
    #audiences-body { height: 1fr; }
    #audiences-left { width: 3fr; }
    #audiences-detail { width: 2fr; border-left: solid $primary-darken-2; padding: 0 1; }
    #audiences-hint { color: $text-muted; padding: 0 1; }
    #detail-title { text-style: bold; }
    #sizes { height: 4; margin: 1 0 0 0; }
    #sizes-caption { color: $text-muted; margin-bottom: 1; }
    #history-table { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_members", "Members", id="audiences.members"),
        Binding("r", "refresh_audience", "Refresh", id="audiences.refresh"),
        Binding("e", "export", "Export CSV", id="audiences.export"),
        Binding("x", "deactivate", "Deactivate", id="audiences.deactivate"),
        Binding("m", "deliveries", "Deliveries", id="audiences.deliveries"),
        Binding("ctrl+r", "reload", "Reload", id="audiences.reload"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audiences: dict[int, Audience] = {}
        self.sizes: dict[int, list[int]] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="audiences-body"):
            with Vertical(id="audiences-left"):
                yield Static("Loading audiences…", id="audiences-hint")
                yield DataTable(id="audiences-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="audiences-detail"):
                yield Static("", id="detail-title")
                yield Sparkline([], id="sizes")
                yield Static("", id="sizes-caption")
                yield DataTable(id="history-table", cursor_type="row", show_cursor=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#audiences-table", DataTable)
        table.add_column("Id", key="id")
        table.add_column("Audience", key="name")
        table.add_column("Segment", key="segment")
        table.add_column("Status", key="status")
        table.add_column(Text("Members", justify="right"), key="members")
        table.add_column("Last activation", key="activated")
        table.add_column("Trend", key="trend")
        history_table = self.query_one("#history-table", DataTable)
        history_table.add_column("Activated", key="at")
        history_table.add_column(Text("Count", justify="right"), key="count")
        history_table.add_column(Text("Added", justify="right"), key="added")
        history_table.add_column(Text("Removed", justify="right"), key="removed")
        history_table.add_column(Text("ms", justify="right"), key="ms")
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.action_reload()

    # -- helpers
    @property
    def campaign_path(self) -> Path:
        return campaign_path_of(self.app)

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
        show_error = getattr(self.app, "show_error", None)
        if callable(show_error):
            show_error(message)
        else:
            self.notify(message, severity="error")

    # -- workers
    @work(thread=True, exclusive=True, exit_on_error=False, group="audiences-list")
    def load_audiences(self) -> None:
        try:
            conn = open_campaign_reader(self.campaign_path)
            if conn is None:
                self.post_message(AudiencesLoaded([], {}))
                return
            try:
                audiences, sizes = overview(conn)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(CampaignFailed("load", error_text(exc)))
        else:
            self.post_message(AudiencesLoaded(audiences, sizes))

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
            self.post_message(CampaignDone(f"Exported {written:,} members to {path}."))

    # -- handlers
    @on(AudiencesLoaded)
    def show_audiences(self, message: AudiencesLoaded) -> None:
        self.loaded = True
        table = self.query_one("#audiences-table", DataTable)
        selected = self.current()
        table.clear()
        self.audiences = {a.id: a for a in message.audiences}
        self.sizes = message.sizes
        for audience in message.audiences:
            status = Text(audience.status, style="green" if audience.status == "active" else "dim")
            table.add_row(
                str(audience.id), Text(audience.name), Text(audience.segment_id), status,
                Text(f"{audience.member_count:,}", justify="right"), audience.activated_at,
                trend(message.sizes.get(audience.id, [])), key=str(audience.id))
        hint = self.query_one("#audiences-hint", Static)
        if message.audiences:
            hint.update(f"{len(message.audiences)} audiences in {self.campaign_path}")
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

    def show_detail(self, audience: Audience | None) -> None:
        title = self.query_one("#detail-title", Static)
        sparkline = self.query_one("#sizes", Sparkline)
        caption = self.query_one("#sizes-caption", Static)
        if audience is None:
            title.update("")
            sparkline.data = []
            caption.update("")
            self.query_one("#history-table", DataTable).clear()
            return
        title.update(Text(f"{audience.name} · {audience.member_count:,} members · {audience.status}"))
        sizes = self.sizes.get(audience.id, [])
        sparkline.data = [float(s) for s in sizes]
        if sizes:
            caption.update(f"Size over the last {len(sizes)} activations: {min(sizes):,} – {max(sizes):,}"
                           f" · fields: {', '.join(audience.fields) or 'none'}")
        self.load_history(audience.id)

    @on(HistoryLoaded)
    def show_history(self, message: HistoryLoaded) -> None:
        current = self.current()
        if current is None or current.id != message.audience_id:
            return
        table = self.query_one("#history-table", DataTable)
        table.clear()
        for record in reversed(message.records):
            table.add_row(
                record.activated_at, Text(f"{record.count:,}", justify="right"),
                Text(f"+{record.added:,}", style="green", justify="right"),
                Text(f"−{record.removed:,}", style="red", justify="right"),
                Text(f"{record.duration_ms:,.0f}", justify="right"))

    @on(CampaignFailed)
    def failed(self, message: CampaignFailed) -> None:
        if message.what == "load":
            self.query_one("#audiences-hint", Static).update(Text(message.message, style="red"))
        self._fail(message.message)

    @on(CampaignDone)
    def done(self, message: CampaignDone) -> None:
        self.notify(message.note)
        self.action_reload()

    # -- actions
    def action_reload(self) -> None:
        self.load_audiences()

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
            if path is not None:
                self.write_export(audience.id, path)

        self.app.push_screen(ExportScreen(Path.cwd() / f"{audience.segment_id}.csv",
                                          audience.member_count), chosen)

    def action_deactivate(self) -> None:
        audience = self.current()
        if audience is None or audience.status == "inactive":
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.write_status(audience.id, "inactive")

        self.app.push_screen(ConfirmScreen(
            f"Deactivate audience {audience.id} ({audience.name})? Its members are kept;"
            " refreshing it activates it again."), answered)

    def action_deliveries(self) -> None:
        audience = self.current()
        if audience is None:
            return
        from tui.screens.delivery import DeliveryScreen

        self.app.push_screen(DeliveryScreen(audience))


# ------------------------------------------------------------------ members


class AudienceMembersScreen(Screen[None]):
    """One audience's members with their fields, a keyset page at a time."""

    DEFAULT_CSS = """
    #members-title { text-style: bold; padding: 0 1; }
    #members-table { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "next_page", "Next page", id="members.next"),
        Binding("p", "previous_page", "Previous page", id="members.previous"),
        Binding("enter", "open_profile", "Open profile", id="members.profile"),
        Binding("escape", "back", "Back", id="members.back"),
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
        yield DataTable(id="members-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#members-table", DataTable)
        table.add_column("Profile id", key="profile_id")
        for name in self.audience.fields:
            table.add_column(name, key=f"field:{name}")
        self.load_page(None, "first")

    @work(thread=True, exclusive=True, exit_on_error=False, group="audience-members")
    def load_page(self, key: str | None, direction: str) -> None:
        try:
            conn = open_campaign(campaign_path_of(self.app), readonly=True)
            try:
                if direction == "previous":
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
        else:
            self.first_row = 0
        self.members = message.members
        table = self.query_one("#members-table", DataTable)
        table.clear()
        for member in message.members:
            table.add_row(Text(member.profile_id),
                          *(Text(_shown(member.fields.get(name))) for name in self.audience.fields),
                          key=member.profile_id)
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

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_profile(self) -> None:
        table = self.query_one("#members-table", DataTable)
        if table.row_count == 0 or not callable(getattr(self.app, "open_profile", None)):
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            self.find_profile(str(key))

    @on(DataTable.RowSelected, "#members-table")
    def member_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_profile()

    @work(thread=True, exclusive=True, exit_on_error=False, group="audience-member-profile")
    def find_profile(self, profile_id: str) -> None:
        from store.profiles import pk_of

        try:
            conn = profile_reader(self.app)
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
        self.app.call_from_thread(self.app.open_profile, pk)  # type: ignore[attr-defined]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
