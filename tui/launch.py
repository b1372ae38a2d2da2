"""Starting the app from the command line: find or create the store, then run.

``audiences-tui`` without ``--db`` opens the default store ($AUDIENCES_DB or
one in the user's data directory) and fills it with the sample data on the
first run, with a progress bar on the terminal. A store named with ``--db``
(a file, a DuckDB file or a PostgreSQL URL) must exist and be a store:
otherwise a clear message and exit code 1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from store.engines.base import Engine, engine_for
from store.errors import StoreError

SAMPLE_PROFILES = 50_000
SAMPLE_SEED = 42


def as_engine(store: Engine | str | Path) -> Engine:
    """An engine, from an engine or a ``--db`` value."""
    return store if isinstance(store, Engine) else engine_for(store)


def check_store(store: Engine | str | Path) -> Engine:
    """The store's engine; raises ``StoreError`` unless a readable Audiences store is there."""
    engine = as_engine(store)
    if engine.path is not None and not engine.path.exists():
        raise StoreError(f"No store at {engine.display}. Create one with `audiences-tui sample"
                         f" --db {engine.display}` or an import, or leave out --db to use the"
                         " sample store.")
    conn = engine.open_store(readonly=True)
    conn.close()
    return engine


def create_sample_store(store: Engine | str | Path, console: Console | None = None,
                        profiles: int | None = None, seed: int | None = None) -> None:
    """Fill a new store with the sample data, showing progress on the terminal."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from store.sample.generator import generate_sample

    engine = as_engine(store)
    profiles = profiles or SAMPLE_PROFILES
    seed = SAMPLE_SEED if seed is None else seed
    console = console or Console(stderr=True)
    console.print(f"[bold]First run:[/] creating a sample store with {profiles:,} profiles at"
                  f" {engine.display}")
    if engine.path is not None:
        engine.path.parent.mkdir(parents=True, exist_ok=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description:<32}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("Starting", total=1.0)

        def report(phase: str, fraction: float) -> None:
            progress.update(task, description=phase, completed=max(0.0, min(fraction, 1.0)))

        result = generate_sample(engine, profiles=profiles, seed=seed, progress=report)
        progress.update(task, description="Saving the example segments", completed=1.0)
        save_example_segments(engine)
        progress.update(task, description="Done", completed=1.0)
    console.print(f"Sample store ready: {result.profiles:,} profiles, {result.events:,} events"
                  f" ({result.elapsed_s:.1f} s).")


def save_example_segments(store: Engine | str | Path) -> None:
    """Give a first-run store the example segments, so the Segments area has something to open."""
    from sample_data import SEGMENTS_DIR
    from store.segments.library import save_segment_files

    conn = as_engine(store).open_store()
    try:
        save_segment_files(conn, SEGMENTS_DIR)
    finally:
        conn.close()


def resolve_store(db: Engine | str | Path | None, console: Console | None = None) -> Engine:
    """The store to open: ``--db`` (must exist), else the default one (created on first run)."""
    if db is not None:
        return check_store(db)
    from tui.store_path import default_store

    engine = default_store()
    if not engine.exists():
        create_sample_store(engine, console)
    return check_store(engine)


def launch_app(db: Engine | str | Path | None, as_of: dt.datetime | None = None) -> None:
    """Open the app on the store (``--db`` or the default), evaluating at ``as_of`` (None:
    now); exits 1 with a message on a bad store."""
    from tui.app import make_app

    engine = resolve_store(db)
    app = make_app(engine, as_of=as_of)
    app.run()
    if app.return_code:
        raise SystemExit(app.return_code)
