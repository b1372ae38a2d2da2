"""Review, then activate: the modal that materialises a segment's audience.

The review (how many members, who would be added, removed or kept) runs in
a thread worker as soon as the modal opens; "Activate" stays disabled until
it is ready. Activating runs in another worker with a progress bar. Workers
open their own connections and only post messages; the handlers here update
the widgets. Escape cancels whatever is running (the campaign store is left
as it was) or closes the modal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.dom import DOMNode
from textual.widgets import Button, Input, Label, ProgressBar, Static

from store.campaign.activation import (
    MAX_FIELDS,
    ActivationResult,
    Review,
    activate,
    refresh_definition,
    review,
)
from store.campaign.splits import SplitSpec, parse_split
from store.campaign.store import Audience, Member, open_campaign
from store.engines.base import Connection
from store.engines.cancel import Cancel
from store.errors import AudiencesError, QueryCancelled
from store.schema.catalog import Catalog
from store.segments.validate import ResolvedSegment
from tui.host import host
from tui.messages import WorkerResult
from tui.widgets.dialog import Dialog
from tui.widgets.footer import AppFooter
from tui.widgets.format import field_label, plural, tone

SAMPLE_SHOWN = 5
QUERY_GROUP = "activation"  # the app's query runner group of the dialog's review or activation


# ------------------------------------------------------------------ app helpers


def profile_reader(node: DOMNode) -> Connection:
    """A fresh read-only connection to the app's profile store (checked), for one worker."""
    return host(node).engine.open_store(readonly=True)


def error_text(exc: BaseException) -> str:
    """A message for a person: engine errors as they are, anything else with its type."""
    if isinstance(exc, AudiencesError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ messages


class ReviewReady(WorkerResult):
    def __init__(self, generation: int, result: Review) -> None:
        super().__init__(generation)
        self.result = result


class SegmentNamed(WorkerResult):
    """The saved segment is read: its name titles the dialog while the review runs on."""

    def __init__(self, generation: int, name: str) -> None:
        super().__init__(generation)
        self.name = name


class ActivationProgress(WorkerResult):
    def __init__(self, generation: int, step: str, fraction: float) -> None:
        super().__init__(generation)
        self.step = step
        self.fraction = fraction


class ActivationDone(WorkerResult):
    def __init__(self, generation: int, result: ActivationResult) -> None:
        super().__init__(generation)
        self.result = result


class ActivationFailed(WorkerResult):
    def __init__(self, generation: int, stage: str, message: str, cancelled: bool = False) -> None:
        super().__init__(generation)
        self.stage = stage
        self.message = message
        self.cancelled = cancelled


# ------------------------------------------------------------------ the modal


def _reach(result: Review) -> Text:
    """Members reachable per consent channel, with their share of the audience."""
    text = Text()
    text.append("Reachable: ", style="bold")
    if not result.reach:
        text.append("no consent attributes in the catalog (a boolean named CHANNEL_opt_in)",
                    style="dim")
        return text
    parts = []
    for channel, n in result.reach.items():
        share = f" ({100 * n / result.count:.0f}%)" if result.count else ""
        parts.append(f"{channel} {n:,}{share}")
    text.append(" · ".join(parts))
    return text


def _samples(label: str, members: Sequence[Member], total: int) -> Text:
    text = Text()
    text.append(f"{label} ({total:,}): ", style="bold")
    if not members:
        text.append("none", style="dim")
        return text
    shown = []
    for member in members[:SAMPLE_SHOWN]:
        extra = next((str(v) for v in member.fields.values() if v not in (None, "")), "")
        shown.append(f"{member.profile_id}" + (f" ({extra})" if extra else ""))
    text.append(", ".join(shown))
    if total > len(shown):
        text.append(", …", style="dim")
    return text


class ActivationScreen(Dialog[ActivationResult | None]):
    """Review a segment's audience against its last activation, then activate it.

    ``segment`` is a saved segment's id, a resolved segment (from the builder),
    or an activated ``Audience`` to refresh with its segment's current saved
    definition (the review says when that changed, and shows both in words).
    The split field divides the members into groups (enter reviews again).
    Dismissed with the ``ActivationResult``, or None.
    """

    HELP_TITLE = "Activate"
    DEFAULT_CSS = """
    ActivationScreen #activation-dialog { width: 90; max-height: 90%; }
    #activation-status { margin-bottom: 1; }
    #activation-summary { margin-bottom: 1; }
    #activation-error { color: $error; margin-bottom: 1; }
    #activation-progress { margin-bottom: 1; }
    #activation-fields, #activation-split { margin-bottom: 0; }
    #activation-fields-hint { color: $text-muted; }
    #activation-split-hint { color: $text-muted; margin-bottom: 1; }
    #activation-buttons { height: auto; align-horizontal: right; }
    #activation-buttons Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "activate", "Activate", id="activation.activate"),
        Binding("ctrl+s", "activate", "Activate", show=False, id="activation.activate_alt"),
        Binding("escape", "close", "Cancel / close", id="activation.close"),
        # a dialog hides the app's keys from the footer: Help and Quit are listed again here
        Binding("f1", "app.help", "Help", id="activation.help"),
        Binding("ctrl+q", "app.quit", "Quit", id="activation.quit"),
    ]

    def __init__(self, segment: str | ResolvedSegment | Audience, *, fields: Sequence[str] | None = None,
                 as_of: dt.datetime | None = None, name: str | None = None) -> None:
        super().__init__()
        self.segment = segment
        self.fields = tuple(fields) if fields else None
        self.as_of = as_of
        self.audience_name = name
        self.review_result: Review | None = None
        self.result: ActivationResult | None = None
        self.trigger = "refresh" if isinstance(segment, Audience) else "activate"
        self.split: SplitSpec | None = None  # None: the audience keeps its split
        self.state = "reviewing"  # reviewing | ready | activating | done | failed
        self.named_later = False  # opened with a segment id: titled by name once the segment is read
        self.generation = 0  # of the latest review or activation; older results are dropped
        self.closing = False  # escape was pressed while something ran

    # -- layout
    def compose(self) -> ComposeResult:
        if isinstance(self.segment, Audience):
            title = f"{self.segment.name} (refresh of audience {self.segment.id})"
        elif isinstance(self.segment, ResolvedSegment):
            title = self.segment.segment.name
        else:
            title = self.audience_name or "the segment"
            self.named_later = self.audience_name is None
        with VerticalScroll(id="activation-dialog", classes="dialog"):  # scrolls on a small terminal
            yield Label(Text(f"Activate {title}"), id="activation-title", classes="title")
            yield Static("Reviewing: finding the members…", id="activation-status")
            yield ProgressBar(total=None, show_eta=False, id="activation-progress")
            yield Static("", id="activation-summary")
            yield Input(placeholder="Fields each member carries, e.g. email, first_name",
                        id="activation-fields")
            yield Static(f"enter: review with these fields (at most {MAX_FIELDS}; empty: the audience's own)",
                         id="activation-fields-hint")
            yield Input(placeholder="Split into groups, e.g. A:45,B:45,holdout:10", id="activation-split")
            yield Static("enter: review with this split (empty: no split) · a group named holdout"
                         " is stored but never delivered to", id="activation-split-hint")
            yield Static("", id="activation-error")
            with Horizontal(id="activation-buttons"):
                yield Button("Activate", id="activate", variant="primary", disabled=True)
                yield Button("Cancel", id="cancel")
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one("#activation-error", Static).display = False
        self.start_review()

    def on_unmount(self) -> None:
        host(self).queries.interrupt(QUERY_GROUP)

    def _next_run(self) -> tuple[int, Cancel]:
        """A generation and a token for a new review or activation (in the UI thread, before
        its worker starts); the previous run, if any, is stopped."""
        self.generation += 1
        return self.generation, host(self).queries.start(QUERY_GROUP)

    @contextlib.contextmanager
    def _connections(self, token: Cancel) -> Iterator[tuple[Connection, Connection]]:
        """The profile store and the campaign store, each interrupted when ``token`` is
        cancelled (escape), closed at the end."""
        with contextlib.ExitStack() as stack:
            conn = profile_reader(self)
            stack.callback(conn.close)
            campaign = open_campaign(host(self).campaign_db_path)
            stack.callback(campaign.close)
            stack.enter_context(token.watching(conn, translate=False))
            stack.enter_context(token.watching(campaign, translate=False))
            yield conn, campaign

    def _resolve(self, conn: Connection, catalog: Catalog) -> ResolvedSegment:
        if isinstance(self.segment, ResolvedSegment):
            return self.segment
        if isinstance(self.segment, Audience):
            return refresh_definition(conn, self.segment, catalog)
        from store.segments.library import resolve_saved

        return resolve_saved(conn, self.segment)

    # -- workers
    def start_review(self) -> None:
        generation, token = self._next_run()
        self.run_review(generation, token, self.as_of or host(self).as_of_instant())

    @work(thread=True, exit_on_error=False, group="activation-review")
    def run_review(self, generation: int, token: Cancel, as_of: dt.datetime) -> None:
        try:
            with self._connections(token) as (conn, campaign):
                catalog = host(self).catalog
                resolved = self._resolve(conn, catalog)
                self.segment = resolved
                self.post_message(SegmentNamed(generation, resolved.segment.name))
                result = review(conn, campaign, resolved, as_of, self.fields, catalog=catalog,
                                progress=self._progress_for(generation), cancel=token,
                                split=self.split)
        except QueryCancelled:
            self.post_message(ActivationFailed(generation, "review", "Review cancelled.",
                                               cancelled=True))
        except Exception as exc:
            if token.cancelled:
                self.post_message(ActivationFailed(generation, "review", "Review cancelled.",
                                                   cancelled=True))
            else:
                self.post_message(ActivationFailed(generation, "review", error_text(exc)))
        else:
            self.post_message(ReviewReady(generation, result))

    def start_activation(self) -> None:
        generation, token = self._next_run()
        reviewed = self.review_result
        as_of = reviewed.as_of if reviewed else (self.as_of or host(self).as_of_instant())
        self.run_activation(generation, token, as_of)

    @work(thread=True, exit_on_error=False, group="activation-write")
    def run_activation(self, generation: int, token: Cancel, as_of: dt.datetime) -> None:
        assert isinstance(self.segment, ResolvedSegment)
        resolved = self.segment
        reviewed = self.review_result
        cancelled = "Activation cancelled; nothing was changed."
        try:
            with self._connections(token) as (conn, campaign):
                fields = reviewed.fields if reviewed is not None else self.fields
                result = activate(conn, campaign, resolved, as_of, fields, catalog=host(self).catalog,
                                  name=self.audience_name, progress=self._progress_for(generation),
                                  cancel=token,
                                  expected=reviewed.count if reviewed is not None else None,
                                  split=reviewed.split if reviewed is not None else self.split,
                                  trigger=self.trigger)
        except QueryCancelled:
            self.post_message(ActivationFailed(generation, "activation", cancelled, cancelled=True))
        except Exception as exc:
            if token.cancelled:
                self.post_message(ActivationFailed(generation, "activation", cancelled, cancelled=True))
            else:
                self.post_message(ActivationFailed(generation, "activation", error_text(exc)))
        else:
            self.post_message(ActivationDone(generation, result))

    def _progress_for(self, generation: int) -> Callable[[str, float], None]:
        def report(step: str, fraction: float) -> None:
            self.post_message(ActivationProgress(generation, step, fraction))

        return report

    # -- message handlers
    @on(ActivationProgress)
    def show_progress(self, message: ActivationProgress) -> None:
        if message.generation != self.generation or self.state not in ("reviewing", "activating"):
            return  # a late report of a finished or cancelled run
        bar = self.query_one("#activation-progress", ProgressBar)
        bar.display = True
        bar.update(total=100, progress=100 * message.fraction)
        prefix = "Reviewing" if self.state == "reviewing" else "Activating"
        self.query_one("#activation-status", Static).update(f"{prefix}: {message.step}…")

    @on(SegmentNamed)
    def show_name(self, message: SegmentNamed) -> None:
        if self.named_later and message.generation == self.generation:
            self.query_one("#activation-title", Label).update(Text(f"Activate {message.name}"))
            self.named_later = False

    @on(ReviewReady)
    def show_review(self, message: ReviewReady) -> None:
        if message.generation != self.generation:
            return  # a review the user has since replaced (a new split or fields)
        result = message.result
        self.review_result = result
        self.state = "ready"
        bar = self.query_one("#activation-progress", ProgressBar)
        bar.update(total=100, progress=0)
        bar.display = False  # nothing runs while the review waits for the user
        if result.previous is None:
            status = f"New audience: {plural(result.count, 'member')} will be activated."
        else:
            status = (f"Refresh of an audience of {result.previous:,}: "
                      f"{plural(result.count, 'member')} after activation.")
        if result.definition_changed:
            status += " The segment's definition changed since the last activation (below)."
        if result.count == 0 and result.previous:
            status += " This empties the audience."
        self.query_one("#activation-status", Static).update(
            Text(status, style=f"bold {tone(self.app, 'warning')}"
                 if result.count == 0 and result.previous else ""))
        summary = Text()
        fields = ", ".join(field_label(host(self).catalog, name) for name in result.fields)
        summary.append(f"As of {result.as_of.strftime('%Y-%m-%d %H:%M:%S')} UTC · fields: "
                       f"{fields or 'none'}\n")
        summary.append(f"+{result.added:,} added   −{result.removed:,} removed   {result.kept:,} kept",
                       style="bold")
        if result.changed:
            summary.append(f"   ({result.changed:,} kept with changed fields)")
        summary.append("\n")
        summary.append_text(_samples("Added", result.samples_added, result.added))
        summary.append("\n")
        summary.append_text(_samples("Removed", result.samples_removed, result.removed))
        summary.append("\n")
        summary.append_text(_samples("Kept", result.samples_kept, result.kept))
        summary.append("\n")
        summary.append_text(_reach(result))
        if result.splits:
            summary.append("\nGroups: ", style="bold")
            summary.append(" · ".join(f"{name} {n:,}" for name, n in result.splits.items()))
        if result.definition_changed:
            catalog = host(self).catalog
            warn = tone(self.app, "warning")
            summary.append("\nDefinition at the last activation:\n", style=f"bold {warn}")
            summary.append("\n".join("  " + line for line in result.previous_words(catalog)))
            summary.append("\nDefinition now (this refresh applies it):\n", style=f"bold {warn}")
            summary.append("\n".join("  " + line for line in result.definition_words(catalog)))
        self.query_one("#activation-summary", Static).update(summary)
        self.query_one("#activation-fields", Input).value = ", ".join(result.fields)
        split_input = self.query_one("#activation-split", Input)
        if result.split.attribute is not None:
            split_input.value = ""
            split_input.placeholder = f"Split by {result.split.attribute}; type shares to split by share"
        else:
            split_input.value = result.split.shares_text()
        button = self.query_one("#activate", Button)
        button.disabled = False
        # the summary is what to read first: on a small terminal the dialog stays at its top
        # (enter still activates) instead of scrolling wherever the layout was when focus moved
        button.focus(scroll_visible=False)
        self.query_one("#activation-dialog", VerticalScroll).scroll_home(animate=False)

    @on(ActivationDone)
    def show_done(self, message: ActivationDone) -> None:
        if message.generation != self.generation:
            return
        result = message.result
        self.result = result
        self.state = "done"
        self.query_one("#activation-progress", ProgressBar).update(total=100, progress=100)
        self.query_one("#activation-status", Static).update(Text(
            f"Activated audience {result.audience_id}: {plural(result.count, 'member')}"
            f" (+{result.added:,} / −{result.removed:,}) in {result.duration_ms:,.0f} ms.",
            style=f"bold {tone(self.app, 'success')}"))
        self.query_one("#activate", Button).display = False
        close = self.query_one("#cancel", Button)
        close.label = "Close"
        close.focus()

    @on(ActivationFailed)
    def show_failure(self, message: ActivationFailed) -> None:
        if message.generation != self.generation:
            return
        if message.cancelled and self.closing:
            if self.is_current:  # escape during the review has already closed it
                self.dismiss(None)
            return
        self.state = "failed" if message.stage == "review" else "ready"
        error = self.query_one("#activation-error", Static)
        error.update(Text(f"{message.stage.capitalize()} failed: {message.message}"))
        error.display = True
        self.query_one("#activation-status", Static).update(
            "Nothing was changed in the campaign store.")
        self.query_one("#activate", Button).disabled = message.stage == "review"
        self.query_one("#cancel", Button).focus()
        host(self).show_error(message.message)

    @on(Input.Submitted, "#activation-split")
    def split_submitted(self, event: Input.Submitted) -> None:
        """Review again with the split typed (an empty field: no split)."""
        if self.state not in ("ready", "failed"):
            return
        error = self.query_one("#activation-error", Static)
        try:
            self.split = parse_split(event.value) if event.value.strip() else SplitSpec()
        except AudiencesError as exc:
            error.update(Text(str(exc)))
            error.display = True
            return
        error.display = False
        self._review_again()

    @on(Input.Submitted, "#activation-fields")
    def fields_submitted(self, event: Input.Submitted) -> None:
        """Review again carrying the fields typed (comma- or space-separated, at most 20)."""
        if self.state not in ("ready", "failed"):
            return
        error = self.query_one("#activation-error", Static)
        names = tuple(dict.fromkeys(name for name in event.value.replace(",", " ").split()))
        if len(names) > MAX_FIELDS:
            error.update(Text(f"At most {MAX_FIELDS} personalisation fields (got {len(names)});"
                              " remove some and press enter again."))
            error.display = True
            return
        error.display = False
        self.fields = names or None
        self._review_again()

    def _review_again(self) -> None:
        self.state = "reviewing"
        self.review_result = None
        self.query_one("#activate", Button).disabled = True
        self.query_one("#activation-status", Static).update("Reviewing: finding the members…")
        self.start_review()

    # -- actions
    @on(Button.Pressed, "#activate")
    def pressed_activate(self) -> None:
        self.action_activate()

    @on(Button.Pressed, "#cancel")
    def pressed_cancel(self) -> None:
        self.action_close()

    def action_activate(self) -> None:
        if self.state != "ready" or self.review_result is None:
            return
        self.state = "activating"
        self.query_one("#activation-error", Static).display = False
        self.query_one("#activate", Button).disabled = True
        self.query_one("#activation-status", Static).update("Activating…")
        self.query_one("#activation-progress", ProgressBar).display = True
        self.start_activation()

    def action_close(self) -> None:
        if self.state in ("reviewing", "activating"):
            self.closing = True
            host(self).queries.interrupt(QUERY_GROUP)
            self.query_one("#activation-status", Static).update("Cancelling…")
            if self.state == "reviewing":
                self.dismiss(None)
            return
        self.dismiss(self.result)


def open_activation(app: App[Any], segment: str | ResolvedSegment | Audience, *,
                    fields: Sequence[str] | None = None,
                    on_done: Callable[[ActivationResult | None], None] | None = None) -> None:
    """Push the activation modal for a saved segment id (or a resolved segment).

    When it closes after a successful activation, a notification says what
    was done; ``on_done`` (if given) receives the result (None if cancelled).
    """

    def finished(result: ActivationResult | None) -> None:
        if result is not None:
            app.notify(f"Audience {result.audience_id} activated: {plural(result.count, 'member')}"
                       f" (+{result.added:,} / −{result.removed:,}).", title="Activated")
        if on_done is not None:
            on_done(result)

    app.push_screen(ActivationScreen(segment, fields=fields), finished)
