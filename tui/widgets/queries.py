"""Running store queries from thread workers so that a newer request stops an older one.

Each request gets a cancellation token (``store.engines.cancel.Cancel``) made in
the UI thread before its worker starts. Starting the next request of the same
group cancels the previous token, which interrupts its statement on whichever
engine holds the store (or stops it at its next check if it had not started
yet), so a superseded query never runs on in the background.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from store.engines.base import Connection
from store.engines.cancel import Cancel
from store.engines.sqlite import error_kind
from store.errors import QueryCancelled


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` means the query was cancelled (not that it failed).

    Told by SQLite's result code (``error_kind``), not by words in the message: a query
    failing with "no such column: cancelled_at" failed, and its error is shown.
    """
    if isinstance(exc, QueryCancelled):
        return True
    return isinstance(exc, sqlite3.OperationalError) and error_kind(exc) == "interrupted"


class QueryRunner:
    """Hands out one token per request and group; opens a fresh read connection per request."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._tokens: dict[str, Cancel] = {}

    def start(self, group: str) -> Cancel:
        """A token for a new request of ``group``; the previous request of the group is cancelled."""
        token = Cancel()
        with self._lock:
            previous = self._tokens.get(group)
            self._tokens[group] = token
        if previous is not None:
            previous.cancel()
        return token

    @contextmanager
    def connection(self, token: Cancel) -> Iterator[Connection]:
        """A read connection watched by ``token`` (closed afterwards).

        Raises ``QueryCancelled`` if the token is cancelled before or during a
        statement; other database errors become ``StoreError``.
        """
        token.check()
        conn = self._connect()
        try:
            with token.watching(conn):
                yield conn
        finally:
            conn.close()

    def interrupt(self, group: str | None = None) -> None:
        """Cancel the current request of ``group`` (of every group when None)."""
        with self._lock:
            if group is None:
                tokens = list(self._tokens.values())
                self._tokens.clear()
            else:
                found = self._tokens.pop(group, None)
                tokens = [found] if found is not None else []
        for token in tokens:
            token.cancel()

    def interrupt_prefix(self, prefix: str) -> None:
        """Cancel the requests of every group whose name starts with ``prefix``."""
        with self._lock:
            names = [name for name in self._tokens if name.startswith(prefix)]
            tokens = [self._tokens.pop(name) for name in names]
        for token in tokens:
            token.cancel()


class SerialConnection:
    """One connection kept across worker runs, used by one thread at a time.

    On SQLite, the library's mutex serialises statements, but Python's ``sqlite3`` frees a
    connection's callbacks (the progress handler a ``Cancel`` installs) on
    ``close()`` and on every ``set_progress_handler``. Doing either while
    another thread runs a statement on that connection crashes the process.
    So a worker takes the connection for the whole of its run (a superseded
    worker, already cancelled, finishes within milliseconds), and ``close()``
    never waits: if a worker holds the connection, that worker closes it as it
    lets go.
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._use = threading.Lock()  # held for a whole worker run
        self._state = threading.Lock()  # guards the three fields below
        self._conn: Connection | None = None
        self._in_use = False
        self._closed = False

    @contextmanager
    def use(self) -> Iterator[Connection]:
        """The connection, for this thread alone until the block ends.

        Raises ``QueryCancelled`` once ``close()`` has been called.
        """
        with self._use:
            with self._state:
                if self._closed:
                    raise QueryCancelled("The connection was closed.")
                self._in_use = True
            try:
                if self._conn is None:
                    self._conn = self._connect()
                yield self._conn
            finally:
                with self._state:
                    self._in_use = False
                    if self._closed:
                        self._close_now()

    def close(self) -> None:
        """Close now, or as soon as the worker holding the connection lets go (never blocks)."""
        with self._state:
            self._closed = True
            if not self._in_use:
                self._close_now()

    def _close_now(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
