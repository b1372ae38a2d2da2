"""The app's responsiveness on a large store: start-up, the next page, memory while scrolling.

    .venv/bin/python bench/bench_app.py --db /tmp/big.db          # an existing store
    .venv/bin/python bench/bench_app.py --profiles 1000000          # generate one in --dir first

Three measurements (targets in brackets):

1. start-up [< 1 s]: wall time from starting ``audiences-tui --db PATH`` in a
   pseudo-terminal to the first frame, and to the first frame that shows
   profile rows (the command runs ``tui.cli.main`` with a hook that notes the
   time after each refresh; interpreter start and imports are included).
2. next page [< 50 ms]: the store query for a page of 200 rows at random
   places in the list, and the whole step in the app: from the request the
   table makes near the edge of its window to the rows being in the table.
3. memory [< 300 MB]: the process RSS after scrolling through 100,000 rows
   in a headless app (the cursor walks down the list; the table keeps a
   window of at most 800 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pty
import random
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_START_S = 1.0
TARGET_PAGE_MS = 50.0
TARGET_RSS_MB = 300.0

CHILD = textwrap.dedent("""
    import os, sys, time
    report = open(os.environ["BENCH_REPORT"], "a")

    def note(what):
        report.write(f"{what} {time.time()}\\n")
        report.flush()

    from tui.app import AudiencesApp

    original_mount = AudiencesApp.on_mount

    def on_mount(self):
        original_mount(self)
        self.call_after_refresh(note, "frame")

    def on_keyset_table_loaded(self, message):
        if not getattr(self, "_bench_done", False):
            self._bench_done = True
            self.call_after_refresh(lambda: (note("rows"), self.exit()))

    AudiencesApp.on_mount = on_mount
    AudiencesApp.on_keyset_table_loaded = on_keyset_table_loaded
    from tui.cli import main
    sys.argv = ["audiences-tui", "--db", os.environ["BENCH_DB"]]
    main()
""")


def rss_mb() -> float:
    """This process's resident set size, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- 1. start-up


def startup(db: Path, runs: int) -> list[tuple[float, float]]:
    """(first frame, first rows) in seconds from the command's start, per run."""
    results = []
    for _ in range(runs):
        with tempfile.NamedTemporaryFile("r", suffix=".txt", delete=False) as handle:
            report = Path(handle.name)
        env = {**os.environ, "BENCH_REPORT": str(report), "BENCH_DB": str(db),
               "COLUMNS": "160", "LINES": "48", "TERM": "xterm-256color"}
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        started = time.time()
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=slave, stdout=slave,
                                 stderr=slave, env=env, cwd=ROOT, close_fds=True)
        os.close(slave)
        deadline = started + 30
        while child.poll() is None and time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        if child.poll() is None:
            child.kill()
        os.close(master)
        marks = dict(line.split() for line in report.read_text().splitlines())
        report.unlink()
        results.append((float(marks["frame"]) - started, float(marks["rows"]) - started))
    return results


# ---------------------------------------------------------------------- 2. next page


def page_queries(db: Path, samples: int) -> list[float]:
    """Milliseconds for one page of 200 rows after a random key, default columns."""
    from store.engines.sqlite import connect
    from store.query.profiles import Listing, ProfileQuery, default_columns
    from store.schema.catalog import Catalog

    conn = connect(db, readonly=True)
    catalog = Catalog.load(conn)
    query = ProfileQuery(catalog, Listing(tuple(default_columns(catalog))), dt.date.today())
    top = conn.execute("SELECT max(pk) FROM profiles").fetchone()[0]
    rng = random.Random(7)
    timings = []
    for _ in range(samples):
        key = (None, rng.randint(1, top))
        began = time.perf_counter()
        query.after(conn, key, 201)
        timings.append((time.perf_counter() - began) * 1000)
    conn.close()
    return timings


async def scroll(db: Path, rows: int) -> dict[str, Any]:
    """Walk the cursor down ``rows`` rows in a headless app; time every page step."""
    from tui.app import make_app
    from tui.widgets.keyset_table import KeysetTable

    steps: list[float] = []
    applies: list[float] = []
    requested: dict[str, float] = {}
    original_request = KeysetTable._request
    original_append = KeysetTable._append

    def request(self: KeysetTable, kind: Any, key: Any) -> None:
        if kind not in self._pending:
            requested[kind] = time.perf_counter()
        original_request(self, kind, key)

    def append(self: KeysetTable, rows: list[Any], more: bool) -> None:
        began = time.perf_counter()
        original_append(self, rows, more)
        done = time.perf_counter()
        applies.append((done - began) * 1000)
        steps.append((done - requested.get("after", began)) * 1000)

    KeysetTable._request = request  # type: ignore[method-assign]
    KeysetTable._append = append  # type: ignore[method-assign]
    try:
        app = make_app(db)
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.screen.query_one(KeysetTable)
            while not table.window:
                await pilot.pause(0.01)
            rss_start = rss_mb()
            walked = 0
            began = time.perf_counter()
            while walked < rows:
                last = len(table.window) - 1
                moved = last - table.cursor_row
                table.move_cursor(row=last)
                walked += moved
                while table.busy or table.cursor_row >= len(table.window) - table.edge:
                    await pilot.pause(0.001)
                    if not table.busy and not table.more_after:
                        break
            elapsed = time.perf_counter() - began
            await pilot.pause()
            return {"steps": steps, "applies": applies, "walked": walked, "elapsed": elapsed,
                    "window": len(table.window), "rss_start": rss_start, "rss_end": rss_mb()}
    finally:
        KeysetTable._request = original_request  # type: ignore[method-assign]
        KeysetTable._append = original_append  # type: ignore[method-assign]


# ---------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing store (else one is generated)")
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "audiences-bench")
    parser.add_argument("--runs", type=int, default=5, help="start-up runs")
    parser.add_argument("--scroll-rows", type=int, default=100_000)
    args = parser.parse_args()

    db = args.db
    if db is None:
        from store.sample.generator import generate_sample

        args.dir.mkdir(parents=True, exist_ok=True)
        db = args.dir / f"sample-{args.profiles}.db"
        if not db.exists():
            print(f"generating {db} ({args.profiles:,} profiles)…", file=sys.stderr)
            generate_sample(db, profiles=args.profiles, seed=1, until=dt.date(2026, 1, 31))
    from store.engines.sqlite import connect

    conn = connect(db, readonly=True)
    total = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
    conn.close()
    load = os.getloadavg()[0]
    print(f"store: {db} ({total:,} profiles); {os.cpu_count()} cores, load average {load:.1f}"
          " (timings grow with the load of the machine)")

    starts = startup(db, args.runs)
    frame = statistics.median(s[0] for s in starts)
    rows = statistics.median(s[1] for s in starts)
    print(f"start-up, median of {args.runs}: first frame {frame:.2f} s, first rows {rows:.2f} s"
          f"  [target < {TARGET_START_S:.0f} s: {verdict(rows < TARGET_START_S)}]")

    queries = page_queries(db, 200)
    print(f"page query (200 rows, random place): median {statistics.median(queries):.1f} ms,"
          f" p95 {percentile(queries, 0.95):.1f} ms")
    result = asyncio.run(scroll(db, args.scroll_rows))
    steps, applies = result["steps"], result["applies"]
    print(f"next page in the app ({len(steps)} pages): request to rows shown median"
          f" {statistics.median(steps):.1f} ms, p95 {percentile(steps, 0.95):.1f} ms;"
          f" table update median {statistics.median(applies):.1f} ms,"
          f" p95 {percentile(applies, 0.95):.1f} ms"
          f"  [target < {TARGET_PAGE_MS:.0f} ms: {verdict(percentile(steps, 0.95) < TARGET_PAGE_MS)}]")
    print(f"scrolled {result['walked']:,} rows in {result['elapsed']:.1f} s; window holds"
          f" {result['window']} rows; RSS {result['rss_start']:.0f} MB -> {result['rss_end']:.0f} MB"
          f"  [target < {TARGET_RSS_MB:.0f} MB: {verdict(result['rss_end'] < TARGET_RSS_MB)}]")


if __name__ == "__main__":
    main()
