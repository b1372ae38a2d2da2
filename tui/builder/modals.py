"""The segment's own dialog (name, id, description) and the check for a name in use.

Both the builder and the Segments area save segments through them; the
dialog frame itself is the app's kit (``tui.widgets.dialog``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from store.segments.model import SLUG_RE, slugify
from tui.widgets.dialog import Dialog


def name_in_use(name: str, own_id: str | None, names: dict[str, str]) -> str | None:
    """A warning when another saved segment (by id, in ``names``) already has this name:
    two "Lapsed VIPs" cannot be told apart in the profile view or in Audiences."""
    wanted = " ".join(name.split()).casefold()
    for segment_id, other in names.items():
        if segment_id != own_id and wanted and " ".join(other.split()).casefold() == wanted:
            return (f"{other!r} is already the name of {segment_id!r}; two segments with one"
                    " name cannot be told apart. Press enter again to keep it anyway.")
    return None


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

