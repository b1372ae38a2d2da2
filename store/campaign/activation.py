"""Activation: materialise a segment's audience into the campaign store.

Steps (docs/activation.md tells the same story with figures):

1. *Stage*: attach the profile store to the campaign connection and copy, in
   one ``INSERT ... SELECT``, each member's external id and personalisation
   fields (a JSON object built by SQLite) into a temporary table keyed by
   profile id. A profile store on another engine (DuckDB, PostgreSQL) cannot
   be attached: the member query is rendered for its engine and its rows
   (pk, id and the fields' columns) are streamed out in batches of
   ``STREAM_BATCH`` into the same temporary table, where the same SQLite
   expression builds the JSON, so every engine stages identical rows.
   Nothing in the campaign file is touched yet, so a kill here costs nothing.
2. *Diff*: ``EXCEPT`` both ways between the staged rows and the audience's
   current members; both are read in key order, so each is a merge. The
   differences land in two small temporary tables (new or changed rows, gone
   or changed rows).
3. *Apply*: in ONE ``BEGIN IMMEDIATE`` transaction (which also runs step 2,
   so it compares with what is committed): delete the gone or changed rows,
   insert the new or changed ones, upsert the audience row, append a history
   row. SQLite's WAL makes it all-or-nothing, so a crash or kill at any moment
   leaves either the old members or the new ones, never a mix.

``review`` does steps 1 and 2 without writing, for the "review, then
activate" flow of the app.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.campaign.splits import (
    MISSING_GROUP,
    SplitSpec,
    assign_share_groups,
    check_group_count,
    group_counts,
    ordered_counts,
)
from store.campaign.store import (
    Audience,
    Member,
    database_path,
    find_audience,
    identifier_fields,
    is_file_location,
    store_error,
    store_location,
)
from store.engines.base import Connection
from store.engines.cancel import Cancel, watching
from store.engines.layout import quote_identifier
from store.engines.sqlite import error_kind
from store.errors import AudiencesError, InputError, QueryCancelled, StoreError
from store.files import is_utf8_text, printable
from store.query.reach import reach
from store.schema.catalog import Catalog, did_you_mean
from store.schema.values import UTC, format_datetime
from store.segments.library import get_segment, resolve_segment, saved_definition
from store.segments.timeutil import as_of_date
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import dump_segment, load_segment_text

MAX_FIELDS = 20
DEFAULT_FIELDS = ("email", "first_name")
SAMPLE_SIZE = 5

# progress(step, fraction): a short phrase and the share of the whole operation done (0..1).
Progress = Callable[[str, float], None]

STAGED = "temp.activation_staged"
DELTA_NEW = "temp.activation_delta_new"
DELTA_OLD = "temp.activation_delta_old"
STREAMED = "temp.activation_streamed"  # one batch of members read from a profile store on another engine


@dataclass(frozen=True)
class Review:
    """What activating now would do, compared with the audience's current members."""

    segment_id: str
    name: str
    as_of: dt.datetime
    fields: tuple[str, ...]
    count: int
    added: int
    removed: int
    kept: int
    changed: int
    previous: int | None  # members before; None when the segment was never activated
    fingerprint: str
    definition_changed: bool
    samples_added: tuple[Member, ...] = ()
    samples_removed: tuple[Member, ...] = ()
    samples_kept: tuple[Member, ...] = ()
    elapsed_ms: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)  # members per group (split audiences)
    split: SplitSpec = field(default_factory=SplitSpec)
    definition: str = ""  # the YAML that would be activated
    previous_definition: str | None = None  # the YAML of the last activation (None: first)
    reach: dict[str, int] = field(default_factory=dict)  # members reachable per consent channel

    def definition_words(self, catalog: Catalog | None = None) -> list[str]:
        """The definition that would be activated, in plain words (one line a node)."""
        return definition_words(self.definition, catalog)

    def previous_words(self, catalog: Catalog | None = None) -> list[str]:
        """The definition of the last activation in plain words ([] for a first activation)."""
        return [] if self.previous_definition is None else definition_words(self.previous_definition,
                                                                             catalog)


@dataclass(frozen=True)
class ActivationResult:
    """What an activation did; ``to_json`` is the CLI's ``--json`` object."""

    audience_id: int
    segment_id: str
    name: str
    as_of: dt.datetime
    count: int
    added: int
    removed: int
    kept: int
    changed: int
    duration_ms: float
    fields: tuple[str, ...] = field(default=())
    splits: dict[str, int] | None = None  # members per group when the audience is split
    trigger: str = "activate"
    definition_changed: bool = False  # the segment's definition differs from the last activation's

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "audience_id": self.audience_id,
            "segment_id": self.segment_id,
            "name": self.name,
            "count": self.count,
            "added": self.added,
            "removed": self.removed,
            "kept": self.kept,
            "changed": self.changed,
            "duration_ms": round(self.duration_ms, 3),
            "as_of": self.as_of.isoformat(),
            "fields": list(self.fields),
            "definition_changed": self.definition_changed,
        }
        if self.splits is not None:
            payload["splits"] = dict(self.splits)
        return payload


# ------------------------------------------------------------------ fields


def personalisation_fields(catalog: Catalog, requested: Sequence[str] | None = None) -> tuple[str, ...]:
    """The fields to capture with each member: the requested ones, else email and first_name.

    (``review`` and ``activate`` given no fields keep those of the existing
    audience, so a refresh does not change them.)

    Unknown names are an ``InputError`` naming the nearest attributes.
    """
    if not requested:
        return tuple(name for name in DEFAULT_FIELDS if name in catalog.attributes)
    chosen: list[str] = []
    for name in requested:
        name = name.strip()
        if name not in catalog.attributes:
            raise InputError(f"unknown field {name!r}: not an attribute of the profile store."
                             + did_you_mean(name, set(catalog.attributes)))
        if name not in chosen:
            chosen.append(name)
    if len(chosen) > MAX_FIELDS:
        raise InputError(f"at most {MAX_FIELDS} personalisation fields (got {len(chosen)}).")
    return tuple(chosen)


def _fields_for(campaign_conn: Connection, catalog: Catalog, segment_id: str,
                requested: Sequence[str] | None) -> tuple[str, ...]:
    """The requested fields; when none are named, those the audience had (a refresh keeps them)."""
    if requested:
        return personalisation_fields(catalog, requested)
    try:
        row = campaign_conn.execute("SELECT fields FROM audiences WHERE segment_id = ?",
                                    (segment_id,)).fetchone()
    except sqlite3.OperationalError:  # a campaign store without tables yet (read-only, empty)
        row = None
    if row is not None:
        kept = [name for name in json.loads(row[0] or "[]") if name in catalog.attributes]
        if kept:
            return personalisation_fields(catalog, kept)
    return personalisation_fields(catalog)


def _field_sql(catalog: Catalog, name: str, today: dt.date) -> str:
    """The SQL expression (over profiles ``p``) of one field's value at the as-of date."""
    attribute = catalog.attributes[name]
    if attribute.derived_from:
        kind, _, source = attribute.derived_from.partition(":")
        if kind != "age" or source not in catalog.attributes:
            raise InputError(f"field {name!r} cannot be captured (derived from {attribute.derived_from!r}).")
        birth = "p." + quote_identifier(catalog.attributes[source].column)
        day = today.isoformat()  # a date we formatted, never user text
        return (f"CASE WHEN {birth} IS NULL THEN NULL ELSE CAST(substr('{day}', 1, 4) AS INTEGER)"
                f" - CAST(substr({birth}, 1, 4) AS INTEGER) - (substr('{day}', 6, 5) < substr({birth}, 6, 5))"
                " END")
    column = "p." + quote_identifier(attribute.column)
    if attribute.type == "boolean":
        return f"CASE {column} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END"
    return column


def _split_sql(catalog: Catalog, attribute: str | None, today: dt.date) -> str:
    """The SQL text of a member's group when the split is by ``attribute`` (else NULL)."""
    if attribute is None:
        return "NULL"
    missing = "'" + MISSING_GROUP + "'"
    if catalog.attributes[attribute].type == "boolean":
        column = "p." + quote_identifier(catalog.attributes[attribute].column)
        return f"CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE {missing} END"
    value = _field_sql(catalog, attribute, today)
    return f"coalesce(nullif(CAST({value} AS TEXT), ''), {missing})"


def split_attribute(catalog: Catalog, name: str) -> str:
    """The attribute a ``--split-by`` names, or an ``InputError`` naming the nearest ones."""
    name = name.strip()
    if name not in catalog.attributes:
        raise InputError(f"--split-by {name!r}: not an attribute of the profile store."
                         + did_you_mean(name, set(catalog.attributes)))
    return name


def _fields_json_sql(catalog: Catalog, fields: Sequence[str], today: dt.date) -> str:
    if not fields:
        return "NULL"
    parts = []
    for name in fields:
        key = "'" + name.replace("'", "''") + "'"
        parts.append(f"{key}, {_field_sql(catalog, name, today)}")
    return "json_object(" + ", ".join(parts) + ")"


# ------------------------------------------------------------------ identity


def definition_of(resolved: ResolvedSegment) -> tuple[str, dict[str, str], str]:
    """The segment's YAML, its references' YAML by id, and a fingerprint of all of it.

    The fingerprint is the sha256 of the normalised YAML (the dump of the
    parsed segment and of every segment it refers to), so formatting and
    comments do not change it but any change of meaning does.
    """
    definition = dump_segment(resolved.segment)
    refs = {ref_id: dump_segment(ref) for ref_id, ref in sorted(resolved.refs.items())}
    digest = hashlib.sha256(definition.encode("utf-8"))
    for ref_id, text in refs.items():
        digest.update(f"\n--- {ref_id}\n".encode())
        digest.update(text.encode("utf-8"))
    return definition, refs, digest.hexdigest()


def definition_words(definition: str, catalog: Catalog | None = None) -> list[str]:
    """A segment's YAML (as an audience keeps it) as its rule in plain words."""
    from store.segments.describe import rule_lines

    segment, _ = load_segment_text(definition, "definition")
    return rule_lines(segment.rule, catalog)


def resolve_audience(conn: Connection, audience: Audience,
                     catalog: Catalog | None = None) -> ResolvedSegment:
    """The segment an audience was activated from, validated again against the profile store.

    References are looked up among the saved segments first (they may have
    changed since), then among the definitions kept at activation.
    """
    from store.segments.library import make_lookup

    saved = make_lookup(conn)

    def lookup(segment_id: str, source: str | None) -> tuple[Any, dict[str, int]] | None:
        found = saved(segment_id, None)
        if found is not None:
            return found
        text = audience.refs.get(segment_id)
        if text is None:
            return None
        return load_segment_text(text, f"audience {audience.segment_id!r}: {segment_id}",
                                 default_id=segment_id)

    segment, lines = load_segment_text(audience.definition, f"audience {audience.segment_id!r}",
                                       default_id=audience.segment_id)
    return validate_segment(segment, catalog or Catalog.load(conn), lines, lookup)


# ------------------------------------------------------------------ staging

SOURCE = "activation_source"
TICK_MASK = 4095  # report scan progress once every 4096 profile pks


def _check(cancel: Cancel | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise QueryCancelled("activation cancelled")


def source_query(resolved: ResolvedSegment, catalog: Catalog, as_of: dt.datetime,
                 fields: Sequence[str], split_by: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """SQL selecting each member's external id and fields JSON from the attached profile store.

    The compiled segment's tables are qualified with the attachment's schema
    name (on the sqlglot tree, not the text), so no campaign table can ever
    stand in for a profile table.
    """
    from sqlglot import exp

    from store.query.compiler import compile_segment, finish

    compiled = compile_segment(resolved, catalog, as_of)
    ctes = {cte.alias for cte in compiled.expression.find_all(exp.CTE)}

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name not in ctes:
            node = node.copy()
            node.set("db", exp.to_identifier(SOURCE))
        return node

    qualified = finish(compiled.expression.transform(qualify), compiled.values)
    fields_sql = _fields_json_sql(catalog, fields, as_of_date(as_of))
    split_sql = _split_sql(catalog, split_by, as_of_date(as_of))
    sql = (f"WITH activation_members(pk) AS ({qualified.sql}) SELECT p.id, {fields_sql}, {split_sql}"
           f" FROM activation_members JOIN {SOURCE}.profiles AS p ON p.pk = activation_members.pk"
           f" WHERE (p.pk & {TICK_MASK}) <> 0 OR activation_tick(p.pk)")
    return sql, qualified.params


class ScanProgress:
    """The share of the members found so far, from the members whose pk is a multiple of
    ``TICK_MASK + 1`` (the only rows that call back into Python).

    With the audience's size known (``expected``: a review counted it), the number of such
    members seen against the number expected (one in 4096 of the audience). Otherwise the
    furthest pk reached against the largest pk, never going back: members come in pk order
    only when the profiles table drives the query; an attribute index (sign-up date order)
    or the parts of an `any` can hand them over in another order.
    """

    def __init__(self, top: int, expected: int | None) -> None:
        self.top = top
        self.expected_ticks = None if not expected else expected / (TICK_MASK + 1)
        self.ticks = 0
        self.done = 0.0

    def after(self, pk: int) -> float:
        self.ticks += 1
        if self.expected_ticks:
            reached = min(self.ticks / self.expected_ticks, 0.99)
        else:
            reached = min(pk / self.top, 1.0)
        self.done = max(self.done, reached)
        return self.done


@contextmanager
def _attached(campaign_conn: Connection, profile_path: str) -> Iterator[None]:
    """The profile store attached to the campaign connection (read side only) for one staging."""
    campaign_conn.execute(f"ATTACH DATABASE ? AS {SOURCE}", (profile_path,))
    try:
        yield
    finally:
        campaign_conn.execute(f"DETACH DATABASE {SOURCE}")


def stage_members(conn: Connection, campaign_conn: Connection,
                  resolved: ResolvedSegment, as_of: dt.datetime, fields: Sequence[str],
                  catalog: Catalog, *, progress: Progress | None = None,
                  cancel: Cancel | None = None, share: float = 1.0,
                  expected: int | None = None, split_by: str | None = None) -> int:
    """Fill the campaign connection's temp table with the audience at ``as_of``; returns its size.

    An SQLite profile store is attached to the campaign connection so the
    members go from one file to the other inside SQLite, without a round trip
    through Python per row. A store on another engine is read in batches
    (``stream_members``). Either way only temp tables of the campaign
    connection are written, so stopping here changes nothing. ``progress``
    receives the share of the profile scan done, scaled to ``share``
    (``expected``: the audience's size if known, which makes it exact; see
    ``ScanProgress``); ``cancel`` stops the query.
    """
    report = progress or (lambda step, fraction: None)
    campaign_conn.execute(f"CREATE TABLE IF NOT EXISTS {STAGED} (profile_id TEXT PRIMARY KEY, fields TEXT,"
                          " split TEXT) WITHOUT ROWID")
    campaign_conn.execute(f"DELETE FROM {STAGED}")
    report("Finding members", 0.0)
    profile_path = attachable_path(conn)
    if profile_path is not None:
        _stage_attached(conn, campaign_conn, profile_path, resolved, as_of, fields, catalog,
                        report, cancel, share, expected, split_by)
    else:
        stream_members(conn, campaign_conn, resolved, as_of, fields, catalog, report, cancel,
                       share, expected, split_by=split_by)
    _check(cancel)
    report("Finding members", share)
    return int(campaign_conn.execute(f"SELECT count(*) FROM {STAGED}").fetchone()[0])


def attachable_path(conn: Connection) -> str | None:
    """The profile store's file when the campaign connection can ATTACH it (an SQLite store).

    None for every other engine: their members are streamed instead.
    """
    if not isinstance(conn, sqlite3.Connection):
        return None
    profile_path = database_path(conn)
    if profile_path in ("", ":memory:"):
        raise StoreError("Activation needs a profile store file (not an in-memory database).")
    return profile_path if is_utf8_text(profile_path) else None  # SQL names files as UTF-8 text


def _stage_attached(conn: Connection, campaign_conn: Connection, profile_path: str,
                    resolved: ResolvedSegment, as_of: dt.datetime, fields: Sequence[str],
                    catalog: Catalog, report: Progress, cancel: Cancel | None,
                    share: float, expected: int | None, split_by: str | None) -> None:
    """One ``INSERT ... SELECT`` from the attached SQLite profile store into the staged table."""
    sql, params = source_query(resolved, catalog, as_of, fields, split_by)
    campaign_conn.engine.prepare_reads(campaign_conn)  # the settings the compiled SQL relies on
    with _attached(campaign_conn, profile_path):
        top = campaign_conn.execute(f"SELECT max(pk) FROM {SOURCE}.profiles").fetchone()[0] or 1
        done = ScanProgress(top, expected)

        def tick(pk: int) -> int:
            report("Finding members", share * done.after(pk))
            return 1

        campaign_conn.create_function("activation_tick", 1, tick)  # type: ignore[attr-defined]
        with watching(cancel, campaign_conn, translate=False):
            try:
                campaign_conn.execute("BEGIN")
                campaign_conn.execute(f"INSERT OR IGNORE INTO {STAGED}(profile_id, fields, split) {sql}",
                                      params)
                campaign_conn.execute("COMMIT")
            except BaseException:
                if campaign_conn.in_transaction:
                    campaign_conn.execute("ROLLBACK")
                raise


# ------------------------------------------------------------------ streaming

STREAM_BATCH = 50_000  # member rows held in memory at once when streaming


def _source_columns(catalog: Catalog, fields: Sequence[str]) -> list[str]:
    """The profiles columns the fields are computed from (a derived age reads its birth date)."""
    columns: list[str] = []
    for name in fields:
        attribute = catalog.attributes[name]
        if attribute.derived_from:
            kind, _, source = attribute.derived_from.partition(":")
            if kind != "age" or source not in catalog.attributes:
                raise InputError(f"field {name!r} cannot be captured"
                                 f" (derived from {attribute.derived_from!r}).")
            attribute = catalog.attributes[source]
        if attribute.column not in columns:
            columns.append(attribute.column)
    return columns


def member_rows_query(conn: Connection, resolved: ResolvedSegment, catalog: Catalog,
                      as_of: dt.datetime, columns: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """The profile engine's SQL selecting each member's pk, external id and ``columns``.

    The compiled segment's membership condition on ``profiles``, rendered for
    the connection's engine (``engine.render``: never SQLite text translated).
    """
    from store.query import sqlbuild as sb
    from store.query.compiler import compile_segment, membership, pk_column, profiles_select

    compiled = compile_segment(resolved, catalog, as_of)
    query = profiles_select(membership(compiled), pk_column(), sb.column("id"),
                            *(sb.column(name) for name in columns))
    return conn.engine.render(query, compiled.values)


def staging_statements(catalog: Catalog, fields: Sequence[str], columns: Sequence[str],
                       today: dt.date, split_by: str | None = None) -> tuple[str, str, str]:
    """The campaign-side statements of the streaming path: create the table of streamed rows
    (pk, id, *columns; no column types, so values stay as the profile engine gave them),
    insert one such row, and stage the rows (then deleted) with their fields JSON.

    The JSON is built by the same SQLite expression as on the attached path,
    over the same values, so every engine stores identical members.
    """
    names = ", ".join(quote_identifier(name) for name in ("pk", "id", *columns))
    create = f"CREATE TABLE {STREAMED} ({names})"
    insert = f"INSERT INTO {STREAMED} VALUES ({', '.join('?' * (len(columns) + 2))})"
    stage = (f"INSERT OR IGNORE INTO {STAGED}(profile_id, fields, split)"
             f" SELECT p.id, {_fields_json_sql(catalog, fields, today)},"
             f" {_split_sql(catalog, split_by, today)} FROM {STREAMED} AS p")
    return create, insert, stage


def stream_members(conn: Connection, campaign_conn: Connection, resolved: ResolvedSegment,
                   as_of: dt.datetime, fields: Sequence[str], catalog: Catalog, report: Progress,
                   cancel: Cancel | None, share: float, expected: int | None,
                   batch: int | None = None, split_by: str | None = None) -> None:
    """Stage the members of a profile store on any engine, ``batch`` rows at a time
    (default ``STREAM_BATCH``; ``engine.stream``: a server-side cursor on PostgreSQL).

    The member query runs on the profile engine; each batch of rows is
    written into the campaign connection's staged table, all inside one
    transaction on the temp schema (the campaign file itself is not touched).
    Progress: rows staged against ``expected`` when known, else the furthest
    pk reached (the last of each batch) against the largest pk, never going back.
    """
    batch = batch or STREAM_BATCH
    columns = _source_columns(catalog, [*fields, *([split_by] if split_by else [])])
    create, insert, stage = staging_statements(catalog, fields, columns, as_of_date(as_of), split_by)
    try:
        conn.engine.prepare_reads(conn)
        sql, params = member_rows_query(conn, resolved, catalog, as_of, columns)
        top = 1 if expected else int(
            conn.execute("SELECT max(pk) FROM profiles").fetchone()[0] or 1)
    except sqlite3.Error as exc:
        raise _profile_error(conn, exc, cancel) from exc
    _check(cancel)
    seen, reached, done = 0, 0, 0.0
    rows = conn.engine.stream(conn, sql, params, batch)  # never the whole audience in memory
    campaign_conn.execute(f"DROP TABLE IF EXISTS {STREAMED}")
    campaign_conn.execute("BEGIN")
    try:
        campaign_conn.execute(create)
        with watching(cancel, conn, translate=False):
            while True:
                _check(cancel)
                try:
                    chunk = next(rows, None)
                except sqlite3.Error as exc:
                    raise _profile_error(conn, exc, cancel) from exc
                if chunk is None:
                    break
                campaign_conn.executemany(insert, chunk)
                campaign_conn.execute(stage)
                campaign_conn.execute(f"DELETE FROM {STREAMED}")
                seen += len(chunk)
                if expected:
                    fraction = min(seen / expected, 0.99)
                else:
                    reached = max(reached, int(chunk[-1][0]))  # rows come about in table order
                    fraction = min(reached / top, 1.0)
                done = max(done, fraction)
                report("Finding members", share * done)
        _check(cancel)
        campaign_conn.execute("COMMIT")
    except BaseException:
        if campaign_conn.in_transaction:
            campaign_conn.execute("ROLLBACK")
        raise
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _profile_error(conn: Connection, exc: sqlite3.Error,
                   cancel: Cancel | None) -> Exception:
    """A failure of the profile store's engine: cancelled, or a message naming that store."""
    if (cancel is not None and cancel.cancelled) or error_kind(exc) == "interrupted":
        return QueryCancelled("activation cancelled")
    return StoreError(conn.engine.describe_error(exc))


def clear_staged(campaign_conn: Connection) -> None:
    """Free the staged rows and the differences (they can be large)."""
    for table in (STAGED, DELTA_NEW, DELTA_OLD, STREAMED):
        campaign_conn.execute(f"DROP TABLE IF EXISTS {table}")


@dataclass(frozen=True)
class _Diff:
    """How the staged members differ from an audience's current ones.

    ``DELTA_NEW`` then holds the staged rows not among the members as they
    are (added, or kept with other fields); ``DELTA_OLD`` the member rows not
    staged as they are (removed, or kept with other fields).
    """

    previous: int
    count: int
    new_rows: int
    old_rows: int
    changed: int

    @property
    def added(self) -> int:
        return self.new_rows - self.changed

    @property
    def removed(self) -> int:
        return self.old_rows - self.changed

    @property
    def kept(self) -> int:
        return self.count - self.added


def _diff(campaign_conn: Connection, audience_id: int | None, count: int) -> _Diff:
    """Compare the staged rows with the audience's members by merging the two sorted sets.

    Both sides are read in profile-id order (the staged table's key and the
    members' key after the audience id), so ``EXCEPT ... ORDER BY`` is a
    merge with no sort and no lookup per row. The second pass is skipped when
    the sizes already prove it empty.
    """
    for table in (DELTA_NEW, DELTA_OLD):
        campaign_conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (profile_id TEXT PRIMARY KEY,"
                              " fields TEXT, split TEXT) WITHOUT ROWID")
        campaign_conn.execute(f"DELETE FROM {table}")
    previous = 0 if audience_id is None else int(campaign_conn.execute(
        "SELECT count(*) FROM audience_members WHERE audience_id = ?", (audience_id,)).fetchone()[0])
    if previous == 0:
        return _Diff(0, count, count, 0, 0)
    new_rows = campaign_conn.execute(
        f"INSERT INTO {DELTA_NEW} SELECT profile_id, fields, split FROM {STAGED} EXCEPT"
        " SELECT profile_id, fields, split FROM audience_members WHERE audience_id = ? ORDER BY 1, 2, 3",
        (audience_id,)).rowcount
    old_rows = previous - count + new_rows  # |members| - |rows in both|
    if old_rows:
        campaign_conn.execute(
            f"INSERT INTO {DELTA_OLD} SELECT profile_id, fields, split FROM audience_members"
            f" WHERE audience_id = ? EXCEPT SELECT profile_id, fields, split FROM {STAGED}"
            " ORDER BY 1, 2, 3",
            (audience_id,))
    changed = 0 if not (new_rows and old_rows) else int(campaign_conn.execute(
        f"SELECT count(*) FROM {DELTA_NEW} AS n JOIN {DELTA_OLD} AS o ON o.profile_id = n.profile_id"
    ).fetchone()[0])
    return _Diff(previous, count, new_rows, old_rows, changed)


@dataclass(frozen=True)
class _Existing:
    """The audience row a (re)activation compares with."""

    id: int
    fingerprint: str
    member_count: int
    definition: str
    split: SplitSpec


def _existing(campaign_conn: Connection, segment_id: str) -> _Existing | None:
    row = campaign_conn.execute(
        "SELECT id, fingerprint, member_count, definition, splits FROM audiences WHERE segment_id = ?",
        (segment_id,)).fetchone()
    return None if row is None else _Existing(int(row[0]), str(row[1]), int(row[2]), str(row[3]),
                                              SplitSpec.from_json(row[4]))


def _split_for(campaign_conn: Connection, catalog: Catalog, segment_id: str,
               requested: SplitSpec | None) -> SplitSpec:
    """The requested split; when none is given, the one the audience has (a refresh keeps it)."""
    if requested is not None:
        if requested.attribute is not None:
            split_attribute(catalog, requested.attribute)
        return requested
    if not _has_audiences(campaign_conn):
        return SplitSpec()
    found = _existing(campaign_conn, segment_id)
    if found is None or (found.split.attribute is not None
                         and found.split.attribute not in catalog.attributes):
        return SplitSpec()
    return found.split


def _assign_groups(campaign_conn: Connection, split: SplitSpec, existing: _Existing | None) -> None:
    """Give each staged member its group (inside the caller's transaction)."""
    if split.groups:
        assign_share_groups(campaign_conn, STAGED, split, existing.id if existing else None,
                            keep_groups=existing is not None and existing.split == split)
    elif split.attribute is not None:
        check_group_count(campaign_conn, STAGED, split)


def _staged_groups(campaign_conn: Connection, split: SplitSpec) -> dict[str, int]:
    return ordered_counts(split, group_counts(campaign_conn, STAGED)) if split.active else {}


def _samples(campaign_conn: Connection, sql: str, params: tuple[Any, ...],
             limit: int) -> tuple[Member, ...]:
    return tuple(Member(pid, json.loads(fields) if fields else {})
                 for pid, fields in campaign_conn.execute(sql + " LIMIT ?", (*params, limit)))


def _translate(campaign_conn: Connection, exc: sqlite3.DatabaseError) -> Exception:
    if error_kind(exc) == "interrupted":
        return QueryCancelled("activation cancelled")
    return store_error(campaign_conn, exc)


# ------------------------------------------------------------------ review


def review(conn: Connection, campaign_conn: Connection, resolved: ResolvedSegment,
           as_of: dt.datetime, fields: Sequence[str] | None = None, *, catalog: Catalog | None = None,
           samples: int = SAMPLE_SIZE, progress: Progress | None = None,
           cancel: Cancel | None = None, expected: int | None = None,
           split: SplitSpec | None = None) -> Review:
    """What activating ``resolved`` at ``as_of`` would change; writes nothing to the campaign file.

    ``split``: divide the members into groups (``SplitSpec()``: no split; None: keep the
    audience's split).
    """
    started = time.perf_counter()
    catalog = catalog or Catalog.load(conn)
    check_same_source(campaign_conn, resolved.segment.id, store_location(conn))
    chosen = _fields_for(campaign_conn, catalog, resolved.segment.id, fields)
    chosen_split = _split_for(campaign_conn, catalog, resolved.segment.id, split)
    segment = resolved.segment
    definition, _, fingerprint = definition_of(resolved)
    try:
        count = stage_members(conn, campaign_conn, resolved, as_of, chosen, catalog,
                              progress=progress, cancel=cancel, share=0.8, expected=expected,
                              split_by=chosen_split.attribute)
        if progress:
            progress("Comparing with the current members", 0.8)
        campaign_conn.execute("BEGIN")
        try:
            existing = _existing(campaign_conn, segment.id) if _has_audiences(campaign_conn) else None
            audience_id = existing.id if existing else None
            _assign_groups(campaign_conn, chosen_split, existing)
            groups = _staged_groups(campaign_conn, chosen_split)
            diff = _diff(campaign_conn, audience_id, count)
            only = ("SELECT d.profile_id, d.fields FROM {this} AS d WHERE NOT EXISTS"
                    " (SELECT 1 FROM {other} AS x WHERE x.profile_id = d.profile_id) ORDER BY d.profile_id")
            if diff.previous == 0:
                added = _samples(campaign_conn, f"SELECT profile_id, fields FROM {STAGED}"
                                 " ORDER BY profile_id", (), samples)
            else:
                added = _samples(campaign_conn, only.format(this=DELTA_NEW, other=DELTA_OLD), (),
                                 samples)
            removed = _samples(campaign_conn, only.format(this=DELTA_OLD, other=DELTA_NEW), (), samples)
            # kept: scans from the first id until it meets members, so skip it when there are none
            kept = () if diff.kept == 0 else _samples(
                campaign_conn, f"SELECT s.profile_id, s.fields FROM {STAGED} AS s WHERE EXISTS"
                " (SELECT 1 FROM audience_members AS m WHERE m.audience_id = ?"
                " AND m.profile_id = s.profile_id) ORDER BY s.profile_id", (audience_id,), samples)
        finally:
            campaign_conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise _translate(campaign_conn, exc) from exc
    finally:
        clear_staged(campaign_conn)
    if progress:
        progress("Counting the members reachable per channel", 0.9)
    try:
        reachable = reach(conn, resolved, as_of, catalog, check=lambda: _check(cancel))
    except AudiencesError:
        if cancel is not None and cancel.cancelled:
            raise QueryCancelled("activation cancelled") from None
        raise
    if progress:
        progress("Reviewed", 1.0)
    return Review(
        segment_id=segment.id, name=segment.name, as_of=as_of, fields=chosen, count=count,
        added=diff.added, removed=diff.removed, kept=diff.kept, changed=diff.changed,
        previous=diff.previous if existing else None, fingerprint=fingerprint,
        definition_changed=existing is not None and existing.fingerprint != fingerprint,
        samples_added=added, samples_removed=removed, samples_kept=kept,
        elapsed_ms=(time.perf_counter() - started) * 1000, splits=groups, split=chosen_split,
        definition=definition, previous_definition=existing.definition if existing else None,
        reach=reachable,
    )


def check_same_source(campaign_conn: Connection, segment_id: str, profile_path: str) -> None:
    """Refuse to review or refresh an audience that another profile store activated.

    Two profile stores in one folder share the default ``campaign.db`` (and every server
    store shares the one in the user's data folder); refreshing one's audience from the
    other would count members of the wrong store as removed and added. Stores are named
    as ``store_location`` records them (a file's absolute path, a server URL without its
    password, with the schema). A recorded store file that no longer exists (the folder
    was moved, the store renamed) gives the audience over to this store; a server store
    cannot be seen to be gone, so its audience stays with it.
    """
    if not _has_audiences(campaign_conn):
        return
    row = campaign_conn.execute("SELECT source_db FROM audiences WHERE segment_id = ?",
                                (segment_id,)).fetchone()
    recorded = None if row is None else row[0]
    if not recorded or recorded == profile_path:
        return
    if is_file_location(recorded):
        if not Path(recorded).exists():
            return
        if is_file_location(profile_path) and Path(recorded).resolve() == Path(profile_path).resolve():
            return
    raise StoreError(
        f"{printable(database_path(campaign_conn))} already holds the audience of segment '{segment_id}',"
        f" activated from the profile store {recorded}, not {profile_path}. Activate it from"
        " that store, or give this store a campaign store of its own (--campaign-db).")


def _has_audiences(campaign_conn: Connection) -> bool:
    return campaign_conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='audiences'").fetchone() is not None


# ------------------------------------------------------------------ activate


def activate(conn: Connection, campaign_conn: Connection, resolved: ResolvedSegment,
             as_of: dt.datetime, fields: Sequence[str] | None = None, *, catalog: Catalog | None = None,
             name: str | None = None, progress: Progress | None = None,
             cancel: Cancel | None = None, expected: int | None = None,
             split: SplitSpec | None = None, trigger: str = "activate") -> ActivationResult:
    """Replace the segment's audience in the campaign store by its members at ``as_of``.

    One transaction on the campaign store; activating again with the same
    data and as-of writes no member row and reports 0 added, 0 removed (a
    history row still records the refresh).
    Raises ``StoreError`` when the campaign store cannot be written (read-only,
    full, locked), ``QueryCancelled`` when ``cancel`` is set or the query is
    interrupted; in every failure the campaign store is left as it was. ``expected``, the
    audience's size when a review just counted it, makes the progress exact. ``split``
    divides the members into groups (None keeps the audience's split, ``SplitSpec()``
    removes it); ``trigger`` (activate, refresh, schedule) is recorded in the history.
    """
    started = time.perf_counter()
    attachable_path(conn)  # an in-memory store is refused before anything reads it
    catalog = catalog or Catalog.load(conn)
    chosen = _fields_for(campaign_conn, catalog, resolved.segment.id, fields)
    chosen_split = _split_for(campaign_conn, catalog, resolved.segment.id, split)
    attributes = {name: catalog.attributes[name] for name in chosen}
    identifiers = identifier_fields(chosen, {name: (a.xdm, a.type) for name, a in attributes.items()})
    segment = resolved.segment
    definition, refs, fingerprint = definition_of(resolved)
    report = progress or (lambda step, fraction: None)
    require_writable(campaign_conn)
    check_same_source(campaign_conn, segment.id, store_location(conn))
    try:
        count = stage_members(conn, campaign_conn, resolved, as_of, chosen, catalog,
                              progress=progress, cancel=cancel, share=0.5, expected=expected,
                              split_by=chosen_split.attribute)
        report("Comparing with the current members", 0.5)
        origin = "saved" if saved_definition(conn, segment.id) is not None else "file"
        campaign_conn.execute("BEGIN IMMEDIATE")
        try:
            result = _apply(campaign_conn, _Target(segment.id, name or segment.name, definition, refs,
                                                   fingerprint, chosen, chosen_split, origin, trigger,
                                                   identifiers),
                            as_of, count, store_location(conn), started, report)
            _check(cancel)
            campaign_conn.execute("COMMIT")
        except BaseException:
            if campaign_conn.in_transaction:
                campaign_conn.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as exc:
        raise _translate(campaign_conn, exc) from exc
    finally:
        with contextlib.suppress(sqlite3.DatabaseError):
            clear_staged(campaign_conn)
    report("Done", 1.0)
    return result


@dataclass(frozen=True)
class _Target:
    """What an activation writes into the audience row."""

    segment_id: str
    name: str
    definition: str
    refs: dict[str, str]
    fingerprint: str
    fields: tuple[str, ...]
    split: SplitSpec
    origin: str
    trigger: str
    identifiers: tuple[str, ...]  # the fields that are identifiers (``identifier_fields``)


def _apply(campaign_conn: Connection, target: _Target, as_of: dt.datetime,
           count: int, source_db: str, started: float, report: Progress) -> ActivationResult:
    """Steps 2 and 3, inside the caller's write transaction."""
    now = format_datetime(dt.datetime.now(UTC).replace(microsecond=0))
    as_of_text = format_datetime(as_of)
    segment_id, name, fields = target.segment_id, target.name, target.fields
    existing = _existing(campaign_conn, segment_id)
    if existing is None:
        audience_id = int(campaign_conn.execute(
            "INSERT INTO audiences(name, segment_id, definition, refs, fingerprint, status, fields,"
            " source_db, created_at, activated_at, as_of, member_count, origin, identifiers)"
            " VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, 0, ?, ?)",
            (name, segment_id, target.definition, json.dumps(target.refs), target.fingerprint,
             json.dumps(list(fields)), source_db, now, now, as_of_text, target.origin,
             json.dumps(list(target.identifiers))),
        ).lastrowid or 0)
    else:
        audience_id = existing.id
    _assign_groups(campaign_conn, target.split, existing)
    groups = _staged_groups(campaign_conn, target.split)
    diff = _diff(campaign_conn, audience_id, count)
    report("Writing the members", 0.7)
    if diff.previous == 0:
        campaign_conn.execute(
            "INSERT INTO audience_members(audience_id, profile_id, fields, split)"
            f" SELECT ?, profile_id, fields, split FROM {STAGED} ORDER BY profile_id", (audience_id,))
    else:
        # changed members are replaced: their old row goes with the removed, the new one comes
        # with the added
        if diff.old_rows:
            campaign_conn.execute(
                "DELETE FROM audience_members WHERE audience_id = ? AND profile_id IN"
                f" (SELECT profile_id FROM {DELTA_OLD})", (audience_id,))
        if diff.new_rows:
            campaign_conn.execute(
                "INSERT INTO audience_members(audience_id, profile_id, fields, split)"
                f" SELECT ?, profile_id, fields, split FROM {DELTA_NEW} ORDER BY profile_id", (audience_id,))
    report("Recording the activation", 0.95)
    duration_ms = (time.perf_counter() - started) * 1000
    splits_json = json.dumps(groups) if target.split.active else None
    campaign_conn.execute(
        "UPDATE audiences SET name = ?, definition = ?, refs = ?, fingerprint = ?, status = 'active',"
        " fields = ?, source_db = ?, activated_at = ?, as_of = ?, member_count = ?, splits = ?,"
        " identifiers = ?, origin = CASE WHEN ? = 'saved' THEN 'saved' ELSE origin END WHERE id = ?",
        (name, target.definition, json.dumps(target.refs), target.fingerprint, json.dumps(list(fields)),
         source_db, now, as_of_text, count, target.split.to_json(), json.dumps(list(target.identifiers)),
         target.origin, audience_id))
    campaign_conn.execute(
        "INSERT INTO activations(audience_id, activated_at, as_of, count, added, removed, kept, changed,"
        " duration_ms, fingerprint, trigger, splits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (audience_id, now, as_of_text, count, diff.added, diff.removed, diff.kept, diff.changed,
         round(duration_ms, 3), target.fingerprint, target.trigger, splits_json))
    return ActivationResult(audience_id, segment_id, name, as_of, count, diff.added, diff.removed,
                            diff.kept, diff.changed, duration_ms, fields,
                            groups if target.split.active else None, target.trigger,
                            existing is not None and existing.fingerprint != target.fingerprint)


def require_writable(campaign_conn: Connection) -> None:
    """Fail early (before the long query) when the campaign store cannot be written.

    A write that changes nothing still needs write access, so a read-only
    file or connection is refused here with nothing done.
    """
    try:
        campaign_conn.execute("BEGIN IMMEDIATE")
        try:
            campaign_conn.execute("DELETE FROM meta WHERE 0")
        finally:
            campaign_conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise store_error(campaign_conn, exc) from exc


# ------------------------------------------------------------------ refresh

TRIGGERS = ("activate", "refresh", "schedule")


def refresh_definition(conn: Connection, audience: Audience,
                       catalog: Catalog | None = None) -> ResolvedSegment:
    """The segment to refresh an audience with: its segment's current saved definition.

    An audience activated from a file whose segment was never saved keeps the
    definition it was activated with. One whose saved segment has been deleted
    since cannot be refreshed: an ``InputError`` says so (its members stay).
    """
    saved = get_segment(conn, audience.segment_id)
    if saved is not None:
        return resolve_segment(conn, *saved, catalog=catalog)
    if audience.origin == "saved":
        raise InputError(
            f"Cannot refresh audience {audience.id} ({audience.name}): its segment"
            f" '{audience.segment_id}' is no longer saved in the profile store. The audience keeps"
            f" its {audience.member_count:,} members; save the segment again, or activate a file.")
    return resolve_audience(conn, audience, catalog)


def refresh(conn: Connection, campaign_conn: Connection, key: int | str, as_of: dt.datetime, *,
            catalog: Catalog | None = None, trigger: str = "refresh",
            progress: Progress | None = None,
            cancel: Cancel | None = None) -> ActivationResult:
    """Activate an audience again with its segment's current saved definition, keeping its
    name, fields and split; the history records ``trigger`` (refresh or schedule)."""
    audience = find_audience(campaign_conn, key)
    catalog = catalog or Catalog.load(conn)
    resolved = refresh_definition(conn, audience, catalog)
    resolved.check_bounds(as_of)
    return activate(conn, campaign_conn, resolved, as_of, audience.fields or None, catalog=catalog,
                    name=audience.name, progress=progress, cancel=cancel, trigger=trigger)


def definition_states(conn: Connection, audiences: Sequence[Audience],
                      catalog: Catalog | None = None) -> dict[int, str]:
    """For each audience whose segment moved on since its last activation, what happened:
    ``changed`` (the saved definition differs: a refresh applies it) or ``deleted`` (the
    saved segment is gone: a refresh is refused). Audiences still in step are left out."""
    catalog = catalog or Catalog.load(conn)
    states: dict[int, str] = {}
    for audience in audiences:
        saved = get_segment(conn, audience.segment_id)
        if saved is None:
            if audience.origin == "saved":
                states[audience.id] = "deleted"
            continue
        try:
            resolved = resolve_segment(conn, *saved, catalog=catalog)
        except InputError:
            states[audience.id] = "changed"  # it no longer validates: not what was activated
            continue
        if definition_of(resolved)[2] != audience.fingerprint:
            states[audience.id] = "changed"
    return states
