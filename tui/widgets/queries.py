"""Running store queries from thread workers so that a newer request stops an older one.

Each request gets a cancellation token (``store.cancel.Cancel``) made in the
UI thread before its worker starts. Starting the next request of the same
group cancels the previous token, which interrupts its SQLite statement
(or stops it at its next progress check if it had not started yet), so a
superseded query never runs on in the background.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from store.cancel import Cancel
from store.errors import QueryCancelled


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` means the query was cancelled (not that it failed)."""
    if isinstance(exc, QueryCancelled):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "interrupt" in str(exc).lower()


class QueryRunner:
    """Hands out one token per request and group; opens a fresh read connection per request."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
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
    def connection(self, token: Cancel) -> Iterator[sqlite3.Connection]:
        """A read connection watched by ``token`` (closed afterwards).

        Raises ``QueryCancelled`` if the token is cancelled before or during a
        statement; other SQLite errors become ``StoreError``.
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
