"""Reading import files (CSV, JSON array, NDJSON; optionally gzip) as columnar chunks.

Why columnar chunks: the importer checks and converts a slice of a column at a
time with C-level helpers (``set``, ``map``, ``zip``), which is what lets a
million-row file import in seconds. Every row keeps its line number so that a
bad value is reported where the user can find it.

Values come out as the file holds them: CSV cells are ``str`` (``''`` is a
missing value); JSON values are ``None``/``bool``/``int``/``float``/``str`` or a
nested ``dict``/``list`` (which the importer rejects). Problems that belong to
one row (a CSV row with the wrong number of fields, a JSON element that is not
an object, an NDJSON line that is not JSON) travel with the chunk; problems
that make the rest of the file unreadable (invalid UTF-8, a truncated gzip
stream, broken CSV quoting, a JSON array that does not parse) raise
``InputError`` at once.
"""

from __future__ import annotations

import codecs
import csv
import gc
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Final, Literal, cast

from store.errors import InputError
from store.files import check_input_file, printable

FileFormat = Literal["csv", "json", "ndjson"]
ProgressFn = Callable[[float], None]

CHUNK_ROWS: Final = 4_096  # rows per chunk: small enough to stay in the CPU cache
GZIP_MAGIC: Final = b"\x1f\x8b"
_JSON_WS = re.compile(r"[ \t\n\r]*")
_QUOTED = re.compile(r'"[^"]*"')
_SNIFF_BYTES: Final = 65_536
# Text with a NUL character is refused: SQLite's text functions (LIKE, instr, lower)
# stop at a NUL, so such a value could not be matched the way the spec says.
NUL: Final = "\x00"
_JSON_NUL: Final = "\\u0000"
NUL_WHY: Final = "holds a NUL character (\\x00), which text cannot hold"
BOM: Final = "\ufeff"
REPEATED_HEADER_WHY: Final = ("repeats the header line (were files joined together?);"
                              " remove it, or import the files one by one")


@dataclass(frozen=True)
class RowProblem:
    """One bad value or row: where it is, what it holds and why it cannot be imported."""

    line: int
    column: str | None
    value: object
    why: str


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a file, column by column.

    ``columns`` maps each column present in these rows to its values (one per
    row, aligned with ``lines``). A JSON column absent from every object of the
    chunk is simply not there; ``column()`` fills it with missing values.
    """

    lines: Sequence[int]
    columns: dict[str, Sequence[Any]]
    text_only: bool
    problems: tuple[RowProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, name: str) -> Sequence[Any]:
        values = self.columns.get(name)
        if values is not None:
            return values
        return ("",) * len(self.lines) if self.text_only else (None,) * len(self.lines)


class ImportFile:
    """An import file: its format, compression and a way to read it as chunks.

    The file can be read any number of times (the importer checks it once,
    then reads it again to write), each time from the start.
    """

    def __init__(self, path: str | Path, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.path = Path(path)
        self.shown = printable(self.path)  # the name in messages (it may hold any bytes)
        self.chunk_rows = chunk_rows
        self._repeat_marks: set[str] = set()  # see _csv_chunks
        check_input_file(self.path)  # read twice: a pipe or a device is refused
        try:
            self.size = self.path.stat().st_size
            with self.path.open("rb") as raw:
                magic = raw.read(2)
        except OSError as exc:
            raise InputError(f"Cannot read {self.shown}: {exc.strerror or exc}.") from exc
        self.gzip_magic = magic == GZIP_MAGIC
        self.compressed = self.path.suffix.lower() == ".gz" or self.gzip_magic
        self.format, self.delimiter = self._detect()

    @property
    def name(self) -> str:
        return self.path.name

    # ------------------------------------------------------------------ detection

    def _detect(self) -> tuple[FileFormat, str]:
        """The format from the name (``.csv``, ``.tsv``, ``.json``, ``.ndjson``, ``.jsonl``),
        else from the first character; the CSV delimiter from the header line."""
        inner = self.path.name[:-3] if self.path.name.lower().endswith(".gz") else self.path.name
        suffix = Path(inner).suffix.lower()
        head = self._head_text()
        stripped = head.lstrip(" \t\r\n")
        if not stripped:
            raise InputError(f"{self.shown}: the file is empty (no rows).")
        first = stripped[0]
        if suffix in {".ndjson", ".jsonl"}:
            return "ndjson", ","
        if suffix == ".json" or (suffix not in {".csv", ".tsv", ".txt"} and first in "[{"):
            return ("json" if first == "[" else "ndjson"), ","
        if suffix == ".tsv":
            return "csv", "\t"
        header_line = stripped.splitlines()[0] if stripped else ""
        header_line = _QUOTED.sub("", header_line)  # a delimiter inside quotes is a name's text
        if "," not in header_line:
            for candidate in (";", "\t", "|"):
                if candidate in header_line:
                    return "csv", candidate
        return "csv", ","

    def _head_text(self) -> str:
        with self._errors(), self._open_binary() as raw:
            data = raw.read(_SNIFF_BYTES)
        return data.decode("utf-8-sig", errors="replace")

    # ------------------------------------------------------------------ opening

    @contextmanager
    def _open_binary(self) -> Iterator[IO[bytes]]:
        with self.path.open("rb") as raw:
            if self.compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    yield cast(IO[bytes], unzipped)
            else:
                yield raw

    @contextmanager
    def _open_text(self) -> Iterator[tuple[IO[str], IO[bytes]]]:
        """The decoded text and the raw file underneath (whose position shows progress)."""
        with self.path.open("rb") as raw:
            if self.compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped, io.TextIOWrapper(
                    unzipped, encoding="utf-8-sig", newline=""
                ) as text:
                    yield text, raw
            else:
                with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
                    yield text, raw

    @contextmanager
    def _errors(self, near_line: Callable[[], int] | None = None) -> Iterator[None]:
        """Turn low-level reading failures into one clear ``InputError``."""
        try:
            yield
        except UnicodeDecodeError as exc:
            line = self._bad_utf8_line()
            where = f" at line {line}" if line else ""
            raise InputError(
                f"{self.shown}: not valid UTF-8 text{where} ({exc.reason});"
                " save the file as UTF-8 and try again."
            ) from exc
        except EOFError as exc:
            raise InputError(
                f"{self.shown}: the gzip data ends early (the file is truncated)."
            ) from exc
        except (gzip.BadGzipFile, zlib.error) as exc:
            if not self.gzip_magic:
                raise InputError(f"{self.shown} is not a gzip file, though its name ends in .gz;"
                                 " rename it without .gz, or compress it.") from exc
            raise InputError(f"{self.shown}: not a valid gzip file ({exc}).") from exc
        except csv.Error as exc:
            line = near_line() if near_line else 0
            raise InputError(f"{self.shown}, line {line}: cannot read the CSV ({exc}).") from exc
        except OSError as exc:
            raise InputError(f"Cannot read {self.shown}: {exc.strerror or exc}.") from exc

    def _bad_utf8_line(self) -> int:
        """The line holding the first byte that is not UTF-8 (0 if it cannot be found)."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        line = 1
        try:
            with self._open_binary() as raw:
                while block := raw.read(1 << 16):
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError as exc:
                        return line + block.count(b"\n", 0, max(exc.start, 0))
                    line += block.count(b"\n")
                decoder.decode(b"", final=True)
        except (UnicodeDecodeError, OSError, EOFError, zlib.error):
            return line
        return 0

    # ------------------------------------------------------------------ reading

    def header(self) -> list[str] | None:
        """The CSV header (column names in order); None for JSON, whose keys come with the rows."""
        if self.format != "csv":
            return None
        with self._errors(lambda: 1), self._open_text() as (text, _raw):
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            for row in reader:
                if row:
                    return self._check_header(row, reader.line_num)
        raise InputError(f"{self.shown}: the file is empty (no rows).")

    def chunks(self, progress: ProgressFn | None = None) -> Iterator[Chunk]:
        """The rows of the file, ``chunk_rows`` at a time, from the start."""
        if self.format == "csv":
            return self._csv_chunks(progress)
        if self.format == "json":
            return self._json_chunks(progress)
        return self._ndjson_chunks(progress)

    def _fraction(self, raw: IO[bytes]) -> float:
        try:
            return min(1.0, raw.tell() / self.size) if self.size else 1.0
        except (OSError, ValueError):
            return 0.0

    def _check_header(self, row: list[str], line: int) -> list[str]:
        names = [name.strip() for name in row]
        for position, name in enumerate(names, 1):
            if not name:
                raise InputError(f"{self.shown}, line {line}: column {position} has no name.")
            if NUL in name:
                raise InputError(f"{self.shown}, line {line}: the name of column {position} {NUL_WHY}.")
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InputError(f"{self.shown}, line {line}: the column {name!r} appears twice.")
            seen.add(name)
        return names

    def _csv_chunks(self, progress: ProgressFn | None) -> Iterator[Chunk]:
        state = {"line": 0}
        with self._errors(lambda: state["line"] + 1), self._open_text() as (text, raw):
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            header: list[str] | None = None
            for row in reader:
                if row:
                    header = self._check_header(row, reader.line_num)
                    break
            if header is None:
                raise InputError(f"{self.shown}: the file is empty (no rows).")
            width = len(header)
            # the first cell of a line that repeats the header, as files joined together have
            # (not in a file of one column, where a value may well be the column's name)
            self._repeat_marks = ({header[0], BOM + header[0], row[0], BOM + row[0]}
                                  if width > 1 else set())
            state["line"] = reader.line_num
            while True:
                with _gc_paused():
                    try:
                        rows = list(islice(reader, self.chunk_rows))
                    except csv.Error:
                        state["line"] = self._csv_error_line(state["line"])
                        raise
                    if not rows:
                        break
                    first = state["line"] + 1
                    state["line"] = reader.line_num
                    chunk = self._csv_chunk(header, width, rows, first, reader.line_num)
                    del rows
                yield chunk
                if progress:
                    progress(self._fraction(raw))

    def _csv_error_line(self, after_line: int) -> int:
        """The first line of the record CSV parsing fails on (read again row by row)."""
        last = after_line
        try:
            with self._open_text() as (text, _raw):
                reader = csv.reader(text, delimiter=self.delimiter, strict=True)
                for _row in reader:
                    last = reader.line_num
        except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error):
            pass
        return last

    def _csv_chunk(self, header: list[str], width: int, rows: list[list[str]], first: int,
                   last: int) -> Chunk:
        if last - first + 1 == len(rows):
            lines: Sequence[int] = range(first, last + 1)
        else:  # some quoted fields hold line breaks: count them row by row
            numbered: list[int] = []
            line = first
            for row in rows:
                numbered.append(line)
                line += 1 + sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in row)
            lines = numbered
        nul = NUL in "".join(chain.from_iterable(rows))
        try:
            firsts: Iterable[str] = list(map(itemgetter(0), rows))
        except IndexError:  # a blank line
            firsts = (row[0] for row in rows if row)
        repeats = not self._repeat_marks.isdisjoint(firsts)
        if not nul and not repeats and set(map(len, rows)) == {width}:
            return Chunk(lines, dict(zip(header, zip(*rows, strict=True), strict=True)), text_only=True)
        good: list[list[str]] = []
        good_lines: list[int] = []
        problems: list[RowProblem] = []
        for line, row in zip(lines, rows, strict=True):
            held = _nul_cell(header, row) if nul else None
            if held is not None:
                problems.append(RowProblem(line, held, None, NUL_WHY))
            elif repeats and _repeats_header(row, header):
                problems.append(RowProblem(line, None, self.delimiter.join(row)[:60],
                                           REPEATED_HEADER_WHY))
            elif len(row) == width:
                good.append(row)
                good_lines.append(line)
            elif row:  # an empty list is a blank line: skipped
                problems.append(RowProblem(
                    line, None, self.delimiter.join(row)[:60],
                    f"has {_fields(len(row))} but the header has {_fields(width)}",
                ))
        columns: dict[str, Sequence[Any]] = (
            dict(zip(header, zip(*good, strict=True), strict=True)) if good else {}
        )
        return Chunk(good_lines, columns, text_only=True, problems=tuple(problems))

    def _json_chunks(self, progress: ProgressFn | None) -> Iterator[Chunk]:
        with self._errors(), self._open_text() as (stream, _raw):
            text = stream.read()
        position = [0]
        elements = self._json_elements(text, position)
        suspect = _JSON_NUL in text  # a NUL can only be written as this escape in JSON
        while True:
            with _gc_paused():
                batch = list(islice(elements, self.chunk_rows))
                if not batch:
                    break
                held = [RowProblem(line, None, None, NUL_WHY)
                        for line, value in batch if suspect and _holds_nul(value)]
                if held:
                    batch = [(line, value) for line, value in batch if not _holds_nul(value)]
                chunk = _object_chunk([value for _, value in batch], [line for line, _ in batch],
                                      held, self.path)
                del batch
            yield chunk
            if progress:
                progress(position[0] / len(text))
        if progress:
            progress(1.0)

    def _json_elements(self, text: str, position: list[int]) -> Iterator[tuple[int, Any]]:
        """The elements of the top-level array with their first lines; ``position`` follows."""
        decoder = _DECODER
        pos = _JSON_WS.match(text, 0).end()  # type: ignore[union-attr]
        if pos >= len(text) or text[pos] != "[":
            raise InputError(
                f"{self.shown}: a .json file must hold one array of objects"
                " (or use one object per line, NDJSON)."
            )
        pos += 1
        line, counted = 1, 0
        expect_value = False
        while True:
            pos = _JSON_WS.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= len(text):
                raise self._json_error(text, pos, "the array is not closed with ']'")
            if text[pos] == "]" and not expect_value:
                pos += 1
                break
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{self.shown}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})."
                ) from exc
            except _RepeatedKey as exc:
                raise self._repeated(line, exc) from None
            position[0] = pos
            yield line, value
            pos = _JSON_WS.match(text, pos).end()  # type: ignore[union-attr]
            if pos < len(text) and text[pos] == ",":
                pos += 1
                expect_value = True
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            raise self._json_error(text, pos, "expected ',' or ']' after an element")
        rest = _JSON_WS.match(text, pos).end()  # type: ignore[union-attr]
        if rest < len(text):
            raise self._json_error(text, rest, "there is more data after the array")

    def _repeated(self, line: int, exc: _RepeatedKey) -> InputError:
        return InputError(f"{self.shown}, line {line}: the column {exc.name!r} appears twice"
                          " in one object.")

    def _json_error(self, text: str, pos: int, why: str) -> InputError:
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return InputError(f"{self.shown}, line {line}, column {column}: not valid JSON ({why}).")

    def _ndjson_chunks(self, progress: ProgressFn | None) -> Iterator[Chunk]:
        state = {"line": 0}
        with self._errors(lambda: state["line"]), self._open_text() as (text, raw):
            records = self._ndjson_records(text, state)
            while True:
                with _gc_paused():
                    batch = list(islice(records, self.chunk_rows))
                    if not batch:
                        break
                    chunk = _object_chunk(
                        [value for _, value in batch if not isinstance(value, RowProblem)],
                        [line for line, value in batch if not isinstance(value, RowProblem)],
                        [value for _, value in batch if isinstance(value, RowProblem)],
                        self.path,
                    )
                    del batch
                yield chunk
                if progress:
                    progress(self._fraction(raw))
        if progress:
            progress(1.0)

    def _ndjson_records(self, text: IO[str], state: dict[str, int]) -> Iterator[tuple[int, Any]]:
        """Each non-blank line's value, or a ``RowProblem`` for a line that is not JSON."""
        loads = _DECODER.decode
        first = True
        for number, raw_line in enumerate(text, 1):
            state["line"] = number
            stripped = raw_line.strip()
            if not stripped:
                continue
            try:
                value = loads(stripped)
                if _JSON_NUL in stripped and _holds_nul(value):
                    yield number, RowProblem(number, None, None, NUL_WHY)
                    continue
                yield number, value
            except json.JSONDecodeError as exc:
                if first:
                    self._check_one_document(number)
                yield number, RowProblem(number, None, stripped[:60],
                                         f"not valid JSON ({exc.msg}, column {exc.colno})")
            except _RepeatedKey as exc:
                raise self._repeated(number, exc) from None
            finally:
                first = False


    def _check_one_document(self, line: int) -> None:
        """When the first line of an NDJSON file is not JSON by itself: refuse the file at once
        if it is one JSON value written over several lines (a pretty-printed object is not
        one row per line; without this it reads as a "not valid JSON" problem per line)."""
        with self._open_text() as (stream, _raw):
            whole = stream.read()
        try:
            value = _DECODER.decode(whole)
        except (json.JSONDecodeError, _RepeatedKey):
            return  # not one document either: the lines' own problems say what is wrong
        if isinstance(value, dict):
            raise InputError(
                f"{self.shown}, line {line}: the file holds one JSON object written over several"
                " lines, not rows: give an array of objects ([{...}, {...}]) or one object per"
                " line (NDJSON).")
        if isinstance(value, list):
            raise InputError(
                f"{self.shown}, line {line}: the file holds one JSON array, not one object per"
                " line: name it .json (a JSON array of objects) or write one object per line.")


class _RepeatedKey(ValueError):
    """A JSON object names one key twice (Python's decoder would keep the last value)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


# One decoder for every import: it refuses a repeated key, as a CSV header's repeated name is
# refused (built once: a decoder per call would cost more than the check).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _repeats_header(row: list[str], header: list[str]) -> bool:
    """Whether a row is the header line again (names trimmed, a byte-order mark dropped)."""
    if len(row) != len(header):
        return False
    cells = [cell.strip() for cell in row]
    cells[0] = cells[0].lstrip(BOM).strip()
    return cells == header


def _nul_cell(header: list[str], row: list[str]) -> str | None:
    """The name of the first column whose value holds a NUL character (None if none does)."""
    for position, cell in enumerate(row):
        if NUL in cell:
            return header[position] if position < len(header) else f"#{position + 1}"
    return None


def _holds_nul(value: Any) -> bool:
    """Whether a JSON value (or a key or value inside it) holds a NUL character."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(NUL in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(map(_holds_nul, value))
    return False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a chunk's rows are built.

    A chunk is tens of thousands of fresh lists that all stay alive; left on,
    the collector would scan them (and everything else alive) dozens of times
    per chunk, which costs more than parsing the CSV. None of them can form a
    reference cycle, so nothing is lost by waiting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _object_chunk(values: list[Any], lines: list[int],
                  problems: list[RowProblem] | None = None, path: Path | None = None) -> Chunk:
    """Columns from JSON objects; elements that are not objects become row problems.

    Keys are trimmed as CSV header names are (``_check_header``), with the same errors
    for a key that is empty once trimmed or that two keys of one object share.
    """
    found = list(problems or ())
    if all(type(value) is dict for value in values):
        objects: list[dict[str, Any]] = values
        kept_lines: Sequence[int] = lines
    else:
        objects, kept = [], []
        for line, value in zip(lines, values, strict=True):
            if isinstance(value, dict):
                objects.append(value)
                kept.append(line)
            else:
                found.append(RowProblem(line, None, _short(value),
                                        f"is a JSON {_json_kind(value)}, not an object"))
        kept_lines = kept
    names = dict.fromkeys(chain.from_iterable(objects))
    if any(not name or name[0].isspace() or name[-1].isspace() for name in names):
        objects = _trimmed_keys(objects, kept_lines, path)
        names = dict.fromkeys(chain.from_iterable(objects))
    columns: dict[str, Sequence[Any]] = {
        name: [obj.get(name) for obj in objects] for name in names
    }
    found.sort(key=lambda problem: problem.line)
    return Chunk(kept_lines, columns, text_only=False, problems=tuple(found))


def _trimmed_keys(objects: list[dict[str, Any]], lines: Sequence[int],
                  path: Path | None) -> list[dict[str, Any]]:
    """The objects with their keys trimmed; raises as for a CSV header when a key is empty
    once trimmed, or when two keys of one object trim to the same name."""
    where = f"{printable(path)}, line" if path is not None else "line"
    trimmed: list[dict[str, Any]] = []
    for line, obj in zip(lines, objects, strict=True):
        names = [key.strip() for key in obj]
        for position, name in enumerate(names, 1):
            if not name:
                raise InputError(f"{where} {line}: column {position} has no name.")
        if len(set(names)) < len(names):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise InputError(f"{where} {line}: the column {name!r} appears twice.")
                seen.add(name)
        trimmed.append(dict(zip(names, obj.values(), strict=True)))
    return trimmed


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array"


def _short(value: object) -> object:
    """A value small enough to show in a report."""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return value
