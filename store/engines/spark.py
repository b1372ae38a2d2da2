"""The Spark engine: tables in a lake or warehouse, read through a source file (store/engines/source.py).

``spark://local`` runs Spark in this process (local mode: for laptops and
tests); ``sc://HOST:PORT`` talks to a cluster through Spark Connect. Spark holds
no store of its own here: a source file maps its tables (or Parquet files) onto
profiles, events and entities, and everything is read in place.

One Spark session per location and process (a local session takes seconds and
gigabytes to start); every connection is a view of it, tagging its jobs so
that cancelling one connection's query stops only that query. The session runs
in UTC with ANSI SQL and double-quoted identifiers, so the SQL the rest of
store/ writes (``"column"``) means there what it means elsewhere. Values are
inlined as Spark literals (Spark's parameter markers are not allowed in every
place the store uses them, such as ``LIMIT``).
"""

from __future__ import annotations

import contextlib
import math
import socket
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from store.engines.base import BufferedCursor, Connection, DriverConnection, Engine, redact
from store.errors import InputError, StoreError

if TYPE_CHECKING:
    from store.engines.source import Relation

SCHEMES = ("spark://", "sc://")
CONNECT_TIMEOUT_S = 5
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
}
LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.memory": "1g",
}

_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError as exc:
        raise StoreError("Spark needs the pyspark package: pip install 'audiences-tui[spark]'"
                         " (and a Java 17 runtime for spark://local).") from exc
    return pyspark.sql


def spark_literal(value: Any) -> str:
    """A Python value as a Spark SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        # Spark types a literal by its size (INT, then BIGINT); LIMIT takes only an INT.
        return str(value) if -(2**63) <= value < 2**63 else f"CAST('{value}' AS DECIMAL(38, 0))"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"CAST('{value}' AS DOUBLE)"
        return f"CAST('{value!r}' AS DOUBLE)"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def inline(sql: str, values: Sequence[Any]) -> str:
    """``?`` markers outside quotes replaced by the values as literals (backslash escapes, as Spark)."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    index = 0
    for char in sql:
        if quote is not None:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
            out.append(char)
        elif char == "?":
            if index >= len(values):
                raise sqlite3.ProgrammingError("more markers than values")
            out.append(spark_literal(values[index]))
            index += 1
        else:
            out.append(char)
    if index != len(values):
        raise sqlite3.ProgrammingError(f"{len(values)} values for {index} markers")
    return "".join(out)


def _plain(value: Any) -> Any:
    """Spark's DECIMAL results as int or float, like the other engines."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _description(columns: list[str]) -> Any:
    """DB-API cursor description of a result's columns (names only), None for no columns."""
    return [(name, None, None, None, None, None, None) for name in columns] or None


class SparkConnection(DriverConnection):
    """The store's Connection protocol over the shared Spark session; its jobs carry its own tag."""

    def __init__(self, session: Any, engine: SparkEngine) -> None:
        super().__init__(session, engine)
        self.tag = f"audiences-{uuid.uuid4().hex[:12]}"

    @property
    def in_transaction(self) -> bool:
        return False

    def _frame(self, sql: str, parameters: Sequence[Any]) -> Any:
        self.check_progress()
        self._raw.addTag(self.tag)
        try:
            return self._raw.sql(inline(sql, parameters) if parameters else sql)
        finally:
            self._raw.removeTag(self.tag)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> BufferedCursor:
        try:
            frame = self._frame(sql, parameters)
            self._raw.addTag(self.tag)
            try:
                rows = [tuple(_plain(v) for v in row) for row in frame.collect()]
            finally:
                self._raw.removeTag(self.tag)
            return BufferedCursor(rows, _description(list(frame.columns)), len(rows))
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translated(exc) from exc

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> BufferedCursor:
        raise sqlite3.OperationalError("attempt to write a readonly database: Spark tables are read here")

    def stream(self, sql: str, parameters: Sequence[Any] = (), size: int = 10_000) -> Iterator[list[Any]]:
        """Rows in batches as Spark hands them over (never the whole result in this process)."""
        try:
            frame = self._frame(sql, parameters)
            self._raw.addTag(self.tag)
            try:
                batch: list[Any] = []
                for row in frame.toLocalIterator():
                    batch.append(tuple(_plain(v) for v in row))
                    if len(batch) >= size:
                        yield batch
                        batch = []
                        self.check_progress()
                if batch:
                    yield batch
            finally:
                self._raw.removeTag(self.tag)
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translated(exc) from exc

    def commit(self) -> None:
        """Nothing: nothing is written."""

    def rollback(self) -> None:
        """Nothing: nothing is written."""

    def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.interruptTag(self.tag)

    def close(self) -> None:
        """The session stays for the process's other connections; only companions close."""
        for companion in self.companions:
            companion.close()
        self.companions.clear()


def _translated(exc: Exception) -> sqlite3.Error:
    text = " ".join(str(exc).split())
    if "cancel" in text.lower() or "interrupt" in text.lower():
        return sqlite3.OperationalError(f"interrupted: {text}")
    return sqlite3.OperationalError(text[:2000])


class SparkEngine(Engine):
    name = "spark"
    dialect = "spark"
    label = "Spark"
    reads_source_tables: ClassVar[bool] = True
    supports_indexes: ClassVar[bool] = False
    supports_partial_indexes: ClassVar[bool] = False

    def __init__(self, location: str) -> None:
        super().__init__(location)
        lowered = location.lower()
        if lowered.startswith("spark://") and lowered.rstrip("/") != "spark://local":
            raise InputError(f"{redact(location)}: Spark runs locally as spark://local; reach a cluster"
                             " through Spark Connect, sc://HOST:PORT.")
        self.local = lowered.startswith("spark://")
        if not self.local:
            parts = urlsplit(location)
            try:
                port = parts.port
            except ValueError:
                port = None
            if not parts.hostname or port is None:
                raise InputError(f"{redact(location)} is not a Spark Connect URL: write sc://HOST:PORT.")
            self.host, self.port = parts.hostname, port

    @property
    def display(self) -> str:
        return redact(self.location)

    @property
    def short_name(self) -> str:
        return "local" if self.local else f"{self.host}:{self.port}"

    # ------------------------------------------------------------ connections
    def session(self) -> Any:
        """The process's Spark session for this location, started on first use."""
        with _sessions_lock:
            found = _sessions.get(self.location)
            if found is not None:
                return found
            sql = _pyspark()
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
            builder = sql.SparkSession.builder
            try:
                if self.local:
                    builder = builder.master("local[2]").appName("audiences-tui")
                    for key, value in {**LOCAL_SETTINGS, **SESSION_SETTINGS}.items():
                        builder = builder.config(key, value)
                    session = builder.getOrCreate()
                    session.sparkContext.setLogLevel("ERROR")
                else:
                    self._check_reachable()
                    from pyspark.sql.connect.session import SparkSession as RemoteSession

                    session = RemoteSession.builder.remote(self.location).getOrCreate()
                    for key, value in SESSION_SETTINGS.items():
                        session.conf.set(key, value)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(self.describe_error(exc)) from exc
            _sessions[self.location] = session
            return session

    def _check_reachable(self) -> None:
        """A cluster that does not answer is said at once (the client would retry for minutes)."""
        try:
            socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise StoreError(f"Cannot reach the Spark Connect server at {self.display}: start it, or check"
                             f" the host and port ({exc}).") from None

    def _no_store(self) -> StoreError:
        return StoreError(f"Spark ({self.display}) holds no store of its own: map its tables or Parquet"
                          " files with a source file (engine: " + self.display + ") and open that file.")

    def exists(self) -> bool:
        return False

    def connect(self, *, readonly: bool = False) -> Connection:
        raise self._no_store()

    def open_store(self, *, readonly: bool = False) -> Connection:
        raise self._no_store()

    def create_store(self) -> Connection:
        raise self._no_store()

    def source_connect(self) -> SparkConnection:
        return SparkConnection(self.session(), self)

    def source_ready(self, conn: Connection) -> None:
        """Numbered profile keys (text ids) are kept in Spark's memory while the views stand, so
        that every count does not number the ids again."""
        from store.engines.source import KEYS_VIEW

        with contextlib.suppress(sqlite3.Error):
            conn.execute(f"CACHE LAZY TABLE {KEYS_VIEW}")

    @staticmethod
    def stop_sessions(location: str | None = None) -> None:
        """Stop the Spark sessions this process started (one location's, or all of them)."""
        with _sessions_lock:
            names = [location] if location is not None else list(_sessions)
            sessions = [_sessions.pop(name) for name in names if name in _sessions]
        for session in sessions:
            with contextlib.suppress(Exception):
                session.stop()

    # ----------------------------------------------------------------- dialect
    def column_type(self, sql_affinity: str) -> str:
        return {"TEXT": "STRING", "INTEGER": "BIGINT", "REAL": "DOUBLE"}.get(sql_affinity, sql_affinity)

    def table_columns(self, conn: Connection, table: str) -> list[str]:
        return []

    def begin_write(self, conn: Connection) -> None:
        raise StoreError(f"{self.display}: Spark tables are only read here.")

    def int_array(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
        import numpy as np

        rows = conn.execute(sql, parameters).fetchall()
        return np.array([row[0] for row in rows if row[0] is not None], dtype=np.int64)

    def describe_error(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        lowered = text.lower()
        if "java" in lowered and ("not found" in lowered or "no such file" in lowered
                                  or "java_home" in lowered or "gateway" in lowered):
            return (f"Spark local mode could not start its Java runtime: install Java 17 (or set JAVA_HOME)"
                    f" ({text[:300]}).")
        if "unavailable" in lowered or "connection refused" in lowered or "failed to connect" in lowered:
            return (f"Cannot reach the Spark Connect server at {self.display}: start it, or check the host"
                    " and port.")
        return f"{self.display}: {text[:500]}"

    # ------------------------------------------- tables the project did not create (store/engines/source.py)
    def source_relation(self, conn: Connection, table: str, folder: Path) -> Relation | None:
        from store.engines.source import Relation

        if table.lower().endswith(".parquet") or "/" in table or "*" in table:
            path = Path(table) if Path(table).is_absolute() else folder / table
            if "*" not in table and not path.exists():
                return None
            sql = "parquet.`" + str(path).replace("`", "``") + "`"
        else:
            sql = ".".join("`" + part.replace("`", "``") + "`" for part in table.split("."))
        try:
            schema = self.session().sql(f"SELECT * FROM {sql}").schema
        except StoreError:
            raise
        except Exception:
            return None
        columns = {field.name: field.dataType.simpleString() for field in schema.fields}
        return Relation(sql, columns, "monotonically_increasing_id()")

    def source_literal(self, text: str) -> str:
        return spark_literal(text)

    def source_value(self, column: str, kind: str) -> str:
        if kind == "boolean":
            return f"CAST(CAST({column} AS INT) AS BIGINT)"
        if kind == "integer":
            return f"CAST({column} AS BIGINT)"
        if kind == "number":
            return f"CAST({column} AS DOUBLE)"
        if kind == "string":
            return f"NULLIF(CAST({column} AS STRING), '')"
        if kind == "date":
            return f"date_format({column}, 'yyyy-MM-dd')"
        moment = f"CAST({column} AS TIMESTAMP)"  # the session is in UTC
        return (f"concat(date_format({moment}, 'yyyy-MM-dd HH:mm:ss'), CASE WHEN unix_micros({moment})"
                f" % 1000000 <> 0 THEN date_format({moment}, '.SSSSSS') ELSE '' END)")

    def source_epoch(self, column: str, kind: str) -> str:
        return f"(CAST(unix_micros(CAST({column} AS TIMESTAMP)) AS DOUBLE) / 1000000)"

    def source_null_type(self, kind: str) -> str:
        return {"number": "DOUBLE", "integer": "BIGINT", "int": "BIGINT",
                "boolean": "BIGINT"}.get(kind, "STRING")
