"""Activation from a profile store on any engine into the local SQLite campaign store.

The same data on SQLite, DuckDB and PostgreSQL must give the same audience
members (ids and captured fields), the same differences on a refresh, and the
same guarantees: a cancel or a kill while the members stream in leaves the
previous members intact. "sqlite-streamed" is an SQLite store read through the
streaming path the other engines take (instead of ATTACH).
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from store.campaign import activation
from store.campaign.activation import activate, review
from store.campaign.store import find_audience, history, open_campaign, store_location
from store.engines.base import Connection, engine_for
from store.engines.cancel import Cancel
from store.engines.layout import quote_identifier, write_transaction
from store.errors import QueryCancelled, StoreError
from tests.engine_helpers import resolve_rule
from tests.services.fixtures import fresh_schema
from tests.test_activation import AS_OF, make_profile_store

FIELDS = ["email", "first_name", "age", "vip", "n", "birth_date"]
ENGINES = ("sqlite", "sqlite-streamed", "duckdb", "postgresql")
STREAMING = ("sqlite-streamed", "duckdb", "postgresql")

RULES: dict[str, Any] = {
    "attribute": {"attribute": "n", "op": "less_than", "value": 150},
    "bought-in-june": {"event": "purchase", "within": {"between": ["2026-06-01", "2026-06-30"]}},
    "never-bought": {"not": {"event": "purchase"}},
    "name-contains": {"attribute": "first_name", "op": "contains", "value": "E"},
    "older-vips": {"all": [{"attribute": "vip", "op": "is_true"},
                           {"attribute": "age", "op": "greater_than", "value": 50}]},
    "nobody": {"attribute": "n", "op": "greater_than", "value": 10_000},
}

# The same change made to every copy before a refresh: members come and go, fields change.
CHANGES = (
    "UPDATE profiles SET n = n + 100 WHERE n BETWEEN 130 AND 140",
    "UPDATE profiles SET n = n - 100 WHERE n BETWEEN 200 AND 205",
    "UPDATE profiles SET email = 'changed-' || id WHERE n BETWEEN 10 AND 14",
    "UPDATE profiles SET first_name = NULL WHERE n BETWEEN 20 AND 22",
    "DELETE FROM profiles WHERE n BETWEEN 30 AND 33",
)


# ------------------------------------------------------------------ stores on every engine

PARENT_TABLES = ("event_types", "event_fields", "entities")


def copy_store(source: Path, target: str) -> None:
    """The SQLite store at ``source`` copied table by table into a new store at ``target``."""
    engine = engine_for(target)
    conn = engine.create_store()
    src = sqlite3.connect(source)
    try:
        with write_transaction(conn):
            tables = sorted((row[0] for row in src.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'meta'")),
                key=lambda name: (name not in PARENT_TABLES, name))  # referenced tables first
            for table in tables:
                info = src.execute(f"PRAGMA table_info({quote_identifier(table)})").fetchall()
                have = engine.table_columns(conn, table)
                if not have:
                    columns = ", ".join(f"{quote_identifier(c[1])} {engine.column_type(c[2] or 'TEXT')}"
                                        for c in info)
                    conn.execute(f"CREATE TABLE {quote_identifier(table)} ({columns})")
                for column in info:
                    if have and column[1] not in have:
                        conn.execute(f"ALTER TABLE {quote_identifier(table)} ADD COLUMN"
                                     f" {quote_identifier(column[1])} {engine.column_type(column[2])}")
                names = [c[1] for c in info]
                rows = src.execute(f"SELECT {', '.join(map(quote_identifier, names))}"
                                   f" FROM {quote_identifier(table)}").fetchall()
                if rows:
                    engine.bulk_insert(conn, table, names, rows)
    finally:
        src.close()
        conn.close()


class Stores:
    """The test store on each engine, and connections to them (closed at the end)."""

    def __init__(self, folder: Path, request: pytest.FixtureRequest, streamed: set[int]) -> None:
        self.folder = folder
        self.request = request
        self.streamed = streamed
        self.specs: dict[str, str] = {}
        self.opened: list[Connection] = []

    def spec(self, engine: str) -> str:
        """The ``--db`` value of the engine's copy of the store (made on first use)."""
        if engine not in self.specs:
            folder = self.folder / engine
            folder.mkdir()
            make_profile_store(folder / "shop.db")
            if engine.startswith("sqlite"):
                spec = str(folder / "shop.db")
            else:
                spec = (str(folder / "shop.duckdb") if engine == "duckdb"
                        else fresh_schema(self.request.getfixturevalue("postgres_url")))
                copy_store(folder / "shop.db", spec)
            self.specs[engine] = spec
        return self.specs[engine]

    def open(self, engine: str) -> Connection:
        """A read-only connection to the engine's store (the streaming path for sqlite-streamed)."""
        conn = engine_for(self.spec(engine)).open_store(readonly=True)
        self.opened.append(conn)
        if engine == "sqlite-streamed":
            self.streamed.add(id(conn))
        return conn

    def change(self, engine: str) -> None:
        """Make ``CHANGES`` to the engine's store."""
        conn = engine_for(self.spec(engine)).open_store()
        try:
            with write_transaction(conn):
                for statement in CHANGES:
                    conn.execute(statement)
        finally:
            conn.close()

    def close(self) -> None:
        for conn in self.opened:
            conn.close()
        forget_duckdb(self.specs.get("duckdb"))


def forget_duckdb(spec: str | None) -> None:
    """Release this process's DuckDB instance of a file (so another process may open it)."""
    if spec is not None:
        from store.engines.duckdb import DuckDBEngine

        DuckDBEngine.forget(spec)


@pytest.fixture()
def stores(tmp_path: Path, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    streamed: set[int] = set()
    attachable = activation.attachable_path
    monkeypatch.setattr(activation, "attachable_path",
                        lambda conn: None if id(conn) in streamed else attachable(conn))
    made = Stores(tmp_path, request, streamed)
    yield made
    made.close()


def members(campaign: Connection, segment_id: str) -> list[tuple[str, str]]:
    audience = find_audience(campaign, segment_id)
    return campaign.execute("SELECT profile_id, fields FROM audience_members WHERE audience_id = ?"
                            " ORDER BY profile_id", (audience.id,)).fetchall()


def outcome(result: Any) -> tuple[int, int, int, int, int]:
    return result.count, result.added, result.removed, result.kept, result.changed


def run_everywhere(stores: Stores, engines: tuple[str, ...],
                   step: Callable[[str, Connection, Connection], Any]) -> dict[str, Any]:
    """``step(engine, profile conn, campaign conn)`` for each engine, each with a campaign store."""
    results = {}
    for engine in engines:
        campaign = open_campaign(stores.folder / f"campaign-{engine}.db")
        try:
            results[engine] = step(engine, stores.open(engine), campaign)
        finally:
            campaign.close()
    return results


# ------------------------------------------------------------------ identical results


def test_every_engine_activates_the_same_members(stores: Stores) -> None:
    def step(engine: str, conn: Connection, campaign: Connection) -> dict[str, Any]:
        found = {}
        for name, rule in RULES.items():
            resolved = resolve_rule(conn, rule, name)
            result = activate(conn, campaign, resolved, AS_OF, FIELDS)
            found[name] = (outcome(result), members(campaign, resolved.segment.id))
        return found

    results = run_everywhere(stores, ENGINES, step)
    expected = results["sqlite"]
    assert all(rows for name, (_, rows) in expected.items() if name != "nobody")
    assert expected["nobody"] == ((0, 0, 0, 0, 0), [])
    for engine in ENGINES[1:]:
        for name in RULES:
            assert results[engine][name] == expected[name], f"{engine}: {name}"


def test_every_engine_refreshes_with_the_same_differences(stores: Stores) -> None:
    names = ("attribute", "name-contains", "older-vips")

    def first(engine: str, conn: Connection, campaign: Connection) -> None:
        for name in names:
            activate(conn, campaign, resolve_rule(conn, RULES[name], name), AS_OF, FIELDS)

    def refresh(engine: str, conn: Connection, campaign: Connection) -> dict[str, Any]:
        found = {}
        for name in names:
            resolved = resolve_rule(conn, RULES[name], name)
            reviewed = review(conn, campaign, resolved, AS_OF)
            result = activate(conn, campaign, resolved, AS_OF)
            assert (reviewed.count, reviewed.added, reviewed.removed, reviewed.kept,
                    reviewed.changed) == outcome(result)
            found[name] = (outcome(result), members(campaign, resolved.segment.id),
                           [m.profile_id for m in reviewed.samples_added],
                           [m.profile_id for m in reviewed.samples_removed])
        return found

    run_everywhere(stores, ENGINES, first)
    for engine in ENGINES:
        stores.change(engine)
    results = run_everywhere(stores, ENGINES, refresh)
    expected = results["sqlite"]
    (_, added, removed, _, changed), *_ = expected["attribute"]
    assert added and removed and changed, expected["attribute"][0]
    for engine in ENGINES[1:]:
        assert results[engine] == expected, engine


# ------------------------------------------------------------------ streaming


@pytest.mark.parametrize("engine", STREAMING)
def test_members_stream_in_bounded_batches(stores: Stores, monkeypatch: pytest.MonkeyPatch,
                                           engine: str) -> None:
    monkeypatch.setattr(activation, "STREAM_BATCH", 16)
    conn = stores.open(engine)
    campaign = open_campaign(stores.folder / "campaign.db")
    batches: list[int] = []
    executemany = campaign.executemany

    def spy(sql: str, rows: Any) -> Any:
        rows = list(rows)
        batches.append(len(rows))
        return executemany(sql, rows)

    campaign.executemany = spy  # type: ignore[method-assign]
    fractions: list[float] = []
    result = activate(conn, campaign, resolve_rule(conn, RULES["attribute"], "attribute"), AS_OF,
                      FIELDS, progress=lambda step, fraction: fractions.append(fraction))
    campaign.close()
    assert result.count == 149
    assert sum(batches) == 149 and max(batches) == 16 and len(batches) == 10
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len([f for f in fractions if 0 < f < 0.5]) >= 5  # progress while streaming


@pytest.mark.parametrize("engine", STREAMING)
def test_a_cancel_while_streaming_keeps_the_previous_members(stores: Stores,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             engine: str) -> None:
    conn = stores.open(engine)
    campaign = open_campaign(stores.folder / "campaign.db")
    resolved = resolve_rule(conn, RULES["attribute"], "attribute")
    activate(conn, campaign, resolved, AS_OF, FIELDS)
    before = members(campaign, "attribute")
    stores.change(engine)
    monkeypatch.setattr(activation, "STREAM_BATCH", 16)
    cancel = Cancel()
    reports: list[float] = []

    def progress(step: str, fraction: float) -> None:
        reports.append(fraction)
        if step == "Finding members" and fraction > 0:
            cancel.cancel()  # after the first batch is staged

    with pytest.raises(QueryCancelled):
        activate(conn, campaign, resolved, AS_OF, FIELDS, progress=progress, cancel=cancel)
    assert 0 < max(reports) < 0.5
    assert members(campaign, "attribute") == before
    assert len(history(campaign, find_audience(campaign, "attribute").id)) == 1
    assert not campaign.in_transaction
    staged = campaign.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0]
    assert staged == 0  # the staged rows are dropped
    # the same connections work afterwards
    assert activate(conn, campaign, resolved, AS_OF).count == len(before) - 11 + 6 - 4
    campaign.close()


SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000)"
        " SELECT pk, id FROM profiles WHERE (SELECT count(*) FROM c) > 0")


@pytest.mark.parametrize("engine", STREAMING)
def test_a_cancel_interrupts_a_query_that_has_not_returned_a_row(
        stores: Stores, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """The flag is watched while the profile engine still computes (no batch to look between)."""
    conn = stores.open(engine)
    campaign = open_campaign(stores.folder / "campaign.db")
    resolved = resolve_rule(conn, RULES["attribute"], "attribute")
    activate(conn, campaign, resolved, AS_OF, ["email"])
    before = members(campaign, "attribute")
    cancel = Cancel()
    timer = threading.Timer(0.5, cancel.cancel)
    started = time.monotonic()
    with monkeypatch.context() as patched:
        patched.setattr(activation, "member_rows_query", lambda *args: (SLOW, ()))
        timer.start()
        try:
            with pytest.raises(QueryCancelled):
                activate(conn, campaign, resolved, AS_OF, cancel=cancel)
        finally:
            timer.cancel()
    assert time.monotonic() - started < 5
    assert members(campaign, "attribute") == before
    assert activate(conn, campaign, resolved, AS_OF).added == 0  # the connections still work
    campaign.close()


KILL_WORKER = """
import datetime as dt, sys, time
from store.campaign import activation
from store.campaign.store import open_campaign
from store.engines.base import engine_for
from tests.engine_helpers import resolve_rule

activation.STREAM_BATCH = 8
conn = engine_for(sys.argv[1]).open_store(readonly=True)
campaign = open_campaign(sys.argv[2])
resolved = resolve_rule(conn, {"attribute": "n", "op": "less_than", "value": 150}, "attribute")

def progress(step, fraction):
    if step == "Finding members" and fraction > 0:
        print("streaming", flush=True)
        time.sleep(0.05)

print("ready", flush=True)
activation.activate(conn, campaign, resolved, dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC),
                    progress=progress)
print("committed", flush=True)
"""


def _pass_lines(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.strip())


@pytest.mark.parametrize("engine", ("duckdb", "postgresql"))
def test_a_kill_while_streaming_keeps_the_previous_members(stores: Stores, engine: str) -> None:
    conn = stores.open(engine)
    campaign_path = stores.folder / "campaign.db"
    campaign = open_campaign(campaign_path)
    activate(conn, campaign, resolve_rule(conn, RULES["attribute"], "attribute"), AS_OF, FIELDS)
    before = members(campaign, "attribute")
    campaign.close()
    stores.change(engine)
    conn.close()
    stores.opened.remove(conn)
    forget_duckdb(stores.specs.get("duckdb"))  # DuckDB lets one process at a time open the file
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", KILL_WORKER, stores.spec(engine),
                                    str(campaign_path)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pass_lines, args=(process, lines), daemon=True).start()
        try:
            assert lines.get(timeout=60) == "ready", process.stderr.read() if process.stderr else ""
            for _streamed in range(3):  # a few batches in
                assert lines.get(timeout=60) == "streaming"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        campaign = open_campaign(campaign_path)
        try:
            assert campaign.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert members(campaign, "attribute") == before
            assert len(history(campaign, find_audience(campaign, "attribute").id)) == 1
        finally:
            campaign.close()


# ------------------------------------------------------------------ which store an audience belongs to


def test_a_store_is_named_by_where_it_is_never_by_a_password(stores: Stores) -> None:
    duckdb_conn = stores.open("duckdb")
    assert store_location(duckdb_conn) == str((stores.folder / "duckdb" / "shop.duckdb").resolve())
    sqlite_conn = stores.open("sqlite")
    assert store_location(sqlite_conn) == str((stores.folder / "sqlite" / "shop.db").resolve())
    url = stores.spec("postgresql")
    with_password = url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    assert with_password != url
    pg = engine_for(with_password).open_store(readonly=True)
    stores.opened.append(pg)
    location = store_location(pg)
    assert "s3cret" not in location
    schema = engine_for(url).schema  # type: ignore[attr-defined]
    assert location.startswith("postgresql://postgres@") and location.endswith(f"schema={schema}")
    assert store_location(stores.open("postgresql")) == location
    campaign = open_campaign(stores.folder / "campaign.db")
    activate(pg, campaign, resolve_rule(pg, RULES["attribute"], "attribute"), AS_OF)
    assert find_audience(campaign, "attribute").source_db == location
    campaign.close()


@pytest.mark.parametrize("engine", ("duckdb", "postgresql"))
def test_another_store_on_the_engine_cannot_refresh_an_audience(stores: Stores, engine: str,
                                                                request: pytest.FixtureRequest) -> None:
    conn = stores.open(engine)
    campaign = open_campaign(stores.folder / "campaign.db")
    activate(conn, campaign, resolve_rule(conn, RULES["attribute"], "attribute"), AS_OF)
    other_folder = stores.folder / "other"
    other_folder.mkdir()
    make_profile_store(other_folder / "shop.db")
    other_spec = (str(other_folder / "shop.duckdb") if engine == "duckdb"
                  else fresh_schema(request.getfixturevalue("postgres_url")))
    copy_store(other_folder / "shop.db", other_spec)
    other = engine_for(other_spec).open_store(readonly=True)
    try:
        resolved = resolve_rule(other, RULES["attribute"], "attribute")
        with pytest.raises(StoreError, match="already holds the audience"):
            activate(other, campaign, resolved, AS_OF)
        with pytest.raises(StoreError, match="already holds the audience"):
            review(other, campaign, resolved, AS_OF)
        # the SQLite store the copies came from is another store too
        from store.engines.sqlite import open_store

        source = open_store(other_folder / "shop.db", readonly=True)
        with pytest.raises(StoreError, match="already holds the audience"):
            activate(source, campaign, resolved, AS_OF)
        source.close()
    finally:
        other.close()
        forget_duckdb(other_spec if engine == "duckdb" else None)
    assert activate(conn, campaign, resolve_rule(conn, RULES["attribute"], "attribute"),
                    AS_OF).added == 0
    campaign.close()


def test_a_server_store_is_named_without_its_password_and_with_its_schema() -> None:
    named = {url: engine_for(url).identity for url in (
        "postgresql://ann:pw1@db.internal:5433/shop?schema=crm&sslmode=require",
        "postgres://ann@db.internal:5433/shop?password=pw2&sslmode=require&schema=crm",
        "postgresql://ann@db.internal/shop",
    )}
    assert not any("pw" in identity for identity in named.values()), named
    first, second, third = named.values()
    assert first == second == "postgresql://ann@db.internal:5433/shop?sslmode=require&schema=crm"
    assert third == "postgresql://ann@db.internal/shop?schema=public"
    assert "pw2" not in engine_for("postgres://ann@h/shop?password=pw2").display
