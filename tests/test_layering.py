"""The engine must stay usable without the terminal UI."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "store.db", "store.catalog", "store.values", "store.model", "store.yamlio", "store.validate",
    "store.library", "store.timeutil", "store.compiler", "store.audience", "store.evaluator",
    "store.importer", "store.sample", "store.activation", "store.campaign",
]


def test_store_imports_without_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tui_never_writes_sql() -> None:
    """SQL lives in store/; the app only calls it."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "tui"
    offenders = [
        str(path) for path in root.rglob("*.py")
        if any(keyword in path.read_text(encoding="utf-8")
               for keyword in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"))
    ]
    assert not offenders, offenders
