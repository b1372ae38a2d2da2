"""The ``audiences-tui`` command: opens the app, or does the same work headless.

Every subcommand lives in its own module (``tui/commands/``) and is added to
the group here. Errors the engine raises on purpose become one line on stderr
and the exit code the spec gives (2: bad input, 1: anything else); nothing
prints a traceback for a user error.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from typing import TYPE_CHECKING

import click

from store.errors import AudiencesError
from tui.commands.common import (
    ENGINE_KEY,
    StoreParam,
    is_driver,
    missing_driver_message,
)

if TYPE_CHECKING:
    from store.engines.base import Engine


class Terminated(KeyboardInterrupt):
    """SIGTERM during a subcommand (``timeout``, cron's or systemd's stop)."""


def stop_on_sigterm() -> None:
    """Let SIGTERM stop a subcommand the way Ctrl-C does: its write transaction rolls back, a
    half-built store file is removed and a query running on a server is cancelled (psycopg
    cancels on an interrupt), instead of the process dying mid-write and leaving the server
    at work. Only a subcommand: the app handles its own signals."""
    if threading.current_thread() is not threading.main_thread():
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)


class AudiencesGroup(click.Group):
    """A click group that turns engine errors into clean messages and exit codes."""

    def invoke(self, ctx: click.Context) -> object:
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if in_main_thread else None
        try:
            return super().invoke(ctx)
        except AudiencesError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            click.echo("Interrupted; nothing half-written was kept.", err=True)
            ctx.exit(128 + signal.SIGTERM if isinstance(exc, Terminated) else 130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            sys.stderr.close()
            ctx.exit(0)
        except sqlite3.Error as exc:  # every engine raises the DB-API classes of sqlite3
            click.echo(f"Error: {describe_database_error(ctx, exc)}", err=True)
            ctx.exit(1)
        except Exception as exc:  # last line of defence: a message, never a traceback
            if isinstance(exc, ImportError) and is_driver(exc):
                click.echo(f"Error: {missing_driver_message(exc)}", err=True)
                ctx.exit(1)
            if os.environ.get("AUDIENCES_DEBUG"):
                raise
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc}"
                       " (set AUDIENCES_DEBUG=1 for details)", err=True)
            ctx.exit(1)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return None


def describe_database_error(ctx: click.Context, exc: BaseException) -> str:
    """A low-level database failure in the words of the engine of the store at hand."""
    engine = ctx.meta.get(ENGINE_KEY) or ctx.params.get("db")
    if engine is None:
        return f"The store: {exc}"
    return str(engine.describe_error(exc))


@click.group(cls=AudiencesGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", type=StoreParam(), default=None, metavar="DB",
              help="Profile store to open: a file (SQLite), a .duckdb file or duckdb:PATH (DuckDB),"
                   " or a postgresql:// URL (default: $AUDIENCES_DB or the sample store); also the"
                   " store of a subcommand given no --db of its own.")
@click.option("--as-of", "as_of", metavar="WHEN",
              help="The app evaluates every count, filter and activation at this instant"
                   " (YYYY-MM-DD: the end of that day, UTC; or an ISO 8601 datetime);"
                   " default now. Subcommands take their own --as-of.")
@click.pass_context
def cli(ctx: click.Context, db: Engine | None, as_of: str | None) -> None:
    """Browse profiles, build segments with exact live counts, activate audiences."""
    if ctx.invoked_subcommand is not None:
        stop_on_sigterm()
        return
    from tui.commands.common import parse_when
    from tui.launch import launch_app

    if db is not None:
        ctx.meta[ENGINE_KEY] = db
    launch_app(db, None if as_of is None else parse_when(as_of))


def _register_commands() -> None:
    from tui.commands import register
    from tui.commands.common import require_text

    register(cli)
    require_text(cli)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="audiences-tui")


if __name__ == "__main__":  # pragma: no cover
    main()
