"""Audience queries: exact counts, keyset pages, streamed ids, samples, per-node counts, breakdowns.

Every function takes a validated segment and the as-of instant, compiles it
(``store.query.compiler``) and reshapes the one membership condition it yields into
the query it needs, always as ``... FROM profiles WHERE <membership> ...``:
pages are ``AND pk > ? ORDER BY pk LIMIT ?`` (never OFFSET), so a page of a
plain attribute segment stops after ``limit`` rows. Each accepts ``cancel=``
(a ``store.cancel.Cancel``) and raises ``QueryCancelled`` when it fires.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from store.engines.base import Connection
from store.engines.cancel import Cancel, watching
from store.errors import InputError
from store.query import sqlbuild as sb
from store.query.compiler import (
    CompiledQuery,
    compile_segment,
    count_query,
    finish,
    in_pk_order,
    membership,
    pk_column,
    profiles_select,
)
from store.query.membersets import Bits, Combiner, MemberSetCache, population
from store.query.predicates import Predicates
from store.schema.catalog import Catalog, did_you_mean
from store.segments.model import AllOf, SequenceCondition, walk
from store.segments.timeutil import as_of_date
from store.segments.validate import ResolvedSegment

FETCH_BATCH = 2000
OTHER = "Other"
MISSING = "(missing)"


@dataclass(frozen=True)
class NodeCount:
    """One node's audience size; ``remaining`` is the waterfall for children of an ``all``;
    ``funnel``, for a sequence, how many got as far as each step (the last is ``own``)."""

    path: str
    own: int
    remaining: int | None = None
    funnel: tuple[int, ...] = ()


def prepare(conn: Connection) -> None:
    """Connection settings the compiled SQL relies on (SQLite: LIKE folds ASCII case)."""
    conn.engine.prepare_reads(conn)


def _compiled(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
              catalog: Catalog | None) -> tuple[CompiledQuery, Catalog]:
    catalog = catalog or Catalog.load(conn)
    return compile_segment(resolved, catalog, as_of, conn.engine.dialect), catalog


def run_count(conn: Connection, compiled: CompiledQuery,
              cancel: Cancel | None = None) -> int:
    """The number of rows (members) a compiled query selects."""
    query = count_query(compiled)
    with watching(cancel, conn):
        prepare(conn)
        return int(conn.execute(query.sql, query.params).fetchone()[0])


def count(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
          catalog: Catalog | None = None, cancel: Cancel | None = None) -> int:
    """The exact audience size at ``as_of``."""
    if cancel is not None:
        cancel.check()
    compiled, _ = _compiled(conn, resolved, as_of, catalog)
    return run_count(conn, compiled, cancel)


def total(conn: Connection, cancel: Cancel | None = None) -> int:
    """The number of profiles in the store."""
    with watching(cancel, conn):
        return int(conn.execute("SELECT count(*) FROM profiles").fetchone()[0])


def _members_query(compiled: CompiledQuery, columns: list[exp.Expression],
                   extra: list[exp.Expression] | None = None) -> tuple[exp.Select, sb.Binder]:
    """``SELECT columns FROM profiles WHERE membership`` with a binder to add values."""
    binder = sb.Binder()
    binder.values.extend(compiled.values)
    where = sb.conjunction([membership(compiled), *(extra or [])])
    return profiles_select(where, *columns), binder


def member_page(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
                after_pk: int | None = None, limit: int = 200, catalog: Catalog | None = None,
                cancel: Cancel | None = None) -> list[tuple[int, str]]:
    """One keyset page of members as (pk, external id), in pk order after ``after_pk``."""
    compiled, _ = _compiled(conn, resolved, as_of, catalog)
    return page_of(conn, compiled, after_pk, limit, cancel)


def page_of(conn: Connection, compiled: CompiledQuery, after_pk: int | None = None,
            limit: int = 200, cancel: Cancel | None = None) -> list[tuple[int, str]]:
    """A keyset page of a compiled audience (``pk > after_pk ORDER BY pk LIMIT limit``)."""
    binder = sb.Binder()
    binder.values.extend(compiled.values)
    extra = []
    if after_pk is not None:
        extra.append(exp.GT(this=pk_column(), expression=binder.bind(int(after_pk))))
    where = sb.conjunction([membership(compiled), *extra])
    query = (in_pk_order(profiles_select(where, pk_column(), sb.column("id")))
             .order_by(exp.Ordered(this=pk_column(), nulls_first=True))
             .limit(binder.bind(max(0, int(limit)))))
    final = finish(query, binder.values, compiled.dialect)
    with watching(cancel, conn):
        prepare(conn)
        return [(int(pk), str(pid)) for pk, pid in conn.execute(final.sql, final.params)]


def member_ids(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
               catalog: Catalog | None = None, cancel: Cancel | None = None,
               batch: int = FETCH_BATCH) -> Iterator[str]:
    """Every member's external id, streamed in pk order (for activation)."""
    compiled, _ = _compiled(conn, resolved, as_of, catalog)
    query, binder = _members_query(compiled, [sb.column("id")])
    query = in_pk_order(query).order_by(exp.Ordered(this=pk_column(), nulls_first=True))
    final = finish(query, binder.values, compiled.dialect)
    with watching(cancel, conn):
        prepare(conn)
        rows = conn.engine.stream(conn, final.sql, final.params, batch)
        try:
            for chunk in rows:
                if cancel is not None:
                    cancel.check()
                for (pid,) in chunk:
                    yield str(pid)
        finally:
            _close(rows)


def _close(stream: Iterator[Any]) -> None:
    """Stop a stream read only in part (a generator: its driver's result is let go)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def sample(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime, n: int = 10,
           seed: int | None = None, catalog: Catalog | None = None,
           cancel: Cancel | None = None) -> list[tuple[int, str]]:
    """``n`` random members as (pk, external id), sorted by pk; the same seed, the same sample.

    One pass over the members' pks (reservoir sampling, Li's algorithm L: the
    rows skipped between two picks are consumed in C), then one lookup of the
    ``n`` ids.
    """
    compiled, _ = _compiled(conn, resolved, as_of, catalog)
    query, _binder = _members_query(compiled, [pk_column()])
    query = in_pk_order(query).order_by(exp.Ordered(this=pk_column(), nulls_first=True))
    final = finish(query, compiled.values, compiled.dialect)
    rng = random.Random(seed)
    with watching(cancel, conn):
        prepare(conn)
        batches = conn.engine.stream(conn, final.sql, final.params, FETCH_BATCH)
        try:
            pks = (row[0] for batch in batches for row in batch)
            chosen = reservoir(pks, max(0, int(n)), rng)
        finally:
            _close(batches)
        if not chosen:
            return []
        lookup = sb.Binder()
        wanted = pk_column().isin(query=sb.json_values(lookup.bind(json.dumps(sorted(chosen)))),
                                  copy=False)
        ids = (exp.select(pk_column(), sb.column("id")).from_(sb.table("profiles"), copy=False)
               .where(wanted, copy=False).order_by(exp.Ordered(this=pk_column(), nulls_first=True)))
        sql, params = conn.engine.render(ids, lookup.values)
        rows = conn.execute(sql, params).fetchall()
    return [(int(pk), str(pid)) for pk, pid in rows]


def reservoir(items: Iterator[int], n: int, rng: random.Random) -> list[int]:
    """A uniform random sample of ``n`` items in one pass (algorithm L, Li 1994)."""
    if n <= 0:
        return []
    picked = list(itertools.islice(items, n))
    if len(picked) < n:
        return picked
    weight = math.exp(math.log(rng.random() or 1e-300) / n)
    while True:
        skip = int(math.log(rng.random() or 1e-300) / math.log1p(-weight)) if weight < 1 else 0
        following = next(itertools.islice(items, skip, None), None)
        if following is None:
            return picked
        picked[rng.randrange(n)] = following
        weight *= math.exp(math.log(rng.random() or 1e-300) / n)


def node_counts(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
                catalog: Catalog | None = None, cancel: Cancel | None = None,
                cache: MemberSetCache | None = None) -> list[NodeCount]:
    """Every node's own audience size, and for each child of an ``all`` the waterfall:
    the profiles matching that child and all the siblings before it.

    A sequence also gets its funnel: the profiles matching its first 1, 2, ... steps.
    Each distinct leaf condition is read once as a set of pks and the nodes are
    combined in memory (``store.query.membersets``); pass the same ``cache`` after an
    edit and only the leaves that changed are read again.
    """
    catalog = catalog or Catalog.load(conn)
    cache = cache if cache is not None else MemberSetCache()
    if cancel is not None:
        cancel.check()
    with watching(cancel, conn):
        universe = cache.prepare(conn)
    combiner = Combiner(conn, resolved, catalog, as_of, cache, universe, cancel)
    bits: dict[str, Bits] = {}
    combiner.node(resolved.segment.rule, "rule", bits)
    nodes = walk(resolved.segment.rule)
    remaining: dict[str, int] = {}
    for path, node in nodes:
        if not isinstance(node, AllOf):
            continue
        running = universe.everyone
        for index in range(len(node.children)):
            child = f"{path}.all[{index}]"
            running = bits[child] if index == 0 else np.bitwise_and(running, bits[child])
            remaining[child] = population(running)
    funnels = {path: (*(population(combiner.leaf(node.prefix(size), path))
                        for size in range(1, len(node.steps))), population(bits[path]))
               for path, node in nodes if isinstance(node, SequenceCondition)}
    return [NodeCount(path, population(bits[path]), remaining.get(path), funnels.get(path, ()))
            for path, _ in nodes]


def breakdown(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime,
              attribute: str, top: int = 10, catalog: Catalog | None = None,
              cancel: Cancel | None = None) -> list[tuple[str, int]]:
    """The audience by one attribute's values: the ``top`` most common first (ties by value),
    then ("Other", n) for the rest and ("(missing)", n) for profiles without a value.

    Numbers spread over a wide range (amounts, ages) and dates come in bands instead, in
    their own order (``banded_breakdown``): a top ten of single amounts says nothing.
    """
    compiled, catalog = _compiled(conn, resolved, as_of, catalog)
    binder = sb.Binder()
    binder.values.extend(compiled.values)
    value = _breakdown_value(catalog, attribute, binder, as_of)
    kind = catalog.attributes[attribute].type
    if kind in BANDED_TYPES:
        banded = banded_breakdown(conn, compiled, binder, value, kind, cancel,
                                  few_values=bool(catalog.attributes[attribute].derived_from))
        if banded is not None:
            return banded
    # In pk order: reading another column of a quarter of the profiles through an
    # attribute index (random row lookups) was twice as slow as one scan.
    groups = (in_pk_order(profiles_select(membership(compiled), named(value, "v"),
                                          named(exp.Count(this=exp.Star()), "n")))
              .group_by(sb.column("v")))
    v, n = sb.column("v"), sb.column("n")
    ranked = (exp.select(v, n, named(exp.Window(this=exp.Sum(this=n.copy())), "total"))
              .from_(exp.Subquery(this=groups, alias=exp.TableAlias(this=sb.ident("g"))))
              .order_by(exp.Ordered(this=sb.is_null(v), desc=True, nulls_first=True),
                        exp.Ordered(this=n.copy(), desc=True, nulls_first=True),
                        exp.Ordered(this=v.copy(), nulls_first=True))
              .limit(binder.bind(max(0, int(top)) + 1)))
    final = finish(ranked, binder.values, compiled.dialect)
    with watching(cancel, conn):
        prepare(conn)
        rows = conn.execute(final.sql, final.params).fetchall()
    if not rows:
        return []
    audience = int(rows[0][2])
    missing = 0
    if rows[0][0] is None:
        missing = int(rows[0][1])
        rows = rows[1:]
    shown = [(_label(value, kind), int(size)) for value, size, _ in rows[:max(0, top)]]
    other = audience - missing - sum(size for _, size in shown)
    result = list(shown)
    if other > 0:
        result.append((OTHER, other))
    if missing > 0:
        result.append((MISSING, missing))
    return result


BANDED_TYPES = ("integer", "number", "date", "datetime")
MAX_BANDS = 8
NARROW_SPAN = 20  # integers spread over fewer values than this are shown value by value
MAX_YEARS = 12  # dates spread over more years than this are shown by decade


def banded_breakdown(conn: Connection, compiled: CompiledQuery, binder: sb.Binder,
                     value: exp.Expression, kind: str, cancel: Cancel | None, *,
                     few_values: bool = False) -> list[tuple[str, int]] | None:
    """The audience in bands of ``value``, lowest first, then ("(missing)", n); None when
    the values are few enough to show one by one (integers within ``NARROW_SPAN``).

    Numbers: round bands (``band_edges``), ``200–400`` meaning 200 <= x < 400 (integers:
    ``30–39``); two scans of the members, the range then the bands. Dates: one scan by
    month, shown by month when the dates fall in two calendar years at most, by decade
    when they spread over more than ``MAX_YEARS``, else by year. The value (an age is a
    computation) is worked out once per member, in a subquery. ``few_values`` (an age:
    about a hundred of them) takes one scan grouped by value and bands the groups here.
    """
    inner = in_pk_order(profiles_select(membership(compiled), named(value, "v")))
    v = sb.column("v")

    def scan(*columns: exp.Expression, group: exp.Expression | None = None) -> list[Any]:
        query = exp.select(*columns).from_(
            exp.Subquery(this=inner.copy(), alias=exp.TableAlias(this=sb.ident("m"))))
        if group is not None:
            query = query.group_by(group).order_by(exp.Ordered(this=group.copy(), nulls_first=True))
        final = finish(query, binder.values, compiled.dialect)
        with watching(cancel, conn):
            prepare(conn)
            return conn.execute(final.sql, final.params).fetchall()

    count = exp.Count(this=exp.Star())
    if kind in ("date", "datetime"):
        month = exp.Substring(this=v.copy(), start=binder.bind(1), length=binder.bind(7))
        return date_bands(scan(named(month, "k"), count, group=sb.column("k")))
    values: list[tuple[Any, int]] = []
    stats: tuple[Any, ...]
    if few_values:
        groups = scan(v.copy(), count.copy(), group=v.copy())
        values = [(x, int(n)) for x, n in groups if x is not None]
        present = sum(n for _, n in values)
        stats = (values[0][0] if values else None, values[-1][0] if values else None,
                 sum(x * n for x, n in values) / present if present else None,
                 present + sum(int(n) for x, n in groups if x is None), present)
    else:
        stats = scan(exp.Min(this=v.copy()), exp.Max(this=v.copy()), exp.Avg(this=v.copy()),
                     count.copy(), exp.Count(this=v.copy()))[0]
    low, high, mean, members, present = stats
    missing = [(MISSING, int(members - present))] if members > present else []
    if low is None:
        return missing
    if kind == "integer" and high - low < NARROW_SPAN:
        return None
    if low == high:
        return [(_label(low, kind), int(present)), *missing]
    edges = band_edges(low, high, mean, whole=kind == "integer")
    if few_values:
        banded: dict[int, int] = {}
        for x, n in values:
            index = bisect.bisect_right(edges, x) - 1
            banded[index] = banded.get(index, 0) + n
        return [(band_label(edges[i], edges[i + 1], kind, low, high), n)
                for i, n in sorted(banded.items())] + missing
    band = exp.Case(ifs=[exp.If(this=sb.is_null(v.copy()), true=exp.Null()),
                         *(exp.If(this=exp.LT(this=v.copy(), expression=binder.bind(edge)),
                                  true=exp.Literal.number(i))
                           for i, edge in enumerate(edges[1:-1]))],
                    default=exp.Literal.number(len(edges) - 2))
    rows = scan(named(band, "k"), count, group=sb.column("k"))
    return [(band_label(edges[int(k)], edges[int(k) + 1], kind, low, high), int(n))
            for k, n in rows if k is not None] + missing  # the NULL group: the missing


def date_bands(months: list[Any]) -> list[tuple[str, int]]:
    """Members by month (``("2025-03", n)`` rows, the missing under None) rolled up into
    months, years or decades (see ``banded_breakdown``)."""
    missing = sum(int(n) for month, n in months if month is None)
    dated = [(str(month), int(n)) for month, n in months if month is not None]
    tail = [(MISSING, missing)] if missing else []
    if not dated:
        return tail
    years_apart = int(dated[-1][0][:4]) - int(dated[0][0][:4])
    if years_apart <= 1:
        return dated + tail
    def key(month: str) -> str:
        return month[:4] if years_apart <= MAX_YEARS else month[:3] + "0s"
    rolled: dict[str, int] = {}
    for month, n in dated:
        rolled[key(month)] = rolled.get(key(month), 0) + n
    return list(rolled.items()) + tail


def band_edges(low: float, high: float, mean: float, *, whole: bool) -> list[float]:
    """Round band edges from below ``low`` to above ``high``.

    Values piled up near the bottom (amounts: most small, a few large; the mean in the
    lowest fifth of the range) get widening bands on the 1-2-5 scale (0, 50, 100, 200,
    500, 1,000...), so the crowd is split and the tail still shows; others get at most
    ``MAX_BANDS`` bands of one round width (ages: 20-29, 30-39...).
    """
    if low >= 0 and mean - low < (high - low) / 5:
        scale = [factor * 10.0 ** power for power in range(-2, 16) for factor in (1, 2, 5)]
        # from a tenth of the mean up: the crowd below it is one band (0-20 for amounts
        # averaging 200, with the zeros of those who never bought)
        inner = [e for e in scale if max(low, mean / 10) < e <= high
                 and (not whole or e.is_integer())]
        if len(inner) > MAX_BANDS:  # a very wide range: powers of ten only
            inner = [e for e in inner if math.log10(e).is_integer()] or inner[:MAX_BANDS]
        first = max((e for e in (0.0, *scale) if e <= low), default=low)
        return [first, *inner, math.inf]
    step = band_width((high - low) / MAX_BANDS, whole=whole)
    start = math.floor(low / step) * step
    count = max(1, math.floor((high - start) / step) + 1)
    return [start + i * step for i in range(count)] + [math.inf]


def band_width(raw: float, *, whole: bool) -> float:
    """The smallest round width (1, 2, 2.5, 5 x 10^k) at least ``raw``; whole numbers >= 1."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        width = factor * power
        if width >= raw and (not whole or width.is_integer()):
            return max(width, 1.0) if whole else width
    return 10.0 * power


def band_label(start: float, end: float, kind: str, low: float | None = None,
               high: float | None = None) -> str:
    """``200–400`` (a number band, ``end`` excluded), ``30–39`` (whole numbers), ``5,000+``
    (the last band).

    Whole numbers are labelled by what the band holds: with ``low`` and ``high``, the
    smallest and largest value seen, the first band of "age > 50" reads ``51–54``, not
    ``50–54``, the last ``90–97``, not ``90+``, and a band of one value reads ``51``."""
    if kind == "integer" and low is not None and high is not None:
        first = max(int(start), math.ceil(low))
        last = math.floor(high) if math.isinf(end) else min(int(end) - 1, math.floor(high))
        return f"{first:,}" if first == last else f"{first:,}–{last:,}"
    if math.isinf(end):
        return f"{_round_text(start)}+"
    if kind == "integer":
        return f"{int(start):,}–{int(end) - 1:,}"
    return f"{_round_text(start)}–{_round_text(end)}"


def _round_text(x: float) -> str:
    text = f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def named(node: exp.Expression, alias: str) -> exp.Expression:
    return exp.Alias(this=node, alias=sb.ident(alias))


def _breakdown_value(catalog: Catalog, name: str, binder: sb.Binder,
                     as_of: dt.datetime) -> exp.Expression:
    """The grouped value: the column, a datetime's date, or the age computed at D."""
    attribute = catalog.attributes.get(name)
    if attribute is None:
        raise InputError(f"unknown attribute {name!r}." + did_you_mean(name, set(catalog.attributes)))
    if attribute.derived_from:
        source = catalog.attributes.get(attribute.derived_from.partition(":")[2])
        if source is None:
            raise InputError(f"cannot compute {name!r} from {attribute.derived_from!r}")
        birth = sb.column(source.column)
        age = Predicates(binder, as_of_date(as_of)).age_expression(birth)
        return exp.Case(ifs=[exp.If(this=sb.not_null(birth), true=age)])
    column = sb.column(attribute.column)
    if attribute.type == "datetime":
        return exp.Substring(this=column, start=binder.bind(1), length=binder.bind(10))
    if attribute.type == "string":
        return exp.Nullif(this=column, expression=binder.bind(""))
    return column


def _label(value: object, kind: str) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and kind == "integer":
        return str(int(value))
    return str(value)
