"""How long the profile browser's quick search takes: the first page and the capped count.

    .venv/bin/python bench/bench_search.py STORE [STORE ...] [--runs 3]

STORE is any ``--db`` value. For each search text it reports the median of
``--runs`` for the first page of 50 rows (``ProfileQuery.after``) and for the
match count the status line shows (``ProfileQuery.count``, capped as in the app).
The texts are a common word, rarer ones, two words, and one that matches nothing
(the worst case of a scan: every row is read).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

from store.engines.base import engine_for
from store.query.profiles import Listing, ProfileQuery, default_columns
from store.schema.catalog import Catalog

TEXTS = ("gmail", "Chloé", "Nakamura", "anna smith", "zzqxv", "p0123456")


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def median_ms(action, runs: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    timings, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def measure(location: str, runs: int) -> None:
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        columns = tuple(default_columns(catalog))
        print(f"\n{location} ({engine.name}; load {load()})")
        print(f"{'search':<14} {'first page':>11} {'rows':>5} {'count':>9} {'matches':>8}")
        for text in TEXTS:
            listing = Listing(columns, search=text)

            def query(listing: Listing = listing) -> ProfileQuery:
                # A new query each time: the search index is asked again, as for a new search.
                return ProfileQuery(catalog, listing, dt.date(2026, 11, 1))

            page_ms, rows = median_ms(lambda: query().after(conn, None, 50), runs)
            count_ms, counted = median_ms(lambda: query().count(conn), runs)
            found, capped = counted  # type: ignore[misc]
            print(f"{text:<14} {page_ms:>9.1f}ms {len(rows):>5} {count_ms:>7.1f}ms"  # type: ignore[arg-type]
                  f" {found:>7,}{'+' if capped else ''}")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for location in args.stores:
        measure(location, args.runs)


if __name__ == "__main__":
    main()
