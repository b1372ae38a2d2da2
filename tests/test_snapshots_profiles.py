"""Snapshots of the profile browser and the profile view on a fixed store, size and as-of date.

Update after an intended change with ``pytest tests/test_snapshots_profiles.py --snapshot-update``
and look at the SVGs in ``tests/__snapshots__/`` before committing them. A page
that happens to load slowly on a busy machine must not change the picture, so
the "last page took" note is switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app_store import AS_OF, browser_ready, build, settle, table_ready
from tui.app import make_app
from tui.screens.profile_view import ProfileViewScreen

SIZE = (130, 36)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("snapshots") / "store.db")


def test_profile_browser(snap_compare: Any, store: Path) -> None:
    assert snap_compare(make_app(store, as_of=AS_OF), terminal_size=SIZE, run_before=browser_ready)


def test_profile_browser_search_in_light_theme(snap_compare: Any, store: Path) -> None:
    async def search(pilot: Any) -> None:
        await browser_ready(pilot)
        await pilot.press("slash", *"smith", "enter")
        await settle(pilot, lambda: pilot.app.screen.search == "smith")
        await browser_ready(pilot)
        await pilot.press("down", "down")

    app = make_app(store, as_of=AS_OF, theme="light")
    assert snap_compare(app, terminal_size=SIZE, run_before=search)


def test_profile_view_with_why(snap_compare: Any, store: Path) -> None:
    async def open_profile(pilot: Any) -> None:
        await browser_ready(pilot)
        pilot.app.open_profile(3, "gold-over-30")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ProfileViewScreen))
        view = pilot.app.screen
        await settle(pilot, lambda: view.attributes is not None and view.explanation is not None)
        await settle(pilot, table_ready(view.query_one("TimelineTable")))

    assert snap_compare(make_app(store, as_of=AS_OF), terminal_size=(150, 44),
                        run_before=open_profile)


def test_help_screen(snap_compare: Any, store: Path) -> None:
    async def help_open(pilot: Any) -> None:
        await browser_ready(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(make_app(store, as_of=AS_OF), terminal_size=SIZE, run_before=help_open)
