"""The "performance at scale" benchmark: the engine on a 1,000,000-profile sample store, next to DuckDB.

    .venv/bin/python bench/run.py [--profiles N] [--runs K] [--only NAME ...]

Builds (once, then reuses) a sample store under bench/data/ with a fixed seed
and end date, copies it into DuckDB (once, cached), then measures exact
counts of every segment in bench/segments/ (cold and warm), the same counts
in plain SQL on DuckDB, the builder's edit-then-recount case, keyset paging
at depth, activation, import rate, sample generation, the app's first paint
and peak memory, and writes bench/RESULTS.md (see bench/README.md).

``--only`` takes a section (store, suite, builder, paging, activation,
import, app) or a segment name from bench/segments/; a partial run prints
its report and leaves RESULTS.md alone unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.engines.sqlite import open_store  # noqa: E402
from store.query import audience  # noqa: E402
from store.query.compiler import compile_node, compile_segment, count_query, explain, pretty_sql  # noqa: E402
from store.query.membersets import MemberSetCache  # noqa: E402
from store.schema.catalog import Catalog  # noqa: E402
from store.schema.values import UTC  # noqa: E402
from store.segments.library import resolve_file, resolve_segment  # noqa: E402
from store.segments.model import AllOf, AttributeCondition, Segment, walk  # noqa: E402
from store.segments.validate import ResolvedSegment  # noqa: E402
from store.segments.yamlio import load_segment_text  # noqa: E402

BENCH = ROOT / "bench"
DATA = BENCH / "data"
SEGMENTS = BENCH / "segments"
RESULTS = BENCH / "RESULTS.md"
PYTHON = sys.executable
T = TypeVar("T")

SEED = 42
UNTIL = dt.date(2026, 11, 1)
AS_OF = dt.datetime.combine(UNTIL, dt.time(23, 59, 59, 999999), tzinfo=UTC)
GENERATOR_FILES = ("store/sample/generator.py", "store/sample/pools.py", "sample_data/schema.yaml")

SECTIONS = ("store", "suite", "builder", "paging", "activation", "import", "app")
# The "Engines" sections of RESULTS.md are bench/engines.py's (one per tag, e.g. the store size):
# a rewrite of the file keeps them.
ENGINES_START = "<!-- engines {tag}: written by bench/engines.py; bench/run.py keeps it -->"
ENGINES_END = "<!-- /engines {tag} -->"
ENGINES_BLOCK = re.compile(r"<!-- engines (\S+): .*?-->.*?<!-- /engines \1 -->", re.S)

# Targets of the issue "Performance at scale".
WARM_TARGET_MS = 100.0
COLD_TARGET_MS = 300.0
DUCKDB_RATIO_TARGET = 1.5
EDIT_TARGET_MS = 100.0
FIRST_PAINT_TARGET_S = 1.0
PEAK_MEMORY_TARGET_MB = 400.0

# The builder case: the second condition of six-conditions.yaml goes from age >= 30 to >= 40.
BUILDER_SEGMENT = "six-conditions"
BUILDER_EDIT_INDEX = 1
BUILDER_EDIT_VALUE = 40

PAGING_SEGMENTS = ("email-gmail", "spent-500-365d", "no-purchase-180d")
PAGE_SIZE = 200
# Activation: about 30% of the profiles (three markets) and everyone.
ACTIVATE_PART = ("id: bench-activate-part\nname: Three markets\nrule:\n"
                 "  attribute: country\n  op: in\n  value: [GB, DE, FR]\n")
ACTIVATE_ALL = "id: bench-activate-all\nname: Everyone\nrule:\n  all: []\n"


# ============================================================================ helpers


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """The result of ``action`` and the milliseconds it took."""
    started = time.perf_counter()
    result = action()
    return result, ms_since(started)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def evict_from_os_cache(path: Path) -> None:
    """Drop the file's pages from the OS page cache (only this file; no privilege needed)."""
    for name in (path, Path(f"{path}-wal")):
        if not name.exists():
            continue
        fd = os.open(name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@contextlib.contextmanager
def store_connection(store: Path) -> Iterator[sqlite3.Connection]:
    """A fresh read-only connection: its SQLite page cache starts empty."""
    conn = open_store(store, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


def peak_memory_mb() -> float:
    """The peak resident set of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def optional_module(name: str) -> ModuleType | None:
    """A bench/ script of another part of the project, imported if it exists."""
    path = BENCH / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run a Python script from the repository root, the project importable as from there."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([PYTHON, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "PYTHONPATH": path})


# ============================================================================ machine


@dataclass
class Machine:
    cpu: str
    cores: int
    ram_gb: float
    load_start: str
    load_end: str = ""
    versions: dict[str, str] = field(default_factory=dict)


def describe_machine() -> Machine:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) / 1024 / 1024
    import sqlglot

    versions = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version,
                "sqlglot": sqlglot.__version__}
    with contextlib.suppress(ImportError):
        import duckdb

        versions["DuckDB"] = duckdb.__version__
    return Machine(cpu, os.cpu_count() or 0, ram, load_average(), versions=versions)


# ============================================================================ the store


@dataclass
class StoreInfo:
    path: Path
    profiles: int
    events: int
    size_mb: float
    built_now: bool
    build: dict[str, Any]


def generator_fingerprint() -> str:
    """A hash of the generator's sources: a changed generator means different data."""
    digest = hashlib.sha256()
    for name in GENERATOR_FILES:
        with contextlib.suppress(OSError):
            digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def store_path(profiles: int) -> Path:
    return DATA / f"sample-{profiles}-seed{SEED}-{UNTIL.isoformat()}.db"


def build_store(path: Path, profiles: int) -> dict[str, Any]:
    """Generate the sample store (run in a child process by ``ensure_store``); returns its figures."""
    from store.sample.generator import generate_sample

    phases: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(phase: str, fraction: float) -> None:
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - last[0]
        last[0] = now

    result = generate_sample(path, profiles=profiles, seed=SEED, until=UNTIL, progress=progress)
    return {"seconds": result.elapsed_s, "events": result.events, "profiles": result.profiles,
            "phases": {k: round(v, 2) for k, v in phases.items()},
            "peak_mb": round(peak_memory_mb(), 1), "load": load_average(),
            "built_at": dt.datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "generator": generator_fingerprint()}


def ensure_store(profiles: int, rebuild: bool, keep: bool = False) -> StoreInfo:
    """The cached sample store, built in a child process when missing or out of date
    (``keep``: reuse it even if the generator changed since)."""
    path = store_path(profiles)
    sidecar = path.with_suffix(".json")
    build: dict[str, Any] = {}
    if sidecar.exists() and path.exists():
        build = json.loads(sidecar.read_text())
    fresh = bool(build) and (keep or build.get("generator") == generator_fingerprint())
    if build and not fresh:
        print("  the sample generator changed since the cached store was built: rebuilding"
              " (--keep-store reuses it)")
    built_now = False
    if rebuild or not fresh:
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"  building {path.name} ({profiles:,} profiles; a few minutes)...", flush=True)
        done = run_script([str(BENCH / "run.py"), "--build-store", str(path),
                           "--profiles", str(profiles)], timeout=7200)
        if done.returncode != 0:
            raise SystemExit(f"building the sample store failed:\n{done.stderr}")
        build = json.loads(done.stdout.strip().splitlines()[-1])
        sidecar.write_text(json.dumps(build, indent=2))
        built_now = True
    with store_connection(path) as conn:
        counted = int(conn.execute("SELECT count(*) FROM profiles").fetchone()[0])
        events = int(conn.execute("SELECT max(pk) FROM events").fetchone()[0] or 0)
    return StoreInfo(path, counted, events, path.stat().st_size / 1e6, built_now, build)


# ============================================================================ the suite


@dataclass
class ShapeResult:
    name: str
    description: str
    count: int
    disk_cold_ms: float
    cold_ms: float
    warm_ms: float
    duck_count: int | None = None
    duck_cold_ms: float | None = None
    duck_warm_ms: float | None = None
    plan: list[str] = field(default_factory=list)
    sql: str = ""
    error: str = ""

    @property
    def ratio(self) -> float | None:
        if self.duck_warm_ms is None or self.duck_warm_ms <= 0:
            return None
        return self.warm_ms / self.duck_warm_ms

    @property
    def equal(self) -> bool | None:
        return None if self.duck_count is None else self.duck_count == self.count

    @property
    def slow(self) -> bool:
        return self.warm_ms > WARM_TARGET_MS or self.cold_ms > COLD_TARGET_MS


def suite_files(names: set[str] | None) -> list[Path]:
    files = sorted(SEGMENTS.glob("*.yaml"))
    return [f for f in files if names is None or f.stem in names]


def measure_shape(store: Path, path: Path, runs: int) -> ShapeResult:
    """Disk-cold, cold and warm exact counts of one suite segment."""
    evict_from_os_cache(store)
    with store_connection(store) as conn:
        catalog = Catalog.load(conn)
        resolved = resolve_file(conn, path)
        _, disk_cold = timed(partial(audience.count, conn, resolved, AS_OF, catalog))
    with store_connection(store) as conn:
        catalog = Catalog.load(conn)
        resolved = resolve_file(conn, path)
        counting = partial(audience.count, conn, resolved, AS_OF, catalog)
        count, cold = timed(counting)
        warm = [timed(counting)[1] for _ in range(runs)]
        result = ShapeResult(path.stem, resolved.segment.name, int(count), disk_cold, cold,
                             statistics.median(warm))
        if result.slow:
            compiled = compile_segment(resolved, catalog, AS_OF)
            result.plan = explain(conn, count_query(compiled))
            result.sql = pretty_sql(compiled)
    return result


def run_duckdb(store: Path, runs: int, names: list[str]) -> dict[str, Any]:
    """The DuckDB side, in a child process (its memory stays out of the engine's peak)."""
    copy = store.with_suffix(".duckdb")
    args = [str(BENCH / "duckdb_queries.py"), str(store), str(copy), "--as-of", UNTIL.isoformat(),
            "--runs", str(runs), "--json"]
    for name in names:
        args += ["--only", name]
    done = run_script(args, timeout=7200)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_suite(store: Path, runs: int, names: set[str] | None,
              with_duckdb: bool) -> tuple[list[ShapeResult], dict[str, Any]]:
    from duckdb_queries import QUERIES

    results = []
    for path in suite_files(names):
        try:
            shape = measure_shape(store, path, runs)
        except Exception as exc:  # a broken shape is reported, the others still run
            shape = ShapeResult(path.stem, "", -1, 0.0, 0.0, 0.0, error=f"{type(exc).__name__}: {exc}")
        print(f"  {shape.name:24s} {shape.count:>10,}  disk-cold {shape.disk_cold_ms:8.1f} ms"
              f"  cold {shape.cold_ms:8.1f} ms  warm {shape.warm_ms:8.1f} ms", flush=True)
        results.append(shape)
    duck: dict[str, Any] = {}
    if with_duckdb:
        print("  DuckDB (copies the store once; cached)...", flush=True)
        duck = run_duckdb(store, runs, [r.name for r in results if r.name in QUERIES])
        for shape in results:
            row = duck.get("queries", {}).get(shape.name)
            if row is None:
                continue
            shape.duck_count, shape.duck_cold_ms, shape.duck_warm_ms = (
                int(row["count"]), float(row["cold_ms"]), float(row["warm_ms"]))
            if not shape.equal:
                print(f"\n  !!! COUNT MISMATCH on {shape.name}: engine {shape.count:,},"
                      f" DuckDB {shape.duck_count:,} !!!\n", flush=True)
    return results, duck


# ============================================================================ the builder case


@dataclass
class BuilderResult:
    segment: str
    edit: str
    count_before: int
    count_after: int
    total_ms: float  # the builder's recount: every node's count (the root's is the total)
    total_first_ms: float
    sql_count_ms: float  # one SQL count of the whole edited segment, for comparison
    sql_count_first_ms: float
    nodes: list[tuple[str, int, int | None, float]]  # path, own, remaining, ms of its own count
    external: str = ""


def edited_segment(segment: Segment) -> tuple[Segment, str]:
    """The six-condition segment with its age bound changed (one edit in the builder)."""
    rule = segment.rule
    assert isinstance(rule, AllOf), "the builder segment must be an `all` of six conditions"
    old = rule.children[BUILDER_EDIT_INDEX]
    assert isinstance(old, AttributeCondition)
    new = dataclasses.replace(old, value=BUILDER_EDIT_VALUE)
    children = (*rule.children[:BUILDER_EDIT_INDEX], new, *rule.children[BUILDER_EDIT_INDEX + 1:])
    edit = (f"rule.all[{BUILDER_EDIT_INDEX}]: {old.attribute} {old.op} {old.value}"
            f" -> {BUILDER_EDIT_VALUE}")
    return dataclasses.replace(segment, rule=AllOf(children)), edit


def run_builder(store: Path, runs: int) -> BuilderResult:
    """After one edit: the time to the new total and to every per-node count, as the builder does."""
    with store_connection(store) as conn:
        catalog = Catalog.load(conn)
        before = resolve_file(conn, SEGMENTS / f"{BUILDER_SEGMENT}.yaml")
        # The builder has shown the segment before the edit: its total and node counts.
        count_before = audience.count(conn, before, AS_OF, catalog)
        segment, edit = edited_segment(before.segment)
        after = resolve_segment(conn, segment, catalog=catalog)
        totals: list[float] = []
        sql_counts: list[float] = []
        count_after: int = 0
        counts: list[audience.NodeCount] = []

        def recount(cache: MemberSetCache) -> list[audience.NodeCount]:
            """What the builder's preview worker does after an edit: every node's count
            (the root's is the new total) from the cached member sets, and the profile total."""
            found = audience.node_counts(conn, after, AS_OF, catalog, cache=cache)
            audience.total(conn)
            return found

        for _ in range(max(1, runs)):
            # As in the builder: the segment was shown before the edit, so the member sets
            # of its conditions are cached; after the edit only the changed one is read.
            cache = MemberSetCache()
            audience.node_counts(conn, before, AS_OF, catalog, cache=cache)
            counts, total_ms = timed(partial(recount, cache))
            count_after, sql_ms = timed(partial(audience.count, conn, after, AS_OF, catalog))
            totals.append(total_ms)
            sql_counts.append(sql_ms)
        assert next(c.own for c in counts if c.path == "rule") == count_after
        per_node = []
        for item in counts:
            node = dict(walk(after.segment.rule))[item.path]
            compiled = compile_node(node, after, catalog, AS_OF, path=item.path)
            _, own_ms = timed(partial(audience.run_count, conn, compiled))
            per_node.append((item.path, item.own, item.remaining, own_ms))
    return BuilderResult(BUILDER_SEGMENT, edit, count_before, int(count_after),
                         statistics.median(totals), totals[0], statistics.median(sql_counts),
                         sql_counts[0], per_node, external_builder_figures(store))


def external_builder_figures(store: Path) -> str:
    """bench/bench_builder.py's report (the real app, headless, edits made as the keys make
    them), when that script exists; run as a script so the app's memory stays out of ours."""
    if not (BENCH / "bench_builder.py").exists():
        return ""
    done = run_script([str(BENCH / "bench_builder.py"), str(store), "--runs", "1",
                       "--as-of", UNTIL.isoformat()], timeout=3600)
    return (done.stdout + ("\n" + done.stderr if done.returncode else "")).strip()


# ============================================================================ paging


@dataclass
class PagingResult:
    segment: str
    members: int
    pages: dict[str, float]  # start / middle / end -> median ms


def pk_at(conn: sqlite3.Connection, resolved: ResolvedSegment, catalog: Catalog, rank: int) -> int | None:
    """The pk of the member at ``rank`` (0-based) in pk order: the page boundary to start after."""
    if rank < 0:
        return None
    compiled = compile_segment(resolved, catalog, AS_OF)
    row = conn.execute(f"SELECT pk FROM ({compiled.sql}) ORDER BY pk LIMIT 1 OFFSET ?",
                       (*compiled.params, rank)).fetchone()
    return None if row is None else int(row[0])


def run_paging(store: Path, runs: int) -> list[PagingResult]:
    """Keyset pages (``member_page``) at the start, the middle and the end of an audience."""
    results = []
    with store_connection(store) as conn:
        catalog = Catalog.load(conn)
        for name in PAGING_SEGMENTS:
            resolved = resolve_file(conn, SEGMENTS / f"{name}.yaml")
            members = audience.count(conn, resolved, AS_OF, catalog)
            starts = {"start": None, "middle": pk_at(conn, resolved, catalog, members // 2 - 1),
                      "end": pk_at(conn, resolved, catalog, members - PAGE_SIZE - 1)}
            pages = {}
            for label, after in starts.items():
                page = partial(audience.member_page, conn, resolved, AS_OF, after_pk=after,
                               limit=PAGE_SIZE, catalog=catalog)
                times = [timed(page)[1] for _ in range(max(1, runs))]
                pages[label] = statistics.median(times)
            results.append(PagingResult(name, members, pages))
            print(f"  {name:24s} " + "  ".join(f"{k} {v:7.1f} ms" for k, v in pages.items()),
                  flush=True)
    return results


# ============================================================================ activation


@dataclass
class ActivationRun:
    label: str
    members: int
    added: int
    seconds: float


def run_activation(store: Path) -> list[ActivationRun]:
    """First activations of about 30% and of all profiles into a temporary campaign store,
    then an unchanged refresh of the larger one."""
    from store.campaign.activation import activate
    from store.campaign.store import open_campaign

    runs = []
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DATA) as folder, store_connection(store) as conn:
        catalog = Catalog.load(conn)
        campaign = open_campaign(Path(folder) / "campaign.db")
        try:
            for label, text in (("first activation, three markets", ACTIVATE_PART),
                                ("first activation, everyone", ACTIVATE_ALL),
                                ("unchanged refresh, everyone", ACTIVATE_ALL)):
                parsed, lines = load_segment_text(text, "bench")
                resolved = resolve_segment(conn, parsed, lines, catalog)
                result, took = timed(partial(activate, conn, campaign, resolved, AS_OF,
                                             catalog=catalog))
                runs.append(ActivationRun(label, result.count, result.added, took / 1000))
                print(f"  {label:34s} {result.count:>10,} members  {took / 1000:6.2f} s", flush=True)
        finally:
            campaign.close()
    return runs


# ============================================================================ import, app


@dataclass
class ImportResult:
    rows: dict[str, tuple[int, float, float]]  # kind -> rows, seconds, rows/s
    raw: str


IMPORT_LINE = re.compile(r"^(\w+)\s+([\d,]+) rows\s+wall\s+([\d.]+) s\s+([\d,]+) rows/s", re.M)


def run_import() -> ImportResult:
    """bench/bench_import.py (1,500,000 events through the CLI), run as a script and parsed."""
    done = run_script([str(BENCH / "bench_import.py")], timeout=3600)
    output = (done.stdout + ("\n" + done.stderr if done.returncode else "")).strip()
    rows = {m[1]: (int(m[2].replace(",", "")), float(m[3]), float(m[4].replace(",", "")))
            for m in IMPORT_LINE.finditer(done.stdout)}
    return ImportResult(rows, output)


@dataclass
class AppResult:
    seconds: float | None
    how: str


def run_first_paint(store: Path, runs: int) -> AppResult:
    """The app's start-up from bench/bench_app.py (``startup``: ``audiences-tui --db`` launched
    in a pseudo-terminal, timed from the command's start to the first frame)."""
    module = optional_module("bench_app")
    if module is None or not hasattr(module, "startup"):
        return AppResult(None, "not measured: bench/bench_app.py (with `startup`) is missing")
    starts = module.startup(store, max(1, runs))
    frame = statistics.median(s[0] for s in starts)
    rows = statistics.median(s[1] for s in starts)
    return AppResult(frame, f"bench/bench_app.py `startup`: `audiences-tui --db` in a pseudo-terminal,"
                     f" command start to the first frame (median of {len(starts)}); the first"
                     f" profile rows were on screen at {rows:.2f} s")


# ============================================================================ the report


@dataclass
class Report:
    machine: Machine
    profiles: int
    runs: int
    store: StoreInfo | None = None
    shapes: list[ShapeResult] = field(default_factory=list)
    duck: dict[str, Any] = field(default_factory=dict)
    builder: BuilderResult | None = None
    paging: list[PagingResult] = field(default_factory=list)
    activation: list[ActivationRun] = field(default_factory=list)
    imports: ImportResult | None = None
    app: AppResult | None = None
    peak_mb: float = 0.0
    seconds: float = 0.0


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


MISSES_EXPLAINED = (
    "Why a target is missed, and the design that would meet it, measured: bench/README.md"
    " (\"The columnar design, now an engine\", `bench/engines.py`) and docs/engine.md"
    " (\"Speed\").")


def kept_engines_section(output: Path) -> str:
    """bench/engines.py's sections of the file being rewritten (with their markers), or ""."""
    with contextlib.suppress(OSError):
        blocks = [m[0] for m in ENGINES_BLOCK.finditer(output.read_text(encoding="utf-8"))]
        return "".join(f"\n{block}\n" for block in blocks)
    return ""


def targets(report: Report) -> list[tuple[str, str, str]]:
    """(target, measured, met / missed) rows."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**missed**")

    shapes = [s for s in report.shapes if not s.error]
    failed = [s.name for s in report.shapes if s.error]
    if failed:
        rows.append(("every suite segment counts", "FAILED: " + ", ".join(failed), verdict(False)))
    if shapes:
        slow = [s for s in shapes if s.warm_ms > WARM_TARGET_MS]
        rows.append((f"every suite segment: warm exact count ≤ {WARM_TARGET_MS:.0f} ms (median)",
                     f"{len(shapes) - len(slow)}/{len(shapes)} within; worst "
                     f"{max(s.warm_ms for s in shapes):,.0f} ms"
                     + (f" ({', '.join(s.name for s in slow)})" if slow else ""),
                     verdict(not slow)))
        over = [s for s in shapes if s.cold_ms > COLD_TARGET_MS]
        rows.append((f"no suite segment over {COLD_TARGET_MS:.0f} ms cold",
                     f"{len(over)} over; worst {max(s.cold_ms for s in shapes):,.0f} ms"
                     + (f" ({', '.join(s.name for s in over)})" if over else ""),
                     verdict(not over)))
        ratios = [s.ratio for s in shapes if s.ratio is not None]
        if ratios:
            median = statistics.median(ratios)
            rows.append((f"median ratio ours / DuckDB ≤ {DUCKDB_RATIO_TARGET}",
                         f"{median:,.1f}× (range {min(ratios):,.1f}× – {max(ratios):,.1f}×)",
                         verdict(median <= DUCKDB_RATIO_TARGET)))
            wrong = [s.name for s in shapes if s.equal is False]
            rows.append(("every count equal to DuckDB's", "all equal" if not wrong
                         else "MISMATCH: " + ", ".join(wrong), verdict(not wrong)))
    if report.builder is not None:
        b = report.builder
        rows.append((f"after one edit: new total ≤ {EDIT_TARGET_MS:.0f} ms",
                     f"{b.total_ms:,.0f} ms (first {b.total_first_ms:,.0f} ms)",
                     verdict(b.total_ms <= EDIT_TARGET_MS)))
        rows.append((f"after one edit: every per-node count ≤ {EDIT_TARGET_MS:.0f} ms",
                     f"all {len(b.nodes)} nodes with the total in {b.total_ms:,.0f} ms",
                     verdict(b.total_ms <= EDIT_TARGET_MS)))
    if report.app is not None:
        seconds = report.app.seconds
        rows.append((f"first paint < {FIRST_PAINT_TARGET_S:.0f} s",
                     "—" if seconds is None else f"{seconds:.2f} s",
                     verdict(None if seconds is None else seconds < FIRST_PAINT_TARGET_S)))
    rows.append((f"peak memory < {PEAK_MEMORY_TARGET_MB:.0f} MB", f"{report.peak_mb:,.0f} MB",
                 verdict(report.peak_mb < PEAK_MEMORY_TARGET_MB)))
    return rows


def render(report: Report) -> str:
    m = report.machine
    out = ["# Benchmark results", "",
           f"Written by `bench/run.py` on {dt.datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
           f" in {report.seconds / 60:.1f} min. See bench/README.md for what each figure means.", "",
           "## Machine", "",
           f"- CPU: {m.cpu}, {m.cores} cores; RAM {m.ram_gb:.1f} GB",
           f"- Load average (1 / 5 / 15 min): {m.load_start} at the start, {m.load_end} at the end"
           " (the machine is shared: loads above the core count slow every figure down)",
           "- Versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()),
           f"- Runs per warm figure: {report.runs} (medians)", ""]
    if report.store is not None:
        s, build = report.store, report.store.build
        out += ["## Store", "",
                f"- `{s.path.relative_to(ROOT)}`: {s.profiles:,} profiles, {s.events:,} events,"
                f" {s.size_mb:,.0f} MB; seed {SEED}, events up to {UNTIL}; as-of {AS_OF.isoformat()}",
                f"- Sample generation (the store build itself): {build.get('seconds', 0):,.1f} s"
                f" ({'built in this run' if s.built_now else 'cached, built ' + str(build.get('built_at'))};"
                f" load average then {build.get('load', '?')}; generator peak memory"
                f" {build.get('peak_mb', 0):,.0f} MB in its own process)",
                "- Phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in build.get("phases", {}).items()),
                ""]
    out += ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    rows = targets(report)
    out += [f"| {t} | {v} | {ok} |" for t, v, ok in rows]
    out.append("")
    if any(ok == "**missed**" for _, _, ok in rows):
        out += [MISSES_EXPLAINED, ""]
    if report.shapes:
        out += suite_section(report)
    if report.builder is not None:
        out += builder_section(report.builder)
    if report.paging:
        out += ["## Paging at depth (`member_page`, 200 rows, median ms)", "",
                "| segment | members | start | middle | end |", "|---|---:|---:|---:|---:|"]
        out += [f"| {p.segment} | {p.members:,} | {fmt_ms(p.pages['start'])} |"
                f" {fmt_ms(p.pages['middle'])} | {fmt_ms(p.pages['end'])} |" for p in report.paging]
        out.append("")
    if report.activation:
        out += ["## Activation into a temporary campaign store", "",
                "| run | members | added | seconds | members/s |", "|---|---:|---:|---:|---:|"]
        out += [f"| {a.label} | {a.members:,} | {a.added:,} | {a.seconds:.2f} |"
                f" {a.members / a.seconds:,.0f} |" for a in report.activation]
        out.append("")
    if report.imports is not None:
        out += ["## Import rate (bench/bench_import.py, through the CLI)", ""]
        if report.imports.rows:
            out += ["| import | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
            out += [f"| {k} | {r:,} | {s:.2f} | {rate:,.0f} |"
                    for k, (r, s, rate) in report.imports.rows.items()]
        else:
            out += ["No figures could be read from its output:", "", "```",
                    report.imports.raw[-2000:], "```"]
        out.append("")
    if report.app is not None:
        a = report.app
        out += ["## First paint", "",
                f"- {'—' if a.seconds is None else f'{a.seconds:.2f} s'}: {a.how}", ""]
    duck_peak = report.duck.get("peak_kb")
    out += ["## Peak memory", "",
            f"- This run (ru_maxrss of the benchmark process: counts, paging, builder, activation):"
            f" {report.peak_mb:,.0f} MB",
            "- Measured in their own processes, not included above: the sample generator"
            + (f" ({report.store.build.get('peak_mb', 0):,.0f} MB)" if report.store else "")
            + (f", DuckDB ({duck_peak / 1024:,.0f} MB)" if duck_peak else "")
            + ", and the scripts bench_import.py, bench_app.py and bench_builder.py.", ""]
    return "\n".join(out)


def suite_section(report: Report) -> list[str]:
    out = ["## Exact counts: the suite (bench/segments/)", "",
           "Times in ms. *disk-cold*: fresh connection after the store file was evicted from the"
           " OS page cache; *cold*: fresh connection, OS cache warm; *warm*: median of"
           f" {report.runs} runs on one connection. DuckDB: plain SQL from bench/duckdb_queries.py"
           " on a copy of the same data (cold = first run on a fresh connection).", "",
           "| segment | count | disk-cold | cold | warm | DuckDB count | DuckDB cold | DuckDB warm"
           " | ours / DuckDB | equal |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in report.shapes:
        if s.error:
            out.append(f"| {s.name} | error: {s.error} | | | | | | | | |")
            continue
        equal = {None: "—", True: "yes", False: "**NO — MISMATCH**"}[s.equal]
        flag = " ⚠" if s.slow else ""
        out.append(f"| {s.name}{flag} | {s.count:,} | {fmt_ms(s.disk_cold_ms)} | {fmt_ms(s.cold_ms)} |"
                   f" {fmt_ms(s.warm_ms)} | {'—' if s.duck_count is None else f'{s.duck_count:,}'} |"
                   f" {fmt_ms(s.duck_cold_ms)} | {fmt_ms(s.duck_warm_ms)} |"
                   f" {'—' if s.ratio is None else f'{s.ratio:,.1f}×'} | {equal} |")
    out.append("")
    if "error" in report.duck:
        out += [f"DuckDB did not run: {report.duck['error']}", ""]
    elif report.duck.get("copy_seconds"):
        out += [f"The DuckDB copy was made in this run in {report.duck['copy_seconds']:.0f} s.", ""]
    mismatches = [s for s in report.shapes if s.equal is False]
    if mismatches:
        out += ["**Count mismatches (a bug in one of the two engines):**", ""]
        out += [f"- {s.name}: engine {s.count:,}, DuckDB {s.duck_count:,}" for s in mismatches]
        out.append("")
    slow = [s for s in report.shapes if s.plan]
    if slow:
        out += ["### Query plans of the shapes over target (⚠)", ""]
        for s in slow:
            out += [f"<details><summary>{s.name}: warm {s.warm_ms:,.0f} ms, cold {s.cold_ms:,.0f} ms"
                    "</summary>", "", "```", *s.plan, "```", "", "```sql", s.sql, "```", "",
                    "</details>", ""]
    return out


def builder_section(b: BuilderResult) -> list[str]:
    out = ["## The builder's case: one edit, then the new total and every per-node count", "",
           f"Segment `{b.segment}` ({b.count_before:,} members); edit `{b.edit}` ->"
           f" {b.count_after:,} members.", "",
           f"- New total and every per-node count, as the builder gets them"
           f" (`audience.node_counts` with the member sets cached before the edit, {len(b.nodes)}"
           f" nodes plus the waterfall; the root's count is the total; then `audience.total`):"
           f" {b.total_ms:,.1f} ms median (first {b.total_first_ms:,.1f} ms)",
           f"- For comparison, one SQL count of the whole edited segment (`audience.count`):"
           f" {b.sql_count_ms:,.1f} ms median (first {b.sql_count_first_ms:,.1f} ms)",
           "", "| node | own | waterfall | own count ms |", "|---|---:|---:|---:|"]
    out += [f"| `{path}` | {own:,} | {'—' if rem is None else f'{rem:,}'} | {ms:,.1f} |"
            for path, own, rem, ms in b.nodes]
    out.append("")
    if b.external:
        out += ["bench/bench_builder.py (the app itself, headless; edit to count and to all node"
                " counts on screen, 0.25 s debounce included) reports:", "", "```",
                b.external[-4000:], "```", ""]
    return out


# ============================================================================ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="runs per warm median (default 5)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="a section (" + ", ".join(SECTIONS) + ") or a segment name; repeatable")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB comparison")
    parser.add_argument("--rebuild", action="store_true", help="build the sample store again")
    parser.add_argument("--keep-store", action="store_true",
                        help="reuse the cached store even if the sample generator changed")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the report (default bench/RESULTS.md for a full run)")
    parser.add_argument("--build-store", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.build_store is not None:  # the child process of ensure_store
        print(json.dumps(build_store(options.build_store, options.profiles)))
        return 0
    sys.path.insert(0, str(BENCH))
    started = time.perf_counter()
    wanted = set(options.only or [])
    known_shapes = {p.stem for p in suite_files(None)}
    unknown = wanted - set(SECTIONS) - known_shapes
    if unknown:
        raise SystemExit(f"--only: unknown name(s) {sorted(unknown)}; sections: {', '.join(SECTIONS)};"
                         f" segments: {', '.join(sorted(known_shapes))}")
    shapes = wanted & known_shapes or None
    sections = (wanted & set(SECTIONS)) | ({"suite"} if shapes else set()) or set(SECTIONS)
    report = Report(describe_machine(), options.profiles, options.runs)
    print(f"machine: {report.machine.cpu}, {report.machine.cores} cores,"
          f" load average {report.machine.load_start}")
    print("store:", flush=True)
    report.store = ensure_store(options.profiles, options.rebuild, options.keep_store)
    print(f"  {report.store.path.name}: {report.store.profiles:,} profiles,"
          f" {report.store.events:,} events", flush=True)
    store = report.store.path
    if "suite" in sections:
        print("suite:", flush=True)
        report.shapes, report.duck = run_suite(store, options.runs, shapes, not options.no_duckdb)
        if report.duck.get("version"):
            report.machine.versions["DuckDB"] = report.duck["version"]
    if "builder" in sections:
        print("builder:", flush=True)
        report.builder = run_builder(store, options.runs)
        print(f"  total and node counts {report.builder.total_ms:.1f} ms,"
              f" one SQL count {report.builder.sql_count_ms:.1f} ms")
    if "paging" in sections:
        print("paging:", flush=True)
        report.paging = run_paging(store, options.runs)
    if "activation" in sections:
        print("activation:", flush=True)
        report.activation = run_activation(store)
    if "import" in sections:
        print("import (bench/bench_import.py):", flush=True)
        report.imports = run_import()
        for kind, (rows, seconds, rate) in report.imports.rows.items():
            print(f"  {kind:9s} {rows:>10,} rows {seconds:7.2f} s {rate:>10,.0f} rows/s")
    if "app" in sections:
        print("first paint:", flush=True)
        report.app = run_first_paint(store, options.runs)
        print(f"  {report.app.seconds} s ({report.app.how})")
    report.peak_mb = peak_memory_mb()
    report.machine.load_end = load_average()
    report.seconds = time.perf_counter() - started
    text = render(report)
    output = options.output or (RESULTS if options.only is None else None)
    if output is not None:
        output.write_text(text + kept_engines_section(output) + "\n", encoding="utf-8")
        print(f"wrote {output}")
    else:
        print("\n" + text)
    mismatched = [s.name for s in report.shapes if s.equal is False]
    if mismatched:
        print(f"COUNT MISMATCH with DuckDB: {', '.join(mismatched)}", file=sys.stderr)
    failed = [s.name for s in report.shapes if s.error]
    if failed:
        print(f"segments that failed to count: {', '.join(failed)}", file=sys.stderr)
    return 1 if mismatched or failed else 0


if __name__ == "__main__":
    sys.exit(main())
