"""Saved segments: save, list, read, rename, delete, and how references are found.

A reference ``segment: ID`` is resolved among the segments saved in the store,
then as ``ID.yaml`` beside the file that refers to it (spec/segments.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from store.engines.base import Connection
from store.engines.layout import write_transaction
from store.errors import InputError
from store.schema.catalog import Catalog
from store.segments.model import Segment, referenced_segments, slugify
from store.segments.validate import ResolvedSegment, SegmentLookup, validate_segment
from store.segments.yamlio import dump_segment, load_segment_file, load_segment_text, read_text_file


@dataclass(frozen=True)
class SavedSegment:
    id: str
    name: str
    description: str
    created_at: str
    updated_at: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def list_segments(conn: Connection) -> list[SavedSegment]:
    """Saved segments by name, ignoring ASCII case (SQLite's NOCASE), then by id.

    Sorted here rather than by the engine: a case-insensitive collation differs
    between engines, and a store holds few segments.
    """
    conn = conn.engine.segments_connection(conn)
    rows = conn.execute(
        "SELECT id, name, description, created_at, updated_at FROM segments").fetchall()
    saved = [SavedSegment(*row) for row in rows]
    return sorted(saved, key=lambda s: (s.name.translate(_ASCII_FOLD), s.id))


def saved_definition(conn: Connection, segment_id: str) -> str | None:
    conn = conn.engine.segments_connection(conn)
    row = conn.execute("SELECT definition FROM segments WHERE id = ?", (segment_id,)).fetchone()
    return None if row is None else str(row[0])


def check_replaceable(conn: Connection, segment: Segment) -> None:
    """Refuse to save ``segment`` over a saved segment with its id but another name.

    Ids default to a slug of the name, and different names can reduce to one id
    (``Café ☕`` and ``Cafe`` are both ``cafe``): saving one must not silently
    replace the other. Saving a segment again under its own name updates it, and so
    does saving one whose id is written out (not the slug of its name: renaming a
    segment in its file keeps its identity); the command line's ``--replace`` skips
    this check for a replacement on purpose.
    """
    if segment.id != slugify(segment.name):
        return  # an id written out (``id:`` in the file, ``--id``): the user names the one meant
    conn = conn.engine.segments_connection(conn)
    row = conn.execute("SELECT name FROM segments WHERE id = ?", (segment.id,)).fetchone()
    if row is None or str(row[0]) == segment.name:
        return
    raise InputError(
        f"A different segment is saved under the id {segment.id!r}: {row[0]!r} (this one is"
        f" {segment.name!r}). Pass --replace to replace it on purpose, or give this segment"
        " its own id (`id:` in the file, or --id with segments import).")


def get_segment(conn: Connection, segment_id: str) -> tuple[Segment, dict[str, int]] | None:
    """A saved segment, parsed, with its YAML line map; None if there is none."""
    text = saved_definition(conn, segment_id)
    if text is None:
        return None
    return load_segment_text(text, f"saved segment {segment_id!r}", default_id=segment_id)


def make_lookup(conn: Connection) -> SegmentLookup:
    """Find referenced segments: saved in the store first, then ``ID.yaml`` beside the file."""

    def lookup(segment_id: str, source: str | None) -> tuple[Segment, dict[str, int]] | None:
        saved = get_segment(conn, segment_id)
        if saved is not None:
            return saved
        if source and not source.startswith("saved segment"):
            candidate = Path(source).parent / f"{segment_id}.yaml"
            if candidate.is_file():
                return load_segment_file(candidate)
        return None

    return lookup


def resolve_segment(conn: Connection, segment: Segment, lines: dict[str, int] | None = None,
                    catalog: Catalog | None = None) -> ResolvedSegment:
    """Validate a parsed segment against the store, resolving its references."""
    return validate_segment(segment, catalog or Catalog.load(conn), lines, make_lookup(conn))


def resolve_file(conn: Connection, path: str | Path) -> ResolvedSegment:
    """A segment file, validated: YAML, or PQL when the file ends in ``.pql``."""
    if Path(path).suffix.lower() == ".pql":
        return resolve_pql(conn, read_text_file(path), str(path))[0]
    segment, lines = load_segment_file(path)
    return resolve_segment(conn, segment, lines)


def resolve_pql(conn: Connection, text: str, source: str, *, segment_id: str | None = None,
                name: str | None = None) -> tuple[ResolvedSegment, list[str]]:
    """PQL text (spec/pql.md) read over the store's XDM names and validated like YAML; with
    the reader's warnings (case sensitivity given up)."""
    from store.segments.pql_reader import read_pql

    catalog = Catalog.load(conn)
    reading = read_pql(text, catalog, source=source, segment_id=segment_id, name=name)
    return resolve_segment(conn, reading.segment, reading.lines, catalog), reading.warnings


def resolve_saved(conn: Connection, segment_id: str) -> ResolvedSegment:
    found = get_segment(conn, segment_id)
    if found is None:
        raise InputError(f"No saved segment {segment_id!r}.")
    return resolve_segment(conn, *found)


def save_segment(conn: Connection, resolved: ResolvedSegment) -> None:
    """Save (insert or replace) a validated segment, and any file segments it refers to.

    Referenced segments that came from files beside it are saved too, so the
    saved segment keeps working without its neighbours; all in one transaction.
    (Validation has already refused cycles, including one through the old
    saved version of this segment.)
    """
    conn = conn.engine.segments_connection(conn)
    segment = resolved.segment
    with write_transaction(conn):
        for ref_id, ref in resolved.refs.items():
            if saved_definition(conn, ref_id) is None:
                _upsert(conn, ref)
        _upsert(conn, segment)


def _upsert(conn: Connection, segment: Segment) -> None:
    now = _now()
    conn.execute(
        "INSERT INTO segments(id, name, description, definition, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
        " description = excluded.description, definition = excluded.definition,"
        " updated_at = excluded.updated_at",
        (segment.id, segment.name, segment.description, dump_segment(segment), now, now),
    )


def referrers(conn: Connection, segment_id: str) -> list[str]:
    """Ids of the saved segments that refer to ``segment_id`` directly."""
    users = []
    for saved in list_segments(conn):
        if saved.id == segment_id:
            continue
        found = get_segment(conn, saved.id)
        if found is not None and segment_id in referenced_segments(found[0].rule):
            users.append(saved.id)
    return users


def check_deletable(conn: Connection, segment_id: str) -> None:
    """Refuse to delete a segment that is not saved, or that another saved segment uses."""
    if saved_definition(conn, segment_id) is None:
        raise InputError(f"No saved segment {segment_id!r}.")
    users = referrers(conn, segment_id)
    if users:
        raise InputError(
            f"Segment {segment_id!r} is used by " + ", ".join(repr(u) for u in users)
            + "; change or delete those first."
        )


def delete_segment(conn: Connection, segment_id: str) -> None:
    """Delete a saved segment; refused while another saved segment refers to it."""
    conn = conn.engine.segments_connection(conn)
    with write_transaction(conn):
        check_deletable(conn, segment_id)
        conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))


def check_renamable(conn: Connection, segment_id: str, new_name: str) -> Segment:
    """The saved segment to rename; refused without a name or a segment."""
    if not new_name.strip():
        raise InputError("A segment needs a name.")
    found = get_segment(conn, segment_id)
    if found is None:
        raise InputError(f"No saved segment {segment_id!r}.")
    return found[0]


def rename_segment(conn: Connection, segment_id: str, new_name: str) -> None:
    """Change a saved segment's display name (its id, which references use, stays)."""
    conn = conn.engine.segments_connection(conn)
    segment = check_renamable(conn, segment_id, new_name)
    from dataclasses import replace

    with write_transaction(conn):
        _upsert(conn, replace(segment, name=new_name.strip()))


def save_segment_files(conn: Connection, directory: str | Path) -> list[str]:
    """Validate and save every ``*.yaml`` segment of a folder (e.g. the examples), in one go.

    Segments already saved under the same id are left as they are. Returns the
    ids saved.
    """
    saved: list[str] = []
    catalog = Catalog.load(conn)
    for path in sorted(Path(directory).glob("*.yaml")):
        segment, lines = load_segment_file(path)
        if saved_definition(conn, segment.id) is not None:
            continue
        save_segment(conn, validate_segment(segment, catalog, lines, make_lookup(conn)))
        saved.append(segment.id)
    return saved
