"""Reading profiles for browsing: keyset pages, quick search, one profile's facts and timeline.

Every list is read in keyset pages (``WHERE (sort, pk) > (?, ?) ORDER BY sort, pk
LIMIT n``), never with OFFSET, so the cost of a page does not grow with how far
down the list it is. Sorting by an attribute puts missing values last in both
directions: the listing is the non-missing rows in (value, pk) order (or its
reverse), then the missing ones by pk. Counts are separate queries.

Only identifiers taken from the catalog are put into SQL; every value is bound.
Statements are the SQL every engine shares, or (listings) sqlglot trees the
connection's engine renders, so a listing is the same on every engine.
"""

from __future__ import annotations

import datetime as dt
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from store.engines.base import Connection
from store.engines.layout import quote_identifier
from store.query import sqlbuild as sb
from store.schema.catalog import Attribute, Catalog, label_from_name
from store.schema.search import search_columns
from store.schema.values import parse_date
from store.segments.timeutil import age_on

if TYPE_CHECKING:
    from store.segments.validate import ResolvedSegment

PAGE_SIZE = 200
COUNT_CAP = 10_000
# More candidates than this from the search index: the words are common, and a scan finds the
# first page (and the capped count) sooner than reading the candidates by pk.
SEARCH_CANDIDATE_LIMIT = 20_000
_UNKNOWN = object()
DEFAULT_COLUMN_LIMIT = 8

_NAME_LIKE = re.compile(r"(^|_)(name|first|last|surname|given|family|full)(_|$)|name$", re.I)
_EMAIL_LIKE = re.compile(r"e?mail", re.I)


# ------------------------------------------------------------------ columns


def derived_source(attribute: Attribute) -> str | None:
    """The source attribute of a derived one (``age:birth_date`` -> ``birth_date``)."""
    if not attribute.derived_from:
        return None
    return attribute.derived_from.partition(":")[2] or None


def default_columns(catalog: Catalog, limit: int = DEFAULT_COLUMN_LIMIT) -> list[str]:
    """A sensible first set of columns: the id, names, email, then the catalog's order.

    The source of a derived attribute is left out when the derived one is
    shown (age says what a birth date would).
    """
    sources = {derived_source(a) for a in catalog.attributes.values()} - {None}
    names = [n for n in catalog.attributes if n not in sources]
    chosen = ["id"]
    for pattern in (_NAME_LIKE, _EMAIL_LIKE):
        for name in names:
            attribute = catalog.attributes[name]
            if name not in chosen and attribute.type == "string" and pattern.search(name):
                chosen.append(name)
    for name in names:
        if len(chosen) >= limit:
            break
        if name not in chosen:
            chosen.append(name)
    return chosen[:limit]


# ------------------------------------------------------------------ listings


SortKey = tuple[Any, int]
"""Where a row sits in a listing: (the stored sort value or None, pk)."""


@dataclass(frozen=True)
class Listing:
    """What the browser shows: which columns, in which order, narrowed by a quick search."""

    columns: tuple[str, ...]
    sort: str | None = None
    descending: bool = False
    search: str = ""


@dataclass(frozen=True)
class ProfileRow:
    """One row of a listing: the profile's pk, its place in the order, its column values."""

    pk: int
    key: SortKey
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _Order:
    """How a listing is ordered in SQL: a column (or none: by pk) and a direction."""

    column: str | None
    descending: bool


class ProfileQuery:
    """The SQL of one listing, ready to fetch pages before or after any key.

    Each read builds one sqlglot tree and the connection's engine renders it
    (``Engine.render``): the quick search is SQLite's LIKE, folding ASCII case
    only, on every engine, and a list of pks is one parameter.
    """

    def __init__(self, catalog: Catalog, listing: Listing, today: dt.date,
                 members: Sequence[int] | None = None) -> None:
        self.catalog = catalog
        self.listing = listing
        self.today = today
        self.members = members
        self._columns, self._converters = self._select_list()
        self.order = self._order()
        self._candidates: list[int] | object | None = _UNKNOWN  # the search index's answer

    # -- construction
    def _select_list(self) -> tuple[list[str], list[Any]]:
        columns = ["pk"]
        converters: list[Any] = []
        for name in self.listing.columns:
            attribute = self.catalog.attributes[name]
            source = derived_source(attribute)
            if source is not None:
                columns.append(self.catalog.attributes[source].column)
                converters.append(self._age)
            else:
                columns.append(attribute.column)
                converters.append(None)
        return columns, converters

    def _age(self, raw: Any) -> int | None:
        born = parse_date(str(raw)[:10]) if raw else None
        return age_on(born, self.today) if born else None

    def _order(self) -> _Order:
        if self.listing.sort is None:
            return _Order(None, self.listing.descending)
        attribute = self.catalog.attributes[self.listing.sort]
        source = derived_source(attribute)
        if source is not None:
            # A greater age is an earlier birth date.
            return _Order(self.catalog.attributes[source].column, not self.listing.descending)
        return _Order(attribute.column, self.listing.descending)

    @property
    def _filtered(self) -> bool:
        return bool(search_terms(self.listing.search)) or self.members is not None

    def _filters(self, conn: Connection, binder: sb.Binder) -> list[exp.Expression]:
        """The quick search (every word in one of the searched fields) and the member list.

        Where the engine's search index names the candidates (store/schema/search.py), the
        rows are read by pk among them; the LIKE test decides either way."""
        where: list[exp.Expression] = []
        terms = search_terms(self.listing.search)
        if terms:
            fields = search_columns(self.catalog)
            if self._candidates is _UNKNOWN:
                self._candidates = conn.engine.search_candidates(conn, fields, terms,
                                                                 SEARCH_CANDIDATE_LIMIT)
            if isinstance(self._candidates, list):
                where.append(pk_in(self._candidates, binder))
            for term in terms:
                pattern = "%" + escape_like(term) + "%"
                where.append(sb.disjunction([
                    exp.Escape(this=exp.Like(this=sb.column(f), expression=binder.bind(pattern)),
                               expression=exp.Literal.string("\\"))
                    for f in fields]))
        if self.members is not None:
            where.append(pk_in(self.members, binder))
        return where

    # -- reading
    def _rows(self, conn: Connection, extra: list[exp.Expression], binder: sb.Binder,
              order: list[exp.Ordered], limit: int) -> list[ProfileRow]:
        columns = [sb.column(c) for c in self._columns]
        if self.order.column:
            columns.append(sb.column(self.order.column))
        query = (exp.select(*columns).from_(sb.table("profiles"), copy=False)
                 .where(sb.conjunction(self._filters(conn, binder) + extra), copy=False)
                 .order_by(*order, copy=False).limit(binder.bind(limit), copy=False))
        rows = []
        width = len(self._converters)
        for raw in run(conn, query, binder):
            values = tuple(
                convert(value) if convert else value
                for convert, value in zip(self._converters, raw[1:width + 1], strict=True)
            )
            sort_value = raw[width + 1] if self.order.column else None
            rows.append(ProfileRow(raw[0], (sort_value, raw[0]), values))
        return rows

    def _by_pk(self, conn: Connection, key: SortKey | None, limit: int,
               forward: bool) -> list[ProfileRow]:
        """Unsorted listings: keyset on pk alone, returned in the order read."""
        upward = forward != self.order.descending
        binder = sb.Binder()
        extra = [] if key is None else [beyond(sb.column("pk"), binder.bind(key[1]), upward)]
        return self._rows(conn, extra, binder, [ordered(sb.column("pk"), upward)], limit)

    def _present(self, conn: Connection, key: Any, limit: int,
                 forward: bool) -> list[ProfileRow]:
        """Rows with a sort value, strictly beyond (value, pk) ``key`` in the read direction."""
        column = sb.column(self.order.column or "pk")
        upward = forward != self.order.descending
        binder = sb.Binder()
        extra = [sb.not_null(column)]
        if key is not None:
            extra.append(beyond(exp.Tuple(expressions=[column.copy(), sb.column("pk")]),
                                exp.Tuple(expressions=[binder.bind(key[0]), binder.bind(key[1])]),
                                upward))
        order = [ordered(column.copy(), upward), ordered(sb.column("pk"), upward)]
        return self._rows(conn, extra, binder, order, limit)

    def _missing(self, conn: Connection, after_pk: int | None, limit: int,
                 forward: bool) -> list[ProfileRow]:
        """Rows without a sort value (always listed last, by pk), beyond ``after_pk``."""
        binder = sb.Binder()
        extra = [sb.is_null(sb.column(self.order.column or "pk"))]
        if after_pk is not None:
            extra.append(beyond(sb.column("pk"), binder.bind(after_pk), forward))
        return self._rows(conn, extra, binder, [ordered(sb.column("pk"), forward)], limit)

    def after(self, conn: Connection, key: SortKey | None, limit: int) -> list[ProfileRow]:
        """The ``limit`` rows that follow ``key`` (None: the first rows), in listing order."""
        if self.order.column is None:
            return self._by_pk(conn, key, limit, forward=True)
        rows: list[ProfileRow] = []
        if key is None or key[0] is not None:
            rows = self._present(conn, key, limit, forward=True)
        if len(rows) < limit:
            after_pk = key[1] if key is not None and key[0] is None else None
            rows += self._missing(conn, after_pk, limit - len(rows), forward=True)
        return rows

    def before(self, conn: Connection, key: SortKey | None, limit: int) -> list[ProfileRow]:
        """The ``limit`` rows just before ``key`` (None: the last rows), in listing order."""
        if self.order.column is None:
            return self._by_pk(conn, key, limit, forward=False)[::-1]
        rows: list[ProfileRow] = []
        if key is None or key[0] is None:
            rows = self._missing(conn, key[1] if key is not None else None, limit, forward=False)
        if len(rows) < limit:
            present_key = key if key is not None and key[0] is not None else None
            rows += self._present(conn, present_key, limit - len(rows), forward=False)
        return rows[::-1]

    def count(self, conn: Connection, cap: int | None = COUNT_CAP) -> tuple[int, bool]:
        """How many profiles the listing holds, stopping at ``cap`` (then the flag is True).
        A segment's members without a search are counted exactly, however they are sorted."""
        if not self._filtered:
            return profile_total(conn), False
        if self.members is not None and not search_terms(self.listing.search):
            return len(self.members), False
        binder = sb.Binder()
        inner = (exp.select(exp.Literal.number(1)).from_(sb.table("profiles"), copy=False)
                 .where(sb.conjunction(self._filters(conn, binder)), copy=False))
        if cap is not None:
            inner = inner.limit(binder.bind(cap + 1), copy=False)
        counted = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=sb.ident("s"))), copy=False)
        found = int(run(conn, counted, binder)[0][0])
        if cap is not None and found > cap:
            return cap, True
        return found, False


def run(conn: Connection, query: exp.Expression, binder: sb.Binder) -> list[Any]:
    """All rows of a query tree, rendered for the connection's engine."""
    sql, params = conn.engine.render(query, binder.values)
    return list(conn.execute(sql, params).fetchall())


def pk_in(pks: Sequence[int], binder: sb.Binder) -> exp.Expression:
    """``pk IN (the listed pks)``: one parameter, however many there are."""
    if not pks:
        return sb.FALSE.copy()
    payload = binder.bind("[" + ",".join(str(int(pk)) for pk in pks) + "]")
    return sb.column("pk").isin(query=sb.json_values(payload), copy=False)


def beyond(left: exp.Expression, right: exp.Expression, upward: bool) -> exp.Expression:
    """``left > right`` reading upward, else ``left < right`` (a keyset page's start)."""
    return exp.GT(this=left, expression=right) if upward else exp.LT(this=left, expression=right)


def ordered(column: exp.Expression, upward: bool) -> exp.Ordered:
    """ORDER BY a column, with missing values first ascending and last descending (SQLite's
    order, written out for the engines whose default differs)."""
    return exp.Ordered(this=column, desc=not upward, nulls_first=upward)


def search_terms(text: str) -> list[str]:
    """The words of a quick search; every word must appear in one of the searched fields."""
    return [term for term in text.split() if term]


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with ``\\`` as the escape: % and _ are literal."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def profile_total(conn: Connection) -> int:
    """The number of profiles in the store."""
    return int(conn.execute("SELECT count(*) FROM profiles").fetchone()[0])


def profile_rows(conn: Connection, catalog: Catalog, columns: Sequence[str],
                 pks: Sequence[int], today: dt.date) -> list[ProfileRow]:
    """Rows of the given profiles, in the order of ``pks`` (missing ones are skipped)."""
    if not pks:
        return []
    query = ProfileQuery(catalog, Listing(tuple(columns)), today, members=pks)
    found = {row.pk: row for row in query.after(conn, None, len(pks))}
    return [found[pk] for pk in pks if pk in found]


# ------------------------------------------------------------------ segment members


def segment_members(conn: Connection, catalog: Catalog, resolved: ResolvedSegment,
                    as_of: dt.datetime) -> array[int]:
    """The pks of a segment's audience at ``as_of``, ascending, 8 bytes each.

    Evaluated once per filter; the browser then pages through the array
    instead of evaluating the segment again for every page.
    """
    from store.query.compiler import compile_segment, finish, membership, pk_column, profiles_select

    compiled = compile_segment(resolved, catalog, as_of, conn.engine.dialect)
    query = profiles_select(membership(compiled), pk_column()).order_by(
        exp.Ordered(this=pk_column(), nulls_first=True))
    final = finish(query, compiled.values, compiled.dialect)
    conn.engine.prepare_reads(conn)
    members: array[int] = array("q")
    for chunk in conn.engine.stream(conn, final.sql, final.params, 20_000):
        members.extend(row[0] for row in chunk)
    return members


class MemberSlice:
    """Known members listed by pk: every page is a slice of the pk array, read by pk."""

    def __init__(self, catalog: Catalog, columns: Sequence[str], members: Sequence[int],
                 today: dt.date, descending: bool = False) -> None:
        self.catalog = catalog
        self.columns = tuple(columns)
        self.members = members
        self.today = today
        self.descending = descending

    def _rows(self, conn: Connection, start: int, end: int, reverse: bool) -> list[ProfileRow]:
        pks = list(self.members[max(start, 0):max(end, 0)])
        if reverse:
            pks.reverse()
        return profile_rows(conn, self.catalog, self.columns, pks, self.today)

    def after(self, conn: Connection, key: SortKey | None, limit: int) -> list[ProfileRow]:
        if self.descending:
            end = bisect_left(self.members, key[1]) if key else len(self.members)
            return self._rows(conn, end - limit, end, True)
        start = bisect_right(self.members, key[1]) if key else 0
        return self._rows(conn, start, start + limit, False)

    def before(self, conn: Connection, key: SortKey | None, limit: int) -> list[ProfileRow]:
        if self.descending:
            start = bisect_right(self.members, key[1]) if key else 0
            return self._rows(conn, start, start + limit, True)
        end = bisect_left(self.members, key[1]) if key else len(self.members)
        return self._rows(conn, end - limit, end, False)

    def count(self, conn: Connection, cap: int | None = COUNT_CAP) -> tuple[int, bool]:
        return len(self.members), False


def listing_source(catalog: Catalog, listing: Listing, today: dt.date,
                   members: Sequence[int] | None = None) -> ProfileQuery | MemberSlice:
    """The fastest way to page through ``listing``, restricted to ``members`` when given."""
    if members is not None and not search_terms(listing.search) and listing.sort is None:
        return MemberSlice(catalog, listing.columns, members, today, listing.descending)
    return ProfileQuery(catalog, listing, today, members)


# ------------------------------------------------------------------ one profile


@dataclass(frozen=True)
class AttributeValue:
    """One attribute of one profile, as the profile view shows it."""

    name: str
    label: str
    group: str
    type: str
    value: Any
    description: str = ""
    derived: bool = False


def load_attributes(conn: Connection, catalog: Catalog, pk: int,
                    today: dt.date) -> list[AttributeValue] | None:
    """Every attribute of the profile ``pk`` in catalog order (age at ``today``); None if absent."""
    stored = [a for a in catalog.attributes.values() if not a.derived_from]
    sql = "SELECT " + ", ".join(quote_identifier(a.column) for a in stored) + \
        " FROM profiles WHERE pk = ?"
    row = conn.execute(sql, (pk,)).fetchone()
    if row is None:
        return None
    raw = {a.name: value for a, value in zip(stored, row, strict=True)}
    values = []
    for attribute in catalog.attributes.values():
        source = derived_source(attribute)
        derived = source is not None
        if source is not None:
            born = parse_date(str(raw.get(source))[:10]) if raw.get(source) else None
            value: Any = age_on(born, today) if born else None
        else:
            value = raw[attribute.name]
        values.append(AttributeValue(attribute.name, attribute.display_label,
                                     attribute.group or "Other", attribute.type, value,
                                     attribute.description, derived))
    return values


def pk_of(conn: Connection, profile_id: str) -> int | None:
    """The pk of the profile with external id ``profile_id``."""
    row = conn.execute("SELECT pk FROM profiles WHERE id = ?", (profile_id,)).fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class Activity:
    """How often one event type happened for a profile, and when first and last."""

    type: str
    label: str
    count: int
    first_ts: int
    last_ts: int


@dataclass(frozen=True)
class ProfileSummary:
    """The headline facts of a profile's history."""

    events: int
    orders: int | None
    spend: float | None
    first_ts: int | None
    last_ts: int | None
    activity: list[Activity] = field(default_factory=list)


_PURCHASE_LIKE = ("purchase", "order", "transaction", "buy")
_ORDER_FIELD_LIKE = ("order_id", "order", "transaction_id", "order_number")
_AMOUNT_LIKE = ("amount", "revenue", "total", "value", "spend", "price")


def _purchase_types(catalog: Catalog) -> list[str]:
    exact = [name for name in catalog.event_types if name in _PURCHASE_LIKE]
    if exact:
        return exact
    return [name for name in catalog.event_types if any(w in name for w in _PURCHASE_LIKE)]


def _first_field(catalog: Catalog, names: tuple[str, ...], numeric: bool) -> str | None:
    for wanted in names:
        found = catalog.event_fields.get(wanted)
        if found is not None and (not numeric or found.type in ("integer", "number")):
            return wanted
    return None


def profile_summary(conn: Connection, catalog: Catalog, pk: int) -> ProfileSummary:
    """Event counts by type, orders, total spend and the first and last activity of ``pk``.

    Orders are distinct order ids when events carry one, else purchase events;
    spend is the sum of the amount field over purchase events (None when the
    store has no such events or field).
    """
    by_id = {t.id: t for t in catalog.event_types.values()}
    activity = []
    for type_id, count, first, last in conn.execute(
        "SELECT type_id, count(*), min(ts), max(ts) FROM events WHERE profile_pk = ?"
        " GROUP BY type_id ORDER BY count(*) DESC, type_id", (pk,)
    ):
        event_type = by_id.get(type_id)
        name = event_type.name if event_type else f"type {type_id}"
        label = (event_type.label if event_type else "") or label_from_name(name)
        activity.append(Activity(name, label, int(count), int(first), int(last)))
    total = sum(a.count for a in activity)
    first_ts = min((a.first_ts for a in activity), default=None)
    last_ts = max((a.last_ts for a in activity), default=None)
    purchase_types = _purchase_types(catalog)
    orders: int | None = None
    spend: float | None = None
    if purchase_types:
        ids = [catalog.event_types[name].id for name in purchase_types]
        marks = ", ".join("?" * len(ids))
        where = f"profile_pk = ? AND type_id IN ({marks})"
        order_field = _first_field(catalog, _ORDER_FIELD_LIKE, numeric=False)
        amount_field = _first_field(catalog, _AMOUNT_LIKE, numeric=True)
        parts = ["count(*)"]
        if order_field:
            parts.append(f"count(DISTINCT {quote_identifier(catalog.event_fields[order_field].column)})")
        if amount_field:
            amount = quote_identifier(catalog.event_fields[amount_field].column)
            parts.append(f"sum(CAST({amount} AS DOUBLE PRECISION))")
        row = conn.execute(f"SELECT {', '.join(parts)} FROM events WHERE {where}", (pk, *ids)).fetchone()
        orders = int(row[1]) if order_field and row[1] else int(row[0])
        if amount_field:
            spend = float(row[-1] or 0.0)
    return ProfileSummary(total, orders, spend, first_ts, last_ts, activity)


@dataclass(frozen=True)
class EventDetail:
    """One field shown on a timeline line: its label, type and value."""

    name: str
    label: str
    type: str
    value: Any


@dataclass(frozen=True)
class TimelineEvent:
    """One event of a profile, with its fields and the fields of the entities it links to."""

    pk: int
    ts: float
    type: str
    label: str
    details: tuple[EventDetail, ...]

    @property
    def key(self) -> tuple[float, int]:
        return (self.ts, self.pk)


_ENTITY_FIELD_PREFERENCE = ("name", "title", "category", "brand", "price")


def _entity_fields_shown(catalog: Catalog) -> list[tuple[str, str, str, str, str]]:
    """(entity, link field, table, field, column) of the entity fields a timeline shows."""
    shown = []
    for entity in catalog.entities.values():
        if entity.link_field not in catalog.event_fields:
            continue
        names = [n for n in _ENTITY_FIELD_PREFERENCE if n in entity.fields]
        if not names:
            names = [n for n in entity.fields if n != entity.key_field][:3]
        for name in names:
            shown.append((entity.name, entity.link_field, entity.table, name,
                          entity.fields[name].column))
    return shown


def timeline_page(conn: Connection, catalog: Catalog, pk: int, *,
                  older_than: tuple[float, int] | None = None,
                  newer_than: tuple[float, int] | None = None, oldest: bool = False,
                  limit: int = PAGE_SIZE, types: Sequence[str] | None = None) -> list[TimelineEvent]:
    """A page of the events of ``pk``, always returned newest first.

    By default the newest ``limit`` events, or those just older than
    ``older_than`` = (ts, event pk). With ``newer_than`` (or ``oldest``: from
    the very first event) the ``limit`` events just after that point instead.
    Each event carries its own non-missing fields and the chosen fields of the
    entities it links to (a product's name, category and price).
    """
    ascending = newer_than is not None or oldest
    fields = list(catalog.event_fields.values())
    entity_fields = _entity_fields_shown(catalog)
    entities = sorted({(e, link, table) for e, link, table, _, _ in entity_fields})
    aliases = {name: f"x{i}" for i, (name, _, _) in enumerate(entities)}
    select = ["e.pk", "e.ts", "e.type_id"]
    select += [f"e.{quote_identifier(f.column)}" for f in fields]
    select += [f"{aliases[e]}.{quote_identifier(col)}" for e, _, _, _, col in entity_fields]
    sql = "SELECT " + ", ".join(select) + " FROM events e"
    for name, link, table in entities:
        alias = aliases[name]
        link_column = quote_identifier(catalog.event_fields[link].column)
        sql += f" LEFT JOIN {quote_identifier(table)} {alias} ON {alias}.key = e.{link_column}"
    sql += " WHERE e.profile_pk = ?"
    params: list[Any] = [pk]
    if older_than is not None:
        sql += " AND (e.ts, e.pk) < (?, ?)"
        params += [older_than[0], older_than[1]]
    if newer_than is not None:
        sql += " AND (e.ts, e.pk) > (?, ?)"
        params += [newer_than[0], newer_than[1]]
    if types:
        ids = [catalog.event_types[t].id for t in types if t in catalog.event_types]
        if not ids:
            return []
        sql += f" AND e.type_id IN ({', '.join('?' * len(ids))})"
        params += ids
    direction = "ASC" if ascending else "DESC"
    sql += f" ORDER BY e.ts {direction}, e.pk {direction} LIMIT ?"
    params.append(limit)
    by_id = {t.id: t for t in catalog.event_types.values()}
    result = []
    for row in conn.execute(sql, params):
        event_type = by_id.get(row[2])
        details: list[EventDetail] = []
        offset = 3
        own = {}
        for f, value in zip(fields, row[offset:offset + len(fields)], strict=True):
            if value is not None:  # a field another event type uses is missing here
                own[f.name] = EventDetail(f.name, f.label or label_from_name(f.name),
                                          f.type, value)
        offset += len(fields)
        linked: list[EventDetail] = []
        for (entity, link, _, name, _), value in zip(entity_fields, row[offset:], strict=True):
            if value is None or link not in own:
                continue
            ef = catalog.entities[entity].fields[name]
            if name in ("name", "title"):  # a product's name reads best as "Product ..."
                label = catalog.entities[entity].label or label_from_name(entity)
            else:
                label = ef.label or label_from_name(name)
            linked.append(EventDetail(f"{entity}.{name}", label, ef.type, value))
        details.extend(linked)
        details.extend(own.values())
        name = event_type.name if event_type else f"type {row[2]}"
        label = (event_type.label if event_type else "") or label_from_name(name)
        result.append(TimelineEvent(int(row[0]), whole(row[1]), name, label, tuple(details)))
    return result[::-1] if ascending else result


def whole(ts: float) -> float:
    """An event time as stored, as an int when it has no fraction (the same on every engine;
    a fraction is kept, so a timeline page starts exactly after the last one shown)."""
    return int(ts) if float(ts).is_integer() else float(ts)


class TimelineSource:
    """A profile's events as a keyset-paged list, newest first."""

    def __init__(self, catalog: Catalog, pk: int, types: Sequence[str] | None = None) -> None:
        self.catalog = catalog
        self.pk = pk
        self.types = types

    def after(self, conn: Connection, key: tuple[float, int] | None,
              limit: int) -> list[TimelineEvent]:
        return timeline_page(conn, self.catalog, self.pk, older_than=key, limit=limit,
                             types=self.types)

    def before(self, conn: Connection, key: tuple[int, int] | None,
               limit: int) -> list[TimelineEvent]:
        return timeline_page(conn, self.catalog, self.pk, newer_than=key, oldest=key is None,
                             limit=limit, types=self.types)
