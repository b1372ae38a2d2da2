"""The live preview beside the rule tree: the exact count, a sample of members, a breakdown.

Only draws what the screen hands it; the counting happens in the screen's
worker. While a count runs the number is replaced by "counting…" (a result
from an older edit is never left on screen as if it were current).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Digits, OptionList, Static
from textual.widgets.option_list import Option

from tui.widgets.format import tone

BAR_WIDTH = 24
COUNTING_TICK_S = 0.5
SLOW_COUNT_S = 1.0  # a count running longer says for how long, and how to stop it
BREAKDOWN_LABEL = 16
MIN_BAR = 6
BLOCKS = " ▏▎▍▌▋▊▉█"


def format_elapsed(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def format_share(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal everywhere in the app (the
    count, the breakdown, the Segments list), so shares line up and compare; a non-empty
    audience below 0.05% reads ``<0.1%``, never 0%, and one that misses anybody never
    reads 100%."""
    if not whole:
        return ""
    share = part / whole
    if 0 < share < 0.0005:
        return "<0.1%"
    if 0.9995 <= share < 1:
        return ">99.9%"
    return f"{share:.1%}"


def share_bar(share: float, width: int = BAR_WIDTH, colour: str = "green") -> Text:
    """A horizontal bar of ``share`` (0..1) with eighth-block precision, in ``colour``."""
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, part = divmod(eighths, 8)
    text = Text("█" * full, style=colour)
    if part:
        text.append(BLOCKS[part], style=colour)
    text.append("─" * (width - full - (1 if part else 0)), style="dim")
    return text


def breakdown_table(rows: Sequence[tuple[str, int]], audience: int, width: int = BAR_WIDTH,
                    label_width: int = BREAKDOWN_LABEL) -> Table:
    """Value · bar · count · share of the audience, one line per value."""
    table = Table.grid(padding=(0, 1))
    table.add_column(max_width=label_width, no_wrap=True, overflow="ellipsis")
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True, style="dim")
    largest = max((n for _, n in rows), default=0)
    for value, n in rows:
        bar = share_bar(n / largest if largest else 0.0, width)
        share = format_share(n, audience)
        table.add_row(Text(str(value), style="italic" if value.startswith("(") else ""), bar,
                      f"{n:,}", share)
    return table


def member_text(line: str) -> Text:
    """A sampled member on one line: the id, then its name and tested values dimmed; cut with
    "…" when the panel is narrow."""
    profile_id, _, rest = line.partition("  ")
    text = Text(profile_id, no_wrap=True, overflow="ellipsis")
    if rest:
        text.append("  " + rest, style="dim")
    return text


class Breakdown:
    """The breakdown table drawn for the width it gets when drawn (the panel may narrow
    later, when a scrollbar appears): the counts and shares always fit; the labels give
    way (ending in "…") before the bar drops under ``MIN_BAR`` cells."""

    def __init__(self, rows: Sequence[tuple[str, int]], audience: int) -> None:
        self.rows = rows
        self.audience = audience

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows, room = self.rows, options.max_width
        counts = max(len(f"{n:,}") for _, n in rows)
        shares = max(len(format_share(n, self.audience)) for _, n in rows)
        names = min(BREAKDOWN_LABEL, max(len(str(value)) for value, _ in rows),
                    max(4, room - counts - shares - 3 - MIN_BAR))
        bar = max(MIN_BAR, min(BAR_WIDTH * 2, room - names - counts - shares - 3))
        yield breakdown_table(rows, self.audience, bar, names)


class SampleList(OptionList):
    """A few members of the audience; enter opens the profile with why it belongs."""

    HELP_TITLE = "Member sample"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.open_member", "Open profile", id="preview.open_member",
                tooltip="Open the highlighted member and see why they are in the audience"),
    ]


class ListsScroll(VerticalScroll):
    """The sample and the breakdown; a tab stop only while they share a few rows."""

    HELP_TITLE = "Sample and breakdown"
    can_focus = False


class PreviewPanel(Vertical):
    """Count, share of all profiles, timing; sample; breakdown.

    Beside the tree the three parts are stacked; under the tree (class
    ``narrow``, a narrow terminal) the count sits on the left and the sample
    and breakdown scroll on the right.
    """

    DEFAULT_CSS = """
    PreviewPanel { padding: 0 1; }
    PreviewPanel #preview-count, PreviewPanel #preview-lists { height: auto; }
    PreviewPanel.narrow { layout: horizontal; }
    PreviewPanel.narrow #preview-count { width: 34; height: 1fr; }
    PreviewPanel.narrow #preview-lists { width: 1fr; height: 1fr; overflow-y: auto;
                                         padding-left: 1; }
    PreviewPanel.narrow .section { margin-top: 0; }
    PreviewPanel.narrow #breakdown-title { margin-top: 1; }
    PreviewPanel .section { color: $text-muted; text-style: bold; margin-top: 1; }
    PreviewPanel #count-digits { color: $success; width: auto; }
    PreviewPanel #count-digits.stale { color: $text-muted; }
    PreviewPanel #count-share, PreviewPanel #count-status { height: auto; }
    PreviewPanel #sample { height: auto; max-height: 12; border: none; padding: 0;
                           text-wrap: nowrap; text-overflow: ellipsis; }
    PreviewPanel #breakdown { height: auto; }
    PreviewPanel .stale { text-opacity: 35%; }
    """

    counting_since: float | None = None
    clock: Callable[[], float] = staticmethod(time.monotonic)
    _counting_clock: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="preview-count"):
            yield Static("AUDIENCE", classes="section")
            yield Digits("…", id="count-digits")
            yield Static("", id="count-share")
            yield Static("", id="count-status")
        with ListsScroll(id="preview-lists"):
            yield Static("SAMPLE OF MEMBERS", classes="section", id="sample-title")
            yield SampleList(id="sample")
            yield Static("BREAKDOWN", classes="section", id="breakdown-title")
            yield Static(Text("press b to break the audience down by an attribute",
                              style="dim"), id="breakdown")

    def fit(self, narrow: bool) -> None:
        """Under the tree (a narrow terminal) the sample and the breakdown share a few rows:
        their column becomes a tab stop whose keys scroll it, so the breakdown below the
        sample is reached without a mouse."""
        self.set_class(narrow, "narrow")
        self.query_one("#preview-lists", ListsScroll).can_focus = narrow

    # -- count --------------------------------------------------------------------
    def show_counting(self, clock: Callable[[], float] = time.monotonic) -> None:
        """The count of the edit on screen is not known yet: no number; older lists dimmed.
        On a slow engine (a count taking seconds) the seconds so far are shown, and how to stop."""
        digits = self.query_one("#count-digits", Digits)
        digits.update("…")
        digits.add_class("stale")
        self.query_one("#sample").add_class("stale")
        self.query_one("#breakdown").add_class("stale")
        self.query_one("#count-status", Static).update("")
        self.clock = clock
        self.counting_since = clock()
        self.show_counting_time()
        if self._counting_clock is None:
            self._counting_clock = self.set_interval(COUNTING_TICK_S, self.show_counting_time)
        self._counting_clock.resume()

    def show_counting_time(self) -> None:
        if self.counting_since is None:
            return
        waited = self.clock() - self.counting_since
        line = Text("counting…", style=f"italic {tone(self.app, 'warning')}")
        if waited >= SLOW_COUNT_S:
            line.append(f" {waited:.0f} s", style=f"bold {tone(self.app, 'warning')}")
            line.append("\nx stops it (the engine is slow)", style="dim")
        self.query_one("#count-share", Static).update(line)

    def stop_counting_clock(self) -> None:
        self.counting_since = None
        if self._counting_clock is not None:
            self._counting_clock.pause()

    def show_stopped(self) -> None:
        """The count was stopped by hand: no number until the next edit."""
        self.stop_counting_clock()
        self.query_one("#count-digits", Digits).update("-")
        self.query_one("#count-share", Static).update(
            Text("count stopped: x counts again", style="italic"))

    def show_count(self, count: int, total: int, elapsed: float, left_out: int) -> None:
        self.stop_counting_clock()
        digits = self.query_one("#count-digits", Digits)
        digits.update(f"{count:,}")
        digits.remove_class("stale")
        share = count / total if total else 0.0
        line = Text()
        line.append(format_share(count, total), style="bold")
        line.append(f" of {total:,} profiles\n", style="")
        line.append_text(share_bar(share, colour=tone(self.app, "success")))
        self.query_one("#count-share", Static).update(line)
        status = Text(f"counted in {format_elapsed(elapsed)}", style="dim")
        if left_out:
            status.append(f"\n{left_out} invalid condition{'s' if left_out > 1 else ''}"
                          " left out of the count", style=f"bold {tone(self.app, 'error')}")
        self.query_one("#count-status", Static).update(status)

    def show_uncountable(self, reason: str) -> None:
        self.stop_counting_clock()
        digits = self.query_one("#count-digits", Digits)
        digits.update("-")
        digits.add_class("stale")
        self.query_one("#count-share", Static).update(Text(reason, style=f"bold {tone(self.app, 'error')}"))
        self.query_one("#count-status", Static).update("")
        self.show_sample([])
        self.query_one("#breakdown", Static).update("")
        self.query_one("#breakdown").remove_class("stale")

    def show_failure(self, message: str) -> None:
        self.stop_counting_clock()
        digits = self.query_one("#count-digits", Digits)
        digits.update("-")
        digits.add_class("stale")
        self.query_one("#count-share", Static).update(Text(message, style=f"bold {tone(self.app, 'error')}"))

    # -- sample -------------------------------------------------------------------------
    def show_sample(self, members: Sequence[tuple[int, str]], audience: int | None = None) -> None:
        """(pk, line) per member: the line starts with the profile id, the rest is dimmed."""
        sample = self.query_one("#sample", SampleList)
        sample.remove_class("stale")
        sample.clear_options()
        sample.add_options(Option(member_text(line), id=f"member-{pk}") for pk, line in members)
        if members:
            sample.highlighted = 0
        title = "SAMPLE OF MEMBERS"
        if members and audience is not None:
            room = self.query_one("#preview-lists").content_region.width or 80
            full = f"{title}  ({len(members)} of {audience:,} · enter opens)"
            title = full if len(full) <= room else f"{title}  ({len(members)} of {audience:,})"
        self.query_one("#sample-title", Static).update(title)

    def member_pk(self) -> int | None:
        sample = self.query_one("#sample", SampleList)
        index = sample.highlighted
        if index is None:
            return None
        option = sample.get_option_at_index(index)
        return int((option.id or "member-0").removeprefix("member-"))

    # -- breakdown ---------------------------------------------------------------------
    def show_breakdown_pending(self, label: str) -> None:
        self.query_one("#breakdown-title", Static).update(f"BY {label.upper()}  (b: change)")
        counting = Text("counting…", style=f"italic {tone(self.app, 'warning')}")
        self.query_one("#breakdown", Static).update(counting)

    def show_breakdown(self, label: str, rows: Sequence[tuple[str, int]], audience: int) -> None:
        self.query_one("#breakdown-title", Static).update(f"BY {label.upper()}  (b: change)")
        widget = self.query_one("#breakdown", Static)
        widget.remove_class("stale")
        if not rows:
            widget.update(Text("nobody to break down", style="dim"))
        else:
            widget.update(Breakdown(rows, audience))
