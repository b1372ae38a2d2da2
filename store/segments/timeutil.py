"""Calendar arithmetic for rules: the as-of date, relative dates and periods.

Months and years are calendar arithmetic clamped to the month's end
(2026-03-31 minus 1 month = 2026-02-28), as ``dateutil.relativedelta`` does.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

from store.segments.model import Period, RelativeDate

UTC = dt.UTC


def as_of_date(as_of: dt.datetime) -> dt.date:
    """D: the UTC date of the as-of instant."""
    return as_of.astimezone(UTC).date() if as_of.tzinfo else as_of.date()


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    """``day`` moved by ``amount`` units (negative: back), months clamped to the month's end."""
    if unit == "days":
        return day + dt.timedelta(days=amount)
    if unit == "weeks":
        return day + dt.timedelta(weeks=amount)
    if unit == "months":
        return day + relativedelta(months=amount)
    if unit == "years":
        return day + relativedelta(years=amount)
    raise ValueError(f"unknown unit {unit!r}")


def resolve(value: object, today: dt.date) -> object:
    """A typed rule value with relative dates replaced by the date they mean at ``today``."""
    if isinstance(value, RelativeDate):
        if value.direction == "today":
            return today
        sign = -1 if value.direction == "ago" else 1
        return shift(today, sign * value.amount, value.unit)
    if isinstance(value, tuple):
        return tuple(resolve(v, today) for v in value)
    return value


def last_window(today: dt.date, period: Period) -> tuple[dt.date, dt.date]:
    """``in_last N U``: the inclusive range of dates (D - N U, D], as (first, last)."""
    return shift(today, -period.amount, period.unit) + dt.timedelta(days=1), today


def next_window(today: dt.date, period: Period) -> tuple[dt.date, dt.date]:
    """``in_next N U``: the inclusive range of dates [D, D + N U), as (first, last)."""
    return today, shift(today, period.amount, period.unit) - dt.timedelta(days=1)


def age_on(birth: dt.date, today: dt.date) -> int:
    """Whole years from ``birth`` to ``today``; a birthday on ``today`` counts."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
