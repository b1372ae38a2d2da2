"""The segment builder under the keys of a hurried demo: modals that answer once, quitting
with unsaved changes, undo after the first save, copy and paste between segments, the
layout at 120x36 and 80x24, the editors' first look, and the attribute picker's ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Select

from store.engines.layout import write_transaction
from store.engines.sqlite import open_store
from store.schema import catalog as cat
from store.segments.library import get_segment, list_segments
from store.segments.model import AllOf, AttributeCondition
from store.segments.yamlio import load_segment_text
from tests import app_store
from tests.factory import StoreSpec, build_store
from tests.test_builder import (
    AS_OF,
    SPEC_EXAMPLE,
    BuilderApp,
    add_condition,
    builder,
    make_store,
    settled,
    type_text,
    wait_for,
)
from tui.app import make_app
from tui.builder.condition_editor import ConditionEditor
from tui.builder.event_editor import EventEditor
from tui.builder.modals import SegmentInfoModal
from tui.builder.pickers import FuzzyPicker, PickItem, rank
from tui.builder.screen import BuilderScreen
from tui.screens.segments import SegmentsScreen
from tui.widgets.dialog import ConfirmModal

SIZE = (120, 36)
MALE = AttributeCondition("gender", "equals", "male")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store.db")


def hammer(app: App[Any], key: str, times: int) -> None:
    """Queue ``times`` presses of ``key`` at once, as a key held down does (Pilot.press
    waits for the app to be idle after each key, which hides what a fast typist finds)."""
    for _ in range(times):
        event = events.Key(key, None)
        event.set_sender(app)
        app.post_message(event)


async def new_builder_with_a_condition(pilot: Pilot[Any]) -> BuilderScreen:
    await pilot.pause()
    await pilot.press("n")
    screen = builder(pilot.app)
    await add_condition(pilot, "gender", "male")
    await wait_for(pilot, lambda: screen.draft.rule == AllOf((MALE,)))
    return screen


def saved_ids(db: Path) -> list[str]:
    conn = open_store(db, readonly=True)
    try:
        return sorted(s.id for s in list_segments(conn))
    finally:
        conn.close()


# ----------------------------------------------------- 1. a modal answers once


async def test_escape_held_down_on_unsaved_changes_keeps_the_builder(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_builder_with_a_condition(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmModal)
        hammer(app, "escape", 12)
        await back_in_the_builder(pilot, screen)
        assert app.return_code is None  # still running, no ScreenStackError
        assert screen in app.screen_stack and screen.is_attached
        assert not screen.leaving
        assert screen.draft.rule == AllOf((MALE,))


async def back_in_the_builder(pilot: Pilot[Any], screen: BuilderScreen) -> None:
    """Wait until every queued key is handled and the builder is on top again. The escapes
    that outlive a dialog reach the builder, which asks about its unsaved changes; the
    next escape answers "keep editing": the builder never closes."""
    app, steady, last = pilot.app, 0, None
    for _ in range(100):
        await pilot.pause(0.05)
        assert screen in app.screen_stack and not screen.leaving
        steady = steady + 1 if app.screen is last else 0
        last = app.screen
        if steady < 4:
            continue
        if app.screen is screen:
            return
        assert isinstance(app.screen, ConfirmModal)  # the last escape asked the question
        await pilot.press("escape")  # keep editing
    raise AssertionError("the builder did not come back on top")


async def test_every_builder_dialog_answers_once(store_path: Path) -> None:
    """Escape held down in the pickers and editors closes them, never the screens below."""
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_builder_with_a_condition(pilot)
        for key in ("a", "e", "r", "y", "i", "b", "enter"):  # picker, editors, yaml, name
            await pilot.press(key)
            await wait_for(pilot, lambda: app.screen is not screen)
            hammer(app, "escape", 10)
            await back_in_the_builder(pilot, screen)
            assert app.return_code is None
            assert screen.draft.rule == AllOf((MALE,)), key


async def test_a_dialog_dismissed_twice_closes_once(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_builder_with_a_condition(pilot)
        answers: list[str | None] = []
        modal = ConfirmModal("Sure?", "Really?", [])
        app.push_screen(modal, answers.append)
        await wait_for(pilot, lambda: app.screen is modal)
        modal.dismiss("first")
        modal.dismiss("second")
        await pilot.pause()
        assert answers == ["first"]
        assert app.screen is screen
        screen.leave()
        screen.leave()
        await pilot.pause()
        assert isinstance(app.screen, SegmentsScreen)


# ------------------------------------------------ 2. quitting asks about unsaved changes


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return app_store.build(tmp_path / "shop.db")


async def open_new_builder(pilot: Pilot[Any]) -> BuilderScreen:
    app = pilot.app
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen))
    await pilot.pause(0.2)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
    screen = builder(app)
    await add_condition(pilot, "country", "US")
    await wait_for(pilot, lambda: screen.draft.dirty)
    return screen


@pytest.mark.parametrize("quit_key", ["q", "ctrl+q"])
async def test_quit_with_unsaved_changes_asks_and_keep_editing_stays(shop: Path, quit_key: str) -> None:
    app = make_app(shop, as_of=app_store.AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_new_builder(pilot)
        await pilot.press(quit_key)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert isinstance(app.screen, ConfirmModal)
        assert "quitting" in app.screen.message
        await pilot.press(quit_key)  # asked once, not twice
        await pilot.pause(0.2)
        assert sum(isinstance(s, ConfirmModal) for s in app.screen_stack) == 1
        await pilot.press("escape")  # keep editing: the quit is called off
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.return_code is None
        assert app.screen is screen and screen.draft.dirty


async def test_quit_from_another_area_shows_the_builder_and_discard_quits(shop: Path) -> None:
    app = make_app(shop, as_of=app_store.AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_new_builder(pilot)
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.current_mode == "profiles")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.current_mode == "segments"
        assert app.screen_stack[-2] is screen
        await pilot.press("d")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert saved_ids(shop) == sorted(app_store.SEGMENTS)


async def test_quit_and_save_saves_then_quits(shop: Path) -> None:
    app = make_app(shop, as_of=app_store.AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        await open_new_builder(pilot)
        await pilot.press("f4")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentInfoModal))
        await type_text(pilot, "Quit demo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert "quit-demo" in saved_ids(shop)


async def test_quit_without_changes_does_not_ask(shop: Path) -> None:
    app = make_app(shop, as_of=app_store.AS_OF)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.pause(0.2)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None)


# --------------------------------------------------- 3. undo after the first save


async def test_undo_after_the_first_save_keeps_the_segment(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_builder_with_a_condition(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentInfoModal))
        await type_text(pilot, "Demo X")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.draft.saved and not screen.draft.dirty)
        await pilot.press("ctrl+z")
        assert (screen.draft.segment.id, screen.draft.segment.name) == ("demo-x", "Demo X")
        assert screen.draft.rule == AllOf() and screen.draft.dirty
        await pilot.press("s")
        await pilot.pause(0.2)
        assert app.screen is screen  # no name asked for: it is saved already
        await wait_for(pilot, lambda: not screen.draft.dirty)
    assert saved_ids(store_path) == ["demo-x", "unsubscribed"]
    conn = open_store(store_path, readonly=True)
    found = get_segment(conn, "demo-x")
    conn.close()
    assert found is not None and found[0].rule == AllOf() and found[0].name == "Demo X"


# ------------------------------------------------ 4. an untouched new segment


async def test_leaving_an_untouched_new_segment_does_not_ask(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        # An edit undone is nothing to save either; an edit kept asks.
        await pilot.press("n")
        screen = builder(app)
        await add_condition(pilot, "gender", "male")
        await pilot.press("ctrl+z", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.press("n")
        await add_condition(pilot, "gender", "male")
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmModal)


# ---------------------------------------------- 5. copy in one segment, paste in another


async def test_copy_in_one_segment_and_paste_in_another(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        first = await new_builder_with_a_condition(pilot)
        assert first.rule_tree.selected_path == "rule.all[0]"
        await pilot.press("c", "escape", "d")  # copy, leave, discard
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.pause(0.2)
        await pilot.press("enter")  # the saved segment "unsubscribed"
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
        second = builder(app)
        assert second is not first and second.draft.segment.id == "unsubscribed"
        await settled(pilot, second)
        await pilot.press("p")
        assert MALE in second.draft.rule.children  # type: ignore[union-attr]
        assert not any("nothing copied" in note for note in app.notes)


# ------------------------------------------------------------------- 6. layout


def row_text(screen: BuilderScreen, path: str) -> str:
    tree = screen.rule_tree
    return tree.render_label(tree.rows[path], Style(), Style()).plain


async def counted_example(pilot: Pilot[Any]) -> BuilderScreen:
    screen = builder(pilot.app)
    await settled(pilot, screen)
    await wait_for(
        pilot,
        lambda: (
            bool(screen.saved_segments)
            and all(n.data is not None and not n.data.pending for n in screen.rule_tree.rows.values())
        ),
    )
    await pilot.pause(0.1)
    return screen


async def test_rule_text_uses_the_width_it_has(store_path: Path) -> None:
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = await counted_example(pilot)
        assert not screen.has_class("narrow")
        tree = screen.rule_tree
        width = tree.scrollable_content_region.width
        assert width >= 60
        for path in ("rule.all[1]", "rule.all[3]"):
            text = row_text(screen, path)
            assert len(text) == width - tree.guide_depth  # to the right edge, no further
            assert text.endswith("left")  # the counts end at the edge
        assert row_text(screen, "rule.all[1]").startswith("Age is greater than 50 ")
        assert row_text(screen, "rule.all[3]").startswith("Not in segment Unsubscribed ")
        long = row_text(screen, "rule.all[2]")
        words = long.split("…")[0]
        assert len(words) >= width - tree.guide_depth - 25  # only the counts beside it
        assert words.startswith("Purchase at least 2 times in the last 90 days")


async def test_narrow_terminal_puts_the_preview_under_the_tree(store_path: Path) -> None:
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await counted_example(pilot)
        assert screen.has_class("narrow")
        pane, preview = screen.query_one("#tree-pane"), screen.preview
        assert pane.region.width >= 76
        assert preview.region.y >= pane.region.bottom
        assert row_text(screen, "rule.all[1]").startswith("Age is greater than 50 ")
        digits = preview.query_one("#count-digits")
        assert digits.region.height == 3 and digits.region.bottom <= 24
        await pilot.resize_terminal(120, 36)
        await wait_for(
            pilot, lambda: not screen.has_class("narrow") and preview.region.x >= pane.region.right
        )


async def test_event_editor_fits_an_80x24_terminal(store_path: Path) -> None:
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await counted_example(pilot)
        await pilot.press("down", "down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EventEditor))
        await pilot.pause(0.1)
        editor = app.screen
        dialog = editor.query_one(".dialog")
        for selector in ("#verdict", ".hint"):
            widget = editor.query_one(selector)
            region = widget.region
            assert region.height >= 1 and region.bottom <= dialog.region.bottom - 1, selector
            lines = widget.render_lines(region.reset_offset)
            assert len(lines) == region.height
        verdict = str(editor.query_one("#verdict").render())
        assert "product category is Shoes" in verdict
        hint = str(editor.query_one(".hint").render())
        assert hint.endswith("escape: cancel")


# ------------------------------------------------------------------- 7. editors


async def open_event_editor(pilot: Pilot[Any], event_type: str) -> EventEditor:
    await pilot.press("e")
    await type_text(pilot, event_type)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EventEditor))
    editor = pilot.app.screen
    assert isinstance(editor, EventEditor)
    return editor


async def test_a_total_offers_numeric_fields_and_no_error_before_one_is_chosen(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_event_editor(pilot, "purch")
        editor.query_one("#agg-fn", Select).value = "sum"
        await pilot.pause()
        verdict = str(editor.query_one("#verdict").render())
        assert "✗" not in verdict and "choose the numeric field" in verdict
        field = editor.query_one("#agg-field", Select)
        assert [value for _, value in field._options if isinstance(value, str)] == ["amount"]
        assert editor.query_one("#agg-value", Input).placeholder == "a number"
        field.value = "amount"
        await pilot.pause()
        assert "type the number" in str(editor.query_one("#verdict").render())
        editor.query_one("#agg-value", Input).value = "100"
        await pilot.pause()
        assert str(editor.query_one("#verdict").render()).startswith("✓")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, EventEditor))


async def test_events_without_a_numeric_field_have_nothing_to_total(tmp_path: Path) -> None:
    db = tmp_path / "views.db"
    build_store(
        db,
        StoreSpec(
            attributes={"gender": "string"},
            profiles=[{"id": "p1", "gender": "male"}],
            event_fields={"page": "string"},
            events=[{"profile_id": "p1", "type": "page_view", "timestamp": AS_OF, "page": "/home"}],
        ),
    ).close()
    app = BuilderApp(db, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_event_editor(pilot, "page")
        editor.query_one("#agg-fn", Select).value = "min"
        await pilot.pause()
        field = editor.query_one("#agg-field", Select)
        assert [v for _, v in field._options if isinstance(v, str)] == []
        shown = str(editor.query_one("#verdict").render())
        assert "✗" not in shown and "no numeric field" in shown


async def test_date_editors_open_without_an_error_and_explain_dates_in_words(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await type_text(pilot, "birth")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionEditor))
        editor = app.screen
        verdict = editor.query_one("#verdict")
        assert "✗" not in str(verdict.render())  # nothing typed yet is not a mistake
        assert "type a length" in str(verdict.render())
        editor.query_one("#op", Select).value = "before"
        await pilot.pause()
        assert "✗" not in str(verdict.render())
        assert "type a date" in str(verdict.render())
        await type_text(pilot, "soon")
        shown = str(verdict.render())
        assert "✗" in shown and "a date like 2026-01-31, today, or 30 days ago" in shown
        assert "{ago" not in shown
        await pilot.press("ctrl+u")
        await type_text(pilot, "30 days ago")
        assert str(verdict.render()).startswith("✓")
        await pilot.press("escape")
        # The event editor's window between two dates: a hint until both are typed.
        editor2 = await open_event_editor(pilot, "purch")
        editor2.query_one("#window-kind", Select).value = "between"
        await pilot.pause()
        shown = str(editor2.query_one("#verdict").render())
        assert "✗" not in shown and "type both dates" in shown
        editor2.query_one("#window-from", Input).value = "someday"
        editor2.query_one("#window-to", Input).value = "today"
        await pilot.pause()
        shown = str(editor2.query_one("#verdict").render())
        assert "✗" in shown and "{ago" not in shown and "30 days ago" in shown


# --------------------------------------------------------------- 8. the picker


def test_every_typed_word_ranks_above_fewer() -> None:
    items = [
        PickItem("email", "Email address", "string", "Identity"),
        PickItem("email_marketing_consent", "Email marketing consent", "boolean", "Consent"),
        PickItem("sms_marketing_consent", "SMS marketing consent", "boolean", "Consent"),
    ]
    assert [item.value for item in rank("email cons", items)][:2] == ["email_marketing_consent", "email"]
    assert rank("sms cons", items)[0].value == "sms_marketing_consent"
    assert rank("marketing email", items)[0].value == "email_marketing_consent"
    assert rank("email", items)[0].value == "email"  # exact still first
    assert rank("emial", items)[0].value == "email"  # typos still found


def consent_store(path: Path) -> Path:
    conn = build_store(
        path,
        StoreSpec(
            attributes={"email": "string", "email_marketing_consent": "boolean", "gender": "string"},
            profiles=[
                {
                    "id": f"p{n}",
                    "email": f"p{n}@example.com",
                    "email_marketing_consent": n % 2 == 0,
                    "gender": "male",
                }
                for n in range(6)
            ],
        ),
    )
    with write_transaction(conn):
        cat.set_labels(conn, "attributes", "email", label="Email address", group="Identity")
        cat.set_labels(
            conn, "attributes", "email_marketing_consent", label="Email marketing consent", group="Consent"
        )
    conn.close()
    return path


async def test_picker_opens_the_attribute_with_every_typed_word(tmp_path: Path) -> None:
    db = consent_store(tmp_path / "consent.db")
    app = BuilderApp(db, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, FuzzyPicker))
        await type_text(pilot, "email cons")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionEditor))
        editor = app.screen
        assert isinstance(editor, ConditionEditor)
        assert editor.condition.attribute == "email_marketing_consent"
        assert editor.title_text.startswith("Email marketing consent")
