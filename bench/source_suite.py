"""The segment suite counted on a source file (Spark or DuckDB over Parquet) and on the store
its data came from: every count must be equal.

    .venv/bin/python bench/source_suite.py SOURCE_YAML REFERENCE_STORE [--as-of 2026-11-01]
                                           [--segments DIR]

SOURCE_YAML is what ``bench/parquet_source.py`` wrote (its engine: ``spark://local``,
``sc://HOST:PORT`` or ``duckdb``); REFERENCE_STORE the store it was exported from. For each
segment of ``--segments`` (default: bench/segments) it prints both counts and the seconds the
source took (one connection for the whole suite, as the app keeps one), then the time to open
the source (for Spark: the session's start and the source's plan). Exits with status 1 on any
difference. The load average is printed before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.engines.base import engine_for
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from tui.commands.common import parse_when

BENCH_SEGMENTS = Path(__file__).resolve().parent / "segments"


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("reference")
    parser.add_argument("--as-of", default="2026-11-01")
    parser.add_argument("--segments", type=Path, default=BENCH_SEGMENTS)
    args = parser.parse_args()
    when = parse_when(args.as_of)
    files = sorted(args.segments.glob("*.yaml"))
    print(f"load before: {load()}")
    reference = engine_for(args.reference).open_store(readonly=True)
    started = time.perf_counter()
    source = engine_for(args.source).open_store(readonly=True)
    source_catalog = Catalog.load(source)
    print(f"source opened in {time.perf_counter() - started:.1f} s ({source.engine.display})")
    reference_catalog = Catalog.load(reference)
    differences = 0
    total = 0.0
    print("| segment | reference | source | source seconds |\n|---|---:|---:|---:|")
    for path in files:
        expected = audience.count(reference, resolve_file(reference, path), when, reference_catalog)
        started = time.perf_counter()
        got = audience.count(source, resolve_file(source, path), when, source_catalog)
        seconds = time.perf_counter() - started
        total += seconds
        mark = "" if got == expected else "  **DIFFERENT**"
        differences += got != expected
        print(f"| {path.stem} | {expected:,} | {got:,}{mark} | {seconds:.1f} |", flush=True)
    print(f"{len(files)} segments, {differences} different, {total:.1f} s on the source;"
          f" load after: {load()}")
    source.close()
    reference.close()
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
