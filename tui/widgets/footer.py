"""The footer of every screen: Help and Quit first, so a narrow terminal cuts the others.

Textual's footer lists the focused widget's keys, then the screen's, then the
app's, and cuts whatever does not fit on the right: at 80 columns that was
F1 Help and q Quit, the two keys a newcomer needs most. Here they lead, and
below ``COMPACT_BELOW`` columns the spacing tightens so more keys fit.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Actions shown first in every footer, in this order.
PINNED_ACTIONS = ("help", "app.help", "quit", "app.quit")
COMPACT_BELOW = 120
# Below this width the area keys (F2-F4) leave the footer; they still work, and F1 lists them.
AREA_KEYS_BELOW = 100


def pinned_rank(widget: object) -> int:
    """Where a footer key goes: the pinned actions first (in their order), the rest after."""
    action = getattr(widget, "action", None) if isinstance(widget, FooterKey) else None
    if action in PINNED_ACTIONS:
        return PINNED_ACTIONS.index(action) // 2
    return len(PINNED_ACTIONS)


def is_area_key(widget: object) -> bool:
    """Whether a footer key switches area (F2-F4)."""
    action = getattr(widget, "action", "") if isinstance(widget, FooterKey) else ""
    return str(action).removeprefix("app.").startswith("area(")


class AppFooter(Footer):
    """A footer that keeps Help and Quit in view at any width."""

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        if self.hides_area_keys():
            keys = [key for key in keys if not is_area_key(key)]
        keys.sort(key=pinned_rank)  # stable: everything else keeps Textual's order
        yield from keys

    def hides_area_keys(self) -> bool:
        return self.app.size.width < AREA_KEYS_BELOW

    def on_mount(self) -> None:
        self.compact = self.app.size.width < COMPACT_BELOW
        self._hiding = self.hides_area_keys()

    def on_resize(self, event: events.Resize) -> None:
        compact = self.app.size.width < COMPACT_BELOW
        if compact != self.compact:
            self.compact = compact
        if self.hides_area_keys() != self._hiding:  # only then: a recompose redraws every key
            self._hiding = self.hides_area_keys()
            self.call_after_refresh(self.recompose)
