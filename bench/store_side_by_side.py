"""The suite's warm counts on two stores of the same data, shape by shape in turns, in one
process: what a change in how a store is written (not in the queries) is worth, without the
machine's drift between two runs.

    .venv/bin/python bench/store_side_by_side.py BEFORE_STORE AFTER_STORE [--runs 5]

``in_turns`` is the loop itself, for any two ways of counting a suite segment
(bench/join_sides.py: two settings of one store).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines import EngineSession, Figures, suite_files


def in_turns(ways: dict[str, Callable[[Path], Figures]]) -> None:
    """Each suite segment counted each way in turn, as a Markdown table with the second way's
    warm time over the first's; stops when two ways count differently."""
    first, second = ways
    print(f"load {os.getloadavg()[0]:.1f}")
    print(f"| segment | count | {first} | {second} | {second} / {first} |\n|---|---:|---:|---:|---:|")
    ratios = []
    for path in suite_files(None):
        figures = {label: count(path) for label, count in ways.items()}
        counts = {figure.count for figure in figures.values()}
        if len(counts) != 1:
            raise SystemExit(f"{path.stem}: counts differ {figures}")
        before, after = (figures[label].warm_ms or 0.0 for label in (first, second))
        ratios.append(after / before)
        print(f"| {path.stem} | {counts.pop():,} | {before:.1f} | {after:.1f} | {after / before:.2f}x |")
    print(f"median {second} / {first} {statistics.median(ratios):.2f}x; load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    print(f"before {options.before}\nafter  {options.after}")
    sessions = {"before": EngineSession(options.before), "after": EngineSession(options.after)}
    in_turns({label: lambda path, session=session: session.count(path, options.runs)
              for label, session in sessions.items()})
    for session in sessions.values():
        session.close()


if __name__ == "__main__":
    main()
