"""Cancelling a running query from another thread.

A ``Cancel`` is handed to a query function (``cancel=``); calling
``cancel()`` from any thread stops the query and makes the function raise
``QueryCancelled``. Two mechanisms work together so there is no window in
which a cancellation is lost:

- ``Connection.interrupt()`` on every connection the token is watching stops
  a statement that is running right now;
- a progress handler, installed while the token watches a connection, checks
  the flag every few thousand SQLite VM steps, so a statement that starts
  just after ``cancel()`` (when an interrupt would be a no-op) stops too.

Before each statement the flag is checked as well. A token stays cancelled:
make a new one for the next query (the app makes one per count worker).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from store.engines.base import Connection
from store.engines.sqlite import describe_sqlite_error, error_kind
from store.errors import InputError, QueryCancelled, StoreError

PROGRESS_STEPS = 20_000  # VM instructions between two looks at the flag (well under 1 ms)


class Cancel:
    """A cancellation token for queries on one or more connections."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[Connection, int]] = {}

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def cancel(self) -> None:
        """Stop the watched queries now (callable from any thread, any number of times)."""
        self._flag.set()
        with self._lock:
            connections = [conn for conn, _ in self._watched.values()]
        for conn in connections:
            with suppress(sqlite3.ProgrammingError):  # closed meanwhile: nothing to stop
                conn.interrupt()

    def check(self) -> None:
        """Raise ``QueryCancelled`` if the token has been cancelled."""
        if self._flag.is_set():
            raise QueryCancelled("The query was cancelled.")

    def _progress(self) -> int:
        return 1 if self._flag.is_set() else 0

    @contextmanager
    def watching(self, conn: Connection, *, translate: bool = True) -> Iterator[Connection]:
        """While inside, ``cancel()`` reaches ``conn``; SQLite errors are translated
        (``translate=False``: the caller names the failure itself, e.g. the profile store's
        engine in an activation). Blocks nest, on one connection or several."""
        self.check()
        key = id(conn)
        with self._lock:
            _, depth = self._watched.get(key, (conn, 0))
            self._watched[key] = (conn, depth + 1)
            if depth == 0:
                conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        try:
            if translate:
                with translated_errors(self):
                    yield conn
            else:
                yield conn
        finally:
            with self._lock:
                _, depth = self._watched[key]
                if depth <= 1:
                    del self._watched[key]
                    conn.set_progress_handler(None, 0)
                else:
                    self._watched[key] = (conn, depth - 1)


@contextmanager
def watching(cancel: Cancel | None, conn: Connection, *, translate: bool = True) -> Iterator[Connection]:
    """``cancel.watching(conn)``, or just the error translation when there is no token
    (``translate=False``: nothing at all then)."""
    if cancel is not None:
        with cancel.watching(conn, translate=translate):
            yield conn
    elif translate:
        with translated_errors(None):
            yield conn
    else:
        yield conn


@contextmanager
def translated_errors(cancel: Cancel | None) -> Iterator[None]:
    """SQLite errors as the engine's errors: interrupted -> QueryCancelled, limits -> InputError."""
    try:
        yield
    except sqlite3.Error as exc:
        kind = error_kind(exc)
        if (cancel is not None and cancel.cancelled) or kind == "interrupted":
            raise QueryCancelled("The query was cancelled.") from exc
        if kind == "limit":
            raise InputError(f"The segment is too large for the database to evaluate ({exc}).") \
                from exc
        raise StoreError(describe_sqlite_error("The store", exc)) from exc
