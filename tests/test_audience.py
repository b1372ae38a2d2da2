"""Audience queries: counts, keyset pages, streamed ids, samples, node counts, breakdowns, cancel."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from store.engines.cancel import Cancel
from store.engines.layout import write_transaction
from store.errors import InputError, QueryCancelled
from store.query import audience
from store.schema.catalog import Catalog
from tests.engine_helpers import members, resolve_rule
from tests.factory import StoreSpec, build_store

UTC = dt.UTC
A = dt.datetime(2026, 3, 15, 12, tzinfo=UTC)
GROUPS = ("a", "b", "c", None)


def profile(i: int) -> dict[str, Any]:
    return {"id": f"u{i:04d}", "grp": GROUPS[i % 4], "vip": i % 3 == 0,
            "birth_date": dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28) if i % 10 else None}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    events = [{"profile_id": f"u{i:04d}", "type": "purchase",
               "timestamp": A - dt.timedelta(days=(i * k) % 60, hours=k)}
              for i in range(300) for k in range(i % 4)]
    spec = StoreSpec(attributes={"grp": "string", "vip": "boolean", "birth_date": "date"},
                     profiles=[profile(i) for i in range(300)], events=events,
                     event_types=("view",), derived_age_from="birth_date")
    path: Path = tmp_path_factory.mktemp("audience") / "store.db"
    return build_store(path, spec)


def ids_where(conn: sqlite3.Connection, rule: Any) -> set[str]:
    return members(conn, rule, A)


GRP_AB = {"attribute": "grp", "op": "in", "value": ["a", "b"]}
BUYER = {"event": "purchase", "within": {"last": 30, "unit": "days"}}
RULES = [GRP_AB, BUYER, {"all": [GRP_AB, BUYER]}, {"any": [GRP_AB, BUYER]},
         {"not": BUYER}, {"all": []}, {"any": []}]


@pytest.mark.parametrize("rule", RULES)
def test_count_and_total(conn: sqlite3.Connection, rule: Any) -> None:
    resolved = resolve_rule(conn, rule)
    assert audience.count(conn, resolved, A) == len(ids_where(conn, rule))
    assert audience.total(conn) == 300


@pytest.mark.parametrize("rule", RULES)
def test_keyset_pages_cover_the_audience_once(conn: sqlite3.Connection, rule: Any) -> None:
    resolved = resolve_rule(conn, rule)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        seen: list[tuple[int, str]] = []
        after = None
        while True:
            page = audience.member_page(conn, resolved, A, after_pk=after, limit=7)
            assert len(page) <= 7
            if not page:
                break
            seen.extend(page)
            after = page[-1][0]
    finally:
        conn.set_trace_callback(None)
    pks = [pk for pk, _ in seen]
    assert pks == sorted(set(pks))
    assert {pid for _, pid in seen} == ids_where(conn, rule)
    assert statements and not any("OFFSET" in s.upper() for s in statements)


def test_page_boundaries(conn: sqlite3.Connection) -> None:
    resolved = resolve_rule(conn, GRP_AB)
    first = audience.member_page(conn, resolved, A, limit=3)
    assert [pid for _, pid in first] == ["u0000", "u0001", "u0004"]
    # A page may start after a pk that is not a member.
    assert audience.member_page(conn, resolved, A, after_pk=first[-1][0] + 1, limit=2)[0][1] \
        == "u0008"
    assert audience.member_page(conn, resolved, A, after_pk=10_000) == []
    assert audience.member_page(conn, resolved, A, limit=0) == []


def test_member_ids_streams_every_member(conn: sqlite3.Connection) -> None:
    for rule in RULES:
        resolved = resolve_rule(conn, rule)
        streamed = list(audience.member_ids(conn, resolved, A, batch=16))
        assert len(streamed) == len(set(streamed))
        assert set(streamed) == ids_where(conn, rule)


def test_sample_is_deterministic_and_drawn_from_the_audience(conn: sqlite3.Connection) -> None:
    resolved = resolve_rule(conn, GRP_AB)
    audience_ids = ids_where(conn, GRP_AB)
    first = audience.sample(conn, resolved, A, n=10, seed=42)
    assert len(first) == 10 and len(set(first)) == 10
    assert {pid for _, pid in first} <= audience_ids
    assert audience.sample(conn, resolved, A, n=10, seed=42) == first
    others = {tuple(audience.sample(conn, resolved, A, n=10, seed=s)) for s in range(5)}
    assert len(others) > 1
    everyone = audience.sample(conn, resolved, A, n=1000, seed=1)
    assert {pid for _, pid in everyone} == audience_ids
    assert audience.sample(conn, resolve_rule(conn, {"any": []}), A, n=5, seed=1) == []


def test_sample_is_uniform() -> None:
    counts = [0] * 20
    for seed in range(4000):
        for item in audience.reservoir(iter(range(20)), 3, random.Random(seed)):
            counts[item] += 1
    assert min(counts) > 500 and max(counts) < 700  # expected 600 each


def test_node_counts_and_waterfall(conn: sqlite3.Connection) -> None:
    vip = {"attribute": "vip", "op": "is_true"}
    rule = {"all": [GRP_AB, BUYER, {"not": vip}, {"any": [vip, BUYER]}]}
    counts = audience.node_counts(conn, resolve_rule(conn, rule), A)
    by_path = {c.path: c for c in counts}
    assert [c.path for c in counts] == [
        "rule", "rule.all[0]", "rule.all[1]", "rule.all[2]", "rule.all[2].not",
        "rule.all[3]", "rule.all[3].any[0]", "rule.all[3].any[1]"]

    def size(r: Any) -> int:
        return len(ids_where(conn, r))

    assert by_path["rule"].own == size(rule) and by_path["rule"].remaining is None
    assert by_path["rule.all[2].not"].own == size(vip)
    children = rule["all"]
    for index, child in enumerate(children):
        node = by_path[f"rule.all[{index}]"]
        assert node.own == size(child)
        assert node.remaining == size({"all": children[:index + 1]})
    assert by_path["rule.all[3].any[0]"].remaining is None
    assert by_path["rule.all[3]"].remaining == by_path["rule"].own


def test_breakdown(conn: sqlite3.Connection) -> None:
    everyone = resolve_rule(conn, {"all": []})
    assert audience.breakdown(conn, everyone, A, "grp") == [
        ("a", 75), ("b", 75), ("c", 75), ("(missing)", 75)]
    assert audience.breakdown(conn, everyone, A, "grp", top=1) == [
        ("a", 75), ("Other", 150), ("(missing)", 75)]
    assert audience.breakdown(conn, resolve_rule(conn, GRP_AB), A, "grp") == [("a", 75), ("b", 75)]
    assert audience.breakdown(conn, everyone, A, "vip") == [("false", 200), ("true", 100)]
    assert audience.breakdown(conn, resolve_rule(conn, {"any": []}), A, "grp") == []
    with pytest.raises(InputError, match="unknown attribute"):
        audience.breakdown(conn, everyone, A, "grup")


def test_ages_and_dates_break_down_in_bands_that_match_their_conditions(
        conn: sqlite3.Connection) -> None:
    """Ages in bands of one round width and birth dates by decade, lowest first, missing
    last; each band is labelled by the ages it holds and holds exactly the profiles of the
    matching condition."""
    everyone = resolve_rule(conn, {"all": []})
    ages = audience.breakdown(conn, everyone, A, "age")
    assert ages[-1] == ("(missing)", 30)
    assert sum(n for _, n in ages) == 300
    assert_age_bands_hold_their_labels(conn, ages[:-1])
    assert all(int(label.partition("–")[0]) % 10 == 0 for label, _ in ages[1:-1])
    decades = audience.breakdown(conn, everyone, A, "birth_date")
    assert [label for label, _ in decades] == ["1950s", "1960s", "1970s", "1980s", "1990s",
                                               "(missing)"]
    for label, size in decades[:-1]:
        start = int(label[:4])
        rule = {"attribute": "birth_date", "op": "between",
                "value": [f"{start}-01-01", f"{start + 9}-12-31"]}
        assert len(ids_where(conn, rule)) == size, label


def assert_age_bands_hold_their_labels(conn: sqlite3.Connection,
                                       bands: list[tuple[str, int]]) -> None:
    """Each ``low–high`` (or single-age) band holds exactly the profiles of that age range."""
    for label, size in bands:
        low, _, high = label.partition("–")
        rule = {"attribute": "age", "op": "between", "value": [int(low), int(high or low)]}
        assert len(ids_where(conn, rule)) == size, label


def test_a_band_is_labelled_by_what_it_holds(conn: sqlite3.Connection) -> None:
    """After "age > 50" the first band starts at 51 (not 50), the last ends at the oldest
    age seen (not "90+")."""
    older = resolve_rule(conn, {"attribute": "age", "op": "greater_than", "value": 50})
    ages = audience.breakdown(conn, older, A, "age")
    assert ages and ages[0][0].startswith("51")
    oldest = max(int(label.rpartition("–")[2]) for label, _ in ages)
    assert not any(label.endswith("+") for label, _ in ages)
    assert ids_where(conn, {"attribute": "age", "op": "greater_than", "value": oldest}) == set()
    assert ids_where(conn, {"attribute": "age", "op": "equals", "value": oldest})
    assert_age_bands_hold_their_labels(conn, ages)
    assert sum(n for _, n in ages) == len(ids_where(conn, {"attribute": "age",
                                                           "op": "greater_than", "value": 50}))


@pytest.mark.parametrize(("values", "expected"), [
    # piled up at the bottom (most never bought; mean 99): widening 1-2-5 bands from 10
    ([0.0] * 50 + [15.0, 30.0, 70.0, 150.0, 300.0, 700.0, 1500.0, 3000.0],
     [("0–10", 50), ("10–20", 1), ("20–50", 1), ("50–100", 1), ("100–200", 1), ("200–500", 1),
      ("500–1,000", 1), ("1,000–2,000", 1), ("2,000+", 1), ("(missing)", 2)]),
    # spread evenly: bands of one round width
    ([float(i) for i in range(100)],
     [("0–20", 20), ("20–40", 20), ("40–60", 20), ("60–80", 20), ("80+", 20),
      ("(missing)", 2)]),
    ([7.5] * 3, [("7.5", 3), ("(missing)", 2)]),
])
def test_numbers_break_down_in_round_bands(tmp_path: Path, values: list[float],
                                           expected: list[tuple[str, int]]) -> None:
    profiles = [{"id": f"p{i}", "spend": v} for i, v in enumerate(values)]
    profiles += [{"id": "none1", "spend": None}, {"id": "none2", "spend": None}]
    store = build_store(tmp_path / "spend.db",
                        StoreSpec(attributes={"spend": "number"}, profiles=profiles))
    try:
        everyone = resolve_rule(store, {"all": []})
        assert audience.breakdown(store, everyone, A, "spend") == expected
    finally:
        store.close()


def test_band_widths_are_round() -> None:
    assert [audience.band_width(raw, whole=False) for raw in (0.3, 1.2, 12.375, 240, 0)] == [
        0.5, 2.0, 20.0, 250.0, 1.0]
    assert audience.band_width(0.3, whole=True) == 1.0
    assert audience.band_width(2.2, whole=True) == 5.0


# ------------------------------------------------------------------ cancellation


@pytest.fixture(scope="module")
def slow_store(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    """Enough events that a segment with many grouped conditions runs for seconds."""
    path: Path = tmp_path_factory.mktemp("slow") / "store.db"
    conn = build_store(path, StoreSpec(attributes={"grp": "string"},
                                       profiles=[{"id": "seed"}],
                                       event_fields={"order_id": "string"},
                                       event_types=("purchase",)))
    rng = random.Random(5)
    with write_transaction(conn):
        conn.executemany("INSERT INTO profiles(id) VALUES (?)", ((f"p{i}",) for i in range(20_000)))
        conn.executemany(
            "INSERT INTO events(profile_pk, type_id, ts, order_id) VALUES (?, 1, ?, ?)",
            ((rng.randrange(1, 20_001), 1_700_000_000 + i * 60, f"o{rng.randrange(50_000)}")
             for i in range(300_000)))
    return conn


def slow_rule(conditions: int) -> dict[str, Any]:
    return {"any": [{"event": "purchase", "count": {"op": "at_least", "value": 3 + i,
                                                    "distinct": "order_id"}}
                    for i in range(conditions)]}


def test_cancel_from_another_thread_stops_a_running_count(slow_store: sqlite3.Connection) -> None:
    resolved = resolve_rule(slow_store, slow_rule(40))
    catalog = Catalog.load(slow_store)
    cancel = Cancel()
    timer = threading.Timer(0.3, cancel.cancel)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(QueryCancelled):
            audience.count(slow_store, resolved, A, catalog, cancel)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 2.0
    # The connection is fine afterwards, and a new token counts normally.
    small = resolve_rule(slow_store, slow_rule(1))
    assert audience.count(slow_store, small, A, catalog, Cancel()) > 0


def test_a_cancelled_token_stops_every_audience_function(slow_store: sqlite3.Connection) -> None:
    resolved = resolve_rule(slow_store, slow_rule(1))
    cancel = Cancel()
    cancel.cancel()
    calls = [
        lambda: audience.count(slow_store, resolved, A, cancel=cancel),
        lambda: audience.member_page(slow_store, resolved, A, cancel=cancel),
        lambda: list(audience.member_ids(slow_store, resolved, A, cancel=cancel)),
        lambda: audience.sample(slow_store, resolved, A, cancel=cancel),
        lambda: audience.node_counts(slow_store, resolved, A, cancel=cancel),
        lambda: audience.breakdown(slow_store, resolved, A, "grp", cancel=cancel),
        lambda: audience.total(slow_store, cancel=cancel),
    ]
    for call in calls:
        with pytest.raises(QueryCancelled):
            call()


def test_cancel_stops_a_stream_between_batches(slow_store: sqlite3.Connection) -> None:
    resolved = resolve_rule(slow_store, {"all": []})
    cancel = Cancel()
    stream = audience.member_ids(slow_store, resolved, A, cancel=cancel, batch=100)
    assert next(stream) == "seed"
    cancel.cancel()
    with pytest.raises(QueryCancelled):
        list(stream)
    assert audience.total(slow_store) == 20_001


def test_node_counts_can_be_cancelled_midway(slow_store: sqlite3.Connection) -> None:
    resolved = resolve_rule(slow_store, {"all": [slow_rule(15), slow_rule(15)]})
    cancel = Cancel()
    timer = threading.Timer(0.2, cancel.cancel)
    timer.start()
    try:
        with pytest.raises(QueryCancelled):
            audience.node_counts(slow_store, resolved, A, cancel=cancel)
    finally:
        timer.cancel()
