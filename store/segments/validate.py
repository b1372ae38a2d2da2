"""Validation of a segment against a store's schema, and typing of its values.

``validate_segment`` checks every name against the catalog (with the nearest
known names on a miss), every operator against its attribute's type, every
value's type and shape, and resolves segment references (no cycles). It
returns a ``ResolvedSegment``: the same tree with typed values (dates as
``datetime.date``, datetimes as aware ``datetime.datetime``) plus every
segment it refers to, ready for the compiler and the evaluator.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from store.schema.catalog import Catalog, did_you_mean
from store.schema.values import AttrType, parse_date, parse_datetime
from store.segments.errors import SegmentError
from store.segments.model import (
    AGGREGATE_FNS,
    AGGREGATE_OPS,
    COUNT_OPS,
    FIELD_OPS_BY_TYPE,
    LIST_OPS,
    MAX_STEPS,
    MIN_STEPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PERIOD_OPS,
    PROFILE_PREFIX,
    RANGE_OPS,
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
    SequenceCondition,
    SequenceStep,
    Window,
    child_path,
    comparable_types,
)
from store.segments.timeutil import as_of_date, resolve

# Looks a referenced segment up by id, given the file that refers to it: returns
# the parsed segment with its YAML line map, or None when there is no such segment.
SegmentLookup = Callable[[str, str | None], tuple[Segment, dict[str, int]] | None]

MAX_LIST_VALUES = 100_000
MAX_GAP_SECONDS = 520_000 * 7 * 86400  # about 10,000 years: longer is no gap at all
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Text a YAML reader would have read as a number, had it not been quoted.
NUMBER_TEXT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


def short(value: Any) -> str:
    """A value for a message, spelled as in YAML (``true``, ``null``, ``{ago: 5, unit: days}``;
    text in quotes), cut to a readable length (one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) and abs(value) >= 10**60:
        return f"a whole number of about {int(value.bit_length() * 0.30103)} digits"
    if isinstance(value, RelativeDate):
        text = ("today" if value.direction == "today"
                else f"{{{value.direction}: {value.amount}, unit: {value.unit}}}")
    elif isinstance(value, Period):
        text = f"{{amount: {value.amount}, unit: {value.unit}}}"
    elif isinstance(value, int | float):
        text = str(getattr(value, "text", value))  # as written (IntText, FloatText)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, tuple):
        text = "[" + ", ".join(short(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def a_or_an(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


@dataclass(frozen=True)
class BoundsCheck:
    """A ``between`` whose bounds include a relative date: whether low <= high depends on
    the as-of date, so the check waits for it (``check_at``). It keeps where the range was
    written, so the error names the file, line and node path like any other."""

    low: Any
    high: Any
    source: str | None
    line: int | None
    path: str
    order: str  # how the message says which bound comes first

    def check_at(self, today: dt.date) -> None:
        """Raise ``SegmentError`` when the bounds resolve in the wrong order at ``today``."""
        try:
            bounds: Any = resolve((self.low, self.high), today)
        except (ValueError, OverflowError):
            raise SegmentError(f"a relative date falls outside the calendar (as of"
                               f" {today.isoformat()})", source=self.source, line=self.line,
                               path=self.path) from None
        low, high = bounds
        if bounds_ordered(low, high):
            return
        raise SegmentError(
            f"'between' needs {self.order}; as of {today.isoformat()},"
            f" [{short(self.low)}, {short(self.high)}] is [{short(low)}, {short(high)}]",
            source=self.source, line=self.line, path=self.path)


@dataclass(frozen=True)
class CalendarCheck:
    """A relative date: whether it lands inside the calendar (years 1-9999) depends on the
    as-of date (``check_at``); it keeps where it was written, so that the error names the file,
    line and node path whatever the as-of date."""

    value: Any
    source: str | None
    line: int | None
    path: str

    def check_at(self, today: dt.date) -> None:
        try:
            resolve(self.value, today)
        except (ValueError, OverflowError):
            raise SegmentError(f"the relative date falls outside the calendar (as of"
                               f" {today.isoformat()})", source=self.source, line=self.line,
                               path=self.path) from None


@dataclass(frozen=True)
class ResolvedSegment:
    """A validated segment and, by id, every segment it refers to (directly or not).

    ``bounds`` are the range checks that wait for the as-of date (``check_bounds``).
    """

    segment: Segment
    refs: dict[str, Segment]
    bounds: tuple[BoundsCheck | CalendarCheck, ...] = ()

    def check_bounds(self, as_of: dt.datetime) -> None:
        """Refuse (``SegmentError``) a ``between`` of the segment or of one it refers to
        whose relative bounds resolve in the wrong order at ``as_of``, and a relative date
        that falls outside the calendar then; literal bounds were checked by the validation
        already."""
        today = as_of_date(as_of)
        for check in self.bounds:
            check.check_at(today)


@dataclass(frozen=True)
class FieldInfo:
    """What the validator needs to know of an attribute or an event/entity field."""

    name: str
    type: AttrType
    role: str = "attribute"  # "attribute", "event field", "entity field", "bound"

    @property
    def described(self) -> str:
        """``'age' is an integer attribute``, ``'amount' is a number event field``."""
        return f"{self.name!r} is {a_or_an(self.type)} {self.type} {self.role}"


class _Validator:
    def __init__(self, catalog: Catalog, lookup: SegmentLookup | None) -> None:
        self.catalog = catalog
        self.lookup = lookup
        self.refs: dict[str, Segment] = {}
        self.source: str | None = None
        self.lines: dict[str, int] = {}
        self.bounds: list[BoundsCheck | CalendarCheck] = []

    def line_of(self, path: str) -> int | None:
        """The YAML line of ``path``, else of the nearest node that contains it."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    def fail(self, message: str, path: str) -> SegmentError:
        return SegmentError(message, source=self.source, line=self.line_of(path), path=path)

    def defer_bounds(self, low: Any, high: Any, path: str, order: str) -> None:
        """Remember a range with a relative bound, to check at the as-of date."""
        if isinstance(low, RelativeDate) or isinstance(high, RelativeDate):
            self.bounds.append(BoundsCheck(low, high, self.source, self.line_of(path), path, order))

    # -- segments and references -------------------------------------------------
    def segment(self, segment: Segment, lines: dict[str, int], stack: tuple[str, ...]) -> Segment:
        saved = (self.source, self.lines)
        self.source, self.lines = segment.source, lines
        try:
            rule = self.node(segment.rule, "rule", (*stack, segment.id))
        finally:
            self.source, self.lines = saved
        return replace(segment, rule=rule)

    def reference(self, node: SegmentRef, path: str, stack: tuple[str, ...]) -> SegmentRef:
        ref_id = node.segment
        if ref_id in stack:
            cycle = " -> ".join((*stack[stack.index(ref_id):], ref_id))
            raise self.fail(f"segment references form a cycle: {cycle}", f"{path}.segment")
        if ref_id in self.refs:
            return node
        found = self.lookup(ref_id, self.source) if self.lookup else None
        if found is None:
            raise self.fail(
                f"unknown segment {ref_id!r}: not saved in the store and no {ref_id}.yaml beside"
                " the file", f"{path}.segment")
        referenced, lines = found
        self.refs[ref_id] = self.segment(replace(referenced, id=ref_id), lines, stack)
        return node

    # -- nodes -----------------------------------------------------------------------
    def node(self, node: Node, path: str, stack: tuple[str, ...]) -> Node:
        if isinstance(node, AllOf | AnyOf):
            children = tuple(self.node(child, child_path(path, node, i), stack)
                             for i, child in enumerate(node.children))
            return type(node)(children)
        if isinstance(node, NotOf):
            return NotOf(self.node(node.child, f"{path}.not", stack))
        if isinstance(node, SegmentRef):
            return self.reference(node, path, stack)
        if isinstance(node, AttributeCondition):
            return self.condition(node, self.profile_attribute(node.attribute, path), path,
                                  self.profile_field)
        if isinstance(node, SequenceCondition):
            return self.sequence(node, f"{path}.sequence")
        return self.event(node, path)

    def profile_attribute(self, name: str, path: str, what: str = "attribute") -> FieldInfo:
        attribute = self.catalog.attributes.get(name)
        if attribute is None:
            raise self.fail(f"unknown attribute {name!r}." +
                            did_you_mean(name, set(self.catalog.attributes)),
                            f"{path}.{what}")
        return FieldInfo(attribute.name, attribute.type)

    def profile_field(self, name: str, path: str) -> FieldInfo:
        """The other side of a field comparison on a profile: another profile attribute."""
        return self.profile_attribute(name, path, "field")

    def where_field(self, name: str, path: str) -> FieldInfo:
        """The other side of a field comparison in an event's ``where``: an event field,
        ``ENTITY.FIELD``, or ``profile.NAME`` (a profile attribute)."""
        if name.startswith(PROFILE_PREFIX):
            info = self.profile_attribute(name.removeprefix(PROFILE_PREFIX), path, "field")
            return FieldInfo(name, info.type, "profile attribute")
        return self.event_field(name, path, "field")

    def event_field(self, name: str, path: str, what: str = "attribute") -> FieldInfo:
        """An event field, or ``ENTITY.FIELD`` of an entity events link to."""
        if "." in name:
            entity_name, _, field_name = name.partition(".")
            entity = self.catalog.entities.get(entity_name)
            if entity is None:
                raise self.fail(f"unknown entity {entity_name!r} in {name!r}." +
                                self.entity_hint(entity_name), f"{path}.{what}")
            entity_field = entity.fields.get(field_name)
            if entity_field is None:
                raise self.fail(f"unknown field {name!r}: entity {entity_name!r} has no field"
                                f" {field_name!r}." + did_you_mean(field_name, set(entity.fields)),
                                f"{path}.{what}")
            return FieldInfo(name, entity_field.type, "entity field")
        event_field = self.catalog.event_fields.get(name)
        if event_field is None:
            known = set(self.catalog.event_fields) | {
                f"{e}.{f}" for e, ent in self.catalog.entities.items() for f in ent.fields}
            raise self.fail(f"unknown event field {name!r}." + did_you_mean(name, known),
                            f"{path}.{what}")
        return FieldInfo(name, event_field.type, "event field")

    def entity_hint(self, name: str) -> str:
        """The nearest entity names, else the known entities (an event field of that name
        is mentioned: it is written without the prefix)."""
        entities = set(self.catalog.entities)
        close = did_you_mean(name, entities)
        if close.startswith(" Did you mean"):
            return close
        if not entities:
            hint = " The store has no entities (import one with `import entity`)."
        else:
            hint = " Known entities: " + ", ".join(sorted(entities)) + "."
        if name in self.catalog.event_fields:
            hint += f" {name!r} is an event field, not an entity: write attribute: {name}."
        return hint

    # -- attribute conditions ---------------------------------------------------------
    def condition(self, node: AttributeCondition, info: FieldInfo, path: str,
                  other: Callable[[str, str], FieldInfo]) -> AttributeCondition:
        if node.field is not None:
            return self.field_comparison(node, info, path, other)
        ops = OPS_BY_TYPE[info.type]
        if node.op not in ops:
            raise self.fail(f"operator {node.op!r} does not apply to {info.name!r} ({info.type});"
                            f" use one of: {', '.join(ops)}", f"{path}.op")
        value_path = f"{path}.value"
        op, value = node.op, node.value
        if op in NO_VALUE_OPS:
            if value is not None:
                raise self.fail(f"{op!r} takes no value", value_path)
            return AttributeCondition(info.name, op, None)
        if value is None:
            raise self.fail(f"{op!r} needs a value", value_path)
        if op in LIST_OPS:
            if not isinstance(value, tuple) or not value:
                raise self.fail(f"{op!r} takes a non-empty list of values", value_path)
            if len(value) > MAX_LIST_VALUES:
                raise self.fail(f"{op!r} takes at most {MAX_LIST_VALUES:,} values", value_path)
            typed: Any = tuple(self.scalar(v, info, f"{value_path}[{i}]")
                               for i, v in enumerate(value))
        elif op in RANGE_OPS:
            if not isinstance(value, tuple) or len(value) != 2:
                raise self.fail(f"{op!r} takes [low, high]", value_path)
            low = self.scalar(value[0], info, f"{value_path}[0]")
            high = self.scalar(value[1], info, f"{value_path}[1]")
            if not bounds_ordered(low, high):
                raise self.fail(f"{op!r} needs low <= high, got [{short(low)}, {short(high)}]",
                                value_path)
            typed = (low, high)
        elif op in PERIOD_OPS:
            if not isinstance(value, Period):
                raise self.fail(f"{op!r} takes a period {{amount: N, unit: days|weeks|months|"
                                "years}", value_path)
            typed = value
        else:
            if isinstance(value, tuple):
                raise self.fail(f"{op!r} takes one value, not a list", value_path)
            typed = self.scalar(value, info, value_path)
        if op in RANGE_OPS:
            self.defer_bounds(typed[0], typed[1], value_path, "low <= high")
        return AttributeCondition(info.name, op, typed)

    def field_comparison(self, node: AttributeCondition, info: FieldInfo, path: str,
                         other: Callable[[str, str], FieldInfo]) -> AttributeCondition:
        """``attribute op field``: an operator that compares two fields, and types that mix."""
        assert node.field is not None
        ops = FIELD_OPS_BY_TYPE[info.type]
        if node.op not in ops:
            raise self.fail(f"operator {node.op!r} does not compare {info.name!r} ({info.type})"
                            f" with another field; use one of: {', '.join(ops)}", f"{path}.op")
        if node.value is not None:
            raise self.fail("a condition compares with a 'value' or with a 'field', not both",
                            f"{path}.field")
        right = other(node.field, path)
        if not comparable_types(info.type, right.type):
            raise self.fail(f"{info.described} and {right.described}: they cannot be compared"
                            " (integer and number mix, date and datetime mix, other types only"
                            " with their own)", f"{path}.field")
        return AttributeCondition(info.name, node.op, None, right.name)

    def scalar(self, value: Any, info: FieldInfo, path: str) -> Any:
        """One value, checked against and converted to the attribute's type."""
        kind = info.type
        if isinstance(value, Period | tuple):
            raise self.fail(f"expected one {kind} value", path)
        if kind == "string":
            if isinstance(value, RelativeDate):
                return "today"
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, int | float):  # as written: `007` stays "007"
                return str(getattr(value, "text", value))
            if isinstance(value, str):
                if "\x00" in value:  # the import refuses such text too (store/ingest/readers.py)
                    raise self.fail("text cannot hold a NUL character (\\x00)", path)
                return value
        elif kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                return self.in_range(int(value), path)
            self.not_a_number(value, info, path)
            raise self.fail(f"{info.described}; {short(value)} is not a whole number", path)
        elif kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                if value != value or value in (float("inf"), float("-inf")):
                    raise self.fail("expected a finite number", path)
                return self.in_range(int(value), path) if isinstance(value, int) else float(value)
            self.not_a_number(value, info, path)
            raise self.fail(f"{info.described}; {short(value)} is not a number", path)
        elif kind in ("date", "datetime"):
            if isinstance(value, RelativeDate):
                return self.within_calendar(value, path)
            if isinstance(value, str):
                day = parse_date(value)
                if day is not None:
                    return day
                if kind == "datetime":
                    moment = parse_datetime(value)
                    if moment is not None:
                        return moment
            expected = ("a date YYYY-MM-DD" if kind == "date"
                        else "a date YYYY-MM-DD or an ISO 8601 datetime")
            raise self.fail(f"{info.described}; expected {expected}, a relative date"
                            f" ({{ago: N, unit: U}}, {{from_now: N, unit: U}}) or 'today',"
                            f" got {short(value)}", path)
        raise self.fail(f"{info.described}; {short(value)} does not fit", path)

    def within_calendar(self, value: RelativeDate, path: str) -> RelativeDate:
        """A relative date that lands inside the calendar (years 1-9999) today; one that
        cannot is refused here, where the error can name the file and line, rather than
        when a count resolves it at its as-of date."""
        try:
            resolve(value, dt.date.today())
        except (ValueError, OverflowError):
            raise self.fail(f"{value.amount:,} {value.unit} "
                            f"{'ago' if value.direction == 'ago' else 'from now'} falls outside"
                            " the calendar (years 1 to 9999)", path) from None
        self.bounds.append(CalendarCheck(value, self.source, self.line_of(path), path))
        return value

    def in_range(self, value: int, path: str) -> int:
        """A whole number the database can compare with (beyond 64 bits, as a float), else a
        clear error instead of an overflow deep in the query."""
        if not bindable(value):
            raise self.fail(f"{short(value)} is out of range", path)
        return value

    def not_a_number(self, value: Any, info: FieldInfo, path: str) -> None:
        """Text where a number is expected: a whole number with more digits than the reader
        converts (it keeps them as text) is out of range; a number in quotes is text (types
        are strict), and the message says to drop the quotes."""
        if not isinstance(value, str):
            return
        digits = value.lstrip("+-")
        limit = sys.get_int_max_str_digits()
        if digits.isdigit() and limit and len(digits) > limit:
            raise self.fail(f"a whole number of {len(digits)} digits is out of range", path)
        written = value.strip()
        if not NUMBER_TEXT.match(written):
            return
        whole = info.type != "integer" or float(written).is_integer()
        advice = (f"write {written}" if whole else "write a whole number") + " without quotes"
        quoted = json.dumps(value) if len(value) <= 40 else json.dumps(value[:37]) + "..."
        raise self.fail(f"{quoted} is text (in quotes); {info.described}: {advice}", path)

    # -- events ----------------------------------------------------------------------
    def event_types(self, types: tuple[str, ...] | None, path: str) -> None:
        if types is None:
            return
        for index, name in enumerate(types):
            if name not in self.catalog.event_types:
                sub = f"{path}.event" if len(types) == 1 else f"{path}.event[{index}]"
                raise self.fail(f"unknown event type {name!r}." +
                                did_you_mean(name, set(self.catalog.event_types)), sub)

    def where(self, where: tuple[AttributeCondition, ...],
              path: str) -> tuple[AttributeCondition, ...]:
        return tuple(
            self.condition(cond, self.event_field(cond.attribute, f"{path}.where[{i}]"),
                           f"{path}.where[{i}]", self.where_field)
            for i, cond in enumerate(where)
        )

    def event(self, node: EventCondition, path: str) -> EventCondition:
        self.event_types(node.types, path)
        where = self.where(node.where, path)
        within = self.window(node.within, f"{path}.within") if node.within else None
        count = self.count(node.count, f"{path}.count") if node.count else None
        aggregate = self.aggregate(node.aggregate, f"{path}.aggregate") if node.aggregate else None
        return EventCondition(node.types, where, within, count, aggregate)

    # -- sequences -------------------------------------------------------------------
    def sequence(self, node: SequenceCondition, path: str) -> SequenceCondition:
        count = len(node.steps)
        if not MIN_STEPS <= count <= MAX_STEPS:
            raise self.fail(f"a sequence takes {MIN_STEPS} to {MAX_STEPS} steps, got {count}"
                            + ("; for one event use an event condition" if count == 1 else ""),
                            f"{path}.steps")
        steps = tuple(self.step(step, index, count, f"{path}.steps[{index}]")
                      for index, step in enumerate(node.steps))
        within = self.window(node.within, f"{path}.within") if node.within else None
        return SequenceCondition(steps, within)

    def step(self, step: SequenceStep, index: int, count: int, path: str) -> SequenceStep:
        if step.absent and index == 0:
            raise self.fail("the first step cannot be absent: a sequence starts with an event"
                            " that happened", f"{path}.absent")
        if step.absent and index != count - 1:
            raise self.fail("only the last step can be absent (\"and then did not\")",
                            f"{path}.absent")
        if step.gap is not None:
            if index == 0:
                raise self.fail("the first step has no gap: a gap is the time since the previous"
                                " step's event", f"{path}.gap")
            low, high = step.gap.min, step.gap.max
            if low is None and high is None:
                raise self.fail("a gap takes 'min', 'max' or both", f"{path}.gap")
            if low is not None and high is not None and low.seconds > high.seconds:
                raise self.fail(f"a gap needs min <= max, got min {low.amount} {low.unit} and"
                                f" max {high.amount} {high.unit}", f"{path}.gap")
            for length in (low, high):
                if length is not None and length.seconds > MAX_GAP_SECONDS:
                    raise self.fail(f"a gap of {length.amount:,} {length.unit} is longer than"
                                    f" the calendar allows ({MAX_GAP_SECONDS // 604800:,} weeks"
                                    " at most)", f"{path}.gap")
        self.event_types(step.types, path)
        return replace(step, where=self.where(step.where, path))

    def window(self, window: Window, path: str) -> Window:
        if window.last is not None:
            return window
        assert window.between is not None
        info = FieldInfo("within.between", "datetime", "bound")
        low = self.scalar(window.between[0], info, f"{path}.between[0]")
        high = self.scalar(window.between[1], info, f"{path}.between[1]")
        if not bounds_ordered(low, high):
            raise self.fail(f"'between' needs start <= end, got [{short(low)}, {short(high)}]",
                            f"{path}.between")
        self.defer_bounds(low, high, f"{path}.between", "start <= end")
        return Window(between=(low, high))

    def count(self, count: CountRule, path: str) -> CountRule:
        if count.op not in COUNT_OPS:
            raise self.fail(f"count op {count.op!r} is not one of {', '.join(COUNT_OPS)}",
                            f"{path}.op")
        value = count.value
        if count.op == "between":
            if (not isinstance(value, tuple) or len(value) != 2
                    or not all(is_count(v) for v in value)):
                raise self.fail("count 'between' takes [low, high] whole numbers",
                                f"{path}.value")
            if value[0] > value[1]:
                raise self.fail(f"count 'between' needs low <= high, got {list(value)}",
                                f"{path}.value")
        elif not is_count(value):
            raise self.fail(f"count takes a whole number 0 or more, got {short(value)}",
                            f"{path}.value")
        if count.distinct is not None:
            self.event_field(count.distinct, path, "distinct")
        plain = tuple(map(int, value)) if isinstance(value, tuple) else int(value)
        return replace(count, value=plain)

    def aggregate(self, aggregate: AggregateRule, path: str) -> AggregateRule:
        if aggregate.fn not in AGGREGATE_FNS:
            raise self.fail(f"aggregate fn {aggregate.fn!r} is not one of"
                            f" {', '.join(AGGREGATE_FNS)}", f"{path}.fn")
        info = self.event_field(aggregate.attribute, path)
        if info.type not in ("integer", "number"):
            raise self.fail(f"aggregate needs a numeric field; {aggregate.attribute!r} is"
                            f" {info.type}", f"{path}.attribute")
        if aggregate.op not in AGGREGATE_OPS:
            raise self.fail(f"aggregate op {aggregate.op!r} is not one of"
                            f" {', '.join(AGGREGATE_OPS)}", f"{path}.op")
        number = FieldInfo(aggregate.attribute, "number", info.role)
        if aggregate.op == "between":
            value = aggregate.value
            if not isinstance(value, tuple) or len(value) != 2:
                raise self.fail("aggregate 'between' takes [low, high]", f"{path}.value")
            low = self.scalar(value[0], number, f"{path}.value[0]")
            high = self.scalar(value[1], number, f"{path}.value[1]")
            if low > high:
                raise self.fail("aggregate 'between' needs low <= high", f"{path}.value")
            return replace(aggregate, value=(low, high))
        return replace(aggregate, value=self.scalar(aggregate.value, number, f"{path}.value"))


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0 and bindable(value)


def bindable(value: int) -> bool:
    """Whether SQLite can take the number: a 64-bit integer, or else a finite float."""
    if INT64_MIN <= value <= INT64_MAX:
        return True
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def bounds_ordered(low: Any, high: Any) -> bool:
    """Whether ``[low, high]`` is a real range; relative dates wait for the as-of date.

    Dates and datetimes mix: a date as the low bound means the start of that day,
    as the high bound the end of it.
    """
    if isinstance(low, RelativeDate) or isinstance(high, RelativeDate):
        return True
    if isinstance(low, dt.date) and isinstance(high, dt.date):
        return range_start(low) <= range_end(high)
    return bool(low <= high)


def range_start(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def range_end(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time.max, tzinfo=dt.UTC)


def validate_segment(segment: Segment, catalog: Catalog, lines: dict[str, int] | None = None,
                     lookup: SegmentLookup | None = None) -> ResolvedSegment:
    """Check a parsed segment against the schema; raise ``SegmentError`` on the first problem."""
    validator = _Validator(catalog, lookup)
    try:
        typed = validator.segment(segment, lines or {}, ())
    except RecursionError:
        raise SegmentError("the rule is nested too deeply to evaluate",
                           source=segment.source) from None
    return ResolvedSegment(typed, validator.refs, tuple(validator.bounds))
