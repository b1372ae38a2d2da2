"""The builder's code view: YAML and PQL side by side, copied with F5, and PQL pasted in
(an AEP definition) becoming the draft, with the same audience as the hand-built one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea

from store.engines.base import engine_for
from store.engines.layout import write_transaction
from store.schema.catalog import set_xdm
from store.segments.library import get_segment
from store.segments.model import AllOf, AttributeCondition
from store.segments.yamlio import load_segment_text
from tests.test_builder import (
    SIZE,
    SPEC_EXAMPLE,
    BuilderApp,
    builder,
    expected_count,
    make_store,
    settled,
    type_text,
    wait_for,
)
from tui.builder.screen import BuilderScreen
from tui.builder.yaml_modal import YamlModal
from tui.screens.segments import SegmentsScreen

XDM_NAMES = (("attribute", "gender", "person.gender"), ("event type", "purchase",
                                                          "commerce.purchases"),
             ("event field", "amount", "commerce.order.priceTotal"))

# The spec's example as AEP exports a segment definition (JSON around the PQL text).
AEP_DEFINITION = json.dumps({
    "name": "Men over 50 who bought shoes",
    "expression": {"type": "PQL", "format": "pql/text", "value": (
        'person.gender = "male" and age > 50\n'
        'and xEvent[eventType = "commerce.purchases" and timestamp occurs <= 90 days before now'
        ' and product.category = "Shoes"].count() >= 2\n'
        'and not inSegment("unsubscribed")')},
}, indent=2)


@pytest.fixture
def named_store(tmp_path: Path) -> Path:
    """The builder tests' store, with XDM names for a few of its fields."""
    path = make_store(tmp_path / "store.db")
    conn = engine_for(path).open_store()
    with write_transaction(conn):
        for kind, name, xdm in XDM_NAMES:
            set_xdm(conn, kind, name, xdm)  # type: ignore[arg-type]
    conn.close()
    return path


def code_view(app: BuilderApp) -> YamlModal:
    modal = app.screen
    assert isinstance(modal, YamlModal), type(modal)
    return modal


async def test_pasted_aep_pql_becomes_the_draft_with_the_same_audience(named_store: Path) -> None:
    app = BuilderApp(named_store, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("y")
        modal = code_view(app)
        pql = modal.query_one("#pql-text", TextArea)
        assert pql.text == "true\n"  # an empty "all of": every profile
        await pilot.press("tab")
        assert modal.focused is pql
        pql.text = AEP_DEFINITION
        await pilot.press("ctrl+s")
        assert app.screen is screen
        hand_built = load_segment_text(SPEC_EXAMPLE)[0]
        assert screen.draft.rule == hand_built.rule
        assert screen.draft.segment.name == "New segment"  # the draft keeps its own name
        assert await settled(pilot, screen) == expected_count(named_store, hand_built)
        await pilot.press("ctrl+z")  # one undoable step
        assert screen.draft.rule == AllOf()


async def test_both_panes_show_the_draft_and_f5_copies_the_focused_one(named_store: Path) -> None:
    segment, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(named_store, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, builder(app))
        await pilot.press("y")
        modal = code_view(app)
        yaml_text = modal.query_one("#yaml-text", TextArea).text
        pql_text = modal.query_one("#pql-text", TextArea).text
        assert "attribute: gender" in yaml_text
        assert pql_text.startswith('person.gender = "male"\nand age > 50\n')
        assert 'eventType = "commerce.purchases"' in pql_text
        await pilot.press("f5")
        assert app.clipboard == yaml_text
        await pilot.press("tab", "f5")
        assert app.clipboard == pql_text
        assert "Copied the PQL (8 lines)." in app.notes


async def test_pql_that_cannot_be_read_is_shown_where_it_is(named_store: Path) -> None:
    app = BuilderApp(named_store, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("y", "tab")
        modal = code_view(app)
        pql = modal.query_one("#pql-text", TextArea)
        pql.text = 'person.gender = "male"\nand person.gendr.contains("x")\n'
        await pilot.press("ctrl+s")
        assert app.screen is modal
        problems = str(modal.query_one("#yaml-problems").render())
        assert "line 2: column 5: unknown attribute 'person.gendr'" in problems
        assert pql.cursor_location == (1, 0)
        pql.text = 'person.gender.contains("MA")'  # read, with a warning about case
        await pilot.press("ctrl+s")
        assert app.screen is screen
        assert any("case-sensitive in PQL" in note for note in app.notes)


async def test_a_segment_pql_cannot_say_explains_why(named_store: Path) -> None:
    text = SPEC_EXAMPLE.replace("count: {op: at_least, value: 2}",
                                "count: {op: at_least, value: 2, distinct: order_id}")
    segment, _ = load_segment_text(text)
    app = BuilderApp(named_store, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, builder(app))
        await pilot.press("y")
        modal = code_view(app)
        assert modal.query_one("#pql-text", TextArea).text == ""
        note: Any = modal.query_one("#pql-note").render()
        assert "No PQL form: rule.all[2]: a distinct count (of 'order_id') has no PQL form" in str(
            note)


async def test_the_segments_area_imports_and_exports_pql_files(
        named_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # short relative paths to type
    (tmp_path / "men.pql").write_text('person.gender = "male" and age > 50\n', encoding="utf-8")
    app = BuilderApp(named_store, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, SegmentsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 1)
        await pilot.press("i")
        await type_text(pilot, "men.pql")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.selected_id() == "men")
        conn = engine_for(named_store).open_store(readonly=True)
        saved = get_segment(conn, "men")
        conn.close()
        assert saved is not None and saved[0].rule == AllOf((
            AttributeCondition("gender", "equals", "male"),
            AttributeCondition("age", "greater_than", 50)))
        await pilot.press("x", "ctrl+u")
        await type_text(pilot, "out.pql")
        await pilot.press("enter")
        await wait_for(pilot, (tmp_path / "out.pql").exists)
        assert (tmp_path / "out.pql").read_text(encoding="utf-8") == (
            'person.gender = "male" and age > 50\n')
