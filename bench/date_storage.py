"""The suite's two date shapes over a DuckDB store's date attributes kept as text (how the
engine stores them: ``'YYYY-MM-DD'`` in VARCHAR, DuckDB choosing the compression), as text
stored uncompressed, and as DuckDB DATE, alternated in one run (warm medians of 5): what typed
date columns would be worth.

    .venv/bin/python bench/date_storage.py STORE.duckdb WORK.duckdb

WORK.duckdb is made (replaced) with the store's pk and three date columns three times. The
conditions are the compiler's for relative-date and date-range (as of
2026-11-01), with the same literals on every table.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store.engines.duckdb import instance_config

COLUMNS = ("signup_date", "tier_renewal_date", "birth_date")
SHAPES = {
    "relative-date": ("(signup_date IS NOT NULL AND signup_date >= '2026-08-04'"
                      " AND signup_date < '2026-11-02') OR (tier_renewal_date IS NOT NULL"
                      " AND tier_renewal_date < '2026-11-08')"),
    "date-range": ("birth_date IS NOT NULL AND birth_date >= '1980-01-01' AND birth_date < '1990-01-01'"
                   " AND birth_date >= '1981-11-02' AND birth_date < '1991-11-02'"),
}
TABLES = {"as text (VARCHAR)": "as_text", "as text, uncompressed": "as_plain_text",
          "as DATE": "as_date"}


def main(store: str, work: str) -> None:
    Path(work).unlink(missing_ok=True)
    conn = duckdb.connect(work, config=instance_config())
    conn.execute(f"ATTACH '{store}' AS store (READ_ONLY)")
    listed = ", ".join(COLUMNS)
    conn.execute(f"CREATE TABLE as_text AS SELECT pk, {listed} FROM store.profiles")
    plain = ", ".join(f"{column} VARCHAR USING COMPRESSION uncompressed" for column in COLUMNS)
    conn.execute(f"CREATE TABLE as_plain_text (pk BIGINT, {plain})")
    conn.execute("INSERT INTO as_plain_text SELECT * FROM as_text")
    typed = ", ".join(f"CAST({column} AS DATE) AS {column}" for column in COLUMNS)
    conn.execute(f"CREATE TABLE as_date AS SELECT pk, {typed} FROM store.profiles")
    conn.execute("DETACH store")
    conn.execute("CHECKPOINT")
    print(f"{store}; load {os.getloadavg()[0]:.1f}")
    print(f"| shape | {' | '.join(TABLES)} | count |\n|---|" + "---:|" * (len(TABLES) + 1))
    for name, condition in SHAPES.items():
        medians, counts = {}, set()
        for label, table in TABLES.items():
            times = []
            for _ in range(5):
                started = time.perf_counter()
                counts.add(conn.execute(f"SELECT count(*) FROM {table} WHERE {condition}").fetchone()[0])  # type: ignore[index]
                times.append((time.perf_counter() - started) * 1000)
            medians[label] = statistics.median(times)
        if len(counts) != 1:
            raise SystemExit(f"{name}: the tables disagree: {counts}")
        print(f"| {name} | " + " | ".join(f"{medians[label]:.1f}" for label in TABLES)
              + f" | {counts.pop():,} |")
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    conn.close()
    Path(work).unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
