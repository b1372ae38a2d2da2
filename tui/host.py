"""What screens need from the app, as one typed interface: ``AppHost``.

Screens, dialogs and widgets reach the profile store, the campaign store and the
app's common moves through ``host(self)``, never through ``getattr(self.app, ...)``:
the ``AudiencesApp`` satisfies the Protocol (mypy checks it in tui/app.py), and so
does any smaller app a test runs a screen under (tests/test_builder.py's
``BuilderApp``). ``host`` checks at run time that the running app offers all of it,
so a missing service fails at once with its name rather than as a silent fallback.

What the app offers:

- ``engine``: which profile store, on which database engine (screens never ask which);
  ``engine.open_store(readonly=True)`` for a checked connection in a worker.
- ``campaign_db_path``: the campaign store's file (audiences, runs, deliveries).
- ``catalog`` and ``refresh_catalog()``: names, labels and types of the store's fields.
- ``as_of_instant()`` and ``today()``: the instant (and date) evaluations are taken at;
  fixed with ``--as-of`` for demos and tests, else now.
- ``read_connection()``: a read-only connection the app tracks, so quitting interrupts it.
- ``queries``: the ``QueryRunner`` handing out cancellation tokens (see tui/messages.py
  for which way of cancelling is used for what).
- ``builder_clipboard``: the rule node copied last, shared by every builder of the app.
- ``open_profile``, ``action_activate_segment``, ``show_error``: the common moves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from textual.dom import DOMNode

from store.engines.base import Connection, Engine
from store.schema.catalog import Catalog
from store.segments.model import Node, Segment
from tui.widgets.queries import QueryRunner


@dataclass
class Clipboard:
    """The node copied last (c in the builder), for every builder of the app: it pastes (p)
    in any segment."""

    node: Node | None = None


@runtime_checkable
class AppHost(Protocol):
    """The services of the app that screens use, and nothing else."""

    engine: Engine
    campaign_db_path: Path
    catalog: Catalog
    queries: QueryRunner
    builder_clipboard: Clipboard

    def read_connection(self) -> Connection:
        """A new read-only connection to the profile store, tracked by the app."""
        ...

    def refresh_catalog(self) -> Catalog:
        """Read the catalog again (after an import or a schema change)."""
        ...

    def as_of_instant(self) -> dt.datetime:
        """The instant evaluations are taken at."""
        ...

    def today(self) -> dt.date:
        """The as-of date (ages, "days ago")."""
        ...

    def open_profile(self, pk: int, segment_id: str | Segment | None = None) -> None:
        """Show a profile's 360° view; with a segment, explain that segment."""
        ...

    def action_activate_segment(self, segment_id: str) -> None:
        """Review and activate a saved segment's audience."""
        ...

    def show_error(self, message: str) -> None:
        """Tell the user something failed (never a traceback)."""
        ...


def host(node: DOMNode) -> AppHost:
    """The running app, as the screens' ``AppHost`` (``node``: any screen or widget).

    Raises ``TypeError`` naming what is missing when the app does not offer it all.
    """
    app = node.app
    if not isinstance(app, AppHost):
        members = [*AppHost.__annotations__,
                   *(name for name, value in vars(AppHost).items()
                     if callable(value) and not name.startswith("_"))]
        missing = sorted(name for name in members if not hasattr(app, name))
        raise TypeError(f"{type(app).__name__} is not an AppHost: it lacks {', '.join(missing)}")
    return app
