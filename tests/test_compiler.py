"""The segment compiler, case by case against a small hand-made store.

Every expected audience below was worked out by hand from spec/segments.md.
As-of A = 2026-03-15 14:30:00 UTC, so D = 2026-03-15.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.errors import InputError
from store.query.compiler import compile_node, compile_segment, count_query, pretty_sql
from store.schema.catalog import Catalog
from store.segments.library import save_segment
from store.segments.model import AllOf, AnyOf, AttributeCondition, EventCondition, Node, NotOf, Segment
from store.segments.validate import ResolvedSegment
from tests.engine_helpers import compiled, members, resolve_rule
from tests.factory import EntitySpec, StoreSpec, build_store

UTC = dt.UTC
A = dt.datetime(2026, 3, 15, 14, 30, tzinfo=UTC)
ALL = {"p1", "p2", "p3", "p4", "p5", "p6"}
INJECTION = "'; DROP TABLE profiles; --"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


PROFILES: list[dict[str, Any]] = [
    {"id": "p1", "name": "Alice Smith", "gender": "female", "tag": "50%_off",
     "birth_date": dt.date(1980, 3, 15), "vip": True, "score": 10.5, "points": 100,
     "signup": at("2026-03-15 09:00:00"), "last_login": dt.date(2026, 3, 15)},
    {"id": "p2", "name": "bob", "gender": "male", "tag": "50 percent off",
     "birth_date": dt.date(2000, 2, 29), "vip": False, "score": 0.0, "points": 0,
     "signup": at("2026-03-14 23:59:59"), "last_login": dt.date(2026, 2, 28)},
    {"id": "p3", "name": "O'Brien", "gender": "", "tag": "a_b\\c",
     "birth_date": dt.date(1980, 3, 16), "vip": None, "score": -2.25, "points": -5,
     "signup": at("2026-03-15 14:30:00"), "last_login": dt.date(2026, 3, 31)},
    {"id": "p4", "name": INJECTION, "gender": "MALE", "tag": "100%", "birth_date": None,
     "vip": True, "score": None, "points": 50, "signup": at("2025-03-15 00:00:00"),
     "last_login": dt.date(2025, 12, 31)},
    {"id": "p5"},
    {"id": "p6", "name": "ALICE", "gender": "female", "tag": "xoffx",
     "birth_date": dt.date(2026, 3, 15), "vip": False, "score": 1e9, "points": 7,
     "signup": at("2026-03-16 00:00:00"), "last_login": dt.date(2026, 2, 14)},
]

EVENTS: list[dict[str, Any]] = [
    {"profile_id": "p1", "type": "purchase", "timestamp": A, "amount": 100.0, "qty": 1,
     "order_id": "o1", "sku": "S1"},
    {"profile_id": "p1", "type": "purchase", "timestamp": at("2026-03-10 08:00:00"),
     "amount": 50.0, "qty": 2, "order_id": "o1", "sku": "S2"},
    {"profile_id": "p1", "type": "purchase", "timestamp": at("2026-01-10 12:00:00"),
     "amount": 20.0, "order_id": "o2", "sku": "S9"},
    {"profile_id": "p1", "type": "view", "timestamp": at("2026-03-14 10:00:00")},
    {"profile_id": "p2", "type": "purchase", "timestamp": A + dt.timedelta(seconds=1),
     "amount": 500.0, "sku": "S1"},
    {"profile_id": "p2", "type": "view", "timestamp": at("2026-03-15 00:00:00")},
    {"profile_id": "p2", "type": "view", "timestamp": at("2026-02-14 23:59:59")},
    {"profile_id": "p3", "type": "purchase", "timestamp": at("2026-02-16 00:00:00"), "qty": 3,
     "order_id": "o3"},
    {"profile_id": "p3", "type": "email", "timestamp": at("2026-03-01 00:00:00")},
    {"profile_id": "p4", "type": "email", "timestamp": at("2025-01-01 00:00:00")},
]


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    spec = StoreSpec(
        attributes={"name": "string", "gender": "string", "tag": "string", "birth_date": "date",
                    "vip": "boolean", "score": "number", "points": "integer",
                    "signup": "datetime", "last_login": "date"},
        profiles=PROFILES,
        event_fields={"amount": "number", "qty": "integer", "order_id": "string"},
        events=EVENTS,
        entities={"product": EntitySpec("sku", "string", "sku",
                                        {"sku": "string", "category": "string"},
                                        [{"sku": "S1", "category": "Shoes"},
                                         {"sku": "S2", "category": "Boots"}])},
        derived_age_from="birth_date",
    )
    path: Path = tmp_path_factory.mktemp("compiler") / "store.db"
    return build_store(path, spec)


def cond(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op}
    if value is not None:
        node["value"] = value
    return node


def check(conn: sqlite3.Connection, rule: dict[str, Any] | Node, expected: set[str],
          as_of: dt.datetime = A) -> None:
    assert members(conn, rule, as_of) == expected
    # A negative twin (or `not`) is the exact complement over all profiles.
    negated = {"not": rule} if isinstance(rule, dict) else NotOf(rule)
    assert members(conn, negated, as_of) == ALL - expected


# ------------------------------------------------------------------ strings

@pytest.mark.parametrize(("rule", "expected"), [
    (cond("name", "equals", "bob"), {"p2"}),
    (cond("name", "equals", "Bob"), set()),
    (cond("name", "not_equals", "bob"), {"p1", "p3", "p4", "p5", "p6"}),
    (cond("name", "in", ["bob", "ALICE"]), {"p2", "p6"}),
    (cond("name", "not_in", ["bob", "ALICE"]), {"p1", "p3", "p4", "p5"}),
    (cond("name", "contains", "alice"), {"p1", "p6"}),
    (cond("name", "not_contains", "alice"), {"p2", "p3", "p4", "p5"}),
    (cond("name", "starts_with", "aL"), {"p1", "p6"}),
    (cond("name", "ends_with", "SMITH"), {"p1"}),
    (cond("name", "contains", "'"), {"p3", "p4"}),
    (cond("name", "equals", INJECTION), {"p4"}),
    (cond("name", "contains", "; drop table"), {"p4"}),
    (cond("tag", "contains", "%"), {"p1", "p4"}),
    (cond("tag", "contains", "50%"), {"p1"}),
    (cond("tag", "contains", "_"), {"p1", "p3"}),
    (cond("tag", "contains", "%_"), {"p1"}),
    (cond("tag", "starts_with", "_"), set()),
    (cond("tag", "ends_with", "%"), {"p4"}),
    (cond("tag", "contains", "\\"), {"p3"}),
    (cond("tag", "contains", "b\\c"), {"p3"}),
    (cond("name", "contains", ""), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("name", "is_empty"), {"p5"}),
    (cond("name", "is_not_empty"), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("gender", "is_empty"), {"p3", "p5"}),
    (cond("gender", "equals", "male"), {"p2"}),
    (cond("gender", "not_equals", "male"), {"p1", "p3", "p4", "p5", "p6"}),
    (cond("id", "in", ["p1", "p9"]), {"p1"}),
])
def test_string_operators(conn: sqlite3.Connection, rule: dict[str, Any],
                          expected: set[str]) -> None:
    check(conn, rule, expected)


def test_values_never_reach_sql_text(conn: sqlite3.Connection) -> None:
    rule = {"all": [cond("name", "equals", INJECTION), cond("points", "greater_than", 41),
                    cond("tag", "contains", "50%"), cond("last_login", "on", "2026-03-15"),
                    {"event": "purchase", "within": {"last": 30, "unit": "days"},
                     "count": {"op": "at_least", "value": 7}}]}
    query = compiled(conn, rule, A)
    text = query.sql.replace("ESCAPE '\\'", "")
    text = re.sub(r'"[^"]*"', "", text)  # quoted identifiers
    assert "'" not in text
    assert not re.search(r"\d", text), text
    assert INJECTION in query.params and 41 in query.params and "%50\\%%" in query.params
    members(conn, rule, A)
    assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 6


def test_case_sensitive_like_is_switched_off(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA case_sensitive_like = ON")
    assert members(conn, cond("name", "contains", "ALICE S"), A) == {"p1"}


def test_long_in_list_travels_as_one_json_parameter(conn: sqlite3.Connection) -> None:
    names = AttributeCondition("name", "in", (*(f"name-{i}" for i in range(50_000)), "bob"))
    query = compiled(conn, names, A)
    assert "json_each" in query.sql.lower() and len(query.params) < 10
    check(conn, names, {"p2"})
    numbers = (*range(1000, 60_000), 7, 100)
    check(conn, AttributeCondition("points", "in", numbers), {"p1", "p6"})
    check(conn, AttributeCondition("points", "not_in", numbers), {"p2", "p3", "p4", "p5"})
    check(conn, AttributeCondition("score", "in", (*(i / 4 for i in range(4000)), -2.25)),
          {"p1", "p2", "p3"})  # 10.5 = 42 / 4


def test_long_pattern_falls_back_from_like(conn: sqlite3.Connection) -> None:
    long_value = "x" * 60_000
    check(conn, cond("name", "contains", long_value), set())
    assert "LIKE" not in compiled(conn, cond("name", "contains", long_value), A).sql


# ------------------------------------------------------------------ numbers and booleans

@pytest.mark.parametrize(("rule", "expected"), [
    (cond("score", "equals", 10.5), {"p1"}),
    (cond("score", "not_equals", 10.5), {"p2", "p3", "p4", "p5", "p6"}),
    (cond("score", "greater_than", 0), {"p1", "p6"}),
    (cond("score", "greater_or_equal", 0), {"p1", "p2", "p6"}),
    (cond("score", "less_than", 0), {"p3"}),
    (cond("score", "less_or_equal", 0), {"p2", "p3"}),
    (cond("score", "between", [0, 10.5]), {"p1", "p2"}),
    (cond("score", "not_between", [0, 10.5]), {"p3", "p4", "p5", "p6"}),
    (cond("score", "in", [-2.25, 1e9]), {"p3", "p6"}),
    (cond("score", "is_empty"), {"p4", "p5"}),
    (cond("points", "in", [0, 7, 999]), {"p2", "p6"}),
    (cond("points", "not_in", [0, 7, 999]), {"p1", "p3", "p4", "p5"}),
    (cond("points", "greater_than", -10), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("points", "less_than", 10**20), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("points", "greater_than", -(10**20)), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("points", "is_not_empty"), {"p1", "p2", "p3", "p4", "p6"}),
    (cond("vip", "is_true"), {"p1", "p4"}),
    (cond("vip", "is_false"), {"p2", "p6"}),
    (cond("vip", "is_empty"), {"p3", "p5"}),
    (cond("vip", "is_not_empty"), {"p1", "p2", "p4", "p6"}),
])
def test_number_and_boolean_operators(conn: sqlite3.Connection, rule: dict[str, Any],
                                      expected: set[str]) -> None:
    check(conn, rule, expected)


# ------------------------------------------------------------------ dates and datetimes

@pytest.mark.parametrize(("rule", "expected"), [
    (cond("last_login", "on", "2026-03-15"), {"p1"}),
    (cond("last_login", "on", "today"), {"p1"}),
    (cond("last_login", "before", "2026-03-01"), {"p2", "p4", "p6"}),
    (cond("last_login", "after", "2026-02-28"), {"p1", "p3"}),
    (cond("last_login", "between", ["2026-02-14", "2026-02-28"]), {"p2", "p6"}),
    (cond("last_login", "in_last", {"amount": 1, "unit": "days"}), {"p1"}),
    (cond("last_login", "in_last", {"amount": 0, "unit": "days"}), set()),
    (cond("last_login", "in_last", {"amount": 1, "unit": "months"}), {"p1", "p2"}),
    (cond("last_login", "not_in_last", {"amount": 1, "unit": "months"}),
     {"p3", "p4", "p5", "p6"}),
    (cond("last_login", "in_next", {"amount": 16, "unit": "days"}), {"p1"}),
    (cond("last_login", "in_next", {"amount": 17, "unit": "days"}), {"p1", "p3"}),
    (cond("last_login", "in_next", {"amount": 1, "unit": "months"}), {"p1", "p3"}),
    (cond("last_login", "before", {"ago": 1, "unit": "months"}), {"p4", "p6"}),
    (cond("last_login", "after", {"from_now": 2, "unit": "weeks"}), {"p3"}),
    (cond("last_login", "in_last", {"amount": 5000, "unit": "years"}),
     {"p1", "p2", "p4", "p6"}),
    (cond("last_login", "is_empty"), {"p5"}),
    (cond("signup", "on", "2026-03-15"), {"p1", "p3"}),
    (cond("signup", "on", "2026-03-15T14:30:00Z"), {"p3"}),
    (cond("signup", "on", "2026-03-15T15:30:00+01:00"), {"p3"}),
    (cond("signup", "before", "2026-03-15"), {"p2", "p4"}),
    (cond("signup", "after", "2026-03-15"), {"p6"}),
    (cond("signup", "before", "2026-03-15T09:00:00Z"), {"p2", "p4"}),
    (cond("signup", "after", "2026-03-15T09:00:00Z"), {"p3", "p6"}),
    (cond("signup", "between", ["2026-03-14", "2026-03-15"]), {"p1", "p2", "p3"}),
    (cond("signup", "between", ["2026-03-14T23:59:59Z", "2026-03-15T14:30:00Z"]),
     {"p1", "p2", "p3"}),
    (cond("signup", "in_last", {"amount": 1, "unit": "days"}), {"p1", "p3"}),
    (cond("signup", "in_next", {"amount": 2, "unit": "days"}), {"p1", "p3", "p6"}),
    (cond("signup", "in_last", {"amount": 1, "unit": "years"}), {"p1", "p2", "p3"}),
    (cond("signup", "not_in_last", {"amount": 1, "unit": "years"}), {"p4", "p5", "p6"}),
])
def test_date_operators(conn: sqlite3.Connection, rule: dict[str, Any],
                        expected: set[str]) -> None:
    check(conn, rule, expected)


def test_between_a_date_and_a_datetime(conn: sqlite3.Connection) -> None:
    """A date bound takes in its whole day, a datetime bound is an instant (typed directly)."""
    cases = [((dt.date(2026, 3, 15), at("2026-03-15 10:00:00")), {"p1"}),
             ((at("2026-03-14 23:59:59"), dt.date(2026, 3, 15)), {"p1", "p2", "p3"}),
             ((at("2026-03-15 09:00:01"), dt.date(2026, 3, 16)), {"p3", "p6"})]
    catalog = Catalog.load(conn)
    for bounds, expected in cases:
        for node, wanted in ((AttributeCondition("signup", "between", bounds), expected),
                             (AttributeCondition("signup", "not_between", bounds), ALL - expected)):
            resolved = ResolvedSegment(Segment("t", "t", node), {})
            query = compile_segment(resolved, catalog, A)
            pks = {row[0] for row in conn.execute(query.sql, query.params)}
            assert {f"p{pk}" for pk in pks} == wanted


def test_month_end_is_clamped(conn: sqlite3.Connection) -> None:
    end_of_march = dt.datetime(2026, 3, 31, 12, tzinfo=UTC)  # minus 1 month = 2026-02-28
    check(conn, cond("last_login", "on", {"ago": 1, "unit": "months"}), {"p2"}, end_of_march)
    check(conn, cond("last_login", "in_last", {"amount": 1, "unit": "months"}), {"p1", "p3"},
          end_of_march)


def test_relative_date_outside_the_calendar_is_an_input_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(InputError, match="outside the calendar"):
        compiled(conn, cond("last_login", "before", {"ago": 3000, "unit": "years"}), A)


# ------------------------------------------------------------------ age

@pytest.mark.parametrize(("rule", "expected"), [
    (cond("age", "equals", 46), {"p1"}),  # birthday on D counts
    (cond("age", "equals", 45), {"p3"}),  # birthday tomorrow
    (cond("age", "greater_than", 45), {"p1"}),
    (cond("age", "greater_or_equal", 45), {"p1", "p3"}),
    (cond("age", "less_than", 1), {"p6"}),  # born on D: 0
    (cond("age", "less_or_equal", 26), {"p2", "p6"}),
    (cond("age", "between", [26, 45]), {"p2", "p3"}),
    (cond("age", "not_between", [26, 45]), {"p1", "p4", "p5", "p6"}),
    (cond("age", "in", [0, 46]), {"p1", "p6"}),
    (cond("age", "not_in", [0, 46]), {"p2", "p3", "p4", "p5"}),
    (cond("age", "not_equals", 46), {"p2", "p3", "p4", "p5", "p6"}),
    (cond("age", "is_empty"), {"p4", "p5"}),
    (cond("age", "greater_than", 100_000), set()),
    (cond("age", "less_than", 100_000), {"p1", "p2", "p3", "p6"}),
    (cond("age", "in", list(range(0, 201, 2))), {"p1", "p2", "p6"}),  # many runs
])
def test_age(conn: sqlite3.Connection, rule: dict[str, Any], expected: set[str]) -> None:
    check(conn, rule, expected)


@pytest.mark.parametrize(("day", "age"), [
    (dt.date(2027, 2, 28), 26),  # not yet 27: born on Feb 29
    (dt.date(2027, 3, 1), 27),
    (dt.date(2028, 2, 28), 27),
    (dt.date(2028, 2, 29), 28),
])
def test_age_of_a_leap_day_birthday(conn: sqlite3.Connection, day: dt.date, age: int) -> None:
    as_of = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
    assert "p2" in members(conn, cond("age", "equals", age), as_of)
    assert "p2" not in members(conn, cond("age", "equals", age + 1), as_of)
    assert "p2" in members(conn, cond("age", "in", list(range(age, age + 400, 2))), as_of)


# ------------------------------------------------------------------ events

def event(types: Any = "purchase", **options: Any) -> dict[str, Any]:
    return {"event": types, **options}


def count(op: str, value: Any, distinct: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"op": op, "value": value}
    if distinct:
        rule["distinct"] = distinct
    return rule


def aggregate(fn: str, attribute: str, op: str, value: Any) -> dict[str, Any]:
    return {"fn": fn, "attribute": attribute, "op": op, "value": value}


@pytest.mark.parametrize(("rule", "expected"), [
    (event(), {"p1", "p3"}),  # p2's purchase is one second after A; p1's is exactly at A
    (event(count=count("at_most", 0)), {"p2", "p4", "p5", "p6"}),
    (event(count=count("exactly", 3)), {"p1"}),
    (event(count=count("between", [1, 2])), {"p3"}),
    (event(count=count("at_least", 0)), ALL),
    (event(count=count("exactly", 0)), {"p2", "p4", "p5", "p6"}),
    (event(count=count("between", [0, 1])), {"p2", "p3", "p4", "p5", "p6"}),
    (event("*"), {"p1", "p2", "p3", "p4"}),
    (event("*", count=count("at_least", 3)), {"p1"}),
    (event(["view", "email"]), {"p1", "p2", "p3", "p4"}),
    (event("*", within={"last": 1, "unit": "days"}), {"p1", "p2"}),
    (event(within={"last": 1, "unit": "days"}), {"p1"}),
    (event("view", within={"last": 1, "unit": "days"}), {"p2"}),
    (event(within={"last": 1, "unit": "months"}), {"p1", "p3"}),
    (event("view", within={"last": 1, "unit": "months"}), {"p1", "p2"}),
    (event(within={"last": 0, "unit": "days"}), set()),
    (event(within={"between": ["2026-01-01", "2026-01-10"]}), {"p1"}),
    (event(within={"between": ["2026-01-11", "2026-02-15"]}), set()),
    (event(within={"between": ["2026-03-15T14:30:00Z", "2026-12-31"]}), {"p1"}),
    (event(within={"between": ["2026-03-15T14:29:59.5Z", "2026-03-15T14:29:59.9Z"]}), set()),
    (event(within={"between": [{"ago": 1, "unit": "weeks"}, "today"]}), {"p1"}),
    (event(within={"last": 1, "unit": "months"}, count=count("at_most", 0)),
     {"p2", "p4", "p5", "p6"}),
    (event(where=[cond("amount", "greater_than", 60)]), {"p1"}),
    (event(where=[cond("amount", "is_empty")]), {"p3"}),
    (event(where=[cond("amount", "not_equals", 100)]), {"p1", "p3"}),
    (event(where=[cond("amount", "not_equals", 100)], count=count("at_least", 3)), set()),
    (event(where=[cond("product.category", "equals", "Shoes")]), {"p1"}),
    (event(where=[cond("product.category", "is_empty")]), {"p1", "p3"}),  # S9, no sku
    (event(where=[cond("product.category", "not_equals", "Shoes")]), {"p1", "p3"}),
    (event(where=[cond("product.category", "in", ["Shoes", "Boots"])],
           count=count("exactly", 2)), {"p1"}),
    (event(where=[cond("product.sku", "equals", "S9")]), set()),  # no such product
    (event(where=[cond("sku", "equals", "S9")]), {"p1"}),
    (event(where=[cond("sku", "starts_with", "s"), cond("amount", "less_than", 60)]), {"p1"}),
    (event(count=count("at_least", 2, "order_id")), {"p1"}),
    (event(count=count("exactly", 1, "order_id")), {"p3"}),
    (event(count=count("at_most", 0, "order_id")), {"p2", "p4", "p5", "p6"}),
    (event(count=count("at_least", 2, "product.category")), {"p1"}),
    (event(count=count("exactly", 0, "product.category")), {"p2", "p3", "p4", "p5", "p6"}),
    (event(aggregate=aggregate("sum", "amount", "greater_or_equal", 150)), {"p1"}),
    # An aggregate without a count stands alone: the sum over no event is 0 ...
    (event(aggregate=aggregate("sum", "amount", "less_than", 10)), {"p2", "p3", "p4", "p5", "p6"}),
    (event(aggregate=aggregate("sum", "amount", "equals", 0)), {"p2", "p3", "p4", "p5", "p6"}),
    # ... while "did it" (at_least 1) with the sum keeps only those with events.
    (event(count=count("at_least", 1), aggregate=aggregate("sum", "amount", "less_than", 10)),
     {"p3"}),
    # With at_least 0 spelled out, the same as no count.
    (event(count=count("at_least", 0), aggregate=aggregate("sum", "amount", "less_than", 10)),
     {"p2", "p3", "p4", "p5", "p6"}),
    (event(count=count("at_least", 0), aggregate=aggregate("sum", "qty", "less_or_equal", 0)),
     {"p2", "p4", "p5", "p6"}),
    (event(count=count("at_least", 0), aggregate=aggregate("avg", "amount", "less_than", 1000)),
     {"p1"}),  # avg over no value is missing
    (event(count=count("at_least", 0), aggregate=aggregate("min", "amount", "greater_than", 0)),
     {"p1"}),
    (event(aggregate=aggregate("sum", "amount", "between", [169.5, 170])), {"p1"}),
    (event(aggregate=aggregate("avg", "amount", "less_than", 1000)), {"p1"}),
    (event(aggregate=aggregate("avg", "amount", "equals", 170 / 3)), {"p1"}),
    (event("email", aggregate=aggregate("avg", "amount", "less_than", 1000)), set()),
    (event(aggregate=aggregate("min", "amount", "equals", 20)), {"p1"}),
    (event(aggregate=aggregate("max", "amount", "equals", 100)), {"p1"}),
    (event(aggregate=aggregate("max", "amount", "less_than", 1)), set()),
    (event(aggregate=aggregate("sum", "qty", "equals", 3)), {"p1", "p3"}),
    (event(aggregate=aggregate("sum", "qty", "less_or_equal", 0)), {"p2", "p4", "p5", "p6"}),
    (event(count=count("at_least", 2), aggregate=aggregate("sum", "amount", "greater_than", 100)),
     {"p1"}),
    (event(count=count("at_least", 2), aggregate=aggregate("sum", "amount", "greater_than", 500)),
     set()),
    (event(count=count("at_most", 1), aggregate=aggregate("sum", "amount", "less_than", 1)),
     {"p2", "p3", "p4", "p5", "p6"}),
    (event(count=count("at_least", 1, "order_id"), aggregate=aggregate("sum", "amount",
                                                                       "equals", 0)), {"p3"}),
])
def test_event_conditions(conn: sqlite3.Connection, rule: dict[str, Any],
                          expected: set[str]) -> None:
    check(conn, rule, expected)


def test_as_of_boundary_is_inclusive(conn: sqlite3.Connection) -> None:
    rule = event(within={"last": 1, "unit": "days"}, where=[cond("amount", "equals", 500)])
    assert members(conn, rule, A) == set()
    assert members(conn, rule, A + dt.timedelta(seconds=1)) == {"p2"}
    assert members(conn, rule, A + dt.timedelta(seconds=1, microseconds=999)) == {"p2"}
    assert members(conn, event(), A - dt.timedelta(microseconds=1)) == {"p1", "p3"}
    assert members(conn, event(count=count("exactly", 3)),
                   A - dt.timedelta(seconds=1)) == set()


# ------------------------------------------------------------------ structure

@pytest.mark.parametrize(("rule", "expected"), [
    ({"all": []}, ALL),
    ({"any": []}, set()),
    ({"all": [cond("gender", "equals", "female"), cond("vip", "is_true")]}, {"p1"}),
    ({"any": [cond("gender", "equals", "male"), cond("vip", "is_true")]}, {"p1", "p2", "p4"}),
    ({"any": [event(), event("email")]}, {"p1", "p3", "p4"}),
    ({"all": [event(), event("email")]}, {"p3"}),
    ({"all": [event(), {"not": event("view")}]}, {"p3"}),
    ({"any": [{"all": [cond("gender", "equals", "female"), cond("vip", "is_true")]},
              event(count=count("at_least", 3))]}, {"p1"}),
    ({"any": [cond("gender", "equals", "male"), event("email")]}, {"p2", "p3", "p4"}),
    ({"all": [{"any": [event(), event("email")]}, cond("gender", "is_empty")]}, {"p3"}),
    ({"not": {"not": {"any": [event("view"), cond("points", "equals", 7)]}}}, {"p1", "p2", "p6"}),
    ({"all": [{"any": []}, event()]}, set()),
    ({"any": [{"all": []}, event()]}, ALL),
    ({"all": [event(count=count("at_most", 0)), cond("vip", "is_not_empty")]}, {"p2", "p4", "p6"}),
    # "did not" conditions: complements of a union / an intersection.
    ({"all": [event(count=count("at_most", 0)), {"not": event("email")}]}, {"p2", "p5", "p6"}),
    ({"any": [event(count=count("at_most", 0)), {"not": event("email")}]},
     {"p1", "p2", "p4", "p5", "p6"}),
    ({"any": [{"not": event()}, {"not": event("view")}, {"not": event("email")}]}, ALL),
    ({"not": {"any": [{"not": event()}, {"not": event("email")}]}}, {"p3"}),
    ({"any": [{"any": []}, event("email")]}, {"p3", "p4"}),
    # Conditions on the same events inside an `all` share one grouping.
    ({"all": [event(count=count("at_least", 2)),
              event(aggregate=aggregate("sum", "amount", "greater_or_equal", 150))]}, {"p1"}),
    ({"all": [event(), event(count=count("at_most", 2))]}, {"p3"}),
    ({"all": [event(), event(count=count("at_most", 0))]}, set()),
    ({"all": [event(count=count("at_least", 2, "order_id")),
              event(aggregate=aggregate("max", "amount", "equals", 100)),
              cond("vip", "is_true")]}, {"p1"}),
    ({"all": [event(count=count("at_least", 0), aggregate=aggregate("sum", "amount", "less_than",
                                                                     10)),
              event()]}, {"p3"}),
    ({"all": [event(count=count("at_most", 1)), event(count=count("at_most", 2))]},
     {"p2", "p3", "p4", "p5", "p6"}),
    ({"all": [{"all": []}, event("email"), event(count=count("at_least", 0))]}, {"p3", "p4"}),
])
def test_groups_and_nesting(conn: sqlite3.Connection, rule: dict[str, Any],
                            expected: set[str]) -> None:
    check(conn, rule, expected)


def test_conditions_on_the_same_events_share_one_grouping(conn: sqlite3.Connection) -> None:
    rule = {"all": [event(within={"last": 1, "unit": "years"}, count=count("at_least", 2)),
                    event(within={"last": 1, "unit": "years"},
                          aggregate=aggregate("avg", "amount", "greater_than", 10)),
                    event(within={"last": 2, "unit": "years"}, count=count("at_least", 2))]}
    query = compiled(conn, rule, A)
    assert query.sql.count("GROUP BY") == 2
    check(conn, rule, {"p1"})


def test_many_conditions_and_many_event_branches(conn: sqlite3.Connection) -> None:
    wide_all = AllOf(tuple(AttributeCondition("points", "not_equals", -1000 - i)
                           for i in range(1100)))
    check(conn, wide_all, ALL)  # not_equals also matches p5's missing value
    wide_any = AnyOf((*(EventCondition(("purchase",), (AttributeCondition("amount", "equals",
                                                                          1000 + i),))
                        for i in range(520)), EventCondition(("email",))))
    check(conn, wide_any, {"p3", "p4"})
    wide_none = AnyOf(tuple(NotOf(EventCondition(("purchase",), (AttributeCondition(
        "amount", "less_than", 1000 + i),))) for i in range(130)))
    check(conn, wide_none, {"p2", "p3", "p4", "p5", "p6"})


def test_segment_references_are_inlined_at_the_same_as_of(conn: sqlite3.Connection) -> None:
    buyers = resolve_rule(conn, event(within={"last": 1, "unit": "days"}), name="recent-buyers")
    save_segment(conn, buyers)
    try:
        check(conn, {"segment": "recent-buyers"}, {"p1"})
        check(conn, {"all": [{"segment": "recent-buyers"}, cond("vip", "is_true")]}, {"p1"})
        check(conn, {"not": {"segment": "recent-buyers"}}, ALL - {"p1"})
        later = A + dt.timedelta(days=1)
        assert members(conn, {"segment": "recent-buyers"}, later) == set()
        assert members(conn, {"segment": "recent-buyers"},
                       A + dt.timedelta(seconds=1)) == {"p1", "p2"}
    finally:
        conn.execute("DELETE FROM segments")


def test_compile_node_and_count_query(conn: sqlite3.Connection) -> None:
    resolved = resolve_rule(conn, {"all": [event(), cond("vip", "is_true")]})
    catalog = Catalog.load(conn)
    rule = resolved.segment.rule
    assert isinstance(rule, AllOf)
    node_query = compile_node(rule.children[0], resolved, catalog, A)
    assert {r[0] for r in conn.execute(node_query.sql, node_query.params)} == {1, 3}
    whole = compile_segment(resolved, catalog, A)
    counted = count_query(whole)
    assert counted.sql.upper().startswith("SELECT COUNT(*)")
    assert conn.execute(counted.sql, counted.params).fetchone()[0] == 1


def test_sql_is_rendered_once_when_first_asked_for(conn: sqlite3.Connection,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A count renders only its count query; a tree too deep to render is an input error."""
    from store.query import sqlbuild

    rendered: list[str] = []
    render = sqlbuild.render

    def counting_render(*args: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...]]:
        sql, params = render(*args, **kwargs)
        rendered.append(sql)
        return sql, params

    monkeypatch.setattr(sqlbuild, "render", counting_render)
    resolved = resolve_rule(conn, {"all": [event(), cond("vip", "is_true")]})
    whole = compile_segment(resolved, Catalog.load(conn), A)
    assert rendered == []
    counted = count_query(whole)
    assert conn.execute(counted.sql, counted.params).fetchone()[0] == 1
    assert counted.sql == counted.sql and len(rendered) == 1
    assert whole.sql and len(rendered) == 2

    def too_deep(*_args: Any, **_kwargs: Any) -> tuple[str, tuple[Any, ...]]:
        raise RecursionError
    monkeypatch.setattr(sqlbuild, "render", too_deep)
    again = compile_segment(resolved, Catalog.load(conn), A)
    with pytest.raises(InputError, match="nested too deeply"):
        _ = again.sql


def test_pretty_sql_is_readable_and_runnable(conn: sqlite3.Connection) -> None:
    rule = {"all": [cond("name", "contains", "o'b"), event(within={"last": 90, "unit": "days"})]}
    query = compiled(conn, rule, A)
    text = pretty_sql(query)
    assert text.count("\n") > 5
    assert "'%o''b%'" in text
    assert "?" not in text
    rows = conn.execute(text).fetchall()
    assert [r[0] for r in rows] == [r[0] for r in conn.execute(query.sql, query.params)] == [3]


def test_other_dialects_render(conn: sqlite3.Connection) -> None:
    resolved = resolve_rule(conn, {"all": [cond("name", "contains", "al"), event()]})
    query = compile_segment(resolved, Catalog.load(conn), A, dialect="postgres")
    # One LIKE for every engine, folding ASCII letters only (ILIKE would fold every alphabet;
    # PostgreSQL's lower() under the C collation folds ASCII only).
    assert 'LOWER("name" COLLATE "C")' in query.sql and "ILIKE" not in query.sql
    assert query.sql.count("?") == len(query.params)
