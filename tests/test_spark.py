"""Spark: tables written as Parquet by the test, read in place through a source file on spark://local.

One local Spark session serves the whole test session (it takes seconds and
gigabytes to start); every test here is in one xdist group so that only one
worker starts it. Under CI=true a missing pyspark or Java fails these tests.

- Every example segment selects the same profiles on Spark as in the SQLite
  store the Parquet files came from, and the reference evaluator agrees.
- The property test: random stores (tests/strategies.py) written as Parquet,
  every node of random rules counted on Spark equals the evaluator's count.
  Spark answers in a second or more a query here (each example also writes
  Parquet and plans a new source), so the default run takes 6 examples and
  ``--run-slow`` adds the same property at 100.
- ``overlap`` and ``trend`` through the CLI give the SQLite store's numbers.
- Spark Connect (``sc://``): a Connect server started inside the local session,
  on a free loopback port, counts the same.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engines.base import engine_for
from store.engines.source import SourceEngine
from store.engines.spark import SparkEngine
from store.errors import StoreError
from store.query import audience
from store.query.evaluator import evaluate_all, load_all_profiles, matches
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from store.segments.model import Node, Segment, walk
from store.segments.validate import ResolvedSegment
from tests.factory import build_store
from tests.services.fixtures import in_ci
from tests.source_tables import (
    assert_overlap_and_trend_match,
    native_tables,
    write_duckdb,
    write_source_file,
)
from tests.strategies import Scene, closure, leaf_nodes, libraries, rule_nodes, scenes
from tui.cli import cli

pytestmark = pytest.mark.xdist_group("spark")

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = sorted((ROOT / "sample_data" / "segments").glob("*.yaml"))
AS_OF = dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)


def spark_missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"Spark is required when CI=true, but {reason}", pytrace=False)
    pytest.skip(f"no Spark: {reason}")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkEngine]:
    """The test session's one local Spark session."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        spark_missing(f"pyspark is not installed ({exc}): pip install -e '.[test]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        spark_missing("no Java runtime (install openjdk-17-jre-headless)")
    engine = SparkEngine("spark://local")
    try:
        engine.session()
    except StoreError as exc:
        spark_missing(str(exc))
    yield engine
    SparkEngine.stop_sessions()


def parquet_source(store: Path, folder: Path, engine: str = "spark://local") -> SourceEngine:
    """The store's data as Parquet files with native types, and a source file over them."""
    tables, mapping = native_tables(store)
    conn = duckdb.connect()
    write_duckdb(conn, tables, parquet=folder)
    conn.close()
    path = write_source_file(folder / "shop.yaml", engine, mapping, lambda name: f"{name}.parquet")
    source = engine_for(path)
    assert isinstance(source, SourceEngine)
    return source


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark-sample") / "shop.db"
    generate_sample(path, profiles=300, until=dt.date(2026, 11, 1))
    return path


def test_every_example_segment_counts_the_same_on_spark(spark: SparkEngine, sample: Path,
                                                       tmp_path: Path) -> None:
    source = parquet_source(sample, tmp_path)
    store = engine_for(sample).open_store(readonly=True)
    conn = source.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        assert audience.total(conn) == 300
        for path in SEGMENTS:
            reference = resolve_file(store, path)
            expected = len(evaluate_all(store, reference, AS_OF))  # the reference evaluator
            assert audience.count(conn, resolve_file(conn, path), AS_OF, catalog) == expected, path.stem
        for path in SEGMENTS[:3]:  # the members themselves, streamed as activation reads them
            expected_ids = set(audience.member_ids(store, resolve_file(store, path), AS_OF))
            assert set(audience.member_ids(conn, resolve_file(conn, path), AS_OF, catalog)) == expected_ids
    finally:
        conn.close()
        store.close()


def test_the_cli_counts_and_prints_spark_sql(spark: SparkEngine, sample: Path, tmp_path: Path) -> None:
    source = parquet_source(sample, tmp_path)
    segment = str(ROOT / "sample_data" / "segments" / "cart-abandoners-7d.yaml")
    runner = CliRunner()
    counted = runner.invoke(cli, ["count", segment, "--db", source.location, "--as-of", "2026-11-01"])
    expected = runner.invoke(cli, ["count", segment, "--db", str(sample), "--as-of", "2026-11-01"])
    assert counted.exit_code == 0, counted.output
    assert counted.output.split(" in ")[0] == expected.output.split(" in ")[0]
    printed = runner.invoke(cli, ["sql", segment, "--db", source.location, "--as-of", "2026-11-01"])
    assert printed.exit_code == 0 and "INDEXED" not in printed.output and "`profiles`" in printed.output


def test_overlap_and_trend_on_spark_give_the_stores_numbers(spark: SparkEngine, sample: Path,
                                                            tmp_path: Path) -> None:
    source = parquet_source(sample, tmp_path)
    segments = [str(ROOT / "sample_data" / "segments" / f"{name}.yaml")
                for name in ("dormant-customers", "members-never-bought", "one-time-buyers")]
    assert_overlap_and_trend_match(source.location, str(sample), segments, "3m")


@st.composite
def cases(draw: st.DrawFn) -> tuple[Scene, dict[str, Segment], list[Node]]:
    """A random store, segments to refer to, and rules over both (as tests/test_property.py)."""
    scene = draw(scenes())
    library = draw(libraries(scene.as_of))
    trees = draw(st.lists(rule_nodes(scene.as_of, tuple(library)), min_size=1, max_size=2))
    trees += draw(st.lists(leaf_nodes(scene.as_of), min_size=4, max_size=8))
    return scene, library, trees


SPARK_PROPERTY = settings(max_examples=6, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])


@SPARK_PROPERTY
@given(case=cases())
def test_compiled_counts_equal_evaluator_on_spark(
        spark: SparkEngine, case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Every node of the rules: the count Spark computes equals the evaluator's (which reads
    the store the Parquet files were written from)."""
    check_counts_on_spark(case)


@pytest.mark.slow
@settings(SPARK_PROPERTY, max_examples=100)
@given(case=cases())
def test_compiled_counts_equal_evaluator_on_spark_long_run(
        spark: SparkEngine, case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """The Spark property at a hundred examples (``--run-slow``)."""
    check_counts_on_spark(case)


def check_counts_on_spark(case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Write the scene's store as Parquet; count every node of every tree on Spark."""
    scene, library, trees = case
    folder = Path(tempfile.mkdtemp(prefix="audiences-spark-"))
    try:
        store_path = folder / "store.db"
        store = build_store(store_path, scene.spec)
        try:
            profiles = list(load_all_profiles(store, Catalog.load(store)))
        finally:
            store.close()
        source = parquet_source(store_path, folder)
        conn = source.open_store(readonly=True)
        try:
            catalog = Catalog.load(conn)
            checked: set[Node] = set()
            for rule in trees:
                for path, node in walk(rule):
                    if node in checked:
                        continue
                    checked.add(node)
                    resolved = ResolvedSegment(Segment("probe", "Probe", node), closure(node, library))
                    expected = sum(matches(p, resolved, scene.as_of) for p in profiles)
                    got = audience.count(conn, resolved, scene.as_of, catalog)
                    assert got == expected, f"{path}: Spark {got}, evaluator {expected}"
        finally:
            conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_spark_connect_counts_the_same(spark: SparkEngine, sample: Path, tmp_path: Path) -> None:
    """``sc://HOST:PORT``: a Spark Connect server started in the local session, on loopback."""
    session: Any = spark.session()
    port = free_port()
    conf = session._jsc.sc().conf()  # the running context's own settings, read when the server starts
    conf.set("spark.connect.grpc.binding.address", "127.0.0.1")
    conf.set("spark.connect.grpc.binding.port", str(port))
    service = session._jvm.org.apache.spark.sql.connect.service.SparkConnectService
    service.start(session._jsc.sc())
    try:
        source = parquet_source(sample, tmp_path, engine=f"sc://127.0.0.1:{port}")
        store = engine_for(sample).open_store(readonly=True)
        conn = source.open_store(readonly=True)
        try:
            for name in ("cart-abandoners-7d", "big-spenders-12m", "young-sneakerheads"):
                path = ROOT / "sample_data" / "segments" / f"{name}.yaml"
                assert audience.count(conn, resolve_file(conn, path), AS_OF) == audience.count(
                    store, resolve_file(store, path), AS_OF), name
        finally:
            conn.close()
            store.close()
    finally:
        SparkEngine.stop_sessions(f"sc://127.0.0.1:{port}")  # the server stops with the local session


def test_an_unreachable_spark_connect_server_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(f"engine: sc://127.0.0.1:{free_port()}\n"
                                     "profiles: {table: c, id: id}\n")
    result = CliRunner().invoke(cli, ["segments", "list", "--db", str(tmp_path / "s.yaml")])
    assert result.exit_code == 1, result.output
    assert "Cannot reach the Spark Connect server" in result.output and "Traceback" not in result.output


def test_spark_urls_are_checked() -> None:
    from store.errors import InputError

    with pytest.raises(InputError, match="sc://HOST:PORT"):
        engine_for("sc://nohost")
    with pytest.raises(InputError, match="spark://local"):
        engine_for("spark://cluster:7077")
    with pytest.raises(StoreError, match="source file"):
        engine_for("spark://local").open_store()
