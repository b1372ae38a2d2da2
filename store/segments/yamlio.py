"""Segment YAML in and out.

Reading walks PyYAML's composed node graph rather than ``safe_load``'s Python
objects, for three reasons: every error can name the YAML line; scalars are
resolved the way a marketer reads them (only ``true``/``false`` are booleans,
so ``value: no`` is the string "no"; dates stay text until the attribute's
type says what they are); and anchors, duplicate keys and oversized documents
are caught instead of expanded.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from store.files import special_kind
from store.schema.values import format_datetime
from store.segments.errors import SegmentError
from store.segments.model import (
    GAP_UNITS,
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
    slugify,
)

MAX_DOCUMENT_BYTES = 5_000_000
# libyaml's composer is several times faster than the pure-Python one (a rule of
# 10,000 conditions composes in well under a second) and refuses nesting deeper
# than its limit with an error instead of exhausting the Python stack.
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_NODES = 200_000
# Conditions (attribute, event, segment reference and each event's `where` item) in
# one rule. A rule this big still compiles and counts in seconds; much bigger ones
# take minutes and hundreds of megabytes, which looks like a hang in the app.
MAX_CONDITIONS = 10_000
# Levels of all/any/not. Saving, activating, explaining and the builder's tree walk the
# rule recursively; 300 levels already strain Python's stack, and nobody writes 100.
MAX_DEPTH = 100
NODE_KINDS = ("all", "any", "not", "attribute", "event", "segment", "sequence")
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


class IntText(int):
    """A whole number read from YAML that remembers how it was written.

    ``value: 007`` is the number 7 for an integer attribute but the text "007"
    for a string attribute (a zip code, a phone number); the validator picks.
    """

    text: str

    def __new__(cls, value: Any, text: str | None = None) -> IntText:
        number = super().__new__(cls, value)
        number.text = str(value) if text is None else text
        return number


class FloatText(float):
    """A number read from YAML that remembers how it was written (``1.50``, ``1e3``)."""

    text: str

    def __new__(cls, value: Any, text: str | None = None) -> FloatText:
        number = super().__new__(cls, value)
        number.text = str(value) if text is None else text
        return number


class _Reader:
    """Turns a composed YAML node graph into a Segment, tracking node paths and lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self.visited = 0
        self.conditions = 0

    # -- errors and plain values -------------------------------------------------
    def fail(self, message: str, node: yaml.Node | None, path: str) -> SegmentError:
        line = node.start_mark.line + 1 if node is not None else None
        return SegmentError(message, source=self.source, line=line, path=path)

    def condition(self, node: yaml.Node, path: str) -> None:
        """Count one condition; a rule with too many is refused before it reaches the database."""
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.fail(f"the rule has more than {MAX_CONDITIONS:,} conditions; split it into"
                            " smaller segments", node, path)

    def note(self, node: yaml.Node, path: str) -> None:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.fail(f"the segment is too large (more than {MAX_NODES:,} YAML nodes)",
                            node, path)
        self.lines.setdefault(path, node.start_mark.line + 1)

    def plain(self, node: yaml.Node, path: str) -> Any:
        """A YAML value as plain Python (dicts, lists, scalars), for values only."""
        self.note(node, path)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return {key: self.plain(value, f"{path}.{key}")
                    for key, value in self.mapping(node, path).items()}
        raise self.fail("unsupported YAML value", node, path)

    @staticmethod
    def scalar(node: yaml.ScalarNode) -> Any:
        text = node.value
        if node.style:  # quoted or block scalars are always text
            return text
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if _INT.match(text):
            try:
                return IntText(text, text)
            except ValueError:  # more digits than Python converts: kept as the text it is
                return text
        if _FLOAT.match(text) and any(c.isdigit() for c in text):
            return FloatText(text, text)
        return text

    def mapping(self, node: yaml.Node, path: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail("expected a mapping (key: value pairs)", node, path)
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail("a key must be plain text", key_node, path)
            key = key_node.value
            if key in result:
                raise self.fail(f"duplicate key {key!r}", key_node, path)
            result[key] = value_node
            self.lines.setdefault(f"{path}.{key}", key_node.start_mark.line + 1)
        return result

    def text(self, node: yaml.Node, path: str) -> str:
        self.note(node, path)
        if not isinstance(node, yaml.ScalarNode) or self.scalar(node) is None:
            raise self.fail("expected text", node, path)
        return str(node.value)

    def integer(self, node: yaml.Node, path: str) -> int:
        value = self.plain(node, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"expected a whole number, got {value!r}", node, path)
        return int(value)

    def check_keys(self, fields: dict[str, yaml.Node], allowed: tuple[str, ...], node: yaml.Node,
                   path: str, what: str) -> None:
        for key in fields:
            if key not in allowed:
                from store.schema.catalog import did_you_mean

                raise self.fail(f"unknown key {key!r} in {what}." + did_you_mean(key, allowed),
                                fields[key], f"{path}.{key}")

    # -- segment and nodes -------------------------------------------------------
    def segment(self, root: yaml.Node, default_id: str | None) -> Segment:
        fields = self.mapping(root, "segment")
        self.check_keys(fields, ("id", "name", "description", "rule"), root, "segment",
                        "a segment (expected id, name, description, rule)")
        if "rule" not in fields:
            raise self.fail("missing required key 'rule'", root, "rule")
        name = self.text(fields["name"], "name") if "name" in fields else None
        description = ""
        if "description" in fields:
            described = self.plain(fields["description"], "description")
            description = "" if described is None else str(described)
        if "id" in fields:
            seg_id = self.text(fields["id"], "id")
        else:
            seg_id = slugify(name or default_id or "segment")
        from store.segments.model import SLUG_RE

        if not SLUG_RE.match(seg_id):
            raise self.fail(
                f"id {seg_id!r} must be a lowercase slug (letters, digits, '-' or '_'),"
                f" e.g. {slugify(seg_id)!r}", fields.get("id"), "id")
        rule = self.node(fields["rule"], "rule")
        return Segment(id=seg_id, name=name or seg_id, rule=rule, description=description,
                       source=self.source)

    def node(self, node: yaml.Node, path: str, depth: int = 0) -> Node:
        self.note(node, path)
        if depth > MAX_DEPTH:
            raise self.fail(f"the rule is nested more than {MAX_DEPTH} levels deep", node, path)
        fields = self.mapping(node, path)
        kinds = [k for k in NODE_KINDS if k in fields]
        if not kinds:
            from store.schema.catalog import did_you_mean

            hint = did_you_mean(next(iter(fields), ""), NODE_KINDS) if fields else ""
            raise self.fail("a node needs one of: " + ", ".join(NODE_KINDS) + "." + hint,
                            node, path)
        if len(kinds) > 1:
            raise self.fail(f"a node has exactly one kind, found {' and '.join(kinds)}", node, path)
        kind = kinds[0]
        if kind in ("attribute", "event", "segment", "sequence"):
            self.condition(node, path)
        if kind in ("all", "any"):
            self.check_keys(fields, (kind,), node, path, f"an '{kind}' group")
            items = fields[kind]
            if not isinstance(items, yaml.SequenceNode):
                raise self.fail(f"'{kind}' takes a list of nodes", items, f"{path}.{kind}")
            children = tuple(self.node(item, f"{path}.{kind}[{i}]", depth + 1)
                             for i, item in enumerate(items.value))
            return AllOf(children) if kind == "all" else AnyOf(children)
        if kind == "not":
            self.check_keys(fields, ("not",), node, path, "a 'not' node")
            return NotOf(self.node(fields["not"], f"{path}.not", depth + 1))
        if kind == "segment":
            self.check_keys(fields, ("segment",), node, path, "a segment reference")
            return SegmentRef(self.text(fields["segment"], f"{path}.segment"))
        if kind == "attribute":
            return self.attribute(fields, node, path)
        if kind == "sequence":
            self.check_keys(fields, ("sequence",), node, path, "a sequence node")
            return self.sequence(fields["sequence"], f"{path}.sequence")
        return self.event(fields, node, path)

    def attribute(self, fields: dict[str, yaml.Node], node: yaml.Node,
                  path: str) -> AttributeCondition:
        self.check_keys(fields, ("attribute", "op", "value", "field"), node, path,
                        "an attribute condition")
        name = self.text(fields["attribute"], f"{path}.attribute")
        if "op" not in fields:
            raise self.fail("missing required key 'op'", node, f"{path}.op")
        op = self.text(fields["op"], f"{path}.op")
        if "field" in fields:
            if "value" in fields:
                raise self.fail("a condition compares with a 'value' or with a 'field', not both",
                                fields["field"], f"{path}.field")
            return AttributeCondition(name, op, field=self.text(fields["field"], f"{path}.field"))
        value = self.value(fields["value"], f"{path}.value") if "value" in fields else None
        return AttributeCondition(name, op, value)

    def value(self, node: yaml.Node, path: str) -> Any:
        """A condition's value: a scalar, a list (tuple), a relative date or a period."""
        raw = self.plain(node, path)
        return self.structured(raw, node, path)

    def structured(self, raw: Any, node: yaml.Node, path: str) -> Any:
        if isinstance(raw, list):
            return tuple(self.structured(item, node, path) for item in raw)
        if isinstance(raw, dict):
            keys = set(raw)
            if keys == {"amount", "unit"}:
                return Period(self.whole(raw["amount"], node, path), self.unit(raw["unit"], node,
                                                                               path))
            for direction in ("ago", "from_now"):
                if keys == {direction, "unit"}:
                    return RelativeDate(direction, self.whole(raw[direction], node, path),
                                        self.unit(raw["unit"], node, path))
            raise self.fail(
                "expected a relative date {ago: N, unit: U} / {from_now: N, unit: U} or a period"
                f" {{amount: N, unit: U}}, got keys {sorted(keys)}", node, path)
        if raw == "today":
            return RelativeDate("today")
        return raw

    def whole(self, raw: Any, node: yaml.Node, path: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise self.fail(f"expected a whole number of units (0 or more), got {raw!r}", node, path)
        return int(raw)

    def unit(self, raw: Any, node: yaml.Node, path: str) -> Any:
        if raw not in UNITS:
            raise self.fail(f"unit must be one of {', '.join(UNITS)}, got {raw!r}", node, path)
        return raw

    def event(self, fields: dict[str, yaml.Node], node: yaml.Node, path: str) -> EventCondition:
        self.check_keys(fields, ("event", "where", "within", "count", "aggregate"), node, path,
                        "an event condition")
        types = self.event_types(fields["event"], f"{path}.event")
        where = self.where(fields["where"], f"{path}.where") if "where" in fields else ()
        within = self.within(fields["within"], f"{path}.within") if "within" in fields else None
        count = self.count(fields["count"], f"{path}.count") if "count" in fields else None
        aggregate = (self.aggregate(fields["aggregate"], f"{path}.aggregate")
                     if "aggregate" in fields else None)
        return EventCondition(types, where, within, count, aggregate)

    def event_types(self, node: yaml.Node, path: str) -> tuple[str, ...] | None:
        """``event``: one type, a list of types, or "*" (None: every type)."""
        raw_types = self.plain(node, path)
        if raw_types == "*":
            return None
        if isinstance(raw_types, str) and raw_types:
            return (raw_types,)
        if (isinstance(raw_types, list) and raw_types
                and all(isinstance(t, str) and t for t in raw_types)):
            return tuple(dict.fromkeys(raw_types))
        raise self.fail("'event' takes an event type, a list of types, or \"*\"", node, path)

    def where(self, items: yaml.Node, path: str) -> tuple[AttributeCondition, ...]:
        """An event's or a step's ``where``: a list of attribute conditions on its fields."""
        if not isinstance(items, yaml.SequenceNode):
            raise self.fail("'where' takes a list of conditions", items, path)
        conditions = []
        for i, item in enumerate(items.value):
            item_path = f"{path}[{i}]"
            self.note(item, item_path)
            item_fields = self.mapping(item, item_path)
            self.condition(item, item_path)
            if "attribute" not in item_fields:
                raise self.fail("a 'where' condition needs 'attribute', 'op' and 'value'"
                                " (or 'field')", item, item_path)
            conditions.append(self.attribute(item_fields, item, item_path))
        return tuple(conditions)

    def sequence(self, node: yaml.Node, path: str) -> SequenceCondition:
        """``sequence: {within: ..., steps: [...]}``; the step count, gaps and ``absent`` are
        checked by the validator, which knows the rules (and reports them with the path)."""
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("steps", "within"), node, path,
                        "a sequence (expected steps, within)")
        if "steps" not in fields:
            raise self.fail("missing required key 'steps' (a list of 2 to 8 steps)", node,
                            f"{path}.steps")
        items = fields["steps"]
        if not isinstance(items, yaml.SequenceNode):
            raise self.fail("'steps' takes a list of steps", items, f"{path}.steps")
        steps = tuple(self.step(item, f"{path}.steps[{i}]") for i, item in enumerate(items.value))
        within = self.within(fields["within"], f"{path}.within") if "within" in fields else None
        return SequenceCondition(steps, within)

    def step(self, node: yaml.Node, path: str) -> SequenceStep:
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("event", "where", "gap", "absent"), node, path,
                        "a sequence step (expected event, where, gap, absent)")
        if "event" not in fields:
            raise self.fail("missing required key 'event'", node, f"{path}.event")
        types = self.event_types(fields["event"], f"{path}.event")
        where = self.where(fields["where"], f"{path}.where") if "where" in fields else ()
        gap = self.gap(fields["gap"], f"{path}.gap") if "gap" in fields else None
        absent = False
        if "absent" in fields:
            flag = self.plain(fields["absent"], f"{path}.absent")
            if not isinstance(flag, bool):
                raise self.fail(f"'absent' takes true or false, got {flag!r}", fields["absent"],
                                f"{path}.absent")
            absent = flag
        return SequenceStep(types, where, gap, absent)

    def gap(self, node: yaml.Node, path: str) -> Gap:
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("min", "max"), node, path, "a gap (expected min, max)")
        if not fields:
            raise self.fail("a gap takes 'min', 'max' or both", node, path)
        lengths = {key: self.duration(value, f"{path}.{key}") for key, value in fields.items()}
        return Gap(lengths.get("min"), lengths.get("max"))

    def duration(self, node: yaml.Node, path: str) -> Duration:
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("amount", "unit"), node, path,
                        "a gap length (expected amount, unit)")
        for key in ("amount", "unit"):
            if key not in fields:
                raise self.fail(f"missing required key {key!r}", node, f"{path}.{key}")
        amount = self.integer(fields["amount"], f"{path}.amount")
        if amount < 0:
            raise self.fail(f"a gap's amount must be 0 or more, got {amount}", fields["amount"],
                            f"{path}.amount")
        unit = self.plain(fields["unit"], f"{path}.unit")
        if unit not in GAP_UNITS:
            hint = (" (a gap is a fixed length: months and years vary)"
                    if unit in ("months", "years") else "")
            raise self.fail(f"a gap's unit must be one of {', '.join(GAP_UNITS)}, got {unit!r}"
                            + hint, fields["unit"], f"{path}.unit")
        return Duration(amount, unit)

    def within(self, node: yaml.Node, path: str) -> Window:
        self.note(node, path)
        fields = self.mapping(node, path)
        if set(fields) == {"last", "unit"}:
            amount = self.integer(fields["last"], f"{path}.last")
            unit = self.unit(self.plain(fields["unit"], f"{path}.unit"), fields["unit"],
                             f"{path}.unit")
            if amount < 0:
                raise self.fail("'last' must be 0 or more", fields["last"], f"{path}.last")
            return Window(last=Period(amount, unit))
        if set(fields) == {"between"}:
            bounds = self.value(fields["between"], f"{path}.between")
            if not isinstance(bounds, tuple) or len(bounds) != 2:
                raise self.fail("'between' takes [start, end]", fields["between"],
                                f"{path}.between")
            return Window(between=(bounds[0], bounds[1]))
        raise self.fail("'within' takes {last: N, unit: U} or {between: [start, end]}", node, path)

    def count(self, node: yaml.Node, path: str) -> CountRule:
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("op", "value", "distinct"), node, path, "a count")
        op = self.text(fields["op"], f"{path}.op") if "op" in fields else "at_least"
        if "value" not in fields:
            raise self.fail("missing required key 'value'", node, f"{path}.value")
        value = self.value(fields["value"], f"{path}.value")
        distinct = self.text(fields["distinct"], f"{path}.distinct") if "distinct" in fields else None
        return CountRule(op, value, distinct)

    def aggregate(self, node: yaml.Node, path: str) -> AggregateRule:
        self.note(node, path)
        fields = self.mapping(node, path)
        self.check_keys(fields, ("fn", "attribute", "op", "value"), node, path, "an aggregate")
        for key in ("fn", "attribute", "op", "value"):
            if key not in fields:
                raise self.fail(f"missing required key {key!r}", node, f"{path}.{key}")
        return AggregateRule(
            self.text(fields["fn"], f"{path}.fn"),
            self.text(fields["attribute"], f"{path}.attribute"),
            self.text(fields["op"], f"{path}.op"),
            self.value(fields["value"], f"{path}.value"),
        )


def load_segment_text(text: str, source: str = "<segment>",
                      default_id: str | None = None) -> tuple[Segment, dict[str, int]]:
    """Parse segment YAML; returns the segment and the YAML line of each node path."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise SegmentError(f"the file is too large ({len(text):,} characters; a segment file"
                           f" holds at most {MAX_DOCUMENT_BYTES:,})", source=source)
    if "\x00" in text:
        raise SegmentError("the file is not text (it contains NUL bytes)", source=source)
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise SegmentError(f"not valid YAML: {exc.problem or exc}", source=source,
                           line=line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (one line, not two)
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SegmentError(f"not valid YAML: character {exc.character!r} is not allowed in YAML",
                           source=source, line=line) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegmentError(f"not valid YAML: {first}", source=source) from None
    except RecursionError:
        raise SegmentError("the YAML is nested too deeply", source=source) from None
    if root is None:
        raise SegmentError("the file is empty; a segment needs at least a 'rule'", source=source)
    try:
        segment = reader.segment(root, default_id)
    except RecursionError:
        raise SegmentError("the rule is nested too deeply", source=source) from None
    return segment, reader.lines


def load_segment_file(path: str | Path) -> tuple[Segment, dict[str, int]]:
    """Read a segment file; the id defaults to a slug of the name, else of the file name."""
    return load_segment_text(read_text_file(path), str(path), default_id=Path(path).stem)


def read_text_file(path: str | Path) -> str:
    """A segment file's text (UTF-8), or a ``SegmentError`` that says why it cannot be read."""
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:  # a pipe is read once, a device may never end
        raise SegmentError(f"it is {kind}, not a file", source=str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SegmentError(f"cannot read the file ({exc.strerror})", source=str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SegmentError("the file is not UTF-8 text", source=str(path)) from None


# ---------------------------------------------------------------------- dumping


def dump_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [dump_value(v) for v in value]
    if isinstance(value, RelativeDate):
        if value.direction == "today":
            return "today"
        return {value.direction: value.amount, "unit": value.unit}
    if isinstance(value, Period):
        return {"amount": value.amount, "unit": value.unit}
    if isinstance(value, dt.datetime):
        return format_datetime(value).replace(" ", "T") + "Z"
    return value


def node_to_data(node: Node) -> dict[str, Any]:
    """A node as plain YAML-ready data, in the spec's key order."""
    if isinstance(node, AllOf):
        return {"all": [node_to_data(c) for c in node.children]}
    if isinstance(node, AnyOf):
        return {"any": [node_to_data(c) for c in node.children]}
    if isinstance(node, NotOf):
        return {"not": node_to_data(node.child)}
    if isinstance(node, SegmentRef):
        return {"segment": node.segment}
    if isinstance(node, AttributeCondition):
        data: dict[str, Any] = {"attribute": node.attribute, "op": node.op}
        if node.field is not None:
            data["field"] = node.field
        elif node.value is not None:
            data["value"] = dump_value(node.value)
        return data
    if isinstance(node, SequenceCondition):
        sequence: dict[str, Any] = {}
        if node.within is not None:
            sequence["within"] = window_to_data(node.within)
        sequence["steps"] = [step_to_data(step) for step in node.steps]
        return {"sequence": sequence}
    event: dict[str, Any] = {"event": types_to_data(node.types)}
    if node.where:
        event["where"] = [node_to_data(c) for c in node.where]
    if node.within is not None:
        event["within"] = window_to_data(node.within)
    if node.count is not None:
        count: dict[str, Any] = {"op": node.count.op, "value": dump_value(node.count.value)}
        if node.count.distinct:
            count["distinct"] = node.count.distinct
        event["count"] = count
    if node.aggregate is not None:
        agg = node.aggregate
        event["aggregate"] = {"fn": agg.fn, "attribute": agg.attribute, "op": agg.op,
                              "value": dump_value(agg.value)}
    return event


def types_to_data(types: tuple[str, ...] | None) -> Any:
    if types is None:
        return "*"
    return types[0] if len(types) == 1 else list(types)


def window_to_data(window: Window) -> dict[str, Any]:
    if window.last is not None:
        return {"last": window.last.amount, "unit": window.last.unit}
    return {"between": dump_value(window.between)}


def step_to_data(step: SequenceStep) -> dict[str, Any]:
    data: dict[str, Any] = {"event": types_to_data(step.types)}
    if step.where:
        data["where"] = [node_to_data(c) for c in step.where]
    if step.absent:
        data["absent"] = True
    if step.gap is not None:
        data["gap"] = {key: {"amount": length.amount, "unit": length.unit}
                       for key, length in (("min", step.gap.min), ("max", step.gap.max))
                       if length is not None}
    return data


def segment_to_data(segment: Segment) -> dict[str, Any]:
    data: dict[str, Any] = {"id": segment.id, "name": segment.name}
    if segment.description:
        data["description"] = segment.description
    data["rule"] = node_to_data(segment.rule)
    return data


class _Dumper(yaml.SafeDumper):
    """Quotes every string that this module's reader would not read back as that string."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    plain = yaml.ScalarNode("tag:yaml.org,2002:str", text, style="")
    needs_quotes = _Reader.scalar(plain) != text or text == "today"
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="'" if needs_quotes else None)


_Dumper.add_representer(str, _represent_text)


def _represent_as_written(dumper: yaml.SafeDumper, value: IntText | FloatText) -> yaml.ScalarNode:
    """A number as it was written (`007`, `1e3`), plain, so that reading it again gives it back."""
    tag = dumper.resolve(yaml.ScalarNode, value.text, (True, False))
    return dumper.represent_scalar(tag, value.text)


_Dumper.add_representer(IntText, _represent_as_written)
_Dumper.add_representer(FloatText, _represent_as_written)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)


def dump_segment(segment: Segment) -> str:
    """The segment as YAML; loading it again gives an equal segment."""
    return _dump(segment_to_data(segment))


def dump_node(node: Node) -> str:
    return _dump(node_to_data(node))
