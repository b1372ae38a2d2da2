"""The segment builder driven from the keyboard (Pilot), on a small deterministic store.

The store has what the spec's example segment needs (gender, a birth date
with the derived age, purchases linked to products with a category, and a
saved ``unsubscribed`` segment). The main test builds "Men over 50 who bought
shoes" from keystrokes alone and checks the saved definition and the count
shown against ``store.audience.count`` and the CLI.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import OptionList

import tui.app
from store.engines.base import Connection, engine_for
from store.engines.sqlite import open_store
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.library import get_segment, list_segments, resolve_saved, resolve_segment, save_segment
from store.segments.model import AllOf, AttributeCondition, NotOf, Segment, SegmentRef
from store.segments.timeutil import as_of_date
from store.segments.yamlio import load_segment_text
from tests.factory import SPEC_EXAMPLE_YAML as SPEC_EXAMPLE
from tests.factory import EntitySpec, StoreSpec, build_store
from tui.app import AudiencesApp
from tui.builder.messages import SavedSegmentsLoaded
from tui.builder.screen import BuilderScreen
from tui.builder.yaml_modal import YamlModal
from tui.host import Clipboard
from tui.screens.segments import SegmentsScreen
from tui.widgets.queries import QueryRunner

AS_OF = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)  # small enough to draw fast, large enough for the builder's two panes



# ------------------------------------------------------------------------ the store


def example_spec() -> StoreSpec:
    """60 profiles; purchases of shoes and boots at known days before the as-of date."""
    genders = ["male", "female", "male", "other", None]
    profiles = []
    for n in range(60):
        profiles.append({
            "id": f"p{n:02d}",
            "gender": genders[n % 5],
            "birth_date": dt.date(1950 + (n * 7) % 50, 1 + n % 12, 1 + n % 28),
            "email_opt_in": n % 4 != 0,
            "country": ["US", "GB", "DE"][n % 3],
        })
    products = [{"sku": "SH-1", "category": "Shoes"}, {"sku": "SH-2", "category": "Shoes"},
                {"sku": "BO-1", "category": "Boots"}]
    events = []
    for n in range(60):
        for k in range(n % 4):  # 0..3 purchases each
            sku = products[(n + k) % 3]["sku"]
            days_back = 10 + 40 * k + n % 7  # some inside the last 90 days, some not
            events.append({"profile_id": f"p{n:02d}", "type": "purchase",
                           "timestamp": AS_OF - dt.timedelta(days=days_back),
                           "sku": sku, "amount": 20.0 + n, "order_id": f"o{n}-{k}"})
        events.append({"profile_id": f"p{n:02d}", "type": "page_view",
                       "timestamp": AS_OF - dt.timedelta(days=n % 30)})
    return StoreSpec(
        attributes={"gender": "string", "birth_date": "date", "email_opt_in": "boolean",
                    "country": "string"},
        profiles=profiles,
        event_fields={"sku": "string", "amount": "number", "order_id": "string"},
        events=events,
        entities={"product": EntitySpec("sku", "string", "sku", {"category": "string"},
                                        products)},
        derived_age_from="birth_date",
    )


def make_store(path: Path) -> Path:
    conn = build_store(path, example_spec())
    unsubscribed, lines = load_segment_text(
        "id: unsubscribed\nname: Unsubscribed\nrule:\n  attribute: email_opt_in\n  op: is_false\n")
    save_segment(conn, resolve_segment(conn, unsubscribed, lines))
    conn.close()
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store.db")


# --------------------------------------------------------------------------- the app


class BuilderApp(App[None]):
    """The services the builder and the Segments area use from the app (an ``AppHost``,
    tui/host.py), and nothing else: a fixed as-of instant, no header count, no keymap.
    It looks like the app: the same style sheet and the same breakpoints."""

    CSS_PATH = str(Path(tui.app.__file__).with_name("app.tcss"))
    HORIZONTAL_BREAKPOINTS = AudiencesApp.HORIZONTAL_BREAKPOINTS
    VERTICAL_BREAKPOINTS = AudiencesApp.VERTICAL_BREAKPOINTS

    def __init__(self, db_path: Path, start: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.db_path = db_path
        self.engine = engine_for(db_path)
        self.campaign_db_path = self.engine.default_campaign_path()
        self.as_of = AS_OF
        self.queries = QueryRunner(self.read_connection)
        self.builder_clipboard = Clipboard()
        self.catalog = self.refresh_catalog()
        self.start = start
        self.opened: list[tuple[int, Any]] = []
        self.activated: list[str] = []
        self.notes: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(self.start())

    def read_connection(self) -> Connection:
        return self.engine.connect(readonly=True)

    def refresh_catalog(self) -> Catalog:
        conn = self.engine.open_store(readonly=True)
        try:
            self.catalog = Catalog.load(conn)
        finally:
            conn.close()
        return self.catalog

    def as_of_instant(self) -> dt.datetime:
        return self.as_of

    def today(self) -> dt.date:
        return as_of_date(self.as_of)

    def show_error(self, message: str) -> None:
        self.notify(message, severity="error")

    def open_profile(self, pk: int, segment_id: Any = None) -> None:
        self.opened.append((pk, segment_id))

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.notes.append(message)
        super().notify(message, *args, **kwargs)

    def action_activate_segment(self, segment_id: str) -> None:
        self.activated.append(segment_id)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``condition`` holds (workers finish in threads)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


def builder(app: App[Any]) -> BuilderScreen:
    screen = app.screen
    assert isinstance(screen, BuilderScreen), type(screen)
    return screen


async def settled(pilot: Pilot[Any], screen: BuilderScreen) -> int:
    """Wait for the count of the current edit; returns it."""
    await wait_for(pilot, lambda: screen._debounce is None and screen.shown_count is not None)
    assert screen.shown_count is not None
    return screen.shown_count


async def add_condition(pilot: Pilot[Any], attribute: str, value: str,
                        op_search: str | None = None) -> None:
    await pilot.press("a")
    await type_text(pilot, attribute)
    await pilot.press("enter")
    if op_search is not None:
        await pilot.press("shift+tab", "space")
        await type_text(pilot, op_search)
        await pilot.press("enter", "tab")
    await type_text(pilot, value)
    await pilot.press("enter")


def expected_count(db: Path, segment: Segment) -> int:
    conn = open_store(db, readonly=True)
    try:
        return audience.count(conn, resolve_segment(conn, segment), AS_OF)
    finally:
        conn.close()


# ------------------------------------------------------------------------------ tests


async def test_build_the_spec_example_from_keystrokes(store_path: Path, tmp_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = builder(app)
        await settled(pilot, screen)

        await add_condition(pilot, "gend", "male")
        await add_condition(pilot, "age", "50", op_search="gr")
        # The event: purchase, at least 2 times, in the last 90 days, product category Shoes.
        await pilot.press("e")
        await type_text(pilot, "purch")
        await pilot.press("enter")
        await type_text(pilot, "2")
        await pilot.press("tab", "tab", "space")  # what is counted (events), the window kind
        await type_text(pilot, "in")
        await pilot.press("enter", "tab")
        await type_text(pilot, "90d")
        await pilot.press("tab", "a")  # to the where list, add
        await type_text(pilot, "categ")
        await pilot.press("enter")
        await type_text(pilot, "Shoes")
        await pilot.press("enter", "ctrl+s")
        # Not in the unsubscribed segment.
        await pilot.press("r")
        await type_text(pilot, "uns")
        await pilot.press("enter", "n")
        shown = await settled(pilot, screen)

        await pilot.press("s")
        await type_text(pilot, "Men over 50 who bought shoes")
        await pilot.press("tab")
        await type_text(pilot, "men-over-50-shoes")
        await pilot.press("tab")
        await type_text(pilot, "Optional free text.")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.draft.saved and not screen.draft.dirty)

    expected, _ = load_segment_text(SPEC_EXAMPLE)
    conn = open_store(store_path, readonly=True)
    found = get_segment(conn, "men-over-50-shoes")
    conn.close()
    assert found is not None
    assert found[0] == expected
    truth = expected_count(store_path, expected)
    assert shown == truth
    assert 0 < truth < 60  # the example selects some profiles, not all

    spec_file = tmp_path / "men.yaml"
    spec_file.write_text(SPEC_EXAMPLE)
    (tmp_path / "unsubscribed.yaml").write_text(
        "name: Unsubscribed\nrule:\n  attribute: email_opt_in\n  op: is_false\n")
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "count", str(spec_file), "--db", str(store_path),
         "--as-of", AS_OF.isoformat(), "--json"],
        capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["count"] == shown


async def test_tree_shows_counts_and_waterfall(store_path: Path) -> None:
    expected, _ = load_segment_text(SPEC_EXAMPLE)
    app = BuilderApp(store_path, lambda: BuilderScreen(expected))
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        tree = screen.rule_tree
        await wait_for(pilot, lambda: all(not n.data.pending for n in tree.rows.values()
                                          if n.data is not None))
        conn = open_store(store_path, readonly=True)
        truth = {c.path: c for c in audience.node_counts(conn, resolve_segment(conn, expected),
                                                         AS_OF)}
        conn.close()
        for path, node in tree.rows.items():
            assert node.data is not None and node.data.count == truth[path]
        # The last child's waterfall is the whole audience.
        assert truth["rule.all[3]"].remaining == screen.shown_count
        await wait_for(pilot, lambda: bool(screen.saved_segments))  # names come from a worker
        labels = [node.data.text for node in tree.rows.values() if node.data is not None]
        assert labels == ["All of:", "Gender is male", "Age is greater than 50",
                          "Purchase at least 2 times in the last 90 days where product category"
                          " is Shoes", "Not in segment Unsubscribed"]
        # Names that arrive after the counts change the words, not the counts.
        screen.saved_segments_loaded(SavedSegmentsLoaded(0, list(screen.saved_segments)))
        for path, node in tree.rows.items():
            assert node.data is not None and node.data.count == truth[path]
            assert not node.data.pending


async def test_undo_and_redo_restore_tree_and_count(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        everyone = await settled(pilot, screen)
        assert everyone == 60
        await add_condition(pilot, "gender", "male")
        men = await settled(pilot, screen)
        await add_condition(pilot, "country", "US")
        both = await settled(pilot, screen)
        assert both < men < everyone
        await pilot.press("ctrl+z")
        assert await settled(pilot, screen) == men
        assert screen.draft.rule == AllOf((AttributeCondition("gender", "equals", "male"),))
        await pilot.press("ctrl+z")
        assert await settled(pilot, screen) == everyone
        await pilot.press("ctrl+y", "ctrl+y")
        assert await settled(pilot, screen) == both
        assert screen.rule_tree.selected_path == "rule.all[1]"
        await pilot.press("up", "n")  # negate gender
        assert await settled(pilot, screen) == expected_count(store_path, screen.draft.segment)
        assert isinstance(screen.draft.rule, AllOf)
        assert isinstance(screen.draft.rule.children[0], NotOf)


async def test_invalid_value_is_marked_and_left_out(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await add_condition(pilot, "gender", "male")
        men = await settled(pilot, screen)
        await add_condition(pilot, "age", "abc")
        assert await settled(pilot, screen) == men  # the bad condition is left out
        assert set(screen.problems) == {"rule.all[1]"}
        assert "integer" in screen.problems["rule.all[1]"].message
        row = screen.rule_tree.selected_row
        assert row is not None and row.problem is not None
        assert "✗" in str(screen.query_one("#node-status").render())
        # Saving is refused while a condition is invalid.
        screen.draft.mark_saved()
        await pilot.press("s")
        await pilot.pause(0.3)
        conn = open_store(store_path, readonly=True)
        assert [s.id for s in list_segments(conn)] == ["unsubscribed"]
        conn.close()
        # Fixing it (enter edits) brings it back into the count.
        await pilot.press("enter", "ctrl+u")
        await type_text(pilot, "40")
        await pilot.press("enter")
        count = await settled(pilot, screen)
        assert screen.problems == {}
        assert count == expected_count(store_path, screen.draft.segment) < men


async def test_value_editor_reports_problems_as_you_type(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await type_text(pilot, "birth")
        await pilot.press("enter")
        editor = app.screen
        verdict = editor.query_one("#verdict")
        await pilot.press("ctrl+u")
        await type_text(pilot, "30 dayz")
        assert "✗" in str(verdict.render())
        await pilot.press("backspace")
        await type_text(pilot, "s")
        assert "in the last 30 days" in str(verdict.render())


async def test_superseded_count_is_never_shown(store_path: Path) -> None:
    """The first edit's count is held back until the second edit's count is on screen."""
    release = threading.Event()
    shown: list[int | None] = []
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        slow_generation: list[int] = []

        def hook(stage: str, generation: int) -> None:
            if stage == "count" and generation == slow_generation[0]:
                release.wait(10)

        await add_condition(pilot, "gender", "male")
        slow_generation.append(screen.generation)
        screen.preview_hook = hook
        await pilot.pause(DEBOUNCE + 0.2)  # the slow count has started and is held
        await add_condition(pilot, "country", "US")
        final = await settled(pilot, screen)
        release.set()
        for _ in range(20):  # give the old worker every chance to deliver its result
            shown.append(screen.shown_count)
            await pilot.pause(0.05)
        assert set(shown) == {final}
        assert final == expected_count(store_path, screen.draft.segment)
        men_only = Segment("x", "x", AllOf((AttributeCondition("gender", "equals", "male"),)))
        assert expected_count(store_path, men_only) != final


async def test_keys_are_handled_while_a_count_runs(store_path: Path) -> None:
    """A count held inside its worker does not hold the keys: the cursor moves, the tree
    and the preview say the count is pending, and the count arrives once let go."""
    release = threading.Event()
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await add_condition(pilot, "gender", "male")
        await settled(pilot, screen)
        screen.preview_hook = lambda stage, generation: release.wait(10) if stage == "count" else None
        await add_condition(pilot, "country", "US")
        await pilot.pause(DEBOUNCE + 0.2)  # the count has started and is held
        tree = screen.rule_tree
        for key in ("up", "up", "down"):
            before = tree.cursor_line
            await pilot.press(key)
            assert tree.cursor_line != before
        assert screen.shown_count is None
        assert "counting" in str(screen.preview.query_one("#count-share").render())
        release.set()
        assert await settled(pilot, screen) == expected_count(store_path, screen.draft.segment)


DEBOUNCE = 0.25


async def test_reference_problems_and_yaml_editing(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        await pilot.press("y")
        modal = app.screen
        assert isinstance(modal, YamlModal)
        area = modal.query_one("TextArea")
        area.text = ("id: new-segment\nname: From YAML\nrule:\n  any:\n    - segment: nope\n"
                     "    - attribute: gendr\n      op: equals\n      value: x\n")
        await pilot.press("ctrl+s")
        problems = str(modal.query_one("#yaml-problems").render())
        assert "line 5" in problems and "nope" in problems
        assert "line 6" in problems and "gendr" in problems
        area.text = "id: new-segment\nname: From YAML\nrule:\n  any:\n    - segment: unsubscribed\n"
        await pilot.press("ctrl+s")
        assert app.screen is screen
        assert screen.draft.segment.name == "From YAML"
        assert screen.draft.rule == AllOf() or screen.draft.rule.children == (  # type: ignore[union-attr]
            SegmentRef("unsubscribed"),)
        count = await settled(pilot, screen)
        assert count == 15  # every fourth profile has no email consent
        await pilot.press("ctrl+z")  # undoes the rule; the name is not part of the history
        assert screen.draft.rule == AllOf()
        assert screen.draft.segment.name == "From YAML"


async def test_sample_opens_the_profile_with_the_draft(store_path: Path) -> None:
    app = BuilderApp(store_path, BuilderScreen)
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await add_condition(pilot, "gender", "male")
        await settled(pilot, screen)
        sample = screen.preview.query_one("#sample", OptionList)
        await wait_for(pilot, lambda: sample.option_count > 0)
        await pilot.press("tab", "enter")
        assert len(app.opened) == 1
        _pk, target = app.opened[0]
        assert isinstance(target, Segment) and target.rule == screen.draft.rule


async def test_escape_with_unsaved_changes_asks_first(store_path: Path) -> None:
    app = BuilderApp(store_path, SegmentsScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = builder(app)
        await add_condition(pilot, "gender", "male")
        await pilot.press("escape")
        assert type(app.screen).__name__ == "ConfirmModal"
        await pilot.press("escape")  # keep editing
        assert app.screen is screen
        await pilot.press("escape", "d")  # discard
        await pilot.pause()
        assert isinstance(app.screen, SegmentsScreen)


async def test_activation_needs_a_saved_segment(store_path: Path) -> None:
    conn = open_store(store_path, readonly=True)
    resolved = resolve_saved(conn, "unsubscribed")
    conn.close()
    app = BuilderApp(store_path, lambda: BuilderScreen(resolved.segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("A")
        assert app.activated == ["unsubscribed"]
        await add_condition(pilot, "gender", "male")
        await pilot.press("A")
        assert app.activated == ["unsubscribed"]  # unsaved changes: not activated


# ------------------------------------------------------------- typed values, ranking


def test_value_text_parses_what_people_type() -> None:
    from store.segments.model import Period, RelativeDate
    from tui.builder.value_text import (
        parse_list,
        parse_period,
        parse_relative_date,
        parse_scalar,
        to_text,
    )

    assert parse_period("30 days") == Period(30, "days")
    assert parse_period("90d") == Period(90, "days")
    assert parse_period("last 2 weeks") == Period(2, "weeks")
    assert parse_period("1 year") == Period(1, "years")
    assert parse_period("45") == Period(45, "days")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_period("30 dayz")
    with pytest.raises(ValueError):
        parse_period("soon")
    assert parse_relative_date("today") == RelativeDate("today")
    assert parse_relative_date("yesterday") == RelativeDate("ago", 1, "days")
    assert parse_relative_date("30 days ago") == RelativeDate("ago", 30, "days")
    assert parse_relative_date("in 2 weeks") == RelativeDate("from_now", 2, "weeks")
    assert parse_relative_date("3 months from now") == RelativeDate("from_now", 3, "months")
    assert parse_relative_date("2024-01-31") is None
    assert parse_scalar(" 50 ", "integer") == 50
    assert parse_scalar("fifty", "integer") == "fifty"  # left for the validator to explain
    assert parse_scalar("2.5", "number") == 2.5
    assert parse_scalar("2 weeks ago", "date") == RelativeDate("ago", 2, "weeks")
    assert parse_scalar("2024-01-31", "date") == "2024-01-31"
    assert parse_list("Shoes, Boots,, ", "string") == ("Shoes", "Boots")
    assert parse_list("1, 2", "integer") == (1, 2)
    for value in (RelativeDate("ago", 1, "weeks"), RelativeDate("from_now", 3, "days"),
                  RelativeDate("today"), Period(1, "months"), Period(6, "months")):
        text = to_text(value)
        parsed = parse_period(text) if isinstance(value, Period) else parse_relative_date(text)
        assert parsed == value, text
    assert to_text(dt.date(2025, 1, 31)) == "2025-01-31"
    assert to_text(("a", "b")) == "a, b"


def test_picker_ranks_exact_and_prefix_matches_first(store_path: Path) -> None:
    from tui.builder.pickers import attribute_items, event_field_items, rank

    conn = open_store(store_path, readonly=True)
    catalog = Catalog.load(conn)
    conn.close()
    assert rank("age", attribute_items(catalog))[0].value == "age"
    assert rank("gend", attribute_items(catalog))[0].value == "gender"
    fields = event_field_items(catalog, ("purchase",))
    assert rank("cat", fields)[0].value == "product.category"
    assert {item.value for item in event_field_items(catalog, numeric_only=True)} == {"amount"}
    assert rank("zzzz", attribute_items(catalog)) == []
    assert len(rank("", attribute_items(catalog))) == len(catalog.attributes)


ROUND_TRIP = """\
name: Every editor
rule:
  all:
    - attribute: age
      op: between
      value: [18, 30]
    - attribute: country
      op: in
      value: [US, GB]
    - attribute: birth_date
      op: after
      value: {ago: 40, unit: years}
    - attribute: birth_date
      op: in_next
      value: {amount: 2, unit: weeks}
    - attribute: email_opt_in
      op: is_true
    - event: [purchase, page_view]
      within: {between: ['2025-01-01', '2025-06-30']}
      count: {op: between, value: [1, 3], distinct: order_id}
      aggregate: {fn: avg, attribute: amount, op: between, value: [10, 99.5]}
    - event: '*'
      within: {last: 1, unit: months}
      count: {op: at_most, value: 0}
"""


async def test_every_editor_gives_back_what_it_was_given(store_path: Path) -> None:
    """Opening each condition's editor and applying it unchanged changes nothing."""
    segment, _ = load_segment_text(ROUND_TRIP)
    app = BuilderApp(store_path, lambda: BuilderScreen(segment, saved=True))
    async with app.run_test(size=SIZE) as pilot:
        screen = builder(app)
        await settled(pilot, screen)
        assert screen.problems == {}
        for _ in segment.rule.children:  # type: ignore[union-attr]
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: app.screen is not screen)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.screen is screen)
        assert screen.draft.segment == segment
        assert not screen.draft.dirty and screen.draft.undo_stack == []
