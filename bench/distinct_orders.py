"""Ways of counting distinct-orders-year on one DuckDB store, alternated in one run (warm
medians of 5): how far a rewrite of the query could go, against ``count(*)`` over the same rows.

    .venv/bin/python bench/distinct_orders.py STORE.duckdb [--set NAME=VALUE ...]

``--set`` changes a DuckDB setting for the run (e.g. ``perfect_ht_threshold=24``).

The window is the suite's (purchases in the 12 calendar months up to 2026-11-01, ``type_id`` 4
in the sample's stores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store.engines.duckdb import instance_config

WINDOW = ("ev.type_id = 4 AND ev.ts >= 1762041600 AND ev.ts <= 1793577599.999999"
          " AND ev.order_id IS NOT NULL")
THREE_LINES = (f"SELECT ev.profile_pk FROM events AS ev WHERE {WINDOW}"
               " GROUP BY ev.profile_pk HAVING count(*) >= 3")
VARIANTS = {
    "ours (count DISTINCT)": (f"SELECT ev.profile_pk FROM events AS ev WHERE {WINDOW}"
                              " GROUP BY ev.profile_pk HAVING count(DISTINCT ev.order_id) >= 3"),
    "3 lines first": (f"SELECT ev.profile_pk FROM events AS ev WHERE {WINDOW}"
                      f" AND ev.profile_pk IN ({THREE_LINES})"
                      " GROUP BY ev.profile_pk HAVING count(DISTINCT ev.order_id) >= 3"),
    "DISTINCT pairs, then count": (f"SELECT profile_pk FROM (SELECT DISTINCT ev.profile_pk, ev.order_id"
                                   f" FROM events AS ev WHERE {WINDOW})"
                                   " GROUP BY profile_pk HAVING count(*) >= 3"),
    "count(*) alone (not the answer)": THREE_LINES,
}


def main(path: str, settings: list[str]) -> None:
    conn = duckdb.connect(path, read_only=True, config=instance_config())
    for setting in settings:
        name, _, value = setting.partition("=")
        conn.execute(f"SET {name} = '{value}'")
        print(f"SET {name} = '{value}'")
    rows = conn.execute(f"SELECT count(*) FROM events AS ev WHERE {WINDOW}").fetchone()
    print(f"{path}; {rows[0]:,} purchase lines in the window; load {os.getloadavg()[0]:.1f}")  # type: ignore[index]
    for round_ in (1, 2):
        for label, query in VARIANTS.items():
            times, count = [], 0
            for _ in range(5):
                started = time.perf_counter()
                count = conn.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]  # type: ignore[index]
                times.append((time.perf_counter() - started) * 1000)
            print(f"round {round_}  {label:32} {count:>9,} {statistics.median(times):8.1f} ms")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    options = parser.parse_args()
    main(options.store, options.set)
