"""The segment's YAML, to read or to edit by hand, checked before it replaces the draft.

ctrl+s parses the text with the same reader as files and checks every
condition against the schema and every reference against the saved
segments; problems are listed with their YAML line and node path, and the
cursor jumps to the first one. Only a clean definition is applied (as one
undoable step in the builder).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, Static, TextArea

from store.schema.catalog import Catalog
from store.segments.editing import leaf_problems
from store.segments.errors import SegmentError
from store.segments.model import Segment, SegmentRef, walk
from store.segments.yamlio import load_segment_text
from tui.builder.modals import Dialog, modal_css

SOURCE = "YAML"


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The YAML line of ``path`` or of its nearest ancestor that has one."""
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None


def check_yaml(text: str, catalog: Catalog, known_segments: set[str],
               locked_id: str | None = None) -> tuple[Segment | None, list[tuple[int | None, str]]]:
    """The segment the text defines, or the problems as (line, message) pairs."""
    try:
        segment, lines = load_segment_text(text, SOURCE)
    except SegmentError as exc:
        where = f"{exc.path}: " if exc.path else ""
        return None, [(exc.line, where + exc.message)]
    problems: list[tuple[int | None, str]] = []
    if locked_id is not None and segment.id != locked_id:
        problems.append((line_of(lines, "id"),
                         f"id: a saved segment keeps its id {locked_id!r} (other segments refer to"
                         " it); duplicate it in the Segments area to copy it under another id"))
    for problem in leaf_problems(segment.rule, catalog).values():
        problems.append((line_of(lines, problem.path), f"{problem.path}: {problem.message}"))
    for path, node in walk(segment.rule):
        if isinstance(node, SegmentRef) and node.segment not in known_segments:
            problems.append((line_of(lines, path),
                             f"{path}.segment: no saved segment {node.segment!r}"))
    problems.sort(key=lambda item: item[0] or 0)
    return (None if problems else segment), problems


class YamlModal(Dialog[Segment | None]):
    """View and edit the definition as YAML; ctrl+s checks and applies, escape closes."""

    AUTO_FOCUS = "#yaml-text"
    DEFAULT_CSS = modal_css("YamlModal") + """
    YamlModal .dialog { width: 110; height: 90%; }
    YamlModal TextArea { height: 1fr; }
    YamlModal #yaml-problems { height: auto; max-height: 8; color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("ctrl+s", "apply", "Apply", priority=True),
    ]

    def __init__(self, text: str, *, catalog: Catalog, known_segments: set[str],
                 locked_id: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.catalog = catalog
        self.known_segments = known_segments
        self.locked_id = locked_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Segment definition (YAML)", classes="title")
            yield TextArea(self.text, id="yaml-text", show_line_numbers=True, tab_behavior="focus",
                           soft_wrap=False)
            yield Static("", id="yaml-problems")
            yield Static("ctrl+s: check and apply · escape: close without applying", classes="hint")

    def action_apply(self) -> None:
        area = self.query_one(TextArea)
        segment, problems = check_yaml(area.text, self.catalog, self.known_segments,
                                       self.locked_id)
        if segment is None:
            shown = Text()
            for line, message in problems[:8]:
                shown.append(f"line {line}: " if line else "", style="bold")
                shown.append(message + "\n")
            if len(problems) > 8:
                shown.append(f"… and {len(problems) - 8} more")
            self.query_one("#yaml-problems", Static).update(shown)
            first = problems[0][0] if problems else None
            if first:
                area.move_cursor((first - 1, 0))
            self.app.bell()
            return
        self.dismiss(segment)

    def action_cancel(self) -> None:
        self.dismiss(None)
