"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from store.errors import InputError
from store.values import UTC, parse_date, parse_datetime


def db_option(required: bool = True) -> Any:
    """The ``--db PATH`` option every subcommand takes."""
    return click.option(
        "--db", "db_path", required=required,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The profile store (an SQLite file).",
    )


def parse_when(text: str | None) -> dt.datetime:
    """``--as-of``: a date means the end of that day (UTC); default now (UTC)."""
    if text is None:
        return dt.datetime.now(UTC)
    day = parse_date(text)
    if day is not None:
        return dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=UTC)
    moment = parse_datetime(text)
    if moment is None:
        raise InputError(f"--as-of {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime.")
    return moment
