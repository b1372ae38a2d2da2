"""The command palette's view of the keys: every action of every area, by name, from anywhere.

Whatever the F1 help lists can be run from ctrl+p by typing part of its
description or of its tooltip (except plain cursor and scroll moves, which
only the help lists); the command runs as if its key had been pressed. The
other areas' actions are listed too ("Segments: New" from the Audiences
area): running one goes to that area first. Each area appears once ("Go to
Segments", from its F-key), and Textual's own entries that repeat a key or
mean nothing to a marketer ("Copy selected text", "Keys") are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from tui.widgets.keys import AREA_LABELS, KeyLine, key_lines

# Actions kept out of the palette: Textual's text selection and widget sizing, which every
# screen has and which are not commands anyone looks for.
PALETTE_NOISE = frozenset({
    "copy_text", "screen.copy_text", "app.copy_text", "minimize", "maximize",
    "screen.minimize", "screen.maximize",
})


@dataclass(frozen=True)
class AreaAction:
    """An action of an area's main screen, offered from any other area."""

    mode: str
    area: str
    binding: Binding


@runtime_checkable
class AreaApp(Protocol):
    """What the palette needs from the app: the actions of the areas not on screen, and how
    to run one there."""

    def area_actions(self) -> list[AreaAction]: ...

    async def run_in_area(self, mode: str, action: str) -> None: ...


def area_title(action: str) -> str | None:
    """``Go to Segments`` for an area key (F2-F4), else None."""
    name = action.removeprefix("app.")
    if name.startswith("area(") and name.endswith(")"):
        mode = name[5:-1].strip("'\"")
        return f"Go to {AREA_LABELS.get(mode, mode.capitalize())}"
    return None


@dataclass(frozen=True)
class Command:
    title: str
    help: str
    tooltip: str
    run: Callable[[], Any]


class ScreenActionsProvider(Provider):
    """Commands for the actions bound here (focused widget, screen, app) and in every area."""

    def _title(self, line: KeyLine) -> str:
        return area_title(line.action) or f"{line.section}: {line.description}"

    def _help(self, tooltip: str, keys: str, where: str = "") -> str:
        text = f"{tooltip} · {keys}" if tooltip else keys
        return escape(f"{text} · {where}" if where else text)

    def commands(self) -> Iterable[Command]:
        seen: set[str] = set()
        for line in key_lines(self.screen):
            if not line.enabled or line.navigation or line.action in PALETTE_NOISE:
                continue
            if line.action.removeprefix("app.") == f"area('{self.app.current_mode}')":
                continue  # "Go to Audiences" while there
            title = self._title(line)
            if title in seen:
                continue
            seen.add(title)
            yield Command(title, self._help(line.tooltip, f"key {line.key_text}"), line.tooltip,
                          partial(self.app.run_action, line.action, line.node))
        app = self.app
        if not isinstance(app, AreaApp):
            return
        for found in app.area_actions():
            binding = found.binding
            title = f"{found.area}: {binding.description}"
            if title in seen:
                continue
            seen.add(title)
            keys = f"key {self.app.get_key_display(binding)} in {found.area}"
            yield Command(title, self._help(binding.tooltip, keys, f"goes to {found.area}"),
                          binding.tooltip, partial(app.run_in_area, found.mode, binding.action))

    async def discover(self) -> Hits:
        for command in self.commands():
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands():
            score = max(matcher.match(command.title), matcher.match(command.tooltip) * 0.9)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
