"""Build small stores for tests straight through the catalog API (no importer needed).

Values are given as Python values (str, int, float, bool, date, aware datetime,
None) and written with the storage rules of ``store.schema.values``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.engines.base import Connection, engine_for
from store.engines.layout import quote_identifier, write_transaction
from store.schema import catalog as cat
from store.schema.activity import refresh_activity
from store.schema.values import AttrType, format_datetime, to_epoch_seconds

# The example segment of spec/segments.md, as its YAML (the builder and CLI tests build it).
SPEC_EXAMPLE_YAML = """\
id: men-over-50-shoes
name: Men over 50 who bought shoes
description: Optional free text.
rule:
  all:
    - attribute: gender
      op: equals
      value: male
    - attribute: age
      op: greater_than
      value: 50
    - event: purchase
      where:
        - attribute: product.category
          op: equals
          value: Shoes
      within: {last: 90, unit: days}
      count: {op: at_least, value: 2}
    - not:
        segment: unsubscribed
"""


def to_storage(value: Any, attr_type: AttrType) -> Any:
    """A Python value in the form the store keeps it."""
    if value is None or value == "":
        return None
    if attr_type == "boolean":
        return 1 if value else 0
    if attr_type == "date":
        return value.isoformat() if isinstance(value, dt.date) else value
    if attr_type == "datetime":
        return format_datetime(value) if isinstance(value, dt.datetime) else value
    return value


@dataclass
class EntitySpec:
    key_field: str
    key_type: AttrType
    link_field: str
    fields: dict[str, AttrType]
    rows: list[dict[str, Any]]


@dataclass
class StoreSpec:
    attributes: dict[str, AttrType] = field(default_factory=dict)
    profiles: list[dict[str, Any]] = field(default_factory=list)  # each has "id"
    event_fields: dict[str, AttrType] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # profile_id, type, timestamp, fields
    entities: dict[str, EntitySpec] = field(default_factory=dict)
    derived_age_from: str | None = None
    event_types: tuple[str, ...] = ()


def build_store(location: str | Path, spec: StoreSpec) -> Connection:
    """Create a store at ``location`` (a ``--db`` value: any engine) holding exactly ``spec``;
    returns an open connection."""
    conn = engine_for(location).create_store()
    fill_store(conn, spec)
    return conn


def refill_store(conn: Connection, spec: StoreSpec) -> None:
    """Replace every row of a store that ``build_store`` made with a spec of the same schema
    (cheaper than a new store where creating tables is slow: DuckDB, PostgreSQL). The schema
    is read back from the catalog instead of declared again: each declaration is a few
    queries, and on DuckDB they cost more than the rows."""
    with write_transaction(conn):
        for row in conn.execute("SELECT table_name FROM entities").fetchall():
            conn.execute(f"DELETE FROM {quote_identifier(row[0])}")
        conn.execute("DELETE FROM events")
        conn.execute("DELETE FROM profiles")
    # a second transaction: DuckDB refuses a key deleted and inserted again in one
    with write_transaction(conn):
        catalog = cat.Catalog.load(conn)
        write_rows(conn, spec, catalog,
                   {name: catalog.attributes[name].column for name in spec.attributes},
                   {name: catalog.event_types[name].id for name in type_names(spec)},
                   {name: {f.name: f.column for f in catalog.entities[name].fields.values()}
                    for name in spec.entities})


def fill_store(conn: Connection, spec: StoreSpec) -> None:
    """Write ``spec`` into a store (its schema grows as needed, as an import's would)."""
    with write_transaction(conn):
        columns = {name: cat.ensure_attribute(conn, name, t).column
                   for name, t in spec.attributes.items()}
        if spec.derived_age_from:
            cat.declare_derived_age(conn, "age", spec.derived_age_from)
        type_ids = {name: cat.ensure_event_type(conn, name) for name in type_names(spec)}
        for name, t in spec.event_fields.items():
            cat.ensure_event_field(conn, name, t, list(type_ids.values()))
        entity_columns: dict[str, dict[str, str]] = {}
        for name, entity in spec.entities.items():
            cat.ensure_entity(conn, name, entity.key_field, entity.key_type, entity.link_field)
            entity_columns[name] = {f: cat.ensure_entity_field(conn, name, f, t).column
                                    for f, t in entity.fields.items() if f != entity.key_field}
        write_rows(conn, spec, cat.Catalog.load(conn), columns, type_ids, entity_columns)


def type_names(spec: StoreSpec) -> list[str]:
    return sorted({*spec.event_types, *(e["type"] for e in spec.events)})


def write_rows(conn: Connection, spec: StoreSpec, catalog: cat.Catalog, columns: dict[str, str],
               type_ids: dict[str, int], entity_columns: dict[str, dict[str, str]]) -> None:
    """One bulk load per table (a value a row lacks is NULL, as an omitted column would be)."""
    engine = conn.engine
    engine.bulk_insert(conn, "profiles", ["pk", "id", *columns.values()], [
        [pk, str(profile["id"]), *(to_storage(profile[n], t) if n in profile else None
                                   for n, t in spec.attributes.items())]
        for pk, profile in enumerate(spec.profiles, start=1)])
    for name, entity in spec.entities.items():
        fields = [f for f in entity.fields if f != entity.key_field]
        engine.bulk_insert(conn, "entity_" + name.lower(),
                           ["key", *(entity_columns[name][f] for f in fields)], [
            [row[entity.key_field], *(to_storage(row[f], entity.fields[f]) if f in row else None
                                      for f in fields)]
            for row in entity.rows])
    pks = dict(conn.execute("SELECT id, pk FROM profiles"))
    all_fields = catalog.event_fields
    engine.bulk_insert(
        conn, "events",
        ["pk", "profile_pk", "type_id", "ts", *(all_fields[f].column for f in all_fields)],
        [[pk, pks[str(event["profile_id"])], type_ids[event["type"]],
          to_epoch_seconds(event["timestamp"]),
          *(to_storage(event[f], all_fields[f].type) if f in event else None for f in all_fields)]
         for pk, event in enumerate(spec.events, start=1)])
    refresh_activity(conn)  # as every writer of events does
