"""The PostgreSQL engine: a profile store in a schema of a server the team already runs.

``--db postgresql://user@host/db?schema=NAME``: a libpq URL; ``schema``
(default ``public``) picks the schema holding the store's tables. Text columns
are created ``COLLATE "C"`` so that text orders byte by byte, as on SQLite.
Connections run in autocommit mode like the SQLite ones: nothing is in a
transaction unless ``write_transaction`` opens one.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from store.engines.base import (
    Connection,
    DriverConnection,
    Engine,
    quote_identifier,
    redact,
)
from store.engines.layout import (
    SCHEMA_VERSION,
    STORE_FORMAT,
    check_store_format,
    fixed_schema,
    install_schema,
)
from store.errors import InputError, StoreError

if TYPE_CHECKING:
    from store.engines.source import Relation

CONNECT_TIMEOUT_S = 5
# Memory for each sort and hash of our sessions (the server's default, 4MB, is often left as
# installed). A set tested inside an OR (``pk IN (set) OR ...``) is hashed only when it fits
# in work_mem x hash_mem_multiplier; a bigger one is read again for every profile, and a
# count of 1M profiles ran for minutes. Hashes get four times work_mem, sorts work_mem.
DEFAULT_WORK_MEM = "64MB"
HASH_MEM_MULTIPLIER = "4"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _driver() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a regular dependency
        raise StoreError('The PostgreSQL driver is not installed: pip install "psycopg[binary]".') from exc
    return psycopg


@lru_cache(maxsize=1024)
def pyformat(sql: str) -> str:
    """``?`` markers as psycopg's ``%s`` (outside quotes), and every literal ``%`` doubled."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


def _translated(exc: Exception) -> sqlite3.Error:
    """The DB-API class of Python's sqlite3 module that matches a psycopg error."""
    psycopg = _driver()
    text = str(exc).strip()
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return sqlite3.OperationalError(f"interrupted: {text}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return sqlite3.OperationalError(f"permission denied: {text} (ask for rights on the schema)")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return sqlite3.OperationalError(f"attempt to write a readonly database: {text}")
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, psycopg.DataError):
        return sqlite3.DataError(text)
    if isinstance(exc, psycopg.OperationalError | psycopg.ProgrammingError):
        return sqlite3.OperationalError(text)
    return sqlite3.DatabaseError(text)


def _copy_rows(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               translated: type[Exception]) -> None:
    """``rows`` written by one COPY on the driver connection ``raw``; an error of class
    ``translated`` becomes the matching sqlite3 class."""
    names = ", ".join(quote_identifier(c) for c in columns)
    try:
        with raw.cursor().copy(f"COPY {quote_identifier(table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except translated as exc:
        raise _translated(exc) from exc


SEARCH_INDEX_PREFIX = "profiles_search_"


class PostgresConnection(DriverConnection):
    """The store's Connection protocol over one psycopg connection."""

    def __init__(self, raw: Any, engine: PostgresEngine) -> None:
        super().__init__(raw, engine)

    @property
    def in_transaction(self) -> bool:
        psycopg = _driver()
        return bool(self._raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        self.check_progress()
        try:
            if not parameters:  # psycopg reads % as a marker only when values are passed
                return self._raw.execute(sql, None, prepare=False)
            return self._raw.execute(pyformat(sql), tuple(parameters), prepare=False)
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translated(exc) from exc

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        self.check_progress()
        try:
            cursor = self._raw.cursor()
            cursor.executemany(pyformat(sql), [tuple(row) for row in parameters])
            return cursor
        except Exception as exc:
            raise _translated(exc) from exc

    def stream(self, sql: str, parameters: Sequence[Any] = (), size: int = 10_000) -> Iterator[list[Any]]:
        """Rows in batches, as the server sends them (never the whole result in memory)."""
        self.check_progress()
        batch: list[Any] = []
        try:
            cursor = self._raw.cursor()
            query, values = (pyformat(sql), tuple(parameters)) if parameters else (sql, None)
            # libpq 17+ hands rows over in chunks (4x less CPU than one result per row)
            chunked = {"size": size} if _driver().pq.version() >= 170000 else {}
            for row in cursor.stream(query, values, **chunked):
                batch.append(row)
                if len(batch) >= size:
                    yield batch
                    batch = []
                    self.check_progress()
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translated(exc) from exc
        if batch:
            yield batch

    def interrupt(self) -> None:
        cancel = getattr(self._raw, "cancel_safe", None) or self._raw.cancel
        with contextlib.suppress(Exception):
            cancel()


class PostgresEngine(Engine):
    name = "postgresql"
    dialect = "postgres"
    label = "PostgreSQL"
    supports_partial_indexes: ClassVar[bool] = True

    def __init__(self, location: str) -> None:
        super().__init__(location)
        parts = urlsplit(location)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        self.schema = schemas[-1] if schemas else "public"
        if not IDENTIFIER.match(self.schema):
            raise InputError(f"?schema={self.schema} in {redact(location)} is not a plain schema name"
                             " (letters, digits and _).")
        head, _, rest = location.partition("?")
        kept = "&".join(pair for pair in rest.split("&") if pair and not pair.startswith("schema="))
        self.libpq_url = head + ("?" + kept if kept else "")
        self._check_url()

    def _check_url(self) -> None:
        """Refuse a URL that libpq would refuse, before any connection (a wrong URL is input: exit 2)."""
        from psycopg.conninfo import conninfo_to_dict

        try:
            settings = conninfo_to_dict(self.libpq_url)
        except Exception as exc:
            raise InputError(f"{redact(self.location)} is not a valid PostgreSQL URL"
                             f" ({' '.join(str(exc).split())}).") from None
        port = str(settings.get("port", "5432"))
        if not all(part.isdigit() for part in port.split(",")):
            raise InputError(f"{redact(self.location)} is not a valid PostgreSQL URL"
                             f" (port {port!r} is not a number).")

    @property
    def display(self) -> str:
        return redact(self.location)

    @property
    def identity(self) -> str:
        """``postgresql://user@host:port/db?...&schema=NAME``: no password (neither in the user part
        nor as a parameter), the schema always named (``public`` when the URL gives none)."""
        parts = urlsplit(self.libpq_url)
        user, at, host = parts.netloc.rpartition("@")
        netloc = user.split(":", 1)[0] + at + host
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
        return (f"postgresql://{netloc}{parts.path}?"
                + urlencode([*query, ("schema", self.schema)], safe="/"))

    @property
    def short_name(self) -> str:
        parts = urlsplit(self.location)
        database = parts.path.lstrip("/") or parts.username or "postgres"
        return database if self.schema == "public" else f"{database}.{self.schema}"

    # ------------------------------------------------------------ connections
    def _raw_connect(self, *, readonly: bool) -> Any:
        psycopg = _driver()
        try:
            raw = psycopg.connect(self.libpq_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise StoreError(self.describe_error(exc)) from exc
        except Exception as exc:  # a URL that libpq cannot parse
            raise InputError(f"{redact(self.location)} is not a valid PostgreSQL URL ({exc}).") from exc
        _numbers_as_python_numbers(raw)
        try:
            raw.execute(f"SET search_path TO {quote_identifier(self.schema)}")
            if readonly:
                raw.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            raw.close()
            raise StoreError(self.describe_error(exc)) from exc
        work_mem = os.environ.get("AUDIENCES_POSTGRES_WORK_MEM", DEFAULT_WORK_MEM)
        try:
            raw.execute("SELECT set_config('work_mem', %s, false)", (work_mem,))
        except psycopg.Error as exc:
            raw.close()
            raise StoreError(f"AUDIENCES_POSTGRES_WORK_MEM={work_mem!r} is not a memory size"
                             f" PostgreSQL takes (for example 64MB or 1GB): {exc}") from exc
        with contextlib.suppress(psycopg.errors.UndefinedObject):  # before PostgreSQL 13
            raw.execute("SELECT set_config('hash_mem_multiplier', %s, false)",
                        (HASH_MEM_MULTIPLIER,))
        return raw

    def connect(self, *, readonly: bool = False) -> PostgresConnection:
        return PostgresConnection(self._raw_connect(readonly=readonly), self)

    def exists(self) -> bool:
        conn = self.connect(readonly=True)
        try:
            return self.has_table(conn, "meta")
        finally:
            conn.close()

    def open_store(self, *, readonly: bool = False) -> PostgresConnection:
        conn = self.connect(readonly=readonly)
        try:
            self._check_format(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_format(self, conn: Connection) -> None:
        where = f"schema {self.schema} of {self.display}"
        self._check_rights(conn)
        check_store_format(
            conn, f"The store in {where}",
            missing=(f"No store in {where}. Create one with"
                     f" `audiences-tui sample --db {self.display}` or an import."),
            foreign=f"The tables in {where} are not an Audiences store.")

    def create_store(self) -> PostgresConnection:
        conn = self.connect()
        try:
            if self.has_table(conn, "meta"):
                self._check_format(conn)
            elif self._has_tables(conn):
                raise StoreError(f"Schema {self.schema} of {self.display} holds other tables; pick an"
                                 " empty schema with ?schema=NAME.")
            try:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
            except sqlite3.Error as exc:
                raise StoreError(self.describe_error(exc)) from exc
            install_schema(conn, fixed_schema(self), STORE_FORMAT, SCHEMA_VERSION)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(self.describe_error(exc)) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_rights(self, conn: Connection) -> None:
        """A schema the role may not use hides its tables: say so, not "no store"."""
        row = conn.execute("SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = ?",
                           (self.schema,)).fetchone()
        if row is not None and not row[0]:
            raise StoreError(f"{self.display}: the role has no rights on schema {self.schema}; grant them"
                             " (GRANT USAGE, SELECT) or pick another schema with ?schema=NAME.")

    def check_can_bulk_write(self) -> None:
        """Imports add columns and build indexes, which only the owner of a table may do, and may
        create tables; a role with less learns it before the file is read, not after."""
        conn = self.connect(readonly=True)
        try:
            user = conn.execute("SELECT current_user").fetchone()[0]
            schema_exists, can_create = conn.execute(
                "SELECT count(*) > 0, coalesce(bool_and(has_schema_privilege(oid, 'CREATE')), false)"
                " FROM pg_namespace WHERE nspname = ?", (self.schema,)).fetchone()
            if not schema_exists:
                can_create = conn.execute(
                    "SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]
            not_owned = [row[0] for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ? AND c.relkind = 'r' AND NOT pg_has_role(c.relowner, 'USAGE')"
                " ORDER BY c.relname", (self.schema,))]
        except sqlite3.Error as exc:
            raise StoreError(self.describe_error(exc)) from exc
        finally:
            conn.close()
        if not can_create:
            raise StoreError(f"{self.display}: role {user} may not create tables in schema"
                             f" {self.schema}; grant it CREATE on the schema or use the role that"
                             " owns the store. Nothing was written.")
        if not_owned:
            raise StoreError(f"{self.display}: role {user} does not own table {not_owned[0]} of schema"
                             f" {self.schema} (imports add columns and indexes, which only the"
                             " owner may); use the role that owns the store. Nothing was written.")

    def _has_tables(self, conn: Connection) -> bool:
        row = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ?",
                           (self.schema,)).fetchone()
        return bool(row[0])

    # ----------------------------------------------------------------- dialect
    def column_type(self, sql_affinity: str) -> str:
        return {"TEXT": 'TEXT COLLATE "C"', "INTEGER": "BIGINT",
                "REAL": "DOUBLE PRECISION"}.get(sql_affinity, sql_affinity)

    def table_columns(self, conn: Connection, table: str) -> list[str]:
        return [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ?"
            " AND table_name = ? ORDER BY ordinal_position", (self.schema, table))]

    def index_columns(self, conn: Connection, table: str) -> dict[str, tuple[str, ...]]:
        rows = conn.execute(
            "SELECT i.relname, a.attname FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE n.nspname = ? AND t.relname = ? AND NOT x.indisprimary AND NOT x.indisunique"
            " ORDER BY i.relname, k.ord", (self.schema, table)).fetchall()
        found: dict[str, tuple[str, ...]] = {}
        for name, column in rows:
            found[name] = (*found.get(name, ()), column)
        return found

    keeps_search_index = True

    # -- the quick search's index: pg_trgm GIN indexes on what the search compares
    def search_index_columns(self, conn: Connection) -> tuple[str, ...]:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = ? AND tablename = 'profiles'"
            " AND indexname LIKE ? ORDER BY indexname",
            (self.schema, SEARCH_INDEX_PREFIX.replace("_", "\\_") + "%")).fetchall()
        return tuple(row[0][len(SEARCH_INDEX_PREFIX):] for row in rows)

    def build_search_index(self, conn: Connection, columns: Sequence[str]) -> None:
        """One ``profiles_search_<column>`` per column: a trigram GIN index on
        ``lower(column COLLATE "C")``, the very expression the search's LIKE is rendered to
        (store/engines/dialects.py), so the planner uses it for a rare word and scans for a
        common one. Needs the pg_trgm extension (shipped with PostgreSQL, trusted: a user who
        may create objects in the schema may install it); without it the search scans."""
        trigram_schema = self._trigram_schema(conn)
        if trigram_schema is None:
            return
        present = set(self.search_index_columns(conn))
        for column in sorted(present - set(columns)):
            conn.execute(f"DROP INDEX IF EXISTS {quote_identifier(SEARCH_INDEX_PREFIX + column)}")
        for column in columns:  # a build cut short leaves some: the others are made
            if column in present:
                continue
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {quote_identifier(SEARCH_INDEX_PREFIX + column)}"
                f" ON profiles USING gin (lower({quote_identifier(column)} COLLATE \"C\")"
                f" {quote_identifier(trigram_schema)}.gin_trgm_ops)")
        conn.execute("ANALYZE profiles")  # the planner's estimate of how common a word is

    def drop_search_index(self, conn: Connection) -> None:
        for column in self.search_index_columns(conn):
            conn.execute(f"DROP INDEX IF EXISTS {quote_identifier(SEARCH_INDEX_PREFIX + column)}")

    def _trigram_schema(self, conn: Connection) -> str | None:
        """The schema of the pg_trgm extension, installed into the store's schema if the
        database has none; None when it cannot be installed."""
        query = ("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                 " ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")
        row = conn.execute(query).fetchone()
        if row is None:
            conn.execute("SAVEPOINT trigram")  # a refusal must not end the caller's transaction
            try:
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA {quote_identifier(self.schema)}")
            except sqlite3.Error:
                conn.execute("ROLLBACK TO SAVEPOINT trigram")
                return None
            conn.execute("RELEASE SAVEPOINT trigram")
            row = conn.execute(query).fetchone()
        return None if row is None else str(row[0])

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN")

    def tune_for_bulk_write(self, conn: Connection, *, scratch: bool = False) -> None:
        conn.execute("SET maintenance_work_mem = '256MB'")  # index builds sort in memory

    def after_bulk_write(self, conn: Connection) -> None:
        """VACUUM (ANALYZE) the store's tables: fresh rows have no visibility-map bits, so
        index-only scans would visit the heap, and the first reader would set every hint bit."""
        tables = ["profiles", "events"]
        if self.has_table(conn, "entities"):
            tables += [row[0] for row in conn.execute("SELECT table_name FROM entities")]
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {quote_identifier(table)}")

    def bulk_insert(self, conn: Connection, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Rows through COPY, inside the caller's transaction."""
        raw = conn.raw if isinstance(conn, PostgresConnection) else None
        if raw is None:
            super().bulk_insert(conn, table, columns, rows)
            return
        _copy_rows(raw, table, columns, rows, Exception)

    def bulk_insert_column_batches(self, conn: Connection, table: str, columns: Sequence[str],
                                   batches: Iterable[Sequence[Any]]) -> None:
        """Every batch through one COPY, inside the caller's transaction: the server stores
        rows while the next batch is read (a COPY per batch would wait for the server each
        time). Errors of the batches' own making pass through untranslated."""
        raw = conn.raw if isinstance(conn, PostgresConnection) else None
        if raw is None:
            super().bulk_insert_column_batches(conn, table, columns, batches)
            return
        rows = (row for data in batches for row in zip(
            *(values.tolist() if hasattr(values, "tolist") else values for values in data),
            strict=True))
        _copy_rows(raw, table, columns, rows, _driver().Error)

    # ------------------------------------------- tables the project did not create (store/engines/source.py)
    reads_source_tables: ClassVar[bool] = True

    def source_connect(self) -> PostgresConnection:
        """A writable session until ``source_ready``: temporary views need one."""
        return self.connect()

    def source_ready(self, conn: Connection) -> None:
        conn.execute("SET default_transaction_read_only = on")

    def source_relation(self, conn: Connection, table: str, folder: Path) -> Relation | None:
        from store.engines.source import Relation

        schema, _, name = table.rpartition(".")
        schema = schema or self.schema
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", (schema, name)).fetchall()
        if not rows:
            return None
        # The row's address (page, item) as one number: unique in the table while it is read.
        key = ("(CAST((CAST(CAST(s.ctid AS TEXT) AS point))[0] AS BIGINT) * 65536"
               " + CAST((CAST(CAST(s.ctid AS TEXT) AS point))[1] AS BIGINT))")
        return Relation(f"{quote_identifier(schema)}.{quote_identifier(name)}",
                        {str(r[0]): str(r[1]) for r in rows}, key)

    def source_value(self, column: str, kind: str) -> str:
        if kind == "boolean":
            return f"CAST(CAST({column} AS INT) AS BIGINT)"
        if kind == "integer":
            return f"CAST({column} AS BIGINT)"
        if kind == "number":
            return f"CAST({column} AS DOUBLE PRECISION)"
        if kind == "string":
            return f'(NULLIF(CAST({column} AS TEXT), \'\') COLLATE "C")'
        if kind == "date":
            return f'(to_char({column}, \'YYYY-MM-DD\') COLLATE "C")'
        moment = f"({column} AT TIME ZONE 'UTC')" if kind == "datetime_tz" else column
        return (f"((to_char({moment}, 'YYYY-MM-DD HH24:MI:SS') || CASE WHEN"
                f" CAST(EXTRACT(MICROSECONDS FROM {moment}) AS BIGINT) % 1000000 <> 0"
                f" THEN to_char({moment}, '.US') ELSE '' END) COLLATE \"C\")")

    def source_epoch(self, column: str, kind: str) -> str:
        moment = f"CAST({column} AS TIMESTAMP)" if kind == "date" else column
        return f"CAST(EXTRACT(EPOCH FROM {moment}) AS DOUBLE PRECISION)"

    def describe_error(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        lowered = text.lower()
        where = self.display
        if "connection refused" in lowered or "could not connect" in lowered \
                or "no such file or directory" in lowered or "timeout expired" in lowered:
            return (f"Cannot reach the PostgreSQL server of {where}: start it, or check the host and"
                    f" port ({text}).")
        if "password authentication failed" in lowered or "no password supplied" in lowered:
            return f"The PostgreSQL server refused the login of {where}: check the user and password."
        if "does not exist" in lowered and "database" in lowered:
            return f"{where}: the database does not exist; create it (createdb) or fix the URL ({text})."
        if "permission denied" in lowered:
            return (f"{where}: the role has no rights on schema {self.schema}; grant them or pick another"
                    f" schema with ?schema=NAME ({text}).")
        return f"{where}: {text}"


def _numbers_as_python_numbers(raw: Any) -> None:
    """NUMERIC results (sum of integers, avg) as int or float, like the other engines, not Decimal."""
    from psycopg.types.numeric import NumericLoader

    class NumberLoader(NumericLoader):
        def load(self, data: Any) -> Any:
            value: Decimal = super().load(data)
            if value.is_finite() and value == value.to_integral_value():
                return int(value)
            return float(value)

    raw.adapters.register_loader("numeric", NumberLoader)
