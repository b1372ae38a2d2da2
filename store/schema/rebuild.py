"""Building a whole store in one go and putting it in place of the old one at once.

The sample generator and ``copy`` write a complete store. Whatever the engine,
readers see the old store or the new one, never a half-written one:

- a file engine (SQLite, DuckDB) builds the new store in a temporary file
  beside the target and renames it over the target only when it is complete;
- a server engine (PostgreSQL) drops the old tables and builds the new ones
  inside one transaction, so the old store stays until the commit.

Saved segments of the store being replaced are read first (the sample
generator keeps them). A file that exists but is not a store is never
overwritten.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.engines.base import Connection, Engine
from store.engines.layout import (
    SCHEMA_VERSION,
    STORE_FORMAT,
    fixed_schema,
    quote_identifier,
    write_transaction,
)
from store.engines.sqlite import BUSY_TIMEOUT_MS, SQLiteEngine, describe_sqlite_error, open_store
from store.errors import StoreError
from store.files import check_store_path
from store.schema.activity import ACTIVITY_TABLE
from store.schema.search import ensure_search_index

SavedRows = tuple[list[str], list[tuple[Any, ...]]]
# A temporary store file is committed every so many rows: an engine may hold a
# transaction's new rows in memory until it commits (DuckDB does).
COMMIT_EVERY_ROWS = 2_000_000
# Files an engine keeps beside a store file (SQLite's journals, DuckDB's write-ahead log).
SIDE_SUFFIXES = ("-journal", "-wal", "-shm", ".wal")
# The tables of every store, children first (dropped in this order).
STORE_TABLES = ("event_type_fields", "entity_fields", "entities", "event_fields", "event_types",
                "attributes", "segments", ACTIVITY_TABLE, "events", "profiles", "meta")


@dataclass
class Build:
    """The store being built: write to ``conn`` (no transactions of your own: the
    replacement holds one where the engine needs it); ``kept`` are the old store's saved
    segments (columns, rows)."""

    conn: Connection
    engine: Engine
    kept: SavedRows = field(default_factory=lambda: ([], []))
    one_transaction: bool = False  # True: the new store must be written in one transaction
    pending: int = 0

    def wrote(self, rows: int) -> None:
        """Count rows written; a temporary file is committed now and then (nothing reads it
        before it is renamed into place, so only the store on a server needs one transaction)."""
        self.pending += rows
        if not self.one_transaction and self.pending >= COMMIT_EVERY_ROWS:
            self.conn.commit()
            self.engine.begin_write(self.conn)
            self.pending = 0


@contextmanager
def replacement(engine: Engine, *, refuse_data: str | None = None,
                who: str = "The sample generator") -> Iterator[Build]:
    """A new store for ``engine`` that takes the old one's place when the block ends without
    an error (and is thrown away otherwise).

    ``refuse_data``: refuse (StoreError with this text) to replace a store that holds data
    (profiles, attributes or saved segments). ``who`` names the writer in the refusal of a
    file that is not a store.
    """
    if engine.path is not None:
        # a symlink stays a symlink: its target is replaced; a device or a pipe is refused
        check_store_path(engine.path)
        target = Path(os.path.realpath(engine.path))
        with _file_replacement(engine, target, refuse_data, who) as build:
            yield build
    else:
        with _in_place_replacement(engine, refuse_data) as build:
            yield build


# ------------------------------------------------------------------ files


@contextmanager
def _file_replacement(engine: Engine, path: Path, refuse_data: str | None,
                      who: str) -> Iterator[Build]:
    kept, guard = _hold_old_file(engine, path, refuse_data, who)
    _remove_stale_temps(path)
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    scratch = type(engine)(str(temp))
    replaced = False
    try:
        try:
            conn = scratch.create_store()
        except StoreError as exc:
            raise StoreError(f"Cannot write {path}: {exc}") from exc
        try:
            scratch.tune_for_bulk_write(conn, scratch=True)
            with write_transaction(conn):
                yield Build(conn, scratch, kept)
            ensure_search_index(conn)
            scratch.end_bulk_write(conn)
        finally:
            conn.close()
            scratch.release()
        _fsync(temp)
        engine.release()
        if guard is not None:
            guard.before_replace()
        for suffix in (".wal",):  # a stale log beside the target would be replayed into the new file
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.replace(temp, path)
        replaced = True
        _fsync_directory(path.parent)
    except OSError as exc:
        _remove_quietly(temp)
        raise StoreError(f"Cannot write the store {path}: {exc}") from exc
    except BaseException:
        _remove_quietly(temp)
        raise
    finally:
        if guard is not None:
            guard.release(replaced)


def _hold_old_file(engine: Engine, path: Path, refuse_data: str | None,
                   who: str) -> tuple[SavedRows, Any]:
    """The old store's saved segments, read while holding it so that no other program writes
    to it until it is replaced (a write into a replaced file would be lost)."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give a file path for the store.")
    if not path.exists() or path.stat().st_size == 0:
        return ([], []), None
    if isinstance(engine, SQLiteEngine):  # WAL readers of the old file: see _lock_sqlite
        kept, sqlite_guard = _lock_sqlite(path, who)
        if refuse_data is not None and sqlite_guard is not None:
            _refuse_data(sqlite_guard.conn, refuse_data, sqlite_guard.release)
        return kept, sqlite_guard
    try:
        conn = engine.open_store()  # DuckDB: holding it open keeps other programs out
    except StoreError as exc:
        raise StoreError(f"{exc} {who} does not overwrite it.") from exc
    holder = _OpenStore(conn, engine)
    try:
        if refuse_data is not None:
            _refuse_data(conn, refuse_data, None)
        return read_segments(conn), holder
    except BaseException:
        holder.release(False)
        raise


class _OpenStore:
    """An open connection that keeps the old store to this program until it is replaced."""

    def __init__(self, conn: Connection, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine

    def before_replace(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        self.engine.release()

    def release(self, replaced: bool) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        self.engine.release()


def _refuse_data(conn: Connection, message: str, release: Any) -> None:
    if any(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
           for table in ("profiles", "attributes", "segments")):
        if release is not None:
            release(False)
        raise StoreError(message)


def read_segments(conn: Connection) -> SavedRows:
    """The rows of a store's ``segments`` table, with its column names."""
    columns = conn.engine.table_columns(conn, "segments")
    if not columns:
        return [], []
    names = ", ".join(quote_identifier(c) for c in columns)
    rows = conn.execute(f"SELECT {names} FROM segments ORDER BY id").fetchall()
    return list(columns), [tuple(row) for row in rows]


def saved_segments(path: Path, who: str = "The sample generator") -> SavedRows:
    """The segment rows of the SQLite store at ``path`` (none if there is no file yet).

    Refuses a file that is not a store, and a store another program is still
    writing to (its write-ahead log could not be folded back in).
    """
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give a file path for the store.")
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    try:
        conn = open_store(path)
    except StoreError as exc:
        raise StoreError(f"{exc} {who} does not overwrite it.") from exc
    try:
        cursor = conn.execute("SELECT * FROM segments ORDER BY id")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(describe_sqlite_error(path, exc)) from exc
    finally:
        conn.close()
    if busy:
        raise StoreError(f"{path} is open in another program; close it and try again.")
    return columns, rows


def _lock_sqlite(path: Path, who: str) -> tuple[SavedRows, _OldSQLiteStore | None]:
    """The saved segments of the old SQLite store, read while holding it exclusively.

    The new store replaces the old file by a rename. A connection that another
    program opened on the old file would go on writing into the replaced file,
    and whatever it saved would be silently lost. So the old store is switched
    out of WAL mode first, which only succeeds when no other program has it
    open (otherwise: refused, "close it and run the sample again"), and is then
    held with an exclusive lock until the rename; any program that opened it
    meanwhile waits, then finds it marked replaced and fails with an error.
    """
    kept = saved_segments(path, who)  # refuses a non-store, a newer store, one being written to
    if not kept[0]:
        return kept, None
    conn = open_store(path)
    try:
        conn.execute("PRAGMA busy_timeout = 0")  # an open app stays open: no use waiting
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError:
            mode = "wal"
        if str(mode).lower() != "delete":
            raise StoreError(f"{path} is open in another program; close it and try again.")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN EXCLUSIVE")
        cursor = conn.execute("SELECT * FROM segments ORDER BY id")
        rows = ([d[0] for d in cursor.description], cursor.fetchall())
        fd = os.open(path, os.O_RDWR)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(describe_sqlite_error(path, exc) + " Nothing was written.") from exc
    except BaseException:
        conn.close()
        raise
    return rows, _OldSQLiteStore(conn, fd)


class _OldSQLiteStore:
    """The old store's connection (holding its exclusive lock) and a handle on its file."""

    def __init__(self, conn: Connection, fd: int) -> None:
        self.conn = conn
        self.fd = fd

    def before_replace(self) -> None:
        """Nothing: the lock is held across the rename."""

    def release(self, replaced: bool) -> None:
        """Let go of the old file; once replaced, mark it so that no late reader trusts it."""
        try:
            if replaced:  # SQLite checks this header before each transaction: "not a database"
                os.pwrite(self.fd, b"replaced by a new sample store".ljust(32, b"\0"), 0)
        finally:
            os.close(self.fd)
            with contextlib.suppress(sqlite3.Error):
                self.conn.rollback()
            self.conn.close()


def _fsync(path: Path) -> None:
    """Make the finished file durable before it replaces the old one."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable too (where the platform lets a folder be synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Delete the unfinished stores that killed runs left beside ``path``.

    A temporary store is named ``<store>.tmp-<pid>-<random>``; one whose process
    no longer runs can never be finished (a live one may be another run's).
    """
    prefix = f"{path.name}.tmp-"
    for candidate in path.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):].partition("-")[0]
        if not pid_text.isdigit() or process_runs(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an absurd number
        return True
    return True


def _remove_quietly(temp: Path) -> None:
    """Delete an unfinished temporary store and its side files."""
    for suffix in ("", *SIDE_SUFFIXES):
        with contextlib.suppress(OSError):
            Path(str(temp) + suffix).unlink()


def remove_store_files(path: Path) -> None:
    """Delete a store file this program just created, with its side files."""
    _remove_quietly(path)


# ------------------------------------------------------------------ servers


@contextmanager
def _in_place_replacement(engine: Engine, refuse_data: str | None) -> Iterator[Build]:
    created = not engine.exists()
    conn = engine.create_store() if created else engine.open_store()
    try:
        if refuse_data is not None:
            _refuse_data(conn, refuse_data, None)
        kept = read_segments(conn)
        try:
            engine.tune_for_bulk_write(conn)
            with write_transaction(conn):
                drop_store_tables(conn)
                create_tables(conn)
                yield Build(conn, engine, kept, one_transaction=True)
        except BaseException:
            if created:
                discard_store(conn)
            raise
        ensure_search_index(conn)
        engine.after_bulk_write(conn)  # committed: a failure here must not discard the store
    finally:
        conn.close()


def drop_store_tables(conn: Connection) -> None:
    """Drop every table of the store, in the caller's transaction."""
    engine = conn.engine
    entity_tables: list[str] = []
    if engine.has_table(conn, "entities"):
        entity_tables = [row[0] for row in conn.execute("SELECT table_name FROM entities")]
    for table in (*entity_tables, *STORE_TABLES):
        conn.execute(f"DROP TABLE IF EXISTS {quote_identifier(table)}")


def discard_store(conn: Connection) -> None:
    """Drop a store this program just created on a server (after a failed first write);
    quietly: the failure that got here is what the user needs to read."""
    with contextlib.suppress(sqlite3.Error):
        conn.rollback()
        conn.engine.begin_write(conn)  # not write_transaction: no data version to count
        try:
            drop_store_tables(conn)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def create_tables(conn: Connection) -> None:
    """The fixed tables of an empty store and its format stamp, in the caller's transaction
    (``layout.install_schema`` in one of its own)."""
    import datetime as dt

    for statement in fixed_schema(conn.engine):
        conn.execute(statement)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    conn.execute("INSERT INTO meta(key, value) VALUES ('format', ?), ('schema_version', ?),"
                 " ('created_at', ?) ON CONFLICT(key) DO NOTHING",
                 (STORE_FORMAT, str(SCHEMA_VERSION), now))
