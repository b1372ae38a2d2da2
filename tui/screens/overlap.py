"""The overlap view: how chosen saved segments (or activated audiences) intersect, exactly.

A checklist of segments (space ticks one) beside the result: a matrix of
pairwise counts with the share of the row's audience that is also in the
column, and a picture: a Venn diagram for two, UpSet-style bars (profiles in
exactly each combination) for three to eight. The result follows the ticks:
each change recomputes it in a worker, and the member sets already read are
kept (``MemberSetCache``), so ticking one more segment reads only that one.
From the builder, the draft (saved or not) is the first entry and is always
included: "overlap of this draft with ...".
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, SelectionList, Static
from textual.widgets.selection_list import Selection

from store.campaign.store import audience_overlap, list_audiences
from store.engines.cancel import Cancel
from store.errors import QueryCancelled
from store.query.membersets import MemberSetCache
from store.query.overlap import MAX_EXCLUSIVE, MAX_SEGMENTS, Overlap, overlap
from store.segments.library import list_segments, resolve_saved
from store.segments.validate import ResolvedSegment
from tui.host import host
from tui.report import markdown_table
from tui.screens.activation import (
    error_text,
    profile_reader,
)
from tui.widgets.footer import AppFooter
from tui.widgets.format import tone

DRAFT = "\x00draft"  # the selection value of the builder's draft
BAR = "█"


# ------------------------------------------------------------------ pictures


def venn_lines(names: tuple[str, str], only_a: int, both: int, only_b: int, width: int) -> list[Text]:
    """Two overlapping boxes, A's left part and B's right part, their widths in proportion to
    the profiles only in A, in both and only in B (each at least wide enough for its number)."""
    labels = [f"{only_a:,}", f"{both:,}", f"{only_b:,}"]
    floor = [max(len(label) + 4, 8) for label in labels]
    room = max(width - 2, sum(floor))
    total = only_a + both + only_b
    spans = [max(f, round(room * n / total) if total else f) for f, n in zip(floor, (only_a, both, only_b),
                                                                            strict=True)]
    while sum(spans) > room:
        widest = spans.index(max(spans))
        if spans[widest] <= floor[widest]:
            break
        spans[widest] -= 1
    a_start, b_start = 0, spans[0]
    a_end, b_end = spans[0] + spans[1], sum(spans)
    rows = 8
    grid = [[" "] * (b_end + 1) for _ in range(rows)]

    def box(left: int, right: int, top: int, bottom: int) -> None:
        for x in range(left + 1, right):
            for y in (top, bottom):
                grid[y][x] = "┼" if grid[y][x] == "│" else "─"
        for y in range(top + 1, bottom):
            for x in (left, right):
                grid[y][x] = "┼" if grid[y][x] == "─" else "│"
        grid[top][left], grid[top][right] = "╭", "╮"
        grid[bottom][left], grid[bottom][right] = "╰", "╯"

    box(a_start, a_end, 0, 5)
    box(b_start, b_end, 2, 7)

    def put(y: int, x0: int, x1: int, text: str) -> None:
        text = text[: max(0, x1 - x0 - 1)]
        start = x0 + max(1, (x1 - x0 - len(text)) // 2)
        for i, char in enumerate(text):
            grid[y][start + i] = char

    put(1, a_start, a_end, names[0])
    put(3, a_start, b_start, labels[0])
    put(4, a_start, b_start, "only")
    put(3, b_start, a_end, labels[1])
    put(4, b_start, a_end, "both")
    put(4, a_end, b_end, labels[2])
    put(5, a_end, b_end, "only")
    put(6, b_start, b_end, names[1])
    return [Text("".join(row).rstrip()) for row in grid]


def upset_lines(result: Overlap, width: int, bar_style: str = "") -> list[Text]:
    """UpSet-style rows: for each non-empty exclusive intersection (largest first), a dot per
    segment (● in it, · not), a bar in proportion to its size and the count."""
    k = len(result.ids)
    head = Text(" ".join(f"{i + 1:>2}" for i in range(k)) + "   profiles in exactly these")
    lines = [head]
    if not result.exclusive:
        return [*lines, Text("No profile is in any of them.")]
    top = result.exclusive[0][1]
    label_width = max(len(f"{n:,}") for _, n in result.exclusive)
    bar_room = max(4, width - 3 * k - label_width - 4)
    for combo, n in result.exclusive:
        dots = " ".join(f"{'●' if i in combo else '·':>2}" for i in range(k))
        length = max(1, round(bar_room * n / top)) if n else 0
        line = Text(dots + "  ")
        line.append(BAR * length, style=bar_style)
        line.append(f" {n:>{label_width},}")
        lines.append(line)
    return lines


# ------------------------------------------------------------------ messages


class ChoicesLoaded(Message):
    def __init__(self, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.choices = choices


class OverlapReady(Message):
    def __init__(self, generation: int, result: Overlap) -> None:
        super().__init__()
        self.generation = generation
        self.result = result


class OverlapFailed(Message):
    def __init__(self, generation: int, message: str) -> None:
        super().__init__()
        self.generation = generation
        self.message = message


# ------------------------------------------------------------------ the screen


def matrix_rows(result: Overlap) -> list[list[str]]:
    """The matrix as text, a row per audience: its label, its size, then for each column the
    profiles in both with the share of the row's audience ("—" on the diagonal)."""
    k = len(result.ids)
    return [[f"[{i + 1}] {result.names[i]}", f"{result.sizes[i]:,}",
             *("—" if i == j else f"{result.matrix[i][j]:,} ({result.share(i, j):.0%})" for j in range(k))]
            for i in range(k)]


class OverlapScreen(Screen[None]):
    """Overlap of chosen saved segments (``kind="segments"``) or audiences (``"audiences"``)."""

    TITLE = "Overlap"
    HELP_TITLE = "Overlap"
    AUTO_FOCUS = "#overlap-choices"
    DEFAULT_CSS = """
    #overlap-hint { width: 1fr; color: $text-muted; }
    #overlap-body { height: 1fr; }
    #overlap-choices { width: 30%; min-width: 24; max-width: 40; height: 1fr; }
    #overlap-result { width: 1fr; padding: 0 1; }
    #overlap-status { height: auto; margin: 0 0 1 0; }
    #overlap-matrix { height: auto; max-height: 14; margin: 0 0 1 0; }
    #overlap-picture { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="overlap.back", tooltip="Back to where you were"),
        Binding("ctrl+r", "recompute", "Recount", id="overlap.recompute", show=False,
                tooltip="Read the chosen segments again"),
    ]

    def __init__(self, kind: str = "segments", chosen: list[str] | None = None,
                 draft: ResolvedSegment | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.chosen = list(chosen or [])
        self.draft = draft
        self.cache = MemberSetCache()
        self.generation = 0
        self.result: Overlap | None = None
        self.ready = False  # the choices are listed

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="overlap-toolbar", classes="toolbar"):
            title = "Overlap of audiences" if self.kind == "audiences" else "Overlap of segments"
            if self.draft is not None:
                title = f"Overlap of {self.draft.segment.name} (draft) with …"
            yield Static(Text(title), classes="area-title")
            yield Static("space: tick · escape: back", id="overlap-hint")
        with Horizontal(id="overlap-body"):
            yield SelectionList[str](id="overlap-choices")
            with VerticalScroll(id="overlap-result"):
                yield Static("Tick two or more to compare them.", id="overlap-status")
                yield DataTable(id="overlap-matrix", show_cursor=False, zebra_stripes=True)
                with Vertical():
                    yield Static("", id="overlap-picture")
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#overlap-matrix", DataTable).display = False
        self.query_one("#overlap-choices", SelectionList).border_title = (
            "Audiences" if self.kind == "audiences" else "Saved segments")
        self.load_choices()

    # -- workers
    @work(thread=True, exclusive=True, exit_on_error=False, group="overlap-choices")
    def load_choices(self) -> None:
        try:
            if self.kind == "audiences":
                from store.campaign.store import open_campaign

                path = host(self).campaign_db_path
                choices: list[tuple[str, str]] = []
                if path.exists():
                    conn = open_campaign(path, readonly=True)
                    try:
                        choices = [(str(a.id), f"{a.name} ({a.member_count:,})")
                                   for a in list_audiences(conn)]
                    finally:
                        conn.close()
            else:
                conn = profile_reader(self)
                try:
                    choices = [(s.id, s.name) for s in list_segments(conn)]
                finally:
                    conn.close()
        except Exception as exc:
            self.post_message(OverlapFailed(self.generation, error_text(exc)))
            return
        self.post_message(ChoicesLoaded(choices))

    @work(thread=True, exclusive=True, exit_on_error=False, group="overlap-compute")
    def compute(self, generation: int, picked: list[str], cancel: Cancel) -> None:
        try:
            if self.kind == "audiences":
                from store.campaign.store import open_campaign

                campaign = open_campaign(host(self).campaign_db_path, readonly=True)
                try:
                    result = audience_overlap(campaign, list(picked))
                finally:
                    campaign.close()
            else:
                conn = profile_reader(self)
                try:
                    catalog = host(self).catalog
                    resolved = [self.draft if key == DRAFT and self.draft is not None
                                else resolve_saved(conn, key) for key in picked]
                    result = overlap(conn, resolved, host(self).as_of_instant(), catalog, self.cache,
                                     cancel)
                finally:
                    conn.close()
        except QueryCancelled:
            return  # superseded by the next choice, or the screen closed
        except Exception as exc:
            self.post_message(OverlapFailed(generation, error_text(exc)))
            return
        self.post_message(OverlapReady(generation, result))

    # -- handlers
    @on(ChoicesLoaded)
    def show_choices(self, message: ChoicesLoaded) -> None:
        choices = self.query_one("#overlap-choices", SelectionList)
        choices.clear_options()
        options: list[Selection[str]] = []
        if self.draft is not None:
            options.append(Selection(Text(f"{self.draft.segment.name} (draft)", style="bold"), DRAFT, True,
                                     disabled=True))
        draft_id = self.draft.segment.id if self.draft is not None else None
        for value, label in message.choices:
            if value == draft_id:
                continue  # the draft stands for its saved version
            options.append(Selection(label, value, value in self.chosen))
        choices.add_options(options)
        free = [i for i, option in enumerate(options) if not option.initial_state and not option.disabled]
        if free:
            choices.highlighted = free[0]  # space then ticks a second one
        self.ready = True
        if not message.choices:
            self.query_one("#overlap-status", Static).update(
                "No audience activated yet." if self.kind == "audiences" else "No saved segment yet.")
            return
        self.selection_changed()

    @on(SelectionList.SelectedChanged, "#overlap-choices")
    def selection_changed(self) -> None:
        if not self.ready:
            return
        picked = self.picked()
        status = self.query_one("#overlap-status", Static)
        if len(picked) < 2:
            self.result = None
            status.update("Tick two or more to compare them (space).")
            self.query_one("#overlap-matrix", DataTable).display = False
            self.query_one("#overlap-picture", Static).update("")
            return
        if len(picked) > MAX_SEGMENTS:
            status.update(f"At most {MAX_SEGMENTS} at once; untick some.")
            return
        self.generation += 1
        status.update(f"Counting {len(picked)}…")
        self.compute(self.generation, picked, host(self).queries.start(f"overlap-{id(self)}"))

    def picked(self) -> list[str]:
        """The ticked entries in list order (the draft first)."""
        choices = self.query_one("#overlap-choices", SelectionList)
        ticked = set(choices.selected)
        values = [choices.get_option_at_index(i).value for i in range(choices.option_count)]
        return [value for value in values if value in ticked]

    @on(OverlapFailed)
    def failed(self, message: OverlapFailed) -> None:
        if message.generation != self.generation:
            return
        self.query_one("#overlap-status", Static).update(
            Text(message.message, style=tone(self.app, "error")))
        host(self).show_error(message.message)

    # -- the demo report (F6)
    def report_title(self) -> str:
        count = len(self.result.ids) if self.result is not None else 0
        noun = "audiences" if self.kind == "audiences" else "segments"
        return f"Overlap of {count} {noun}" if count else f"Overlap of {noun}"

    def report_lines(self) -> list[str]:
        """The matrix (profiles in both, share of the row), the union, and for three or more
        the largest exclusive intersections."""
        result = self.result
        if result is None:
            return ["Nothing compared yet: tick two or more."]
        k = len(result.ids)
        lines = markdown_table(["", "Size", *(f"[{j + 1}]" for j in range(k))], matrix_rows(result))
        base = "members" if self.kind == "audiences" else f"profiles of {result.total:,}"
        lines += ["", f"In at least one: **{result.union:,}** {base}, as of"
                      f" {result.as_of:%Y-%m-%d %H:%M} UTC. Each cell: in both, and the share of the"
                      " row's audience also in the column."]
        if k > 2 and result.exclusive:
            lines += ["", "In exactly these and no other:", ""]
            lines += markdown_table(["Audiences", "Profiles"], [
                [" + ".join(result.names[i] for i in combo), f"{n:,}"]
                for combo, n in result.exclusive[:10]])
        return lines

    @on(OverlapReady)
    def show_result(self, message: OverlapReady) -> None:
        if message.generation != self.generation:
            return
        result = self.result = message.result
        k = len(result.ids)
        noun = "audiences" if self.kind == "audiences" else "segments"
        base = ("members in any" if self.kind == "audiences"
                else f"profiles in any, of {result.total:,}")
        self.query_one("#overlap-status", Static).update(Text(
            f"{k} {noun} · {result.union:,} {base} · exact, in {result.elapsed_ms:,.0f} ms"
            "\nEach cell: profiles in both, and the share of the row's audience also in the column."))
        table = self.query_one("#overlap-matrix", DataTable)
        table.clear(columns=True)
        table.add_column("", key="name", width=24)
        table.add_column(Text("Size", justify="right"), key="size")
        for j in range(k):
            table.add_column(Text(f"[{j + 1}]", justify="right"), key=f"c{j}")
        for i, (label, *numbers) in enumerate(matrix_rows(result)):
            table.add_row(Text(label, no_wrap=True, overflow="ellipsis"),
                          *(Text(text, justify="right", style="dim" if j == i + 1 else "")
                            for j, text in enumerate(numbers)))
        table.display = True
        self.query_one("#overlap-picture", Static).update(self.picture(result))

    def picture(self, result: Overlap) -> Text:
        width = max(30, self.query_one("#overlap-result").size.width - 4)
        k = len(result.ids)
        if k == 2:
            both = result.matrix[0][1]
            lines = venn_lines((result.names[0], result.names[1]), result.sizes[0] - both, both,
                               result.sizes[1] - both, min(width, 90))
            title = Text("Venn: profiles only in each, and in both", style="bold")
        elif k <= MAX_EXCLUSIVE:
            lines = upset_lines(result, min(width, 100), tone(self.app, "accent"))
            title = Text("Profiles in exactly these audiences (UpSet)", style="bold")
        else:
            return Text(f"Exact intersections are drawn for up to {MAX_EXCLUSIVE} audiences.",
                        style="dim")
        out = Text()
        out.append_text(title)
        for line in lines:
            out.append("\n")
            out.append_text(line)
        return out

    # -- actions
    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        host(self).queries.interrupt(f"overlap-{id(self)}")

    def action_recompute(self) -> None:
        self.cache = MemberSetCache()
        self.selection_changed()
