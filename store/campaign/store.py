"""The campaign store: activated audiences, their members, activation history, deliveries.

A separate SQLite file (default ``campaign.db`` beside the profile store), so
that downstream tools can read audiences without touching profile data and a
profile store can be rebuilt without losing what was activated.

Tables:

- ``audiences``: one row per activated segment (``segment_id`` is unique).
- ``audience_members``: ``(audience_id, profile_id)`` primary key, WITHOUT
  ROWID so the members of one audience sit together in key order; ``profile_id``
  is the profile's own external id (text) and ``fields`` a JSON object of the
  personalisation fields captured at activation.
- ``activations``: one row per activation (sizes, differences, what started it, per-group counts).
- ``deliveries``: message drafts addressed to an audience (see ``store.campaign.delivery``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from store.engines.base import SCHEME
from store.engines.layout import create_schema, write_transaction
from store.engines.sqlite import (
    Connection,
    closed_on_failure,
    connect,
    describe_sqlite_error,
    is_read_only_file,
    use_wal,
)
from store.errors import InputError, StoreError
from store.files import check_store_path, output_file, printable

CAMPAIGN_FORMAT = "audiences-tui-campaign"
CAMPAIGN_SCHEMA_VERSION = 3
DEFAULT_FILE_NAME = "campaign.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audiences (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    segment_id TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    refs TEXT NOT NULL DEFAULT '{}',
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    fields TEXT NOT NULL DEFAULT '[]',
    source_db TEXT,
    created_at TEXT NOT NULL,
    activated_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    member_count INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL DEFAULT 'file',
    schedule TEXT NOT NULL DEFAULT 'off',
    splits TEXT,
    identifiers TEXT
);
CREATE TABLE IF NOT EXISTS audience_members (
    audience_id INTEGER NOT NULL REFERENCES audiences(id),
    profile_id TEXT NOT NULL,
    fields TEXT,
    split TEXT,
    PRIMARY KEY (audience_id, profile_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activations (
    id INTEGER PRIMARY KEY,
    audience_id INTEGER NOT NULL REFERENCES audiences(id),
    activated_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    count INTEGER NOT NULL,
    added INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    kept INTEGER NOT NULL,
    changed INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    trigger TEXT NOT NULL DEFAULT 'activate',
    splits TEXT
);
CREATE INDEX IF NOT EXISTS activations_audience ON activations(audience_id, id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    audience_id INTEGER NOT NULL REFERENCES audiences(id),
    subject TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'draft',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_audience ON deliveries(audience_id);
"""

# Columns added since schema version 1, by table: (name, declaration). ``open_campaign``
# adds the missing ones to an older store (version 1 had none of them).
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "audiences": (("origin", "TEXT NOT NULL DEFAULT 'file'"), ("schedule", "TEXT NOT NULL DEFAULT 'off'"),
                  ("splits", "TEXT"), ("identifiers", "TEXT")),
    "audience_members": (("split", "TEXT"),),
    "activations": (("trigger", "TEXT NOT NULL DEFAULT 'activate'"), ("splits", "TEXT")),
}
# What each added column reads as in a version-1 store that cannot be migrated (read-only).
_OLD_DEFAULTS = {"origin": "'file'", "schedule": "'off'", "splits": "NULL", "split": "NULL",
                 "identifiers": "NULL",
                 "trigger": "'activate'"}


@dataclass(frozen=True)
class Audience:
    """One activated audience, as its row in ``audiences`` says."""

    id: int
    name: str
    segment_id: str
    definition: str
    refs: dict[str, str]
    fingerprint: str
    status: str
    fields: tuple[str, ...]
    source_db: str | None
    created_at: str
    activated_at: str
    as_of: str
    member_count: int
    origin: str = "file"  # "saved": activated from a segment saved in the profile store
    schedule: str = "off"
    splits: str | None = None  # the split's JSON (``SplitSpec.from_json``), None without one
    # the fields that are identifiers (``identifier_fields``), as the activation decided; None
    # for an audience activated before they were recorded (name words decide then)
    identifiers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ActivationRecord:
    """One line of an audience's history."""

    id: int
    audience_id: int
    activated_at: str
    as_of: str
    count: int
    added: int
    removed: int
    kept: int
    changed: int
    duration_ms: float
    fingerprint: str
    trigger: str = "activate"  # activate | refresh | schedule
    splits: dict[str, int] | None = None  # members per group after this activation


@dataclass(frozen=True)
class Member:
    """A member of an audience by its external profile id, with its personalisation fields."""

    profile_id: str
    fields: dict[str, Any]
    split: str | None = None  # its group, when the audience is split


# ------------------------------------------------------------------ files


def default_campaign_path(db_path: str | Path) -> Path:
    """``campaign.db`` in the folder of the profile store."""
    return Path(db_path).with_name(DEFAULT_FILE_NAME)


def open_campaign(path: str | Path, *, readonly: bool = False) -> Connection:
    """Open the campaign store at ``path``, creating it (and its tables) if needed.

    A file marked read-only is opened read-only: reading works, and any write
    fails with a ``StoreError`` that says so. ``readonly=True`` never creates.
    A path that is not a regular file (``/dev/null``, a pipe) is refused unopened.

    Creating is checked and done in one write transaction, which waits for the
    busy timeout while another program writes: two programs creating the same new
    store at once both succeed, one after the other, and neither sees the other's
    half-made store. Only then is the file switched to WAL mode (``use_wal``), so a
    file refused as not a campaign store is left byte for byte as it was.
    """
    path = Path(path)
    check_store_path(path, "campaign store")
    exists = path.exists() and path.stat().st_size > 0
    if readonly or (exists and is_read_only_file(path)):
        if not exists:
            raise StoreError(f"No campaign store at {printable(path)}; activate an audience first.")
        conn = connect(path, readonly=True)
        with closed_on_failure(conn, path):
            with _snapshot(conn):
                _check_format(conn, path)
            _old_store_views(conn)
        return conn
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder for {printable(path)}: {exc}") from exc
    conn = connect(path, wal=False)
    with closed_on_failure(conn, path):
        conn.execute("BEGIN IMMEDIATE")  # waits while another program creates or writes it
        try:
            _check_format(conn, path)
            if _format(conn) is None or not _has_table(conn, "deliveries"):
                create_schema(conn, [s for s in SCHEMA.split(";") if s.strip()], CAMPAIGN_FORMAT,
                              CAMPAIGN_SCHEMA_VERSION)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        use_wal(conn)
        migrate(conn)
    return conn


def _columns(conn: Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}


def _missing_columns(conn: Connection) -> list[tuple[str, str, str]]:
    missing: list[tuple[str, str, str]] = []
    for table, columns in ADDED_COLUMNS.items():
        have = _columns(conn, table)
        if not have:  # no such table yet: it is made whole with the rest of the schema
            continue
        missing.extend((table, name, decl) for name, decl in columns if name not in have)
    return missing


def migrate(conn: Connection) -> None:
    """Bring a campaign store of an older schema version up to this one, in one transaction.

    Version 2 added the audience's origin, schedule and split, each member's
    group and each activation's trigger and group counts; an older store gets
    the columns with their defaults (no split, schedule off) and keeps
    everything it had. Version 3 added the audience's identifier fields (NULL for
    an audience activated before: an export then judges its fields by name).
    """
    missing = _missing_columns(conn)
    if not missing:
        return
    try:
        with write_transaction(conn):
            for table, name, decl in _missing_columns(conn):  # again, inside the lock
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(CAMPAIGN_SCHEMA_VERSION),))
    except sqlite3.DatabaseError as exc:
        raise store_error(conn, exc) from exc


def _old_store_views(conn: Connection) -> None:
    """Read a version-1 store that cannot be migrated (read-only) as if it were current.

    Temporary views of the same names, which SQLite finds before the file's
    tables, add the new columns with their defaults.
    """
    for table in {table for table, _, _ in _missing_columns(conn)}:
        have = sorted(_columns(conn, table))
        extra = [f"{_OLD_DEFAULTS[n]} AS {n}" for n, _ in ADDED_COLUMNS[table] if n not in have]
        conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS {table} AS SELECT {', '.join(have + extra)}"
                     f" FROM main.{table}")


def _has_table(conn: Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
    return row is not None


def _format(conn: Connection) -> str | None:
    if not _has_table(conn, "meta"):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    return None if row is None else str(row[0])


def _check_format(conn: Connection, path: Path) -> None:
    """Refuse a file that is not a campaign store (a profile store passed by mistake, say).
    Callers read in one transaction, so that the reads here see one state of the file."""
    shown = printable(path)
    fmt = _format(conn)
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if fmt is None and tables == 0:
        return
    if fmt != CAMPAIGN_FORMAT:
        raise StoreError(f"{shown} is not an Audiences campaign store.")
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"{shown} is an Audiences campaign store of an unknown version.") from None
    if version > CAMPAIGN_SCHEMA_VERSION:
        raise StoreError(f"{shown} was written by a newer version of Audiences TUI; upgrade the program.")


def database_path(conn: Connection) -> str:
    """The file behind a connection's main database (a file name that is not UTF-8 keeps
    its bytes as lone surrogates, as Python's own file names do; show it with ``printable``)."""
    factory = conn.text_factory  # type: ignore[attr-defined]
    conn.text_factory = bytes  # type: ignore[attr-defined]  # SQLite reports the name's bytes
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    finally:
        conn.text_factory = factory  # type: ignore[attr-defined]
    for _, name, file in rows:
        if name == b"main":
            return os.fsdecode(file) if file else ":memory:"
    return ":memory:"


def store_location(conn: Connection) -> str:
    """Which profile store a connection reads, as recorded with the audiences it activates.

    An SQLite file by its absolute path (as SQLite reports it, as before), a
    DuckDB file by its absolute path, a server store by the engine's display
    location (a URL without its password, with the schema). Never a password:
    the campaign file is meant to be shared with downstream tools.
    """
    if isinstance(conn, sqlite3.Connection):
        return printable(database_path(conn))
    return conn.engine.identity


def is_file_location(location: str) -> bool:
    """Whether a recorded store location is a local file (not a server URL)."""
    return SCHEME.match(location) is None


def store_error(conn: Connection, exc: sqlite3.DatabaseError) -> StoreError:
    """A ``StoreError`` naming the campaign file, for a low-level SQLite failure."""
    return StoreError(describe_sqlite_error(database_path(conn), exc))


# ------------------------------------------------------------------ audiences

_AUDIENCE_COLUMNS = ("id, name, segment_id, definition, refs, fingerprint, status, fields, source_db,"
                     " created_at, activated_at, as_of, member_count, origin, schedule, splits, identifiers")


def _audience(row: tuple[Any, ...]) -> Audience:
    return Audience(int(row[0]), row[1], row[2], row[3], json.loads(row[4] or "{}"), row[5], row[6],
                    tuple(json.loads(row[7] or "[]")), row[8], row[9], row[10], row[11], int(row[12]),
                    row[13], row[14], row[15], None if row[16] is None else tuple(json.loads(row[16])))


def list_audiences(conn: Connection) -> list[Audience]:
    """Every audience, the most recently activated first."""
    if not _has_table(conn, "audiences"):
        return []
    return [_audience(row) for row in conn.execute(
        f"SELECT {_AUDIENCE_COLUMNS} FROM audiences ORDER BY activated_at DESC, id DESC")]


def get_audience(conn: Connection, key: int | str) -> Audience | None:
    """An audience by its number or by its segment id; None if there is none."""
    if not _has_table(conn, "audiences"):
        return None
    row = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        row = conn.execute(f"SELECT {_AUDIENCE_COLUMNS} FROM audiences WHERE id = ?",
                           (int(key),)).fetchone()
    if row is None:
        row = conn.execute(f"SELECT {_AUDIENCE_COLUMNS} FROM audiences WHERE segment_id = ?",
                           (str(key),)).fetchone()
    return None if row is None else _audience(row)


def find_audience(conn: Connection, key: int | str) -> Audience:
    """Like ``get_audience`` but a missing audience is an ``InputError`` naming the known ones."""
    found = get_audience(conn, key)
    if found is None:
        known = [f"{a.id} ({a.segment_id})" for a in list_audiences(conn)][:10]
        hint = " Known: " + ", ".join(known) + "." if known else " No audience is activated yet."
        raise InputError(f"No audience {key!r}.{hint}")
    return found


def set_status(conn: Connection, audience_id: int, status: str) -> None:
    """Mark an audience active or inactive (members are kept, so it can be refreshed later)."""
    if status not in ("active", "inactive"):
        raise InputError(f"Status must be active or inactive, not {status!r}.")
    try:
        with write_transaction(conn):
            cursor = conn.execute("UPDATE audiences SET status = ? WHERE id = ?", (status, audience_id))
            if cursor.rowcount == 0:
                raise InputError(f"No audience {audience_id}.")
    except sqlite3.DatabaseError as exc:
        raise store_error(conn, exc) from exc


def set_schedule(conn: Connection, audience_id: int, schedule: str) -> None:
    """Set when ``refresh --due`` refreshes the audience (off, hourly, daily, weekly)."""
    from store.campaign.schedule import check_schedule

    schedule = check_schedule(schedule)
    try:
        with write_transaction(conn):
            cursor = conn.execute("UPDATE audiences SET schedule = ? WHERE id = ?", (schedule, audience_id))
            if cursor.rowcount == 0:
                raise InputError(f"No audience {audience_id}.")
    except sqlite3.DatabaseError as exc:
        raise store_error(conn, exc) from exc


def history(conn: Connection, audience_id: int, limit: int | None = None) -> list[ActivationRecord]:
    """An audience's activations, oldest first (the last ``limit`` of them when given)."""
    sql = ("SELECT id, audience_id, activated_at, as_of, count, added, removed, kept, changed,"
           " duration_ms, fingerprint, trigger, splits FROM activations WHERE audience_id = ?"
           " ORDER BY id DESC")
    params: tuple[Any, ...] = (audience_id,)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    rows = [ActivationRecord(int(row[0]), int(row[1]), row[2], row[3], int(row[4]), int(row[5]),
                             int(row[6]), int(row[7]), int(row[8]), float(row[9]), row[10], row[11],
                             json.loads(row[12]) if row[12] else None)
            for row in conn.execute(sql, params)]
    rows.reverse()
    return rows


def split_counts(conn: Connection, audience_id: int) -> dict[str, int]:
    """Members per group of a split audience, in the split's order ({} when it is not split)."""
    from store.campaign.splits import SplitSpec, group_counts, ordered_counts

    row = conn.execute("SELECT splits FROM audiences WHERE id = ?", (audience_id,)).fetchone()
    spec = SplitSpec.from_json(row[0] if row else None)
    if not spec.active:
        return {}
    return ordered_counts(spec, group_counts(conn, "audience_members", "AND audience_id = ?",
                                             (audience_id,)))


def size_history(conn: Connection, limit: int = 30) -> dict[int, list[int]]:
    """For every audience, the sizes of its last ``limit`` activations, oldest first."""
    if not _has_table(conn, "activations"):
        return {}
    sizes: dict[int, list[int]] = {}
    for audience_id, count in conn.execute(
        "SELECT audience_id, count FROM (SELECT audience_id, count, id, row_number() OVER"
        " (PARTITION BY audience_id ORDER BY id DESC) AS n FROM activations) WHERE n <= ?"
        " ORDER BY audience_id, id", (limit,)
    ):
        sizes.setdefault(int(audience_id), []).append(int(count))
    return sizes


def overview(conn: Connection, limit: int = 30) -> tuple[list[Audience], dict[int, list[int]]]:
    """Every audience and its recent sizes, read in one snapshot (for the Audiences area)."""
    with _snapshot(conn):
        return list_audiences(conn), size_history(conn, limit)


@contextmanager
def _snapshot(conn: Connection) -> Iterator[None]:
    """One read transaction, so that several reads see the same committed state."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


# ------------------------------------------------------------------ members


def _member(profile_id: str, fields: str | None, split: str | None = None) -> Member:
    return Member(profile_id, json.loads(fields) if fields else {}, split)


# Members a delivery goes to: everyone but the holdout group.
DELIVERABLE = "coalesce(lower(split), '') <> 'holdout'"


def member_page(conn: Connection, audience_id: int, after: str | None = None,
                limit: int = 100, *, before: str | None = None,
                deliverable: bool = False) -> list[Member]:
    """One page of members in profile-id order: the ``limit`` after ``after`` (keyset paging).

    With ``before`` instead, the ``limit`` members just before it (for paging back),
    still returned in ascending order. ``deliverable``: leave out the holdout group.
    """
    extra = f" AND {DELIVERABLE}" if deliverable else ""
    base = f"SELECT profile_id, fields, split FROM audience_members WHERE audience_id = ?{extra}"
    if before is not None:
        rows = conn.execute(f"{base} AND profile_id < ? ORDER BY profile_id DESC LIMIT ?",
                            (audience_id, before, limit)).fetchall()
        rows.reverse()
    elif after is None:
        rows = conn.execute(f"{base} ORDER BY profile_id LIMIT ?", (audience_id, limit)).fetchall()
    else:
        rows = conn.execute(f"{base} AND profile_id > ? ORDER BY profile_id LIMIT ?",
                            (audience_id, after, limit)).fetchall()
    return [_member(*row) for row in rows]


@dataclass(frozen=True)
class MembersPage:
    """A keyset page of members and the audience's size at the same moment."""

    members: list[Member]
    total: int


def read_member_page(conn: Connection, audience_id: int, *, after: str | None = None,
                     before: str | None = None, limit: int = 100) -> MembersPage:
    """``member_page`` and the audience's member count, read in one snapshot."""
    with _snapshot(conn):
        members = member_page(conn, audience_id, after, limit, before=before)
        row = conn.execute("SELECT member_count FROM audiences WHERE id = ?", (audience_id,)).fetchone()
    return MembersPage(members, int(row[0]) if row else 0)


def member_count(conn: Connection, audience_id: int) -> int:
    """The number of member rows (the audience row's ``member_count`` says the same)."""
    row = conn.execute("SELECT count(*) FROM audience_members WHERE audience_id = ?",
                       (audience_id,)).fetchone()
    return int(row[0])


def iter_members(conn: Connection, audience_id: int, batch: int = 10_000) -> Iterator[Member]:
    """Every member in profile-id order, read in keyset batches (memory stays flat)."""
    after: str | None = None
    while True:
        page = member_page(conn, audience_id, after, batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].profile_id


def member_ids(conn: Connection, audience_id: int) -> set[str]:
    """The profile ids of an audience, as a set (for tests and small audiences)."""
    return {row[0] for row in conn.execute(
        "SELECT profile_id FROM audience_members WHERE audience_id = ?", (audience_id,))}


EXPORT_FORMATS = ("csv", "ndjson")
HASHES = ("sha256",)
# Fields hashed by ``--hash``: the identifiers ad platforms match on. An attribute with an XDM
# name is one when that name is an e-mail address or a phone number (personalEmail.address,
# workEmail.address, mobilePhone.number, homePhone.number, ...); one without, when its name has
# one of these words. A yes/no attribute never is (``phone_opt_in`` is a consent, not a number).
IDENTIFIER_XDM = re.compile(r"(?:^|\.)\w*(?:email\.address|phone\.number)$", re.IGNORECASE)
IDENTIFIER_WORDS = ("email", "phone", "mobile", "msisdn")


@dataclass(frozen=True)
class ExportPlan:
    """What an export writes: which fields, which groups, in which format, hashed or not."""

    fields: tuple[str, ...]
    groups: tuple[str, ...] | None  # None: every member but the holdout
    fmt: str = "csv"
    hashed: tuple[str, ...] = ()  # fields written as the SHA-256 of their normalised value
    with_split: bool = False


def is_identifier(name: str, xdm: str = "", kind: str = "string") -> bool:
    """Whether a field is an identifier: never a boolean; by its XDM name when it has one,
    else by its name."""
    if kind == "boolean":
        return False
    if xdm:
        return IDENTIFIER_XDM.search(xdm) is not None
    return any(word in name.lower() for word in IDENTIFIER_WORDS)


def identifier_fields(fields: Sequence[str],
                      attributes: Mapping[str, tuple[str, str]] | None = None) -> tuple[str, ...]:
    """The fields (of an activation) that are identifiers, given each known field's XDM name
    and type (``attributes``: name -> (xdm, type)); recorded with the audience, so an export
    need not guess from names later."""
    known = attributes or {}
    return tuple(name for name in fields if is_identifier(name, *known.get(name, ("", "string"))))


def export_plan(conn: Connection, audience: Audience, *, fmt: str = "csv",
                fields: tuple[str, ...] | list[str] | None = None, hash_name: str | None = None,
                groups: tuple[str, ...] | list[str] | None = None) -> ExportPlan:
    """Check an export's options against the audience; wrong ones are an ``InputError``."""
    from store.campaign.splits import SplitSpec

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"Unknown export format {fmt!r}; use csv or ndjson.")
    chosen = tuple(fields) if fields else audience.fields
    for name in chosen:
        if name not in audience.fields:
            known = ", ".join(audience.fields) or "none"
            raise InputError(f"Audience {audience.id} has no field {name!r} (its fields: {known});"
                             " activate it again with --field to capture more.")
    hashed: tuple[str, ...] = ()
    if hash_name is not None:
        if hash_name.lower() not in HASHES:
            raise InputError(f"Unknown hash {hash_name!r}; use sha256.")
        identifiers = audience.identifiers if audience.identifiers is not None \
            else identifier_fields(audience.fields)
        hashed = tuple(name for name in chosen if name in identifiers)
        if not hashed:
            raise InputError("--hash sha256 hashes identifier fields (email, phone), and none is"
                             f" exported (fields: {', '.join(chosen) or 'none'}).")
    split = SplitSpec.from_json(audience.splits).active
    wanted: tuple[str, ...] | None = None
    if groups:
        present = split_counts(conn, audience.id)
        if not split:
            raise InputError(f"Audience {audience.id} is not split into groups.")
        by_lower = {name.lower(): name for name in present}
        wanted = tuple(by_lower.get(g.lower(), g) for g in groups)
        unknown = [g for g in wanted if g not in present]
        if unknown:
            raise InputError(f"Audience {audience.id} has no group {unknown[0]!r}"
                             f" (its groups: {', '.join(present)}).")
    return ExportPlan(chosen, wanted, fmt, hashed, split)


def _hashed(value: Any) -> str:
    if value is None or value == "":
        return ""
    return hashlib.sha256(str(value).strip().lower().encode("utf-8")).hexdigest()


def iter_export(conn: Connection, audience: Audience, plan: ExportPlan,
                batch: int = 10_000) -> Iterator[Member]:
    """The members an export writes, in profile-id order (keyset batches)."""
    from store.campaign.splits import is_holdout

    for member in iter_members(conn, audience.id, batch):
        if plan.groups is None:
            if is_holdout(member.split):
                continue
        elif member.split not in plan.groups:
            continue
        yield member


def export_members(conn: Connection, audience: Audience, out: TextIO,
                   plan: ExportPlan | None = None) -> int:
    """Write the members as CSV (``profile_id``, the fields, ``split`` when split) or NDJSON;
    returns the row count.

    Read inside one read transaction, so an activation committing meanwhile
    cannot mix two versions of the audience into the file.
    """
    plan = plan or export_plan(conn, audience)
    written = 0
    header = ["profile_id", *plan.fields, *(["split"] if plan.with_split else [])]
    writer = csv.writer(out, lineterminator="\n") if plan.fmt == "csv" else None
    if writer is not None:
        writer.writerow(header)
    with _snapshot(conn):
        for member in iter_export(conn, audience, plan):
            values: list[Any] = [member.profile_id]
            for name in plan.fields:
                value = member.fields.get(name)
                values.append(_hashed(value) if name in plan.hashed else value)
            if plan.with_split:
                values.append(member.split)
            if writer is not None:
                writer.writerow([_csv_value(v) for v in values])
            else:
                out.write(json.dumps(dict(zip(header, values, strict=True)), ensure_ascii=False) + "\n")
            written += 1
    return written


def export_csv(conn: Connection, audience: Audience, out: TextIO) -> int:
    """Every member but the holdout as CSV (``export_members`` with the defaults)."""
    return export_members(conn, audience, out)


def export_csv_file(conn: Connection, audience: Audience, output: str | Path,
                    plan: ExportPlan | None = None) -> int:
    """``export_members`` into a file (``store.files.output_file``: a regular file is replaced
    only once complete, a pipe or a device is written into)."""
    with output_file(output, newline="") as handle:
        return export_members(conn, audience, handle, plan)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# ------------------------------------------------------------------ overlap


def audience_overlap(conn: Connection, keys: list[int | str]) -> Any:
    """How activated audiences intersect (their members as activated): a
    ``store.query.overlap.Overlap``, exact.

    One pass over the chosen audiences' member rows groups each profile by the
    set of audiences it is in; sizes, pairwise overlaps and exclusive
    intersections all follow from those counts.
    """
    import datetime as dt
    import time

    from store.query.overlap import MAX_EXCLUSIVE, MAX_SEGMENTS, MIN_SEGMENTS, Overlap

    started = time.perf_counter()
    audiences = [find_audience(conn, key) for key in keys]
    ids = [a.id for a in audiences]
    if len(set(ids)) != len(ids) or not MIN_SEGMENTS <= len(ids) <= MAX_SEGMENTS:
        raise InputError(f"Overlap compares {MIN_SEGMENTS} to {MAX_SEGMENTS} different audiences.")
    index = {audience_id: i for i, audience_id in enumerate(ids)}
    placeholders = ", ".join("?" * len(ids))
    combos: dict[tuple[int, ...], int] = {}
    with _snapshot(conn):
        rows = conn.execute(
            f"SELECT combo, count(*) FROM (SELECT group_concat(audience_id) AS combo FROM"
            f" (SELECT profile_id, audience_id FROM audience_members WHERE audience_id IN ({placeholders})"
            " ORDER BY profile_id, audience_id) GROUP BY profile_id) GROUP BY combo", ids).fetchall()
    for combo, n in rows:
        members = tuple(sorted(index[int(part)] for part in str(combo).split(",")))
        combos[members] = combos.get(members, 0) + int(n)
    k = len(ids)
    matrix = [[0] * k for _ in range(k)]
    for members, n in combos.items():
        for i in members:
            for j in members:
                matrix[i][j] += n
    exclusive = sorted(combos.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
    return Overlap(
        ids=tuple(a.segment_id for a in audiences), names=tuple(a.name for a in audiences),
        as_of=dt.datetime.now(dt.UTC), total=sum(combos.values()),
        sizes=tuple(matrix[i][i] for i in range(k)),
        matrix=tuple(tuple(row) for row in matrix), union=sum(combos.values()),
        exclusive=tuple(exclusive) if k <= MAX_EXCLUSIVE else (),
        elapsed_ms=(time.perf_counter() - started) * 1000)
