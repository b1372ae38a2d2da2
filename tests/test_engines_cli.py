"""The command line and the app on every engine (spec/engines.md, spec/cli.md "Additions").

The same sample store is made on SQLite, DuckDB and PostgreSQL with the
``sample`` command; every contract command then prints the same thing on each
(timings aside). A store that cannot be used (a server that does not answer,
a URL of no known engine, a DuckDB file another program holds, a missing
driver) is one line on stderr with exit 1, or 2 for a wrong URL, and nothing
is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from click.testing import CliRunner, Result

from sample_data import SEGMENTS_DIR
from store.engines.base import engine_for
from store.errors import QueryCancelled
from tests.app_store import settle
from tests.services.fixtures import fresh_schema, libpq_url
from tui.app import make_app
from tui.cli import cli

AS_OF = "2026-11-30"
PROFILES = 400
SEGMENT_FILES = sorted(SEGMENTS_DIR.glob("*.yaml"))
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/x"


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def ok(*args: str | Path) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result: Result, code: int) -> str:
    """The single ``Error: ...`` line a failed command printed (and nothing on stdout)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def sampled(location: str) -> str:
    ok("sample", "--db", location, "--profiles", str(PROFILES), "--seed", "7", "--until", AS_OF, "--quiet")
    return location


def location_for(kind: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgresql":
        return fresh_schema(request.getfixturevalue("postgres_url"))
    return str(folder / ("shop.duckdb" if kind == "duckdb" else "shop.db"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample store on SQLite: what every other engine must print too."""
    return sampled(str(tmp_path_factory.mktemp("sqlite") / "shop.db"))


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def other(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same sample store on another engine."""
    kind = str(request.param)
    return sampled(location_for(kind, tmp_path_factory.mktemp(kind), request))


def without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in keys}


# ------------------------------------------------------------------ same outputs


def test_count_json_of_every_example_segment_is_the_same(reference: str, other: str) -> None:
    assert len(SEGMENT_FILES) >= 10
    for path in SEGMENT_FILES:
        ours, theirs = (json.loads(ok("count", path, "--db", db, "--as-of", AS_OF, "--json").stdout)
                        for db in (reference, other))
        assert without(ours, "elapsed_ms") == without(theirs, "elapsed_ms"), path.name
    # The top-level --db and $AUDIENCES_DB name a store on any engine the same way.
    segment = SEGMENT_FILES[0]
    expected = json.loads(ok("count", segment, "--db", reference, "--as-of", AS_OF, "--json").stdout)
    top = json.loads(ok("--db", other, "count", segment, "--as-of", AS_OF, "--json").stdout)
    env = invoke("count", segment, "--as-of", AS_OF, "--json", env={"AUDIENCES_DB": other})
    assert env.exit_code == 0, env.output
    for payload in (top, json.loads(env.stdout)):
        assert without(payload, "elapsed_ms") == without(expected, "elapsed_ms")


def test_sql_is_the_same_for_a_dialect_and_the_stores_own_by_default(reference: str,
                                                                      other: str) -> None:
    dialect = engine_for(other).dialect
    for path in SEGMENT_FILES[:6]:
        for chosen in ("sqlite", dialect):
            texts = {ok("sql", path, "--db", db, "--dialect", chosen, "--as-of", AS_OF).stdout
                     for db in (reference, other)}
            assert len(texts) == 1, (path.name, chosen)
        own = ok("sql", path, "--db", other, "--as-of", AS_OF).stdout
        assert own == ok("sql", path, "--db", reference, "--dialect", dialect, "--as-of", AS_OF).stdout
        assert ok("sql", path, "--db", reference, "--as-of", AS_OF).stdout == ok(
            "sql", path, "--db", reference, "--dialect", "sqlite", "--as-of", AS_OF).stdout


def saved_segments_session(db: str, folder: Path) -> list[Any]:
    """save, list, show, export and delete, as a user would; everything each step printed."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: list[Any] = []
    for name in ("unsubscribed.yaml", "lapsed-vips.yaml", "men-over-50-shoes.yaml"):
        seen.append(ok("segments", "save", SEGMENTS_DIR / name, "--db", db).stdout)
    listed = json.loads(ok("segments", "list", "--db", db, "--json").stdout)
    seen.append([without(item, "created_at", "updated_at") for item in listed])
    seen.append(ok("segments", "list", "--db", db).stdout.count("\n"))
    seen.append(ok("segments", "show", "lapsed-vips", "--db", db).stdout)
    exported = folder / "lapsed-vips.yaml"
    seen.append(ok("segments", "export", "lapsed-vips", "--db", db, "-o", exported).stdout
                .replace(str(folder), "FOLDER"))
    seen.append(exported.read_text(encoding="utf-8"))
    seen.append(yaml.safe_load(ok("segments", "export", "men-over-50-shoes", "--db", db).stdout))
    # A segment another one uses is not deleted: the same one line on every engine.
    refused = invoke("segments", "delete", "unsubscribed", "--db", db)
    seen.append((refused.exit_code, refused.stderr))
    for segment_id in ("men-over-50-shoes", "lapsed-vips", "unsubscribed"):
        seen.append(ok("segments", "delete", segment_id, "--db", db).stdout)
    seen.append(ok("segments", "list", "--db", db, "--json").stdout)
    return seen


def test_saved_segments_commands_print_the_same(reference: str, other: str, tmp_path: Path) -> None:
    ours = saved_segments_session(reference, tmp_path / "sqlite")
    theirs = saved_segments_session(other, tmp_path / "other")
    assert ours == theirs
    assert ours[-1].strip() == "[]"


def test_activate_json_and_the_members_are_the_same(reference: str, other: str,
                                                   tmp_path: Path) -> None:
    results = []
    for n, db in enumerate((reference, other)):
        campaign = tmp_path / f"campaign-{n}.db"
        activated = [json.loads(ok("activate", SEGMENTS_DIR / name, "--db", db, "--campaign-db", campaign,
                                   "--as-of", AS_OF, "--field", "email", "--field", "first_name",
                                   "--json").stdout)
                     for name in ("dormant-customers.yaml", "premium-buyers.yaml")]
        assert all(payload["campaign_db"] == str(campaign) for payload in activated)
        members = [ok("audiences", "export", str(payload["audience_id"]), "--db", db,
                      "--campaign-db", campaign).stdout for payload in activated]
        again = json.loads(ok("activate", SEGMENTS_DIR / "dormant-customers.yaml", "--db", db,
                              "--campaign-db", campaign, "--as-of", AS_OF, "--json").stdout)
        results.append(([without(p, "duration_ms", "campaign_db") for p in activated], members,
                        without(again, "duration_ms", "campaign_db")))
    assert results[0] == results[1]
    assert results[0][0][0]["count"] > 0 and results[0][1][0].count("\n") > 1


def test_the_campaign_store_goes_beside_a_store_file(tmp_path: Path) -> None:
    db = sampled(str(tmp_path / "beside.duckdb"))
    payload = json.loads(ok("activate", SEGMENTS_DIR / "premium-buyers.yaml", "--db", db,
                            "--as-of", AS_OF, "--json").stdout)
    assert payload["campaign_db"] == str(tmp_path / "campaign.db")
    assert (tmp_path / "campaign.db").exists()


# ------------------------------------------------------------------ stores that cannot be used


@pytest.mark.parametrize("args", [
    ("count", "SEGMENT", "--db", UNREACHABLE, "--as-of", AS_OF, "--json"),
    ("--db", UNREACHABLE, "count", "SEGMENT"),
    ("segments", "list", "--db", UNREACHABLE),
    ("segments", "save", "SEGMENT", "--db", UNREACHABLE),
    ("sql", "SEGMENT", "--db", UNREACHABLE),
    ("activate", "SEGMENT", "--db", UNREACHABLE, "--campaign-db", "CAMPAIGN"),
    ("--db", UNREACHABLE),  # the app itself
], ids=lambda args: " ".join(args[:2]))
def test_an_unreachable_server_is_one_line_naming_it(args: tuple[str, ...], tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.db"
    swap = {"SEGMENT": str(SEGMENTS_DIR / "unsubscribed.yaml"), "CAMPAIGN": str(campaign)}
    line = one_line_error(invoke(*(swap.get(arg, arg) for arg in args)), 1)
    assert "127.0.0.1" in line and "PostgreSQL" in line, line
    assert not campaign.exists()


def test_a_password_in_the_url_is_never_printed() -> None:
    line = one_line_error(invoke("segments", "list", "--db", "postgresql://nobody:s3cret@127.0.0.1:1/x"), 1)
    assert "s3cret" not in line and "127.0.0.1" in line


@pytest.mark.parametrize("args", [
    ("count", "SEGMENT", "--db", "foo://bar"),
    ("--db", "foo://bar", "count", "SEGMENT"),
    ("--db", "foo://bar"),
    ("segments", "list", "--db", "foo://bar"),
    ("activate", "SEGMENT", "--db", "foo://bar"),
    ("count", "SEGMENT", "--db", "duckdb:"),
], ids=" ".join)
def test_a_url_of_no_known_engine_is_exit_2(args: tuple[str, ...]) -> None:
    segment = str(SEGMENTS_DIR / "unsubscribed.yaml")
    line = one_line_error(invoke(*(segment if arg == "SEGMENT" else arg for arg in args)), 2)
    assert "foo://" in line or "duckdb:" in line, line


def test_a_url_of_no_known_engine_in_the_environment_is_exit_2() -> None:
    result = invoke("count", SEGMENTS_DIR / "unsubscribed.yaml", env={"AUDIENCES_DB": "foo://bar"})
    assert "foo://" in one_line_error(result, 2)


@pytest.fixture
def locked_duckdb(tmp_path: Path) -> Iterator[str]:
    """A DuckDB store that another process holds open read-write while the test runs."""
    from store.engines.duckdb import DuckDBEngine

    db = sampled(str(tmp_path / "locked.duckdb"))
    DuckDBEngine.forget(db)  # this process lets go of the file, as a separate program would not have it
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('holding', flush=True); time.sleep(120)", db],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield db
    finally:
        holder.terminate()
        holder.wait(timeout=30)


def test_a_duckdb_file_locked_by_another_program_is_one_clear_line(locked_duckdb: str,
                                                                   tmp_path: Path) -> None:
    segment = SEGMENTS_DIR / "unsubscribed.yaml"
    campaign = tmp_path / "campaign-here.db"
    for args in (("count", segment, "--db", locked_duckdb, "--as-of", AS_OF),
                 ("segments", "save", segment, "--db", locked_duckdb),
                 ("activate", segment, "--db", locked_duckdb, "--campaign-db", campaign),
                 ("--db", locked_duckdb)):
        line = one_line_error(invoke(*args), 1)
        assert "locked.duckdb" in line and "another program" in line, line
    assert not campaign.exists()


def test_nothing_was_written_while_the_duckdb_file_was_locked(tmp_path: Path) -> None:
    from store.engines.duckdb import DuckDBEngine

    db = sampled(str(tmp_path / "shop.duckdb"))
    DuckDBEngine.forget(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('holding', flush=True); time.sleep(120)", db],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        one_line_error(invoke("segments", "save", SEGMENTS_DIR / "unsubscribed.yaml", "--db", db), 1)
    finally:
        holder.terminate()
        holder.wait(timeout=30)
    assert json.loads(ok("segments", "list", "--db", db, "--json").stdout) == []


def test_duckdb_out_of_memory_says_how_to_raise_the_limit(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "open in another program": DuckDB's "could not allocate block" once read as a lock."""
    from store.engines.duckdb import DuckDBEngine

    db = sampled(str(tmp_path / "shop.duckdb"))
    DuckDBEngine.forget(db)
    monkeypatch.setenv("AUDIENCES_DUCKDB_MEMORY", "1MB")
    try:
        line = one_line_error(invoke("count", SEGMENTS_DIR / "big-spenders-12m.yaml", "--db", db,
                                     "--as-of", AS_OF), 1)
    finally:
        DuckDBEngine.forget(db)
    assert "AUDIENCES_DUCKDB_MEMORY" in line and "another program" not in line, line


def test_a_missing_driver_says_what_to_install(reference: str, other: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(other)
    module = "duckdb" if engine.name == "duckdb" else "psycopg"
    if engine.name == "duckdb":
        from store.engines.duckdb import DuckDBEngine

        DuckDBEngine.forget(other)
    monkeypatch.setitem(sys.modules, module, None)  # `import duckdb` / `import psycopg` now fails
    for args in (("segments", "list", "--db", other), ("--db", other)):
        line = one_line_error(invoke(*args), 1)
        assert "pip install" in line and module in line, line
    assert ok("segments", "list", "--db", reference).stdout  # SQLite needs no driver


# ------------------------------------------------------------------ the app


async def test_the_app_opens_on_a_duckdb_store_and_says_so(tmp_path: Path) -> None:
    db = sampled(str(tmp_path / "shop.duckdb"))
    app = make_app(db)
    assert app.engine.name == "duckdb"
    assert app.campaign_db_path == tmp_path / "campaign.db"
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: app.profile_total == PROFILES)
        assert app.sub_title == f"shop.duckdb · DuckDB · {PROFILES} profiles"
        assert "shop.duckdb · DuckDB" in app.format_title(app.title, app.sub_title).plain
        table = app.screen.table  # type: ignore[attr-defined]
        await settle(pilot, lambda: bool(table.window) and not table.busy)


async def test_the_app_names_a_postgresql_store_without_its_password(
        postgres_url: str) -> None:
    location = sampled(fresh_schema(postgres_url))
    schema = libpq_url(location)[1]
    parts = urlsplit(location)
    secret = parts.password or "s3cret"  # the test server trusts local logins, whatever the password
    if parts.password is None:
        host = parts.netloc.rpartition("@")[2]
        location = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}:{secret}@{host}"))
    app = make_app(location)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: app.profile_total == PROFILES)
        assert app.sub_title.endswith(f".{schema} · PostgreSQL · {PROFILES} profiles"), app.sub_title
        assert secret not in app.format_title(app.title, app.sub_title).plain


SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "duckdb": "SELECT count(*) FROM range(100000000000)",
    "postgresql": "SELECT pg_sleep(60)",
}


@pytest.mark.parametrize("which", ["reference", "other"])
def test_the_apps_queries_stop_when_cancelled_on_every_engine(which: str, reference: str,
                                                             other: str) -> None:
    """A superseded request's token, and quitting, stop a statement that is running."""
    app = make_app(reference if which == "reference" else other)
    slow = SLOW[app.engine.name]
    token = app.queries.start("slow")
    threading.Timer(0.3, token.cancel).start()
    started = time.perf_counter()
    with pytest.raises(QueryCancelled), app.queries.connection(token) as conn:
        conn.execute(slow).fetchall()
    assert time.perf_counter() - started < 10
    conn = app.read_connection()
    threading.Timer(0.3, app.stop_queries).start()
    started = time.perf_counter()
    try:
        with pytest.raises(Exception, match=r"(?i)interrupt|cancel"):
            conn.execute(slow).fetchall()
    finally:
        conn.close()
    assert time.perf_counter() - started < 10


@pytest.fixture
def other_role(postgres_url: str) -> Iterator[tuple[str, str, Any]]:
    """(store URL, the same URL for a new login role with no rights yet, run SQL as owner)."""
    import psycopg

    store = sampled(fresh_schema(postgres_url))
    conninfo, schema = libpq_url(store)
    role = f"r_{schema}"
    owner = psycopg.connect(conninfo, autocommit=True)
    owner.execute(f"CREATE ROLE {role} LOGIN")
    parts = urlsplit(store)
    as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
    try:
        yield store, as_role, owner.execute
    finally:
        owner.execute(f"DROP OWNED BY {role}")
        owner.execute(f"DROP ROLE {role}")
        owner.close()


def test_a_postgres_role_without_rights_gets_one_clear_line(other_role: tuple[str, str, Any],
                                                           tmp_path: Path) -> None:
    store, as_role, run_sql = other_role
    schema = libpq_url(store)[1]
    role = f"r_{schema}"
    segment = SEGMENTS_DIR / "unsubscribed.yaml"
    line = one_line_error(invoke("count", segment, "--db", as_role, "--as-of", AS_OF), 1)
    assert "no rights on schema" in line and schema in line, line

    run_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    run_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    assert ok("count", segment, "--db", as_role, "--as-of", AS_OF).stdout.split()[0].isdigit()
    line = one_line_error(invoke("segments", "save", segment, "--db", as_role), 1)
    assert "rights" in line, line

    # An import learns it before reading the file: a file too broken to read is not even opened.
    people = tmp_path / "people.csv"
    people.write_bytes(b"\xff\xfe not a CSV file")
    line = one_line_error(invoke("import", "profiles", people, "--db", as_role), 1)
    assert f"role {role} may not create tables" in line and "Nothing was written" in line, line
    run_sql(f"GRANT CREATE ON SCHEMA {schema} TO {role}")
    line = one_line_error(invoke("import", "profiles", people, "--db", as_role), 1)
    assert f"role {role} does not own table" in line, line
    assert json.loads(ok("segments", "list", "--db", store, "--json").stdout) == []
