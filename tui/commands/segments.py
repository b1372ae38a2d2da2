"""``count``, ``sql`` and ``segments ...``: the segment engine from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from store.engines.base import Connection, Engine
from store.errors import InputError
from store.files import output_file, printable
from store.segments.validate import ResolvedSegment
from tui.commands.common import (
    ExistingFile,
    SegmentSource,
    checked,
    engine_option,
    parse_when,
    resolve_segment_arg,
    segment_id_option,
    store_engine,
)


@click.command("count")
@click.argument("segment", required=False, type=SegmentSource())
@engine_option()
@segment_id_option("Count the segment saved in the store under this id")
@click.option("--as-of", "as_of", metavar="WHEN", help="Evaluate at this instant (default: now, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def count_command(segment: str | None, db: Engine | None, segment_id: str | None, as_of: str | None,
                  as_json: bool) -> None:
    """Print the exact audience size of SEGMENT (a YAML file or a saved id) or --segment ID."""
    from store.query import audience

    when = parse_when(as_of)
    conn = store_engine(db).open_store(readonly=True)
    try:
        resolved = resolve_segment_arg(conn, segment, segment_id, when)
        started = time.perf_counter()
        size = audience.count(conn, resolved, when)
        elapsed_ms = (time.perf_counter() - started) * 1000
        everyone = audience.total(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({
            "count": size,
            "total": everyone,
            "share": size / everyone if everyone else 0.0,
            "elapsed_ms": round(elapsed_ms, 3),
            "as_of": when.isoformat(),
            "segment_id": resolved.segment.id,
        }))
    else:
        share = f" ({size / everyone:.1%} of {everyone:,})" if everyone else ""
        click.echo(f"{size:,}{share} in {elapsed_ms:.1f} ms")


# spec/cli.md: the engines' dialects, and for reading only bigquery, snowflake, trino (the names
# store.engines.dialects renders; not imported from there, which would load sqlglot for every command).
SQL_DIALECTS = ("sqlite", "duckdb", "postgres", "postgresql", "spark", "bigquery", "snowflake", "trino")


@click.command("sql")
@click.argument("segment", required=False, type=SegmentSource())
@engine_option()
@segment_id_option("Render the segment saved in the store under this id")
@click.option("--dialect", default=None, type=click.Choice(SQL_DIALECTS, case_sensitive=False),
              help="SQL dialect to render. Default: the store's own.")
@click.option("--as-of", "as_of", metavar="WHEN", help="Resolve relative dates at this instant.")
def sql_command(segment: str | None, db: Engine | None, segment_id: str | None, dialect: str | None,
                as_of: str | None) -> None:
    """Print the SQL query SEGMENT (a file or a saved id) or --segment ID compiles to."""
    from store.query.compiler import compile_segment, pretty_sql
    from store.schema.catalog import Catalog

    when = parse_when(as_of)
    engine = store_engine(db)
    conn = engine.open_store(readonly=True)
    try:
        resolved = resolve_segment_arg(conn, segment, segment_id, when)
        compiled = compile_segment(resolved, Catalog.load(conn), when,
                                   dialect=(dialect or engine.dialect).lower())
    finally:
        conn.close()
    click.echo(pretty_sql(compiled))


@click.group("segments")
def segments_group() -> None:
    """Manage the segments saved in the store."""


@segments_group.command("list")
@engine_option()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_command(db: Engine | None, as_json: bool) -> None:
    """List saved segments."""
    from store.segments.library import list_segments

    conn = store_engine(db).open_store(readonly=True)
    try:
        saved = list_segments(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in saved], indent=2))
        return
    if not saved:
        click.echo("No saved segments.")
    for item in saved:
        click.echo(f"{item.id}\t{item.name}\t{item.updated_at}")


@segments_group.command("show")
@click.argument("segment_id")
@engine_option()
def show_command(segment_id: str, db: Engine | None) -> None:
    """Print a saved segment's YAML."""
    from store.segments.library import saved_definition

    conn = store_engine(db).open_store(readonly=True)
    try:
        text = saved_definition(conn, segment_id)
    finally:
        conn.close()
    if text is None:
        raise InputError(f"No saved segment {segment_id!r}.")
    click.echo(text, nl=False)


REPLACE_OPTION = click.option(
    "--replace", is_flag=True,
    help="Replace a saved segment with the same id even if its name differs (by default"
         " refused: two names can reduce to one id, as Café and Cafe do).")


def _saveable(conn: Connection, resolved: ResolvedSegment, replace: bool) -> ResolvedSegment:
    """``resolved`` once ``--replace`` or the store allows saving it under its id."""
    from store.segments.library import check_replaceable

    if not replace:
        check_replaceable(conn, resolved.segment)
    return resolved


@segments_group.command("save")
@click.argument("file", type=ExistingFile())
@engine_option()
@REPLACE_OPTION
def save_command(file: Path, db: Engine | None, replace: bool) -> None:
    """Validate FILE and save it in the store (updating the saved segment with its id and
    name; a saved segment with its id but another name only with --replace)."""
    from store.segments import library

    engine = store_engine(db)
    checked(engine, lambda conn: _saveable(conn, library.resolve_file(conn, file), replace))
    conn = engine.open_store()
    try:
        # again: the store may have changed since
        resolved = _saveable(conn, library.resolve_file(conn, file), replace)
        library.save_segment(conn, resolved)
    finally:
        conn.close()
    click.echo(f"Saved segment {resolved.segment.id!r} ({resolved.segment.name}).")


FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(["yaml", "pql"], case_sensitive=False), default=None,
    help="yaml, or pql (spec/pql.md). Default: pql for a .pql file, else yaml.")


@segments_group.command("import")
@click.argument("file", type=ExistingFile())
@engine_option()
@FORMAT_OPTION
@click.option("--id", "segment_id", default=None, metavar="ID",
              help="Save it under this id (default: the file's id, else a slug of its name).")
@click.option("--name", default=None, help="Its display name (default: the file's).")
@REPLACE_OPTION
def import_command(file: Path, db: Engine | None, fmt: str | None, segment_id: str | None,
                   name: str | None, replace: bool) -> None:
    """Save a segment from a YAML file or from PQL text (a .pql file, or AEP's JSON export)."""
    import dataclasses

    from store.segments import library
    from store.segments.model import SLUG_RE
    from store.segments.yamlio import read_text_file

    if segment_id is not None and not SLUG_RE.match(segment_id):
        raise InputError(f"--id {segment_id!r} must be a lowercase slug (letters, digits, '-' or"
                         " '_').")
    fmt = (fmt or ("pql" if file.suffix.lower() == ".pql" else "yaml")).lower()
    conn = store_engine(db).open_store()
    try:
        warnings: list[str] = []
        if fmt == "pql":
            resolved, warnings = library.resolve_pql(conn, read_text_file(file), str(file),
                                                     segment_id=segment_id, name=name)
        else:
            resolved = library.resolve_file(conn, file)
            segment = resolved.segment
            segment = dataclasses.replace(segment, id=segment_id or segment.id,
                                          name=name or segment.name)
            resolved = library.resolve_segment(conn, segment, None)
        library.save_segment(conn, _saveable(conn, resolved, replace))
    finally:
        conn.close()
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Saved segment {resolved.segment.id!r} ({resolved.segment.name}).")


@segments_group.command("export")
@click.argument("segment_id")
@engine_option()
@FORMAT_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write to this file instead of standard output (`-`: standard output; a"
                   " regular file is replaced once complete, a pipe or a device written into).")
def export_command(segment_id: str, db: Engine | None, fmt: str | None, output: Path | None) -> None:
    """Export a saved segment as YAML or PQL."""
    from store.segments.library import saved_definition

    fmt = (fmt or ("pql" if output is not None and output.suffix.lower() == ".pql" else "yaml"))
    conn = store_engine(db).open_store(readonly=True)
    try:
        if fmt.lower() == "pql":
            text: str | None = segment_pql(conn, None, segment_id)  # the saved one, never a file
        else:
            text = saved_definition(conn, segment_id)
    finally:
        conn.close()
    if text is None:
        raise InputError(f"No saved segment {segment_id!r}.")
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    with output_file(output) as stream:
        stream.write(text)
    click.echo(f"Exported {segment_id!r} to {printable(output)}.", err=True)


def segment_pql(conn: Connection, segment: str | None, segment_id: str | None = None) -> str:
    """SEGMENT (a file or a saved id) or a saved ``segment_id`` as PQL over the store's XDM names."""
    from store.schema.catalog import Catalog
    from store.segments.pql_writer import write_pql

    resolved = resolve_segment_arg(conn, segment, segment_id, parse_when(None))
    return write_pql(resolved.segment, Catalog.load(conn))


@click.command("pql")
@click.argument("segment", required=False, type=SegmentSource())
@engine_option()
@segment_id_option("Print the segment saved in the store under this id")
def pql_command(segment: str | None, db: Engine | None, segment_id: str | None) -> None:
    """Print SEGMENT (a YAML or PQL file, or a saved id) or --segment ID as PQL (spec/pql.md)."""
    conn = store_engine(db).open_store(readonly=True)
    try:
        text = segment_pql(conn, segment, segment_id)
    finally:
        conn.close()
    click.echo(text, nl=False)


@segments_group.command("delete")
@click.argument("segment_id")
@engine_option()
def delete_command(segment_id: str, db: Engine | None) -> None:
    """Delete a saved segment (refused while another segment refers to it)."""
    from store.segments.library import check_deletable, delete_segment

    engine = store_engine(db)
    checked(engine, lambda conn: check_deletable(conn, segment_id))
    conn = engine.open_store()
    try:
        delete_segment(conn, segment_id)
    finally:
        conn.close()
    click.echo(f"Deleted segment {segment_id!r}.")


@segments_group.command("rename")
@click.argument("segment_id")
@click.argument("new_name")
@engine_option()
def rename_command(segment_id: str, new_name: str, db: Engine | None) -> None:
    """Change a saved segment's display name (its id stays)."""
    from store.segments.library import check_renamable, rename_segment

    engine = store_engine(db)
    checked(engine, lambda conn: check_renamable(conn, segment_id, new_name))
    conn = engine.open_store()
    try:
        rename_segment(conn, segment_id, new_name)
    finally:
        conn.close()
    click.echo(f"Renamed {segment_id!r} to {new_name!r}.")


commands = [count_command, sql_command, pql_command, segments_group]
