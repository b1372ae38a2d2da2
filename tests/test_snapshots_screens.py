"""Snapshots of every screen and the main dialogs at 160x48 and 80x24, in the dark and the
light theme, on a fixed store, as-of date and campaign store.

Every time the screens show is pinned: activation and save stamps are rewritten to fixed
values, the builder's count uses a constant clock, the profile browser's "last page took"
note is off. Update after an intended change of the look with
``pytest tests/test_snapshots_screens.py --snapshot-update`` and look at the SVGs in
``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.app_store import AS_OF, browser_ready, build_with_audiences, settle, table_ready
from tui.app import make_app
from tui.builder.screen import BuilderScreen
from tui.screens.activation import ActivationScreen
from tui.screens.audiences import AudienceMembersScreen, AudiencesScreen
from tui.screens.delivery import DeliveryScreen
from tui.screens.profile_view import ProfileViewScreen
from tui.screens.segments import SegmentsScreen

SIZES = {"160x48": (160, 48), "80x24": (80, 24)}
THEMES = ("dark", "light")

Step = Callable[[Any], Awaitable[None]]


@pytest.fixture(autouse=True)
def fixed_clocks(monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    monkeypatch.chdir(store.parent)  # paths on screen are shown relative to the working folder
    monkeypatch.setattr(BuilderScreen, "clock", staticmethod(lambda: 0.0))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app-test store with two activated audiences and pinned stamps."""
    return build_with_audiences(tmp_path_factory.mktemp("screens") / "store.db")


# ------------------------------------------------------------------ how to reach each screen

async def profile_view(pilot: Any) -> None:
    await browser_ready(pilot)
    pilot.app.open_profile(3, "gold-over-30")
    await settle(pilot, lambda: isinstance(pilot.app.screen, ProfileViewScreen))
    view = pilot.app.screen
    await settle(pilot, lambda: view.attributes is not None and view.explanation is not None)
    await settle(pilot, table_ready(view.query_one("TimelineTable")))
    why = view.query_one("#pv-why")
    await settle(pilot, lambda: why.size.width > 0)  # laid out on a later refresh than it was filled


async def help_screen(pilot: Any) -> None:
    await browser_ready(pilot)
    await pilot.press("f1")
    await pilot.pause(0.2)


async def segments(pilot: Any) -> None:
    await browser_ready(pilot)
    await pilot.press("f3")
    await settle(pilot, lambda: isinstance(pilot.app.screen, SegmentsScreen))
    screen = pilot.app.screen
    await settle(pilot, lambda: screen.table.row_count == 3 and len(screen.counts) == 3)
    await pilot.pause(0.2)


async def builder(pilot: Any) -> None:
    await segments(pilot)
    await pilot.press("enter")  # the first segment by name: Gold members over 30
    await settle(pilot, lambda: isinstance(pilot.app.screen, BuilderScreen))
    screen = pilot.app.screen
    await settle(pilot, lambda: screen.previewed == screen.generation
                 and bool(screen.saved_segments) and all(
                     node.data is not None and not node.data.pending
                     for node in screen.rule_tree.rows.values())
                 and "counting" not in str(screen.preview.query_one("#breakdown").render()))
    await pilot.pause(0.2)


async def condition_editor(pilot: Any) -> None:
    await builder(pilot)
    await pilot.press("down", "enter")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "ConditionEditor")
    await pilot.pause(0.3)


async def event_picker(pilot: Any) -> None:
    await builder(pilot)
    await pilot.press("e")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "FuzzyPicker")
    await pilot.pause(0.3)


async def event_editor(pilot: Any) -> None:
    await event_picker(pilot)
    await pilot.press(*"purchase", "enter")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "EventEditor")
    await pilot.pause(0.3)


async def delete_dialog(pilot: Any) -> None:
    await segments(pilot)
    await pilot.press("d")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmModal")
    await pilot.pause(0.2)


async def audiences(pilot: Any) -> None:
    await browser_ready(pilot)
    await pilot.press("f4")
    await settle(pilot, lambda: isinstance(pilot.app.screen, AudiencesScreen)
                 and pilot.app.screen.loaded)
    await pilot.pause(0.3)


async def members(pilot: Any) -> None:
    await audiences(pilot)
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(pilot.app.screen, AudienceMembersScreen)
                 and bool(pilot.app.screen.members))
    await pilot.pause(0.2)


async def activation(pilot: Any) -> None:
    await browser_ready(pilot)
    pilot.app.action_activate_segment("smiths")
    await settle(pilot, lambda: isinstance(pilot.app.screen, ActivationScreen)
                 and pilot.app.screen.state == "ready")
    await pilot.pause(0.2)


async def delivery(pilot: Any) -> None:
    await audiences(pilot)
    await pilot.press("m")
    await settle(pilot, lambda: isinstance(pilot.app.screen, DeliveryScreen)
                 and pilot.app.screen.last_preview is not None)
    await pilot.pause(0.3)


async def column_picker(pilot: Any) -> None:
    await browser_ready(pilot)
    await pilot.press("c")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "ColumnPicker")
    await pilot.pause(0.2)


async def export_prompt(pilot: Any) -> None:
    await audiences(pilot)
    await pilot.press("e")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "TextPrompt")
    await pilot.pause(0.2)


async def schedule_dialog(pilot: Any) -> None:
    await audiences(pilot)
    await pilot.press("s")
    await settle(pilot, lambda: type(pilot.app.screen).__name__ == "ScheduleScreen")
    await pilot.pause(0.2)


SCREENS: dict[str, Step] = {
    "profiles": browser_ready, "profile-view": profile_view, "help": help_screen,
    "segments": segments, "delete-dialog": delete_dialog, "builder": builder,
    "condition-editor": condition_editor, "event-picker": event_picker,
    "event-editor": event_editor, "audiences": audiences, "members": members,
    "activation": activation, "delivery": delivery, "column-picker": column_picker,
    "export": export_prompt, "schedule": schedule_dialog,
}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare: Any, store: Path, screen: str, size: str, theme: str) -> None:
    app = make_app(store, as_of=AS_OF, theme=theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=SCREENS[screen])
