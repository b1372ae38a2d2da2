"""A store's data as a team's own Parquet files (native types), and a source file over them.

    .venv/bin/python bench/parquet_source.py bench/data/sample-1000000-seed42-2026-11-01.store.duckdb \\
        /tmp/parquet-1m --engine spark://local

Reads a DuckDB store and writes ``customers.parquet`` (text ids, BOOLEAN, DATE,
TIMESTAMP columns), ``events.parquet`` (the event type's name in a column, a
TIMESTAMP) and one file per entity, then ``shop.yaml`` mapping them for the
given engine (``spark://local``, ``sc://HOST:PORT`` or ``duckdb``). Counting
the same segments on the store and on the source compares the engines on the
same data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NATIVE = {"boolean": "CAST({c} AS BOOLEAN)", "date": "CAST({c} AS DATE)",
          "datetime": "CAST({c} AS TIMESTAMP)"}


def native(column: str, kind: str, name: str) -> str:
    return NATIVE.get(kind, "{c}").format(c=f'"{column}"') + f' AS "{name}"'


def export(store: Path, folder: Path, engine: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(store), read_only=True)
    try:
        attributes = conn.execute("SELECT name, type, column_name FROM attributes WHERE derived_from IS NULL"
                                  " ORDER BY position").fetchall()
        age = conn.execute("SELECT derived_from FROM attributes WHERE derived_from IS NOT NULL").fetchone()
        picks = ", ".join(native(c, kind, name) for name, kind, c in attributes)
        conn.execute(f"COPY (SELECT id AS customer_id, {picks} FROM profiles) TO"
                     f" '{folder / 'customers.parquet'}' (FORMAT parquet)")
        fields = conn.execute("SELECT name, type, column_name FROM event_fields").fetchall()
        field_picks = "".join(", " + native(f"e\".\"{c}", kind, name) for name, kind, c in fields)
        conn.execute("COPY (SELECT p.id AS customer_id, t.name AS event_name,"
                     " make_timestamp(CAST(round(e.ts * 1000000) AS BIGINT)) AS occurred_at"
                     f"{field_picks} FROM events e JOIN profiles p ON p.pk = e.profile_pk"
                     f" JOIN event_types t ON t.id = e.type_id) TO '{folder / 'events.parquet'}'"
                     " (FORMAT parquet)")
        entities = []
        for name, table, key_field, link in conn.execute(
                "SELECT name, table_name, key_field, link_field FROM entities").fetchall():
            own = conn.execute("SELECT name, type, column_name FROM entity_fields WHERE entity = ?",
                               (name,)).fetchall()
            picks = ", ".join(native(c, kind, field) for field, kind, c in own)
            conn.execute(f"COPY (SELECT {picks} FROM \"{table}\") TO '{folder / (name + '.parquet')}'"
                         " (FORMAT parquet)")
            entities.append({"name": name, "table": f"{name}.parquet", "key": key_field, "link": link})
    finally:
        conn.close()
    profiles: dict[str, str] = {"table": "customers.parquet", "id": "customer_id"}
    if age is not None:
        profiles["age_from"] = str(age[0]).partition(":")[2]
    source = {"engine": engine, "profiles": profiles,
              "events": [{"table": "events.parquet", "profile": "customer_id", "type_column": "event_name",
                          "time": "occurred_at"}],
              "entities": entities, "segments": "segments.db"}
    path = folder / "shop.yaml"
    path.write_text(yaml.safe_dump(source, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path, help="a DuckDB store")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--engine", default="duckdb")
    args = parser.parse_args()
    start = time.perf_counter()
    path = export(args.store, args.folder, args.engine)
    print(f"wrote {path} and its Parquet files in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
