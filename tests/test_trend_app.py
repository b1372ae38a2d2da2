"""The size-over-time chart in the app: the builder's draft (T; with o, the overlap, on every
engine) and an audience (t in the Audiences area), counted point by point in a worker,
stoppable, and drawn from zero; the activation chart of the Audiences area starts at zero too.
Snapshots at 160x48 and 80x24."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, ProgressBar, Static

from store.campaign.activation import resolve_audience
from store.campaign.store import find_audience, open_campaign
from store.engines.sqlite import open_store
from store.query.trend import Span, instants, trend
from store.segments.library import resolve_saved
from store.segments.yamlio import load_segment_text
from tests.app_store import AS_OF, settle
from tests.test_campaign_app import BIG, SMALL, open_audiences, shop  # noqa: F401 (fixture)
from tui.app import make_app
from tui.screens.trend import TrendScreen, change_words
from tui.widgets.chart import SizeChart, chart_text, nice_top

WEEKLY = instants(AS_OF, Span(1, "weeks"), Span(12, "weeks"))


def rows_of(text: str) -> list[str]:
    return text.split("\n")


def test_the_chart_starts_at_zero_with_labelled_axes_and_dates() -> None:
    assert [nice_top(n) for n in (0, 1, 2, 3, 7, 10, 11, 240, 999, 1000, 1001)] == [
        1, 1, 2, 5, 10, 10, 20, 500, 1000, 1000, 2000]
    moments = [dt.datetime(2026, 9, 13) + dt.timedelta(weeks=i) for i in range(4)]
    lines = rows_of(chart_text([90, 95, 100, 0], moments, 60, 11).plain)
    assert lines[0].strip() == "profiles"  # the y axis says what it counts
    assert lines[1].startswith("100 ┤") and lines[5].startswith(" 50 ┤")  # top and half
    assert lines[-2].startswith("  0 └")  # the bars stand on zero
    assert "13 Sep" in lines[-1] and "04 Oct" in lines[-1]  # first and last dates
    # 90 of 100 fills most of the height: a small change does not look like a collapse.
    column = (60 - 5) // 4
    heights = [sum(1 for line in lines[1:-2] if line.ljust(60)[5 + i * column] != " ") for i in range(4)]
    assert heights == [8, 8, 8, 0]
    assert "▁" not in chart_text([1, 1000], moments[:2], 40, 8).plain.split("\n")[1]


def test_a_tiny_audience_still_shows_and_the_change_is_said() -> None:
    moments = [dt.datetime(2026, 1, 1), dt.datetime(2026, 2, 1)]
    text = chart_text([1, 5000], moments, 40, 8).plain
    assert "▁" in rows_of(text)[-3]  # one member is not drawn as nothing
    assert change_words([(moments[0], 80), (moments[1], 100)]) == (
        "From 80 on 2026-01-01 to 100 on 2026-02-01: +20 (+25.0%)")
    assert change_words([(moments[0], 0), (moments[1], 3)]).endswith(": +3")


def expected(path: Path, resolved_of: Any) -> list[int]:
    conn = open_store(path, readonly=True)
    try:
        return [p.count for p in trend(conn, resolved_of(conn), WEEKLY)]
    finally:
        conn.close()


async def test_the_builder_charts_the_drafts_size_over_twelve_weeks(shop: Path) -> None:  # noqa: F811
    from tui.builder.screen import BuilderScreen

    app = make_app(shop, as_of=AS_OF)
    text = ("id: draft\nname: Draft\nrule:\n  event: purchase\n  where:\n"
            "    - attribute: product.category\n      op: equals\n      value: Shoes\n")
    async with app.run_test(size=BIG) as pilot:
        segment, _ = load_segment_text(text)
        app.push_screen(BuilderScreen(segment))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.resolved is not None)
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        screen = app.screen
        assert [m for m, _ in screen.points] == WEEKLY
        assert [n for _, n in screen.points] == expected(shop, lambda c: resolve_saved(c, "shoe-buyers"))
        status = str(screen.query_one("#trend-status", Static).render())
        assert "weekly over 12 weeks" in status and "12 points" in status
        assert not screen.query_one("#trend-progress", ProgressBar).display
        assert "0 └" in str(screen.query_one("#trend-chart", SizeChart).render())
        await pilot.press("m")  # monthly over 12 months
        await settle(pilot, lambda: not screen.running and len(screen.points) == 12)
        assert screen.points[0][0] == AS_OF - dt.timedelta(days=334) or screen.points[-1][0] == AS_OF
        await pilot.press("escape")
        assert isinstance(app.screen, BuilderScreen)


async def test_the_audiences_area_charts_the_audiences_size(shop: Path) -> None:  # noqa: F811
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table", DataTable)
        shoes = next(a for a in screen.order if a.segment_id == "shoe-buyers")
        table.move_cursor(row=table.get_row_index(str(shoes.id)))
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        trend_screen = app.screen
        campaign = open_campaign(shop.parent / "campaign.db", readonly=True)
        audience = find_audience(campaign, "shoe-buyers")
        campaign.close()
        assert [n for _, n in trend_screen.points] == expected(
            shop, lambda c: resolve_audience(c, audience))
        assert "Shoe buyers (audience)" in str(trend_screen.query_one(".area-title", Static).render())


async def test_stopping_keeps_what_was_counted_and_says_so(shop: Path) -> None:  # noqa: F811
    gate = threading.Event()

    def slow(conn: Any, catalog: Any) -> Any:
        gate.wait(10)  # the count has not begun when x is pressed
        return resolve_saved(conn, "shoe-buyers")

    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(TrendScreen("Shoe buyers", slow))
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and app.screen.cancel is not None)
        screen = app.screen
        assert screen.running and screen.query_one("#trend-progress", ProgressBar).display
        await pilot.press("x")
        gate.set()
        await settle(pilot, lambda: not screen.running)
        assert screen.points == []
        assert "Stopped after 0 points" in str(screen.query_one("#trend-status", Static).render())
        await pilot.press("w")  # counts again
        await settle(pilot, lambda: not screen.running and len(screen.points) == 12)


async def test_a_segment_that_cannot_be_read_says_why(shop: Path) -> None:  # noqa: F811
    def gone(conn: Any, catalog: Any) -> Any:
        return resolve_saved(conn, "no-such-segment")

    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(TrendScreen("Gone", gone))
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        status = str(app.screen.query_one("#trend-status", Static).render())
        assert "no-such-segment" in status


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_trend_of_an_audience(snap_compare: Any, shop: Path, size: tuple[int, int],  # noqa: F811
                                       theme: str) -> None:
    async def ready(pilot: Any) -> None:
        app = pilot.app
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table", DataTable)
        shoes = next(a for a in screen.order if a.segment_id == "shoe-buyers")
        table.move_cursor(row=table.get_row_index(str(shoes.id)))
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        await pilot.pause(0.1)

    assert snap_compare(make_app(shop, as_of=AS_OF, theme=theme), terminal_size=size, run_before=ready)


async def test_the_builders_overlap_and_trend_on_every_engine(
        engine_kind: str, fresh_location: Any) -> None:
    """From the builder, o (overlap with saved segments) and T (size over time) show the
    numbers the store's own functions give, on SQLite, DuckDB and PostgreSQL."""
    from textual.widgets import SelectionList

    from store.engines.base import engine_for
    from store.query.overlap import overlap
    from tests.app_store import build
    from tui.builder.screen import BuilderScreen
    from tui.screens.overlap import OverlapScreen

    location = fresh_location("store")
    build(location)
    conn = engine_for(location).open_store(readonly=True)
    try:
        saved = {s: resolve_saved(conn, s) for s in ("shoe-buyers", "smiths", "gold-over-30")}
    finally:
        conn.close()
    app = make_app(location, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(BuilderScreen(saved["shoe-buyers"].segment, saved=True))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen)
                     and app.screen.resolved is not None)
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready)
        screen = app.screen
        assert isinstance(screen, OverlapScreen)
        choices = screen.query_one("#overlap-choices", SelectionList)
        for index in range(choices.option_count):
            if choices.get_option_at_index(index).value in ("smiths", "gold-over-30"):
                choices.select(choices.get_option_at_index(index).value)
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == 3)
        shown = screen.result
        await pilot.press("escape")
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        assert isinstance(app.screen, TrendScreen)
        points = list(app.screen.points)
    assert shown is not None and [m for m, _ in points] == WEEKLY
    conn = engine_for(location).open_store(readonly=True)
    try:
        expected = overlap(conn, [saved.get(i, saved["shoe-buyers"]) for i in shown.ids], AS_OF)
        counts = [p.count for p in trend(conn, saved["shoe-buyers"], WEEKLY)]
    finally:
        conn.close()
    assert shown.matrix == expected.matrix and max(shown.sizes) > 0
    assert [n for _, n in points] == counts and max(counts) > 0
