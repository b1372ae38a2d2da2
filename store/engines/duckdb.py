"""The DuckDB engine: a profile store in one ``.duckdb`` file, columnar and parallel.

DuckDB lets one process open a file read-write, and within that process
every connection must share one database instance with one configuration.
So the adapter keeps one instance per file and process, and each
``connect`` is a cursor of it (its own transactions, usable from its own
thread). Another process holding the file gets a clear "locked" message.

The instance's memory limit and threads are set deliberately
(``AUDIENCES_DUCKDB_MEMORY``, ``AUDIENCES_DUCKDB_THREADS``), so a big count
cannot take the whole machine from the app.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from store.engines.base import BufferedCursor, Connection, DriverConnection, Engine, quote_identifier
from store.engines.layout import (
    SCHEMA_VERSION,
    STORE_FORMAT,
    check_store_format,
    fixed_schema,
    install_schema,
)
from store.errors import StoreError
from store.files import check_store_path, printable

if TYPE_CHECKING:
    from store.engines.source import Relation

DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
BULK_ROWS = 100_000  # rows handed to DuckDB at once by bulk_insert

_instances: dict[Path, Any] = {}
_instances_lock = threading.Lock()


def _driver() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - a regular dependency
        raise StoreError("The DuckDB driver is not installed: pip install duckdb.") from exc
    return duckdb


def _translated(exc: Exception) -> sqlite3.Error:
    """The DB-API class of Python's sqlite3 module that matches a DuckDB error."""
    duckdb = _driver()
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        return sqlite3.OperationalError(f"interrupted: {text}")
    if isinstance(exc, duckdb.ConstraintException | duckdb.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, duckdb.CatalogException | duckdb.ParserException | duckdb.BinderException
                  | duckdb.OperationalError | duckdb.IOException):
        return sqlite3.OperationalError(text)
    if isinstance(exc, duckdb.ProgrammingError | duckdb.InvalidInputException):
        return sqlite3.ProgrammingError(text)
    return sqlite3.DatabaseError(text)


class DuckDBConnection(DriverConnection):
    """The store's Connection protocol over one DuckDB cursor."""

    def __init__(self, raw: Any, engine: DuckDBEngine, readonly: bool) -> None:
        super().__init__(raw, engine)
        self.readonly = readonly
        self._in_transaction = False

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> BufferedCursor:
        self.check_progress()
        self._track(sql)
        try:
            result = self._raw.execute(sql, list(parameters) if parameters else None)
            description = result.description
            rows = result.fetchall() if description is not None else []
        except Exception as exc:
            if isinstance(exc, sqlite3.Error):
                raise
            raise _translated(exc) from exc
        return BufferedCursor(rows, description, len(rows) if description else -1)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> BufferedCursor:
        self.check_progress()
        rows = [list(row) for row in parameters]
        if rows:
            try:
                self._raw.executemany(sql, rows)
            except Exception as exc:
                raise _translated(exc) from exc
        return BufferedCursor([], None, len(rows))

    def stream(self, sql: str, parameters: Sequence[Any] = (), size: int = 10_000) -> Iterator[list[Any]]:
        """Rows in batches, without reading them all (nothing else may run on this connection meanwhile)."""
        self.check_progress()
        try:
            result = self._raw.execute(sql, list(parameters) if parameters else None)
            while batch := result.fetchmany(size):
                yield batch
                self.check_progress()
        except Exception as exc:
            if isinstance(exc, sqlite3.Error):
                raise
            raise _translated(exc) from exc

    def int_column(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        """The first column of a query as one numpy array, straight from DuckDB's vectors."""
        self.check_progress()
        try:
            result = self._raw.execute(sql, list(parameters) if parameters else None)
            columns = result.fetchnumpy()
        except Exception as exc:
            if isinstance(exc, sqlite3.Error):
                raise
            raise _translated(exc) from exc
        return next(iter(columns.values()))

    def _track(self, sql: str) -> None:
        head = sql.lstrip()[:8].upper()
        if head.startswith("BEGIN"):
            self._in_transaction = True
        elif head.startswith(("COMMIT", "ROLLBACK", "END")):
            self._in_transaction = False

    def interrupt(self) -> None:
        with contextlib.suppress(Exception):  # closed meanwhile: nothing is running to stop
            self._raw.interrupt()


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"
    label = "DuckDB"
    supports_indexes: ClassVar[bool] = False  # its zone maps and vectorised scans do the work
    supports_partial_indexes: ClassVar[bool] = False

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def short_name(self) -> str:
        return printable(self.path.name)

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    # ------------------------------------------------------------ connections
    def _instance(self) -> Any:
        key = self.path.resolve()
        with _instances_lock:
            instance = _instances.get(key)
            if instance is None:
                duckdb = _driver()
                try:
                    instance = duckdb.connect(str(self.path), config=instance_config())
                except Exception as exc:
                    raise StoreError(self.describe_error(exc)) from exc
                _instances[key] = instance
            return instance

    def connect(self, *, readonly: bool = False) -> DuckDBConnection:
        check_store_path(self.path, "DuckDB store")
        if readonly and not self.exists():
            raise StoreError(f"No store at {self.path}. Create one with"
                             f" `audiences-tui sample --db {self.path}` or an import.")
        return DuckDBConnection(self._instance().cursor(), self, readonly)

    def open_store(self, *, readonly: bool = False) -> DuckDBConnection:
        check_store_path(self.path, "DuckDB store")
        if not self.exists():
            raise StoreError(f"No store at {self.path}. Create one with"
                             f" `audiences-tui sample --db {self.path}` or an import.")
        conn = self.connect(readonly=readonly)
        try:
            self._check_format(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_format(self, conn: Connection) -> None:
        foreign = f"{self.path} is a DuckDB file but not an Audiences store."
        check_store_format(conn, str(self.path), missing=foreign, foreign=foreign)

    def create_store(self) -> DuckDBConnection:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        try:
            tables = self._user_tables(conn)
            if tables and "meta" not in tables:
                raise StoreError(f"{self.path} is a DuckDB file but not an Audiences store.")
            if "meta" in tables:
                self._check_format(conn)
            install_schema(conn, fixed_schema(self), STORE_FORMAT, SCHEMA_VERSION)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _user_tables(conn: Connection) -> set[str]:
        return {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}

    @staticmethod
    def forget(path: str | Path) -> None:
        """Close this process's instance of a file (before it is replaced or removed)."""
        with _instances_lock:
            instance = _instances.pop(Path(path).resolve(), None)
        if instance is not None:
            instance.close()

    def release(self) -> None:
        self.forget(self.path)

    def analyze(self, conn: Connection) -> None:
        """Nothing: DuckDB keeps its statistics up to date as rows are inserted."""

    def analyze_table(self, conn: Connection, table: str) -> None:
        """Nothing (see ``analyze``)."""

    # ----------------------------------------------------------------- dialect
    def column_type(self, sql_affinity: str) -> str:
        return {"TEXT": "VARCHAR", "INTEGER": "BIGINT", "REAL": "DOUBLE"}.get(sql_affinity, sql_affinity)

    time_column_type = "DOUBLE"

    def column_storage(self, sql_affinity: str, mostly_distinct: bool) -> str:
        """A text column whose values mostly differ (emails, external ids) is stored uncompressed:
        DuckDB would choose FSST for it, which every scan decompresses string by string before a
        suffix or contains condition can read it (bench/RESULTS.md, "Text columns'
        compression"). A column of repeated values keeps DuckDB's dictionary, on which such a
        condition is evaluated once per distinct value."""
        return " USING COMPRESSION uncompressed" if mostly_distinct and sql_affinity == "TEXT" else ""

    def key_column(self, table: str) -> str:
        # No primary key index: the writers keep keys unique, and the index made loads 5x slower.
        return "BIGINT NOT NULL"

    def table_columns(self, conn: Connection, table: str) -> list[str]:
        return [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'"
            " AND table_name = ? ORDER BY ordinal_position", (table,))]

    def search_candidates(self, conn: Connection, columns: Sequence[str], words: Sequence[str],
                          limit: int) -> list[int] | None:
        """DuckDB keeps no search index: one scan with ``contains(lower(...))``, which folds
        every alphabet (so it finds a superset of LIKE's ASCII-only folding) and is far
        cheaper than the exact ASCII folding of a word with other letters (translate())."""
        if not columns or not words:
            return None
        conditions = " AND ".join(
            "(" + " OR ".join(f"contains(lower({quote_identifier(column)}), lower(?))"
                              for column in columns) + ")" for _ in words)
        parameters = [word for word in words for _ in columns]
        rows = conn.execute(f"SELECT pk FROM profiles WHERE {conditions} ORDER BY pk LIMIT ?",
                            [*parameters, limit + 1]).fetchall()
        return None if len(rows) > limit else [int(row[0]) for row in rows]

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN TRANSACTION")

    def bulk_insert(self, conn: Connection, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Rows in batches through a registered column table (executemany is row by row)."""
        raw = conn.raw if isinstance(conn, DuckDBConnection) else None
        if raw is None:
            super().bulk_insert(conn, table, columns, rows)
            return
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BULK_ROWS:
                _insert_batch(raw, table, columns, batch)
                batch = []
        if batch:
            _insert_batch(raw, table, columns, batch)

    def bulk_insert_columns(self, conn: Connection, table: str, columns: Sequence[str],
                            data: Sequence[Any]) -> None:
        """Columns registered as numpy arrays as they are (typed arrays scan without a copy)."""
        import numpy as np

        raw = conn.raw if isinstance(conn, DuckDBConnection) else None
        if raw is None:
            super().bulk_insert_columns(conn, table, columns, data)
            return
        arrays = {f"c{i}": values if isinstance(values, np.ndarray)
                  else np.arange(values.start, values.stop, values.step, dtype=np.int64)
                  if isinstance(values, range) else np.array(values, dtype=object)
                  for i, values in enumerate(data)}
        _insert_arrays(raw, table, columns, arrays)

    def bulk_insert_column_batches(self, conn: Connection, table: str, columns: Sequence[str],
                                   batches: Iterable[Sequence[Any]]) -> None:
        """Batches joined into inserts of about BULK_ROWS rows: each insert has a fixed cost
        (registering the arrays, planning the statement) that small chunks would pay each."""
        pending: list[Sequence[Any]] = []
        rows = 0
        for data in batches:
            if pending and _kinds(data) != _kinds(pending[0]):  # (ints, then floats: not mixed)
                self.bulk_insert_columns(conn, table, columns, _joined_batches(pending))
                pending, rows = [], 0
            pending.append(data)
            rows += len(data[0]) if data else 0
            if rows >= BULK_ROWS:
                self.bulk_insert_columns(conn, table, columns, _joined_batches(pending))
                pending, rows = [], 0
        if pending:
            self.bulk_insert_columns(conn, table, columns, _joined_batches(pending))

    def int_array(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
        import numpy as np

        if not isinstance(conn, DuckDBConnection):
            return super().int_array(conn, sql, parameters)
        values = conn.int_column(sql, parameters)
        return np.asarray(values.compressed() if np.ma.isMaskedArray(values) else values, dtype=np.int64)

    # ------------------------------------------- tables the project did not create (store/engines/source.py)
    reads_source_tables: ClassVar[bool] = True
    _source: Any = None

    def source_connect(self) -> DuckDBConnection:
        """A cursor of one instance per engine object: the file opened read-only (``:memory:`` for
        Parquet files alone). Without the ICU extension (not shipped here) a TIMESTAMPTZ casts to
        TIMESTAMP as UTC."""
        with _instances_lock:
            if self._source is None:
                duckdb = _driver()
                memory = self.location == ":memory:"
                if not memory and not self.path.is_file():
                    raise StoreError(f"No DuckDB file at {self.path}.")
                try:
                    self._source = duckdb.connect(self.location, read_only=not memory,
                                                  config=instance_config())
                except Exception as exc:
                    raise StoreError(self.describe_error(exc)) from exc
            return DuckDBConnection(self._source.cursor(), self, True)

    def release_source(self) -> None:
        with _instances_lock:
            instance, self._source = self._source, None
        if instance is not None:
            instance.close()

    def source_relation(self, conn: Connection, table: str, folder: Path) -> Relation | None:
        from store.engines.source import Relation

        if table.lower().endswith(".parquet") or "/" in table or "*" in table:
            path = Path(table) if Path(table).is_absolute() else folder / table
            if "*" not in table and not path.exists():
                return None
            sql = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}', file_row_number = true)"
            key = "s.file_row_number"
        else:
            sql = ".".join(quote_identifier(part) for part in table.split("."))
            key = "s.rowid"
        try:
            rows = conn.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
        except sqlite3.Error:
            return None
        columns = {str(r[0]): str(r[1]) for r in rows}
        if key == "s.file_row_number":
            columns.pop("file_row_number", None)
        return Relation(sql, columns, key)

    def source_value(self, column: str, kind: str) -> str:
        if kind in ("boolean", "integer"):
            return f"CAST({column} AS BIGINT)"
        if kind == "number":
            return f"CAST({column} AS DOUBLE)"
        if kind == "string":
            return f"NULLIF(CAST({column} AS VARCHAR), '')"
        if kind == "date":
            return f"strftime(CAST({column} AS DATE), '%Y-%m-%d')"
        moment = f"CAST({column} AS TIMESTAMP)"  # a TIMESTAMPTZ in the instance's time zone: UTC
        return (f"(strftime({moment}, '%Y-%m-%d %H:%M:%S') || CASE WHEN epoch_us({moment}) % 1000000 <> 0"
                f" THEN strftime({moment}, '.%f') ELSE '' END)")

    def source_epoch(self, column: str, kind: str) -> str:
        return f"CAST(epoch_us(CAST({column} AS TIMESTAMP)) AS DOUBLE) / 1000000"

    def source_null_type(self, kind: str) -> str:
        return {"number": "DOUBLE", "string": "VARCHAR", "date": "VARCHAR", "datetime": "VARCHAR",
                "datetime_tz": "VARCHAR"}.get(kind, "BIGINT")

    def describe_error(self, exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # DuckDB appends tuning hints
        lowered = text.lower()
        if "out of memory" in lowered or "could not allocate" in lowered:
            return (f"{self.path}: DuckDB ran out of the memory it may use; raise the limit with"
                    f" AUDIENCES_DUCKDB_MEMORY (now {duckdb_memory_limit()}, e.g. 4GB). ({text})")
        if "could not set lock" in lowered or "conflicting lock" in lowered:
            return (f"{self.path} is open in another program (DuckDB lets one program use a file at"
                    f" a time); close it and try again. ({text})")
        if "not a valid duckdb" in lowered or "unable to open" in lowered or "corrupt" in lowered:
            return f"{self.path} is not a DuckDB store or is damaged ({text})."
        if "permission" in lowered or "read-only" in lowered or "readonly" in lowered:
            return f"{self.path} cannot be written ({text})."
        return f"{self.path}: {text}"


def duckdb_memory_limit() -> str:
    """The memory DuckDB may use in this process (``AUDIENCES_DUCKDB_MEMORY``, else the default)."""
    return os.environ.get("AUDIENCES_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT)


def instance_config() -> dict[str, str | int]:
    """The settings of every DuckDB instance the app opens: its memory, its threads, and hash
    joins built on the side the compiler wrote as the subquery.

    The compiler always puts an event condition's profiles in the ``IN``/``EXISTS`` subquery,
    and that set is usually far smaller than the profiles an attribute filter keeps. DuckDB's
    ``build_side_probe_side`` pass swaps the sides by its estimates, which cannot see through
    ``GROUP BY ... HAVING count(*) >= n`` (a few thousand profiles estimated as millions), and
    then builds the hash table on millions of profiles. Keeping the written sides is measured
    in bench/RESULTS.md ("Hash joins built on the subquery").
    """
    return {
        "memory_limit": duckdb_memory_limit(),
        "threads": int(os.environ.get("AUDIENCES_DUCKDB_THREADS", DEFAULT_THREADS)),
        "disabled_optimizers": "build_side_probe_side",
    }


def _insert_batch(raw: Any, table: str, columns: Sequence[str], batch: list[Sequence[Any]]) -> None:
    """One batch as registered column arrays, inserted by one statement (executemany goes row by row)."""
    import numpy as np

    arrays = {f"c{i}": np.array(values, dtype=object)
              for i, values in enumerate(zip(*batch, strict=True))}
    _insert_arrays(raw, table, columns, arrays)


def _kinds(data: Sequence[Any]) -> tuple[Any, ...]:
    """What a batch's columns are: a numpy array's dtype, else the Python sequence."""
    return tuple(getattr(values, "dtype", None) for values in data)


def _joined_batches(batches: list[Sequence[Any]]) -> list[Any]:
    """Column-wise batches of the same kinds as one batch."""
    import numpy as np

    if len(batches) == 1:
        return list(batches[0])
    joined: list[Any] = []
    for parts in zip(*batches, strict=True):
        if isinstance(parts[0], np.ndarray):
            joined.append(np.concatenate(parts))
        elif all(isinstance(part, range) and part.step == 1 for part in parts) and all(
                a.stop == b.start for a, b in pairwise(parts)):
            joined.append(range(parts[0].start, parts[-1].stop))
        else:
            values: list[Any] = []
            for part in parts:
                values.extend(part)
            joined.append(values)
    return joined


def _insert_arrays(raw: Any, table: str, columns: Sequence[str], arrays: dict[str, Any]) -> None:
    """Registered column arrays ``c0``, ``c1``... inserted by one statement."""
    name = f"audiences_bulk_{threading.get_ident()}"
    picks = ", ".join(f"c{i}" for i in range(len(columns)))
    try:
        raw.register(name, arrays)
        try:
            raw.execute(f"INSERT INTO {quote_identifier(table)}"
                        f"({', '.join(quote_identifier(c) for c in columns)}) SELECT {picks} FROM {name}")
        finally:
            with contextlib.suppress(Exception):  # fails in an aborted transaction; the error above counts
                raw.unregister(name)
    except Exception as exc:
        raise _translated(exc) from exc
