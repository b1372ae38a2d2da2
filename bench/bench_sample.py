"""Time the sample generator: a first-run store (50,000 profiles) and a large one (1,000,000).

Usage: .venv/bin/python bench/bench_sample.py [--profiles N ...] [--seed S] [--dir DIR]
                                              [--suffix .duckdb] [--keep]

Prints, for each size, the wall time of every phase, the total wall and CPU
time (CPU time shows what the run costs when other programs share the
machine), the rows written, the file size and the peak memory of the process.
``--suffix .duckdb`` builds DuckDB stores (``AUDIENCES_DUCKDB_MEMORY`` and
``AUDIENCES_DUCKDB_THREADS`` apply). Targets: 50,000 profiles well under 15 s;
1,000,000 profiles (about 10 million events) under two minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from store.sample.generator import generate_sample


def run(path: Path, profiles: int, seed: int, until: dt.date) -> None:
    phases: dict[str, float] = {}
    cpu_started = time.process_time()
    started = time.perf_counter()
    last = [started]

    def progress(phase: str, fraction: float) -> None:
        now = time.perf_counter()
        if phase not in phases:
            print(f"  {now - started:7.1f} s  {phase}", flush=True)
        phases[phase] = phases.get(phase, 0.0) + now - last[0]
        last[0] = now

    result = generate_sample(path, profiles=profiles, seed=seed, until=until, progress=progress)
    cpu = time.process_time() - cpu_started
    size_mb = path.stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"profiles={result.profiles:,} events={result.events:,}"
          f" ({result.events / result.profiles:.1f} per profile) products={result.products}"
          f" file={size_mb:,.0f} MB total={result.elapsed_s:.1f} s (cpu {cpu:.1f} s)"
          f" peak memory so far {peak_mb:,.0f} MB")
    for phase, seconds in phases.items():
        print(f"    {phase:<28} {seconds:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--until", type=dt.date.fromisoformat, default=dt.date(2026, 11, 28))
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--suffix", default=".db", help="store file suffix: .db (SQLite) or .duckdb")
    parser.add_argument("--keep", action="store_true",
                        help="write into --dir itself and keep the stores (default: a temp dir, deleted)")
    args = parser.parse_args()
    if args.keep:
        folder = args.dir or Path(".")
        for count in args.profiles:
            run(Path(folder) / f"sample-{count}{args.suffix}", count, args.seed, args.until)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for count in args.profiles:
            run(Path(folder) / f"sample-{count}{args.suffix}", count, args.seed, args.until)


if __name__ == "__main__":
    main()
