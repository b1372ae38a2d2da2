"""Attribute conditions as two-valued SQL predicates (profile attributes and event fields).

Every positive predicate is ``(x IS NOT NULL AND <comparison>)``, so it is
never NULL: it is false on a missing value, and each negative operator is
exactly ``NOT (positive twin)``, which matches missing values too
(spec/segments.md). Date ranges are written as ``x >= 'first' AND x < 'day
after last'`` on the stored text, which works for date and datetime columns
alike and lets an index on the column be used. Derived ``age`` becomes ranges
on the birth date column.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from store.errors import InputError
from store.query import sqlbuild as sb
from store.schema.values import AttrType, format_datetime
from store.segments.model import NEGATIVE_TWIN, AttributeCondition, Period
from store.segments.timeutil import last_window, next_window, resolve, shift

LONG_LIST = 500  # longer IN lists travel as one JSON parameter
LONG_PATTERN_BYTES = 40_000  # SQLite refuses LIKE patterns over 50,000 bytes
MAX_AGE_RANGES = 64  # more disjoint age ranges: compare a computed age instead
LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class Target:
    """What a condition tests: a column of a type, or (``age``) a birth date column."""

    expr: exp.Expression
    type: AttrType
    age: bool = False


class Predicates:
    """Builds predicates for one query: values go to the query's binder."""

    def __init__(self, binder: sb.Binder, today: dt.date) -> None:
        self.binder = binder
        self.today = today

    def bind(self, value: Any) -> exp.Placeholder:
        return self.binder.bind(value)

    # ------------------------------------------------------------------ entry point
    def condition(self, cond: AttributeCondition, target: Target, path: str) -> exp.Expression:
        op = cond.op
        if op in NEGATIVE_TWIN:
            positive = AttributeCondition(cond.attribute, NEGATIVE_TWIN[op], cond.value)
            return sb.negate(self.condition(positive, target, path))
        column = target.expr
        if op == "is_empty":
            if target.type == "string" and not target.age:
                return sb.disjunction([sb.is_null(column), column.copy().eq(self.bind(""))])
            return sb.is_null(column)
        if target.age:
            return self.age(op, cond.value, column, path)
        if target.type == "string":
            return self.string(op, cond.value, column)
        if target.type in ("integer", "number"):
            return self.number(op, cond.value, column)
        if target.type == "boolean":
            if op not in ("is_true", "is_false"):
                raise InputError(f"{path}: operator {op!r} does not apply to a boolean")
            return self.guard(column, column.copy().eq(self.bind(op == "is_true")))
        return self.date(op, cond.value, column, path)

    # ------------------------------------------------------------------ field comparisons
    def fields(self, op: str, left: Target, right: Target) -> exp.Expression:
        """``left op right`` for two fields of compatible types (spec: Field comparisons):
        false unless both are present; ``not_equals`` is the complement of ``equals``. A date
        against a datetime compares dates (the stored text's first ten characters); two
        datetimes compare as instants (their sortable stored text)."""
        if op == "not_equals":
            return sb.negate(self.fields("equals", left, right))
        a, b = self.field_value(left), self.field_value(right)
        if left.type in ("date", "datetime") and left.type != right.type:
            a, b = self.day(a, left), self.day(b, right)
        make: dict[str, Callable[..., exp.Expression]] = {
            "equals": exp.EQ, "on": exp.EQ, "greater_than": exp.GT, "after": exp.GT,
            "greater_or_equal": exp.GTE, "less_than": exp.LT, "before": exp.LT,
            "less_or_equal": exp.LTE,
        }
        if op not in make:
            raise ValueError(f"field comparison operator {op!r}")
        return sb.conjunction([*self.present(left), *self.present(right),
                               make[op](this=a, expression=b)])

    def present(self, target: Target) -> list[exp.Expression]:
        """The terms that hold when a field has a value (text: also not '')."""
        terms = [sb.not_null(target.expr)]
        if target.type == "string" and not target.age:
            terms.append(exp.NEQ(this=target.expr.copy(), expression=self.bind("")))
        return terms

    def field_value(self, target: Target) -> exp.Expression:
        return self.age_expression(target.expr) if target.age else target.expr.copy()

    def day(self, value: exp.Expression, target: Target) -> exp.Expression:
        """date(x) of a stored datetime (its first ten characters); a date as it is."""
        if target.type != "datetime":
            return value
        return exp.Substring(this=value, start=self.bind(1), length=self.bind(10))

    def guard(self, column: exp.Expression, *comparisons: exp.Expression) -> exp.Expression:
        """A two-valued positive predicate: false on a missing value."""
        return sb.conjunction([sb.not_null(column), *comparisons])

    # ------------------------------------------------------------------ strings
    def string(self, op: str, value: Any, column: exp.Expression) -> exp.Expression:
        if op == "equals":
            return self.guard(column, column.copy().eq(self.bind(value)))
        if op == "in":
            return self.guard(column, self.member(column, value))
        if op in ("contains", "starts_with", "ends_with"):
            return self.guard(column, self.like(op, str(value), column))
        raise ValueError(f"string operator {op!r}")

    def like(self, op: str, value: str, column: exp.Expression) -> exp.Expression:
        """Case-insensitive (ASCII) match with ``%`` and ``_`` taken literally: SQLite's LIKE,
        which the other engines' rendering folds the same way (``store.engines.dialects``)."""
        if len(value.encode("utf-8")) > LONG_PATTERN_BYTES:
            return self.long_like(op, value, column)
        escaped = (value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
                   .replace("_", LIKE_ESCAPE + "_"))
        pattern = {"contains": f"%{escaped}%", "starts_with": f"{escaped}%",
                   "ends_with": f"%{escaped}"}[op]
        like = exp.Like(this=column.copy(), expression=self.bind(pattern))
        return exp.Escape(this=like, expression=exp.Literal.string(LIKE_ESCAPE))

    def long_like(self, op: str, value: str, column: exp.Expression) -> exp.Expression:
        """The same match without LIKE, for values too long to be a LIKE pattern.

        SQLite's ``lower()`` folds ASCII only, exactly like its LIKE.
        """
        lowered = exp.Lower(this=column.copy())
        needle = exp.Lower(this=self.bind(value))
        if op == "contains":
            found = exp.Anonymous(this="instr", expressions=[lowered, needle])
            return exp.GT(this=found, expression=self.bind(0))
        length = exp.Length(this=self.bind(value))
        if op == "starts_with":
            head = exp.Substring(this=lowered, start=self.bind(1), length=length)
            return head.eq(needle)
        tail = exp.Substring(this=lowered, start=exp.Neg(this=length))
        return tail.eq(needle)

    def member(self, column: exp.Expression, values: Sequence[Any]) -> exp.Expression:
        """``x IN (...)``; a long list is one JSON parameter read with ``json_each`` (an array
        parameter on the engines that have them, see ``store.engines.dialects``)."""
        unique = list(dict.fromkeys(sb.sql_values(values)))
        if len(unique) > LONG_LIST:
            payload = json.dumps(unique, ensure_ascii=False, allow_nan=False)
            return column.copy().isin(query=sb.json_values(self.bind(payload)), copy=False)
        return column.copy().isin(*(self.bind(v) for v in unique), copy=False)

    # ------------------------------------------------------------------ numbers
    def number(self, op: str, value: Any, column: exp.Expression) -> exp.Expression:
        if op == "in":
            return self.guard(column, self.member(column, value))
        return self.guard(column, *self.compare(op, value, column))

    def compare(self, op: str, value: Any, left: exp.Expression) -> list[exp.Expression]:
        """A numeric comparison (the aggregate operators and the number operators)."""
        make: dict[str, Callable[..., exp.Expression]] = {
            "equals": exp.EQ, "greater_than": exp.GT, "greater_or_equal": exp.GTE,
            "less_than": exp.LT, "less_or_equal": exp.LTE,
        }
        if op == "between":
            low, high = value
            return [exp.GTE(this=left.copy(), expression=self.bind(low)),
                    exp.LTE(this=left.copy(), expression=self.bind(high))]
        if op not in make:
            raise ValueError(f"numeric operator {op!r}")
        return [make[op](this=left.copy(), expression=self.bind(value))]

    # ------------------------------------------------------------------ dates
    def date(self, op: str, value: Any, column: exp.Expression, path: str) -> exp.Expression:
        if op == "in_last":
            return self.date_span(column, *window_or_open(last_window, self.today, value))
        if op == "in_next":
            return self.date_span(column, *window_or_open(next_window, self.today, value))
        resolved = self.resolve(value, path)
        if op == "on":
            if isinstance(resolved, dt.datetime):
                return self.guard(column, column.copy().eq(self.bind(format_datetime(resolved))))
            return self.date_span(column, resolved, resolved)
        if op == "before":
            if isinstance(resolved, dt.datetime):
                return self.guard(column, exp.LT(this=column.copy(),
                                                 expression=self.bind(format_datetime(resolved))))
            return self.guard(column, exp.LT(this=column.copy(),
                                             expression=self.bind(resolved.isoformat())))
        if op == "after":
            if isinstance(resolved, dt.datetime):
                return self.guard(column, exp.GT(this=column.copy(),
                                                 expression=self.bind(format_datetime(resolved))))
            following = next_day(resolved)
            if following is None:
                return sb.FALSE.copy()
            return self.date_span(column, following, None)
        if op == "between":
            low, high = resolved
            return self.guard(column, *self.lower_bound(column, low), *self.upper_bound(column, high))
        raise ValueError(f"date operator {op!r}")

    def lower_bound(self, column: exp.Expression, low: dt.date) -> list[exp.Expression]:
        """``x >= low``: a datetime bound is an instant, a date bound the start of that day."""
        text = format_datetime(low) if isinstance(low, dt.datetime) else low.isoformat()
        return [exp.GTE(this=column.copy(), expression=self.bind(text))]

    def upper_bound(self, column: exp.Expression, high: dt.date) -> list[exp.Expression]:
        """``x <= high``: a datetime bound is an instant, a date bound takes in the whole day."""
        if isinstance(high, dt.datetime):
            return [exp.LTE(this=column.copy(), expression=self.bind(format_datetime(high)))]
        after = next_day(high)
        if after is None:
            return []
        return [exp.LT(this=column.copy(), expression=self.bind(after.isoformat()))]

    def date_span(self, column: exp.Expression, first: dt.date | None,
                  last: dt.date | None) -> exp.Expression:
        """``first <= date(x) <= last`` (None: unbounded), as a range on the stored text."""
        if first is not None and last is not None and first > last:
            return sb.FALSE.copy()
        terms: list[exp.Expression] = []
        if first is not None:
            terms.append(exp.GTE(this=column.copy(), expression=self.bind(first.isoformat())))
        if last is not None:
            terms.extend(self.upper_bound(column, last))
        return self.guard(column, *terms)

    def resolve(self, value: Any, path: str) -> Any:
        """Relative dates made absolute at the as-of date."""
        try:
            return resolve(value, self.today)
        except (ValueError, OverflowError):
            raise InputError(f"{path}.value: the relative date falls outside the calendar"
                             f" (as of {self.today.isoformat()})") from None

    # ------------------------------------------------------------------ age
    def age(self, op: str, value: Any, birth: exp.Expression, path: str) -> exp.Expression:
        """Age at the as-of date as ranges of birth dates (a birthday on D counts)."""
        if op == "in":
            ranges = age_runs(value)
        else:
            ranges = [age_interval(op, value)]
        if len(ranges) > MAX_AGE_RANGES:
            return self.guard(birth, self.member(self.age_expression(birth), value))
        return sb.disjunction([self.age_span(birth, low, high) for low, high in ranges])

    def age_span(self, birth: exp.Expression, low: int | None, high: int | None) -> exp.Expression:
        """Birth dates whose age at D is within [low, high] (None: unbounded)."""
        # age >= low  <=>  birth <= shift(D, -low years)
        # age <= high <=>  birth >  shift(D, -(high + 1) years)
        last: dt.date | None = None
        first: dt.date | None = None
        if low is not None:
            latest = shift_or_edge(self.today, -low)
            if latest == "before":
                return sb.FALSE.copy()
            if isinstance(latest, dt.date):
                last = latest
        if high is not None:
            earliest = shift_or_edge(self.today, -(high + 1))
            if earliest == "after":
                return sb.FALSE.copy()
            if isinstance(earliest, dt.date):
                first = next_day(earliest)
                if first is None:
                    return sb.FALSE.copy()
        return self.date_span(birth, first, last)

    def age_expression(self, birth: exp.Expression) -> exp.Expression:
        """Whole years from the birth date to D, computed from the stored text."""
        year = exp.Cast(this=exp.Substring(this=birth.copy(), start=self.bind(1),
                                           length=self.bind(4)),
                        to=exp.DataType.build("INTEGER"))
        month_day = exp.Substring(this=birth.copy(), start=self.bind(6), length=self.bind(5))
        not_yet = exp.Paren(this=exp.GT(this=month_day,
                                        expression=self.bind(self.today.strftime("%m-%d"))))
        return exp.Paren(this=exp.Sub(this=exp.Sub(this=self.bind(self.today.year), expression=year),
                                      expression=not_yet))


def next_day(day: dt.date) -> dt.date | None:
    """The day after, or None after the last representable day."""
    return None if day >= dt.date.max else day + dt.timedelta(days=1)


def shift_or_edge(day: dt.date, years: int) -> dt.date | str:
    """``day`` moved by whole years, or "before"/"after" when that leaves the calendar."""
    try:
        return shift(day, years, "years")
    except (ValueError, OverflowError):
        return "before" if years < 0 else "after"


def window_or_open(window: Callable[[dt.date, Period], tuple[dt.date, dt.date]], today: dt.date,
                   period: Period) -> tuple[dt.date | None, dt.date | None]:
    """An in_last / in_next date window; a bound beyond the calendar is left open."""
    try:
        return window(today, period)
    except (ValueError, OverflowError):
        if window is last_window:
            return None, today
        return today, None


def age_interval(op: str, value: Any) -> tuple[int | None, int | None]:
    """The ages an integer comparison matches, as [low, high] (None: unbounded)."""
    if op == "equals":
        return value, value
    if op == "greater_than":
        return value + 1, None
    if op == "greater_or_equal":
        return value, None
    if op == "less_than":
        return None, value - 1
    if op == "less_or_equal":
        return None, value
    if op == "between":
        return value[0], value[1]
    raise ValueError(f"age operator {op!r}")


def age_runs(values: Sequence[int]) -> list[tuple[int | None, int | None]]:
    """A list of ages as runs of consecutive ages: [30, 31, 32, 40] -> [(30, 32), (40, 40)]."""
    runs: list[tuple[int | None, int | None]] = []
    start = end = None
    for age in sorted(set(values)):
        if end is not None and age == end + 1:
            end = age
            continue
        if start is not None:
            runs.append((start, end))
        start = end = age
    if start is not None:
        runs.append((start, end))
    return runs
