"""Sequences and field comparisons (spec/segments.md): the semantics on hand-picked cases,
the same counts on every engine, the plain words, and bad input refused with its position.

The property tests (tests/test_property.py) draw thousands of random cases; these pin the
corners the spec spells out: events at the same instant are not ordered, a gap's bounds are
inclusive, an absent last step needs its whole gap to have elapsed, one abandoned series is
enough, and a missing side never matches a positive comparison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from store.engines.base import Connection
from store.query.audience import count, node_counts
from store.query.evaluator import evaluate_all, explain, load_all_profiles, matches
from store.schema.catalog import Catalog
from store.segments.describe import describe
from store.segments.errors import SegmentError
from store.segments.model import (
    AttributeCondition,
    Duration,
    Gap,
    Segment,
    SequenceCondition,
    SequenceStep,
)
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import dump_segment, load_segment_text
from tests.factory import EntitySpec, StoreSpec, build_store
from tests.services.fixtures import ENGINE_KINDS, scratch_location
from tui.cli import cli

UTC = dt.UTC
AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
T0 = dt.datetime(2026, 6, 20, 10, 0, tzinfo=UTC)


def later(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def ev(pid: str, kind: str, when: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {"profile_id": pid, "type": kind, "timestamp": when, **fields}


# Each profile is one case; the comment says whether the spec's cart abandonment sequence
# (view Shoes, then cart within 2 hours, then no purchase within 24 hours) holds.
EVENTS = [
    # p1: viewed shoes, carted 1 h later, never bought -> abandoned
    ev("p1", "product_view", T0, sku="S1"), ev("p1", "add_to_cart", later(hours=1), sku="S1"),
    # p2: bought 23 h after the cart -> not abandoned
    ev("p2", "product_view", T0, sku="S1"), ev("p2", "add_to_cart", later(hours=1), sku="S1"),
    ev("p2", "purchase", later(hours=24), sku="S1", amount=50.0),
    # p3: cart exactly 2 h after the view (inclusive), purchase exactly 24 h after the cart
    # (inside the gap: bought) -> not abandoned
    ev("p3", "product_view", T0, sku="S1"), ev("p3", "add_to_cart", later(hours=2), sku="S1"),
    ev("p3", "purchase", later(hours=26), sku="S1", amount=5.0),
    # p4: cart 2 h + 1 s after the view: too late -> no series
    ev("p4", "product_view", T0, sku="S1"), ev("p4", "add_to_cart", later(hours=2, seconds=1)),
    # p5: view and cart at the same instant: not ordered -> no series
    ev("p5", "product_view", T0, sku="S1"), ev("p5", "add_to_cart", T0),
    # p6: purchase 24 h + 1 s after the cart (after the gap) -> abandoned
    ev("p6", "product_view", T0, sku="S1"), ev("p6", "add_to_cart", later(minutes=30)),
    ev("p6", "purchase", later(hours=24, minutes=30, seconds=1), amount=1.0),
    # p7: the cart 1 h before A: the 24 h have not elapsed -> not (yet) abandoned
    ev("p7", "product_view", AS_OF - dt.timedelta(hours=2), sku="S1"),
    ev("p7", "add_to_cart", AS_OF - dt.timedelta(hours=1)),
    # p8: a bought series and an abandoned one -> one is enough
    ev("p8", "product_view", T0, sku="S1"), ev("p8", "add_to_cart", later(hours=1)),
    ev("p8", "purchase", later(hours=2), sku="S1", amount=9.0),
    ev("p8", "product_view", later(days=2), sku="S1"), ev("p8", "add_to_cart", later(days=2, hours=1)),
    # p9: viewed boots (not shoes) -> no series
    ev("p9", "product_view", T0, sku="B1"), ev("p9", "add_to_cart", later(hours=1)),
    # p10: events after A do not count
    ev("p10", "product_view", AS_OF + dt.timedelta(hours=1), sku="S1"),
    ev("p10", "add_to_cart", AS_OF + dt.timedelta(hours=2)),
]
PROFILES = [
    {"id": "p1", "country": "FR", "home": "FR", "score": 3, "balance": 3.0,
     "signup": dt.date(2026, 1, 5), "last_login": dt.datetime(2026, 1, 5, 23, 0, tzinfo=UTC)},
    {"id": "p2", "country": "FR", "home": "DE", "score": 3, "balance": 2.5,
     "signup": dt.date(2026, 1, 5), "last_login": dt.datetime(2026, 1, 4, 23, 0, tzinfo=UTC)},
    {"id": "p3", "country": "", "home": "", "score": None, "balance": 1.0,
     "signup": None, "last_login": dt.datetime(2026, 2, 1, tzinfo=UTC)},
    *({"id": f"p{i}"} for i in range(4, 11)),
]
CART_ABANDONMENT = {"sequence": {"steps": [
    {"event": "product_view", "where": [{"attribute": "product.category", "op": "equals",
                                         "value": "Shoes"}]},
    {"event": "add_to_cart", "gap": {"max": {"amount": 2, "unit": "hours"}}},
    {"event": "purchase", "absent": True, "gap": {"max": {"amount": 24, "unit": "hours"}}},
]}}


def spec() -> StoreSpec:
    return StoreSpec(
        attributes={"country": "string", "home": "string", "score": "integer",
                    "balance": "number", "signup": "date", "last_login": "datetime"},
        profiles=PROFILES,
        event_fields={"sku": "string", "amount": "number"},
        events=EVENTS,
        entities={"product": EntitySpec("sku", "string", "sku",
                                        {"sku": "string", "category": "string",
                                         "made_in": "string", "list_price": "number"},
                                        [{"sku": "S1", "category": "Shoes", "made_in": "FR",
                                          "list_price": 40.0},
                                         {"sku": "B1", "category": "Boots", "made_in": "DE",
                                          "list_price": 90.0}])},
        event_types=("product_view", "add_to_cart", "purchase"),
    )


@pytest.fixture(scope="module", params=ENGINE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[Connection]:
    """The cases' store on each engine."""
    server = (str(request.getfixturevalue("postgres_url")) if request.param == "postgresql"
              else None)
    with scratch_location(request.param, server) as location:
        conn = build_store(location, spec())
        try:
            yield conn
        finally:
            conn.close()


def resolved(conn: Connection, rule: Any) -> ResolvedSegment:
    text = yaml.safe_dump({"name": "Case", "rule": rule}, sort_keys=False)
    segment, lines = load_segment_text(text, "case.yaml")
    return validate_segment(segment, Catalog.load(conn), lines)


def members(conn: Connection, rule: Any) -> set[str]:
    """The members by the reference evaluator, after checking the compiled count agrees."""
    segment = resolved(conn, rule)
    catalog = Catalog.load(conn)
    ids = {p.pk: p.id for p in load_all_profiles(conn, catalog)}
    found = {ids[pk] for pk in evaluate_all(conn, segment, AS_OF, catalog)}
    assert count(conn, segment, AS_OF, catalog) == len(found)
    return found


def steps(*items: dict[str, Any], within: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": list(items)}
    if within is not None:
        body["within"] = within
    return {"sequence": body}


def gap(**bounds: tuple[int, str]) -> dict[str, Any]:
    return {key: {"amount": amount, "unit": unit} for key, (amount, unit) in bounds.items()}


def test_cart_abandonment(store: Connection) -> None:
    assert members(store, CART_ABANDONMENT) == {"p1", "p6", "p8"}


def test_not_is_the_complement(store: Connection) -> None:
    assert members(store, {"not": CART_ABANDONMENT}) == {f"p{i}" for i in range(1, 11)} - {
        "p1", "p6", "p8"}


def test_gap_bounds_are_inclusive_and_instants_unordered(store: Connection) -> None:
    view_then_cart = steps({"event": "product_view"},
                           {"event": "add_to_cart", "gap": gap(max=(2, "hours"))})
    assert members(store, view_then_cart) == {"p1", "p2", "p3", "p6", "p7", "p8", "p9"}
    at_least_two_hours = steps({"event": "product_view"},
                               {"event": "add_to_cart", "gap": gap(min=(2, "hours"))})
    # p8's second view is after its first cart, but its second cart is 1 h after it; the
    # first view to the second cart is 49 h: at least 2 h holds
    assert members(store, at_least_two_hours) == {"p3", "p4", "p8"}
    exactly_two = steps({"event": "product_view"},
                        {"event": "add_to_cart", "gap": gap(min=(120, "minutes"),
                                                            max=(2, "hours"))})
    assert members(store, exactly_two) == {"p3"}
    no_gap = steps({"event": "product_view"}, {"event": "add_to_cart"})
    assert "p5" not in members(store, no_gap)


def test_absent_step_with_a_min_or_without_a_max(store: Connection) -> None:
    never_bought = steps({"event": "add_to_cart"}, {"event": "purchase", "absent": True})
    assert members(store, never_bought) == {"p1", "p4", "p5", "p7", "p8", "p9"}
    # a purchase only counts from 24 h after the cart (inclusive): p2 bought 23 h after it;
    # p3 exactly 24 h and p6 24 h + 1 s after it
    not_after_a_day = steps({"event": "add_to_cart"},
                            {"event": "purchase", "absent": True, "gap": gap(min=(1, "days"))})
    assert members(store, not_after_a_day) == {"p1", "p2", "p4", "p5", "p7", "p8", "p9"}


def test_sequence_window_and_three_present_steps(store: Connection) -> None:
    bought = steps({"event": "product_view"}, {"event": "add_to_cart"}, {"event": "purchase"})
    assert members(store, bought) == {"p2", "p3", "p6", "p8"}
    last_week = steps({"event": "product_view"}, {"event": "add_to_cart"},
                      within={"last": 7, "unit": "days"})
    assert members(store, last_week) == {"p7"}


def test_field_comparisons_on_profiles(store: Connection) -> None:
    same = {"attribute": "country", "op": "equals", "field": "home"}
    assert members(store, same) == {"p1"}  # p3's are empty: missing
    assert members(store, {"attribute": "country", "op": "not_equals", "field": "home"}) == {
        f"p{i}" for i in range(2, 11)}
    assert members(store, {"attribute": "score", "op": "greater_or_equal",
                           "field": "balance"}) == {"p1", "p2"}
    # a date against a datetime compares dates; p2 logged in the day before signing up
    assert members(store, {"attribute": "signup", "op": "on", "field": "last_login"}) == {"p1"}
    assert members(store, {"attribute": "last_login", "op": "before", "field": "signup"}) == {
        "p2"}


def test_field_comparisons_in_where(store: Connection) -> None:
    below_list_price = {"event": "purchase", "where": [
        {"attribute": "amount", "op": "less_than", "field": "product.list_price"}]}
    assert members(store, below_list_price) == {"p3", "p8"}  # p6's purchase has no product
    made_at_home = {"event": "product_view", "where": [
        {"attribute": "product.made_in", "op": "equals", "field": "profile.country"}]}
    assert members(store, made_at_home) == {"p1", "p2"}
    in_a_step = steps({"event": "product_view", "where": [
        {"attribute": "product.made_in", "op": "equals", "field": "profile.home"}]},
        {"event": "add_to_cart"})
    assert members(store, in_a_step) == {"p1"}


def test_plain_words_and_yaml_round_trip(store: Connection) -> None:
    segment = resolved(store, {**CART_ABANDONMENT})
    assert describe(segment.segment.rule) == (
        "Viewed Shoes, then added to cart within 2 hours, then did not buy within 24 hours")
    again, _ = load_segment_text(dump_segment(segment.segment))
    assert again.rule == segment.segment.rule
    windowed = resolved(store, steps({"event": "product_view"}, {
        "event": "add_to_cart", "gap": gap(min=(30, "minutes"), max=(1, "days"))},
        within={"last": 30, "unit": "days"})).segment.rule
    assert describe(windowed) == ("Viewed a product, then added to cart between 30 minutes"
                                  " and 1 day later, all in the last 30 days")
    field = resolved(store, {"attribute": "score", "op": "greater_than", "field": "balance"})
    assert describe(field.segment.rule) == "Score is greater than balance"


def test_explain_reports_the_steps_reached(store: Connection) -> None:
    segment = resolved(store, CART_ABANDONMENT)
    catalog = Catalog.load(store)
    profiles = {p.id: p for p in load_all_profiles(store, catalog)}
    why = explain(profiles["p2"], segment, AS_OF, catalog)
    assert not why.matched and why.seen == {"steps reached": 2, "of": 2}
    assert explain(profiles["p1"], segment, AS_OF, catalog).matched
    assert matches(profiles["p9"], segment, AS_OF) is False


def test_funnel_counts_each_step(store: Connection) -> None:
    """node_counts gives a sequence's funnel: how many got as far as each step."""
    segment = resolved(store, {"all": [CART_ABANDONMENT]})
    nodes = {n.path: n for n in node_counts(store, segment, AS_OF)}
    # viewed shoes (S1): p1-p8 (p10's are after A); then carted within 2 h: p1, p2, p3, p6,
    # p7, p8; then did not buy within 24 h (elapsed): p1, p6, p8
    assert nodes["rule.all[0]"].funnel == (8, 6, 3)
    assert nodes["rule.all[0]"].own == 3 and nodes["rule"].funnel == ()


def test_prefix_is_the_funnel() -> None:
    sequence = SequenceCondition((SequenceStep(("a",)), SequenceStep(("b",), gap=Gap(
        max=Duration(2, "hours"))), SequenceStep(("c",), absent=True)))
    assert sequence.prefix(2) == SequenceCondition(sequence.steps[:2])
    first = sequence.prefix(1)
    assert not isinstance(first, SequenceCondition) and first.types == ("a",)
    assert Segment("s", "S", sequence.prefix(3)).rule == sequence
    assert AttributeCondition("a", "equals", field="b").value is None


# ---------------------------------------------------------------------- bad input

BAD = [
    (steps({"event": "product_view"}), "rule.sequence.steps", "2 to 8 steps, got 1"),
    (steps({"event": "product_view", "absent": True}, {"event": "purchase"}),
     "rule.sequence.steps[0].absent", "first step cannot be absent"),
    (steps({"event": "product_view"}, {"event": "purchase", "absent": True},
           {"event": "add_to_cart"}), "rule.sequence.steps[1].absent", "only the last step"),
    (steps({"event": "product_view"}, {"event": "purchase", "gap": gap(min=(3, "hours"),
                                                                       max=(2, "hours"))}),
     "rule.sequence.steps[1].gap", "min <= max"),
    (steps({"event": "product_view"}, {"event": "purchase", "gap": gap(max=(1, "months"))}),
     "rule.sequence.steps[1].gap.max.unit", "minutes, hours, days, weeks"),
    (steps({"event": "product_view", "gap": gap(max=(1, "hours"))}, {"event": "purchase"}),
     "rule.sequence.steps[0].gap", "first step has no gap"),
    (steps({"event": "product_veiw"}, {"event": "purchase"}), "rule.sequence.steps[0].event",
     "Did you mean 'product_view'"),
    (steps({"event": "product_view", "count": 2}, {"event": "purchase"}),
     "rule.sequence.steps[0].count", "unknown key 'count'"),
    ({"attribute": "country", "op": "equals", "field": "score"}, "rule.field",
     "cannot be compared"),
    ({"attribute": "country", "op": "contains", "field": "home"}, "rule.op", "equals, not_equals"),
    ({"attribute": "country", "op": "equals", "field": "hmoe"}, "rule.field",
     "Did you mean 'home'"),
    ({"attribute": "country", "op": "equals", "field": "home", "value": "FR"}, "rule.field",
     "not both"),
    ({"event": "purchase", "where": [{"attribute": "amount", "op": "equals",
                                      "field": "profile.country"}]},
     "rule.where[0].field", "cannot be compared"),
]


@pytest.mark.parametrize(("rule", "path", "message"), BAD)
def test_bad_input_is_refused_with_its_position(tmp_path: Path, rule: Any, path: str,
                                                message: str) -> None:
    location = tmp_path / "shop.db"
    build_store(location, spec()).close()
    segment = tmp_path / "bad.yaml"
    segment.write_text(yaml.safe_dump({"name": "Bad", "rule": rule}, sort_keys=False))
    result = CliRunner().invoke(cli, ["count", str(segment), "--db", str(location)])
    assert result.exit_code == 2, result.output
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "bad.yaml:" in error and f": {path}: " in error and message in error, error
    with pytest.raises(SegmentError):
        catalog = Catalog.load(build_store(tmp_path / "again.db", spec()))
        loaded, lines = load_segment_text(segment.read_text(), str(segment))
        validate_segment(loaded, catalog, lines)
