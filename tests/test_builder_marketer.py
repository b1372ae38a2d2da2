"""What marketers do in Segment Builder, in this builder: convert a segment reference to its
rules (undoable), paste a list of values (or read a one-column file) into an "is one of"
condition, "did not" as a choice of its own, and distinct counts chosen from the type's fields
and read back in words ("in at least 2 orders")."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.events import Paste
from textual.widgets import Input, Select

from store.segments.editing import EditError, inline_reference
from store.segments.model import (
    AllOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    NotOf,
    Segment,
    SegmentRef,
)
from store.segments.yamlio import load_segment_text
from tests.test_builder import (
    SIZE,
    SPEC_EXAMPLE,
    BuilderApp,
    builder,
    expected_count,
    settled,
    store_path,  # noqa: F401 - the fixture
    type_text,
    wait_for,
)
from tui.builder.condition_editor import ConditionEditor
from tui.builder.event_editor import EventEditor
from tui.builder.screen import BuilderScreen

UNSUBSCRIBED_RULE = AttributeCondition("email_opt_in", "is_false")


def test_inlining_replaces_the_reference_inside_its_not() -> None:
    rule = AllOf((AttributeCondition("gender", "equals", "male"), NotOf(SegmentRef("unsub"))))
    edit = inline_reference(rule, "rule.all[1]", UNSUBSCRIBED_RULE)
    assert edit.rule == AllOf((rule.children[0], NotOf(UNSUBSCRIBED_RULE)))
    assert edit.select == "rule.all[1].not"
    with pytest.raises(EditError, match="only a segment reference"):
        inline_reference(rule, "rule.all[0]", UNSUBSCRIBED_RULE)


async def test_a_reference_becomes_its_rules_with_the_same_count_and_undo(store_path: Path) -> None:  # noqa: F811
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        before = await settled(pilot, screen)
        await pilot.press("down", "down", "down", "down")  # the "not in segment" row
        assert screen.rule_tree.selected_path == "rule.all[3]"
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.draft.rule != segment.rule)
        assert screen.draft.rule.children[3] == NotOf(UNSUBSCRIBED_RULE)  # type: ignore[union-attr]
        assert "Replaced the reference to 'Unsubscribed' with its rules (ctrl+z undoes it)." in (
            app.notes)
        assert await settled(pilot, screen) == before
        await pilot.press("ctrl+z")
        assert screen.draft.rule == segment.rule
        await pilot.press("up", "R")  # not a reference: says so, changes nothing
        await pilot.pause()
        assert screen.draft.rule == segment.rule
        assert any("only a segment reference" in note for note in app.notes)


async def open_condition(pilot: object, app: BuilderApp, attribute: str) -> ConditionEditor:
    await pilot.press("a")  # type: ignore[attr-defined]
    await type_text(pilot, attribute)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    editor = app.screen
    assert isinstance(editor, ConditionEditor)
    return editor


async def test_a_pasted_list_fills_an_in_condition(store_path: Path) -> None:  # noqa: F811
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        editor = await open_condition(pilot, app, "country")
        box = editor.query_one("#value", Input)
        box.post_message(Paste("US\nGB\r\n\nUS\tFR\n"))  # a column copied from a spreadsheet
        await wait_for(pilot, lambda: box.value == "US, GB, FR")
        assert editor.query_one("#op", Select).value == "in"  # "is" became "is one of"
        box.post_message(Paste("IT, GB"))
        await wait_for(pilot, lambda: box.value == "US, GB, FR, IT")
        await pilot.press("enter")
        assert screen.draft.rule == AllOf((AttributeCondition("country", "in",
                                                              ("US", "GB", "FR", "IT")),))
        expected = expected_count(store_path, screen.draft.segment)
        assert await settled(pilot, screen) == expected == 40


async def test_values_come_from_a_one_column_file(store_path: Path, tmp_path: Path) -> None:  # noqa: F811
    good = tmp_path / "countries.csv"
    good.write_text("country\nUS\n\"GB\"\nUS\n", encoding="utf-8")
    wide = tmp_path / "wide.csv"
    wide.write_text("country,city\nUS,Boston\n", encoding="utf-8")
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        editor = await open_condition(pilot, app, "country")
        await pilot.press("ctrl+o")
        await type_text(pilot, str(wide))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is editor)
        assert any("more than one column (line 1" in note for note in app.notes)
        await pilot.press("ctrl+o")
        await type_text(pilot, str(good))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is editor)
        assert editor.query_one("#value", Input).value == "US, GB"  # header and repeat dropped
        await pilot.press("enter")
        assert screen.draft.rule == AllOf((AttributeCondition("country", "in", ("US", "GB")),))


async def test_did_not_and_distinct_orders_in_the_event_editor(store_path: Path) -> None:  # noqa: F811
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("e")
        await type_text(pilot, "purch")
        await pilot.press("enter")
        editor = app.screen
        assert isinstance(editor, EventEditor)
        how = editor.query_one("#count-op", Select)
        how.value = "did_not"
        await pilot.pause()
        assert not editor.query_one("#count-value").display
        assert "✓ No purchase" in str(editor.query_one("#verdict").render())
        await pilot.press("ctrl+s")
        assert screen.draft.rule == AllOf((EventCondition(("purchase",),
                                                          count=CountRule("at_most", 0)),))
        did_not = await settled(pilot, screen)
        assert did_not == expected_count(store_path, screen.draft.segment) == 15
        # Reopened, "did not" is what it shows; then distinct orders, picked from a list.
        await pilot.press("down", "enter")
        editor = app.screen
        assert isinstance(editor, EventEditor)
        assert editor.query_one("#count-op", Select).value == "did_not"
        editor.query_one("#count-op", Select).value = "at_least"
        distinct = editor.query_one("#distinct", Select)
        options = [value for _, value in editor.distinct_fields(("purchase",))]
        assert options[:3] == ["amount", "order_id", "sku"]
        assert dict((v, k) for k, v in editor.distinct_fields(("purchase",)))["order_id"] == (
            "orders  (order_id)")
        distinct.value = "order_id"
        editor.query_one("#count-value", Input).value = "2"
        await pilot.pause()
        assert "✓ Purchase in at least 2 orders" in str(editor.query_one("#verdict").render())
        await pilot.press("ctrl+s")
        assert screen.draft.rule == AllOf((EventCondition(
            ("purchase",), count=CountRule("at_least", 2, "order_id")),))
        assert await settled(pilot, screen) == expected_count(
            store_path, Segment("x", "x", screen.draft.rule))
