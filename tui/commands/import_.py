"""``audiences-tui import profiles|events|entity``: load files into a store, all or nothing.

The commands mirror ``store.ingest.importer`` one to one; this module only parses
options, shows progress on stderr and prints the one-line summary on stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from store.engines.base import Engine
from store.ingest.columns import load_column_specs, with_booleans
from store.ingest.importer import (
    ImportResult,
    Progress,
    import_entity,
    import_events,
    import_profiles,
)
from tui.commands.common import ExistingFile, engine_option, store_engine

# Files at least this big show a progress bar even when stderr is not a terminal.
PROGRESS_MIN_BYTES = 50 * 1024 * 1024

FILE_ARGUMENT = click.argument("file", type=ExistingFile())
IMPORT_STORE_HELP = ("The profile store (created if missing): a file (SQLite), a .duckdb file or"
                     " duckdb:PATH (DuckDB), or a postgresql:// URL. Default: the top-level --db,"
                     " else $AUDIENCES_DB.")


@contextmanager
def _progress(file: Path) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for a terminal or a big file; nothing otherwise."""
    size = file.stat().st_size
    if not (sys.stderr.isatty() or size >= PROGRESS_MIN_BYTES):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    with RichProgress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=console,
                      transient=console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = int(bar.add_task(f"{phase} {file.name}", total=total or None))
            bar.update(tasks[phase], completed=done)  # type: ignore[arg-type]

        yield report


def _xdm_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``NAME=XDM.NAME`` pairs of a repeated option."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, xdm = value.partition("=")
        if not sep or not name.strip() or not xdm.strip():
            raise click.UsageError(f"{option} takes NAME=XDM.NAME (e.g. gender=person.gender),"
                                   f" not {value!r}.")
        pairs[name.strip()] = xdm.strip()
    return pairs


XDM_HELP = ("Give {what} an XDM name, the name PQL uses for it (spec/pql.md); repeat for"
            " several. Default: none (PQL then uses the store's own name).")


def _finish(result: ImportResult) -> None:
    click.echo(result.summary())


@click.group("import")
def import_group() -> None:
    """Load profiles, events or a lookup entity from CSV, JSON or NDJSON (gzip allowed).

    Column types are inferred strictly; a file with any bad row is rejected
    with a report (line, column, value, why) and the store is left as it was.
    """


@import_group.command("profiles")
@FILE_ARGUMENT
@engine_option(IMPORT_STORE_HELP)
@click.option("--id-column", default=None, metavar="COL",
              help="The column holding the profile id (default: id, else profile_id).")
@click.option("--xdm", "xdm", multiple=True, metavar="ATTRIBUTE=XDM.NAME",
              help=XDM_HELP.format(what="an attribute"))
@click.option("--schema", "schema_file", type=ExistingFile(), default=None, metavar="FILE",
              help="A YAML file giving columns a type, label, group, description and XDM name:"
                   " 'SeniorCitizen: {type: boolean, label: Senior citizen, group: Demographics}'.")
@click.option("--boolean", "booleans", multiple=True, metavar="COL",
              help="Store this 0/1, yes/no or true/false column as a boolean (repeatable).")
def profiles_command(file: Path, db: Engine | None, id_column: str | None,
                     xdm: tuple[str, ...], schema_file: Path | None,
                     booleans: tuple[str, ...]) -> None:
    """Add or update profiles; an existing id keeps the attributes the file does not have."""
    names = _xdm_pairs(xdm, "--xdm")
    specs = load_column_specs(schema_file) if schema_file is not None else {}
    columns = with_booleans(specs, booleans)
    store = store_engine(db)
    with _progress(file) as progress:
        result = import_profiles(store, file, id_column, progress=progress, xdm=names,
                                 columns=columns)
    _finish(result)


@import_group.command("events")
@FILE_ARGUMENT
@engine_option(IMPORT_STORE_HELP)
@click.option("--profile-column", default="profile_id", show_default=True, metavar="COL",
              help="The column holding the profile id.")
@click.option("--type-column", default=None, metavar="COL",
              help="The column holding the event type.  [default: type]")
@click.option("--type", "type_name", default=None, metavar="NAME",
              help="Give every row this event type (instead of a type column).")
@click.option("--time-column", default="timestamp", show_default=True, metavar="COL",
              help="The column holding the event time.")
@click.option("--time-format", default=None, metavar="STRFTIME",
              help="How the times are written, e.g. '%d/%m/%Y %H:%M', or epoch / epoch_ms"
                   " (default: ISO 8601; no offset means UTC).")
@click.option("--create-profiles", is_flag=True,
              help="Add a bare profile for an unknown profile id instead of refusing the file.")
@click.option("--xdm", "xdm", multiple=True, metavar="FIELD=XDM.NAME",
              help=XDM_HELP.format(what="an event field"))
@click.option("--type-xdm", "type_xdm", multiple=True, metavar="TYPE=XDM.NAME",
              help=XDM_HELP.format(what="an event type"))
def events_command(file: Path, db: Engine | None, profile_column: str,
                   type_column: str | None, type_name: str | None, time_column: str,
                   time_format: str | None, create_profiles: bool, xdm: tuple[str, ...],
                   type_xdm: tuple[str, ...]) -> None:
    """Append events; other columns become typed event fields."""
    if type_column is not None and type_name is not None:
        raise click.UsageError("Use --type-column or --type, not both.")
    field_names, type_names = _xdm_pairs(xdm, "--xdm"), _xdm_pairs(type_xdm, "--type-xdm")
    store = store_engine(db)
    with _progress(file) as progress:
        result = import_events(
            store, file, profile_column=profile_column, type_column=type_column or "type",
            type_name=type_name, time_column=time_column, create_profiles=create_profiles,
            time_format=time_format, progress=progress, xdm=field_names, type_xdm=type_names,
        )
    _finish(result)


@import_group.command("entity")
@click.argument("name")
@FILE_ARGUMENT
@engine_option(IMPORT_STORE_HELP)
@click.option("--key", required=True, metavar="COL", help="The column that identifies a row.")
@click.option("--link", required=True, metavar="EVENT_FIELD",
              help="The event field that holds the key (e.g. sku).")
def entity_command(name: str, file: Path, db: Engine | None, key: str, link: str) -> None:
    """Add or update a lookup entity (e.g. products by sku) that events link to."""
    store = store_engine(db)
    with _progress(file) as progress:
        result = import_entity(store, name, file, key, link, progress=progress)
    _finish(result)


commands = [import_group]
