"""The reference evaluator: spec/segments.md in plain Python, one profile at a time.

It shares nothing with the SQL compiler except the calendar definitions of
``store.segments.timeutil``, so it can serve as the compiler's test oracle, and it is
the engine of the app's "why" panel (``explain``).

Values are typed Python values: str, int, float, bool, date, aware datetime,
or None for missing (an empty string counts as missing too). Paths of nodes in
a referenced segment's rule are written ``ID:rule...``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from store.engines.base import Connection
from store.engines.layout import quote_identifier
from store.errors import StoreError
from store.schema.catalog import AGE_SOURCE_KIND, Catalog
from store.schema.values import AttrType, from_epoch_seconds, parse_date, parse_datetime
from store.segments.describe import describe
from store.segments.model import (
    NEGATIVE_TWIN,
    PROFILE_PREFIX,
    AggregateRule,
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    Node,
    NotOf,
    Period,
    Segment,
    SegmentRef,
    SequenceCondition,
    SequenceStep,
    Window,
    child_path,
    children_of,
)
from store.segments.timeutil import age_on, as_of_date, last_window, next_window, resolve
from store.segments.validate import ResolvedSegment

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_ENTITY_BATCH = 500
_PROFILE_BATCH = 2000  # profiles read at once by load_all_profiles


# ---------------------------------------------------------------------- data


@dataclass(frozen=True)
class EventData:
    """One event: its type, its instant (whole seconds, UTC) and its field values.

    ``fields`` holds the event's own fields by name and, for every entity the
    event links to, ``ENTITY.FIELD`` values (all missing when the link is).
    """

    type: str
    ts: dt.datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileData:
    """One profile with everything a rule can look at.

    ``derived`` maps a derived attribute to its definition (``age:birth_date``);
    ``labels`` gives attributes' display labels for explanations.
    """

    pk: int
    id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    events: tuple[EventData, ...] = ()
    derived: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    """Why one node matched a profile or not: a label, what was looked at, the children."""

    path: str
    label: str
    matched: bool
    seen: dict[str, object] = field(default_factory=dict)
    children: list[Explanation] = field(default_factory=list)


# ---------------------------------------------------------------------- loading


def typed_value(raw: Any, attr_type: AttrType) -> Any:
    """A stored value as the typed Python value it stands for (None when missing)."""
    if raw is None:
        return None
    if attr_type == "string":
        text = raw if isinstance(raw, str) else str(raw)
        return text or None
    if attr_type == "boolean":
        return bool(raw)
    if attr_type == "integer":
        return int(raw) if isinstance(raw, float) and raw.is_integer() else raw
    if attr_type == "number":
        return float(raw) if isinstance(raw, int) else raw
    if not isinstance(raw, str):
        return None
    if attr_type == "date":
        return parse_date(raw)
    moment = parse_datetime(raw)
    if moment is None:  # a bare date in a datetime column means its midnight
        day = parse_date(raw)
        moment = None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    return moment


def event_instant(ts: float) -> dt.datetime:
    """A stored event time as an instant; one outside the years 1-9999 (written before
    imports refused them) is the earliest or the latest instant, so it never falls inside
    a window or before A wrongly."""
    try:
        return from_epoch_seconds(ts)
    except (OverflowError, ValueError):
        return (dt.datetime.max if ts > 0 else dt.datetime.min).replace(tzinfo=dt.UTC)


class _Loader:
    """Reads profiles, their events and linked entity rows with a few queries."""

    def __init__(self, conn: Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog
        self.stored = [a for a in catalog.attributes.values() if not a.derived_from]
        self.derived = {a.name: a.derived_from for a in catalog.attributes.values()
                        if a.derived_from}
        self.labels = {a.name: a.display_label for a in catalog.attributes.values()}
        self.type_names = {t.id: t.name for t in catalog.event_types.values()}
        self.fields = list(catalog.event_fields.values())
        self.entity_rows: dict[str, dict[Any, tuple[Any, ...]]] = {}

    # -- profiles
    def profile_sql(self) -> str:
        columns = ", ".join(["pk", *(quote_identifier(a.column) for a in self.stored)])
        return f"SELECT {columns} FROM profiles"

    def profile(self, row: tuple[Any, ...], events: list[EventData]) -> ProfileData:
        attributes = {a.name: typed_value(raw, a.type) for a, raw in zip(self.stored, row[1:],
                                                                          strict=True)}
        return ProfileData(pk=int(row[0]), id=str(attributes.get("id")), attributes=attributes,
                           events=tuple(events), derived=dict(self.derived), labels=self.labels)

    # -- events
    def event_sql(self) -> str:
        columns = ", ".join(["profile_pk", "type_id", "ts",
                             *(quote_identifier(f.column) for f in self.fields)])
        return f"SELECT {columns} FROM events"

    def load_entities(self, links: dict[str, set[Any]] | None) -> None:
        """Entity rows by key: all of them, or only the keys in ``links`` (entity -> keys)."""
        for name, entity in self.catalog.entities.items():
            columns = list(entity.fields.values())
            select = (f"SELECT key, {', '.join(quote_identifier(c.column) for c in columns)}"
                      f" FROM {quote_identifier(entity.table)}")
            rows: dict[Any, tuple[Any, ...]] = {}
            if links is None:
                batches: Iterable[list[Any] | None] = [None]
            else:
                keys = sorted(links.get(name, set()), key=repr)
                batches = [keys[i:i + _ENTITY_BATCH] for i in range(0, len(keys), _ENTITY_BATCH)]
            for batch in batches:
                if batch is None:
                    cursor = self.conn.execute(select)
                else:
                    marks = ", ".join("?" * len(batch))
                    cursor = self.conn.execute(f"{select} WHERE key IN ({marks})", batch)
                for row in cursor:
                    rows[row[0]] = tuple(typed_value(raw, c.type)
                                         for raw, c in zip(row[1:], columns, strict=True))
            self.entity_rows[name] = rows

    def link_keys(self, raw_rows: list[tuple[Any, ...]]) -> dict[str, set[Any]]:
        positions = {f.name: i + 3 for i, f in enumerate(self.fields)}
        keys: dict[str, set[Any]] = {}
        for name, entity in self.catalog.entities.items():
            position = positions.get(entity.link_field)
            found = keys.setdefault(name, set())
            if position is not None:
                found.update(row[position] for row in raw_rows if row[position] is not None)
        return keys

    def event(self, row: tuple[Any, ...]) -> EventData:
        raw_fields = dict(zip((f.name for f in self.fields), row[3:], strict=True))
        values = {f.name: typed_value(raw_fields[f.name], f.type) for f in self.fields}
        for name, entity in self.catalog.entities.items():
            link = raw_fields.get(entity.link_field)
            found = None if link is None else self.entity_rows.get(name, {}).get(link)
            for index, entity_field in enumerate(entity.fields):
                values[f"{name}.{entity_field}"] = None if found is None else found[index]
        type_name = self.type_names.get(row[1], f"#{row[1]}")
        return EventData(type=type_name, ts=event_instant(row[2]), fields=values)


def load_profile(conn: Connection, catalog: Catalog, pk: int) -> ProfileData:
    """One profile by its pk, with its events (oldest first) and linked entity fields."""
    loader = _Loader(conn, catalog)
    row = conn.execute(loader.profile_sql() + " WHERE pk = ?", (pk,)).fetchone()
    if row is None:
        raise StoreError(f"No profile with pk {pk}.")
    raw_events = conn.execute(loader.event_sql() + " WHERE profile_pk = ? ORDER BY ts, pk",
                              (pk,)).fetchall()
    loader.load_entities(loader.link_keys(raw_events))
    return loader.profile(row, [loader.event(r) for r in raw_events])


def load_all_profiles(conn: Connection, catalog: Catalog,
                      batch: int = _PROFILE_BATCH) -> Iterator[ProfileData]:
    """Every profile in pk order, read in keyset batches of profiles and then their events:
    memory stays bounded, and no result is left open while the next query runs (DuckDB keeps
    one result per connection)."""
    loader = _Loader(conn, catalog)
    loader.load_entities(None)
    after: int | None = None
    while True:
        if after is None:
            rows = conn.execute(loader.profile_sql() + " ORDER BY pk LIMIT ?", (batch,)).fetchall()
        else:
            rows = conn.execute(loader.profile_sql() + " WHERE pk > ? ORDER BY pk LIMIT ?",
                                (after, batch)).fetchall()
        if not rows:
            return
        first, after = int(rows[0][0]), int(rows[-1][0])
        events: dict[int, list[EventData]] = {}
        for raw in conn.execute(loader.event_sql() + " WHERE profile_pk >= ? AND profile_pk <= ?"
                                " ORDER BY profile_pk, ts, pk", (first, after)).fetchall():
            events.setdefault(int(raw[0]), []).append(loader.event(raw))  # of no profile: left out
        for row in rows:
            yield loader.profile(row, events.get(int(row[0]), []))


# ---------------------------------------------------------------------- operators


_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Lower-case ASCII letters only (the way SQLite's LIKE ignores case)."""
    return text.translate(_ASCII_FOLD)


def day_of(value: dt.date) -> dt.date:
    """date(x): the UTC date of a datetime, or the date itself."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value


def _instant(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return dt.datetime.combine(value, dt.time(), tzinfo=UTC)


def _compare_pair(x: dt.date, bound: Any) -> tuple[Any, Any]:
    """x and a bound made comparable: instants when the bound is a datetime, else dates."""
    if isinstance(bound, dt.datetime):
        return _instant(x), bound
    if isinstance(bound, dt.date):
        return day_of(x), bound
    raise ValueError(f"{bound!r} is not a date or datetime")


def _date_holds(op: str, x: dt.date, value: Any, today: dt.date) -> bool:
    if op in ("in_last", "in_next"):
        if not isinstance(value, Period):
            raise ValueError(f"{op!r} takes a period, not {value!r}")
        first, last = (last_window if op == "in_last" else next_window)(today, value)
        return first <= day_of(x) <= last
    if op == "between":
        low, high = value
        left, lo = _compare_pair(x, low)
        right, hi = _compare_pair(x, high)
        return bool(lo <= left and right <= hi)
    left, bound = _compare_pair(x, value)
    if op == "on":
        return bool(left == bound)
    if op == "before":
        return bool(left < bound)
    if op == "after":
        return bool(left > bound)
    raise ValueError(f"operator {op!r} does not apply to dates")


def _string_holds(op: str, x: str, value: Any) -> bool:
    if op == "equals":
        return x == value
    if op == "in":
        return x in value
    if op == "contains":
        return fold(value) in fold(x)
    if op == "starts_with":
        return fold(x).startswith(fold(value))
    if op == "ends_with":
        return fold(x).endswith(fold(value))
    raise ValueError(f"operator {op!r} does not apply to text")


def _number_holds(op: str, x: float, value: Any) -> bool:
    if op == "equals":
        return bool(x == value)
    if op == "in":
        return x in value
    if op == "greater_than":
        return bool(x > value)
    if op == "greater_or_equal":
        return bool(x >= value)
    if op == "less_than":
        return bool(x < value)
    if op == "less_or_equal":
        return bool(x <= value)
    if op == "between":
        return bool(value[0] <= x <= value[1])
    raise ValueError(f"operator {op!r} does not apply to numbers")


def value_holds(op: str, x: Any, value: Any, today: dt.date) -> bool:
    """Whether a typed value ``x`` (None = missing) satisfies ``op value`` at date ``today``.

    Positive operators never match missing; each negative operator is the exact
    complement of its positive twin, missing included.
    """
    if op in NEGATIVE_TWIN:
        return not value_holds(NEGATIVE_TWIN[op], x, value, today)
    if op == "is_empty":
        return x is None
    if x is None:
        return False
    if op == "is_true":
        return x is True
    if op == "is_false":
        return x is False
    value = resolve(value, today)
    if isinstance(x, bool):
        raise ValueError(f"operator {op!r} does not apply to booleans")
    if isinstance(x, str):
        return _string_holds(op, x, value)
    if isinstance(x, dt.date):
        return _date_holds(op, x, value, today)
    return _number_holds(op, x, value)


def field_holds(op: str, x: Any, y: Any) -> bool:
    """Whether ``x op y`` holds for two typed field values (None = missing).

    A positive operator needs both sides; ``not_equals`` is the complement of ``equals``.
    Dates against datetimes compare dates; two datetimes compare as instants.
    """
    if op == "not_equals":
        return not field_holds("equals", x, y)
    if x is None or y is None:
        return False
    if isinstance(x, dt.date) and isinstance(y, dt.date):
        if not (isinstance(x, dt.datetime) and isinstance(y, dt.datetime)):
            x, y = day_of(x), day_of(y)
        op = {"on": "equals", "before": "less_than", "after": "greater_than"}.get(op, op)
    if op == "equals":
        return bool(x == y)
    if isinstance(x, bool | str) or isinstance(y, bool | str):
        raise ValueError(f"operator {op!r} does not compare text or booleans")
    return _number_holds(op, x, y)


def micros(moment: dt.datetime) -> int:
    """An instant as whole microseconds since the epoch (exact arithmetic for gaps)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def count_holds(rule: CountRule, n: int) -> bool:
    if rule.op == "at_least":
        return bool(n >= rule.value)
    if rule.op == "at_most":
        return bool(n <= rule.value)
    if rule.op == "exactly":
        return bool(n == rule.value)
    if rule.op == "between":
        return bool(rule.value[0] <= n <= rule.value[1])
    raise ValueError(f"unknown count op {rule.op!r}")


# ---------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EventFacts:
    """What an event condition looked at for one profile."""

    candidates: int  # events of the type(s), up to the as-of instant, in the window
    matching: int  # |E|: those for which every where condition holds
    counted: int  # |E|, or the number of distinct values when the count is distinct
    aggregate: float | int | None  # the aggregate's value (None: missing)
    count_ok: bool
    aggregate_ok: bool

    @property
    def matched(self) -> bool:
        return self.count_ok and self.aggregate_ok


class _Evaluation:
    """One profile, one as-of instant, the segments that references may name."""

    def __init__(self, profile: ProfileData, refs: dict[str, Segment], as_of: dt.datetime) -> None:
        self.profile = profile
        self.refs = refs
        self.as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        self.today = as_of_date(self.as_of)
        self.ref_results: dict[str, bool] = {}
        self.catalog: Catalog | None = None  # only for the labels of explain()

    # -- attributes
    def attribute(self, name: str) -> Any:
        definition = self.profile.derived.get(name)
        if definition is None:
            value = self.profile.attributes.get(name)
            return None if value == "" else value
        kind, _, source = definition.partition(":")
        if kind != AGE_SOURCE_KIND:
            raise ValueError(f"unknown derived attribute definition {definition!r}")
        birth = self.profile.attributes.get(source)
        return None if birth is None else age_on(day_of(birth), self.today)

    # -- events
    def in_window(self, event: EventData, window: Window | None) -> bool:
        if window is None:
            return True
        if window.last is not None:
            first, last = last_window(self.today, window.last)
            return first <= day_of(event.ts) <= last
        assert window.between is not None
        low = resolve(window.between[0], self.today)
        high = resolve(window.between[1], self.today)
        left, lo = _compare_pair(event.ts, low)
        right, hi = _compare_pair(event.ts, high)
        return bool(lo <= left and right <= hi)

    def event_facts(self, node: EventCondition) -> EventFacts:
        types = None if node.types is None else set(node.types)
        candidates = [
            e for e in self.profile.events
            if (types is None or e.type in types) and e.ts <= self.as_of
            and self.in_window(e, node.within)
        ]
        chosen = [e for e in candidates if self.passes(node.where, e)]
        rule = node.effective_count
        if rule.distinct:
            counted = len({v for e in chosen if (v := e.fields.get(rule.distinct)) is not None})
        else:
            counted = len(chosen)
        aggregate_value: float | int | None = None
        aggregate_ok = True
        if node.aggregate is not None:
            aggregate_value = aggregate_of(node.aggregate, chosen)
            aggregate_ok = value_holds(node.aggregate.op, aggregate_value, node.aggregate.value,
                                       self.today)
        return EventFacts(len(candidates), len(chosen), counted, aggregate_value,
                          count_holds(rule, counted), aggregate_ok)

    def passes(self, where: tuple[AttributeCondition, ...], event: EventData) -> bool:
        """Whether every ``where`` condition holds for an event."""
        return all(self.where_holds(c, event) for c in where)

    def where_holds(self, cond: AttributeCondition, event: EventData) -> bool:
        x = event.fields.get(cond.attribute)
        if cond.field is None:
            return value_holds(cond.op, x, cond.value, self.today)
        if cond.field.startswith(PROFILE_PREFIX):
            y = self.attribute(cond.field.removeprefix(PROFILE_PREFIX))
        else:
            y = event.fields.get(cond.field)
        return field_holds(cond.op, x, y)

    # -- sequences
    def step_instants(self, step: SequenceStep, window: Window | None,
                      present: bool) -> list[int]:
        """The instants (microseconds) of the events that pass a step: up to A, and for a
        present step inside the sequence's window (an absent step's events are not bound
        by the window)."""
        types = None if step.types is None else set(step.types)
        return sorted(
            micros(e.ts) for e in self.profile.events
            if (types is None or e.type in types) and e.ts <= self.as_of
            and (not present or self.in_window(e, window)) and self.passes(step.where, e))

    def sequence_reach(self, node: SequenceCondition) -> list[list[int]]:
        """For each present step, the instants of its events that end a series e1 < ... < ei
        meeting every gap so far (empty from the first step nobody reaches)."""
        present = [s for s in node.steps if not s.absent]
        reached = [self.step_instants(present[0], node.within, True)]
        for step in present[1:]:
            low, high = gap_bounds(step)
            previous = reached[-1]
            reached.append([t for t in self.step_instants(step, node.within, True)
                            if any(p < t and t - p >= low and (high is None or t - p <= high)
                                   for p in previous)])
        return reached

    def sequence_holds(self, node: SequenceCondition) -> bool:
        last = self.sequence_reach(node)[-1]
        step = node.steps[-1]
        if not step.absent:
            return bool(last)
        low, high = gap_bounds(step)
        now = micros(self.as_of)
        forbidden = self.step_instants(step, None, False)
        for t in last:
            if high is not None and t + high > now:
                continue  # the gap has not elapsed yet
            end = now if high is None else t + high
            if not any(x > t and x - t >= low and x <= end for x in forbidden):
                return True
        return False

    # -- nodes
    def matches(self, node: Node) -> bool:
        if isinstance(node, AllOf):
            return all(self.matches(child) for child in node.children)
        if isinstance(node, AnyOf):
            return any(self.matches(child) for child in node.children)
        if isinstance(node, NotOf):
            return not self.matches(node.child)
        if isinstance(node, AttributeCondition):
            return self.attribute_holds(node)
        if isinstance(node, EventCondition):
            return self.event_facts(node).matched
        if isinstance(node, SequenceCondition):
            return self.sequence_holds(node)
        return self.reference(node)

    def attribute_holds(self, node: AttributeCondition) -> bool:
        x = self.attribute(node.attribute)
        if node.field is not None:
            return field_holds(node.op, x, self.attribute(node.field))
        return value_holds(node.op, x, node.value, self.today)

    def reference(self, node: SegmentRef) -> bool:
        if node.segment not in self.ref_results:
            self.ref_results[node.segment] = self.matches(self.referenced(node.segment).rule)
        return self.ref_results[node.segment]

    def referenced(self, segment_id: str) -> Segment:
        found = self.refs.get(segment_id)
        if found is None:
            raise ValueError(f"segment {segment_id!r} is referenced but was not resolved")
        return found

    # -- explanations
    def explain(self, node: Node, path: str) -> Explanation:
        if isinstance(node, AllOf | AnyOf | NotOf):
            children = [self.explain(child, child_path(path, node, i))
                        for i, child in enumerate(children_of(node))]
            hits = sum(c.matched for c in children)
            if isinstance(node, AllOf):
                matched = hits == len(children)
            elif isinstance(node, AnyOf):
                matched = hits > 0
            else:
                matched = not children[0].matched
            return Explanation(path, self.label(node), matched,
                               {"matched": hits, "of": len(children)}, children)
        if isinstance(node, AttributeCondition):
            value = self.attribute(node.attribute)
            seen: dict[str, object] = {node.attribute: value}
            if node.field is not None:
                seen[node.field] = self.attribute(node.field)
            for name in (node.attribute, node.field):
                definition = self.profile.derived.get(name or "")
                if definition:
                    source = definition.partition(":")[2]
                    seen[source] = self.profile.attributes.get(source)
            return Explanation(path, self.label(node), self.attribute_holds(node), seen)
        if isinstance(node, SequenceCondition):
            reached = self.sequence_reach(node)
            steps = sum(1 for instants in reached if instants)
            seen = {"steps reached": steps, "of": len(reached)}
            return Explanation(path, self.label(node), self.sequence_holds(node), seen)
        if isinstance(node, EventCondition):
            facts = self.event_facts(node)
            seen = {"events": facts.matching}
            if node.where:
                seen["before where"] = facts.candidates
            if node.effective_count.distinct:
                seen[f"distinct {node.effective_count.distinct}"] = facts.counted
            if node.aggregate is not None:
                seen[f"{node.aggregate.fn} of {node.aggregate.attribute}"] = facts.aggregate
            return Explanation(path, self.label(node), facts.matched, seen)
        referenced = self.referenced(node.segment)
        child = self.explain(referenced.rule, f"{node.segment}:rule")
        return Explanation(path, self.label(node), child.matched,
                           {"segment": referenced.name}, [child])

    def label(self, node: Node) -> str:
        """The node in the same plain words as the builder (``store.segments.describe``)."""
        names = {ref_id: ref.name for ref_id, ref in self.refs.items()}
        return describe(node, self.catalog, names).removesuffix(":")


def gap_bounds(step: SequenceStep) -> tuple[int, int | None]:
    """A step's gap in microseconds: (min, max), min 0 and max None when not given."""
    gap = step.gap
    low = gap.min.seconds * 1_000_000 if gap is not None and gap.min is not None else 0
    high = gap.max.seconds * 1_000_000 if gap is not None and gap.max is not None else None
    return low, high


def aggregate_of(rule: AggregateRule, events: list[EventData]) -> float | int | None:
    """sum/avg/min/max over the non-missing values; the sum of none is 0, the rest missing."""
    values = [v for e in events if (v := e.fields.get(rule.attribute)) is not None]
    if rule.fn == "sum":
        return sum(values)
    if not values:
        return None
    if rule.fn == "avg":
        return sum(values) / len(values)
    if rule.fn == "min":
        return min(values)
    if rule.fn == "max":
        return max(values)
    raise ValueError(f"unknown aggregate fn {rule.fn!r}")


def matches(profile: ProfileData, resolved: ResolvedSegment, as_of: dt.datetime) -> bool:
    """Whether the profile is in the segment's audience at ``as_of``."""
    return _Evaluation(profile, resolved.refs, as_of).matches(resolved.segment.rule)


def explain(profile: ProfileData, resolved: ResolvedSegment, as_of: dt.datetime,
            catalog: Catalog | None = None) -> Explanation:
    """The rule tree with, for each node, whether it matched and what was looked at.

    Labels use the catalog's attribute and event labels when one is given.
    """
    evaluation = _Evaluation(profile, resolved.refs, as_of)
    evaluation.catalog = catalog
    return evaluation.explain(resolved.segment.rule, "rule")


def evaluate_all(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
                 catalog: Catalog | None = None) -> set[int]:
    """The pks of every matching profile, by brute force (for small stores and tests)."""
    catalog = catalog or Catalog.load(conn)
    return {p.pk for p in load_all_profiles(conn, catalog) if matches(p, resolved, as_of)}
