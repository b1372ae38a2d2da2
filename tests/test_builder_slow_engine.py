"""The builder on a slow engine (a warehouse or a Spark cluster): a count that takes seconds
says for how long it has run, can be stopped with x (inside the engine: its Cancel token),
and the builder keeps answering keys meanwhile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from store.engines.cancel import Cancel
from store.errors import QueryCancelled
from store.query import audience
from tests.test_builder import SIZE, BuilderApp, add_condition, builder, settled, wait_for
from tests.test_builder import store_path as store_path  # the fixture
from tui.builder.screen import BuilderScreen


def count_text(screen: BuilderScreen) -> str:
    return str(screen.preview.query_one("#count-share").render())


async def test_a_slow_count_shows_its_time_and_x_stops_it(store_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        stopped: list[Cancel] = []
        real = audience.node_counts

        def slow_counts(conn: Any, resolved: Any, as_of: Any, catalog: Any, cancel: Cancel,
                        **kwargs: Any) -> Any:
            """An engine that takes as long as it is let: it returns only when cancelled."""
            while not cancel.cancelled:
                time.sleep(0.05)
            stopped.append(cancel)
            raise QueryCancelled("stopped")

        monkeypatch.setattr(audience, "node_counts", slow_counts)
        await add_condition(pilot, "gender", "male")
        await wait_for(pilot, lambda: " s" in count_text(screen) and "x stops it" in count_text(screen))
        # the builder answers keys while the engine works
        tree = screen.rule_tree
        before = tree.cursor_line
        await pilot.press("up")
        assert tree.cursor_line != before
        await pilot.press("x")
        await wait_for(pilot, lambda: bool(stopped))
        assert "count stopped" in count_text(screen) and screen.shown_count is None
        await pilot.pause(1.2)  # no clock ticks on a stopped count
        assert "count stopped" in count_text(screen)
        # x again counts again, on an engine that answers this time
        monkeypatch.setattr(audience, "node_counts", real)
        await pilot.press("x")
        assert await settled(pilot, screen) > 0
        assert "counted in" in str(screen.preview.query_one("#count-status").render())
