"""Hardening: the app in front of an audience: odd key orders, junk typed into every box, edits
spammed while counts run.

``App.run_test`` raises if the app crashes; on top of that every worker that
ends in an error other than a cancellation is recorded and fails the test
(a worker's exception would otherwise only leave a panel saying "counting…"
for ever), every key must be handled within a short time, and every error
the user is shown must be a sentence, not a traceback.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from store.engines.sqlite import open_store
from store.errors import QueryCancelled
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.library import make_lookup
from store.segments.validate import validate_segment
from tests.app_store import AS_OF, build, settle
from tui.app import make_app
from tui.builder.screen import BuilderScreen
from tui.cli import cli
from tui.screens.profiles import ProfilesScreen
from tui.screens.segments import SegmentsScreen
from tui.widgets.queries import is_interrupt

KEY_SECONDS = 3.0  # the longest a single key may take to be handled
NEVER = {"q", "ctrl+q", "ctrl+c"}  # leaving the app ends the test, not a bug
JUNK = [
    "'; DROP TABLE profiles; --", "%", "_", "\\", "%_\\'\"", "💥🎯", "\u202eevil", "ÄÖÜ",
    "x" * 300, "   ", "-1", "1e999", "2026-02-30", "99999999999999999999999", "*", "[", "{", "\t",
    "a:b", "..", "/etc/passwd",
]


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's test store with one activated audience; the working folder is the tmp folder
    (an export typed as a relative path lands there)."""
    db = build(tmp_path / "shop.db")
    segment = tmp_path / "smiths.yaml"
    segment.write_text("id: smiths\nname: The Smiths\nrule:\n  attribute: last_name\n  op: equals\n"
                       "  value: Smith\n")
    result = CliRunner().invoke(cli, ["activate", str(segment), "--db", str(db), "--as-of",
                                      "2025-06-30"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)
    return db


@pytest.fixture()
def worker_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Errors of workers that did not end by being cancelled or interrupted."""
    errors: list[str] = []
    original = Worker._run

    async def recording(self: Worker[Any], app: Any) -> None:
        await original(self, app)
        error = self._error
        if self.state == WorkerState.ERROR and error is not None and not (
                isinstance(error, QueryCancelled) or is_interrupt(error)):
            errors.append(f"{self.name or self.group}: {type(error).__name__}: {error}")

    monkeypatch.setattr(Worker, "_run", recording)
    yield errors


def shown_errors(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications if n.severity == "error"]


def assert_messages_are_sentences(app: Any) -> None:
    for message in shown_errors(app):
        assert "Traceback" not in message and 'File "' not in message, message


async def press_timed(pilot: Any, *keys: str) -> float:
    started = time.monotonic()
    await pilot.press(*keys)
    await pilot.pause()
    return time.monotonic() - started


def focused_box(app: Any) -> Any:
    focused = app.focused
    return focused if isinstance(focused, Input | TextArea) else None


async def random_walk(pilot: Any, app: Any, rng: random.Random, steps: int) -> float:
    """Press keys the footer offers (and typed junk when a box has focus); returns the slowest."""
    slowest = 0.0
    for _ in range(steps):
        if focused_box(app) is not None and rng.random() < 0.7:
            text = rng.choice(JUNK)
            keys = [("space" if c == " " else c) for c in text[:20] if c.isprintable()] or ["x"]
            slowest = max(slowest, await press_timed(pilot, *keys) / len(keys))
            slowest = max(slowest, await press_timed(pilot, rng.choice(["enter", "escape", "tab"])))
            continue
        roll = rng.random()
        if roll < 0.12:
            key = rng.choice(["f2", "f3", "f4"])
        elif roll < 0.22:
            key = rng.choice(["escape", "enter", "down", "up", "tab", "j", "k", "space"])
        else:
            offered = [k for k in app.active_bindings if k not in NEVER]
            key = rng.choice(offered) if offered else "escape"
        slowest = max(slowest, await press_timed(pilot, key))
    return slowest


async def drive_home(pilot: Any, app: Any, area_key: str, screen: type) -> None:
    """Go to an area and back out of whatever is open there (each area keeps its own stack of
    screens); an unsaved builder asks first, and "d" discards."""
    for _ in range(12):
        if isinstance(app.screen, screen):
            return
        if len(app.screen_stack) == 1:  # on an area's own screen: a modal would swallow the key
            await pilot.press(area_key)
            await pilot.pause(0.1)
            continue
        await pilot.press("escape")
        await pilot.pause(0.1)
        if not isinstance(app.screen, screen | BuilderScreen) and isinstance(
                app.screen_stack[-2] if len(app.screen_stack) > 1 else None, BuilderScreen):
            await pilot.press("d")
            await pilot.pause(0.1)
    stack = [type(s).__name__ for s in app.screen_stack]
    assert isinstance(app.screen, screen), f"stuck in {stack}, focus on {app.focused!r}"


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_keys_across_the_areas_never_crash_or_stall(store: Path, seed: int,
                                                                 worker_errors: list[str]) -> None:
    app = make_app(store, as_of=AS_OF)
    rng = random.Random(seed)
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot, lambda: app.profile_total is not None)
        slowest = await random_walk(pilot, app, rng, steps=40)
        assert slowest < KEY_SECONDS, f"a key took {slowest:.1f} s"
        await pilot.pause(0.3)
        # still answering: each area can be driven back to its list
        await drive_home(pilot, app, "f2", ProfilesScreen)
        await drive_home(pilot, app, "f3", SegmentsScreen)
        assert_messages_are_sentences(app)
    assert worker_errors == []
    conn = open_store(store, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 20))
async def test_long_random_key_walks(store: Path, seed: int, worker_errors: list[str]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot, lambda: app.profile_total is not None)
        assert await random_walk(pilot, app, random.Random(seed), steps=200) < KEY_SECONDS
        assert_messages_are_sentences(app)
    assert worker_errors == []


async def test_junk_in_the_profile_search_is_searched_for_as_text(store: Path,
                                                                  worker_errors: list[str]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot, lambda: app.profile_total is not None)
        for text in JUNK[::2]:
            await pilot.press("slash")
            box = focused_box(app)
            assert isinstance(box, Input), app.focused
            box.value = text
            assert await press_timed(pilot, "enter") < KEY_SECONDS
            await pilot.press("escape")
        assert_messages_are_sentences(app)
        assert isinstance(app.screen, ProfilesScreen)
    assert worker_errors == []
    conn = sqlite3.connect(store)
    try:
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 150
    finally:
        conn.close()


async def test_junk_in_every_box_the_segments_area_opens(store: Path, worker_errors: list[str]) -> None:
    """Filter, rename, duplicate, import and export prompts, each fed junk."""
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.pause(0.3)
        for key in ("slash", "r", "c", "i", "x"):
            texts = (JUNK[0], JUNK[4], JUNK[8], JUNK[20])  # JUNK[8]: too long for a file name
            for text in texts:
                await pilot.press(key)
                await pilot.pause(0.1)
                box = focused_box(app)
                if box is None:
                    await pilot.press("escape")
                    continue
                if isinstance(box, Input):
                    box.value = text
                assert await press_timed(pilot, "enter") < KEY_SECONDS
                await pilot.pause(0.1)
                for _ in range(3):
                    if isinstance(app.screen, SegmentsScreen):
                        break
                    await pilot.press("escape")
                    await pilot.pause(0.05)
        assert_messages_are_sentences(app)
    assert worker_errors == []


async def test_spamming_edits_while_counts_run_shows_the_count_of_what_is_on_screen(
        store: Path, worker_errors: list[str]) -> None:
    app = make_app(store, as_of=AS_OF)
    rng = random.Random(7)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen))
        builder = app.screen
        assert isinstance(builder, BuilderScreen)
        slowest = 0.0
        for _ in range(60):  # faster than the debounce: most counts are superseded or cancelled
            slowest = max(slowest, await press_timed(
                pilot, rng.choice(["n", "n", "ctrl+z", "ctrl+y", "w", "t", "down", "up", "c", "p"])))
        assert slowest < KEY_SECONDS
        await settle(pilot, lambda: builder.shown_count is not None and builder._debounce is None,
                     timeout=15)
        await pilot.pause(0.5)
        await settle(pilot, lambda: builder.shown_count is not None, timeout=15)
        conn = open_store(store, readonly=True)
        try:
            resolved = validate_segment(builder.draft.segment, Catalog.load(conn),
                                        lookup=make_lookup(conn))
            wanted = audience.count(conn, resolved, AS_OF)
        finally:
            conn.close()
        assert builder.shown_count == wanted
        assert_messages_are_sentences(app)
        await pilot.press("escape")  # leave without saving: the builder asks, "d" discards
        await pilot.pause(0.2)
        if not isinstance(app.screen, SegmentsScreen):
            await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen), timeout=5)
    assert worker_errors == []





async def test_a_too_long_file_name_in_the_segment_import_prompt_is_refused(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.press("i")
        await pilot.pause(0.1)
        box = focused_box(app)
        assert isinstance(box, Input)
        box.value = "x" * 300
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert_messages_are_sentences(app)


async def test_junk_export_paths_in_the_audiences_area_are_refused_with_a_message(
        store: Path, worker_errors: list[str]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("f4")
        await pilot.pause(0.5)
        for text in ("x" * 300 + ".csv", "/no/such/folder/out.csv", "/", "   ", "ok.csv"):
            await pilot.press("e")
            await pilot.pause(0.1)
            box = focused_box(app)
            assert isinstance(box, Input), app.focused
            box.value = text
            assert await press_timed(pilot, "enter") < KEY_SECONDS
            await pilot.pause(0.2)
            if focused_box(app) is not None:
                await pilot.press("escape")
        await settle(pilot, lambda: len(shown_errors(app)) >= 3, timeout=5)
        assert_messages_are_sentences(app)
    assert worker_errors == []
    assert (Path.cwd() / "ok.csv").read_text().startswith("profile_id")
