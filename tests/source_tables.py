"""A team's own tables for the source-file tests: a sample store's data written with native types.

The store's encodings become the database's own types (booleans, DATE,
TIMESTAMP, NUMERIC), ids stay text, events carry their type's name and a
timestamp, so a source file mapping these tables must give the same answers as
the store they came from (``cli_json`` reads the CLI's answers to compare).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from store.schema.values import parse_date, read_datetime
from tui.cli import cli

UTC = dt.UTC
Table = tuple[str, list[tuple[str, str]], list[tuple[Any, ...]]]  # name, (column, kind), rows


def _value(raw: Any, kind: str) -> Any:
    if raw is None:
        return None
    if kind == "boolean":
        return bool(raw)
    if kind == "date":
        return parse_date(str(raw))
    if kind == "datetime":
        moment = read_datetime(str(raw))
        assert moment is not None
        return moment.replace(tzinfo=UTC)
    return raw


def native_tables(store: Path) -> tuple[list[Table], dict[str, Any]]:
    """The store's profiles, events and entities as tables with native column kinds, and the
    mapping a source file gives them (without its engine)."""
    conn = sqlite3.connect(store)
    try:
        attributes = conn.execute("SELECT name, type, column_name FROM attributes WHERE derived_from IS NULL"
                                  " ORDER BY position").fetchall()
        columns = [("customer_id", "string"), *((name, kind) for name, kind, _ in attributes)]
        rows = [(pid, *(_value(v, kind) for v, (_, kind, _) in zip(values, attributes, strict=True)))
                for pid, *values in conn.execute(
                    "SELECT id, " + ", ".join(f'"{c}"' for _, _, c in attributes) + " FROM profiles")]
        tables: list[Table] = [("customers", columns, rows)]
        fields = conn.execute("SELECT name, type, column_name FROM event_fields ORDER BY name").fetchall()
        event_columns = [("customer_id", "string"), ("event_name", "string"), ("occurred_at", "datetime"),
                         *((name, kind) for name, kind, _ in fields)]
        event_rows = []
        for pid, name, ts, *values in conn.execute(
                "SELECT p.id, t.name, e.ts, " + ", ".join(f'e."{c}"' for _, _, c in fields)
                + " FROM events e JOIN profiles p ON p.pk = e.profile_pk"
                " JOIN event_types t ON t.id = e.type_id"):
            micros = round(float(ts) * 1_000_000)
            moment = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=micros)
            event_rows.append((pid, name, moment, *(_value(v, k) for v, (_, k, _) in zip(values, fields,
                                                                                        strict=True))))
        tables.append(("shop_events", event_columns, event_rows))
        entities = []
        for name, table, key_field, link in conn.execute(
                "SELECT name, table_name, key_field, link_field FROM entities"):
            own = conn.execute("SELECT name, type, column_name FROM entity_fields WHERE entity = ?"
                               " ORDER BY name", (name,)).fetchall()
            picked = ", ".join(f'"{column}"' for _, _, column in own)
            entity_rows = [tuple(_value(v, k) for v, (_, k, _) in zip(row, own, strict=True))
                           for row in conn.execute(f'SELECT {picked} FROM "{table}"')]
            tables.append((f"catalog_{name}", [(n, k) for n, k, _ in own], entity_rows))
            entities.append({"name": name, "table": f"catalog_{name}", "key": key_field, "link": link})
        age = conn.execute("SELECT derived_from FROM attributes WHERE derived_from IS NOT NULL").fetchone()
    finally:
        conn.close()
    profiles: dict[str, Any] = {"table": "customers", "id": "customer_id"}
    if age is not None:
        profiles["age_from"] = str(age[0]).partition(":")[2]
    with closing(sqlite3.connect(store)) as names:
        types = [str(row[0]) for row in names.execute("SELECT name FROM event_types")]
    mapping = {"profiles": profiles,
               "events": [{"table": "shop_events", "profile": "customer_id", "type_column": "event_name",
                           "time": "occurred_at", "types": sorted(types)}],
               "entities": entities}
    return tables, mapping


DUCKDB_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN",
                "date": "DATE", "datetime": "TIMESTAMPTZ"}
POSTGRES_TYPES = {"string": "TEXT", "integer": "INTEGER", "number": "NUMERIC", "boolean": "BOOLEAN",
                  "date": "DATE", "datetime": "TIMESTAMPTZ"}


def write_duckdb(conn: Any, tables: list[Table], parquet: Path | None = None) -> None:
    """The tables into a DuckDB connection (or, with ``parquet``, into Parquet files there)."""
    for name, columns, rows in tables:
        conn.execute(f'CREATE TABLE "{name}" ('
                     + ", ".join(f'"{c}" {DUCKDB_TYPES[k]}' for c, k in columns) + ")")
        if rows:
            conn.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(columns))})',
                             [list(row) for row in rows])
        if parquet is not None:
            conn.execute(f"COPY \"{name}\" TO '{parquet / (name + '.parquet')}' (FORMAT parquet)")


def write_postgres(conn: Any, tables: list[Table]) -> None:
    for name, columns, rows in tables:
        conn.execute(f'CREATE TABLE "{name}" ('
                     + ", ".join(f'"{c}" {POSTGRES_TYPES[k]}' for c, k in columns) + ")")
        names = ", ".join(f'"{c}"' for c, _ in columns)
        with conn.cursor() as cursor, cursor.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)


def write_source_file(path: Path, engine: str, mapping: dict[str, Any],
                      table: Callable[[str], str] = lambda name: name) -> Path:
    """A source file naming ``engine``, its tables renamed by ``table`` (a schema, a Parquet path)."""
    data = {"engine": engine, **mapping}
    data["profiles"] = {**mapping["profiles"], "table": table(mapping["profiles"]["table"])}
    data["events"] = [{**e, "table": table(e["table"])} for e in mapping["events"]]
    data["entities"] = [{**e, "table": table(e["table"])} for e in mapping["entities"]]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli_json(db: str, *args: str) -> dict[str, Any]:
    """A command's ``--json`` answer on ``--db`` at the sample's as-of date, without its timing."""
    result = CliRunner().invoke(cli, [*args, "--db", db, "--as-of", "2026-11-01", "--json"])
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    answer.pop("elapsed_ms", None)
    return answer


def assert_overlap_and_trend_match(location: str, reference: str, segments: list[str],
                                   last: str) -> None:
    """``overlap`` of ``segments`` and a monthly ``trend`` of the first over ``last`` give on
    ``location`` exactly the ``--json`` of ``reference``, and neither answer is trivial."""
    overlap = cli_json(location, "overlap", *segments)
    assert overlap == cli_json(reference, "overlap", *segments)
    assert min(overlap["sizes"]) > 0 and overlap["union"] < sum(overlap["sizes"])
    trend = ["trend", segments[0], "--every", "1m", "--last", last]
    points = cli_json(location, *trend)
    assert points == cli_json(reference, *trend)
    assert len({p["count"] for p in points["points"]}) > 1
