"""What every database engine offers the rest of store/, and how ``--db`` picks one.

Nothing above this layer knows which engine runs. Store code talks to a
``Connection``: the DB-API subset that Python's ``Connection``
already has (``execute`` with ``?`` markers, ``executemany``, ``commit``,
``rollback``, ``interrupt``, ``close``), plus ``engine``, the adapter that
knows the engine's dialect and its differences:

- SQL the compiler builds as a sqlglot tree is rendered by the adapter for its
  dialect (``engine.render``); fixed statements are written in the SQL that
  every engine shares and the adapter only adapts the parameter markers;
- catalog questions (tables, columns), DDL types, transactions, bulk loads
  and opening/creating a store are the adapter's methods.

Errors: every adapter raises the DB-API exception classes as Python's
``sqlite3`` module defines them (``sqlite3.OperationalError`` ...), carrying
the driver's message, so one ``except`` clause serves every engine.
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from store.errors import InputError, StoreError
from store.files import is_utf8_text, printable

if TYPE_CHECKING:
    from sqlglot import exp

    from store.engines.source import Relation


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ...) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """What store code may call on a connection, whatever the engine."""

    engine: Engine

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...

    def set_progress_handler(self, handler: Any, n: int, /) -> None:
        """SQLite's hook, called every ``n`` steps (others: before each statement); 1 stops it."""


class BufferedCursor:
    """A finished statement's rows, read all at once: the cursor of drivers that keep one
    result per connection (DuckDB) or hand results over whole (Spark)."""

    def __init__(self, rows: list[Any], description: Any, rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.description = description
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchmany(self, size: int = 1) -> list[Any]:
        rows = self._rows[self._next:self._next + size]
        self._next += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._next:]
        self._next = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())  # (a store's million ids: one slice, not a call per row)

    def close(self) -> None:
        self._rows = []


class DriverConnection:
    """What the adapters whose driver is not Python's sqlite3 share: the ``Connection``
    protocol's progress hook (checked before each statement and between streamed batches),
    explicit COMMIT / ROLLBACK, and the driver's own connection for bulk paths (``raw``)."""

    def __init__(self, raw: Any, engine: Engine) -> None:
        self._raw = raw
        self.engine = engine
        self._progress: Callable[[], int] | None = None
        self.companions: list[Connection] = []  # closed with this one (a source's segments store)

    @property
    def raw(self) -> Any:
        return self._raw

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        raise NotImplementedError

    def set_progress_handler(self, handler: Callable[[], int] | None, n: int, /) -> None:
        self._progress = handler

    def check_progress(self) -> None:
        """Stop here if the progress hook says so (a Cancel token was cancelled)."""
        if self._progress is not None and self._progress():
            raise sqlite3.OperationalError("interrupted")

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        for companion in self.companions:
            companion.close()
        self.companions.clear()
        self._raw.close()


class Engine(ABC):
    """One database engine holding one profile store (a file, or a schema on a server)."""

    name: ClassVar[str]  # "sqlite", "duckdb", "postgresql"
    dialect: ClassVar[str]  # sqlglot's name for the dialect
    label: ClassVar[str]  # how people name the engine ("SQLite", "DuckDB", ...)

    def __init__(self, location: str) -> None:
        self.location = location

    # ---------------------------------------------------------------- identity
    @property
    def display(self) -> str:
        """Where the store is, as shown to a person (never a password; a file name's bytes that
        are not UTF-8 as ``\\xNN``)."""
        return printable(self.location)

    @property
    def short_name(self) -> str:
        """A short name for headers and titles (a file name, or a database name)."""
        return self.display

    @property
    def identity(self) -> str:
        """Which store this is, the same however it was named (recorded with activated audiences;
        never a password): a file's absolute path, else the display location."""
        return str(self.path.resolve()) if self.path is not None else self.display

    @property
    def path(self) -> Path | None:
        """The local file holding the store, for file engines."""
        return None

    def default_campaign_path(self) -> Path:
        """``campaign.db`` beside a store file; for a server, ``campaign-<database>.db`` in the
        user's data folder (one per store, as an audience belongs to the store that made it)."""
        if self.path is not None:
            return self.path.with_name("campaign.db")
        import platformdirs

        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.short_name)
        return Path(platformdirs.user_data_dir("audiences-tui")) / f"campaign-{name}.db"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Engine) and type(other) is type(self) and other.location == self.location

    def __hash__(self) -> int:
        return hash((type(self), self.location))

    # ------------------------------------------------------------ connections
    @abstractmethod
    def exists(self) -> bool:
        """Whether a store (or anything at all) is at the location."""

    @abstractmethod
    def connect(self, *, readonly: bool = False) -> Connection:
        """A connection with the engine's settings, without checking that a store is there."""

    @abstractmethod
    def open_store(self, *, readonly: bool = False) -> Connection:
        """A connection to an existing store, checked (StoreError when it is not one)."""

    @abstractmethod
    def create_store(self) -> Connection:
        """Create an empty store (or finish creating one) and return a connection."""

    def open_or_create_store(self) -> Connection:
        return self.open_store() if self.exists() else self.create_store()

    # ----------------------------------------------------------------- dialect
    def render(self, expression: exp.Expression, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """The engine's SQL for a compiled tree, with its bound values in marker order."""
        from store.engines.dialects import render

        return render(expression, values, self.dialect)

    @abstractmethod
    def column_type(self, sql_affinity: str) -> str:
        """The engine's column type for one of the store's value encodings (TEXT, INTEGER, REAL)."""

    def column_storage(self, sql_affinity: str, mostly_distinct: bool) -> str:
        """What follows a new column's type in its definition: how the engine stores it, given
        whether its values will mostly differ from each other (catalog.add_column)."""
        return ""

    @abstractmethod
    def table_columns(self, conn: Connection, table: str) -> list[str]:
        """The columns of a table, in order ([] when there is no such table)."""

    def has_table(self, conn: Connection, table: str) -> bool:
        return bool(self.table_columns(conn, table))

    @abstractmethod
    def begin_write(self, conn: Connection) -> None:
        """Start the transaction of a write that must be all or nothing."""

    @contextmanager
    def write_transaction(self, conn: Connection) -> Iterator[Connection]:
        """All of it is written, or none of it."""
        self.begin_write(conn)
        try:
            yield conn
            self.before_commit(conn)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()

    def before_commit(self, conn: Connection) -> None:
        """Last words of every write transaction: count it in ``meta.data_version``
        (what ``data_stamp`` reads; SQLite has a data version of its own)."""
        bump_data_version(conn)

    def bulk_insert(self, conn: Connection, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Insert many rows (inside the caller's transaction); adapters override with a faster path."""
        names = ", ".join(quote_identifier(c) for c in columns)
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {quote_identifier(table)}({names}) VALUES ({marks})", rows)

    def bulk_insert_columns(self, conn: Connection, table: str, columns: Sequence[str],
                            data: Sequence[Any]) -> None:
        """``bulk_insert`` of column-wise values: one sequence per column (lists, ranges or numpy
        arrays; None for a missing value, never NaN); engines with a columnar path override it."""
        lists = [values.tolist() if hasattr(values, "tolist") else values for values in data]
        self.bulk_insert(conn, table, columns, zip(*lists, strict=True))

    def bulk_insert_column_batches(self, conn: Connection, table: str, columns: Sequence[str],
                                   batches: Iterable[Sequence[Any]]) -> None:
        """``bulk_insert_columns`` of one batch after another, as one load: an importer hands
        its file over a chunk at a time, and engines whose bulk path costs something per call
        (a statement, a COPY) override this to pay it once, or once per many chunks."""
        for data in batches:
            self.bulk_insert_columns(conn, table, columns, data)

    # Whether one statement per row is cheap (an embedded row store): upserts then go row by
    # row; elsewhere they go through bulk_insert into a staging table and two set statements.
    row_statements_are_cheap: ClassVar[bool] = False

    def widen_column(self, conn: Connection, table: str, column: str, sql_affinity: str) -> None:
        """Give an existing column a wider storage type (integer -> real), in the caller's
        transaction; engines with strict column types must, SQLite's affinities need not."""
        conn.execute(f"ALTER TABLE {quote_identifier(table)} ALTER COLUMN {quote_identifier(column)}"
                     f" TYPE {self.column_type(sql_affinity)}")

    def index_columns(self, conn: Connection, table: str) -> dict[str, tuple[str, ...]]:
        """The indexes the store made on a table (not those behind keys), with their columns."""
        return {}

    def tune_for_bulk_write(self, conn: Connection, *, scratch: bool = False) -> None:  # noqa: B027
        """Settings for a big write on this connection; ``scratch``: a store being built that
        nothing else reads and that is thrown away on failure (no journal needed)."""

    def end_bulk_write(self, conn: Connection) -> None:  # noqa: B027
        """Undo what ``tune_for_bulk_write(scratch=True)`` set that must not stay in the file."""

    def check_can_bulk_write(self) -> None:  # noqa: B027
        """Raise StoreError now, before a long read of the input, if this user cannot make or
        rewrite the store's tables (add columns, build indexes). Files are checked when opened."""

    def after_bulk_write(self, conn: Connection) -> None:  # noqa: B027
        """After a big write has committed (outside any transaction): what the engine needs so
        that reads of the new rows are fast from the first one."""

    def analyze(self, conn: Connection) -> None:
        """Refresh the planner's statistics after a bulk write (of the store's big tables only:
        a bare ANALYZE on a server would lock every table of the database)."""
        for table in ("profiles", "events"):
            self.analyze_table(conn, table)

    def analyze_table(self, conn: Connection, table: str) -> None:
        """Refresh the planner's statistics of one table (inside a transaction too)."""
        conn.execute(f"ANALYZE {quote_identifier(table)}")

    def release(self) -> None:  # noqa: B027
        """Let go of whatever this process keeps open on the store (before its file is replaced)."""

    def data_stamp(self, conn: Connection) -> object:
        """Changes whenever committed data may have changed (caches of member sets key on it)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        return None if row is None else row[0]

    # ----------------------------------------------------------------- reading
    def prepare_reads(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """Session settings that compiled queries rely on (SQLite: LIKE folds ASCII case)."""

    def stream(self, conn: Connection, sql: str, parameters: Sequence[Any] = (),
               size: int = 10_000) -> Iterator[list[Any]]:
        """A query's rows in batches, never the whole result in memory (member lists of millions).
        Nothing else may run on ``conn`` until the stream is read or closed."""
        if isinstance(conn, DriverConnection):
            yield from conn.stream(sql, parameters, size)  # type: ignore[attr-defined]
            return
        cursor = conn.execute(sql, parameters)
        try:
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            cursor.close()

    def int_array(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
        """The integers of a one-column query as one numpy int64 array (member sets read millions
        of pks: one joined string is parsed far faster than rows are fetched one by one)."""
        import numpy as np

        text = conn.execute(f"WITH s(v) AS ({sql}) SELECT string_agg(CAST(v AS TEXT), ',') FROM s",
                            parameters).fetchone()[0]
        if not text:
            return np.zeros(0, dtype=np.int64)
        return np.fromstring(text, dtype=np.int64, sep=",")

    def query_plan(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> list[str]:
        """How the engine runs a query, one line per step (for benchmarks and tuning)."""
        rows = conn.execute("EXPLAIN " + sql, parameters).fetchall()
        return [line for row in rows for line in str(row[-1]).splitlines()]

    supports_indexes: ClassVar[bool] = True  # B-tree indexes that help counts
    supports_partial_indexes: ClassVar[bool] = True
    keeps_search_index: ClassVar[bool] = False  # build_search_index makes one (SQLite, PostgreSQL)
    time_column_type: ClassVar[str] = "DOUBLE PRECISION"  # event times: epoch seconds
    compact_table_suffix: ClassVar[str] = ""

    def key_column(self, table: str) -> str:
        """The integer key of profiles and events. The writers number new rows themselves
        (max + 1, as SQLite's rowid does), so every engine gives the same rows the same keys."""
        return "BIGINT PRIMARY KEY"

    # ------------------------------------------- the quick search's index (store/schema/search.py)
    def search_index_columns(self, conn: Connection) -> tuple[str, ...]:
        """The profile columns the engine's search index covers now (none: the search scans)."""
        return ()

    def build_search_index(self, conn: Connection, columns: Sequence[str]) -> None:  # noqa: B027
        """(Re)build the search index over ``columns``, in the caller's write transaction; an
        engine without one scans, which is what it does by default."""

    def drop_search_index(self, conn: Connection) -> None:  # noqa: B027
        """Drop the search index, in the caller's write transaction (before a large write)."""

    def search_candidates(self, conn: Connection, columns: Sequence[str], words: Sequence[str],
                          limit: int) -> list[int] | None:
        """The pks, ascending, of every profile whose ``columns`` may hold each word, when the
        engine's search index can tell and they are at most ``limit``; None: the search reads
        every row (no index, words too short for it, or so many candidates that a scan finds
        the first page sooner). A superset: the search's own test still decides."""
        return None

    def describe_error(self, exc: BaseException) -> str:
        """A sentence a person understands for a low-level failure of this engine."""
        return f"{self.display}: {exc}"

    def segments_connection(self, conn: Connection) -> Connection:
        """Where the saved segments of the store behind ``conn`` live: the store itself, except
        for a source file's tables, whose segments live in a local SQLite file."""
        return conn

    # ------------------------------------------- tables the project did not create (store/engines/source.py)
    reads_source_tables: ClassVar[bool] = False
    # The catalog cannot change while a connection is open (a source file's mapping): it is
    # read once per connection; each read is a round trip per catalog table.
    fixed_catalog: ClassVar[bool] = False

    def source_connect(self) -> Connection:
        """A connection for reading a source file's tables, which may hold temporary views."""
        raise StoreError(f"{self.label} cannot read a source file's tables.")

    def source_ready(self, conn: Connection) -> None:  # noqa: B027
        """After a source connection's temporary views are made: nothing may write any more."""

    def release_source(self) -> None:  # noqa: B027
        """Let go of what ``source_connect`` keeps open."""

    def source_relation(self, conn: Connection, table: str, folder: Path) -> Relation | None:
        """A source table (or Parquet path, relative to ``folder``) as SQL to read it, with its
        columns' native types and a key unique to each row; None when there is no such table."""
        return None

    def source_value(self, column: str, kind: str) -> str:
        """SQL reading a source column of a kind (store/engines/source.py ``classify``) in the store's
        encoding of its attribute type."""
        raise NotImplementedError

    def source_epoch(self, column: str, kind: str) -> str:
        """SQL for a date or timestamp column as epoch seconds (a date: its midnight, UTC)."""
        raise NotImplementedError

    def source_literal(self, text: str) -> str:
        """A string literal (standard SQL doubles a quote)."""
        return "'" + text.replace("'", "''") + "'"

    def source_null_type(self, kind: str) -> str:
        """The SQL type of a missing value of a kind, in the store's encoding."""
        return {"string": "TEXT", "date": "TEXT", "datetime": "TEXT", "datetime_tz": "TEXT",
                "number": "DOUBLE PRECISION"}.get(kind, "BIGINT")


def bump_data_version(conn: Connection) -> None:
    """Count a committed write in ``meta`` (what ``data_stamp`` reads on engines without one)."""
    conn.execute("INSERT INTO meta(key, value) VALUES ('data_version', '1') ON CONFLICT(key)"
                 " DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)")


def quote_identifier(name: str) -> str:
    """Double-quote an identifier (standard SQL; only for names that come from the catalog)."""
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------ choosing one
URL_SCHEMES = ("postgresql://", "postgres://")
DUCKDB_PREFIX = "duckdb:"
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def engine_for(spec: str | Path) -> Engine:
    """The engine a ``--db`` value names (spec/engines.md).

    A path ending in ``.yaml`` or ``.yml`` is a source file mapping tables the
    project did not create (store/engines/source.py); one ending in ``.duckdb``
    or written ``duckdb:PATH`` is DuckDB; a
    ``postgresql://`` or ``postgres://`` URL is PostgreSQL; any other URL is
    refused (InputError, exit 2); everything else is an SQLite file.
    """
    text = str(spec)
    lowered = text.lower()
    if not is_utf8_text(text) and (SCHEME.match(text) or lowered.startswith(DUCKDB_PREFIX)
                                   or lowered.endswith(".duckdb")):
        raise InputError(f"{printable(redact(text))}: a database URL or a DuckDB file name must"
                         " be UTF-8 text (only an SQLite file's name may hold other bytes).")
    if lowered.endswith((".yaml", ".yml")) and not SCHEME.match(text):
        from store.engines.source import SourceEngine

        return SourceEngine(text)
    if lowered.startswith(URL_SCHEMES):
        from store.engines.postgres import PostgresEngine

        return PostgresEngine(text)
    if lowered.startswith(DUCKDB_PREFIX):
        from store.engines.duckdb import DuckDBEngine

        path = text[len(DUCKDB_PREFIX):]
        if not path:
            raise InputError("duckdb: needs a path, e.g. duckdb:shop.duckdb.")
        return DuckDBEngine(path)
    if lowered.startswith(("spark://", "sc://")):
        from store.engines.spark import SparkEngine

        return SparkEngine(text)
    if SCHEME.match(text):
        scheme = text.split("://", 1)[0]
        raise InputError(
            f"Unknown database URL scheme {scheme}:// in {redact(text)}: use a file path"
            " (SQLite), a .duckdb path, a postgresql:// URL, or spark://local or sc://HOST:PORT in"
            " a source file.")
    if lowered.endswith(".duckdb"):
        from store.engines.duckdb import DuckDBEngine

        return DuckDBEngine(text)
    from store.engines.sqlite import SQLiteEngine

    return SQLiteEngine(text)


def redact(url: str) -> str:
    """A URL with its password replaced by ``***`` (in the user part or as a ``password=`` parameter)."""
    url = re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)
