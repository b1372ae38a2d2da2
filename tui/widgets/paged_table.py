"""A lean row table for long, changing lists: rows are rendered only when they are on screen.

Textual's DataTable measures every cell it is given and re-renders every
visible cell whenever a row is added anywhere, which costs tens of
milliseconds per page of a long list. This table holds plain row objects
and a function that turns one into cells; a row becomes a strip of
segments only when it is painted, and that strip is cached by the row's
key, so adding or dropping rows elsewhere never repaints what is on screen.
Columns have fixed widths. The header row stays in place while the rows
scroll under it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.widgets.keys import ROW_MOVES

CELL_PADDING = 1
STRIP_CACHE_ROWS = 400


@dataclass(frozen=True)
class ColumnSpec:
    """A column: its key, header label and width in cells.

    A column with ``grow`` above zero takes a share of the room the table
    has beyond the columns' widths, up to ``grow`` more cells (``GROW_ALL``:
    as much as there is).
    """

    key: str
    label: str
    width: int
    grow: int = 0


GROW_ALL = 10_000


class PagedTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows with a cursor over fixed-width columns; cells come from ``cells(row)`` when painted."""

    DEFAULT_CSS = """
    PagedTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
    }
    PagedTable > .paged-table--header {
        background: $panel;
        color: $text-muted;
        text-style: bold;
    }
    PagedTable > .paged-table--even-row {
        background: $foreground 4%;
    }
    PagedTable > .paged-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    PagedTable:focus > .paged-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "paged-table--header",
        "paged-table--even-row",
        "paged-table--cursor",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        *ROW_MOVES,
        Binding("home,ctrl+home,g", "first", "First", id="table.first",
                tooltip="Jump to the first row", show=False),
        Binding("end,ctrl+end,G", "last", "Last", id="table.last",
                tooltip="Jump to the last row", show=False),
        Binding("left", "scroll_left", "Scroll left", id="table.scroll_left", show=False),
        Binding("right", "scroll_right", "Scroll right", id="table.scroll_right", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False)

    class _TableMessage(Message):
        """A message about this table (``control`` lets handlers filter by the table)."""

        def __init__(self, table: PagedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> PagedTable:
            return self.table

    class RowHighlighted(_TableMessage):
        """The cursor moved to row ``cursor_row``."""

        def __init__(self, table: PagedTable, cursor_row: int) -> None:
            super().__init__(table)
            self.cursor_row = cursor_row

    class RowSelected(_TableMessage):
        """Enter (or a second click) on row ``cursor_row``."""

        def __init__(self, table: PagedTable, cursor_row: int) -> None:
            super().__init__(table)
            self.cursor_row = cursor_row

    class HeaderSelected(_TableMessage):
        """A click on the header of column ``column_key``."""

        def __init__(self, table: PagedTable, column_key: str) -> None:
            super().__init__(table)
            self.column_key = column_key

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[ColumnSpec] = []
        self._widths: list[int] = []
        self._rows: list[Any] = []
        self._cells: Callable[[Any], Sequence[Text]] = lambda row: ()
        self._key: Callable[[Any], Hashable] = id_of
        self._parity_origin = 0
        self._strips: OrderedDict[tuple[Hashable, bool, bool], Strip] = OrderedDict()

    # ------------------------------------------------------------ content
    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> list[Any]:
        """The row objects, in display order (do not modify)."""
        return self._rows

    def set_columns(self, columns: Sequence[ColumnSpec]) -> None:
        """Replace the columns (rows stay; they are painted again)."""
        self.columns = list(columns)
        self._layout_columns()

    def _layout_columns(self) -> None:
        """Share the room beyond the columns' widths among the columns that grow."""
        widths = [c.width for c in self.columns]
        room = self.scrollable_content_region.width - self._table_width(widths)
        growing = [i for i, c in enumerate(self.columns) if c.grow > 0]
        while room > 0 and growing:
            share = max(room // len(growing), 1)
            for i in list(growing):
                extra = min(share, self.columns[i].width + self.columns[i].grow - widths[i], room)
                widths[i] += extra
                room -= extra
                if widths[i] >= self.columns[i].width + self.columns[i].grow:
                    growing.remove(i)
                if room <= 0:
                    break
        if widths != self._widths:
            self._widths = widths
            self._forget_strips()
            self.refresh()
        self._update_size()

    def set_rows(self, rows: Sequence[Any], cells: Callable[[Any], Sequence[Text]] | None = None,
                 *, key: Callable[[Any], Hashable] | None = None, cursor: int = 0,
                 scroll_y: int | None = None, dropped_before: int = 0) -> None:
        """Show ``rows``, with the cursor on row ``cursor`` and the view at ``scroll_y``.

        ``dropped_before`` is how many rows left the top since the last call
        (negative when rows were added there), so zebra stripes stay on the
        same rows while the window slides.
        """
        if cells is not None:
            self._cells = cells
            self._forget_strips()
        if key is not None:
            self._key = key
        self._parity_origin += dropped_before
        self._rows = list(rows)
        self._update_size()
        target = min(max(cursor, 0), max(len(self._rows) - 1, 0))
        if scroll_y is not None:
            self.set_scroll(None, min(max(scroll_y, 0), self._max_scroll()))
        self.set_reactive(PagedTable.cursor_row, target)
        self._scroll_cursor_into_view()
        self.refresh()
        if self._rows:
            self.post_message(self.RowHighlighted(self, target))

    def append_rows(self, rows: Sequence[Any]) -> None:
        """Add rows at the bottom (nothing on screen is painted again)."""
        start = len(self._rows)
        self._rows.extend(rows)
        self._update_size()
        top = round(self.scroll_y)
        if start <= top + self.size.height:
            self.refresh()

    def clear(self) -> None:
        self.set_rows([], cursor=0, scroll_y=0)

    def move_cursor(self, *, row: int) -> None:
        """Put the cursor on row ``row`` (clamped) and scroll it into view."""
        if not self._rows:
            return
        self.cursor_row = min(max(row, 0), len(self._rows) - 1)

    # ------------------------------------------------------------ geometry
    def _table_width(self, widths: Sequence[int] | None = None) -> int:
        widths = self._widths if widths is None else widths
        return sum(w + 2 * CELL_PADDING for w in widths)

    def _update_size(self) -> None:
        self.virtual_size = Size(self._table_width(), len(self._rows) + 1)

    def _body_height(self) -> int:
        """Rows visible under the header."""
        return max(self.scrollable_content_region.height - 1, 1)

    def _max_scroll(self) -> int:
        return max(len(self._rows) - self._body_height(), 0)

    def _scroll_cursor_into_view(self) -> None:
        row = self.cursor_row
        top = round(self.scroll_y)
        height = self._body_height()
        if row < top:
            self.set_scroll(None, row)
        elif row >= top + height:
            self.set_scroll(None, row - height + 1)

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._scroll_cursor_into_view()
        if self._rows:
            self.post_message(self.RowHighlighted(self, new))

    def _refresh_row(self, row: int) -> None:
        y = row - round(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    # ------------------------------------------------------------ painting
    def _forget_strips(self) -> None:
        self._strips.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_strips()
        self.refresh()

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_resize(self) -> None:
        self._layout_columns()
        self._scroll_cursor_into_view()

    def _line(self, texts: Sequence[Text], style: Style) -> Strip:
        console = self.app.console
        segments: list[Segment] = []
        pad = " " * CELL_PADDING
        for width, text in zip(self._widths, texts, strict=False):
            shown = text.copy()
            shown.no_wrap = True
            shown.end = ""
            if shown.justify == "right":
                shown.truncate(width, overflow="ellipsis")
                shown.pad_left(width - shown.cell_len)
            else:
                shown.truncate(width, overflow="ellipsis", pad=True)
            segments.append(Segment(pad))
            rendered = shown.render(console)  # (spans only: the text's own style goes under them)
            segments.extend(Segment.apply_style(rendered, console.get_style(shown.style))
                            if shown.style else rendered)
            segments.append(Segment(pad))
        return Strip(Segment.apply_style(segments, style), self._table_width())

    def _header_strip(self) -> Strip:
        style = self.rich_style + self.get_component_rich_style("paged-table--header")
        labels = [Text(c.label) for c in self.columns]
        return self._line(labels, style)

    def _row_strip(self, index: int) -> Strip:
        row = self._rows[index]
        cursor = index == self.cursor_row
        even = (index + self._parity_origin) % 2 == 1
        key = (self._key(row), cursor, even)
        strip = self._strips.get(key)
        if strip is None:
            style = self.rich_style
            if even:
                style += self.get_component_rich_style("paged-table--even-row")
            if cursor:
                style += self.get_component_rich_style("paged-table--cursor")
            strip = self._line(list(self._cells(row)), style)
            self._strips[key] = strip
            if len(self._strips) > STRIP_CACHE_ROWS:
                self._strips.popitem(last=False)
        else:
            self._strips.move_to_end(key)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header_strip()
        else:
            index = scroll_y + y - 1
            if 0 <= index < len(self._rows):
                strip = self._row_strip(index)
            else:
                return Strip.blank(width, self.rich_style)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    # ------------------------------------------------------------ actions
    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        step = self._body_height() - 1
        self.set_scroll(None, max(round(self.scroll_y) - step, 0))
        self.move_cursor(row=self.cursor_row - step)

    def action_page_down(self) -> None:
        step = self._body_height() - 1
        self.set_scroll(None, min(round(self.scroll_y) + step, self._max_scroll()))
        self.move_cursor(row=self.cursor_row + step)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        if self._rows:
            self.post_message(self.RowSelected(self, self.cursor_row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + round(self.scroll_x)
            for column, width in zip(self.columns, self._widths, strict=False):
                x -= width + 2 * CELL_PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column.key))
                    break
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._rows):
            if row == self.cursor_row:
                self.post_message(self.RowSelected(self, row))
            else:
                self.move_cursor(row=row)


def id_of(row: Any) -> Hashable:
    """The default row key: the row's ``pk``."""
    return row.pk
