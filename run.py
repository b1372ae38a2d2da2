#!/usr/bin/env python3
"""Set up and run Audiences TUI with nothing but Python installed.

    python3 run.py app [ARGS...]   install into ./.venv if needed, then open the app
                                   (on the sample store unless --db is given)
    python3 run.py test [ARGS...]  install into ./.venv if needed, then lint, type-check
                                   and run the whole test suite (extra ARGS go to pytest)

The virtual environment is refreshed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"


def ensure_installed() -> None:
    """Create ./.venv and install the project with its test extras, once per pyproject change."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("Creating a virtual environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing Audiences TUI and its dependencies ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"],
                   check=True)
    STAMP.write_text(wanted)


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"app", "test"}:
        print(__doc__)
        return 2
    ensure_installed()
    command, rest = argv[0], argv[1:]
    if command == "app":
        return run([str(BIN / "audiences-tui"), *rest])
    for step in ([str(BIN / "ruff"), "check", "."], [str(BIN / "mypy")]):
        code = run(step)
        if code:
            return code
    # loadgroup: the Spark tests (one xdist group) share one worker, so one Spark session starts.
    return run([str(PYTHON), "-m", "pytest", "-n", "2", "--dist", "loadgroup", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
