"""Writing a segment as PQL (spec/pql.md, "The subset written").

Every form written is one that ``store.segments.pql_reader`` reads back into a
rule with the same audience (a property test checks it on every engine):
names go out as XDM names where the catalog has them; where this language says
something PQL has no form for (a distinct count, an event window with relative
bounds), the writer refuses with ``PqlWriteError`` rather than write something
that means less.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from store.errors import InputError
from store.schema.catalog import Catalog
from store.schema.values import format_datetime
from store.segments.model import (
    PROFILE_PREFIX,
    AllOf,
    AnyOf,
    AttributeCondition,
    Duration,
    EventCondition,
    Node,
    NotOf,
    Period,
    RelativeDate,
    Segment,
    SegmentRef,
    SequenceCondition,
    Window,
)
from store.segments.pql_names import Names

LINE_WIDTH = 88
COUNT_OPS = {"at_least": ">=", "at_most": "<=", "exactly": "="}
NUMBER_OPS = {"equals": "=", "not_equals": "!=", "greater_than": ">", "greater_or_equal": ">=",
              "less_than": "<", "less_or_equal": "<="}
STRING_METHODS = {"contains": "contains", "not_contains": "doesNotContain",
                  "starts_with": "startsWith", "ends_with": "endsWith"}
AGGREGATE_METHODS = {"sum": "sum", "avg": "average", "min": "min", "max": "max"}


class PqlWriteError(InputError):
    """A segment that says something PQL cannot (the message names what, and where)."""


class _Writer:
    def __init__(self, catalog: Catalog) -> None:
        self.names = Names.of(catalog)
        self.catalog = catalog

    def fail(self, message: str, path: str) -> PqlWriteError:
        return PqlWriteError(f"{path}: {message}")

    # -- the tree: each node is a list of lines (one when it fits) -------------------------
    def node(self, node: Node, path: str) -> str:
        if isinstance(node, AllOf | AnyOf):
            if not node.children:
                return "true" if isinstance(node, AllOf) else "false"
            joiner = "and" if isinstance(node, AllOf) else "or"
            kind = "all" if isinstance(node, AllOf) else "any"
            parts = [self.node(child, f"{path}.{kind}[{i}]") for i, child in enumerate(node.children)]
            return group(parts, joiner)
        if isinstance(node, NotOf):
            child = self.node(node.child, f"{path}.not")
            return "not " + (child if isinstance(node.child, SegmentRef) else parenthesised(child))
        if isinstance(node, SegmentRef):
            return f"inSegment({quote(node.segment)})"
        if isinstance(node, AttributeCondition):
            name = self.names.written_attribute(node.attribute)
            if name is None:
                raise self.no_name("attribute", node.attribute, path)
            return self.condition(name, node, self.catalog.attributes[node.attribute].type, path)
        if isinstance(node, EventCondition):
            return self.event(node, path)
        if isinstance(node, SequenceCondition):
            return self.sequence(node, path)
        raise self.fail(f"{type(node).__name__} has no PQL form", path)

    def no_name(self, kind: str, name: str, path: str) -> PqlWriteError:
        return self.fail(f"the {kind} {name!r} has no XDM name and its own name cannot be"
                         " written in PQL; give it one (import --xdm)", path)

    # -- attribute conditions ------------------------------------------------------------
    def condition(self, name: str, node: AttributeCondition, kind: str, path: str,
                  in_event: bool = False) -> str:
        op, value = node.op, node.value
        if node.field is not None:
            return self.field_comparison(name, node, path, in_event)
        if op == "is_empty":
            return f"{name}.isNull()"
        if op == "is_not_empty":
            return f"{name}.isNotNull()"
        if op == "is_true":
            return f"{name} = true"
        if op == "is_false":
            return f"{name} = false"
        if kind in ("date", "datetime"):
            return self.date_condition(name, op, value, path)
        if op in STRING_METHODS:
            return f"{name}.{STRING_METHODS[op]}({quote(value)}, false)"
        if op in NUMBER_OPS:
            return f"{name} {NUMBER_OPS[op]} {literal(value)}"
        if op == "in":
            return f"{name} in {array(value)}"
        if op == "not_in":
            return f"{name} notIn {array(value)}"
        if op == "between":
            return between(name, value)
        if op == "not_between":
            return "not " + between(name, value)
        raise self.fail(f"the operator {op!r} has no PQL form", path)

    def field_comparison(self, name: str, node: AttributeCondition, path: str,
                         in_event: bool) -> str:
        """``X = Y``, ``X > Y``, ``X occurs before Y``: with another field (inside an event
        filter, ``profile.NAME`` for a profile attribute)."""
        other = node.field or ""
        if in_event and other.startswith(PROFILE_PREFIX):
            attribute = other.removeprefix(PROFILE_PREFIX)
            written = self.names.written_attribute(attribute)
            if written is None:
                raise self.no_name("attribute", attribute, path)
            right = PROFILE_PREFIX + written
        elif in_event:
            right = self.event_field(other, path)
        else:
            found = self.names.written_attribute(other)
            if found is None:
                raise self.no_name("attribute", other, path)
            right = found
        if node.op in ("on", "before", "after"):
            return f"{name} occurs {node.op} {right}"
        if node.op not in NUMBER_OPS:
            raise self.fail(f"the operator {node.op!r} has no PQL form for two fields", path)
        return f"{name} {NUMBER_OPS[node.op]} {right}"

    def date_condition(self, name: str, op: str, value: Any, path: str) -> str:
        if op == "in_last":
            return f"{name} occurs <= {period(value)} before now"
        if op == "not_in_last":
            return f"not ({name} occurs <= {period(value)} before now)"
        if op == "in_next":
            return f"{name} occurs <= {period(value)} after now"
        if op == "between":
            low, high = value
            return f"{name} occurs between {timepoint(low)} and {timepoint(high)}"
        if op in ("on", "before", "after"):
            return date_point(name, op, value)
        raise self.fail(f"the operator {op!r} has no PQL form", path)

    # -- events --------------------------------------------------------------------------
    def event(self, node: EventCondition, path: str) -> str:
        source = self.event_source(node, path)
        count, aggregate = node.count, node.aggregate
        parts: list[str] = []
        if count is not None:
            if count.distinct is not None:
                raise self.fail(f"a distinct count (of {count.distinct!r}) has no PQL form", path)
            if count.op == "between":
                low, high = count.value
                parts.append(group([f"{source}.count() >= {low}", f"{source}.count() <= {high}"],
                                   "and"))
            else:
                parts.append(f"{source}.count() {COUNT_OPS[count.op]} {count.value}")
        if aggregate is not None:
            field = self.event_field(aggregate.attribute, f"{path}.aggregate")
            call = f"{source}.{AGGREGATE_METHODS[aggregate.fn]}({field})"
            if aggregate.op == "between":
                parts.append(between(call, aggregate.value))
            else:
                parts.append(f"{call} {NUMBER_OPS[aggregate.op]} {literal(aggregate.value)}")
        if not parts:
            return source
        return parts[0] if len(parts) == 1 else group(parts, "and")

    def sequence(self, node: SequenceCondition, path: str) -> str:
        """``CHAIN(xEvent[window], timestamp, [A: WHAT(...), B: WHAT(...) WHEN(...) ...])``."""
        source = ("xEvent" if node.within is None
                  else f"xEvent[{self.window(node.within, f'{path}.sequence.within')}]")
        steps = []
        for index, step in enumerate(node.steps):
            step_path = f"{path}.sequence.steps[{index}]"
            label = STEP_LABELS[index]
            what = self.filter_conditions(step.types, step.where, None, step_path)
            text = f"{label}: WHAT({' and '.join(what) if what else 'true'})"
            if step.gap is not None and (step.gap.min or step.gap.max):
                bounds = []
                if step.gap.min is not None:
                    bounds.append(f">= {duration(step.gap.min)} after {STEP_LABELS[index - 1]}")
                if step.gap.max is not None:
                    bounds.append(f"<= {duration(step.gap.max)} after {STEP_LABELS[index - 1]}")
                text += f" WHEN({' and '.join(bounds)})"
            if step.absent:
                text += " COUNT(0)"
            steps.append(text)
        return f"CHAIN({source}, timestamp, [\n" + ",\n".join(indent(s) for s in steps) + "\n])"

    def event_source(self, node: EventCondition, path: str) -> str:
        conditions = self.filter_conditions(node.types, node.where, node.within, path)
        if not conditions:
            return "xEvent"
        one_line = f"xEvent[{' and '.join(conditions)}]"
        if len(one_line) <= LINE_WIDTH and "\n" not in one_line:
            return one_line
        body = [indent(conditions[0])] + [indent(f"and {part}") for part in conditions[1:]]
        return "xEvent[\n" + "\n".join(body) + "\n]"

    def filter_conditions(self, types: tuple[str, ...] | None,
                          where: tuple[AttributeCondition, ...], within: Window | None,
                          path: str) -> list[str]:
        """The conditions of an event filter: type(s), time, fields."""
        node = EventCondition(types, where, within)
        conditions: list[str] = []
        if node.types is not None:
            named = []
            for name in node.types:
                written = self.names.written_event_type(name)
                if written is None:
                    raise self.no_name("event type", name, f"{path}.event")
                named.append(f"eventType = {quote(written)}")
            conditions.append(named[0] if len(named) == 1 else group(named, "or"))
        if node.within is not None:
            conditions.append(self.window(node.within, f"{path}.within"))
        for index, condition in enumerate(node.where):
            where_path = f"{path}.where[{index}]"
            field = self.event_field(condition.attribute, where_path)
            conditions.append(self.condition(field, condition,
                                             self.field_type(condition.attribute), where_path,
                                             in_event=True))
        return conditions

    def field_type(self, name: str) -> str:
        if name in self.catalog.event_fields:
            return self.catalog.event_fields[name].type
        entity, _, field_name = name.partition(".")
        return self.catalog.entities[entity].fields[field_name].type

    def event_field(self, name: str, path: str) -> str:
        written = self.names.written_event_field(name)
        if written is None:
            raise self.no_name("event field", name, path)
        return written

    def window(self, window: Window, path: str) -> str:
        if window.last is not None:
            return f"timestamp occurs <= {period(window.last)} before now"
        assert window.between is not None
        low, high = window.between
        return f"timestamp occurs between {timepoint(low)} and {timepoint(high)}"


# ---------------------------------------------------------------------- literals and layout


STEP_LABELS = "ABCDEFGH"  # a sequence has at most 8 steps (model.MAX_STEPS)


def duration(value: Duration) -> str:
    return f"{value.amount} {value.unit}"


def quote(text: str) -> str:
    return json.dumps(str(text), ensure_ascii=False)


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        text = repr(float(value))
        return text if "e" in text or "." in text else text + ".0"
    if isinstance(value, dt.date):
        return timepoint(value)
    return quote(value)


def array(values: Any) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


def between(name: str, value: Any) -> str:
    low, high = value
    return f"({name} >= {literal(low)} and {name} <= {literal(high)})"


def period(value: Period) -> str:
    return f"{value.amount} {value.unit}"


def timepoint(value: Any) -> str:
    """A date as ``date(Y, M, D)``, a datetime as ``date("ISO 8601")``, today as ``today``, a
    relative date as ``N units before|after today``."""
    if isinstance(value, RelativeDate):
        if value.direction == "today":
            return "today"
        direction = "before" if value.direction == "ago" else "after"
        return f"{value.amount} {value.unit} {direction} today"
    if isinstance(value, dt.datetime):
        return f'date("{format_datetime(value).replace(" ", "T")}Z")'
    if isinstance(value, dt.date):
        return f"date({value.year}, {value.month}, {value.day})"
    return f"date({quote(value)})"


def date_point(name: str, op: str, value: Any) -> str:
    """``name`` on, before or after a date: a literal date and today directly; N units ago or
    from now by PQL's distance forms (``occurs > 30 days before today``: earlier than that
    day; ``<``: later than it)."""
    if not isinstance(value, RelativeDate) or value.direction == "today":
        if op == "on":
            return f"{name} occurs today" if isinstance(value, RelativeDate) else \
                f"{name} occurs on {timepoint(value)}"
        return f"{name} occurs {op} {timepoint(value)}"
    if op == "on":
        return f"{name} occurs = {timepoint(value)}"
    further = (op == "before") == (value.direction == "ago")  # away from today
    return f"{name} occurs {'>' if further else '<'} {timepoint(value)}"


def parenthesised(text: str) -> str:
    return text if text.startswith("(") and text.endswith(")") and balanced(text[1:-1]) \
        else f"({text})"


def balanced(text: str) -> bool:
    """Whether ``(`` and ``)`` outside strings pair up inside ``text`` (so ``(a) and (b)`` is
    not taken for one parenthesised group)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def group(parts: list[str], joiner: str) -> str:
    """``(a and b)`` on one line when it fits, else one part a line, indented."""
    one_line = "(" + f" {joiner} ".join(parts) + ")"
    if len(one_line) <= LINE_WIDTH and "\n" not in one_line:
        return one_line
    body = [indent(parts[0])] + [indent(f"{joiner} {part}") for part in parts[1:]]
    return "(\n" + "\n".join(body) + "\n)"


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def write_pql(segment: Segment | Node, catalog: Catalog) -> str:
    """A segment's rule (or one node) as PQL text over ``catalog``'s XDM names; raises
    ``PqlWriteError`` naming the node that PQL cannot say."""
    rule = segment.rule if isinstance(segment, Segment) else segment
    text = _Writer(catalog).node(rule, "rule")
    if text.startswith("(") and text.endswith(")") and balanced(text[1:-1]):
        inner = text[1:-1]
        text = inner.strip("\n") if inner.startswith("\n") else inner
        text = "\n".join(line[2:] if line.startswith("  ") else line for line in text.split("\n")) \
            if "\n" in text else text
    return text + "\n"
