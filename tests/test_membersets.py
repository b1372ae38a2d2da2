"""Node counts from leaf member sets: a kept cache reads only the edited leaf again."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store.engines.layout import write_transaction
from store.engines.sqlite import connect
from store.query import audience
from store.query.compiler import compile_node
from store.query.membersets import MemberSetCache, load_universe, population
from store.schema.catalog import Catalog
from store.segments.model import AllOf, walk
from tests.engine_helpers import resolve_rule
from tests.factory import StoreSpec, build_store

UTC = dt.UTC
A = dt.datetime(2026, 3, 15, 12, tzinfo=UTC)

MALE = {"attribute": "gender", "op": "equals", "value": "male"}
ADULT = {"attribute": "age", "op": "greater_or_equal", "value": 30}
BUYER = {"event": "purchase", "within": {"last": 30, "unit": "days"}}
NO_VIEW = {"event": "view", "within": {"last": 10, "unit": "days"},
           "count": {"op": "at_most", "value": 0}}
RULE = {"all": [MALE, ADULT, BUYER, {"not": {"attribute": "vip", "op": "is_true"}},
                {"any": [NO_VIEW, {"attribute": "gender", "op": "is_empty"}]}]}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    profiles = [{"id": f"u{i:03d}", "gender": ("male", "female", None)[i % 3],
                 "vip": i % 4 == 0, "birth_date": dt.date(1960 + i % 45, 1 + i % 12, 1)}
                for i in range(240)]
    events = [{"profile_id": f"u{i:03d}", "type": ("purchase", "view")[k % 2],
               "timestamp": A - dt.timedelta(days=(i * 7 + k * 5) % 50, hours=k)}
              for i in range(240) for k in range(i % 5)]
    spec = StoreSpec(attributes={"gender": "string", "vip": "boolean", "birth_date": "date"},
                     profiles=profiles, events=events, derived_age_from="birth_date")
    return build_store(tmp_path / "store.db", spec)


def per_node_sql(conn: sqlite3.Connection, rule: Any) -> dict[str, tuple[int, int | None]]:
    """Each node's own count and waterfall, one SQL count each (the reference)."""
    resolved = resolve_rule(conn, rule)
    catalog = Catalog.load(conn)

    def size(node: Any, path: str) -> int:
        return audience.run_count(conn, compile_node(node, resolved, catalog, A, path=path))

    nodes = dict(walk(resolved.segment.rule))
    found: dict[str, tuple[int, int | None]] = {}
    for path, node in nodes.items():
        parent_path, _, last = path.rpartition(".")
        remaining = None
        if last.startswith("all["):
            index = int(last[4:-1])
            parent = nodes[parent_path]
            assert isinstance(parent, AllOf)
            remaining = size(AllOf(parent.children[:index + 1]), parent_path)
        found[path] = (size(node, path), remaining)
    return found


def as_dict(counts: list[audience.NodeCount]) -> dict[str, tuple[int, int | None]]:
    return {c.path: (c.own, c.remaining) for c in counts}


def test_node_counts_match_one_count_per_node(conn: sqlite3.Connection) -> None:
    counts = audience.node_counts(conn, resolve_rule(conn, RULE), A)
    assert as_dict(counts) == per_node_sql(conn, RULE)
    assert counts[0].own > 0


def test_after_one_edit_only_the_edited_leaf_is_read(conn: sqlite3.Connection) -> None:
    cache = MemberSetCache()
    audience.node_counts(conn, resolve_rule(conn, RULE), A, cache=cache)
    assert cache.reads == 6  # six distinct leaves
    edited = {"all": [MALE, {**ADULT, "value": 40}, *RULE["all"][2:]]}
    counts = audience.node_counts(conn, resolve_rule(conn, edited), A, cache=cache)
    assert cache.reads == 7
    assert as_dict(counts) == per_node_sql(conn, edited)
    audience.node_counts(conn, resolve_rule(conn, edited), A, cache=cache)
    assert cache.reads == 7
    later = A + dt.timedelta(days=400)
    audience.node_counts(conn, resolve_rule(conn, edited), later, cache=cache)
    assert cache.reads == 13  # another as-of instant: every leaf again


def test_a_write_to_the_store_empties_the_cache(conn: sqlite3.Connection) -> None:
    cache = MemberSetCache()
    resolved = resolve_rule(conn, {"any": [MALE, BUYER]})
    before = audience.node_counts(conn, resolved, A, cache=cache)
    with write_transaction(conn):
        conn.execute("INSERT INTO profiles(id, gender) VALUES ('new', 'male')")
    after = audience.node_counts(conn, resolved, A, cache=cache)
    assert after[0].own == before[0].own + 1
    assert cache.reads == 4


def test_complements_stay_within_the_profiles_when_pks_have_gaps(conn: sqlite3.Connection) -> None:
    with write_transaction(conn):
        conn.execute("INSERT INTO profiles(pk, id, gender) VALUES (5000, 'far', 'female')")
    universe = load_universe(conn)
    assert population(universe.everyone) == audience.total(conn) == 241
    rule = {"all": [{"not": MALE}, NO_VIEW, {"not": BUYER}]}
    assert as_dict(audience.node_counts(conn, resolve_rule(conn, rule), A)) == \
        per_node_sql(conn, rule)


def test_a_capacity_bounds_the_kept_leaves(conn: sqlite3.Connection) -> None:
    cache = MemberSetCache(capacity=2)
    audience.node_counts(conn, resolve_rule(conn, RULE), A, cache=cache)
    assert len(cache.leaves) == 2
    assert all(isinstance(bits, np.ndarray) for bits in cache.leaves.values())


def test_another_connection_or_its_commits_empty_the_cache(conn: sqlite3.Connection,
                                                           tmp_path: Path) -> None:
    cache = MemberSetCache()
    resolved = resolve_rule(conn, MALE)
    first = audience.node_counts(conn, resolved, A, cache=cache)[0].own
    other = connect(tmp_path / "store.db")
    try:
        other.execute("INSERT INTO profiles(id, gender) VALUES ('elsewhere', 'male')")
        assert audience.node_counts(conn, resolved, A, cache=cache)[0].own == first + 1
        assert audience.node_counts(other, resolved, A, cache=cache)[0].own == first + 1
        assert cache.reads == 3
    finally:
        other.close()
