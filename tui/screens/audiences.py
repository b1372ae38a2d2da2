"""The Audiences area: activated audiences in the campaign store."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class AudiencesScreen(Screen[None]):
    """Activated audiences with their sizes and history."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Audiences")
        yield Footer()
