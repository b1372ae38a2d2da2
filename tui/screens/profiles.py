"""The Profiles area: a table of every profile that scrolls through millions without lag.

Rows come in keyset pages (``store.query.profiles``) through the sliding-window
``KeysetTable``; the count line is a separate query. A quick search, a sort
and a saved-segment filter each restart the listing (older requests are
cancelled and their results dropped).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Input, Static

from store.engines.cancel import Cancel
from store.query.profiles import (
    Listing,
    ProfileRow,
    default_columns,
    listing_source,
    search_terms,
    segment_members,
)
from store.schema.catalog import Attribute, Catalog
from store.schema.search import searchable_attributes
from tui.host import AppHost, host
from tui.messages import ListingCounted, QueryFailed, SegmentsListed, WorkerResult
from tui.settings import load_columns, save_columns
from tui.widgets.footer import AppFooter
from tui.widgets.format import cell
from tui.widgets.keyset_table import ColumnSpec, KeysetTable, describe_error
from tui.widgets.paged_table import PagedTable
from tui.widgets.pickers import (
    ALL_PROFILES,
    ColumnPicker,
    SegmentOption,
    SegmentPicker,
    SortChoice,
    SortPicker,
    describe_sort,
)
from tui.widgets.queries import is_interrupt

SEARCH_DEBOUNCE_S = 0.3
# Pages slower than this say so. Every attribute column has an index (store/schema/indexes.py),
# so sorted pages are keyset reads too (0.5-6 ms at 1M profiles); a store whose indexes
# are missing or a search that scans can still be slow.
SLOW_PAGE_S = 0.25

_TYPE_WIDTHS = {"integer": 7, "number": 12, "boolean": 5, "date": 10, "datetime": 16}


SORT_MARK_WIDTH = 2  # " ▲" / " ▼" after the label of the sorted column


def column_width(attribute: Attribute) -> int:
    """A fixed width that fits the attribute's usual values and its label with a sort arrow.

    The arrow's room is kept whether or not the column is sorted, so sorting
    never squeezes the label (``Lifetime valu…``) nor moves the columns.
    """
    name = attribute.name.lower()
    if attribute.type in _TYPE_WIDTHS:
        width = _TYPE_WIDTHS[attribute.type]
    elif "mail" in name:
        width = 30
    elif name == "id" or name.endswith("_id"):
        width = 10
    elif "name" in name:
        width = 14
    elif name in ("country", "gender") or len(name) <= 3:
        width = 8
    else:
        width = 14
    return max(width, min(len(attribute.display_label), 18) + SORT_MARK_WIDTH)



def search_placeholder(labels: list[str], shown: int = 3) -> str:
    """What the search box says it looks in: the first few text attributes, then how many more."""
    named = ", ".join(labels[:shown])
    more = len(labels) - shown
    if more > 0:
        named += f" and {more} more text attribute{'s' if more > 1 else ''}"
    return f"{named} · every word must match"

class ProfileTable(KeysetTable):
    """The profile list: enter opens the profile under the cursor."""

    HELP_TITLE = "Profile list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", id="profiles.open", tooltip="Open the profile's 360° view"),
    ]


class MembersLoaded(WorkerResult):
    """A saved segment's members, evaluated once for the filter."""

    def __init__(self, generation: int, segment_id: str, name: str, members: Sequence[int],
                 elapsed: float) -> None:
        super().__init__(generation)
        self.segment_id = segment_id
        self.name = name
        self.members = members
        self.elapsed = elapsed


class ProfilesScreen(Screen[None]):
    """Browse, search, sort and filter the profiles; enter opens one."""

    TITLE = "Profiles"
    HELP_TITLE = "Profiles"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="profiles.search",
                tooltip="Find profiles by any of their text attributes (names, email, id, ...)"),
        Binding("f", "filter_segment", "Segment", id="profiles.filter_segment",
                tooltip="Show only the members of a saved segment"),
        Binding("c", "columns", "Columns", id="profiles.columns",
                tooltip="Choose the columns to show (kept for this store across restarts)"),
        Binding("s", "sort", "Sort", id="profiles.sort", tooltip="Sort the profiles by a column"),
        Binding("r", "reverse", "Reverse", id="profiles.reverse", show=False,
                tooltip="Reverse the sort order"),
        Binding("escape", "clear", "Clear", id="profiles.clear",
                tooltip="Clear the search and the segment filter"),
        Binding("ctrl+r", "refresh", "Refresh", id="profiles.refresh", show=False,
                tooltip="Read the profiles again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.columns: list[str] = []
        self.sort = SortChoice(None, False)
        self.search = ""
        self.segment_id: str | None = None
        self.segment_name = ""
        self.members: Sequence[int] | None = None
        self._generations = {"count": 0, "segments": 0, "members": 0}
        self._count_text = ""
        self._count_busy = False
        self._table_busy = False
        self._first_page_pending = False
        self._note = ""
        self._search_timer: Timer | None = None

    # ------------------------------------------------------------ layout
    @property
    def audiences(self) -> AppHost:
        """The app's services (tui/host.py)."""
        return host(self)

    @property
    def catalog(self) -> Catalog:
        return self.audiences.catalog

    @property
    def table(self) -> ProfileTable:
        return self.query_one(ProfileTable)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="toolbar", classes="toolbar"):
            yield Static("Profiles", classes="area-title")
            yield Static("", id="filter-chip", classes="chip")
            yield Static("", id="sort-chip", classes="chip muted")
        with Horizontal(id="search-bar", classes="search-bar"):
            yield Static("Search", classes="search-label")
            yield Input(placeholder="name, email or id — every word must match", id="search")
        yield ProfileTable(id="profiles")
        with Horizontal(classes="status-bar"):
            yield Static("", id="count", classes="status-count")
            yield Static("", id="timing", classes="status-timing")
        yield AppFooter()

    def on_mount(self) -> None:
        self.table.runner = self.audiences.queries
        self.query_one("#search", Input).placeholder = search_placeholder(self.search_fields())
        saved = [c for c in load_columns(self.store_key) or [] if c in self.catalog.attributes]
        self.columns = saved or default_columns(self.catalog)
        self._restart(columns_changed=True)
        self.table.focus()

    @property
    def store_key(self) -> str:
        """How the settings file names this store (its path or URL, never a password)."""
        return self.audiences.engine.display

    def _next(self, what: str) -> int:
        """A new generation for requests of kind ``what``; older results are dropped."""
        self._generations[what] += 1
        return self._generations[what]

    # ------------------------------------------------------------ listing
    def _listing(self) -> Listing:
        return Listing(tuple(self.columns), self.sort.column, self.sort.descending, self.search)

    def _render_row(self, row: ProfileRow) -> list[Text]:
        attributes = self.catalog.attributes
        return [cell(value, attributes[name].type) for name, value in zip(self.columns, row.values,
                                                                           strict=True)]

    def _column_specs(self) -> list[ColumnSpec]:
        specs = []
        for name in self.columns:
            attribute = self.catalog.attributes[name]
            label = attribute.display_label
            if self.sort.column == name:
                label += " ▼" if self.sort.descending else " ▲"
            width = column_width(attribute)
            grow = width if attribute.type == "string" else 0  # strings may double when there is room
            specs.append(ColumnSpec(name, label, width, grow))
        return specs

    def _restart(self, *, columns_changed: bool = False, keep_position: bool = False) -> None:
        """Show the current listing from the top (or from the cursor) and count it.

        A new search or segment filter changes which rows there are: the old
        rows go at once (they do not match the new words) and the status line
        says "searching…" until the first page of the new listing arrives. A
        new sort or new columns keep the position where they can.
        """
        for name in list(self.columns):
            if name not in self.catalog.attributes:
                self.columns.remove(name)
        if self.sort.column and self.sort.column not in self.columns:
            self.sort = SortChoice(None, False)
        source = listing_source(self.catalog, self._listing(), self.audiences.today(), self.members)
        table = self.table
        if columns_changed:
            anchor = None
            if keep_position and table.current is not None and table.cursor_row > 0:
                anchor = table.window[table.cursor_row - 1].key
            table.clear()  # the rows shown were made for the old columns
            table.set_columns(self._column_specs())
            table.show(source, self._render_row, after=anchor)
        else:
            table.clear()
            table.show(source, self._render_row)
        self._first_page_pending = True
        self._update_chips()
        self._start_count(source)

    def _start_count(self, source: Any) -> None:
        self._count_busy = True
        self._count_text = ""
        self._update_status()
        token = self.audiences.queries.start("profiles:count")
        self._count(self._next("count"), source, token)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, generation: int, source: Any, token: Cancel) -> None:
        started = time.perf_counter()
        try:
            with self.audiences.queries.connection(token) as conn:
                count, capped = source.count(conn)
        except Exception as exc:
            if not is_interrupt(exc) and not token.cancelled:
                message = describe_error(exc, self.audiences.engine)
                self.post_message(QueryFailed(generation, "count", message))
            return
        self.post_message(ListingCounted(generation, count, capped, time.perf_counter() - started))

    @on(ListingCounted)
    def _counted(self, message: ListingCounted) -> None:
        if message.generation != self._generations["count"]:
            return
        self._count_busy = False
        self._count_text = self._describe_count(message.count, message.capped)
        self._update_status()

    @on(QueryFailed)
    def _failed(self, message: QueryFailed) -> None:
        if message.generation != self._generations.get(message.what):
            return
        if message.what == "count":
            self._count_busy = False
            self._count_text = "count unavailable"
            self._update_status()
        elif message.what == "members":
            self._note = ""
            self._update_status()
        self.audiences.show_error(message.message)

    def _describe_count(self, count: int, capped: bool) -> str:
        if count == 0:
            return self._empty_text()
        number = f"{count:,}+" if capped else f"{count:,}"
        terms = search_terms(self.search)
        if terms:
            text = f"{number} matching '{' '.join(terms)}'"
            if self.segment_id:
                text += f" in '{self.segment_name}'"
            return text
        if self.segment_id:
            return f"{number} in '{self.segment_name}'"
        return f"{number} profile" + ("" if count == 1 and not capped else "s")

    def _update_chips(self) -> None:
        self.refresh_bindings()
        chip = self.query_one("#filter-chip", Static)
        parts = []
        if self.segment_id:
            parts.append(f"Segment: {self.segment_name}")
        if search_terms(self.search):
            parts.append(f"Search: {self.search.strip()}")
        chip.update(Text("  ·  ".join(parts)) if parts else "")
        chip.display = bool(parts)
        sort_chip = self.query_one("#sort-chip", Static)
        sort_chip.update(f"Sorted by {describe_sort(self.catalog, self.sort).lower()}"
                         if self.sort.column is None else
                         f"Sorted by {describe_sort(self.catalog, self.sort)}")

    def _update_status(self) -> None:
        count = self.query_one("#count", Static)
        if self._note:
            count.update(Text(self._note, style="italic"))
        elif self._first_page_pending and not self.table.window:
            waiting = "searching…" if search_terms(self.search) or self.segment_id else "loading…"
            count.update(Text(waiting, style="dim italic"))
        elif self._count_busy:
            count.update(Text("counting…", style="dim italic"))
        else:
            count.update(Text(self._count_text, style="bold"))
        timing = self.query_one("#timing", Static)
        elapsed = self.table.last_elapsed
        if self._table_busy and not (self._first_page_pending and not self.table.window):
            timing.update(Text("loading…", style="dim italic"))
        elif elapsed is not None and elapsed >= SLOW_PAGE_S:
            timing.update(Text(f"last page took {elapsed:.1f} s", style="dim"))
        else:
            timing.update("")

    @on(KeysetTable.Busy)
    def _table_busy_changed(self, message: KeysetTable.Busy) -> None:
        self._table_busy = message.busy
        self._update_status()

    @on(KeysetTable.Loaded)
    def _table_loaded(self, message: KeysetTable.Loaded) -> None:
        if message.kind in ("first", "last"):
            self._first_page_pending = False
            if not message.table.window:
                self._count_busy = False
                self._count_text = self._empty_text()
        self._update_status()

    def _empty_text(self) -> str:
        terms = search_terms(self.search)
        if terms:
            return f"No profile matches '{' '.join(terms)}'" + (
                f" in '{self.segment_name}'" if self.segment_id else "")
        if self.segment_id:
            return f"'{self.segment_name}' has no members"
        return "The store has no profiles yet"

    @on(KeysetTable.Failed)
    def _table_failed(self, message: KeysetTable.Failed) -> None:
        self._first_page_pending = False
        self._update_status()
        self.audiences.show_error(message.message)

    @on(PagedTable.RowSelected)
    def _open(self, event: PagedTable.RowSelected) -> None:
        event.stop()
        row = self.table.current
        if row is not None:
            self.audiences.open_profile(row.pk, self.segment_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape is only offered when there is something to clear."""
        if action == "clear":
            bar = self.query("#search-bar")
            searching = bool(bar) and bar.first().has_class("-active")
            return bool(self.search or self.segment_id or searching)
        return True

    # ------------------------------------------------------------ search
    def action_search(self) -> None:
        bar = self.query_one("#search-bar")
        bar.add_class("-active")
        bar.display = True  # now, not at the next style update: the box takes focus at once
        # Focus now rather than with ``focus()`` (queued behind the keys already typed): "/q"
        # typed or pasted fast must search for "q", not quit.
        self.set_focus(self.query_one("#search", Input))
        self.refresh_bindings()

    @on(Input.Changed, "#search")
    def _search_typed(self, event: Input.Changed) -> None:
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DEBOUNCE_S, self._apply_search)

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._apply_search()
        self.table.focus()

    def _apply_search(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        text = self.query_one("#search", Input).value
        if text.strip() == self.search.strip():
            return
        self.search = text
        self._restart()

    def search_fields(self) -> list[str]:
        """The labels of the attributes a search looks in (every text attribute)."""
        return [a.display_label for a in searchable_attributes(self.catalog)]

    # ------------------------------------------------------------ clear / refresh
    def action_clear(self) -> None:
        search = self.query_one("#search", Input)
        bar = self.query_one("#search-bar")
        changed = False
        if search.has_focus and search.value:
            search.value = ""
        if self.search:
            self.search = ""
            changed = True
        search.value = ""
        bar.remove_class("-active")
        if self.segment_id and not search.has_focus:
            self.segment_id = None
            self.segment_name = ""
            self.members = None
            changed = True
        self.table.focus()
        self.refresh_bindings()
        if changed:
            self._restart()

    def action_refresh(self) -> None:
        self.audiences.refresh_catalog()
        if self.segment_id:
            self._load_members(self.segment_id)
        else:
            self._restart(columns_changed=True, keep_position=True)

    # ------------------------------------------------------------ columns and sort
    def action_columns(self) -> None:
        def chosen(columns: object) -> None:
            if isinstance(columns, list) and columns != self.columns:
                self.columns = [str(c) for c in columns]
                self._restart(columns_changed=True, keep_position=True)
                problem = save_columns(self.store_key, self.columns)
                if problem:
                    self.notify(problem, severity="warning")

        self.app.push_screen(ColumnPicker(self.catalog, self.columns), chosen)

    def action_sort(self) -> None:
        def chosen(choice: object) -> None:
            if isinstance(choice, SortChoice) and choice != self.sort:
                self.sort = choice
                self._restart(columns_changed=True)

        self.app.push_screen(SortPicker(self.catalog, self.columns, self.sort), chosen)

    @on(PagedTable.HeaderSelected)
    def _header_clicked(self, event: PagedTable.HeaderSelected) -> None:
        """A click on a column header sorts by it; a second click reverses the order."""
        event.stop()
        descending = self.sort.column == event.column_key and not self.sort.descending
        self.sort = SortChoice(event.column_key, descending)
        self._restart(columns_changed=True)

    def action_reverse(self) -> None:
        self.sort = SortChoice(self.sort.column, not self.sort.descending)
        self._restart(columns_changed=True)

    # ------------------------------------------------------------ segment filter
    def action_filter_segment(self) -> None:
        token = self.audiences.queries.start("profiles:segments")
        self._list_segments(self._next("segments"), token)

    @work(thread=True, exclusive=True, group="segments", exit_on_error=False)
    def _list_segments(self, generation: int, token: Cancel) -> None:
        from store.segments.library import list_segments

        try:
            with self.audiences.queries.connection(token) as conn:
                found = [SegmentOption(s.id, s.name, s.description) for s in list_segments(conn)]
        except Exception as exc:
            if not is_interrupt(exc):
                message = describe_error(exc, self.audiences.engine)
                self.post_message(QueryFailed(generation, "segments", message))
            return
        self.post_message(SegmentsListed(generation, found))

    @on(SegmentsListed)
    def _segments_listed(self, message: SegmentsListed) -> None:
        if message.generation != self._generations["segments"]:
            return
        if not message.segments:
            self.notify("No saved segments yet: build one in Segments (F3) and save it.",
                        title="Segment filter")
            return

        def chosen(segment_id: object) -> None:
            if segment_id is None:
                return
            if segment_id == ALL_PROFILES:
                if self.segment_id is not None:
                    self.segment_id = None
                    self.segment_name = ""
                    self.members = None
                    self._restart()
                return
            self._load_members(str(segment_id))

        self.app.push_screen(SegmentPicker(message.segments, self.segment_id), chosen)

    def _load_members(self, segment_id: str) -> None:
        generation = self._next("members")
        self._note = f"Finding the members of '{segment_id}'…"
        self._update_status()
        token = self.audiences.queries.start("profiles:members")
        self._members(generation, segment_id, token)

    def filter_by_segment(self, segment_id: str) -> None:
        """Show only the members of the saved segment ``segment_id`` (also used by other areas)."""
        self._load_members(segment_id)

    @work(thread=True, exclusive=True, group="members", exit_on_error=False)
    def _members(self, generation: int, segment_id: str, token: Cancel) -> None:
        from store.segments.library import resolve_saved

        started = time.perf_counter()
        try:
            with self.audiences.queries.connection(token) as conn:
                resolved = resolve_saved(conn, segment_id)
                members = segment_members(conn, self.catalog, resolved, self.audiences.as_of_instant())
        except Exception as exc:
            if not is_interrupt(exc):
                message = describe_error(exc, self.audiences.engine)
                self.post_message(QueryFailed(generation, "members", message))
            return
        self.post_message(MembersLoaded(generation, segment_id, resolved.segment.name, members,
                                        time.perf_counter() - started))

    @on(MembersLoaded)
    def _members_loaded(self, message: MembersLoaded) -> None:
        if message.generation != self._generations["members"]:
            return
        self._note = ""
        self.segment_id = message.segment_id
        self.segment_name = message.name
        self.members = message.members
        self._restart()
