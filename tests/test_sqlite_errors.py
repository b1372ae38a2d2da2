"""Failures told apart by SQLite's result code, and by the message for the other engines'
translated errors (which carry no code); every place that tells a cancelled query from a
failed one does it this way."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from store.campaign import activation
from store.engines.cancel import translated_errors
from store.engines.sqlite import connect, describe_sqlite_error, error_kind
from store.errors import InputError, QueryCancelled, StoreError
from tui.widgets.queries import is_interrupt


def raised(conn: sqlite3.Connection, sql: str) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as info:
        conn.execute(sql)
    return info.value


def test_sqlites_own_errors_are_classified_by_their_code(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    # a message that merely contains a word is not that kind of failure
    no_column = raised(conn, "SELECT fullname")
    assert no_column.sqlite_errorcode == sqlite3.SQLITE_ERROR
    assert error_kind(no_column) == ""
    assert "full" not in describe_sqlite_error("s.db", no_column).split(":")[0]
    assert describe_sqlite_error("s.db", no_column) == "s.db: no such column: fullname"

    too_deep = raised(conn, "SELECT " + "+".join(["1"] * 2000))  # SQLITE_ERROR, by message
    assert error_kind(too_deep) == "limit"

    not_a_store = tmp_path / "notes.db"
    not_a_store.write_bytes(b"this is not a database file, only text " * 200)
    with pytest.raises(sqlite3.DatabaseError) as info:
        sqlite3.connect(not_a_store).execute("SELECT * FROM sqlite_master")
    assert info.value.sqlite_errorcode == sqlite3.SQLITE_NOTADB
    assert error_kind(info.value) == "damaged"
    assert "is not an Audiences store or is damaged" in describe_sqlite_error(not_a_store, info.value)

    with pytest.raises(sqlite3.OperationalError) as info:
        sqlite3.connect(f"file:{tmp_path / 'missing' / 'x.db'}?mode=ro", uri=True)
    assert error_kind(info.value) == "cantopen"


def test_a_held_store_is_locked_and_an_interrupted_query_is_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    busy = raised(waiter, "SELECT * FROM t")
    assert busy.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    assert error_kind(busy) == "locked"
    holder.execute("ROLLBACK")

    waiter.set_progress_handler(lambda: 1, 100)  # SQLite interrupts the statement
    interrupted = raised(waiter, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                 " WHERE i < 1000000) SELECT count(*) FROM n")
    assert interrupted.sqlite_errorcode == sqlite3.SQLITE_INTERRUPT
    assert error_kind(interrupted) == "interrupted"
    with pytest.raises(QueryCancelled), translated_errors(None):
        raise interrupted
    with pytest.raises(StoreError, match="locked by another program"), translated_errors(None):
        raise busy


@pytest.mark.parametrize(("message", "kind"), [
    # as store/engines/duckdb.py, postgres.py and spark.py translate their drivers' errors
    ("interrupted: canceling statement due to user request", "interrupted"),
    ("attempt to write a readonly database: cannot execute INSERT in a read-only transaction",
     "readonly"),
    ("database is locked", "locked"),
    ("too many columns: 1700", "limit"),
    ('relation "profiles" does not exist', ""),
])
def test_translated_errors_without_a_code_are_classified_by_their_message(message: str,
                                                                          kind: str) -> None:
    exc = sqlite3.OperationalError(message)
    assert getattr(exc, "sqlite_errorcode", None) is None
    assert error_kind(exc) == kind


def test_the_translation_turns_limits_into_input_errors() -> None:
    with pytest.raises(InputError, match="too large for the database"), translated_errors(None):
        raise sqlite3.OperationalError("too many terms in compound SELECT")


def cancelled_by_the_app(exc: sqlite3.Error, store: Path) -> bool:
    return is_interrupt(exc)


def cancelled_by_the_query_translation(exc: sqlite3.Error, store: Path) -> bool:
    try:
        with translated_errors(None):
            raise exc
    except QueryCancelled:
        return True
    except (StoreError, InputError):
        return False
    raise AssertionError("translated_errors let the error through")


def cancelled_by_activation_on_the_profile_store(exc: sqlite3.Error, store: Path) -> bool:
    conn = connect(store)
    try:
        return isinstance(activation._profile_error(conn, exc, None), QueryCancelled)
    finally:
        conn.close()


def cancelled_by_activation_on_the_campaign_store(exc: sqlite3.Error, store: Path) -> bool:
    conn = connect(store)
    try:
        return isinstance(activation._translate(conn, exc), QueryCancelled)
    finally:
        conn.close()


@pytest.mark.parametrize("cancelled", [
    cancelled_by_the_app, cancelled_by_the_query_translation,
    cancelled_by_activation_on_the_profile_store, cancelled_by_activation_on_the_campaign_store,
])
def test_every_place_tells_a_cancelled_query_from_a_failed_one_by_the_code(
        cancelled: Callable[[sqlite3.Error, Path], bool], tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    store = tmp_path / "s.db"
    # failures whose message merely holds the words: they are shown, not taken for a cancel
    for column in ("cancelled_at", "interrupted_at"):
        failed = raised(conn, f"SELECT {column}")
        assert failed.sqlite_errorcode == sqlite3.SQLITE_ERROR
        assert not cancelled(failed, store), column
    conn.set_progress_handler(lambda: 1, 100)  # SQLite interrupts the statement
    interrupted = raised(conn, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                               " WHERE i < 1000000) SELECT count(*) FROM n")
    assert cancelled(interrupted, store)
    # the other engines' cancellations, translated without a code (store/engines/postgres.py)
    assert cancelled(sqlite3.OperationalError("interrupted: canceling statement due to user request"),
                     store)
