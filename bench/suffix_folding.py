"""The DuckDB renderings of a case-insensitive suffix, alternated in one run (best of 5 each), on
the suite's two suffix shapes.

    .venv/bin/python bench/suffix_folding.py STORE.duckdb

- ``lower LIKE``: ``lower(x) LIKE p ESCAPE '\\'`` (the first rendering);
- ``ILIKE, two searches``: ``x ILIKE p`` without ESCAPE, texts holding U+212A or U+0130 (found by
  two ``strpos``) sent to the exact translate() branch;
- ``ILIKE, length test`` (the app's now): texts that are not all ASCII (``strlen(x) <>
  length(x)``) sent to the translate() branch.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store.engines.duckdb import instance_config

ASCII = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'"
EXACT = f"TRANSLATE(email, {ASCII}) LIKE '%@gmail.com'"
TWO_SEARCHES = "STRPOS(email, 'K') > 0 OR STRPOS(email, 'İ') > 0"
RENDERINGS = {
    "lower LIKE": (f"email IS NOT NULL AND (CASE WHEN {TWO_SEARCHES} THEN {EXACT} ESCAPE '\\'"
                   " ELSE LOWER(email) LIKE '%@gmail.com' ESCAPE '\\' END)"),
    "ILIKE, two searches": (f"email IS NOT NULL AND (CASE WHEN {TWO_SEARCHES} THEN {EXACT}"
                            " ELSE email ILIKE '%@gmail.com' END)"),
    "ILIKE, length test": (f"email IS NOT NULL AND (CASE WHEN STRLEN(email) <> LENGTH(email)"
                           f" THEN {EXACT} ELSE email ILIKE '%@gmail.com' END)"),
}
BOUGHT_TWICE_30D = ("pk IN (SELECT profile_pk FROM events WHERE type_id = 4"
                    " AND ts >= 1790985600 AND ts <= 1793577599.999999"
                    " GROUP BY profile_pk HAVING count(*) >= 2)")
NOT_GOLD = "NOT (loyalty_tier IS NOT NULL AND loyalty_tier = 'gold')"
SHAPES = {"email-gmail": "{}", "segment-refs": f"{BOUGHT_TWICE_30D} AND ({{}}) AND {NOT_GOLD}"}


def main(path: str) -> None:
    conn = duckdb.connect(path, read_only=True, config=instance_config())
    print(f"{path}; load {os.getloadavg()[0]:.1f}")
    print(f"| shape | {' | '.join(RENDERINGS)} | count |\n|---|" + "---:|" * (len(RENDERINGS) + 1))
    for name, shape in SHAPES.items():
        best = dict.fromkeys(RENDERINGS, float("inf"))
        counts: set[int] = set()
        for _ in range(5):
            for label, predicate in RENDERINGS.items():
                started = time.perf_counter()
                sql = f"SELECT count(*) FROM profiles WHERE {shape.format(predicate)}"
                counts.add(conn.execute(sql).fetchone()[0])  # type: ignore[index]
                best[label] = min(best[label], time.perf_counter() - started)
        if len(counts) != 1:
            raise SystemExit(f"{name}: the renderings disagree: {counts}")
        print(f"| {name} | " + " | ".join(f"{best[label] * 1000:.1f}" for label in RENDERINGS)
              + f" | {counts.pop():,} |")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
