"""Source files: a team's own tables (DuckDB, Parquet, PostgreSQL) read in place as a profile store.

A small sample store is written out as native tables (booleans, DATE,
TIMESTAMPTZ, NUMERIC, text ids) and mapped by a source file; every example
segment must select the same profiles there as in the store it came from, and
counts, "why", saved segments and activation must work without writing to the
source's database.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from store.campaign.activation import activate
from store.campaign.store import open_campaign
from store.engines.base import Connection, engine_for
from store.engines.source import SourceEngine, classify
from store.errors import InputError, StoreError
from store.query import audience
from store.query.evaluator import evaluate_all
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.segments.library import list_segments, resolve_file, resolve_saved, save_segment
from tests.services.fixtures import connect, fresh_schema
from tests.source_tables import (
    assert_overlap_and_trend_match,
    native_tables,
    write_duckdb,
    write_postgres,
    write_source_file,
)
from tui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = sorted((ROOT / "sample_data" / "segments").glob("*.yaml"))
AS_OF = dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)
KINDS = ("duckdb", "parquet", "postgres")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "shop.db"
    generate_sample(path, profiles=400, until=dt.date(2026, 11, 1))
    return path


@pytest.fixture(scope="module")
def tables(sample: Path) -> tuple[list[Any], dict[str, Any]]:
    return native_tables(sample)


@pytest.fixture(scope="module")
def parquet_files(tables: tuple[list[Any], dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's tables as Parquet files, in a folder of their own."""
    folder = tmp_path_factory.mktemp("parquet")
    conn = duckdb.connect()
    write_duckdb(conn, tables[0], parquet=folder)
    conn.close()
    return folder


@pytest.fixture(scope="module", params=KINDS)
def source(request: pytest.FixtureRequest, tables: tuple[list[Any], dict[str, Any]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[SourceEngine]:
    """The sample's tables in one database, and the source file mapping them."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"source-{kind}")
    data, mapping = tables
    if kind == "duckdb":
        conn = duckdb.connect(str(folder / "warehouse.duckdb"))
        write_duckdb(conn, data)
        conn.close()
        path = write_source_file(folder / "shop.yaml", "warehouse.duckdb", mapping)
    elif kind == "parquet":
        files = request.getfixturevalue("parquet_files")  # beside them: the paths are relative
        path = write_source_file(files / "shop.yaml", "duckdb", mapping, lambda name: f"{name}.parquet")
    else:
        url = fresh_schema(request.getfixturevalue("postgres_url"))
        with connect(url) as pg:
            write_postgres(pg, data)
        schema = url.rsplit("schema=", 1)[1]
        base = url.rsplit("&schema=", 1)[0].rsplit("?schema=", 1)[0]
        path = write_source_file(folder / "shop.yaml", base, mapping, lambda name: f"{schema}.{name}")
    engine = engine_for(path)
    assert isinstance(engine, SourceEngine)
    yield engine
    engine.release()


def ids_of(conn: Connection, pks: set[int]) -> set[str]:
    return {str(row[1]) for row in conn.execute("SELECT pk, id FROM profiles") if row[0] in pks}


def test_every_example_segment_selects_the_same_profiles_as_the_store(source: SourceEngine,
                                                                       sample: Path) -> None:
    store = engine_for(sample).open_store(readonly=True)
    conn = source.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        assert audience.total(conn) == audience.total(store)
        for path in SEGMENTS:
            expected = set(audience.member_ids(store, resolve_file(store, path), AS_OF))
            resolved = resolve_file(conn, path)
            assert set(audience.member_ids(conn, resolved, AS_OF, catalog)) == expected, path.stem
            assert audience.count(conn, resolved, AS_OF) == len(expected), path.stem
            # the reference evaluator reads the same views, profile by profile
            assert ids_of(conn, evaluate_all(conn, resolved, AS_OF, catalog)) == expected, path.stem
    finally:
        conn.close()
        store.close()


def test_types_come_from_the_catalog_and_labels_from_the_file(source: SourceEngine) -> None:
    conn = source.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
    finally:
        conn.close()
    types = {name: a.type for name, a in catalog.attributes.items()}
    assert types["email_opt_in"] == "boolean" and types["birth_date"] == "date"
    assert types["signup_date"] == "datetime" and types["lifetime_value"] == "number"
    assert catalog.attributes["age"].derived_from == "age:birth_date"
    assert set(catalog.event_types) >= {"purchase", "page_view"}
    assert catalog.entities["product"].fields["price"].type == "number"


def test_saved_segments_go_to_the_local_file_and_activation_streams_members(
        source: SourceEngine, tmp_path: Path) -> None:
    conn = source.open_store(readonly=True)
    try:
        resolved = next(r for r in (resolve_file(conn, path) for path in SEGMENTS)
                        if audience.count(conn, r, AS_OF) > 20)
        save_segment(conn, resolved)
        assert [s.id for s in list_segments(conn)] == [resolved.segment.id]
        assert source.file.segments.is_file()
        with sqlite3.connect(source.file.segments) as local:
            assert local.execute("SELECT id FROM segments").fetchall() == [(resolved.segment.id,)]
        expected = audience.count(conn, resolve_saved(conn, resolved.segment.id), AS_OF)
        campaign = open_campaign(tmp_path / "campaign.db")
        try:
            result = activate(conn, campaign, resolved, AS_OF, fields=("email",))
        finally:
            campaign.close()
    finally:
        conn.close()
    assert result.count == expected and expected > 0
    with sqlite3.connect(tmp_path / "campaign.db") as check:
        assert check.execute("SELECT count(*) FROM audience_members").fetchone()[0] == expected


def test_nothing_is_written_to_the_source(source: SourceEngine) -> None:
    conn = source.open_store(readonly=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            source.begin_write(conn)
        if source.base.location != ":memory:":  # Parquet alone: a scratch database in memory
            with pytest.raises(sqlite3.Error):
                conn.execute("CREATE TABLE written_here (x INTEGER)")
    finally:
        conn.close()


# Segments of the sample that intersect in every way, and one whose size moves month by month.
ANALYSED = [str(ROOT / "sample_data" / "segments" / f"{name}.yaml")
            for name in ("dormant-customers", "members-never-bought", "one-time-buyers", "unsubscribed")]


def test_overlap_and_trend_give_the_stores_numbers(source: SourceEngine, sample: Path) -> None:
    assert_overlap_and_trend_match(source.location, str(sample), list(ANALYSED), "6m")


async def test_the_builders_overlap_and_trend_work_on_a_source(
        parquet_files: Path, tables: tuple[list[Any], dict[str, Any]], sample: Path,
        tmp_path: Path) -> None:
    """The app on a source: a draft's overlap with saved segments (o) and its size over time
    (T) are the numbers of the store the tables came from."""
    from textual.widgets import SelectionList

    from store.query.overlap import overlap
    from store.query.trend import trend
    from tests.app_store import settle
    from tui.app import make_app
    from tui.builder.screen import BuilderScreen
    from tui.screens.overlap import OverlapScreen
    from tui.screens.trend import TrendScreen

    # a source file of its own over the sample's Parquet files, so its saved segments are this test's
    path = write_source_file(tmp_path / "shop.yaml", "duckdb", tables[1],
                             lambda name: str(parquet_files / f"{name}.parquet"))
    engine = engine_for(path)
    conn = engine.open_store(readonly=True)
    try:
        for name in ANALYSED[1:3]:
            save_segment(conn, resolve_file(conn, Path(name)))
        draft = resolve_file(conn, Path(ANALYSED[0]))
    finally:
        conn.close()
    app = make_app(engine, as_of=AS_OF)
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(BuilderScreen(draft.segment))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen)
                     and app.screen.resolved is not None, timeout=30)
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready, timeout=30)
        screen = app.screen
        assert isinstance(screen, OverlapScreen)
        choices = screen.query_one("#overlap-choices", SelectionList)
        for index in (1, 2):
            choices.select(choices.get_option_at_index(index).value)
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == 3, timeout=30)
        shown = screen.result
        await pilot.press("escape")
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running,
                     timeout=30)
        assert isinstance(app.screen, TrendScreen)
        points = list(app.screen.points)
    assert shown is not None and len(points) == 12
    store = engine_for(sample).open_store(readonly=True)
    try:
        by_id = {r.segment.id: r for r in (resolve_file(store, Path(name)) for name in ANALYSED[:3])}
        expected = overlap(store, [by_id[i] for i in shown.ids], AS_OF)
        counts = trend(store, by_id[draft.segment.id], [moment for moment, _ in points])
    finally:
        store.close()
    assert shown.matrix == expected.matrix and min(shown.sizes) > 0
    assert [n for _, n in points] == [p.count for p in counts]


# ------------------------------------------------------------------ native types, one by one


def test_native_values_are_read_in_the_stores_encodings(tmp_path: Path) -> None:
    warehouse = duckdb.connect(str(tmp_path / "w.duckdb"))
    warehouse.execute("CREATE TABLE c (id INTEGER, vip BOOLEAN, seen TIMESTAMPTZ, born DATE,"
                      " spend DECIMAL(10,2), visits DECIMAL(12,0), tags INTEGER[], note VARCHAR)")
    warehouse.execute("INSERT INTO c VALUES (7, true, '2024-01-02 03:04:05.5+02', DATE '1980-05-01', 10.5,"
                      " 3, [1], ''), (9, NULL, '2024-01-02 03:04:05+00', NULL, NULL, NULL, NULL, 'x')")
    warehouse.execute("CREATE TABLE e (cid INTEGER, day DATE)")
    warehouse.execute("INSERT INTO e VALUES (7, DATE '2026-01-05'), (8, DATE '2026-01-06')")
    warehouse.close()
    path = tmp_path / "s.yml"
    path.write_text(yaml.safe_dump({"engine": "w.duckdb", "profiles": {"table": "c", "id": "id"},
                                    "events": [{"table": "e", "profile": "cid", "type": "visit",
                                                "time": "day"}]}))
    engine = engine_for(path)
    conn = engine.open_store(readonly=True)
    try:
        rows = conn.execute("SELECT pk, id, vip, seen, born, spend, visits, note FROM profiles"
                            " ORDER BY pk").fetchall()
        assert rows == [(7, "7", 1, "2024-01-02 01:04:05.500000", "1980-05-01", 10.5, 3, None),
                        (9, "9", None, "2024-01-02 03:04:05", None, None, None, "x")]
        assert "tags" not in Catalog.load(conn).attributes  # an array: not offered
        # a DATE event time is that day's midnight UTC; integer ids are the keys themselves
        assert conn.execute("SELECT profile_pk, ts FROM events ORDER BY ts").fetchall() == [
            (7, 1767571200.0), (8, 1767657600.0)]
    finally:
        conn.close()
        engine.release()


@pytest.mark.parametrize(("native", "kind"), [
    ("boolean", "boolean"), ("integer", "integer"), ("bigint", "integer"), ("numeric(12,0)", "integer"),
    ("numeric(10,2)", "number"), ("numeric", "number"), ("double precision", "number"),
    ("character varying(20)", "string"), ("VARCHAR", "string"), ("uuid", "string"), ("date", "date"),
    ("timestamp without time zone", "datetime"), ("TIMESTAMP_NS", "datetime"),
    ("timestamp with time zone", "datetime_tz"), ("TIMESTAMP WITH TIME ZONE", "datetime_tz"),
    ("integer[]", None), ("MAP(VARCHAR, INTEGER)", None), ("STRUCT(a INTEGER)", None),
    ("array<int>", None), ("jsonb", None), ("bytea", None), ("BLOB", None),
])
def test_native_types_are_classified(native: str, kind: str | None) -> None:
    assert classify(native) == kind


# ------------------------------------------------------------------ the file's mistakes


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    conn.execute("CREATE TABLE c (id VARCHAR, tags INTEGER[], born DATE)")
    conn.execute("INSERT INTO c VALUES ('a', [1], DATE '2000-01-01'), ('b', NULL, NULL)")
    conn.execute("CREATE TABLE o (cid VARCHAR, ordered TIMESTAMP, kind VARCHAR)")
    conn.execute("INSERT INTO o VALUES ('a', TIMESTAMP '2026-01-01 10:00:00', 'purchase')")
    conn.close()
    return tmp_path


def open_source(folder: Path, text: str) -> Connection:
    path = folder / "s.yaml"
    path.write_text(text)
    engine = engine_for(path)
    try:
        return engine.open_store(readonly=True)
    finally:
        engine.release()


HEAD = "engine: w.duckdb\nprofiles: {table: c, id: id}\n"
BUY = "  - {table: o, profile: cid, type: buy, time: ordered}\n"


@pytest.mark.parametrize(("text", "message"), [
    ("engine: w.duckdb\nprofiles: {table: nope, id: id}\n", r"s.yaml:2: profiles.table: no table"),
    ("engine: w.duckdb\nprofiles: {table: c, id: ident}\n",
     r"s.yaml:2: profiles.id: c has no column 'ident'"),
    ("engine: w.duckdb\nprofiles:\n  table: c\n  id: id\n  columns: [tags]\n",
     r"s.yaml:3: profiles.columns\[0\]: column 'tags' is INTEGER\[\], a type segments cannot use"),
    (HEAD + "events:\n" + BUY + BUY, r"s.yaml:5: events\[1\].type: event type 'buy' is mapped twice"),
    (HEAD + "events:\n  - {table: o, profile: cid, time: ordered}\n",
     r"s.yaml:4: events\[0\]: give either type"),
    (HEAD + "events:\n  - {table: o, profile: cid, type: b, time: kind}\n",
     r"s.yaml:4: events\[0\].time: column 'kind' is VARCHAR; time needs date or datetime values"),
    (HEAD + "entities:\n  - {name: p, table: o, key: kind, link: sku}\n",
     r"s.yaml:4: entities\[0\].link: no event table has a column 'sku'"),
    ("engine: w.duckdb\nprofile: {table: c, id: id}\n", r"s.yaml:2: profile: unknown key"),
    ("engine: foo://x\nprofiles: {table: c, id: id}\n", r"s.yaml:1: engine: Unknown database URL scheme"),
    ("engine: other.db\nprofiles: {table: c, id: id}\n", r"s.yaml:1: engine: SQLite cannot be a source"),
    ("engine: [w.duckdb\n", r"s.yaml:2: not valid YAML"),
])
def test_mistakes_in_the_file_name_the_file_line_and_key(warehouse: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_source(warehouse, text).close()


def test_the_cli_reports_a_mistake_in_one_line_with_exit_code_2(warehouse: Path) -> None:
    (warehouse / "s.yaml").write_text("engine: w.duckdb\nprofiles: {table: c, id: ident}\n")
    result = CliRunner().invoke(cli, ["segments", "list", "--db", str(warehouse / "s.yaml")])
    assert result.exit_code == 2, result.output
    assert "s.yaml:2: profiles.id" in result.output and "Traceback" not in result.output


def test_an_unreachable_server_is_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("engine: postgresql://nobody@127.0.0.1:1/shop\n"
                                     "profiles: {table: c, id: id}\n")
    result = CliRunner().invoke(cli, ["segments", "list", "--db", str(tmp_path / "s.yaml")])
    assert result.exit_code == 1, result.output
    assert "Cannot reach the PostgreSQL server" in result.output and "Traceback" not in result.output


def test_repeated_profile_ids_are_refused(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    conn.execute("CREATE TABLE c AS SELECT * FROM (VALUES ('a'), ('a'), ('b')) t(id)")
    conn.close()
    with pytest.raises(StoreError, match="1 rows whose id repeats"):
        open_source(tmp_path, "engine: w.duckdb\nprofiles: {table: c, id: id}\n").close()


async def test_the_app_browses_a_source_and_says_which_engine_and_where(source: SourceEngine) -> None:
    from tests.app_store import settle, table_ready
    from tui.app import make_app

    app = make_app(source, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: app.profile_total == 400, timeout=30)
        assert app.sub_title.startswith(f"shop.yaml · {source.base.label} tables · 400 profiles")
        table = app.screen.query_one("ProfileTable")
        await settle(pilot, table_ready(table), timeout=30)
        await pilot.press("enter")  # the 360-degree view: attributes, timeline, why
        await settle(pilot, lambda: app.screen.title.startswith("Profile ·"), timeout=30)


def test_a_type_column_may_declare_types_it_holds_no_rows_of_yet(warehouse: Path) -> None:
    path = warehouse / "s.yaml"
    path.write_text(HEAD + "events:\n  - {table: o, profile: cid, type_column: kind, time: ordered,"
                           " types: [refund]}\n")
    engine = engine_for(path)
    conn = engine.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        assert set(catalog.event_types) == {"purchase", "refund"}
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    finally:
        conn.close()
        engine.release()
