"""Snapshots of the code view (YAML and PQL side by side), the event editor ("did not",
distinct orders) and a pasted list of values, at 160x48 and 80x24.

Update with ``pytest tests/test_snapshots_pql.py --snapshot-update`` after a
deliberate change of the look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.events import Paste
from textual.pilot import Pilot

from store.segments.yamlio import load_segment_text
from tests.test_builder import SPEC_EXAMPLE, BuilderApp, make_store
from tests.test_snapshots_builder import everything_counted, then
from tui.builder.screen import BuilderScreen

SIZES = [(160, 48), (80, 24)]


@pytest.fixture(autouse=True)
def constant_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BuilderScreen, "clock", staticmethod(lambda: 0.0))


@pytest.fixture
def example_app(tmp_path: Path) -> BuilderApp:
    path = make_store(tmp_path / "store.db")
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    return BuilderApp(path, lambda: BuilderScreen(segment, saved=True))


async def steady_cursors(pilot: Pilot[Any]) -> None:
    """No blinking cursor in a snapshot: the picture would depend on when it is taken."""
    for widget in pilot.app.screen.query("TextArea, Input"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_code_view_yaml_and_pql(snap_compare: Any, example_app: BuilderApp,
                                size: tuple[int, int]) -> None:
    async def show_code(pilot: Pilot[Any]) -> None:
        await pilot.press("y", "tab")

    assert snap_compare(example_app, terminal_size=size,
                        run_before=then(everything_counted, show_code, steady_cursors))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_event_editor_did_not_and_distinct_orders(snap_compare: Any, example_app: BuilderApp,
                                                   size: tuple[int, int]) -> None:
    """The event editor on the example's purchases: "did not" is a choice of "How often";
    what is counted is a list of the type's fields in words."""
    async def edit_event(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()

    assert snap_compare(example_app, terminal_size=size,
                        run_before=then(everything_counted, edit_event, steady_cursors))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_condition_editor_with_a_pasted_list(snap_compare: Any, example_app: BuilderApp,
                                             size: tuple[int, int]) -> None:
    async def paste_countries(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "enter")  # gender is male
        editor = pilot.app.screen
        editor.query_one("#value").post_message(Paste("male\nfemale\tother\n"))
        await pilot.pause(0.3)

    assert snap_compare(example_app, terminal_size=size,
                        run_before=then(everything_counted, paste_countries, steady_cursors))
