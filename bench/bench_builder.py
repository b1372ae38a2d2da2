"""How fast the builder answers an edit: edit -> exact count on screen, edit -> per-node counts.

    .venv/bin/python bench/bench_builder.py STORE [--runs 3] [--as-of 2026-01-31]

STORE is any ``--db`` value (a SQLite file, a ``.duckdb`` file, a PostgreSQL URL).
Runs the real app headless on STORE (made by ``audiences-tui sample``: the
segments below use its schema), opens the builder and builds three realistic
segments one edit at a time, the way the keys do (``SegmentDraft`` operations
followed by the screen's rebuild). For every edit it measures, from the edit:

- ``count``: until the exact count is on screen (includes the 0.25 s debounce);
- ``nodes``: until every node of the tree shows its own count and waterfall.

It also times the engine calls the preview makes for each finished segment
(count, per-node counts, sample, breakdown), without the app around them, and
reports the process's peak memory (the app with its engine, as a user runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from textual import events

from store.engines.base import engine_for
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.library import resolve_segment
from store.segments.model import (
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    Node,
    NotOf,
    Period,
    Segment,
    Window,
)
from tui.app import make_app
from tui.builder.screen import DEBOUNCE_SECONDS, BuilderScreen

Edit = Callable[[BuilderScreen], str]
KEY_LATENCIES: list[float] = []  # seconds for a key to be handled while a count runs


def add(node: Node, at: str | None = None) -> Edit:
    return lambda screen: screen.draft.insert(at or screen.rule_tree.selected_path, node)


SEGMENTS: dict[str, list[Edit]] = {
    "lapsed VIPs": [
        add(AttributeCondition("loyalty_tier", "in", ("gold", "platinum")), "rule"),
        add(EventCondition(("purchase",), within=Window(last=Period(6, "months")),
                           count=CountRule("at_most", 0)), "rule"),
        add(AttributeCondition("email_opt_in", "is_true"), "rule"),
    ],
    "young shoe buyers, DE/FR": [
        add(AttributeCondition("country", "in", ("DE", "FR")), "rule"),
        add(EventCondition(("purchase",), where=(AttributeCondition(
            "product.category", "in", ("Shoes", "Sneakers", "Boots")),),
            within=Window(last=Period(1, "years")), count=CountRule("at_least", 2, "order_id")),
            "rule"),
        add(AnyOf((AttributeCondition("age", "less_than", 30),
                   EventCondition(("product_view",), within=Window(last=Period(30, "days")),
                                  count=CountRule("at_least", 5)))), "rule"),
        add(NotOf(AttributeCondition("loyalty_tier", "equals", "platinum")), "rule"),
    ],
    "cart abandoners": [
        add(EventCondition(("add_to_cart",), within=Window(last=Period(7, "days"))), "rule"),
        add(EventCondition(("purchase",), within=Window(last=Period(7, "days")),
                           count=CountRule("at_most", 0)), "rule"),
        add(AttributeCondition("email_opt_in", "is_true"), "rule"),
        lambda screen: screen.draft.negate("rule.all[2]"),
        lambda screen: screen.draft.undo() or "rule",
    ],
}


async def time_edits(path: str, as_of: dt.datetime, runs: int) -> list[tuple[str, int, float,
                                                                              float]]:
    """(segment, edit number, seconds to the count, seconds to all node counts) per edit."""
    results = []
    app = make_app(path, as_of=as_of)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(runs):
            for name, edits in SEGMENTS.items():
                screen = BuilderScreen(Segment("bench", name, AllOf()))
                await app.push_screen(screen)
                await until(pilot, lambda s=screen: s.shown_count is not None)  # type: ignore[misc]
                for number, edit in enumerate(edits, 1):
                    started = time.perf_counter()
                    screen.after_edit(edit(screen))
                    # While the count runs in its worker, keys must still be handled at once.
                    await pilot.pause(DEBOUNCE_SECONDS + 0.01)
                    if screen.shown_count is None:
                        await time_cursor_keys(app, screen)
                    await until(pilot, lambda s=screen: s.shown_count is not None)  # type: ignore[misc]
                    counted = time.perf_counter() - started
                    await until(pilot, lambda s=screen: all(  # type: ignore[misc]
                        n.data is not None and (not n.data.pending or n.data.left_out)
                        for n in s.rule_tree.rows.values()))
                    results.append((name, number, counted, time.perf_counter() - started))
                screen.leave()
                await pilot.pause(0.05)
    return results


async def time_cursor_keys(app: Any, screen: BuilderScreen, keys: int = 4) -> None:
    """Send cursor keys the way the terminal driver does and time each one until the tree's
    cursor has moved (the key was handled), while the count runs in its worker.

    ``Pilot.press`` cannot be used for this: it waits until the whole process is idle
    (CPU time of every thread), so with a count running it measures the count, not the key.
    """
    tree = screen.rule_tree
    for _ in range(keys):
        if screen.shown_count is not None or tree.last_line < 1:
            return
        before = tree.cursor_line
        key = "up" if before > 0 else "down"
        pressed = time.perf_counter()
        app._driver.send_message(events.Key(key, None))
        while tree.cursor_line == before:
            if time.perf_counter() - pressed > 10:
                raise TimeoutError("a key was not handled within 10 s")
            await asyncio.sleep(0.0005)
        KEY_LATENCIES.append(time.perf_counter() - pressed)


async def until(pilot: Any, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the builder did not answer in time")
        await pilot.pause(0.005)


def engine_times(path: str, as_of: dt.datetime) -> None:
    """The preview's engine calls on each finished segment, best of three, in ms."""
    conn = engine_for(path).open_store(readonly=True)
    catalog = Catalog.load(conn)
    for name, edits in SEGMENTS.items():
        probe = _Probe()
        for edit in edits:
            edit(probe)  # type: ignore[arg-type]
        resolved = resolve_segment(conn, Segment("bench", name, probe.draft.rule), catalog=catalog)
        timings = {}
        for label, call in {
            "count": lambda r=resolved: audience.count(conn, r, as_of, catalog),
            "nodes": lambda r=resolved: audience.node_counts(conn, r, as_of, catalog),
            "sample": lambda r=resolved: audience.sample(conn, r, as_of, 10, 7, catalog),
            "breakdown": lambda r=resolved: audience.breakdown(conn, r, as_of, "gender", 8,
                                                                 catalog),
        }.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - started)
            timings[label] = best * 1000
        size = audience.count(conn, resolved, as_of, catalog)
        print(f"  {name:<26} {size:>9,} members  " + "  ".join(
            f"{label} {ms:7.1f} ms" for label, ms in timings.items()))
    conn.close()


class _Probe:
    """Just enough of the screen for an edit to run against a bare draft."""

    def __init__(self) -> None:
        from store.segments.editing import SegmentDraft

        self.draft = SegmentDraft(Segment("bench", "bench", AllOf()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="a --db value: a store file or a PostgreSQL URL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: now)")
    args = parser.parse_args()
    as_of = (dt.datetime.combine(dt.date.fromisoformat(args.as_of), dt.time(23, 59, 59),
                                 tzinfo=dt.UTC) if args.as_of else dt.datetime.now(dt.UTC))
    engine = engine_for(args.store)
    conn = engine.open_store(readonly=True)
    total = audience.total(conn)
    conn.close()
    print(f"store {engine.display} · {engine.label} · {total:,} profiles · as of {as_of:%Y-%m-%d %H:%M} UTC")
    print(f"debounce {DEBOUNCE_SECONDS * 1000:.0f} ms (included in the edit timings)")
    results = asyncio.run(time_edits(args.store, as_of, args.runs))
    print("\nedit -> on screen (median of runs, ms):")
    for name, edits in SEGMENTS.items():
        for number in range(1, len(edits) + 1):
            rows = [r for r in results if r[0] == name and r[1] == number]
            print(f"  {name:<26} edit {number}:  count {statistics.median(r[2] for r in rows) * 1000:7.0f}"
                  f"   all node counts {statistics.median(r[3] for r in rows) * 1000:7.0f}")
    if KEY_LATENCIES:
        ordered = sorted(KEY_LATENCIES)
        print(f"\nkeys pressed while a count runs: {len(ordered)}, handled in median"
              f" {statistics.median(ordered) * 1000:.1f} ms, worst {ordered[-1] * 1000:.1f} ms")
    counts = [r[2] for r in results]
    nodes = [r[3] for r in results]
    print(f"\nall edits: count median {statistics.median(counts) * 1000:.0f} ms,"
          f" max {max(counts) * 1000:.0f} ms; node counts median"
          f" {statistics.median(nodes) * 1000:.0f} ms, max {max(nodes) * 1000:.0f} ms")
    print(f"\npeak memory of the app process: {peak_rss_mb():,.0f} MB")
    print("\nengine calls per finished segment (best of 3):")
    engine_times(args.store, as_of)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
