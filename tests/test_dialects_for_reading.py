"""``sql --dialect`` for the engines the project does not run: BigQuery, Snowflake, Trino (and Spark).

Every example segment is compiled for each dialect, as ``audiences-tui sql``
does, and rendered from the same tree. The text must parse with sqlglot's
parser for that dialect (no warning about an unsupported construct while it is
written), keep one marker per value, and hold no construct that only SQLite
understands.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from store.engines.dialects import render, rewritten
from store.engines.sqlite import SQLiteConnection, open_store
from store.query.compiler import compile_segment
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from tui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = sorted((ROOT / "sample_data" / "segments").glob("*.yaml"))
AS_OF = dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)
READING_DIALECTS = ("bigquery", "snowflake", "trino", "spark")

# Functions only SQLite has (or has with SQLite's meaning), which the renderer must replace.
SQLITE_ONLY_FUNCTIONS = {"total", "instr", "json_each", "group_concat", "julianday", "ifnull", "printf",
                         "likelihood", "unlikely"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SQLiteConnection]]:
    path = tmp_path_factory.mktemp("reading") / "shop.db"
    generate_sample(path, profiles=300, until=dt.date(2026, 11, 1))
    conn = open_store(path, readonly=True)
    yield path, conn
    conn.close()


def sqlite_only_constructs(tree: exp.Expression, dialect: str) -> list[str]:
    """What in a parsed query only SQLite understands."""
    found = []
    for node in tree.walk():
        if isinstance(node, exp.Table) and node.args.get("indexed") is not None:
            found.append("INDEXED BY / NOT INDEXED")
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in SQLITE_ONLY_FUNCTIONS:
            found.append(f"{str(node.this).lower()}()")
        if isinstance(node, exp.Glob):
            found.append("GLOB")
        if isinstance(node, exp.Substring):
            start = node.args.get("start")
            if isinstance(start, exp.Neg) or (isinstance(start, exp.Literal) and start.this.startswith("-")):
                found.append("substr() from the end")
        if dialect == "bigquery" and isinstance(node, exp.Escape):
            found.append("LIKE ... ESCAPE (BigQuery has none)")
    return found


@pytest.mark.parametrize("dialect", READING_DIALECTS)
def test_every_example_segment_parses_in_the_dialect_with_nothing_sqlite_only(
        dialect: str, sample: tuple[Path, SQLiteConnection]) -> None:
    _, conn = sample
    catalog = Catalog.load(conn)
    for path in SEGMENTS:
        query = compile_segment(resolve_file(conn, path), catalog, AS_OF, dialect)
        tree, _ = rewritten(query.expression, query.values, dialect)
        tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)  # nothing it cannot write
        sql, params = render(query.expression, query.values, dialect)
        parsed = sqlglot.parse_one(sql, read=dialect, error_level=ErrorLevel.RAISE)
        assert len(list(parsed.find_all(exp.Placeholder))) == len(params), (path.stem, sql)
        assert sqlite_only_constructs(parsed, dialect) == [], (path.stem, dialect, sql)
        assert "json_each" not in sql.lower() and "INDEXED" not in sql.upper(), (path.stem, sql)
        # The dialect's own generator writes the parsed query back as a fixed point.
        again = parsed.sql(dialect=dialect)
        assert sqlglot.parse_one(again, read=dialect).sql(dialect=dialect) == again, (path.stem, dialect)


def test_the_checker_sees_what_sqlite_alone_writes(sample: tuple[Path, SQLiteConnection]) -> None:
    """The SQLite rendering of the same segments does hold such constructs, so the test above
    can fail."""
    _, conn = sample
    catalog = Catalog.load(conn)
    seen: set[str] = set()
    for path in SEGMENTS:
        query = compile_segment(resolve_file(conn, path), catalog, AS_OF)
        sql, _ = render(query.expression, query.values, "sqlite")
        seen.update(sqlite_only_constructs(sqlglot.parse_one(sql, read="sqlite"), "sqlite"))
    assert "INDEXED BY / NOT INDEXED" in seen
    assert "total()" in seen


@pytest.mark.parametrize("dialect", READING_DIALECTS)
def test_sql_command_prints_the_dialect(dialect: str, sample: tuple[Path, SQLiteConnection]) -> None:
    path, _ = sample
    segment = ROOT / "sample_data" / "segments" / "apple-mail-openers.yaml"
    result = CliRunner().invoke(cli, ["sql", str(segment), "--db", str(path), "--dialect", dialect,
                                      "--as-of", "2026-11-01"])
    assert result.exit_code == 0, result.output
    body = "\n".join(line for line in result.output.splitlines() if not line.startswith("--"))
    parsed = sqlglot.parse_one(body.rstrip().rstrip(";"), read=dialect, error_level=ErrorLevel.RAISE)
    assert sqlite_only_constructs(parsed, dialect) == []
    assert re.search(r"translate\(", body, re.IGNORECASE), body  # ASCII-only folding, not lower()
