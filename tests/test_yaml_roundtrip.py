"""Segment YAML: dump then load gives back an equal segment; bad input is refused clearly.

The round trip works on untyped segments, as the loader produces them (dates
stay text until validation types them). Error tests check that a refusal names
the YAML line and the node path, and that validation against a small store
names what is wrong and what was meant.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.schema.catalog import Catalog, did_you_mean, nearest
from store.segments.errors import SegmentError
from store.segments.model import (
    AGGREGATE_FNS,
    AGGREGATE_OPS,
    COUNT_OPS,
    OPS_BY_TYPE,
    UNITS,
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
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import dump_segment, load_segment_text
from tests.factory import EntitySpec, StoreSpec, build_store

# ---------------------------------------------------------------------- round trip

# Text that YAML would read as something else if written bare.
LOOKALIKES = (
    "no", "yes", "No", "off", "on", "y", "n", "true", "False", "TRUE", "null", "Null", "~", "",
    "123", "-7", "0x1F", "0o17", "1_000", "1.5", ".5", "1e3", ".inf", "-.inf", ".nan",
    "2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00", "12:30", "1:20:30",
    "*", "&a", "*a", "!tag", "@x", "`x", "%x", "#c", "a #c", "a: b", "- x", "[1]", "{a: 1}",
    " lead", "trail ", "line\nbreak", "tab\there", "'single'", '"double"', "back\\slash",
    "Zürich", "東京", "emoji 🎉", "\u2028sep", "\ufeffbom",
)
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
TEXT = st.one_of(st.sampled_from(LOOKALIKES), SAFE_TEXT).filter(lambda t: t != "today")
NAMES = st.one_of(st.sampled_from(("gender", "age", "birth_date", "product.category", "amount",
                                   "a-b", "x y", "123", "true", "no")),
                  st.text("abcxyz_.", min_size=1, max_size=8))
NUMBER = st.one_of(st.integers(-(2**63), 2**63 - 1),
                   st.floats(allow_nan=False, allow_infinity=False))
RELATIVE = st.one_of(
    st.just(RelativeDate("today")),
    st.builds(RelativeDate, st.sampled_from(["ago", "from_now"]), st.integers(0, 10_000),
              st.sampled_from(UNITS)),
)
PERIOD = st.builds(Period, st.integers(0, 10_000), st.sampled_from(UNITS))
SCALAR = st.one_of(TEXT, NUMBER, st.booleans(), RELATIVE)
VALUE = st.one_of(
    SCALAR,
    PERIOD,
    st.lists(SCALAR, min_size=1, max_size=4).map(tuple),
    st.tuples(SCALAR, SCALAR),
)
ALL_OPS = sorted({op for ops in OPS_BY_TYPE.values() for op in ops})


def attribute_nodes() -> st.SearchStrategy[AttributeCondition]:
    return st.builds(AttributeCondition, NAMES, st.sampled_from(ALL_OPS),
                     st.one_of(st.none(), VALUE))


EVENT_TYPE = st.one_of(st.sampled_from(("purchase", "view", "no", "123", "true", "a b")),
                       st.text("abcxyz_-", min_size=1, max_size=6))


@st.composite
def event_nodes(draw: st.DrawFn) -> EventCondition:
    types = draw(st.one_of(st.none(), st.lists(EVENT_TYPE, min_size=1, max_size=3, unique=True)
                           .map(tuple)))
    where = tuple(draw(st.lists(attribute_nodes(), max_size=2)))
    within = draw(st.one_of(
        st.none(),
        st.builds(Window, last=PERIOD),
        st.builds(lambda pair: Window(between=pair), st.tuples(st.one_of(TEXT, RELATIVE),
                                                               st.one_of(TEXT, RELATIVE))),
    ))
    count = draw(st.one_of(st.none(), st.builds(
        CountRule, st.sampled_from(COUNT_OPS),
        st.one_of(st.integers(0, 10**6), st.tuples(st.integers(0, 9), st.integers(0, 9))),
        st.one_of(st.none(), NAMES))))
    aggregate = draw(st.one_of(st.none(), st.builds(
        AggregateRule, st.sampled_from(AGGREGATE_FNS), NAMES, st.sampled_from(AGGREGATE_OPS),
        st.one_of(NUMBER, st.tuples(NUMBER, NUMBER)))))
    return EventCondition(types, where, within, count, aggregate)


LEAVES = st.one_of(attribute_nodes(), event_nodes(),
                   st.builds(SegmentRef, st.from_regex(r"[a-z0-9]+(-[a-z0-9]+)?", fullmatch=True)))
RULES: st.SearchStrategy[Node] = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda c: AllOf(tuple(c))),
        st.lists(inner, max_size=3).map(lambda c: AnyOf(tuple(c))),
        inner.map(NotOf),
    ),
    max_leaves=8,
)
SEGMENTS = st.builds(
    Segment,
    id=st.from_regex(r"[a-z0-9]+([-_][a-z0-9]+){0,2}", fullmatch=True),
    name=st.one_of(st.sampled_from(LOOKALIKES), SAFE_TEXT).filter(bool),
    rule=RULES,
    description=TEXT,
)


@settings(max_examples=400, deadline=None, print_blob=True)
@given(SEGMENTS)
def test_dump_then_load_gives_an_equal_segment(segment: Segment) -> None:
    text = dump_segment(segment)
    loaded, _ = load_segment_text(text)
    assert loaded == segment, text


@pytest.mark.parametrize("text", ["1e3", "1.5e3", "2E+5", "-1e-2"])
def test_text_in_exponent_notation_stays_text(text: str) -> None:
    """PyYAML writes these bare (YAML 1.1 floats need a dot and a signed exponent), and the
    loader reads bare ones as numbers: the dump must quote them."""
    segment = Segment("s", "S", AttributeCondition("city", "equals", text), description=text)
    loaded, _ = load_segment_text(dump_segment(segment))
    assert loaded == segment


def test_today_as_text_comes_back_as_the_relative_date() -> None:
    """'today' is the relative date wherever a value is read (validation turns it back into
    the text "today" for a string attribute)."""
    segment = Segment("s", "S", AttributeCondition("city", "equals", "today"))
    loaded, _ = load_segment_text(dump_segment(segment))
    assert loaded.rule == AttributeCondition("city", "equals", RelativeDate("today"))


def test_line_map_points_at_each_node() -> None:
    text = ("name: Lines\n"
            "rule:\n"
            "  all:\n"
            "    - attribute: gender\n"
            "      op: equals\n"
            "      value: male\n"
            "    - not:\n"
            "        event: purchase\n")
    _, lines = load_segment_text(text)
    assert lines["rule"] == 3
    assert lines["rule.all[0]"] == 4
    assert lines["rule.all[1].not"] == 7  # the line of its key


# ---------------------------------------------------------------------- loader errors


def refusal(text: str) -> SegmentError:
    with pytest.raises(SegmentError) as caught:
        load_segment_text(text, "seg.yaml")
    return caught.value


@pytest.mark.parametrize(("text", "line", "path", "words"), [
    ("rule:\n  attribute: gender\n  op: equals\n  value: male\n  colour: red\n",
     5, "rule.colour", "unknown key 'colour'"),
    ("name: x\nrule:\n  all: []\n  any: []\n", 3, "rule", "exactly one kind"),
    ("name: x\ndescription: no rule\n", 1, "rule", "missing required key 'rule'"),
    ("rule:\n  attribute: gender\n  value: male\n", 2, "rule.op", "missing required key 'op'"),
    ("rule:\n  attribute: gender\n  op: equals\n  op: in\n", 4, "rule", "duplicate key 'op'"),
    ("rule: [\n", None, None, "not valid YAML"),
    ("- a\n- b\n", 1, "segment", "expected a mapping"),
    ("rule: 5\n", 1, "rule", "expected a mapping"),
    ("rule:\n  all: 5\n", 2, "rule.all", "takes a list"),
    ("rule:\n  all:\n    - colour: red\n", 3, "rule.all[0]", "a node needs one of"),
    ("rule:\n  event: purchase\n  within: {last: x, unit: days}\n", 3, "rule.within.last",
     "whole number"),
    ("rule:\n  event: purchase\n  within: {last: 3, unit: fortnights}\n", 3, "rule.within.unit",
     "unit must be one of"),
    ("rule:\n  event: purchase\n  count: {op: at_least}\n", 3, "rule.count.value",
     "missing required key 'value'"),
    ("rule:\n  attribute: signup\n  op: before\n  value: {ago: 3}\n", 4, "rule.value",
     "relative date"),
    ("rule:\n  event: [purchase, 3]\n", 2, "rule.event", "an event type, a list of types"),
    ("rule:\n  event: purchase\n  where: {attribute: amount}\n", 3, "rule.where", "list"),
    ("rule:\n  event: purchase\n  aggregate: {fn: sum, attribute: amount, op: equals}\n", 3,
     "rule.aggregate.value", "missing required key 'value'"),
    ("id: Not A Slug\nrule: {all: []}\n", 1, "id", "lowercase slug"),
])
def test_loader_refuses_bad_input_naming_line_and_path(text: str, line: int | None,
                                                       path: str | None, words: str) -> None:
    error = refusal(text)
    assert words in error.message
    assert error.source == "seg.yaml"
    if line is not None:
        assert error.line == line
    if path is not None:
        assert error.path == path
    assert str(error).startswith("seg.yaml")


def test_empty_document_is_refused() -> None:
    assert "empty" in refusal("").message


# ---------------------------------------------------------------------- validation errors


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    spec = StoreSpec(
        attributes={"gender": "string", "birth_date": "date", "score": "integer",
                    "last_seen": "datetime", "vip": "boolean"},
        event_fields={"amount": "number", "sku": "string"},
        event_types=("purchase", "page_view"),
        entities={"product": EntitySpec("sku", "string", "sku",
                                        {"sku": "string", "category": "string"}, [])},
        derived_age_from="birth_date",
    )
    conn: sqlite3.Connection = build_store(tmp_path / "store.db", spec)
    try:
        yield Catalog.load(conn)
    finally:
        conn.close()


def validated(text: str, catalog: Catalog,
              others: dict[str, str] | None = None) -> ResolvedSegment:
    segment, lines = load_segment_text(text, "seg.yaml")
    texts = others or {}

    def lookup(seg_id: str, source: str | None) -> tuple[Segment, dict[str, int]] | None:
        found = texts.get(seg_id)
        return None if found is None else load_segment_text(found, f"{seg_id}.yaml")

    return validate_segment(segment, catalog, lines, lookup)


def invalid(text: str, catalog: Catalog, others: dict[str, str] | None = None) -> SegmentError:
    with pytest.raises(SegmentError) as caught:
        validated(text, catalog, others)
    return caught.value


def test_unknown_attribute_names_the_nearest(catalog: Catalog) -> None:
    error = invalid("rule:\n  all:\n    - attribute: gendr\n      op: equals\n      value: m\n",
                    catalog)
    assert "unknown attribute 'gendr'" in error.message and "'gender'" in error.message
    assert (error.path, error.line) == ("rule.all[0].attribute", 3)


def test_nearest_names_share_the_most_characters_in_order() -> None:
    # the longest common subsequence counts ("eal" of "ealm" and "email"); difflib's matcher,
    # which this one replaced, counts matching blocks and suggested nothing here
    assert nearest("ealm", ["age", "city", "email", "gender"]) == ["email"]
    assert did_you_mean("ealm", {"age", "email"}) == " Did you mean 'email'?"
    assert nearest("gen", ["gender", "age", "city"]) == ["age", "gender"]  # a tie, alphabetical
    assert nearest("xyz", ["age", "email"]) == []  # under half alike: no suggestion


def test_operator_must_fit_the_type(catalog: Catalog) -> None:
    error = invalid("rule: {attribute: age, op: contains, value: 5}\n", catalog)
    assert "'contains' does not apply to 'age' (integer)" in error.message
    assert "greater_than" in error.message and error.path == "rule.op"


def test_age_greater_than_text_is_an_error_not_an_empty_audience(catalog: Catalog) -> None:
    error = invalid('rule: {attribute: age, op: greater_than, value: "abc"}\n', catalog)
    assert "not a whole number" in error.message and error.path == "rule.value"


@pytest.mark.parametrize(("rule", "path", "words"), [
    ("{event: purchse}", "rule.event", "unknown event type 'purchse'. Did you mean 'purchase'"),
    ("{event: [purchase, pageview]}", "rule.event[1]", "Did you mean 'page_view'"),
    ("{event: purchase, where: [{attribute: amout, op: equals, value: 1}]}",
     "rule.where[0].attribute", "unknown event field 'amout'. Did you mean 'amount'"),
    ("{event: purchase, where: [{attribute: prodct.category, op: equals, value: x}]}",
     "rule.where[0].attribute", "unknown entity 'prodct'"),
    ("{event: purchase, where: [{attribute: product.colour, op: equals, value: x}]}",
     "rule.where[0].attribute", "entity 'product' has no field 'colour'"),
    ("{event: purchase, count: {op: at_least, value: 2, distinct: skuu}}",
     "rule.count.distinct", "Did you mean 'sku'"),
    ("{event: purchase, aggregate: {fn: sum, attribute: sku, op: equals, value: 1}}",
     "rule.aggregate.attribute", "numeric field"),
    ("{event: purchase, count: {op: between, value: [3, 1]}}", "rule.count.value", "low <= high"),
    ("{attribute: score, op: between, value: [5, 1]}", "rule.value", "low <= high"),
    ("{attribute: birth_date, op: between, value: ['2024-02-01', '2024-01-01']}", "rule.value",
     "low <= high"),
    ("{event: purchase, within: {between: ['2024-02-01', '2024-01-01']}}", "rule.within.between",
     "start <= end"),
    ("{attribute: score, op: in, value: []}", "rule.value", "non-empty list"),
    ("{attribute: vip, op: is_true, value: 1}", "rule.value", "takes no value"),
    ("{attribute: birth_date, op: in_last, value: 30}", "rule.value", "period"),
    ("{attribute: birth_date, op: on, value: '2024-02-30'}", "rule.value", "expected a date"),
])
def test_validation_names_what_is_wrong(catalog: Catalog, rule: str, path: str,
                                        words: str) -> None:
    error = invalid(f"rule: {rule}\n", catalog)
    assert words in error.message
    assert error.path == path and error.line == 1


def test_a_cycle_is_named(catalog: Catalog) -> None:
    others = {"b": "id: b\nrule: {segment: c}\n", "c": "id: c\nrule: {not: {segment: b}}\n"}
    error = invalid("id: a\nrule: {segment: b}\n", catalog, others)
    assert "cycle: b -> c -> b" in error.message


def test_a_segment_referring_to_itself_is_a_cycle(catalog: Catalog) -> None:
    error = invalid("id: a\nrule:\n  any:\n    - segment: a\n", catalog)
    assert "cycle: a -> a" in error.message
    assert (error.path, error.line) == ("rule.any[0].segment", 4)


def test_unknown_segment_reference(catalog: Catalog) -> None:
    error = invalid("id: a\nrule: {all: [{segment: nope}]}\n", catalog)
    assert "unknown segment 'nope'" in error.message and error.path == "rule.all[0].segment"


def test_references_resolve_with_typed_values(catalog: Catalog) -> None:
    others = {"b": "id: b\nrule: {attribute: birth_date, op: before, value: 2000-01-01}\n"}
    resolved = validated("id: a\nrule: {not: {segment: b}}\n", catalog, others)
    assert resolved.refs["b"].rule == AttributeCondition("birth_date", "before",
                                                          dt.date(2000, 1, 1))


def test_values_are_typed_by_the_attribute(catalog: Catalog) -> None:
    text = ("rule:\n  all:\n"
            "    - {attribute: gender, op: in, value: [no, 123, 2024-01-01, true]}\n"
            "    - {attribute: last_seen, op: after, value: '2024-01-01T10:00:00+02:00'}\n"
            "    - {attribute: last_seen, op: before, value: 2024-01-01}\n"
            "    - {attribute: score, op: equals, value: 3.0}\n"
            "    - {attribute: birth_date, op: after, value: {ago: 1, unit: months}}\n")
    rule = validated(text, catalog).segment.rule
    assert isinstance(rule, AllOf)
    values: list[Any] = [c.value for c in rule.children if isinstance(c, AttributeCondition)]
    assert values == [
        ("no", "123", "2024-01-01", "true"),
        dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC),
        dt.date(2024, 1, 1),
        3,
        RelativeDate("ago", 1, "months"),
    ]
    assert isinstance(values[3], int)


def test_mixed_date_and_datetime_bounds_validate(catalog: Catalog) -> None:
    """A datetime attribute may take a date and a datetime as its bounds (each compares in
    its own way); validation must type them, not fail comparing a date with a datetime."""
    text = "rule: {attribute: last_seen, op: between, value: [2024-01-01, '2024-01-02T10:00:00']}\n"
    rule = validated(text, catalog).segment.rule
    assert rule == AttributeCondition("last_seen", "between", (
        dt.date(2024, 1, 1), dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC)))
