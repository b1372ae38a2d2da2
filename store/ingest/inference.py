"""Strict per-column type inference for imported files, and the converters that follow from it.

A column's type is the join of the kinds of all its non-empty values: integer
and number meet as number, date and datetime as datetime, anything else that
differs as string. So a column is integer only if every value is an integer,
and one stray word makes it a string: predictable, never a guess from a sample.

Text values (CSV, and JSON strings) are classified by their spelling; JSON
numbers and booleans keep their own kind. Converters turn a whole column of a
chunk into stored values (see ``store.schema.values`` for the storage rules) in one
list comprehension, which is what keeps large imports fast.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store.errors import InputError
from store.ingest.readers import RowProblem
from store.schema.values import (
    END_EPOCH_SECONDS,
    INTEGER_RE,
    MIN_EPOCH_SECONDS,
    NUMBER_RE,
    OUT_OF_RANGE_WHY,
    AttrType,
    datetime_out_of_range,
    day_start_epoch,
    epoch_from_micros,
    epoch_in_range,
    epoch_year,
    format_datetime,
    parse_date,
    parse_datetime,
    read_datetime,
    reconcile_types,
    to_epoch_seconds,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The epoch microseconds a timestamp may have: the years 1-9999 in UTC.
MIN_EPOCH_MICROS, END_EPOCH_MICROS = MIN_EPOCH_SECONDS * 1_000_000, END_EPOCH_SECONDS * 1_000_000
# Only a datetime on the first or the last day a datetime can hold can be moved out of
# the years 1-9999 by its offset: a cheap test before the exact one.
_EDGE_DAYS = ("0001-01-01", "9999-12-31")
_BOOLEANS = {"true": 1, "false": 0}

ColumnConverter = Callable[[Sequence[Any]], Sequence[Any]]


def join_kinds(a: AttrType | None, b: AttrType) -> AttrType:
    """The type of a column holding values of kinds ``a`` and ``b``."""
    if a is None or a == b:
        return b
    pair = {a, b}
    if pair == {"integer", "number"}:
        return "number"
    if pair == {"date", "datetime"}:
        return "datetime"
    return "string"


def _is_int64_text(text: str) -> bool:
    if not INTEGER_RE.match(text):
        return False
    return len(text) < 19 or INT64_MIN <= int(text) <= INT64_MAX


def text_kind(text: str) -> AttrType:
    """The kind of one non-empty text value, by its spelling alone.

    A whole number that does not fit 64 bits is a string (kept exactly, digit for
    digit: as a number it would be rounded). A datetime whose offset moves it out of
    the years 1-9999 in UTC is still a datetime by its spelling; the column keeps it
    in ``ColumnInference.out_of_range`` and the import refuses its row when the column
    is stored as a datetime.
    """
    if INTEGER_RE.match(text):
        return "integer" if _is_int64_text(text) else "string"
    if NUMBER_RE.match(text):
        return "number"
    if text.lower() in _BOOLEANS:
        return "boolean"
    if parse_date(text) is not None:
        return "date"
    if read_datetime(text) is not None:
        return "datetime"
    return "string"


def _keeps_number(text: str) -> bool:
    """A number's spelling, but not a whole number past 64 bits (that one is a string)."""
    if NUMBER_RE.match(text) is None:
        return False
    return not INTEGER_RE.match(text) or _is_int64_text(text)


def json_kind(value: Any) -> AttrType | str | None:
    """The kind of one JSON value; None when missing; a sentence (why) when it cannot be stored."""
    kind = type(value)
    if kind is str:
        return text_kind(value) if value else None
    if value is None:
        return None
    if kind is bool:
        return "boolean"
    if kind is int:  # past 64 bits a string, as for text: a float would round it
        return "integer" if INT64_MIN <= value <= INT64_MAX else "string"
    if kind is float:
        return "number" if math.isfinite(value) else "not a finite number"
    if kind is dict:
        return "a nested object is not a value"
    if kind is list:
        return "a nested array is not a value"
    return f"unsupported JSON value ({kind.__name__})"


def json_text(value: Any) -> str:
    """A JSON value as it reads in the file, for messages and for string columns."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# Cheap checks that a text value keeps a column at its current type.
_KEEPS: dict[str, Callable[[str], bool]] = {
    "integer": lambda v: (v.isdecimal() and len(v) < 19) or _is_int64_text(v),
    "number": _keeps_number,
    "boolean": lambda v: v.lower() in _BOOLEANS,
    "date": lambda v: parse_date(v) is not None,
    "datetime": lambda v: parse_datetime(v) is not None or parse_date(v) is not None,
}


# Whole-chunk checks: the distinct values joined by a separator and matched by one
# regular expression (in C), ASCII spellings only; a miss falls back to the
# value-by-value check, so they only ever speed things up.
_SEP = "\x1f"
_DAY = r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][Zz]?"
_SHAPES: dict[str, str] = {
    "integer": r"[+-]?[0-9]{1,18}",
    # a whole number only up to 18 digits: a longer one may not fit 64 bits (a string)
    "number": r"[+-]?(?:[0-9]{1,18}|[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
              r"|\.[0-9]+(?:[eE][+-]?[0-9]+)?)",
    "boolean": r"(?i:true|false)",
    "date": _DAY,
    "datetime": _DAY + f"(?:{_CLOCK})?",
}
_ALL = {kind: re.compile(f"(?:{shape})?(?:{_SEP}(?:{shape})?)*") for kind, shape in _SHAPES.items()}
_CALENDAR_KINDS = ("date", "datetime")
# A column whose first chunk holds at least DISTINCT_SAMPLE values, MOSTLY_DISTINCT of them
# different, is stored as mostly distinct values (``Engine.column_storage``). n values drawn from
# D different ones show about n * (1 - n / 2D) different: 99% means D is some fifty times the
# sample or more (emails, ids, times to the second), not 20,000 birth dates seen 4,000 at a time.
DISTINCT_SAMPLE = 1000
MOSTLY_DISTINCT = 0.99


def _joined(values: Sequence[str]) -> str | None:
    """The values joined by the separator, None if a value holds the separator itself."""
    try:
        joined = _SEP.join(values)
    except TypeError:  # JSON numbers among the values
        return None
    return joined if joined.count(_SEP) == len(values) - 1 else None


def _all_fit(kind: str, values: Sequence[str]) -> bool:
    """True when every value ('' = missing) certainly keeps a column of ``kind``."""
    pattern = _ALL.get(kind)
    joined = _joined(values) if pattern is not None else None
    if joined is None or pattern is None or pattern.fullmatch(joined) is None:
        return False
    if kind in _CALENDAR_KINDS:  # the shape is right; numpy checks the calendar (Feb 30)
        try:
            np.array(values).astype("U19").astype("datetime64[s]")
        except ValueError:
            return False
    return True


@dataclass
class ColumnInference:
    """The type of one column so far, with the first value seen of each kind (for messages)."""

    name: str
    kind: AttrType | None = None
    examples: dict[AttrType, tuple[int, str]] = field(default_factory=dict)
    # datetimes whose offset moves them out of the years 1-9999 in UTC: how many, and
    # the first ones (line, value), bad rows if the column is stored as a datetime
    out_of_range: list[tuple[int, str]] = field(default_factory=list)
    out_of_range_count: int = 0
    # the share of different values among the first chunk's, when it held enough to judge
    distinct_share: float | None = None

    def observe_distinct(self, values: Sequence[Any]) -> None:
        """Judge, on the first chunk only, how many values differ (``mostly_distinct``)."""
        if self.distinct_share is not None:
            return
        present = [value for value in values if value is not None and value != ""]
        if len(present) < DISTINCT_SAMPLE:
            self.distinct_share = 0.0  # too few to judge: taken as repeated values
            return
        try:
            self.distinct_share = len(set(present)) / len(present)
        except TypeError:  # JSON lists or objects among the values
            self.distinct_share = 0.0

    @property
    def mostly_distinct(self) -> bool:
        """Whether the column's values mostly differ from each other (emails, external ids)."""
        return (self.distinct_share or 0.0) >= MOSTLY_DISTINCT

    def _note_out_of_range(self, found: list[tuple[int, str]]) -> None:
        found.sort()
        self.out_of_range_count += len(found)
        self.out_of_range.extend(found[:MAX_OUT_OF_RANGE - len(self.out_of_range)])

    def range_problems(self) -> list[RowProblem]:
        """The first datetimes out of the years 1-9999, as bad rows."""
        return [RowProblem(line, self.name, text, OUT_OF_RANGE_WHY)
                for line, text in self.out_of_range]

    def observe_text(self, values: Sequence[str], lines: Sequence[int]) -> None:
        """Take in one chunk's text values ('' is missing)."""
        if self.kind == "string":
            return
        if self.kind is not None and _all_fit(self.kind, values):
            return
        keeps = _KEEPS.get(self.kind) if self.kind else None
        out_of_range: set[str] = set()
        for value in dict.fromkeys(values):
            if not value or (keeps is not None and keeps(value)):
                continue
            kind = text_kind(value)
            if kind not in self.examples:
                self.examples[kind] = (lines[values.index(value)], value)
            if kind == "datetime" and value.startswith(_EDGE_DAYS) \
                    and datetime_out_of_range(value):
                out_of_range.add(value)
            joined = join_kinds(self.kind, kind)
            if joined != self.kind:
                self.kind = joined
                if joined == "string":  # text keeps every value as written
                    return
                keeps = _KEEPS.get(joined)
        if out_of_range:
            self._note_out_of_range([(line, value) for line, value
                                     in zip(lines, values, strict=True) if value in out_of_range])

    def observe_json(self, values: Sequence[Any], lines: Sequence[int],
                     bad: list[RowProblem]) -> None:
        """Take in one chunk's JSON values; values that cannot be stored go to ``bad``."""
        out_of_range: list[tuple[int, str]] = []
        for position, value in enumerate(values):
            if value is None:
                continue
            kind = json_kind(value)
            if kind is None:
                continue
            if kind not in _KINDS:
                bad.append(RowProblem(lines[position], self.name, json_text(value), kind))
                continue
            typed: AttrType = kind  # type: ignore[assignment]
            if typed not in self.examples:
                self.examples[typed] = (lines[position], json_text(value))
            if typed == "datetime" and value.startswith(_EDGE_DAYS) \
                    and datetime_out_of_range(value):
                out_of_range.append((lines[position], value))
            self.kind = join_kinds(self.kind, typed)
        if out_of_range:
            self._note_out_of_range(out_of_range)

    def conflict(self, schema_type: AttrType, what: str) -> RowProblem | None:
        """A report naming a value that does not fit ``schema_type``, or None if the column fits."""
        if self.kind is None or reconcile_types(schema_type, self.kind) is not None:
            return None
        misfits = sorted(
            (line, text, kind) for kind, (line, text) in self.examples.items()
            if reconcile_types(schema_type, kind) is None
        )
        line, text, kind = misfits[0] if misfits else (0, "", self.kind)
        return RowProblem(line, self.name, text,
                      f"{_a(kind)} {kind} value, but {what} is {_a(schema_type)} {schema_type} in the store")


_KINDS = frozenset({"string", "integer", "number", "boolean", "date", "datetime"})
MAX_OUT_OF_RANGE = 10  # as many as a report shows


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def check_type(name: str, inferred: ColumnInference, schema_type: AttrType | None,
               what: str) -> AttrType | RowProblem | None:
    """The type to store the column as, a report of the value that conflicts, or None (skip).

    None means the column has no value at all and no type in the store yet, so
    there is nothing to declare.
    """
    if schema_type is None:
        return inferred.kind
    if inferred.kind is None:
        return schema_type
    found = inferred.conflict(schema_type, what)
    if found is not None:
        return found
    final = reconcile_types(schema_type, inferred.kind)
    if final is None:  # pragma: no cover - conflict() found it above
        raise InputError(f"Column {name!r} does not fit the store.")
    return final


# ---------------------------------------------------------------- converters


def datetime_text(text: str) -> str:
    """A valid date or datetime text as the stored datetime text (UTC)."""
    size = len(text)
    if size == 10:
        return text + " 00:00:00"
    if (size == 19 or (size == 20 and text[19] in "Zz")) and text[10] in "T " \
            and text[13] == ":" and text[16] == ":":
        return f"{text[:10]} {text[11:19]}"  # no offset, whole seconds: only the spelling changes
    moment = parse_datetime(text)
    if moment is None:  # pragma: no cover - inference checked every value
        raise InputError(f"{text!r} is not a datetime.")
    return format_datetime(moment)


def text_converter(final: AttrType) -> ColumnConverter:
    """Converts a column of checked text values ('' = missing) to stored values of ``final``."""
    if final in ("string", "date"):
        return lambda col: [v or None for v in col] if "" in col else col
    if final == "integer":
        return lambda col: [int(v) if v else None for v in col] if "" in col else list(map(int, col))
    if final == "number":
        return lambda col: ([float(v) if v else None for v in col] if "" in col
                            else list(map(float, col)))
    if final == "boolean":
        return lambda col: [_BOOLEANS[v.lower()] if v else None for v in col]
    return lambda col: [datetime_text(v) if v else None for v in col]


def _json_value(final: AttrType) -> Callable[[Any], Any]:
    """Converts one checked JSON value to the stored value of ``final``."""

    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        if final == "string":
            return json_text(value)
        if final == "integer":
            return int(value)
        if final == "number":
            return float(value)
        if final == "boolean":
            if isinstance(value, bool):
                return int(value)
            return _BOOLEANS[value.lower()]
        if final == "date":
            return value
        return datetime_text(value)

    return convert


def json_converter(final: AttrType) -> ColumnConverter:
    """Converts a column of checked JSON values to stored values of ``final``."""
    convert = _json_value(final)
    return lambda col: [convert(v) for v in col]


def converter(final: AttrType, is_json: bool) -> ColumnConverter:
    return json_converter(final) if is_json else text_converter(final)


def id_text(value: Any) -> str | None:
    """A profile id or a key as text; None if missing (empty or only white space) or not an
    id (a JSON float, bool, object). An id is not trimmed: " p1" stays " p1"."""
    if type(value) is str:
        return None if not value or value.isspace() else value
    if type(value) is int:
        return str(value)
    return None


# ---------------------------------------------------------------- event timestamps

TimestampParser = Callable[[Any], float | None]
EPOCH_FORMATS = {"epoch": 1, "epoch_ms": 1000}


def timestamp_parser(time_format: str | None) -> TimestampParser:
    """A function from a timestamp value to epoch seconds (UTC; an int for a whole second,
    else a float keeping the fraction: ``values.epoch_from_micros``), None when it is not one.

    Default: ISO 8601 datetimes (``T`` or space, optional offset, converted to
    UTC) and plain dates (midnight UTC). ``epoch`` / ``epoch_ms``: numbers of
    seconds / milliseconds since 1970. Anything else is a ``strptime`` format;
    a parsed time without an offset is UTC.
    """
    if time_format is None:
        return _iso_parser()
    if time_format in EPOCH_FORMATS:
        return _epoch_parser(EPOCH_FORMATS[time_format])
    if "%" not in time_format:
        raise InputError(f"--time-format {time_format!r} is not a strftime format (like"
                         " '%d/%m/%Y %H:%M') nor 'epoch' or 'epoch_ms'.")
    return _strptime_parser(time_format)


def _iso_parser() -> TimestampParser:
    days: dict[str, int | None] = {}

    def parse(value: Any) -> float | None:
        if type(value) is not str:
            return None
        size = len(value)
        if (size == 19 or (size == 20 and value[19] in "Zz")) and value[10] in "T " \
                and value[13] == ":" and value[16] == ":":
            day_text = value[:10]
            day = days.get(day_text, -1)
            if day == -1:
                parsed = parse_date(day_text)
                day = None if parsed is None else day_start_epoch(parsed)
                if len(days) > 100_000:
                    days.clear()
                days[day_text] = day
            clock = value[11:13] + value[14:16] + value[17:19]
            if day is not None and clock.isascii() and clock.isdigit():
                hours, minutes, seconds = int(clock[:2]), int(clock[2:4]), int(clock[4:])
                if hours < 24 and minutes < 60 and seconds < 60:
                    return day + hours * 3600 + minutes * 60 + seconds
        moment = parse_datetime(value)
        if moment is not None:
            return to_epoch_seconds(moment)
        date = parse_date(value)
        return None if date is None else day_start_epoch(date)

    return parse


def _epoch_parser(divisor: int) -> TimestampParser:
    """Seconds (divisor 1) or milliseconds (1000) since 1970; fractions below a
    microsecond are dropped."""
    micros_per_unit = 1_000_000 // divisor

    low, end = MIN_EPOCH_MICROS, END_EPOCH_MICROS
    integer = INTEGER_RE.match

    def parse(value: Any) -> float | None:
        if type(value) is str and integer(value):  # the usual case, inline
            micros = int(value) * micros_per_unit
        else:
            found = _epoch_micros(value, micros_per_unit)
            if found is None:
                return None
            micros = found
        if low <= micros < end:
            return epoch_from_micros(micros)
        return None  # not an instant of the years 1-9999

    return parse


def _epoch_micros(value: Any, micros_per_unit: int) -> int | None:
    """A number of seconds or milliseconds (int, float or its text) as whole microseconds."""
    kind = type(value)
    if kind is int:
        return int(value) * micros_per_unit
    if kind is str:
        if INTEGER_RE.match(value):
            return int(value) * micros_per_unit
        if not NUMBER_RE.match(value):
            return None
        value = float(value)
    elif kind is not float:
        return None
    return math.floor(value * micros_per_unit) if math.isfinite(value) else None


def _strptime_parser(time_format: str) -> TimestampParser:
    def parse(value: Any) -> float | None:
        if type(value) is not str:
            return None
        try:
            moment = dt.datetime.strptime(value, time_format)
        except ValueError:
            return None
        seconds = to_epoch_seconds(moment)  # an offset (%z) may move it out of 1-9999
        return seconds if epoch_in_range(seconds) else None

    return parse


def parse_timestamps(values: Sequence[Any], parse: TimestampParser,
                     time_format: str | None) -> tuple[np.ndarray, list[int]]:
    """A column of timestamps as epoch seconds, and the positions of the values that are not.

    The array is of integers, or of floats when a time has a fraction of a second (the
    whole seconds among them become integers again as SQLite stores them in ``ts``).

    ISO 8601 columns in the usual spellings (``YYYY-MM-DD``, with ``T`` or a
    space and ``HH:MM:SS``, maybe ``Z``) are parsed by numpy in one go; any
    other column, or one with a bad value, goes value by value.
    """
    if time_format is None and values and "" not in values:  # the shapes allow '' (missing)
        joined = _joined(values)
        if joined is not None and _ALL["datetime"].fullmatch(joined):
            try:
                seconds = np.array(values).astype("U19").astype("datetime64[s]")
            except ValueError:
                pass
            else:
                return seconds.astype(np.int64), []
    parsed = list(map(parse, values))
    bad = [position for position, stamp in enumerate(parsed) if stamp is None]
    stamps = [0 if stamp is None else stamp for stamp in parsed]
    exact = all(type(stamp) is int for stamp in stamps)
    return np.array(stamps, dtype=np.int64 if exact else np.float64), bad


def timestamp_problem(value: Any, time_format: str | None) -> str:
    """Why a timestamp value was refused, in words."""
    if value is None or value == "":
        return "missing timestamp"
    if time_format is None:
        if not isinstance(value, str):
            return ("a number is not an ISO 8601 timestamp (use --time-format epoch or"
                    " epoch_ms for seconds or milliseconds since 1970)")
        if datetime_out_of_range(value):
            return OUT_OF_RANGE_WHY
        return "not an ISO 8601 datetime or a date (YYYY-MM-DD); see --time-format"
    if time_format in EPOCH_FORMATS:
        return _epoch_problem(value, time_format)
    if isinstance(value, str):
        try:
            dt.datetime.strptime(value, time_format)
        except ValueError:
            pass
        else:  # it reads, but its offset moves it out of the years 1-9999
            return OUT_OF_RANGE_WHY
    return f"does not match --time-format {time_format!r}"


def _epoch_problem(value: Any, time_format: str) -> str:
    """Why a number of seconds or milliseconds was refused; for one past the year 9999,
    the year it would be, and what was probably meant."""
    unit = "seconds" if time_format == "epoch" else "milliseconds"
    micros = _epoch_micros(value, 1_000_000 // EPOCH_FORMATS[time_format])
    if micros is None:
        return f"not a number of {unit}"
    year = epoch_year(micros // 1_000_000)
    if time_format == "epoch" and MIN_EPOCH_MICROS <= micros // 1000 < END_EPOCH_MICROS:
        return f"is year {year} as seconds; milliseconds need --time-format epoch_ms"
    return f"is year {year} as {unit}, outside the years 1-9999"
