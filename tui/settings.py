"""What the user chose, kept across restarts: the profile browser's columns, per store.

A small JSON file in the user's configuration folder (``$AUDIENCES_CONFIG_DIR`` when set,
as the tests do, else the platform's, e.g. ``~/.config/audiences-tui``). A file that
cannot be read or written never stops the app: the defaults are used, and a failed save
says so once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tui.store_path import APP_NAME

SETTINGS_FILE = "settings.json"


def settings_path() -> Path:
    folder = os.environ.get("AUDIENCES_CONFIG_DIR")
    if folder:
        return Path(folder) / SETTINGS_FILE
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / SETTINGS_FILE


def _read() -> dict[str, Any]:
    try:
        found = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def load_columns(store: str) -> list[str] | None:
    """The columns last chosen for the store named ``store`` (None: never chosen)."""
    columns = _read().get("columns", {})
    found = columns.get(store) if isinstance(columns, dict) else None
    if isinstance(found, list) and all(isinstance(c, str) for c in found):
        return list(found)
    return None


def save_columns(store: str, columns: list[str]) -> str | None:
    """Keep ``columns`` for ``store``; returns why it could not be kept, or None."""
    settings = _read()
    kept = settings.get("columns")
    if not isinstance(kept, dict):
        kept = settings["columns"] = {}
    kept[store] = list(columns)
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        partial.replace(path)  # all or nothing: a crash never leaves half a file
    except OSError as exc:
        return f"The column choice is not kept for next time: {path}: {exc.strerror or exc}"
    return None
