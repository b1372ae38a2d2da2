"""The event types' covering indexes and the compiler paths that lean on them.

Counts must not depend on which indexes a store has: the property check of
tests/test_property.py runs again on stores with every recommended index, and
fixed shapes are counted on a store with and without them. The plans
themselves are checked in tests/test_query_plans.py.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from sqlglot import exp

from store.engines.layout import write_transaction
from store.query import sqlbuild as sb
from store.query.audience import count
from store.query.evaluator import load_all_profiles, matches
from store.schema.catalog import Catalog, ensure_event_field
from store.schema.indexes import ensure_indexes, field_indexes, missing_indexes
from store.segments.model import Node, Segment
from tests.engine_helpers import resolve_rule
from tests.factory import EntitySpec, StoreSpec, build_store
from tests.strategies import Scene
from tests.test_property import PROPERTY, assert_counts_agree, built, cases

A = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@settings(PROPERTY, max_examples=150)
@given(cases(leaves=8))
def test_counts_equal_evaluator_with_every_index(
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    scene, library, trees = case
    with built(scene.spec, "sqlite", None) as conn:  # SQLite's covering indexes
        ensure_indexes(conn)
        catalog = Catalog.load(conn)
        profiles = list(load_all_profiles(conn, catalog))
        checked: set[Node] = set()
        for rule in trees:
            assert_counts_agree(conn, catalog, profiles, scene.as_of, rule, library, checked)


def small_store(path: Path) -> sqlite3.Connection:
    rng = random.Random(11)
    profiles = [{"id": f"p{i}", "tier": rng.choice(["gold", "silver", None])} for i in range(300)]
    events = [{"profile_id": f"p{rng.randrange(300)}",
               "type": rng.choice(["purchase", "purchase", "view", "email"]),
               "timestamp": A - dt.timedelta(minutes=rng.randrange(0, 500 * 24 * 60)),
               "amount": rng.choice([None, round(rng.uniform(1, 90), 2)]),
               "order_id": rng.choice([None, f"o{rng.randrange(400)}"]),
               "sku": rng.choice([f"s{rng.randrange(12)}", "ghost", None])}
              for _ in range(4000)]
    products = [{"sku": f"s{i}", "category": rng.choice(["c1", "c2", None])} for i in range(10)]
    spec = StoreSpec(attributes={"tier": "string"}, profiles=profiles,
                     event_fields={"amount": "number", "order_id": "string"}, events=events,
                     entities={"product": EntitySpec("sku", "string", "sku",
                                                     {"sku": "string", "category": "string"},
                                                     products)})
    return build_store(path, spec)


CATEGORY = {"attribute": "product.category", "op": "in", "value": ["c1", "c2"]}
RULES: list[Any] = [
    {"event": "purchase", "count": {"op": "at_least", "value": 2, "distinct": "order_id"}},
    {"event": "purchase", "within": {"last": 1, "unit": "years"},
     "count": {"op": "between", "value": [2, 4], "distinct": "order_id"}},
    {"event": "purchase", "within": {"last": 180, "unit": "days"},
     "aggregate": {"fn": "sum", "attribute": "amount", "op": "greater_or_equal", "value": 100}},
    {"event": "purchase", "within": {"last": 180, "unit": "days"},
     "aggregate": {"fn": "sum", "attribute": "amount", "op": "less_than", "value": 50}},
    {"event": "purchase", "within": {"last": 200, "unit": "days"}, "where": [CATEGORY],
     "aggregate": {"fn": "avg", "attribute": "amount", "op": "greater_than", "value": 30}},
    {"event": "purchase", "within": {"last": 90, "unit": "days"}, "where": [CATEGORY]},
    {"event": "purchase", "where": [{"attribute": "product.category", "op": "not_in",
                                     "value": ["c1"]}, CATEGORY]},
    {"event": "purchase", "where": [{"attribute": "product.category", "op": "is_empty"}],
     "count": {"op": "at_most", "value": 1}},
    {"all": [{"event": "purchase", "within": {"last": 90, "unit": "days"}},
             {"event": "email", "within": {"last": 30, "unit": "days"}},
             {"any": [{"event": "view", "within": {"last": 20, "unit": "days"}},
                      {"event": "purchase", "where": [CATEGORY]}]},
             {"attribute": "tier", "op": "equals", "value": "gold"}]},
    {"all": [{"any": [{"event": "view", "within": {"last": 20, "unit": "days"}},
                      {"event": "email", "within": {"last": 9, "unit": "days"}}]},
             {"not": {"event": "purchase", "within": {"last": 60, "unit": "days"},
                      "count": {"op": "at_most", "value": 0}}}]},
    {"any": [{"not": {"event": "view", "within": {"last": 30, "unit": "days"}}},
             {"all": [{"not": {"event": "email", "within": {"last": 30, "unit": "days"}}},
                      {"not": {"event": "purchase", "within": {"last": 30, "unit": "days"}}}]}]},
]


@pytest.mark.parametrize("index", range(len(RULES)))
def test_counts_agree_with_and_without_the_indexes(tmp_path: Path, index: int) -> None:
    """The same rule on the same rows, with and without the recommended indexes, and the
    evaluator's count."""
    bare = small_store(tmp_path / "bare.db")
    indexed = small_store(tmp_path / "indexed.db")
    try:
        assert ensure_indexes(indexed)
        rule = RULES[index]
        resolved = resolve_rule(bare, rule)
        catalog = Catalog.load(bare)
        expected = sum(matches(p, resolved, A) for p in load_all_profiles(bare, catalog))
        assert count(bare, resolved, A) == expected
        assert count(indexed, resolve_rule(indexed, rule), A) == expected
    finally:
        bare.close()
        indexed.close()


def test_a_new_field_rebuilds_the_types_covering_index(tmp_path: Path) -> None:
    conn = small_store(tmp_path / "store.db")
    try:
        ensure_indexes(conn)
        assert missing_indexes(conn) == []
        purchase = Catalog.load(conn).event_types["purchase"].id
        with write_transaction(conn):
            ensure_event_field(conn, "quantity", "integer", [purchase])
        name = field_indexes(Catalog.load(conn))[purchase].name
        assert missing_indexes(conn) == [name]
        assert ensure_indexes(conn) == [name]
        assert ensure_indexes(conn) == []
        columns = [row[2] for row in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))]
        assert columns == ["type_id", "profile_pk", "order_id", "amount", "quantity", "ts"]
    finally:
        conn.close()


def wide_store(path: Path) -> sqlite3.Connection:
    """Purchases with ten fields: long texts, several numbers, a link."""
    rng = random.Random(5)
    texts = {name: "string" for name in ("description", "landing_url", "order_ref", "note")}
    numbers = {name: "number" for name in ("amount", "discount", "tax", "weight")}
    events = [{"profile_id": f"p{rng.randrange(80)}", "type": "purchase",
               "timestamp": A - dt.timedelta(hours=rng.randrange(0, 400 * 24)),
               **{name: rng.choice([None, f"{name}-{rng.randrange(5)}" * 8]) for name in texts},
               **{name: rng.choice([None, round(rng.uniform(0, 50), 1)]) for name in numbers},
               "paid": rng.choice([True, False, None]),
               "sku": rng.choice(["s1", "s2", None])}
              for _ in range(1500)]
    spec = StoreSpec(profiles=[{"id": f"p{i}"} for i in range(80)],
                     event_fields={**texts, **numbers, "paid": "boolean", "sku": "string"},
                     events=events,
                     entities={"product": EntitySpec("sku", "string", "sku",
                                                     {"sku": "string", "category": "string"},
                                                     [{"sku": "s1", "category": "c1"}])})
    return build_store(path, spec)


def test_a_wide_types_covering_index_holds_a_bounded_choice_of_fields(tmp_path: Path) -> None:
    """The first identifier, the numbers and the link are covered; long texts beyond the
    first are not, and conditions on them still count right (the evaluator agrees)."""
    conn = wide_store(tmp_path / "store.db")
    try:
        ensure_indexes(conn)
        index = field_indexes(Catalog.load(conn))[Catalog.load(conn).event_types["purchase"].id]
        assert index.fields == ("description", "amount", "discount", "sku", "tax", "weight")
        columns = [row[2] for row in
                   conn.execute("SELECT * FROM pragma_index_info(?)", (index.name,))]
        assert len(columns) == 2 + 6 + 1
        catalog = Catalog.load(conn)
        profiles = list(load_all_profiles(conn, catalog))
        for rule in (
            {"event": "purchase", "within": {"last": 1, "unit": "years"},
             "where": [{"attribute": "note", "op": "contains", "value": "note-1"}],
             "aggregate": {"fn": "sum", "attribute": "tax", "op": "greater_than", "value": 40}},
            {"event": "purchase", "count": {"op": "at_least", "value": 2,
                                            "distinct": "order_ref"}},
            {"event": "purchase", "where": [{"attribute": "paid", "op": "is_true"}],
             "aggregate": {"fn": "max", "attribute": "weight", "op": "greater_than",
                           "value": 45}},
            {"event": "purchase", "within": {"last": 1, "unit": "years"},
             "aggregate": {"fn": "avg", "attribute": "amount", "op": "less_than", "value": 20}},
        ):
            resolved = resolve_rule(conn, rule)
            expected = sum(matches(p, resolved, A) for p in profiles)
            assert count(conn, resolved, A) == expected, rule
    finally:
        conn.close()


def test_types_without_a_number_get_no_covering_index(tmp_path: Path) -> None:
    spec = StoreSpec(profiles=[{"id": "p1"}], event_fields={"campaign": "string"},
                     events=[{"profile_id": "p1", "type": "email", "timestamp": A,
                              "campaign": "c"}])
    conn = build_store(tmp_path / "store.db", spec)
    try:
        assert field_indexes(Catalog.load(conn)) == {}
        assert not [name for name in ensure_indexes(conn) if name.endswith("_fields")]
    finally:
        conn.close()


def values(conn: sqlite3.Connection, query: exp.Query) -> set[int]:
    sql, params = sb.render(cast(exp.Expression, query), [])
    return {row[0] for row in conn.execute(sql, params)}


def test_mixed_compounds_keep_their_grouping() -> None:
    """SQLite reads compounds left to right without parentheses: a UNION inside an INTERSECT
    (or the reverse) must stay a unit, wherever it stands."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(name TEXT, x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)",
                     [("a", 1), ("a", 2), ("b", 3), ("c", 1)])
    a, b, c = (rows_named(name) for name in "abc")
    assert values(conn, sb.intersect([c, sb.union([a, b])])) == {1}  # not (c & a) | b
    assert values(conn, sb.intersect([sb.union([a, b]), c])) == {1}
    assert values(conn, sb.union([c, sb.intersect([a, b])])) == {1}  # not (c | a) & b
    assert values(conn, sb.union([b, sb.intersect([a, c])])) == {1, 3}


def rows_named(name: str) -> exp.Select:
    return exp.select(sb.column("x")).from_(sb.table("t"), copy=False).where(
        sb.column("name").eq(sb.literal(name)), copy=False)
