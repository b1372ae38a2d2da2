"""The code view: the segment as YAML and as PQL side by side, to read, copy or edit by hand.

ctrl+s reads the pane that has the focus with the same reader as files (YAML,
or PQL through the store's XDM names, spec/pql.md) and checks every condition
against the schema and every reference against the saved segments; problems
are listed with their line (and, for PQL, column) and the cursor jumps to the
first one. Only a clean definition is applied (as one undoable step in the
builder): so an AEP definition pasted into the PQL pane becomes an editable
segment. F5 copies the focused pane's text.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static, TextArea

from store.errors import InputError
from store.schema.catalog import Catalog
from store.segments.editing import leaf_problems
from store.segments.errors import SegmentError
from store.segments.model import Segment, SegmentRef, walk
from store.segments.pql_reader import read_pql
from store.segments.pql_writer import write_pql
from store.segments.yamlio import load_segment_text
from tui.widgets.dialog import Choice, ConfirmModal, Dialog

SOURCE = "YAML"
PQL_SOURCE = "PQL"


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
    problems.extend(rule_problems(segment, lines, catalog, known_segments))
    problems.sort(key=lambda item: item[0] or 0)
    return (None if problems else segment), problems


def rule_problems(segment: Segment, lines: dict[str, int], catalog: Catalog,
                  known_segments: set[str]) -> list[tuple[int | None, str]]:
    """Conditions that do not fit the schema and references to no saved segment."""
    problems: list[tuple[int | None, str]] = []
    for problem in leaf_problems(segment.rule, catalog).values():
        problems.append((line_of(lines, problem.path), f"{problem.path}: {problem.message}"))
    for path, node in walk(segment.rule):
        if isinstance(node, SegmentRef) and node.segment not in known_segments:
            problems.append((line_of(lines, path),
                             f"{path}.segment: no saved segment {node.segment!r}"))
    return problems


def check_pql(text: str, catalog: Catalog, known_segments: set[str], draft: Segment
              ) -> tuple[Segment | None, list[tuple[int | None, str]], list[str]]:
    """The draft with the rule the PQL text defines (its id, name and description kept), or the
    problems as (line, message) pairs; and the reader's warnings."""
    try:
        reading = read_pql(text, catalog, source=PQL_SOURCE, segment_id=draft.id,
                           name=draft.name, description=draft.description)
    except SegmentError as exc:
        column = getattr(exc, "column", None)
        where = f"column {column}: " if column else ""
        return None, [(exc.line, where + exc.message)], []
    problems = rule_problems(reading.segment, reading.lines, catalog, known_segments)
    problems.sort(key=lambda item: item[0] or 0)
    return (None if problems else reading.segment), problems, reading.warnings


def pql_text(segment: Segment, catalog: Catalog) -> tuple[str, str]:
    """The segment as PQL, or "" and why PQL cannot say it."""
    if leaf_problems(segment.rule, catalog):
        return "", "PQL is shown once every condition is complete (see the rule tree)."
    try:
        return write_pql(segment, catalog), ""
    except InputError as exc:
        return "", f"No PQL form: {exc}"


class YamlModal(Dialog[Segment | None]):
    """The code view: YAML and PQL side by side; ctrl+s checks and applies the focused pane,
    F5 copies it, tab moves between them, escape closes."""

    AUTO_FOCUS = "#yaml-text"
    DEFAULT_CSS = """
    YamlModal .dialog { width: 156; max-width: 100%; height: 90%; }
    YamlModal #code-panes { height: 1fr; }
    YamlModal .pane { width: 1fr; height: 1fr; }
    YamlModal .pane-title { color: $text-muted; }
    YamlModal TextArea { height: 1fr; }
    YamlModal #pql-note { height: auto; max-height: 4; color: $warning; }
    YamlModal #yaml-problems { height: auto; max-height: 8; color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="yaml_modal.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="yaml_modal.apply", priority=True),
        Binding("f5", "copy", "Copy", id="yaml_modal.copy", priority=True,
                tooltip="Copy the focused pane's text"),
    ]

    def __init__(self, text: str, *, catalog: Catalog, known_segments: set[str],
                 locked_id: str | None = None, segment: Segment | None = None) -> None:
        super().__init__()
        self.text = text
        self.catalog = catalog
        self.known_segments = known_segments
        self.locked_id = locked_id
        self.segment = segment if segment is not None else load_segment_text(text, SOURCE)[0]
        self.pql, self.pql_note = pql_text(self.segment, catalog)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Segment definition: YAML and PQL", classes="title")
            with Horizontal(id="code-panes"):
                with Vertical(classes="pane"):
                    yield Label("YAML", classes="pane-title")
                    yield TextArea(self.text, id="yaml-text", show_line_numbers=True,
                                   tab_behavior="focus", soft_wrap=False)
                with Vertical(classes="pane"):
                    yield Label("PQL (Adobe Experience Platform)", classes="pane-title")
                    yield TextArea(self.pql, id="pql-text", show_line_numbers=True,
                                   tab_behavior="focus", soft_wrap=False)
                    note = Static(self.pql_note, id="pql-note")
                    note.display = bool(self.pql_note)
                    yield note
            yield Static("", id="yaml-problems")
            yield Static("ctrl+s: check and apply the focused pane · F5: copy it · tab: other pane"
                         " · escape: close (asks first if edited)", classes="hint")

    def focused_area(self) -> TextArea:
        focused = self.focused
        if isinstance(focused, TextArea):
            return focused
        return self.query_one("#yaml-text", TextArea)

    def action_copy(self) -> None:
        area = self.focused_area()
        kind = "PQL" if area.id == "pql-text" else "YAML"
        if not area.text.strip():
            self.notify(f"There is no {kind} to copy.", severity="warning")
            return
        self.app.copy_to_clipboard(area.text)
        lines = area.text.count("\n") + (not area.text.endswith("\n"))
        self.notify(f"Copied the {kind} ({lines} line{'s' if lines != 1 else ''}).")

    def action_apply(self) -> None:
        area = self.focused_area()
        warnings: list[str] = []
        if area.id == "pql-text":
            segment, problems, warnings = check_pql(area.text, self.catalog, self.known_segments,
                                                    self.segment)
        else:
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
        for warning in warnings:
            self.app.notify(warning, severity="warning", timeout=8)
        self.dismiss(segment)

    def action_cancel(self) -> None:
        """Close; hand-made edits (in either pane) are not thrown away without asking."""
        yaml_area = self.query_one("#yaml-text", TextArea)
        pql_area = self.query_one("#pql-text", TextArea)
        edited = [area for area, shown in ((yaml_area, self.text), (pql_area, self.pql))
                  if area.text != shown]
        if not edited:
            self.dismiss(None)
            return
        kinds = " and ".join("PQL" if area is pql_area else "YAML" for area in edited)

        def answered(choice: str | None) -> None:
            if choice == "d":
                self.dismiss(None)
            elif choice == "a":
                if self.focused not in edited:
                    edited[0].focus()  # apply what was edited, not the untouched pane
                self.call_after_refresh(self.action_apply)

        self.app.push_screen(ConfirmModal(
            f"Discard the {kinds} edits?", f"The {kinds} was edited and not applied. Apply it,"
            " discard the edits, or keep editing?",
            [Choice("a", "Apply", "primary"), Choice("d", "Discard", "error"),
             Choice("escape", "Keep editing")]), answered)
