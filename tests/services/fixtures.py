"""pytest fixtures and helpers for tests that need PostgreSQL.

`postgres_url` (session scope) is the libpq URL of a server: $AUDIENCES_TEST_POSTGRES_URL when set (CI
starts one server for the whole run, see .ci/run), else a throwaway server started for this session
(with pytest-xdist, one per worker) and stopped at its end. When no server can be had, the tests that
ask for one fail under CI=true and are skipped elsewhere, with the reason.

`fresh_schema(url)` creates a schema of its own and returns the URL with `schema=NAME` among its query
parameters, so tests sharing a server stay apart; the schemas are dropped at the end of the session.
libpq does not know `schema`: `libpq_url(url)` takes it back off, and `connect(url)` opens a psycopg
connection with the schema as its search_path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, unquote

import pytest

if TYPE_CHECKING:
    import psycopg

ENV_URL = "AUDIENCES_TEST_POSTGRES_URL"
SCHEMA_PARAM = "schema"

# (libpq URL, schema) for every schema fresh_schema made this session, dropped at its end.
_created: list[tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> NoReturn:
    """No PostgreSQL for this test: an error under CI=true, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"PostgreSQL is required when CI=true, but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        try:
            yield url
        finally:
            _drop_created_schemas()
        return

    from tests.services import postgres

    base = Path(tempfile.mkdtemp(prefix="audiences-pg-"))
    info: postgres.ServerInfo | None = None
    try:
        info = postgres.start(base)
    except (postgres.ServiceError, OSError) as exc:
        why = str(exc)  # reported below, outside the except block, without the chained traceback
    if info is None:
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"a throwaway server could not be started: {why}")
    try:
        yield info.url
    finally:
        _created.clear()  # they go with the server
        postgres.stop(info)
        shutil.rmtree(base, ignore_errors=True)


# --- URLs -------------------------------------------------------------------------------------------

def _split(url: str) -> tuple[str, list[str], str]:
    rest, hash_mark, fragment = url.partition("#")
    head, _, query = rest.partition("?")
    return head, [param for param in query.split("&") if param], hash_mark + fragment


def _join(head: str, params: list[str], fragment: str) -> str:
    return head + ("?" + "&".join(params) if params else "") + fragment


def libpq_url(url: str) -> tuple[str, str | None]:
    """(url without its `schema` query parameter, that schema or None); the rest is kept as written."""
    head, params, fragment = _split(url)
    schema: str | None = None
    kept: list[str] = []
    for param in params:
        name, _, value = param.partition("=")
        if unquote(name) == SCHEMA_PARAM:
            schema = unquote(value) or None
        else:
            kept.append(param)
    return _join(head, kept, fragment), schema


def with_schema(url: str, schema: str) -> str:
    """url with `schema=SCHEMA` as its last query parameter, replacing any schema it had."""
    head, params, fragment = _split(libpq_url(url)[0])
    return _join(head, [*params, f"{SCHEMA_PARAM}={quote(schema, safe='')}"], fragment)


# --- connections and schemas ------------------------------------------------------------------------

def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A psycopg connection to url; its search_path is url's schema when it names one."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        unavailable(f"psycopg is not installed ({exc})")
    conninfo, schema = libpq_url(url)
    conn = psycopg.connect(conninfo, autocommit=autocommit)
    if schema is not None:
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            if not autocommit:
                conn.commit()
        except BaseException:
            conn.close()
            raise
    return conn


def fresh_schema(url: str) -> str:
    """Create a schema named t_<8 hex digits> and return url pointing at it (`?schema=NAME`)."""
    conninfo, _ = libpq_url(url)
    with connect(conninfo) as conn:
        import psycopg  # connect() made sure it is installed
        from psycopg import sql

        for _attempt in range(10):
            name = f"t_{uuid.uuid4().hex[:8]}"
            try:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateSchema:
                continue
            break
        else:
            raise RuntimeError("could not find an unused schema name")
    _created.append((conninfo, name))
    return with_schema(url, name)


def _drop_created_schemas() -> None:
    """Best effort: a schema left behind on a shared server is harmless."""
    if not _created:
        return
    from psycopg import sql

    while _created:
        conninfo = _created[-1][0]
        names = [name for url, name in _created if url == conninfo]
        _created[:] = [entry for entry in _created if entry[0] != conninfo]
        with contextlib.suppress(Exception), connect(conninfo) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


ENGINE_KINDS = ("sqlite", "duckdb", "postgresql")


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Each engine in turn (tests that take it run once per engine)."""
    return str(request.param)


@pytest.fixture
def fresh_location(engine_kind: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of new, empty store locations (``--db`` values) on the test's engine."""

    def make(name: str = "store") -> str:
        if engine_kind == "sqlite":
            return str(tmp_path / f"{name}.db")
        if engine_kind == "duckdb":
            return str(tmp_path / f"{name}.duckdb")
        return fresh_schema(request.getfixturevalue("postgres_url"))

    return make


@contextlib.contextmanager
def scratch_location(kind: str, postgres: str | None) -> Iterator[str]:
    """A throwaway store location on an engine, removed afterwards (for per-example stores).

    File stores go to RAM (/dev/shm) where the system has it; a PostgreSQL store is a
    fresh schema of the test server, dropped at once.
    """
    if kind == "postgresql":
        assert postgres is not None
        url = fresh_schema(postgres)
        try:
            yield url
        finally:
            from store.engines.base import engine_for

            schema = engine_for(url).schema  # type: ignore[attr-defined]
            _drop_schema(libpq_url(url)[0], schema)
        return
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        location = str(Path(folder) / ("store.duckdb" if kind == "duckdb" else "store.db"))
        try:
            yield location
        finally:
            if kind == "duckdb":
                from store.engines.duckdb import DuckDBEngine

                DuckDBEngine.forget(location)


def _drop_schema(conninfo: str, name: str) -> None:
    from psycopg import sql

    with contextlib.suppress(Exception), connect(conninfo) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    with contextlib.suppress(ValueError):
        _created.remove((conninfo, name))
