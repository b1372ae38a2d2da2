"""A bar chart of sizes over time, drawn with block characters: it starts at zero.

Used for an audience's size at past as-of instants (the trend view) and for
its sizes over past activations (the Audiences area). Bars start at zero so
a change of a few members does not look like a collapse; the y axis is
labelled with counts (0, half, top), the x axis with dates. The bars take
the theme's accent colour and the axes the text colour, so the chart reads
in dark and light themes alike.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.widgets.format import tone

EIGHTHS = "▁▂▃▄▅▆▇█"


def nice_top(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k (k ≥ 0) at or above ``value``: a round top for the y axis."""
    if value <= 1:
        return 1
    power = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def date_label(moment: dt.datetime, span_days: float) -> str:
    """``13 Sep`` for a chart within a year, ``Sep 26`` (month and year) over longer ones."""
    return f"{moment:%b %y}" if span_days > 366 else f"{moment:%d %b}"


def chart_text(values: Sequence[int], moments: Sequence[dt.datetime], width: int, height: int,
               bar_style: str = "", unit: str = "profiles") -> Text:
    """The chart in ``width`` × ``height`` cells: a title row naming the y axis, bars over a zero
    line with count labels at the left, and dates under the bars (as many as fit, the first and
    the last always)."""
    out = Text()
    if not values:
        return out
    top = nice_top(max(values))
    labels = {0: f"{top:,}"}
    rows = max(1, height - 3)  # title row, axis row, date row
    if rows >= 4 and rows % 2:
        rows -= 1  # an even number of rows puts a row's top edge at exactly half the top
    if rows >= 4 and rows % 2 == 0 and top % 2 == 0:
        labels[rows // 2] = f"{top // 2:,}"  # the top edge of that row is exactly half the top
    gutter = max(len(text) for text in [*labels.values(), "0"]) + 1
    room = max(1, width - gutter - 1)
    shown = list(zip(values, moments, strict=True))[-room:]
    column = max(1, room // len(shown))
    bar = column - 1 if column >= 3 else column
    out.append(f"{unit:>{gutter}}\n", style="dim")
    for r in range(rows):
        label = labels.get(r, "")
        out.append(f"{label:>{gutter - 1}} {'┤' if label else '│'}")
        floor = (rows - 1 - r) * 8
        line = ""
        for value, _ in shown:
            level = value * rows * 8 / top
            fill = min(8, max(0, math.ceil(level) - floor)) if value else 0
            if value and r == rows - 1 and fill == 0:
                fill = 1  # a member is not nothing: the smallest non-zero bar still shows
            line += (EIGHTHS[fill - 1] if fill else " ") * bar + " " * (column - bar)
        out.append(line.rstrip() + "\n", style=bar_style)
    out.append(f"{'0':>{gutter - 1}} └" + "─" * min(room, column * len(shown)) + "\n")
    span = (shown[-1][1] - shown[0][1]).total_seconds() / 86400 if len(shown) > 1 else 0
    dates = [date_label(moment, span) for _, moment in shown]
    axis = [" "] * (gutter + 1 + column * len(shown) + 8)
    taken_until = -1
    last_start = gutter + 1 + column * (len(shown) - 1)
    for i, text in enumerate(dates):
        start = gutter + 1 + column * i
        is_last = i == len(dates) - 1
        if start <= taken_until or (not is_last and start + len(text) + 1 > last_start):
            continue
        axis[start:start + len(text)] = list(text)
        taken_until = start + len(text)
    out.append("".join(axis).rstrip()[:width], style="dim")
    return out


class SizeChart(Widget):
    """A zero-based bar chart of counts over time; set ``points`` to (instant, count) pairs."""

    DEFAULT_CSS = """
    SizeChart { height: 12; width: 1fr; }
    """

    points: reactive[list[tuple[dt.datetime, int]]] = reactive(list, always_update=True)

    def __init__(self, unit: str = "profiles", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.unit = unit

    def render(self) -> Text:
        if not self.points:
            return Text("")
        return chart_text([n for _, n in self.points], [m for m, _ in self.points],
                          self.size.width, self.size.height, tone(self.app, "accent"), self.unit)
