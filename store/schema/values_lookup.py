"""The most common values of an attribute or event field, for pickers that offer real values.

A value editor shows what the store actually holds ("male 98,112 · female
97,440 ..."), so a marketer picks instead of guessing the spelling. Bounded
by ``LIMIT``; column names come from the catalog only.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from store.engines.base import Connection
from store.engines.layout import quote_identifier
from store.errors import InputError
from store.schema.catalog import Catalog

DEFAULT_LIMIT = 50


def top_values(conn: Connection, catalog: Catalog, name: str, *, event_field: bool = False,
               limit: int = DEFAULT_LIMIT) -> list[tuple[Any, int]]:
    """The ``limit`` most frequent non-missing values of a field, most frequent first.

    ``name`` is a profile attribute, or with ``event_field`` an event field or
    ``entity.field``: event fields are counted over events, entity fields over
    the entity's rows. Derived attributes (age) have no stored values: [].
    """
    table, column = _source(catalog, name, event_field)
    if column is None:
        return []
    col = quote_identifier(column)
    rows = conn.execute(
        f"SELECT {col}, count(*) AS n FROM {quote_identifier(table)} WHERE {col} IS NOT NULL"
        f" GROUP BY {col} ORDER BY n DESC, {col} LIMIT ?",
        (limit,),
    ).fetchall()
    return [(row[0], int(row[1])) for row in rows]


def _source(catalog: Catalog, name: str, event_field: bool) -> tuple[str, str | None]:
    if not event_field:
        attribute = catalog.attributes.get(name)
        if attribute is None:
            raise InputError(f"unknown attribute {name!r}")
        return "profiles", None if attribute.derived_from else attribute.column
    if "." in name:
        entity_name, _, field_name = name.partition(".")
        entity = catalog.entities.get(entity_name)
        if entity is None or field_name not in entity.fields:
            raise InputError(f"unknown entity field {name!r}")
        return entity.table, entity.fields[field_name].column
    field = catalog.event_fields.get(name)
    if field is None:
        raise InputError(f"unknown event field {name!r}")
    return "events", field.column


def has_few_values(conn: Connection, catalog: Catalog, name: str, *, at_most: int = 12,
                   scan: int = 50_000) -> bool:
    """Whether a profile attribute takes between 2 and ``at_most`` distinct values (among the
    first ``scan`` profiles by pk, the same rows on every engine): a good attribute to break an
    audience down by. Cheap: it stops as soon as it has seen one value too many."""
    _, column = _source(catalog, name, False)
    if column is None:
        return False
    col = quote_identifier(column)
    found = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT v FROM (SELECT {col} AS v FROM profiles"
        f" WHERE {col} IS NOT NULL ORDER BY pk LIMIT ?) AS first_rows LIMIT ?) AS distinct_values",
        (scan, at_most + 1),
    ).fetchone()[0]
    return 2 <= int(found) <= at_most


def breakdown_candidate(conn: Connection, catalog: Catalog,
                        fixed: Collection[str] = ()) -> str | None:
    """The first string or boolean attribute (in catalog order) with a handful of values,
    preferring one not in ``fixed`` (attributes the rule pins to one value: a breakdown by
    them would show one bar at 100%); a fixed one only when nothing else qualifies."""
    fallback = None
    for attribute in catalog.attributes.values():
        if attribute.type in ("string", "boolean") and attribute.name != "id" \
                and (attribute.name not in fixed or fallback is None) \
                and has_few_values(conn, catalog, attribute.name):
            if attribute.name not in fixed:
                return attribute.name
            fallback = attribute.name
    return fallback
