"""Every read feature gives the same answer on SQLite, DuckDB and PostgreSQL.

One store is built on SQLite (the sample generator, or the test factory), copied to
DuckDB and to PostgreSQL with ``copy_store``, and every read feature is asked the same
question on each copy: counts, per-node counts and waterfalls, samples, member pages and
streams, breakdowns, profile pages (sorted both ways, searched), one profile's facts,
timeline and "why", saved segments and the values pickers offer. The answers must be equal
(spec/engines.md: "every count, member list, per-node count, waterfall, why ... on every
engine").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from store.engines.base import Connection, engine_for
from store.errors import StoreError
from store.ingest.copy import copy_store
from store.query import audience
from store.query.compiler import compile_segment, count_query
from store.query.evaluator import explain, load_all_profiles, load_profile, matches
from store.query.membersets import MemberSetCache
from store.query.profiles import (
    Listing,
    ProfileQuery,
    TimelineSource,
    default_columns,
    listing_source,
    load_attributes,
    profile_summary,
    profile_total,
    segment_members,
)
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.schema.values_lookup import breakdown_candidate, has_few_values, top_values
from store.segments.library import (
    delete_segment,
    get_segment,
    list_segments,
    rename_segment,
    resolve_file,
    resolve_saved,
    save_segment,
    save_segment_files,
)
from store.segments.validate import ResolvedSegment
from tests.engine_helpers import resolve_rule
from tests.factory import StoreSpec, build_store
from tests.services.fixtures import fresh_schema

SEGMENTS = Path(__file__).resolve().parent.parent / "sample_data" / "segments"
EXAMPLES = sorted(SEGMENTS.glob("*.yaml"))
UNTIL = dt.date(2025, 6, 1)
AS_OF = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
ENGINES = ("sqlite", "duckdb", "postgresql")
PAGE = 37  # an odd page size, so pages end in the middle of runs of equal values


class Stores:
    """The same store on every engine: one open connection each, by engine name."""

    def __init__(self, conns: dict[str, Connection]) -> None:
        self.conns = conns
        self.catalog = Catalog.load(conns["sqlite"])

    def each(self, ask: Callable[[Connection], Any]) -> dict[str, Any]:
        return {name: ask(conn) for name, conn in self.conns.items()}

    def same(self, ask: Callable[[Connection], Any], what: str = "") -> Any:
        """The one answer every engine gives to ``ask`` (asserted equal)."""
        answers = self.each(ask)
        first = answers["sqlite"]
        for name, answer in answers.items():
            assert answer == first, f"{what}: {name} differs from sqlite"
        return first

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def copies(source: Path, tmp: Path, postgres_url: str) -> Stores:
    """The SQLite store at ``source`` and its copies on DuckDB and PostgreSQL."""
    duck = str(tmp / f"{source.stem}.duckdb")
    pg = fresh_schema(postgres_url)
    copy_store(engine_for(source), engine_for(duck))
    copy_store(engine_for(source), engine_for(pg))
    return Stores({"sqlite": engine_for(source).open_store(),
                   "duckdb": engine_for(duck).open_store(),
                   "postgresql": engine_for(pg).open_store()})


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Stores]:
    """The sample store (2,000 profiles, every example segment saved) on every engine."""
    tmp = tmp_path_factory.mktemp("engines-query")
    path = tmp / "sample.db"
    generate_sample(path, profiles=2000, until=UNTIL)
    conn = engine_for(path).open_store()
    save_segment_files(conn, SEGMENTS)
    conn.close()
    stores = copies(path, tmp, postgres_url)
    yield stores
    stores.close()


def resolved_on(conn: Connection, path: Path) -> ResolvedSegment:
    return resolve_file(conn, path)


# ------------------------------------------------------------------ audiences


def audience_answers(conn: Connection, resolved: ResolvedSegment, catalog: Catalog,
                     breakdowns: tuple[str, ...]) -> dict[str, Any]:
    """Everything the builder and the CLI read about one audience."""
    cache = MemberSetCache()
    pages = []
    after = None
    for _ in range(3):
        page = audience.member_page(conn, resolved, AS_OF, after_pk=after, limit=PAGE)
        pages.append(page)
        if not page:
            break
        after = page[-1][0]
    return {
        "count": audience.count(conn, resolved, AS_OF, catalog),
        "total": audience.total(conn),
        "nodes": audience.node_counts(conn, resolved, AS_OF, catalog, cache=cache),
        "nodes again": audience.node_counts(conn, resolved, AS_OF, catalog, cache=cache),
        "sample": audience.sample(conn, resolved, AS_OF, 12, seed=5, catalog=catalog),
        "pages": pages,
        "ids": list(audience.member_ids(conn, resolved, AS_OF, catalog, batch=100)),
        "members": list(segment_members(conn, catalog, resolved, AS_OF)),
        "breakdowns": {name: audience.breakdown(conn, resolved, AS_OF, name, top=5,
                                                catalog=catalog)
                       for name in breakdowns},
    }


SAMPLE_BREAKDOWNS = ("gender", "country", "age", "birth_date", "lifetime_value", "signup_date",
                     "email_opt_in", "loyalty_tier")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_segments_give_the_same_audience_everywhere(sample: Stores, path: Path) -> None:
    breakdowns = tuple(n for n in SAMPLE_BREAKDOWNS if n in sample.catalog.attributes)
    answers = sample.same(lambda conn: audience_answers(conn, resolved_on(conn, path),
                                                        Catalog.load(conn), breakdowns), path.stem)
    assert answers["count"] == len(answers["ids"]) == len(answers["members"])
    assert sorted(answers["ids"]) == sorted(set(answers["ids"]))


def test_saved_segments_are_listed_and_resolved_alike(sample: Stores) -> None:
    listed = sample.same(list_segments, "saved segments")
    assert {s.id for s in listed} >= {p.stem for p in EXAMPLES}
    for saved in listed:
        sample.same(lambda conn, i=saved.id: get_segment(conn, i), saved.id)
        sample.same(lambda conn, i=saved.id: audience.count(conn, resolve_saved(conn, i), AS_OF),
                    saved.id)


def test_saving_renaming_and_deleting_work_on_every_engine(sample: Stores) -> None:
    rule = {"all": [{"attribute": "gender", "op": "equals", "value": "female"},
                    {"segment": "unsubscribed"}]}

    def round_trip(conn: Connection) -> Any:
        resolved = resolve_rule(conn, rule, name="Engine Check")
        save_segment(conn, resolved)
        rename_segment(conn, resolved.segment.id, "engine check, renamed")
        seen = ([s.name for s in list_segments(conn) if s.id == resolved.segment.id],
                audience.count(conn, resolve_saved(conn, resolved.segment.id), AS_OF))
        delete_segment(conn, resolved.segment.id)
        return seen, get_segment(conn, resolved.segment.id)

    (names, size), gone = sample.same(round_trip, "save, rename, delete")
    assert names == ["engine check, renamed"] and size > 0 and gone is None


def test_value_pickers_offer_the_same_values(sample: Stores) -> None:
    catalog = sample.catalog
    for name, attribute in catalog.attributes.items():
        sample.same(lambda conn, n=name: top_values(conn, catalog, n, limit=7), name)
        if attribute.type in ("string", "boolean"):
            sample.same(lambda conn, n=name: has_few_values(conn, catalog, n), name)
    for name in catalog.event_fields:
        sample.same(lambda conn, n=name: top_values(conn, catalog, n, event_field=True), name)
    for entity in catalog.entities.values():
        for field in entity.fields:
            name = f"{entity.name}.{field}"
            sample.same(lambda conn, n=name: top_values(conn, catalog, n, event_field=True), name)
    sample.same(lambda conn: breakdown_candidate(conn, catalog), "breakdown candidate")


# ------------------------------------------------------------------ the profile browser


def walk(source: Any, conn: Connection, forward: bool, pages: int) -> list[Any]:
    """Up to ``pages`` pages of a keyset-paged list from its start (or its end)."""
    rows: list[Any] = []
    key = None
    for _ in range(pages):
        page = source.after(conn, key, PAGE) if forward else source.before(conn, key, PAGE)
        if not page:
            break
        rows.extend(page if forward else page[::-1])
        key = page[-1].key if forward else page[0].key
    return rows


def listing_answers(conn: Connection, catalog: Catalog, listing: Listing,
                    members: list[int] | None = None) -> dict[str, Any]:
    source = listing_source(catalog, listing, UNTIL, members)
    return {"count": source.count(conn), "uncapped": source.count(conn, None),
            "forward": walk(source, conn, True, 4), "backward": walk(source, conn, False, 4)}


def sort_columns(catalog: Catalog) -> list[str | None]:
    return [None, *(name for name in catalog.attributes)]


def test_profile_pages_sorted_by_every_column_both_ways(sample: Stores) -> None:
    catalog = sample.catalog
    columns = tuple(default_columns(catalog, 12))
    for sort in sort_columns(catalog):
        for descending in (False, True):
            listing = Listing(columns, sort, descending)
            answers = sample.same(lambda conn, li=listing: listing_answers(conn, catalog, li),
                                  f"sorted by {sort} {'desc' if descending else 'asc'}")
            assert len(answers["forward"]) == min(4 * PAGE, answers["uncapped"][0])


@pytest.mark.parametrize("search", [
    "an", "SMITH", "@gmail", "gmail.com mar", "C00000", "%", "_", "\\", "a_b", "ü", "Ü", "MÜLLER",
    "é", "É", "straße", "STRASSE", "zzzz-no-match"])
def test_quick_search_folds_ascii_only_on_every_engine(sample: Stores, search: str) -> None:
    catalog = sample.catalog
    columns = tuple(default_columns(catalog))
    for sort in (None, "last_name" if "last_name" in catalog.attributes else None):
        listing = Listing(columns, sort, search=search)
        sample.same(lambda conn, li=listing: listing_answers(conn, catalog, li), repr(search))


def test_search_folds_ascii_letters_and_nothing_else(tmp_path: Path, postgres_url: str) -> None:
    """'Ü' finds only 'Ü...' and 'a' finds 'A': SQLite's LIKE, not the engines' own folding."""
    names = ["Ülrich", "ülrich", "Ulrich", "ANNA", "anna", "Ärger", "straße", "STRASSE", "ǅemal",
             "ΣΊΣΥΦΟΣ", "σίσυφος", "100%", "a_b", "axb"]
    spec = StoreSpec(attributes={"first_name": "string"},
                     profiles=[{"id": f"P{i:02d}", "first_name": n} for i, n in enumerate(names)])
    build_store(tmp_path / "names.db", spec).close()
    stores = copies(tmp_path / "names.db", tmp_path, postgres_url)
    try:
        catalog = stores.catalog
        for term, expected in [("Ü", {"Ülrich"}), ("ü", {"ülrich"}), ("u", {"Ulrich"}),
                               ("LRICH", {"Ülrich", "ülrich", "Ulrich"}), ("anna", {"ANNA", "anna"}),
                               ("ä", set()), ("SS", {"STRASSE"}), ("ß", {"straße"}),
                               ("σ", {"σίσυφος"}), ("Σ", {"ΣΊΣΥΦΟΣ"}), ("%", {"100%"}),
                               ("_", {"a_b"}), ("a_b", {"a_b"})]:
            listing = Listing(("id", "first_name"), search=term)
            rows = stores.same(lambda conn, li=listing: ProfileQuery(catalog, li, UNTIL)
                               .after(conn, None, 100), term)
            assert {row.values[1] for row in rows} == expected, term
            rule = {"attribute": "first_name", "op": "contains", "value": term}
            found = stores.same(lambda conn, r=rule: audience.sample(
                conn, resolve_rule(conn, r), AS_OF, 100, seed=1), term)
            assert {pid for _, pid in found} == {row.values[0] for row in rows}, term
    finally:
        stores.close()


def test_profile_pages_within_a_segment(sample: Stores) -> None:
    catalog = sample.catalog
    columns = tuple(default_columns(catalog))
    for path in EXAMPLES[:8]:
        members = sample.same(lambda conn, p=path: list(segment_members(
            conn, catalog, resolved_on(conn, p), AS_OF)), path.stem)
        for sort, search in ((None, ""), ("last_name", ""), (None, "a"), ("age", "e")):
            if sort is not None and sort not in catalog.attributes:
                continue
            for descending in (False, True):
                listing = Listing(columns, sort, descending, search)
                sample.same(lambda conn, li=listing, m=members: listing_answers(conn, catalog, li, m),
                            f"{path.stem} {listing}")


# ------------------------------------------------------------------ one profile


def profile_answers(conn: Connection, catalog: Catalog, pk: int) -> dict[str, Any]:
    timeline = TimelineSource(catalog, pk)
    summary = profile_summary(conn, catalog, pk)
    return {
        "attributes": load_attributes(conn, catalog, pk, UNTIL),
        "summary": (summary.events, summary.orders, summary.first_ts, summary.last_ts,
                    summary.activity),
        "spend": None if summary.spend is None else round(summary.spend, 6),
        "profile": load_profile(conn, catalog, pk),
        "newest": walk(timeline, conn, True, 3),
        "oldest": walk(timeline, conn, False, 2),
        "purchases": [(e.pk, e.ts, e.details) for e in
                      TimelineSource(catalog, pk, ["purchase"]).after(conn, None, 20)],
    }


def test_profile_view_and_why_are_the_same_everywhere(sample: Stores) -> None:
    catalog = sample.catalog
    pks = sample.same(lambda conn: [row.pk for row in ProfileQuery(
        catalog, Listing(("id",)), UNTIL).after(conn, None, 2000)], "pks")
    chosen = pks[::97] + pks[-3:]
    for pk in chosen:
        sample.same(lambda conn, p=pk: profile_answers(conn, catalog, p), f"profile {pk}")
    for path in EXAMPLES:
        def why(conn: Connection, p: Path = path) -> list[Any]:
            resolved = resolved_on(conn, p)
            members = set(segment_members(conn, catalog, resolved, AS_OF))
            out = []
            for pk in chosen:
                profile = load_profile(conn, catalog, pk)
                matched = matches(profile, resolved, AS_OF)
                assert matched == (pk in members), f"{p.stem}: evaluator and SQL disagree on {pk}"
                out.append((pk, matched, explain(profile, resolved, AS_OF, catalog)))
            return out

        sample.same(why, path.stem)


def test_every_profile_loads_the_same_everywhere(sample: Stores) -> None:
    catalog = sample.catalog
    every = sample.same(lambda conn: list(load_all_profiles(conn, catalog, batch=150)),
                        "all profiles")
    assert len(every) == sample.same(profile_total)
    one = sample.conns["duckdb"]
    assert [load_profile(one, catalog, p.pk) for p in every[:: 101]] == every[:: 101]


# ------------------------------------------------------------------ the factory stores


def factory_profile(i: int) -> dict[str, Any]:
    """tests/test_audience.py's profiles: three groups and missing ones, VIPs, birth dates."""
    groups = ("a", "b", "c", None)
    return {"id": f"u{i:04d}", "grp": groups[i % 4], "vip": i % 3 == 0,
            "birth_date": dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28) if i % 10 else None}


FACTORY_A = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)
GRP_AB = {"attribute": "grp", "op": "in", "value": ["a", "b"]}
BUYER = {"event": "purchase", "within": {"last": 30, "unit": "days"}}
VIP = {"attribute": "vip", "op": "is_true"}
FACTORY_RULES = [GRP_AB, BUYER, {"all": [GRP_AB, BUYER]}, {"any": [GRP_AB, BUYER]},
                 {"not": BUYER}, {"all": []}, {"any": []},
                 {"all": [GRP_AB, BUYER, {"not": VIP}, {"any": [VIP, BUYER]}]},
                 {"attribute": "age", "op": "between", "value": [30, 45]},
                 {"attribute": "age", "op": "in", "value": list(range(20, 90, 3))},
                 {"attribute": "grp", "op": "in", "value": [f"g{i}" for i in range(600)] + ["a"]},
                 {"event": "purchase", "count": {"op": "at_most", "value": 1}},
                 {"event": "*", "within": {"last": 1, "unit": "years"}, "count": {"op": "exactly",
                                                                                 "value": 0}}]


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Stores]:
    tmp = tmp_path_factory.mktemp("engines-factory")
    events = [{"profile_id": f"u{i:04d}", "type": "purchase",
               "timestamp": FACTORY_A - dt.timedelta(days=(i * k) % 60, hours=k)}
              for i in range(300) for k in range(i % 4)]
    spec = StoreSpec(attributes={"grp": "string", "vip": "boolean", "birth_date": "date"},
                     profiles=[factory_profile(i) for i in range(300)], events=events,
                     event_types=("view",), derived_age_from="birth_date")
    build_store(tmp / "factory.db", spec).close()
    stores = copies(tmp / "factory.db", tmp, postgres_url)
    yield stores
    stores.close()


@pytest.mark.parametrize("rule", FACTORY_RULES, ids=[str(i) for i in range(len(FACTORY_RULES))])
def test_factory_rules_give_the_same_audience_everywhere(factory: Stores, rule: Any) -> None:
    def answers(conn: Connection) -> dict[str, Any]:
        resolved = resolve_rule(conn, rule)
        catalog = Catalog.load(conn)
        result = audience_answers(conn, resolved, catalog, ("grp", "vip", "age", "birth_date"))
        result["why"] = [(p.pk, explain(p, resolved, FACTORY_A, catalog))
                         for p in load_all_profiles(conn, catalog)][::7]
        return result

    found = factory.same(answers, repr(rule))
    assert found["count"] == len(found["ids"])


@pytest.mark.parametrize("values", [
    [0.0] * 50 + [15.0, 30.0, 70.0, 150.0, 300.0, 700.0, 1500.0, 3000.0],
    [float(i) for i in range(100)],
    [7.5] * 3,
    [1e15, -2.5, 0.1, 0.2, 0.30000000000000004, math.pi],
])
def test_numbers_break_down_in_the_same_bands(tmp_path: Path, postgres_url: str,
                                              values: list[float]) -> None:
    profiles = [{"id": f"p{i}", "spend": v} for i, v in enumerate(values)]
    profiles += [{"id": "none1", "spend": None}, {"id": "none2", "spend": None}]
    build_store(tmp_path / "spend.db", StoreSpec(attributes={"spend": "number"},
                                                 profiles=profiles)).close()
    stores = copies(tmp_path / "spend.db", tmp_path, postgres_url)
    try:
        stores.same(lambda conn: audience.breakdown(conn, resolve_rule(conn, {"all": []}),
                                                    FACTORY_A, "spend"), "spend bands")
        stores.same(lambda conn: listing_answers(conn, stores.catalog,
                                                 Listing(("id", "spend"), "spend", True)), "sort")
    finally:
        stores.close()


# ------------------------------------------------------------------ PostgreSQL's plans


def test_postgres_answers_a_complement_with_an_anti_join(tmp_path: Path, postgres_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``NOT pk IN (set)`` reaches PostgreSQL as NOT EXISTS, which it plans as an anti-join
    at any work_mem (as NOT IN, a set bigger than work_mem was read again for every profile:
    members-never-bought on 1M profiles ran for minutes)."""
    monkeypatch.setenv("AUDIENCES_POSTGRES_WORK_MEM", "64kB")  # the smallest it takes
    location = fresh_schema(postgres_url)
    generate_sample(location, profiles=400, seed=8, until=UNTIL)
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "64kB"
        resolved = resolve_file(conn, SEGMENTS / "members-never-bought.yaml")
        compiled = count_query(compile_segment(resolved, Catalog.load(conn), AS_OF,
                                                        conn.engine.dialect))
        assert " NOT IN " not in f" {compiled.sql.upper()} "
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + compiled.sql,
                                                        compiled.params).fetchall())
        assert "Anti Join" in plan and "SubPlan" not in plan, plan
    finally:
        conn.close()


def test_postgres_sessions_take_their_memory_from_the_environment(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    location = fresh_schema(postgres_url)
    generate_sample(location, profiles=20, seed=9, until=UNTIL)
    conn = engine_for(location).open_store(readonly=True)
    try:  # hashes (a set inside an OR) get four times work_mem
        assert conn.execute("SHOW work_mem").fetchone()[0] == "64MB"
        assert float(conn.execute("SHOW hash_mem_multiplier").fetchone()[0]) == 4
    finally:
        conn.close()
    monkeypatch.setenv("AUDIENCES_POSTGRES_WORK_MEM", "plenty")
    with pytest.raises(StoreError, match="AUDIENCES_POSTGRES_WORK_MEM='plenty'"):
        engine_for(location).open_store(readonly=True)
