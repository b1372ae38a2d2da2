"""The profile browser: keyset pages in every order, and the screen that pages through them."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engines.sqlite import connect
from store.query.evaluator import evaluate_all
from store.query.profiles import (
    COUNT_CAP,
    Listing,
    MemberSlice,
    ProfileQuery,
    default_columns,
    escape_like,
    listing_source,
    segment_members,
)
from store.schema.catalog import Catalog
from store.schema.search import searchable_attributes
from store.segments.library import resolve_saved
from tests.app_store import AS_OF, PROFILE_COUNT, build, settle, table_ready
from tests.factory import StoreSpec, build_store
from tui.app import make_app
from tui.screens import profiles as profiles_screen
from tui.screens.profile_view import ProfileViewScreen
from tui.screens.profiles import ProfilesScreen, ProfileTable
from tui.widgets.pickers import ColumnPicker, SegmentPicker, SortChoice, SortPicker

TODAY = AS_OF.date()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("browser") / "store.db")


@pytest.fixture()
def conn(store: Path) -> sqlite3.Connection:
    return connect(store, readonly=True)


@pytest.fixture()
def tiny_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 10 rows in a window of at most 30: few key presses cross many boundaries."""
    monkeypatch.setattr(ProfileTable, "PAGE_SIZE", 10)
    monkeypatch.setattr(ProfileTable, "MAX_ROWS", 30)
    monkeypatch.setattr(ProfileTable, "KEEP_ROWS", 20)
    monkeypatch.setattr(ProfileTable, "EDGE", 3)


@pytest.fixture()
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 20 rows in a window of at most 60, so 150 profiles cross many boundaries."""
    monkeypatch.setattr(ProfileTable, "PAGE_SIZE", 20)
    monkeypatch.setattr(ProfileTable, "MAX_ROWS", 60)
    monkeypatch.setattr(ProfileTable, "KEEP_ROWS", 40)
    monkeypatch.setattr(ProfileTable, "EDGE", 5)


def oracle(conn: sqlite3.Connection, column: str | None, descending: bool) -> list[int]:
    """Every pk in listing order: values in order (ties by pk), missing values last by pk."""
    if column is None:
        return sorted((r[0] for r in conn.execute("SELECT pk FROM profiles")), reverse=descending)
    rows = conn.execute(f'SELECT pk, "{column}" FROM profiles').fetchall()
    present = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]),
                     reverse=descending)
    missing = sorted(r[0] for r in rows if r[1] is None)
    return [r[0] for r in present] + missing


def walk_forward(source: Any, conn: sqlite3.Connection, size: int) -> list[int]:
    found: list[int] = []
    key = None
    while page := source.after(conn, key, size):
        found += [row.pk for row in page]
        key = page[-1].key
    return found


def walk_backward(source: Any, conn: sqlite3.Connection, size: int) -> list[int]:
    found: list[int] = []
    key = None
    while page := source.before(conn, key, size):
        found = [row.pk for row in page] + found
        key = page[0].key
    return found


# ---------------------------------------------------------------------- store level


@pytest.mark.parametrize(("sort", "column", "descending"), [
    (None, None, False), (None, None, True),
    ("email", "email", False), ("email", "email", True),
    ("birth_date", "birth_date", False), ("lifetime_value", "lifetime_value", True),
    ("email_opt_in", "email_opt_in", False),
])
def test_pages_walk_the_whole_order_both_ways(conn: sqlite3.Connection, sort: str | None,
                                              column: str | None, descending: bool) -> None:
    catalog = Catalog.load(conn)
    query = ProfileQuery(catalog, Listing(("id", "email"), sort, descending), TODAY)
    expected = oracle(conn, column, descending)
    assert walk_forward(query, conn, 17) == expected
    assert walk_backward(query, conn, 23) == expected


def test_age_sorts_by_birth_date_reversed_with_missing_last(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    query = ProfileQuery(catalog, Listing(("id", "age"), "age"), TODAY)
    rows = query.after(conn, None, PROFILE_COUNT)
    ages = [row.values[1] for row in rows]
    known = [a for a in ages if a is not None]
    assert known == sorted(known)
    assert ages[len(known):] == [None] * (len(ages) - len(known))
    assert walk_forward(query, conn, 9) == walk_backward(query, conn, 31)


def test_search_matches_every_word_in_names_emails_and_ids(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    names = {a.name for a in searchable_attributes(catalog)}
    assert {"id", "first_name", "last_name", "email"} <= names
    query = ProfileQuery(catalog, Listing(("id", "first_name", "last_name"), search="ada SMITH"),
                         TODAY)
    rows = query.after(conn, None, 500)
    assert rows
    assert all(r.values[1] == "Ada" and r.values[2] == "Smith" for r in rows)
    expected = conn.execute("SELECT count(*) FROM profiles WHERE first_name = 'Ada'"
                            " AND last_name = 'Smith'").fetchone()[0]
    assert query.count(conn) == (expected, False)
    by_id = ProfileQuery(catalog, Listing(("id",), search="P0042"), TODAY).after(conn, None, 5)
    assert [r.values[0] for r in by_id] == ["P0042"]


def test_search_treats_like_wildcards_as_text(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    assert escape_like("50%_off\\") == "50\\%\\_off\\\\"
    assert ProfileQuery(catalog, Listing(("id",), search="%"), TODAY).after(conn, None, 5) == []
    assert ProfileQuery(catalog, Listing(("id",), search="_"), TODAY).count(conn) == (0, False)


def test_count_is_capped_for_broad_searches(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    query = ProfileQuery(catalog, Listing(("id",), search="P0"), TODAY)
    assert query.count(conn, cap=100) == (100, True)
    assert query.count(conn, cap=None) == (PROFILE_COUNT, False)


def test_a_segments_members_are_counted_exactly_however_they_are_sorted(
        conn: sqlite3.Connection) -> None:
    """Sorting a segment's members reads them through the profiles query, not the member
    slice; its count must stay the exact member count, never a capped estimate."""
    catalog = Catalog.load(conn)
    members = list(range(1, COUNT_CAP + 500))
    sorted_members = listing_source(catalog, Listing(("id", "email"), "email"), TODAY, members)
    assert isinstance(sorted_members, ProfileQuery)
    assert sorted_members.count(conn) == (len(members), False)
    searched = listing_source(catalog, Listing(("id",), search="P0"), TODAY, members)
    assert searched.count(conn, cap=100) == (100, True)


def test_segment_members_equal_the_evaluator(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    for segment_id in ("smiths", "shoe-buyers", "gold-over-30"):
        resolved = resolve_saved(conn, segment_id)
        members = segment_members(conn, catalog, resolved, AS_OF)
        assert list(members) == sorted(evaluate_all(conn, resolved, AS_OF, catalog))
        source = listing_source(catalog, Listing(("id",)), TODAY, members)
        assert isinstance(source, MemberSlice)
        assert walk_forward(source, conn, 7) == list(members)
        assert walk_backward(source, conn, 5) == list(members)
        reverse = listing_source(catalog, Listing(("id",), descending=True), TODAY, members)
        assert walk_forward(reverse, conn, 6) == list(members)[::-1]
        sorted_members = listing_source(catalog, Listing(("id", "email"), "email"), TODAY, members)
        member_set = set(members)
        assert walk_forward(sorted_members, conn, 4) == [
            pk for pk in oracle(conn, "email", False) if pk in member_set]


def test_default_columns_lead_with_identity(conn: sqlite3.Connection) -> None:
    columns = default_columns(Catalog.load(conn))
    assert columns[:4] == ["id", "first_name", "last_name", "email"]
    assert "birth_date" not in columns  # age (derived from it) says more


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=0, max_size=40),
       size=st.integers(1, 7), descending=st.booleans())
def test_keyset_order_with_ties_and_missing_values(tmp_path_factory: pytest.TempPathFactory,
                                                   values: list[int | None], size: int,
                                                   descending: bool) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.db"
    conn = build_store(path, StoreSpec(attributes={"score": "integer"},
                                       profiles=[{"id": f"x{i}", "score": v}
                                                 for i, v in enumerate(values)]))
    catalog = Catalog.load(conn)
    query = ProfileQuery(catalog, Listing(("id", "score"), "score", descending), TODAY)
    expected = oracle(conn, "score", descending)
    assert walk_forward(query, conn, size) == expected
    assert walk_backward(query, conn, size) == expected
    conn.close()


# ---------------------------------------------------------------------- the screen


def screen_of(app: Any) -> ProfilesScreen:
    screen = app.screen
    assert isinstance(screen, ProfilesScreen)
    return screen


def status(app: Any) -> str:
    return str(app.screen.query_one("#count").render())


def assert_contiguous(table: Any) -> None:
    """The window is an unbroken run of the listing: in order, no gap, no duplicate."""
    pks = [row.pk for row in table.window]
    assert pks == list(range(pks[0], pks[0] + len(pks)))
    assert table.row_count == len(pks) <= table._limits()[0]


async def test_cursor_pages_down_and_up_across_page_boundaries(store: Path, tiny_pages: None) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        table = screen_of(app).table
        await settle(pilot, table_ready(table))
        assert table.window[0].pk == 1 and table.more_after
        for expected_pk in range(2, 66):
            await pilot.press("down")
            await settle(pilot, lambda pk=expected_pk: table.current is not None
                         and table.current.pk == pk)
            assert_contiguous(table)
        assert table.more_before, "the first pages were dropped from the window"
        await pilot.press("end")
        await settle(pilot, lambda: table.current is not None and table.current.pk == PROFILE_COUNT)
        for expected_pk in range(PROFILE_COUNT - 1, PROFILE_COUNT - 66, -1):
            await pilot.press("k")
            await settle(pilot, lambda pk=expected_pk: table.current is not None
                         and table.current.pk == pk)
            assert_contiguous(table)
        assert table.more_after, "the last pages were dropped from the window"


async def test_home_and_end_jump_to_the_first_and_last_profile(store: Path,
                                                               small_pages: None) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        table = screen_of(app).table
        await settle(pilot, table_ready(table))
        await pilot.press("end")
        await settle(pilot, lambda: table.current is not None and table.current.pk == PROFILE_COUNT)
        assert table.cursor_row == len(table.window) - 1
        assert table.more_before and not table.more_after
        await pilot.press("up", "up")
        await settle(pilot, lambda: table.current is not None
                     and table.current.pk == PROFILE_COUNT - 2)
        await pilot.press("home")
        await settle(pilot, lambda: table.current is not None and table.current.pk == 1)
        assert not table.more_before
        await pilot.press("G")
        await settle(pilot, lambda: table.current is not None and table.current.pk == PROFILE_COUNT)
        await pilot.press("g")
        await settle(pilot, lambda: table.current is not None and table.current.pk == 1)


async def test_count_line_and_header_show_totals(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: status(app) == f"{PROFILE_COUNT} profiles")
        await settle(pilot, lambda: app.profile_total == PROFILE_COUNT)
        assert app.sub_title.startswith(f"store.db · SQLite · {PROFILE_COUNT} profiles · as of ")


async def test_search_shows_only_matches_with_their_count(store: Path, conn: sqlite3.Connection,
                                                          small_pages: None) -> None:
    expected = [r[0] for r in conn.execute(
        "SELECT pk FROM profiles WHERE last_name = 'Smith' ORDER BY pk")]
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("slash")
        assert app.focused is not None and app.focused.id == "search"
        await pilot.press(*"smith")
        await settle(pilot, lambda: status(app) == f"{len(expected)} matching 'smith'")
        await pilot.press("enter")
        assert app.focused is screen.table
        await settle(pilot, table_ready(screen.table))
        assert [row.pk for row in screen.table.window] == expected
        await pilot.press("slash", *"zzz", "enter")
        await settle(pilot, lambda: status(app) == "No profile matches 'zzz'")
        await pilot.press("escape")
        await settle(pilot, lambda: status(app) == f"{PROFILE_COUNT} profiles")


async def test_segment_filter_lists_exactly_the_members(store: Path, conn: sqlite3.Connection,
                                                        small_pages: None) -> None:
    catalog = Catalog.load(conn)
    resolved = resolve_saved(conn, "shoe-buyers")
    members = sorted(evaluate_all(conn, resolved, AS_OF, catalog))
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, SegmentPicker))
        await pilot.press(*"shoe", "enter")
        await settle(pilot, lambda: status(app) == f"{len(members)} in 'Shoe buyers'")
        await settle(pilot, table_ready(screen.table))
        seen: list[int] = [row.pk for row in screen.table.window]
        while len(seen) < len(members):
            await pilot.press("pagedown")
            await settle(pilot, lambda: not screen.table.busy)
            for row in screen.table.window:
                if row.pk > seen[-1]:
                    seen.append(row.pk)
        assert seen == members
        await pilot.press("escape")
        await settle(pilot, lambda: status(app) == f"{PROFILE_COUNT} profiles")


async def test_sort_picker_and_reverse(store: Path, conn: sqlite3.Connection) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SortPicker))
        picker = app.screen
        assert isinstance(picker, SortPicker)
        index = picker.choices.index(SortChoice("email", False))
        picker.query_one("#sort-list").highlighted = index  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot, lambda: screen.sort == SortChoice("email", False))
        await settle(pilot, table_ready(screen.table))
        pks = [row.pk for row in screen.table.window]
        assert pks == oracle(conn, "email", False)[:len(pks)]
        await pilot.press("r")
        await settle(pilot, lambda: screen.table.current is not None
                     and screen.table.current.pk == oracle(conn, "email", True)[0])


async def test_column_picker_changes_the_columns(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ColumnPicker))
        picker = app.screen
        selection = picker.query_one("#column-list")
        selection.deselect("email")  # type: ignore[attr-defined]
        selection.select("loyalty_tier")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot, lambda: "loyalty_tier" in screen.columns)
        await settle(pilot, table_ready(screen.table))
        keys = [column.key for column in screen.table.columns]
        assert "email" not in keys and "loyalty_tier" in keys
        assert len(screen.table.window[0].values) == len(keys)
        chosen = list(screen.columns)
    # kept for this store across restarts; another store keeps its defaults
    again = make_app(store, as_of=AS_OF)
    async with again.run_test(size=(120, 30)) as pilot:
        screen = screen_of(again)
        await settle(pilot, table_ready(screen.table))
        assert screen.columns == chosen
        await settle(pilot, lambda: "Columns" in [key.description
                                                  for key in screen.query("FooterKey")])


async def test_a_settings_file_that_cannot_be_written_is_a_warning(
        store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AUDIENCES_CONFIG_DIR", str(blocker))
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ColumnPicker))
        app.screen.query_one("#column-list").deselect("email")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot, lambda: any("not kept" in n.message for n in app._notifications))
        assert "email" not in screen.columns and app.is_running


async def test_enter_opens_the_profile_under_the_cursor(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("down", "down", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen))
        assert app.screen.pk == 3  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))


async def test_a_failing_query_becomes_a_toast_not_a_crash(store: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, conn: sqlite3.Connection, key: Any, limit: int) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(ProfileQuery, "after", broken)
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        message = next(n.message for n in app._notifications if n.severity == "error")
        assert "damaged" in message or "malformed" in message
        assert app.is_running


def test_today_is_the_as_of_date(store: Path) -> None:
    app = make_app(store, as_of=dt.datetime(2024, 2, 29, 23, 0, tzinfo=dt.UTC))
    assert app.today() == dt.date(2024, 2, 29)


async def test_clicking_a_header_sorts_by_that_column(store: Path, conn: sqlite3.Connection) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.click(ProfileTable, offset=(6, 1))  # the header row, inside the border
        await settle(pilot, lambda: screen.sort == SortChoice("id", False))
        await pilot.click(ProfileTable, offset=(6, 1))
        await settle(pilot, lambda: screen.sort == SortChoice("id", True))
        await settle(pilot, lambda: screen.table.current is not None
                     and screen.table.current.pk == PROFILE_COUNT and not screen.table.busy)


async def test_clicking_a_row_moves_the_cursor_and_a_second_click_opens_it(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.click(ProfileTable, offset=(6, 4))  # border, header, then rows 0, 1, 2
        await settle(pilot, lambda: screen.table.cursor_row == 2)
        await pilot.click(ProfileTable, offset=(6, 4))
        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen))
        assert app.screen.pk == 3  # type: ignore[attr-defined]


async def test_a_new_search_hides_the_old_rows_until_its_first_page(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = profiles_screen.listing_source

    class Held:
        """A search whose pages wait for the gate (a slow search on a big store)."""

        def __init__(self, source: Any) -> None:
            self.source = source

        def after(self, conn: sqlite3.Connection, key: Any, limit: int) -> Any:
            gate.wait(10)
            return self.source.after(conn, key, limit)

        def before(self, conn: sqlite3.Connection, key: Any, limit: int) -> Any:
            gate.wait(10)
            return self.source.before(conn, key, limit)

        def count(self, conn: sqlite3.Connection) -> Any:
            return self.source.count(conn)  # the count is quick: "no match" comes first

    def held(catalog: Any, listing: Listing, today: Any, members: Any) -> Any:
        source = real(catalog, listing, today, members)
        return Held(source) if listing.search else source

    monkeypatch.setattr(profiles_screen, "listing_source", held)
    app = make_app(store, as_of=AS_OF)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = screen_of(app)
            await settle(pilot, table_ready(screen.table))
            await pilot.press("slash", *"qqqxx", "enter")
            await settle(pilot, lambda: screen.search == "qqqxx")
            assert screen.table.window == [], "the old rows stay under the new words"
            await pilot.pause(0.5)  # the count has long arrived
            assert status(app) == "searching…"
            assert "loading" not in str(app.screen.query_one("#timing").render())
            gate.set()
            await settle(pilot, lambda: status(app) == "No profile matches 'qqqxx'")
            await pilot.press("escape")
            await settle(pilot, lambda: status(app) == f"{PROFILE_COUNT} profiles")
    finally:
        gate.set()


async def test_sorting_keeps_the_column_widths_and_the_whole_label(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        screen.columns = [*screen.columns, "lifetime_value"]
        screen._restart(columns_changed=True)
        await settle(pilot, table_ready(screen.table))
        before = list(screen.table._widths)
        for descending in (False, True):
            screen.sort = SortChoice("lifetime_value", descending)
            screen._restart(columns_changed=True)
            await settle(pilot, table_ready(screen.table))
            assert screen.table._widths == before, "the sort arrow moved the columns"
            for column, width in zip(screen.table.columns, screen.table._widths, strict=True):
                assert len(column.label) <= width, f"{column.label!r} is cut"
        assert any(column.label == "Lifetime value ▼" for column in screen.table.columns)


async def test_the_column_picker_shows_ticks_without_colour(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = screen_of(app)
        await settle(pilot, table_ready(screen.table))
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ColumnPicker))
        await pilot.pause()
        checklist = app.screen.query_one("#column-list")
        lines = ["".join(seg.text for seg in checklist.render_line(y))
                 for y in range(checklist.size.height)]
        assert any(line.startswith("[x] First name") for line in lines)
        assert any(line.startswith("[ ] Date of birth") for line in lines)
        await pilot.press("down", "space")  # untick the second column
        await pilot.pause()
        line = "".join(seg.text for seg in checklist.render_line(1))
        assert line.startswith("[ ] First name")
