"""Rule nodes in plain words, the way a marketer would read them aloud.

``describe(node, catalog)`` gives one line per node: "Gender is male",
"Purchase at least 2 times in the last 90 days where product category is
Shoes", "Not in segment Unsubscribed", "Any of:". Labels come from the
catalog when the store has them, otherwise from the names. Works on values
straight from YAML as well as on validated (typed) ones, and never fails on
an invalid node (an unknown name is shown as written, a missing value as "…").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from store.schema.catalog import Catalog, label_from_name
from store.schema.values import format_datetime
from store.segments.model import (
    PROFILE_PREFIX,
    AggregateRule,
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    Duration,
    EventCondition,
    Node,
    NotOf,
    Period,
    RelativeDate,
    SegmentRef,
    SequenceCondition,
    SequenceStep,
    Window,
    holds_at_zero,
)

MISSING: Final = "…"

# How each operator reads after the attribute's label.
OP_WORDS: Final[dict[str, str]] = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is not one of",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "greater_than": "is greater than",
    "greater_or_equal": "is at least",
    "less_than": "is less than",
    "less_or_equal": "is at most",
    "between": "is between",
    "not_between": "is not between",
    "is_true": "is true",
    "is_false": "is false",
    "on": "is on",
    "before": "is before",
    "after": "is after",
    "in_last": "is in the last",
    "not_in_last": "is not in the last",
    "in_next": "is in the next",
}
# An operator and the operator that reads as its negation (``not`` around it).
NEGATED_OP: Final[dict[str, str]] = {
    "equals": "not_equals", "not_equals": "equals", "in": "not_in", "not_in": "in",
    "contains": "not_contains", "not_contains": "contains", "between": "not_between",
    "not_between": "between", "in_last": "not_in_last", "not_in_last": "in_last",
    "is_empty": "is_not_empty", "is_not_empty": "is_empty",
}
AGGREGATE_WORDS: Final = {"sum": "total", "avg": "average", "min": "smallest", "max": "largest"}
SINGULAR_UNITS: Final = {"days": "day", "weeks": "week", "months": "month", "years": "year",
                         "minutes": "minute", "hours": "hour"}
# A sequence step read as what the person did: (past, base form, object when none is given)
# for the usual commerce and email events; other types read by their labels.
STEP_VERBS: Final[dict[str, tuple[str, str, str]]] = {
    "product_view": ("viewed {obj}", "view {obj}", "a product"),
    "page_view": ("viewed {obj}", "view {obj}", "a page"),
    "add_to_cart": ("added {obj} to cart", "add {obj} to cart", ""),
    "purchase": ("bought {obj}", "buy {obj}", ""),
    "email_sent": ("was sent {obj}", "get {obj}", "an email"),
    "email_open": ("opened {obj}", "open {obj}", "an email"),
    "email_click": ("clicked {obj}", "click {obj}", "an email"),
}


def describe(node: Node, catalog: Catalog | None = None,
             segment_names: Mapping[str, str] | None = None) -> str:
    """One node in plain words; groups end with a colon (their children follow)."""
    names = segment_names or {}
    if isinstance(node, AllOf):
        return "All of:"
    if isinstance(node, AnyOf):
        return "Any of:"
    if isinstance(node, NotOf):
        return _describe_not(node.child, catalog, names)
    if isinstance(node, SegmentRef):
        return f"In segment {names.get(node.segment) or node.segment}"
    if isinstance(node, AttributeCondition):
        other = attribute_label(node.field, catalog) if node.field is not None else None
        return describe_condition(node, attribute_label(node.attribute, catalog), other)
    if isinstance(node, SequenceCondition):
        return describe_sequence(node, catalog)
    return describe_event(node, catalog)


def rule_lines(node: Node, catalog: Catalog | None = None,
               segment_names: Mapping[str, str] | None = None, depth: int = 0) -> list[str]:
    """A whole rule tree in plain words, one line a node, each group's children indented
    under it (how the review shows a definition before and after a change)."""
    lines = ["  " * depth + describe(node, catalog, segment_names)]
    children: tuple[Node, ...] = ()
    if isinstance(node, AllOf | AnyOf):
        children = node.children
    elif isinstance(node, NotOf) and isinstance(node.child, AllOf | AnyOf):
        children = node.child.children
    elif isinstance(node, NotOf) and isinstance(node.child, NotOf):
        children = (node.child,)
    for child in children:
        lines.extend(rule_lines(child, catalog, segment_names, depth + 1))
    return lines


def _describe_not(child: Node, catalog: Catalog | None, names: Mapping[str, str]) -> str:
    if isinstance(child, AllOf):
        return "Not all of:"
    if isinstance(child, AnyOf):
        return "None of:"
    if isinstance(child, SegmentRef):
        return f"Not in segment {names.get(child.segment) or child.segment}"
    if (isinstance(child, AttributeCondition) and child.op in NEGATED_OP
            and (child.field is None or child.op in ("equals", "not_equals"))):
        flipped = replace(child, op=NEGATED_OP[child.op])
        other = attribute_label(child.field, catalog) if child.field is not None else None
        return describe_condition(flipped, attribute_label(child.attribute, catalog), other)
    if isinstance(child, NotOf):
        return "Not:"
    if isinstance(child, EventCondition) and child.aggregate is None and _is_none(child):
        # not(no purchase) is "purchase at least once"
        return describe_event(replace(child, count=CountRule("at_least", 1)), catalog)
    return "Not: " + describe(child, catalog, names)


def _is_none(node: EventCondition) -> bool:
    """Whether the condition is "did not" (no event counted)."""
    count = node.effective_count
    return count.op in ("at_most", "exactly") and count.value == 0 and count.distinct is None


def describe_condition(node: AttributeCondition, label: str, other: str | None = None) -> str:
    """``<label> <operator in words> <value>``; a field comparison names the other field
    (``other``, its label) in place of a value."""
    words = OP_WORDS.get(node.op, node.op.replace("_", " "))
    if node.field is not None:
        return f"{label} {words} {inline(other or humanize(node.field))}"
    if node.op in ("is_empty", "is_not_empty", "is_true", "is_false"):
        return f"{label} {words}"
    if isinstance(node.value, Period) and node.value.amount == 1:  # "in the last month"
        return f"{label} {words} {SINGULAR_UNITS.get(node.value.unit, node.value.unit)}"
    return f"{label} {words} {format_value(node.value, node.op)}"


def describe_event(node: EventCondition, catalog: Catalog | None = None) -> str:
    """Subject, how often, when, which events, and the aggregate, in that order."""
    subject = event_subject(node.types, catalog)
    count = node.effective_count
    parts: list[str] = []
    if _is_none(node):
        parts.append("No event" if node.types is None else "No " + inline(subject))
    elif count.op == "at_least" and count.value == 0 and count.distinct is None:
        parts.append(subject)  # no count in force (an aggregate stands alone)
    else:
        parts.append(subject)
        parts.append(count_words(count, catalog))
    if node.within is not None:
        parts.append(window_words(node.within))
    if node.where:
        parts.append(where_words(node.where, catalog))
    text = " ".join(p for p in parts if p)
    if node.aggregate is not None:
        text += ", " + aggregate_words(node.aggregate, catalog)
        if holds_at_zero(count, node.aggregate) and not text.startswith("No "):
            text += " (0 if none)"  # a sum over no event is 0: non-buyers match too
    return text


def where_words(where: tuple[AttributeCondition, ...], catalog: Catalog | None) -> str:
    """``where amount is greater than 100 and product category is Shoes``."""
    return "where " + " and ".join(where_condition_words(c, catalog) for c in where)


def where_condition_words(condition: AttributeCondition, catalog: Catalog | None) -> str:
    """One ``where`` condition: ``amount is less than product list price``."""
    other = None if condition.field is None else where_field_label(condition.field, catalog)
    return describe_condition(condition, inline(field_label(condition.attribute, catalog)), other)


def where_field_label(name: str, catalog: Catalog | None) -> str:
    """The other side of a comparison in a ``where``: a field, or ``the profile's country``."""
    if name.startswith(PROFILE_PREFIX):
        label = attribute_label(name.removeprefix(PROFILE_PREFIX), catalog)
        return "the profile's " + inline(label)
    return field_label(name, catalog)


def describe_sequence(node: SequenceCondition, catalog: Catalog | None = None) -> str:
    """``Viewed Shoes, then added to cart within 2 hours, then did not buy within 24 hours``,
    with the sequence's window at the end (``, all in the last 30 days``)."""
    phrases = [step_words(step, index, catalog) for index, step in enumerate(node.steps)]
    text = ", then ".join(phrases)
    text = text[:1].upper() + text[1:]
    if node.within is not None:
        text += ", all " + window_words(node.within)
    return text


def step_words(step: SequenceStep, index: int, catalog: Catalog | None = None) -> str:
    """One step: what was done (or not), to what, and when after the previous step."""
    where = list(step.where)
    obj = ""
    for cond in where:  # `product.category equals Shoes` reads as the object: "viewed Shoes"
        if (cond.field is None and cond.op in ("equals", "in") and "." in cond.attribute
                and isinstance(cond.value, str | tuple)):
            obj = (" or ".join(format_value(v) for v in cond.value)
                   if isinstance(cond.value, tuple) else format_value(cond.value))
            where.remove(cond)
            break
    if step.types is None:
        action = "had no event" if step.absent else "had any event"
        if obj:
            action += f" of {obj}"
    else:
        action = " or ".join(type_words(name, obj, step.absent, catalog) for name in step.types)
        if step.absent:
            action = "did not " + action if step.types[0] in STEP_VERBS else "no " + action
    if where:
        action += " " + where_words(tuple(where), catalog)
    if index > 0 and step.gap is not None:
        action += " " + gap_words(step.gap.min, step.gap.max)
    return action


def type_words(name: str, obj: str, absent: bool, catalog: Catalog | None) -> str:
    verbs = STEP_VERBS.get(name)
    if verbs is None:
        label = inline(event_label(name, catalog))
        return f"{label} of {obj}" if obj else label
    past, base, default = verbs
    text = (base if absent else past).replace("{obj}", obj or default)
    return " ".join(text.split())


def gap_words(low: Duration | None, high: Duration | None) -> str:
    """``within 2 hours``, ``at least 30 minutes later``, ``between 1 and 2 days later``."""
    if low is not None and high is not None:
        return f"between {duration_words(low)} and {duration_words(high)} later"
    if high is not None:
        return f"within {duration_words(high)}"
    if low is not None:
        return f"at least {duration_words(low)} later"
    return ""


def duration_words(length: Duration) -> str:
    unit = SINGULAR_UNITS.get(length.unit, length.unit) if length.amount == 1 else length.unit
    return f"{length.amount} {unit}"


def event_subject(types: tuple[str, ...] | None, catalog: Catalog | None) -> str:
    if types is None:
        return "Any event"
    if not types:
        return MISSING
    labels = [event_label(name, catalog) for name in types]
    return labels[0] + "".join(" or " + inline(label) for label in labels[1:])


def count_words(count: CountRule, catalog: Catalog | None = None) -> str:
    """``at least 2 times``, ``between 1 and 3 times``; with ``distinct``, counts what the field
    names: ``in at least 3 orders`` (an id field: each value is one thing), else ``of at least
    2 distinct SKUs``."""
    value = count.value
    prefix = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}.get(
        count.op, count.op.replace("_", " "))
    ranged = count.op == "between" and isinstance(value, tuple | list) and len(value) == 2
    if count.distinct:
        amount = (f"{format_value(value[0])} to {format_value(value[1])}" if ranged
                  else f"{prefix} {format_value(value)}")
        singular, is_id = distinct_noun(count.distinct, catalog)
        noun = singular if not ranged and value == 1 else plural(singular)
        return f"in {amount} {noun}" if is_id else f"of {amount} distinct {noun}"
    if ranged:
        return f"between {format_value(value[0])} and {format_value(value[1])} times"
    return f"{prefix} {times(value)}"


def distinct_noun(field: str, catalog: Catalog | None = None) -> tuple[str, bool]:
    """What a distinct count counts, in words, and whether the field is an id (``order_id``:
    ("order", True); ``sku``: ("SKU", False); ``product.category``: ("product category",
    False))."""
    label = inline(field_label(field, catalog))
    for suffix in (" id", " ID", " Id"):
        if label.endswith(suffix) and len(label) > len(suffix):
            return label[: -len(suffix)], True
    return label, False


def plural(noun: str) -> str:
    """An English plural, good enough for field names: orders, SKUs, categories, boxes."""
    if not noun:
        return noun
    if noun.isupper():
        return noun + "s"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh", "z")):
        return noun + "es"
    return noun + "s"


def times(value: Any) -> str:
    if value == 1 and not isinstance(value, bool):
        return "once"
    return f"{format_value(value)} times"


def window_words(window: Window) -> str:
    if window.last is not None:
        return "in the " + period_words(window.last, last=True)
    if window.between is not None:
        low, high = window.between
        return f"between {format_value(low)} and {format_value(high)}"
    return ""


def period_words(period: Period, *, last: bool = False) -> str:
    """``30 days``; with ``last``, ``last 30 days`` / ``last day``."""
    if period.amount == 1 and last:
        return "last " + SINGULAR_UNITS.get(period.unit, period.unit)
    unit = SINGULAR_UNITS.get(period.unit, period.unit) if period.amount == 1 else period.unit
    return ("last " if last else "") + f"{period.amount} {unit}"


def aggregate_words(aggregate: AggregateRule, catalog: Catalog | None = None) -> str:
    fn = AGGREGATE_WORDS.get(aggregate.fn, aggregate.fn)
    condition = AttributeCondition(aggregate.attribute, aggregate.op, aggregate.value)
    return describe_condition(condition, f"{fn} {inline(field_label(aggregate.attribute, catalog))}")


# ---------------------------------------------------------------------- values


def format_value(value: Any, op: str | None = None) -> str:
    """A rule value as a person writes it: 50, male, 2024-01-31, 30 days ago, Shoes or Boots."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        if op in ("between", "not_between") and len(value) == 2:
            return f"{format_value(value[0])} and {format_value(value[1])}"
        items = [format_value(v) for v in value]
        return ", ".join(items) if items else MISSING
    if isinstance(value, RelativeDate):
        if value.direction == "today":
            return "today"
        amount = value.amount
        unit = SINGULAR_UNITS.get(value.unit, value.unit) if amount == 1 else value.unit
        return f"{amount} {unit} ago" if value.direction == "ago" else f"in {amount} {unit}"
    if isinstance(value, Period):
        return period_words(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value) + " UTC"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------- labels


def attribute_label(name: str, catalog: Catalog | None) -> str:
    attribute = catalog.attributes.get(name) if catalog else None
    return attribute.display_label if attribute else humanize(name)


def event_label(name: str, catalog: Catalog | None) -> str:
    event_type = catalog.event_types.get(name) if catalog else None
    return (event_type.label if event_type and event_type.label else humanize(name))


def field_label(name: str, catalog: Catalog | None) -> str:
    """An event field's label, or ``Entity field`` for ``entity.field`` (``Product category``)."""
    if "." in name:
        entity_name, _, field_name = name.partition(".")
        entity = catalog.entities.get(entity_name) if catalog else None
        entity_label = entity.label if entity and entity.label else humanize(entity_name)
        entity_field = entity.fields.get(field_name) if entity else None
        label = entity_field.label if entity_field and entity_field.label else humanize(field_name)
        if label.lower().startswith(entity_label.lower()):
            return label
        return f"{entity_label} {inline(label)}"
    event_field = catalog.event_fields.get(name) if catalog else None
    return event_field.label if event_field and event_field.label else humanize(name)


def humanize(name: str) -> str:
    """``loyalty_tier`` -> ``Loyalty tier`` (the catalog's rule: ``StreamingTV`` -> ``Streaming
    TV``)."""
    return label_from_name(name.strip()) if name.strip() else name


def inline(label: str) -> str:
    """A label inside a sentence: ``Product`` -> ``product``; ``SKU`` stays ``SKU``."""
    if len(label) > 1 and label[0].isupper() and not label[1].isupper():
        return label[0].lower() + label[1:]
    return label
