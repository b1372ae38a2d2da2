"""What a person types in a value box, turned into rule values, and back.

Typed text is forgiving where the meaning is clear ("30 days ago", "in 2
weeks", "today", "90d", "1, 2, 3") and otherwise left as the text it is, so
the schema validator can say precisely what is wrong with it. ``ValueError``
carries a hint for the editor when the shape itself cannot be read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from store.schema.values import format_datetime
from store.segments.model import GAP_UNITS, UNITS, Duration, Period, RelativeDate, Window

_UNIT_WORDS: Final[dict[str, str]] = {
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "weeks": "weeks",
    "m": "months", "mo": "months", "month": "months", "months": "months",
    "y": "years", "yr": "years", "year": "years", "years": "years",
}
_AMOUNT_UNIT = r"(\d+)\s*([a-z]+)"
_AGO = re.compile(_AMOUNT_UNIT + r"\s+ago\Z")
_FROM_NOW = re.compile(r"(?:in\s+)?" + _AMOUNT_UNIT + r"(?:\s+from\s+now)?\Z")
_PERIOD = re.compile(r"(?:(?:the\s+)?(?:last|next)\s+)?(\d+)\s*([a-z]*)\Z")
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")

DATE_HINT: Final = "YYYY-MM-DD, today, 30 days ago, in 2 weeks"
DATE_WORDS: Final = "a date like 2026-01-31, today, or 30 days ago"
PERIOD_HINT: Final = "a length such as 30 days, 2 weeks, 6 months, 1 year"

# How the schema check words a date it cannot read, in the YAML's terms; the editors say it in
# the words a person types instead.
_YAML_DATE = re.compile(r"a date YYYY-MM-DD( or an ISO 8601 datetime)?, a relative date"
                        r" \(\{ago: N, unit: U\}, \{from_now: N, unit: U\}\) or 'today'")
_YAML_RELATIVE = ((re.compile(r"\{ago: N, unit: U\}"), "30 days ago"),
                  (re.compile(r"\{from_now: N, unit: U\}"), "in 2 weeks"))


def plain_message(message: str) -> str:
    """A schema problem as the editors show it: dates described by what one can type
    ("a date like 2026-01-31, today, or 30 days ago"), not by their YAML form."""
    message = _YAML_DATE.sub(lambda m: DATE_WORDS + (" (or an ISO 8601 datetime)"
                                                     if m.group(1) else ""), message)
    for pattern, words in _YAML_RELATIVE:
        message = pattern.sub(words, message)
    return message


def unit_of(word: str) -> str | None:
    return _UNIT_WORDS.get(word.lower())


def parse_period(text: str) -> Period:
    """``30 days``, ``30d``, ``last 2 weeks``, ``90`` (days) -> Period; ValueError otherwise."""
    cleaned = " ".join(text.lower().split())
    match = _PERIOD.match(cleaned)
    if not match:
        raise ValueError(f"expected {PERIOD_HINT}")
    unit = unit_of(match.group(2)) if match.group(2) else "days"
    if unit is None:
        raise ValueError(f"unknown unit {match.group(2)!r}; use {', '.join(UNITS)}")
    return Period(int(match.group(1)), unit)  # type: ignore[arg-type]


_GAP_UNIT_WORDS: Final[dict[str, str]] = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "weeks": "weeks",
}
GAP_HINT: Final = "a length such as 30 minutes, 2 hours, 1 day, 2 weeks (or empty)"


def parse_duration(text: str) -> Duration | None:
    """A sequence gap's length: ``2 hours``, ``30 min``, ``1d``; None when empty; ValueError
    (with a hint) otherwise. Months and years are refused: a gap is a fixed length."""
    cleaned = " ".join(text.lower().split())
    if not cleaned:
        return None
    match = re.match(r"(\d+)\s*([a-z]+)\Z", cleaned)
    if not match:
        raise ValueError(f"expected {GAP_HINT}")
    unit = _GAP_UNIT_WORDS.get(match.group(2))
    if unit is None:
        raise ValueError(f"unknown unit {match.group(2)!r}; use {', '.join(GAP_UNITS)}")
    return Duration(int(match.group(1)), unit)  # type: ignore[arg-type]


def duration_text(length: Duration | None) -> str:
    if length is None:
        return ""
    unit = length.unit[:-1] if length.amount == 1 else length.unit
    return f"{length.amount} {unit}"


def parse_window(kind: str, last: str, low: str, high: str) -> Window | None:
    """A ``within`` from an editor's boxes: ``ever`` (None), ``last`` N units, ``between``
    two dates; ValueError (with a hint) when the length cannot be read."""
    if kind == "last":
        return Window(last=parse_period(last))
    if kind == "between":
        return Window(between=(parse_scalar(low, "datetime"), parse_scalar(high, "datetime")))
    return None


def window_texts(window: Window | None) -> tuple[str, str, str, str]:
    """The editor's boxes for a ``within``: (kind, last, from, to)."""
    if window is not None and window.last is not None:
        return "last", to_text(window.last), "", ""
    if window is not None and window.between is not None:
        return "between", "30 days", to_text(window.between[0]), to_text(window.between[1])
    return "ever", "30 days", "", ""


def parse_relative_date(text: str) -> RelativeDate | None:
    """``today``, ``yesterday``, ``30 days ago``, ``in 2 weeks``, ``2 weeks from now``."""
    cleaned = " ".join(text.lower().split())
    if cleaned in ("today", "now"):
        return RelativeDate("today")
    if cleaned == "yesterday":
        return RelativeDate("ago", 1, "days")
    if cleaned == "tomorrow":
        return RelativeDate("from_now", 1, "days")
    match = _AGO.match(cleaned)
    direction = "ago"
    if not match and (cleaned.startswith("in ") or cleaned.endswith(" from now")):
        match = _FROM_NOW.match(cleaned)
        direction = "from_now"
    if not match:
        return None
    unit = unit_of(match.group(2))
    if unit is None:
        return None
    return RelativeDate(direction, int(match.group(1)), unit)  # type: ignore[arg-type]


def parse_scalar(text: str, attr_type: str) -> Any:
    """One value of ``attr_type``; text that does not fit is returned as is for the validator."""
    cleaned = text.strip()
    if attr_type == "integer" and _INT.match(cleaned):
        return int(cleaned)
    if attr_type == "number":
        if _INT.match(cleaned):
            return int(cleaned)
        if _FLOAT.match(cleaned):
            return float(cleaned)
    if attr_type in ("date", "datetime"):
        relative = parse_relative_date(cleaned)
        if relative is not None:
            return relative
    if attr_type == "boolean" and cleaned.lower() in ("true", "false"):
        return cleaned.lower() == "true"
    return cleaned


def parse_list(text: str, attr_type: str) -> tuple[Any, ...]:
    """Comma-separated values (``Shoes, Boots``); empty items are dropped."""
    return tuple(parse_scalar(item, attr_type) for item in text.split(",") if item.strip())


def split_values(text: str) -> list[str]:
    """A pasted list of values: separated by newlines, tabs or commas (a column copied from a
    spreadsheet, a line of an email); blanks dropped, repeats kept once, in order."""
    items = (item.strip() for line in text.splitlines() for cell in line.split("\t")
             for item in cell.split(","))
    return list(dict.fromkeys(item for item in items if item))


MAX_FILE_VALUES = 100_000  # as many as a list condition takes (store.segments.validate)


def read_value_file(path: str, headers: tuple[str, ...] = ()) -> list[str]:
    """The values of a one-column file (one per line; CSV quoting understood; gzip not). A
    first line equal to one of ``headers`` (the field's name or label, any case) is the
    header and skipped. Raises ``ValueError`` with a message for a person."""
    import csv
    from pathlib import Path

    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    rows = list(csv.reader(text.splitlines()))
    wanted = {header.strip().lower() for header in headers}
    values: list[str] = []
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if len([c for c in cells if c]) > 1:
            raise ValueError(f"{path} has more than one column (line {number}: {','.join(row)!r});"
                             " keep only the column of values")
        value = next((c for c in cells if c), "")
        if not value or (number == 1 and value.lower() in wanted):
            continue
        values.append(value)
    values = list(dict.fromkeys(values))
    if not values:
        raise ValueError(f"{path} holds no values")
    if len(values) > MAX_FILE_VALUES:
        raise ValueError(f"{path} holds {len(values):,} values; a list takes at most"
                         f" {MAX_FILE_VALUES:,}")
    return values


def to_text(value: Any) -> str:
    """A rule value as the text that parses back to it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, RelativeDate):
        if value.direction == "today":
            return "today"
        unit = value.unit[:-1] if value.amount == 1 else value.unit
        if value.direction == "ago":
            return f"{value.amount} {unit} ago"
        return f"in {value.amount} {unit}"
    if isinstance(value, Period):
        unit = value.unit[:-1] if value.amount == 1 else value.unit
        return f"{value.amount} {unit}"
    if isinstance(value, tuple | list):
        return ", ".join(to_text(v) for v in value)
    if isinstance(value, dt.datetime):
        return format_datetime(value).replace(" ", "T") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
