"""The user's own keys: ``keymap.yaml`` in the configuration folder, binding id -> keys.

Every ``Binding`` in the app has an id (``builder.save``, ``app.help``, ...; the F1 help
shows them). The file maps ids to a key or a comma-separated list of keys, for example::

    app.help: ctrl+h
    builder.save: ctrl+s
    app.quit: ctrl+q,q

The file is read once when the app starts and handed to Textual's ``App.set_keymap``.
Bad input never stops the app: the entries that make sense apply, and what was wrong is
reported in one message naming the file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from textual.binding import Binding
from textual.dom import DOMNode

from store.schema.catalog import did_you_mean
from tui.settings import settings_path

KEYMAP_FILE = "keymap.yaml"

# The packages whose screens and widgets declare bindings (the CLI declares none).
_BINDING_PACKAGES = ("tui.app", "tui.screens", "tui.builder", "tui.widgets")


def keymap_path() -> Path:
    """Where the keymap file lives: next to settings.json."""
    return settings_path().with_name(KEYMAP_FILE)


def _modules() -> Iterator[object]:
    for name in _BINDING_PACKAGES:
        package = importlib.import_module(name)
        yield package
        for found in pkgutil.walk_packages(getattr(package, "__path__", []), f"{name}."):
            yield importlib.import_module(found.name)


def declared_bindings() -> Iterator[tuple[type[DOMNode], Binding]]:
    """Every binding declared by an app, screen or widget class of the app, with its class."""
    for module in _modules():
        for _, kind in inspect.getmembers(module, inspect.isclass):
            if not issubclass(kind, DOMNode) or kind.__module__ != getattr(module, "__name__", ""):
                continue
            for item in kind.__dict__.get("BINDINGS", []):
                if isinstance(item, Binding):
                    yield kind, item


def binding_ids() -> set[str]:
    """The ids a keymap file may name."""
    return {binding.id for _, binding in declared_bindings() if binding.id}


@dataclass
class Keymap:
    """What a keymap file asks for: the usable entries, and what was wrong with the rest."""

    keys: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def message(self, path: Path) -> str | None:
        """One message for the user about everything wrong in the file, or None."""
        if not self.problems:
            return None
        applied = " The other entries apply." if self.keys else ""
        return f"{path}: " + " ".join(self.problems) + applied


def _keys(value: object) -> str | None:
    """The key string for one entry: a string or a list of strings; None if neither."""
    parts: list[object] = value if isinstance(value, list) else [value]
    if not parts or not all(isinstance(p, str) for p in parts):
        return None
    keys = [k.strip() for p in parts for k in str(p).split(",")]
    if not all(keys):
        return None
    return ",".join(keys)


def parse_keymap(text: str, known: set[str]) -> Keymap:
    """Check a keymap file's text against the ``known`` binding ids."""
    found = Keymap()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        found.problems.append(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.")
        return found
    if data is None:
        return found
    if not isinstance(data, Mapping):
        found.problems.append(
            f"expected 'binding-id: keys' lines, found {type(data).__name__}; nothing applied.")
        return found
    unknown: list[str] = []
    for name, value in data.items():
        name = str(name)
        if name not in known:
            unknown.append(name)
            continue
        keys = _keys(value)
        if keys is None:
            found.problems.append(
                f"{name}: expected a key such as 'ctrl+s' or keys such as 'ctrl+q,q', got {value!r}.")
            continue
        found.keys[name] = keys
    for name in unknown:
        found.problems.append(f"unknown binding id {name!r}.{did_you_mean(name, _near(name, known))}")
    return found


def _near(name: str, known: set[str]) -> set[str]:
    """The ids worth suggesting: those of the same area first (the F1 help lists them all)."""
    area = name.split(".")[0]
    same = {k for k in known if k.split(".")[0] == area}
    return same or known


def load_keymap(path: Path | None = None) -> tuple[Keymap, Path]:
    """Read the user's keymap file (a missing file is an empty keymap)."""
    path = path or keymap_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Keymap(), path
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Keymap(problems=[f"cannot be read: {reason}."]), path
    return parse_keymap(text, binding_ids()), path
