"""The per-profile activity rollup (store/schema/activity.py) measured side by side: the same
store, the same process, each figure taken with the rollup and without it, in turns.

    .venv/bin/python bench/bench_activity.py STORE [STORE ...] [--runs 5] [--as-of 2026-11-01]

For each STORE (any ``--db`` value made by ``audiences-tui sample``):

- the rollup is built first when the store has none (a store made before it existed), and that
  build is timed: it is what every import of events, sample and copy now adds;
- ``count``: warm counts (median of ``--runs``) of three segments that ask for any event in a
  window reaching the data's end: the example segment dormant-customers, "any event in the last
  6 months" and "any event ever";
- ``overlap``: ``bench_overlap``'s ten example segments, cold (an empty member-set cache), the
  median of ``--runs``.

"without" is the same catalog with ``activity_until`` set to None: the compiler then asks the
events, as it did before the rollup. Counts and overlaps must be equal both ways.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

from bench_overlap import SEGMENTS

from sample_data import SEGMENTS_DIR
from store.engines.base import engine_for
from store.engines.layout import write_transaction
from store.query.audience import count
from store.query.membersets import MemberSetCache
from store.query.overlap import Overlap, overlap
from store.schema.activity import activity_until, refresh_activity
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from store.segments.model import EventCondition, Period, Segment, Window
from store.segments.validate import ResolvedSegment
from tui.commands.common import parse_when


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def any_event(months: int | None) -> ResolvedSegment:
    within = Window(last=Period(months, "months")) if months is not None else None
    name = f"any-event-{months}m" if months is not None else "any-event-ever"
    return ResolvedSegment(Segment(name, name, EventCondition(None, (), within)), {})


def ensure_rollup(location: str) -> None:
    engine = engine_for(location)
    conn = engine.connect()
    try:
        if activity_until(conn) is not None:
            print("  rollup: current")
            return
        started = time.perf_counter()
        with write_transaction(conn):
            refresh_activity(conn)
        took = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM profile_activity").fetchone()[0]
        print(f"  rollup: built in {took:.2f} s ({rows:,} profiles with events)")
    finally:
        conn.close()


def timed(run: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def measure(location: str, runs: int, as_of: str) -> None:
    when = parse_when(as_of)
    print(f"{location}  ({engine_for(location).name}, load {load()})")
    ensure_rollup(location)
    conn = engine_for(location).open_store(readonly=True)
    try:
        with_rollup = Catalog.load(conn)
        catalogs = {"with": with_rollup, "without": dataclasses.replace(with_rollup,
                                                                         activity_until=None)}
        segments = [resolve_file(conn, SEGMENTS_DIR / "dormant-customers.yaml"),
                    any_event(6), any_event(None)]
        for segment in segments:
            times: dict[str, list[float]] = {"with": [], "without": []}
            sizes: dict[str, set[object]] = {"with": set(), "without": set()}
            for run in range(runs + 1):  # the first round warms the caches and is not kept
                order = ("with", "without") if run % 2 else ("without", "with")
                for label in order:
                    took, size = timed(partial(count, conn, segment, when, catalogs[label]))
                    sizes[label].add(size)
                    if run:
                        times[label].append(took)
            assert sizes["with"] == sizes["without"] and len(sizes["with"]) == 1, sizes
            print(f"  count {segment.segment.id:22} {sizes['with'].pop():>10,}"
                  f"  with {statistics.median(times['with']) * 1000:7.1f} ms"
                  f"  without {statistics.median(times['without']) * 1000:7.1f} ms")
        resolved = [resolve_file(conn, SEGMENTS_DIR / f"{name}.yaml") for name in SEGMENTS]
        cold: dict[str, list[float]] = {"with": [], "without": []}
        results: dict[str, set[object]] = {"with": set(), "without": set()}
        for run in range(runs):
            order = ("with", "without") if run % 2 else ("without", "with")
            for label in order:
                took, result = timed(partial(overlap, conn, resolved, when, catalogs[label],
                                             MemberSetCache()))
                cold[label].append(took)
                assert isinstance(result, Overlap)
                results[label].add((result.sizes, result.matrix, result.exclusive))
        assert results["with"] == results["without"] and len(results["with"]) == 1
        for label in ("with", "without"):
            print(f"  overlap of 10, cold, {label:7} median {statistics.median(cold[label]):.3f} s"
                  f"  (runs: {', '.join(f'{t:.3f}' for t in cold[label])})")
    finally:
        conn.close()
    print(f"  load at the end {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--as-of", default="2026-11-01")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {load()} at the start")
    for location in args.stores:
        measure(location, args.runs, args.as_of)


if __name__ == "__main__":
    main()
