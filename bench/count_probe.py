"""Where the time of a fresh ``audiences-tui count`` process goes, step by step.

    .venv/bin/python bench/count_probe.py SEGMENT.yaml --db LOCATION --as-of 2026-11-01

Does what ``audiences-tui count --json`` does, in a fresh interpreter, timing each
step: importing the command line (what the ``audiences-tui`` script imports),
opening the store, resolving the segment, loading the catalog, compiling and
rendering the count query, running it, then the same count again in the
same process. Prints one JSON object (milliseconds). bench/engines.py runs it
for the shapes that miss the fresh-process target, to say why.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("segment")
    parser.add_argument("--db", required=True)
    parser.add_argument("--as-of", required=True)
    options = parser.parse_args()
    steps: dict[str, float] = {"interpreter to main": ms(STARTED)}

    t = time.perf_counter()
    import tui.cli  # noqa: F401  (what the audiences-tui script imports before any command runs)

    steps["import the command line"] = ms(t)
    t = time.perf_counter()
    from store.engines.base import engine_for
    from store.query import audience
    from store.query.compiler import compile_segment, count_query
    from store.schema.catalog import Catalog
    from store.segments.library import resolve_file
    from tui.commands.common import parse_when

    steps["import the count's modules"] = ms(t)
    when = parse_when(options.as_of)
    t = time.perf_counter()
    engine = engine_for(options.db)
    conn = engine.open_store(readonly=True)
    steps["open the store"] = ms(t)
    try:
        t = time.perf_counter()
        resolved = resolve_file(conn, options.segment)
        steps["resolve the segment"] = ms(t)
        count_started = time.perf_counter()  # audience.count from here on
        t = count_started
        catalog = Catalog.load(conn)
        steps["count: load the catalog"] = ms(t)
        t = time.perf_counter()
        compiled = compile_segment(resolved, catalog, when, conn.engine.dialect)
        steps["count: compile"] = ms(t)
        t = time.perf_counter()
        query = count_query(compiled)
        sql, params = query.sql, query.params  # rendered when first asked for
        steps["count: count query (render)"] = ms(t)
        t = time.perf_counter()
        audience.prepare(conn)
        count = int(conn.execute(sql, params).fetchone()[0])
        steps["count: run the query"] = ms(t)
        steps["count: total (what elapsed_ms covers)"] = ms(count_started)
        t = time.perf_counter()
        again = audience.count(conn, resolved, when)
        steps["the same count again in this process"] = ms(t)
        t = time.perf_counter()
        conn.execute(sql, params).fetchone()
        steps["its query alone again"] = ms(t)
    finally:
        conn.close()
    steps["process so far"] = ms(STARTED)
    print(json.dumps({"count": count, "again": again, "steps": steps}))


if __name__ == "__main__":
    main()
