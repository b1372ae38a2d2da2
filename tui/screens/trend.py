"""Size over time: a segment's (or an audience's) exact size at past as-of instants.

Each point is the count the segment would have had at that instant (the
store's ``trend``, the same count as ``count --as-of``), so even a draft has
a history. Points are counted one after another in a worker, oldest first;
the chart grows as they arrive and a progress bar says how far it is. x (or
escape, which also goes back) stops the counting; d, w and m choose daily
over 30 days, weekly over 12 weeks (the default) or monthly over 12 months.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, ProgressBar, Static

from store.engines.base import Connection
from store.engines.cancel import Cancel
from store.errors import QueryCancelled
from store.query.trend import Span, instants, trend
from store.schema.catalog import Catalog
from store.segments.validate import ResolvedSegment
from tui.host import host
from tui.report import markdown_table
from tui.screens.activation import error_text, profile_reader
from tui.widgets.chart import SizeChart
from tui.widgets.footer import AppFooter
from tui.widgets.format import plural, tone

# key -> (every, last, words)
PERIODS: dict[str, tuple[Span, Span, str]] = {
    "d": (Span(1, "days"), Span(30, "days"), "daily over 30 days"),
    "w": (Span(1, "weeks"), Span(12, "weeks"), "weekly over 12 weeks"),
    "m": (Span(1, "months"), Span(12, "months"), "monthly over 12 months"),
}

# Reads the segment to chart on the worker's connection (a draft is already resolved).
Resolver = Callable[[Connection, Catalog], ResolvedSegment]


class PointCounted(Message):
    def __init__(self, generation: int, moment: dt.datetime, count: int, total: int) -> None:
        super().__init__()
        self.generation = generation
        self.moment = moment
        self.count = count
        self.total = total


class TrendEnded(Message):
    """The worker finished: ``problem`` is None when every point was counted."""

    def __init__(self, generation: int, problem: str | None, stopped: bool = False) -> None:
        super().__init__()
        self.generation = generation
        self.problem = problem
        self.stopped = stopped


def change_words(points: list[tuple[dt.datetime, int]]) -> str:
    """``From 1,204 on 2026-09-13 to 1,310 on 2026-11-29: +106 (+8.8%)``."""
    (first_at, first), (last_at, last) = points[0], points[-1]
    delta = last - first
    share = f" ({delta / first:+.1%})" if first else ""
    return (f"From {first:,} on {first_at:%Y-%m-%d} to {last:,} on {last_at:%Y-%m-%d}:"
            f" {delta:+,}{share}")


class TrendScreen(Screen[None]):
    """The size-over-time chart of one segment: the builder's draft or an audience's segment."""

    TITLE = "Size over time"
    HELP_TITLE = "Size over time"
    DEFAULT_CSS = """
    #trend-hint { width: 1fr; color: $text-muted; }
    #trend-body { height: 1fr; padding: 0 1; }
    #trend-status { height: auto; margin: 1 0 0 0; }
    #trend-progress { height: 1; margin: 0 0 1 0; }
    #trend-chart { height: 1fr; min-height: 6; max-height: 24; }
    #trend-summary { height: auto; margin: 1 0 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="trend.back", tooltip="Stop counting and go back"),
        Binding("x", "stop", "Stop", id="trend.stop", tooltip="Stop counting (the points so far stay)"),
        Binding("d", "period('d')", "Daily", id="trend.daily", tooltip="Daily over the last 30 days"),
        Binding("w", "period('w')", "Weekly", id="trend.weekly", tooltip="Weekly over the last 12 weeks"),
        Binding("m", "period('m')", "Monthly", id="trend.monthly",
                tooltip="Monthly over the last 12 months"),
    ]

    def __init__(self, name: str, resolver: Resolver, *, what: str = "segment") -> None:
        super().__init__()
        self.subject = name
        self.what = what
        self.resolver = resolver
        self.period = "w"
        self.generation = 0
        self.cancel: Cancel | None = None
        self.points: list[tuple[dt.datetime, int]] = []
        self.running = True  # it counts from the moment it is shown

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="trend-toolbar", classes="toolbar"):
            yield Static(Text(f"Size over time: {self.subject} ({self.what})"), classes="area-title")
            yield Static("d/w/m: period · x: stop · escape: back", id="trend-hint")
        with Vertical(id="trend-body"):
            yield Static("", id="trend-status")
            yield ProgressBar(id="trend-progress", show_eta=False)
            yield SizeChart(id="trend-chart")
            yield Static("", id="trend-summary")
        yield AppFooter()

    def on_mount(self) -> None:
        self.start()

    def start(self) -> None:
        """Count the points of the chosen period again, from the oldest (stopping a running count)."""
        self.stop_running()
        self.generation += 1
        every, last, words = PERIODS[self.period]
        moments = instants(host(self).as_of_instant(), every, last)
        self.points = []
        self.query_one("#trend-chart", SizeChart).points = []
        self.query_one("#trend-summary", Static).update("")
        bar = self.query_one("#trend-progress", ProgressBar)
        bar.update(total=len(moments), progress=0)
        bar.display = True
        self.query_one("#trend-status", Static).update(
            Text(f"Exact size {words}, as of each date · counting {len(moments)} points…"))
        self.cancel = host(self).queries.start(f"trend-{id(self)}")
        self.running = True
        self.count_points(self.generation, moments, self.cancel)

    def stop_running(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()

    @work(thread=True, exclusive=True, exit_on_error=False, group="trend")
    def count_points(self, generation: int, moments: list[dt.datetime], cancel: Cancel) -> None:
        try:
            conn = profile_reader(self)
            try:
                catalog = host(self).catalog
                resolved = self.resolver(conn, catalog)
                for moment in moments:
                    cancel.check()
                    (point,) = trend(conn, resolved, [moment], catalog, cancel)
                    self.post_message(PointCounted(generation, point.as_of, point.count, len(moments)))
            finally:
                conn.close()
        except QueryCancelled:
            self.post_message(TrendEnded(generation, None, stopped=True))
        except Exception as exc:
            self.post_message(TrendEnded(generation, error_text(exc)))
        else:
            self.post_message(TrendEnded(generation, None))

    @on(PointCounted)
    def point_counted(self, message: PointCounted) -> None:
        if message.generation != self.generation:
            return
        self.points.append((message.moment, message.count))
        self.query_one("#trend-chart", SizeChart).points = list(self.points)
        self.query_one("#trend-progress", ProgressBar).advance(1)

    @on(TrendEnded)
    def ended(self, message: TrendEnded) -> None:
        if message.generation != self.generation:
            return
        self.running = False
        self.query_one("#trend-progress", ProgressBar).display = False
        _, _, words = PERIODS[self.period]
        status = self.query_one("#trend-status", Static)
        if message.problem is not None:
            status.update(Text(message.problem, style=tone(self.app, "error")))
            return
        counted = plural(len(self.points), "point")
        if message.stopped:
            status.update(Text(f"Stopped after {counted} ({words}); d, w or m counts again.",
                               style=tone(self.app, "warning")))
        else:
            status.update(Text(f"Exact size {words}, as of each date ({counted})."))
        if len(self.points) >= 2:
            self.query_one("#trend-summary", Static).update(Text(change_words(self.points)))

    # -- actions
    def action_stop(self) -> None:
        if self.running:
            self.stop_running()

    def action_period(self, key: str) -> None:
        self.period = key
        self.start()

    # -- the demo report (F6)
    def report_title(self) -> str:
        return f"Size over time: {self.subject}"

    def report_lines(self) -> list[str]:
        """The exact size at each date counted so far, and the change from the first to the last."""
        _, _, words = PERIODS[self.period]
        if not self.points:
            return [f"Exact size {words}: no point counted yet."]
        lines = [f"Exact size of the {self.what} {words}, as of each date"
                 + (" (still counting)." if self.running else "."), ""]
        lines += markdown_table(["As of (UTC)", "Size"],
                                [[f"{moment:%Y-%m-%d %H:%M}", f"{size:,}"] for moment, size in self.points])
        lines += ["", change_words(self.points) + "."]
        return lines

    def action_back(self) -> None:
        self.stop_running()
        self.app.pop_screen()
