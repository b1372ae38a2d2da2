"""The builder's demo polish, driven from the keyboard: YAML edits are not lost to escape, a
name already used is warned about, the automatic breakdown avoids what the rule fixes, shares
have one precision."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TextArea

from store.segments.model import AllOf
from store.segments.yamlio import load_segment_text
from tests.test_builder import (
    SIZE,
    SPEC_EXAMPLE,
    BuilderApp,
    builder,
    make_store,
    settled,
    type_text,
    wait_for,
)
from tui.builder.modals import SegmentInfoModal
from tui.builder.preview import format_share
from tui.builder.screen import BuilderScreen
from tui.builder.yaml_modal import YamlModal
from tui.widgets.dialog import ConfirmModal


def test_shares_have_one_precision() -> None:
    assert [format_share(n, 50_000) for n in (25_000, 1_550, 35, 23, 1, 0)] == [
        "50.0%", "3.1%", "0.1%", "<0.1%", "<0.1%", "0.0%"]
    assert format_share(49_999, 50_000) == ">99.9%"
    assert format_share(50_000, 50_000) == "100.0%"
    assert format_share(3, 0) == ""


async def test_escape_in_the_yaml_editor_asks_before_discarding_edits(tmp_path: Path) -> None:
    app = BuilderApp(make_store(tmp_path / "s.db"), BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("y", "escape")  # nothing edited: closes at once
        assert app.screen is screen
        await pilot.press("y")
        modal = app.screen
        assert isinstance(modal, YamlModal)
        await pilot.press("end")
        await type_text(pilot, "  # edited")
        await pilot.press("escape")
        question = app.screen
        assert isinstance(question, ConfirmModal)
        assert question.title_text == "Discard the YAML edits?"
        await pilot.press("escape")  # keep editing
        assert app.screen is modal
        assert "# edited" in modal.query_one(TextArea).text
        await pilot.press("escape", "d")  # discard
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.draft.segment.name == "New segment"


async def test_naming_a_segment_like_a_saved_one_warns_first(tmp_path: Path) -> None:
    app = BuilderApp(make_store(tmp_path / "s.db"), BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await wait_for(pilot, lambda: bool(screen.saved_segments))
        await pilot.press("i")
        modal = app.screen
        assert isinstance(modal, SegmentInfoModal)
        await type_text(pilot, "Unsubscribed")
        await pilot.press("tab", "ctrl+u")
        await type_text(pilot, "unsubscribed-2")
        warning = str(modal.query_one("#info-error").render())
        assert "'Unsubscribed' is already the name of 'unsubscribed'" in warning
        await pilot.press("enter")
        assert app.screen is modal  # warned once
        await pilot.press("enter")  # kept anyway
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.draft.segment.name == "Unsubscribed"


async def test_the_automatic_breakdown_avoids_an_attribute_the_rule_fixes(tmp_path: Path) -> None:
    """The example segment says "gender is male": the breakdown is by another attribute.
    Removing that condition brings gender back."""
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    assert "gender" in SPEC_EXAMPLE
    app = BuilderApp(make_store(tmp_path / "s.db"), lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        title = screen.preview.query_one("#breakdown-title")
        await settled(pilot, screen)
        await wait_for(pilot, lambda: str(title.render()).startswith("BY "))
        assert "GENDER" not in str(title.render())
        assert screen.breakdown_attribute is None  # picked by the app, not pinned

        await pilot.press("b")
        await type_text(pilot, "gender")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "BY GENDER" in str(title.render()))
        assert screen.breakdown_attribute == "gender"  # the user's choice stays


async def test_indent_and_outdent_move_a_node_into_and_out_of_a_group(tmp_path: Path) -> None:
    """Wrap "Age" in a group, then ">" moves the purchase condition below it into that group
    and "<" moves it back out; both from the keyboard, both undoable."""
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(make_store(tmp_path / "s.db"), lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        original = screen.draft.rule
        await pilot.press("down", "down", "w")  # Age alone in a new "all of" group
        assert screen.rule_tree.selected_path == "rule.all[1]"
        await pilot.press("down", "down")  # past Age, onto the purchase condition
        assert screen.rule_tree.selected_path == "rule.all[2]"
        await pilot.press("greater_than_sign")
        assert screen.rule_tree.selected_path == "rule.all[1].all[1]"
        rule = screen.draft.rule
        assert isinstance(rule, AllOf) and len(rule.children) == 3
        assert rule.children[1] == AllOf((original.children[1], original.children[2]))  # type: ignore[union-attr]
        await pilot.press("less_than_sign")
        assert screen.rule_tree.selected_path == "rule.all[2]"
        await pilot.press("ctrl+z", "ctrl+z", "ctrl+z")
        assert screen.draft.rule == original
        await settled(pilot, screen)
