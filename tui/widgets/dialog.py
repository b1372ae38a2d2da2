"""The dialog kit: every modal of the app is a ``Dialog`` and draws the same frame.

A dialog is centred over the dimmed screen below it and answers once through
``dismiss``. Its content sits in a container with the class ``dialog`` (a
round border in the primary colour; ``dialog warning`` for a question that
deletes or replaces), a ``title`` label first, ``hint`` lines in the muted
colour and ``buttons`` on the right. ``ConfirmModal`` (a question with a key
per answer) and ``TextPrompt`` (one line of text, checked as it is typed)
are the two dialogs every area uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

ResultType = TypeVar("ResultType")


class Dialog(ModalScreen[ResultType]):
    """A modal centred over the dimmed screen below it, that answers once.

    The dimmed background comes from the app's style sheet (``ModalScreen`` in
    ``tui/app.tcss``): a default style here would lose to its opaque ``Screen``.

    Keys typed quickly are queued for the widget that had the focus when they
    arrived, so a dialog can still receive keys after it has answered (escape
    held down on "Unsaved changes"). The first answer wins: ``dismiss`` does
    nothing afterwards (a second call would pop the screen *below* the
    dialog), and every key that still reaches the dialog is swallowed.

    On a small terminal the app's breakpoints give the dialog the classes
    ``-narrow`` and ``-short`` (``AudiencesApp``), as every screen: its CSS
    tightens the spacing with them.
    """

    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog .dialog {
        width: 72;
        max-width: 95%;
        height: auto;
        max-height: 95%;
        border: round $primary;
        background: $surface;
        padding: 1 2;
    }
    Dialog .dialog.warning { border: round $warning; }
    Dialog .dialog .title { text-style: bold; color: $text; margin-bottom: 1; }
    Dialog .dialog .field-label { color: $text-muted; margin-top: 1; }
    Dialog .dialog .message { width: 1fr; height: auto; margin-bottom: 1; }
    Dialog .dialog .error { color: $error; height: auto; }
    Dialog .dialog .hint { color: $text-muted; height: auto; margin-top: 1; }
    Dialog .dialog .buttons { height: auto; margin-top: 1; align-horizontal: right; }
    Dialog .dialog .buttons Button { margin-left: 1; }
    Dialog.-short .dialog { padding: 0 1; }
    Dialog.-short .dialog .title { margin-bottom: 0; }
    """

    answered = False

    def dismiss(self, result: ResultType | None = None) -> AwaitComplete:
        """Answer ``result`` and close, the first time only (and only from the top)."""
        if self.answered or not self.is_active:
            return AwaitComplete.nothing()
        self.answered = True
        return super().dismiss(result)

    def on_key(self, event: Key) -> None:
        if self.answered:  # keys queued before the dialog closed: they were meant for it
            event.stop()
            event.prevent_default()

    def action_cancel(self) -> None:
        """Escape: close without an answer."""
        self.dismiss(None)


@dataclass(frozen=True)
class Choice:
    """A button of a confirmation: the key that picks it, its label, its variant."""

    key: str
    label: str
    variant: str = "default"


class ConfirmModal(Dialog[str | None]):
    """A question with a few answers, each on a key; returns the answer's key (None: escape).

    ``warning``: the question deletes or replaces something (the frame says so);
    ``focus``: the key of the answer focused first (enter picks it), by default the first.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="confirm_modal.cancel")]

    def __init__(self, title: str, message: str, choices: Sequence[Choice], *,
                 warning: bool = False, focus: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.choices = list(choices)
        self.warning = warning
        self.focus_key = focus or (self.choices[0].key if self.choices else None)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog warning" if self.warning else "dialog"):
            yield Label(self.title_text, classes="title")
            yield Static(self.message, classes="message", markup=False)
            with Horizontal(classes="buttons"):
                for choice in self.choices:
                    key = "esc" if choice.key == "escape" else choice.key
                    yield Button(Text(f"{choice.label} ({key})"), id=f"choice-{choice.key}",
                                 variant=choice.variant)  # type: ignore[arg-type]
            if not any(choice.key == "escape" for choice in self.choices):
                yield Static("escape: cancel", classes="hint")

    def on_key(self, event: Key) -> None:
        if self.answered:
            event.stop()
            event.prevent_default()
            return
        for choice in self.choices:
            if event.key == choice.key:
                event.stop()
                self.dismiss(choice.key)
                return

    def on_mount(self) -> None:
        if self.focus_key is not None:
            self.query_one(f"#choice-{self.focus_key}", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("choice-"))


class TextPrompt(Dialog[str | None]):
    """One line of text (a file path, a name), checked as it is typed; enter submits."""

    AUTO_FOCUS = "#prompt-input"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="text_prompt.cancel")]

    def __init__(self, title: str, value: str = "", *, placeholder: str = "",
                 check: Callable[[str], str | None] | None = None,
                 warn: Callable[[str], str | None] | None = None, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.initial = value
        self.placeholder = placeholder
        self.check = check
        self.warn = warn  # a doubt, not a refusal: the first enter shows it, the second goes on
        self.warned: str | None = None
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Input(self.initial, placeholder=self.placeholder, id="prompt-input")
            yield Static("", classes="error", id="prompt-error", markup=False)
            yield Static(self.hint or "enter: OK · escape: cancel", classes="hint", markup=False)

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        doubt = self.warn(event.value) if self.warn else None
        self.query_one("#prompt-error", Static).update(self.problem(event.value) or doubt or "")

    def problem(self, text: str) -> str | None:
        return self.check(text) if self.check else None

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.problem(event.value)
        if problem:
            self.query_one("#prompt-error", Static).update(problem)
            self.app.bell()
            return
        doubt = self.warn(event.value) if self.warn else None
        if doubt and self.warned != event.value:
            self.warned = event.value
            self.query_one("#prompt-error", Static).update(doubt)
            self.app.bell()
            return
        self.dismiss(event.value)


