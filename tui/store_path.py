"""Which profile store the app and the commands use when none is named.

One job, imported by the command line (``tui.cli``), the app's launcher
(``tui.launch``) and the commands: before, the launcher imported the command
line for it and the command line the launcher, a runtime import cycle.
"""

from __future__ import annotations

import os
from pathlib import Path

from store.engines.base import Engine
from tui.commands.common import parse_store

APP_NAME = "audiences-tui"


def default_store() -> Engine:
    """``$AUDIENCES_DB``, else ``audiences.db`` (SQLite) in the user's data directory."""
    env = os.environ.get("AUDIENCES_DB")
    if env:
        return parse_store(env)
    import platformdirs

    from store.engines.sqlite import SQLiteEngine

    return SQLiteEngine(str(Path(platformdirs.user_data_dir(APP_NAME)) / "audiences.db"))
