"""Campaign programs in the app, driven by Pilot and drawn as snapshots (160x48 and 80x24):
the overlap view (from Segments, the Audiences area and the builder's draft), splits in the
review, schedules, and an audience whose saved segment changed since its last activation.

The store is the deterministic one of ``tests/app_store.py``; activation times and durations
are set to fixed values, and the overlap's timing reads a constant clock, so every run draws
the same screens. Update with ``pytest tests/test_campaign_app.py --snapshot-update`` after a
deliberate change of the look, and look at the SVGs before committing them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label, SelectionList, Static

from store.campaign.activation import activate
from store.campaign.splits import parse_split
from store.campaign.store import find_audience, get_audience, history, open_campaign
from store.engines.cancel import Cancel
from store.engines.sqlite import open_store
from store.errors import QueryCancelled
from store.query import overlap as overlap_module
from store.segments.library import resolve_saved, resolve_segment, save_segment
from store.segments.yamlio import load_segment_text
from tests.app_store import AS_OF, build, profile_row, settle
from tui.app import make_app
from tui.screens import activation as activation_screen
from tui.screens.activation import ActivationScreen
from tui.screens.audiences import AudiencesScreen, ScheduleScreen
from tui.screens.overlap import OverlapScreen, upset_lines, venn_lines

BIG, SMALL = (160, 48), (80, 24)
FIXED = "2025-06-30 12:00:00"


@pytest.fixture(autouse=True)
def constant_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return 0.0

    monkeypatch.setattr(overlap_module, "time", Clock)


def fix_times(campaign_path: Path) -> None:
    with sqlite3.connect(campaign_path) as conn:
        conn.execute("UPDATE audiences SET activated_at = ?, created_at = ?", (FIXED, FIXED))
        conn.execute("UPDATE activations SET activated_at = ?, duration_ms = 42", (FIXED,))


@pytest.fixture()
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app store with 'gold-over-30' activated with a split, and 'smiths' activated, then
    saved again with another definition (so its audience's definition changed)."""
    path = build(tmp_path / "store.db")
    conn = open_store(path)
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        activate(conn, campaign, resolve_saved(conn, "shoe-buyers"), AS_OF,
                 split=parse_split("test:80,holdout:20", "3"))
        activate(conn, campaign, resolve_saved(conn, "smiths"), AS_OF)
        text = ("id: smiths\nname: The Smiths\nrule:\n  attribute: last_name\n  op: in\n"
                "  value: [Smith, Jones]\n")
        segment, lines = load_segment_text(text)
        save_segment(conn, resolve_segment(conn, segment, lines))
    finally:
        campaign.close()
        conn.close()
    fix_times(tmp_path / "campaign.db")
    monkeypatch.chdir(tmp_path)  # the Audiences area names the campaign store relative to it
    return path


def schedule_of(path: Path, segment_id: str) -> str:
    campaign = open_campaign(path, readonly=True)
    try:
        return find_audience(campaign, segment_id).schedule
    finally:
        campaign.close()


async def open_audiences(pilot: Any) -> AudiencesScreen:
    app = pilot.app
    await pilot.press("f4")
    await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen) and app.screen.loaded)
    screen = app.screen
    await settle(pilot, lambda: screen.query_one("#history-table", DataTable).row_count > 0)
    await pilot.pause(0.1)
    return screen


# ------------------------------------------------------------------ pictures


def test_venn_and_upset_pictures() -> None:
    lines = [str(line) for line in venn_lines(("Alpha", "Beta"), 10, 5, 20, 60)]
    text = "\n".join(lines)
    assert "Alpha" in text and "Beta" in text and "both" in text
    assert "10" in text and "5" in text and "20" in text
    import datetime as dt

    from store.query.overlap import Overlap

    result = Overlap(("a", "b", "c"), ("A", "B", "C"), dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 100,
                     (30, 20, 10), ((30, 5, 0), (5, 20, 0), (0, 0, 10)), 55,
                     (((0,), 25), ((1,), 15), ((2,), 10), ((0, 1), 5)))
    rows = [str(line) for line in upset_lines(result, 60)]
    assert rows[1].startswith(" ●  ·  ·") and rows[1].rstrip().endswith("25")
    assert rows[4].startswith(" ●  ●  ·") and rows[4].rstrip().endswith("5")


# ------------------------------------------------------------------ behaviour


async def test_overlap_from_the_segments_area_follows_the_ticks(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        await pilot.press("f3")
        await pilot.pause(0.5)
        app.screen.query_one(DataTable).focus()
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready)
        screen = app.screen
        assert len(screen.picked()) == 1
        await pilot.press("space")
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == 2)
        assert "Venn" in str(screen.query_one("#overlap-picture", Static).render())
        await pilot.press("down", "space")
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == 3)
        result = screen.result
        assert "UpSet" in str(screen.query_one("#overlap-picture", Static).render())
        conn = open_store(shop, readonly=True)
        try:
            from store.query.audience import member_ids

            sets = [set(member_ids(conn, resolve_saved(conn, i), AS_OF)) for i in result.ids]
        finally:
            conn.close()
        assert result.matrix == tuple(tuple(len(a & b) for b in sets) for a in sets)
        assert screen.query_one("#overlap-matrix", DataTable).row_count == 3
        await pilot.press("escape")
        assert not isinstance(app.screen, OverlapScreen)


async def test_overlap_of_the_builders_draft(shop: Path) -> None:
    from tui.builder.screen import BuilderScreen

    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        segment, _ = load_segment_text(
            "id: draft\nname: Draft\nrule:\n  attribute: country\n  op: equals\n  value: US\n")
        app.push_screen(BuilderScreen(segment))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.resolved is not None)
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready)
        screen = app.screen
        assert screen.picked() == ["\x00draft"]
        choices = screen.query_one("#overlap-choices", SelectionList)
        choices.select(choices.get_option_at_index(1).value)  # the first saved segment
        await settle(pilot, lambda: screen.result is not None)
        assert screen.result.ids[0] == "draft" and len(screen.result.ids) == 2


async def test_the_audiences_area_shows_splits_schedules_and_a_changed_definition(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table", DataTable)
        rows = {str(table.get_row_at(i)[7]): [str(c) for c in table.get_row_at(i)]
                for i in range(table.row_count)}
        assert rows["smiths"][3] == "active · definition changed"
        assert rows["shoe-buyers"][3] == "active" and rows["shoe-buyers"][5] == "off"
        table.move_cursor(row=table.get_row_index(str(screen.order[-1].id)))  # shoe-buyers, made first
        await pilot.pause(0.2)
        caption = str(screen.query_one("#sizes-caption", Static).render())
        assert "Groups: test" in caption and "holdout" in caption and "never delivered to" in caption
        # schedule it: s, then pick daily
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ScheduleScreen))
        await pilot.press("down", "down", "enter")
        await settle(pilot, lambda: schedule_of(shop.parent / "campaign.db", "shoe-buyers") == "daily")
        await settle(pilot, lambda: "next 2025-07-01 12:00 (daily)" in str(
            screen.query_one("#sizes-caption", Static).render()))


async def test_refresh_reviews_the_new_definition_in_words_then_applies_it(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table", DataTable)
        smiths = next(a for a in screen.order if a.segment_id == "smiths")
        table.move_cursor(row=table.get_row_index(str(smiths.id)))
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen) and app.screen.state == "ready")
        modal = app.screen
        summary = str(modal.query_one("#activation-summary", Static).render())
        before, _, after = summary.partition("Definition now (this refresh applies it):")
        assert before.rstrip().endswith("Definition at the last activation:\n  Last name is Smith")
        assert after.strip() == "Last name is one of Smith, Jones"
        assert "definition changed" in str(modal.query_one("#activation-status", Static).render())
        # a split typed in the review: enter reviews again with per-group counts
        split = modal.query_one("#activation-split", Input)
        split.focus()
        split.value = "A:50,B:50"
        await pilot.press("enter")
        await settle(pilot, lambda: modal.state == "ready" and modal.review_result is not None
                     and bool(modal.review_result.splits))
        assert "Groups: A" in str(modal.query_one("#activation-summary", Static).render())
        modal.query_one("#activate").focus()
        await pilot.press("a")
        await settle(pilot, lambda: modal.state == "done")
        campaign = open_campaign(shop.parent / "campaign.db", readonly=True)
        try:
            found = find_audience(campaign, "smiths")
            records = history(campaign, found.id)
            assert records[-1].trigger == "refresh" and records[-1].splits is not None
            assert set(records[-1].splits) == {"A", "B"}
        finally:
            campaign.close()
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen) and not screen.states)


async def test_a_bad_split_in_the_review_is_said_and_nothing_changes(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(ActivationScreen("gold-over-30"))
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen) and app.screen.state == "ready")
        modal = app.screen
        split = modal.query_one("#activation-split", Input)
        split.focus()
        split.value = "A:60,B:60"
        await pilot.press("enter")
        await pilot.pause(0.2)
        error = modal.query_one("#activation-error", Static)
        assert error.display and "add up to 120" in str(error.render())
        assert modal.state == "ready"


async def test_a_slow_review_is_titled_by_name_and_escape_stops_it(
        shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened with a saved segment's id, the dialog names the segment as soon as it is read,
    not once the review is done; escape cancels the review's token and closes the dialog."""
    started, stopped = threading.Event(), threading.Event()

    def slow_review(*args: Any, cancel: Cancel, **kwargs: Any) -> Any:
        started.set()
        deadline = time.monotonic() + 20
        while not cancel.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        if cancel.cancelled:
            stopped.set()
        raise QueryCancelled("stopped")

    monkeypatch.setattr(activation_screen, "review", slow_review)
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(ActivationScreen("gold-over-30"))
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen) and started.is_set())
        modal = app.screen
        title = modal.query_one("#activation-title", Label)
        await settle(pilot, lambda: "Gold members over 30" in str(title.render()))
        assert modal.state == "reviewing"
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, ActivationScreen))
        await settle(pilot, stopped.is_set)
    assert get_audience(open_campaign(shop.parent / "campaign.db"), "gold-over-30") is None


async def open_review(pilot: Any, segment_id: str) -> ActivationScreen:
    app = pilot.app
    app.push_screen(ActivationScreen(segment_id))
    await settle(pilot, lambda: isinstance(app.screen, ActivationScreen) and app.screen.state == "ready")
    screen = app.screen
    assert isinstance(screen, ActivationScreen)
    return screen


async def test_fields_typed_in_the_review_are_carried_and_reach_is_counted(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        modal = await open_review(pilot, "gold-over-30")
        fields = modal.query_one("#activation-fields", Input)
        assert fields.value == "email, first_name"
        fields.focus()
        fields.value = "email, last_name, lifetime_value"
        await pilot.press("enter")
        await settle(pilot, lambda: modal.state == "ready" and modal.review_result is not None
                     and modal.review_result.fields == ("email", "last_name", "lifetime_value"))
        reviewed = modal.review_result
        assert reviewed is not None
        summary = str(modal.query_one("#activation-summary", Static).render())
        assert "fields: Email, Last name, Lifetime value" in summary or "lifetime" in summary.lower()
        modal.query_one("#activate").focus()
        await pilot.press("a")
        await settle(pilot, lambda: modal.state == "done")
    campaign = open_campaign(shop.parent / "campaign.db", readonly=True)
    try:
        audience = find_audience(campaign, "gold-over-30")
        assert audience.fields == ("email", "last_name", "lifetime_value")
        rows = campaign.execute("SELECT profile_id, fields FROM audience_members WHERE audience_id = ?",
                                (audience.id,)).fetchall()
    finally:
        campaign.close()
    people = {row["id"]: row for row in (profile_row(int(pid[1:])) for pid, _ in rows)}
    for pid, carried in rows:
        assert json.loads(carried)["last_name"] == people[pid]["last_name"]
    # reach: members whose email_opt_in is true, counted apart from the members' own rows
    opted = sum(1 for row in people.values() if row["email_opt_in"])
    assert reviewed.reach == {"email": opted}
    assert f"Reachable: email {opted:,}" in summary


async def test_more_than_twenty_fields_are_refused_in_the_review(shop: Path) -> None:
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        modal = await open_review(pilot, "gold-over-30")
        before = modal.review_result
        fields = modal.query_one("#activation-fields", Input)
        fields.focus()
        fields.value = ", ".join(f"field{i}" for i in range(21))
        await pilot.press("enter")
        await pilot.pause(0.2)
        error = modal.query_one("#activation-error", Static)
        assert error.display and "At most 20 personalisation fields (got 21)" in str(error.render())
        assert modal.state == "ready" and modal.review_result is before
        # an unknown field is refused by the review with its name
        fields.value = "email, shoe_size"
        await pilot.press("enter")
        await settle(pilot, lambda: modal.state == "failed")
        assert "shoe_size" in str(error.render())


# ------------------------------------------------------------------ snapshots


def audiences_ready(pilot: Any) -> Any:
    return open_audiences(pilot)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_audiences_area(snap_compare: Any, shop: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(shop, as_of=AS_OF), terminal_size=size, run_before=audiences_ready)


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
@pytest.mark.parametrize("ticks", [2, 3], ids=["venn", "upset"])
def test_snapshot_overlap(snap_compare: Any, shop: Path, size: tuple[int, int], ticks: int,
                          theme: str) -> None:
    async def ready(pilot: Any) -> None:
        app = pilot.app
        app.push_screen(OverlapScreen("segments", ["gold-over-30"]))
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready)
        screen = app.screen
        choices = screen.query_one("#overlap-choices", SelectionList)
        for value in ("shoe-buyers", "smiths")[: ticks - 1]:
            choices.select(value)
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == ticks)
        table = screen.query_one("#overlap-matrix", DataTable)

        def laid_out() -> bool:
            # The matrix is laid out on a later refresh than the one that filled it, and under
            # the snapshot harness that refresh sometimes waits for another event: ask for it.
            if table.display and table.row_count == ticks and table.region.height > ticks:
                return True
            table.refresh(layout=True)
            return False

        await settle(pilot, laid_out)
        await pilot.pause(0.1)

    assert snap_compare(make_app(shop, as_of=AS_OF, theme=theme), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_refresh_review_with_a_changed_definition(snap_compare: Any, shop: Path,
                                                           size: tuple[int, int]) -> None:
    async def ready(pilot: Any) -> None:
        app = pilot.app
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table", DataTable)
        smiths = next(a for a in screen.order if a.segment_id == "smiths")
        table.move_cursor(row=table.get_row_index(str(smiths.id)))
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen) and app.screen.state == "ready")
        await pilot.pause(0.1)

    assert snap_compare(make_app(shop, as_of=AS_OF), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_review_with_fields_and_reach(snap_compare: Any, shop: Path, size: tuple[int, int]) -> None:
    async def ready(pilot: Any) -> None:
        await open_review(pilot, "gold-over-30")
        await pilot.pause(0.1)

    assert snap_compare(make_app(shop, as_of=AS_OF), terminal_size=size, run_before=ready)
