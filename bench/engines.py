"""The same segment suite on SQLite, DuckDB and PostgreSQL in one run, next to hand-written DuckDB SQL.

    .venv/bin/python bench/engines.py [--profiles N] [--runs K] [--process-runs C] [--only SEGMENT ...]
                                      [--engine sqlite|duckdb|postgres ...] [--postgres URL]
                                      [--duckdb-memory SIZE] [--duckdb-threads N] [--recopy] [--output PATH]

One store, three engines: the sample store of bench/run.py (SQLite, built once
and cached under bench/data/) is copied with ``audiences-tui copy --db SRC --to
DEST`` into a DuckDB file (cached beside it, made again when the SQLite file
changes) and into PostgreSQL: a throwaway server this script starts in
bench/data/postgres/ with tests/services/postgres.py and stops at the end, or
the server of ``--postgres URL``. The copies are timed.

For every segment of bench/segments/ and every engine:

- *warm*: the median of K counts (``store.query.audience.count``: compile,
  render, run) on one connection from ``engine_for(location).open_store(readonly=True)``;
- *process*: a fresh ``audiences-tui count SEGMENT --db LOCATION --as-of ... --json``
  process (OS cache warm): the ``elapsed_ms`` it prints (the count alone) and the
  wall time of the whole process (interpreter, imports, opening the store), medians of C;
- the hand-written DuckDB SQL of bench/duckdb_queries.py on its typed copy of the
  same rows, same memory limit and threads, first run on a fresh connection and
  median of K more, interleaved segment by segment with the engines so all see
  the same machine load.

Every count must be equal on every engine, in every process and to the
hand-written SQL: a mismatch is printed loudly with the SQL of each dialect, is
recorded, and the run exits with status 1. The report is the "Engines" section
of bench/RESULTS.md (between markers that bench/run.py keeps when it rewrites
the file); a partial run (``--only``, ``--engine``) prints it instead unless
``--output`` is given. See bench/README.md ("Engines side by side").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import duckdb_queries as hand  # noqa: E402

from run import (  # noqa: E402
    AS_OF,
    DATA,
    ENGINES_END,
    ENGINES_START,
    RESULTS,
    SEGMENTS,
    UNTIL,
    describe_machine,
    ensure_store,
    load_average,
    timed,
)
from store.engines.base import Connection, Engine, engine_for, redact  # noqa: E402
from store.engines.duckdb import instance_config  # noqa: E402
from store.query import audience  # noqa: E402
from store.query.compiler import compile_segment, count_query  # noqa: E402
from store.schema.catalog import Catalog  # noqa: E402
from store.segments.library import resolve_file  # noqa: E402

ENGINES = ("sqlite", "duckdb", "postgres")
LABELS = {"sqlite": "SQLite", "duckdb": "DuckDB", "postgres": "PostgreSQL"}
DIALECTS = {"sqlite": "sqlite", "duckdb": "duckdb", "postgres": "postgres"}

# Targets of the engines issue (part 6) on DuckDB: at 1M profiles / 10M events every shape
# <= 50 ms warm and <= 150 ms in a fresh count process; at 10M / 100M every shape <= 300 ms warm.
DUCK_TARGETS = {1_000_000: (50.0, 150.0), 10_000_000: (300.0, None)}
HAND_RATIO_TARGET = 1.2
# "SQLite not worse than today's RESULTS.md": a shape counts as worse when its warm median is
# above the recorded one by more than this factor and this many ms (warm figures on a shared
# 2-core machine move by about that much from run to run).
SQLITE_NOISE_FACTOR = 1.25
SQLITE_NOISE_MS = 3.0

PLANS_BY_RATIO = 3  # EXPLAIN ANALYZE also for this many shapes furthest from the hand-written SQL
PROBES = 3  # the slowest fresh count processes on DuckDB broken down into steps
DEFAULT_DUCKDB_MEMORY = "1GB"
DEFAULT_DUCKDB_THREADS = 2
COPY_COMMAND = "{cli} copy --db {src} --to {dest} --quiet"
POSTGRES_DIR = DATA / "postgres"
POSTGRES_SETTINGS = ("server_version", "shared_buffers", "work_mem", "effective_cache_size",
                     "random_page_cost", "max_parallel_workers_per_gather", "jit")
# The throwaway server's memory and planner settings, set deliberately as DuckDB's are: the same
# memory budget as DuckDB's default limit, and costs for data that sits in memory or on SSD.
POSTGRES_TUNING = {"shared_buffers": "1GB", "work_mem": "64MB", "effective_cache_size": "4GB",
                   "random_page_cost": "1.1"}


# ============================================================================ helpers


def cli_command() -> list[str]:
    """How to start ``audiences-tui`` from this interpreter's environment."""
    script = Path(sys.executable).parent / "audiences-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui.cli"]


def fingerprint(path: Path) -> str:
    """Size and modification time of a file: a changed source means a new copy."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_ms(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:,.1f}"


def fmt_count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in (path, Path(f"{path}.wal")) if p.exists()) / 1e6


def loud(message: str) -> None:
    bar = "!" * 100
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


# ============================================================================ stores


@dataclass
class StoreCopy:
    """A copy of the SQLite store on another engine and how it was made."""

    engine: str
    location: str
    seconds: float | None = None  # the copy command's wall time
    peak_mb: float | None = None  # its peak resident set (from /usr/bin/time -v)
    made: str = ""  # "in this run" or when a cached copy was made
    load: str = ""
    size_mb: float | None = None
    command: str = ""
    settle_seconds: float | None = None  # PostgreSQL: VACUUM (ANALYZE) after the copy


def run_copy(command: str, source: Path, dest: str, env: dict[str, str]) -> tuple[float, float | None, str]:
    """Run the copy command; returns its wall seconds, peak memory (MB) and the command line."""
    line = command.format(cli=shlex.join(cli_command()), src=shlex.quote(str(source)),
                          dest=shlex.quote(dest))
    argv = shlex.split(line)
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer:
        argv = [timer, "-v", *argv]
    print(f"  {redact(line)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise SystemExit(f"the copy failed (exit {done.returncode}): {redact(line)}\n{tail}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return seconds, (int(peak[1]) / 1024 if peak else None), line


def ensure_copy_command(command: str) -> None:
    """Fail early and clearly when the copy command does not exist yet."""
    if not command.startswith("{cli} copy"):
        return
    done = subprocess.run([*cli_command(), "copy", "--help"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("`audiences-tui copy` is not available (store/ingest/copy.py and its command);"
                         " the DuckDB and PostgreSQL stores are made with it.\n" + done.stderr.strip())


def duckdb_copy(source: Path, recopy: bool, command: str, env: dict[str, str]) -> StoreCopy:
    """The DuckDB copy of the store, cached beside it (remade when the SQLite file changes)."""
    dest = source.with_name(source.stem + ".store.duckdb")
    sidecar = dest.with_suffix(".json")
    record: dict[str, Any] = {}
    if sidecar.exists() and dest.exists():
        record = json.loads(sidecar.read_text())
    if (recopy or record.get("source") != fingerprint(source) or record.get("dest") != fingerprint(dest)
            or record.get("template") != command):
        ensure_copy_command(command)
        for leftover in (dest, Path(f"{dest}.wal")):
            leftover.unlink(missing_ok=True)
        print(f"copying into DuckDB ({dest.name})...", flush=True)
        seconds, peak, line = run_copy(command, source, str(dest), env)
        record = {"seconds": round(seconds, 2), "peak_mb": peak and round(peak, 1), "load": load_average(),
                  "made_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                  "source": fingerprint(source), "dest": fingerprint(dest), "command": line,
                  "template": command,
                  "env": {k: env[k] for k in ("AUDIENCES_DUCKDB_MEMORY", "AUDIENCES_DUCKDB_THREADS")}}
        sidecar.write_text(json.dumps(record, indent=2))
        made = "in this run"
    else:
        made = f"cached, made {record.get('made_at')}"
    return StoreCopy("duckdb", str(dest), record.get("seconds"), record.get("peak_mb"), made,
                     record.get("load", ""), size_mb(dest), record.get("command", ""))


@dataclass
class PostgresServer:
    url: str
    own: bool  # started by this run (stopped at the end unless kept)
    start_seconds: float | None = None


def with_schema(url: str, schema: str | None) -> str:
    """The libpq URL with ``schema=`` set (replacing one it had), or without one (None)."""
    base, _, query = url.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("schema=")]
    parts += [f"schema={schema}"] if schema else []
    return base + ("?" + "&".join(parts) if parts else "")


def start_postgres(url: str | None, tuning: dict[str, str]) -> PostgresServer:
    """The server of ``--postgres``, or a throwaway one started (or reused) in bench/data/postgres
    with ``tuning`` applied (ALTER SYSTEM, then a restart when a setting needs one)."""
    if url:
        return PostgresServer(url, own=False)
    from tests.services import postgres as service

    earlier = service.ServerInfo.load(POSTGRES_DIR)
    reused = earlier is not None and earlier.postmaster_pid() is not None
    started = time.perf_counter()
    info = service.start(POSTGRES_DIR)
    seconds = None if reused else time.perf_counter() - started
    import psycopg

    with psycopg.connect(info.url, autocommit=True) as conn:
        for name, value in tuning.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
        pending = [name for name, value in tuning.items()
                   if str((conn.execute(f"SHOW {name}").fetchone() or ("",))[0]) != value]
    if pending:
        print("  restarting PostgreSQL for " + ", ".join(f"{n} = {tuning[n]}" for n in pending), flush=True)
        service._run([str(info.bindir / "pg_ctl"), "restart", "--pgdata", str(info.data_dir),
                      "--log", str(info.base_dir / "server.log"), "--mode", "fast", "--wait", "--silent"],
                     user=info.run_as, cwd=info.base_dir, what="pg_ctl restart")
    return PostgresServer(info.url, own=True, start_seconds=seconds)


def stop_postgres(server: PostgresServer) -> None:
    if server.own:
        from tests.services import postgres as service

        service.stop_dir(POSTGRES_DIR)


def postgres_copy(source: Path, server: PostgresServer, recopy: bool, command: str,
                  env: dict[str, str]) -> StoreCopy:
    """The PostgreSQL copy in its own schema (``sample_N``), made again unless the same server
    still holds a copy of the same SQLite file (a kept server, or ``--postgres``)."""
    schema = re.sub(r"[^a-z0-9_]", "_", source.stem.lower())[:60]
    dest = with_schema(server.url, schema)
    sidecar = source.with_name(source.stem + ".postgres.json")
    record: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    current = (not recopy and record.get("source") == fingerprint(source) and record.get("url") == dest
               and record.get("template") == command and engine_for(dest).exists())
    if not current:
        ensure_copy_command(command)
        drop_schema(server.url, schema)
        print(f"copying into PostgreSQL (schema {schema})...", flush=True)
        seconds, peak, line = run_copy(command, source, dest, env)
        settle = vacuum_analyze(server.url, schema)
        record = {"seconds": round(seconds, 2), "peak_mb": peak and round(peak, 1), "load": load_average(),
                  "made_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                  "source": fingerprint(source), "url": dest, "command": redact(line),
                  "template": command, "settle_seconds": round(settle, 2)}
        sidecar.write_text(json.dumps(record, indent=2))
        made = "in this run"
    else:
        made = f"cached on the same server, made {record.get('made_at')}"
    return StoreCopy("postgres", dest, record.get("seconds"), record.get("peak_mb"), made,
                     record.get("load", ""), postgres_size_mb(dest), record.get("command", ""),
                     record.get("settle_seconds"))


def vacuum_analyze(url: str, schema: str) -> float:
    """VACUUM (ANALYZE) the fresh copy's tables; returns seconds. Without it the first minutes of
    reads set hint bits on every page and autovacuum runs in the middle of the measurements
    (measured: 1.7 s instead of 47 ms for a count while it ran)."""
    import psycopg

    started = time.perf_counter()
    print(f"  VACUUM (ANALYZE) of schema {schema}...", flush=True)
    with psycopg.connect(with_schema(url, None), autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))]
        for table in tables:
            conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
    return time.perf_counter() - started


def drop_schema(url: str, schema: str) -> None:
    """Drop the benchmark's own schema so the copy starts from nothing (only that schema)."""
    import psycopg

    with psycopg.connect(with_schema(url, None), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_size_mb(location: str) -> float | None:
    """The total size of the store's tables and indexes in its schema."""
    conn = engine_for(location).open_store(readonly=True)
    try:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')").fetchone()
        return None if row is None or row[0] is None else float(row[0]) / 1e6
    finally:
        conn.close()


def postgres_settings(location: str) -> dict[str, str]:
    conn = engine_for(location).open_store(readonly=True)
    try:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in POSTGRES_SETTINGS}
    finally:
        conn.close()


# ============================================================================ measuring


@dataclass
class Figures:
    """One engine's figures for one segment."""

    count: int | None = None
    first_ms: float | None = None  # the first count on the connection (hand-written: fresh one)
    warm_ms: float | None = None
    compile_ms: float | None = None  # of warm_ms: compiling and rendering the count query (median)
    process_ms: float | None = None  # elapsed_ms printed by fresh count processes (median)
    process_wall_ms: float | None = None  # those processes' wall time (median)
    process_counts: list[int] = field(default_factory=list)
    error: str = ""


@dataclass
class Shape:
    name: str
    figures: dict[str, Figures] = field(default_factory=dict)  # engine (or "hand") -> figures
    plans: dict[str, str] = field(default_factory=dict)  # why it is slow: EXPLAIN ANALYZE texts
    probe: dict[str, float] = field(default_factory=dict)  # a fresh process's steps (bench/count_probe.py)
    sql: dict[str, str] = field(default_factory=dict)  # on a mismatch: the SQL of each dialect

    def counts(self) -> dict[str, int]:
        """Every count seen for the segment, labelled by engine and figure."""
        found: dict[str, int] = {}
        for engine, f in self.figures.items():
            if f.count is not None:
                found[engine] = f.count
            for i, c in enumerate(f.process_counts):
                found[f"{engine} process {i + 1}"] = c
        return found

    @property
    def equal(self) -> bool:
        counts = self.counts()
        return bool(counts) and len(set(counts.values())) == 1 and not self.errors

    @property
    def errors(self) -> list[str]:
        return [f"{engine}: {f.error}" for engine, f in self.figures.items() if f.error]

    def ratio(self, without_compile: bool = False) -> float | None:
        """Ours on DuckDB warm / hand-written warm (``without_compile``: our query alone)."""
        ours, theirs = self.figures.get("duckdb"), self.figures.get("hand")
        if ours is None or theirs is None or not ours.warm_ms or not theirs.warm_ms:
            return None
        compile_ms = (ours.compile_ms or 0.0) if without_compile else 0.0
        return max(ours.warm_ms - compile_ms, 0.0) / theirs.warm_ms


def suite_files(names: set[str] | None) -> list[Path]:
    return [p for p in sorted(SEGMENTS.glob("*.yaml")) if names is None or p.stem in names]


class EngineSession:
    """One read-only connection to a store, kept for the warm figures of every segment."""

    def __init__(self, location: str) -> None:
        self.engine: Engine = engine_for(location)
        self.conn: Connection = self.engine.open_store(readonly=True)
        self.catalog = Catalog.load(self.conn)

    def count(self, path: Path, runs: int) -> Figures:
        resolved = resolve_file(self.conn, path)
        counting = partial(audience.count, self.conn, resolved, AS_OF, self.catalog)
        count, first = timed(counting)
        warm = [timed(counting)[1] for _ in range(runs)]
        def compiling() -> str:  # compile and render, as a count does
            return count_query(compile_segment(resolved, self.catalog, AS_OF,
                                               self.engine.dialect)).sql

        compile_ms = median([timed(compiling)[1] for _ in range(runs)])
        return Figures(int(count), first, median(warm), compile_ms)

    def close(self) -> None:
        self.conn.close()
        self.engine.release()


class HandSession:
    """The hand-written queries on their typed DuckDB copy, with the engine's DuckDB settings."""

    def __init__(self, copy: Path, memory: str, threads: int) -> None:
        self.copy = copy
        self.config: dict[str, Any] = {**instance_config(), "memory_limit": memory, "threads": threads}
        self.params = {"d": UNTIL, "a": dt.datetime.combine(UNTIL, dt.time(23, 59, 59, 999999))}

    def count(self, name: str, runs: int) -> Figures:
        import duckdb

        duck = duckdb.connect(str(self.copy), read_only=True, config=self.config)
        try:
            duck.execute(hand.PRELUDE)
            count, first = hand._run(duck, hand.QUERIES[name], self.params)
            warm = [hand._run(duck, hand.QUERIES[name], self.params)[1] for _ in range(runs)]
        finally:
            duck.close()
        return Figures(count, first, median(warm))


def ensure_hand_copy(store: Path) -> tuple[Path, float | None]:
    """bench/duckdb_queries.py's typed copy (shared with bench/run.py), made when out of date."""
    copy = store.with_suffix(".duckdb")
    if hand.copy_is_current(store, copy):
        return copy, None
    print(f"making the hand-written queries' typed copy ({copy.name})...", flush=True)
    return copy, hand.build_copy(store, copy)


def count_process(location: str, path: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """A fresh ``audiences-tui count --json`` process: its count, elapsed_ms and wall ms."""
    argv = [*cli_command(), "count", str(path), "--db", location, "--as-of", UNTIL.isoformat(), "--json"]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}")
                           .splitlines()[-1])
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return int(answer["count"]), float(answer["elapsed_ms"]), wall


def segment_sql(location: str, path: Path, dialect: str, env: dict[str, str]) -> str:
    """``audiences-tui sql SEGMENT --db X --dialect D``, as the lead would run it."""
    done = subprocess.run([*cli_command(), "sql", str(path), "--db", location, "--dialect", dialect,
                           "--as-of", UNTIL.isoformat()], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    return (done.stdout + done.stderr).strip()


def explain_analyze(location: str, path: Path) -> str:
    """DuckDB's EXPLAIN ANALYZE of the count query ``audience.count`` runs for the segment."""
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        resolved = resolve_file(conn, path)
        compiled = compile_segment(resolved, Catalog.load(conn), AS_OF, engine.dialect)
        query = count_query(compiled)
        audience.prepare(conn)
        rows = conn.execute("EXPLAIN ANALYZE " + query.sql, query.params).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    finally:
        conn.close()
        engine.release()


def explain_hand(copy: Path, name: str, memory: str, threads: int) -> str:
    import duckdb

    duck = duckdb.connect(str(copy), read_only=True, config={"memory_limit": memory, "threads": threads})
    try:
        duck.execute(hand.PRELUDE)
        sql = hand.QUERIES[name]
        params = {"d": UNTIL, "a": dt.datetime.combine(UNTIL, dt.time(23, 59, 59, 999999))}
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        return "\n".join(str(row[-1]) for row in duck.execute("EXPLAIN ANALYZE " + sql, used).fetchall())
    finally:
        duck.close()


# ============================================================================ the run


@dataclass
class Run:
    command: str
    profiles: int
    runs: int
    process_runs: int
    engines: list[str]
    machine: Any
    duckdb_memory: str
    duckdb_threads: int
    stores: dict[str, StoreCopy] = field(default_factory=dict)
    events: int = 0
    warm_target: float = 50.0
    process_target: float | None = 150.0
    store_note: str = ""  # how a store given with --store was made
    tag: str = ""  # names the section in RESULTS.md (one per store size or given store)
    hand_copy_seconds: float | None = None
    postgres: PostgresServer | None = None
    postgres_settings: dict[str, str] = field(default_factory=dict)
    shapes: list[Shape] = field(default_factory=list)
    baseline: dict[str, tuple[int, float, float | None]] = field(default_factory=dict)
    baseline_when: str = ""
    baseline_profiles: int = 0
    seconds: float = 0.0


def measure(run: Run, files: list[Path], env: dict[str, str], hand_copy: Path | None) -> None:
    """Warm figures interleaved by segment, then fresh processes (DuckDB lets one process hold a
    file, so every connection of this process is closed first)."""
    sessions: dict[str, EngineSession] = {}
    for engine in run.engines:
        sessions[engine] = EngineSession(run.stores[engine].location)
    hand_session = (HandSession(hand_copy, run.duckdb_memory, run.duckdb_threads)
                    if hand_copy is not None else None)
    print(f"\nwarm (median of {run.runs} on one connection), ms:", flush=True)
    print(f"  {'segment':24s} " + " ".join(f"{LABELS[e]:>12s}" for e in run.engines)
          + (f" {'hand DuckDB':>12s}" if hand_session else ""))
    try:
        for path in files:
            shape = Shape(path.stem)
            for engine, session in sessions.items():
                try:
                    shape.figures[engine] = session.count(path, run.runs)
                except Exception as exc:  # a broken shape is reported; the others still run
                    shape.figures[engine] = Figures(error=f"{type(exc).__name__}: {exc}")
            if hand_session is not None and path.stem in hand.QUERIES:
                shape.figures["hand"] = hand_session.count(path.stem, run.runs)
            run.shapes.append(shape)
            print(f"  {shape.name:24s} " + " ".join(
                f"{fmt_ms(shape.figures[e].warm_ms):>12s}" for e in shape.figures), flush=True)
    finally:
        for session in sessions.values():
            session.close()
    if run.process_runs:
        print(f"\nfresh `audiences-tui count --json` processes (median of {run.process_runs}):"
              " elapsed_ms / wall ms", flush=True)
        for shape, path in zip(run.shapes, files, strict=True):
            cells = []
            for engine in run.engines:
                figures = shape.figures[engine]
                elapsed, walls = [], []
                try:
                    for _ in range(run.process_runs):
                        count, ms, wall = count_process(run.stores[engine].location, path, env)
                        figures.process_counts.append(count)
                        elapsed.append(ms)
                        walls.append(wall)
                except Exception as exc:
                    figures.error = figures.error or f"count process: {exc}"
                figures.process_ms, figures.process_wall_ms = median(elapsed), median(walls)
                cells.append(f"{fmt_ms(figures.process_ms):>8s} / {fmt_ms(figures.process_wall_ms):>7s}")
            print(f"  {shape.name:24s} " + "  ".join(cells), flush=True)
    for shape, path in zip(run.shapes, files, strict=True):
        if not shape.equal:
            for engine in run.engines:
                shape.sql[engine] = segment_sql(run.stores[engine].location, path,
                                                DIALECTS[engine], env)
            if "hand" in shape.figures:
                shape.sql["hand"] = hand.QUERIES[shape.name].strip()
            loud(f"COUNT MISMATCH on {shape.name}: "
                 + ", ".join(f"{k} {v:,}" for k, v in shape.counts().items())
                 + ("; errors: " + "; ".join(shape.errors) if shape.errors else ""))
    if "duckdb" in run.engines:
        explain_slow_shapes(run, files, env, hand_copy)


def explain_slow_shapes(run: Run, files: list[Path], env: dict[str, str], hand_copy: Path | None) -> None:
    """EXPLAIN ANALYZE (ours and hand-written) of the shapes over the warm target or furthest from
    the hand-written SQL, and the steps of a fresh count process for the slowest processes."""
    paths = {p.stem: p for p in files}
    measured = [s for s in run.shapes if "duckdb" in s.figures and not s.figures["duckdb"].error]
    over_warm = [s for s in measured if (s.figures["duckdb"].warm_ms or 0.0) > run.warm_target]
    far = sorted((s for s in measured if (s.ratio() or 0.0) > 2 * HAND_RATIO_TARGET),
                 key=lambda s: -(s.ratio() or 0.0))[:PLANS_BY_RATIO]
    for shape in [*over_warm, *(s for s in far if s not in over_warm)]:
        try:
            shape.plans["ours on DuckDB"] = explain_analyze(run.stores["duckdb"].location, paths[shape.name])
        except Exception as exc:
            shape.plans["ours on DuckDB"] = f"EXPLAIN ANALYZE failed: {type(exc).__name__}: {exc}"
        if hand_copy is not None and shape.name in hand.QUERIES:
            with contextlib.suppress(Exception):
                shape.plans["hand-written"] = explain_hand(hand_copy, shape.name,
                                                           run.duckdb_memory, run.duckdb_threads)
    limit = run.process_target or float("inf")
    slow = sorted((s for s in measured if (s.figures["duckdb"].process_ms or 0.0) > limit),
                  key=lambda s: -(s.figures["duckdb"].process_ms or 0.0))[:PROBES]
    if slow:  # and the quickest shape: what a fresh process costs whatever the query
        quickest = min(measured, key=lambda s: s.figures["duckdb"].warm_ms or 0.0)
        slow += [] if quickest in slow else [quickest]
    for shape in slow:
        argv = [sys.executable, str(BENCH / "count_probe.py"), str(paths[shape.name]),
                "--db", run.stores["duckdb"].location, "--as-of", UNTIL.isoformat()]
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = (time.perf_counter() - started) * 1000
        if done.returncode == 0:
            shape.probe = dict(json.loads(done.stdout.strip().splitlines()[-1])["steps"])
            shape.probe["whole process (wall)"] = round(wall, 2)


def why_slow(shape: Shape, run: Run) -> list[str]:
    """The DuckDB targets a shape misses (an EXPLAIN ANALYZE is recorded for those)."""
    f = shape.figures.get("duckdb")
    if f is None or f.error:
        return []
    missed = []
    if f.warm_ms is not None and f.warm_ms > run.warm_target:
        missed.append(f"warm {f.warm_ms:,.0f} ms")
    if (run.process_target is not None and f.process_ms is not None and f.process_ms == f.process_ms
            and f.process_ms > run.process_target):
        missed.append(f"process {f.process_ms:,.0f} ms")
    ratio = shape.ratio()
    if ratio is not None and ratio > 2 * HAND_RATIO_TARGET:
        missed.append(f"{ratio:,.1f}× hand-written")
    return missed


def read_baseline(text: str) -> tuple[dict[str, tuple[int, float, float | None]], str, int]:
    """bench/run.py's suite figures in RESULTS.md: segment -> (count, SQLite warm ms, hand-written
    DuckDB warm ms), when, and the number of profiles of its store."""
    when = re.search(r"Written by `bench/run.py` on ([^ ]+ [^ ]+ UTC)", text)
    store = re.search(r"\.db`: ([\d,]+) profiles", text)
    table = text.split("## Exact counts: the suite", 1)
    found: dict[str, tuple[int, float, float | None]] = {}
    if len(table) == 2:
        for line in table[1].split("\n## ", 1)[0].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 5 or not re.fullmatch(r"[\d,]+", cells[1]):
                continue
            duck: float | None = None
            with contextlib.suppress(ValueError, IndexError):
                duck = float(cells[7].replace(",", ""))
            with contextlib.suppress(ValueError):
                found[cells[0].replace("⚠", "").strip()] = (int(cells[1].replace(",", "")),
                                                            float(cells[4].replace(",", "")), duck)
    return (found, when[1] if when else "unknown date",
            int(store[1].replace(",", "")) if store else 0)


# ============================================================================ the report


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def targets(run: Run) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    wrong = [s.name for s in run.shapes if not s.equal]
    what = ("every count equal on every engine, in every process and to the hand-written SQL"
            if len(run.engines) > 1 or (run.shapes and any("hand" in s.figures for s in run.shapes))
            else "every count equal on the warm connection and in every fresh process")
    rows.append((what,
                 "all equal" if not wrong else "**MISMATCH**: " + ", ".join(wrong), verdict(not wrong)))
    duck = [(s.name, s.figures["duckdb"]) for s in run.shapes
            if "duckdb" in s.figures and not s.figures["duckdb"].error]
    if duck:
        scale = f" ({run.profiles:,} profiles / {run.events:,} events)"
        slow = [(n, f.warm_ms or 0.0) for n, f in duck if (f.warm_ms or 0.0) > run.warm_target]
        worst = max(duck, key=lambda item: item[1].warm_ms or 0.0)
        rows.append((f"DuckDB: every suite shape ≤ {run.warm_target:.0f} ms warm{scale}",
                     f"{len(duck) - len(slow)}/{len(duck)} within; worst {worst[0]}"
                     f" {fmt_ms(worst[1].warm_ms)} ms"
                     + (" (over: " + ", ".join(f"{n} {ms:,.0f}" for n, ms in slow) + ")" if slow else ""),
                     verdict(not slow)))
        timed_ = [(n, f) for n, f in duck if f.process_ms is not None and f.process_ms == f.process_ms]
        if timed_ and run.process_target is not None:
            over = [(n, f.process_ms or 0.0) for n, f in timed_
                    if (f.process_ms or 0.0) > run.process_target]
            worst = max(timed_, key=lambda item: item[1].process_ms or 0.0)
            walls = [f.process_wall_ms or 0.0 for _, f in timed_]
            rows.append((f"DuckDB: every suite shape ≤ {run.process_target:.0f} ms in a fresh count"
                         f" process (its `elapsed_ms`){scale}",
                         f"{len(timed_) - len(over)}/{len(timed_)} within; worst {worst[0]}"
                         f" {fmt_ms(worst[1].process_ms)} ms"
                         + (" (over: " + ", ".join(f"{n} {ms:,.0f}" for n, ms in over) + ")" if over else "")
                         + f"; whole process wall {min(walls):,.0f}–{max(walls):,.0f} ms",
                         verdict(not over)))
    ratios = [r for s in run.shapes if (r := s.ratio()) is not None]
    if ratios:
        bare = [r for s in run.shapes if (r := s.ratio(without_compile=True)) is not None]
        rows.append((f"median ratio ours on DuckDB / hand-written DuckDB ≤ {HAND_RATIO_TARGET}",
                     f"{statistics.median(ratios):,.2f}× (range {min(ratios):,.2f}× – {max(ratios):,.2f}×);"
                     f" our query alone, without compiling and rendering it:"
                     f" {statistics.median(bare):,.2f}×",
                     verdict(statistics.median(ratios) <= HAND_RATIO_TARGET)))
    if "sqlite" in run.engines and run.baseline:
        compared = [(s.name, s.figures["sqlite"].warm_ms or 0.0, run.baseline[s.name][1])
                    for s in run.shapes if s.name in run.baseline and not s.figures["sqlite"].error
                    and s.figures["sqlite"].count == run.baseline[s.name][0]]
        other_data = [s.name for s in run.shapes if s.name in run.baseline
                      and s.figures["sqlite"].count != run.baseline[s.name][0]]
        worse = [(n, now, then) for n, now, then in compared
                 if now > then * SQLITE_NOISE_FACTOR and now > then + SQLITE_NOISE_MS]
        if compared:
            factor = statistics.median(now / then for _, now, then in compared if then > 0)
            rows.append((f"SQLite warm not worse than RESULTS.md's suite table ({run.baseline_when});"
                         f" worse = over {SQLITE_NOISE_FACTOR}× and +{SQLITE_NOISE_MS:.0f} ms",
                         f"median now / then {factor:,.2f}×; "
                         + ("none worse" if not worse else "worse: " + ", ".join(
                             f"{n} {now:,.1f} vs {then:,.1f} ms" for n, now, then in worse))
                         + (f"; not compared (another count then): {', '.join(other_data)}"
                            if other_data else ""),
                         verdict(not worse)))
        relative = sqlite_relative(run)
        if relative:
            now_ratio = statistics.median(now for _, now, _ in relative)
            then_ratio = statistics.median(then for _, _, then in relative)
            rows.append(("the same, load-independent: SQLite warm / hand-written DuckDB warm of the same"
                         " run, now against then (median)",
                         f"{now_ratio:,.2f}× now, {then_ratio:,.2f}× then",
                         verdict(now_ratio <= then_ratio * SQLITE_NOISE_FACTOR)))
    return rows


def sqlite_relative(run: Run) -> list[tuple[str, float, float]]:
    """Per shape: SQLite warm / hand-written DuckDB warm in this run, and the same in RESULTS.md.
    Both engines run on the same machine at the same moment, so the ratio cancels most of the
    load the shared machine is under, which the raw figures do not."""
    found = []
    for shape in run.shapes:
        ours, theirs = shape.figures.get("sqlite"), shape.figures.get("hand")
        then = run.baseline.get(shape.name)
        if (ours is None or theirs is None or then is None or then[2] is None or not ours.warm_ms
                or not theirs.warm_ms or not then[2] or ours.count != then[0]):
            continue
        found.append((shape.name, ours.warm_ms / theirs.warm_ms, then[1] / then[2]))
    return found


def process_cell(f: Figures) -> str:
    if f.process_ms is None or f.process_ms != f.process_ms:
        return "—"
    return f"{f.process_ms:,.1f} / {f.process_wall_ms or 0:,.0f}"


def render(run: Run) -> str:
    m = run.machine
    title = ("## Engines: the suite on " + ", ".join(LABELS[e] for e in run.engines)
             + f" ({run.profiles:,} profiles / {run.events:,} events)")
    out = [ENGINES_START.format(tag=run.tag), title, "",
           f"Written by `bench/engines.py` on {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"
           f" in {run.seconds / 60:.1f} min (see bench/README.md, \"Engines side by side\"). Command:", "",
           "```", run.command, "```", "",
           f"- Machine: {m.cpu}, {m.cores} cores, RAM {m.ram_gb:.1f} GB; load average (1 / 5 / 15 min)"
           f" {m.load_start} at the start, {m.load_end} at the end (shared machine: loads above the"
           " core count slow every figure down)",
           "- Versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items())]
    if "duckdb" in run.engines:
        out.append(f"- DuckDB settings (ours and the hand-written queries): memory_limit {run.duckdb_memory},"
                   f" threads {run.duckdb_threads} (`AUDIENCES_DUCKDB_MEMORY`, `AUDIENCES_DUCKDB_THREADS`)")
    if run.postgres_settings:
        server = ("a throwaway server started by this run (tests/services/postgres.py, fsync off,"
                  f" unix socket; up in {run.postgres.start_seconds:.1f} s; memory and planner settings"
                  " set by bench/engines.py, `--postgres-default-settings` leaves initdb's)"
                  if run.postgres and run.postgres.own and run.postgres.start_seconds is not None
                  else "a throwaway server already running in bench/data/postgres (tests/services/"
                  "postgres.py, fsync off, unix socket), reused; memory and planner settings set by"
                  " bench/engines.py" if run.postgres and run.postgres.own
                  else "the server of `--store`" if run.tag.startswith("postgres-")
                  else "the server of `--postgres`")
        out.append(f"- PostgreSQL: {server}; "
                   + ", ".join(f"{k} {v}" for k, v in run.postgres_settings.items()))
    out += [f"- As of {AS_OF.isoformat()}; warm = median of {run.runs} counts on one connection"
            f" (`audience.count` through `engine_for(location).open_store(readonly=True)`); process ="
            f" median of {run.process_runs} fresh `audiences-tui count SEGMENT --db LOCATION --as-of"
            f" {UNTIL.isoformat()} --json` processes, OS cache warm: its `elapsed_ms` (the count) /"
            " the wall time of the whole process", "",
            "### Stores", "", "| engine | store | size | made | time to make it | its peak memory |",
            "|---|---|---:|---|---:|---:|"]
    for engine in run.engines:
        s = run.stores[engine]
        location = (str(Path(s.location).relative_to(ROOT))
                    if engine != "postgres" and Path(s.location).is_relative_to(ROOT) else s.location)
        out.append(f"| {LABELS[engine]} | `{redact(location)}` |"
                   f" {'—' if s.size_mb is None else f'{s.size_mb:,.0f} MB'} | {s.made}"
                   + (f" (load {s.load})" if s.load else "") + " |"
                   f" {'—' if s.seconds is None else f'{s.seconds:,.1f} s'} |"
                   f" {'—' if s.peak_mb is None else f'{s.peak_mb:,.0f} MB'} |")
    out.append("")
    copies = [(e, s.command) for e, s in run.stores.items() if s.command]
    if copies:
        out += ["Copies made with:", "", "```", *(redact(c) for _, c in copies), "```", ""]
    settled = run.stores.get("postgres")
    if settled is not None and settled.settle_seconds is not None:
        out += [f"After its copy, the PostgreSQL schema was vacuumed and analyzed (`VACUUM (ANALYZE)` of"
                f" each table, {settled.settle_seconds:.1f} s), as after any bulk load: otherwise the"
                " first reads set hint bits on every page and autovacuum runs during the measurements.",
                ""]
    if run.hand_copy_seconds is not None:
        out += ["The hand-written queries' typed copy was made in this run in"
                f" {run.hand_copy_seconds:.0f} s.", ""]
    out += ["### Targets", "", "| target | measured | |", "|---|---|---|"]
    out += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(run)]
    compiled_on = "duckdb" if "duckdb" in run.engines else run.engines[0]
    out += ["", "### Counts and times (ms)", "",
            "Process cells: `elapsed_ms` / whole-process wall. *ours / hand*: ours on DuckDB warm"
            f" / hand-written DuckDB warm. *of ours: compile*: the part of our {LABELS[compiled_on]}"
            " warm time spent"
            " compiling the segment and rendering the count query (the hand-written SQL has none).",
            ""]
    head = ["segment", "count"]
    for engine in run.engines:
        head += [f"{LABELS[engine]} warm", f"{LABELS[engine]} process"]
    with_hand = any("hand" in s.figures for s in run.shapes)
    head += [*(["hand-written DuckDB warm", "ours / hand"] if with_hand else []),
             f"of ours: compile ({LABELS[compiled_on]})", "equal"]
    out += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for shape in run.shapes:
        counts = shape.counts()
        count = next(iter(counts.values()), None)
        cells = [shape.name + (" ⚠" if why_slow(shape, run) else ""), fmt_count(count)]
        for engine in run.engines:
            f = shape.figures.get(engine, Figures())
            cells += [f"error: {f.error}" if f.error and f.warm_ms is None else fmt_ms(f.warm_ms),
                      process_cell(f)]
        hf = shape.figures.get("hand")
        ratio = shape.ratio()
        compiled = shape.figures.get(compiled_on)
        cells += [*([fmt_ms(hf.warm_ms) if hf else "—", "—" if ratio is None else f"{ratio:,.2f}×"]
                    if with_hand else []),
                  fmt_ms(compiled.compile_ms) if compiled else "—",
                  "yes" if shape.equal else "**NO — MISMATCH**"]
        out.append("| " + " | ".join(cells) + " |")
    medians = ["**median**", ""]
    for engine in run.engines:
        fs = [s.figures[engine] for s in run.shapes if engine in s.figures and not s.figures[engine].error]
        medians += [fmt_ms(median([f.warm_ms for f in fs if f.warm_ms is not None])),
                    fmt_ms(median([f.process_ms for f in fs if f.process_ms == f.process_ms
                                   and f.process_ms is not None]))]
    hs = [s.figures["hand"].warm_ms for s in run.shapes if "hand" in s.figures]
    ratios = [r for s in run.shapes if (r := s.ratio()) is not None]
    compiles = [s.figures[compiled_on].compile_ms for s in run.shapes if compiled_on in s.figures]
    medians += [*([fmt_ms(median([h for h in hs if h is not None])),
                   f"{statistics.median(ratios):,.2f}×" if ratios else "—"] if with_hand else []),
                fmt_ms(median([c for c in compiles if c is not None])), ""]
    out += ["| " + " | ".join(medians) + " |", ""]
    if "sqlite" in run.engines and run.baseline:
        relative = {name: (now, then) for name, now, then in sqlite_relative(run)}
        out += [f"SQLite now against RESULTS.md's suite table ({run.baseline_when}), warm ms; the last"
                " two columns divide by the hand-written DuckDB warm time of the same run (then: the"
                " DuckDB column of that table), which cancels most of the machine's load:", "",
                "| segment | count then | count now | warm then | warm now | now / then"
                " | SQLite / DuckDB then | SQLite / DuckDB now |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for shape in run.shapes:
            now = shape.figures.get("sqlite")
            if shape.name not in run.baseline or now is None or now.warm_ms is None:
                continue
            then_count, then_ms, _ = run.baseline[shape.name]
            rel = relative.get(shape.name)
            out.append(f"| {shape.name} | {then_count:,} | {fmt_count(now.count)} | {then_ms:,.1f} |"
                       f" {now.warm_ms:,.1f} | {now.warm_ms / then_ms:,.2f}× |"
                       + (f" {rel[1]:,.2f}× | {rel[0]:,.2f}× |" if rel else " — | — |"))
        out.append("")
    mismatches = [s for s in run.shapes if not s.equal]
    if mismatches:
        out += ["### **Count mismatches** (a bug in one of the engines)", ""]
        for shape in mismatches:
            out += [f"- **{shape.name}**: " + ", ".join(f"{k} {v:,}" for k, v in shape.counts().items())
                    + ("; " + "; ".join(shape.errors) if shape.errors else "")]
        out.append("")
        for shape in mismatches:
            for engine, sql in shape.sql.items():
                out += [f"<details><summary>{shape.name}: SQL on {LABELS.get(engine, engine)}</summary>",
                        "", "```sql", sql, "```", "", "</details>", ""]
    probed = [s for s in run.shapes if s.probe]
    if probed:
        out += ["### Where a fresh count process on DuckDB spends its time (bench/count_probe.py, ms)", "",
                "One fresh process per segment (the slowest ones, and the quickest shape for the cost of"
                " a fresh process itself), doing what `audiences-tui count` does."
                " *count: ...* rows are the steps inside `audience.count`, what `elapsed_ms` covers.", "",
                "| step | " + " | ".join(s.name for s in probed) + " |",
                "|---|" + "---:|" * len(probed)]
        for step in probed[0].probe:
            out.append(f"| {step} | " + " | ".join(fmt_ms(s.probe.get(step)) for s in probed) + " |")
        out.append("")
    slow = [s for s in run.shapes if s.plans]
    if slow:
        out += ["### Why the slow shapes on DuckDB are slow (EXPLAIN ANALYZE, warm)", ""]
        for shape in slow:
            for label, plan in shape.plans.items():
                missed = ", ".join(why_slow(shape, run))
                out += [f"<details><summary>{shape.name} ({missed}): {label}</summary>",
                        "", "```", plan, "```", "", "</details>", ""]
    out.append(ENGINES_END.format(tag=run.tag))
    return "\n".join(out)


def merge_into(results: Path, section: str, tag: str) -> None:
    """Put the section into RESULTS.md in place of the previous one of the same tag (or at the end)."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    start, end = ENGINES_START.format(tag=tag), ENGINES_END.format(tag=tag)
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(text, encoding="utf-8")


# ============================================================================ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000, help="sample store size (default 1M)")
    parser.add_argument("--runs", type=int, default=5, help="counts per warm median (default 5)")
    parser.add_argument("--process-runs", type=int, default=3,
                        help="fresh count processes per segment and engine (default 3; 0: none)")
    parser.add_argument("--only", action="append", default=None, metavar="SEGMENT",
                        help="a segment of bench/segments/ (repeatable)")
    parser.add_argument("--engine", action="append", choices=ENGINES, default=None,
                        help="an engine to measure (repeatable; default all three)")
    parser.add_argument("--no-hand", action="store_true", help="skip the hand-written DuckDB queries")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="a PostgreSQL server to use (libpq URL) instead of a throwaway one")
    parser.add_argument("--postgres-default-settings", action="store_true",
                        help="leave the throwaway server's settings as initdb made them (default: "
                             + ", ".join(f"{k}={v}" for k, v in POSTGRES_TUNING.items()) + ")")
    parser.add_argument("--keep-postgres", action="store_true",
                        help="leave the throwaway server running (a next run reuses it and its copy)")
    parser.add_argument("--duckdb-memory", default=DEFAULT_DUCKDB_MEMORY,
                        help=f"DuckDB memory_limit (default {DEFAULT_DUCKDB_MEMORY})")
    parser.add_argument("--duckdb-threads", type=int, default=DEFAULT_DUCKDB_THREADS,
                        help=f"DuckDB threads (default {DEFAULT_DUCKDB_THREADS})")
    parser.add_argument("--recopy", action="store_true", help="copy the store again even if cached")
    parser.add_argument("--keep-store", action="store_true",
                        help="reuse the cached SQLite store even if the sample generator changed")
    parser.add_argument("--copy-command", default=COPY_COMMAND,
                        help="how to copy the SQLite store (placeholders {cli}, {src}, {dest};"
                             f" default {COPY_COMMAND!r})")
    parser.add_argument("--store", default=None, metavar="LOCATION",
                        help="measure this existing DuckDB store or PostgreSQL schema (a libpq URL)"
                             " alone, e.g. a 10M-profile `audiences-tui sample` or its copy; no copies,"
                             " no other engines, no hand-written SQL")
    parser.add_argument("--store-note", default="",
                        help="how the --store was made (command, time, peak memory), for the report")
    parser.add_argument("--output", type=Path, default=None,
                        help="file to put the Engines section into (default bench/RESULTS.md for a"
                             " full run; a partial run prints it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.perf_counter()
    command = shlex.join([Path(sys.executable).relative_to(ROOT).as_posix()
                          if Path(sys.executable).is_relative_to(ROOT) else sys.executable,
                          *sys.argv]) if argv is None else shlex.join(["bench/engines.py", *argv])
    files = suite_files(set(options.only) if options.only else None)
    if options.only and len(files) != len(set(options.only)):
        known = sorted(p.stem for p in suite_files(None))
        raise SystemExit(f"--only: unknown segment(s); known: {', '.join(known)}")
    engines = [e for e in ENGINES if options.engine is None or e in options.engine]
    if options.store is not None:
        engines, options.no_hand = [given_engine(options.store)], True
    os.environ["AUDIENCES_DUCKDB_MEMORY"] = options.duckdb_memory
    os.environ["AUDIENCES_DUCKDB_THREADS"] = str(options.duckdb_threads)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    machine = describe_machine()
    with contextlib.suppress(ImportError):
        import psycopg

        machine.versions["psycopg"] = psycopg.__version__
    run = Run(command, options.profiles, options.runs, options.process_runs, engines, machine,
              options.duckdb_memory, options.duckdb_threads, tag=str(options.profiles))
    print(f"machine: {machine.cpu}, {machine.cores} cores, load average {machine.load_start}", flush=True)
    baseline_text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    run.baseline, run.baseline_when, run.baseline_profiles = read_baseline(baseline_text)
    if run.baseline_profiles != options.profiles:
        run.baseline = {}  # figures of another store size: nothing to compare with

    if options.store is not None:
        return measure_given_store(run, options, files, env, started)
    print("SQLite store:", flush=True)
    info = ensure_store(options.profiles, rebuild=False, keep=options.keep_store)
    run.events = info.events
    print(f"  {info.path.name}: {info.profiles:,} profiles, {info.events:,} events", flush=True)
    run.stores["sqlite"] = StoreCopy(
        "sqlite", str(info.path), info.build.get("seconds"), info.build.get("peak_mb"),
        ("built in this run" if info.built_now else f"cached, built {info.build.get('built_at')}")
        + " by bench/run.py's sample builder (sample generation time and peak memory)",
        "", size_mb(info.path))
    server: PostgresServer | None = None
    try:
        if "duckdb" in engines:
            run.stores["duckdb"] = duckdb_copy(info.path, options.recopy, options.copy_command, env)
        if "postgres" in engines:
            server = start_postgres(options.postgres, {} if options.postgres_default_settings
                                    else POSTGRES_TUNING)
            run.postgres = server
            run.stores["postgres"] = postgres_copy(info.path, server, options.recopy,
                                                   options.copy_command, env)
            run.postgres_settings = postgres_settings(run.stores["postgres"].location)
            machine.versions["PostgreSQL"] = run.postgres_settings.pop("server_version")
        hand_copy = None
        if not options.no_hand:
            hand_copy, run.hand_copy_seconds = ensure_hand_copy(info.path)
        for engine, store in run.stores.items():
            print(f"  {LABELS[engine]}: {redact(store.location)} ({store.made}"
                  + (f"; {store.seconds:.1f} s" if store.seconds is not None else "") + ")", flush=True)
        measure(run, files, env, hand_copy)
    finally:
        if server is not None and not options.keep_postgres:
            stop_postgres(server)
    full = options.only is None and options.engine is None and not options.no_hand
    return finish(run, options.output or (RESULTS if full else None), started)


def measure_given_store(run: Run, options: argparse.Namespace, files: list[Path],
                        env: dict[str, str], started: float) -> int:
    """``--store``: ours on one existing DuckDB store or PostgreSQL schema (the 10M-profile
    targets, and PostgreSQL's figures beside them)."""
    kind = given_engine(options.store)
    location = options.store if kind == "postgres" else str(Path(options.store).resolve())
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        run.profiles = int(conn.execute("SELECT count(*) FROM profiles").fetchone()[0])
        run.events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()
        engine.release()
    schema = re.search(r"[?&]schema=([^&]+)", location)
    run.tag = f"{kind}-" + (schema.group(1) if schema else Path(location).stem)
    scale = max((n for n in DUCK_TARGETS if n <= run.profiles), default=min(DUCK_TARGETS))
    run.warm_target, run.process_target = DUCK_TARGETS[scale]
    run.store_note = options.store_note
    if kind == "postgres":
        run.postgres = PostgresServer(with_schema(location, None), own=False)
        run.postgres_settings = postgres_settings(location)
        run.machine.versions["PostgreSQL"] = run.postgres_settings.pop("server_version")
    run.stores[kind] = StoreCopy(kind, location, made=options.store_note or "given",
                                 size_mb=(postgres_size_mb(location) if kind == "postgres"
                                          else size_mb(Path(location))))
    print(f"  {redact(location)}: {run.profiles:,} profiles, {run.events:,} events", flush=True)
    measure(run, files, env, None)
    return finish(run, options.output or (RESULTS if options.only is None else None), started)


def given_engine(location: str) -> str:
    """The engine of a ``--store`` location: PostgreSQL for a libpq URL, DuckDB otherwise."""
    return "postgres" if location.startswith(("postgresql:", "postgres:")) else "duckdb"


def finish(run: Run, output: Path | None, started: float) -> int:
    """Write (or print) the section; the exit status says whether every count agreed."""
    run.machine.load_end = load_average()
    run.seconds = time.perf_counter() - started
    section = render(run)
    if output is not None:
        merge_into(output, section, run.tag)
        print(f"\nwrote the Engines section of {output}")
    else:
        print("\n" + section)
    bad = [s.name for s in run.shapes if not s.equal]
    if bad:
        loud("COUNT MISMATCH (or a failed count) on: " + ", ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
