"""Refresh schedules: when ``refresh --due`` (run by cron or a systemd timer) refreshes an audience.

An audience's schedule is ``off`` (the default), ``hourly``, ``daily`` or
``weekly``. Its next run is its last activation plus the interval; it is due
from a tenth of the interval before that, so a refresh that itself took a
few seconds does not push the next one past the following cron tick. Only
active audiences are due.
"""

from __future__ import annotations

import datetime as dt

from store.errors import InputError
from store.schema.values import UTC

SCHEDULES: dict[str, dt.timedelta | None] = {
    "off": None,
    "hourly": dt.timedelta(hours=1),
    "daily": dt.timedelta(days=1),
    "weekly": dt.timedelta(weeks=1),
}
EARLY = 10  # due from interval / EARLY before the next run


def check_schedule(word: str) -> str:
    """The schedule word, or an ``InputError`` listing the known ones."""
    normalised = word.strip().lower()
    if normalised not in SCHEDULES:
        raise InputError(f"Unknown schedule {word!r}; use one of: {', '.join(SCHEDULES)}.")
    return normalised


def parse_stamp(stamp: str) -> dt.datetime:
    """A campaign store time (UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``) as an aware datetime."""
    return dt.datetime.fromisoformat(stamp.replace(" ", "T")).replace(tzinfo=UTC)


def next_run(schedule: str, last_run: str) -> dt.datetime | None:
    """When a scheduled audience is next refreshed (None when its schedule is off)."""
    interval = SCHEDULES.get(schedule)
    if interval is None:
        return None
    return parse_stamp(last_run) + interval


def is_due(schedule: str, status: str, last_run: str, now: dt.datetime) -> bool:
    """Whether ``refresh --due`` at ``now`` refreshes an audience with this schedule."""
    interval = SCHEDULES.get(schedule)
    if interval is None or status != "active":
        return False
    return now >= parse_stamp(last_run) + interval - interval / EARLY
