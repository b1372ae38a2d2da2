"""A DataTable that shows a window of a very long keyset-paged list.

The table never holds more than ``max_rows`` rows. As the cursor nears either
edge of what is loaded, a thread worker fetches the next page before or after
the edge key (``source.after(conn, key, n)`` / ``source.before(conn, key, n)``)
and the window slides: rows that fall far behind are dropped, and the cursor
and scroll position are carried over so the screen does not jump.

Every result says which edge key it was fetched for; a result whose edge has
moved on (a reset, a trim) is dropped, so pages never overlap or leave gaps.
Starting a request interrupts the query of the request it replaces.

Columns have fixed widths, so the table skips DataTable's per-cell width
measurement (the dominant cost of adding rows) and stays fast at any size.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable
from textual.worker import get_current_worker

from store.cancel import Cancel
from store.db import describe_sqlite_error
from store.errors import AudiencesError
from tui.widgets.queries import QueryRunner, is_interrupt

Kind = Literal["first", "last", "after", "before"]


class PagedRow(Protocol):
    """A row of a paged list: a unique ``pk`` and its ``key`` in the list's order."""

    @property
    def pk(self) -> int: ...

    @property
    def key(self) -> Hashable: ...


class PageSource(Protocol):
    """Fetches rows around a key, in display order (None: from the start or the end)."""

    def after(self, conn: sqlite3.Connection, key: Any, limit: int) -> Sequence[Any]: ...

    def before(self, conn: sqlite3.Connection, key: Any, limit: int) -> Sequence[Any]: ...


@dataclass(frozen=True)
class _Request:
    """One page request: everything its worker needs, fixed when it was made."""

    generation: int
    kind: Kind
    source: PageSource
    key: Any
    limit: int
    token: Cancel


@dataclass(frozen=True)
class ColumnSpec:
    """A column: its key, header label and fixed width in cells."""

    key: str
    label: str
    width: int


def describe_error(exc: BaseException) -> str:
    """One sentence for a failed query (engine errors carry their own)."""
    if isinstance(exc, AudiencesError):
        return str(exc)
    if isinstance(exc, sqlite3.Error):
        return describe_sqlite_error("the store", exc)
    return f"{type(exc).__name__}: {exc}"


class KeysetTable(DataTable[Text]):
    """A row-cursor DataTable over a keyset-paged source, holding a sliding window of rows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home,g", "first", "First", tooltip="Jump to the first row", show=False),
        Binding("end,G", "last", "Last", tooltip="Jump to the last row", show=False),
        Binding("ctrl+home", "first", "First", show=False),
        Binding("ctrl+end", "last", "Last", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class Busy(Message):
        """Loading started or finished (for a status line or spinner)."""

        def __init__(self, table: KeysetTable, busy: bool) -> None:
            super().__init__()
            self.table = table
            self.busy = busy

        @property
        def control(self) -> KeysetTable:
            return self.table

    class Loaded(Message):
        """A page was shown: which kind, how many rows, how long the query took."""

        def __init__(self, table: KeysetTable, kind: Kind, rows: int, elapsed: float) -> None:
            super().__init__()
            self.table = table
            self.kind = kind
            self.rows = rows
            self.elapsed = elapsed

        @property
        def control(self) -> KeysetTable:
            return self.table

    class Failed(Message):
        """A page could not be read; ``message`` is for the user."""

        def __init__(self, table: KeysetTable, message: str) -> None:
            super().__init__()
            self.table = table
            self.message = message

        @property
        def control(self) -> KeysetTable:
            return self.table

    class _Page(Message, bubble=False):
        """A worker's result, posted to the table itself."""

        def __init__(self, generation: int, kind: Kind, key: Any, rows: Sequence[Any] | None,
                     elapsed: float, error: str | None = None) -> None:
            super().__init__()
            self.generation = generation
            self.kind = kind
            self.key = key
            self.rows = rows
            self.elapsed = elapsed
            self.error = error

    PAGE_SIZE: ClassVar[int] = 200
    """Rows per page."""
    MAX_ROWS: ClassVar[int] = 800
    """The most rows held at once; beyond it the far side of the window is dropped..."""
    KEEP_ROWS: ClassVar[int] = 600
    """...down to this many rows."""
    EDGE: ClassVar[int] = 40
    """Load the next page when the cursor is this close to the edge of the window."""

    def __init__(self, *, page_size: int | None = None, max_rows: int | None = None,
                 keep_rows: int | None = None, edge: int | None = None, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, name=name, id=id, classes=classes)
        self.page_size = page_size or self.PAGE_SIZE
        self.max_rows = max(max_rows or self.MAX_ROWS, 2 * self.page_size)
        self.keep_rows = min(max(keep_rows or self.KEEP_ROWS, self.page_size),
                             self.max_rows - self.page_size)
        self.edge = edge or self.EDGE
        self.runner: QueryRunner | None = None
        self._source: PageSource | None = None
        self._row_cells: Callable[[Any], Sequence[Text]] = lambda row: ()
        self._window: list[Any] = []
        self._more_before = False
        self._more_after = False
        self._generation = 0
        self._pending: set[Kind] = set()
        self._busy_timer: Timer | None = None
        self.last_elapsed: float | None = None

    # ------------------------------------------------------------ public API
    @property
    def window(self) -> list[Any]:
        """The rows loaded now, in display order."""
        return list(self._window)

    @property
    def current(self) -> Any | None:
        """The row under the cursor, if any."""
        if 0 <= self.cursor_row < len(self._window):
            return self._window[self.cursor_row]
        return None

    @property
    def more_before(self) -> bool:
        return self._more_before

    @property
    def more_after(self) -> bool:
        return self._more_after

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    @property
    def generation(self) -> int:
        return self._generation

    def set_columns(self, columns: Sequence[ColumnSpec]) -> None:
        """Replace the columns (the rows go too; call ``show`` next)."""
        self.clear(columns=True)
        self._window = []
        for spec in columns:
            self.add_column(Text(spec.label, no_wrap=True, overflow="ellipsis"), width=spec.width,
                            key=spec.key)

    def show(self, source: PageSource, render: Callable[[Any], Sequence[Text]], *,
             at: Literal["first", "last"] = "first", after: Any = None) -> None:
        """Start listing ``source``: at its first rows, its last rows, or just after key ``after``."""
        self._generation += 1
        self._cancel_all()
        self._source = source
        self._row_cells = render
        self._pending.clear()
        if at == "last":
            self._request("last", None)
        else:
            self._request("first", after)

    def reload(self) -> None:
        """Read the rows again from where the cursor is (after a column or data change)."""
        if self._source is None:
            return
        index = self.cursor_row
        anchor = self._window[index - 1].key if 0 < index <= len(self._window) else None
        if index == 0 and self._more_before and self._window:
            anchor = None  # the first row of the list may have changed; start from the top
        self.show(self._source, self._row_cells, after=anchor)

    def action_first(self) -> None:
        if self._source is None:
            return
        if self._more_before or self.busy:
            self.show(self._source, self._row_cells, at="first")
        else:
            self.move_cursor(row=0)

    def action_last(self) -> None:
        if self._source is None:
            return
        if self._more_after or self.busy:
            self.show(self._source, self._row_cells, at="last")
        elif self._window:
            self.move_cursor(row=len(self._window) - 1)

    def stop(self) -> None:
        """Cancel every running request (moving on, quitting)."""
        self._generation += 1
        self._cancel_all()
        self._pending.clear()

    def on_unmount(self) -> None:
        self.stop()

    # ------------------------------------------------------------ requests
    def _group(self, kind: str) -> str:
        return f"table-{id(self)}:{kind}"

    def _cancel_all(self) -> None:
        for group in ("first", "last", "after", "before"):
            self.workers.cancel_group(self, group)
            if self.runner is not None:
                self.runner.interrupt(self._group(group))

    def _request(self, kind: Kind, key: Any) -> None:
        if self._source is None or self.runner is None or kind in self._pending:
            return
        self._pending.add(kind)
        self._set_busy()
        request = _Request(self._generation, kind, self._source, key, self.page_size + 1,
                           self.runner.start(self._group(kind)))
        if kind == "first":
            self._fetch_first(request)
        elif kind == "last":
            self._fetch_last(request)
        elif kind == "after":
            self._fetch_after(request)
        else:
            self._fetch_before(request)

    def _load(self, request: _Request) -> None:
        """Worker body: read one page and post it back (never touches the widget's state)."""
        generation, kind, source, key, limit = (request.generation, request.kind, request.source,
                                                request.key, request.limit)
        worker = get_current_worker()
        started = time.perf_counter()
        assert self.runner is not None
        try:
            with self.runner.connection(request.token) as conn:
                if worker.is_cancelled:
                    return
                if kind in ("first", "after"):
                    rows = source.after(conn, key, limit)
                else:
                    rows = source.before(conn, key, limit)
        except Exception as exc:
            if worker.is_cancelled or is_interrupt(exc):
                self.post_message(self._Page(generation, kind, key, None, 0.0))
                return
            self.post_message(self._Page(generation, kind, key, None, 0.0, describe_error(exc)))
            return
        self.post_message(self._Page(generation, kind, key, list(rows),
                                     time.perf_counter() - started))

    @work(thread=True, exclusive=True, group="first", exit_on_error=False)
    def _fetch_first(self, request: _Request) -> None:
        self._load(request)

    @work(thread=True, exclusive=True, group="last", exit_on_error=False)
    def _fetch_last(self, request: _Request) -> None:
        self._load(request)

    @work(thread=True, exclusive=True, group="after", exit_on_error=False)
    def _fetch_after(self, request: _Request) -> None:
        self._load(request)

    @work(thread=True, exclusive=True, group="before", exit_on_error=False)
    def _fetch_before(self, request: _Request) -> None:
        self._load(request)

    # ------------------------------------------------------------ results
    @on(_Page)
    def _apply_page(self, message: _Page) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        self._pending.discard(message.kind)
        self._set_busy()
        if message.error is not None:
            self.post_message(self.Failed(self, message.error))
            return
        rows = message.rows
        if rows is None:
            return
        kind = message.kind
        page = self.page_size
        if kind == "first":
            more = len(rows) > page
            self._window = list(rows[:page])
            self._more_after = more
            self._more_before = message.key is not None
            self._rebuild(0, 0)
        elif kind == "last":
            more = len(rows) > page
            self._window = list(rows[-page:]) if more else list(rows)
            self._more_before = more
            self._more_after = False
            last = len(self._window) - 1
            self._rebuild(max(last, 0), max(last, 0))
        elif kind == "after":
            if not self._window or self._window[-1].key != message.key:
                self._check_edges()
                return  # the window moved on since this page was asked for
            self._append(list(rows[:page]), len(rows) > page)
        else:
            if not self._window or self._window[0].key != message.key:
                self._check_edges()
                return
            more = len(rows) > page
            self._prepend(list(rows[-page:]) if more else list(rows), more)
        self.last_elapsed = message.elapsed
        self.post_message(self.Loaded(self, kind, len(rows), message.elapsed))
        self._check_edges()

    def _append(self, rows: list[Any], more: bool) -> None:
        self._more_after = more
        if len(self._window) + len(rows) <= self.max_rows:
            self._window.extend(rows)
            for row in rows:
                self.add_row(*self._row_cells(row), key=str(row.pk))
            self._update_dimensions(())
            return
        window = self._window + rows
        drop = len(window) - self.keep_rows
        self._window = window[drop:]
        self._more_before = True
        self._rebuild(self.cursor_row - drop, round(self.scroll_y) - drop)

    def _prepend(self, rows: list[Any], more: bool) -> None:
        self._more_before = more
        window = rows + self._window
        if len(window) > self.max_rows:
            window = window[: self.keep_rows]
            self._more_after = True
        self._window = window
        self._rebuild(self.cursor_row + len(rows), round(self.scroll_y) + len(rows))

    def _rebuild(self, cursor: int, scroll_y: int) -> None:
        """Show ``self._window`` again, cursor on row ``cursor`` with the view at ``scroll_y``."""
        with self.app.batch_update():
            self.clear()
            for row in self._window:
                self.add_row(*self._row_cells(row), key=str(row.pk))
            self._update_dimensions(())
            if self._window:
                cursor = min(max(cursor, 0), len(self._window) - 1)
                self.scroll_to(y=max(scroll_y, 0), animate=False, immediate=True, force=True)
                self.move_cursor(row=cursor, animate=False)

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._check_edges()

    def _check_edges(self) -> None:
        """Ask for the next page when the cursor nears either edge of the window."""
        if not self._window or self._source is None:
            return
        if "first" in self._pending or "last" in self._pending:
            return
        row = self.cursor_row
        if self._more_after and row >= len(self._window) - self.edge:
            self._request("after", self._window[-1].key)
        if self._more_before and row < self.edge:
            self._request("before", self._window[0].key)

    def _set_busy(self) -> None:
        """Tell the parents about loading, but only once it has lasted long enough to notice."""
        if self._pending:
            if self._busy_timer is None:
                self._busy_timer = self.set_timer(0.15, self._announce_busy)
            return
        if self._busy_timer is not None:
            self._busy_timer.stop()
            self._busy_timer = None
        self.post_message(self.Busy(self, False))

    def _announce_busy(self) -> None:
        self._busy_timer = None
        if self._pending:
            self.post_message(self.Busy(self, True))

    # ------------------------------------------------------------ geometry
    def _update_dimensions(self, new_rows: Any) -> None:
        """Columns have fixed widths and rows one line: the virtual size is arithmetic.

        (DataTable measures every new cell here, which costs far more than
        adding the rows; with fixed geometry there is nothing to measure.)
        """
        if any(column.auto_width for column in self.columns.values()):
            super()._update_dimensions(new_rows)
            return
        width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width, len(self.rows) + header)
