"""How long an exact overlap of ten segments takes: ``store.query.overlap.overlap``.

    .venv/bin/python bench/bench_overlap.py STORE [STORE ...] [--runs 3] [--as-of 2026-11-01]

STORE is any ``--db`` value made by ``audiences-tui sample`` (the segments are
the example segments of ``sample_data/segments``). For each store it reports:

- ``cold``: a fresh connection and an empty member-set cache, so every segment's
  members are read from the store (what ``audiences-tui overlap`` does), median
  of ``--runs``;
- ``warm``: the same ten segments again with the cache kept (what the app does
  when one more segment is added or the view is opened again): only bit
  operations;
- ``one more``: the cache holds nine of the ten, so one segment is read.

The load average is printed with each store, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sample_data import SEGMENTS_DIR
from store.engines.base import engine_for
from store.query.membersets import MemberSetCache
from store.query.overlap import overlap
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from tui.commands.common import parse_when

SEGMENTS = ("cart-abandoners-7d", "lapsed-vips", "dormant-customers", "bargain-hunters",
            "one-time-buyers", "big-spenders-12m", "loyal-veterans", "members-never-bought",
            "engaged-not-clicking", "young-sneakerheads")


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(location: str, runs: int, as_of: str) -> None:
    when = parse_when(as_of)
    engine = engine_for(location)
    timings: dict[str, list[float]] = {"cold": [], "warm": [], "one more": []}
    result = None
    for _ in range(runs):
        conn = engine.open_store(readonly=True)
        try:
            catalog = Catalog.load(conn)
            resolved = [resolve_file(conn, SEGMENTS_DIR / f"{name}.yaml") for name in SEGMENTS]
            cache = MemberSetCache()
            started = time.perf_counter()
            result = overlap(conn, resolved, when, catalog, cache)
            timings["cold"].append(time.perf_counter() - started)
            started = time.perf_counter()
            overlap(conn, resolved, when, catalog, cache)
            timings["warm"].append(time.perf_counter() - started)
            partial = MemberSetCache()
            overlap(conn, resolved[:-1], when, catalog, partial)
            started = time.perf_counter()
            overlap(conn, resolved, when, catalog, partial)
            timings["one more"].append(time.perf_counter() - started)
        finally:
            conn.close()
    assert result is not None
    print(f"{engine.display}  ({engine.name}, load average {load()})")
    print(f"  {len(SEGMENTS)} segments, {result.total:,} profiles, {result.union:,} in at least one;"
          f" sizes {', '.join(f'{s:,}' for s in result.sizes)}")
    for label, values in timings.items():
        print(f"  {label:<9} median {statistics.median(values):6.3f} s"
              f"  (runs: {', '.join(f'{v:.3f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", metavar="STORE")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--as-of", default="2026-11-01")
    args = parser.parse_args()
    print(f"$ bench/bench_overlap.py {' '.join(args.stores)} --runs {args.runs} --as-of {args.as_of}")
    print(f"{os.cpu_count()} cores, load average {load()} at the start")
    for location in args.stores:
        measure(location, args.runs, args.as_of)


if __name__ == "__main__":
    main()
