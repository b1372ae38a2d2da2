"""The profile browser's quick search on every engine: every text attribute is searched, and
the engine's search index (store/schema/search.py) only narrows, never changes, the results.

The reference is written here in Python: a word matches a text when the text holds it, with
ASCII letters folded to lower case and nothing else folded (SQLite's LIKE, the search's rule).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engines.base import Connection, engine_for
from store.ingest.importer import import_profiles
from store.query.profiles import Listing, ProfileQuery, search_terms
from store.schema.catalog import Catalog
from store.schema.search import ensure_search_index, search_columns, searchable_attributes
from tests.services.fixtures import ENGINE_KINDS, fresh_schema

TODAY = dt.date(2026, 11, 1)
# Letters that fold differently under ASCII-only and Unicode case folding, LIKE's wildcards and
# escape character, quotes (FTS5's phrase syntax), and plain letters and digits.
ALPHABET = "abcABCxyzXYZ019 éÉßİıKK%_\\\"'-@."
FIELDS = ("first_name", "plan", "city")


def ascii_fold(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def reference(rows: list[dict[str, str]], text: str) -> list[str]:
    """The ids of the rows whose text attributes hold every word of ``text``."""
    words = [ascii_fold(word) for word in search_terms(text)]
    return [row["id"] for row in rows
            if all(any(word in ascii_fold(value) for value in row.values() if value)
                   for word in words)]


def random_rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))

    return [{"id": f"P{n:04d}", **{field: text() for field in FIELDS}} for n in range(count)]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def ids_found(conn: Connection, text: str) -> list[str]:
    query = ProfileQuery(Catalog.load(conn), Listing(("id",), search=text), TODAY)
    rows = query.after(conn, None, 10_000)
    counted, capped = query.count(conn)
    assert not capped and counted == len(rows)
    return [row.values[0] for row in rows]


@pytest.fixture(scope="module", params=ENGINE_KINDS)
def searched(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Connection, list[dict[str, str]]]]:
    """One store per engine of random texts, imported from CSV (which builds the index)."""
    folder = tmp_path_factory.mktemp("search")
    rows = random_rows(400, seed=7)
    if request.param == "postgresql":
        location = fresh_schema(request.getfixturevalue("postgres_url"))
    else:
        location = str(folder / ("store.duckdb" if request.param == "duckdb" else "store.db"))
    import_profiles(location, write_csv(folder / "profiles.csv", rows), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    yield conn, [{k: v for k, v in row.items()} for row in rows]
    conn.close()


def words_in(rows: list[dict[str, str]]) -> st.SearchStrategy[str]:
    """Search texts: pieces of stored values (often with their case changed), random words,
    or both."""
    values = [v for row in rows for v in row.values() if v]

    @st.composite
    def piece(draw: st.DrawFn) -> str:
        value = draw(st.sampled_from(values))
        start = draw(st.integers(0, len(value)))
        word = value[start:start + draw(st.integers(1, 6))]
        return draw(st.sampled_from([word, word.upper(), word.lower(), word.swapcase()]))

    word = st.one_of(piece(), st.text(ALPHABET, min_size=1, max_size=5))
    return st.lists(word, min_size=1, max_size=3).map(" ".join)


# Queries only (the store is built once per engine), so the properties are cheap.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_finds_what_the_reference_finds(
        searched: tuple[Connection, list[dict[str, str]]], data: st.DataObject) -> None:
    conn, rows = searched
    text = data.draw(words_in(rows))
    assert ids_found(conn, text) == reference(rows, text), text


def test_every_text_attribute_is_searched_and_indexed(
        engine_kind: str, fresh_location: Callable[[str], str], tmp_path: Path) -> None:
    """An imported table's own text columns ('Fiber') are searched, not only names and ids;
    a later import that adds a text column and changes values keeps the index right."""
    location = fresh_location("store")
    first = [{"id": "C1", "plan": "Fiber 1000", "tenure": "12"},
             {"id": "C2", "plan": "DSL basic", "tenure": "3"}]
    import_profiles(location, write_csv(tmp_path / "first.csv", first), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        assert [a.name for a in searchable_attributes(catalog)] == ["id", "plan"]
        assert ids_found(conn, "fiber") == ["C1"]
        assert ids_found(conn, "DSL bas") == ["C2"]
        assert ids_found(conn, "1000 fib") == ["C1"]
        if engine_kind != "duckdb":  # DuckDB scans: it has no index to keep
            assert set(conn.engine.search_index_columns(conn)) == set(search_columns(catalog))
            assert ensure_search_index(conn) is False  # up to date: nothing is built again
    finally:
        conn.close()
    second = [{"id": "C1", "plan": "Cable 500", "city": "Fibreville"}]
    import_profiles(location, write_csv(tmp_path / "second.csv", second), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert ids_found(conn, "fiber") == []
        assert ids_found(conn, "cable") == ["C1"]
        assert ids_found(conn, "fibreville") == ["C1"]
        if engine_kind != "duckdb":
            assert set(conn.engine.search_index_columns(conn)) == {"id", "plan", "city"}
    finally:
        conn.close()


def test_sqlite_reads_a_rare_word_from_the_index_and_scans_for_short_or_common_ones(
        tmp_path: Path) -> None:
    rows = [*random_rows(300, seed=3), {"id": "Q1", "first_name": "Quetzal", "plan": "", "city": ""}]
    location = str(tmp_path / "store.db")
    import_profiles(location, write_csv(tmp_path / "p.csv", rows), id_column="id")
    conn = engine_for(location).open_store()
    try:
        engine, columns = conn.engine, search_columns(Catalog.load(conn))
        assert engine.search_index_columns(conn) == columns
        pk = conn.execute("SELECT pk FROM profiles WHERE id = 'Q1'").fetchone()[0]
        assert engine.search_candidates(conn, columns, ["QUETZ"], 100) == [pk]
        assert engine.search_candidates(conn, columns, ["qu"], 100) is None  # shorter than a trigram
        assert engine.search_candidates(conn, columns, ["P0"], 100) is None
        assert engine.search_candidates(conn, columns, ["P00"], 10) is None  # more than the limit
        assert engine.search_candidates(conn, [*columns, "other"], ["quetz"], 100) is None
        # A profile's values set again unchanged leave the index alone; a changed one is kept.
        conn.execute("UPDATE profiles SET first_name = first_name")
        conn.execute("UPDATE profiles SET first_name = 'Quokka' WHERE id = 'Q1'")
        assert engine.search_candidates(conn, columns, ["quetz"], 100) == []
        assert engine.search_candidates(conn, columns, ["quokka"], 100) == [pk]
        conn.execute("DELETE FROM profiles WHERE id = 'Q1'")
        assert engine.search_candidates(conn, columns, ["quokka"], 100) == []
        conn.execute("INSERT INTO profiles (pk, id, first_name) VALUES (?, 'Q1', 'Quetzal')", (pk,))
        # Without the index (dropped before a large import) the search scans; ensure builds it.
        engine.drop_search_index(conn)
        assert engine.search_index_columns(conn) == ()
        assert engine.search_candidates(conn, columns, ["quetz"], 100) is None
        assert ids_found(conn, "quetz") == ["Q1"]
        assert ensure_search_index(conn) is True
        assert ensure_search_index(conn) is False
        assert engine.search_candidates(conn, columns, ["quetz"], 100) == [pk]
    finally:
        conn.close()


def test_postgresql_plans_a_rare_word_on_its_trigram_index(postgres_url: str, tmp_path: Path) -> None:
    location = fresh_schema(postgres_url)
    rows = [*random_rows(3000, seed=5), {"id": "Q1", "first_name": "Quetzal", "plan": "", "city": ""}]
    import_profiles(location, write_csv(tmp_path / "p.csv", rows), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    try:
        query = ProfileQuery(Catalog.load(conn), Listing(("id",), search="quetzal"), TODAY)
        from sqlglot import exp

        from store.query import sqlbuild as sb

        binder = sb.Binder()
        tree = exp.select("pk").from_("profiles").where(
            sb.conjunction(query._filters(conn, binder)))
        sql, params = conn.engine.render(tree, binder.values)
        plan = "\n".join(conn.engine.query_plan(conn, sql, params))
        assert "profiles_search_first_name" in plan, plan
        assert [row.values[0] for row in query.after(conn, None, 5)] == ["Q1"]
    finally:
        conn.close()


def test_small_imports_keep_the_index_and_large_ones_rebuild_it(
        engine_kind: str, fresh_location: Callable[[str], str], tmp_path: Path) -> None:
    """Below REBUILD_SHARE of the store an import keeps the index up to date as it writes
    (SQLite's triggers, PostgreSQL's index); above it, the index is dropped and built again."""
    location = fresh_location("store")
    rows = random_rows(200, seed=11)
    import_profiles(location, write_csv(tmp_path / "all.csv", rows), id_column="id")
    small = [{**rows[0], "plan": "Quokka"}, {"id": "NEW1", "first_name": "Wombat", "plan": "", "city": ""}]
    import_profiles(location, write_csv(tmp_path / "small.csv", small), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert ids_found(conn, "quokka") == [rows[0]["id"]]
        assert ids_found(conn, "wombat") == ["NEW1"]
        assert ids_found(conn, rows[0]["plan"]) == reference([*rows[1:], small[0], small[1]],
                                                              rows[0]["plan"])
    finally:
        conn.close()
    large = [{**row, "city": f"Numbat {row['id']}"} for row in rows[:100]]
    import_profiles(location, write_csv(tmp_path / "large.csv", large), id_column="id")
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert ids_found(conn, "numbat p001") == [f"P{n:04d}" for n in range(10, 20)]
        if engine_kind != "duckdb":
            assert set(conn.engine.search_index_columns(conn)) == set(search_columns(Catalog.load(conn)))
    finally:
        conn.close()


async def test_the_app_finds_an_imported_text_column_from_the_keyboard(
        engine_kind: str, fresh_location: Callable[[str], str], tmp_path: Path) -> None:
    """The demo's imported churn table: typing a plan name finds its customers."""
    from tests.app_store import settle, table_ready
    from tui.app import make_app
    from tui.screens.profiles import ProfilesScreen

    location = fresh_location("store")
    rows = [{"id": f"C{n}", "plan": plan, "contract": "Month-to-month"}
            for n, plan in enumerate(["Fiber optic", "DSL", "Fiber optic", "No internet"])]
    import_profiles(location, write_csv(tmp_path / "churn.csv", rows), id_column="id")
    app = make_app(location)
    async with app.run_test(size=(120, 34)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        table = screen.query_one("ProfileTable")
        await settle(pilot, table_ready(table))
        await pilot.press("slash", *"fiber", "enter")
        await settle(pilot, lambda: screen.search == "fiber" and table_ready(table)()
                     and len(table.window) == 2)
        assert [row.values[0] for row in table.window] == ["C0", "C2"]
