"""The keys that work right now, gathered once for the F1 help and the command palette.

Both read the screen's active bindings (the focused widget's, the screen's
and the app's), merge the keys of one action into one line, and name the
part of the app each line belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

# The row moves every list shares (ListTable, PagedTable); each adds its own first/last.
ROW_MOVES: list[Binding] = [
    Binding("enter", "select_cursor", "Select", id="table.select_cursor", show=False),
    Binding("up,k", "cursor_up", "Up", id="table.cursor_up", show=False),
    Binding("down,j", "cursor_down", "Down", id="table.cursor_down", show=False),
    Binding("pageup", "page_up", "Page up", id="table.page_up", show=False),
    Binding("pagedown", "page_down", "Page down", id="table.page_down", show=False),
]

# The three areas (app modes) and what they are called on screen.
AREA_LABELS = {"profiles": "Profiles", "segments": "Segments", "audiences": "Audiences"}

HIDDEN_ACTIONS = frozenset({"command_palette", "app.command_palette"})

# Moving the cursor or the view: listed in the F1 help, left out of the command palette
# (nobody types "cursor down" into a palette; it would bury the real commands).
NAVIGATION_ACTIONS = frozenset({
    "cursor_up", "cursor_down", "cursor_left", "cursor_right", "page_up", "page_down",
    "page_left", "page_right", "scroll_up", "scroll_down", "scroll_left", "scroll_right",
    "scroll_home", "scroll_end", "scroll_top", "scroll_bottom", "first", "last",
    "focus_next", "focus_previous", "app.focus_next", "app.focus_previous",
})

# What to call Textual's own widgets when they have no HELP_TITLE of their own.
_WIDGET_NAMES = {
    "DataTable": "Table", "Input": "Text box", "TextArea": "Text editor", "Tree": "Tree",
    "OptionList": "List", "SelectionList": "Checklist", "Select": "Drop-down",
    "SelectCurrent": "Drop-down", "SelectOverlay": "Drop-down", "Button": "Button",
    "Checkbox": "Checkbox", "RadioSet": "Choices", "ListView": "List",
    "VerticalScroll": "Panel", "ScrollableContainer": "Panel", "Markdown": "Text",
}


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
    ids: list[str] = field(default_factory=list)  # what the keymap file calls the binding(s)

    @property
    def navigation(self) -> bool:
        """Whether the line only moves the cursor or the view (kept out of the palette)."""
        return self.action in NAVIGATION_ACTIONS

    @property
    def key_text(self) -> str:
        return " / ".join(self.keys)

    @property
    def id_text(self) -> str:
        return " / ".join(self.ids)


def friendly_name(node: DOMNode) -> str:
    """A widget's kind in words: its ``HELP_TITLE``, else a plain name for Textual's widgets.

    ``ConfirmScreen`` becomes "Confirm", ``DataTable`` "Table": never a class name
    the user has no reason to know.
    """
    title = getattr(node, "HELP_TITLE", "")
    if title:
        return str(title)
    for kind in type(node).__mro__:
        if kind.__name__ in _WIDGET_NAMES:
            return _WIDGET_NAMES[kind.__name__]
    name = type(node).__name__
    for suffix in ("Screen", "Widget"):
        if name.endswith(suffix) and name != suffix:
            name = name[: -len(suffix)]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else "Keys"


def section_name(node: DOMNode, screen: Screen[object]) -> str:
    """What to call the part of the app a binding belongs to."""
    if isinstance(node, App):
        return "Everywhere"
    if node is screen:
        return str(getattr(node, "HELP_TITLE", "") or node.title or friendly_name(node))
    return friendly_name(node)


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
            line = lines[identity]
            if shown not in line.keys:
                line.keys.append(shown)
            if binding.id and binding.id not in line.ids:
                line.ids.append(binding.id)
            continue
        lines[identity] = KeyLine(section_name(node, screen), [shown], _describe(binding),
                                  binding.tooltip, binding.action, node, active.enabled,
                                  [binding.id] if binding.id else [])

    def rank(line: KeyLine) -> int:
        if isinstance(line.node, App):
            return 2
        if line.node is screen:
            return 1
        return 0

    return sorted(lines.values(), key=rank)
