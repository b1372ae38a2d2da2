"""Indexes that make counts fast on large stores: one per profile attribute, some for events.

Every store has ``events(type_id, ts, profile_pk)`` and ``events(profile_pk,
ts)`` (store/engines/sqlite.py). Three kinds of index are added here:

- ``profiles_attr_<column>``, one per real attribute column (not derived ones
  like ``age``, which compile to ranges on their source column, nor ``id``,
  which is UNIQUE already). Equality, IN lists and ranges on an attribute
  become index searches, and a count of a single condition reads only the
  index (on 1M profiles: 100-200 ms scans become 2-25 ms). When a set of
  profiles (an event condition) must hold too, the compiler reads the
  profiles ``NOT INDEXED`` so the set drives (see ``compiler.profiles_select``).
- ``events(type_id, profile_pk, ts)`` hands the events of a type over already
  grouped by profile, so wide windows ("bought in the last year", "ever
  bought 3 times") group without sorting every event; the compiler keeps
  short windows and most row-reading conditions on the (type_id, ts) index.
- ``events_type_<id>_fields``, one per event type that has a numeric field
  (the types whose events are summed and counted by value: orders, carts),
  partial (``WHERE type_id = <id>``) and covering: ``(type_id, profile_pk,
  <the type's fields, at most six: covered_fields>, ts)``. A sum, an average or a distinct count over a
  wide window then reads the type's events in profile order from the index
  alone, without a table row per event and without a sort (see
  ``compiler._Compiler.grouped_hint``). The first text field that links to no entity (an
  order id) comes right after ``profile_pk``: ``COUNT(DISTINCT`` of it then
  needs no temp B-tree per profile either. The field list comes from the
  catalog, so an import that adds a field to the type rebuilds the index.

Call ``ensure_indexes`` after every bulk write (sample generation, imports):
it creates only what is missing or outdated, and only on engines whose
indexes help (``Engine.supports_indexes``; the partial covering indexes only
where ``Engine.supports_partial_indexes``). It runs no ANALYZE: this SQLite
has no STAT4, and average counts per value mislead the planner on skewed
columns (see docs/engine.md, "Speed").
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from store.engines.base import Connection
from store.engines.layout import EVENT_INDEXES, quote_identifier, write_transaction
from store.schema.catalog import Catalog, EventField
from store.schema.search import ensure_search_index

ATTRIBUTE_INDEX_PREFIX = "profiles_attr_"
NUMERIC_TYPES = ("integer", "number")
MAX_COVERED_FIELDS = 6
COVERING_INDEX_PREFIX, COVERING_INDEX_SUFFIX = "events_type_", "_fields"

EXTRA_INDEXES: dict[str, str] = {
    "events_type_profile_ts": "CREATE INDEX IF NOT EXISTS events_type_profile_ts"
                              " ON events(type_id, profile_pk, ts)",
}


@dataclass(frozen=True)
class FieldIndex:
    """The covering index of one event type's events: which fields it holds, in order."""

    name: str
    type_id: int
    fields: tuple[str, ...]  # event field names
    columns: tuple[str, ...]  # their columns, in index order

    @property
    def statement(self) -> str:
        columns = ", ".join(["type_id", "profile_pk", *map(quote_identifier, self.columns), "ts"])
        return (f"CREATE INDEX IF NOT EXISTS {quote_identifier(self.name)} ON events({columns})"
                f" WHERE type_id = {int(self.type_id)}")


def _covering_index_name(type_id: int) -> str:
    return f"{COVERING_INDEX_PREFIX}{type_id}{COVERING_INDEX_SUFFIX}"


def field_indexes(catalog: Catalog) -> dict[int, FieldIndex]:
    """Event type id -> its covering index, for every type with a numeric field."""
    links = {entity.link_field for entity in catalog.entities.values()}
    indexes: dict[int, FieldIndex] = {}
    for event_type in catalog.event_types.values():
        fields = [catalog.event_fields[name] for name in event_type.fields
                  if name in catalog.event_fields]
        if not any(f.type in NUMERIC_TYPES for f in fields):
            continue
        # Identifiers first (what distinct counts count), then the rest; by column within each.
        ordered = sorted(covered_fields(fields, links),
                         key=lambda f: (f.type != "string" or f.name in links, f.column))
        indexes[event_type.id] = FieldIndex(
            _covering_index_name(event_type.id), event_type.id,
            tuple(f.name for f in ordered), tuple(f.column for f in ordered))
    return indexes


def covered_fields(fields: list[EventField], links: set[str]) -> list[EventField]:
    """The fields a type's covering index holds: at most ``MAX_COVERED_FIELDS``.

    An imported type can carry many or long text fields (descriptions, URLs); covering them
    all would make the index about as large as the events themselves. Kept, in this order:
    the first text field that links to no entity (the identifier distinct counts count),
    the numeric fields (what is summed), the link fields (what entity conditions read),
    then the other fields by column. A condition on a field left out still counts right:
    the compiler leaves such a condition on the (type_id, ts) index (``grouped_hint``).
    """
    def is_identifier(field: EventField) -> bool:
        return field.type == "string" and field.name not in links

    def rank(field: EventField) -> tuple[int, str]:
        kind = 0 if field.type in NUMERIC_TYPES else 1 if field.name in links else 2
        return kind, field.column

    identifiers = sorted((f for f in fields if is_identifier(f)), key=lambda f: f.column)[:1]
    others = sorted((f for f in fields if f not in identifiers), key=rank)
    return identifiers + others[:MAX_COVERED_FIELDS - len(identifiers)]


def attribute_indexes(conn: Connection) -> dict[str, str]:
    """``profiles_attr_<column>`` -> its CREATE INDEX, for every real attribute column."""
    rows = conn.execute(
        "SELECT column_name FROM attributes WHERE (derived_from IS NULL OR derived_from = '')"
        " ORDER BY position, name").fetchall()
    present = set(conn.engine.table_columns(conn, "profiles"))
    statements: dict[str, str] = {}
    for (column,) in rows:
        if column in ("id", "pk") or column not in present:
            continue
        name = ATTRIBUTE_INDEX_PREFIX + column
        statements[name] = (f"CREATE INDEX IF NOT EXISTS {quote_identifier(name)}"
                            f" ON profiles({quote_identifier(column)})")
    return statements


def covering_indexes(conn: Connection) -> dict[str, str]:
    """``events_type_<id>_fields`` -> its CREATE INDEX, for this store's catalog (none where
    the engine has no partial indexes)."""
    if not conn.engine.supports_partial_indexes:
        return {}
    return {index.name: index.statement for index in field_indexes(Catalog.load(conn)).values()}


def wanted_indexes(conn: Connection) -> dict[str, str]:
    """Every recommended index of this store, by name (none where indexes do not help)."""
    if not conn.engine.supports_indexes:
        return {}
    return {**attribute_indexes(conn), **EXTRA_INDEXES, **covering_indexes(conn)}


def missing_indexes(conn: Connection) -> list[str]:
    """Names of the recommended indexes the store does not have yet, and of the event types'
    covering indexes whose fields changed since they were built."""
    wanted = wanted_indexes(conn)
    if not wanted:
        return []
    present = {**conn.engine.index_columns(conn, "profiles"),
               **conn.engine.index_columns(conn, "events")}
    covering = {index.name: index for index in field_indexes(Catalog.load(conn)).values()
                if index.name in wanted}
    return [name for name in wanted
            if name not in present
            or (name in covering and present[name] != _columns(covering[name]))]


def drop_event_indexes(conn: Connection, type_ids: Collection[int] | None = None) -> list[str]:
    """Drop the indexes on events that a bulk insert would update (in the caller's
    transaction), which is much faster without them: the fixed ones (``EVENT_INDEXES``),
    ``events(type_id, profile_pk, ts)``, and the covering indexes of the types in
    ``type_ids`` (None: of every type), which the insert would otherwise update row by row,
    each in random order; a covering index of another type is partial, so untouched.
    Returns the statements that rebuild the fixed ones; the caller then builds the others
    with ``create_missing_indexes`` (from the catalog as the insert left it)."""
    present = conn.engine.index_columns(conn, "events")
    statements = []
    for statement in sorted(EVENT_INDEXES):
        name = statement.split("EXISTS", 1)[1].split()[0]
        if name in present:
            conn.execute(f"DROP INDEX {quote_identifier(name)}")
            statements.append(statement)
    for name in present:
        if name in EXTRA_INDEXES or _covers_one_of(name, type_ids):
            conn.execute(f"DROP INDEX {quote_identifier(name)}")
    return statements


def _covers_one_of(name: str, type_ids: Collection[int] | None) -> bool:
    """Whether ``name`` is a covering index (``FieldIndex``), of one of ``type_ids`` if given."""
    found = re.fullmatch(f"{COVERING_INDEX_PREFIX}([0-9]+){COVERING_INDEX_SUFFIX}", name)
    return found is not None and (type_ids is None or int(found.group(1)) in type_ids)


def ensure_indexes(conn: Connection) -> list[str]:
    """Create the recommended indexes that are missing or outdated (one transaction), then
    the quick search's index (store/schema/search.py); returns the indexes' names."""
    wanted = wanted_indexes(conn)
    missing = missing_indexes(conn)
    if missing:
        with write_transaction(conn):
            _create(conn, wanted, missing)
    ensure_search_index(conn)
    return missing


def create_missing_indexes(conn: Connection) -> list[str]:
    """``ensure_indexes`` inside the caller's transaction, but for the search index, which
    the caller builds after it (``ensure_search_index``)."""
    missing = missing_indexes(conn)
    _create(conn, wanted_indexes(conn), missing)
    return missing


def _create(conn: Connection, wanted: dict[str, str], names: list[str]) -> None:
    for name in names:
        conn.execute(f"DROP INDEX IF EXISTS {quote_identifier(name)}")
        conn.execute(wanted[name])


def _columns(index: FieldIndex) -> tuple[str, ...]:
    """The columns of a covering index, in order, as the engine lists them."""
    return ("type_id", "profile_pk", *index.columns, "ts")
