"""store/ is layered one way, and usable without the terminal UI.

The layers are declared once, in pyproject.toml's import-linter contracts;
these tests run them and check that every module under store/ belongs to a
declared layer, so a new module cannot slip past the contract.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "store"


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def store_modules() -> list[str]:
    names = []
    for path in sorted(STORE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_store_module_is_in_a_layer() -> None:
    layered = next(c for c in contracts() if c["type"] == "layers")
    layers = {name.strip() for layer in layered["layers"]  # type: ignore[attr-defined]
              for name in str(layer).split("|")}
    loose = [m for m in store_modules()
             if m != "store" and not any(m == layer or m.startswith(layer + ".") for layer in layers)]
    assert not loose, f"modules in no layer of pyproject.toml's contract: {loose}"


def test_import_contracts_hold() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_imports_without_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {store_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_tui_never_writes_sql() -> None:
    """SQL lives in store/; the app only calls it."""
    root = ROOT / "tui"
    offenders = [
        str(path) for path in root.rglob("*.py")
        if any(keyword in path.read_text(encoding="utf-8")
               for keyword in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"))
    ]
    assert not offenders, offenders
