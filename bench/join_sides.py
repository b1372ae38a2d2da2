"""The suite's warm counts on one DuckDB store with DuckDB's own choice of each hash join's build
side and with the sides the compiler wrote (the app's setting), shape by shape in turns, in one
process: what ``disabled_optimizers = 'build_side_probe_side'`` is worth, without the machine's
drift between two runs.

    .venv/bin/python bench/join_sides.py STORE.duckdb [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines import EngineSession, suite_files

from store.engines.duckdb import instance_config

SETTINGS = {"DuckDB's sides": "", "written sides": str(instance_config()["disabled_optimizers"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    session = EngineSession(options.store)
    print(f"store {options.store}\nload {os.getloadavg()[0]:.1f}")
    ratios = []
    print(f"| segment | count | {' | '.join(SETTINGS)} | written / DuckDB's |\n|---|---:|---:|---:|---:|")
    for path in suite_files(None):
        figures = {}
        for label, disabled in SETTINGS.items():
            session.conn.execute(f"SET disabled_optimizers = '{disabled}'")
            figures[label] = session.count(path, options.runs)
        counts = {figure.count for figure in figures.values()}
        if len(counts) != 1:
            raise SystemExit(f"{path.stem}: counts differ {figures}")
        theirs, ours = (figures[label].warm_ms or 0.0 for label in SETTINGS)
        ratios.append(ours / theirs)
        print(f"| {path.stem} | {counts.pop():,} | {theirs:.1f} | {ours:.1f} | {ours / theirs:.2f}x |")
    print(f"median written/DuckDB's {statistics.median(ratios):.2f}x; load {os.getloadavg()[0]:.1f}")
    session.close()


if __name__ == "__main__":
    main()
