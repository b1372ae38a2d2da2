"""Activation from any engine: members streamed into a fresh local SQLite campaign store.

    .venv/bin/python bench/activation_engines.py \\
        --db bench/data/sample-1000000-seed42-2026-11-01.store.duckdb \\
        --db 'postgresql://...?schema=sample_1m' --db /tmp/parquet-1m/shop.yaml

For each ``--db`` (a store, or a source file over a team's own tables), the
segment (default: every profile with a first name, i.e. everyone) is activated
twice into a new campaign store: the first activation (every member added),
then an unchanged refresh (every member kept). Printed: members, seconds,
the CPU seconds of this process (the engine's own threads included for DuckDB
and Spark's driver; not a server's), members per second, the load average
around each run and the process's peak memory. The campaign store's
transaction makes each activation all or nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.campaign.activation import activate
from store.campaign.store import open_campaign
from store.engines.base import engine_for
from store.schema.catalog import Catalog
from store.segments.library import resolve_segment
from store.segments.yamlio import load_segment_text

EVERYONE = "id: everyone\nname: Everyone\nrule:\n  attribute: first_name\n  op: is_not_empty\n"
AS_OF = dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run(location: str, segment_text: str, fields: tuple[str, ...]) -> None:
    engine = engine_for(location)
    started = time.perf_counter()
    conn = engine.open_store(readonly=True)
    opened = time.perf_counter() - started
    try:
        catalog = Catalog.load(conn)
        resolved = resolve_segment(conn, *load_segment_text(segment_text), catalog=catalog)
        with tempfile.TemporaryDirectory(prefix="activation-bench-") as folder:
            campaign = open_campaign(Path(folder) / "campaign.db")
            try:
                for label in ("first activation", "unchanged refresh"):
                    before = load()
                    cpu = time.process_time()
                    start = time.perf_counter()
                    result = activate(conn, campaign, resolved, AS_OF, fields=fields, catalog=catalog)
                    seconds = time.perf_counter() - start
                    cpu = time.process_time() - cpu
                    print(f"| {engine.label} | {label} | {result.count:,} | {seconds:.2f} | {cpu:.2f} |"
                          f" {result.count / seconds:,.0f} | {before} -> {load()} |", flush=True)
            finally:
                campaign.close()
    finally:
        conn.close()
        engine.release()
    print(f"  ({engine.display}: opened in {opened:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", action="append", required=True, help="a store or a source file (repeatable)")
    parser.add_argument("--segment", type=Path, help="segment YAML (default: everyone)")
    parser.add_argument("--field", action="append", default=None, help="fields to copy (default: email)")
    args = parser.parse_args()
    text = args.segment.read_text() if args.segment else EVERYONE
    fields = tuple(args.field or ["email"])
    print("| engine | run | members | seconds | CPU s of this process | members/s | load before -> after |")
    print("|---|---|---:|---:|---:|---:|---|")
    for location in args.db:
        run(location, text, fields)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
