"""The editor of a sequence: events in order, the gaps between them, and the funnel.

Mirrors the spec's sequence node: an optional window every present step's event lies
in, then 2 to 8 ordered steps. Each step is an event type (or several, or "*") with
``where`` conditions, edited with the event editor in its step form; a gap (at least,
at most) since the previous step; and on the last step the "and then did not" switch
(``absent``). Beside each step, how many profiles got that far (a funnel of bars),
counted again a moment after every change by the caller's ``funnel`` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from store.engines.base import Connection
from store.errors import AudiencesError
from store.schema.catalog import Catalog
from store.segments.describe import describe, gap_words, step_words
from store.segments.editing import check_condition
from store.segments.model import (
    MAX_STEPS,
    MIN_STEPS,
    EventCondition,
    Gap,
    SequenceCondition,
    SequenceStep,
)
from tui.builder.condition_editor import FormSelect
from tui.builder.event_editor import WINDOW_KINDS, EventEditor
from tui.builder.pickers import FuzzyPicker, event_type_items
from tui.builder.preview import share_bar
from tui.builder.value_text import (
    DATE_HINT,
    GAP_HINT,
    duration_text,
    parse_duration,
    parse_window,
    plain_message,
    window_texts,
)
from tui.widgets.dialog import Dialog
from tui.widgets.format import tone

# Counts the funnel of a sequence: how many profiles match its first 1, 2, ... steps (of a
# sequence still at its first step: that step's count).
Funnel = Callable[[SequenceCondition], tuple[int, ...]]
FUNNEL_DEBOUNCE = 0.25
FUNNEL_BAR = 16
COUNT_WIDTH = 12


class StepList(OptionList):
    """The steps, in order: a adds one after the highlighted step, enter edits it."""

    HELP_TITLE = "Sequence steps"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "screen.add_step", "Add step", id="sequence_editor.add_step",
                tooltip="Add a step after this one"),
        Binding("enter", "screen.edit_step", "Edit step", id="sequence_editor.edit_step",
                tooltip="Edit the step's event type(s) and where conditions"),
        Binding("g", "screen.edit_gap", "Gap", id="sequence_editor.edit_gap",
                tooltip="Time since the previous step: min, max"),
        Binding("x", "screen.toggle_absent", "Did not", id="sequence_editor.toggle_absent",
                tooltip="The last step: 'and then did not' (absent) or did"),
        Binding("d,delete", "screen.delete_step", "Delete step", id="sequence_editor.delete_step"),
        Binding("ctrl+up,K", "screen.move_step(-1)", "Move up", id="sequence_editor.move_up", show=False),
        Binding("ctrl+down,J", "screen.move_step(1)", "Move down", id="sequence_editor.move_down",
                show=False),
    ]


class FunnelCounted(Message):
    def __init__(self, generation: int, counts: tuple[int, ...] | None, error: str = "") -> None:
        super().__init__()
        self.generation = generation
        self.counts = counts
        self.error = error


class GapEditor(Dialog[Gap | None]):
    """At least / at most since the previous step; both empty removes the gap."""

    DEFAULT_CSS = """
    GapEditor .dialog { width: 64; }
    GapEditor .row { height: 1; margin-bottom: 1; }
    GapEditor .row Label { width: 10; color: $text-muted; }
    GapEditor .row Input { width: 1fr; }
    GapEditor #gap-verdict { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="gap_editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="gap_editor.apply", priority=True),
    ]
    AUTO_FOCUS = "#gap-max"

    def __init__(self, gap: Gap | None, title: str) -> None:
        super().__init__()
        self.gap = gap or Gap()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            with Horizontal(classes="row"):
                yield Label("At most")
                yield Input(duration_text(self.gap.max), id="gap-max", placeholder="2 hours")
            with Horizontal(classes="row"):
                yield Label("At least")
                yield Input(duration_text(self.gap.min), id="gap-min", placeholder="30 minutes")
            yield Static("", id="gap-verdict")
            yield Static(f"{GAP_HINT} · enter: apply · escape: cancel", classes="hint")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.compact = True
        self.refresh_verdict()

    def build(self) -> tuple[Gap | None, str | None]:
        try:
            low = parse_duration(self.query_one("#gap-min", Input).value)
            high = parse_duration(self.query_one("#gap-max", Input).value)
        except ValueError as exc:
            return None, str(exc)
        if low is not None and high is not None and low.seconds > high.seconds:
            return None, "at least must not be more than at most"
        return Gap(low, high), None

    def refresh_verdict(self) -> None:
        gap, problem = self.build()
        verdict = self.query_one("#gap-verdict", Static)
        if problem:
            verdict.update(Text("✗ " + problem, style=f"bold {tone(self.app, 'error')}"))
        elif gap is None or (gap.min is None and gap.max is None):
            verdict.update(Text("no gap: any time after the previous step", style="italic"))
        else:
            verdict.update(Text("✓ " + gap_phrase(gap), style=tone(self.app, "success")))

    @on(Input.Changed)
    def changed(self) -> None:
        self.refresh_verdict()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        gap, problem = self.build()
        if problem:
            self.app.bell()
            return
        self.dismiss(gap)



def gap_phrase(gap: Gap) -> str:
    """``within 2 hours`` / ``at least 30 minutes later`` (the plain words of a step)."""
    return gap_words(gap.min, gap.max)


class SequenceEditor(Dialog[SequenceCondition | None]):
    """Edit a sequence's steps, gaps and window; ctrl+s applies, escape cancels."""

    DEFAULT_CSS = """
    SequenceEditor .dialog { width: 110; }
    SequenceEditor .row { height: 1; margin-bottom: 1; }
    SequenceEditor .row > Label { width: 12; color: $text-muted; }
    SequenceEditor .row Input { width: 1fr; }
    SequenceEditor .row Select { width: 20; margin-right: 1; }
    SequenceEditor .sep { width: auto; padding: 0 1; color: $text-muted; }
    SequenceEditor #steps { height: auto; max-height: 12; border: round $panel; }
    SequenceEditor #steps:focus { border: round $primary; }
    SequenceEditor #seq-verdict { height: auto; margin-top: 1; }
    SequenceEditor.-short .row { margin-bottom: 0; }
    SequenceEditor.-short #steps { max-height: 8; }
    SequenceEditor.-short #seq-verdict, SequenceEditor.-short .hint { margin-top: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="sequence_editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="sequence_editor.apply", priority=True),
    ]
    AUTO_FOCUS = "#steps"

    def __init__(self, sequence: SequenceCondition, *, catalog: Catalog,
                 connect: Callable[[], Connection] | None = None, funnel: Funnel | None = None,
                 step: int = 0) -> None:
        super().__init__()
        self.steps: list[SequenceStep] = list(sequence.steps)
        self.within = sequence.within
        self.catalog = catalog
        self.connect = connect
        self.funnel = funnel
        self.start_step = step
        self.counts: tuple[int, ...] | None = None
        self.counting = False
        self.generation = 0
        self._debounce: Timer | None = None

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        kind, last, low, high = window_texts(self.within)
        with Vertical(classes="dialog"):
            yield Label("Sequence: events in this order", classes="title")
            with Horizontal(classes="row"):
                yield Label("All within")
                yield FormSelect(list(WINDOW_KINDS), value=kind, allow_blank=False,
                                 id="seq-window-kind")
                yield Input(last, id="seq-window-last", placeholder="30 days")
                yield Input(low, id="seq-window-from", placeholder=DATE_HINT)
                yield Static("and", classes="sep", id="seq-window-and")
                yield Input(high, id="seq-window-to", placeholder=DATE_HINT)
            yield Label("Steps: a add · enter edit · g gap · x did not · K/J move ·"
                        " d delete", classes="field-label")
            yield StepList(id="steps")
            yield Static("", id="seq-verdict")
            yield Static("ctrl+s: apply · tab: window · escape: cancel", classes="hint")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.compact = True
        self.query_one("#seq-window-kind", Select).compact = True
        self.relayout()
        self.changed_steps(self.start_step)
        self.set_focus(self.query_one("#steps"))

    def on_resize(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self.fill_steps)

    def relayout(self) -> None:
        kind = self.window_kind()
        self.query_one("#seq-window-last").display = kind == "last"
        for name in ("seq-window-from", "seq-window-and", "seq-window-to"):
            self.query_one(f"#{name}").display = kind == "between"

    def window_kind(self) -> str:
        value = self.query_one("#seq-window-kind", Select).value
        return value if isinstance(value, str) else "ever"

    # -- the steps and their funnel ---------------------------------------------------
    def fill_steps(self, highlight: int | None = None) -> None:
        steps = self.query_one("#steps", StepList)
        keep = steps.highlighted if highlight is None else highlight
        steps.clear_options()
        if not self.steps:
            steps.add_option(Option(Text("no steps yet: a adds the first", style="dim italic"),
                                    id="step-empty", disabled=True))
            return
        first = self.counts[0] if self.counts else 0
        for index, step in enumerate(self.steps):
            steps.add_option(Option(self.step_line(index, step, first), id=f"step-{index}"))
        steps.highlighted = min(keep or 0, len(self.steps) - 1)

    def step_line(self, index: int, step: SequenceStep, first: int) -> Text:
        """``2  then added to cart within 2 hours      ██████▌     1,204``."""
        words = step_words(step, index, self.catalog)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{index + 1}  ", style="bold")
        line.append(f"then {words}" if index else words[:1].upper() + words[1:],
                    style=f"bold {tone(self.app, 'warning')}" if step.absent else "")
        room = self.query_one("#steps", StepList).scrollable_content_region.width
        line.truncate(max(20, (room or 100) - FUNNEL_BAR - COUNT_WIDTH - 3), overflow="ellipsis",
                      pad=True)
        line.append("  ")
        count = self.counts[index] if self.counts and index < len(self.counts) else None
        if count is None:
            line.append(" " * FUNNEL_BAR)
            line.append(("counting…" if self.counting else "").rjust(COUNT_WIDTH), style="dim")
        else:
            line.append_text(share_bar(count / first if first else 0.0, FUNNEL_BAR,
                                       tone(self.app, "success")))
            line.append(f"{count:,}".rjust(COUNT_WIDTH), style=tone(self.app, "accent"))
        return line

    def sequence(self) -> tuple[SequenceCondition, str | None]:
        problem = None
        within = None
        try:
            within = parse_window(self.window_kind(),
                                  self.query_one("#seq-window-last", Input).value.strip(),
                                  self.query_one("#seq-window-from", Input).value.strip(),
                                  self.query_one("#seq-window-to", Input).value.strip())
        except ValueError as exc:
            problem = f"window: {exc}"
        return SequenceCondition(tuple(self.steps), within), problem

    def refresh_verdict(self) -> str | None:
        """Show the sequence in words, or what is wrong with it; returns the problem."""
        node, problem = self.sequence()
        if problem is None and len(self.steps) < MIN_STEPS:
            problem = f"a sequence needs at least {MIN_STEPS} steps: a adds one"
        if problem is None:
            found = check_condition(node, self.catalog)
            if found is not None:
                where = found.path.removeprefix("rule").lstrip(".")
                problem = f"{where}: {found.message}" if where else found.message
        verdict = self.query_one("#seq-verdict", Static)
        if problem:
            verdict.update(Text("✗ " + plain_message(problem),
                                style=f"bold {tone(self.app, 'error')}"))
        else:
            verdict.update(Text("✓ " + describe(node, self.catalog),
                                style=tone(self.app, "success")))
        return problem

    def changed_steps(self, highlight: int | None = None) -> None:
        """After any change: words, verdict, and a fresh funnel a moment later."""
        self.counts = None
        problem = self.refresh_verdict()
        node, window_problem = self.sequence()
        # A lone first step already has its count (the funnel's first bar).
        countable = problem is None or (len(self.steps) == 1 and window_problem is None
                                        and check_condition(node.prefix(1), self.catalog) is None)
        self.counting = countable and self.funnel is not None
        self.fill_steps(highlight)
        self.generation += 1
        if self._debounce is not None:
            self._debounce.stop()
        if self.counting:
            generation = self.generation
            self._debounce = self.set_timer(FUNNEL_DEBOUNCE,
                                            lambda: self.count_funnel(generation, node))

    @work(thread=True, exclusive=True, exit_on_error=False, group="sequence-funnel")
    def count_funnel(self, generation: int, node: SequenceCondition) -> None:
        assert self.funnel is not None
        try:
            counts = self.funnel(node)
        except AudiencesError as exc:
            self.post_message(FunnelCounted(generation, None, str(exc)))
            return
        self.post_message(FunnelCounted(generation, counts))

    @on(FunnelCounted)
    def funnel_counted(self, message: FunnelCounted) -> None:
        if message.generation != self.generation:
            return  # a count of an earlier version of the steps
        self.counting = False
        self.counts = message.counts
        if message.error:
            self.query_one("#seq-verdict", Static).update(
                Text("✗ " + message.error, style=f"bold {tone(self.app, 'error')}"))
        self.fill_steps()

    def highlighted(self) -> int | None:
        index = self.query_one("#steps", StepList).highlighted
        return index if index is not None and 0 <= index < len(self.steps) else None

    # -- step operations ---------------------------------------------------------------
    def action_add_step(self) -> None:
        if len(self.steps) >= MAX_STEPS:
            self.notify(f"A sequence has at most {MAX_STEPS} steps.", severity="warning")
            return
        at = self.highlighted()
        position = len(self.steps) if at is None else at + 1

        def chosen(value: str | None) -> None:
            if value is None:
                return
            types = None if value == "*" else (value,)
            # A new step goes before an absent last step, which must stay last.
            index = position
            if index == len(self.steps) and self.steps and self.steps[-1].absent:
                index -= 1
            self.steps.insert(index, SequenceStep(types))
            self.changed_steps(index)

        self.app.push_screen(FuzzyPicker("Add a step: events of type…",
                                         event_type_items(self.catalog)), chosen)

    def action_edit_step(self) -> None:
        index = self.highlighted()
        if index is None:
            return
        step = self.steps[index]

        def done(result: EventCondition | None) -> None:
            if result is not None:
                self.steps[index] = replace(step, types=result.types, where=result.where)
                self.changed_steps(index)
                self.query_one("#steps").focus()

        self.app.push_screen(EventEditor(EventCondition(step.types, step.where),
                                         catalog=self.catalog, connect=self.connect, step=True),
                             done)

    def action_edit_gap(self) -> None:
        index = self.highlighted()
        if index is None:
            return
        if index == 0:
            self.notify("The first step has no gap: a gap is the time since the previous step.",
                        severity="warning")
            return
        step = self.steps[index]

        def done(gap: Gap | None) -> None:
            if gap is not None:
                empty = gap.min is None and gap.max is None
                self.steps[index] = replace(step, gap=None if empty else gap)
                self.changed_steps(index)

        self.app.push_screen(GapEditor(step.gap, f"Gap before step {index + 1}: time since"
                                                 f" step {index}"), done)

    def action_toggle_absent(self) -> None:
        index = self.highlighted()
        if index is None:
            return
        if index != len(self.steps) - 1 or index == 0:
            self.notify("Only the last step (after the first) can be 'and then did not'.",
                        severity="warning")
            return
        step = self.steps[index]
        self.steps[index] = replace(step, absent=not step.absent)
        self.changed_steps(index)

    def action_delete_step(self) -> None:
        index = self.highlighted()
        if index is None:
            return
        del self.steps[index]
        if self.steps:
            self.steps[0] = replace(self.steps[0], gap=None, absent=False)
        self.changed_steps(max(0, index - 1) if index >= len(self.steps) else index)

    def action_move_step(self, delta: int) -> None:
        index = self.highlighted()
        if index is None:
            return
        target = index + delta
        if not 0 <= target < len(self.steps):
            self.notify("already the first step" if delta < 0 else "already the last step",
                        severity="warning")
            return
        self.steps[index], self.steps[target] = self.steps[target], self.steps[index]
        # The first step has no gap; "did not" stays only where it is allowed (last).
        self.steps[0] = replace(self.steps[0], gap=None)
        self.steps = [replace(s, absent=False) if s.absent and i != len(self.steps) - 1 else s
                      for i, s in enumerate(self.steps)]
        self.changed_steps(target)

    # -- window, applying -----------------------------------------------------------------
    @on(Select.Changed, "#seq-window-kind")
    @on(Input.Changed)
    def window_changed(self) -> None:
        self.relayout()
        self.changed_steps()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        node, problem = self.sequence()
        if problem:  # the window's boxes cannot be read yet
            self.app.bell()
            self.refresh_verdict()
            return
        self.dismiss(node)

