"""The segment compiler: a validated rule tree becomes one SQL query with bound values.

Each node compiles to a *fragment* that denotes a set of profiles:

- ``Pred``: a two-valued condition on a ``profiles`` row (attribute
  conditions, and everything built from them with and/or/not);
- ``PkSet``: a query that returns the profile pks of the set by itself, e.g.
  ``SELECT profile_pk FROM events WHERE type_id = ? AND ts >= ? ... GROUP BY
  profile_pk HAVING count(*) >= ?``, cheap because it reads only the events
  index range it needs.

``all`` joins its parts with AND, turning a set into ``pk IN (set)`` (SQLite
reads such a set once and looks the profiles up by rowid, so a rare event
drives the whole query); several sets become one first (``common_set``), so
that only profiles in all of them are looked up; ``any`` of sets is a UNION;
``not`` is ``NOT (...)``
and a condition that holds for profiles without events (``at_most 0``) is
``pk NOT IN (profiles whose events break it)``, a complement counted as
``total - |set|``. The result is always ``SELECT pk FROM profiles WHERE
<predicate>``, which callers reshape for keyset pages, samples and
breakdowns; ``count_query`` uses the cheapest count found while compiling.
No correlated subquery is ever used: they were 10-50x slower on a million
profiles. See docs/engine.md.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from sqlglot import exp

from store.engines import dialects
from store.engines.base import Connection
from store.errors import InputError
from store.query import sqlbuild as sb
from store.query.predicates import Predicates, Target, next_day, window_or_open
from store.schema.activity import ACTIVITY_TABLE
from store.schema.catalog import Catalog, Entity
from store.schema.indexes import FieldIndex, field_indexes
from store.schema.values import UTC, day_start_epoch, epoch_from_micros, to_epoch_seconds
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
    Segment,
    SegmentRef,
    SequenceCondition,
    SequenceStep,
    Window,
    child_path,
    holds_at_zero,
)
from store.segments.timeutil import as_of_date, last_window, resolve
from store.segments.validate import ResolvedSegment

PROFILES = "profiles"
EVENTS = "events"
EVENTS_ALIAS = "ev"
PROBE_ALIAS = "probe"  # the events of one profile, asked from a profiles row (``probe``)
LATEST_ALIAS = "latest"  # one profile's row of the activity rollup (``latest_probe``)
PROFILE_ALIAS = "ev_profile"  # the profiles row of an event, for ``field: profile.NAME``
PREVIOUS_ALIAS = "prev"  # a sequence's previous step: (profile_pk, ts) of the series so far
TYPE_TIME_INDEX = "events_type_ts_profile"  # created with every store (store/engines/sqlite.py)
PROFILE_TIME_INDEX = "events_profile_ts"  # created with every store (store/engines/sqlite.py)
SHORT_WINDOW_SECONDS = 31 * 86400


@dataclass(frozen=True)
class CompiledQuery:
    """SQL selecting the distinct pks of the members (one column ``pk``), with its values.

    ``params`` match the ``?`` markers of ``sql`` in order; ``values`` are the
    values of the placeholders ``:p1``, ``:p2``, ... of ``expression`` (used to
    derive other queries from this one, and by ``pretty_sql``). The SQL is rendered when
    first asked for: a count runs the query of ``count_expression`` instead, and rendering
    is a good part of compiling.
    """

    expression: exp.Expression
    values: tuple[Any, ...] = ()
    dialect: str = "sqlite"
    count_expression: exp.Expression | None = None

    @cached_property
    def _rendered(self) -> tuple[str, tuple[Any, ...]]:
        try:
            return sb.render(self.expression, self.values, self.dialect)
        except RecursionError:
            raise InputError("the rule is nested too deeply to compile") from None

    @property
    def sql(self) -> str:
        return self._rendered[0]

    @property
    def params(self) -> tuple[Any, ...]:
        return self._rendered[1]


# ---------------------------------------------------------------------- fragments


@dataclass(frozen=True)
class Pred:
    """A two-valued condition on a profiles row (column names unqualified).

    ``complement`` is set when the condition is ``NOT pk IN (complement)``: the
    set is then counted as ``total - |complement|`` instead of by a scan, and
    negating it gives the set back.
    """

    expr: exp.Expression
    complement: exp.Query | None = None


@dataclass(frozen=True)
class PkSet:
    """A query whose rows are the pks of the set, each once (DISTINCT, GROUP BY or UNION).

    ``where`` is set when the query is ``SELECT pk FROM profiles WHERE where``,
    so it can be merged into an enclosing profiles scan instead of nested. ``narrow``
    marks a set likely to be small (see ``narrow_events``), which ``common_set`` may read
    profile by profile.
    """

    query: exp.Query
    where: exp.Expression | None = None
    narrow: bool = False


Fragment = Pred | PkSet


def common_set(sets: list[PkSet]) -> PkSet | None:
    """The profiles in every set, as one set, so that only they are looked up in the
    profiles table (8,500 instead of every member of the first set, 60,000, on the
    builder's segment).

    One set that reads the events table directly streams (the first that is not narrow,
    else the first): the narrow sets become ``AND ev.profile_pk IN (set)`` in its WHERE,
    so SQLite reads its type's events only for their profiles, by index seeks on
    (type_id, profile_pk[, ts]), instead of walking every event of the type (nested-mix
    128 -> 91 ms, six-conditions 60 -> 32 ms). Filtering whole profiles keeps every group
    intact, so a GROUP BY/HAVING set stays exact. A set that is not narrow is never read
    that way (one seek per member of 650,000 page viewers was 1.6x slower than today's
    plan): it filters the result, ``SELECT * FROM (streamed) WHERE c IN (set)``. None when
    that column cannot be named.
    """
    streams = [s for s in sets if reads_events(s.query)]
    stream = next((s for s in streams if not s.narrow), streams[0] if streams else sets[0])
    others = [s for s in sets if s is not stream]
    pushed = [s for s in others if s.narrow] if any(stream is s for s in streams) else []
    query = stream.query
    if pushed:
        query = cast(exp.Select, query).where(sb.conjunction(
            [sb.column("profile_pk", EVENTS_ALIAS).isin(query=s.query, copy=False)
             for s in pushed]), copy=False)
    rest = [s for s in others if not any(s is p for p in pushed)]
    narrow = any(s.narrow for s in sets)
    if not rest:
        return PkSet(query, narrow=narrow)
    name = output_column(query)
    if name is None:
        return None
    where = sb.conjunction([sb.column(name).isin(query=s.query, copy=False) for s in rest])
    source = exp.Subquery(this=query, alias=exp.TableAlias(this=sb.ident("s")))
    return PkSet(exp.select(exp.Star()).from_(source, copy=False).where(where, copy=False),
                 narrow=narrow)


def reads_events(query: exp.Query) -> bool:
    """Whether a set is ``SELECT ev.profile_pk FROM events ev ...`` (see ``_EventSource``)."""
    if not isinstance(query, exp.Select):
        return False
    source = query.args.get("from_") or query.args.get("from")
    table = source.this if source is not None else None
    return (isinstance(table, exp.Table) and table.name == EVENTS
            and table.alias == EVENTS_ALIAS)


def output_column(query: exp.Query) -> str | None:
    """The name of a one-column query's column (its left-most SELECT's), if it has one."""
    while isinstance(query, exp.SetOperation):
        query = query.this
    if not isinstance(query, exp.Select):
        return None
    names = query.named_selects
    if len(names) != 1:
        return None
    if names[0] != "*":
        return str(names[0])
    source = query.args.get("from_") or query.args.get("from")
    inner = source.this if source is not None else None
    return output_column(inner.this) if isinstance(inner, exp.Subquery) else None


def pk_column() -> exp.Column:
    return sb.column("pk")


def as_predicate(fragment: Fragment) -> exp.Expression:
    if isinstance(fragment, Pred):
        return fragment.expr
    if fragment.where is not None:
        return fragment.where
    return pk_column().isin(query=fragment.query, copy=False)


def outside(query: exp.Query) -> Pred:
    """The profiles not in a set."""
    return Pred(sb.negate(pk_column().isin(query=query.copy(), copy=False)), query)


def negated(fragment: Fragment) -> Fragment:
    if isinstance(fragment, Pred) and fragment.complement is not None:
        return PkSet(fragment.complement)
    if isinstance(fragment, PkSet) and fragment.where is None:
        return outside(fragment.query)
    return Pred(sb.negate(as_predicate(fragment)))


def count_expression(fragment: Fragment) -> exp.Select:
    """The cheapest exact count of a fragment's profiles.

    A set counts its own (distinct) rows, a complement is ``total - |set|``;
    both rely on events only pointing at existing profiles (the store's rule).
    """
    counted = exp.Count(this=exp.Star())
    if isinstance(fragment, PkSet) and fragment.where is None:
        return exp.select(counted).from_(exp.Subquery(this=fragment.query.copy(),
                                                      alias=exp.TableAlias(this=sb.ident("s"))),
                                         copy=False)
    if isinstance(fragment, Pred) and fragment.complement is not None:
        everyone = exp.Subquery(this=exp.select(counted.copy()).from_(sb.table(PROFILES),
                                                                       copy=False))
        inside = exp.Subquery(this=count_expression(PkSet(fragment.complement)))
        return exp.select(exp.Sub(this=everyone, expression=inside))
    return profiles_select(as_predicate(fragment).copy(), counted)


def profiles_select(where: exp.Expression, *columns: exp.Expression) -> exp.Select:
    """``SELECT pk FROM profiles [WHERE where]`` (the WHERE is left out when always true).

    The profiles are read ``NOT INDEXED`` (see ``attribute_indexes_mislead``)
    when an attribute index would be a trap, or when events are probed per profile.
    """
    source = sb.table(PROFILES)
    if attribute_indexes_mislead(where):
        source.set("indexed", False)
    query = exp.select(*(columns or (pk_column(),))).from_(source, copy=False)
    return query if sb.is_true(where) else query.where(where, copy=False)


def attribute_indexes_mislead(where: exp.Expression) -> bool:
    """Whether the profile attribute indexes (store/schema/indexes.py) must stay unused for ``where``.

    They serve one condition (or an OR of conditions, or ranges on one column)
    well. In an AND they mislead: this SQLite has no STAT4, so the planner
    knows no value's frequency and takes an index on a common value (gender,
    a boolean) for a selective one, then reads half the table through it
    (1.3-15x slower than a scan on 1M profiles, worst with ANALYZE). So an
    AND that needs a set (``pk IN (set)``: the set drives, through rowid
    lookups) or tests two or more columns reads the table in pk order.
    """
    if has_probe(where):
        return True
    terms = and_terms(where)
    if len(terms) < 2:
        return False
    if any(is_pk_set(term) for term in terms):
        return True
    return len(profile_columns(where) - {"pk"}) >= 2


def has_probe(where: exp.Expression) -> bool:
    """Whether a condition asks the events profile by profile (``_Compiler.probe``): the
    profiles must then come in pk order, so the probes walk (profile_pk, ts) forward
    (0.49 s on 1M profiles; 1.7 s in the random pk order of a sign-up date index).
    An EXISTS inside a set's query (a sequence's absent step) is no such probe."""
    pending = [where]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Exists):
            return True
        if not isinstance(node, exp.Query):
            pending.extend(node.iter_expressions())
    return False


def profile_columns(where: exp.Expression) -> set[str]:
    """The profiles columns a condition reads (not those of its subqueries)."""
    found: set[str] = set()
    pending = [where]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Column):
            found.add(node.name)
        elif not isinstance(node, exp.Query):
            pending.extend(node.iter_expressions())
    return found


def and_terms(where: exp.Expression) -> list[exp.Expression]:
    """The top-level terms of an AND (the expression itself when it is no AND)."""
    terms: list[exp.Expression] = []
    pending = [where]
    while pending:
        term = pending.pop()
        if isinstance(term, exp.Paren) and isinstance(term.this, exp.And | exp.Paren):
            pending.append(term.this)
        elif isinstance(term, exp.And):
            pending.extend((term.expression, term.this))
        else:
            terms.append(term)
    return terms


def is_pk_set(term: exp.Expression) -> bool:
    """``pk IN (query)``."""
    return (isinstance(term, exp.In) and term.args.get("query") is not None
            and isinstance(term.this, exp.Column) and term.this.name == "pk"
            and not term.this.table)


def in_pk_order(query: exp.Select) -> exp.Select:
    """The profiles read in pk order, no attribute index (for keyset pages and streams):
    a page then stops after ``limit`` matching rows instead of reading every match from
    an index and sorting them (20-40 ms for the first page of a wide range)."""
    source = query.args.get("from_") or query.args.get("from")
    if source is not None and isinstance(source.this, exp.Table):
        source.this.set("indexed", False)
    return query


# ---------------------------------------------------------------------- compiler


@dataclass
class _Compiler:
    catalog: Catalog
    refs: dict[str, Segment]
    as_of: dt.datetime
    binder: sb.Binder = field(default_factory=sb.Binder)
    stack: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            self.as_of = self.as_of.replace(tzinfo=UTC)
        self.today = as_of_date(self.as_of)
        self.as_of_epoch = to_epoch_seconds(self.as_of)
        self.predicates = Predicates(self.binder, self.today)

    # -- nodes ---------------------------------------------------------------------
    def node(self, node: Node, path: str) -> Fragment:
        if isinstance(node, AllOf):
            shared = self.shared_events(node, path)
            parts: list[Fragment] = []
            for i, child in enumerate(node.children):
                if i not in shared:
                    parts.append(self.node(child, child_path(path, node, i)))
                elif (merged := shared[i]) is not None:
                    parts.append(merged)
            return self.all_of(parts)
        if isinstance(node, AnyOf):
            return self.any_of([self.node(c, child_path(path, node, i))
                                for i, c in enumerate(node.children)])
        if isinstance(node, NotOf):
            return negated(self.node(node.child, f"{path}.not"))
        if isinstance(node, AttributeCondition):
            left = self.attribute(node.attribute, path)
            if node.field is not None:
                return Pred(self.predicates.fields(node.op, left,
                                                   self.attribute(node.field, path, "field")))
            return Pred(self.predicates.condition(node, left, path))
        if isinstance(node, EventCondition):
            return self.event(node, path)
        if isinstance(node, SequenceCondition):
            return self.sequence(node, f"{path}.sequence")
        if isinstance(node, SegmentRef):
            return self.reference(node, path)
        raise TypeError(f"not a rule node: {node!r}")

    def all_of(self, parts: list[Fragment]) -> Fragment:
        """AND: a lone set stays a set; sets with conditions become ``pk IN (set)`` terms;
        profiles outside several sets are the profiles outside their union."""
        if len(parts) == 1:
            return parts[0]
        parts = [p for p in parts if not (isinstance(p, Pred) and sb.is_true(p.expr))]
        if len(parts) == 1:
            return parts[0]
        excluded = [p.complement for p in parts if isinstance(p, Pred) and p.complement is not None]
        if parts and len(excluded) == len(parts):
            return outside(sb.union(excluded))
        alone = [p for p in parts if isinstance(p, PkSet) and p.where is None]
        if len(alone) >= 2 and (common := common_set(alone)) is not None:
            parts = [common, *(p for p in parts if not (isinstance(p, PkSet) and p.where is None))]
            if len(parts) == 1:
                return common
        sets = [p for p in parts if isinstance(p, PkSet)]
        # Probes last: SQLite tests the terms in this order, so a probe then runs only for
        # the profiles the cheap column tests let through (0.8 -> 0.5 s when a third pass).
        conditions = sorted((as_predicate(p) for p in parts if isinstance(p, Pred)), key=has_probe)
        if not sets:
            return Pred(sb.conjunction(conditions))
        # Sets first: SQLite drives the scan from the first `pk IN (...)` it can use.
        where = sb.conjunction([as_predicate(p) for p in sets] + conditions)
        if sb.is_false(where):
            return Pred(where)
        return PkSet(profiles_select(where), where)

    def any_of(self, parts: list[Fragment]) -> Fragment:
        """OR: sets alone are a UNION; profiles outside any of several sets are the profiles
        outside their intersection; otherwise one profiles scan with ``pk IN`` terms."""
        if len(parts) == 1:
            return parts[0]
        parts = [p for p in parts if not (isinstance(p, Pred) and sb.is_false(p.expr))]
        if len(parts) == 1:
            return parts[0]
        if parts and all(isinstance(p, PkSet) for p in parts):
            sets = [p for p in parts if isinstance(p, PkSet)]
            return PkSet(sb.union([p.query for p in sets]), narrow=all(p.narrow for p in sets))
        excluded = [p.complement for p in parts if isinstance(p, Pred) and p.complement is not None]
        if parts and len(excluded) == len(parts):
            return outside(sb.intersect(excluded))
        return Pred(sb.disjunction([as_predicate(p) for p in parts]))

    def reference(self, node: SegmentRef, path: str) -> Fragment:
        """A saved segment, inlined: its rule compiled at the same as-of instant."""
        segment = self.refs.get(node.segment)
        if segment is None:
            raise InputError(f"{path}: segment {node.segment!r} was not resolved")
        if node.segment in self.stack:
            raise InputError(f"{path}: segment references form a cycle: "
                             + " -> ".join((*self.stack, node.segment)))
        self.stack = (*self.stack, node.segment)
        try:
            return self.node(segment.rule, path)
        finally:
            self.stack = self.stack[:-1]

    def attribute(self, name: str, path: str, what: str = "attribute") -> Target:
        return attribute_target(self.catalog, name, f"{path}.{what}")

    # -- sequences -----------------------------------------------------------------
    def sequence(self, node: SequenceCondition, path: str) -> Fragment:
        """Profiles with a series of events, one per present step, in order and within the
        gaps (spec: Sequences).

        Each present step is one query of the (profile_pk, ts) pairs that end a series so
        far: the step's events joined to the previous step's pairs of the same profile,
        earlier and within the gap. Keeping each step's pairs DISTINCT keeps the work
        linear in the steps instead of multiplying every step's events. An absent last step
        keeps the pairs that no later event of that step follows within its gap
        (``LEFT JOIN ... IS NULL``), once the gap has elapsed.
        """
        present = [step for step in node.steps if not step.absent]
        absent = node.steps[-1] if node.steps[-1].absent else None
        stage: exp.Select | None = None
        for index, step in enumerate(present):
            keep_time = absent is not None or index < len(present) - 1
            stage = self.sequence_stage(step, node.within, f"{path}.steps[{index}]", stage,
                                        keep_time)
        assert stage is not None
        if absent is not None:
            stage = self.absent_stage(absent, stage, f"{path}.steps[{len(node.steps) - 1}]")
        narrow = any(step.where for step in present) or self.window_span(
            EventCondition(None, (), node.within), path)[2]
        return PkSet(stage, narrow=narrow)

    def sequence_stage(self, step: SequenceStep, within: Window | None, path: str,
                       previous: exp.Select | None, keep_time: bool) -> exp.Select:
        """``SELECT DISTINCT ev.profile_pk[, ev.ts]`` of the step's events (type, where, the
        sequence's window, never after A) that follow a pair of ``previous`` within the gap."""
        source = _EventSource(self.catalog, path)
        filters, hint = self.event_filters(EventCondition(step.types, step.where, within),
                                           source, path)
        events = source.select(filters, hint if previous is None else None)
        if keep_time:
            events = events.select(sb.column("ts", EVENTS_ALIAS), copy=False)
        if previous is not None:
            prior = exp.Subquery(this=previous, alias=exp.TableAlias(this=sb.ident(PREVIOUS_ALIAS)))
            later = sb.column("ts", EVENTS_ALIAS)
            on = [sb.column("profile_pk", PREVIOUS_ALIAS).eq(sb.column("profile_pk", EVENTS_ALIAS)),
                  *self.gap_terms(step, later)]
            events = events.join(prior, on=sb.conjunction(on), join_type="inner", copy=False)
        return events.distinct(copy=False)

    def gap_terms(self, step: SequenceStep, later: exp.Expression) -> list[exp.Expression]:
        """``later`` strictly after the previous step's ts, at least ``min`` and at most ``max``
        after it (epoch seconds: adding whole seconds to a stored time is exact)."""
        before = sb.column("ts", PREVIOUS_ALIAS)
        terms: list[exp.Expression] = [exp.GT(this=later.copy(), expression=before.copy())]
        gap = step.gap
        if gap is not None and gap.min is not None and gap.min.seconds > 0:
            terms.append(exp.GTE(this=later.copy(), expression=exp.Add(
                this=before.copy(), expression=self.binder.bind(gap.min.seconds))))
        if gap is not None and gap.max is not None:
            terms.append(exp.LTE(this=later.copy(), expression=exp.Add(
                this=before.copy(), expression=self.binder.bind(gap.max.seconds))))
        return terms

    def absent_stage(self, step: SequenceStep, previous: exp.Select, path: str) -> exp.Select:
        """The profiles of the ``previous`` pairs that no event of the absent step follows within
        its gap (up to A without a max), whose gap (with a max) has elapsed by A.

        ``NOT EXISTS`` asks the events of one pair's profile after its time: an index seek
        on (profile, time) per pair, where a LEFT JOIN to the step's events scanned them
        all for every pair (8.6 s instead of well under one on 50,000 profiles)."""
        source = _EventSource(self.catalog, path)
        filters, _ = self.event_filters(EventCondition(step.types, step.where, None), source, path)
        filters.append(sb.column("profile_pk", EVENTS_ALIAS).eq(
            sb.column("profile_pk", PREVIOUS_ALIAS)))
        filters.extend(self.gap_terms(step, sb.column("ts", EVENTS_ALIAS)))
        following = source.select(filters)
        prior = exp.Subquery(this=previous, alias=exp.TableAlias(this=sb.ident(PREVIOUS_ALIAS)))
        terms = [sb.negate(exp.Exists(this=following))]
        if step.gap is not None and step.gap.max is not None:
            elapsed = exp.Add(this=sb.column("ts", PREVIOUS_ALIAS),
                              expression=self.binder.bind(step.gap.max.seconds))
            terms.append(exp.LTE(this=elapsed, expression=self.binder.bind(self.as_of_epoch)))
        query = exp.select(sb.column("profile_pk", PREVIOUS_ALIAS)).from_(prior, copy=False)
        return query.where(sb.conjunction(terms), copy=False).distinct(copy=False)

    # -- events --------------------------------------------------------------------
    def event(self, node: EventCondition, path: str) -> Fragment:
        """Profiles whose events E (type, time, where) satisfy count and aggregate."""
        source = _EventSource(self.catalog, path)
        filters, hint = self.event_filters(node, source, path)
        count = node.effective_count
        aggregate = node.aggregate
        distinct = source.target(count.distinct, "count.distinct") if count.distinct else None
        measured = (source.target(aggregate.attribute, "aggregate.attribute")
                    if aggregate is not None else None)
        smallest = 1  # the least |E| (or distinct count) of a profile with events in E
        if distinct is not None and aggregate is None:
            # COUNT(DISTINCT) ignores missing values: keep only events that have one.
            filters.append(sb.not_null(distinct.expr))
        elif distinct is not None:
            smallest = 0
        always = aggregate is None and count_always(count, smallest)
        never = count_never(count, smallest)
        at_zero = holds_at_zero(count, aggregate)
        if at_zero and always:
            return Pred(sb.TRUE.copy())
        if not at_zero and never:
            return Pred(sb.FALSE.copy())
        if (always or never) and self.probes(node, path):
            exists = self.probe(node, path)
            return Pred(sb.negate(exists) if at_zero else exists)
        if not (always or never):
            hint = self.grouped_hint(node, source, hint, path)
        events = source.select(filters, hint)
        if always or never:  # every profile with events in E matches / fails
            # DISTINCT dedupes as it goes; GROUP BY would sort every event first.
            group = events.distinct(copy=False)
        else:
            having = self.having(count, aggregate, distinct, measured)
            group = self.grouped(events, sb.negate(having) if at_zero else having)
        # Profiles without events match when the zero state does: complement of the failing.
        return outside(group) if at_zero else PkSet(group, narrow=self.narrow_events(node, path))

    def probes(self, node: EventCondition, path: str) -> bool:
        """Whether "has an event of any type in a wide window (or ever)" is best asked profile
        by profile: a wide window of every type holds millions of events (six months: 2.6M
        of 10.6M) whose distinct profiles cost a temp B-tree of 600,000 entries (1.2-1.5 s
        for "no activity in six months" on 1M profiles), while one seek per profile in
        (profile_pk, ts), in pk order, takes 0.45 s for all of them. A short window (a week:
        165,000 events, 55 ms as a set) stays a set."""
        return (node.types is None and not reads_event_rows(node)
                and not self.window_span(node, path)[2])

    def probe(self, node: EventCondition, path: str) -> exp.Exists:
        """``EXISTS (SELECT 1 FROM events probe INDEXED BY events_profile_ts WHERE
        probe.profile_pk = profiles.pk AND probe.ts BETWEEN low AND A)``: a condition on the
        profiles row, which the enclosing scan reads in pk order (``has_probe``).

        When the window reaches the store's latest event and the per-profile rollup is
        current (``Catalog.activity_until``), the profile's latest event time answers instead
        (``latest_probe``). A window that ends earlier keeps asking the events: most profiles'
        latest event would then lie after it, and each would be asked the events anyway."""
        low, upper, _ = self.window_span(node, path)
        until = self.catalog.activity_until
        if until is not None and upper >= until:
            return self.latest_probe(low, upper, sb.column("pk", PROFILES))
        return exp.Exists(this=self.events_probe(low, upper, sb.column("pk", PROFILES)))

    def events_probe(self, low: float | None, upper: float,
                     profile: exp.Expression) -> exp.Select:
        """The events of ``profile`` with ``low <= ts <= upper``, read by (profile_pk, ts)."""
        events = sb.table(EVENTS, PROBE_ALIAS)
        events.set("indexed", sb.ident(PROFILE_TIME_INDEX))
        ts = sb.column("ts", PROBE_ALIAS)
        terms: list[exp.Expression] = [sb.column("profile_pk", PROBE_ALIAS).eq(profile)]
        if low is not None:
            terms.append(exp.GTE(this=ts.copy(), expression=self.binder.bind(low)))
        terms.append(exp.LTE(this=ts, expression=self.binder.bind(upper)))
        return exp.select(exp.Literal.number(1)).from_(events, copy=False).where(
            sb.conjunction(terms), copy=False)

    def latest_probe(self, low: float | None, upper: float, profile: exp.Expression) -> exp.Exists:
        """``EXISTS (SELECT 1 FROM profile_activity latest WHERE latest.profile_pk =
        profiles.pk AND latest.last_ts >= low AND (latest.last_ts <= upper OR (events of
        the profile in the window, asked only when its latest event lies after upper)))``.

        Exact at any as-of instant: a latest event inside the window is an event inside it,
        none at or after ``low`` means none in the window, and only a latest event after
        ``upper`` leaves the question to the events. The repeated ``last_ts > upper`` inside
        the events' subquery lets an engine that joins subqueries instead of running them row
        by row (DuckDB) see that it has no profile to ask, and skip the events."""
        last = sb.column("last_ts", LATEST_ALIAS)
        later = exp.GT(this=last.copy(), expression=self.binder.bind(upper))
        events = self.events_probe(low, upper, sb.column("profile_pk", LATEST_ALIAS))
        events.where(later, copy=False)
        inside = exp.or_(exp.LTE(this=last.copy(), expression=self.binder.bind(upper)),
                         exp.Exists(this=events), copy=False)
        terms: list[exp.Expression] = [sb.column("profile_pk", LATEST_ALIAS).eq(profile)]
        if low is not None:
            terms.append(exp.GTE(this=last.copy(), expression=self.binder.bind(low)))
        terms.append(exp.Paren(this=inside))
        query = exp.select(exp.Literal.number(1)).from_(
            sb.table(ACTIVITY_TABLE, LATEST_ALIAS), copy=False).where(
            sb.conjunction(terms), copy=False)
        return exp.Exists(this=query)

    def shared_events(self, node: AllOf, path: str) -> dict[int, Fragment | None]:
        """Children of an ``all`` that are event conditions on the same events E, at least
        one of them needing an event: one grouping of E checks them all (their HAVING
        conditions joined by AND). Returns the merged fragment at the first such child's
        index and None at the others'."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, child in enumerate(node.children):
            if isinstance(child, EventCondition):
                groups.setdefault((child.types, child.where, child.within), []).append(index)
        shared: dict[int, Fragment | None] = {}
        for indexes in groups.values():
            members = [node.children[i] for i in indexes]
            events = [m for m in members if isinstance(m, EventCondition)]
            if len(events) < 2 or all(holds_at_zero(e.effective_count, e.aggregate)
                                      for e in events):
                continue
            shared[indexes[0]] = self.event_group(
                [(e, child_path(path, node, i)) for e, i in zip(events, indexes, strict=True)])
            shared.update(dict.fromkeys(indexes[1:]))
        return shared

    def event_group(self, members: list[tuple[EventCondition, str]]) -> Fragment:
        """Profiles with events in the members' common E whose group passes every member's
        count and aggregate (a profile without events fails the member that needs one)."""
        first, path = members[0]
        source = _EventSource(self.catalog, path)
        reads_rows = any(reads_event_rows(node) for node, _ in members)
        filters, hint = self.event_filters(first, source, path, reads_rows)
        terms = []
        for node, member_path in members:
            source.path = member_path
            count, aggregate = node.effective_count, node.aggregate
            distinct = source.target(count.distinct, "count.distinct") if count.distinct else None
            measured = (source.target(aggregate.attribute, "aggregate.attribute")
                        if aggregate is not None else None)
            terms.append(self.having(count, aggregate, distinct, measured))
        events = source.select(filters, self.grouped_hint(first, source, hint, path))
        return PkSet(self.grouped(events, sb.conjunction(terms)),
                     narrow=self.narrow_events(first, path))

    def event_filters(self, node: EventCondition, source: _EventSource, path: str,
                      reads_rows: bool | None = None
                      ) -> tuple[list[exp.Expression], str | bool | None]:
        """Type, time window (never after A) and ``where`` conditions of E, and the index
        hint for reading them (see ``index_hint``)."""
        low, upper, short = self.window_span(node, path)
        if reads_rows is None:
            reads_rows = reads_event_rows(node)
        hint = index_hint(node.types is not None, low is not None, short, reads_rows)
        every_type = node.types is None and hint != TYPE_TIME_INDEX
        filters = [self.type_filter(node.types, path, every_type)]
        ts = sb.column("ts", EVENTS_ALIAS)
        if low is not None:
            filters.append(exp.GTE(this=ts.copy(), expression=self.binder.bind(low)))
        filters.append(exp.LTE(this=ts.copy(), expression=self.binder.bind(upper)))
        for index, cond in enumerate(node.where):
            where_path = f"{path}.where[{index}]"
            target = source.target(cond.attribute, f"where[{index}].attribute")
            if cond.field is not None:  # may read other tables: never an entity restriction
                other = source.target(cond.field, f"where[{index}].field")
                filters.append(self.predicates.fields(cond.op, target, other))
                continue
            predicate = self.predicates.condition(cond, target, where_path)
            entity = source.entity_of(cond.attribute)
            if entity is not None and false_when_missing(cond.op):
                source.restrict(entity, predicate)
            else:
                filters.append(predicate)
        return filters, hint

    def window_span(self, node: EventCondition, path: str) -> tuple[float | None, float, bool]:
        """The window's epoch bounds (never after A) and whether it is short."""
        low, high = self.window_epochs(node.within, path)
        upper = self.as_of_epoch if high is None else min(high, self.as_of_epoch)
        return low, upper, low is not None and upper - low <= SHORT_WINDOW_SECONDS

    def narrow_events(self, node: EventCondition, path: str) -> bool:
        """Whether an event condition's profiles are likely few: a short window or a
        ``where`` condition. A guess (no statistics), used only to choose which of several
        sets is read profile by profile (``common_set``)."""
        return bool(node.where) or self.window_span(node, path)[2]

    @cached_property
    def field_indexes(self) -> dict[int, FieldIndex]:
        """The event types' covering indexes the catalog recommends (store/schema/indexes.py)."""
        return field_indexes(self.catalog)

    def grouped_hint(self, node: EventCondition, source: _EventSource, hint: str | bool | None,
                     path: str) -> str | bool | None:
        """The hint for events grouped per profile (a count or aggregate to test).

        A wide window of one type that reads only fields of that type's covering index
        (``events_type_<id>_fields``) is left to the planner: it reads that index, in profile
        order and without table rows, when the store has it (405 -> 90 ms for a distinct
        count of a year's orders on 1M profiles), and groups through (type_id, profile_pk,
        ts) otherwise, as fast as the (type_id, ts) index plus a sort of the year's events.
        SQLite only uses a partial index whose WHERE the query implies; with the type id a
        bound value it prepares the statement again once the value is bound, and does.
        """
        if hint != TYPE_TIME_INDEX or node.types is None or len(node.types) != 1:
            return hint
        if self.window_span(node, path)[2]:
            return hint
        index = self.field_indexes.get(self.catalog.event_types[node.types[0]].id)
        if index is None or not source.fields <= set(index.fields):
            return hint
        return None

    def type_filter(self, types: tuple[str, ...] | None, path: str,
                    unfiltered: bool) -> exp.Expression:
        """``type_id IN (...)``; "*" lists every type only when the (type_id, ts) index is
        to be read, and is no condition at all otherwise."""
        if types is not None:
            unknown = [t for t in types if t not in self.catalog.event_types]
            if unknown:
                raise InputError(f"{path}.event: unknown event type {unknown[0]!r}")
        ids = self.catalog.event_type_ids(types)
        if not ids:
            return sb.FALSE.copy()
        if unfiltered:
            return sb.TRUE.copy()
        type_id = sb.column("type_id", EVENTS_ALIAS)
        if len(ids) == 1:
            return type_id.eq(self.binder.bind(ids[0]))
        return type_id.isin(*(self.binder.bind(i) for i in ids), copy=False)

    def window_epochs(self, within: Window | None, path: str) -> tuple[float | None, float | None]:
        """The inclusive epoch-second bounds of ``within`` (None: open)."""
        if within is None:
            return None, None
        if within.last is not None:
            first, _ = window_or_open(last_window, self.today, within.last)
            return (None if first is None else day_start_epoch(first)), None
        assert within.between is not None
        try:
            bounds: Any = resolve(within.between, self.today)
        except (ValueError, OverflowError):
            raise InputError(f"{path}.within.between: a relative date falls outside the"
                             f" calendar (as of {self.today.isoformat()})") from None
        low, high = bounds
        return start_epoch(low), end_epoch(high)

    def grouped(self, events: exp.Select, having: exp.Expression) -> exp.Select:
        """One row per profile whose events pass ``having``."""
        grouped = events.group_by(sb.column("profile_pk", EVENTS_ALIAS), copy=False)
        return grouped.having(having, copy=False)

    def having(self, count: CountRule, aggregate: AggregateRule | None, distinct: Target | None,
               measured: Target | None) -> exp.Expression:
        """The count and aggregate conditions on one profile's group of events."""
        counted: exp.Expression
        if distinct is not None:
            counted = exp.Count(this=exp.Distinct(expressions=[distinct.expr.copy()]))
        else:
            counted = exp.Count(this=exp.Star())
        # A count every group with an event satisfies (at_least 1) needs no test.
        redundant = distinct is None and count_always(count, 1)
        terms = [] if redundant else self.count_terms(count, counted)
        if aggregate is not None and measured is not None:
            terms.extend(self.predicates.compare(aggregate.op, aggregate.value,
                                                 self.aggregate_expr(aggregate.fn, measured)))
        return sb.conjunction(terms)

    def count_terms(self, count: CountRule, counted: exp.Expression) -> list[exp.Expression]:
        bind = self.binder.bind
        if count.op == "at_least":
            return [exp.GTE(this=counted, expression=bind(count.value))]
        if count.op == "at_most":
            return [exp.LTE(this=counted, expression=bind(count.value))]
        if count.op == "exactly":
            return [exp.EQ(this=counted, expression=bind(count.value))]
        low, high = count.value
        return [exp.GTE(this=counted, expression=bind(low)),
                exp.LTE(this=counted.copy(), expression=bind(high))]

    def aggregate_expr(self, fn: str, target: Target) -> exp.Expression:
        """sum over no value is 0 (integers summed exactly); avg/min/max over none are NULL."""
        value = target.expr.copy()
        if fn == "sum":
            if target.type == "integer":
                return exp.Coalesce(this=exp.Sum(this=value), expressions=[self.binder.bind(0)])
            return exp.Anonymous(this="total", expressions=[value])
        if fn == "avg":
            return exp.Avg(this=value)
        if fn == "min":
            return exp.Min(this=value)
        if fn == "max":
            return exp.Max(this=value)
        raise ValueError(f"aggregate fn {fn!r}")


class _EventSource:
    """``events AS ev`` plus a LEFT JOIN per entity whose fields a condition uses."""

    def __init__(self, catalog: Catalog, path: str) -> None:
        self.catalog = catalog
        self.path = path
        self.joined: dict[str, Entity] = {}
        self.uses: dict[str, int] = {}  # entity -> how many targets read its fields
        self.restrictions: dict[str, list[exp.Expression]] = {}  # see ``restrict``
        self.fields: set[str] = set()  # the event fields read, entity links included
        self.profile_joined = False  # whether a condition reads the event's profile row

    def entity_of(self, name: str) -> Entity | None:
        """The entity of an ``entity.field`` name (None for an event field)."""
        return self.catalog.entities.get(name.partition(".")[0]) if "." in name else None

    def restrict(self, entity: Entity, predicate: exp.Expression) -> None:
        """A ``where`` condition on an entity's fields that is false without the entity."""
        self.restrictions.setdefault(entity.name, []).append(predicate)

    def target(self, name: str, where: str) -> Target:
        """An event field, ``entity.field`` through the entity's link (missing entity: NULL),
        or ``profile.NAME``, an attribute of the event's profile."""
        if name.startswith(PROFILE_PREFIX):
            self.profile_joined = True
            return attribute_target(self.catalog, name.removeprefix(PROFILE_PREFIX),
                                    f"{self.path}.{where}", PROFILE_ALIAS)
        if "." in name:
            entity_name, _, field_name = name.partition(".")
            entity = self.catalog.entities.get(entity_name)
            if entity is None or field_name not in entity.fields:
                raise InputError(f"{self.path}.{where}: unknown entity field {name!r}")
            self.joined[entity.name] = entity
            self.uses[entity.name] = self.uses.get(entity.name, 0) + 1
            self.fields.add(entity.link_field)
            entity_field = entity.fields[field_name]
            return Target(sb.column(entity_field.column, entity_alias(entity)), entity_field.type)
        event_field = self.catalog.event_fields.get(name)
        if event_field is None:
            raise InputError(f"{self.path}.{where}: unknown event field {name!r}")
        self.fields.add(name)
        return Target(sb.column(event_field.column, EVENTS_ALIAS), event_field.type)

    def select(self, filters: list[exp.Expression],
               index: str | bool | None = None) -> exp.Select:
        """``SELECT ev.profile_pk FROM events ev [INDEXED BY index | NOT INDEXED] ...``.

        An entity read only by ``restrict``-ed conditions becomes ``ev.link IN (SELECT key
        FROM entity WHERE ...)`` instead of a LEFT JOIN: the matching keys are listed once
        instead of one entity lookup per event (50 -> 30 ms for a category over 90 days of
        purchases). Both agree because those conditions fail when the entity is missing.
        """
        events = sb.table(EVENTS, EVENTS_ALIAS)
        if isinstance(index, str):
            events.set("indexed", sb.ident(index))
        elif index is False:
            events.set("indexed", False)
        query = exp.select(sb.column("profile_pk", EVENTS_ALIAS)).from_(events, copy=False)
        terms = list(filters)
        for entity in self.joined.values():
            link = self.catalog.event_fields.get(entity.link_field)
            if link is None:
                raise InputError(f"{self.path}: entity {entity.name!r} links through unknown"
                                 f" event field {entity.link_field!r}")
            alias = entity_alias(entity)
            restrictions = self.restrictions.get(entity.name, [])
            if restrictions and len(restrictions) == self.uses.get(entity.name):
                keys = exp.select(sb.column("key", alias)).from_(
                    sb.table(entity.table, alias), copy=False).where(
                    sb.conjunction(restrictions), copy=False)
                terms.append(sb.column(link.column, EVENTS_ALIAS).isin(query=keys, copy=False))
                continue
            terms.extend(restrictions)
            on = sb.column("key", alias).eq(sb.column(link.column, EVENTS_ALIAS))
            query = query.join(sb.table(entity.table, alias), on=on, join_type="left", copy=False)
        if self.profile_joined:
            on = sb.column("pk", PROFILE_ALIAS).eq(sb.column("profile_pk", EVENTS_ALIAS))
            query = query.join(sb.table(PROFILES, PROFILE_ALIAS), on=on, join_type="left",
                               copy=False)
        where = sb.conjunction(terms)
        return query if sb.is_true(where) else query.where(where, copy=False)


def attribute_target(catalog: Catalog, name: str, path: str, table: str | None = None) -> Target:
    """What a condition on a profile attribute tests (a derived age: the birth date column),
    its columns qualified by ``table`` when given."""
    attribute = catalog.attributes.get(name)
    if attribute is None:
        raise InputError(f"{path}: unknown attribute {name!r}")
    if attribute.derived_from:
        kind, _, source_name = attribute.derived_from.partition(":")
        source = catalog.attributes.get(source_name)
        if kind != "age" or source is None or source.type not in ("date", "datetime"):
            raise InputError(f"{path}: cannot compute {name!r} from {attribute.derived_from!r}")
        return Target(sb.column(source.column, table), "integer", age=True)
    return Target(sb.column(attribute.column, table), attribute.type)


def reads_event_rows(node: EventCondition) -> bool:
    """Whether a condition reads event columns beyond the (type_id, ts, profile_pk) index."""
    return bool(node.where or node.aggregate or (node.count and node.count.distinct))


def false_when_missing(op: str) -> bool:
    """Whether a condition is false on a missing value: every positive operator is
    (store/query/predicates.py); a negative one or ``is_empty`` holds on it."""
    return op not in NEGATIVE_TWIN and op != "is_empty"


def index_hint(typed: bool, windowed: bool, short: bool, reads_rows: bool) -> str | bool | None:
    """How to read the events, where the planner (without statistics) may guess wrong.

    The (type_id, ts) index reads exactly a window's events, best for a short
    window and whenever other columns are read (rows then come in time order,
    which is storage order). A wide window that needs only the index is left to
    the planner: it groups without sorting through (type_id, profile_pk, ts) if
    the store has it. Every type over a wide window walks (profile_pk, ts) in
    profile order (forced: with ANALYZE statistics SQLite otherwise skip-scans
    the (type_id, ts) index and sorts, 1.3 s instead of 0.2 s on 10M events).
    Reading other columns of every event of every type is one pass over the
    table (``False``: NOT INDEXED), not a walk in profile order.
    """
    if (typed or windowed) and (short or reads_rows):
        return TYPE_TIME_INDEX
    if not typed and not reads_rows:
        return PROFILE_TIME_INDEX
    if not typed and not windowed and reads_rows:
        return False
    return None


def entity_alias(entity: Entity) -> str:
    return entity.name if entity.name.lower() != EVENTS_ALIAS else f"{entity.name}_entity"


# ---------------------------------------------------------------------- count rules


def count_always(count: CountRule, smallest: int) -> bool:
    """Whether the count rule holds for every count from ``smallest`` up."""
    return count.op == "at_least" and count.value <= smallest


def count_never(count: CountRule, smallest: int) -> bool:
    """Whether the count rule holds for no count from ``smallest`` up."""
    if count.op in ("at_most", "exactly"):
        return bool(count.value < smallest)
    if count.op == "between":
        return bool(count.value[1] < smallest)
    return False


def start_epoch(low: dt.date) -> float:
    """Epoch bound for ``ts >= low``: a datetime is an instant, a date its midnight."""
    if isinstance(low, dt.datetime):
        return to_epoch_seconds(low)
    return day_start_epoch(low)


def end_epoch(high: dt.date) -> float | None:
    """Epoch bound for ``ts <= high``: a datetime is an instant, a date takes its whole day
    (up to its last microsecond: stored times keep their fractions)."""
    if isinstance(high, dt.datetime):
        return to_epoch_seconds(high)
    after = next_day(high)
    return None if after is None else epoch_from_micros(day_start_epoch(after) * 1_000_000 - 1)


# ---------------------------------------------------------------------- public API


def compile_segment(resolved: ResolvedSegment, catalog: Catalog, as_of: dt.datetime,
                    dialect: str = "sqlite") -> CompiledQuery:
    """The query selecting the segment's audience at ``as_of``."""
    return compile_node(resolved.segment.rule, resolved, catalog, as_of, dialect)


def compile_node(node: Node, resolved: ResolvedSegment, catalog: Catalog, as_of: dt.datetime,
                 dialect: str = "sqlite", path: str = "rule") -> CompiledQuery:
    """The query selecting the profiles one node of the rule tree matches at ``as_of``."""
    compiler = _Compiler(catalog, resolved.refs, as_of)
    try:
        with paused_gc():
            fragment = compiler.node(node, path)
            counting = count_expression(fragment)
            query = profiles_select(as_predicate(fragment))
            return finish(query, compiler.binder.values, dialect, counting)
    except RecursionError:
        raise InputError(f"{path}: the rule is nested too deeply to compile") from None


def compile_members(node: Node, resolved: ResolvedSegment, catalog: Catalog, as_of: dt.datetime,
                    path: str = "rule", dialect: str = "sqlite") -> tuple[CompiledQuery, bool]:
    """The cheaper side of one node's audience: its members, or (True) the profiles outside it
    when it compiled to a complement ("did not", ``pk NOT IN (set)``), so that a caller
    reading pks reads the small set instead of nearly everyone."""
    compiler = _Compiler(catalog, resolved.refs, as_of)
    try:
        with paused_gc():
            fragment = compiler.node(node, path)
            if isinstance(fragment, Pred) and fragment.complement is not None:
                inside = PkSet(fragment.complement)
                return finish(cast(exp.Expression, inside.query), compiler.binder.values, dialect,
                              count_expression(inside)), True
            query = profiles_select(as_predicate(fragment))
            return finish(query, compiler.binder.values, dialect), False
    except RecursionError:
        raise InputError(f"{path}: the rule is nested too deeply to compile") from None


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a tree is built: the collections that the many
    new sqlglot nodes trigger made large rules 2-3x slower to compile. Discarded nodes
    (which point at their parents) wait for the collector to resume."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def finish(expression: exp.Expression, values: list[Any] | tuple[Any, ...],
           dialect: str = "sqlite", count_expression: exp.Expression | None = None
           ) -> CompiledQuery:
    """A query tree with its placeholder values for ``dialect``, rendered when its SQL is first
    asked for (the tree is the same for every engine; rendering drops SQLite's index hints
    elsewhere, see ``store.engines.dialects``)."""
    return CompiledQuery(expression, tuple(values), dialect, count_expression)


def membership(compiled: CompiledQuery) -> exp.Expression:
    """The condition on a ``profiles`` row that makes it a member (TRUE for everyone)."""
    expression = compiled.expression
    if isinstance(expression, exp.Select) and _selects_from_profiles(expression):
        where = expression.args.get("where")
        return where.this.copy() if where is not None else sb.TRUE.copy()
    return pk_column().isin(query=expression.copy(), copy=False)


def _selects_from_profiles(query: exp.Select) -> bool:
    source = query.args.get("from_") or query.args.get("from")
    return (source is not None and isinstance(source.this, exp.Table)
            and source.this.name == PROFILES and not query.args.get("joins"))


def count_query(compiled: CompiledQuery) -> CompiledQuery:
    """A query whose one value is the number of members (``SELECT count(*) ...``)."""
    if compiled.count_expression is not None:
        return finish(compiled.count_expression, compiled.values, compiled.dialect)
    query = profiles_select(membership(compiled), exp.Count(this=exp.Star()))
    return finish(query, compiled.values, compiled.dialect)


PRETTY_HEADER = ("-- Values are bound parameters when the engine runs this query;"
                 " here they are shown as SQL literals.\n")


def pretty_sql(compiled: CompiledQuery) -> str:
    """Readable multi-line SQL with every bound value substituted as a literal (runnable as is),
    in the compiled query's dialect as its engine runs it."""
    dialect = dialects.ALIASES.get(compiled.dialect, compiled.dialect)
    tree, values = dialects.rewritten(compiled.expression, compiled.values, dialect)
    expression = sb.with_literals(tree, values)
    return PRETTY_HEADER + expression.sql(dialect=dialect, pretty=True) + ";"


def explain(conn: Connection, compiled: CompiledQuery) -> list[str]:
    """The engine's query plan for a compiled query (rendered for the connection's engine)."""
    sql, params = conn.engine.render(compiled.expression, compiled.values)
    return conn.engine.query_plan(conn, sql, params)
