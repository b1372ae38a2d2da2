"""The keys that work right now, gathered once for the F1 help and the command palette.

Both read the screen's active bindings (the focused widget's, the screen's
and the app's), merge the keys of one action into one line, and name the
part of the app each line belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

HIDDEN_ACTIONS = frozenset({"command_palette", "app.command_palette"})


@dataclass
class KeyLine:
    """One action: its keys, what it does, and where it is defined."""

    section: str
    keys: list[str]
    description: str
    tooltip: str
    action: str
    node: DOMNode
    enabled: bool = True

    @property
    def key_text(self) -> str:
        return " / ".join(self.keys)


def section_name(node: DOMNode, screen: Screen[object]) -> str:
    """What to call the part of the app a binding belongs to."""
    if isinstance(node, App):
        return "Everywhere"
    if node is screen:
        return str(getattr(node, "HELP_TITLE", "") or node.title or type(node).__name__)
    return str(getattr(node, "HELP_TITLE", "") or type(node).__name__)


def _describe(binding: Binding) -> str:
    if binding.description:
        return binding.description
    return binding.action.split("(")[0].replace("_", " ").capitalize()


def key_lines(screen: Screen[object]) -> list[KeyLine]:
    """Every active action of ``screen``: focused widget first, then the screen, then the app."""
    app = screen.app
    lines: dict[tuple[int, str], KeyLine] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.action in HIDDEN_ACTIONS:
            continue
        node = active.node
        identity = (id(node), binding.action)
        shown = app.get_key_display(Binding(key, binding.action, key_display=None)) \
            if binding.key_display is None else binding.key_display
        if identity in lines:
            if shown not in lines[identity].keys:
                lines[identity].keys.append(shown)
            continue
        lines[identity] = KeyLine(section_name(node, screen), [shown], _describe(binding),
                                  binding.tooltip, binding.action, node, active.enabled)

    def rank(line: KeyLine) -> int:
        if isinstance(line.node, App):
            return 2
        if line.node is screen:
            return 1
        return 0

    return sorted(lines.values(), key=rank)
