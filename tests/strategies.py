"""Hypothesis strategies: tiny stores full of edge cases, and typed rule trees over them.

The store's values cluster around the as-of instant and around every window
edge a rule can name (month ends, Feb 29, start and end of D, A and A+1s), so
that off-by-one mistakes in a compiled query show up as count differences.
Rule trees are built directly as ``store.segments.model`` nodes with typed values, the
form ``store.segments.validate`` produces. Strategies that depend on the as-of instant
are cached: building and validating strategies costs more than drawing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from store.schema.values import AttrType
from store.segments.model import (
    AGGREGATE_FNS,
    AGGREGATE_OPS,
    COUNT_OPS,
    FIELD_OPS_BY_TYPE,
    GAP_UNITS,
    LIST_OPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PERIOD_OPS,
    RANGE_OPS,
    UNITS,
    AggregateRule,
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    Duration,
    EventCondition,
    Gap,
    Node,
    NotOf,
    Period,
    RelativeDate,
    Segment,
    SegmentRef,
    SequenceCondition,
    SequenceStep,
    Window,
    comparable_types,
    referenced_segments,
)
from store.segments.timeutil import as_of_date, shift
from tests.factory import EntitySpec, StoreSpec

UTC = dt.UTC
DAY = dt.timedelta(days=1)

# ---------------------------------------------------------------------- schema

PROFILE_ATTRIBUTES: dict[str, AttrType] = {
    "gender": "string",
    "city": "string",
    "score": "integer",
    "balance": "number",
    "vip": "boolean",
    "signup": "date",
    "last_seen": "datetime",
    "birth_date": "date",
    # Second attributes of a type, so that field comparisons meet every compatible pair.
    "home_city": "string",
    "opted_in": "boolean",
    "last_order": "datetime",
}
# What rules may name: the stored attributes, the built-in id and the derived age.
RULE_ATTRIBUTES: dict[str, AttrType] = {**PROFILE_ATTRIBUTES, "id": "string", "age": "integer"}
EVENT_TYPES = ("purchase", "view", "refund")
EVENT_FIELDS: dict[str, AttrType] = {
    "amount": "number",
    "qty": "integer",
    "sku": "string",
    "category": "string",
    "order_id": "string",
}
PRODUCT_FIELDS: dict[str, AttrType] = {
    "sku": "string",
    "category": "string",
    "price": "number",
    "launched": "date",
}
WHERE_FIELDS: dict[str, AttrType] = {
    **EVENT_FIELDS,
    **{f"product.{name}": kind for name, kind in PRODUCT_FIELDS.items()},
}
NUMERIC_FIELDS = ("amount", "qty", "product.price")
DISTINCT_FIELDS = ("order_id", "sku", "category", "amount", "product.category")
PRODUCT_SKUS = ("sku-1", "sku-2", "SKU-3", "sku_4")
GHOST_SKUS = ("sku-9", "sku-1 ", "Sku-1")  # linked from events, absent from the product table

# Text by field, chosen to trip LIKE wildcards, quoting, case folding (ASCII-only in
# SQLite, so "ZÜRICH" does not contain "ü") and YAML scalar typing. Each field
# has its own small pool, shared by stored values and rule values, so they meet.
TEXT_POOLS: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female", "Male", "MALE", "other", "", "true", "no", "123", "2024-01-01"),
    "city": ("Zürich", "ZÜRICH", "zürich", "50%", "50% off", "5_0", "a_b", "axb", "a%b",
             "O'Brien", 'say "hi"', "back\\slash", "straße", "STRASSE", "İstanbul", "istanbul",
             "東京", " spaced ", "x", ""),
    "id": ("p1", "P1", "p0", "user_2", "a%b3", "Zü4", "p"),
    "category": ("Shoes", "shoes", "SHOES", "Boots", "Sho", "50%", "50% off"),
    "order_id": ("o1", "o2", "o3", "O1", "o_1"),
    "sku": PRODUCT_SKUS + GHOST_SKUS,
}
TEXT_POOLS["home_city"] = ("Zürich", "zürich", "x", "", "50%", "a_b", "O'Brien", "male")
TEXT_POOLS["product.category"] = TEXT_POOLS["category"]
TEXT_POOLS["product.sku"] = TEXT_POOLS["sku"]
LIKE_FRAGMENTS = ("", "%", "_", "a", "A", "ü", "Ü", "zür", "ZÜR", "ICH", "İ", "i", "ist", "IST",
                  "0%", "_b", "'", '"', " ", "\\", "x", "o", "O", "sho", "SKU", "-1", "_1")
STRINGS = tuple(sorted({text for pool in TEXT_POOLS.values() for text in pool}))
LIKE_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})


# ---------------------------------------------------------------------- as-of and dates


@st.composite
def as_of_instants(draw: st.DrawFn) -> dt.datetime:
    """A: leap days, month ends and year ends, at the day's start, end and in between."""
    day = draw(st.sampled_from([
        dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2023, 3, 1), dt.date(2024, 12, 31),
        dt.date(2025, 1, 31), dt.date(2023, 2, 28), dt.date(2024, 5, 15),
    ]))
    moment = draw(st.sampled_from([
        dt.time(23, 59, 59), dt.time(23, 59, 59, 999999), dt.time(0, 0), dt.time(12, 30, 15),
        dt.time(12, 30, 15, 500000),
    ]))
    return dt.datetime.combine(day, moment, tzinfo=UTC)


EDGE_AMOUNTS = (0, 1, 2, 12)  # the amounts of most periods and relative dates in rules


@functools.lru_cache(maxsize=64)
def edge_dates(today: dt.date) -> list[dt.date]:
    """Every date a window or a relative date can start or end on, and its neighbours."""
    found: set[dt.date] = set()
    for unit in UNITS:
        for amount in EDGE_AMOUNTS:
            for sign in (-1, 1):
                base = shift(today, sign * amount, unit)
                found.update((base - DAY, base, base + DAY))
    found.update({dt.date(2024, 2, 29), dt.date(2023, 2, 28), dt.date(2024, 3, 1),
                  dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(2000, 2, 29)})
    return sorted(found)


@functools.lru_cache(maxsize=256)
def dates(today: dt.date) -> st.SearchStrategy[dt.date]:
    return st.one_of(
        st.sampled_from(edge_dates(today)),
        st.dates(min_value=today - 800 * DAY, max_value=today + 800 * DAY),
    )


TIMES = (dt.time(0, 0), dt.time(0, 0, 0, 1), dt.time(12, 0), dt.time(23, 59, 59),
         dt.time(23, 59, 59, 999999))


@functools.lru_cache(maxsize=256)
def datetimes(as_of: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    """Instants at the edges of days near D, and A itself with its neighbours."""
    today = as_of_date(as_of)
    return st.one_of(
        st.builds(lambda d, t: dt.datetime.combine(d, t, tzinfo=UTC), dates(today),
                  st.sampled_from((*TIMES, as_of.timetz().replace(tzinfo=None)))),
        st.sampled_from([as_of, as_of - dt.timedelta(seconds=1), as_of + dt.timedelta(seconds=1),
                         as_of.replace(microsecond=0)]),
    )


# ---------------------------------------------------------------------- scalar values

# Stored values and rule values come from the same small pools, so that equality
# and the edges of ranges are hit often. Multiples of 1/4 add up exactly in
# floating point in any order, so sums and averages compare exactly.
STORED_INTEGERS = (0, 1, 2, 3, -1, -3, 5, 7, 10, 12, 42, 100, 2**40)
STORED_NUMBERS = (0.0, 1.0, 2.5, -0.0, 0.1, 1e10, 42.0, *(i / 4 for i in range(-8, 41)))
STORED_AMOUNTS = tuple(i / 4 for i in range(-4, 81))
INTEGERS = st.one_of(st.sampled_from(STORED_INTEGERS), st.integers(-3, 12))
NUMBERS = st.one_of(st.sampled_from(STORED_NUMBERS), INTEGERS)
AMOUNTS = st.one_of(st.sampled_from(STORED_AMOUNTS), st.integers(-4, 400).map(lambda i: i / 4))


# ---------------------------------------------------------------------- stores
# Store contents come from one drawn byte string read through pools of values:
# one cheap draw instead of hundreds, and shrinking the bytes toward zero
# shrinks the store toward missing values and each pool's first entry.


class Picker:
    """Choices from pools, read off a byte string (past its end every choice is the first)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def index(self, size: int) -> int:
        if size <= 1:
            return 0
        width = 1 if size <= 256 else 2
        chunk = self.data[self.pos:self.pos + width].ljust(width, b"\0")
        self.pos += width
        return int.from_bytes(chunk, "big") % size

    def pick(self, pool: Sequence[Any]) -> Any:
        return pool[self.index(len(pool))]

    def maybe(self, pool: Sequence[Any], missing_one_in: int = 4) -> Any:
        """None one time in ``missing_one_in`` (and when the bytes are zero), else a pick."""
        if self.index(missing_one_in) == 0:
            return None
        return self.pick(pool)


@dataclass(frozen=True)
class Pools:
    """The values a store draws from, built around the as-of instant."""

    as_of: dt.datetime
    dates: list[dt.date]
    births: list[dt.date]
    strings: list[str]  # extra random text, mixed into the city pool

    def value(self, picker: Picker, name: str, kind: AttrType) -> Any:
        if kind == "string":
            pool = TEXT_POOLS[name]
            return picker.pick([*pool, *self.strings] if name == "city" else pool)
        if kind == "integer":
            return picker.pick(STORED_INTEGERS)
        if kind == "number":
            return picker.pick(STORED_NUMBERS)
        if kind == "boolean":
            return picker.pick((False, True))
        if kind == "date":
            return picker.pick(self.dates)
        return self.datetime(picker)

    def datetime(self, picker: Picker) -> dt.datetime:
        if picker.index(5) == 0:
            return picker.pick([self.as_of, self.as_of - SECOND, self.as_of + SECOND,
                                self.as_of.replace(microsecond=0)])
        moment = picker.pick((*TIMES, self.as_of.timetz().replace(tzinfo=None)))
        return dt.datetime.combine(picker.pick(self.dates), moment, tzinfo=UTC)

    def event_instant(self, picker: Picker) -> dt.datetime:
        """A, A+-1s, A+-1us, the edges of D (to the microsecond), window edges, anywhere near;
        or an anchor plus an offset, so that two events lie exactly a gap apart (or a second
        or a microsecond more or less), or at the same instant."""
        today = as_of_date(self.as_of)
        if picker.index(3) == 0:
            anchor = picker.pick([self.as_of.replace(microsecond=0) - dt.timedelta(days=2),
                                  self.as_of - dt.timedelta(hours=3),
                                  dt.datetime.combine(today, dt.time(), tzinfo=UTC)
                                  - dt.timedelta(days=1),
                                  dt.datetime.combine(today - 40 * DAY, dt.time(12, 0, 0, 250_000),
                                                      tzinfo=UTC)])
            return anchor + picker.pick(GAP_OFFSETS) + picker.pick(NUDGES)
        if picker.index(3) == 0:
            floor = self.as_of.replace(microsecond=0)
            return picker.pick([floor, floor - SECOND, floor + SECOND,
                                self.as_of, self.as_of - MICROSECOND, self.as_of + MICROSECOND,
                                floor + dt.timedelta(microseconds=700_000),
                                dt.datetime.combine(today, dt.time(), tzinfo=UTC),
                                dt.datetime.combine(today, dt.time(23, 59, 59), tzinfo=UTC),
                                dt.datetime.combine(today, dt.time(23, 59, 59, 999_999),
                                                    tzinfo=UTC),
                                dt.datetime.combine(today + DAY, dt.time(), tzinfo=UTC)])
        moment = picker.pick((dt.time(0, 0), dt.time(23, 59, 59), dt.time(12, 0),
                              dt.time(23, 59, 59, 500_000)))
        return dt.datetime.combine(picker.pick(self.dates), moment, tzinfo=UTC)


SECOND = dt.timedelta(seconds=1)
MICROSECOND = dt.timedelta(microseconds=1)
# Offsets from an anchor instant whose differences are the gaps rules draw (GAP_AMOUNTS of
# every GAP_UNITS), and nudges that land just off a gap's bound.
GAP_OFFSETS = tuple(dt.timedelta(seconds=s) for s in (
    0, 60, 120, 3600, 7200, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400))
NUDGES = (dt.timedelta(0), dt.timedelta(0), dt.timedelta(0), SECOND, -SECOND, MICROSECOND,
          -MICROSECOND)


def birth_pool(today: dt.date) -> list[dt.date]:
    """Birthdays on, just before and just after an anniversary of D, and Feb 29s."""
    found = {shift(today, -years, "years") + offset * DAY
             for years in range(0, 91) for offset in (-1, 0, 1)}
    found.update({dt.date(2000, 2, 29), dt.date(1996, 2, 29), dt.date(2004, 2, 29),
                  dt.date(1980, 3, 1), dt.date(1980, 2, 28), today + 30 * DAY})
    return sorted(found)


@dataclass(frozen=True)
class Scene:
    """An as-of instant and a store spec built around it."""

    as_of: dt.datetime
    spec: StoreSpec


def _profiles(picker: Picker, pools: Pools, count: int) -> list[dict[str, Any]]:
    rows = []
    for index in range(count):
        row: dict[str, Any] = {"id": f"{picker.pick(ID_PREFIXES)}{index}"}
        for name, kind in PROFILE_ATTRIBUTES.items():
            pool = pools.births if name == "birth_date" else None
            if picker.index(4) == 0:
                row[name] = None
            else:
                row[name] = picker.pick(pool) if pool else pools.value(picker, name, kind)
        rows.append(row)
    return rows


def _events(picker: Picker, pools: Pools, profile_ids: list[str],
            count: int) -> list[dict[str, Any]]:
    if not profile_ids:
        return []
    return [{
        "profile_id": picker.pick(profile_ids),
        "type": picker.pick(EVENT_TYPES),
        "timestamp": pools.event_instant(picker),
        "amount": picker.maybe(STORED_AMOUNTS),
        "qty": picker.maybe((0, 1, 2, 3, 4)),
        "sku": picker.maybe(TEXT_POOLS["sku"]),
        "category": picker.maybe(TEXT_POOLS["category"]),
        "order_id": picker.maybe(TEXT_POOLS["order_id"]),
    } for _ in range(count)]


def _products(picker: Picker, pools: Pools) -> list[dict[str, Any]]:
    return [{"sku": sku,
             "category": picker.maybe(TEXT_POOLS["category"]),
             "price": picker.maybe(STORED_AMOUNTS),
             "launched": picker.maybe(pools.dates)}
            for sku in PRODUCT_SKUS if picker.index(5) != 0]


ID_PREFIXES = ("p", "P", "user_", "a%b", "Zü")
BYTES_PER_PROFILE = 40
BYTES_PER_EVENT = 24


@st.composite
def scenes(draw: st.DrawFn, max_profiles: int = 25, max_events: int = 80) -> Scene:
    """A tiny store of every attribute type, three event types and a product entity."""
    as_of = draw(as_of_instants())
    today = as_of_date(as_of)
    extra_dates = draw(st.lists(st.dates(min_value=today - 800 * DAY,
                                         max_value=today + 800 * DAY), max_size=3))
    extra_strings = draw(st.lists(st.text(alphabet="aAbB%_ü '", max_size=4), max_size=2))
    pools = Pools(as_of, [*edge_dates(today), *extra_dates], birth_pool(today), extra_strings)
    n_profiles = draw(st.integers(0, max_profiles))
    n_events = draw(st.integers(0, max_events)) if n_profiles else 0
    size = 64 + n_profiles * BYTES_PER_PROFILE + n_events * BYTES_PER_EVENT
    picker = Picker(draw(st.binary(min_size=size, max_size=size)))
    profiles = _profiles(picker, pools, n_profiles)
    events = _events(picker, pools, [p["id"] for p in profiles], n_events)
    products = _products(picker, pools)
    spec = StoreSpec(
        attributes=dict(PROFILE_ATTRIBUTES),
        profiles=profiles,
        event_fields=dict(EVENT_FIELDS),
        events=events,
        entities={"product": EntitySpec("sku", "string", "sku", dict(PRODUCT_FIELDS), products)},
        derived_age_from="birth_date",
        event_types=EVENT_TYPES,
    )
    return Scene(as_of, spec)


# ---------------------------------------------------------------------- rule values


AMOUNTS_OF_UNITS = st.one_of(st.sampled_from(EDGE_AMOUNTS), st.integers(0, 13))


@functools.lru_cache(maxsize=256)
def relative_dates() -> st.SearchStrategy[RelativeDate]:
    return st.one_of(
        st.just(RelativeDate("today")),
        st.builds(RelativeDate, st.sampled_from(["ago", "from_now"]), AMOUNTS_OF_UNITS,
                  st.sampled_from(UNITS)),
    )


@functools.lru_cache(maxsize=256)
def periods() -> st.SearchStrategy[Period]:
    return st.builds(Period, AMOUNTS_OF_UNITS, st.sampled_from(UNITS))


@functools.lru_cache(maxsize=256)
def rule_scalar(name: str, kind: AttrType, op: str, as_of: dt.datetime) -> st.SearchStrategy[Any]:
    """One typed value for ``op`` on the ``kind`` attribute or field ``name``."""
    today = as_of_date(as_of)
    if kind == "string":
        pool = st.sampled_from(TEXT_POOLS[name])
        return st.one_of(pool, st.sampled_from(LIKE_FRAGMENTS)) if op in LIKE_OPS else pool
    if kind == "integer":
        return INTEGERS
    if kind == "number":
        return NUMBERS
    if kind == "date":
        return st.one_of(dates(today), relative_dates())
    return st.one_of(dates(today), relative_dates(), datetimes(as_of))


@functools.lru_cache(maxsize=1024)
def ordered_pair(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    """[low, high] with low <= high whenever both can be compared before the as-of date."""
    return _ordered_pair(values)


def _order_key(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=UTC)
    return float(value)


@st.composite
def _ordered_pair(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    """[low, high] with low <= high whenever both can be compared before the as-of date."""
    low, high = draw(values), draw(values)
    if isinstance(low, RelativeDate) or isinstance(high, RelativeDate):
        return (low, high)
    if _order_key(low) > _order_key(high):
        low, high = high, low
    return (low, high)


@st.composite
def _condition_values(draw: st.DrawFn, name: str, kind: AttrType, op: str, as_of: dt.datetime,
                      mixed_bounds: bool) -> Any:
    if op in NO_VALUE_OPS:
        return None
    if op in PERIOD_OPS:
        return draw(periods())
    scalar = rule_scalar(name, kind, op, as_of)
    if op in LIST_OPS:
        return tuple(draw(st.lists(scalar, min_size=1, max_size=3)))
    if op in RANGE_OPS:
        if kind == "datetime" and not mixed_bounds:
            scalar = draw(st.sampled_from(unmixed_bounds(as_of)))
        return draw(ordered_pair(scalar))
    return draw(scalar)


@functools.lru_cache(maxsize=256)
def unmixed_bounds(as_of: dt.datetime) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """Bounds that are both dates or both datetimes (relative dates go with either)."""
    today = as_of_date(as_of)
    return (st.one_of(dates(today), relative_dates()),
            st.one_of(datetimes(as_of), relative_dates()))


@functools.lru_cache(maxsize=2048)
def condition_values(name: str, kind: AttrType, op: str, as_of: dt.datetime,
                     mixed_bounds: bool = True) -> st.SearchStrategy[Any]:
    """A value of the right shape for ``op``: none, a list, a pair, a period or a scalar."""
    return _condition_values(name, kind, op, as_of, mixed_bounds)


# Which attributes or fields conditions of each scope may name.
SCOPES: dict[str, dict[str, AttrType]] = {
    "profile": RULE_ATTRIBUTES,
    "where": WHERE_FIELDS,
    "text": {n: k for n, k in RULE_ATTRIBUTES.items() if k == "string"},
    "dates": {n: k for n, k in RULE_ATTRIBUTES.items() if k in ("date", "datetime", "integer")
              and n not in ("score",)},
}


@st.composite
def _attribute_conditions(draw: st.DrawFn, scope: str, as_of: dt.datetime,
                          mixed_bounds: bool) -> AttributeCondition:
    fields = SCOPES[scope]
    kind = draw(st.sampled_from(sorted({k for k in fields.values()})))
    name = draw(st.sampled_from(sorted(n for n, k in fields.items() if k == kind)))
    op = draw(st.sampled_from(OPS_BY_TYPE[kind]))
    return AttributeCondition(name, op, draw(condition_values(name, kind, op, as_of, mixed_bounds)))


@functools.lru_cache(maxsize=256)
def attribute_conditions(scope: str, as_of: dt.datetime,
                         mixed_bounds: bool = True) -> st.SearchStrategy[AttributeCondition]:
    """A condition on an attribute (or event field) of ``SCOPES[scope]``: type, then name, op."""
    return _attribute_conditions(scope, as_of, mixed_bounds)


@st.composite
def _windows(draw: st.DrawFn, as_of: dt.datetime) -> Window:
    if draw(st.booleans()):
        return Window(last=draw(periods()))
    today = as_of_date(as_of)
    bound = st.one_of(dates(today), datetimes(as_of), relative_dates())
    return Window(between=draw(ordered_pair(bound)))


@functools.lru_cache(maxsize=256)
def windows(as_of: dt.datetime) -> st.SearchStrategy[Window]:
    return _windows(as_of)


@st.composite
def count_rules(draw: st.DrawFn) -> CountRule:
    op = draw(st.sampled_from(COUNT_OPS))
    if op == "between":
        low = draw(st.integers(0, 3))
        value: Any = (low, low + draw(st.integers(0, 3)))
    elif op == "at_most":
        value = draw(st.sampled_from([0, 1, 2]))
    else:
        value = draw(st.integers(0, 4))
    distinct = draw(st.one_of(st.none(), st.sampled_from(DISTINCT_FIELDS)))
    return CountRule(op, value, distinct)


@st.composite
def aggregate_rules(draw: st.DrawFn) -> AggregateRule:
    fn = draw(st.sampled_from(AGGREGATE_FNS))
    field = draw(st.sampled_from(NUMERIC_FIELDS))
    op = draw(st.sampled_from(AGGREGATE_OPS))
    value = draw(ordered_pair(AGGREGATE_VALUES)) if op == "between" else draw(AGGREGATE_VALUES)
    return AggregateRule(fn, field, op, value)


AGGREGATE_VALUES = st.one_of(AMOUNTS, st.integers(-1, 5))
COUNT_RULES = st.one_of(st.none(), count_rules())
AGGREGATE_RULES = st.one_of(st.none(), st.none(), aggregate_rules())
TYPE_LISTS = st.one_of(
    st.none(),
    st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=2, unique=True).map(tuple),
)


@st.composite
def _event_conditions(draw: st.DrawFn, as_of: dt.datetime, mixed_bounds: bool,
                      with_fields: bool = False) -> EventCondition:
    types = draw(TYPE_LISTS)
    where_items = attribute_conditions("where", as_of, mixed_bounds)
    if with_fields:
        where_items = st.one_of(where_items, field_comparisons("where"))
    where = tuple(draw(st.lists(where_items, max_size=2)))
    within = draw(st.one_of(st.none(), windows(as_of)))
    return EventCondition(types, where, within, draw(COUNT_RULES), draw(AGGREGATE_RULES))


@functools.lru_cache(maxsize=256)
def event_conditions(as_of: dt.datetime, mixed_bounds: bool = True,
                     with_fields: bool = False) -> st.SearchStrategy[EventCondition]:
    """An event condition with every option: types or "*", where (with ``with_fields``, also
    comparisons with other fields), within, count, aggregate."""
    return _event_conditions(as_of, mixed_bounds, with_fields)


# ---------------------------------------------------------------------- field comparisons

# What the other side of a field comparison may name, by scope: profile attributes on a
# profile; in an event's where, event and entity fields and ``profile.NAME``.
OTHER_FIELDS: dict[str, dict[str, AttrType]] = {
    "profile": RULE_ATTRIBUTES,
    "where": {**WHERE_FIELDS, **{f"profile.{n}": k for n, k in RULE_ATTRIBUTES.items()}},
}


@st.composite
def _field_comparisons(draw: st.DrawFn, scope: str) -> AttributeCondition:
    """``attribute op field`` for a compatible pair of types (every pair the scope has)."""
    lefts = SCOPES[scope]
    others = OTHER_FIELDS[scope]
    pairs = sorted({(lk, rk) for lk in lefts.values() for rk in others.values()
                    if comparable_types(lk, rk)})
    left_kind, right_kind = draw(st.sampled_from(pairs))
    left = draw(st.sampled_from(sorted(n for n, k in lefts.items() if k == left_kind)))
    right = draw(st.sampled_from(sorted(n for n, k in others.items() if k == right_kind)))
    op = draw(st.sampled_from(FIELD_OPS_BY_TYPE[left_kind]))
    return AttributeCondition(left, op, field=right)


@functools.lru_cache(maxsize=8)
def field_comparisons(scope: str) -> st.SearchStrategy[AttributeCondition]:
    return _field_comparisons(scope)


# ---------------------------------------------------------------------- sequences

GAP_AMOUNTS = (0, 1, 2, 12)


@functools.lru_cache(maxsize=1)
def gaps() -> st.SearchStrategy[Gap]:
    """min, max or both (min <= max), in every unit."""
    lengths = st.builds(Duration, st.sampled_from(GAP_AMOUNTS), st.sampled_from(GAP_UNITS))

    def ordered(pair: tuple[Duration, Duration]) -> Gap:
        low, high = sorted(pair, key=lambda d: d.seconds)
        return Gap(low, high)

    return st.one_of(st.builds(Gap, max=lengths), st.builds(Gap, min=lengths),
                     st.tuples(lengths, lengths).map(ordered))


@st.composite
def _sequence_conditions(draw: st.DrawFn, as_of: dt.datetime,
                         mixed_bounds: bool) -> SequenceCondition:
    """2-4 steps, each with types or "*", a where on fields, entities or the profile (values
    or other fields), gaps, an absent last step, a window."""
    where = st.one_of(attribute_conditions("where", as_of, mixed_bounds), field_comparisons("where"))
    count = draw(st.integers(2, 4))
    steps = []
    for index in range(count):
        types = draw(st.one_of(st.sampled_from(EVENT_TYPES).map(lambda t: (t,)), TYPE_LISTS))
        conditions = tuple(draw(st.lists(where, max_size=1 if index else 2)))
        gap = draw(st.one_of(st.none(), gaps())) if index else None
        absent = index == count - 1 and draw(st.booleans())
        steps.append(SequenceStep(types, conditions, gap, absent))
    within = draw(st.one_of(st.none(), st.none(), windows(as_of)))
    return SequenceCondition(tuple(steps), within)


@functools.lru_cache(maxsize=256)
def sequence_conditions(as_of: dt.datetime,
                        mixed_bounds: bool = True) -> st.SearchStrategy[SequenceCondition]:
    return _sequence_conditions(as_of, mixed_bounds)


@functools.lru_cache(maxsize=256)
def leaf_nodes(as_of: dt.datetime, mixed_bounds: bool = True,
               scope: str = "profile") -> st.SearchStrategy[Node]:
    """One condition: mostly on a profile attribute, else on events."""
    attribute = attribute_conditions(scope, as_of, mixed_bounds)
    return st.one_of(attribute, attribute, event_conditions(as_of, mixed_bounds))


@functools.lru_cache(maxsize=256)
def rule_nodes(as_of: dt.datetime, ref_ids: tuple[str, ...] = (), depth: int = 4,
               mixed_bounds: bool = True) -> st.SearchStrategy[Node]:
    """Rule trees up to ``depth`` levels of all/any/not over every kind of leaf."""
    leaves: list[st.SearchStrategy[Node]] = [
        attribute_conditions("profile", as_of, mixed_bounds),
        event_conditions(as_of, mixed_bounds),
    ]
    if ref_ids:
        leaves.append(st.sampled_from(ref_ids).map(SegmentRef))
    leaf = st.one_of(*leaves)
    if depth <= 0:
        return leaf
    inner = rule_nodes(as_of, ref_ids, depth - 1, mixed_bounds)
    children = st.lists(inner, max_size=3).map(tuple)
    return st.one_of(
        leaf, leaf,
        st.builds(AllOf, children),
        st.builds(AnyOf, children),
        st.builds(NotOf, inner),
    )


@st.composite
def libraries(draw: st.DrawFn, as_of: dt.datetime, max_segments: int = 2,
              mixed_bounds: bool = True) -> dict[str, Segment]:
    """Saved segments to refer to; each may refer only to earlier ones, so no cycles."""
    found: dict[str, Segment] = {}
    for index in range(draw(st.integers(0, max_segments))):
        seg_id = f"lib-{index}"
        rule = draw(rule_nodes(as_of, tuple(found), depth=2, mixed_bounds=mixed_bounds))
        found[seg_id] = Segment(seg_id, f"Library {index}", rule)
    return found


def closure(rule: Node, library: dict[str, Segment]) -> dict[str, Segment]:
    """Every segment ``rule`` refers to, directly or through others."""
    found: dict[str, Segment] = {}
    todo = list(referenced_segments(rule))
    while todo:
        seg_id = todo.pop()
        if seg_id not in found:
            found[seg_id] = library[seg_id]
            todo.extend(referenced_segments(library[seg_id].rule))
    return found
