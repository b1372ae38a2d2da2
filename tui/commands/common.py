"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from store.engines.base import Connection, Engine, engine_for
from store.errors import InputError
from store.files import check_input_file, is_utf8_text, printable, special_kind
from store.schema.values import UTC, datetime_out_of_range, parse_date, parse_datetime
from store.segments.validate import ResolvedSegment

STORE_HELP = ("The profile store: a file (SQLite), a .duckdb file or duckdb:PATH (DuckDB), a"
              " postgresql:// URL (?schema=NAME picks the schema), or a source file (.yaml) mapping"
              " existing tables. Default: the top-level --db, else $AUDIENCES_DB.")
ENGINE_KEY = "audiences.engine"  # ctx.meta: the store a command works on, for error messages


class StoreSpecError(click.ClickException):
    """A ``--db`` value that names no engine: one line, exit 2 (also before any subcommand runs,
    where the group's error handler cannot see it)."""

    exit_code = 2


class NotText(click.ClickException):
    """An argument that must be text holds bytes that are not UTF-8: one line, exit 2."""

    exit_code = 2


class Text(click.types.StringParamType):
    """A plain text argument (a name, an id, a type, a template): UTF-8 text only.

    Linux hands a program arguments as bytes; Python turns bytes that are not
    UTF-8 into lone surrogates, which no store can hold. Such an argument is
    refused before the command runs (so nothing is created or written). File
    names are not ``Text``: they may hold any bytes (``click.Path``, ``SEGMENT``).
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if isinstance(text, str) and not is_utf8_text(text):
            where = param.get_error_hint(ctx) if param is not None and ctx is not None else "a value"
            raise NotText(f"{where}: '{printable(text)}' holds bytes that are not UTF-8 text;"
                          " give it as UTF-8.")
        return text


def require_text(command: click.Command) -> None:
    """Make every plain string option and argument of ``command`` and its subcommands
    ``Text`` (called once on the whole CLI, so that no command can forget it)."""
    for param in command.params:
        if type(param.type) is click.types.StringParamType:
            param.type = Text()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            require_text(sub)


class SegmentSource(click.ParamType):
    """SEGMENT: a segment file (whose name may hold any bytes) or a saved segment's id
    (text); ``resolve_segment`` tells which."""

    name = "segment"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return os.fsdecode(value) if isinstance(value, bytes) else value


class DriverMissing(click.ClickException):
    """The engine's Python driver is not installed: one line, exit 1."""

    exit_code = 1


DRIVERS = {"duckdb": "duckdb", "psycopg": "psycopg[binary]", "psycopg_binary": "psycopg[binary]",
           "pyspark": "pyspark"}  # module -> what pip installs


def is_driver(exc: ImportError) -> bool:
    """Whether an import failed for want of an engine's driver (not a bug in this program)."""
    return (exc.name or "").split(".")[0] in DRIVERS


def missing_driver_message(exc: ImportError) -> str:
    """What to install when an engine's driver cannot be imported."""
    module = (exc.name or "").split(".")[0]
    package = DRIVERS.get(module, module)
    return (f"The {module} Python package, which this store's engine needs, is not installed:"
            f" install it with `pip install '{package}'` (or reinstall audiences-tui).")


def parse_store(value: str | os.PathLike[str]) -> Engine:
    """The engine a ``--db`` value (or ``$AUDIENCES_DB``) names; click's one-line errors."""
    try:
        return engine_for(os.fspath(value))
    except InputError as exc:
        raise StoreSpecError(str(exc)) from None
    except ImportError as exc:
        if not is_driver(exc):
            raise
        raise DriverMissing(missing_driver_message(exc)) from None


class StoreParam(click.ParamType):
    """``--db``: a path or URL, parsed into the engine that holds the store (spec/engines.md)."""

    name = "DB"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, Engine):
            return value
        return parse_store(value)


def engine_option(help_text: str = STORE_HELP) -> Any:
    """The ``--db`` option every subcommand takes, as an ``Engine`` in ``db`` (see ``store_engine``)."""
    return click.option("--db", "db", default=None, type=StoreParam(), help=help_text)


def given_engine(db: Engine | None, *, from_env: bool = True) -> Engine | None:
    """The store a subcommand works on: its own ``--db``, else the top-level one
    (``audiences-tui --db PATH count ...``), else ``$AUDIENCES_DB``; None if none is given."""
    if db is not None:
        return db
    context = click.get_current_context(silent=True)
    parent = context.find_root().params.get("db") if context is not None else None
    if isinstance(parent, Engine):
        return parent
    env = os.environ.get("AUDIENCES_DB") if from_env else None
    return parse_store(env) if env else None


def store_engine(db: Engine | None, *, from_env: bool = True) -> Engine:
    """``given_engine``, or one line (exit 2) saying how to name the store. Every headless
    subcommand finds its store this way (``sample`` without ``$AUDIENCES_DB``: a refill
    would replace the data of the store a user works with). The engine is remembered on
    the context so that a low-level failure is described in its terms."""
    engine = given_engine(db, from_env=from_env)
    if engine is None:
        raise InputError("No profile store given: pass --db PATH (after the subcommand or before"
                         + (" it) or set $AUDIENCES_DB." if from_env
                            else " it; $AUDIENCES_DB is not used here)."))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[ENGINE_KEY] = engine
    return engine


def checked(engine: Engine, check: Callable[[Connection], object]) -> None:
    """Run ``check`` on a read-only connection before a command opens the store for writing,
    so that a refused write leaves the store file byte for byte as it was (opening an SQLite
    store for writing may switch it to WAL mode, which rewrites header bytes)."""
    conn = engine.open_store(readonly=True)
    try:
        check(conn)
    finally:
        conn.close()


class ExistingFile(click.Path):
    """A FILE that must exist and be readable; if not, one line on stderr (exit 2), like a
    missing segment file, instead of click's usage text."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str | os.PathLike):
            check_readable(Path(value))
        return super().convert(value, param, ctx)


def check_readable(path: Path) -> None:
    """Raise ``InputError`` unless ``path`` is a regular file this process can read."""
    check_input_file(path)
    if not os.access(path, os.R_OK):
        raise InputError(f"{printable(path)}: cannot read the file (permission denied).")


def segment_id_option(what: str = "Use the segment saved in the store under this id") -> Any:
    """``--segment ID``: name a saved segment explicitly (SEGMENT prefers a file of that name)."""
    return click.option("--segment", "segment_id", metavar="ID",
                        help=f"{what}, even if a file in the working folder has that name.")


def resolve_segment_arg(conn: Connection, source: str | None, segment_id: str | None,
                        when: dt.datetime) -> ResolvedSegment:
    """SEGMENT or ``--segment ID`` (exactly one of them), checked at ``when``."""
    from store.segments import library

    if segment_id is not None:
        if source is not None:
            raise InputError("Give a segment file or --segment ID, not both.")
        resolved = library.resolve_saved(conn, segment_id)
        resolved.check_bounds(when)
        return resolved
    if source is None:
        raise InputError("Give a segment file (SEGMENT.yaml), a saved id, or --segment ID.")
    return resolve_segment(conn, source, when)


def resolve_segment(conn: Connection, source: str, when: dt.datetime) -> ResolvedSegment:
    """SEGMENT (a YAML or PQL file, or the id of a segment saved in the store), validated, and
    checked at the as-of instant ``when`` (a ``between`` whose relative bounds resolve in
    the wrong order then is refused, not an empty audience).

    A file wins over a saved segment of the same id (as it always has); that is said on
    stderr, with ``--segment ID`` as the way to name the saved one."""
    from store.segments import library

    path = Path(source)
    if path.is_file() and is_utf8_text(source) and library.saved_definition(conn, source) is not None:
        click.echo(f"Warning: {source!r} is read from the file of that name in the working folder,"
                   f" not the saved segment {source!r} (use --segment {source} for that one).",
                   err=True)
    if path.is_file() and path.suffix.lower() == ".pql":
        resolved, warnings = library.resolve_pql(conn, library.read_text_file(path), str(path))
        for warning in warnings:
            click.echo(f"Warning: {warning}", err=True)
    elif path.is_file():
        resolved = library.resolve_file(conn, path)
    elif is_utf8_text(source) and library.saved_definition(conn, source) is not None:
        resolved = library.resolve_saved(conn, source)
    else:
        kind = special_kind(path)
        shown = printable(source)
        raise InputError(f"{shown} is {kind}, not a segment file." if kind is not None else
                         f"{shown}: no such segment file (and no saved segment with that id).")
    resolved.check_bounds(when)
    return resolved


def parse_when(text: str | None) -> dt.datetime:
    """``--as-of``: a date means the end of that day (UTC); default now (UTC)."""
    if text is None:
        return dt.datetime.now(UTC)
    day = parse_date(text)
    if day is not None:
        return dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=UTC)
    moment = parse_datetime(text)
    if moment is None and datetime_out_of_range(text):
        raise InputError(f"--as-of {text!r} falls outside the years 1-9999 in UTC.")
    if moment is None:
        raise InputError(f"--as-of {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime.")
    return moment
