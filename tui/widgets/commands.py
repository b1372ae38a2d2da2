"""The command palette's view of the keys: every action of the current screen, by name.

Whatever the F1 help lists can be run from ctrl+p by typing part of its
description (except plain cursor and scroll moves, which only the help
lists); the command runs as if its key had been pressed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from tui.widgets.keys import KeyLine, key_lines


class ScreenActionsProvider(Provider):
    """Commands for the actions bound on the focused widget, the screen and the app."""

    def _lines(self) -> list[KeyLine]:
        return [line for line in key_lines(self.screen) if line.enabled and not line.navigation]

    def _title(self, line: KeyLine) -> str:
        return f"{line.section}: {line.description}"

    def _help(self, line: KeyLine) -> str:
        keys = f"key {line.key_text}"
        return escape(f"{line.tooltip} · {keys}" if line.tooltip else keys)

    def _runner(self, line: KeyLine) -> partial[Any]:
        return partial(self.app.run_action, line.action, line.node)

    async def discover(self) -> Hits:
        for line in self._lines():
            yield DiscoveryHit(self._title(line), self._runner(line), help=self._help(line))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for line in self._lines():
            title = self._title(line)
            score = max(matcher.match(title), matcher.match(line.tooltip) * 0.9)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._runner(line), help=self._help(line))
