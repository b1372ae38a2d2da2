"""The app shell: areas, header, help, palette, themes, errors, quitting, and launching."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from store.errors import QueryCancelled, StoreError
from tests.app_store import AS_OF, PROFILE_COUNT, build, settle, table_ready
from tui import launch
from tui.app import AudiencesApp, make_app
from tui.cli import cli
from tui.screens.audiences import AudiencesScreen
from tui.screens.help import HelpScreen
from tui.screens.profiles import ProfilesScreen
from tui.screens.segments import SegmentsScreen
from tui.widgets.keys import key_lines
from tui.widgets.pickers import ColumnPicker


def visible_footer_keys(app: Any) -> set[str]:
    """The descriptions of the footer keys that are on screen, left of the palette key."""
    from textual.widgets._footer import FooterKey

    keys = list(app.screen.query(FooterKey))
    palette = next((k for k in keys if k.action.endswith("command_palette")), None)
    limit = palette.region.x if palette is not None else app.size.width
    return {k.description for k in keys
            if k is not palette and k.region.width and k.region.right <= limit}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("shell") / "shop.db")


def test_make_app_reads_the_catalog_and_defaults_the_campaign_store(store: Path) -> None:
    app = make_app(store)
    assert isinstance(app, AudiencesApp)
    assert app.db_path == store
    assert app.campaign_db_path == store.with_name("campaign.db")
    assert "age" in app.catalog.attributes
    assert make_app(store, store.with_name("other.db")).campaign_db_path.name == "other.db"


def test_read_connections_are_new_and_read_only(store: Path) -> None:
    app = make_app(store)
    first, second = app.read_connection(), app.read_connection()
    assert first is not second
    assert first.execute("SELECT count(*) FROM profiles").fetchone()[0] == PROFILE_COUNT
    with pytest.raises(sqlite3.OperationalError):
        first.execute("DELETE FROM profiles")
    first.close()
    second.close()


def test_make_app_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("hello, not a database")
    with pytest.raises(StoreError):
        make_app(bogus)


async def test_function_keys_switch_between_the_three_areas(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        assert app.current_mode == "profiles" and isinstance(app.screen, ProfilesScreen)
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        assert app.current_mode == "segments"
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen))
        await pilot.press("f2")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        table = app.screen.query_one("ProfileTable")
        await settle(pilot, table_ready(table))


async def test_header_names_the_store_and_its_size(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: app.profile_total == PROFILE_COUNT)
        assert app.title == "Audiences"
        # A fixed as-of instant is said in the header (tests run at one; the app at --as-of).
        assert app.sub_title == f"shop.db · SQLite · {PROFILE_COUNT} profiles · as of 2025-06-30 23:59 UTC"
        assert "shop.db" in app.format_title(app.title, app.sub_title).plain
    now = make_app(store)
    assert now.as_of_note() == ""
    end_of_day = make_app(store, as_of=dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC))
    assert end_of_day.as_of_note() == " · as of 2026-11-01"


async def test_help_lists_the_keys_of_the_focused_widget_screen_and_app(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        lines = key_lines(app.screen)
        by_description = {line.description: line for line in lines}
        for description in ("Search", "Segment", "Columns", "Sort", "Open", "First", "Help",
                            "Profiles", "Quit"):
            assert description in by_description, description
        assert by_description["First"].section == "Profile list"
        assert by_description["Search"].section == "Profiles"
        assert by_description["Quit"].section == "Everywhere"
        assert len({(line.section, line.action) for line in lines}) == len(lines), "one line each"
        assert "home" in by_description["First"].key_text and "g" in by_description["First"].key_text
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))


async def test_question_mark_types_into_the_search_box(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        await pilot.press("slash", "a", "question_mark", "q")
        assert isinstance(app.screen, ProfilesScreen)
        assert app.screen.query_one("#search").value == "a?q"  # type: ignore[attr-defined]
        assert app.is_running


async def test_command_palette_runs_the_screen_actions(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
        await pilot.press(*"columns")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ColumnPicker))


async def test_ctrl_t_switches_between_light_and_dark(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        assert app.theme == "audiences-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "audiences-light" and not app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.theme == "audiences-dark"
    assert make_app(store, theme="light").theme == "audiences-light"


async def test_show_error_is_a_toast(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        app.show_error("The store is locked.")
        await pilot.pause()
        notes = list(app._notifications)
        assert notes and notes[-1].severity == "error"
        assert notes[-1].message == "The store is locked."
        assert app.is_running


async def test_quit_interrupts_running_queries(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    outcome: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        token = app.queries.start("test:slow")
        started = threading.Event()

        def slow() -> None:
            try:
                with app.queries.connection(token) as conn:
                    started.set()
                    conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
                                 " SELECT count(*) FROM n").fetchone()
                outcome.append("finished")
            except QueryCancelled:
                outcome.append("cancelled")

        worker = threading.Thread(target=slow)
        worker.start()
        assert started.wait(5)
        began = time.perf_counter()
        await pilot.press("q")
        worker.join(5)
        assert outcome == ["cancelled"]
        assert time.perf_counter() - began < 2
    assert not app.is_running
    assert app.return_code == 0


async def test_a_raw_connection_is_interrupted_on_quit(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    outcome: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        conn = app.read_connection()
        started = threading.Event()

        def slow() -> None:
            try:
                started.set()
                conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
                             " SELECT count(*) FROM n").fetchone()
            except sqlite3.OperationalError as exc:
                outcome.append(str(exc))

        worker = threading.Thread(target=slow)
        worker.start()
        assert started.wait(5)
        await pilot.pause(0.1)
        await pilot.press("ctrl+q")
        worker.join(5)
        assert outcome == ["interrupted"]
        conn.close()


# ---------------------------------------------------------------------- launching


def test_a_missing_store_given_with_db_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 1
    assert "No store at" in result.output and "Traceback" not in result.output


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(StoreError, match="not an Audiences store"):
        launch.resolve_store(other)


def test_first_run_creates_the_sample_store_with_progress(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "data" / "audiences.db"
    monkeypatch.setenv("AUDIENCES_DB", str(target))
    monkeypatch.setattr(launch, "SAMPLE_PROFILES", 300)
    console = Console(record=True, width=100, force_terminal=False)
    path = launch.resolve_store(None, console).path
    assert path == target and target.exists()
    text = console.export_text()
    assert "creating a sample store with 300 profiles" in text
    assert "Sample store ready: 300 profiles" in text
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 300
    conn.close()
    # The second run opens it as it is.
    assert launch.resolve_store(None, console).path == target


def test_launch_runs_the_app_on_the_resolved_store(store: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(AudiencesApp, "run", lambda self, **kwargs: ran.append(self.db_path))
    launch.launch_app(store)
    assert ran == [store]


def test_the_command_opens_the_app_at_a_chosen_as_of_instant(store: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``audiences-tui --db PATH --as-of WHEN``: a store sampled weeks ago demos with its
    recent events inside "the last 7 days"; a bad WHEN is one line and exit 2."""
    from click.testing import CliRunner

    from tui.cli import cli

    ran: list[Any] = []
    monkeypatch.setattr(AudiencesApp, "run",
                        lambda self, **kwargs: ran.append((self.db_path, self.as_of_instant())))
    result = CliRunner().invoke(cli, ["--db", str(store), "--as-of", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert ran == [(store, dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=dt.UTC))]
    bad = CliRunner().invoke(cli, ["--db", str(store), "--as-of", "soon"])
    assert bad.exit_code == 2
    assert bad.output.strip() == ("Error: --as-of 'soon' is not a date (YYYY-MM-DD) or an"
                                  " ISO 8601 datetime.")


def test_the_engine_modules_of_the_browser_do_not_load_textual() -> None:
    code = ("import sys, store.query.profiles, store.query.audience, store.query.evaluator; "
            "sys.exit(1 if any(m.split('.')[0] in ('textual', 'tui') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_every_area_and_the_profile_view_have_their_own_title(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        assert app.screen.title == "Profiles"
        header = app.screen.query_one("HeaderTitle")
        await settle(pilot, lambda: str(header.render()).startswith("Profiles"))
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen.title_text == "Keys · Profiles"  # type: ignore[attr-defined]
        await pilot.press("escape", "enter")
        from tui.screens.profile_view import ProfileViewScreen

        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen)
                     and app.screen.attributes is not None)
        assert app.screen.title == "Profile · Ben Jones"
        await pilot.press("escape", "f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        assert app.screen.title == "Segments"
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen))
        assert app.screen.title == "Audiences"


async def test_the_footer_keeps_help_and_quit_at_120_columns(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        for key, area, main in (("f2", ProfilesScreen, {"Search", "Open"}),
                                ("f3", SegmentsScreen, {"Open", "New", "Delete", "Activate"}),
                                ("f4", AudiencesScreen, {"Refresh", "Export"})):
            await pilot.press(key)
            await settle(pilot, lambda a=area: isinstance(app.screen, a))
            await pilot.pause(0.3)
            shown = visible_footer_keys(app)
            assert {"Help", "Quit"} | main <= shown, (area.__name__, shown)
        await pilot.press("f2", "slash", *"ada", "enter")  # esc Clear joins the footer
        await settle(pilot, lambda: app.screen.search == "ada")  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        assert {"Help", "Quit", "Clear", "Search"} <= visible_footer_keys(app)
        await pilot.press("enter")
        from tui.screens.profile_view import ProfileViewScreen

        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen))
        await pilot.pause(0.3)
        assert {"Help", "Quit", "Back", "Why"} <= visible_footer_keys(app)


async def test_the_palette_offers_commands_not_cursor_moves(store: Path) -> None:
    from tui.widgets.commands import ScreenActionsProvider

    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        for key, area in (("f2", ProfilesScreen), ("f3", SegmentsScreen), ("f4", AudiencesScreen)):
            await pilot.press(key)
            await settle(pilot, lambda a=area: isinstance(app.screen, a))
            await pilot.pause(0.3)
            titles = [command.title for command in ScreenActionsProvider(app.screen).commands()]
            assert titles, area
            for title in titles:
                assert not any(word in title for word in (
                    "Cursor", "Page Left", "Page Right", "Scroll", ": Up", ": Down", "DataTable",
                    "Screen:")), title
            helped = {line.section for line in key_lines(app.screen)}
            assert not any(section.endswith(("Screen", "Table")) for section in helped), helped


async def test_light_theme_keeps_the_cursor_row_apart_from_the_header(store: Path) -> None:
    from rich.color import ColorSystem

    app = make_app(store, as_of=AS_OF, theme="light")
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one("ProfileTable")
        await settle(pilot, table_ready(table))

        def background(component: str) -> Any:
            color = (table.rich_style + table.get_component_rich_style(component)).bgcolor
            assert color is not None
            return color

        header, cursor = background("paged-table--header"), background("paged-table--cursor")
        assert header != cursor
        # and still apart where a terminal has only 256 colours (tmux, most SSH sessions)
        assert (header.downgrade(ColorSystem.EIGHT_BIT).number
                != cursor.downgrade(ColorSystem.EIGHT_BIT).number)
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.pause(0.3)
        segments = app.screen.query_one("SegmentTable")
        head = segments.get_component_rich_style("datatable--header").bgcolor
        row = segments.get_component_rich_style("datatable--cursor").bgcolor
        assert head is not None and row is not None
        assert (head.downgrade(ColorSystem.EIGHT_BIT).number
                != row.downgrade(ColorSystem.EIGHT_BIT).number)
