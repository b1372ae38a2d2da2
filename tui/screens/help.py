"""F1 help: every key that works where the user is, one line each, grouped by where it applies."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

from tui.widgets.dialog import Dialog
from tui.widgets.keys import KeyLine, key_lines


def help_table(lines: list[KeyLine]) -> Table:
    """The keys as a table with a heading per section; the last column names each binding
    for the keymap file (keymap.yaml), dimmed."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold", no_wrap=True, min_width=12)
    table.add_column()
    table.add_column(style="dim", no_wrap=True)
    section = None
    for line in lines:
        if line.section != section:
            if section is not None:
                table.add_row("", "", "")
            section = line.section
            table.add_row(Text(section, style="bold underline"), "", "")
        description = Text(line.description)
        if line.tooltip and line.tooltip != line.description:
            description.append(f"  {line.tooltip}", style="dim")
        if not line.enabled:
            description.stylize("dim")
        table.add_row(Text(line.key_text, style="bold"), description, line.id_text)
    return table


class HelpScreen(Dialog[None]):
    """The keys of the focused widget, the screen below and the app."""

    DEFAULT_CSS = """
    HelpScreen #help-box { width: 96; height: 85%; }
    HelpScreen #help-scroll { height: 1fr; scrollbar-size-vertical: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark,q", "close", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.lines = key_lines(screen)
        self.title_text = f"Keys · {screen.title or 'Audiences'}"

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label(self.title_text, classes="title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_table(self.lines), id="help-keys")
            yield Static("esc close · ctrl+p runs any of these by name", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
