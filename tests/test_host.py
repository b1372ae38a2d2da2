"""Screens reach the app through one typed interface (tui/host.py): the app and the tests'
smaller app both offer it, and a screen under an app that does not says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from tests.test_builder import BuilderApp, make_store
from tui.app import make_app
from tui.builder.screen import BuilderScreen
from tui.host import AppHost, host


def test_the_app_and_the_builder_test_app_are_hosts(tmp_path: Path) -> None:
    path = make_store(tmp_path / "store.db")
    assert isinstance(make_app(path), AppHost)
    assert isinstance(BuilderApp(path, BuilderScreen), AppHost)


async def test_an_app_without_the_services_is_named_with_what_it_lacks() -> None:
    app: App[None] = App()
    async with app.run_test():
        with pytest.raises(TypeError, match=r"App is not an AppHost: it lacks action_activate_segment, "
                                            r"as_of_instant, builder_clipboard, campaign_db_path"):
            host(app.screen)
