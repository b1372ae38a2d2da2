"""Audience size over time: the exact count at past as-of instants, from the events.

A segment's count at an earlier as-of instant is computed as if it were
that instant (windows such as "in the last 7 days" end there, events after
it are not seen), so even a segment made today has a history. Attribute
values are the profiles' current ones: the store keeps no history of them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta

from store.engines.base import Connection
from store.engines.cancel import Cancel
from store.errors import InputError
from store.query.audience import count
from store.schema.catalog import Catalog
from store.segments.validate import ResolvedSegment

MAX_POINTS = 400
UNITS = {"d": "days", "w": "weeks", "m": "months"}
_SPAN = re.compile(r"^\s*(\d{1,5})\s*([dwmDWM])\s*$")


@dataclass(frozen=True)
class Span:
    """A length of time such as ``1w`` (one week) or ``3m`` (three calendar months)."""

    amount: int
    unit: str  # days | weeks | months

    def back(self, moment: dt.datetime, times: int = 1) -> dt.datetime:
        """``moment`` moved back ``times`` spans (months clamp to the month's end)."""
        if self.unit == "months":
            return moment - relativedelta(months=self.amount * times)
        return moment - dt.timedelta(**{self.unit: self.amount * times})

    def __str__(self) -> str:
        return f"{self.amount}{self.unit[0]}"


def parse_span(text: str, option: str) -> Span:
    """``1w``, ``12w``, ``30d``, ``6m`` as a ``Span``; anything else is an ``InputError``."""
    match = _SPAN.match(text or "")
    if match is None or int(match.group(1)) == 0:
        raise InputError(f"{option} {text!r}: give a number and a unit, d (days), w (weeks) or"
                         " m (months), e.g. 1w or 12w.")
    return Span(int(match.group(1)), UNITS[match.group(2).lower()])


def instants(as_of: dt.datetime, every: Span, last: Span) -> list[dt.datetime]:
    """The as-of instants of a trend, oldest first: ``as_of`` and every ``every`` before it
    while still within ``last`` of it (``--every 1w --last 12w``: 12 weekly points)."""
    start = last.back(as_of)
    points: list[dt.datetime] = []
    step = 0
    while True:
        moment = every.back(as_of, step)
        if moment <= start:
            break
        points.append(moment)
        if len(points) > MAX_POINTS:
            raise InputError(f"--every {every} over --last {last} gives more than {MAX_POINTS}"
                             " points; take a longer --every or a shorter --last.")
        step += 1
    points.reverse()
    return points


@dataclass(frozen=True)
class TrendPoint:
    as_of: dt.datetime
    count: int


def trend(conn: Connection, resolved: ResolvedSegment, points: list[dt.datetime],
          catalog: Catalog | None = None, cancel: Cancel | None = None) -> list[TrendPoint]:
    """The segment's exact size at each instant (the same count as ``count --as-of``)."""
    catalog = catalog or Catalog.load(conn)
    for moment in points:
        resolved.check_bounds(moment)
    return [TrendPoint(moment, count(conn, resolved, moment, catalog, cancel)) for moment in points]


def trend_json(points: list[TrendPoint], segment_id: str, total: int) -> dict[str, Any]:
    """The ``trend --json`` object: ``points`` oldest first."""
    return {"segment_id": segment_id, "total": total,
            "points": [{"as_of": p.as_of.isoformat(), "count": p.count} for p in points]}
