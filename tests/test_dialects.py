"""One query tree, rendered for SQLite, DuckDB and PostgreSQL (store/engines/dialects.py).

Every example segment is compiled against a small sample store and run on the
SQLite file and on copies of its tables in DuckDB and PostgreSQL: the members
must be the same. Then each place where the engines differ from SQLite is
checked on a tiny table, against SQLite's own answer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from store.engines.dialects import DIALECTS, positional, render
from store.engines.postgres import pyformat
from store.engines.sqlite import SQLiteConnection, open_store
from store.query import sqlbuild as sb
from store.query.compiler import (
    CompiledQuery,
    compile_segment,
    count_query,
    in_pk_order,
    membership,
    pk_column,
    profiles_select,
)
from store.query.predicates import Predicates, Target
from store.sample.generator import generate_sample
from store.schema.activity import ACTIVITY_TABLE
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from store.segments.model import AttributeCondition
from tests.services.fixtures import connect, fresh_schema

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = sorted((ROOT / "sample_data" / "segments").glob("*.yaml"))
UNTIL = dt.date(2026, 11, 1)
AS_OF = dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 15)
ENGINES = ("sqlite", "duckdb", "postgres")

Rows = list[tuple[Any, ...]]
Run = Callable[[exp.Expression, Sequence[Any]], Rows]


# ---------------------------------------------------------------------- copying a store


def store_tables(conn: sqlite3.Connection) -> list[str]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'entity\\_%' ESCAPE '\\'")]
    return ["profiles", "events", ACTIVITY_TABLE, *sorted(names)]


def column_types(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(column, type) with the store's encodings: BIGINT, DOUBLE (and event times), text."""
    columns = []
    for _, name, declared, *_ in conn.execute(f'PRAGMA table_info("{table}")'):
        kind = str(declared).upper()
        if name in ("ts", "last_ts") or kind in ("REAL", "DOUBLE", "FLOAT"):
            columns.append((name, "DOUBLE"))
        elif kind.startswith("INT"):
            columns.append((name, "BIGINT"))
        else:
            columns.append((name, "TEXT"))
    return columns


def copy_to_duckdb(source: sqlite3.Connection, target: duckdb.DuckDBPyConnection) -> None:
    for table in store_tables(source):
        columns = column_types(source, table)
        target.execute(f'CREATE TABLE "{table}" ('
                       + ", ".join(f'"{name}" {kind}' for name, kind in columns) + ")")
        rows = source.execute(f'SELECT * FROM "{table}"').fetchall()
        load_duckdb(target, table, columns, rows)


def load_duckdb(target: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]],
                rows: Rows) -> None:
    """Rows in one statement, column by column (``UNNEST`` of one list per column)."""
    if not rows:
        return
    lists = [list(values) for values in zip(*rows, strict=True)]
    target.execute(f'INSERT INTO "{table}" SELECT '
                   + ", ".join(f"UNNEST(CAST(? AS {kind}[]))" for _, kind in columns), lists)


def create_postgres(conn: Any, table: str, columns: list[tuple[str, str]], rows: Rows) -> None:
    kinds = {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE PRECISION", "TEXT": 'TEXT COLLATE "C"'}
    names = ", ".join(f'"{name}"' for name, _ in columns)
    conn.execute(f'CREATE TABLE "{table}" ('
                 + ", ".join(f'"{name}" {kinds[kind]}' for name, kind in columns) + ")")
    with conn.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def copy_to_postgres(source: sqlite3.Connection, target: Any) -> None:
    for table in store_tables(source):
        create_postgres(target, table, column_types(source, table),
                        source.execute(f'SELECT * FROM "{table}"').fetchall())
        target.execute(f'ANALYZE "{table}"')


# ---------------------------------------------------------------------- the sample store


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteConnection]:
    path = tmp_path_factory.mktemp("dialects") / "shop.db"
    generate_sample(path, profiles=2000, until=UNTIL)
    conn = open_store(path, readonly=True)
    conn.execute("PRAGMA case_sensitive_like = OFF")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def compiled(sample: SQLiteConnection) -> dict[str, CompiledQuery]:
    catalog = Catalog.load(sample)
    return {path.stem: compile_segment(resolve_file(sample, path), catalog, AS_OF)
            for path in SEGMENTS}


@pytest.fixture(scope="module")
def compiled_natively(sample: SQLiteConnection) -> dict[tuple[str, str], CompiledQuery]:
    """The segments compiled for DuckDB and PostgreSQL themselves (no SQLite index hints, no
    per-profile probes, no JSON lists)."""
    catalog = Catalog.load(sample)
    return {(dialect, path.stem): compile_segment(resolve_file(sample, path), catalog, AS_OF, dialect)
            for dialect in ("duckdb", "postgres") for path in SEGMENTS}


@pytest.fixture(scope="module")
def sample_duckdb(sample: sqlite3.Connection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    copy_to_duckdb(sample, conn)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def sample_postgres(sample: sqlite3.Connection, postgres_url: str) -> Iterator[Any]:
    conn = connect(fresh_schema(postgres_url))
    copy_to_postgres(sample, conn)
    yield conn
    conn.close()


def derived_queries(query: CompiledQuery, native: CompiledQuery
                    ) -> dict[str, tuple[exp.Expression, tuple[Any, ...]]]:
    """The segment's own query, its count, a keyset page (ORDER BY, LIMIT) and breakdowns, as
    trees; and the query compiled for the engine itself, with its count."""
    counted = count_query(query)
    binder = sb.Binder()
    binder.values.extend(query.values)
    where = sb.conjunction([membership(query),
                            exp.GT(this=pk_column(), expression=binder.bind(10))])
    page = (in_pk_order(profiles_select(where, pk_column(), sb.column("id")))
            .order_by(exp.Ordered(this=pk_column(), nulls_first=True))
            .limit(binder.bind(25)))
    return {"members": (query.expression, query.values),
            "count": (counted.expression, counted.values),
            "page": (page, tuple(binder.values)),
            "breakdown": breakdown(query, sb.column("gender"), "string"),
            "months": breakdown(query, sb.column("signup_date"), "date"),
            "native members": (native.expression, native.values),
            "native count": (count_query(native).expression, native.values)}


def breakdown(query: CompiledQuery, column: exp.Column, kind: str
              ) -> tuple[exp.Expression, tuple[Any, ...]]:
    """The members grouped by a value (the way store.query.audience.breakdown asks): the
    missing first, then the largest groups, ties by value, with the total of all groups."""
    binder = sb.Binder()
    binder.values.extend(query.values)
    value: exp.Expression
    if kind == "string":
        value = exp.Nullif(this=column, expression=binder.bind(""))
    else:
        value = exp.Substring(this=column, start=binder.bind(1), length=binder.bind(7))
    groups = (in_pk_order(profiles_select(membership(query), exp.Alias(this=value, alias=sb.ident("v")),
                                          exp.Alias(this=exp.Count(this=exp.Star()),
                                                    alias=sb.ident("n"))))
              .group_by(sb.column("v")))
    v, n = sb.column("v"), sb.column("n")
    ranked = (exp.select(v, n, exp.Alias(this=exp.Window(this=exp.Sum(this=n.copy())),
                                         alias=sb.ident("total")))
              .from_(exp.Subquery(this=groups, alias=exp.TableAlias(this=sb.ident("g"))))
              .order_by(exp.Ordered(this=sb.is_null(v), desc=True, nulls_first=True),
                        exp.Ordered(this=n.copy(), desc=True, nulls_first=True),
                        exp.Ordered(this=v.copy(), nulls_first=True))
              .limit(binder.bind(6)))
    return ranked, tuple(binder.values)


def in_order(tree: exp.Expression, rows: Rows) -> Rows:
    """Rows in the query's own order when it has an ORDER BY, else sorted."""
    rows = [tuple(row) for row in rows]
    return rows if tree.args.get("order") is not None else sorted(rows, key=repr)


def sqlite_answer(sample: sqlite3.Connection, tree: exp.Expression, values: Sequence[Any]) -> Rows:
    sql, params = render(tree, values, "sqlite")
    return in_order(tree, sample.execute(sql, params).fetchall())


def test_sqlite_rendering_is_the_compilers(compiled: dict[str, CompiledQuery]) -> None:
    for name, query in compiled.items():
        assert render(query.expression, query.values, "sqlite") == (query.sql, query.params), name
        counted = count_query(query)
        assert render(counted.expression, counted.values, "sqlite") == (counted.sql, counted.params)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["'", '"', "`", ":p1", ":p2", ":p", ":p12x", "''", "a", " ", "?"]),
                max_size=30))
def test_positional_rewrites_like_the_compilers(pieces: list[str]) -> None:
    text = "".join(pieces)
    values = [f"v{i}" for i in range(1, 13)]
    assert positional(text, values) == scanned_positional(text, values)


def scanned_positional(text: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """The compiler's former character scan: ``:pN`` outside quotes (doubled quotes escaping,
    an unclosed quote running to the end) becomes ``?``, with its value."""
    out: list[str] = []
    params: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"`":
            end = i + 1
            while end < n:
                if text[end] == char:
                    if end + 1 < n and text[end + 1] == char:
                        end += 2
                        continue
                    end += 1
                    break
                end += 1
            else:
                end = n
            out.append(text[i:end])
            i = end
            continue
        if text.startswith(":p", i):
            j = i + 2
            while j < n and text[j].isdigit():
                j += 1
            if j > i + 2:
                params.append(values[int(text[i + 2:j]) - 1])
                out.append("?")
                i = j
                continue
        out.append(char)
        i += 1
    return "".join(out), tuple(params)


def test_every_dialect_renders_every_segment(compiled: dict[str, CompiledQuery]) -> None:
    for name, query in compiled.items():
        before = query.expression.sql(dialect="sqlite")
        for dialect in DIALECTS:
            sql, params = render(query.expression, query.values, dialect)
            markers = len(re.findall(r"\?", sql))
            assert markers == len(params), (name, dialect, sql)
            assert "INDEXED" not in sql or dialect == "sqlite"
            assert "json_each" not in sql.lower() or dialect == "sqlite"
        assert query.expression.sql(dialect="sqlite") == before, "the caller's tree changed"


@pytest.mark.parametrize("segment", [path.stem for path in SEGMENTS])
def test_duckdb_finds_the_same_members(segment: str, sample: sqlite3.Connection,
                                       compiled: dict[str, CompiledQuery],
                                       compiled_natively: dict[tuple[str, str], CompiledQuery],
                                       sample_duckdb: duckdb.DuckDBPyConnection) -> None:
    native = compiled_natively["duckdb", segment]
    for shape, (tree, values) in derived_queries(compiled[segment], native).items():
        sql, params = render(tree, values, "duckdb")
        got = in_order(tree, sample_duckdb.execute(sql, list(params)).fetchall())
        assert got == sqlite_answer(sample, tree, values), (segment, shape, sql)


@pytest.mark.parametrize("segment", [path.stem for path in SEGMENTS])
def test_postgres_finds_the_same_members(segment: str, sample: sqlite3.Connection,
                                         compiled: dict[str, CompiledQuery],
                                         compiled_natively: dict[tuple[str, str], CompiledQuery],
                                         sample_postgres: Any) -> None:
    native = compiled_natively["postgres", segment]
    for shape, (tree, values) in derived_queries(compiled[segment], native).items():
        sql, params = render(tree, values, "postgres")
        got = in_order(tree, sample_postgres.execute(pyformat(sql), params).fetchall())
        assert got == sqlite_answer(sample, tree, values), (segment, shape, sql)


def test_the_segments_are_not_all_empty(sample: sqlite3.Connection,
                                        compiled: dict[str, CompiledQuery]) -> None:
    """The comparisons above mean something only if most audiences have members."""
    sizes = {name: len(sample.execute(q.sql, q.params).fetchall()) for name, q in compiled.items()}
    assert sum(1 for size in sizes.values() if size > 0) >= len(sizes) * 9 // 10, sizes


# ---------------------------------------------------------------------- the traps, one by one

COLUMNS = [("pk", "BIGINT"), ("s", "TEXT"), ("n", "BIGINT"), ("x", "DOUBLE"), ("d", "TEXT"),
           ("k", "TEXT")]
ROWS: Rows = [
    (1, "Alice", 3, 1.5, "1980-03-15", "\u212aelvin \u0130stanbul"),
    (2, "ÉCOLE normale", -2, None, "2000-02-29", None),
    (3, "école", None, 0.1, "1980-03-16", None),
    (4, "100%_off", 7, 0.2, None, None),
    (5, None, 0, 0.7, "2026-03-15", None),
    (6, "a\\b", 10, -1.25, "1999-12-31", None),
    (7, "STRASSE straße", 2, 0.1, "2026-03-16", None),
    (8, "ǅemal Ωmega", 5, None, "1926-03-15", None),
    (9, "", 1, 0.3, "2010-01-01T08:30:00", None),
]


@pytest.fixture(scope="module")
def tiny_sqlite() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (pk INTEGER PRIMARY KEY, s TEXT, n INTEGER, x REAL, d TEXT, k TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    conn.execute("CREATE INDEX t_index ON t(s)")
    conn.execute("PRAGMA case_sensitive_like = OFF")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def tiny_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (" + ", ".join(f"{n} {k}" for n, k in COLUMNS) + ")")
    load_duckdb(conn, "t", COLUMNS, ROWS)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def tiny_postgres(postgres_url: str) -> Iterator[Any]:
    conn = connect(fresh_schema(postgres_url))
    create_postgres(conn, "t", COLUMNS, ROWS)
    yield conn
    conn.close()


@pytest.fixture(params=ENGINES)
def run(request: pytest.FixtureRequest) -> Run:
    """Render a tree for one engine and run it on the tiny table there."""
    dialect = request.param
    conn = request.getfixturevalue(f"tiny_{dialect}")

    def execute(tree: exp.Expression, values: Sequence[Any]) -> Rows:
        sql, params = render(tree, values, dialect)
        if dialect == "duckdb":
            return [tuple(row) for row in conn.execute(sql, list(params)).fetchall()]
        if dialect == "postgres":  # a raw psycopg connection: its own markers
            sql = pyformat(sql)
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]

    return execute


def pks_where(run: Run, condition: Callable[[Predicates, exp.Expression], exp.Expression],
              column: str = "s") -> list[int]:
    """The pks of the tiny table's rows a condition (built by the compiler's predicates) holds for."""
    binder = sb.Binder()
    predicates = Predicates(binder, TODAY)
    where = condition(predicates, sb.column(column))
    query = exp.select(pk_column()).from_(sb.table("t")).where(where).order_by(pk_column())
    return [row[0] for row in run(query, binder.values)]


def like(op: str, value: str) -> Callable[[Predicates, exp.Expression], exp.Expression]:
    return lambda p, column: p.guard(column, p.like(op, value, column))


def long_like(op: str, value: str) -> Callable[[Predicates, exp.Expression], exp.Expression]:
    return lambda p, column: p.guard(column, p.long_like(op, value, column))


@pytest.mark.parametrize("matcher", [like, long_like])
def test_case_folds_ascii_letters_only(run: Run, matcher: Callable[..., Any]) -> None:
    assert pks_where(run, matcher("contains", "ALI")) == [1]
    assert pks_where(run, matcher("contains", "éc")) == [3]  # not ÉCOLE: É is not ASCII
    assert pks_where(run, matcher("contains", "ÉC")) == [2]
    assert pks_where(run, matcher("starts_with", "école")) == [3]
    assert pks_where(run, matcher("contains", "strasse")) == [7]
    assert pks_where(run, matcher("contains", "STRAßE")) == [7]  # ß is left alone, ASCII folds
    assert pks_where(run, matcher("contains", "ω")) == []  # Ω does not fold
    assert pks_where(run, matcher("contains", "ǆ")) == []
    assert pks_where(run, matcher("ends_with", "MEGA")) == [8]
    assert pks_where(run, matcher("ends_with", "Ωmega")) == [8]
    assert pks_where(run, matcher("ends_with", "AL")) == []
    assert pks_where(run, matcher("starts_with", "ǅEMAL")) == [8]
    # KELVIN SIGN and I WITH DOT ABOVE lower-case to ASCII k and i elsewhere: never here
    assert pks_where(run, matcher("starts_with", "kelvin"), "k") == []
    assert pks_where(run, matcher("contains", "istanbul"), "k") == []
    assert pks_where(run, matcher("contains", "ELVIN \u0130ST"), "k") == [1]


def test_like_takes_percent_underscore_and_backslash_literally(run: Run) -> None:
    assert pks_where(run, like("starts_with", "100%_")) == [4]
    assert pks_where(run, like("contains", "%")) == [4]
    assert pks_where(run, like("contains", "_")) == [4]
    assert pks_where(run, like("contains", "a\\B")) == [6]
    assert pks_where(run, like("ends_with", "")) == [1, 2, 3, 4, 6, 7, 8, 9]


def test_ilike_and_lower_upper_fold_ascii_only(run: Run) -> None:
    column = sb.column("s")
    ilike = exp.ILike(this=column.copy(), expression=exp.Placeholder(this="p1"))
    query = exp.select(pk_column()).from_(sb.table("t")).where(ilike).order_by(pk_column())
    assert [r[0] for r in run(query, ["%é%"])] == [3]
    folded = exp.select(exp.Lower(this=column.copy()), exp.Upper(this=column.copy()),
                        exp.Lower(this=exp.Placeholder(this="p1"))).from_(sb.table("t")).where(
        exp.In(this=pk_column(), expressions=[exp.Literal.number(2), exp.Literal.number(8)])
    ).order_by(pk_column())
    assert run(folded, ["ÀB"]) == [("École normale", "ÉCOLE NORMALE", "Àb"),
                                   ("ǅemal Ωmega", "ǅEMAL ΩMEGA", "Àb")]


@pytest.mark.parametrize("values", [
    [f"v{i}" for i in range(700)] + ["Alice", "école", "a\\b"],
    list(range(-5, 700)),
    [i / 4 for i in range(-20, 700)],
])
def test_a_long_list_is_one_value(run: Run, values: list[Any]) -> None:
    column = {str: "s", int: "n", float: "x"}[type(values[-1])]
    expected = {str: [1, 3, 6], int: [1, 2, 4, 5, 6, 7, 8, 9], float: [1, 6]}
    assert pks_where(run, lambda p, c: p.guard(c, p.member(c, values)), column) == \
        expected[type(values[-1])]
    negated = pks_where(run, lambda p, c: sb.negate(p.guard(c, p.member(c, values))), column)
    assert sorted(negated + expected[type(values[-1])]) == list(range(1, 10))


def test_a_long_list_on_other_engines_lists_each_value() -> None:
    binder = sb.Binder()
    predicates = Predicates(binder, TODAY)
    where = predicates.member(sb.column("s"), [f"v{i}" for i in range(600)])
    sql, params = render(exp.select(pk_column()).from_(sb.table("t")).where(where),
                         binder.values, "trino")
    assert sql.count("?") == 600 and params == tuple(f"v{i}" for i in range(600))


def test_age_arithmetic_on_a_comparison(run: Run) -> None:
    binder = sb.Binder()
    predicates = Predicates(binder, TODAY)
    age = predicates.age_expression(sb.column("d"))
    query = exp.select(pk_column(), age).from_(sb.table("t")).order_by(pk_column())
    ages = [row[1] for row in run(query, binder.values)]
    assert ages == [46, 26, 45, None, 0, 26, -1, 100, 16]


def test_age_in_many_ranges_compares_the_computed_age(run: Run) -> None:
    ages = list(range(0, 200, 2))  # 100 disjoint ranges: more than MAX_AGE_RANGES
    condition = AttributeCondition("age", "in", ages)
    found = pks_where(run, lambda p, c: p.condition(condition, Target(c, "integer", age=True),
                                                      "rule"), "d")
    assert found == [1, 2, 5, 6, 8, 9]


def test_total_is_a_float_sum_and_zero_over_no_row(run: Run) -> None:
    def total(column: str) -> exp.Expression:
        return exp.Anonymous(this="total", expressions=[sb.column(column)])

    query = exp.select(total("n"), total("x"), exp.Count(this=exp.Star())).from_(
        sb.table("t")).where(exp.GT(this=pk_column(), expression=exp.Placeholder(this="p1")))
    assert run(query, [100]) == [(0.0, 0.0, 0)]
    n_sum, x_sum, _ = run(query, [0])[0]
    assert (n_sum, type(n_sum)) == (26.0, float)
    assert x_sum == pytest.approx(1.65)
    having = (exp.select(pk_column()).from_(sb.table("t")).group_by(pk_column())
              .having(exp.GTE(this=total("x"), expression=exp.Placeholder(this="p1")))
              .order_by(pk_column()))
    assert [r[0] for r in run(having, [0])] == [1, 2, 3, 4, 5, 7, 8, 9]  # NULL sums to 0.0


def test_avg_of_integers_is_a_float(run: Run) -> None:
    query = exp.select(exp.Avg(this=sb.column("n"))).from_(sb.table("t")).where(
        exp.In(this=pk_column(), expressions=[exp.Literal.number(1), exp.Literal.number(2)]))
    assert run(query, []) == [(0.5,)]


def test_division_keeps_sqlite_semantics(run: Run) -> None:
    p = [exp.Placeholder(this=f"p{i}") for i in range(1, 5)]
    query = exp.select(
        exp.Div(this=p[0].copy(), expression=p[1].copy(), typed=True),  # integers: 3
        exp.Div(this=p[0].copy(), expression=p[1].copy()),  # sqlglot's plain division: 3.5
        exp.Div(this=p[2].copy(), expression=p[1].copy(), typed=True),  # a float: 3.75
        exp.Div(this=p[0].copy(), expression=p[3].copy(), typed=True),  # by zero: NULL
        exp.Div(this=p[2].copy(), expression=p[3].copy()),  # by zero: NULL
    )
    assert run(query, [7, 2, 7.5, 0]) == [(3, 3.5, 3.75, None, None)]


def test_negative_substring_start_counts_from_the_end(run: Run) -> None:
    column = sb.column("s")
    query = exp.select(
        exp.Substring(this=column.copy(), start=exp.Placeholder(this="p1")),
        exp.Substring(this=column.copy(), start=exp.Neg(this=exp.Length(
            this=exp.Placeholder(this="p2")))),
        exp.Substring(this=column.copy(), start=exp.Placeholder(this="p1"),
                      length=exp.Placeholder(this="p3")),
        exp.Substring(this=column.copy(), start=exp.Placeholder(this="p4"),
                      length=exp.Placeholder(this="p3")),
        exp.Substring(this=column.copy(), start=exp.Placeholder(this="p3"),
                      length=exp.Placeholder(this="p3")),
        exp.Anonymous(this="instr", expressions=[column.copy(), exp.Placeholder(this="p5")]),
    ).from_(sb.table("t")).where(exp.In(this=pk_column(), expressions=[
        exp.Literal.number(1), exp.Literal.number(8), exp.Literal.number(9)])).order_by(pk_column())
    assert run(query, [-3, "xyzw", 2, -7, "e"]) == [
        ("ice", "lice", "ic", "", "li", 5),
        ("ega", "mega", "eg", "l ", "em", 2),
        ("", "", "", "", "", 0),
    ]


def test_integer_cast_is_64_bit(run: Run) -> None:
    query = exp.select(exp.Cast(this=exp.Placeholder(this="p1"), to=exp.DataType.build("INTEGER")),
                       exp.Cast(this=exp.Placeholder(this="p2"), to=exp.DataType.build("REAL")))
    assert run(query, ["9000000000", "0.1"]) == [(9_000_000_000, 0.1)]


def test_hints_unaliased_subqueries_and_literal_percent(run: Run) -> None:
    hinted = sb.table("t")
    hinted.set("indexed", False)
    first = exp.select(pk_column()).from_(hinted).where(
        exp.LT(this=pk_column(), expression=exp.Placeholder(this="p1")))
    named = sb.table("t")
    named.set("indexed", sb.ident("t_index"))
    second = exp.select(pk_column()).from_(named).where(
        sb.column("s").eq(exp.Literal.string("100%_off")))
    third = exp.select(pk_column()).from_(sb.table("t")).where(
        exp.GT(this=pk_column(), expression=exp.Placeholder(this="p2")))
    query = sb.intersect([sb.union([first, second]), third])  # SELECT * FROM (... UNION ...)
    ordered = exp.select(exp.Star()).from_(exp.Subquery(this=query)).order_by(pk_column())
    assert run(ordered, [3, 1]) == [(2,), (4,)]


def test_parameters_follow_the_text_not_the_numbering(run: Run) -> None:
    query = exp.select(exp.Placeholder(this="p3"), exp.Literal.string(":p1 $p2 %(p1)s ?"),
                       exp.Placeholder(this="p1"), exp.Placeholder(this="p2"),
                       exp.Placeholder(this="p3"))
    assert run(query, ["one", "two", "three"]) == [("three", ":p1 $p2 %(p1)s ?", "one", "two", "three")]


def test_the_callers_tree_is_left_alone() -> None:
    binder = sb.Binder()
    predicates = Predicates(binder, TODAY)
    column = sb.column("s")
    where = sb.conjunction([predicates.like("contains", "Abc", column),
                            predicates.long_like("ends_with", "Xyz", column),
                            predicates.member(column, [str(i) for i in range(600)])])
    table = sb.table("t")
    table.set("indexed", False)
    tree = exp.select(predicates.age_expression(sb.column("d"))).from_(table).where(where)
    before, values = tree.sql(dialect="sqlite"), list(binder.values)
    for dialect in DIALECTS:
        render(tree, binder.values, dialect)
    assert tree.sql(dialect="sqlite") == before and binder.values == values


def test_postgres_markers_become_psycopg_markers_with_every_other_percent_doubled() -> None:
    tree = exp.select(exp.Literal.string("50%"), exp.Placeholder(this="p1"),
                      exp.Mod(this=exp.Literal.number(7), expression=exp.Literal.number(2)))
    sql, params = render(tree, ["x"], "postgres")
    assert sql == "SELECT '50%', ?, 7 % NULLIF(2, 0)" and params == ("x",)
    assert pyformat(sql) == "SELECT '50%%', %s, 7 %% NULLIF(2, 0)"


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        render(exp.select(exp.Literal.number(1)), [], "oracle-ish")


def test_backslash_dialects_skip_escaped_quotes() -> None:
    tree = exp.select(exp.Literal.string("it's :p1 \\"), exp.Placeholder(this="p1"))
    for dialect in ("spark", "bigquery", "snowflake"):
        sql, params = render(tree, ["v"], dialect)
        assert params == ("v",) and sql.count("?") == 1, (dialect, sql)


def test_json_each_payload_decodes_to_the_values() -> None:
    payload = json.dumps(["a", "b"])
    select = sb.json_values(exp.Placeholder(this="p1"))
    tree = exp.select(pk_column()).from_(sb.table("t")).where(
        sb.column("s").isin(query=select, copy=False))
    assert render(tree, [payload], "postgres")[1] == (["a", "b"],)
    assert render(tree, [payload], "duckdb")[1] == (["a", "b"],)
    assert render(tree, [payload], "spark")[1] == ("a", "b")


def test_duckdb_folds_an_ascii_pattern_with_ilike_and_keeps_translate_for_the_rare_texts() -> None:
    binder = sb.Binder()
    where = Predicates(binder, TODAY).like("ends_with", "@Gmail.com", sb.column("s"))
    sql, params = render(exp.select(pk_column()).from_(sb.table("t")).where(where), binder.values, "duckdb")
    assert '"s" ILIKE ?' in sql and 'TRANSLATE("s"' in sql and "CASE WHEN" in sql
    assert "ESCAPE" not in sql  # DuckDB has no default escape character: none is needed here
    assert params == ("%@gmail.com", "%@gmail.com")
    binder = sb.Binder()
    where = Predicates(binder, TODAY).like("ends_with", "_1%", sb.column("s"))
    sql, params = render(exp.select(pk_column()).from_(sb.table("t")).where(where), binder.values, "duckdb")
    assert sql.count("ESCAPE") == 2 and params == ("%\\_1\\%", "%\\_1\\%")
    sql, _ = render(exp.select(pk_column()).from_(sb.table("t")).where(
        Predicates(sb.Binder(), TODAY).like("contains", "é", sb.column("s"))), ["%é%"], "duckdb")
    assert "ILIKE" not in sql  # a pattern with other letters: translate() alone
