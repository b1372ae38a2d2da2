"""Importing profiles, events and lookup entities into a store: all of a file, or nothing.

Every import reads its file twice. The first pass checks every row and infers
every column's type without touching the store; a file with any bad row, or a
column whose type conflicts with the store's schema, is rejected with a report
of the first bad rows, and the store is left exactly as it was (a store that
did not exist is not created). The second pass converts and writes every row
inside one write transaction, so a crash or an error in the middle leaves
nothing behind either.

Every engine holds the same rows afterwards. Where one statement per row is
cheap (SQLite) upserts go row by row; elsewhere rows go through the engine's
bulk path into a staging table and two set statements (update the ids that
exist, insert the others, numbered in the order the file first names them).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import compress, filterfalse, repeat
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from store.engines.base import Connection, Engine, engine_for
from store.engines.layout import quote_identifier, write_transaction
from store.errors import InputError, StoreError
from store.files import printable
from store.ingest.columns import ColumnSpec, boolean_converter, boolean_value
from store.ingest.inference import (
    ColumnConverter,
    ColumnInference,
    check_type,
    converter,
    id_text,
    json_text,
    parse_timestamps,
    timestamp_parser,
    timestamp_problem,
)
from store.ingest.readers import Chunk, ImportFile, RowProblem
from store.schema.activity import refresh_activity
from store.schema.catalog import (
    ID_ATTRIBUTE,
    Catalog,
    XdmKind,
    did_you_mean,
    ensure_attribute,
    ensure_entity,
    ensure_entity_field,
    ensure_event_field,
    ensure_event_type,
    set_labels,
    set_xdm,
)
from store.schema.indexes import create_missing_indexes, drop_event_indexes, ensure_indexes
from store.schema.rebuild import discard_store, remove_store_files
from store.schema.search import ensure_search_index, suspend_search_index
from store.schema.values import SQL_AFFINITY, AttrType, reconcile_types

ImportKind = Literal["profiles", "events", "entity"]
Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, bytes_done, bytes_total)``; phase is "Checking" or "Writing"."""

MAX_REPORTED = 10
ID_LOOKUP_BATCH = 500
# Rebuilding the event indexes after the insert beats updating them row by row
# once an import adds at least this share of the rows already there.
REBUILD_INDEX_RATIO = 0.5
# Pass 1 keeps the chunks it read for pass 2 while they hold at most this many
# values (about 70 bytes each: a million profiles of 12 columns, or 4 million
# events of 6 columns, whose times and profile pks pass 1 keeps as arrays, stay
# under 1.2 GB). Reading the file again costs a fifth of an import's time.
RETAIN_MAX_CELLS = 16_000_000
STAGING = "audiences_import"  # temporary tables of a set-based upsert
MERGED = "audiences_import_last"
ENTITY_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # the rule of catalog.ensure_entity


@dataclass(frozen=True)
class ImportResult:
    """What an import did, for the one-line summary and for callers."""

    kind: ImportKind
    rows: int
    created_profiles: int
    elapsed_s: float
    db_path: Path | str  # the store file, or where a server store is (never a password)
    file_path: Path
    updated_profiles: int = 0
    event_types: tuple[str, ...] = ()
    entity: str | None = None
    columns: tuple[tuple[str, AttrType], ...] = ()
    widened: tuple[str, ...] = ()  # e.g. "event field 'amount' widened from integer to number"

    @property
    def profiles(self) -> int:
        """Profiles imported: new and updated ones (a file may repeat an id: fewer than rows)."""
        return self.created_profiles + self.updated_profiles

    def summary(self) -> str:
        """One line, e.g. "Imported 1,500,000 events (3 types) into shop.db in 9.8 s", then each
        column whose stored type the import widened (an integer column that now holds a
        decimal becomes number, which changes what queries on it match: so it is said)."""
        return "; ".join((self._headline(), *self.widened))

    def _headline(self) -> str:
        where = f"into {printable(self.db_path)} in {self.elapsed_s:.1f} s"
        if self.kind == "profiles":
            rows = "" if self.rows == self.profiles else f" from {self.rows:,} rows"
            return (f"Imported {self.profiles:,} {_plural(self.profiles, 'profile')}"
                    f" ({self.created_profiles:,} new, {self.updated_profiles:,} updated)"
                    f"{rows} {where}")
        if self.kind == "events":
            details = f"{len(self.event_types):,} {_plural(len(self.event_types), 'type')}"
            if self.created_profiles:
                details += (f", {self.created_profiles:,} new"
                            f" {_plural(self.created_profiles, 'profile')}")
            return f"Imported {self.rows:,} {_plural(self.rows, 'event')} ({details}) {where}"
        return f"Imported {self.rows:,} {self.entity} {_plural(self.rows, 'row')} {where}"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


# ---------------------------------------------------------------- public API


def import_profiles(db_path: str | Path | Engine, file_path: str | Path, id_column: str | None = None,
                    *, progress: Progress | None = None,
                    xdm: Mapping[str, str] | None = None,
                    columns: Mapping[str, ColumnSpec] | None = None) -> ImportResult:
    """Upsert profiles by id: an existing id gets the file's columns, its other attributes stay.

    ``id_column`` defaults to ``id`` if the file has it, else ``profile_id``.
    Within one file, the last row of a repeated id wins. ``xdm`` gives attributes their XDM
    names for PQL (spec/pql.md), in the same transaction. ``columns`` declares types, labels,
    groups and XDM names (``store.ingest.columns``: ``--schema`` and ``--boolean``).
    """
    source = ImportFile(file_path)
    declared = {name: spec.xdm for name, spec in (columns or {}).items() if spec.xdm}
    names: list[tuple[XdmKind, str, str]] = [("attribute", name, value) for name, value
                                              in {**declared, **(xdm or {})}.items()]
    return _run(_engine(db_path), source, _ProfilesJob(source, id_column, columns), progress,
                names)


def import_events(db_path: str | Path | Engine, file_path: str | Path, profile_column: str = "profile_id",
                  type_column: str = "type", type_name: str | None = None,
                  time_column: str = "timestamp", create_profiles: bool = False,
                  time_format: str | None = None, *,
                  progress: Progress | None = None, xdm: Mapping[str, str] | None = None,
                  type_xdm: Mapping[str, str] | None = None) -> ImportResult:
    """Append events; the other columns become typed event fields of the types they appear with.

    ``type_name`` gives every row that type (the file then needs no type column).
    A row whose profile id is not in the store is bad unless ``create_profiles``.
    ``xdm`` and ``type_xdm`` give event fields and event types their XDM names for PQL.
    """
    source = ImportFile(file_path)
    job = _EventsJob(source, profile_column, type_column, type_name, time_column,
                     create_profiles, time_format)
    names: list[tuple[XdmKind, str, str]] = [
        *(("event field", name, value) for name, value in (xdm or {}).items()),
        *(("event type", name, value) for name, value in (type_xdm or {}).items())]
    return _run(_engine(db_path), source, job, progress, names)


def import_entity(db_path: str | Path | Engine, name: str, file_path: str | Path, key: str, link: str,
                  *, progress: Progress | None = None) -> ImportResult:
    """Upsert the rows of a lookup entity (e.g. products by sku) that events link to.

    ``link`` is the event field that holds the key; rules then reach the
    entity's fields as ``NAME.field``.
    """
    source = ImportFile(file_path)
    return _run(_engine(db_path), source, _EntityJob(source, name, key, link), progress)


def _engine(store: str | Path | Engine) -> Engine:
    """The engine of a store given as an engine, a path or a ``--db`` value."""
    return store if isinstance(store, Engine) else engine_for(store)


# ---------------------------------------------------------------- the two passes


def _run(engine: Engine, source: ImportFile, job: _Job, progress: Progress | None,
         xdm_names: Sequence[tuple[XdmKind, str, str]] = ()) -> ImportResult:
    started = time.perf_counter()
    engine.check_can_bulk_write()
    with _StoreAccess(engine) as store:
        job.prepare(store.conn)
        rows, retained = _check(source, job, progress)
        plan = job.plan()
        conn = store.writable()
        suspended = job.kind == "profiles" and suspend_search_index(conn, rows)
        try:
            engine.tune_for_bulk_write(conn)
            with write_transaction(conn):
                if retained is not None:
                    chunks = _replay(retained, progress, source.size)
                else:
                    read = source.chunks(_phase(progress, "Writing", source.size))
                    chunks = (chunk for chunk in read if len(chunk))
                outcome = job.write(conn, plan, chunks)
                for kind, name, xdm in xdm_names:
                    set_xdm(conn, kind, name, xdm)
        except sqlite3.Error as exc:
            if suspended:
                with contextlib.suppress(sqlite3.Error):
                    ensure_search_index(conn)
            raise StoreError(engine.describe_error(exc) + " Nothing was imported.") from exc
        # indexes of new attribute columns, and the search index (store/schema/indexes.py)
        ensure_indexes(conn)
        engine.after_bulk_write(conn)
    return ImportResult(
        kind=job.kind, rows=rows, elapsed_s=time.perf_counter() - started,
        db_path=engine.path or engine.display,
        file_path=source.path, columns=tuple(plan), widened=tuple(job.widened), **outcome,
    )


def _check(source: ImportFile, job: _Job,
           progress: Progress | None) -> tuple[int, list[Chunk] | None]:
    """Pass 1: every row checked, every column inferred; raises with a report if any is bad.

    Returns the number of rows and, when they fit in RETAIN_MAX_CELLS, the
    chunks themselves, so that pass 2 need not read the file again.
    """
    header = source.header()
    if header is not None:
        job.begin(tuple(header))
    bad = _BadRows()
    rows = cells = 0
    retained: list[Chunk] | None = []
    begun = header is not None
    for chunk in source.chunks(_phase(progress, "Checking", source.size)):
        found = list(chunk.problems)
        if len(chunk):
            if not begun:
                job.begin(tuple(chunk.columns))
                begun = True
            found.extend(job.check(chunk))
            rows += len(chunk)
            if retained is not None and not bad.count:
                kept = job.retain(chunk)
                cells += len(kept) * len(kept.columns)
                if cells <= RETAIN_MAX_CELLS:
                    retained.append(kept)
                else:
                    retained = None  # too big to keep: pass 2 reads the file again
        bad.add(found)
    bad.merge(job.late_problems())
    if bad.count:
        raise InputError(bad.report(source.path))
    if rows == 0:
        raise InputError(f"{source.shown} has no rows to import.")
    return rows, retained


def _replay(chunks: list[Chunk], progress: Progress | None, size: int) -> Iterator[Chunk]:
    """The chunks kept from pass 1, reporting progress as if the file were read again."""
    report = _phase(progress, "Writing", size)
    for number, chunk in enumerate(chunks, start=1):
        yield chunk
        if report is not None:
            report(number / len(chunks))


def _phase(progress: Progress | None, phase: str, size: int) -> Callable[[float], None] | None:
    """The reader's progress (a fraction of the file) as ``progress(phase, done, total)``."""
    if progress is None:
        return None
    return lambda fraction: progress(phase, int(fraction * size), size)


def describe_problem(problem: RowProblem) -> str:
    """One line of a report: "line 4, column 'amount', value 'abc': why"."""
    parts = [f"line {problem.line}"] if problem.line else []
    if problem.column is not None:
        parts.append(f"column {problem.column!r}")
    if problem.value is not None and problem.value != "":
        value = problem.value if isinstance(problem.value, str) else json_text(problem.value)
        parts.append(f"value {value if len(value) <= 60 else value[:57] + '...'!r}")
    return ", ".join(parts) + f": {problem.why}" if parts else problem.why


class _BadRows:
    """The first problems of a file (chunks come in line order) and how many there are."""

    def __init__(self) -> None:
        self.first: list[RowProblem] = []
        self.count = 0

    def add(self, found: list[RowProblem]) -> None:
        if not found:
            return
        self.count += len(found)
        if len(self.first) < MAX_REPORTED:
            self.first.extend(sorted(found, key=lambda row: row.line))
            del self.first[MAX_REPORTED:]

    def merge(self, found: tuple[int, list[RowProblem]]) -> None:
        """Problems known only once every row was read (how many, and the first of them),
        placed among the others by line."""
        count, first = found
        if count:
            self.count += count
            self.first = sorted([*self.first, *first], key=lambda row: row.line)[:MAX_REPORTED]

    def report(self, path: Path) -> str:
        found = "1 problem" if self.count == 1 else f"{self.count:,} problems"
        head = f"{printable(path)}: {found} in the rows; nothing was imported."
        if self.count > len(self.first):
            head += f" The first {len(self.first)}:"
        return "\n".join([head, *("  " + describe_problem(row) for row in self.first)])


class _StoreAccess:
    """The store's connection: opened if the store exists, created only when writing starts
    (the engine checks before a write that it can write: a read-only file, a role without
    rights)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.created = False  # True once this import made the store
        self.writing = False  # True once conn is the writable connection

    def __enter__(self) -> _StoreAccess:
        if self.engine.exists():  # read-only while checking: a rejected file changes no byte
            self.conn = self.engine.open_store(readonly=True)
        return self

    def writable(self) -> Connection:
        if self.conn is not None and not self.writing:
            self.conn.close()
            self.conn = None
            self.conn = self.engine.open_store()
        elif self.conn is None:
            path = self.engine.path
            self.created = path is None or not path.exists()
            self.conn = self.engine.create_store()
        self.writing = True
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None and self.created:  # a failed write leaves no empty store
            self._remove_created()
        if self.conn is not None:
            self.conn.close()
        if exc_type is not None and self.created and self.engine.path is not None:
            self.engine.release()
            remove_store_files(self.engine.path)

    def _remove_created(self) -> None:
        """The tables of a store this import created on a server (a file is deleted instead)."""
        if self.conn is not None and self.engine.path is None:
            discard_store(self.conn)


# ---------------------------------------------------------------- shared job machinery

Plan = list[tuple[str, AttrType]]


class _Job:
    """One kind of import: which columns have roles, what makes a row bad, how rows are written."""

    kind: ImportKind

    def __init__(self, source: ImportFile) -> None:
        self.source = source
        self.is_json = source.format != "csv"
        self.catalog = Catalog({ID_ATTRIBUTE.name: ID_ATTRIBUTE}, {}, {}, {})
        self.fields: dict[str, ColumnInference] = {}
        self.roles: set[str] = set()
        self.widened: list[str] = []  # plan_fields: the columns whose stored type widens

    def prepare(self, conn: Connection | None) -> None:
        if conn is not None:
            self.catalog = Catalog.load(conn)

    def begin(self, columns: tuple[str, ...]) -> None:
        """Resolve the role columns from the header, or the first rows' keys (raises if missing)."""

    def check(self, chunk: Chunk) -> list[RowProblem]:
        raise NotImplementedError

    def schema(self, name: str) -> AttrType | None:
        """The type the store already gives a field column of this import (None: none yet)."""
        raise NotImplementedError

    def late_problems(self) -> tuple[int, list[RowProblem]]:
        """Bad rows that only the whole column tells: datetimes that an offset moves out of
        the years 1-9999 in UTC, in a column stored as a datetime (a column of text keeps
        them as text). How many, and the first of them."""
        count = 0
        first: list[RowProblem] = []
        for name, inference in self.fields.items():
            if inference.out_of_range_count and self.stored_type(name, inference) == "datetime":
                count += inference.out_of_range_count
                first.extend(inference.range_problems())
        return count, first

    def stored_type(self, name: str, inference: ColumnInference) -> AttrType | None:
        """The type a field column will be stored as, if it fits the store (else None)."""
        final = check_type(name, inference, self.schema(name), "")
        return None if isinstance(final, RowProblem) else final

    def retain(self, chunk: Chunk) -> Chunk:
        """What pass 2 needs of a checked chunk (without what pass 1 already converted)."""
        return chunk

    def plan(self) -> Plan:
        raise NotImplementedError

    def write(self, conn: Connection, plan: Plan,
              chunks: Iterator[Chunk]) -> dict[str, Any]:
        raise NotImplementedError

    # helpers

    def require_column(self, columns: tuple[str, ...], name: str, option: str) -> None:
        if name not in columns:
            raise InputError(
                f"{self.source.path} has no column {name!r} (name another with {option})."
                + did_you_mean(name, list(columns))
            )

    def observe_fields(self, chunk: Chunk, bad: list[RowProblem]) -> None:
        for name, values in chunk.columns.items():
            if name in self.roles:
                continue
            inference = self.fields.get(name)
            if inference is None:
                inference = self.fields[name] = ColumnInference(name)
            inference.observe_distinct(values)
            if self.is_json:
                inference.observe_json(values, chunk.lines, bad)
            else:
                inference.observe_text(values, chunk.lines)

    def plan_fields(self, schema: Callable[[str], AttrType | None], what: str) -> Plan:
        """Each field column's type in the store; raises with a report if any conflicts."""
        plan: Plan = []
        conflicts: list[RowProblem] = []
        for name, inference in self.fields.items():
            stored = schema(name)
            final = check_type(name, inference, stored, f"{what} {name!r}")
            if isinstance(final, RowProblem):
                conflicts.append(final)
            elif final is not None:
                plan.append((name, final))
                if stored is not None and final != stored:
                    self.widened.append(f"{what} {name!r} widened from {stored} to {final}")
        if conflicts:
            raise _conflict_error(self.source.path, conflicts)
        return plan

    @staticmethod
    def field_values(chunk: Chunk, plan: Plan,
                     converters: list[ColumnConverter]) -> list[Sequence[Any]]:
        """The converted values of the planned fields (missing where a JSON chunk lacks a key)."""
        return [convert(chunk.column(name))
                for (name, _type), convert in zip(plan, converters, strict=True)]

    def ids(self, values: Sequence[Any]) -> Sequence[Any]:
        """Ids as text: JSON numbers become their digits; unusable ones None (JSON) or ''."""
        return list(map(id_text, values)) if self.is_json else values

    def missing(self, chunk: Chunk, column: str, raw: Sequence[Any], ids: Sequence[Any],
                what: str, distinct: Collection[Any] | None = None) -> list[RowProblem]:
        """Rows whose id-like value is missing (empty, or only white space) or not an id.

        ``distinct`` (the set of ``ids``, when the caller has it) makes the check cheaper.
        """
        if not self.is_json:
            values = ids if distinct is None else distinct
            if "" not in values and not any(map(str.isspace, values)):
                return []
            return [RowProblem(line, column, None, f"missing {what}")
                    for line, value in zip(chunk.lines, ids, strict=True)
                    if not value or value.isspace()]
        if None not in ids:
            return []
        return [
            RowProblem(line, column, None, f"missing {what}") if _blank(value)
            else RowProblem(line, column, json_text(value),
                            f"{what} must be text or a whole number")
            for line, value, got in zip(chunk.lines, raw, ids, strict=True) if got is None
        ]


def _a_type(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _blank(value: Any) -> bool:
    """A missing JSON id: null, or text that is empty or only white space."""
    return value is None or (isinstance(value, str) and (not value or value.isspace()))


def _conflict_error(path: Path, conflicts: list[RowProblem]) -> InputError:
    count = len(conflicts)
    head = (f"{printable(path)}: {count} {_plural(count, 'column')} {'does' if count == 1 else 'do'} not fit"
            " the store's schema; nothing was imported.")
    return InputError("\n".join([head, *("  " + describe_problem(row) for row in conflicts)]))


def _upsert_sql(table: str, key: str, columns: list[str]) -> str:
    names = [key, *columns]
    sql = (f"INSERT INTO {quote_identifier(table)}({', '.join(map(quote_identifier, names))})"
           f" VALUES ({', '.join('?' * len(names))}) ON CONFLICT({quote_identifier(key)}) DO ")
    if not columns:
        return sql + "NOTHING"
    updates = ", ".join(f"{quote_identifier(c)} = excluded.{quote_identifier(c)}" for c in columns)
    return sql + "UPDATE SET " + updates


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0])


def _next_pk(conn: Connection, table: str) -> int:
    """The key a new row gets (as SQLite numbers an integer key: one past the largest)."""
    return int(conn.execute(
        f"SELECT coalesce(max(pk), 0) + 1 FROM {quote_identifier(table)}").fetchone()[0])


class _Upsert:
    """Rows written by key (inside the caller's transaction): a row whose key is in the table
    updates the given columns, another is inserted; within the rows, the last of a key wins.

    Row by row (``INSERT ... ON CONFLICT``) where the engine makes that cheap; elsewhere
    every row goes through the engine's bulk path into a staging table, then one UPDATE and
    one INSERT. ``numbered``: new rows get ``pk`` in the order their key first appears.
    ``all_new``: the caller knows that every key is new and comes once (a first import
    without repeated ids): the rows then go through the bulk path straight into the table.
    """

    def __init__(self, conn: Connection, table: str, key: str, key_type: AttrType,
                 columns: list[str], types: list[AttrType], *, numbered: bool = False,
                 all_new: bool = False) -> None:
        self.conn = conn
        self.table = table
        self.key = key
        self.columns = columns
        self.numbered = numbered
        self.staged = not conn.engine.row_statements_are_cheap
        self.direct = self.staged and all_new
        self.seq = _next_pk(conn, table) if self.direct and numbered else 0
        if not self.staged:
            self.sql = _upsert_sql(table, key, columns)
            return
        if self.direct:
            return
        column_type = conn.engine.column_type
        definitions = ", ".join([f"seq {column_type('INTEGER')}",
                                 f"k {column_type(SQL_AFFINITY[key_type])}",
                                 *(f"c{i} {column_type(SQL_AFFINITY[t])}"
                                   for i, t in enumerate(types))])
        conn.execute(f"DROP TABLE IF EXISTS {STAGING}")
        conn.execute(f"CREATE TEMPORARY TABLE {STAGING} ({definitions})")

    def write(self, batches: Iterable[tuple[Sequence[Any], list[Sequence[Any]]]]) -> None:
        """Every batch of rows: their keys, and the values of each column."""
        if not self.staged:
            for keys, values in batches:
                self.conn.executemany(self.sql, zip(keys, *values, strict=True))
            return
        if self.direct:
            table = self.table
            names = [*(["pk"] if self.numbered else []), self.key, *self.columns]
        else:
            table = STAGING
            names = ["seq", "k", *(f"c{i}" for i in range(len(self.columns)))]
        self.conn.engine.bulk_insert_column_batches(self.conn, table, names, self._numbered(batches))

    def _numbered(self, batches: Iterable[tuple[Sequence[Any], list[Sequence[Any]]]]
                  ) -> Iterator[list[Sequence[Any]]]:
        """Batches as columns, with the staging table's sequence (or the new rows' pk) first."""
        number = self.numbered or not self.direct
        for keys, values in batches:
            size = len(keys)
            yield [*([range(self.seq, self.seq + size)] if number else []), keys, *values]
            self.seq += size

    def finish(self) -> None:
        if not self.staged or self.direct:
            return
        conn, table, key = self.conn, quote_identifier(self.table), quote_identifier(self.key)
        picks = [f"c{i}" for i in range(len(self.columns))]
        conn.execute(f"DROP TABLE IF EXISTS {MERGED}")
        conn.execute(
            f"CREATE TEMPORARY TABLE {MERGED} AS SELECT s.*, f.first_seq FROM {STAGING} s"
            f" JOIN (SELECT k, min(seq) AS first_seq, max(seq) AS last_seq FROM {STAGING}"
            f" GROUP BY k) f ON s.seq = f.last_seq")
        if self.columns:
            updates = ", ".join(f"{quote_identifier(column)} = m.{pick}"
                                for column, pick in zip(self.columns, picks, strict=True))
            conn.execute(f"UPDATE {table} SET {updates} FROM {MERGED} m WHERE {table}.{key} = m.k")
        names = [key, *map(quote_identifier, self.columns)]
        values = ["m.k", *(f"m.{pick}" for pick in picks)]
        parameters: tuple[Any, ...] = ()
        if self.numbered:
            names.insert(0, "pk")
            values.insert(0, "CAST(? AS BIGINT) + row_number() OVER (ORDER BY m.first_seq)")
            parameters = (_next_pk(conn, self.table) - 1,)
        conn.execute(
            f"INSERT INTO {table}({', '.join(names)}) SELECT {', '.join(values)} FROM {MERGED} m"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = m.k)"
            f" ORDER BY m.first_seq", parameters)
        conn.execute(f"DROP TABLE {MERGED}")
        conn.execute(f"DROP TABLE {STAGING}")


# ---------------------------------------------------------------- profiles


class _ProfilesJob(_Job):
    kind: ImportKind = "profiles"

    def __init__(self, source: ImportFile, id_column: str | None,
                 columns: Mapping[str, ColumnSpec] | None = None) -> None:
        super().__init__(source)
        self.id_column = id_column or ""
        self.explicit = id_column is not None
        self.seen_ids: set[Any] = set()
        self.rows = 0
        self.specs = dict(columns or {})
        # declared booleans are checked against the yes/no words, not inferred
        self.booleans = [name for name, spec in self.specs.items() if spec.type == "boolean"]

    def begin(self, columns: tuple[str, ...]) -> None:
        if not self.explicit:
            found = next((name for name in ("id", "profile_id") if name in columns), None)
            if found is None:
                raise InputError(
                    f"{self.source.path} has no 'id' or 'profile_id' column; name the id column"
                    f" with --id-column. Columns: {', '.join(columns)}."
                )
            self.id_column = found
        self.require_column(columns, self.id_column, "--id-column")
        if self.id_column != ID_ATTRIBUTE.name and ID_ATTRIBUTE.name in columns:
            raise InputError(
                f"{self.source.path}: column 'id' would clash with the built-in profile id while"
                f" the id column is {self.id_column!r}; rename it, or use --id-column id."
            )
        self.roles = {self.id_column, *self.booleans}
        self.check_specs(columns)

    def check_specs(self, columns: tuple[str, ...]) -> None:
        """Every declared column is in the file, is not the id, and agrees with the store."""
        for name, spec in self.specs.items():
            if name not in columns:
                raise InputError(f"{self.source.path} has no column {name!r} (named in --schema"
                                 " or --boolean)." + did_you_mean(name, list(columns)))
            if name == self.id_column and spec.type is not None:
                raise InputError(f"{name!r} is the id column; it cannot be given a type.")
            stored = self.catalog.attributes.get(name)
            if stored is not None and spec.type is not None and stored.type != spec.type:
                raise InputError(f"Column {name!r} is declared {spec.type} but attribute"
                                 f" {name!r} is {_a_type(stored.type)} in the store.")

    def check(self, chunk: Chunk) -> list[RowProblem]:
        raw = chunk.column(self.id_column)
        ids = self.ids(raw)
        bad = self.missing(chunk, self.id_column, raw, ids, "profile id")
        self.seen_ids.update(ids)
        self.rows += len(chunk)
        self.observe_fields(chunk, bad)
        for name in self.booleans:
            for line, value in zip(chunk.lines, chunk.column(name), strict=True):
                if isinstance(boolean_value(value), str):
                    bad.append(RowProblem(line, name, str(value), "not a yes/no value (the column"
                                          " is boolean: true/false, yes/no, 1/0)"))
        return bad

    def schema(self, name: str) -> AttrType | None:
        attribute = self.catalog.attributes.get(name)
        if attribute is not None:
            return attribute.type
        spec = self.specs.get(name)
        return spec.type if spec is not None else None

    def plan(self) -> Plan:
        conflicts: list[RowProblem] = []
        for name in self.fields:
            attribute = self.catalog.attributes.get(name)
            if attribute is not None and attribute.derived_from:
                conflicts.append(RowProblem(0, name, None, f"attribute {name!r} is derived"
                                            f" ({attribute.derived_from}) and cannot be imported"))
        if conflicts:
            raise _conflict_error(self.source.path, conflicts)
        plan = self.plan_fields(self.schema, "attribute")
        for name, final in plan:  # a declared type is kept, never widened by the values
            declared = self.specs[name].type if name in self.specs else None
            if declared is not None and final != declared:
                kind, (line, text) = next((k, found) for k, found
                                          in self.fields[name].examples.items() if k != declared)
                conflicts.append(RowProblem(line, name, text, f"{_a_type(kind)} value, but the"
                                            f" column is declared {declared}"))
        if conflicts:
            raise _conflict_error(self.source.path, conflicts)
        return plan + [(name, "boolean") for name in self.booleans]

    def write(self, conn: Connection, plan: Plan,
              chunks: Iterator[Chunk]) -> dict[str, Any]:
        attributes = [ensure_attribute(conn, name, final, mostly_distinct=name in self.fields
                                       and self.fields[name].mostly_distinct)
                      for name, final in plan]
        plan = [(name, attribute.type)
                for (name, _), attribute in zip(plan, attributes, strict=True)]
        converters = [boolean_converter if name in self.booleans else converter(final, self.is_json)
                      for name, final in plan]
        for name, spec in self.specs.items():
            set_labels(conn, "attributes", name, label=spec.label or None,
                       group=spec.group or None, description=spec.description or None)
        before = _count(conn, "profiles")
        upsert = _Upsert(conn, "profiles", "id", "string",
                         [attribute.column for attribute in attributes],
                         [final for _, final in plan], numbered=True,
                         all_new=before == 0 and len(self.seen_ids) == self.rows)
        upsert.write((self.ids(chunk.column(self.id_column)),
                      self.field_values(chunk, plan, converters)) for chunk in chunks)
        upsert.finish()
        created = _count(conn, "profiles") - before
        self.seen_ids.difference_update(("", None))  # (bad rows: not here when writing)
        return {"created_profiles": created, "updated_profiles": len(self.seen_ids) - created}


# ---------------------------------------------------------------- events


class _EventsJob(_Job):
    kind: ImportKind = "events"

    def __init__(self, source: ImportFile, profile_column: str, type_column: str,
                 type_name: str | None, time_column: str, create_profiles: bool,
                 time_format: str | None) -> None:
        super().__init__(source)
        if type_name is not None and not type_name.strip():
            raise InputError("--type needs an event type name.")
        self.profile_column = profile_column
        self.type_column = type_column
        self.type_name = type_name
        self.time_column = time_column
        self.create_profiles = create_profiles
        self.time_format = time_format
        self.parse_time = timestamp_parser(time_format)
        self.pks: dict[str, int] = {}
        self.new_ids: dict[str, None] = {}
        self.types: dict[str, None] = {} if type_name is None else {type_name: None}
        self.field_types: dict[str, set[str]] = {}
        self.stamps: list[np.ndarray] = []  # epoch seconds, one array per chunk
        # each chunk's profile pks, looked up while checking (None: the chunk names profiles
        # that the write creates, or that are missing or unknown)
        self.profile_pks: list[np.ndarray | None] = []
        self.blank_stored = False  # a stored id that would be a missing one here

    def prepare(self, conn: Connection | None) -> None:
        super().prepare(conn)
        if conn is not None:
            self.pks = dict(conn.execute("SELECT id, pk FROM profiles"))
            self.blank_stored = "" in self.pks or any(map(str.isspace, self.pks))

    def begin(self, columns: tuple[str, ...]) -> None:
        roles = {"--profile-column": self.profile_column, "--time-column": self.time_column}
        if self.type_name is None:
            roles["--type-column"] = self.type_column
        for option, name in roles.items():
            self.require_column(columns, name, option)
        if len(set(roles.values())) < len(roles):
            raise InputError("The profile, type and time columns must be different columns.")
        self.roles = set(roles.values())

    def check(self, chunk: Chunk) -> list[RowProblem]:
        raw = chunk.column(self.profile_column)
        ids = self.ids(raw)
        # every id a stored profile's (the usual case): none is missing or unknown, and the
        # pks the write needs are known now (pks start at 1)
        pks = np.fromiter(map(self.pks.get, ids, repeat(0)), dtype=np.int64, count=len(ids))
        bad: list[RowProblem] = []
        if pks.all() and not self.blank_stored:
            self.profile_pks.append(pks)
        else:
            self.profile_pks.append(None)
            distinct = set(ids)
            bad = self.missing(chunk, self.profile_column, raw, ids, "profile id",
                               None if self.is_json else distinct)
            self._check_profiles(chunk, ids, distinct, bad)
        types = self._check_types(chunk, bad)
        self._check_times(chunk, bad)
        self.observe_fields(chunk, bad)
        self._register_fields(chunk, types)
        return bad

    def retain(self, chunk: Chunk) -> Chunk:
        known = {self.time_column}
        if self.profile_pks[-1] is not None:
            known.add(self.profile_column)
        columns = {name: values for name, values in chunk.columns.items() if name not in known}
        return replace(chunk, columns=columns, problems=())

    def _check_profiles(self, chunk: Chunk, ids: Sequence[Any], distinct: set[Any],
                        bad: list[RowProblem]) -> None:
        if self.pks.keys() >= distinct:  # the usual case, checked in C
            return
        unknown = {value for value in filterfalse(self.pks.__contains__, distinct)
                   if value and not value.isspace()}  # missing ids are reported as missing
        if not unknown:
            return
        if self.create_profiles:
            self.new_ids.update(dict.fromkeys(value for value in ids if value in unknown))
            return
        bad.extend(
            RowProblem(line, self.profile_column, value,
                       "unknown profile id (not in the store; --create-profiles adds it)")
            for line, value in zip(chunk.lines, ids, strict=True) if value in unknown
        )

    def _check_types(self, chunk: Chunk, bad: list[RowProblem]) -> Sequence[Any] | None:
        """The chunk's type names (None when ``--type`` gives every row one type)."""
        if self.type_name is not None:
            return None
        raw = chunk.column(self.type_column)
        types = self.ids(raw)
        distinct = dict.fromkeys(types)
        bad.extend(self.missing(chunk, self.type_column, raw, types, "event type",
                                distinct.keys() if not self.is_json else None))
        self.types.update(distinct)
        for name in [name for name in distinct if not name or name.isspace()]:
            del self.types[name]  # a missing type (its rows are bad)
        return types

    def _check_times(self, chunk: Chunk, bad: list[RowProblem]) -> None:
        raw = chunk.column(self.time_column)
        stamps, wrong = parse_timestamps(raw, self.parse_time, self.time_format)
        self.stamps.append(stamps)
        bad.extend(
            RowProblem(chunk.lines[position], self.time_column,
                       None if raw[position] is None or raw[position] == ""
                       else json_text(raw[position]),
                       timestamp_problem(raw[position], self.time_format))
            for position in wrong
        )

    def _register_fields(self, chunk: Chunk, types: Sequence[Any] | None) -> None:
        """Remember which event types each field has a value for."""
        chunk_types = set(self.types) if types is None else set(types)
        for name, values in chunk.columns.items():
            if name in self.roles:
                continue
            seen = self.field_types.setdefault(name, set())
            if seen >= chunk_types:
                continue
            present = map(_present, values) if self.is_json else values
            if types is None:
                if any(present):
                    seen.update(chunk_types)
            else:
                seen.update(compress(types, present))

    def schema(self, name: str) -> AttrType | None:
        known = self.catalog.event_fields.get(name)
        return known.type if known else None

    def plan(self) -> Plan:
        return self.plan_fields(self.schema, "event field")

    def write(self, conn: Connection, plan: Plan,
              chunks: Iterator[Chunk]) -> dict[str, Any]:
        created = self._create_profiles(conn)
        type_ids = {name: ensure_event_type(conn, name) for name in self.types}
        fields = [
            ensure_event_field(conn, name, final,
                               sorted(type_ids[t] for t in self.field_types.get(name, ())
                                      if t in type_ids))
            for name, final in plan
        ]
        plan = [(name, field.type) for (name, _), field in zip(plan, fields, strict=True)]
        converters = [converter(final, self.is_json) for _, final in plan]
        names = ["pk", "profile_pk", "type_id", "ts", *(field.column for field in fields)]
        rows = sum(len(stamps) for stamps in self.stamps)
        rebuild = rows >= REBUILD_INDEX_RATIO * _count(conn, "events")
        indexes = drop_event_indexes(conn, set(type_ids.values())) if rebuild else []
        conn.engine.bulk_insert_column_batches(
            conn, "events", names,
            self._rows(chunks, _next_pk(conn, "events"), type_ids, plan, converters))
        for statement in indexes:
            conn.execute(statement)
        if rebuild:  # the recommended events indexes dropped with the fixed ones
            create_missing_indexes(conn)
        refresh_activity(conn)
        return {"created_profiles": created, "event_types": tuple(self.types)}

    def _rows(self, chunks: Iterator[Chunk], next_pk: int, type_ids: dict[str, int],
              plan: Plan, converters: list[ColumnConverter]) -> Iterator[list[Any]]:
        """Each chunk's events as the columns of ``events`` (pk, profile_pk, type_id, ts,
        then the fields)."""
        pk = self.pks.__getitem__
        stamps_by_chunk = iter(self.stamps)
        pks_by_chunk = iter(self.profile_pks)
        for chunk in chunks:
            size = len(chunk)
            pks = next(pks_by_chunk)
            if pks is None:
                pks = np.fromiter(map(pk, self.ids(chunk.column(self.profile_column))),
                                  dtype=np.int64, count=size)
            if self.type_name is not None:
                tids = np.full(size, type_ids[self.type_name], dtype=np.int64)
            else:
                tids = np.fromiter(map(type_ids.__getitem__,
                                       self.ids(chunk.column(self.type_column))),
                                   dtype=np.int64, count=size)
            stamps = next(stamps_by_chunk)
            values = self.field_values(chunk, plan, converters)
            yield [range(next_pk, next_pk + size), pks, tids, stamps, *values]
            next_pk += size

    def _create_profiles(self, conn: Connection) -> int:
        """Add a bare profile for each unknown id, and learn the new profiles' pks."""
        if not self.new_ids:
            return 0
        if not conn.engine.row_statements_are_cheap:  # numbered here, in the order first seen
            new = list(self.new_ids)
            first = _next_pk(conn, "profiles")
            conn.engine.bulk_insert_columns(conn, "profiles", ["pk", "id"],
                                            [range(first, first + len(new)), new])
            self.pks.update(zip(new, range(first, first + len(new)), strict=True))
            return len(new)
        before = _count(conn, "profiles")
        conn.executemany("INSERT INTO profiles(id) VALUES (?) ON CONFLICT(id) DO NOTHING",
                         ((value,) for value in self.new_ids))
        new = list(self.new_ids)
        for start in range(0, len(new), ID_LOOKUP_BATCH):
            batch = new[start:start + ID_LOOKUP_BATCH]
            self.pks.update(conn.execute(
                f"SELECT id, pk FROM profiles WHERE id IN ({', '.join('?' * len(batch))})", batch
            ))
        return _count(conn, "profiles") - before


def _present(value: Any) -> bool:
    return value is not None and value != ""


# ---------------------------------------------------------------- entities


class _EntityJob(_Job):
    kind: ImportKind = "entity"

    def __init__(self, source: ImportFile, name: str, key: str, link: str) -> None:
        super().__init__(source)
        if not ENTITY_NAME_RE.match(name):
            raise InputError(f"Entity name {name!r} must be letters, digits and underscores"
                             " (not starting with a digit).")
        if not link:
            raise InputError("--link needs the name of the event field that holds the key.")
        self.name = name
        self.key = key
        self.link = link
        self.key_inference = ColumnInference(key)
        self.key_type: AttrType = "string"

    def begin(self, columns: tuple[str, ...]) -> None:
        self.require_column(columns, self.key, "--key")
        self.roles = {self.key}

    def check(self, chunk: Chunk) -> list[RowProblem]:
        raw = chunk.column(self.key)
        bad: list[RowProblem] = []
        if self.is_json:
            self.key_inference.observe_json(raw, chunk.lines, [])  # missing() reports them
            bad.extend(self.missing(chunk, self.key, raw, self.ids(raw), "key"))
        else:
            self.key_inference.observe_text(raw, chunk.lines)
            bad.extend(self.missing(chunk, self.key, raw, raw, "key"))
        self.observe_fields(chunk, bad)
        return bad

    def schema(self, name: str) -> AttrType | None:
        entity = self.catalog.entities.get(self.name)
        known = entity.fields.get(name) if entity is not None else None
        return known.type if known else None

    def late_problems(self) -> tuple[int, list[RowProblem]]:
        count, first = super().late_problems()
        inference = self.key_inference
        if inference.out_of_range_count and inference.kind == "datetime":
            link = self.catalog.event_fields.get(self.link)
            if link is None or link.type == "datetime":  # else a text link keeps them as text
                count += inference.out_of_range_count
                first.extend(inference.range_problems())
        return count, first

    def plan(self) -> Plan:
        entity = self.catalog.entities.get(self.name)
        if entity is not None and entity.key_field != self.key:
            raise InputError(f"Entity {self.name!r} is keyed by {entity.key_field!r} in the"
                             f" store, not {self.key!r}; use --key {entity.key_field}.")
        key_type: AttrType = self.key_inference.kind or "string"
        conflicts: list[RowProblem] = []
        link = self.catalog.event_fields.get(self.link)
        if link is not None:
            found = check_type(self.key, self.key_inference, link.type,
                               f"the link event field {self.link!r}")
            if isinstance(found, RowProblem):
                conflicts.append(found)
            else:
                key_type = found or link.type
        if entity is not None and not conflicts:
            existing = entity.fields[entity.key_field].type
            widened = reconcile_types(existing, key_type)
            if widened is None:
                conflicts.append(RowProblem(0, self.key, None, f"the key is {key_type} here but"
                                            f" {existing} in the store's entity {self.name!r}"))
            else:
                key_type = widened
        if conflicts:
            raise _conflict_error(self.source.path, conflicts)
        self.key_type = key_type
        return self.plan_fields(self.schema, f"entity {self.name}'s field")

    def write(self, conn: Connection, plan: Plan,
              chunks: Iterator[Chunk]) -> dict[str, Any]:
        entity = ensure_entity(conn, self.name, self.key, self.key_type, self.link)
        key_type = ensure_entity_field(conn, self.name, self.key, self.key_type).type
        ensure_event_field(conn, self.link, key_type)
        fields = [ensure_entity_field(conn, self.name, name, final) for name, final in plan]
        plan = [(name, field.type) for (name, _), field in zip(plan, fields, strict=True)]
        converters = [converter(final, self.is_json) for _, final in plan]
        convert_key = converter(key_type, self.is_json)
        upsert = _Upsert(conn, entity.table, "key", key_type, [field.column for field in fields],
                         [final for _, final in plan])
        upsert.write((convert_key(chunk.column(self.key)),
                      self.field_values(chunk, plan, converters)) for chunk in chunks)
        upsert.finish()
        return {"created_profiles": 0, "entity": self.name}
