"""The Segments area: saved segments and the builder."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class SegmentsScreen(Screen[None]):
    """Saved segments, with their audience sizes; opens the builder."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Segments")
        yield Footer()
