"""Snapshots of the builder at a fixed size on the deterministic example store.

The as-of instant is fixed, the member sample is seeded and the count's
timing comes from a constant clock, so every run draws the same screen.
Update with ``pytest tests/test_snapshots_builder.py --snapshot-update``
after a deliberate change of the look.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from store.segments.yamlio import load_segment_text
from tests.test_builder import SPEC_EXAMPLE, BuilderApp, make_store, type_text, wait_for
from tui.builder.screen import BuilderScreen

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def constant_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BuilderScreen, "clock", staticmethod(lambda: 0.0))


@pytest.fixture
def example_app(tmp_path: Path) -> BuilderApp:
    path = make_store(tmp_path / "store.db")
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    return BuilderApp(path, lambda: BuilderScreen(segment, saved=True))


async def everything_counted(pilot: Pilot[Any]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, BuilderScreen)
    await wait_for(pilot, lambda: screen.previewed == screen.generation
                   and bool(screen.saved_segments) and all(
                       node.data is not None and not node.data.pending
                       for node in screen.rule_tree.rows.values()))
    await pilot.pause(0.1)


def then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        for step in steps:
            await step(pilot)
    return run


def test_builder_with_the_example_segment(snap_compare: Any, example_app: BuilderApp) -> None:
    assert snap_compare(example_app, terminal_size=SIZE, run_before=everything_counted)


def test_builder_breakdown_by_country(snap_compare: Any, example_app: BuilderApp) -> None:
    async def breakdown(pilot: Pilot[Any]) -> None:
        await pilot.press("b")
        await type_text(pilot, "country")
        await pilot.press("enter")
        screen = pilot.app.screen
        assert isinstance(screen, BuilderScreen)
        await wait_for(pilot, lambda: "BY COUNTRY" in str(
            screen.preview.query_one("#breakdown-title").render()) and "counting" not in str(
            screen.preview.query_one("#breakdown").render()))

    assert snap_compare(example_app, terminal_size=SIZE,
                        run_before=then(everything_counted, breakdown))


def test_condition_editor_with_an_invalid_value(snap_compare: Any,
                                                example_app: BuilderApp) -> None:
    async def edit_age(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "down", "enter", "ctrl+u")
        await type_text(pilot, "fifty")

    assert snap_compare(example_app, terminal_size=SIZE,
                        run_before=then(everything_counted, edit_age))


def test_event_editor(snap_compare: Any, example_app: BuilderApp) -> None:
    async def edit_event(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "down", "down", "enter")

    assert snap_compare(example_app, terminal_size=SIZE,
                        run_before=then(everything_counted, edit_event))


def test_yaml_view(snap_compare: Any, example_app: BuilderApp) -> None:
    async def show_yaml(pilot: Pilot[Any]) -> None:
        await pilot.press("y")
        for area in pilot.app.screen.query("TextArea"):  # no blink: the picture must not
            area.cursor_blink = False  # type: ignore[attr-defined]  # depend on its timing
        await pilot.pause(0.3)

    assert snap_compare(example_app, terminal_size=SIZE,
                        run_before=then(everything_counted, show_yaml))
