"""``audiences-tui sample``: create or refill a store with the deterministic sample data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from store.engines.base import Engine
from store.errors import InputError
from store.sample.generator import DEFAULT_PROFILES, DEFAULT_SEED, MAX_PROFILES, generate_sample
from store.schema.values import parse_date
from tui.commands.common import engine_option, store_engine


def parse_until(text: str | None) -> dt.date | None:
    """``--until``: a ``YYYY-MM-DD`` date; None means today (UTC)."""
    if text is None:
        return None
    day = parse_date(text)
    if day is None:
        raise InputError(f"--until {text!r} is not a date (YYYY-MM-DD).")
    return day


@contextmanager
def phase_progress() -> Iterator[Callable[[str, float], None]]:
    """A rich progress display on stderr with one bar per phase of the generator."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    tasks: dict[str, TaskID] = {}
    progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True))

    def report(phase: str, fraction: float) -> None:
        if not tasks:  # shown from the first phase on: an error before it prints no blank line
            progress.start()
        if phase not in tasks:
            for earlier in tasks.values():
                progress.update(earlier, completed=1.0)
                progress.stop_task(earlier)
            tasks[phase] = progress.add_task(phase, total=1.0)
        progress.update(tasks[phase], completed=max(0.0, min(fraction, 1.0)))

    try:
        yield report
        for task in tasks.values():
            progress.update(task, completed=1.0)
            progress.stop_task(task)
    finally:
        if tasks:
            progress.stop()


SAMPLE_STORE_HELP = ("The store to create or refill: a file (SQLite), a .duckdb file or duckdb:PATH"
                     " (DuckDB), or a postgresql:// URL. Default: the top-level --db; never"
                     " $AUDIENCES_DB, whose data a refill would replace.")


@click.command("sample")
@engine_option(SAMPLE_STORE_HELP)
@click.option("--profiles", type=click.IntRange(1, MAX_PROFILES), default=DEFAULT_PROFILES,
              show_default=True, help="How many customer profiles to generate.")
@click.option("--seed", type=click.IntRange(min=0), default=DEFAULT_SEED, show_default=True,
              help="Random seed: the same profiles, seed and --until give the same data.")
@click.option("--until", "until_text", metavar="DATE", default=None,
              help="Last day of the two years of events (YYYY-MM-DD, UTC). Default: today.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def sample_command(db: Engine | None, profiles: int, seed: int, until_text: str | None,
                   quiet: bool) -> None:
    """Create or refill a store with sample customers, products and events.

    The store is built beside a store file and renamed over it only when
    complete (on a server: in one transaction); segments saved in an existing
    store are kept.
    """
    until = parse_until(until_text)
    engine = store_engine(db, from_env=False)
    if quiet:
        result = generate_sample(engine, profiles=profiles, seed=seed, until=until)
    else:
        with phase_progress() as report:
            result = generate_sample(engine, profiles=profiles, seed=seed, until=until,
                                     progress=report)
    click.echo(
        f"Wrote {result.profiles:,} profiles, {result.events:,} events and"
        f" {result.products:,} products to {result.path} in {result.elapsed_s:.1f} s."
    )
    if result.segments_kept:
        plural = "segment" if result.segments_kept == 1 else "segments"
        click.echo(f"Kept {result.segments_kept:,} saved {plural}.")


commands = [sample_command]
