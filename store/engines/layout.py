"""The store's layout, the same on every engine: fixed tables, their DDL per engine, transactions.

Tables and value encodings are identical everywhere (text, 64-bit integers,
doubles; dates and datetimes as ISO text, booleans as 0/1, event times as
epoch seconds), so one compiled rule means the same on every engine. Only
the DDL's type names differ, and they come from the engine
(``Engine.column_type``, ``Engine.key_column``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from store.engines.base import Connection, Engine
from store.engines.base import quote_identifier as quote_identifier

STORE_FORMAT = "audiences-tui-store"
SCHEMA_VERSION = 1

# The `xdm` columns (XDM names for PQL, spec/pql.md) came after the first stores were made: those
# lack them until a name is first set (store.schema.catalog.set_xdm adds the column), and the
# catalog reads its tables by column name, so both kinds of store load.
# {text} {int} {real}: the engine's column types; {key}: the integer key of
# profiles and events (numbered by the writers); {time}: event times (epoch seconds, maybe with
# fractions); {compact}: SQLite's WITHOUT ROWID where it helps.
FIXED_SCHEMA_TEMPLATE = """
CREATE TABLE IF NOT EXISTS meta (
    key {text} PRIMARY KEY,
    value {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS attributes (
    name {text} PRIMARY KEY,
    type {text} NOT NULL,
    column_name {text} NOT NULL UNIQUE,
    label {text},
    grp {text},
    description {text},
    derived_from {text},
    position {int} NOT NULL DEFAULT 0,
    xdm {text}
);
CREATE TABLE IF NOT EXISTS event_types (
    id {int} PRIMARY KEY,
    name {text} NOT NULL UNIQUE,
    label {text},
    description {text},
    xdm {text}
);
CREATE TABLE IF NOT EXISTS event_fields (
    name {text} PRIMARY KEY,
    type {text} NOT NULL,
    column_name {text} NOT NULL UNIQUE,
    label {text},
    description {text},
    xdm {text}
);
CREATE TABLE IF NOT EXISTS event_type_fields (
    event_type_id {int} NOT NULL REFERENCES event_types(id),
    field_name {text} NOT NULL REFERENCES event_fields(name),
    PRIMARY KEY (event_type_id, field_name)
){compact};
CREATE TABLE IF NOT EXISTS entities (
    name {text} PRIMARY KEY,
    table_name {text} NOT NULL UNIQUE,
    key_field {text} NOT NULL,
    link_field {text} NOT NULL,
    label {text},
    description {text}
);
CREATE TABLE IF NOT EXISTS entity_fields (
    entity {text} NOT NULL REFERENCES entities(name),
    name {text} NOT NULL,
    type {text} NOT NULL,
    column_name {text} NOT NULL,
    label {text},
    description {text},
    PRIMARY KEY (entity, name)
){compact};
CREATE TABLE IF NOT EXISTS segments (
    id {text} PRIMARY KEY,
    name {text} NOT NULL,
    description {text} NOT NULL DEFAULT '',
    definition {text} NOT NULL,
    created_at {text} NOT NULL,
    updated_at {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    pk {key:profiles},
    id {text} NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
    pk {key:events},
    profile_pk {int} NOT NULL,
    type_id {int} NOT NULL,
    ts {time} NOT NULL
);
"""

EVENT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_type_ts_profile ON events(type_id, ts, profile_pk)",
    "CREATE INDEX IF NOT EXISTS events_profile_ts ON events(profile_pk, ts)",
)

# Column names the engine owns; imported names that collide get another column.
RESERVED_COLUMNS = frozenset({"pk", "id", "profile_pk", "type_id", "ts", "rowid", "oid", "_rowid_"})


def fixed_schema(engine: Engine) -> list[str]:
    """The statements that create the fixed tables (and, where the engine has them, indexes)."""
    text = FIXED_SCHEMA_TEMPLATE
    for table in ("profiles", "events"):
        text = text.replace("{key:" + table + "}", engine.key_column(table))
    text = text.format(text=engine.column_type("TEXT"), int=engine.column_type("INTEGER"),
                       real=engine.column_type("REAL"), time=engine.time_column_type,
                       compact=engine.compact_table_suffix)
    statements = [s.strip() for s in text.split(";") if s.strip()]
    return [*statements,
            *(EVENT_INDEXES if engine.supports_indexes else ())]


def check_store_format(conn: Connection, where: str, *, missing: str, foreign: str) -> None:
    """Refuse what is not a store this program can read (shared by the adapters that keep the
    store's ``meta`` table in a database of their own): ``missing`` when there is no ``meta``,
    ``foreign`` when its format is not ours; ``where`` names the store in the other messages."""
    from store.errors import StoreError

    if not conn.engine.has_table(conn, "meta"):
        raise StoreError(missing)
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('format', 'schema_version')")
                .fetchall())
    if rows.get("format") != STORE_FORMAT:
        raise StoreError(foreign)
    try:
        version = int(rows.get("schema_version", ""))
    except ValueError:
        raise StoreError(f"{where} is an Audiences store of an unknown version.") from None
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} was written by a newer version of Audiences TUI"
                         f" (store version {version}); upgrade the program.")


def install_schema(conn: Connection, statements: list[str], file_format: str, version: int) -> None:
    """``create_schema`` in a transaction of its own."""
    with write_transaction(conn):
        create_schema(conn, statements, file_format, version)


def create_schema(conn: Connection, statements: list[str], file_format: str, version: int) -> None:
    """Create the tables (idempotent) and stamp the store's format and version, inside the
    caller's write transaction (shared by the profile store and the campaign store)."""
    for statement in statements:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('format', ?), ('schema_version', ?),"
        " ('created_at', ?) ON CONFLICT(key) DO NOTHING",
        (file_format, str(version), _now_text()),
    )


def _now_text() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """One transaction on the connection's engine: all of it is written, or none of it."""
    with conn.engine.write_transaction(conn):
        yield conn
