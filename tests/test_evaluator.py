"""The reference evaluator on hand-picked cases: the spec's tricky corners and explain()."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store.query.evaluator import (
    EventData,
    ProfileData,
    evaluate_all,
    explain,
    fold,
    load_profile,
    matches,
)
from store.schema.catalog import Catalog
from store.segments.model import (
    AggregateRule,
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    Node,
    NotOf,
    Period,
    RelativeDate,
    Segment,
    SegmentRef,
    Window,
)
from store.segments.validate import ResolvedSegment
from tests.factory import EntitySpec, StoreSpec, build_store

UTC = dt.UTC
A = dt.datetime(2026, 3, 31, 12, 0, 0, tzinfo=UTC)  # D = 2026-03-31, a month end


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def person(events: tuple[EventData, ...] = (), **attributes: Any) -> ProfileData:
    return ProfileData(pk=1, id="p1", attributes={"id": "p1", **attributes}, events=events,
                       derived={"age": "age:birth_date"})


def event(kind: str, when: str, **fields: Any) -> EventData:
    return EventData(kind, at(when), fields)


def rule(node: Node, refs: dict[str, Segment] | None = None) -> ResolvedSegment:
    return ResolvedSegment(Segment("s", "S", node), refs or {})


def holds(profile: ProfileData, node: Node, as_of: dt.datetime = A,
          refs: dict[str, Segment] | None = None) -> bool:
    result = matches(profile, rule(node, refs), as_of)
    assert explain(profile, rule(node, refs), as_of).matched == result
    return result


def cond(attribute: str, op: str, value: Any = None) -> AttributeCondition:
    return AttributeCondition(attribute, op, value)


# ---------------------------------------------------------------------- attributes


@pytest.mark.parametrize("op", ["equals", "in", "contains", "starts_with", "ends_with",
                                "greater_than", "less_or_equal", "between", "on", "before",
                                "after", "in_last", "in_next", "is_true", "is_false"])
def test_positive_operators_never_match_missing(op: str) -> None:
    value = {"in": ("a",), "between": (1, 2), "in_last": Period(3, "days"),
             "in_next": Period(3, "days"), "on": dt.date(2026, 1, 1),
             "before": dt.date(2026, 1, 1), "after": dt.date(2026, 1, 1)}.get(op, "a")
    if op in ("is_true", "is_false"):
        value = None
    profile = person(x=None)
    assert not holds(profile, cond("x", op, value))


@pytest.mark.parametrize(("op", "value"), [
    ("not_equals", "a"), ("not_in", ("a",)), ("not_contains", "a"), ("not_between", (1, 2)),
    ("not_in_last", Period(3, "days")), ("is_not_empty", None),
])
def test_negative_operators_are_exact_complements(op: str, value: Any) -> None:
    assert holds(person(x=None), cond("x", op, value)) is (op != "is_not_empty")


def test_empty_text_is_missing() -> None:
    profile = person(city="")
    assert holds(profile, cond("city", "is_empty"))
    assert not holds(profile, cond("city", "equals", ""))
    assert holds(profile, cond("city", "not_contains", ""))


def test_equals_and_in_are_case_sensitive() -> None:
    profile = person(gender="Male")
    assert not holds(profile, cond("gender", "equals", "male"))
    assert holds(profile, cond("gender", "in", ("male", "Male")))
    assert holds(profile, cond("gender", "not_in", ("male", "MALE")))


def test_contains_family_folds_ascii_case_only_and_takes_wildcards_literally() -> None:
    assert holds(person(city="50% OFF"), cond("city", "contains", "% off"))
    assert not holds(person(city="500 off"), cond("city", "contains", "0% o"))
    assert not holds(person(city="axb"), cond("city", "contains", "a_b"))
    assert holds(person(city="A_B"), cond("city", "starts_with", "a_"))
    assert holds(person(city="Zürich"), cond("city", "ends_with", "RICH"))
    assert not holds(person(city="ZÜRICH"), cond("city", "contains", "ü"))
    assert holds(person(city="ZÜRICH"), cond("city", "not_contains", "ü"))
    assert fold("İSTANBUL Ü") == "İstanbul Ü"


def test_is_false_matches_false_only() -> None:
    assert holds(person(vip=False), cond("vip", "is_false"))
    assert not holds(person(vip=None), cond("vip", "is_false"))
    assert not holds(person(vip=True), cond("vip", "is_false"))
    assert holds(person(vip=None), cond("vip", "is_empty"))


def test_numbers_between_is_inclusive() -> None:
    assert holds(person(score=5), cond("score", "between", (5, 5)))
    assert holds(person(score=2.5), cond("score", "not_between", (3, 4)))
    assert holds(person(score=3), cond("score", "in", (3.0,)))


def test_datetime_attribute_compares_dates_with_a_date_and_instants_with_a_datetime() -> None:
    seen = person(last_seen=at("2026-03-30 23:59:59.5"))
    assert holds(seen, cond("last_seen", "on", dt.date(2026, 3, 30)))
    assert not holds(seen, cond("last_seen", "after", dt.date(2026, 3, 30)))
    assert holds(seen, cond("last_seen", "after", at("2026-03-30 23:59:59")))
    assert holds(seen, cond("last_seen", "between",
                            (dt.date(2026, 3, 30), at("2026-03-30 23:59:59.5"))))
    assert not holds(seen, cond("last_seen", "on", at("2026-03-30 23:59:59")))


def test_in_last_and_in_next_windows() -> None:
    today = person(d=dt.date(2026, 3, 31))
    yesterday = person(d=dt.date(2026, 3, 30))
    assert holds(today, cond("d", "in_last", Period(1, "days")))
    assert not holds(yesterday, cond("d", "in_last", Period(1, "days")))
    assert not holds(today, cond("d", "in_last", Period(0, "days")))
    assert holds(today, cond("d", "in_next", Period(1, "days")))
    assert holds(person(d=dt.date(2026, 3, 1)), cond("d", "in_last", Period(1, "months")))
    assert not holds(person(d=dt.date(2026, 2, 28)), cond("d", "in_last", Period(1, "months")))
    assert holds(person(d=dt.date(2026, 2, 28)), cond("d", "not_in_last", Period(1, "months")))
    assert not holds(person(d=dt.date(2026, 4, 30)), cond("d", "in_next", Period(1, "months")))
    assert holds(person(d=dt.date(2026, 4, 29)), cond("d", "in_next", Period(1, "months")))
    # A datetime in the future but on D is "in the last 1 day": windows compare dates.
    assert holds(person(d=at("2026-03-31 23:00:00")), cond("d", "in_last", Period(1, "days")))


def test_relative_dates_resolve_at_d_and_clamp_to_the_month_end() -> None:
    month_ago = RelativeDate("ago", 1, "months")
    assert holds(person(d=dt.date(2026, 2, 28)), cond("d", "on", month_ago))
    assert holds(person(d=dt.date(2026, 3, 31)), cond("d", "on", RelativeDate("today")))
    year_ago = cond("d", "on", RelativeDate("ago", 1, "years"))
    assert holds(person(d=dt.date(2023, 2, 28)), year_ago, as_of=at("2024-02-29 10:00:00"))
    assert not holds(person(d=dt.date(2024, 2, 29)), year_ago, as_of=at("2025-02-28 10:00:00"))


def test_age_is_whole_years_and_a_birthday_on_d_counts() -> None:
    assert holds(person(birth_date=dt.date(1976, 3, 31)), cond("age", "equals", 50))
    assert holds(person(birth_date=dt.date(1976, 4, 1)), cond("age", "equals", 49))
    leapling = person(birth_date=dt.date(2000, 2, 29))
    assert holds(leapling, cond("age", "equals", 24), as_of=at("2025-02-28 23:00:00"))
    assert holds(leapling, cond("age", "equals", 25), as_of=at("2025-03-01 00:00:00"))
    assert holds(person(birth_date=None), cond("age", "is_empty"))
    assert not holds(person(birth_date=None), cond("age", "less_than", 200))


# ---------------------------------------------------------------------- events


def test_events_count_up_to_the_as_of_instant_inclusive() -> None:
    profile = person((event("buy", "2026-03-31 12:00:00"), event("buy", "2026-03-31 12:00:01")))
    once = EventCondition(("buy",), count=CountRule("exactly", 1))
    assert holds(profile, once)
    assert holds(profile, EventCondition(("buy",), count=CountRule("exactly", 2)),
                 as_of=at("2026-03-31 12:00:01"))
    assert holds(profile, once, as_of=at("2026-03-31 12:00:00.999999"))
    assert not holds(profile, EventCondition(("buy",)), as_of=at("2026-03-31 11:59:59.999999"))


def test_within_last_is_the_in_last_window_on_the_event_date() -> None:
    profile = person((event("buy", "2026-03-31 00:00:00"), event("buy", "2026-03-30 23:59:59")))
    last_day = Window(last=Period(1, "days"))
    assert holds(profile, EventCondition(("buy",), within=last_day, count=CountRule("exactly", 1)))
    two_days = Window(last=Period(2, "days"))
    assert holds(profile, EventCondition(None, within=two_days, count=CountRule("exactly", 2)))


def test_within_between_includes_whole_end_dates_and_exact_instants() -> None:
    profile = person((event("buy", "2026-03-10 23:59:59"), event("buy", "2026-03-11 00:00:00")))
    by_dates = Window(between=(dt.date(2026, 3, 1), dt.date(2026, 3, 10)))
    assert holds(profile, EventCondition(("buy",), within=by_dates, count=CountRule("exactly", 1)))
    by_instants = Window(between=(at("2026-03-10 23:59:59"), at("2026-03-11 00:00:00")))
    assert holds(profile, EventCondition(("buy",), within=by_instants,
                                         count=CountRule("exactly", 2)))
    relative = Window(between=(RelativeDate("ago", 21, "days"), RelativeDate("ago", 21, "days")))
    assert holds(profile, EventCondition(("buy",), within=relative, count=CountRule("exactly", 1)))


def test_types_filter_and_star_means_every_type() -> None:
    profile = person((event("buy", "2026-03-01 10:00:00"), event("view", "2026-03-01 10:00:00")))
    assert holds(profile, EventCondition(None, count=CountRule("exactly", 2)))
    assert holds(profile, EventCondition(("view", "refund"), count=CountRule("exactly", 1)))
    assert holds(profile, EventCondition(("refund",), count=CountRule("at_most", 0)))


def test_did_not_matches_profiles_without_events() -> None:
    assert holds(person(), EventCondition(("buy",), count=CountRule("at_most", 0)))
    assert not holds(person(), EventCondition(("buy",)))


def test_distinct_counts_distinct_present_values() -> None:
    lines = tuple(event("buy", "2026-03-01 10:00:00", order_id=order)
                  for order in ("o1", "o1", "o2", None, "O1"))
    profile = person(lines)
    assert holds(profile, EventCondition(("buy",), count=CountRule("exactly", 3, "order_id")))
    assert holds(profile, EventCondition(("buy",), count=CountRule("exactly", 5)))


def test_aggregates_over_present_values_and_over_no_event() -> None:
    profile = person((event("buy", "2026-03-01 10:00:00", amount=10.0),
                      event("buy", "2026-03-02 10:00:00", amount=None),
                      event("buy", "2026-03-03 10:00:00", amount=5.0)))

    def agg(fn: str, op: str, value: Any, types: tuple[str, ...] = ("buy",),
            count: CountRule | None = None) -> EventCondition:
        return EventCondition(types, count=count, aggregate=AggregateRule(fn, "amount", op, value))

    assert holds(profile, agg("sum", "equals", 15))
    assert holds(profile, agg("avg", "equals", 7.5))
    assert holds(profile, agg("min", "equals", 5))
    assert holds(profile, agg("max", "between", (10, 10)))
    none = CountRule("at_least", 0)
    assert holds(profile, agg("sum", "equals", 0, ("refund",), none))
    assert holds(profile, agg("sum", "equals", 0, ("refund",)))  # an aggregate alone: sum of none is 0
    assert not holds(profile, agg("sum", "equals", 0, ("refund",), CountRule()))  # did it, and sum 0
    for fn in ("avg", "min", "max"):
        assert not holds(profile, agg(fn, "less_than", 10**9, ("refund",), none))
        assert not holds(profile, agg(fn, "greater_than", -(10**9), ("refund",), none))


def test_count_and_aggregate_must_both_hold() -> None:
    profile = person((event("buy", "2026-03-01 10:00:00", amount=100.0),))
    big = AggregateRule("sum", "amount", "greater_or_equal", 100)
    assert holds(profile, EventCondition(("buy",), count=CountRule("at_least", 1), aggregate=big))
    assert not holds(profile, EventCondition(("buy",), count=CountRule("at_least", 2),
                                             aggregate=big))


def test_where_on_a_missing_entity_field() -> None:
    ghost = event("buy", "2026-03-01 10:00:00", sku="gone", **{"product.category": None})
    profile = person((ghost,))
    shoes = cond("product.category", "equals", "Shoes")
    assert not holds(profile, EventCondition(("buy",), where=(shoes,)))
    assert holds(profile, EventCondition(("buy",), where=(
        cond("product.category", "not_equals", "Shoes"),)))


# ---------------------------------------------------------------------- groups and references


def test_empty_groups_and_not() -> None:
    profile = person()
    assert holds(profile, AllOf())
    assert not holds(profile, AnyOf())
    assert holds(profile, NotOf(AnyOf()))
    assert not holds(profile, NotOf(NotOf(AnyOf())))


def test_segment_references_evaluate_the_referenced_rule() -> None:
    refs = {"vips": Segment("vips", "VIPs", cond("vip", "is_true"))}
    assert holds(person(vip=True), SegmentRef("vips"), refs=refs)
    assert holds(person(vip=None), NotOf(SegmentRef("vips")), refs=refs)


# ---------------------------------------------------------------------- explain


def test_explain_of_the_spec_example() -> None:
    unsubscribed = Segment("unsubscribed", "Unsubscribed", cond("unsubscribed", "is_true"))
    shoes = EventCondition(("purchase",), where=(cond("product.category", "equals", "Shoes"),),
                           within=Window(last=Period(90, "days")), count=CountRule("at_least", 2))
    node = AllOf((cond("gender", "equals", "male"), cond("age", "greater_than", 50), shoes,
                  NotOf(SegmentRef("unsubscribed"))))
    bought = tuple(event("purchase", day, **{"product.category": category})
                   for day, category in (("2026-03-01 10:00:00", "Shoes"),
                                         ("2025-01-01 10:00:00", "Shoes"),
                                         ("2026-03-02 10:00:00", "Hats")))
    profile = ProfileData(1, "p1", {"gender": "male", "birth_date": dt.date(1970, 5, 1),
                                    "unsubscribed": False}, bought,
                          derived={"age": "age:birth_date"}, labels={"gender": "Gender"})
    why = explain(profile, rule(node, {"unsubscribed": unsubscribed}), A)
    assert not why.matched
    assert why.label == "All of" and why.seen == {"matched": 3, "of": 4}
    gender, age, events, negation = why.children
    assert (gender.path, gender.label, gender.matched) == ("rule.all[0]", "Gender is male",
                                                            True)
    assert gender.seen == {"gender": "male"}
    assert age.label == "Age is greater than 50"
    assert age.seen == {"age": 55, "birth_date": dt.date(1970, 5, 1)}
    assert events.label == ("Purchase at least 2 times in the last 90 days"
                            " where product category is Shoes")
    assert not events.matched
    assert events.seen == {"events": 1, "before where": 2}
    assert negation.label == "Not in segment Unsubscribed" and negation.matched
    inner = negation.children[0]
    assert (inner.path, inner.label, inner.matched) == ("rule.all[3].not",
                                                        "In segment Unsubscribed", False)
    assert inner.children[0].path == "unsubscribed:rule"
    assert inner.children[0].label == "Unsubscribed is true"


def test_explain_shows_distinct_and_aggregate_values() -> None:
    node = EventCondition(None, within=Window(between=(RelativeDate("ago", 1, "months"),
                                                       RelativeDate("today"))),
                          count=CountRule("between", (1, 3), "order_id"),
                          aggregate=AggregateRule("avg", "amount", "greater_or_equal", 20))
    profile = person((event("buy", "2026-03-01 10:00:00", order_id="o1", amount=10.0),
                      event("buy", "2026-03-02 10:00:00", order_id="o1", amount=40.0)))
    why = explain(profile, rule(node), A)
    assert why.matched
    assert why.label == ("Any event in 1 to 3 orders between 1 month ago"
                         " and today, average amount is at least 20")
    assert why.seen == {"events": 2, "distinct order_id": 1, "avg of amount": 25.0}


# ---------------------------------------------------------------------- loading from a store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    spec = StoreSpec(
        attributes={"city": "string", "vip": "boolean", "score": "integer",
                    "balance": "number", "birth_date": "date", "last_seen": "datetime"},
        profiles=[
            {"id": "a", "city": "", "vip": False, "score": 3, "balance": 2,
             "birth_date": dt.date(2000, 2, 29), "last_seen": at("2026-03-01 10:00:00.25")},
            {"id": "b", "city": "Zürich"},
            {"id": "c"},
        ],
        event_fields={"amount": "number", "sku": "string"},
        events=[
            {"profile_id": "a", "type": "purchase", "timestamp": at("2026-03-01 10:00:00"),
             "amount": 5, "sku": "s1"},
            {"profile_id": "a", "type": "purchase", "timestamp": at("2026-03-02 10:00:00"),
             "sku": "missing"},
            {"profile_id": "c", "type": "view", "timestamp": at("2026-03-03 10:00:00")},
        ],
        entities={"product": EntitySpec("sku", "string", "sku",
                                        {"sku": "string", "category": "string"},
                                        [{"sku": "s1", "category": "Shoes"}])},
        derived_age_from="birth_date",
        event_types=("purchase", "view", "refund"),
    )
    conn = build_store(tmp_path / "store.db", spec)
    try:
        yield conn
    finally:
        conn.close()


def test_load_profile_types_values_and_links_entities(store: Any) -> None:
    catalog = Catalog.load(store)
    pk = store.execute("SELECT pk FROM profiles WHERE id = 'a'").fetchone()[0]
    profile = load_profile(store, catalog, pk)
    assert profile.id == "a"
    assert profile.attributes == {
        "id": "a", "city": None, "vip": False, "score": 3, "balance": 2.0,
        "birth_date": dt.date(2000, 2, 29), "last_seen": at("2026-03-01 10:00:00.25"),
    }
    assert isinstance(profile.attributes["balance"], float)
    assert profile.derived == {"age": "age:birth_date"}
    first, second = profile.events
    assert (first.type, first.ts) == ("purchase", at("2026-03-01 10:00:00"))
    assert first.fields == {"amount": 5.0, "sku": "s1", "product.sku": "s1",
                            "product.category": "Shoes"}
    assert second.fields == {"amount": None, "sku": "missing", "product.sku": None,
                             "product.category": None}


def test_evaluate_all_by_brute_force(store: Any) -> None:
    ids = dict(store.execute("SELECT pk, id FROM profiles"))

    def members(node: Node) -> set[str]:
        return {ids[pk] for pk in evaluate_all(store, rule(node), A)}

    assert members(cond("city", "is_empty")) == {"a", "c"}
    assert members(cond("age", "equals", 26)) == {"a"}
    assert members(EventCondition(("purchase",), where=(
        cond("product.category", "not_equals", "Shoes"),))) == {"a"}
    assert members(EventCondition(("purchase",), count=CountRule("at_most", 0))) == {"b", "c"}
    assert members(EventCondition(None, count=CountRule("exactly", 1))) == {"c"}
    assert members(NotOf(cond("vip", "is_false"))) == {"b", "c"}


def test_stored_times_outside_the_calendar_are_the_extreme_instants() -> None:
    """Stores written before imports refused them may hold such times: the reference
    evaluator reads them as the earliest or latest instant instead of failing."""
    from store.query.evaluator import event_instant

    assert event_instant(1_709_280_000_000) == dt.datetime.max.replace(tzinfo=dt.UTC)
    assert event_instant(-1e15) == dt.datetime.min.replace(tzinfo=dt.UTC)
    assert event_instant(0.5) == dt.datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=dt.UTC)
