"""Plain-words labels of rule nodes, with and without catalog labels."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from store.schema.catalog import (
    Attribute,
    Catalog,
    Entity,
    EntityField,
    EventField,
    EventType,
)
from store.schema.values_lookup import breakdown_candidate, has_few_values, top_values
from store.segments.describe import describe, field_label, format_value, inline
from store.segments.model import (
    AggregateRule,
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    NotOf,
    Period,
    RelativeDate,
    SegmentRef,
    Window,
    fixed_attributes,
)
from tests.factory import EntitySpec, StoreSpec, build_store

CATALOG = Catalog(
    attributes={
        "gender": Attribute("gender", "string", "gender", label="Gender"),
        "age": Attribute("age", "integer", "derived:age", label="Age", derived_from="age:birth_date"),
        "loyalty_tier": Attribute("loyalty_tier", "string", "loyalty_tier"),
        "email_opt_in": Attribute("email_opt_in", "boolean", "email_opt_in",
                                  label="Email marketing consent"),
        "signup_date": Attribute("signup_date", "datetime", "signup_date", label="Signed up"),
    },
    event_types={"purchase": EventType(1, "purchase", "Purchase"),
                 "add_to_cart": EventType(2, "add_to_cart", "Added to cart")},
    event_fields={"amount": EventField("amount", "number", "amount", "Amount"),
                  "order_id": EventField("order_id", "string", "order_id", "Order id"),
                  "sku": EventField("sku", "string", "sku", "SKU")},
    entities={"product": Entity("product", "entity_product", "sku", "sku", {
        "category": EntityField("category", "string", "category", "Category"),
        "name": EntityField("name", "string", "name", "Product name")}, label="Product")},
)


@pytest.mark.parametrize(("node", "words"), [
    (AttributeCondition("gender", "equals", "male"), "Gender is male"),
    (AttributeCondition("age", "greater_than", 50), "Age is greater than 50"),
    (AttributeCondition("age", "between", (18, 30)), "Age is between 18 and 30"),
    (AttributeCondition("loyalty_tier", "in", ("gold", "platinum")),
     "Loyalty tier is one of gold, platinum"),
    (AttributeCondition("email_opt_in", "is_true"), "Email marketing consent is true"),
    (AttributeCondition("gender", "is_empty"), "Gender is empty"),
    (AttributeCondition("signup_date", "in_last", Period(30, "days")),
     "Signed up is in the last 30 days"),
    (AttributeCondition("signup_date", "in_last", Period(1, "months")),
     "Signed up is in the last month"),
    (AttributeCondition("signup_date", "after", RelativeDate("ago", 2, "weeks")),
     "Signed up is after 2 weeks ago"),
    (AttributeCondition("signup_date", "before", dt.date(2024, 1, 31)),
     "Signed up is before 2024-01-31"),
    (AttributeCondition("signup_date", "on", RelativeDate("today")), "Signed up is on today"),
    (AttributeCondition("age", "greater_than", None), "Age is greater than …"),
    (AttributeCondition("no_such", "equals", "x"), "No such is x"),
    (EventCondition(("purchase",), where=(AttributeCondition("product.category", "equals",
                                                             "Shoes"),),
                    within=Window(last=Period(90, "days")), count=CountRule("at_least", 2)),
     "Purchase at least 2 times in the last 90 days where product category is Shoes"),
    (EventCondition(("purchase",)), "Purchase at least once"),
    (EventCondition(("purchase",), count=CountRule("at_most", 0),
                    within=Window(last=Period(1, "years"))), "No purchase in the last year"),
    (EventCondition(None, within=Window(between=(dt.date(2025, 1, 1), dt.date(2025, 3, 31)))),
     "Any event at least once between 2025-01-01 and 2025-03-31"),
    (EventCondition(("purchase", "add_to_cart"), count=CountRule("between", (2, 5))),
     "Purchase or added to cart between 2 and 5 times"),
    (EventCondition(("purchase",), count=CountRule("at_least", 3, "order_id")),
     "Purchase in at least 3 orders"),
    (EventCondition(("purchase",), count=CountRule("exactly", 1, "order_id")),
     "Purchase in exactly 1 order"),
    (EventCondition(("product_view",), count=CountRule("at_least", 2, "sku")),
     "Product view of at least 2 distinct SKUs"),
    (EventCondition(("product_view",), count=CountRule("at_least", 3, "product.category")),
     "Product view of at least 3 distinct product categories"),
    (EventCondition(("purchase",), count=CountRule("between", (1, 2), "order_id")),
     "Purchase in 1 to 2 orders"),
    (EventCondition(("purchase",), aggregate=AggregateRule("sum", "amount", "greater_or_equal",
                                                           500)),
     "Purchase, total amount is at least 500"),
    (EventCondition(("purchase",), within=Window(last=Period(1, "years")),
                    aggregate=AggregateRule("sum", "amount", "less_than", 500)),
     "Purchase in the last year, total amount is less than 500 (0 if none)"),
    (EventCondition(None, count=CountRule("at_most", 0), within=Window(last=Period(6, "months"))),
     "No event in the last 6 months"),
    (NotOf(EventCondition(("purchase",), count=CountRule("at_most", 0))),
     "Purchase at least once"),
    (NotOf(EventCondition(None, count=CountRule("exactly", 0))), "Any event at least once"),
    (NotOf(EventCondition(("purchase",), count=CountRule("at_most", 0),
                          aggregate=AggregateRule("sum", "amount", "less_than", 5))),
     "Not: No purchase, total amount is less than 5"),
    (EventCondition(("purchase",), where=(AttributeCondition("sku", "starts_with", "BOO"),)),
     "Purchase at least once where SKU starts with BOO"),
    (SegmentRef("unsubscribed"), "In segment Unsubscribed"),
    (NotOf(SegmentRef("unsubscribed")), "Not in segment Unsubscribed"),
    (NotOf(SegmentRef("gone")), "Not in segment gone"),
    (NotOf(AttributeCondition("gender", "equals", "male")), "Gender is not male"),
    (NotOf(AttributeCondition("gender", "not_in", ("a", "b"))), "Gender is one of a, b"),
    (NotOf(AttributeCondition("age", "greater_than", 50)), "Not: Age is greater than 50"),
    (NotOf(EventCondition(("purchase",))), "Not: Purchase at least once"),
    (AllOf(), "All of:"),
    (AnyOf(), "Any of:"),
    (NotOf(AllOf()), "Not all of:"),
    (NotOf(AnyOf()), "None of:"),
    (NotOf(NotOf(SegmentRef("x"))), "Not:"),
])
def test_describe(node: object, words: str) -> None:
    assert describe(node, CATALOG, {"unsubscribed": "Unsubscribed"}) == words  # type: ignore[arg-type]


def test_describe_without_a_catalog_uses_names() -> None:
    node = EventCondition(("add_to_cart",), where=(AttributeCondition("product.category", "in",
                                                                      ("Shoes",)),))
    assert describe(node) == "Add to cart at least once where product category is one of Shoes"
    assert describe(AttributeCondition("loyalty_tier", "equals", "gold")) == "Loyalty tier is gold"


def test_field_labels_and_inline_words() -> None:
    assert field_label("product.category", CATALOG) == "Product category"
    assert field_label("product.name", CATALOG) == "Product name"
    assert field_label("order_id", CATALOG) == "Order id"
    assert inline("Product category") == "product category"
    assert inline("SKU") == "SKU"


def test_format_value() -> None:
    assert format_value(2.0) == "2"
    assert format_value(2.5) == "2.5"
    assert format_value(True) == "true"
    assert format_value(RelativeDate("from_now", 1, "weeks")) == "in 1 week"
    assert format_value(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2025-01-02 03:04:05 UTC"
    assert format_value(()) == "…"


def test_top_values_counts_profiles_events_and_entities(tmp_path: Path) -> None:
    spec = StoreSpec(
        attributes={"gender": "string", "birth_date": "date"},
        profiles=[{"id": "a", "gender": "male"}, {"id": "b", "gender": "female"},
                  {"id": "c", "gender": "male"}, {"id": "d"}],
        event_fields={"sku": "string"},
        events=[{"profile_id": "a", "type": "purchase", "sku": "S1",
                 "timestamp": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}] * 3
        + [{"profile_id": "b", "type": "purchase", "sku": "S2",
            "timestamp": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}],
        entities={"product": EntitySpec("sku", "string", "sku", {"category": "string"},
                                        [{"sku": "S1", "category": "Shoes"},
                                         {"sku": "S2", "category": "Shoes"},
                                         {"sku": "S3", "category": "Bags"}])},
        derived_age_from="birth_date",
    )
    conn: sqlite3.Connection = build_store(tmp_path / "s.db", spec)
    catalog = Catalog.load(conn)
    assert top_values(conn, catalog, "gender") == [("male", 2), ("female", 1)]
    assert top_values(conn, catalog, "gender", limit=1) == [("male", 2)]
    assert top_values(conn, catalog, "age") == []
    assert top_values(conn, catalog, "sku", event_field=True) == [("S1", 3), ("S2", 1)]
    assert top_values(conn, catalog, "product.category", event_field=True) == [
        ("Shoes", 2), ("Bags", 1)]
    with pytest.raises(Exception, match="unknown"):
        top_values(conn, catalog, "nope")
    assert has_few_values(conn, catalog, "gender")
    assert not has_few_values(conn, catalog, "gender", at_most=1)
    assert not has_few_values(conn, catalog, "age")
    assert breakdown_candidate(conn, catalog) == "gender"
    conn.close()


def test_the_breakdown_prefers_an_attribute_the_rule_does_not_fix(tmp_path: Path) -> None:
    """After "Gender is male" the breakdown is by country, not "male 100%"; a fixed attribute
    is only the last resort; conditions under any/not fix nothing."""
    spec = StoreSpec(
        attributes={"gender": "string", "country": "string"},
        profiles=[{"id": "a", "gender": "male", "country": "DE"},
                  {"id": "b", "gender": "female", "country": "FR"},
                  {"id": "c", "gender": "male", "country": "FR"}],
    )
    conn: sqlite3.Connection = build_store(tmp_path / "s.db", spec)
    catalog = Catalog.load(conn)
    male = AttributeCondition("gender", "equals", "male")
    assert fixed_attributes(AllOf((male, AttributeCondition("country", "contains", "E")))) == {
        "gender"}
    assert fixed_attributes(AnyOf((male,))) == set()
    assert fixed_attributes(AttributeCondition("country", "in", ("DE",))) == {"country"}
    assert fixed_attributes(AttributeCondition("country", "in", ("DE", "FR"))) == set()
    assert fixed_attributes(NotOf(male)) == set()
    assert breakdown_candidate(conn, catalog) == "gender"
    assert breakdown_candidate(conn, catalog, fixed_attributes(male)) == "country"
    assert breakdown_candidate(conn, catalog, {"gender", "country"}) == "gender"
    conn.close()


def test_labels_from_column_names_keep_words_and_acronyms() -> None:
    """Imported columns without a label read as words: "Streaming TV", not "Streamingtv" or
    "Streaming tv"."""
    from store.schema.catalog import label_from_name

    assert [label_from_name(n) for n in ("StreamingTV", "streaming_tv", "SeniorCitizen",
                                         "customerID", "tenure", "sms_opt_in", "address_line_2")
            ] == ["Streaming TV", "Streaming TV", "Senior citizen", "Customer ID", "Tenure",
                  "SMS opt in", "Address line 2"]
