"""The main event shapes read the events through an index, never by scanning the table.

Plans come from EXPLAIN QUERY PLAN on a store with a few thousand events, with
and without the optional indexes of store/schema/indexes.py ((type_id, profile_pk, ts)
and the event types' covering indexes).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.engines.sqlite import open_store
from store.ingest.importer import import_events, import_profiles
from store.query.compiler import (
    CompiledQuery,
    compile_segment,
    count_query,
    explain,
    finish,
    in_pk_order,
    membership,
    profiles_select,
)
from store.schema.catalog import Catalog
from store.schema.indexes import attribute_indexes, ensure_indexes, field_indexes, missing_indexes
from tests.engine_helpers import resolve_rule
from tests.factory import EntitySpec, StoreSpec, build_store

UTC = dt.UTC
A = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(3)
    profiles = [{"id": f"p{i}", "gender": rng.choice(["male", "female", None]),
                 "tier": rng.choice(["gold", "silver", None])} for i in range(400)]
    events = [{"profile_id": f"p{rng.randrange(400)}",
               "type": rng.choice(["purchase", "view", "email"]),
               "timestamp": A - dt.timedelta(minutes=rng.randrange(0, 400 * 24 * 60)),
               "amount": round(rng.uniform(1, 200), 2), "order_id": f"o{rng.randrange(2000)}",
               "sku": f"s{rng.randrange(60)}"}
              for _ in range(5000)]
    spec = StoreSpec(attributes={"gender": "string", "tier": "string"}, profiles=profiles,
                     event_fields={"amount": "number", "order_id": "string"}, events=events,
                     entities={"product": EntitySpec("sku", "string", "sku",
                                                     {"sku": "string", "category": "string"},
                                                     [{"sku": f"s{i}", "category": f"c{i % 5}"}
                                                      for i in range(50)])})
    path: Path = tmp_path_factory.mktemp("plans") / "store.db"
    build_store(path, spec).close()
    return path


@pytest.fixture(params=["base", "extra-index", "analyzed-extra-index"])
def conn(request: pytest.FixtureRequest, store_path: Path,
         tmp_path: Path) -> sqlite3.Connection:
    """The store as created, with the recommended indexes, and with them created after an
    ANALYZE (what the sample generator does: the new indexes get no statistics)."""
    path = tmp_path / "store.db"
    shutil.copy(store_path, path)
    connection = open_store(path)
    if request.param == "analyzed-extra-index":
        connection.execute("ANALYZE")
    if request.param != "base":
        covering = sorted(index.name for index in field_indexes(Catalog.load(connection)).values())
        assert ensure_indexes(connection) == ["profiles_attr_gender", "profiles_attr_tier",
                                              "events_type_profile_ts", *covering]
        assert missing_indexes(connection) == []
        assert ensure_indexes(connection) == []
    return connection


PURCHASE = "purchase"
SHAPES: dict[str, Any] = {
    "2 purchases in 30 days": {"event": PURCHASE, "within": {"last": 30, "unit": "days"},
                               "count": {"op": "at_least", "value": 2}},
    "purchased ever": {"event": PURCHASE},
    "3 purchases in a year": {"event": PURCHASE, "within": {"last": 1, "unit": "years"},
                              "count": {"op": "at_least", "value": 3}},
    "no purchase in 90 days": {"event": PURCHASE, "within": {"last": 90, "unit": "days"},
                               "count": {"op": "at_most", "value": 0}},
    "any event in 7 days": {"event": "*", "within": {"last": 7, "unit": "days"}},
    "two types between dates": {"event": [PURCHASE, "view"],
                                "within": {"between": ["2026-01-01", "2026-01-31"]}},
    "where on a field": {"event": PURCHASE, "where": [
        {"attribute": "amount", "op": "greater_than", "value": 100}]},
    "where on an entity": {"event": PURCHASE, "within": {"last": 60, "unit": "days"}, "where": [
        {"attribute": "product.category", "op": "equals", "value": "c1"}]},
    "distinct orders": {"event": PURCHASE, "count": {"op": "at_least", "value": 2,
                                                     "distinct": "order_id"}},
    "sum of amounts": {"event": PURCHASE, "within": {"last": 180, "unit": "days"},
                       "aggregate": {"fn": "sum", "attribute": "amount",
                                     "op": "greater_or_equal", "value": 300}},
    "distinct orders in a year": {"event": PURCHASE, "within": {"last": 1, "unit": "years"},
                                  "count": {"op": "at_least", "value": 2,
                                            "distinct": "order_id"}},
    "average over an entity's category": {
        "event": PURCHASE, "within": {"last": 200, "unit": "days"},
        "where": [{"attribute": "product.category", "op": "in", "value": ["c1", "c2"]}],
        "aggregate": {"fn": "avg", "attribute": "amount", "op": "greater_than", "value": 50}},
    "gender and purchases": {"all": [
        {"attribute": "gender", "op": "equals", "value": "male"},
        {"event": PURCHASE, "within": {"last": 30, "unit": "days"},
         "count": {"op": "at_least", "value": 2}}]},
    "purchases but no email": {"all": [
        {"event": PURCHASE, "within": {"last": 30, "unit": "days"}},
        {"not": {"event": "email", "within": {"last": 30, "unit": "days"}}}]},
}


def plan(conn: sqlite3.Connection, rule: Any) -> tuple[list[str], list[str]]:
    compiled: CompiledQuery = compile_segment(resolve_rule(conn, rule), Catalog.load(conn), A)
    return explain(conn, compiled), explain(conn, count_query(compiled))


def events_steps(lines: list[str]) -> list[str]:
    return [line for line in lines if line.split(" ")[1:2] in (["ev"], ["events"])]


@pytest.mark.parametrize("name", SHAPES)
def test_event_shapes_search_the_events_index(conn: sqlite3.Connection, name: str) -> None:
    for lines in plan(conn, SHAPES[name]):
        steps = events_steps(lines)
        assert steps, lines
        for step in steps:
            assert step.startswith("SEARCH ") and " INDEX events_" in step, lines


def test_short_windows_read_the_time_range(conn: sqlite3.Connection) -> None:
    lines, _ = plan(conn, SHAPES["2 purchases in 30 days"])
    assert any("events_type_ts_profile (type_id=? AND ts>? AND ts<?)" in line for line in lines)


def test_wide_index_only_conditions_group_without_sorting(conn: sqlite3.Connection) -> None:
    lines, _ = plan(conn, SHAPES["3 purchases in a year"])
    has_extra = "events_type_profile_ts" not in missing_indexes(conn)
    uses_extra = any("events_type_profile_ts" in line for line in lines)
    assert uses_extra == has_extra, lines
    if has_extra:
        assert not any("TEMP B-TREE FOR GROUP BY" in line for line in lines), lines


@pytest.mark.parametrize("rule", [
    {"event": "*", "within": {"last": 6, "unit": "months"}, "count": {"op": "at_most", "value": 0}},
    {"event": "*"},
    {"all": [{"event": "*", "within": {"last": 1, "unit": "years"}},
             {"attribute": "tier", "op": "in", "value": ["gold", "silver"]}]},
])
def test_every_type_over_a_wide_window_probes_each_profile_in_pk_order(
        conn: sqlite3.Connection, rule: dict[str, object]) -> None:
    """One seek in (profile_pk, ts) per profile, the profiles read in pk order (no attribute
    index: its order would make the seeks random), and no temp B-tree of distinct profiles."""
    for lines in plan(conn, rule):
        probes = [line for line in lines if line.split(" ")[1:2] == ["probe"]]
        assert probes and all(step.startswith("SEARCH probe USING COVERING INDEX events_profile_ts")
                              for step in probes), lines
        assert "SCAN profiles" in lines, lines
        assert not any("TEMP B-TREE" in line for line in lines), lines


@pytest.mark.parametrize("name", ["2 purchases in 30 days", "gender and purchases",
                                  "purchases but no email"])
def test_an_event_set_drives_the_profile_lookups(conn: sqlite3.Connection, name: str) -> None:
    lines, _ = plan(conn, SHAPES[name])
    assert any(line.startswith("SEARCH profiles USING INTEGER PRIMARY KEY") for line in lines), lines
    assert not any(line.startswith("SCAN profiles") for line in lines), lines


def test_complements_are_counted_without_probing_every_profile(conn: sqlite3.Connection) -> None:
    members, counting = plan(conn, SHAPES["no purchase in 90 days"])
    assert any(line.startswith("LIST SUBQUERY") for line in members), members
    # total - |profiles with a purchase|: no membership test per profile.
    assert not any(line.startswith("LIST SUBQUERY") for line in counting), counting


def has_attribute_index(conn: sqlite3.Connection) -> bool:
    return "profiles_attr_gender" not in missing_indexes(conn)


def test_an_attribute_condition_searches_its_index(conn: sqlite3.Connection) -> None:
    members, counting = plan(conn, {"attribute": "gender", "op": "equals", "value": "male"})
    for lines in (members, counting):
        if has_attribute_index(conn):
            assert any(line.startswith("SEARCH profiles USING") and "profiles_attr_gender" in line
                       for line in lines), lines
        else:
            assert lines == ["SCAN profiles"], lines
    if has_attribute_index(conn):
        assert any("COVERING INDEX profiles_attr_gender" in line for line in counting), counting


def test_an_event_set_is_never_overridden_by_an_attribute_index(conn: sqlite3.Connection) -> None:
    rule = {"all": [{"attribute": "gender", "op": "in", "value": ["male", "female"]},
                    {"event": PURCHASE, "within": {"last": 1, "unit": "years"}},
                    {"not": {"attribute": "gender", "op": "equals", "value": "other"}}]}
    for lines in plan(conn, rule):
        assert not any("profiles_attr_" in line for line in lines), lines
        assert any(line.startswith("SEARCH profiles USING INTEGER PRIMARY KEY")
                   for line in lines), lines


def test_attribute_indexes_skip_derived_attributes(conn: sqlite3.Connection) -> None:
    names = set(attribute_indexes(conn))
    columns = {row[0] for row in conn.execute(
        "SELECT column_name FROM attributes WHERE derived_from IS NULL")} - {"id"}
    assert names == {f"profiles_attr_{column}" for column in columns}


GENDER = {"attribute": "gender", "op": "equals", "value": "male"}
TIER = {"attribute": "tier", "op": "equals", "value": "gold"}


@pytest.mark.parametrize("rule", [
    {"any": [GENDER, TIER]},
    {"all": [GENDER, {"not": {"attribute": "gender", "op": "equals", "value": "other"}}]},
])
def test_an_or_or_one_column_searches_the_indexes(conn: sqlite3.Connection, rule: Any) -> None:
    for lines in plan(conn, rule):
        assert any(line.startswith("SCAN profiles") for line in lines) != \
            has_attribute_index(conn), lines


def test_an_and_of_two_columns_scans_in_pk_order(conn: sqlite3.Connection) -> None:
    """No index on a common value (no STAT4: SQLite cannot tell gold from gender)."""
    for lines in plan(conn, {"all": [GENDER, TIER]}):
        assert lines == ["SCAN profiles"], lines


def test_pages_stop_early_in_pk_order(conn: sqlite3.Connection) -> None:
    resolved = resolve_rule(conn, GENDER)
    compiled = compile_segment(resolved, Catalog.load(conn), A)
    query = in_pk_order(profiles_select(membership(compiled)))
    query = query.order_by("pk").limit(10)
    final = finish(query, compiled.values)
    lines = explain(conn, final)
    assert lines == ["SCAN profiles"], lines


def test_imports_index_every_attribute(tmp_path: Path) -> None:
    path = tmp_path / "imported.db"
    profiles = tmp_path / "profiles.csv"
    profiles.write_text("id,country,spend\np1,GB,3.5\np2,DE,\n", encoding="utf-8")
    import_profiles(path, profiles)
    events = tmp_path / "events.csv"
    events.write_text("profile_id,type,timestamp\np1,purchase,2026-01-01T10:00:00Z\n",
                      encoding="utf-8")
    import_events(path, events)
    connection = open_store(path)
    try:
        assert missing_indexes(connection) == []
        assert {"profiles_attr_country", "profiles_attr_spend"} <= set(attribute_indexes(connection))
    finally:
        connection.close()


# ------------------------------------------------------------------ the types' covering indexes


def covering_index(conn: sqlite3.Connection, event_type: str = PURCHASE) -> str:
    catalog = Catalog.load(conn)
    return field_indexes(catalog)[catalog.event_types[event_type].id].name


def has_covering_index(conn: sqlite3.Connection) -> bool:
    return covering_index(conn) not in missing_indexes(conn)


def test_types_with_a_number_get_a_covering_index(conn: sqlite3.Connection) -> None:
    """A field that identifies (order_id) first, then the others; ts last."""
    catalog = Catalog.load(conn)
    indexes = field_indexes(catalog)
    assert set(indexes) == {t.id for t in catalog.event_types.values()}  # every type has amount
    index = indexes[catalog.event_types[PURCHASE].id]
    assert index.fields == ("order_id", "amount")
    assert index.statement.endswith(f'(type_id, profile_pk, "order_id", "amount", ts)'
                                    f" WHERE type_id = {catalog.event_types[PURCHASE].id}")


GROUPED_WIDE = ["distinct orders", "sum of amounts", "distinct orders in a year"]


@pytest.mark.parametrize("name", GROUPED_WIDE)
def test_grouped_wide_conditions_read_the_covering_index(conn: sqlite3.Connection,
                                                         name: str) -> None:
    """With the index: no table row, no sort, no temp B-tree per profile for a distinct count
    of the field that comes first. Without it: today's indexes, never a scan of the table."""
    index = covering_index(conn)
    for lines in plan(conn, SHAPES[name]):
        steps = events_steps(lines)
        if has_covering_index(conn):
            assert steps and all(f"COVERING INDEX {index} (type_id=?)" in s for s in steps), lines
            assert not any("TEMP B-TREE" in line for line in lines), lines
        else:
            assert steps and all(s.startswith("SEARCH ") and " INDEX events_" in s
                                 for s in steps), lines
            assert not any(index in line for line in lines), lines


def test_the_hint_stays_where_the_covering_index_does_not_serve(conn: sqlite3.Connection) -> None:
    """A short window, a field the index lacks, two types, or a bare "did" keep the
    (type_id, ts) index."""
    rules = [
        {"event": PURCHASE, "within": {"last": 7, "unit": "days"},
         "aggregate": {"fn": "sum", "attribute": "amount", "op": "greater_than", "value": 10}},
        {"event": [PURCHASE, "view"], "within": {"last": 1, "unit": "years"},
         "aggregate": {"fn": "sum", "attribute": "amount", "op": "greater_than", "value": 10}},
        {"event": PURCHASE, "within": {"last": 1, "unit": "years"},
         "where": [{"attribute": "amount", "op": "greater_than", "value": 100}]},
    ]
    for rule in rules:
        compiled: CompiledQuery = compile_segment(resolve_rule(conn, rule), Catalog.load(conn), A)
        assert 'INDEXED BY "events_type_ts_profile"' in compiled.sql, compiled.sql


def test_a_field_the_covering_index_lacks_keeps_the_hint(tmp_path: Path) -> None:
    """order_id is not a field of `view` in this store: its index cannot cover it."""
    path = tmp_path / "store.db"
    spec = StoreSpec(attributes={}, profiles=[{"id": "p1"}],
                     event_fields={"amount": "number", "order_id": "string"},
                     events=[{"profile_id": "p1", "type": "purchase", "timestamp": A,
                              "amount": 3.0, "order_id": "o1"},
                             {"profile_id": "p1", "type": "view", "timestamp": A,
                              "amount": 1.0}])
    connection = build_store(path, spec)
    try:
        ensure_indexes(connection)
        rule = {"event": "view", "within": {"last": 1, "unit": "years"},
                "count": {"op": "at_least", "value": 1, "distinct": "order_id"}}
        compiled = compile_segment(resolve_rule(connection, rule), Catalog.load(connection), A)
        assert 'INDEXED BY "events_type_ts_profile"' in compiled.sql, compiled.sql
    finally:
        connection.close()


def test_event_sets_are_intersected_before_the_profile_lookups(conn: sqlite3.Connection) -> None:
    """Only profiles in every set are looked up: the first set, filtered by the others."""
    rule = {"all": [{"attribute": "gender", "op": "equals", "value": "male"},
                    {"event": PURCHASE, "within": {"last": 90, "unit": "days"}},
                    {"event": "email", "within": {"last": 30, "unit": "days"}}]}
    members, counting = plan(conn, rule)
    for lines in (members, counting):
        assert sum(line.startswith("LIST SUBQUERY") for line in lines) == 2, lines
        assert sum(line.startswith("SEARCH profiles USING INTEGER PRIMARY KEY") for line in lines) \
            == 1, lines


def test_narrow_sets_are_read_for_the_members_of_the_streamed_set(
        conn: sqlite3.Connection) -> None:
    """A short window (or a ``where``) is pushed into the wide set's events query; two wide
    sets filter one another without seeks per member."""
    catalog = Catalog.load(conn)
    wide = {"event": PURCHASE, "within": {"last": 1, "unit": "years"}}
    narrow = {"event": "email", "within": {"last": 7, "unit": "days"}}
    pushed = compile_segment(resolve_rule(conn, {"all": [narrow, wide]}), catalog, A)
    assert '"ev"."profile_pk" IN (SELECT' in pushed.sql and "SELECT * FROM (" not in pushed.sql
    other = {"event": "view", "within": {"last": 200, "unit": "days"}}
    chained = compile_segment(resolve_rule(conn, {"all": [wide, other]}), catalog, A)
    assert '"ev"."profile_pk" IN' not in chained.sql, chained.sql
    assert 'SELECT * FROM (SELECT DISTINCT "ev"."profile_pk"' in chained.sql, chained.sql


def test_positive_entity_conditions_list_the_keys_once(conn: sqlite3.Connection) -> None:
    """A condition false without the entity: ``sku IN (keys)``; a negative one keeps the join."""
    rule = SHAPES["where on an entity"]
    compiled = compile_segment(resolve_rule(conn, rule), Catalog.load(conn), A)
    assert "JOIN" not in compiled.sql and '"ev"."sku" IN (SELECT' in compiled.sql, compiled.sql
    negative = {**rule, "where": [{"attribute": "product.category", "op": "not_equals",
                                   "value": "c1"}]}
    compiled = compile_segment(resolve_rule(conn, negative), Catalog.load(conn), A)
    assert "LEFT JOIN" in compiled.sql, compiled.sql
