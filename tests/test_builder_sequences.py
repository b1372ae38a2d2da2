"""Sequences and field comparisons in the builder, from the keyboard (Pilot), with snapshots.

The store is the one of tests/test_sequences.py, whose cases are counted by hand: the
spec's cart abandonment (viewed shoes, then carted within 2 hours, then did not buy
within 24 hours) matches p1, p6 and p8; its funnel is 8, 6, 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot
from textual.screen import Screen

from store.engines.sqlite import open_store
from store.query import audience
from store.segments.library import resolve_segment
from store.segments.model import (
    AllOf,
    AttributeCondition,
    Duration,
    Gap,
    Segment,
    SequenceCondition,
)
from store.segments.yamlio import load_segment_text
from tests.factory import build_store
from tests.test_builder import BuilderApp, builder, settled, type_text, wait_for
from tests.test_sequences import AS_OF, CART_ABANDONMENT, spec
from tui.builder.condition_editor import ConditionEditor
from tui.builder.screen import BuilderScreen
from tui.builder.sequence_editor import GapEditor, SequenceEditor

BIG = (160, 48)
SMALL = (80, 24)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    build_store(path, spec()).close()
    return path


class SequenceApp(BuilderApp):
    """The builder's test app at the sequence cases' as-of instant."""

    def __init__(self, db_path: Path, start: Callable[[], Screen[Any]]) -> None:
        super().__init__(db_path, start)
        self.as_of = AS_OF


def expected_count(db: Path, segment: Segment) -> int:
    conn = open_store(db, readonly=True)
    try:
        return audience.count(conn, resolve_segment(conn, segment), AS_OF)
    finally:
        conn.close()


def cart_abandonment() -> SequenceCondition:
    text = yaml.safe_dump({"name": "Cart", "rule": CART_ABANDONMENT}, sort_keys=False)
    rule = load_segment_text(text)[0].rule
    assert isinstance(rule, SequenceCondition)
    return rule


def the_editor(app: Any) -> SequenceEditor:
    screen = app.screen
    assert isinstance(screen, SequenceEditor), type(screen)
    return screen


async def funnel_counted(pilot: Pilot[Any]) -> SequenceEditor:
    editor = the_editor(pilot.app)
    await wait_for(pilot, lambda: editor.counts is not None and not editor.counting)
    return editor


async def test_build_the_cart_abandonment_sequence_from_keystrokes(store_path: Path) -> None:
    app = SequenceApp(store_path, BuilderScreen)
    async with app.run_test(size=BIG) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("f")
        await type_text(pilot, "product vi")
        await pilot.press("enter")
        editor = the_editor(app)
        # Step 1: only shoes (the step's where, in the event editor's step form).
        await pilot.press("enter", "a")
        await type_text(pilot, "categ")
        await pilot.press("enter")
        await type_text(pilot, "Shoes")
        await pilot.press("enter", "ctrl+s")
        assert editor.steps[0].where == (AttributeCondition("product.category", "equals",
                                                            "Shoes"),)
        assert (await funnel_counted(pilot)).counts == (8,)  # one step: already its count
        # Step 2: added to cart within 2 hours.
        await pilot.press("a")
        await type_text(pilot, "added to")
        await pilot.press("enter", "g")
        assert isinstance(app.screen, GapEditor)
        await type_text(pilot, "2 hours")
        await pilot.press("enter")
        # Step 3: and then did not buy within 24 hours.
        await pilot.press("a")
        await type_text(pilot, "purchase")
        await pilot.press("enter", "x", "g")
        await type_text(pilot, "24h")
        await pilot.press("enter")
        editor = await funnel_counted(pilot)
        assert editor.counts == (8, 6, 3)
        await pilot.press("ctrl+s")
        shown = await settled(pilot, screen)
        assert screen.draft.rule == AllOf((cart_abandonment(),))
        assert shown == 3 == expected_count(store_path, screen.draft.segment)
        # The tree: a title row, then one row per step with its funnel count.
        tree = screen.rule_tree
        await wait_for(pilot, lambda: all(not n.data.pending for n in tree.every_row()
                                          if n.data is not None))
        steps = tree.step_rows["rule.all[0]"]
        assert [n.data.text for n in steps if n.data is not None] == [
            "1. Viewed Shoes", "2. then added to cart within 2 hours",
            "3. then did not buy within 24 hours"]
        assert all(n.data is not None and n.data.count is not None
                   and n.data.count.funnel == (8, 6, 3) for n in steps)


async def test_steps_move_delete_and_cancel(store_path: Path) -> None:
    sequence = cart_abandonment()
    segment = Segment("cart", "Cart", sequence)
    app = SequenceApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=BIG) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("enter")
        editor = the_editor(app)
        await pilot.press("down", "down")  # the absent last step
        await pilot.press("K")  # moved up: no longer last, so no longer "did not"
        assert [s.types for s in editor.steps] == [("product_view",), ("purchase",),
                                                   ("add_to_cart",)]
        assert not any(s.absent for s in editor.steps)
        await pilot.press("up", "J", "J")  # the first step down twice: it loses no gap...
        assert editor.steps[0].gap is None  # ...and the new first step has none
        await pilot.press("d")
        assert len(editor.steps) == 2
        await pilot.press("escape")
        await pilot.pause()
        assert screen.draft.rule == sequence  # cancelled: nothing changed
        # The gap editor refuses min > max and a unit a gap cannot have.
        await pilot.press("enter", "down", "g")
        gap_editor = app.screen
        assert isinstance(gap_editor, GapEditor)
        await pilot.press("ctrl+u")
        await type_text(pilot, "1 month")
        await pilot.press("enter")
        assert app.screen is gap_editor  # refused, still open
        await pilot.press("ctrl+u")
        await type_text(pilot, "1 hour")
        await pilot.press("tab")
        await type_text(pilot, "90 minutes")
        await pilot.press("enter")
        assert app.screen is gap_editor
        await pilot.press("ctrl+u")
        await type_text(pilot, "30 min")
        await pilot.press("enter")
        editor = the_editor(app)
        assert editor.steps[1].gap == Gap(Duration(30, "minutes"), Duration(1, "hours"))
        await pilot.press("ctrl+s")
        await settled(pilot, screen)
        assert isinstance(screen.draft.rule, SequenceCondition)
        assert screen.draft.rule.steps[1].gap == Gap(Duration(30, "minutes"), Duration(1, "hours"))


async def test_condition_compares_with_another_field(store_path: Path) -> None:
    app = SequenceApp(store_path, BuilderScreen)
    async with app.run_test(size=BIG) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("a")
        await type_text(pilot, "country")
        await pilot.press("enter")
        editor = app.screen
        assert isinstance(editor, ConditionEditor)
        await pilot.press("shift+tab", "shift+tab", "space")  # Compare: with another field
        await type_text(pilot, "with an")
        await pilot.press("enter", "tab", "tab", "space")  # the field list
        await type_text(pilot, "home")
        await pilot.press("enter", "ctrl+s")
        shown = await settled(pilot, screen)
        assert screen.draft.rule == AllOf((AttributeCondition("country", "equals",
                                                              field="home"),))
        assert shown == 1 == expected_count(store_path, screen.draft.segment)
        # Only fields of a compatible type are offered: text with text.
        await pilot.press("down", "enter")
        editor = app.screen
        assert isinstance(editor, ConditionEditor)
        assert {item.value for item in editor.other_fields} == {"home", "id"}


# ---------------------------------------------------------------------- snapshots


@pytest.fixture(autouse=True)
def constant_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BuilderScreen, "clock", staticmethod(lambda: 0.0))


def saved_app(store_path: Path) -> SequenceApp:
    segment = Segment("cart", "Cart abandoners", AllOf((cart_abandonment(), AttributeCondition(
        "score", "greater_or_equal", field="balance"))))
    return SequenceApp(store_path, lambda: BuilderScreen(segment, saved=True))


async def tree_counted(pilot: Pilot[Any]) -> None:
    screen = builder(pilot.app)
    await wait_for(pilot, lambda: screen.previewed == screen.generation and all(
        node.data is not None and not node.data.pending for node in screen.rule_tree.every_row()))
    await pilot.pause(0.1)


async def open_sequence(pilot: Pilot[Any]) -> None:
    await tree_counted(pilot)
    await pilot.press("down", "enter")
    await funnel_counted(pilot)
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_sequence_in_the_tree(snap_compare: Any, store_path: Path,
                                       size: tuple[int, int]) -> None:
    assert snap_compare(saved_app(store_path), terminal_size=size, run_before=tree_counted)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_sequence_editor(snap_compare: Any, store_path: Path,
                                  size: tuple[int, int]) -> None:
    assert snap_compare(saved_app(store_path), terminal_size=size, run_before=open_sequence)


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["160x48", "80x24"])
def test_snapshot_field_comparison_editor(snap_compare: Any, store_path: Path,
                                          size: tuple[int, int]) -> None:
    async def open_comparison(pilot: Pilot[Any]) -> None:
        await tree_counted(pilot)
        await pilot.press("end", "enter")
        await pilot.pause(0.2)

    assert snap_compare(saved_app(store_path), terminal_size=size, run_before=open_comparison)


def test_as_of_is_the_cases(store_path: Path) -> None:
    assert dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC) == AS_OF
