"""The per-profile activity rollup (store/schema/activity.py), on every engine: every writer of
events leaves it current, a store changed behind its back is not trusted, and "any event in a
window" gives the same audience through it as through the events."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from sample_data import SEGMENTS_DIR
from store.engines.base import Connection, engine_for
from store.engines.layout import write_transaction
from store.ingest.copy import copy_store
from store.ingest.importer import import_events
from store.query.audience import count
from store.query.compiler import compile_segment
from store.sample.generator import generate_sample
from store.schema.activity import ACTIVITY_TABLE, activity_until
from store.schema.catalog import Catalog
from store.segments.library import resolve_file
from store.segments.model import EventCondition, Period, Segment, Window
from store.segments.validate import ResolvedSegment
from tests.test_engines_write import Location, normal, write

UNTIL = dt.date(2026, 11, 1)
AFTER_THE_DATA = dt.datetime(2026, 11, 1, 23, 59, 59, tzinfo=dt.UTC)
BEFORE_THE_END = dt.datetime(2026, 6, 1, 23, 59, 59, tzinfo=dt.UTC)


def latest_times(conn: Connection) -> list[tuple[Any, ...]]:
    return sorted((int(pk), normal(ts)) for pk, ts in conn.execute(
        f"SELECT profile_pk, last_ts FROM {ACTIVITY_TABLE}").fetchall())


def from_events(conn: Connection) -> list[tuple[Any, ...]]:
    return sorted((int(pk), normal(ts)) for pk, ts in conn.execute(
        "SELECT profile_pk, max(ts) FROM events GROUP BY profile_pk").fetchall())


def assert_current(location: str) -> Catalog:
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert latest_times(conn) == from_events(conn)
        catalog = Catalog.load(conn)
        newest = conn.execute("SELECT max(ts) FROM events").fetchone()[0]
        assert catalog.activity_until == float(newest)
        return catalog
    finally:
        conn.close()


def any_event(months: int | None) -> ResolvedSegment:
    within = Window(last=Period(months, "months")) if months is not None else None
    rule = EventCondition(None, (), within)
    return ResolvedSegment(Segment("active", "Active", rule), {})


def test_every_writer_of_events_keeps_the_rollup_current(
        engine_kind: str, fresh_location: Location, tmp_path: Path) -> None:
    location = fresh_location("sample")
    generate_sample(location, profiles=120, seed=3, until=UNTIL)
    assert_current(location)
    more = write(tmp_path / "more.csv", "profile_id,type,timestamp\n"
                 "newcomer,page_view,2026-11-20T08:00:00Z\n"
                 "newcomer,page_view,2026-11-02T08:00:00Z\n")
    import_events(location, more, create_profiles=True)
    catalog = assert_current(location)
    assert catalog.activity_until == dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC).timestamp()
    copied = fresh_location("copy")
    copy_store(engine_for(location), engine_for(copied))
    assert_current(copied)


def test_events_written_behind_its_back_make_the_rollup_unused(
        engine_kind: str, fresh_location: Location) -> None:
    location = fresh_location("sample")
    generate_sample(location, profiles=60, seed=4, until=UNTIL)
    segment = any_event(6)
    conn = engine_for(location).connect()
    try:
        before = count(conn, segment, AFTER_THE_DATA)
        with write_transaction(conn):  # a profile with no event in six months gets one
            quiet = conn.execute(
                "SELECT pk FROM profiles WHERE pk NOT IN (SELECT profile_pk FROM events"
                " WHERE ts >= ?) ORDER BY pk LIMIT 1",
                (dt.datetime(2026, 5, 1, tzinfo=dt.UTC).timestamp(),)).fetchone()[0]
            newest = conn.execute("SELECT max(pk) FROM events").fetchone()[0]
            conn.execute("INSERT INTO events (pk, profile_pk, type_id, ts) VALUES"
                         " (?, ?, (SELECT min(id) FROM event_types), ?)",
                         (newest + 1, quiet, dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp()))
        assert activity_until(conn) is None
        catalog = Catalog.load(conn)
        assert catalog.activity_until is None
        assert count(conn, segment, AFTER_THE_DATA, catalog) == before + 1
    finally:
        conn.close()


def test_a_store_without_the_rollup_still_counts(engine_kind: str,
                                                 fresh_location: Location) -> None:
    location = fresh_location("sample")
    generate_sample(location, profiles=60, seed=5, until=UNTIL)
    conn = engine_for(location).connect()
    try:
        expected = count(conn, any_event(None), AFTER_THE_DATA)
        with write_transaction(conn):  # as a store made before the rollup existed
            conn.execute(f"DROP TABLE {ACTIVITY_TABLE}")
        catalog = Catalog.load(conn)
        assert catalog.activity_until is None
        assert count(conn, any_event(None), AFTER_THE_DATA, catalog) == expected
    finally:
        conn.close()


def test_the_rollup_answers_windows_that_reach_the_latest_event(
        engine_kind: str, fresh_location: Location) -> None:
    """Dormant customers (no event of any kind in six months): through the rollup when the
    window reaches the data's end, through the events when it ends earlier, and the same
    audience both ways at both instants (the rollup forced where it is not chosen)."""
    location = fresh_location("sample")
    generate_sample(location, profiles=150, seed=6, until=UNTIL)
    conn = engine_for(location).open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        dormant = resolve_file(conn, SEGMENTS_DIR / "dormant-customers.yaml")
        dialect = conn.engine.dialect
        assert ACTIVITY_TABLE in compile_segment(dormant, catalog, AFTER_THE_DATA, dialect).sql
        assert ACTIVITY_TABLE not in compile_segment(dormant, catalog, BEFORE_THE_END,
                                                     dialect).sql
        without = replace(catalog, activity_until=None)
        forced = replace(catalog, activity_until=float("-inf"))
        for when in (AFTER_THE_DATA, BEFORE_THE_END):
            through_events = count(conn, dormant, when, without)
            assert count(conn, dormant, when, catalog) == through_events
            assert count(conn, dormant, when, forced) == through_events
            assert 0 < through_events < 150
    finally:
        conn.close()
