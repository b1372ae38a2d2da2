"""The benchmark suite's audience counts in plain SQL for DuckDB, and the DuckDB copy they run on.

The queries are written by hand from the segment format's semantics, one
per file in bench/segments/, and share nothing with ``store.query.compiler``: the
two engines must agree on every count, so a mismatch points at a bug in
one of them.

The DuckDB copy is made once from a profile store (cached beside it and
rebuilt when the store file changes) with plain, typed tables:

- ``profiles(pk, id, <attribute>...)``: dates are DATE, datetimes TIMESTAMP,
  booleans BOOLEAN; empty strings are NULL (missing), as the spec says;
- ``events(profile_pk, type, ts TIMESTAMP, <field>...)``: the type by name;
- ``product(sku, <field>...)``: the entity events link to through ``sku``.

Every query takes two parameters: ``$d`` the as-of date D and ``$a`` the
as-of instant A (a date alone means the end of that day).

Run on its own (``run.py`` calls it as a subprocess, so DuckDB's memory
stays out of the engine's peak-memory figure)::

    .venv/bin/python bench/duckdb_queries.py STORE.db COPY.duckdb --as-of 2026-11-01 --runs 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 250_000

# -------------------------------------------------------------------------- the queries

# Reusable pieces, spelled out once so each query reads like the segment it counts.
PRELUDE = """
CREATE OR REPLACE TEMP MACRO age_at(birth, d) AS
    year(d) - year(birth)
    - CASE WHEN month(d) < month(birth) OR (month(d) = month(birth) AND day(d) < day(birth))
           THEN 1 ELSE 0 END;
CREATE OR REPLACE TEMP MACRO in_last_days(x, d, n) AS
    CAST(x AS DATE) > d - to_days(CAST(n AS INTEGER)) AND CAST(x AS DATE) <= d;
"""

# E of an event condition: events of one type up to A inside an ``in_last`` window.
def _recent(event_type: str, days: int) -> str:
    return (f"type = '{event_type}' AND ts <= $a AND in_last_days(ts, $d, {days})")


QUERIES: dict[str, str] = {
    "attr-equals": """
        SELECT count(*) FROM profiles WHERE loyalty_tier = 'gold'
    """,
    "attr-in": """
        SELECT count(*) FROM profiles WHERE country IN ('GB', 'DE', 'FR', 'NL')
    """,
    "number-range": """
        SELECT count(*) FROM profiles WHERE lifetime_value BETWEEN 200 AND 800
    """,
    "date-range": """
        SELECT count(*) FROM profiles
        WHERE birth_date BETWEEN DATE '1980-01-01' AND DATE '1989-12-31'
          AND age_at(birth_date, $d) BETWEEN 35 AND 44
    """,
    "relative-date": """
        SELECT count(*) FROM profiles
        WHERE in_last_days(signup_date, $d, 90)
           OR tier_renewal_date < $d + INTERVAL 7 DAY
    """,
    "email-gmail": """
        SELECT count(*) FROM profiles WHERE ends_with(lower(email), '@gmail.com')
    """,
    "purchases-2-in-30d": f"""
        SELECT count(*) FROM profiles WHERE pk IN (
            SELECT profile_pk FROM events WHERE {_recent('purchase', 30)}
            GROUP BY profile_pk HAVING count(*) >= 2)
    """,
    "bought-shoes-90d": f"""
        SELECT count(*) FROM profiles WHERE pk IN (
            SELECT e.profile_pk FROM events AS e LEFT JOIN product AS p ON p.sku = e.sku
            WHERE {_recent('purchase', 90)} AND p.category = 'Shoes')
    """,
    "spent-500-365d": f"""
        SELECT count(*) FROM profiles WHERE pk IN (
            SELECT profile_pk FROM events WHERE {_recent('purchase', 365)}
            GROUP BY profile_pk HAVING coalesce(sum(amount), 0) >= 500)
    """,
    "no-purchase-180d": f"""
        SELECT count(*) FROM profiles AS p WHERE NOT EXISTS (
            SELECT 1 FROM events AS e WHERE e.profile_pk = p.pk AND {_recent('purchase', 180)})
    """,
    "cart-no-purchase-7d": f"""
        SELECT count(*) FROM profiles AS p
        WHERE p.pk IN (SELECT profile_pk FROM events WHERE {_recent('add_to_cart', 7)})
          AND NOT EXISTS (SELECT 1 FROM events AS e
                          WHERE e.profile_pk = p.pk AND {_recent('purchase', 7)})
    """,
    "opened-never-clicked": f"""
        SELECT count(*) FROM profiles AS p
        WHERE p.pk IN (SELECT profile_pk FROM events WHERE {_recent('email_open', 30)})
          AND NOT EXISTS (SELECT 1 FROM events AS e
                          WHERE e.profile_pk = p.pk AND e.type = 'email_click' AND e.ts <= $a)
    """,
    "distinct-orders-year": """
        SELECT count(*) FROM profiles WHERE pk IN (
            SELECT profile_pk FROM events
            WHERE type = 'purchase' AND ts <= $a
              AND CAST(ts AS DATE) > $d - INTERVAL 12 MONTH AND CAST(ts AS DATE) <= $d
            GROUP BY profile_pk HAVING count(DISTINCT order_id) >= 3)
    """,
    "any-event-7d": """
        SELECT count(*) FROM profiles WHERE pk IN (
            SELECT profile_pk FROM events WHERE ts <= $a AND in_last_days(ts, $d, 7))
    """,
    "segment-refs": f"""
        SELECT count(*) FROM profiles
        WHERE pk IN (SELECT profile_pk FROM events WHERE {_recent('purchase', 30)}
                     GROUP BY profile_pk HAVING count(*) >= 2)
          AND ends_with(lower(email), '@gmail.com')
          AND loyalty_tier IS DISTINCT FROM 'gold'
    """,
    "nested-mix": f"""
        SELECT count(*) FROM profiles AS p
        WHERE (country IN ('US', 'CA') OR (country = 'GB' AND age_at(birth_date, $d) < 35))
          AND p.pk IN (
                SELECT e.profile_pk FROM events AS e LEFT JOIN product AS pr ON pr.sku = e.sku
                WHERE {_recent('purchase', 90)} AND pr.category IN ('Shoes', 'Boots')
                UNION
                SELECT profile_pk FROM events WHERE {_recent('email_click', 30)})
          AND NOT (email_opt_in IS FALSE AND sms_opt_in IS NOT NULL)
          AND EXISTS (SELECT 1 FROM events AS e
                      WHERE e.profile_pk = p.pk AND {_recent('purchase', 180)})
    """,
    "six-conditions": f"""
        SELECT count(*) FROM profiles
        WHERE gender = 'female'
          AND age_at(birth_date, $d) >= 30
          AND country IN ('US', 'GB', 'CA')
          AND pk IN (SELECT profile_pk FROM events WHERE {_recent('purchase', 90)})
          AND pk IN (SELECT profile_pk FROM events WHERE {_recent('email_open', 30)})
          AND email_opt_in IS NOT FALSE
    """,
}


# -------------------------------------------------------------------------- the copy

DUCK_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN",
              "date": "DATE", "datetime": "TIMESTAMP", "epoch": "TIMESTAMP"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _converted(name: str, kind: str) -> str:
    """The DuckDB expression turning a stored SQLite value (registered column) into its type."""
    column = _quote(name)
    if kind == "string":
        return f"nullif(CAST({column} AS VARCHAR), '')"
    if kind == "boolean":
        return f"CAST(CAST({column} AS BIGINT) AS BOOLEAN)"
    if kind == "date":
        return f"CAST(substr(CAST({column} AS VARCHAR), 1, 10) AS DATE)"
    if kind == "datetime":
        return f"CAST(CAST({column} AS VARCHAR) AS TIMESTAMP)"
    if kind == "epoch":
        return f"make_timestamp(CAST({column} AS BIGINT) * 1000000)"
    return f"CAST({column} AS {DUCK_TYPES[kind]})"


def store_fingerprint(store: Path) -> str:
    """Size and modification time of the store file: a changed store means a new copy."""
    info = store.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[np.ndarray]]:
    """Rows of a query as column arrays (object dtype keeps NULLs as None), CHUNK rows at a time."""
    while rows := cursor.fetchmany(CHUNK):
        yield [np.array(column, dtype=object) for column in zip(*rows, strict=True)]


def _copy_table(source: sqlite3.Connection, duck: Any, target: str,
                columns: list[tuple[str, str, str]], sql_from: str) -> int:
    """Copy ``columns`` (name in DuckDB, SQL expression in SQLite, type) into ``target``."""
    duck.execute(f"CREATE TABLE {target} ("
                 + ", ".join(f"{_quote(name)} {DUCK_TYPES[kind]}" for name, _, kind in columns) + ")")
    cursor = source.execute("SELECT " + ", ".join(expr for _, expr, _ in columns) + " " + sql_from)
    names = [f"c{i}" for i in range(len(columns))]
    select = ", ".join(_converted(f"c{i}", kind) for i, (_, _, kind) in enumerate(columns))
    copied = 0
    for arrays in _chunks(cursor):
        duck.register("chunk", dict(zip(names, arrays, strict=True)))
        duck.execute(f"INSERT INTO {target} SELECT {select} FROM chunk")
        duck.unregister("chunk")
        copied += len(arrays[0])
    return copied


def build_copy(store: Path, copy: Path) -> float:
    """Copy the store's profiles, events and products into a new DuckDB file; returns seconds."""
    import duckdb

    started = time.perf_counter()
    temp = copy.with_name(copy.name + ".tmp")
    temp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    duck = duckdb.connect(str(temp))
    try:
        attributes = source.execute(
            "SELECT name, column_name, type FROM attributes WHERE derived_from IS NULL"
            " ORDER BY position, name").fetchall()
        profile_columns = [("pk", "pk", "integer"), ("id", "id", "string")]
        profile_columns += [(name, _quote(column), kind) for name, column, kind in attributes
                            if name not in ("pk", "id")]
        _copy_table(source, duck, "profiles", profile_columns, "FROM profiles ORDER BY pk")
        fields = source.execute("SELECT name, column_name, type FROM event_fields ORDER BY name")
        event_columns = [("profile_pk", "e.profile_pk", "integer"), ("type", "t.name", "string"),
                         ("ts", "e.ts", "epoch")]
        event_columns += [(name, "e." + _quote(column), kind) for name, column, kind in fields]
        _copy_table(source, duck, "events", event_columns,
                    "FROM events AS e JOIN event_types AS t ON t.id = e.type_id ORDER BY e.pk")
        entity = source.execute(
            "SELECT table_name FROM entities WHERE name = 'product'").fetchone()
        if entity is not None:
            product_fields = source.execute(
                "SELECT name, column_name, type FROM entity_fields WHERE entity = 'product'"
                " ORDER BY column_name <> 'key', name").fetchall()
            product_columns = [(name, _quote(column), kind) for name, column, kind in product_fields]
            _copy_table(source, duck, "product", product_columns, f"FROM {_quote(entity[0])}")
        duck.execute("CREATE TABLE copy_meta (store VARCHAR, fingerprint VARCHAR)")
        duck.execute("INSERT INTO copy_meta VALUES (?, ?)", [str(store), store_fingerprint(store)])
        duck.execute("CHECKPOINT")
    finally:
        duck.close()
        source.close()
    temp.replace(copy)
    return time.perf_counter() - started


def copy_is_current(store: Path, copy: Path) -> bool:
    """Whether ``copy`` was made from the store file as it is now."""
    import duckdb

    if not copy.exists():
        return False
    try:
        duck = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = duck.execute("SELECT fingerprint FROM copy_meta").fetchone()
    except duckdb.Error:
        return False
    finally:
        duck.close()
    return row is not None and row[0] == store_fingerprint(store)


# -------------------------------------------------------------------------- timing


def _run(duck: Any, sql: str, params: dict[str, Any]) -> tuple[int, float]:
    """The count and milliseconds of one query (DuckDB wants exactly the parameters it uses)."""
    used = {key: value for key, value in params.items() if f"${key}" in sql}
    started = time.perf_counter()
    value = duck.execute(sql, used).fetchone()[0]
    return int(value), (time.perf_counter() - started) * 1000


def measure(copy: Path, as_of: dt.date, runs: int, names: list[str]) -> dict[str, dict[str, Any]]:
    """For each query: the count, the first run on a fresh connection, the median of ``runs`` more."""
    import duckdb

    params = {"d": as_of, "a": dt.datetime.combine(as_of, dt.time(23, 59, 59, 999999))}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        duck = duckdb.connect(str(copy), read_only=True)
        try:
            duck.execute(PRELUDE)
            count, cold = _run(duck, QUERIES[name], params)
            warm = [_run(duck, QUERIES[name], params)[1] for _ in range(runs)]
        finally:
            duck.close()
        results[name] = {"count": count, "cold_ms": cold, "warm_ms": statistics.median(warm)}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Count the benchmark suite with DuckDB.")
    parser.add_argument("store", type=Path, help="the profile store (SQLite) to copy from")
    parser.add_argument("copy", type=Path, help="the DuckDB file (made or refreshed as needed)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", action="append", default=None, help="query name (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args(argv)
    import duckdb

    load_s = None
    if not copy_is_current(options.store, options.copy):
        load_s = build_copy(options.store, options.copy)
    names = [n for n in QUERIES if options.only is None or n in options.only]
    results = measure(options.copy, options.as_of, options.runs, names)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if options.json:
        json.dump({"version": duckdb.__version__, "copy_seconds": load_s, "peak_kb": peak_kb,
                   "queries": results}, sys.stdout)
        print()
        return
    if load_s is not None:
        print(f"copied the store into {options.copy} in {load_s:.1f} s")
    for name, row in results.items():
        print(f"{name:24s} {row['count']:>10,}  cold {row['cold_ms']:8.1f} ms"
              f"  warm {row['warm_ms']:8.1f} ms")


if __name__ == "__main__":
    main()
