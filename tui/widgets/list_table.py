"""A row-cursor table for short lists (segments, audiences, members, history).

Textual's ``DataTable`` moves sideways on home/end and brings the
container's page-left/page-right keys; in a list of rows the keys a user
expects are: arrows (and j/k) move, page up/down, home/end (and g/G) jump to
the first and the last row, left/right scroll a table wider than the screen.
Only those are bound, with plain names, so the F1 help and the command
palette read like the rest of the app.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from tui.widgets.keys import ROW_MOVES


class ListTable(DataTable[Any], inherit_bindings=False):
    """A ``DataTable`` of rows with list keys; subclasses name themselves with ``HELP_TITLE``."""

    HELP_TITLE = "List"

    BINDINGS: ClassVar[list[BindingType]] = [
        *ROW_MOVES,
        Binding("home,ctrl+home,g", "scroll_top", "First", id="table.first", show=False,
                tooltip="Jump to the first row"),
        Binding("end,ctrl+end,G", "scroll_bottom", "Last", id="table.last", show=False,
                tooltip="Jump to the last row"),
        Binding("left", "cursor_left", "Scroll left", id="table.scroll_left", show=False),
        Binding("right", "cursor_right", "Scroll right", id="table.scroll_right", show=False),
    ]

    def __init__(self, **options: Any) -> None:
        options.setdefault("cursor_type", "row")
        super().__init__(**options)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            super().action_scroll_bottom()
