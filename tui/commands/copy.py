"""``audiences-tui copy --db SRC --to DEST``: the same store on another engine, in one step."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from store.engines.base import Engine
from store.ingest.copy import CopyProgress, copy_store
from tui.commands.common import StoreParam, engine_option, store_engine

COPY_SOURCE_HELP = ("The store to copy: a file (SQLite), a .duckdb file or duckdb:PATH (DuckDB), or"
                    " a postgresql:// URL. Default: the top-level --db, else $AUDIENCES_DB.")


@contextmanager
def _progress() -> Iterator[CopyProgress]:
    """One progress line on stderr: a live bar on a terminal, a line per table otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    if not console.is_terminal:
        def plain(table: str, done: int, total: int) -> None:
            if done == total:
                what = "Built the indexes" if table == "indexes" else f"Copied {table}: {done:,} rows"
                print(what, file=sys.stderr, flush=True)

        yield plain
        return
    with RichProgress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("Copying", total=None)

        def report(table: str, done: int, total: int) -> None:
            label = "Building indexes" if table == "indexes" else f"Copying {table}"
            bar.update(task, description=label, completed=done, total=total or None)

        yield report


@click.command("copy")
@engine_option(COPY_SOURCE_HELP)
@click.option("--to", "to", required=True, type=StoreParam(), metavar="DB",
              help="Where the copy goes (the same forms as --db); created if missing.")
@click.option("--replace", is_flag=True,
              help="Overwrite a destination that already holds a store with data.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def copy_command(db: Engine | None, to: Engine, replace: bool, quiet: bool) -> None:
    """Copy a store to another engine (or place): catalog, profiles, events, entities and
    saved segments, row for row with the same keys; then the destination's indexes.

    All or nothing: a failed copy leaves the destination as it was.
    """
    source = store_engine(db)
    if quiet:
        result = copy_store(source, to, replace=replace)
    else:
        with _progress() as report:
            result = copy_store(source, to, replace=replace, progress=report)
    click.echo(result.summary())


commands = [copy_command]
