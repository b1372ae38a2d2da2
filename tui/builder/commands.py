"""Command palette entries made from a screen's key bindings.

Every key of the builder and the Segments area is also a command (ctrl+p):
the palette lists the bindings active where it was opened (the focused
widget's, then the screen's), with their key, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.binding import ActiveBinding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen


class BindingCommands(Provider):
    """Commands for the bindings of the screen the palette was opened on (not the app's)."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        screen = self.screen
        seen: set[tuple[int, str]] = set()
        found: list[tuple[str, str, Callable[[], object]]] = []
        for active in screen.active_bindings.values():
            if not self.wanted(active, screen):
                continue
            binding = active.binding
            key = (id(active.node), binding.action)
            if key in seen:
                continue
            seen.add(key)
            keys = [self.app.get_key_display(b.binding)
                    for b in screen.active_bindings.values()
                    if b.node is active.node and b.binding.action == binding.action]
            title = f"{binding.description}  ({' / '.join(dict.fromkeys(keys))})"
            help_text = binding.tooltip or binding.description
            found.append((title, help_text, partial(self.app.run_action, binding.action,
                                                    active.node)))
        return found

    @staticmethod
    def wanted(active: ActiveBinding, screen: Screen[object]) -> bool:
        return (active.enabled and bool(active.binding.description)
                and active.node is not screen.app and not active.binding.system)

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
