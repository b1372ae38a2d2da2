"""The SQLite engine: a profile store in one file (the embedded default).

The fixed tables are created here; the profile, event and entity tables grow a
column per attribute or field as data is imported (see ``store.schema.catalog``).

Surrogate keys: ``profiles.pk`` and ``events.pk`` are integers, whatever the
external profile id looks like; events point at ``profiles.pk``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from store.engines.base import Connection, Engine
from store.engines.base import quote_identifier as quote_identifier
from store.engines.layout import SCHEMA_VERSION, STORE_FORMAT, create_schema, fixed_schema
from store.errors import StoreError
from store.files import check_store_path, printable

BUSY_TIMEOUT_MS = 5000
SEARCH_TABLE = "profiles_fts"  # the quick search's FTS5 index of the profiles' text columns
TRIGRAM = 3  # the trigram tokenizer finds substrings of at least this many characters
TRIGRAM_SINCE = (3, 34, 0)


class SQLiteConnection(sqlite3.Connection):
    """Python's SQLite connection, knowing its engine (``conn.engine``)."""

    engine: Engine


class SQLiteEngine(Engine):
    name = "sqlite"
    dialect = "sqlite"
    label = "SQLite"

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def short_name(self) -> str:
        return printable(self.path.name)

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def connect(self, *, readonly: bool = False) -> Connection:
        return connect(self.path, readonly=readonly)

    def open_store(self, *, readonly: bool = False) -> Connection:
        return open_store(self.path, readonly=readonly)

    def create_store(self) -> Connection:
        return create_store(self.path)

    def open_or_create_store(self) -> Connection:
        return open_or_create_store(self.path)

    time_column_type = "INTEGER"  # INTEGER affinity keeps a fraction as REAL
    compact_table_suffix = " WITHOUT ROWID"

    def key_column(self, table: str) -> str:
        return "INTEGER PRIMARY KEY"  # the rowid

    def column_type(self, sql_affinity: str) -> str:
        return sql_affinity

    def table_columns(self, conn: Connection, table: str) -> list[str]:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({quote_identifier(table)})")]

    def data_stamp(self, conn: Connection) -> object:
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        return (version, conn.total_changes)  # type: ignore[attr-defined]  # other connections' commits, and this one's

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")


    def before_commit(self, conn: Connection) -> None:
        """Nothing: SQLite counts commits itself (``PRAGMA data_version``, see ``data_stamp``)."""

    def prepare_reads(self, conn: Connection) -> None:
        conn.execute("PRAGMA case_sensitive_like = OFF")

    def int_array(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
        import numpy as np

        text = conn.execute(f"WITH s(v) AS ({sql}) SELECT group_concat(v) FROM s",
                            parameters).fetchone()[0]
        if not text:
            return np.zeros(0, dtype=np.int64)
        return np.fromstring(text, dtype=np.int64, sep=",")

    def query_plan(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> list[str]:
        return [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, parameters)]

    row_statements_are_cheap = True

    def widen_column(self, conn: Connection, table: str, column: str, sql_affinity: str) -> None:
        """Nothing to do: an INTEGER-affinity column keeps REAL values as they are."""

    def index_columns(self, conn: Connection, table: str) -> dict[str, tuple[str, ...]]:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL ORDER BY name", (table,))]
        return {name: tuple(row[2] for row in conn.execute(
                    f"PRAGMA index_info({quote_identifier(name)})"))
                for name in names}

    def tune_for_bulk_write(self, conn: Connection, *, scratch: bool = False) -> None:
        if scratch:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA cache_size = -262144")  # rebuilding an index sorts in memory

    def end_bulk_write(self, conn: Connection) -> None:
        conn.execute("PRAGMA locking_mode = NORMAL")
        conn.execute("PRAGMA journal_mode = DELETE")

    def analyze(self, conn: Connection) -> None:
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")

    keeps_search_index = True

    # -- the quick search's index: an FTS5 trigram table over the text columns
    def search_index_columns(self, conn: Connection) -> tuple[str, ...]:
        return tuple(self.table_columns(conn, SEARCH_TABLE))

    def build_search_index(self, conn: Connection, columns: Sequence[str]) -> None:
        """An external-content FTS5 table of ``columns`` with the trigram tokenizer (any
        substring of three characters or more is found), filled from ``profiles`` and kept
        up to date by triggers. Runs in the caller's write transaction: another program's
        import waits for it, and never sees half an index. ``detail=none``: the index keeps
        which rows hold each trigram, not where, which halves its build (it is rebuilt
        after every large import); ``search_candidates`` asks for a word's trigrams."""
        if sqlite3.sqlite_version_info < TRIGRAM_SINCE or not columns:
            return
        self.drop_search_index(conn)
        names = ", ".join(quote_identifier(c) for c in columns)
        conn.execute(f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({names},"
                     " content='profiles', content_rowid='pk', tokenize='trigram', detail=none)")
        conn.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')")
        old = ", ".join(f"old.{quote_identifier(c)}" for c in columns)
        new = ", ".join(f"new.{quote_identifier(c)}" for c in columns)
        removed = (f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, {names})"
                   f" VALUES ('delete', old.pk, {old});")
        added = f"INSERT INTO {SEARCH_TABLE} (rowid, {names}) VALUES (new.pk, {new});"
        changed = " OR ".join(f"old.{quote_identifier(c)} IS NOT new.{quote_identifier(c)}"
                              for c in columns)
        conn.execute(f"CREATE TRIGGER {SEARCH_TABLE}_ai AFTER INSERT ON profiles BEGIN {added} END")
        conn.execute(f"CREATE TRIGGER {SEARCH_TABLE}_ad AFTER DELETE ON profiles BEGIN {removed} END")
        # An import that sets a profile's values again, unchanged, leaves the index alone.
        conn.execute(f"CREATE TRIGGER {SEARCH_TABLE}_au AFTER UPDATE OF {names} ON profiles"
                     f" WHEN {changed} BEGIN {removed} {added} END")

    def drop_search_index(self, conn: Connection) -> None:
        for trigger in ("ai", "ad", "au"):
            conn.execute(f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_{trigger}")
        conn.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")

    def search_candidates(self, conn: Connection, columns: Sequence[str], words: Sequence[str],
                          limit: int) -> list[int] | None:
        long_words = [word for word in words if len(word) >= TRIGRAM]
        if not long_words or not set(columns) <= set(self.search_index_columns(conn)):
            return None
        # Every trigram of every word, each quoted (a one-token phrase, whatever it holds): the
        # rows holding them all, somewhere; a superset of the rows holding the words.
        grams = dict.fromkeys(word[start:start + TRIGRAM] for word in long_words
                              for start in range(len(word) - TRIGRAM + 1))
        match = " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)
        try:
            rows = conn.execute(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?"
                                " ORDER BY rowid LIMIT ?", (match, limit + 1)).fetchall()
        except sqlite3.OperationalError:  # dropped since, by another program's large import
            return None
        return None if len(rows) > limit else [row[0] for row in rows]

    def describe_error(self, exc: BaseException) -> str:
        return describe_sqlite_error(self.path, exc)


def connect(path: str | Path, *, readonly: bool = False, wal: bool = True) -> SQLiteConnection:
    """A connection with the store's pragmas: WAL, busy timeout, autocommit.

    ``isolation_level=None``: nothing is in a transaction unless
    ``write_transaction`` opens one, so every write that matters is explicit.
    A writable connection switches the file to WAL mode (readers never wait for
    a writer) unless it is in WAL mode already; the switch rewrites bytes 18-19,
    24-27 and 92-95 of the file's header, so commands that may refuse check on a
    read-only connection first. ``wal=False`` leaves the switch to the caller
    (``use_wal``, after creating the file).
    A path that is not a regular file (a device, a pipe) is refused unopened.
    """
    path = Path(path)
    check_store_path(path)
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{quote(os.fsencode(path))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False, isolation_level=None, factory=SQLiteConnection,
            )
        else:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None,
                factory=SQLiteConnection,
            )
        conn.engine = SQLiteEngine(str(path))
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            if wal and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.DatabaseError as exc:
        raise StoreError(describe_sqlite_error(path, exc)) from exc
    return conn


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch a file just created or checked to WAL mode, unless it is in it already.

    Called after the transaction that created the file, not before it: on a new,
    empty file that another program holds, SQLite refuses the switch at once
    instead of waiting. It waits for the busy timeout otherwise; if the file is
    still held (or waiting could deadlock, where SQLite answers at once), it stays
    in rollback-journal mode, which is as safe, and the next writable connection
    switches it.
    """
    if conn.in_transaction or conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode = WAL")


# SQLite's primary result codes that callers tell apart (https://sqlite.org/rescode.html)
_KIND_BY_CODE = {
    sqlite3.SQLITE_INTERRUPT: "interrupted",
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_READONLY: "readonly",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_CANTOPEN: "cantopen",
}
# the same kinds in message text, for errors SQLite did not raise itself
_KIND_BY_TEXT = (
    ("interrupted", ("interrupt",)),
    ("damaged", ("not a database", "malformed", "disk image")),
    ("locked", ("locked", "busy")),
    ("readonly", ("readonly", "read-only")),
    ("full", ("disk is full", "full")),
    ("cantopen", ("unable to open",)),
)
# limits SQLite reports as a plain SQLITE_ERROR, told apart only by the message
_LIMIT_WORDS = ("too large", "too many", "too complex", "too deep")


def error_kind(exc: BaseException) -> str:
    """What kind of failure a DB-API error is: interrupted, damaged, locked, readonly, full,
    cantopen, limit, or "" for any other.

    SQLite's own errors carry their result code (``sqlite_errorcode``), which decides: a
    message that merely contains a word ("no such column: fullname") is not a full disk.
    The other engines raise these classes translated from their own errors, without a
    code; their messages name the kind ("interrupted: ...", "attempt to write a readonly
    database: ..."), so for them the text decides.
    """
    text = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF  # an extended code's low byte is its primary code
        if primary == sqlite3.SQLITE_ERROR and any(word in text for word in _LIMIT_WORDS):
            return "limit"
        return _KIND_BY_CODE.get(primary, "")
    for kind, words in _KIND_BY_TEXT:
        if any(word in text for word in words):
            return kind
    return "limit" if any(word in text for word in _LIMIT_WORDS) else ""


def describe_sqlite_error(path: str | Path, exc: BaseException) -> str:
    """A sentence a person understands for a low-level SQLite failure."""
    kind = error_kind(exc)
    path = printable(path)
    if kind == "damaged":
        return f"{path} is not an Audiences store or is damaged ({exc})."
    if kind == "locked":
        return f"{path} is locked by another program; try again when it is done ({exc})."
    if kind == "readonly":
        return f"{path} is read-only; nothing was written ({exc})."
    if kind == "full":
        return f"The disk holding {path} is full; nothing was written ({exc})."
    if kind == "cantopen":
        return f"Cannot open {path} ({exc})."
    return f"{path}: {exc}"


@contextmanager
def closed_on_failure(conn: sqlite3.Connection, path: str | Path) -> Iterator[None]:
    """Close a just-opened connection if checking or preparing it fails, turning SQLite's
    errors into a StoreError that names the file (so no caller leaks the connection)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(describe_sqlite_error(path, exc)) from exc
    except StoreError:
        conn.close()
        raise


def create_store(path: str | Path) -> SQLiteConnection:
    """Create an empty store (or finish creating one) and return a connection."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, wal=False)
    with closed_on_failure(conn, path):
        with conn.engine.write_transaction(conn):
            # checked and created in one transaction: another program creating the same
            # store is waited for (the busy timeout), and never seen half done
            existing = _store_format(conn)
            if existing is None and _has_user_tables(conn):
                raise StoreError(f"{printable(path)} is an SQLite file but not an Audiences store.")
            create_schema(conn, fixed_schema(conn.engine), STORE_FORMAT, SCHEMA_VERSION)
        use_wal(conn)
    return conn


def open_store(path: str | Path, *, readonly: bool = False) -> SQLiteConnection:
    """Open an existing store, checking that it is one and that we can read its version."""
    path = Path(path)
    shown = printable(path)
    if not path.exists():
        raise StoreError(f"No store at {shown}. Create one with `audiences-tui sample --db {shown}`"
                         " or an import.")
    if path.is_dir():
        raise StoreError(f"{shown} is a folder, not a store file.")
    _roll_back_hot_journal(path)
    if not readonly:
        # Check on a read-only connection first: a writable one switches the file to WAL,
        # which would change a file that turns out not to be a store (or one we cannot read).
        open_store(path, readonly=True).close()
        if is_read_only_file(path):
            raise StoreError(f"{shown} is read-only; nothing was written.")
    conn = connect(path, readonly=readonly)
    with closed_on_failure(conn, path):
        fmt = _store_format(conn)
        if fmt is None:
            raise StoreError(f"{shown} is not an Audiences store.")
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise StoreError(f"{shown} is an Audiences store of an unknown version"
                             f" ({None if row is None else row[0]!r}).") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{shown} was written by a newer version of Audiences TUI (store version {version},"
                f" this program reads up to {SCHEMA_VERSION}). Upgrade the program."
            )
    return conn


def _roll_back_hot_journal(path: Path) -> None:
    """Undo a write that a crash left half done in rollback-journal mode (a "hot" journal).

    SQLite does this on the first read of any writable connection; a read-only
    connection cannot, and fails with "attempt to write a readonly database".
    So before a store is opened, a plain writable connection reads it once
    (which rolls the journal back, or waits while another program is still
    writing). Not for a file marked read-only: that is reported as it is.
    """
    if not Path(f"{path}-journal").exists() or is_read_only_file(path):
        return
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        pass  # a damaged or foreign file is reported by the caller's checks
    finally:
        conn.close()


def is_read_only_file(path: str | Path) -> bool:
    """Whether the file's permission bits forbid writing.

    Checked from the bits rather than by trying, so a file marked read-only
    stays untouched even for a user (root) whom the system would let write.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)


def open_or_create_store(path: str | Path) -> SQLiteConnection:
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        return create_store(path) if _is_store_file(path) else open_store(path)
    return create_store(path)


def _is_store_file(path: Path) -> bool:
    conn = connect(path, readonly=True)
    try:
        return _store_format(conn) is not None
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def _store_format(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if row is None:
        return None
    found = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    if found is None or found[0] != STORE_FORMAT:
        return None
    return str(found[0])


def _has_user_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
    return bool(row[0])


