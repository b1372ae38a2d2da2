"""Small modal dialogs the builder and the Segments area share: confirm, one-line prompt, save.

Each is a ``ModalScreen`` that returns its answer through ``dismiss``: the
key of the chosen button, the text typed, or the segment's name/id/
description. Every choice has a key; escape always backs out.
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
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from store.segments.model import SLUG_RE, slugify

DIALOG_CSS = """
.dialog {
    width: 72;
    max-width: 95%;
    height: auto;
    max-height: 95%;
    border: round $primary;
    background: $surface;
    padding: 1 2;
}
.dialog .title {
    text-style: bold;
    color: $text;
    margin-bottom: 1;
}
.dialog .field-label {
    color: $text-muted;
    margin-top: 1;
}
.dialog .message {
    margin-bottom: 1;
}
.dialog .error {
    color: $error;
    height: auto;
}
.dialog .hint {
    color: $text-muted;
    margin-top: 1;
}
.dialog .buttons {
    height: auto;
    margin-top: 1;
    align-horizontal: right;
}
.dialog .buttons Button {
    margin-left: 1;
}
"""


def modal_css(screen_class: str) -> str:
    """The shared dialog look, for one modal screen class (screen CSS is scoped by class)."""
    return f"{screen_class} {{ align: center middle; background: $background 60%; }}\n" + DIALOG_CSS


ResultType = TypeVar("ResultType")


def name_in_use(name: str, own_id: str | None, names: dict[str, str]) -> str | None:
    """A warning when another saved segment (by id, in ``names``) already has this name:
    two "Lapsed VIPs" cannot be told apart in the profile view or in Audiences."""
    wanted = " ".join(name.split()).casefold()
    for segment_id, other in names.items():
        if segment_id != own_id and wanted and " ".join(other.split()).casefold() == wanted:
            return (f"{other!r} is already the name of {segment_id!r}; two segments with one"
                    " name cannot be told apart. Press enter again to keep it anyway.")
    return None


class Dialog(ModalScreen[ResultType]):
    """A modal centred over the dimmed screen below it, that answers once.

    The dimmed background is set inline: an app style sheet that gives every
    ``Screen`` an opaque background would otherwise hide the screen below.

    Keys typed quickly are queued for the widget that had the focus when they
    arrived, so a dialog can still receive keys after it has answered (escape
    held down on "Unsaved changes"). The first answer wins: ``dismiss`` does
    nothing afterwards (a second call would pop the screen *below* the
    dialog), and every key that still reaches the dialog is swallowed.

    On a small terminal the dialog gets the classes ``narrow`` (< 100
    columns) and ``short`` (< 30 rows), for tighter spacing.
    """

    answered = False

    def on_mount(self) -> None:
        background = self.app.get_css_variables().get("background", "#000000")
        self.styles.background = Color.parse(background).with_alpha(0.6)
        self.styles.align = ("center", "middle")
        self.fit_terminal()

    def on_resize(self) -> None:
        self.fit_terminal()

    def fit_terminal(self) -> None:
        width, height = self.app.size
        self.set_class(width < 100, "narrow")
        self.set_class(height < 30, "short")

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


@dataclass(frozen=True)
class Choice:
    """A button of a confirmation: the key that picks it, its label, its variant."""

    key: str
    label: str
    variant: str = "default"


class ConfirmModal(Dialog[str | None]):
    """A question with a few answers, each on a key; returns the answer's key (None: escape)."""

    AUTO_FOCUS = "Button"
    DEFAULT_CSS = modal_css("ConfirmModal")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="confirm_modal.cancel")]

    def __init__(self, title: str, message: str, choices: Sequence[Choice]) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
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

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextPrompt(Dialog[str | None]):
    """One line of text (a file path, a name), checked as it is typed; enter submits."""

    AUTO_FOCUS = "#prompt-input"
    DEFAULT_CSS = modal_css("TextPrompt")
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

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    id: str
    description: str


class SegmentInfoModal(Dialog[SegmentInfo | None]):
    """Name, id and description of a segment; the id follows the name until edited.

    ``id_locked``: a saved segment keeps its id (references use it).
    ``taken``: ids already used by other saved segments.
    """

    DEFAULT_CSS = modal_css("SegmentInfoModal")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="segment_info.cancel"),
        Binding("ctrl+s", "submit", "Save", id="segment_info.submit", priority=True),
    ]

    def __init__(self, title: str, info: SegmentInfo, *, id_locked: bool = False,
                 taken: set[str] | None = None, names: dict[str, str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.info = info
        self.id_locked = id_locked
        self.taken = taken or set()
        self.names = names or {}  # saved segments' names by id: a name in use is warned about
        self.warned: str | None = None
        self._id_follows_name = not id_locked and (not info.id or info.id == slugify(info.name))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Label("Name", classes="field-label")
            yield Input(self.info.name, placeholder="e.g. Men over 50 who bought shoes",
                        id="info-name")
            yield Label("Id (how other segments refer to it)", classes="field-label")
            yield Input(self.info.id, id="info-id", disabled=self.id_locked)
            yield Label("Description", classes="field-label")
            yield Input(self.info.description, placeholder="optional", id="info-description")
            yield Static("", classes="error", id="info-error", markup=False)
            yield Static("enter or ctrl+s: save · tab: next field · escape: cancel",
                         classes="hint")

    @on(Input.Changed, "#info-name")
    def name_changed(self, event: Input.Changed) -> None:
        if self._id_follows_name:
            id_input = self.query_one("#info-id", Input)
            id_input.value = slugify(event.value) if event.value.strip() else ""
        self.show_problem()

    @on(Input.Changed, "#info-id")
    def id_changed(self, event: Input.Changed) -> None:
        if self.query_one("#info-id", Input).has_focus:
            self._id_follows_name = False
        self.show_problem()

    def current(self) -> SegmentInfo:
        return SegmentInfo(self.query_one("#info-name", Input).value.strip(),
                           self.query_one("#info-id", Input).value.strip(),
                           self.query_one("#info-description", Input).value.strip())

    def problem(self) -> str | None:
        info = self.current()
        if not info.name:
            return "A segment needs a name."
        if not SLUG_RE.match(info.id):
            return (f"The id must be a lowercase slug (letters, digits, '-' or '_'),"
                    f" e.g. {slugify(info.id or info.name)!r}.")
        if not self.id_locked and info.id in self.taken:
            return f"A saved segment already has the id {info.id!r}; choose another."
        return None

    def doubt(self) -> str | None:
        info = self.current()
        return name_in_use(info.name, info.id if self.id_locked else None, self.names)

    def show_problem(self) -> None:
        self.query_one("#info-error", Static).update(self.problem() or self.doubt() or "")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        problem = self.problem()
        if problem:
            self.query_one("#info-error", Static).update(problem)
            self.app.bell()
            return
        doubt = self.doubt()
        if doubt and self.warned != self.current().name:
            self.warned = self.current().name
            self.query_one("#info-error", Static).update(doubt)
            self.app.bell()
            return
        self.dismiss(self.current())

    def action_cancel(self) -> None:
        self.dismiss(None)
