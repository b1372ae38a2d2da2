"""The Segments area: the saved segments, their audience sizes, and the way into the builder.

The list comes from the store at once; each segment's exact audience is
counted afterwards in a thread worker (one after the other, each shown as
it arrives), so a store with slow segments still opens instantly. Every
write (duplicate, rename, delete, import) runs in a worker on its own
connection, then the list reloads. Deleting a segment another one refers to
is refused with the store's reason, naming the segments that use it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from store.engines.base import Connection, Engine
from store.engines.cancel import Cancel
from store.errors import AudiencesError, QueryCancelled
from store.files import output_file
from store.query import audience
from store.schema.catalog import Catalog
from store.schema.values import UTC
from store.segments.library import (
    SavedSegment,
    delete_segment,
    get_segment,
    list_segments,
    referrers,
    rename_segment,
    resolve_saved,
    resolve_segment,
    save_segment,
)
from store.segments.model import Segment, slugify
from store.segments.pql_reader import read_pql
from store.segments.pql_writer import write_pql
from store.segments.yamlio import dump_segment, load_segment_file, read_text_file
from tui.builder.modals import name_in_use
from tui.builder.preview import format_share
from tui.builder.screen import BuilderScreen
from tui.host import host
from tui.messages import WorkerResult
from tui.widgets.dialog import Choice, ConfirmModal, TextPrompt
from tui.widgets.footer import AppFooter
from tui.widgets.format import tone
from tui.widgets.list_table import ListTable


class SegmentsListed(WorkerResult):
    def __init__(self, generation: int, segments: list[SavedSegment]) -> None:
        super().__init__(generation)
        self.segments = segments


class SegmentCounted(WorkerResult):
    """One saved segment's audience size, or why it could not be counted."""

    def __init__(self, generation: int, segment_id: str, count: int | None, total: int,
                 problem: str | None = None) -> None:
        super().__init__(generation)
        self.segment_id = segment_id
        self.count = count
        self.total = total
        self.problem = problem


class SegmentOpened(WorkerResult):
    def __init__(self, generation: int, segment: Segment) -> None:
        super().__init__(generation)
        self.segment = segment


class StoreChanged(WorkerResult):
    """A write finished: ``message`` to show, ``select`` the segment to put the cursor on."""

    def __init__(self, generation: int, message: str, select: str | None = None,
                 reload: bool = True) -> None:
        super().__init__(generation)
        self.message = message
        self.select = select
        self.reload = reload


class ImportWouldReplace(WorkerResult):
    """The imported file's id is saved already: ask before replacing it."""

    def __init__(self, generation: int, path: str, segment_id: str) -> None:
        super().__init__(generation)
        self.path = path
        self.segment_id = segment_id


class DeleteChecked(WorkerResult):
    """The segments that use the one about to be deleted (none: ask to confirm)."""

    def __init__(self, generation: int, segment: SavedSegment, users: list[str]) -> None:
        super().__init__(generation)
        self.segment = segment
        self.users = users


class WriteFailed(WorkerResult):
    def __init__(self, generation: int, title: str, message: str) -> None:
        super().__init__(generation)
        self.title = title
        self.message = message


def changed_text(stamp: str, now: dt.datetime) -> str:
    """``updated_at`` (UTC text) as "today 14:05", "yesterday", "12 days ago" or the date."""
    try:
        moment = dt.datetime.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    days = (now.date() - moment.date()).days
    if days <= 0:
        return f"today {moment:%H:%M}"
    if days == 1:
        return f"yesterday {moment:%H:%M}"
    if days < 30:
        return f"{days} days ago"
    return f"{moment:%Y-%m-%d}"


# Column widths of the segment list (cells; each column has one cell of padding either side).
NAME_MAX = 34
ID_MAX = 30
AUDIENCE_WIDTH = 10
SHARE_WIDTH = 6
CHANGED_WIDTH = 15
DESCRIPTION_MIN = 10
DESCRIPTION_BEFORE_ID = 30  # the Id column is shown only when the description keeps this much
LIST_REQUEST = "segments:list"  # the query runner's group of the list's counts


def segment_columns(room: int, names: list[str], ids: list[str]) -> list[tuple[str, str, int]]:
    """The list's columns (key, label, width) for a table ``room`` cells wide.

    The numbers come right after the name, so they are on screen at any
    width; the description takes whatever room is left (at least
    ``DESCRIPTION_MIN``). The Id column is added only when the description
    keeps ``DESCRIPTION_BEFORE_ID`` cells beside it (the line under the list
    always shows the highlighted segment's id).
    """
    pad = 2
    name_width = min(max([len("Name"), *(len(n) for n in names)]), NAME_MAX)
    id_width = min(max([len("Id"), *(len(i) for i in ids)]), ID_MAX)
    columns = [("name", "Name", name_width), ("audience", "Audience", AUDIENCE_WIDTH),
               ("share", "Share", SHARE_WIDTH), ("changed", "Changed", CHANGED_WIDTH)]
    rest = room - sum(width + pad for _, _, width in columns) - pad
    if rest - (id_width + pad) >= DESCRIPTION_BEFORE_ID:
        columns.insert(1, ("id", "Id", id_width))
        rest -= id_width + pad
    return [*columns, ("description", "Description", max(rest, DESCRIPTION_MIN))]


def sorted_segments(segments: list[SavedSegment]) -> list[SavedSegment]:
    """By name as a person reads it: case and accents aside, then by id."""
    return sorted(segments, key=lambda s: (s.name.casefold(), s.id))


class SegmentTable(ListTable):
    """The saved segments; enter opens the highlighted one in the builder."""

    HELP_TITLE = "Segment list"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.open", "Open", id="segments.open",
                tooltip="Open the segment in the builder"),
    ]

    class Resized(Message):
        """The table's width changed: the columns are laid out again."""

    def on_resize(self) -> None:
        self.post_message(self.Resized())


class SegmentsScreen(Screen[None]):
    """Saved segments with their audience sizes; opens the builder."""

    TITLE = "Segments"
    AUTO_FOCUS = "DataTable"
    HELP_TITLE = "Segments"
    DEFAULT_CSS = """
    SegmentsScreen #segments-title { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    SegmentsScreen #segments-filter { display: none; margin: 0 1; }
    SegmentsScreen #segments-filter.shown { display: block; }
    SegmentsScreen #segments-box { height: 1fr; }
    SegmentsScreen DataTable { height: 1fr; scrollbar-size-vertical: 1; }
    SegmentsScreen #segments-detail { height: auto; max-height: 4; padding: 0 1; }
    SegmentsScreen #segments-empty { padding: 2 4; color: $text-muted; display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New", id="segments.new", tooltip="Build a new segment"),
        Binding("enter", "open", "Open", id="segments.open", tooltip="Open the segment in the builder"),
        # The footer keeps the keys that fit at 120 columns; the others are in the line above
        # the list, the F1 help and the command palette.
        Binding("c", "duplicate", "Duplicate", id="segments.duplicate", show=False,
                tooltip="Save a copy under a new name"),
        Binding("r", "rename", "Rename", id="segments.rename", show=False,
                tooltip="Change the segment's display name"),
        Binding("d,delete", "delete", "Delete", id="segments.delete",
                tooltip="Delete the segment (asks first)"),
        Binding("i", "import", "Import", id="segments.import", show=False,
                tooltip="Import a segment from a YAML file (or PQL: a .pql file)"),
        Binding("x", "export", "Export", id="segments.export", show=False,
                tooltip="Export the segment to a YAML file (or PQL: a .pql file)"),
        Binding("A", "activate", "Activate", id="segments.activate",
                tooltip="Activate the segment's audience"),
        Binding("o", "overlap", "Overlap", id="segments.overlap", show=False,
                tooltip="Compare the segment with others: how many profiles they share"),
        Binding("slash", "filter", "Filter", id="segments.filter", tooltip="Filter the list by name or id"),
        Binding("ctrl+r", "reload", "Recount", id="segments.reload", show=False,
                tooltip="Reload the list and count every audience again"),
        Binding("escape", "clear_filter", "Clear filter", id="segments.clear_filter", show=False),
    ]

    def __init__(self, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.generation = 0
        self.segments: list[SavedSegment] = []
        self.counts: dict[str, tuple[int | None, int, str | None]] = {}
        self.filter_text = ""
        self._select_after_load: str | None = None
        self._columns: list[tuple[str, str, int]] = []
        self.listed_once = False

    # -- app services --------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The profile store, on whichever engine holds it."""
        return host(self).engine

    @property
    def catalog(self) -> Catalog:
        return host(self).catalog

    def read_connection(self) -> Connection:
        return self.engine.open_store(readonly=True)

    def write_connection(self) -> Connection:
        return self.engine.open_store()

    def as_of(self) -> dt.datetime:
        """The app's as-of instant (fixed for demos and tests), else now."""
        return host(self).as_of_instant()

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="segments-toolbar", classes="toolbar"):
            yield Static("Segments", classes="area-title")
            yield Static("", id="segments-title")
        yield Input(placeholder="filter by name or id (escape clears)", id="segments-filter")
        with Vertical(id="segments-box", classes="panel") as box:
            box.border_title = "Saved segments"
            yield SegmentTable(id="segments-table", cursor_type="row", zebra_stripes=True)
            yield Static("No saved segments yet. Press n to build one, or i to import a YAML"
                         " file.", id="segments-empty")
        yield Static("", id="segments-detail")
        yield AppFooter()

    def on_mount(self) -> None:
        self.layout_columns()
        self.app.theme_changed_signal.subscribe(self, self.theme_changed)
        self.table.focus()  # AUTO_FOCUS is skipped while the terminal has no focus
        self.reload()

    def on_unmount(self) -> None:
        host(self).queries.interrupt(LIST_REQUEST)

    def theme_changed(self, _theme: object) -> None:
        if self.is_mounted:
            self.fill_table()

    def wanted_columns(self) -> list[tuple[str, str, int]]:
        """The columns that fit the table's width now (see ``segment_columns``)."""
        table = self.table
        room = table.size.width - table.styles.scrollbar_size_vertical
        return segment_columns(room if room > 0 else 120, [s.name for s in self.segments],
                               [s.id for s in self.segments])

    def layout_columns(self) -> bool:
        """Fit the columns to the table's width; True when they changed (the rows were dropped)."""
        columns = self.wanted_columns()
        if columns == self._columns:
            return False
        self._columns = columns
        table = self.table
        table.clear(columns=True)
        for key, label, width in columns:
            right = key in ("audience", "share")
            table.add_column(Text(label, justify="right") if right else label, key=key, width=width)
        return True

    @on(SegmentTable.Resized)
    def table_resized(self) -> None:
        if self.listed_once and self.wanted_columns() != self._columns:
            self.fill_table()  # keeps the highlighted segment

    def on_screen_resume(self) -> None:
        if self.is_mounted and self.segments is not None:
            self.reload()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(DataTable)

    # -- loading and counting ------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        self.generation += 1
        # A segment asked for earlier (the one the builder just saved) wins over the cursor.
        self._select_after_load = select or self._select_after_load or self.selected_id()
        self.load(self.generation, self.as_of(), host(self).queries.start(LIST_REQUEST))

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-list")
    def load(self, generation: int, as_of: dt.datetime, cancel: Cancel) -> None:
        try:
            conn = self.read_connection()
        except AudiencesError as exc:
            self.post_message(WriteFailed(generation, "Cannot read the store", str(exc)))
            return
        try:
            saved = list_segments(conn)
            self.post_message(SegmentsListed(generation, saved))
            everyone = audience.total(conn, cancel)
            for segment in saved:
                if cancel.cancelled:
                    return
                try:
                    resolved = resolve_saved(conn, segment.id)
                    size = audience.count(conn, resolved, as_of, self.catalog, cancel)
                    self.post_message(SegmentCounted(generation, segment.id, size, everyone))
                except QueryCancelled:
                    return
                except AudiencesError as exc:
                    self.post_message(SegmentCounted(generation, segment.id, None, everyone,
                                                     str(exc)))
        except QueryCancelled:
            return
        finally:
            conn.close()

    @on(SegmentsListed)
    def listed(self, message: SegmentsListed) -> None:
        if message.generation != self.generation:
            return
        self.segments = sorted_segments(message.segments)
        self.listed_once = True
        self.counts = {k: v for k, v in self.counts.items()
                       if k in {s.id for s in message.segments}}
        self.fill_table()

    def visible_segments(self) -> list[SavedSegment]:
        wanted = self.filter_text.lower().strip()
        if not wanted:
            return self.segments
        return [s for s in self.segments
                if wanted in s.name.lower() or wanted in s.id or wanted in s.description.lower()]

    def fill_table(self) -> None:
        table = self.table
        keep = self._select_after_load or self.selected_id()
        self.layout_columns()
        table.clear()
        now = dt.datetime.now(UTC)
        shown = self.visible_segments()
        keys = [key for key, _, _ in self._columns]
        for segment in shown:
            size, everyone, problem = self.counts.get(segment.id, (None, 0, None))
            size_cell, share_cell = self.count_cells(size, everyone, problem)
            cells = {"name": Text(segment.name, style="bold"), "id": Text(segment.id, style="dim"),
                     "audience": size_cell, "share": share_cell,
                     "changed": Text(changed_text(segment.updated_at, now)),
                     "description": Text(segment.description, overflow="ellipsis", no_wrap=True)}
            table.add_row(*(cells[key] for key in keys), key=segment.id)
        self.query_one("#segments-empty").display = not self.segments
        table.display = bool(self.segments)
        if self.segments and self.focused is None:
            table.focus()
        if keep is not None:
            for index, segment in enumerate(shown):
                if segment.id == keep:
                    table.move_cursor(row=index)
                    break
        self._select_after_load = None
        total = len(self.segments)
        title = Text()
        title.append(f"{total} saved segment{'s' if total != 1 else ''}", style="bold")
        if self.filter_text:
            title.append(f"  · {len(shown)} matching {self.filter_text!r}",
                         style=tone(self.app, "warning"))
        title.append("   n new · enter open · c duplicate · r rename · d delete · i import ·"
                     " x export", style="dim")
        self.query_one("#segments-title", Static).update(title)
        self.update_detail()

    def count_cells(self, size: int | None, everyone: int, problem: str | None) -> tuple[Text, Text]:
        if problem is not None:
            return Text("error", style=f"bold {tone(self.app, 'error')}", justify="right"), Text("")
        if size is None:
            return Text("counting…", style="dim italic", justify="right"), Text("")
        share = format_share(size, everyone)
        return (Text(f"{size:,}", style=tone(self.app, "primary"), justify="right"),
                Text(share, style="dim", justify="right"))

    @on(SegmentCounted)
    def counted(self, message: SegmentCounted) -> None:
        if message.generation != self.generation:
            return
        self.counts[message.segment_id] = (message.count, message.total, message.problem)
        if message.segment_id not in {s.id for s in self.visible_segments()}:
            return
        size_cell, share_cell = self.count_cells(message.count, message.total, message.problem)
        self.table.update_cell(message.segment_id, "audience", size_cell)
        self.table.update_cell(message.segment_id, "share", share_cell)
        if message.segment_id == self.selected_id():
            self.update_detail()

    # -- selection ---------------------------------------------------------------------------
    def selected_id(self) -> str | None:
        if not self.is_mounted:
            return None
        table = self.table
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # no rows: nothing is selected
            return None
        return None if key.value is None else str(key.value)

    def selected(self) -> SavedSegment | None:
        wanted = self.selected_id()
        return next((s for s in self.segments if s.id == wanted), None)

    @on(DataTable.RowHighlighted)
    def update_detail(self) -> None:
        segment = self.selected()
        detail = self.query_one("#segments-detail", Static)
        if segment is None:
            detail.update("")
            return
        text = Text()
        text.append(segment.name, style="bold")
        text.append(f" ({segment.id})", style="dim")
        if segment.description:
            text.append(f" — {segment.description}")
        _, _, problem = self.counts.get(segment.id, (None, 0, None))
        if problem:
            text.append(f"\n✗ {problem}", style=tone(self.app, "error"))
        detail.update(text)

    def need_selection(self) -> SavedSegment | None:
        segment = self.selected()
        if segment is None:
            self.notify("No segment selected; press n to build one.", severity="warning")
        return segment

    # -- filter ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#segments-filter", Input)
        box.add_class("shown")
        box.focus()

    @on(Input.Changed, "#segments-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.fill_table()

    @on(Input.Submitted, "#segments-filter")
    def filter_done(self) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#segments-filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.filter_text = ""
        self.fill_table()
        self.table.focus()

    def action_reload(self) -> None:
        self.counts.clear()
        self.reload()

    # -- builder ------------------------------------------------------------------------------
    def action_new(self) -> None:
        self.app.push_screen(BuilderScreen(), self.builder_closed)

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        segment = self.need_selection()
        if segment is not None:
            self.open_segment(segment.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-open")
    def open_segment(self, segment_id: str) -> None:
        try:
            conn = self.read_connection()
        except AudiencesError as exc:
            self.post_message(WriteFailed(0, "Cannot open", str(exc)))
            return
        try:
            found = get_segment(conn, segment_id)
        except AudiencesError as exc:
            self.post_message(WriteFailed(0, "Cannot open", str(exc)))
            return
        finally:
            conn.close()
        if found is None:
            self.post_message(WriteFailed(0, "Cannot open", f"No saved segment {segment_id!r}."))
            return
        self.post_message(SegmentOpened(0, found[0]))

    @on(SegmentOpened)
    def segment_opened(self, message: SegmentOpened) -> None:
        self.app.push_screen(BuilderScreen(message.segment, saved=True), self.builder_closed)

    def builder_closed(self, segment_id: str | None) -> None:
        self.reload(select=segment_id)

    def action_activate(self) -> None:
        segment = self.need_selection()
        if segment is None:
            return
        host(self).action_activate_segment(segment.id)

    def action_overlap(self) -> None:
        from tui.screens.overlap import OverlapScreen

        chosen = self.selected_id()
        self.app.push_screen(OverlapScreen("segments", [chosen] if chosen else []))

    # -- writes -------------------------------------------------------------------------------
    def action_duplicate(self) -> None:
        segment = self.need_selection()
        if segment is None:
            return
        taken = {s.id for s in self.segments}

        def named(name: str | None) -> None:
            if name and name.strip():
                self.duplicate(segment.id, name.strip(), unique_id(slugify(name), taken))

        names = {s.id: s.name for s in self.segments}
        self.app.push_screen(TextPrompt(f"Duplicate {segment.name!r} as", f"Copy of {segment.name}",
                                        check=need_name, warn=lambda n: name_in_use(n, None, names),
                                        hint="The copy gets an id made from its name."), named)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def duplicate(self, source_id: str, name: str, new_id: str) -> None:
        def write(conn: Connection) -> StoreChanged:
            found = get_segment(conn, source_id)
            if found is None:
                raise AudiencesError(f"No saved segment {source_id!r}.")
            copy = replace(found[0], id=new_id, name=name, source=None)
            save_segment(conn, resolve_segment(conn, copy, catalog=self.catalog))
            return StoreChanged(0, f"Saved a copy as {name!r} ({new_id}).", new_id)

        self.write("Not duplicated", write)

    def action_rename(self) -> None:
        segment = self.need_selection()
        if segment is None:
            return

        def named(name: str | None) -> None:
            if name and name.strip() and name.strip() != segment.name:
                self.rename(segment.id, name.strip())

        names = {s.id: s.name for s in self.segments}
        self.app.push_screen(TextPrompt(f"Rename {segment.name!r}", segment.name,
                                        check=need_name,
                                        warn=lambda n: name_in_use(n, segment.id, names),
                                        hint="The id stays (other segments refer to it)."),
                             named)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def rename(self, segment_id: str, name: str) -> None:
        def write(conn: Connection) -> StoreChanged:
            rename_segment(conn, segment_id, name)
            return StoreChanged(0, f"Renamed to {name!r}.", segment_id)

        self.write("Not renamed", write)

    def action_delete(self) -> None:
        """Say which segments use this one (by name) before asking anything; else confirm."""
        segment = self.need_selection()
        if segment is not None:
            self.check_delete(segment)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def check_delete(self, segment: SavedSegment) -> None:
        try:
            conn = self.read_connection()
            try:
                users = referrers(conn, segment.id)
            finally:
                conn.close()
        except AudiencesError as exc:
            self.post_message(WriteFailed(0, "Not deleted", str(exc)))
            return
        self.post_message(DeleteChecked(0, segment, users))

    @on(DeleteChecked)
    def delete_checked(self, message: DeleteChecked) -> None:
        segment = message.segment
        if message.users:
            names = {s.id: s.name for s in self.segments}
            used_by = ", ".join(f"{names.get(u, u)!r} ({u})" for u in message.users)
            self.app.push_screen(ConfirmModal(
                "Segment in use",
                f"{segment.name!r} cannot be deleted: {used_by} use"
                f"{'s' if len(message.users) == 1 else ''} it. Change or delete"
                f" {'that segment' if len(message.users) == 1 else 'those segments'} first.",
                [Choice("escape", "OK")]))
            return

        def answered(choice: str | None) -> None:
            if choice == "y":
                self.delete(segment.id)

        self.app.push_screen(ConfirmModal(
            "Delete segment", f"Delete {segment.name!r} ({segment.id})? This cannot be undone.",
            [Choice("y", "Delete", "error"), Choice("n", "Keep")]), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def delete(self, segment_id: str) -> None:
        def write(conn: Connection) -> StoreChanged:
            delete_segment(conn, segment_id)
            return StoreChanged(0, f"Deleted {segment_id!r}.")

        self.write("Not deleted", write)

    def action_import(self) -> None:
        def chosen(path: str | None) -> None:
            if path and path.strip():
                self.import_file(str(Path(path.strip()).expanduser()), replace_existing=False)

        self.app.push_screen(TextPrompt("Import a segment from a YAML or PQL file", "",
                                        placeholder="path/to/segment.yaml (or .pql)",
                                        check=check_readable), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def import_file(self, path: str, replace_existing: bool) -> None:
        def write(conn: Connection) -> WorkerResult:
            if Path(path).suffix.lower() == ".pql":
                reading = read_pql(read_text_file(path), self.catalog, source=path)
                segment, lines = reading.segment, reading.lines
            else:
                segment, lines = load_segment_file(path)
            if not replace_existing and get_segment(conn, segment.id) is not None:
                return ImportWouldReplace(0, path, segment.id)
            save_segment(conn, resolve_segment(conn, segment, lines, self.catalog))
            return StoreChanged(0, f"Imported {segment.name!r} ({segment.id}).", segment.id)

        self.write("Not imported", write)

    def action_export(self) -> None:
        segment = self.need_selection()
        if segment is None:
            return

        def chosen(path: str | None) -> None:
            if path and path.strip():
                target = Path(path.strip()).expanduser()
                if target.exists():
                    self.confirm_overwrite(segment.id, target)
                else:
                    self.export(segment.id, str(target))

        self.app.push_screen(TextPrompt(f"Export {segment.name!r} to", f"{segment.id}.yaml",
                                        check=check_writable), chosen)

    def confirm_overwrite(self, segment_id: str, target: Path) -> None:
        def answered(choice: str | None) -> None:
            if choice == "y":
                self.export(segment_id, str(target))

        self.app.push_screen(ConfirmModal("Replace file", f"{target} exists. Replace it?",
                                          [Choice("y", "Replace", "error"), Choice("n", "Keep")]),
                             answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments-write")
    def export(self, segment_id: str, path: str) -> None:
        def write(conn: Connection) -> StoreChanged:
            found = get_segment(conn, segment_id)
            if found is None:
                raise AudiencesError(f"No saved segment {segment_id!r}.")
            text = (write_pql(found[0], self.catalog)
                    if Path(path).suffix.lower() == ".pql"
                    else dump_segment(found[0]))
            with output_file(path) as stream:  # a failure is an AudiencesError naming the file
                stream.write(text)
            return StoreChanged(0, f"Exported {segment_id!r} to {path}.", segment_id, reload=False)

        self.write("Not exported", write)

    def write(self, title: str, work: Any) -> None:
        """Run ``work(conn)`` on a fresh read-write connection and post its outcome."""
        try:
            conn = self.write_connection()
        except AudiencesError as exc:
            self.post_message(WriteFailed(0, title, str(exc)))
            return
        try:
            self.post_message(work(conn))
        except AudiencesError as exc:
            self.post_message(WriteFailed(0, title, str(exc)))
        finally:
            conn.close()

    @on(StoreChanged)
    def store_changed(self, message: StoreChanged) -> None:
        self.notify(message.message)
        if message.reload:
            self.reload(select=message.select)

    @on(ImportWouldReplace)
    def import_would_replace(self, message: ImportWouldReplace) -> None:
        def answered(choice: str | None) -> None:
            if choice == "y":
                self.import_file(message.path, replace_existing=True)

        self.app.push_screen(ConfirmModal(
            "Replace segment", f"A segment with the id {message.segment_id!r} is saved already."
            " Replace it with the file's definition?",
            [Choice("y", "Replace", "error"), Choice("n", "Keep")]), answered)

    @on(WriteFailed)
    def write_failed(self, message: WriteFailed) -> None:
        self.notify(message.message, title=message.title, severity="error", timeout=10)


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever is free."""
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def need_name(text: str) -> str | None:
    return None if text.strip() else "A segment needs a name."


def check_readable(text: str) -> str | None:
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser()
    try:
        if not path.exists():
            return f"{path} does not exist"
        if path.is_dir():
            return f"{path} is a folder"
    except OSError as exc:  # e.g. a name longer than the system allows
        return f"{path.name[:40]}…: {exc.strerror or exc}"
    return None


def check_writable(text: str) -> str | None:
    if not text.strip():
        return "Give a file name."
    path = Path(text.strip()).expanduser()
    try:
        if path.is_dir():
            return f"{path} is a folder"
        if not path.parent.exists():
            return f"the folder {path.parent} does not exist"
        path.exists()
    except OSError as exc:  # e.g. a name longer than the system allows
        return f"{path.name[:40]}…: {exc.strerror or exc}"
    if len(path.name.encode()) > 255:
        return "the file name is longer than the system allows"
    return None
