"""What rewriting the compiler's named placeholders to ``?`` costs, per example segment, and
whether sqlite3 runs the named form (``:pN`` bound from a dict) any faster (docs/engine.md,
"How a rule becomes SQL").

    .venv/bin/python bench/placeholder_markers.py STORE.db

For each segment of sample_data/segments: the median of 30 renderings of sqlglot writing the
SQLite text, of ``dialects.positional`` on that text, and the median of 9 runs of the query
each way, taken in turn (the rows are checked to be the same).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from store.engines import dialects
from store.engines.base import engine_for
from store.query.compiler import compile_segment
from store.schema.catalog import Catalog
from store.segments.library import resolve_file

SEGMENTS = Path(__file__).resolve().parent.parent / "sample_data" / "segments"
AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def alternated_ms(first: Callable[[], object], second: Callable[[], object],
                  runs: int) -> tuple[float, float]:
    """Medians of runs taken in turn (so the load of a shared machine falls on both alike)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for work, kept in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            work()
            kept.append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def main(store: str) -> None:
    conn = engine_for(store).open_store(readonly=True)
    catalog = Catalog.load(conn)
    print(f"{'segment':30} {'values':>6} {'sqlglot ms':>10} {'to ? ms':>8} {'run ? ms':>9}"
          f" {'run :pN ms':>10}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for path in sorted(SEGMENTS.glob("*.yaml")):
        compiled = compile_segment(resolve_file(conn, str(path)), catalog, AS_OF)
        expression, values = compiled.expression, compiled.values
        text = expression.sql(dialect="sqlite")
        sql, params = dialects.positional(text, values)
        named = {f"p{number}": value for number, value in enumerate(values, 1)}
        assert conn.execute(sql, params).fetchall() == conn.execute(text, named).fetchall()
        row = (median_ms(lambda e=expression: e.sql(dialect="sqlite"), 30),
               median_ms(lambda t=text, v=values: dialects.positional(t, v), 30),
               *alternated_ms(lambda s=sql, p=params: conn.execute(s, p).fetchall(),
                              lambda t=text, n=named: conn.execute(t, n).fetchall(), 9))
        totals = [total + figure for total, figure in zip(totals, row, strict=True)]
        print(f"{path.stem:30} {len(values):6} {row[0]:10.3f} {row[1]:8.3f} {row[2]:9.2f} {row[3]:10.2f}")
    print(f"{'all':30} {'':6} {totals[0]:10.2f} {totals[1]:8.2f} {totals[2]:9.1f} {totals[3]:10.1f}")
    print(f"the rewrite to ? is {totals[1] / totals[0]:.1%} of sqlglot writing the text")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
