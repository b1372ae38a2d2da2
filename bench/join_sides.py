"""The suite's warm counts on one DuckDB store with DuckDB's own choice of each hash join's build
side and with the sides the compiler wrote (the app's setting), shape by shape in turns, in one
process: what ``disabled_optimizers = 'build_side_probe_side'`` is worth, without the machine's
drift between two runs.

    .venv/bin/python bench/join_sides.py STORE.duckdb [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines import EngineSession, Figures
from store_side_by_side import in_turns

from store.engines.duckdb import instance_config

SETTINGS = {"DuckDB's sides": "", "written sides": str(instance_config()["disabled_optimizers"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    session = EngineSession(options.store)
    print(f"store {options.store}")

    def counted_with(disabled: str) -> Callable[[Path], Figures]:
        def count(path: Path) -> Figures:
            session.conn.execute(f"SET disabled_optimizers = '{disabled}'")
            return session.count(path, options.runs)
        return count

    in_turns({label: counted_with(disabled) for label, disabled in SETTINGS.items()})
    session.close()


if __name__ == "__main__":
    main()
