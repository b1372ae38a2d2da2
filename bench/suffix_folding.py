"""The DuckDB renderings of a case-insensitive suffix before and after the ILIKE change,
alternated in one run (best of 5 each), on the suite's two suffix shapes.

    .venv/bin/python bench/suffix_folding.py STORE.duckdb

Before: ``lower(x) LIKE p ESCAPE '\\'``; after: ``x ILIKE p`` (no ESCAPE: the pattern holds
no escape character). Both keep the translate() branch for texts with U+212A/U+0130.
"""

from __future__ import annotations

import os
import sys
import time

import duckdb

ASCII = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'"
RARE = "STRPOS(email, 'K') > 0 OR STRPOS(email, 'İ') > 0"
BEFORE = (f"email IS NOT NULL AND (CASE WHEN {RARE}"
          f" THEN TRANSLATE(email, {ASCII}) LIKE '%@gmail.com' ESCAPE '\\'"
          " ELSE LOWER(email) LIKE '%@gmail.com' ESCAPE '\\' END)")
AFTER = (f"email IS NOT NULL AND (CASE WHEN {RARE}"
         f" THEN TRANSLATE(email, {ASCII}) LIKE '%@gmail.com'"
         " ELSE email ILIKE '%@gmail.com' END)")
BOUGHT_TWICE_30D = ("pk IN (SELECT profile_pk FROM events WHERE type_id = 4"
                    " AND ts >= 1790985600 AND ts <= 1793577599.999999"
                    " GROUP BY profile_pk HAVING count(*) >= 2)")
NOT_GOLD = "NOT (loyalty_tier IS NOT NULL AND loyalty_tier = 'gold')"
SHAPES = {"email-gmail": "{}", "segment-refs": f"{BOUGHT_TWICE_30D} AND ({{}}) AND {NOT_GOLD}"}


def main(path: str) -> None:
    conn = duckdb.connect(path, read_only=True, config={"threads": 2, "memory_limit": "1GB"})
    print(f"{path}; load {os.getloadavg()[0]:.1f}")
    for name, shape in SHAPES.items():
        best = {"before": float("inf"), "after": float("inf")}
        counts: dict[str, int] = {}
        for _ in range(5):
            for label, predicate in (("before", BEFORE), ("after", AFTER)):
                started = time.perf_counter()
                sql = f"SELECT count(*) FROM profiles WHERE {shape.format(predicate)}"
                counts[label] = conn.execute(sql).fetchone()[0]  # type: ignore[index]
                best[label] = min(best[label], time.perf_counter() - started)
        print(f"{name:14} before {best['before'] * 1000:7.1f} ms  after {best['after'] * 1000:7.1f} ms"
              f"  ratio {best['before'] / best['after']:.2f}  counts {counts}")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
