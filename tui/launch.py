"""Starting the app from the command line: find or create the store, then run.

``audiences-tui`` without ``--db`` opens the default store ($AUDIENCES_DB or
one in the user's data directory) and fills it with the sample data on the
first run, with a progress bar on the terminal. A store named with ``--db``
must exist and be a store: otherwise a clear message and exit code 1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from store.engines.sqlite import open_store
from store.errors import StoreError

SAMPLE_PROFILES = 50_000
SAMPLE_SEED = 42


def check_store(path: Path) -> None:
    """Raise ``StoreError`` unless ``path`` is a readable Audiences store."""
    if not path.exists():
        raise StoreError(f"No store at {path}. Create one with `audiences-tui sample --db {path}`"
                         " or an import, or leave out --db to use the sample store.")
    conn = open_store(path, readonly=True)
    conn.close()


def create_sample_store(path: Path, console: Console | None = None,
                        profiles: int | None = None, seed: int | None = None) -> None:
    """Fill a new store at ``path`` with the sample data, showing progress on the terminal."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from store.sample.generator import generate_sample

    profiles = profiles or SAMPLE_PROFILES
    seed = SAMPLE_SEED if seed is None else seed
    console = console or Console(stderr=True)
    console.print(f"[bold]First run:[/] creating a sample store with {profiles:,} profiles at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description:<32}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("Starting", total=1.0)

        def report(phase: str, fraction: float) -> None:
            progress.update(task, description=phase, completed=max(0.0, min(fraction, 1.0)))

        result = generate_sample(path, profiles=profiles, seed=seed, progress=report)
        progress.update(task, description="Saving the example segments", completed=1.0)
        save_example_segments(path)
        progress.update(task, description="Done", completed=1.0)
    console.print(f"Sample store ready: {result.profiles:,} profiles, {result.events:,} events"
                  f" ({result.elapsed_s:.1f} s).")


def save_example_segments(path: Path) -> None:
    """Give a first-run store the example segments, so the Segments area has something to open."""
    from sample_data import SEGMENTS_DIR
    from store.engines.sqlite import open_store
    from store.segments.library import save_segment_files

    conn = open_store(path)
    try:
        save_segment_files(conn, SEGMENTS_DIR)
    finally:
        conn.close()


def resolve_store(db_path: Path | None, console: Console | None = None) -> Path:
    """The store to open: ``--db`` (must exist), else the default one (created on first run)."""
    if db_path is not None:
        check_store(db_path)
        return db_path
    from tui.cli import default_store_path

    path = default_store_path()
    if not path.exists():
        create_sample_store(path, console)
    check_store(path)
    return path


def launch_app(db_path: Path | None, as_of: dt.datetime | None = None) -> None:
    """Open the app on the store (``--db`` or the default), evaluating at ``as_of`` (None:
    now); exits 1 with a message on a bad store."""
    from tui.app import make_app

    path = resolve_store(db_path)
    app = make_app(path, as_of=as_of)
    app.run()
    if app.return_code:
        raise SystemExit(app.return_code)
