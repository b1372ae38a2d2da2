"""The Segments area driven from the keyboard: list with counts, open, duplicate, rename,
delete (refused while referenced), import and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store.engines.sqlite import open_store
from store.query import audience
from store.segments.library import get_segment, list_segments, resolve_saved, resolve_segment, save_segment
from store.segments.yamlio import load_segment_file, load_segment_text
from tests.test_builder import AS_OF, SIZE, BuilderApp, make_store, type_text, wait_for
from tui.builder.screen import BuilderScreen
from tui.screens.segments import (
    DESCRIPTION_MIN,
    SegmentsScreen,
    changed_text,
    segment_columns,
    sorted_segments,
    unique_id,
)

LONG = ("id: long-story\nname: a long story\ndescription: " + "A description well over forty"
        " characters that needs every column the screen can give it, and more." + "\nrule:\n"
        "  attribute: gender\n  op: equals\n  value: female\n")
MEN = "id: men\nname: Men\nrule:\n  all:\n    - attribute: gender\n      op: equals\n" \
      "      value: male\n    - not:\n        segment: unsubscribed\n"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = make_store(tmp_path / "store.db")
    conn = open_store(path)
    segment, lines = load_segment_text(MEN)
    save_segment(conn, resolve_segment(conn, segment, lines))
    conn.close()
    return path


def saved_ids(path: Path) -> list[str]:
    conn = open_store(path, readonly=True)
    try:
        return [s.id for s in list_segments(conn)]
    finally:
        conn.close()


def screen_of(app: BuilderApp) -> SegmentsScreen:
    assert isinstance(app.screen, SegmentsScreen)
    return app.screen


async def test_list_shows_every_segment_with_its_exact_count(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: len(screen.counts) == 2)
        conn = open_store(store_path, readonly=True)
        for segment_id in ("men", "unsubscribed"):
            truth = audience.count(conn, resolve_saved(conn, segment_id), AS_OF)
            assert screen.counts[segment_id][0] == truth
            assert str(screen.table.get_cell(segment_id, "audience")) == f"{truth:,}"
        conn.close()
        assert [str(screen.table.get_cell_at((r, 0))) for r in range(2)] == ["Men", "Unsubscribed"]


async def confirm_shown(pilot: Any) -> Any:
    """Wait for the confirmation dialog (delete looks up the segment's users first)."""
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmModal")
    return pilot.app.screen


async def test_deleting_a_used_segment_says_who_uses_it_before_asking(store_path: Path) -> None:
    """The users are named before anything is confirmed; nothing is deleted; the user can
    still delete the segment that uses it, then the other."""
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        await pilot.press("j", "d")  # Unsubscribed, used by Men
        modal = await confirm_shown(pilot)
        assert modal.title_text == "Segment in use"
        assert "'Men' (men)" in modal.message and "cannot be deleted" in modal.message
        assert [choice.key for choice in modal.choices] == ["escape"]  # nothing to confirm
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert saved_ids(store_path) == ["men", "unsubscribed"]
        # The referring segment itself can go, then the other one too.
        await pilot.press("k", "d")
        modal = await confirm_shown(pilot)
        assert modal.title_text == "Delete segment"
        await pilot.press("y")
        await wait_for(pilot, lambda: saved_ids(store_path) == ["unsubscribed"])
        await wait_for(pilot, lambda: screen.table.row_count == 1)
        await pilot.press("d")
        await confirm_shown(pilot)
        await pilot.press("n")  # "n" keeps it
        await pilot.pause(0.2)
        assert saved_ids(store_path) == ["unsubscribed"]
        await pilot.press("d")
        await confirm_shown(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: saved_ids(store_path) == [])
        await wait_for(pilot, lambda: screen.query_one("#segments-empty").display)


async def test_a_name_already_used_is_warned_about(store_path: Path) -> None:
    """Renaming "Men" to "unsubscribed" (another segment's name, any case) warns first; a
    second enter keeps the name anyway; duplicating warns the same way."""
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        await pilot.press("r", "ctrl+u")
        await type_text(pilot, "unsubscribed")
        prompt = app.screen
        assert type(prompt).__name__ == "TextPrompt"
        warning = str(prompt.query_one("#prompt-error").render())
        assert "'Unsubscribed' is already the name of 'unsubscribed'" in warning
        await pilot.press("enter")
        assert app.screen is prompt  # warned, not renamed yet
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("Renamed" in n for n in app.notes))
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("c", "ctrl+u")
        await type_text(pilot, "UNSUBSCRIBED")
        assert "is already the name of" in str(
            app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")


async def test_rename_and_duplicate(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        await pilot.press("r", "ctrl+u")
        await type_text(pilot, "Male customers")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("Renamed" in n for n in app.notes))
        conn = open_store(store_path, readonly=True)
        found = get_segment(conn, "men")
        conn.close()
        assert found is not None and found[0].name == "Male customers"
        await wait_for(pilot, lambda: screen.selected_id() == "men")
        await pilot.press("c", "enter")  # "Copy of Male customers"
        await wait_for(pilot, lambda: "copy-of-male-customers" in saved_ids(store_path))
        conn = open_store(store_path, readonly=True)
        copy = get_segment(conn, "copy-of-male-customers")
        original = get_segment(conn, "men")
        conn.close()
        assert copy is not None and original is not None
        assert copy[0].rule == original[0].rule
        assert copy[0].name == "Copy of Male customers"


async def test_import_and_export(store_path: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # short relative paths to type
    source = tmp_path / "women.yaml"
    source.write_text("name: Women\nrule:\n  attribute: gender\n  op: equals\n  value: female\n")
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        await pilot.press("i")
        await type_text(pilot, "missing.yaml")
        assert "does not exist" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("ctrl+u")
        await type_text(pilot, "women.yaml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "women" in saved_ids(store_path))
        await wait_for(pilot, lambda: screen.selected_id() == "women")
        target = tmp_path / "out.yaml"
        await pilot.press("x", "ctrl+u")
        await type_text(pilot, "out.yaml")
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        exported, _ = load_segment_file(target)
        imported, _ = load_segment_file(source)
        assert exported == imported
        # Importing the same id again asks before replacing.
        await pilot.press("i")
        await type_text(pilot, "women.yaml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmModal")
        await pilot.press("n")


async def test_a_broken_import_is_reported_not_saved(store_path: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "bad.yaml"
    source.write_text("name: Bad\nrule:\n  attribute: gendr\n  op: equals\n  value: x\n")
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i")
        await type_text(pilot, "bad.yaml")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("gendr" in n for n in app.notes))
        note = next(n for n in app.notes if "gendr" in n)
        assert "line 3" in note or ":3:" in note
        assert saved_ids(store_path) == ["men", "unsubscribed"]


async def test_open_edits_and_returns_to_the_list(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
        builder = app.screen
        assert isinstance(builder, BuilderScreen)
        assert builder.draft.saved and builder.draft.segment.id == "men"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("A")
        assert app.activated == ["men"]


def test_helpers() -> None:
    assert unique_id("men", {"men", "men-2"}) == "men-3"
    assert unique_id("women", {"men"}) == "women"
    import datetime as dt

    now = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
    assert changed_text("2025-06-30 09:15:00", now) == "today 09:15"
    assert changed_text("2025-06-29 09:15:00", now) == "yesterday 09:15"
    assert changed_text("2025-06-20 09:15:00", now) == "10 days ago"
    assert changed_text("2024-06-20 09:15:00", now) == "2024-06-20"


def test_the_numbers_come_before_the_description_which_takes_the_rest() -> None:
    names, ids = ["Mid-value international customers"], ["recent-buyers-review-request"]
    for room in (77, 117, 197):
        columns = segment_columns(room, names, ids)
        keys = [key for key, _, _ in columns]
        assert keys[-1] == "description"
        assert keys.index("audience") < keys.index("description")
        assert keys.index("share") < keys.index("description")
        before_numbers = sum(width + 2 for key, _, width in columns[:keys.index("share") + 1])
        assert before_numbers <= room, f"the numbers are off-screen at {room}"
        if room > 80:
            assert sum(width + 2 for _, _, width in columns) == room, "no room left unused"
    wide = segment_columns(197, names, ids)
    assert [key for key, _, _ in wide][1] == "id"
    assert dict((key, width) for key, _, width in wide)["description"] > 60
    assert "id" not in [key for key, _, _ in segment_columns(117, names, ids)]
    assert segment_columns(40, names, ids)[-1][2] == DESCRIPTION_MIN


async def test_the_list_fits_its_columns_to_the_width(store_path: Path) -> None:
    conn = open_store(store_path)
    segment, lines = load_segment_text(LONG)
    save_segment(conn, resolve_segment(conn, segment, lines))
    conn.close()
    for width, with_id in ((80, False), (120, True), (200, True)):  # short names: room for Id
        app = BuilderApp(store_path, SegmentsScreen)
        async with app.run_test(size=(width, 30)) as pilot:
            screen = screen_of(app)
            await wait_for(pilot, lambda s=screen: len(s.counts) == 3)
            table = screen.table
            keys = [str(key.value) for key in table.columns]
            assert keys[:2] == (["name", "id"] if with_id else ["name", "audience"])
            right = 0
            for key, column in table.columns.items():
                right += column.get_render_width(table)
                if key.value == "share":
                    assert right <= table.size.width, f"Share is off-screen at {width} columns"
            description = table.columns[next(k for k in table.columns if k.value == "description")]
            if width == 200:
                assert description.width > 80
                assert right <= table.size.width
            cell = table.get_cell("long-story", "description")
            assert str(cell).startswith("A description well over forty")


async def test_home_and_end_go_to_the_first_and_the_last_segment(store_path: Path) -> None:
    conn = open_store(store_path)
    for name in ("Alpha", "Beta", "Gamma"):
        segment, lines = load_segment_text(
            f"name: {name}\nrule:\n  attribute: gender\n  op: equals\n  value: male\n")
        save_segment(conn, resolve_segment(conn, segment, lines))
    conn.close()
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 5)
        for key, row in (("end", 4), ("home", 0), ("G", 4), ("g", 0), ("ctrl+end", 4),
                         ("ctrl+home", 0)):
            await pilot.press(key)
            assert screen.table.cursor_row == row, key
            assert screen.table.scroll_x == 0, f"{key} scrolled sideways"


async def test_names_sort_as_people_read_them(store_path: Path) -> None:
    conn = open_store(store_path)
    segment, lines = load_segment_text(
        "name: apple lovers\nrule:\n  attribute: gender\n  op: equals\n  value: male\n")
    save_segment(conn, resolve_segment(conn, segment, lines))
    conn.close()
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 3)
        names = [str(screen.table.get_cell_at((r, 0))) for r in range(3)]
        assert names == ["apple lovers", "Men", "Unsubscribed"]
    assert [s.name for s in sorted_segments([])] == []


async def test_the_footer_keeps_the_main_keys_and_the_help_names_no_internals(
        store_path: Path) -> None:
    from tui.widgets.keys import key_lines

    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        lines = key_lines(screen)
        sections = {line.section for line in lines}
        assert "Segment list" in sections and not any("DataTable" in s for s in sections)
        descriptions = {line.description for line in lines}
        assert {"First", "Last", "Duplicate", "Rename", "Import", "Export"} <= descriptions
        assert not {"Page Left", "Page Right", "Cursor left", "Home", "End"} & descriptions
        shown = {binding.action for _, binding, *_ in [
            (key, active.binding) for key, active in screen.active_bindings.items()
            if active.binding.show]}
        assert {"duplicate", "rename", "import", "export"}.isdisjoint(shown)
        assert {"new", "delete", "activate", "filter"} <= shown
