"""Would counting on a DuckDB mirror of the store, with the compiler's own SQL, reach DuckDB speed?

Issue #7 asks for a median ratio (our exact count time / DuckDB's on the same
data) of at most 1.5 over the suite in bench/segments/; counting on SQLite is
at about 3.7x (bench/RESULTS.md). One proposed design keeps SQLite as the
system of record and counts on a columnar DuckDB copy, queried with the same
sqlglot tree the compiler builds, rendered for DuckDB. This script measures
that design without changing the engine:

1. The mirror: a DuckDB file beside the store (``<store>.mirror.duckdb``,
   rebuilt when the store file's size or mtime changes) holding the tables the
   compiled SQL reads in the store's own layout: same table and column names,
   same stored values (text dates stay text, booleans 0/1, ``ts`` epoch
   seconds, a DOUBLE since times may keep fractions), DuckDB types from
   SQLite's declared column types. It is copied in
   numpy chunks, in a process of its own; its time, size and peak memory are
   printed.
2. For each suite segment: the count query exactly as ``store.audience.count``
   builds it (``compile_segment`` then ``count_query``: same tree, same bound
   values), its SQLite-only pieces rewritten by ``to_duckdb`` (each rewrite
   is named in the output), rendered for DuckDB and run on the mirror with the
   same values as named parameters. Its count must equal ours on SQLite.
3. Timings, interleaved per segment so all three see the same machine load:
   ours on SQLite (``audience.count``: compile + run; cold = first count on a
   fresh connection, warm = median of ``--runs`` on that connection, as
   bench/run.py does), the compiled SQL on the mirror (compile + render in this
   process plus the run in the DuckDB process; cold = first run on a fresh
   connection, warm = median of ``--runs`` more) and the hand-written queries
   of bench/duckdb_queries.py on their own typed copy (``<store>.duckdb``, the
   one bench/run.py uses; its own timing function). DuckDB runs in a child
   process so its peak memory (``ru_maxrss``) is its own.

    .venv/bin/python bench/duckdb_compiled.py STORE.db --as-of 2026-11-01 --runs 5 [--copy PATH]

Exits with status 1 if any count differs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import multiprocessing
import os
import re
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlglot import exp

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import duckdb_queries as hand  # noqa: E402

from run import ms_since, timed  # noqa: E402
from store.engines.sqlite import open_store  # noqa: E402
from store.query import audience  # noqa: E402
from store.query import sqlbuild as sb  # noqa: E402
from store.query.compiler import compile_segment, count_query  # noqa: E402
from store.schema.catalog import Catalog  # noqa: E402
from store.schema.values import UTC  # noqa: E402
from store.segments.library import resolve_file  # noqa: E402
from store.segments.validate import ResolvedSegment  # noqa: E402

SEGMENTS = BENCH / "segments"
RESULTS = BENCH / "RESULTS.md"
CHUNK = 250_000
READ_BLOCK = 8 << 20
T = TypeVar("T")

# The rewrites ``to_duckdb`` may make, named as they are reported.
HINT = "INDEXED BY / NOT INDEXED table hint -> dropped"
TOTAL = "TOTAL(x) -> COALESCE(SUM(x), CAST(0 AS DOUBLE))"
LIKE = "LIKE (case-insensitive under PRAGMA case_sensitive_like = OFF) -> ILIKE"
BOOL_ARITH = "comparison used as a 0/1 number -> CAST(comparison AS INTEGER)"
# Functions the compiler writes by name that DuckDB has with the same meaning.
SHARED_FUNCTIONS = frozenset({"instr"})


# ============================================================================ helpers


def load_average() -> str:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return handle.read().strip()


def peak_rss_mb() -> float:
    """This process's peak resident set (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_into_os_cache(path: Path) -> None:
    """Read a file once so that every "cold" figure starts with the OS cache warm."""
    with open(path, "rb", buffering=0) as handle:
        while handle.read(READ_BLOCK):
            pass


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def as_of_instant(day: dt.date) -> dt.datetime:
    """A date alone means the end of that day (as bench/run.py and the CLI read it)."""
    return dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=UTC)


# ============================================================================ SQLite -> DuckDB SQL


class Untranslatable(Exception):
    """A construct of the compiled SQL with no rewrite here (the message names it)."""


@dataclass(frozen=True)
class DuckQuery:
    """A count query rendered for DuckDB, its named parameters and the rewrites it needed."""

    sql: str
    params: dict[str, Any]
    rewrites: tuple[str, ...]
    tables: frozenset[str]


def to_duckdb(tree: exp.Expression) -> tuple[exp.Expression, list[str]]:
    """A copy of a compiled (SQLite) tree that means the same on the mirror in DuckDB.

    - ``INDEXED BY`` / ``NOT INDEXED`` (SQLite planner hints) are dropped;
    - ``total(x)`` (SQLite: a float sum, 0.0 over no value) becomes
      ``COALESCE(SUM(x), CAST(0 AS DOUBLE))``;
    - ``LIKE``: the engine runs with ``PRAGMA case_sensitive_like = OFF``, so it is
      ``ILIKE`` (the ESCAPE clause is kept);
    - a comparison used as a number (the computed age, ``year - (month_day > ?)``)
      is cast to INTEGER: SQLite's booleans are 0/1, DuckDB's are not numbers;
    - ``json_each(?)`` (IN lists over 500 values travel as one JSON text) is
      refused: no suite segment uses it.
    """
    fired: list[str] = []

    def note(rule: str) -> None:
        if rule not in fired:
            fired.append(rule)

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table):
            if isinstance(node.this, exp.Anonymous) and node.this.name.lower() == "json_each":
                raise Untranslatable("json_each(?) as a table (an IN list of more than 500"
                                     " values bound as one JSON text)")
            if node.args.get("indexed") is not None:
                node.set("indexed", None)
                note(HINT)
            return node
        if isinstance(node, exp.Anonymous) and node.name.lower() == "total":
            if len(node.expressions) != 1:
                raise Untranslatable(f"total() with {len(node.expressions)} arguments")
            note(TOTAL)
            return exp.Coalesce(this=exp.Sum(this=node.expressions[0]),
                                expressions=[exp.cast(exp.Literal.number(0), "DOUBLE")])
        if isinstance(node, exp.Like):
            note(LIKE)
            return exp.ILike(this=node.this, expression=node.expression)
        if isinstance(node, exp.Add | exp.Sub):
            for side in ("this", "expression"):
                operand = node.args.get(side)
                inner = operand.unnest() if isinstance(operand, exp.Expression) else None
                if isinstance(inner, exp.Predicate):
                    note(BOOL_ARITH)
                    node.set(side, exp.cast(inner, "INTEGER"))
            return node
        if isinstance(node, exp.Anonymous) and node.name.lower() not in SHARED_FUNCTIONS:
            raise Untranslatable(f"function {node.name}() (not checked against DuckDB)")
        return node

    return tree.copy().transform(rewrite, copy=False), fired


def tables_read(tree: exp.Expression) -> frozenset[str]:
    """The store tables a query reads (aliases and subqueries aside)."""
    return frozenset(node.name for node in tree.find_all(exp.Table) if isinstance(node.this,
                                                                                    exp.Identifier))


def duck_count_query(resolved: ResolvedSegment, catalog: Catalog, as_of: dt.datetime) -> DuckQuery:
    """The count query ``audience.count`` runs, compiled the same way, rendered for DuckDB."""
    counting = count_query(compile_segment(resolved, catalog, as_of))
    tree, fired = to_duckdb(counting.expression)
    sql, values = sb.render(tree, counting.values, "duckdb")
    used = {node.name for node in tree.find_all(exp.Placeholder)}
    params = {f"p{i}": value for i, value in enumerate(values, start=1) if f"p{i}" in used}
    return DuckQuery(sql, params, tuple(fired), tables_read(tree))


# ============================================================================ the mirror


def duck_type(declared: str) -> str:
    """The DuckDB type of a SQLite column, by SQLite's affinity rules (sqlite.org/datatype3)."""
    kind = declared.upper()
    if "INT" in kind:
        return "BIGINT"
    if any(word in kind for word in ("CHAR", "CLOB", "TEXT")):
        return "VARCHAR"
    if "BLOB" in kind or not kind:
        raise ValueError(f"column declared {declared!r} (BLOB affinity): no DuckDB type chosen")
    if any(word in kind for word in ("REAL", "FLOA", "DOUB")):
        return "DOUBLE"
    raise ValueError(f"column declared {declared!r} (NUMERIC affinity): no DuckDB type chosen")


# The storage classes each DuckDB type keeps exactly (a DOUBLE holds the whole numbers of
# epoch seconds exactly: far below 2**53).
STORAGE_CLASSES = {"BIGINT": "'integer'", "VARCHAR": "'text'", "DOUBLE": "'real', 'integer'"}
# Columns whose declared type is wider in the mirror: event times keep fractions of a second
# as REAL values in an INTEGER column (store/schema/values.py).
WIDENED = {("events", "ts"): "DOUBLE"}
NUMPY_DTYPE = {"BIGINT": np.int64, "DOUBLE": np.float64}


@dataclass(frozen=True)
class MirrorColumn:
    name: str
    declared: str
    duck: str
    not_null: bool


def mirror_columns(source: sqlite3.Connection, table: str) -> list[MirrorColumn]:
    """The table's columns in order (an INTEGER PRIMARY KEY is the never-NULL rowid)."""
    rows = source.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    if not rows:
        raise ValueError(f"the store has no table {table!r}")
    return [MirrorColumn(name, declared, WIDENED.get((table, name), duck_type(declared)),
                         bool(not_null) or (bool(pk) and duck_type(declared) == "BIGINT"))
            for _, name, declared, not_null, _, pk in rows]


def check_storage_classes(source: sqlite3.Connection, table: str,
                          columns: list[MirrorColumn]) -> None:
    """Every stored value has the storage class its DuckDB type keeps exactly (one scan)."""
    tests = ", ".join(f"sum(typeof({quote(c.name)}) NOT IN ({STORAGE_CLASSES[c.duck]}, 'null'))"
                      for c in columns)
    found = source.execute(f"SELECT {tests} FROM {quote(table)}").fetchone()
    odd = [f"{c.name}: {n:,}" for c, n in zip(columns, found, strict=True) if n]
    if odd:
        raise ValueError(f"{table}: values of another storage class than declared ({', '.join(odd)});"
                         " the mirror would not keep them as stored")


def _chunks(cursor: sqlite3.Cursor, columns: list[MirrorColumn]) -> Iterator[dict[str, np.ndarray]]:
    """Column arrays of CHUNK rows: typed for never-NULL numbers, objects (None = NULL) else."""
    while rows := cursor.fetchmany(CHUNK):
        arrays: dict[str, np.ndarray] = {}
        for i, (column, values) in enumerate(zip(columns, zip(*rows, strict=True), strict=True)):
            dtype = NUMPY_DTYPE.get(column.duck) if column.not_null else None
            arrays[f"c{i}"] = np.array(values, dtype=dtype or object)
        yield arrays


def _has_rowid(source: sqlite3.Connection, table: str) -> bool:
    try:
        source.execute(f"SELECT rowid FROM {quote(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def copy_table(source: sqlite3.Connection, duck: Any, table: str) -> dict[str, Any]:
    """One store table into the mirror, same name, columns and values, in storage order."""
    columns = mirror_columns(source, table)
    started = time.perf_counter()
    check_storage_classes(source, table, columns)
    check_s = time.perf_counter() - started
    duck.execute(f"CREATE TABLE {quote(table)} ("
                 + ", ".join(f"{quote(c.name)} {c.duck}" for c in columns) + ")")
    order = " ORDER BY rowid" if _has_rowid(source, table) else ""
    cursor = source.execute("SELECT " + ", ".join(quote(c.name) for c in columns)
                            + f" FROM {quote(table)}{order}")
    select = ", ".join(f"CAST(c{i} AS {c.duck})" for i, c in enumerate(columns))
    copied = 0
    for arrays in _chunks(cursor, columns):
        duck.register("chunk", arrays)
        duck.execute(f"INSERT INTO {quote(table)} SELECT {select} FROM chunk")
        duck.unregister("chunk")
        copied += len(arrays["c0"])
    stored = source.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
    mirrored = duck.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
    if stored != mirrored or copied != stored:
        raise RuntimeError(f"{table}: {stored:,} rows in the store, {mirrored:,} in the mirror")
    return {"table": table, "rows": int(stored), "seconds": time.perf_counter() - started,
            "check_seconds": check_s,
            "columns": [f"{c.name} {c.declared}->{c.duck}" for c in columns]}


def build_mirror(store: str, mirror: str, tables: list[str]) -> dict[str, Any]:
    """Make the mirror (in a child process: its memory is reported on its own)."""
    import duckdb

    started = time.perf_counter()
    target = Path(mirror)
    temp = target.with_name(target.name + ".tmp")
    temp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    duck = duckdb.connect(str(temp))
    try:
        copied = [copy_table(source, duck, table) for table in sorted(tables)]
        duck.execute("CREATE TABLE mirror_meta (store VARCHAR, fingerprint VARCHAR, tables VARCHAR)")
        duck.execute("INSERT INTO mirror_meta VALUES (?, ?, ?)",
                     [store, hand.store_fingerprint(Path(store)), ",".join(sorted(tables))])
        duck.execute("CHECKPOINT")
    finally:
        duck.close()
        source.close()
    temp.replace(target)
    return {"seconds": time.perf_counter() - started, "tables": copied,
            "bytes": target.stat().st_size, "peak_mb": peak_rss_mb()}


def mirror_is_current(store: Path, mirror: Path, tables: frozenset[str]) -> bool:
    """Whether the mirror was made from the store as it is now, with every table needed."""
    import duckdb

    if not mirror.exists():
        return False
    try:
        duck = duckdb.connect(str(mirror), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = duck.execute("SELECT fingerprint, tables FROM mirror_meta").fetchone()
    except duckdb.Error:
        return False
    finally:
        duck.close()
    return (row is not None and row[0] == hand.store_fingerprint(store)
            and tables <= set(str(row[1]).split(",")))


def build_hand_copy(store: str, copy: str) -> dict[str, Any]:
    """bench/duckdb_queries.py's typed copy (in a child process), if it is missing or stale."""
    seconds = hand.build_copy(Path(store), Path(copy))
    return {"seconds": seconds, "bytes": Path(copy).stat().st_size, "peak_mb": peak_rss_mb()}


# ============================================================================ the DuckDB process

def duck_ready() -> dict[str, Any]:
    """The DuckDB process before any database is opened: its pid, settings and memory."""
    import duckdb

    duck = duckdb.connect()
    try:
        settings = duck.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit')").fetchone()
        threads, memory = settings if settings is not None else ("?", "?")
    finally:
        duck.close()
    return {"pid": os.getpid(), "version": duckdb.__version__, "threads": threads,
            "memory_limit": memory, "rss_mb": peak_rss_mb()}


def _run(duck: Any, sql: str, params: dict[str, Any]) -> tuple[int, float]:
    started = time.perf_counter()
    value = duck.execute(sql, params).fetchone()[0]
    return int(value), ms_since(started)


def duck_compiled(mirror: str, sql: str, params: dict[str, Any], runs: int) -> dict[str, Any]:
    """The count on the mirror: first run on a fresh connection, then the median of ``runs``."""
    import duckdb

    duck = duckdb.connect(mirror, read_only=True)
    try:
        count, cold = _run(duck, sql, params)
        warm = [_run(duck, sql, params)[1] for _ in range(runs)]
    finally:
        duck.close()
    return {"pid": os.getpid(), "count": count, "cold_ms": cold,
            "warm_ms": statistics.median(warm)}


def duck_hand(copy: str, as_of: dt.date, runs: int, name: str) -> dict[str, Any]:
    """The hand-written query, timed by bench/duckdb_queries.py's own ``measure``."""
    result = hand.measure(Path(copy), as_of, runs, [name])[name]
    return {"pid": os.getpid(), **result}


def duck_peak() -> dict[str, Any]:
    return {"pid": os.getpid(), "peak_mb": peak_rss_mb()}


# ============================================================================ the measurement


@dataclass
class Row:
    name: str
    count: int
    cold_ms: float
    warm_ms: float
    render_cold_ms: float
    render_warm_ms: float
    rewrites: tuple[str, ...]
    compiled: dict[str, Any] = field(default_factory=dict)
    hand: dict[str, Any] = field(default_factory=dict)
    recorded: int | None = None

    @property
    def compiled_cold_ms(self) -> float:
        return float(self.render_cold_ms + self.compiled["cold_ms"])

    @property
    def compiled_warm_ms(self) -> float:
        """Compile + render here and the run in DuckDB: what a count would cost end to end."""
        return float(self.render_warm_ms + self.compiled["warm_ms"])

    @property
    def ours_ratio(self) -> float:
        return self.warm_ms / float(self.hand["warm_ms"])

    @property
    def compiled_ratio(self) -> float:
        return self.compiled_warm_ms / float(self.hand["warm_ms"])

    @property
    def equal(self) -> bool:
        counts = {self.count, int(self.compiled["count"]), int(self.hand["count"])}
        if self.recorded is not None:
            counts.add(self.recorded)
        return len(counts) == 1


def recorded_counts(store: Path, as_of: dt.date) -> dict[str, int]:
    """The suite counts in bench/RESULTS.md, when it was written for this store and date."""
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text(encoding="utf-8")
    if f"`bench/data/{store.name}`" not in text or f"events up to {as_of.isoformat()}" not in text:
        return {}
    section = text.partition("## Exact counts")[2].partition("\n## ")[0]
    return {m.group(1): int(m.group(2).replace(",", ""))
            for m in re.finditer(r"^\| ([a-z0-9-]+)[^|]* \| ([\d,]+) \|", section, re.MULTILINE)}


def measure_ours(store: Path, path: Path, as_of: dt.datetime, runs: int) -> tuple[Row, DuckQuery]:
    """``audience.count`` as bench/run.py times it, and the DuckDB query compiled the same way."""
    conn = open_store(store, readonly=True)
    try:
        catalog = Catalog.load(conn)
        resolved = resolve_file(conn, path)
        counting = partial(audience.count, conn, resolved, as_of, catalog)
        count, cold = timed(counting)
        warm = [timed(counting)[1] for _ in range(runs)]
        rendering = partial(duck_count_query, resolved, catalog, as_of)
        query, render_cold = timed(rendering)
        render_warm = [timed(rendering)[1] for _ in range(runs)]
    finally:
        conn.close()
    row = Row(path.stem, int(count), cold, statistics.median(warm), render_cold,
              statistics.median(render_warm), query.rewrites)
    return row, query


def suite_queries(store: Path, files: list[Path],
                  as_of: dt.datetime) -> dict[str, DuckQuery | Untranslatable]:
    """Every suite segment's DuckDB count query (to know the tables the mirror needs), or
    the construct that stopped its rendering."""
    conn = open_store(store, readonly=True)
    found: dict[str, DuckQuery | Untranslatable] = {}
    try:
        catalog = Catalog.load(conn)
        for path in files:
            try:
                found[path.stem] = duck_count_query(resolve_file(conn, path), catalog, as_of)
            except Untranslatable as error:
                found[path.stem] = error
    finally:
        conn.close()
    return found


def in_child(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` in a fresh process of its own (its memory stays out of ours)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(rows: list[Row]) -> None:
    print("\nms; warm = median of the runs, cold = first run on a fresh connection;"
          " compiled = compile + render (here) + run on the mirror (DuckDB process)")
    header = (f"{'segment':22s} {'count':>9s} | {'ours cold':>9s} {'ours warm':>9s} |"
              f" {'comp cold':>9s} {'comp warm':>9s} {'(render)':>8s} | {'hand cold':>9s}"
              f" {'hand warm':>9s} | {'ours/hand':>9s} {'comp/hand':>9s} | equal")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:22s} {r.count:>9,} | {r.cold_ms:9.1f} {r.warm_ms:9.1f} |"
              f" {r.compiled_cold_ms:9.1f} {r.compiled_warm_ms:9.1f} {r.render_warm_ms:8.1f} |"
              f" {r.hand['cold_ms']:9.1f} {r.hand['warm_ms']:9.1f} |"
              f" {r.ours_ratio:8.1f}x {r.compiled_ratio:8.1f}x | {'yes' if r.equal else 'NO'}")
    print("-" * len(header))
    ours = median([r.ours_ratio for r in rows])
    compiled = median([r.compiled_ratio for r in rows])
    run_only = median([float(r.compiled["warm_ms"]) / float(r.hand["warm_ms"]) for r in rows])
    print(f"median ratio ours-SQLite / hand-written DuckDB:  {ours:.2f}x"
          f" (range {min(r.ours_ratio for r in rows):.1f}x - {max(r.ours_ratio for r in rows):.1f}x)")
    print(f"median ratio compiled-on-DuckDB / hand-written:  {compiled:.2f}x"
          f" (range {min(r.compiled_ratio for r in rows):.1f}x - "
          f"{max(r.compiled_ratio for r in rows):.1f}x); target <= 1.5")
    print(f"  the same without compile + render (the DuckDB run alone): {run_only:.2f}x")
    print(f"median warm: ours {median([r.warm_ms for r in rows]):.1f} ms, compiled-on-DuckDB"
          f" {median([r.compiled_warm_ms for r in rows]):.1f} ms, hand-written"
          f" {median([float(r.hand['warm_ms']) for r in rows]):.1f} ms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Count the suite with the compiled SQL on a DuckDB"
                                                 " mirror of the store, beside ours and hand-written.")
    parser.add_argument("store", type=Path, help="the profile store (SQLite)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True,
                        help="the as-of date (the end of that day)")
    parser.add_argument("--runs", type=int, default=5, help="runs per warm median (default 5)")
    parser.add_argument("--copy", type=Path, default=None,
                        help="the mirror's path (default: <store>.mirror.duckdb beside the store)")
    parser.add_argument("--only", action="append", default=None,
                        help="a segment of bench/segments (repeatable)")
    parser.add_argument("--show-sql", action="store_true", help="print each DuckDB query")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    store: Path = options.store.resolve()
    mirror: Path = (options.copy or store.with_suffix(".mirror.duckdb")).resolve()
    hand_copy = store.with_suffix(".duckdb")
    as_of = as_of_instant(options.as_of)
    files = [f for f in sorted(SEGMENTS.glob("*.yaml"))
             if options.only is None or f.stem in options.only]
    print(f"load average at start: {load_average()}")
    print(f"store {store} ({store.stat().st_size / 1e6:,.0f} MB), as of {as_of.isoformat()},"
          f" {options.runs} runs per warm median, {len(files)} segments")

    queries = suite_queries(store, files, as_of)
    for name, query in queries.items():
        if isinstance(query, Untranslatable):
            print(f"NOT MEASURED {name}: its count query cannot be rendered for DuckDB: {query}")
    files = [f for f in files if isinstance(queries[f.stem], DuckQuery)]
    tables = frozenset().union(*(q.tables for q in queries.values() if isinstance(q, DuckQuery)))
    print(f"tables the compiled count queries read: {', '.join(sorted(tables))}")
    if mirror_is_current(store, mirror, tables):
        print(f"mirror {mirror} is current ({mirror.stat().st_size / 1e6:,.0f} MB; copy time"
              " not measured this run)")
    else:
        print(f"copying the store into the mirror {mirror} (load average {load_average()})")
        built = in_child(build_mirror, str(store), str(mirror), sorted(tables))
        for t in built["tables"]:
            print(f"  {t['table']:16s} {t['rows']:>12,} rows {t['seconds']:7.1f} s"
                  f" (of which storage-class check {t['check_seconds']:.1f} s)")
            print(f"    {', '.join(t['columns'])}")
        print(f"mirror copy: {built['seconds']:.1f} s, {built['bytes'] / 1e6:,.0f} MB on disk,"
              f" copy process peak RSS {built['peak_mb']:,.0f} MB (load average {load_average()})")
    if not hand.copy_is_current(store, hand_copy):
        print(f"making bench/duckdb_queries.py's copy {hand_copy}")
        made = in_child(build_hand_copy, str(store), str(hand_copy))
        print(f"hand-written copy: {made['seconds']:.1f} s, {made['bytes'] / 1e6:,.0f} MB,"
              f" peak RSS {made['peak_mb']:,.0f} MB")
    else:
        print(f"hand-written copy {hand_copy} is current ({hand_copy.stat().st_size / 1e6:,.0f} MB)")
    for path in (store, mirror, hand_copy):
        read_into_os_cache(path)

    recorded = recorded_counts(store, options.as_of)
    context = multiprocessing.get_context("spawn")
    rows: list[Row] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as duck:
        ready = duck.submit(duck_ready).result()
        print(f"DuckDB {ready['version']} in process {ready['pid']}: threads {ready['threads']},"
              f" memory_limit {ready['memory_limit']}; RSS before opening a file"
              f" {ready['rss_mb']:,.0f} MB")
        for path in files:
            row, query = measure_ours(store, path, as_of, options.runs)
            row.compiled = duck.submit(duck_compiled, str(mirror), query.sql, query.params,
                                       options.runs).result()
            row.hand = duck.submit(duck_hand, str(hand_copy), options.as_of, options.runs,
                                   row.name).result()
            row.recorded = recorded.get(row.name)
            rows.append(row)
            print(f"  {row.name:22s} {row.count:>9,}  ours {row.warm_ms:7.1f}  compiled"
                  f" {row.compiled_warm_ms:7.1f}  hand {row.hand['warm_ms']:7.1f} ms"
                  f"{'' if row.equal else '  COUNTS DIFFER'}", flush=True)
            if options.show_sql:
                print(f"    {query.sql}\n    {query.params}")
        pids = {ready["pid"], *(r.compiled["pid"] for r in rows), *(r.hand["pid"] for r in rows)}
        peak = duck.submit(duck_peak).result()
    print_table(rows)

    print("\ncounts: ours (SQLite) / compiled on DuckDB / hand-written / bench/RESULTS.md")
    for r in rows:
        if not r.equal:
            print(f"  {r.name}: {r.count:,} / {r.compiled['count']:,} / {r.hand['count']:,}"
                  f" / {r.recorded if r.recorded is not None else '-'}")
    mismatched = [r.name for r in rows if not r.equal]
    print(f"  {len(rows) - len(mismatched)}/{len(rows)} equal"
          + (" (RESULTS.md included)" if recorded else " (RESULTS.md not for this store/date)"))
    print("\nSQLite-only constructs rewritten for DuckDB (segments):")
    for rule in (HINT, TOTAL, LIKE, BOOL_ARITH):
        users = [r.name for r in rows if rule in r.rewrites]
        print(f"  {rule}: {', '.join(users) if users else 'none'}")
    print(f"\nDuckDB process peak RSS: {peak['peak_mb']:,.0f} MB (one process: {len(pids) == 1};"
          f" {ready['rss_mb']:,.0f} MB before opening a file; both DuckDB files were opened in it)")
    print(f"this process (SQLite counts, compile + render) peak RSS: {peak_rss_mb():,.0f} MB")
    print(f"load average at end: {load_average()}")
    return 1 if mismatched or len(files) < len(queries) else 0


if __name__ == "__main__":
    sys.exit(main())
