"""F6 writes the view on screen as an SVG screenshot and a short Markdown summary into the
report folder, for slides: the builder (the segment in words, its size and share) on every
engine, the overlap matrix, the trend's points, an audience with its groups; a folder that
cannot be written is said in the app, never raised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.campaign.store import find_audience, open_campaign, split_counts
from store.engines.base import engine_for
from store.engines.sqlite import open_store
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.describe import rule_lines
from store.segments.library import resolve_saved
from tests.app_store import AS_OF, build, settle
from tests.test_campaign_app import BIG, open_audiences, shop  # noqa: F401 (fixture)
from tui.app import make_app
from tui.builder.screen import BuilderScreen
from tui.report import markdown_table, slug
from tui.screens.overlap import OverlapScreen
from tui.screens.trend import TrendScreen


@pytest.fixture
def slides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "slides"
    monkeypatch.setenv("AUDIENCES_REPORT_DIR", str(folder))
    return folder


async def report(pilot: Any, folder: Path) -> tuple[str, str, Path]:
    """Press F6 and read what it wrote: (markdown, svg, svg path)."""
    await pilot.press("f6")
    await settle(pilot, lambda: len(list(folder.glob("*.md"))) == 1)
    markdown = next(folder.glob("*.md"))
    svg = markdown.with_suffix(".svg")
    return markdown.read_text(encoding="utf-8"), svg.read_text(encoding="utf-8"), svg


def test_file_names_and_tables() -> None:
    assert slug("Segment: Lapsed VIPs (2026)") == "segment-lapsed-vips-2026"
    assert slug("Ω") == "view"
    assert markdown_table(["", "Size"], [["a|b", "1,000"]]) == [
        "|  | Size |", "| --- | ---: |", "| a\\|b | 1,000 |"]


async def test_the_builder_report_says_the_segment_in_words_with_size_and_share(
        engine_kind: str, fresh_location: Callable[[str], str], slides: Path) -> None:
    location = fresh_location("store")
    build(location)  # type: ignore[arg-type]  (any --db value)
    conn = engine_for(location).open_store(readonly=True)
    try:
        resolved = resolve_saved(conn, "gold-over-30")
        size, total = audience.count(conn, resolved, AS_OF), audience.total(conn)
        words = rule_lines(resolved.segment.rule, Catalog.load(conn))
    finally:
        conn.close()
    assert 0 < size < total
    app = make_app(location, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(BuilderScreen(resolved.segment, saved=True))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen)
                     and app.screen.shown_count is not None)
        markdown, svg, svg_path = await report(pilot, slides)
    assert markdown.startswith("# Segment: Gold members over 30\n")
    assert f"Size: **{size:,}** of {total:,} profiles ({size / total:.1%})" in markdown
    assert all("    " + line in markdown for line in words)
    assert f"![Segment: Gold members over 30]({svg_path.name})" in markdown
    assert svg.startswith("<svg") and "Gold&#160;members&#160;over&#160;30" in svg
    assert svg_path.name.endswith("-segment-gold-members-over-30.svg")


async def test_the_overlap_report_holds_the_matrix(shop: Path, slides: Path) -> None:  # noqa: F811
    conn = open_store(shop, readonly=True)
    try:
        members = {seg: set(audience.member_ids(conn, resolve_saved(conn, seg), AS_OF))
                   for seg in ("gold-over-30", "shoe-buyers")}
    finally:
        conn.close()
    both = len(members["gold-over-30"] & members["shoe-buyers"])
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(OverlapScreen("segments", ["gold-over-30"]))
        await settle(pilot, lambda: isinstance(app.screen, OverlapScreen) and app.screen.ready)
        screen = app.screen
        screen.query_one("#overlap-choices").select("shoe-buyers")
        await settle(pilot, lambda: screen.result is not None and len(screen.result.ids) == 2)
        markdown, _, _ = await report(pilot, slides)
    gold, shoes = len(members["gold-over-30"]), len(members["shoe-buyers"])
    assert markdown.startswith("# Overlap of 2 segments\n")
    assert f"| [1] Gold members over 30 | {gold:,} | — | {both:,} ({both / gold:.0%}) |" in markdown
    assert f"| [2] Shoe buyers | {shoes:,} | {both:,} ({both / shoes:.0%}) | — |" in markdown
    union = len(members["gold-over-30"] | members["shoe-buyers"])
    assert f"In at least one: **{union:,}** profiles of" in markdown


async def test_the_trend_report_lists_each_point(shop: Path, slides: Path) -> None:  # noqa: F811
    conn = open_store(shop, readonly=True)
    try:
        resolved = resolve_saved(conn, "shoe-buyers")
        now = audience.count(conn, resolved, AS_OF)
    finally:
        conn.close()
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        app.push_screen(BuilderScreen(resolved.segment, saved=True))
        await settle(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.resolved is not None)
        await pilot.press("T")
        await settle(pilot, lambda: isinstance(app.screen, TrendScreen) and not app.screen.running)
        points = list(app.screen.points)
        markdown, _, _ = await report(pilot, slides)
    assert markdown.startswith("# Size over time: Shoe buyers\n")
    rows = [line for line in markdown.splitlines() if line.startswith("| 20")]
    assert rows == [f"| {moment:%Y-%m-%d %H:%M} | {size:,} |" for moment, size in points]
    assert rows[-1].endswith(f"| {now:,} |") and len(rows) == 12


async def test_the_audience_report_gives_groups_schedule_and_runs(shop: Path, slides: Path) -> None:  # noqa: F811
    campaign = open_campaign(shop.parent / "campaign.db", readonly=True)
    try:
        split = find_audience(campaign, "shoe-buyers")
        groups = split_counts(campaign, split.id)
    finally:
        campaign.close()
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        screen = await open_audiences(pilot)
        table = screen.query_one("#audiences-table")
        table.move_cursor(row=table.get_row_index(str(split.id)))
        await settle(pilot, lambda: screen.current() is not None and screen.current().id == split.id
                     and bool(screen.history_records) and screen.history_records[0].audience_id == split.id)
        markdown, _, _ = await report(pilot, slides)
    assert markdown.startswith("# Audience: Shoe buyers\n")
    assert f"**{split.member_count:,}** members, active" in markdown
    assert f"| test | {groups['test']:,} |" in markdown
    assert f"| holdout (holdout, never delivered to) | {groups['holdout']:,} |" in markdown
    assert "no schedule" in markdown and "Recent runs:" in markdown
    assert "    Bought" in markdown or "    Purchase" in markdown  # the rule in words


async def test_a_folder_that_cannot_be_written_is_said(shop: Path, tmp_path: Path,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("AUDIENCES_REPORT_DIR", str(blocker / "slides"))
    app = make_app(shop, as_of=AS_OF)
    async with app.run_test(size=BIG) as pilot:
        await pilot.press("f6")
        await settle(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        errors = [str(n.message) for n in app._notifications if n.severity == "error"]
    assert errors and f"Cannot write the report into {blocker / 'slides'}" in errors[0]
    assert blocker.read_text() == "a file where the folder should be"
