"""A table that shows a window of a very long keyset-paged list.

The table never holds more than ``MAX_ROWS`` rows. As the cursor (or the
view) nears either edge of what is loaded, a thread worker fetches the next
page before or after the edge key (``source.after(conn, key, n)`` /
``source.before(conn, key, n)``) and the window slides: rows that fall far
behind are dropped, and the cursor and scroll position are carried over so
the screen does not jump.

Every result says which edge key it was fetched for; a result whose edge
has moved on (a reset, a trim) is dropped, so pages never overlap or leave
gaps. Starting a request cancels the query of the request it replaces.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.timer import Timer

from store.engines.base import Connection, Engine
from store.engines.cancel import Cancel
from store.errors import AudiencesError
from tui.host import host
from tui.widgets.paged_table import GROW_ALL, ColumnSpec, PagedTable
from tui.widgets.queries import QueryRunner, is_interrupt

__all__ = ["GROW_ALL", "ColumnSpec", "KeysetTable", "PageSource", "PagedRow", "describe_error"]

Kind = Literal["first", "last", "after", "before"]


class PagedRow(Protocol):
    """A row of a paged list: a unique ``pk`` and its ``key`` in the list's order."""

    @property
    def pk(self) -> int: ...

    @property
    def key(self) -> Hashable: ...


class PageSource(Protocol):
    """Fetches rows around a key, in display order (None: from the start or the end)."""

    def after(self, conn: Connection, key: Any, limit: int) -> Sequence[Any]: ...

    def before(self, conn: Connection, key: Any, limit: int) -> Sequence[Any]: ...


@dataclass(frozen=True)
class _Request:
    """One page request: everything its worker needs, fixed when it was made."""

    generation: int
    kind: Kind
    source: PageSource
    key: Any
    limit: int
    token: Cancel


def describe_error(exc: BaseException, engine: Engine | None = None) -> str:
    """One sentence for a failed query (engine errors carry their own; a database's own error
    is described by the engine of the store, when known)."""
    if isinstance(exc, AudiencesError):
        return str(exc)
    if isinstance(exc, sqlite3.Error):  # every engine raises sqlite3's DB-API classes
        return engine.describe_error(exc) if engine is not None else f"The store: {exc}"
    return f"{type(exc).__name__}: {exc}"


class KeysetTable(PagedTable):
    """A cursor table over a keyset-paged source, holding a sliding window of its rows."""

    PAGE_SIZE: ClassVar[int] = 200
    """Rows per page."""
    MAX_ROWS: ClassVar[int] = 1000
    """The most rows held at once; beyond it the far side of the window is dropped..."""
    KEEP_ROWS: ClassVar[int] = 600
    """...down to this many rows."""
    EDGE: ClassVar[int] = 60
    """Load the next page when the cursor or the view is this close to the edge of the window."""

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

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.page_size = self.PAGE_SIZE
        self.max_rows = max(self.MAX_ROWS, 2 * self.page_size)
        self.keep_rows = min(max(self.KEEP_ROWS, self.page_size), self.max_rows - self.page_size)
        self.edge = self.EDGE
        self.runner: QueryRunner | None = None
        self._source: PageSource | None = None
        self._row_cells: Callable[[Any], Sequence[Text]] = lambda row: ()
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
        return list(self.rows)

    @property
    def current(self) -> Any | None:
        """The row under the cursor, if any."""
        rows = self.rows
        return rows[self.cursor_row] if 0 <= self.cursor_row < len(rows) else None

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

    def show(self, source: PageSource, render: Callable[[Any], Sequence[Text]], *,
             at: Literal["first", "last"] = "first", after: Any = None) -> None:
        """Start listing ``source``: at its first rows, its last rows, or just after key ``after``.

        The rows shown stay until the new ones arrive (no flicker); their
        results, and those of every older request, are dropped.
        """
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
        rows = self.rows
        anchor = rows[index - 1].key if 0 < index <= len(rows) else None
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
        else:
            self.move_cursor(row=self.row_count - 1)

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
        started = time.perf_counter()
        assert self.runner is not None
        try:
            with self.runner.connection(request.token) as conn:
                if request.token.cancelled:
                    return
                if request.kind in ("first", "after"):
                    rows = request.source.after(conn, request.key, request.limit)
                else:
                    rows = request.source.before(conn, request.key, request.limit)
        except Exception as exc:
            error = (None if request.token.cancelled or is_interrupt(exc)
                     else describe_error(exc, host(self).engine))
            self.post_message(self._Page(request.generation, request.kind, request.key, None,
                                         0.0, error))
            return
        self.post_message(self._Page(request.generation, request.kind, request.key, list(rows),
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
        more = len(rows) > page
        if kind == "first":
            self._more_after = more
            self._more_before = message.key is not None
            self.set_rows(rows[:page], self._row_cells, cursor=0, scroll_y=0)
        elif kind == "last":
            shown = list(rows[-page:]) if more else list(rows)
            self._more_before = more
            self._more_after = False
            last = len(shown) - 1
            self.set_rows(shown, self._row_cells, cursor=last, scroll_y=last)
        elif kind == "after":
            if not self.rows or self.rows[-1].key != message.key:
                self._check_edges()
                return  # the window moved on since this page was asked for
            self._append(list(rows[:page]), more)
        else:
            if not self.rows or self.rows[0].key != message.key:
                self._check_edges()
                return
            self._prepend(list(rows[-page:]) if more else list(rows), more)
        self.last_elapsed = message.elapsed
        self.post_message(self.Loaded(self, kind, len(rows), message.elapsed))
        self._check_edges()

    def _limits(self) -> tuple[int, int]:
        """(most rows, rows kept after a trim): a kept window always covers the view and its edges."""
        keep = max(self.keep_rows, self._body_height() + 2 * self.edge + 1)
        return max(self.max_rows, keep + self.page_size), keep

    def _append(self, rows: list[Any], more: bool) -> None:
        self._more_after = more
        most, keep = self._limits()
        if self.row_count + len(rows) <= most:
            self.append_rows(rows)
            return
        window = self.rows + rows
        drop = len(window) - keep
        self._more_before = True
        self.set_rows(window[drop:], cursor=self.cursor_row - drop,
                      scroll_y=round(self.scroll_y) - drop, dropped_before=drop)

    def _prepend(self, rows: list[Any], more: bool) -> None:
        self._more_before = more
        window = rows + self.rows
        most, keep = self._limits()
        if len(window) > most:
            window = window[:keep]
            self._more_after = True
        self.set_rows(window, cursor=self.cursor_row + len(rows),
                      scroll_y=round(self.scroll_y) + len(rows), dropped_before=-len(rows))

    @on(PagedTable.RowHighlighted)
    def _row_highlighted(self, _: PagedTable.RowHighlighted) -> None:
        self._check_edges()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if round(old) != round(new):
            self._check_edges()

    def _check_edges(self) -> None:
        """Ask for the next page when the cursor or the view nears either edge of the window."""
        rows = self.rows
        if not rows or self._source is None:
            return
        if "first" in self._pending or "last" in self._pending:
            return
        top = round(self.scroll_y)
        bottom = max(self.cursor_row, top + self._body_height())
        if self._more_after and bottom >= len(rows) - self.edge:
            self._request("after", rows[-1].key)
        if self._more_before and min(self.cursor_row, top) < self.edge:
            self._request("before", rows[0].key)

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
