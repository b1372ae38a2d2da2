"""Copying a store to another engine (or another place), row for row: ``audiences-tui copy``.

The destination gets the same catalog, the same columns (named and typed by
the catalog, in the same order), the same rows with the same keys, and the
saved segments; then its engine's indexes. Rows are read in batches (key
ranges for profiles and events, a stream for the rest), never a whole table
at once, and written through the destination's bulk path. The destination is
built as ``store.schema.rebuild`` builds a store: a temporary file renamed
into place, or one transaction on a server, so a failed copy leaves the
destination as it was.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from store.engines.base import Connection, Engine
from store.engines.layout import quote_identifier
from store.errors import InputError, StoreError
from store.ingest.inference import DISTINCT_SAMPLE, ColumnInference
from store.schema.activity import refresh_activity
from store.schema.catalog import add_column
from store.schema.indexes import create_missing_indexes, drop_event_indexes
from store.schema.rebuild import Build, replacement
from store.schema.values import SQL_AFFINITY, AttrType

CopyProgress = Callable[[str, int, int], None]
"""Called as ``progress(table, rows_done, rows_total)``; table "indexes" while they are built."""

BATCH_ROWS = 50_000
# Catalog tables, parents first; then the data tables. Rows keep their keys.
CATALOG_TABLES = ("meta", "attributes", "event_types", "event_fields", "event_type_fields",
                  "entities", "entity_fields", "segments")
KEYED_TABLES = ("profiles", "events")  # copied by ranges of their integer key
ORDER_KEYS = {"meta": "key", "attributes": "name", "event_types": "id", "event_fields": "name",
              "event_type_fields": "event_type_id, field_name", "entities": "name",
              "entity_fields": "entity, name", "segments": "id"}
ENGINE_ROWS = frozenset({("meta", "data_version")})  # counted by each engine itself


@dataclass
class CopyResult:
    """What was copied: rows per table, in copy order."""

    rows: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    source: str = ""
    destination: str = ""

    def summary(self) -> str:
        profiles, events = self.rows.get("profiles", 0), self.rows.get("events", 0)
        entities = sum(count for table, count in self.rows.items() if table.startswith("entity_")
                       and table != "entity_fields")
        segments = self.rows.get("segments", 0)
        return (f"Copied {profiles:,} profiles, {events:,} events, {entities:,} entity rows and"
                f" {segments:,} saved segments from {self.source} to {self.destination}"
                f" in {self.elapsed_s:.1f} s.")


def copy_store(source: Engine, destination: Engine, *, replace: bool = False,
               progress: CopyProgress | None = None) -> CopyResult:
    """Copy the store of ``source`` to ``destination``, all or nothing.

    Refuses (StoreError) a destination that already holds a store with data unless
    ``replace``, and a destination that is not a store at all (a foreign file, a schema
    with other tables).
    """
    started = time.perf_counter()
    if _same_place(source, destination):
        raise InputError(f"--to names the store being copied ({destination.display}).")
    report = progress or (lambda table, done, total: None)
    src = source.open_store(readonly=True)
    result = CopyResult(source=source.display, destination=destination.display)
    refusal = None if replace else (
        f"{destination.display} already holds a store with data; pass --replace to overwrite it.")
    try:
        with replacement(destination, refuse_data=refusal, who="copy") as build:
            _copy(src, build, result, report)
    except sqlite3.Error as exc:
        raise StoreError(f"{exc} Nothing was copied.") from exc
    finally:
        src.close()
    result.elapsed_s = time.perf_counter() - started
    return result


def _same_place(source: Engine, destination: Engine) -> bool:
    if source.path is not None and destination.path is not None:
        return source.path.resolve() == destination.path.resolve()
    return source == destination


def _copy(src: Connection, build: Build, result: CopyResult, report: CopyProgress) -> None:
    dest = build.conn
    dest.execute("DELETE FROM meta")  # the source's stamps, created_at included
    _copy_table(src, dest, "meta", result, report)
    for table in CATALOG_TABLES[1:]:
        _copy_table(src, dest, table, result, report)
    types = _column_types(src)
    entity_tables = [row[0] for row in src.execute("SELECT table_name FROM entities ORDER BY name")]
    for table in (*KEYED_TABLES, *entity_tables):
        _add_columns(src, dest, table, types.get(table, {}))
    rebuild = drop_event_indexes(dest)
    for table in KEYED_TABLES:
        _copy_keyed(src, build, table, result, report)
    for table in entity_tables:
        _copy_table(src, dest, table, result, report, order="key")
    report("indexes", 0, 1)
    for statement in rebuild:
        dest.execute(statement)
    refresh_activity(dest)
    dest.engine.analyze(dest)
    create_missing_indexes(dest)
    report("indexes", 1, 1)


def _column_types(src: Connection) -> dict[str, dict[str, AttrType]]:
    """Table -> column -> the catalog's type of the values it holds."""
    types: dict[str, dict[str, AttrType]] = {
        "profiles": dict(src.execute(
            "SELECT column_name, type FROM attributes WHERE derived_from IS NULL"
            " OR derived_from = ''").fetchall()),
        "events": dict(src.execute("SELECT column_name, type FROM event_fields").fetchall()),
    }
    for table, column, kind in src.execute(
            "SELECT e.table_name, f.column_name, f.type FROM entity_fields f"
            " JOIN entities e ON e.name = f.entity").fetchall():
        types.setdefault(table, {})[column] = kind
    return types


def _add_columns(src: Connection, dest: Connection, table: str, types: dict[str, AttrType]) -> None:
    """The source table's columns that the destination lacks, in the source's order."""
    engine = dest.engine
    present = engine.table_columns(dest, table)
    if not present:  # an entity table: keyed by ``key``
        key_type = types.get("key", "string")
        dest.execute(f"CREATE TABLE {quote_identifier(table)}"
                     f" (key {engine.column_type(SQL_AFFINITY[key_type])} PRIMARY KEY)")
        present = ["key"]
    for column in src.engine.table_columns(src, table):
        if column not in present:
            kind = types.get(column, "string")
            affinity = SQL_AFFINITY[kind]  # text, dates and datetimes alike are stored as text
            judged = (table == "profiles"  # only where the storage depends on it
                      and engine.column_storage(affinity, True) != engine.column_storage(affinity, False))
            add_column(dest, table, column, kind,
                       mostly_distinct=judged and _mostly_distinct(src, table, column))


def _mostly_distinct(src: Connection, table: str, column: str) -> bool:
    """Whether the first values of a source column mostly differ (as the importer judges them)."""
    inference = ColumnInference(column)
    inference.observe_distinct([row[0] for row in src.execute(
        f"SELECT {quote_identifier(column)} FROM {quote_identifier(table)}"
        f" WHERE {quote_identifier(column)} IS NOT NULL LIMIT {DISTINCT_SAMPLE * 4}").fetchall()])
    return inference.mostly_distinct


def _copy_table(src: Connection, dest: Connection, table: str, result: CopyResult,
                report: CopyProgress, order: str | None = None) -> None:
    """A table read as a stream ordered by its key, written a batch at a time."""
    columns = src.engine.table_columns(src, table)
    names = ", ".join(quote_identifier(c) for c in columns)
    total = int(src.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0])
    done = 0
    report(table, 0, total)
    sql = (f"SELECT {names} FROM {quote_identifier(table)}"
           f" ORDER BY {order or ORDER_KEYS[table]}")
    for batch in _stream(src, sql):
        if table == "meta":
            batch = [row for row in batch if (table, row[0]) not in ENGINE_ROWS]
        dest.engine.bulk_insert(dest, table, columns, batch)
        done += len(batch)
        report(table, done, total)
    if done != total:  # rows the engine keeps for itself were left out
        report(table, done, done)
    result.rows[table] = done


def _copy_keyed(src: Connection, build: Build, table: str, result: CopyResult,
                report: CopyProgress) -> None:
    """A big table read by ranges of its integer key (each range sorted: the stored order)."""
    dest = build.conn
    columns = src.engine.table_columns(src, table)
    names = ", ".join(quote_identifier(c) for c in columns)
    low, high, total = src.execute(
        f"SELECT min(pk), max(pk), count(*) FROM {quote_identifier(table)}").fetchone()
    done = 0
    report(table, 0, int(total))
    sql = (f"SELECT {names} FROM {quote_identifier(table)} WHERE pk >= ? AND pk < ?"
           " ORDER BY pk")
    following = f"SELECT min(pk) FROM {quote_identifier(table)} WHERE pk >= ?"
    start = low
    while start is not None and start <= high:
        start = int(start)
        rows = src.execute(sql, (start, start + BATCH_ROWS)).fetchall()
        if rows:
            dest.engine.bulk_insert(dest, table, columns, rows)
            build.wrote(len(rows))
            done += len(rows)
            report(table, done, int(total))
        start = src.execute(following, (start + BATCH_ROWS,)).fetchone()[0]  # over any gap
    result.rows[table] = done


def _stream(conn: Connection, sql: str, parameters: Sequence[Any] = ()) -> Iterator[list[Any]]:
    """A query's rows in batches, without reading them all at once."""
    yield from conn.engine.stream(conn, sql, parameters, BATCH_ROWS)
