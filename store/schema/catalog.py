"""The schema catalog: which attributes, event types, event fields and entities a store has.

Rules, the importer and the app all learn names and types from here; the
compiler only ever puts identifiers that come from the catalog into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process

from store.engines.base import Connection
from store.engines.layout import RESERVED_COLUMNS, quote_identifier
from store.schema.activity import activity_until
from store.schema.values import SQL_AFFINITY, AttrType


@dataclass(frozen=True)
class Attribute:
    """A profile attribute; ``derived_from`` names the source of a derived one (age)."""

    name: str
    type: AttrType
    column: str
    label: str = ""
    group: str = ""
    description: str = ""
    derived_from: str | None = None
    xdm: str = ""  # its XDM name in PQL (spec/pql.md); "" when none is declared

    @property
    def display_label(self) -> str:
        return self.label or label_from_name(self.name)


# Short words that are read letter by letter: a label spells them in capitals.
ACRONYMS = frozenset({"id", "tv", "sms", "url", "ip", "utm", "vip", "xdm", "uk", "us", "eu",
                      "pin", "dsl", "pos", "crm", "sku", "gdpr", "api", "ltv"})
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def label_from_name(name: str) -> str:
    """A label for a name that has none: words split at underscores and case changes,
    the first capitalised, acronyms in capitals (``StreamingTV`` and ``streaming_tv``:
    "Streaming TV"; ``SeniorCitizen``: "Senior citizen"; ``customerID``: "Customer ID")."""
    words = _WORD_RE.findall(name) or [name]
    shown = [w.upper() if w.lower() in ACRONYMS or (w.isupper() and len(w) > 1) else w.lower()
             for w in words]
    first = shown[0]
    shown[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(shown)


@dataclass(frozen=True)
class EventField:
    name: str
    type: AttrType
    column: str
    label: str = ""
    description: str = ""
    xdm: str = ""


@dataclass(frozen=True)
class EventType:
    id: int
    name: str
    label: str = ""
    description: str = ""
    fields: tuple[str, ...] = ()
    xdm: str = ""


@dataclass(frozen=True)
class EntityField:
    name: str
    type: AttrType
    column: str
    label: str = ""
    description: str = ""


@dataclass(frozen=True)
class Entity:
    """A lookup table (e.g. products) that events link to through ``link_field``."""

    name: str
    table: str
    key_field: str
    link_field: str
    fields: dict[str, EntityField] = field(default_factory=dict)
    label: str = ""
    description: str = ""


# Built-in attribute: every profile has its external id.
ID_ATTRIBUTE = Attribute(name="id", type="string", column="id", label="Profile id", group="Identity")
AGE_SOURCE_KIND = "age"


@dataclass(frozen=True)
class Catalog:
    attributes: dict[str, Attribute]
    event_types: dict[str, EventType]
    event_fields: dict[str, EventField]
    entities: dict[str, Entity]
    # The latest event time when the per-profile rollup is current (store/schema/activity.py).
    activity_until: float | None = None

    @classmethod
    def load(cls, conn: Connection) -> Catalog:
        if not conn.engine.fixed_catalog:
            return cls._read(conn)
        found: Catalog | None = getattr(conn, "fixed_catalog", None)
        if found is None:
            found = cls._read(conn)
            conn.fixed_catalog = found  # type: ignore[attr-defined]
        return found

    @classmethod
    def _read(cls, conn: Connection) -> Catalog:
        attributes = {ID_ATTRIBUTE.name: ID_ATTRIBUTE}
        for row in _rows(conn, "SELECT * FROM attributes ORDER BY position, name"):
            attributes[row["name"]] = Attribute(
                row["name"], row["type"], row["column_name"], row["label"] or "", row["grp"] or "",
                row["description"] or "", row["derived_from"], row.get("xdm") or "")
        fields_by_type: dict[int, list[str]] = {}
        for type_id, field_name in conn.execute(
            "SELECT event_type_id, field_name FROM event_type_fields ORDER BY field_name"
        ):
            fields_by_type.setdefault(type_id, []).append(field_name)
        event_types = {
            row["name"]: EventType(row["id"], row["name"], row["label"] or "",
                                   row["description"] or "",
                                   tuple(fields_by_type.get(row["id"], ())), row.get("xdm") or "")
            for row in _rows(conn, "SELECT * FROM event_types ORDER BY name")
        }
        event_fields = {
            row["name"]: EventField(row["name"], row["type"], row["column_name"], row["label"] or "",
                                    row["description"] or "", row.get("xdm") or "")
            for row in _rows(conn, "SELECT * FROM event_fields ORDER BY name")
        }
        entities: dict[str, Entity] = {}
        for row in conn.execute(
            "SELECT name, table_name, key_field, link_field, label, description FROM entities"
        ):
            fields = {
                f[0]: EntityField(f[0], f[1], f[2], f[3] or "", f[4] or "")
                for f in conn.execute(
                    "SELECT name, type, column_name, label, description FROM entity_fields"
                    " WHERE entity = ? ORDER BY name",
                    (row[0],),
                )
            }
            entities[row[0]] = Entity(row[0], row[1], row[2], row[3], fields, row[4] or "",
                                      row[5] or "")
        return cls(attributes, event_types, event_fields, entities, activity_until(conn))

    def event_type_ids(self, names: tuple[str, ...] | None) -> list[int]:
        """Ids of the named event types; None means every type ("*")."""
        if names is None:
            return sorted(t.id for t in self.event_types.values())
        return [self.event_types[name].id for name in names]

    def entity_for_prefix(self, prefix: str) -> Entity | None:
        return self.entities.get(prefix)


def _rows(conn: Connection, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts by column name: a store made before a column was added still loads."""
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def nearest(name: str, known: list[str] | tuple[str, ...] | set[str], n: int = 3) -> list[str]:
    """The closest known names, for "did you mean" messages: the best ``n`` by rapidfuzz's
    ratio (twice the longest common subsequence over both lengths), at least half alike, ties
    in alphabetical order. rapidfuzz is the app's one matcher (the pickers filter with it)."""
    matches = process.extract(name, sorted(known), scorer=fuzz.ratio, limit=n, score_cutoff=50)
    return [match for match, _score, _index in matches]


def did_you_mean(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    close = nearest(name, known)
    if close:
        return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if known:
        shown = sorted(known)[:12]
        more = "" if len(known) <= 12 else f" (and {len(known) - 12} more)"
        return " Known: " + ", ".join(shown) + more + "."
    return ""


_UNSAFE = re.compile(r"[^0-9a-zA-Z_]+")


def allocate_column(name: str, taken: set[str]) -> str:
    """A column name for an imported name: readable, unique ignoring case, never reserved."""
    base = _UNSAFE.sub("_", name).strip("_").lower() or "field"
    if base[0].isdigit():
        base = "f_" + base
    candidate = base
    counter = 1
    lowered = {t.lower() for t in taken}
    while candidate.lower() in lowered or candidate.lower() in RESERVED_COLUMNS:
        counter += 1
        candidate = f"{base}_{counter}"
    return candidate


def add_column(conn: Connection, table: str, column: str, attr_type: AttrType, *,
               mostly_distinct: bool = False) -> None:
    """Add a typed column (inside the caller's transaction); ``mostly_distinct``: its values
    will mostly differ from each other (``Engine.column_storage``)."""
    affinity = SQL_AFFINITY[attr_type]
    conn.execute(
        f"ALTER TABLE {quote_identifier(table)} ADD COLUMN {quote_identifier(column)}"
        f" {conn.engine.column_type(affinity)}{conn.engine.column_storage(affinity, mostly_distinct)}"
    )


def widen_column(conn: Connection, table: str, column: str, old: AttrType, new: AttrType) -> None:
    """Give a column the storage type of its widened attribute type (an integer column that
    now holds numbers), where the engine's column types are strict."""
    if SQL_AFFINITY[old] != SQL_AFFINITY[new]:
        conn.engine.widen_column(conn, table, column, SQL_AFFINITY[new])


def table_columns(conn: Connection, table: str) -> set[str]:
    return set(conn.engine.table_columns(conn, table))


# ---------------------------------------------------------------- catalog writes
# Each runs inside the caller's transaction and returns the (possibly widened) entry.


def ensure_attribute(conn: Connection, name: str, attr_type: AttrType, *,
                     mostly_distinct: bool = False) -> Attribute:
    """Declare a profile attribute (adding its column) or widen an existing one.
    ``mostly_distinct``: its values mostly differ from each other (``add_column``).

    Raises ``InputError`` when ``attr_type`` conflicts with the schema.
    """
    from store.errors import InputError
    from store.schema.values import reconcile_types

    if name == ID_ATTRIBUTE.name:
        return ID_ATTRIBUTE
    row = conn.execute(
        "SELECT type, column_name, derived_from FROM attributes WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        column = allocate_column(name, table_columns(conn, "profiles"))
        add_column(conn, "profiles", column, attr_type, mostly_distinct=mostly_distinct)
        position = conn.execute("SELECT coalesce(max(position), 0) + 1 FROM attributes").fetchone()[0]
        conn.execute(
            "INSERT INTO attributes(name, type, column_name, position) VALUES (?, ?, ?, ?)",
            (name, attr_type, column, position),
        )
        return Attribute(name, attr_type, column)
    existing, column, derived = row
    if derived:
        raise InputError(f"Attribute {name!r} is derived from {derived!r} and cannot be imported.")
    final = reconcile_types(existing, attr_type)
    if final is None:
        raise InputError(
            f"Column {name!r} holds {attr_type} values but the attribute is {existing} in the store."
        )
    if final != existing:
        widen_column(conn, "profiles", column, existing, final)
        conn.execute("UPDATE attributes SET type = ? WHERE name = ?", (final, name))
    return Attribute(name, final, column)


def declare_derived_age(conn: Connection, name: str = "age", source: str = "birth_date",
                        label: str = "Age", group: str = "Demographics",
                        description: str = "Whole years from birth date to the as-of date.") -> None:
    """Declare ``age`` (integer) computed from a date attribute at the as-of date."""
    position = conn.execute("SELECT coalesce(max(position), 0) + 1 FROM attributes").fetchone()[0]
    conn.execute("DELETE FROM attributes WHERE name = ? OR column_name = ?",
                 (name, f"derived:{name}"))  # a re-declaration replaces the entry
    conn.execute(
        "INSERT INTO attributes(name, type, column_name, label, grp, description,"
        " derived_from, position) VALUES (?, 'integer', ?, ?, ?, ?, ?, ?)",
        (name, f"derived:{name}", label, group, description, f"{AGE_SOURCE_KIND}:{source}",
         position),
    )


def ensure_event_type(conn: Connection, name: str) -> int:
    """The id of an event type, creating it if new."""
    row = conn.execute("SELECT id FROM event_types WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    # The next id numbered here (as SQLite numbers an integer key): the same ids on every engine.
    new_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM event_types").fetchone()[0])
    conn.execute("INSERT INTO event_types(id, name) VALUES (?, ?)", (new_id, name))
    return new_id


def ensure_event_field(conn: Connection, name: str, attr_type: AttrType,
                       event_type_ids: list[int] | tuple[int, ...] = ()) -> EventField:
    """Declare an event field (one column of ``events``, shared by all types) for some types."""
    from store.errors import InputError
    from store.schema.values import reconcile_types

    row = conn.execute(
        "SELECT type, column_name FROM event_fields WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        column = allocate_column(name, table_columns(conn, "events"))
        add_column(conn, "events", column, attr_type)
        conn.execute(
            "INSERT INTO event_fields(name, type, column_name) VALUES (?, ?, ?)",
            (name, attr_type, column),
        )
        final: AttrType = attr_type
    else:
        existing, column = row
        widened = reconcile_types(existing, attr_type)
        if widened is None:
            raise InputError(
                f"Event field {name!r} holds {attr_type} values but is {existing} in the store."
            )
        final = widened
        if final != existing:
            widen_column(conn, "events", column, existing, final)
            conn.execute("UPDATE event_fields SET type = ? WHERE name = ?", (final, name))
    for type_id in event_type_ids:
        conn.execute(
            "INSERT INTO event_type_fields(event_type_id, field_name) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (type_id, name),
        )
    return EventField(name, final, column)


def set_labels(conn: Connection, table: str, name: str, *, label: str | None = None,
               group: str | None = None, description: str | None = None) -> None:
    """Set the label, group and description of an attribute, event type or event field."""
    assert table in {"attributes", "event_types", "event_fields"}
    updates = {"label": label, "description": description}
    if table == "attributes":
        updates["grp"] = group
    for column, value in updates.items():
        if value is not None:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE name = ?", (value, name))


def ensure_entity(conn: Connection, name: str, key_field: str, key_type: AttrType,
                  link_field: str) -> Entity:
    """Declare an entity table keyed by ``key_field``, linked from the event field ``link_field``.

    The table is ``entity_<name>`` with the key in column ``key`` (primary key);
    the link event field is declared (with the key's type) if events lack it. An
    existing entity keeps its key and its link: another one is an ``InputError``.
    """
    from store.errors import InputError

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(f"Entity name {name!r} must be letters, digits and underscores.")
    row = conn.execute(
        "SELECT table_name, key_field, link_field FROM entities WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        table = "entity_" + name.lower()
        conn.execute(
            f"CREATE TABLE {quote_identifier(table)}"
            f" (key {conn.engine.column_type(SQL_AFFINITY[key_type])} PRIMARY KEY)"
        )
        conn.execute(
            "INSERT INTO entities(name, table_name, key_field, link_field) VALUES (?, ?, ?, ?)",
            (name, table, key_field, link_field),
        )
        conn.execute(
            "INSERT INTO entity_fields(entity, name, type, column_name) VALUES (?, ?, ?, 'key')",
            (name, key_field, key_type),
        )
    else:
        table, old_key, old_link = row
        if old_key != key_field:
            raise InputError(f"Entity {name!r} is keyed by {old_key!r}, not {key_field!r}.")
        if old_link != link_field:  # relinking would change what existing rules match
            raise InputError(
                f"Entity {name!r} is linked from the event field {old_link!r} in the store, not"
                f" {link_field!r}; use --link {old_link} (or import it under another name)."
            )
    if conn.execute("SELECT 1 FROM event_fields WHERE name = ?", (link_field,)).fetchone() is None:
        ensure_event_field(conn, link_field, key_type)
    entity = Catalog.load(conn).entities[name]
    return entity


def ensure_entity_field(conn: Connection, entity: str, name: str,
                        attr_type: AttrType) -> EntityField:
    """Declare a field (column) of an entity, or widen an existing one."""
    from store.errors import InputError
    from store.schema.values import reconcile_types

    table = conn.execute("SELECT table_name FROM entities WHERE name = ?", (entity,)).fetchone()[0]
    row = conn.execute(
        "SELECT type, column_name FROM entity_fields WHERE entity = ? AND name = ?", (entity, name)
    ).fetchone()
    if row is None:
        column = allocate_column(name, table_columns(conn, table))
        add_column(conn, table, column, attr_type)
        conn.execute(
            "INSERT INTO entity_fields(entity, name, type, column_name) VALUES (?, ?, ?, ?)",
            (entity, name, attr_type, column),
        )
        return EntityField(name, attr_type, column)
    existing, column = row
    final = reconcile_types(existing, attr_type)
    if final is None:
        raise InputError(
            f"Field {entity}.{name} holds {attr_type} values but is {existing} in the store."
        )
    if final != existing:
        widen_column(conn, table, column, existing, final)
        conn.execute(
            "UPDATE entity_fields SET type = ? WHERE entity = ? AND name = ?", (final, entity, name)
        )
    return EntityField(name, final, column)


# ---------------------------------------------------------------- XDM names (spec/pql.md)

XDM_TABLES: dict[str, str] = {"attribute": "attributes", "event type": "event_types",
                              "event field": "event_fields"}
XdmKind = Literal["attribute", "event type", "event field"]
XDM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def set_xdm(conn: Connection, kind: XdmKind, name: str, xdm: str) -> None:
    """Declare the XDM name of an attribute, event type or event field (in the caller's
    transaction). Refuses (``InputError``) an unknown name, a malformed XDM path and an XDM
    name another entry of the same kind already has: PQL must name one thing."""
    from store.errors import InputError

    table = XDM_TABLES[kind]
    if not XDM_NAME.match(xdm):
        raise InputError(f"XDM name {xdm!r} for {kind} {name!r} must be dotted names"
                         " (letters, digits, '_'), e.g. person.gender.")
    if "xdm" not in table_columns(conn, table):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN xdm {conn.engine.column_type('TEXT')}")
    if conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", (name,)).fetchone() is None:
        known = [row[0] for row in conn.execute(f"SELECT name FROM {table}")]
        raise InputError(f"Cannot give an XDM name to unknown {kind} {name!r}." +
                         did_you_mean(name, known))
    taken = conn.execute(f"SELECT name FROM {table} WHERE xdm = ? AND name <> ?",
                         (xdm, name)).fetchone()
    if taken is not None:
        raise InputError(f"XDM name {xdm!r} already names the {kind} {taken[0]!r}.")
    conn.execute(f"UPDATE {table} SET xdm = ? WHERE name = ?", (xdm, name))
