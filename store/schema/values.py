"""Attribute types and how values of each type are written to and read from SQLite.

Storage rules (one place, shared by import, the sample generator, the compiler
and the reference evaluator):

- string: TEXT; the empty string is stored as NULL (both mean "missing").
- integer: INTEGER; number: REAL; boolean: INTEGER 0/1.
- date: TEXT ``YYYY-MM-DD``.
- datetime: TEXT ``YYYY-MM-DD HH:MM:SS`` in UTC, with ``.ffffff`` only when the
  fraction is not zero, so that text order is time order.
- event timestamps (the ``ts`` column of events): seconds since the Unix
  epoch, UTC: an INTEGER for a whole second, else a REAL that keeps the
  microseconds (``epoch_from_micros``), so ``ts <= A`` holds exactly as the
  times read in the file.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final, Literal

AttrType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
ATTR_TYPES: Final[tuple[AttrType, ...]] = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
)
SQL_AFFINITY: Final[dict[str, str]] = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "INTEGER",
    "date": "TEXT",
    "datetime": "TEXT",
}

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL: Final = EPOCH.date().toordinal()
DAYS_PER_400_YEARS: Final = 146_097
# The instants a datetime can hold: 0001-01-01T00:00:00Z up to (not including) the year 10000.
MIN_EPOCH_SECONDS: Final = (1 - EPOCH_ORDINAL) * 86400
END_EPOCH_SECONDS: Final = (dt.date.max.toordinal() + 1 - EPOCH_ORDINAL) * 86400
OUT_OF_RANGE_WHY: Final = "falls outside the years 1-9999 in UTC"

INTEGER_RE = re.compile(r"[+-]?\d+\Z")
NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?\Z"
)


def parse_date(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` string as a date, or None if it is not one."""
    if not DATE_RE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def read_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 datetime as written (its own offset, or naive), or None if it is not one."""
    if not DATETIME_RE.match(text):
        return None
    cleaned = text.replace(" ", "T", 1)
    if cleaned[-1] in "zZ":
        cleaned = cleaned[:-1] + "+00:00"
    match = re.search(r"\.(\d+)", cleaned)
    if match and len(match.group(1)) > 6:  # fromisoformat takes at most microseconds
        cleaned = cleaned[: match.start(1) + 6] + cleaned[match.end(1) :]
    try:
        return dt.datetime.fromisoformat(cleaned)
    except ValueError:
        return None


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 datetime (``T`` or space) as an aware UTC datetime, or None.

    A datetime without an offset is taken as UTC; one with an offset is converted.
    None too when the offset moves the instant out of the years 1-9999 in UTC
    (``9999-12-31T23:59:59-05:00``): ``datetime_out_of_range`` tells that case apart.
    """
    value = read_datetime(text)
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def datetime_out_of_range(text: str) -> bool:
    """True for an ISO 8601 datetime whose offset moves it out of the years 1-9999 in UTC."""
    return read_datetime(text) is not None and parse_datetime(text) is None


def parse_boolean(text: str) -> bool | None:
    """``true``/``false`` in any case; nothing else is a boolean."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def format_datetime(value: dt.datetime) -> str:
    """The stored text form of a datetime (UTC, sortable)."""
    value = value.astimezone(UTC) if value.tzinfo else value
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def epoch_from_micros(micros: int) -> int | float:
    """Seconds since the epoch from microseconds: an int for a whole second, else a float.

    Every stored timestamp and every bound compared with one is made here, by the same
    arithmetic, so equal instants give equal numbers; a float64 near today's epoch
    seconds is exact to a quarter of a microsecond, so distinct microseconds stay apart
    and in order.
    """
    whole, fraction = divmod(micros, 1_000_000)
    return whole if not fraction else whole + fraction / 1_000_000


def to_epoch_seconds(value: dt.datetime) -> int | float:
    """Seconds since the epoch, the stored form of event timestamps (see the module)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return epoch_from_micros((delta.days * 86400 + delta.seconds) * 1_000_000
                             + delta.microseconds)


def from_epoch_seconds(seconds: float) -> dt.datetime:
    """The UTC instant of epoch seconds; raises OverflowError outside the years 1-9999."""
    return EPOCH + dt.timedelta(seconds=seconds)


def epoch_in_range(seconds: float) -> bool:
    """Whether epoch seconds fall within the years 1-9999 in UTC (what a datetime can hold)."""
    return MIN_EPOCH_SECONDS <= seconds < END_EPOCH_SECONDS


def epoch_year(seconds: float) -> int:
    """The (proleptic Gregorian, UTC) year of epoch seconds, even far outside 1-9999.

    Years before 1 count on through 0, -1, ... as astronomers number them.
    """
    days = math.floor(seconds / 86400) if isinstance(seconds, float) else seconds // 86400
    cycles, day = divmod(EPOCH_ORDINAL - 1 + days, DAYS_PER_400_YEARS)
    return dt.date.fromordinal(day + 1).year + 400 * cycles


def day_start_epoch(day: dt.date) -> int:
    """Epoch seconds of midnight UTC at the start of ``day``."""
    return (day - EPOCH.date()).days * 86400


def reconcile_types(existing: AttrType, incoming: AttrType) -> AttrType | None:
    """The schema type after importing a column of ``incoming`` type, or None on conflict.

    Widening is allowed where every old and new value keeps its meaning:
    integer and number meet as number; anything goes into a string column
    (as its text); a date column of a file fits a datetime attribute (midnight).
    """
    if existing == incoming:
        return existing
    if {existing, incoming} == {"integer", "number"}:
        return "number"
    if existing == "string":
        return "string"
    if existing == "datetime" and incoming == "date":
        return "datetime"
    return None
