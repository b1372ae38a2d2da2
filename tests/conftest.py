"""Shared pytest configuration: the `slow` marker is skipped unless --run-slow is given, and
a test marked ``engines(...)`` is only collected for those engines."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, TextArea

from tests.services.fixtures import engine_kind, fresh_location, postgres_url  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _private_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's data folder (default stores, server stores' campaign stores) is the test run's own."""
    folder = tmp_path_factory.mktemp("user-data")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(autouse=True)
def _private_settings(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps its own settings (column choices): one test's choice never shows up
    in another's screen."""
    monkeypatch.setenv("AUDIENCES_CONFIG_DIR", str(tmp_path_factory.mktemp("settings")))


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool],
                 monkeypatch: pytest.MonkeyPatch) -> Callable[..., bool]:
    """The snapshot plugin's comparison, with what depends on the machine's load held steady:
    every text cursor (a blinking one is caught on or off) and the profile browser's "last
    page took" note (shown behind a dialog when a page was slow)."""
    from tui.screens import profiles

    monkeypatch.setattr(profiles, "SLOW_PAGE_S", float("inf"))

    def compare(app: Any, *, run_before: Callable[[Any], Any] | None = None, **options: Any) -> bool:
        async def ready(pilot: Any) -> None:
            if run_before is not None:
                outcome = run_before(pilot)
                if inspect.isawaitable(outcome):
                    await outcome
            for screen in pilot.app.screen_stack:
                for widget in screen.query("Input, TextArea"):
                    if isinstance(widget, Input | TextArea):
                        widget.cursor_blink = False
            await pilot.pause()

        return snap_compare(app, run_before=ready, **options)

    return compare


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (long fuzz and scale runs)")


# The longest modules start first: the two workers then end together instead of one of them
# running Spark's tests (one xdist group, so one worker) alone at the end.
LONGEST_FIRST = ("test_spark.py", "test_property.py", "test_pql_property.py")


def run_order(item: pytest.Item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=run_order)  # stable: the order within a module is kept
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("engines")
        params = getattr(item, "callspec", None)
        kind = params.params.get("engine_kind") if params is not None else None
        if marker is not None and kind is not None and kind not in marker.args:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
