"""The suite's warm counts on two stores of the same data, shape by shape in turns, in one
process: what a change in how a store is written (not in the queries) is worth, without the
machine's drift between two runs.

    .venv/bin/python bench/store_side_by_side.py BEFORE_STORE AFTER_STORE [--runs 5]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    print(f"before {options.before}\nafter  {options.after}\nload {os.getloadavg()[0]:.1f}")
    sessions = {"before": EngineSession(options.before), "after": EngineSession(options.after)}
    ratios = []
    print(f"{'segment':22} {'count':>10} {'before ms':>10} {'after ms':>10} {'after/before':>12}")
    for path in suite_files(None):
        figures = {label: session.count(path, options.runs) for label, session in sessions.items()}
        if figures["before"].count != figures["after"].count:
            raise SystemExit(f"{path.stem}: counts differ {figures}")
        before, after = figures["before"].warm_ms or 0.0, figures["after"].warm_ms or 0.0
        ratios.append(after / before)
        print(f"{path.stem:22} {figures['after'].count:>10,} {before:>10.1f} {after:>10.1f}"
              f" {after / before:>11.2f}x")
    print(f"median after/before {statistics.median(ratios):.2f}x; load {os.getloadavg()[0]:.1f}")
    for session in sessions.values():
        session.close()


if __name__ == "__main__":
    main()
