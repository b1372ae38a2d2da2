"""Reading PQL (spec/pql.md) into a segment.

The text is parsed with Lark and the grammar file beside this module
(``pql.lark``); the tree is then translated, node by node, into this project's
rule tree, with PQL names looked up through the catalog's XDM names
(``store.segments.pql_names``). The result is a plain segment, as the YAML
reader gives, for ``store.segments.validate`` to check and type: so a PQL
segment is refused for the same reasons, with the same messages, as YAML.

Anything outside the subset is refused with the construct and its line and
column; nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from store.schema.catalog import Catalog
from store.schema.values import parse_date, parse_datetime
from store.segments.errors import PqlError
from store.segments.model import (
    FIELD_OPS_BY_TYPE,
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
    slugify,
    walk,
)
from store.segments.pql_names import Names
from store.segments.yamlio import MAX_CONDITIONS

GRAMMAR = Path(__file__).with_name("pql.lark")
MAX_PQL_CHARS = 1_000_000

# Negative twins (exact complements, spec/segments.md) by the types that have both.
TWINS: dict[str, tuple[str, frozenset[str]]] = {
    "equals": ("not_equals", frozenset({"string", "integer", "number"})),
    "in": ("not_in", frozenset({"string", "integer", "number"})),
    "contains": ("not_contains", frozenset({"string"})),
    "between": ("not_between", frozenset({"integer", "number"})),
    "in_last": ("not_in_last", frozenset({"date", "datetime"})),
    "is_empty": ("is_not_empty", frozenset({"string", "integer", "number", "boolean", "date",
                                            "datetime"})),
}
TWIN_OF = {**{pos: neg for pos, (neg, _) in TWINS.items()},
           **{neg: pos for pos, (neg, _) in TWINS.items()}}
TWIN_TYPES = {**{pos: types for pos, (_, types) in TWINS.items()},
              **{neg: types for _, (neg, types) in TWINS.items()}}
NUMBER_COMPARISONS = {"=": "equals", "==": "equals", "<": "less_than", "<=": "less_or_equal",
                      ">": "greater_than", ">=": "greater_or_equal"}
STRING_METHODS = {"contains": ("contains", False), "doesNotContain": ("contains", True),
                  "startsWith": ("starts_with", False), "doesNotStartWith": ("starts_with", True),
                  "endsWith": ("ends_with", False), "doesNotEndWith": ("ends_with", True)}
AGGREGATES = {"sum": "sum", "average": "avg", "avg": "avg", "min": "min", "max": "max"}
GAP_UNIT_NAMES = {"minute": "minutes", "minutes": "minutes", "hour": "hours", "hours": "hours",
                  "day": "days", "days": "days", "week": "weeks", "weeks": "weeks"}
UNIT_NAMES = {"day": "days", "days": "days", "week": "weeks", "weeks": "weeks",
              "month": "months", "months": "months", "year": "years", "years": "years"}
# Words that start constructs outside the subset, named in the refusal.
OUTSIDE = {
    "let": "let bindings", "if": "if expressions", "select": "select ... from",
    "from": "select ... from", "forall": "forall quantifiers", "exists": "exists quantifiers",
    "map": "map functions", "filter": "array functions", "matches": "regular expressions",
    "regexp": "regular expressions", "regex": "regular expressions",
}
ARRAY_METHODS = frozenset({"map", "filter", "head", "topN", "bottomN", "distinct", "intersects",
                           "includes", "subsetOf", "supersetOf", "union", "intersection",
                           "groupBy", "count_distinct", "first", "last", "sort", "size", "values",
                           "keys", "get", "flatten", "all", "any"})
CASE_WARNING = ("{construct} at line {line}, column {column} is case-sensitive in PQL; here it"
                " ignores ASCII case (spec/segments.md).")


@functools.cache
def parser() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=True,
                maybe_placeholders=False)


@dataclass
class PqlReading:
    """A segment read from PQL (values plain, as from YAML), the PQL line of each node path,
    and warnings for the user (meaning kept, but said differently)."""

    segment: Segment
    lines: dict[str, int]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Source:
    """What an ``xEvent[...]`` filter selects: types, field conditions, window."""

    types: tuple[str, ...] | None
    where: tuple[AttributeCondition, ...]
    within: Window | None

    def event(self, count: CountRule | None = None,
              aggregate: AggregateRule | None = None) -> EventCondition:
        return EventCondition(self.types, self.where, self.within, count, aggregate)


class _Reader:
    def __init__(self, names: Names, source: str) -> None:
        self.names = names
        self.source = source
        self.warnings: list[str] = []
        self.marks: dict[int, int] = {}
        self.kept: list[Node] = []  # marked nodes stay alive, so their ids stay theirs

    # -- positions and errors ------------------------------------------------------------
    @staticmethod
    def position(item: Tree | Token) -> tuple[int | None, int | None]:
        if isinstance(item, Token):
            return item.line, item.column
        if item.meta.empty:
            return None, None
        return item.meta.line, item.meta.column

    def fail(self, message: str, item: Tree | Token) -> PqlError:
        line, column = self.position(item)
        return PqlError(message, source=self.source, line=line, column=column)

    def mark(self, node: Node, item: Tree | Token) -> Node:
        line, _ = self.position(item)
        if line is not None:
            self.marks.setdefault(id(node), line)
            self.kept.append(node)
        return node

    def warn(self, construct: str, item: Tree | Token) -> None:
        line, column = self.position(item)
        self.warnings.append(CASE_WARNING.format(construct=construct, line=line, column=column))

    # -- boolean structure ---------------------------------------------------------------
    def condition(self, tree: Tree | Token) -> Node:
        if isinstance(tree, Token):
            raise self.fail(f"{tree.value!r} alone is not a condition", tree)
        handler = getattr(self, f"c_{tree.data}", None)
        if handler is None:
            raise self.fail(self.not_a_condition(tree), tree)
        return self.mark(handler(tree), tree)

    def not_a_condition(self, tree: Tree) -> str:
        kind = tree.data
        if kind == "arith":
            return outside(f"arithmetic ('{tree.children[1]!s}')")
        if kind in ("name", "member"):
            return (f"{self.path(tree) or 'a field'} alone is not a condition; compare it with a"
                    " value (=, in, occurs, ...)")
        if kind in ("string", "number", "negative", "array", "now", "today"):
            return "a value alone is not a condition"
        return f"{kind} is not a condition in the PQL subset"

    def c_paren(self, tree: Tree) -> Node:
        return self.condition(tree.children[0])

    def c_or_(self, tree: Tree) -> Node:
        return AnyOf(tuple(self.condition(item) for item in self.chain(tree, "or_")))

    def c_and_(self, tree: Tree) -> Node:
        items = [self.condition(item) for item in self.chain(tree, "and_")]
        if len(items) == 2:
            folded = fold_pair(items[0], items[1])
            if folded is not None:
                return folded
        return AllOf(tuple(items))

    def chain(self, tree: Tree, kind: str) -> list[Tree | Token]:
        """The operands of ``a and b and c`` (not those inside parentheses)."""
        operands: list[Tree | Token] = []
        node: Tree | Token = tree
        while isinstance(node, Tree) and node.data == kind:  # left-nested: a and b and c
            left, _, right = node.children
            operands.append(right)
            node = left
        operands.append(node)
        return operands[::-1]

    def c_not_(self, tree: Tree) -> Node:
        child = self.condition(tree.children[1])
        if isinstance(child, NotOf):
            return child.child
        if isinstance(child, AttributeCondition):  # `not (x in [...])` is `x notIn [...]`
            kind = self.names.catalog.attributes[child.attribute].type
            if has_twin(child, kind):
                return replace(child, op=TWIN_OF[child.op])
        return NotOf(child)

    def c_true(self, tree: Tree) -> Node:
        return AllOf(())

    def c_false(self, tree: Tree) -> Node:
        return AnyOf(())

    def c_function(self, tree: Tree) -> Node:
        name = str(tree.children[0])
        args = self.arguments(tree, 1)
        if name == "inSegment":
            if len(args) != 1 or not isinstance(args[0], Tree) or args[0].data != "string":
                raise self.fail('inSegment takes one segment id in quotes: inSegment("vips")', tree)
            return SegmentRef(self.string(args[0]))
        if name == "CHAIN":
            return self.chain_of(tree, args)
        what = f"{OUTSIDE[name]} ({name!r})" if name in OUTSIDE else f"the function {name!r}"
        raise self.fail(outside(what), tree)

    def arguments(self, tree: Tree, start: int) -> list[Tree | Token]:
        rest = tree.children[start:]
        if rest and isinstance(rest[0], Tree) and rest[0].data == "arguments":
            return list(rest[0].children)
        return []

    # -- names and values -----------------------------------------------------------------
    def path(self, tree: Tree | Token) -> str | None:
        """``a.b.c`` as text, or None when the tree is not a plain dotted name."""
        if isinstance(tree, Tree) and tree.data == "name":
            return str(tree.children[0])
        if isinstance(tree, Tree) and tree.data == "member":
            base = self.path(tree.children[0])
            return None if base is None else f"{base}.{tree.children[1]}"
        return None

    def string(self, tree: Tree) -> str:
        token = tree.children[0]
        try:
            return str(json.loads(str(token)))
        except ValueError:
            raise self.fail(f"bad escape in the string {token!s}", token) from None

    def value(self, tree: Tree | Token) -> Any:
        """A literal: text, number, true/false, date(...), or an array of them (a tuple)."""
        if isinstance(tree, Tree):
            kind = tree.data
            if kind == "string":
                return self.string(tree)
            if kind == "number":
                return number(str(tree.children[0]))
            if kind == "negative":
                return -number(str(tree.children[1]))
            if kind in ("true", "false"):
                return kind == "true"
            if kind == "array":
                return tuple(self.value(item) for item in self.arguments(tree, 0))
            if kind == "function" and str(tree.children[0]) == "date":
                return self.date(tree)
            if kind == "paren":
                return self.value(tree.children[0])
            if kind == "arith":
                raise self.fail(self.not_a_condition(tree), tree)
        raise self.fail(f"expected a value (text in double quotes, a number, true/false,"
                        f" date(Y, M, D) or [a, b]), got {self.describe(tree)}", tree)

    def describe(self, tree: Tree | Token) -> str:
        if isinstance(tree, Token):
            return repr(str(tree))
        path = self.path(tree)
        if path is not None:
            return f"the name {path!r}"
        if tree.data in ("function", "method"):
            return f"a call of {str(tree.children[0 if tree.data == 'function' else 1])!r}"
        return tree.data

    def date(self, tree: Tree) -> str:
        """``date(Y, M, D)``, ``date(Y, M, D, h, m, s)`` or ``date("ISO 8601")`` as ISO text."""
        args = [self.value(item) for item in self.arguments(tree, 1)]
        if len(args) == 1 and isinstance(args[0], str):
            text = args[0]
            if parse_date(text) is None and parse_datetime(text) is None:
                raise self.fail(f"date({json.dumps(text)}) is not an ISO 8601 date or datetime", tree)
            return text
        if len(args) in (3, 6) and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            try:
                if len(args) == 3:
                    return dt.date(*args).isoformat()
                year, month, day, hour, minute, second = args
                moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
                return moment.isoformat().replace("+00:00", "Z")
            except ValueError as exc:
                raise self.fail(f"date{tuple(args)} is not a date: {exc}", tree) from None
        raise self.fail("date takes (year, month, day), (year, month, day, hour, minute, second)"
                        ' or ("ISO 8601 text")', tree)

    # -- what a condition is about -------------------------------------------------------
    def subject(self, tree: Tree | Token, scope: str) -> tuple[str, str]:
        """The attribute (profile scope) or event field (event scope) a condition names, and
        its type."""
        path = self.path(tree)
        if isinstance(tree, Tree) and tree.data == "arith":
            raise self.fail(self.not_a_condition(tree), tree)
        if path is None:
            raise self.fail(f"expected {'an attribute' if scope == 'profile' else 'an event field'}"
                            f" name, got {self.describe(tree)}", tree)
        catalog = self.names.catalog
        if scope == "profile":
            name = self.names.attribute(path)
            if name is None:
                hint = Names.suggest(path, self.names.attributes)
                if path in self.names.event_fields or path in self.names.event_types:
                    hint += f" {path!r} is about events: write it inside xEvent[...]."
                raise self.fail(f"unknown attribute {path!r}." + hint, tree)
            return name, catalog.attributes[name].type
        name = self.names.event_field(path)
        if name is None:
            hint = Names.suggest(path, self.names.event_fields)
            if path in self.names.event_types:
                hint = f" {path!r} is an event type: write eventType = {json.dumps(path)}."
            raise self.fail(f"unknown event field {path!r}." + hint, tree)
        if "." in name and name not in catalog.event_fields:
            entity, _, field_name = name.partition(".")
            return name, catalog.entities[entity].fields[field_name].type
        return name, catalog.event_fields[name].type

    # -- comparisons ---------------------------------------------------------------------
    def c_compare(self, tree: Tree, scope: str = "profile") -> Node:
        left, op_token, right = tree.children
        op = str(op_token)
        if isinstance(left, Tree) and left.data == "method" and scope == "profile":
            return self.event_comparison(left, op, right, tree)
        name, kind = self.subject(left, scope)
        if self.path(right) is not None:
            return self.field_comparison(name, kind, op, right, tree, scope)
        value = self.value(right)
        if kind == "boolean":
            if not isinstance(value, bool) or op not in ("=", "==", "!="):
                raise self.fail(f"{name!r} is a boolean: compare it with = true or = false", tree)
            truth = AttributeCondition(name, "is_true" if value else "is_false")
            return truth if op != "!=" else self.negate(truth, tree, scope, kind)
        if kind in ("date", "datetime"):
            date_ops = {"=": "on", "==": "on", "<": "before", ">": "after"}
            if op == "!=":
                return self.negate(AttributeCondition(name, "on", value), tree, scope, kind)
            if op not in date_ops:
                raise self.fail(f"{op} on the date {name!r} has no counterpart: write"
                                " 'occurs before', 'occurs after' or 'occurs on'", op_token)
            return AttributeCondition(name, date_ops[op], value)
        if op == "!=":
            return AttributeCondition(name, "not_equals", value)
        if kind == "string" and op not in ("=", "=="):
            raise self.fail(f"{op} compares numbers; {name!r} is text", op_token)
        return AttributeCondition(name, NUMBER_COMPARISONS[op], value)

    def field_comparison(self, name: str, kind: str, op: str, right: Tree | Token, tree: Tree,
                         scope: str) -> Node:
        """``X = Y``, ``X > Y``...: a comparison with another field of the profile (or, inside
        xEvent[...], of the event, its entity, or ``profile.NAME``)."""
        other = self.other_field(right, scope)
        if op in ("=", "=="):
            return AttributeCondition(name, "equals", field=other)
        if op == "!=":
            return AttributeCondition(name, "not_equals", field=other)
        if kind in ("date", "datetime"):
            if op not in ("<", ">"):
                raise self.fail(f"{op} between dates has no counterpart: write =, <, > or"
                                " 'occurs before/after/on'", tree.children[1])
            return AttributeCondition(name, "before" if op == "<" else "after", field=other)
        return AttributeCondition(name, NUMBER_COMPARISONS[op], field=other)

    def other_field(self, tree: Tree | Token, scope: str) -> str:
        """The field on the right of a field comparison, as the model names it."""
        path = self.path(tree) or ""
        if scope == "event" and path.startswith("profile."):
            inner = path.removeprefix("profile.")
            name = self.names.attribute(inner)
            if name is None:
                raise self.fail(f"unknown attribute {inner!r} in {path!r}." +
                                Names.suggest(inner, self.names.attributes), tree)
            return f"profile.{name}"
        return self.subject(tree, scope)[0]

    def c_in_(self, tree: Tree, scope: str = "profile") -> Node:
        return self.listed(tree, "in", scope)

    def c_not_in(self, tree: Tree, scope: str = "profile") -> Node:
        return self.listed(tree, "not_in", scope)

    def listed(self, tree: Tree, op: str, scope: str) -> Node:
        left, _, right = tree.children
        name, _ = self.subject(left, scope)
        values = self.value(right)
        if not isinstance(values, tuple):
            raise self.fail(f"{'in' if op == 'in' else 'notIn'} takes an array: [\"a\", \"b\"]",
                            right)
        return AttributeCondition(name, op, values)

    def c_like(self, tree: Tree, scope: str = "profile") -> Node:
        left, _, right = tree.children
        name, _ = self.subject(left, scope)
        pattern = self.value(right)
        if not isinstance(pattern, str):
            raise self.fail("like takes a pattern in double quotes", right)
        core = pattern.strip("%")
        starts, ends = pattern.startswith("%"), pattern.endswith("%")
        if "%" in core or "_" in core or not core or (not starts and not ends):
            raise self.fail(f"like {json.dumps(pattern)} is not a contains, starts-with or"
                            " ends-with pattern ('%x%', 'x%', '%x'; no '_')", right)
        op = "contains" if starts and ends else ("ends_with" if starts else "starts_with")
        self.warn("like", tree)
        return AttributeCondition(name, op, core)

    def c_method(self, tree: Tree, scope: str = "profile") -> Node:
        target, method_token = tree.children[0], tree.children[1]
        method = str(method_token)
        args = self.arguments(tree, 2)
        if method in ("isNull", "isNotNull", "exists"):
            if args:
                raise self.fail(f"{method}() takes no arguments", tree)
            name, _ = self.subject(target, scope)
            return AttributeCondition(name, "is_empty" if method == "isNull" else "is_not_empty")
        if method in STRING_METHODS or method in ("equals", "notEqualTo"):
            return self.string_method(tree, target, method, args, scope)
        if method in OUTSIDE or method in ARRAY_METHODS:
            what = (f"{OUTSIDE[method]} ({method!r})" if method in OUTSIDE
                    else f"the array function {method!r}")
            raise self.fail(outside(what), method_token)
        if method in ("count", *AGGREGATES):
            raise self.fail(f".{method}() needs a comparison: xEvent[...].{method}(...) >= N", tree)
        raise self.fail(outside(f"the method {method!r}"), method_token)

    def string_method(self, tree: Tree, target: Tree | Token, method: str,
                      args: list[Tree | Token], scope: str) -> Node:
        name, kind = self.subject(target, scope)
        if not 1 <= len(args) <= 2:
            raise self.fail(f"{method} takes a value and an optional true/false"
                            " (case-sensitive)", tree)
        value = self.value(args[0])
        sensitive = self.value(args[1]) if len(args) == 2 else True
        if not isinstance(sensitive, bool):
            raise self.fail(f"the second argument of {method} is true or false", args[1])
        if method == "equals":
            if not sensitive:
                raise self.fail("equals(x, false) (equal ignoring case) has no counterpart here;"
                                " use = for exact equality", tree)
            return AttributeCondition(name, "equals", value)
        if method == "notEqualTo":
            return AttributeCondition(name, "not_equals", value)
        op, negated = STRING_METHODS[method]
        if sensitive:
            self.warn(method, tree)
        node = AttributeCondition(name, op, value)
        return self.negate(node, tree, scope, kind) if negated else node

    def negate(self, node: AttributeCondition, tree: Tree, scope: str, kind: str) -> Node:
        """``not`` of a condition: its negative twin where it has one, else (outside an event
        filter) a ``not`` node."""
        if has_twin(node, kind):
            return replace(node, op=TWIN_OF[node.op])
        if scope == "event":
            raise self.fail(f"not of {node.op!r} on {node.attribute!r} has no counterpart inside"
                            " xEvent[...]", tree)
        return NotOf(node)

    # -- dates -------------------------------------------------------------------------------
    def c_occurs(self, tree: Tree, scope: str = "profile") -> Node:
        left, _, occurrence = tree.children
        name, kind = self.subject(left, scope)
        if kind not in ("date", "datetime"):
            raise self.fail(f"occurs applies to dates; {name!r} is {kind}", tree)
        return self.occurrence(name, occurrence, scope)

    def occurrence(self, name: str, tree: Tree, scope: str) -> Node:
        kind = tree.data
        parts = [c for c in tree.children if not (isinstance(c, Token) and c.type in
                                                  ("BEFORE", "AFTER", "ON", "BETWEEN", "AND"))]
        if kind in ("occurs_before", "occurs_after", "occurs_on"):
            op = {"occurs_before": "before", "occurs_after": "after", "occurs_on": "on"}[kind]
            if self.path(parts[0]) is not None:  # another date field
                return AttributeCondition(name, op, field=self.other_field(parts[0], scope))
            return AttributeCondition(name, op, self.timepoint(parts[0]))
        if kind == "occurs_between":
            return AttributeCondition(name, "between",
                                      (self.timepoint(parts[0]), self.timepoint(parts[1])))
        if kind == "occurs_today":
            return AttributeCondition(name, "on", RelativeDate("today"))
        if kind == "occurs_yesterday":
            return AttributeCondition(name, "on", RelativeDate("ago", 1, "days"))
        op_token, amount_token, unit_token, direction, anchor = tree.children
        amount, unit = self.amount_unit(amount_token, unit_token)
        later = str(direction.children[0]) == "after"
        self.anchor(anchor)
        op = str(op_token)
        relative = RelativeDate("from_now" if later else "ago", amount, unit)
        if op == "<=":
            return AttributeCondition(name, "in_next" if later else "in_last", Period(amount, unit))
        if op in ("=", "=="):
            return AttributeCondition(name, "on", relative)
        if op == ">":  # further from today than the day: before it, or after it
            return AttributeCondition(name, "after" if later else "before", relative)
        if op == "<":  # nearer than the day, on either side: after it, or before it
            return AttributeCondition(name, "before" if later else "after", relative)
        raise self.fail(f"occurs {op} N {unit} {'after' if later else 'before'} has no"
                        " counterpart; use <= (within), =, < or >", op_token)

    def amount_unit(self, amount_token: Any, unit_token: Any) -> tuple[int, Any]:
        if not str(amount_token).isdigit():
            raise self.fail("the amount of time is a whole number", amount_token)
        unit = UNIT_NAMES.get(str(unit_token))
        if unit is None:
            raise self.fail(f"time unit {str(unit_token)!r} is not one of days, weeks, months,"
                            " years", unit_token)
        return int(str(amount_token)), unit

    def anchor(self, tree: Tree | Token) -> None:
        if not (isinstance(tree, Tree) and tree.data in ("now", "today")):
            raise self.fail("a relative time counts from now or today", tree)

    def timepoint(self, tree: Tree | Token) -> Any:
        if isinstance(tree, Tree) and tree.data == "relative_moment":
            amount_token, unit_token, direction, anchor = tree.children
            amount, unit = self.amount_unit(amount_token, unit_token)
            self.anchor(anchor)
            later = str(direction.children[0]) == "after"
            return RelativeDate("from_now" if later else "ago", amount, unit)
        if isinstance(tree, Tree) and tree.data == "today":
            return RelativeDate("today")
        if isinstance(tree, Tree) and tree.data == "now":
            raise self.fail("'now' is an instant; compare a date with today, or use"
                            " 'occurs <= N days before now'", tree)
        value = self.value(tree)
        if not isinstance(value, str) or (parse_date(value) is None
                                          and parse_datetime(value) is None):
            raise self.fail("expected date(Y, M, D), date(\"ISO 8601\") or today", tree)
        return value

    # -- sequences (CHAIN) ---------------------------------------------------------------------
    def chain_of(self, tree: Tree, args: list[Tree | Token]) -> Node:
        """``CHAIN(xEvent[window], timestamp, [A: WHAT(...), B: WHAT(...) WHEN(<= 2 hours
        after A) COUNT(0)])``: a sequence (one step: an event condition)."""
        if len(args) != 3 or self.path(args[1]) != "timestamp":
            raise self.fail("CHAIN takes (xEvent, timestamp, [steps])", tree)
        source = self.event_source(args[0])
        if source.types is not None or source.where:
            raise self.fail("the events of a CHAIN are filtered in each step's WHAT; the first"
                            " argument takes only the time (xEvent[timestamp occurs ...])", args[0])
        array = args[2]
        if not (isinstance(array, Tree) and array.data == "array"):
            raise self.fail("the steps of a CHAIN are a list: [A: WHAT(...), B: ...]", array)
        items = self.arguments(array, 0)
        labels: list[str] = []
        steps: list[SequenceStep] = []
        for index, item in enumerate(items):
            if not (isinstance(item, Tree) and item.data == "labelled"):
                raise self.fail("a CHAIN step is LABEL: WHAT(...) [WHEN(...)] [COUNT(0)]", item)
            steps.append(self.chain_step(item, index, labels))
            labels.append(str(item.children[0]))
        if not steps:
            raise self.fail("a CHAIN needs at least one step", array)
        if len(steps) == 1:
            only = steps[0]
            if only.absent:
                raise self.fail("a CHAIN of one step cannot be COUNT(0): write not xEvent[...]",
                                items[0])
            return EventCondition(only.types, only.where, source.within)
        return SequenceCondition(tuple(steps), source.within)

    def chain_step(self, item: Tree, index: int, labels: list[str]) -> SequenceStep:
        label = str(item.children[0])
        if label in labels:
            raise self.fail(f"the step label {label!r} is used twice", item.children[0])
        what: _Source | None = None
        gap: Gap | None = None
        absent = False
        for part in item.children[1:]:
            kind = part.data if isinstance(part, Tree) else ""
            name = str(part.children[0]) if isinstance(part, Tree) and part.children else ""
            if kind == "function" and name == "WHAT":
                what = self.step_filter(part)
            elif kind == "gap_call" and name == "WHEN":
                gap = self.gap(part, labels)
            elif kind == "function" and name == "COUNT":
                count = [self.value(a) for a in self.arguments(part, 1)]
                if count != [0]:
                    raise self.fail("COUNT on a step is COUNT(0) (\"and then did not\"); other"
                                    " counts have no counterpart", part)
                absent = True
            else:
                raise self.fail(f"a CHAIN step holds WHAT, WHEN and COUNT, not"
                                f" {self.describe(part)}", part)
        if what is None:
            raise self.fail(f"the step {label!r} needs WHAT(...): which events", item)
        return SequenceStep(what.types, what.where, gap, absent)

    def step_filter(self, tree: Tree) -> _Source:
        args = self.arguments(tree, 1)
        if len(args) != 1:
            raise self.fail("WHAT takes one condition on the event", tree)
        source = self.filter_parts(args[0])
        if source.within is not None:
            raise self.fail("the time of a CHAIN goes in its first argument:"
                            " CHAIN(xEvent[timestamp occurs ...], ...)", args[0])
        return source

    def gap(self, tree: Tree, labels: list[str]) -> Gap:
        if not labels:
            raise self.fail("the first step of a CHAIN has no WHEN (nothing comes before it)",
                            tree)
        low: Duration | None = None
        high: Duration | None = None
        for bound in (c for c in tree.children if isinstance(c, Tree) and c.data == "gap_bound"):
            op_token, amount_token, unit_token, direction, anchor = bound.children
            if str(anchor) != labels[-1]:
                raise self.fail(f"WHEN counts from the step just before ({labels[-1]!r}), not"
                                f" {str(anchor)!r}", anchor)
            if str(direction.children[0]) != "after":
                raise self.fail("a step comes after the one before it: write 'after'", direction)
            unit = GAP_UNIT_NAMES.get(str(unit_token))
            if unit is None:
                raise self.fail(f"gap unit {str(unit_token)!r} is not one of minutes, hours, days,"
                                " weeks", unit_token)
            if not str(amount_token).isdigit():
                raise self.fail("the amount of time is a whole number", amount_token)
            duration = Duration(int(str(amount_token)), unit)  # type: ignore[arg-type]
            op = str(op_token)
            if op == "<=" and high is None:
                high = duration
            elif op == ">=" and low is None:
                low = duration
            else:
                raise self.fail(f"WHEN takes <= (at most) and >= (at least) once each, not {op}",
                                op_token)
        return Gap(low, high)

    # -- events ------------------------------------------------------------------------------
    def c_filter(self, tree: Tree) -> Node:
        return self.event_source(tree).event()

    def c_name(self, tree: Tree) -> Node:
        if str(tree.children[0]) == "xEvent":
            return self.event_source(tree).event()
        raise self.fail(self.not_a_condition(tree), tree)

    def event_source(self, tree: Tree | Token) -> _Source:
        if isinstance(tree, Tree) and tree.data == "name" and str(tree.children[0]) == "xEvent":
            return _Source(None, (), None)
        if not (isinstance(tree, Tree) and tree.data == "filter"):
            raise self.fail(f"expected xEvent[...], got {self.describe(tree)}", tree)
        base, condition = tree.children
        if self.path(base) != "xEvent":
            raise self.fail(f"only xEvent can be filtered with [...], not {self.describe(base)}",
                            base)
        return self.filter_parts(condition)

    def filter_parts(self, condition: Tree | Token) -> _Source:
        """The event type(s), time and field conditions of a filter (``and`` of them)."""
        types: tuple[str, ...] | None = None
        within: Window | None = None
        where: list[AttributeCondition] = []
        for item in self.conjuncts(condition):
            found = self.event_types(item)
            if found is not None:
                if types is not None:
                    raise self.fail("the event type is given twice in one xEvent[...]", item)
                types = found
                continue
            if self.is_timestamp(item):
                if within is not None:
                    raise self.fail("the time is given twice in one xEvent[...]", item)
                within = self.window(item)
                continue
            if isinstance(item, Tree) and item.data == "true":
                continue
            where.append(self.where(item))
        return _Source(types, tuple(where), within)

    def conjuncts(self, tree: Tree | Token) -> list[Tree | Token]:
        if isinstance(tree, Tree) and tree.data == "paren":
            inner = tree.children[0]
            if isinstance(inner, Tree) and inner.data == "and_":
                return self.conjuncts(inner)
        if isinstance(tree, Tree) and tree.data == "and_":
            return [part for operand in self.chain(tree, "and_") for part in self.conjuncts(operand)]
        return [tree]

    def event_types(self, tree: Tree | Token) -> tuple[str, ...] | None:
        """The types ``eventType = "x"`` (or equals, in, or an ``or`` of them) names, else None
        when the condition is not about the event type."""
        if not isinstance(tree, Tree):
            return None
        if tree.data == "paren":
            return self.event_types(tree.children[0])
        if tree.data == "or_":
            parts = self.chain(tree, "or_")
            found = [self.event_types(part) for part in parts]
            if all(f is not None for f in found):
                return tuple(dict.fromkeys(t for f in found if f for t in f))
            if any(f is not None for f in found):
                raise self.fail("inside xEvent[...], 'or' joins only event types", tree)
            return None
        values: list[Tree | Token]
        if tree.data == "compare" and self.path(tree.children[0]) == "eventType":
            if str(tree.children[1]) not in ("=", "=="):
                raise self.fail("the event type is compared with = (or in [...])", tree.children[1])
            values = [tree.children[2]]
        elif tree.data == "in_" and self.path(tree.children[0]) == "eventType":
            array = tree.children[2]
            if not (isinstance(array, Tree) and array.data == "array"):
                raise self.fail("eventType in takes an array of types", array)
            values = self.arguments(array, 0)
        elif (tree.data == "method" and self.path(tree.children[0]) == "eventType"
              and str(tree.children[1]) == "equals"):
            args = self.arguments(tree, 2)
            if len(args) == 2 and self.value(args[1]) is False:
                self.warn("eventType.equals(x, false)", tree)
            values = args[:1]
        else:
            return None
        return tuple(self.event_type(item) for item in values)

    def event_type(self, tree: Tree | Token) -> str:
        value = self.value(tree)
        if not isinstance(value, str):
            raise self.fail("an event type is text in double quotes", tree)
        name = self.names.event_type(value)
        if name is None:
            raise self.fail(f"unknown event type {value!r}." +
                            Names.suggest(value, self.names.event_types), tree)
        return name

    def is_timestamp(self, tree: Any) -> bool:
        return (isinstance(tree, Tree) and tree.data == "occurs"
                and self.path(tree.children[0]) == "timestamp")

    def window(self, tree: Any) -> Window:
        occurrence = tree.children[2]
        kind = occurrence.data
        if kind == "occurs_between":
            low, high = (c for c in occurrence.children
                         if not (isinstance(c, Token) and c.type in ("BETWEEN", "AND")))
            return Window(between=(self.timepoint(low), self.timepoint(high)))
        if kind == "occurs_relative":
            op_token, amount_token, unit_token, direction, anchor = occurrence.children
            amount, unit = self.amount_unit(amount_token, unit_token)
            self.anchor(anchor)
            if str(op_token) == "<=" and str(direction.children[0]) == "before":
                return Window(last=Period(amount, unit))
        if kind == "occurs_today":
            return Window(last=Period(1, "days"))
        raise self.fail("the time of an event is 'timestamp occurs <= N days before now' or"
                        " 'timestamp occurs between date(...) and date(...)'", occurrence)

    def where(self, tree: Tree | Token) -> AttributeCondition:
        if isinstance(tree, Tree) and tree.data == "paren":
            return self.where(tree.children[0])
        if isinstance(tree, Tree) and tree.data == "and_" and len(self.chain(tree, "and_")) == 2:
            first, second = (self.where(part) for part in self.chain(tree, "and_"))
            folded = fold_pair(first, second)
            if isinstance(folded, AttributeCondition):
                return folded
            raise self.fail("inside xEvent[...], a parenthesised 'and' is a range"
                            " (x >= a and x <= b)", tree)
        if isinstance(tree, Tree) and tree.data == "not_":
            inner = self.where(tree.children[1])
            _, kind = self.subject_of(inner)
            negated = self.negate(inner, tree, "event", kind)
            assert isinstance(negated, AttributeCondition)
            return negated
        handler = getattr(self, f"c_{tree.data}", None) if isinstance(tree, Tree) else None
        if handler is None or not isinstance(tree, Tree) or tree.data in (
                "or_", "and_", "filter", "function", "name", "true", "false", "paren"):
            raise self.fail("inside xEvent[...], conditions are on the event's type, time and"
                            " fields, joined with 'and'", tree)
        node = handler(tree, "event")
        if not isinstance(node, AttributeCondition):
            raise self.fail("this condition has no counterpart inside xEvent[...]", tree)
        return node

    def subject_of(self, node: AttributeCondition) -> tuple[str, str]:
        catalog = self.names.catalog
        if node.attribute in catalog.event_fields:
            return node.attribute, catalog.event_fields[node.attribute].type
        entity, _, field_name = node.attribute.partition(".")
        return node.attribute, catalog.entities[entity].fields[field_name].type

    def event_comparison(self, left: Tree, op: str, right: Tree | Token, tree: Tree) -> Node:
        method = str(left.children[1])
        source = self.event_source(left.children[0])
        args = self.arguments(left, 2)
        value = self.value(right)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f".{method}() is compared with a number", right)
        if method == "count":
            if args:
                raise self.fail(".count() takes no arguments", left)
            return self.count_comparison(source, op, value, tree)
        fn = AGGREGATES.get(method)
        if fn is None:
            raise self.fail(outside(f"the method {method!r}"), left)
        if len(args) != 1:
            raise self.fail(f".{method}(...) takes one event field", left)
        field_name, kind = self.subject(args[0], "event")
        if kind not in ("integer", "number"):
            raise self.fail(f".{method}() needs a numeric field; {field_name!r} is {kind}", args[0])
        if op == "!=":
            return NotOf(source.event(aggregate=AggregateRule(fn, field_name, "equals", value)))
        return source.event(aggregate=AggregateRule(fn, field_name, NUMBER_COMPARISONS[op], value))

    def count_comparison(self, source: _Source, op: str, value: Any, tree: Tree) -> Node:
        if not isinstance(value, int) or value < 0:
            raise self.fail(".count() is compared with a whole number 0 or more", tree)
        if op in ("=", "=="):
            return source.event(CountRule("exactly", value))
        if op == "!=":
            return NotOf(source.event(CountRule("exactly", value)))
        if op == ">=":
            return source.event(CountRule("at_least", value))
        if op == ">":
            return source.event(CountRule("at_least", value + 1))
        if op == "<=":
            return source.event(CountRule("at_most", value))
        if value == 0:  # fewer than none: nobody
            return AnyOf(())
        return source.event(CountRule("at_most", value - 1))


def has_twin(node: AttributeCondition, kind: str) -> bool:
    """Whether the condition's negative (or positive) twin applies to its type (for a field
    comparison: is one of the field operators)."""
    twin = TWIN_OF.get(node.op)
    if twin is None:
        return False
    if node.field is not None:
        return twin in FIELD_OPS_BY_TYPE.get(kind, ())
    return kind in TWIN_TYPES[node.op]


def number(text: str) -> int | float:
    if text.isdigit():
        return int(text)
    return float(text)


def fold_pair(left: Node, right: Node) -> Node | None:
    """``x >= a and x <= b`` as one ``between``; a count and an aggregate of the same events
    as one event condition. None when the pair is not one of these shapes."""
    if isinstance(left, AttributeCondition) and isinstance(right, AttributeCondition):
        if left.field is not None or right.field is not None:
            return None
        if left.attribute == right.attribute and {left.op, right.op} == {"greater_or_equal",
                                                                         "less_or_equal"}:
            low, high = (left, right) if left.op == "greater_or_equal" else (right, left)
            return AttributeCondition(left.attribute, "between", (low.value, high.value))
        return None
    if not (isinstance(left, EventCondition) and isinstance(right, EventCondition)):
        return None
    if (left.types, left.where, left.within) != (right.types, right.where, right.within):
        return None
    a, b = left, right
    if a.aggregate is None and b.aggregate is None and a.count and b.count:
        ops = {a.count.op: a.count.value, b.count.op: b.count.value}
        if set(ops) == {"at_least", "at_most"}:
            return EventCondition(a.types, a.where, a.within,
                                  CountRule("between", (ops["at_least"], ops["at_most"])))
        return None
    if a.count is None and b.count is None and a.aggregate and b.aggregate:
        x, y = a.aggregate, b.aggregate
        if (x.fn, x.attribute) == (y.fn, y.attribute) and {x.op, y.op} == {"greater_or_equal",
                                                                          "less_or_equal"}:
            first, last = (x, y) if x.op == "greater_or_equal" else (y, x)
            return EventCondition(a.types, a.where, a.within, None,
                                  AggregateRule(x.fn, x.attribute, "between",
                                                (first.value, last.value)))
        return None
    counted, summed = (a, b) if a.aggregate is None else (b, a)
    if counted.count is not None and counted.aggregate is None and summed.count is None:
        return EventCondition(a.types, a.where, a.within, counted.count, summed.aggregate)
    return None


def outside(what: str) -> str:
    return f"{what}: not in the PQL subset this program reads (spec/pql.md)"


def outside_keyword(expression: str, token: Token) -> tuple[str, int, int] | None:
    """The last word before ``token`` that starts a construct outside the subset (``let``,
    ``select``, ``forall`` ...), with its line and column: the construct to name."""
    found = None
    try:
        for item in parser().lex(expression):
            if item.start_pos is not None and token.start_pos is not None \
                    and item.start_pos > token.start_pos:
                break
            if item.type == "NAME" and str(item) in OUTSIDE:
                found = (str(item), item.line or 0, item.column or 0)
    except UnexpectedInput:
        pass
    return found


def unclosed_bracket(expression: str) -> Token | None:
    """The innermost bracket left open at the end of the text, if any."""
    pairs = {")": "(", "]": "["}
    stack: list[Token] = []
    try:
        for token in parser().lex(expression):
            if str(token) in ("(", "["):
                stack.append(token)
            elif str(token) in pairs and stack and str(stack[-1]) == pairs[str(token)]:
                stack.pop()
    except UnexpectedInput:
        pass
    return stack[-1] if stack else None


def syntax_error(exc: UnexpectedInput, source: str, expression: str) -> PqlError:
    """A parse error as one message naming what was found where."""
    line, column = exc.line, exc.column
    ended = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken)
                                               and exc.token.type == "$END")
    if ended:
        opened = unclosed_bracket(expression)
        if opened is not None:
            return PqlError(f"unbalanced brackets: this {str(opened)!r} is never closed",
                            source=source, line=opened.line, column=opened.column)
        return PqlError("the PQL ends too early (a missing operand?)", source=source,
                        line=line if isinstance(line, int) and line > 0 else None,
                        column=column if isinstance(column, int) and column > 0 else None)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        text = str(token)
        keyword = outside_keyword(expression, token)
        if keyword is not None:
            word, line, column = keyword
            return PqlError(outside(f"{OUTSIDE[word]} ({word!r})"), source=source, line=line,
                            column=column)
        if text in (")", "]"):
            message = f"unbalanced brackets: {text!r} closes nothing"
        else:
            message = f"unexpected {text!r}"
        return PqlError(message, source=source, line=line, column=column)
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char
        if char == "'":
            message = "text goes in double quotes (\"...\"), not single quotes"
        elif char == '"':
            message = "unterminated text (a missing closing \")"
        elif char in "{}":
            message = f"{char!r} is not PQL (maps and JSON are not in the subset)"
        else:
            message = f"unexpected character {char!r}"
        return PqlError(message, source=source, line=line, column=column)
    return PqlError(f"not valid PQL: {exc}", source=source)


def _lines(rule: Node, marks: dict[int, int]) -> dict[str, int]:
    lines: dict[str, int] = {}
    for path, node in walk(rule):
        if id(node) in marks:
            lines[path] = marks[id(node)]
    return lines


def unwrap(text: str) -> tuple[str, dict[str, str]]:
    """PQL text, or a segment definition as AEP exports it (JSON with ``expression.value``);
    with the JSON's name and description, when given."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return text, {}
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        raise PqlError(f"the text starts like JSON but is not valid JSON: {exc}") from None
    expression = data.get("expression") if isinstance(data, dict) else None
    if not (isinstance(expression, dict) and isinstance(expression.get("value"), str)):
        raise PqlError('a JSON segment definition needs "expression": {"type": "PQL",'
                       ' "value": "..."}')
    if expression.get("type", "PQL") != "PQL":
        raise PqlError(f"the expression's type is {expression.get('type')!r}, not PQL")
    meta = {key: str(data[key]) for key in ("name", "description")
            if isinstance(data.get(key), str)}
    return expression["value"], meta


def read_pql(text: str, catalog: Catalog, *, source: str = "<pql>", segment_id: str | None = None,
             name: str | None = None, description: str | None = None) -> PqlReading:
    """Read PQL (or an AEP JSON definition holding it) into a segment over ``catalog``'s names.

    The segment's values are plain, as from YAML: validate it (``library.resolve_segment``)
    before counting. Raises ``PqlError`` with the line and column of what cannot be read.
    """
    if len(text) > MAX_PQL_CHARS:
        raise PqlError(f"the PQL is too large ({len(text):,} characters)", source=source)
    expression, meta = unwrap(text)
    if not expression.strip():
        raise PqlError("there is no PQL expression to read", source=source)
    try:
        tree = parser().parse(expression)
    except UnexpectedInput as exc:
        raise syntax_error(exc, source, expression) from None
    except RecursionError:
        raise PqlError("the PQL is nested too deeply", source=source) from None
    reader = _Reader(Names.of(catalog), source)
    try:
        rule = reader.condition(tree.children[0])
    except RecursionError:
        raise PqlError("the PQL is nested too deeply", source=source) from None
    conditions = sum(1 for _, node in walk(rule)
                     if isinstance(node, AttributeCondition | EventCondition | SegmentRef
                                   | SequenceCondition))
    if conditions > MAX_CONDITIONS:
        raise PqlError(f"the rule has more than {MAX_CONDITIONS:,} conditions; split it into"
                       " smaller segments", source=source)
    title = name or meta.get("name")
    seg_id = segment_id or slugify(title or Path(source).stem or "pql-segment")
    segment = Segment(id=seg_id, name=title or seg_id, rule=rule,
                      description=description if description is not None
                      else meta.get("description", ""), source=source)
    return PqlReading(segment, _lines(rule, reader.marks), reader.warnings)
