"""The Audiences area, the review-and-activate modal and the delivery screen, driven by Pilot."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Static

from store.campaign.activation import activate
from store.campaign.delivery import list_deliveries
from store.campaign.store import find_audience, history, member_ids, open_campaign
from store.engines.sqlite import open_store
from store.segments.library import save_segment
from tests.app_store import settle
from tests.engine_helpers import resolve_rule
from tests.test_activation import AS_OF, below, make_profile_store
from tui.app import make_app
from tui.screens.activation import ActivationScreen, open_activation
from tui.screens.audiences import (
    AudienceMembersScreen,
    AudiencesLoaded,
    AudiencesScreen,
    sizes_caption,
    trend,
)
from tui.screens.delivery import DeliveryScreen
from tui.widgets.chart import SizeChart
from tui.widgets.dialog import ConfirmModal, TextPrompt

SIZE = (130, 40)


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    """A profile store with saved segment 'vips', and audience 'pages' (3 activations) and 'small'."""
    make_profile_store(tmp_path / "shop.db")
    conn = open_store(tmp_path / "shop.db")
    save_segment(conn, resolve_rule(conn, {"attribute": "vip", "op": "is_true"}, "VIPs"))
    save_segment(conn, resolve_rule(conn, below(240), "Pages"))
    campaign = open_campaign(tmp_path / "campaign.db")
    for limit in (100, 240, 240):
        activate(conn, campaign, resolve_rule(conn, below(limit), "Pages"), AS_OF)
    activate(conn, campaign, resolve_rule(conn, below(4), "Small"), AS_OF)
    campaign.close()
    conn.close()
    return tmp_path


def text_of(widget: Static) -> str:
    return str(widget.render())


def shown_text(widget: Any) -> str:
    """What a widget shows on screen, its lines joined with spaces (what a cut line loses is lost)."""
    lines = ["".join(segment.text for segment in widget.render_line(y)).strip()
             for y in range(widget.size.height)]
    return " ".join(line for line in lines if line)


def campaign_reader(shop: Path) -> sqlite3.Connection:
    return open_campaign(shop / "campaign.db", readonly=True)


async def open_area(pilot: Any, app: Any) -> AudiencesScreen:
    await pilot.press("f4")
    await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen) and app.screen.loaded)
    screen = app.screen
    assert isinstance(screen, AudiencesScreen)
    return screen


async def highlight(pilot: Any, screen: AudiencesScreen, segment_id: str) -> None:
    table = screen.query_one("#audiences-table", DataTable)
    target = next(a.id for a in screen.audiences.values() if a.segment_id == segment_id)
    table.move_cursor(row=table.get_row_index(str(target)))
    await settle(pilot, lambda: screen.query_one("#history-table", DataTable).row_count
                 == len(screen.sizes[target]))


def test_trend_text() -> None:
    assert trend([]) == ""
    assert trend([7]) == ""  # one size is no trend
    assert trend([5, 5]) == "██"  # the blocks start at zero: equal sizes are full blocks
    assert trend([90, 100]) == "▇█"  # a small change looks small
    assert trend([0, 0]) == "▁▁"
    assert trend([0, 50, 100]) == "▁▅█"
    assert len(trend(list(range(40)))) == 12


async def test_the_area_lists_audiences_with_sizes_trend_and_history(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        table = screen.query_one("#audiences-table", DataTable)
        assert table.row_count == 2
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        assert [r[7] for r in rows] == ["small", "pages"]
        assert rows[1][2] == "239" and rows[1][3] == "active" and rows[1][5] == "off"
        assert rows[1][6] == trend([99, 239, 239])
        await highlight(pilot, screen, "pages")
        chart = screen.query_one("#sizes", SizeChart)
        await settle(pilot, lambda: [n for _, n in chart.points] == [99, 239, 239])
        history_rows = screen.query_one("#history-table", DataTable)
        newest_first = [[str(c) for c in history_rows.get_row_at(i)] for i in range(3)]
        assert [(r[1], r[2], r[3]) for r in newest_first] == [
            ("239", "+0", "−0"), ("239", "+140", "−0"), ("99", "+99", "−0")]
        assert "Pages · 239 members · active" in text_of(screen.query_one("#detail-title", Static))


async def test_an_empty_campaign_store_says_how_to_start(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db", 5)
    app = make_app(tmp_path / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        assert "No audience activated yet" in text_of(screen.query_one("#audiences-hint", Static))
        await pilot.press("enter", "r", "e", "x", "m")  # nothing to act on: nothing happens
        assert app.screen is screen
    assert not (tmp_path / "campaign.db").exists()


async def test_members_are_paged_with_their_fields(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "pages")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AudienceMembersScreen) and app.screen.members)
        members = app.screen
        assert isinstance(members, AudienceMembersScreen)
        title = members.query_one("#members-title", Static)
        table = members.query_one("#members-table", DataTable)
        assert text_of(title) == "Pages: members 1–100 of 239"
        assert [str(c) for c in table.get_row_at(2)] == ["p0003", "user3@example.com", "Dmitri"]
        assert [str(c) for c in table.get_row_at(4)] == ["p0005", "user5@example.com", "—"]
        for expected in ("101–200", "201–239", "201–239"):
            await pilot.press("n")
            await settle(pilot, lambda e=expected: e in text_of(title))
        assert table.row_count == 39
        await pilot.press("p")
        await settle(pilot, lambda: "101–200" in text_of(title))
        assert str(table.get_row_at(0)[0]) == "p0101"
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)


async def test_export_writes_the_members_to_the_chosen_file(shop: Path) -> None:
    target = shop / "exported.csv"
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "small")
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one("#prompt-input", Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot, target.exists)
    assert target.read_text().splitlines() == [
        "profile_id,email,first_name", "p0001,user1@example.com,Bob",
        "p0002,user2@example.com,Chloé", "p0003,user3@example.com,Dmitri"]


async def test_deactivate_asks_first(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "small")
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await settle(pilot, lambda: app.screen is screen)
        reader = campaign_reader(shop)
        assert find_audience(reader, "small").status == "active"
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await settle(pilot, lambda: find_audience(reader, "small").status == "inactive")
        await settle(pilot, lambda: any(a.status == "inactive" for a in screen.audiences.values()))
        reader.close()


async def test_a_late_older_list_load_is_dropped(shop: Path) -> None:
    """A list read before a write and delivered after the write's own reload must not win."""
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        shown = dict(screen.audiences)
        screen.post_message(AudiencesLoaded(screen.generation - 1, [], {}))
        await pilot.pause()
        await pilot.pause()
        assert screen.audiences.keys() == shown.keys()
        assert screen.query_one("#audiences-table", DataTable).row_count == len(shown)


async def test_refresh_reviews_then_activates(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "small")
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen)
                     and app.screen.state == "ready")
        modal = app.screen
        assert isinstance(modal, ActivationScreen)
        summary = text_of(modal.query_one("#activation-summary", Static))
        assert "+0 added   −0 removed   3 kept" in summary
        assert "Kept (3): p0001 (user1@example.com), p0002" in summary
        assert "Refresh of an audience of 3" in text_of(modal.query_one("#activation-status", Static))
        await pilot.press("a")
        await settle(pilot, lambda: modal.state == "done")
        assert "Activated audience" in text_of(modal.query_one("#activation-status", Static))
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        reader = campaign_reader(shop)
        small = find_audience(reader, "small")
        assert len(history(reader, small.id)) == 2
        reader.close()
        await settle(pilot, lambda: screen.sizes.get(small.id) == [3, 3])


async def test_activation_modal_for_a_saved_segment(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    results: list[Any] = []
    async with app.run_test(size=SIZE) as pilot:
        open_activation(app, "vips", on_done=results.append)
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen)
                     and app.screen.state == "ready")
        modal = app.screen
        assert isinstance(modal, ActivationScreen)
        assert modal.query_one("#activate", Button).disabled is False
        assert "New audience: 80 members will be activated." in text_of(
            modal.query_one("#activation-status", Static))
        assert "Added (80): p0003 (user3@example.com), p0006" in text_of(
            modal.query_one("#activation-summary", Static))
        await pilot.press("a")
        await settle(pilot, lambda: modal.state == "done")
        await pilot.press("escape")
        await settle(pilot, lambda: bool(results))
    assert results[0] is not None and results[0].count == 80
    reader = campaign_reader(shop)
    assert member_ids(reader, results[0].audience_id) == {f"p{i:04d}" for i in range(3, 241, 3)}
    reader.close()


async def test_escape_during_review_cancels_without_writing(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    results: list[Any] = []
    async with app.run_test(size=SIZE) as pilot:
        open_activation(app, "vips", on_done=results.append)
        await pilot.press("escape")
        await settle(pilot, lambda: bool(results))
        await app.workers.wait_for_complete()
    assert results == [None]
    reader = campaign_reader(shop)
    assert [a for a in ("vips",) if reader.execute(
        "SELECT 1 FROM audiences WHERE segment_id = ?", (a,)).fetchone()] == []
    reader.close()


async def test_activation_errors_are_shown_clearly(shop: Path) -> None:
    (shop / "campaign.db").chmod(0o444)
    app = make_app(shop / "shop.db", as_of=AS_OF)
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.push_screen(ActivationScreen("pages"))
            await settle(pilot, lambda: isinstance(app.screen, ActivationScreen)
                         and app.screen.state == "ready")
            modal = app.screen
            assert isinstance(modal, ActivationScreen)
            await pilot.press("a")
            error = modal.query_one("#activation-error", Static)
            await settle(pilot, lambda: error.display)
            assert "Activation failed:" in text_of(error) and "read-only" in text_of(error)
            assert "Nothing was changed" in text_of(modal.query_one("#activation-status", Static))
            assert app.screen is modal  # still open, the user can read and close it
    finally:
        (shop / "campaign.db").chmod(0o644)


async def test_an_unknown_saved_segment_fails_the_review(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ActivationScreen("nope"))
        await settle(pilot, lambda: isinstance(app.screen, ActivationScreen)
                     and app.screen.state == "failed")
        modal = app.screen
        assert "No saved segment 'nope'" in text_of(modal.query_one("#activation-error", Static))
        assert modal.query_one("#activate", Button).disabled


async def test_deliveries_preview_live_and_save(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "small")
        await pilot.press("m")
        await settle(pilot, lambda: isinstance(app.screen, DeliveryScreen))
        delivery = app.screen
        assert isinstance(delivery, DeliveryScreen)
        preview = delivery.query_one("#delivery-preview", Static)
        await settle(pilot, lambda: "p0001" in text_of(preview))
        assert "Subject: Hello Bob" in text_of(preview)
        assert "0 of 3 members lack first_name (has a default)" in text_of(preview)
        delivery.query_one("#delivery-subject", Input).value = "Hi {{ last_name }}"
        await settle(pilot, lambda: "no such field" in text_of(preview))
        delivery.query_one("#delivery-subject", Input).value = "Hi {{ email }}"
        await settle(pilot, lambda: "Subject: Hi user2@example.com" in text_of(preview))
        await pilot.click("#delivery-name")
        await pilot.press(*"Welcome")
        await pilot.press("ctrl+s")
        table = delivery.query_one("#deliveries-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
    reader = campaign_reader(shop)
    saved = list_deliveries(reader)
    assert [(d.name, d.subject) for d in saved] == [("Welcome", "Hi {{ email }}")]
    reader.close()


def test_sizes_caption_draws_a_chart_only_for_a_real_trend() -> None:
    assert sizes_caption([]) == ("No activation recorded yet.", False)
    assert sizes_caption([4]) == ("One activation so far: 4 members.", False)
    assert sizes_caption([1]) == ("One activation so far: 1 member.", False)
    assert sizes_caption([6, 6]) == ("The last 2 activations had the same size: 6 members.", False)
    assert sizes_caption([3, 1]) == ("Size over the last 2 activations: 1 – 3 members", True)


async def test_the_detail_pane_shows_a_chart_only_for_different_sizes(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        chart = screen.query_one("#sizes", SizeChart)
        caption = screen.query_one("#sizes-caption", Static)
        await highlight(pilot, screen, "small")
        assert not chart.display
        assert text_of(caption).startswith("One activation so far: 3 members.")
        assert "Small · 3 members · active" in text_of(screen.query_one("#detail-title", Static))
        await highlight(pilot, screen, "pages")
        assert chart.display
        await settle(pilot, lambda: [n for _, n in chart.points] == [99, 239, 239])
        assert "members" in str(chart.render()) and "0 └" in str(chart.render())
        assert text_of(caption).startswith("Size over the last 3 activations: 99 – 239 members")
        assert "Fields: Email, First name" in text_of(caption)
        assert text_of(screen.query_one("#audiences-hint", Static)).startswith("2 audiences in")


async def test_one_audience_is_one_audience(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db", 20)
    conn = open_store(tmp_path / "shop.db")
    campaign = open_campaign(tmp_path / "campaign.db")
    for _ in range(2):
        activate(conn, campaign, resolve_rule(conn, below(2), "Solo"), AS_OF)
    campaign.close()
    conn.close()
    app = make_app(tmp_path / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        assert text_of(screen.query_one("#audiences-hint", Static)).startswith("1 audience in")
        await settle(pilot, lambda: screen.query_one("#history-table", DataTable).row_count == 2)
        assert not screen.query_one("#sizes", SizeChart).display
        assert text_of(screen.query_one("#sizes-caption", Static)).startswith(
            "The last 2 activations had the same size: 1 member.")
        assert "Solo · 1 member · active" in text_of(screen.query_one("#detail-title", Static))


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_the_deactivate_question_is_shown_whole(shop: Path, width: int) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=(width, 36)) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "pages")
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause()
        question = shown_text(app.screen.query_one(".message"))
        assert question.endswith("Its members are kept; refreshing it activates it again.")
        assert question.startswith("Deactivate audience")
        await pilot.press("n")


async def test_export_asks_before_replacing_a_file(shop: Path) -> None:
    target = shop / "exported.csv"
    target.write_text("keep me\n")
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        await highlight(pilot, screen, "small")
        for answer in ("n", "y"):
            await pilot.press("e")
            await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
            app.screen.query_one("#prompt-input", Input).value = str(target)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
            assert "exists. Replace it?" in shown_text(app.screen.query_one(".message"))
            await pilot.press(answer)
            await settle(pilot, lambda: app.screen is screen)
            if answer == "n":
                await pilot.pause(0.2)
                assert target.read_text() == "keep me\n"
        await settle(pilot, lambda: target.read_text().startswith("profile_id,email,first_name"))


async def test_help_palette_and_footer_speak_the_users_language(shop: Path) -> None:
    from tui.widgets.commands import ScreenActionsProvider
    from tui.widgets.keys import key_lines

    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_area(pilot, app)
        assert screen.title == "Audiences"
        lines = key_lines(screen)
        sections = {line.section for line in lines}
        assert {"Audience list", "Audiences", "Everywhere"} <= sections
        assert not any(name in section for section in sections
                       for name in ("DataTable", "AudiencesScreen"))
        descriptions = {line.description for line in lines}
        assert {"Members", "First", "Last", "Deactivate", "Reload"} <= descriptions
        assert not {"Page Left", "Page Right", "Cursor up", "Home", "End"} & descriptions
        titles = {command.title for command in ScreenActionsProvider(screen).commands()}
        assert "Audience list: Members" in titles and "Audiences: Deactivate" in titles
        assert not {"Audience list: Up", "Audience list: Down", "Audience list: Page up"} & titles
        from tests.test_app_shell import visible_footer_keys

        wanted = {"Members", "Refresh", "Export", "Help", "Quit"}
        await settle(pilot, lambda: wanted <= visible_footer_keys(app))  # laid out after a switch


async def test_home_and_end_in_the_audience_list_and_the_members(shop: Path) -> None:
    app = make_app(shop / "shop.db", as_of=AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_area(pilot, app)
        table = screen.query_one("#audiences-table", DataTable)
        assert app.focused is table
        await pilot.press("end")
        assert table.cursor_row == 1 and table.scroll_x == 0
        await pilot.press("home")
        assert table.cursor_row == 0
        await highlight(pilot, screen, "pages")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, AudienceMembersScreen)
                     and app.screen.members)
        members = app.screen
        assert isinstance(members, AudienceMembersScreen)
        title = members.query_one("#members-title", Static)
        rows = members.query_one("#members-table", DataTable)
        labels = [str(column.label) for column in rows.columns.values()]
        assert labels == ["Profile id", "Email", "First name"]  # the schema's labels
        from tests.test_app_shell import visible_footer_keys

        assert {"Open", "Next page", "Previous page", "Back", "Help", "Quit"} <= visible_footer_keys(app)
        await pilot.press("end")  # the last page: the 100 members that end the audience
        await settle(pilot, lambda: "140–239 of 239" in text_of(title))
        assert rows.cursor_row == rows.row_count - 1 == 99
        assert str(rows.get_row_at(rows.cursor_row)[0]) == "p0239"
        await pilot.press("home")
        await settle(pilot, lambda: "1–100 of 239" in text_of(title))
        assert rows.cursor_row == 0 and str(rows.get_row_at(0)[0]) == "p0001"
        await pilot.press("down", "down", "home")
        assert rows.cursor_row == 0
        await pilot.press("G")
        await settle(pilot, lambda: "140–239 of 239" in text_of(title))
        await pilot.press("p")  # paging back from the last page is keyset paging too
        await settle(pilot, lambda: "40–139 of 239" in text_of(title))
        assert str(rows.get_row_at(0)[0]) == "p0040"
        await pilot.press("end")
        await settle(pilot, lambda: "140–239" in text_of(title) and rows.cursor_row == 99)
        await pilot.press("up", "end")  # on the last page already: only the cursor moves
        assert rows.cursor_row == 99
