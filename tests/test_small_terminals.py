"""80x24 and 100x30 on every screen: panels narrow or stack by priority, nothing that matters
is cut (a cut name ends in "…"), numbers stay whole. The snapshots show the looks; these
tests pin the sizes that made the demo trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app_store import AS_OF, build_with_audiences
from tests.test_snapshots_screens import audiences, builder, delivery, profile_view
from tui.app import make_app
from tui.screens.profile_view import WhyTree

SIZES = [(80, 24), (100, 30)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_with_audiences(tmp_path_factory.mktemp("small") / "store.db")


def lines_of(widget: Any) -> list[str]:
    return ["".join(segment.text for segment in widget.render_line(y)).rstrip()
            for y in range(widget.size.height)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_profile_view_keeps_why_and_a_titled_timeline(store: Path,
                                                                size: tuple[int, int]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=size) as pilot:
        await profile_view(pilot)
        screen = app.screen
        why = screen.query_one(WhyTree)
        assert why.display and why.size.width >= 24, why.size
        timeline = screen.query_one("TimelineTable")
        assert timeline.size.height >= 5 and timeline.border_title
        values = screen.query_one("#pv-attribute-list")
        assert any("Smith" in line or "@" in line for line in lines_of(values))
        # a condition longer than the panel ends in "…", never mid-word
        for line in lines_of(why):
            text = line.strip("│ ")
            assert not text or text.endswith(("…", ")", "✓", "✗")) or len(line) < why.size.width


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_audiences_keep_their_numbers_on_a_narrow_terminal(store: Path,
                                                                 size: tuple[int, int]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=size) as pilot:
        await audiences(pilot)
        table = app.screen.query_one("#audiences-table")
        header = lines_of(table)[0]
        assert "Members" in header and "Status" in header, header


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_delivery_body_editor_has_room(store: Path, size: tuple[int, int]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=size) as pilot:
        await delivery(pilot)
        assert app.screen.query_one("#delivery-body").size.width >= 30


@pytest.mark.parametrize("size", [(100, 30), (80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_breakdown_never_cuts_a_count_or_a_share(store: Path,
                                                           size: tuple[int, int]) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=size) as pilot:
        await builder(pilot)
        shown = lines_of(app.screen.preview.query_one("#breakdown"))
        rows = [line for line in shown if line.strip()]
        assert rows
        for line in rows:
            assert line.rstrip().endswith("%"), line
            assert "… …" not in line


async def test_the_breakdown_under_the_sample_is_reached_from_the_keyboard(store: Path) -> None:
    """At 80x24 the sample and the breakdown share a few rows under the tree: their column is
    a tab stop, and its keys scroll the breakdown into view (no mouse needed)."""
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(80, 24)) as pilot:
        await builder(pilot)
        lists = app.screen.preview.query_one("#preview-lists")
        breakdown = app.screen.preview.query_one("#breakdown")
        assert not lists.region.contains_region(breakdown.region)  # below the fold at first
        for _ in range(4):
            if lists.has_focus:
                break
            await pilot.press("tab")
        assert lists.has_focus
        await pilot.press("end")
        await pilot.pause(0.2)
        assert lists.region.contains_region(breakdown.region)


async def test_the_breakdown_column_is_no_tab_stop_beside_the_tree(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 48)) as pilot:
        await builder(pilot)
        assert not app.screen.preview.query_one("#preview-lists").can_focus


async def test_a_store_without_events_shows_no_empty_activity_or_timeline(tmp_path: Path) -> None:
    """An imported table of customers only: the view has no orders, spend or empty timeline,
    and the heading shows the id once."""
    from tests.app_store import settle
    from tests.factory import StoreSpec, build_store
    from tui.screens.profile_view import ProfileViewScreen

    spec = StoreSpec(attributes={"contract": "string", "senior_citizen": "boolean"},
                     profiles=[{"id": str(40 + i), "contract": "Month-to-month",
                                "senior_citizen": i % 2 == 0} for i in range(5)])
    build_store(tmp_path / "telco.db", spec).close()
    app = make_app(tmp_path / "telco.db", as_of=AS_OF)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        app.open_profile(3)
        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen)
                     and app.screen.attributes is not None)
        await pilot.pause(0.2)
        screen = app.screen
        assert not screen.query_one("#pv-summary").display
        assert not screen.query_one("TimelineTable").display
        assert screen.query_one("#pv-explain").size.height >= 10
        heading = str(screen.query_one("#pv-name").render())
        meta = str(screen.query_one("#pv-meta").render())
        assert heading == "42" and "42" not in meta
