"""The builder's kept connection: one thread at a time, closed by whoever holds it last.

Closing a ``sqlite3`` connection (or replacing its progress handler) while
another thread runs a statement on it crashes the interpreter, so these
tests pin down the rules that prevent it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from store.engines.cancel import Cancel
from store.errors import QueryCancelled
from tui.widgets.queries import SerialConnection

SLOW_QUERY = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000)"
              " SELECT count(*) FROM n")


def memory_connection() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", check_same_thread=False)


def test_opens_once_and_reuses() -> None:
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        opened.append(memory_connection())
        return opened[-1]

    shared = SerialConnection(connect)
    with shared.use() as first:
        pass
    with shared.use() as second:
        pass
    assert first is second and len(opened) == 1
    shared.close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")


def test_close_while_in_use_waits_for_the_user() -> None:
    shared = SerialConnection(memory_connection)
    with shared.use() as conn:
        shared.close()  # must not close under a running worker
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    with pytest.raises(QueryCancelled), shared.use():
        pass


def test_close_during_a_cancelled_statement_in_another_thread() -> None:
    """The crash this class exists for: close() racing a running, watched statement."""
    shared = SerialConnection(memory_connection)
    cancel = Cancel()
    started = threading.Event()
    outcome: list[str] = []

    def worker() -> None:
        try:
            with shared.use() as conn, cancel.watching(conn):
                started.set()
                conn.execute(SLOW_QUERY).fetchone()
            outcome.append("finished")
        except QueryCancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(5)
    time.sleep(0.05)
    cancel.cancel()
    shared.close()
    thread.join(10)
    assert outcome == ["cancelled"]


def test_users_take_turns() -> None:
    shared = SerialConnection(memory_connection)
    inside = 0
    most = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        with shared.use() as conn:
            with lock:
                inside += 1
                most = max(most, inside)
            conn.execute("SELECT 1").fetchone()
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 1
