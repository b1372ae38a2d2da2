"""Tables the project did not create: a source file's tables read in place as a profile store.

``--db shop-warehouse.yaml`` names a source file (store/engines/source_file.py)
that maps a database's own tables onto profiles, events and entities. Nothing
is copied: every connection gets temporary views named as the store's tables
(``profiles``, ``events``, ``entity_<name>``) over the mapped tables, and
temporary catalog tables describing them, so the compiler, browsing, "why" and
activation run unchanged. The views hold the store's value encodings (spec:
booleans as 0/1, dates as ``YYYY-MM-DD``, datetimes as UTC text, event times
as epoch seconds; an event time that is a DATE is that day's midnight UTC),
converted by the engine (``Engine.source_value``, ``Engine.source_epoch``) from
the types its own catalog reports.

Keys: an integer profile id is the profile's key itself when the ids are not
negative and not too sparse for the builder's bitmaps; otherwise the keys are
the ids' ranks (a view numbering the distinct ids). Event keys come from the
engine's row address (``Engine.source_row_key``), so the timeline pages
steadily.

What is learnt from the database (column types, the event types a type
column holds, the key mode) is read once per process; the source's database
is only read, and saved segments live in the local SQLite file the source
names (``Engine.segments_connection``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from store.engines.base import Connection, DriverConnection, Engine, engine_for, quote_identifier
from store.engines.layout import SCHEMA_VERSION, STORE_FORMAT
from store.engines.source_file import SourceFile, TableMap, Where, load_source_file
from store.errors import InputError, StoreError

# Kinds of columns a source table may have; the store's attribute types, with time zones told apart.
KIND_TYPES = {"boolean": "boolean", "integer": "integer", "number": "number", "string": "string",
              "date": "date", "datetime": "datetime", "datetime_tz": "datetime"}
TIME_KINDS = ("date", "datetime", "datetime_tz")
ID_KINDS = ("integer", "string")
RESERVED = frozenset({"pk", "id", "profile_pk", "type_id", "ts", "key", "rowid", "oid", "_rowid_"})
SPARSE_FACTOR = 8  # integer ids are the keys while max(id) <= 8 x count + SPARSE_SLACK
SPARSE_SLACK = 1_000_000
KEYS_VIEW = "audiences_profile_keys"
VIEW = "CREATE OR REPLACE TEMPORARY VIEW"  # one session may be shared by connections (Spark)
# The catalog tables the rest of store/ reads (store/engines/layout.py), as views of literals.
CATALOG_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "meta": (("key", "text"), ("value", "text")),
    "attributes": (("name", "text"), ("type", "text"), ("column_name", "text"), ("label", "text"),
                   ("grp", "text"), ("description", "text"), ("derived_from", "text"), ("position", "int")),
    "event_types": (("id", "int"), ("name", "text"), ("label", "text"), ("description", "text")),
    "event_fields": (("name", "text"), ("type", "text"), ("column_name", "text"), ("label", "text"),
                     ("description", "text")),
    "event_type_fields": (("event_type_id", "int"), ("field_name", "text")),
    "entities": (("name", "text"), ("table_name", "text"), ("key_field", "text"), ("link_field", "text"),
                 ("label", "text"), ("description", "text")),
    "entity_fields": (("entity", "text"), ("name", "text"), ("type", "text"), ("column_name", "text"),
                      ("label", "text"), ("description", "text")),
}


def classify(native: str) -> str | None:
    """The kind of a column from the type name the engine's catalog gives (PostgreSQL, DuckDB,
    Spark), or None for a type the segment language cannot use (arrays, maps, structs, binary)."""
    t = " ".join(native.strip().lower().split())
    if t.endswith("]") or "<" in t or t.startswith(("array", "map", "struct", "list", "union", "json")):
        return None
    if t in ("boolean", "bool"):
        return "boolean"
    if t in ("tinyint", "smallint", "integer", "int", "bigint", "int2", "int4", "int8", "short",
             "long", "byte", "utinyint", "usmallint", "uinteger", "mediumint"):
        return "integer"
    decimal = re.fullmatch(r"(?:decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", t)
    if decimal:
        return "integer" if int(decimal.group(2)) == 0 and int(decimal.group(1)) <= 18 else "number"
    if t in ("decimal", "numeric", "real", "float", "double", "double precision", "float4", "float8",
             "hugeint", "uhugeint", "ubigint") or t.startswith(("float", "double")):
        return "number"
    if t in ("text", "varchar", "string", "uuid", "name", "citext", "bpchar", "char", "character") \
            or t.startswith(("character varying", "varchar", "character(", "char(", "bpchar(")):
        return "string"
    if t == "date":
        return "date"
    if t in ("timestamptz", "timestamp_ltz") or t.startswith("timestamp with time zone"):
        return "datetime_tz"
    if t.startswith("timestamp"):  # without time zone, _ns, _ms, _s, _ntz: read as UTC
        return "datetime"
    return None


@dataclass(frozen=True)
class Relation:
    """A mapped table as the engine reads it: SQL for FROM, its columns' native types, a row key."""

    sql: str
    columns: dict[str, str]
    row_key: str


@dataclass
class _Column:
    source: str  # the column in the source table
    name: str  # the attribute or field name (the source column's name)
    column: str  # the view's column
    kind: str
    label: str = ""


@dataclass
class Plan:
    """What the source maps, resolved against the database: the statements each connection runs."""

    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


class SourceEngine(Engine):
    """A profile store made of a source file's tables, read through the engine the file names."""

    name = "source"
    dialect: ClassVar[str] = "sqlite"  # replaced per instance by the database's own
    label: ClassVar[str] = "tables"
    fixed_catalog: ClassVar[bool] = True

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.file: SourceFile = load_source_file(location)
        self.base = self._base_engine()
        self.dialect = self.base.dialect  # type: ignore[misc]
        self.label = f"{self.base.label} tables"  # type: ignore[misc]
        self._plan: Plan | None = None
        self._lock = threading.Lock()

    def _base_engine(self) -> Engine:
        spec = self.file.engine
        where = self.file.engine_place
        if spec.lower() in ("duckdb", "duckdb:", "duckdb::memory:"):
            from store.engines.duckdb import DuckDBEngine

            return DuckDBEngine(":memory:")
        if "://" not in spec and not Path(spec).is_absolute():
            prefix = "duckdb:" if spec.lower().startswith("duckdb:") else ""
            spec = prefix + str(self.file.folder / spec[len(prefix):])
        try:
            engine = engine_for(spec)
        except InputError as exc:
            raise where.error(str(exc)) from None
        if not engine.reads_source_tables:
            raise where.error(f"{engine.label} cannot be a source: name a PostgreSQL URL, a .duckdb file,"
                              " duckdb (Parquet files only), spark://local or sc://HOST:PORT.")
        return engine

    # ---------------------------------------------------------------- identity
    @property
    def display(self) -> str:
        return f"{self.location} ({self.base.display})"

    @property
    def short_name(self) -> str:
        return Path(self.location).name

    @property
    def identity(self) -> str:
        return f"{Path(self.location).resolve()} ({self.base.identity})"

    def default_campaign_path(self) -> Path:
        return Path(self.location).with_name("campaign.db")

    # ------------------------------------------------------------ connections
    def exists(self) -> bool:
        return Path(self.location).is_file()

    def connect(self, *, readonly: bool = False) -> Connection:
        plan = self.plan()
        conn = self.base.source_connect()
        conn.engine = self
        try:
            for sql, params in plan.statements:
                conn.execute(sql, params)
            self.base.source_ready(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def open_store(self, *, readonly: bool = False) -> Connection:
        return self.connect(readonly=readonly)

    def create_store(self) -> Connection:
        raise StoreError(f"{self.location} maps tables of {self.base.display}, which this program only"
                         " reads: sample data and imports go into a store of their own.")

    def segments_connection(self, conn: Connection) -> Connection:
        """Saved segments live in the local SQLite file the source names (opened once per connection)."""
        found = getattr(conn, "segments_store", None)
        if found is None:
            from store.engines.sqlite import open_or_create_store

            found = open_or_create_store(self.file.segments)
            conn.segments_store = found  # type: ignore[attr-defined]
            if isinstance(conn, DriverConnection):
                conn.companions.append(found)
        return found

    def release(self) -> None:
        self.base.release_source()

    # ----------------------------------------------------------------- dialect
    def column_type(self, sql_affinity: str) -> str:
        return self.base.column_type(sql_affinity)

    def table_columns(self, conn: Connection, table: str) -> list[str]:
        try:
            cursor = conn.execute(f"SELECT * FROM {quote_identifier(table)} WHERE 1 = 0")
        except Exception:
            return []
        return [column[0] for column in cursor.description or ()]

    def begin_write(self, conn: Connection) -> None:
        raise StoreError(f"{self.location}: the tables of a source are read-only.")

    def before_commit(self, conn: Connection) -> None:
        """Nothing: a source's database is never written."""

    def data_stamp(self, conn: Connection) -> object:
        """The same for the whole session: the views read the tables as they are at each query."""
        return self.location

    def prepare_reads(self, conn: Connection) -> None:
        self.base.prepare_reads(conn)

    def int_array(self, conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self.base.int_array(conn, sql, parameters)

    def analyze(self, conn: Connection) -> None:
        """Nothing: the database keeps its own statistics."""

    def describe_error(self, exc: BaseException) -> str:
        return self.base.describe_error(exc)

    # -------------------------------------------------------------------- plan
    def plan(self) -> Plan:
        """The source resolved against the database (once per process)."""
        with self._lock:
            if self._plan is None:
                conn = self.base.source_connect()
                try:
                    self._plan = _Planner(self, conn).plan()
                finally:
                    conn.close()
            return self._plan


class _Planner:
    """Resolves a source file against the database: columns, types, keys, event types, statements."""

    def __init__(self, engine: SourceEngine, conn: Connection) -> None:
        self.engine = engine
        self.base = engine.base
        self.file = engine.file
        self.conn = conn
        self.plan_ = Plan()

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.plan_.statements.append((sql, params))

    def relation(self, table: TableMap) -> Relation:
        found = self.base.source_relation(self.conn, table.table, self.file.folder)
        if found is None:
            raise table.where.error(f"no table or Parquet file {table.table!r} in {self.base.display}.")
        return found

    def role(self, table: TableMap, relation: Relation, role: str, kinds: tuple[str, ...]) -> str:
        """The kind of a role's column (which must exist and be of one of ``kinds``)."""
        column = table.roles[role]
        where = table.role_places[role]
        if column not in relation.columns:
            raise where.error(f"{table.table} has no column {column!r}{_known(relation.columns)}")
        kind = classify(relation.columns[column])
        if kind not in kinds:
            raise where.error(f"column {column!r} is {relation.columns[column]}; {role} needs"
                              f" {' or '.join(sorted({KIND_TYPES[k] for k in kinds}))} values.")
        return kind

    def offered(self, table: TableMap, relation: Relation, used: set[str], taken: set[str]) -> list[_Column]:
        """The table's columns offered as attributes or fields: the listed ones (each must be
        usable), or every usable column besides those with a role."""
        chosen: list[_Column] = []
        names = table.columns if table.columns is not None else [c for c in relation.columns if c not in used]
        for i, name in enumerate(names):
            where = Where(table.where.path, table.where.line, table.where.key.rsplit(".", 1)[0]
                          + f".columns[{i}]")
            if name not in relation.columns:
                raise where.error(f"{table.table} has no column {name!r}{_known(relation.columns)}")
            kind = classify(relation.columns[name])
            if kind is None:
                if table.columns is not None:
                    raise where.error(f"column {name!r} is {relation.columns[name]}, a type segments cannot"
                                      " use (use text, numbers, booleans, dates or timestamps).")
                continue
            chosen.append(_Column(name, name, _allocate(name, taken), kind, table.labels.get(name, "")))
        for label_name in table.labels:
            if label_name not in relation.columns:
                where = Where(table.where.path, table.where.line,
                              table.where.key.rsplit(".", 1)[0] + f".labels.{label_name}")
                raise where.error(f"{table.table} has no column {label_name!r}{_known(relation.columns)}")
        return chosen

    def row(self, table: str, **values: Any) -> None:
        self.rows.setdefault(table, []).append(values)

    def plan(self) -> Plan:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.row("meta", key="format", value=STORE_FORMAT)
        self.row("meta", key="schema_version", value=str(SCHEMA_VERSION))
        self.profiles()
        self.events()
        self.entities()
        for table, columns in CATALOG_TABLES.items():
            self.run(f"{VIEW} {table} AS {self.literal_rows(columns, self.rows.get(table, []))}")
        return self.plan_

    def literal_rows(self, columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> str:
        """A catalog table as a query of literals (no engine needs a table, or a write, for it)."""
        def value(v: Any, kind: str) -> str:
            if v is None:
                return f"CAST(NULL AS {self.base.source_null_type('string' if kind == 'text' else 'int')})"
            return str(int(v)) if kind == "int" else self.base.source_literal(str(v))

        if not rows:
            return "SELECT " + ", ".join(f"{value(None, kind)} AS {name}" for name, kind in columns) \
                + " WHERE 1 = 0"
        return " UNION ALL ".join(
            "SELECT " + ", ".join(f"{value(r.get(name), kind)} AS {name}" for name, kind in columns)
            for r in rows)

    # -- profiles ----------------------------------------------------------------------
    def profiles(self) -> None:
        table = self.file.profiles
        relation = self.relation(table)
        id_kind = self.role(table, relation, "id", ID_KINDS)
        id_column = table.roles["id"]
        self.id_kind = id_kind
        taken: set[str] = set()
        columns = self.offered(table, relation, {id_column}, taken)
        source_id = f"s.{quote_identifier(id_column)}"
        self.keyed = self.profile_keys(relation, source_id, id_kind)
        text_id = self.base.source_value(source_id, "string")
        select = [f"{self.profile_key(source_id, 'k')} AS pk", f"{text_id} AS id"]
        select += [f"{self.base.source_value('s.' + quote_identifier(c.source), c.kind)}"
                   f" AS {quote_identifier(c.column)}" for c in columns]
        joined = (f" JOIN {KEYS_VIEW} k ON k.id = {text_id}" if self.keyed else "")
        self.run(f"{VIEW} profiles AS SELECT {', '.join(select)}"
                 f" FROM {relation.sql} s{joined} WHERE {source_id} IS NOT NULL")
        for position, c in enumerate(columns):
            self.row("attributes", name=c.name, type=KIND_TYPES[c.kind], column_name=c.column,
                     label=c.label or None, position=position + 1)
        if "age_from" in table.roles:  # the derived age (whole years at the as-of date) of a date
            self.role(table, relation, "age_from", ("date",))
            source = table.roles["age_from"]
            if not any(c.source == source for c in columns):
                raise table.role_places["age_from"].error(f"{source!r} is not one of the profile attributes.")
            if any(c.name == "age" for c in columns):
                raise table.role_places["age_from"].error("the profiles already have an attribute named age.")
            self.row("attributes", name="age", type="integer", column_name="derived:age", label="Age",
                     derived_from="age:" + source, position=len(columns) + 1)

    def profile_keys(self, relation: Relation, source_id: str, kind: str) -> bool:
        """Whether profiles need numbered keys; refuses ids that are not unique."""
        row = self.conn.execute(
            f"SELECT count(*), count(DISTINCT {source_id}), min({source_id}), max({source_id})"
            f" FROM {relation.sql} s WHERE {source_id} IS NOT NULL").fetchone()
        total, distinct, low, high = row
        if total != distinct:
            raise StoreError(f"{self.file.profiles.table} in {self.base.display} holds {total - distinct:,}"
                             f" rows whose {self.file.profiles.roles['id']} repeats another's: a profile id"
                             " must be unique.")
        keyed = not (kind == "integer" and (total == 0 or (int(low) >= 0
                     and int(high) <= SPARSE_FACTOR * int(total) + SPARSE_SLACK)))
        if keyed:
            text_id = self.base.source_value(source_id, "string")
            self.run(f"{VIEW} {KEYS_VIEW} AS SELECT id, row_number() OVER (ORDER BY id) AS pk"
                     f" FROM (SELECT DISTINCT {text_id} AS id FROM {relation.sql} s"
                     f" WHERE {source_id} IS NOT NULL) ids")
        return keyed

    def profile_key(self, source_column: str, keys_alias: str) -> str:
        """The profile key for a row whose profile id is ``source_column``."""
        return f"{keys_alias}.pk" if self.keyed else self.base.source_value(source_column, "integer")

    # -- events ------------------------------------------------------------------------
    def events(self) -> None:
        tables = self.file.events
        resolved: list[tuple[TableMap, Relation, list[_Column], list[str]]] = []
        fields: dict[str, _Column] = {}
        taken: set[str] = set()
        type_names = {t.event_type: t.where.key.rsplit(".", 1)[0] for t in tables if t.event_type}
        for table in tables:
            relation = self.relation(table)
            self.role(table, relation, "profile", (self.id_kind,) if self.keyed or self.id_kind == "string"
                      else ("integer",))
            self.role(table, relation, "time", TIME_KINDS)
            used = {table.roles["profile"], table.roles["time"]}
            names: list[str] = []
            if table.event_type is not None:
                names = [table.event_type]
            else:
                self.role(table, relation, "type_column", ("string",))
                column = table.roles["type_column"]
                used.add(column)
                names = sorted({*self.type_values(relation, column), *table.event_types})
                for name in names:
                    if name in type_names:
                        raise table.role_places["type_column"].error(
                            f"event type {name!r} (a value of {column}) is also mapped by"
                            f" {type_names[name]}; each event type comes from one table.")
                    type_names[name] = table.where.key.rsplit(".", 1)[0]
            own = self.offered(table, relation, used, set())
            for c in own:
                known = fields.get(c.name)
                if known is None:
                    c.column = _allocate(c.name, taken)
                    fields[c.name] = c
                elif KIND_TYPES[known.kind] != KIND_TYPES[c.kind]:
                    if {KIND_TYPES[known.kind], KIND_TYPES[c.kind]} == {"integer", "number"}:
                        known.kind = "number"
                    else:
                        raise table.where.error(f"column {c.name!r} is {KIND_TYPES[c.kind]} here but"
                                                f" {KIND_TYPES[known.kind]} in another event table.")
                elif not known.label:
                    known.label = c.label
            resolved.append((table, relation, own, names))
        self.event_fields = fields
        ids = {name: i + 1 for i, name in enumerate(sorted(type_names))}
        parts = []
        count = max(1, len(resolved))
        for index, (table, relation, own, names) in enumerate(resolved):
            parts.append(self.event_select(table, relation, own, names, ids, index, count))
            for name in names:
                self.row("event_types", id=ids[name], name=name)
                for c in own:
                    self.row("event_type_fields", event_type_id=ids[name], field_name=c.name)
        for c in fields.values():
            self.row("event_fields", name=c.name, type=KIND_TYPES[c.kind], column_name=c.column,
                     label=c.label or None)
        if not parts:  # no event table: an empty events view of the right shape
            parts.append("SELECT CAST(NULL AS BIGINT) AS pk, CAST(NULL AS BIGINT) AS profile_pk,"
                         " CAST(NULL AS BIGINT) AS type_id, CAST(NULL AS DOUBLE PRECISION) AS ts WHERE 1 = 0")
        self.run(f"{VIEW} events AS " + " UNION ALL ".join(parts))

    def type_values(self, relation: Relation, column: str) -> list[str]:
        text = self.base.source_value(f"s.{quote_identifier(column)}", "string")
        rows = self.conn.execute(f"SELECT DISTINCT {text} FROM {relation.sql} s"
                                 f" WHERE {text} IS NOT NULL").fetchall()
        return sorted(str(row[0]) for row in rows)

    def event_select(self, table: TableMap, relation: Relation, own: list[_Column], names: list[str],
                     ids: dict[str, int], index: int, count: int) -> str:
        base = self.base
        profile = f"s.{quote_identifier(table.roles['profile'])}"
        time_column = table.roles["time"]
        time_kind = classify(relation.columns[time_column]) or "datetime"
        epoch = base.source_epoch(f"s.{quote_identifier(time_column)}", time_kind)
        if table.event_type is not None:
            type_id = str(ids[table.event_type])
            where = ""
        else:
            text = base.source_value(f"s.{quote_identifier(table.roles['type_column'])}", "string")
            literal = base.source_literal
            type_id = ("CASE " + " ".join(f"WHEN {text} = {literal(n)} THEN {ids[n]}" for n in names)
                       + " END") if names else "NULL"
            where = f" AND {text} IN ({', '.join(literal(n) for n in names)})" if names else " AND 1 = 0"
        mine = {c.name: c for c in own}
        select = [f"{relation.row_key} * {count} + {index} AS pk",
                  f"{self.profile_key(profile, 'k')} AS profile_pk",
                  f"CAST({type_id} AS BIGINT) AS type_id", f"{epoch} AS ts"]
        for name, c in self.event_fields.items():
            value = (base.source_value(f"s.{quote_identifier(mine[name].source)}", c.kind)
                     if name in mine else f"CAST(NULL AS {base.source_null_type(c.kind)})")
            select.append(f"{value} AS {quote_identifier(c.column)}")
        joined = (f" JOIN {KEYS_VIEW} k ON k.id = {base.source_value(profile, 'string')}"
                  if self.keyed else "")
        return (f"SELECT {', '.join(select)} FROM {relation.sql} s{joined}"
                f" WHERE {profile} IS NOT NULL AND s.{quote_identifier(time_column)} IS NOT NULL{where}")

    # -- entities ----------------------------------------------------------------------
    def entities(self) -> None:
        for table in self.file.entities:
            assert table.name is not None and table.link is not None
            relation = self.relation(table)
            key_kind = self.role(table, relation, "key", ("string", "integer"))
            link = self.event_fields.get(table.link)
            if link is None:
                raise table.role_places["link"].error(
                    f"no event table has a column {table.link!r} to link {table.name} from"
                    f"{_known(self.event_fields)}")
            if KIND_TYPES[link.kind] != KIND_TYPES[key_kind]:
                raise table.role_places["link"].error(
                    f"event field {table.link!r} holds {KIND_TYPES[link.kind]} values but the key"
                    f" {table.roles['key']!r} holds {KIND_TYPES[key_kind]} values.")
            key = table.roles["key"]
            columns = self.offered(table, relation, {key}, set())
            view = "entity_" + table.name.lower()
            select = [f"{self.base.source_value('s.' + quote_identifier(key), key_kind)} AS key"]
            select += [f"{self.base.source_value('s.' + quote_identifier(c.source), c.kind)}"
                       f" AS {quote_identifier(c.column)}" for c in columns]
            self.run(f"{VIEW} {quote_identifier(view)} AS SELECT {', '.join(select)}"
                     f" FROM {relation.sql} s")
            self.row("entities", name=table.name, table_name=view, key_field=key, link_field=table.link,
                     label=table.label or None)
            self.row("entity_fields", entity=table.name, name=key, type=KIND_TYPES[key_kind],
                     column_name="key", label=table.labels.get(key))
            for c in columns:
                self.row("entity_fields", entity=table.name, name=c.name, type=KIND_TYPES[c.kind],
                         column_name=c.column, label=c.label or None)


def _allocate(name: str, taken: set[str]) -> str:
    """A view column for a source column: readable, unique ignoring case, never a reserved name."""
    base = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower() or "field"
    if base[0].isdigit():
        base = "f_" + base
    candidate, counter = base, 1
    while candidate in taken or candidate in RESERVED:
        counter += 1
        candidate = f"{base}_{counter}"
    taken.add(candidate)
    return candidate


def _known(columns: dict[str, Any]) -> str:
    names = sorted(columns)
    if not names:
        return "."
    shown = ", ".join(names[:12]) + (f" (and {len(names) - 12} more)" if len(names) > 12 else "")
    return f" (it has {shown})."
