"""The 360° profile view: attributes, summary, timeline pages, segments and "why"."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList, Static, Tree

from store.engines.sqlite import connect
from store.query.evaluator import load_profile, matches
from store.query.profiles import load_attributes, profile_summary, timeline_page
from store.schema.catalog import Catalog
from store.schema.values import to_epoch_seconds
from store.segments.library import resolve_saved
from store.segments.timeutil import age_on
from store.segments.yamlio import load_segment_text
from tests.app_store import AS_OF, SEGMENTS, build, events, profile_row, settle, table_ready
from tui.app import make_app
from tui.screens.profile_view import ProfileViewScreen, TimelineTable
from tui.screens.profiles import ProfilesScreen

TODAY = AS_OF.date()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("view") / "store.db")


@pytest.fixture()
def conn(store: Path) -> sqlite3.Connection:
    return connect(store, readonly=True)


def events_of(profile_id: str) -> list[dict[str, Any]]:
    return [e for e in events() if e["profile_id"] == profile_id]


# ---------------------------------------------------------------------- store level


def test_attributes_are_labelled_grouped_and_age_is_derived(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    values = {a.name: a for a in load_attributes(conn, catalog, 3, TODAY) or []}
    row = profile_row(3)
    assert values["first_name"].label == "First name"
    assert values["first_name"].group == "Identity"
    assert values["email"].value == row["email"]
    assert values["age"].value == age_on(row["birth_date"], TODAY)
    assert values["age"].derived
    assert load_attributes(conn, catalog, 10_000, TODAY) is None


def test_summary_counts_orders_spend_and_channels(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    mine = events_of("P0001")
    purchases = [e for e in mine if e["type"] == "purchase"]
    summary = profile_summary(conn, catalog, 1)
    assert summary.events == len(mine)
    assert summary.orders == len({e["order_id"] for e in purchases})
    assert summary.spend == pytest.approx(sum(e["amount"] for e in purchases))
    assert summary.first_ts == min(to_epoch_seconds(e["timestamp"]) for e in mine)
    assert summary.last_ts == max(to_epoch_seconds(e["timestamp"]) for e in mine)
    assert {a.type: a.count for a in summary.activity} == {
        "purchase": len(purchases), "page_view": len(mine) - len(purchases)}
    empty = profile_summary(conn, catalog, 4)  # 4 % 4 == 0: no events
    assert empty.events == 0 and empty.first_ts is None and empty.orders == 0


def test_timeline_pages_newest_first_with_linked_products(conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    expected = [tuple(r) for r in conn.execute(
        "SELECT ts, pk FROM events WHERE profile_pk = 1 ORDER BY ts DESC, pk DESC")]
    seen: list[tuple[int, int]] = []
    key = None
    while page := timeline_page(conn, catalog, 1, older_than=key, limit=40):
        seen += [e.key for e in page]
        key = page[-1].key
    assert seen == expected
    back: list[tuple[int, int]] = []
    key = None
    first = True
    while page := timeline_page(conn, catalog, 1, newer_than=key, oldest=first, limit=37):
        first = False
        back = [e.key for e in page] + back
        key = page[0].key
    assert back == expected
    purchase = next(e for e in timeline_page(conn, catalog, 1, limit=10) if e.type == "purchase")
    details = {d.name: d.value for d in purchase.details}
    assert details["product.name"] in {"Trail Runner", "Harbor Boot", "Canvas Tote"}
    assert "product.category" in details and "amount" in details
    assert "page" not in details, "fields of other event types are not shown"


# ---------------------------------------------------------------------- the screen


@pytest.fixture()
def small_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TimelineTable, "PAGE_SIZE", 30)
    monkeypatch.setattr(TimelineTable, "MAX_ROWS", 90)
    monkeypatch.setattr(TimelineTable, "KEEP_ROWS", 60)
    monkeypatch.setattr(TimelineTable, "EDGE", 5)


def view_of(app: Any) -> ProfileViewScreen:
    screen = app.screen
    assert isinstance(screen, ProfileViewScreen)
    return screen


async def open_view(app: Any, pilot: Any, pk: int, segment_id: Any = None) -> ProfileViewScreen:
    await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
    app.open_profile(pk, segment_id)
    await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen))
    view = view_of(app)
    await settle(pilot, lambda: view.attributes is not None and view.explanation is not None)
    return view


async def test_view_shows_name_attributes_and_summary(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(140, 44)) as pilot:
        view = await open_view(app, pilot, 1)
        row = profile_row(1)
        assert str(view.query_one("#pv-name", Static).content) == (
            f"{row['first_name']} {row['last_name']}")
        assert "P0001" in str(view.query_one("#pv-meta", Static).content)
        assert view.summary is not None and view.summary.events == 250
        groups = [a.group for a in view.attributes or []]
        assert groups.index("Identity") < groups.index("Loyalty")
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))


async def test_timeline_scrolls_across_pages_in_order(store: Path, conn: sqlite3.Connection,
                                                      small_timeline: None) -> None:
    expected = [r[0] for r in conn.execute(
        "SELECT pk FROM events WHERE profile_pk = 1 ORDER BY ts DESC, pk DESC")]
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(140, 44)) as pilot:
        view = await open_view(app, pilot, 1)
        table = view.query_one(TimelineTable)
        await settle(pilot, table_ready(table))
        assert app.focused is table
        assert [e.pk for e in table.window] == expected[:30]
        for index in range(1, 40):
            await pilot.press("down")
            await settle(pilot, lambda i=index: table.current is not None
                         and table.current.pk == expected[i])
        window = [e.pk for e in table.window]
        start = expected.index(window[0])
        assert window == expected[start:start + len(window)]
        await pilot.press("end")
        await settle(pilot, lambda: table.current is not None and table.current.pk == expected[-1])


async def test_segments_list_marks_membership_like_the_evaluator(store: Path,
                                                                 conn: sqlite3.Connection) -> None:
    catalog = Catalog.load(conn)
    profile = load_profile(conn, catalog, 3)
    expected = {sid: matches(profile, resolve_saved(conn, sid), AS_OF) for sid in SEGMENTS}
    assert expected["gold-over-30"] and not expected["smiths"]
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(140, 44)) as pilot:
        view = await open_view(app, pilot, 3)
        assert {sid for sid, _ in view.member_of} == {s for s, inside in expected.items() if inside}
        options = view.query_one("#pv-segments", OptionList)
        prompts = {options.get_option_at_index(i).id: str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)}
        for segment_id, inside in expected.items():
            assert prompts[segment_id].startswith("✓" if inside else "✗")


async def test_why_panel_explains_each_condition(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(140, 44)) as pilot:
        view = await open_view(app, pilot, 3, "gold-over-30")
        tree: Tree[Any] = view.query_one("#pv-why", Tree)
        root = str(tree.root.label)
        assert root.startswith("✓ All of") and "2 of 2 matched" in root
        children = [str(child.label) for child in tree.root.children]
        assert children[0].startswith("✓") and "gold" in children[0]
        age = age_on(profile_row(3)["birth_date"], AS_OF.date())
        assert children[1].startswith("✓") and f"age {age}" in children[1]
        assert "Gold members over 30" in str(tree.border_title)
        # Move to another segment: the explanation follows.
        options = view.query_one("#pv-segments", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.focus()
        options.highlighted = ids.index("smiths")
        await settle(pilot, lambda: view.segment_id == "smiths"
                     and str(tree.root.label).startswith("✗"))
        assert "Last name" in str(tree.root.label) or "last_name" in str(tree.root.label)


async def test_an_unsaved_segment_from_the_builder_is_explained_too(store: Path) -> None:
    segment, _ = load_segment_text(
        "id: draft-x\nname: Draft X\nrule:\n  attribute: country\n  op: equals\n  value: NL\n")
    assert profile_row(4)["country"] == "NL"
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(140, 44)) as pilot:
        view = await open_view(app, pilot, 4, segment)
        tree: Tree[Any] = view.query_one("#pv-why", Tree)
        assert str(tree.root.label).startswith("✓ Country is NL")
        assert "Draft X (unsaved)" in str(tree.border_title)
        assert ("\0draft", "Draft X (unsaved)") in view.member_of


async def test_the_why_hint_is_wrapped_not_cut(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.segments.library as library

    monkeypatch.setattr(library, "list_segments", lambda conn: [])
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        app.open_profile(3)
        await settle(pilot, lambda: isinstance(app.screen, ProfileViewScreen))
        view = view_of(app)
        await settle(pilot, lambda: view.attributes is not None)
        hint = view.query_one("#pv-why-hint", Static)
        await settle(pilot, lambda: "Save a segment" in str(hint.render()))
        await pilot.pause()
        assert hint.display and not view.query_one("#pv-why", Tree).display
        lines = ["".join(seg.text for seg in hint.render_line(y)).strip()
                 for y in range(hint.size.height)]
        shown = " ".join(line for line in lines if line)
        assert shown.endswith("to see why a profile is in it or not.")
        assert view.title.startswith("Profile · ")
