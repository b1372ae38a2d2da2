"""The segment model: immutable rule-tree nodes and the values they hold.

A segment straight from YAML holds plain values (str, int, float, bool, lists
as tuples, ``RelativeDate``, ``Period``); validation against a store's schema
(``store.segments.validate``) returns the same node types with values made typed
(``datetime.date``, aware ``datetime.datetime``), which the compiler and the
reference evaluator consume.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Unit = Literal["days", "weeks", "months", "years"]
UNITS: Final[tuple[str, ...]] = ("days", "weeks", "months", "years")

STRING_OPS: Final = (
    "equals", "not_equals", "in", "not_in", "contains", "not_contains",
    "starts_with", "ends_with", "is_empty", "is_not_empty",
)
NUMBER_OPS: Final = (
    "equals", "not_equals", "greater_than", "greater_or_equal", "less_than", "less_or_equal",
    "between", "not_between", "in", "not_in", "is_empty", "is_not_empty",
)
BOOLEAN_OPS: Final = ("is_true", "is_false", "is_empty", "is_not_empty")
DATE_OPS: Final = (
    "on", "before", "after", "between", "in_last", "not_in_last", "in_next",
    "is_empty", "is_not_empty",
)
OPS_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "string": STRING_OPS,
    "integer": NUMBER_OPS,
    "number": NUMBER_OPS,
    "boolean": BOOLEAN_OPS,
    "date": DATE_OPS,
    "datetime": DATE_OPS,
}
# Each negative operator is the exact complement of its positive twin.
NEGATIVE_TWIN: Final[dict[str, str]] = {
    "not_equals": "equals",
    "not_in": "in",
    "not_contains": "contains",
    "not_between": "between",
    "not_in_last": "in_last",
    "is_not_empty": "is_empty",
}
NO_VALUE_OPS: Final = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
LIST_OPS: Final = frozenset({"in", "not_in"})
RANGE_OPS: Final = frozenset({"between", "not_between"})
PERIOD_OPS: Final = frozenset({"in_last", "not_in_last", "in_next"})

COUNT_OPS: Final = ("at_least", "at_most", "exactly", "between")
AGGREGATE_FNS: Final = ("sum", "avg", "min", "max")
AGGREGATE_OPS: Final = (
    "equals", "greater_than", "greater_or_equal", "less_than", "less_or_equal", "between",
)


@dataclass(frozen=True)
class RelativeDate:
    """``{ago: N, unit: U}``, ``{from_now: N, unit: U}`` or ``today``, resolved at the as-of date."""

    direction: Literal["ago", "from_now", "today"]
    amount: int = 0
    unit: Unit = "days"


@dataclass(frozen=True)
class Period:
    """``{amount: N, unit: U}``: the length of an ``in_last`` / ``in_next`` window."""

    amount: int
    unit: Unit


# Operators of a field comparison (``field:`` in place of ``value:``) by the left side's type.
FIELD_OPS_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "string": ("equals", "not_equals"),
    "boolean": ("equals", "not_equals"),
    "integer": ("equals", "not_equals", "greater_than", "greater_or_equal", "less_than",
                "less_or_equal"),
    "number": ("equals", "not_equals", "greater_than", "greater_or_equal", "less_than",
               "less_or_equal"),
    "date": ("equals", "not_equals", "on", "before", "after"),
    "datetime": ("equals", "not_equals", "on", "before", "after"),
}
# Types that compare with each other in a field comparison (integer and number mix; date and
# datetime mix; nothing else does).
TYPE_FAMILY: Final[dict[str, str]] = {
    "string": "string", "boolean": "boolean", "integer": "number", "number": "number",
    "date": "date", "datetime": "date",
}
PROFILE_PREFIX: Final = "profile."  # ``field: profile.NAME`` in an event's where


def comparable_types(left: str, right: str) -> bool:
    """Whether two attribute types may be compared by a field comparison."""
    return TYPE_FAMILY.get(left) is not None and TYPE_FAMILY.get(left) == TYPE_FAMILY.get(right)


@dataclass(frozen=True)
class AttributeCondition:
    """``attribute op value``, or with ``field`` set, ``attribute op <another field>``
    (``value`` is then None). In an event's ``where`` the field is an event field,
    ``ENTITY.FIELD``, or ``profile.NAME`` for a profile attribute."""

    attribute: str
    op: str
    value: Any = None
    field: str | None = None


@dataclass(frozen=True)
class Window:
    """``within``: either the last N units (``last``) or an inclusive ``between`` range."""

    last: Period | None = None
    between: tuple[Any, Any] | None = None


@dataclass(frozen=True)
class CountRule:
    op: str = "at_least"
    value: Any = 1  # int, or (low, high) for between
    distinct: str | None = None


@dataclass(frozen=True)
class AggregateRule:
    fn: str
    attribute: str
    op: str
    value: Any


@dataclass(frozen=True)
class EventCondition:
    """``event``: ``types`` None means every type (``"*"``)."""

    types: tuple[str, ...] | None
    where: tuple[AttributeCondition, ...] = ()
    within: Window | None = None
    count: CountRule | None = None
    aggregate: AggregateRule | None = None

    @property
    def effective_count(self) -> CountRule:
        """The count rule in force.

        Without ``count`` the rule is ``at_least 1`` ("did it"), except beside an
        ``aggregate``, which then stands alone: the spec's "the sum over no event
        is 0" makes "spent less than 100" include those who bought nothing.
        """
        if self.count is not None:
            return self.count
        return CountRule("at_least", 0) if self.aggregate is not None else CountRule()


@dataclass(frozen=True)
class SegmentRef:
    segment: str


GapUnit = Literal["minutes", "hours", "days", "weeks"]
GAP_UNITS: Final[tuple[str, ...]] = ("minutes", "hours", "days", "weeks")
GAP_UNIT_SECONDS: Final[dict[str, int]] = {
    "minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400,
}
MIN_STEPS: Final = 2
MAX_STEPS: Final = 8


@dataclass(frozen=True)
class Duration:
    """``{amount: N, unit: U}`` of a sequence gap: a fixed length (minutes to weeks)."""

    amount: int
    unit: GapUnit

    @property
    def seconds(self) -> int:
        return self.amount * GAP_UNIT_SECONDS[self.unit]


@dataclass(frozen=True)
class Gap:
    """Time since the previous step's event: at least ``min``, at most ``max`` (either optional)."""

    min: Duration | None = None
    max: Duration | None = None


@dataclass(frozen=True)
class SequenceStep:
    """One step: events of ``types`` (None: every type) passing ``where``; ``gap`` is the time
    since the previous step's event; ``absent`` ("and then did not") only on the last step."""

    types: tuple[str, ...] | None
    where: tuple[AttributeCondition, ...] = ()
    gap: Gap | None = None
    absent: bool = False


@dataclass(frozen=True)
class SequenceCondition:
    """``sequence``: events one per present step, in order, all inside ``within``."""

    steps: tuple[SequenceStep, ...]
    within: Window | None = None

    def prefix(self, size: int) -> EventCondition | SequenceCondition:
        """The condition of the first ``size`` steps, as the funnel counts "got this far":
        one step is the event condition it amounts to, more are a shorter sequence."""
        steps = self.steps[:size]
        if len(steps) == 1:
            first = steps[0]
            return EventCondition(first.types, first.where, self.within)
        return SequenceCondition(steps, self.within)


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class NotOf:
    child: Node


Node = AllOf | AnyOf | NotOf | AttributeCondition | EventCondition | SegmentRef | SequenceCondition
GROUPS: Final = (AllOf, AnyOf)


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    rule: Node
    description: str = ""
    source: str | None = field(default=None, compare=False)  # the file it came from


def slugify(text: str) -> str:
    """A lowercase id slug: ``Men over 50!`` -> ``men-over-50``."""
    normalized = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", normalized.lower()).strip("-")
    return slug or "segment"


SLUG_RE = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*\Z")


def children_of(node: Node) -> tuple[Node, ...]:
    """The direct child nodes of a node (groups and not); leaves have none."""
    if isinstance(node, AllOf | AnyOf):
        return node.children
    if isinstance(node, NotOf):
        return (node.child,)
    return ()


def child_path(parent_path: str, node: Node, index: int) -> str:
    """The node path of a child, as errors and per-node counts name it."""
    if isinstance(node, AllOf):
        return f"{parent_path}.all[{index}]"
    if isinstance(node, AnyOf):
        return f"{parent_path}.any[{index}]"
    return f"{parent_path}.not"


def walk(node: Node, path: str = "rule") -> list[tuple[str, Node]]:
    """Every node with its path, parents before children."""
    found = [(path, node)]
    for index, child in enumerate(children_of(node)):
        found.extend(walk(child, child_path(path, node, index)))
    return found


def referenced_segments(node: Node) -> set[str]:
    """Ids of the segments a rule tree refers to directly."""
    return {n.segment for _, n in walk(node) if isinstance(n, SegmentRef)}


# Operators that pin an attribute to one value (or a short list of values).
FIXING_OPS: Final = frozenset({"equals", "in", "is_true", "is_false"})


def fixed_attributes(node: Node) -> set[str]:
    """Attributes whose value every member shares: an equals/is_true/is_false condition (or
    an "in" of one value) the whole rule requires (directly, or inside "all" groups; not under any or not).

    A breakdown by one of them says nothing new ("Gender is male": 100% male)."""
    if isinstance(node, AttributeCondition):
        one_value = node.op != "in" or (isinstance(node.value, list | tuple)
                                         and len(node.value) == 1)
        return {node.attribute} if node.op in FIXING_OPS and one_value else set()
    if isinstance(node, AllOf):
        return set().union(*(fixed_attributes(child) for child in node.children))
    return set()


# ---------------------------------------------------------------------- count semantics
# Shared by the compiler (which shapes a query by whether profiles without events match)
# and the plain-words descriptions; the reference evaluator keeps its own versions.


def count_holds(count: CountRule, n: int) -> bool:
    """Whether |E| = n satisfies the count rule (events counted, or distinct values)."""
    if count.op == "at_least":
        return n >= count.value
    if count.op == "at_most":
        return n <= count.value
    if count.op == "exactly":
        return n == count.value
    low, high = count.value
    return bool(low <= n <= high)


def holds_at_zero(count: CountRule, aggregate: AggregateRule | None) -> bool:
    """Whether a profile with no event in E matches: count 0, sum 0, avg/min/max missing."""
    if not count_holds(count, 0):
        return False
    if aggregate is None:
        return True
    if aggregate.fn != "sum":
        return False
    return compare_number(0, aggregate.op, aggregate.value)


def compare_number(left: float, op: str, value: Any) -> bool:
    """``left <op> value`` for the numeric operators of an aggregate."""
    if op == "equals":
        return bool(left == value)
    if op == "greater_than":
        return bool(left > value)
    if op == "greater_or_equal":
        return bool(left >= value)
    if op == "less_than":
        return bool(left < value)
    if op == "less_or_equal":
        return bool(left <= value)
    if op == "between":
        return bool(value[0] <= left <= value[1])
    raise ValueError(f"numeric operator {op!r}")
