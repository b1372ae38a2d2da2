"""Time the sample generator: a first-run store (50,000 profiles) and a large one (1,000,000).

Usage: .venv/bin/python bench/bench_sample.py [--profiles N ...] [--seed S] [--dir DIR]

Prints, for each size, the wall time of every phase, the total wall and CPU
time (CPU time shows what the run costs when other programs share the
machine), the rows written and the file size. Targets: 50,000 profiles well under 15 s; 1,000,000
profiles (about 10 million events) under two minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
        phases[phase] = phases.get(phase, 0.0) + now - last[0]
        last[0] = now

    result = generate_sample(path, profiles=profiles, seed=seed, until=until, progress=progress)
    cpu = time.process_time() - cpu_started
    size_mb = path.stat().st_size / 1e6
    print(f"profiles={result.profiles:,} events={result.events:,}"
          f" ({result.events / result.profiles:.1f} per profile) products={result.products}"
          f" file={size_mb:,.0f} MB total={result.elapsed_s:.1f} s (cpu {cpu:.1f} s)")
    for phase, seconds in phases.items():
        print(f"    {phase:<28} {seconds:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--until", type=dt.date.fromisoformat, default=dt.date(2026, 11, 28))
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for count in args.profiles:
            run(Path(folder) / f"sample-{count}.db", count, args.seed, args.until)


if __name__ == "__main__":
    main()
