"""Property: on random tiny stores, the compiled count of every rule node equals the
reference evaluator's brute-force count.

Each example builds one store full of edge cases (see tests/strategies.py) and
checks every node of a few random rule trees against it, with references to
other random segments. One test builds the trees as typed model nodes; another
sends them through YAML (dump, load, validate) first, which also checks that
the loader and the validator give back exactly the typed tree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engines.base import Connection
from store.query.audience import count as compiled_count
from store.query.audience import node_counts
from store.query.evaluator import (
    ProfileData,
    explain,
    load_all_profiles,
    load_profile,
    matches,
)
from store.query.evaluator import (
    evaluate_all as evaluator_all,
)
from store.schema.catalog import Catalog
from store.segments.errors import SegmentError
from store.segments.model import (
    AllOf,
    EventCondition,
    Node,
    NotOf,
    Segment,
    SequenceCondition,
    walk,
)
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import dump_node, dump_segment, load_segment_text
from tests.factory import StoreSpec, build_store, refill_store
from tests.services.fixtures import ENGINE_KINDS, scratch_location
from tests.strategies import (
    Scene,
    attribute_conditions,
    closure,
    event_conditions,
    field_comparisons,
    leaf_nodes,
    libraries,
    rule_nodes,
    scenes,
    sequence_conditions,
)

PROPERTY = settings(max_examples=500, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALLER = settings(PROPERTY, max_examples=200)


# Every property of the counts runs on every engine: the same random store, built on SQLite,
# DuckDB and PostgreSQL, must give the evaluator's counts on each. The properties of what does
# not depend on the engine (the YAML route, explain) run on SQLite alone.
on_every_engine = pytest.mark.parametrize("engine_kind", ENGINE_KINDS, scope="module")
on_sqlite = pytest.mark.parametrize("engine_kind", ["sqlite"], scope="module")


@pytest.fixture(scope="module")
def server(engine_kind: str, request: pytest.FixtureRequest) -> str | None:
    """The test PostgreSQL server's URL when the engine is PostgreSQL."""
    return str(request.getfixturevalue("postgres_url")) if engine_kind == "postgresql" else None


# One store per engine and schema in each test process: the random stores all share one
# schema, and creating tables on DuckDB and PostgreSQL costs more than checking an example,
# so later examples only replace the rows. SQLite gets a new file each time, as it always did.
_reused: dict[tuple[str, str], tuple[AbstractContextManager[str], Connection]] = {}


@contextmanager
def built(spec: StoreSpec, engine_kind: str, server: str | None) -> Iterator[Connection]:
    if engine_kind == "sqlite":
        with scratch_location(engine_kind, server) as location:
            conn = build_store(location, spec)
            try:
                yield conn
            finally:
                conn.close()
        return
    key = (engine_kind, schema_key(spec))
    if key in _reused:
        conn = _reused[key][1]
        refill_store(conn, spec)
    else:
        place = scratch_location(engine_kind, server)
        conn = build_store(place.__enter__(), spec)
        _reused[key] = (place, conn)
    yield conn


def schema_key(spec: StoreSpec) -> str:
    """What decides a store's schema: attributes, fields, entities, event types, derived age."""
    entities = sorted((name, e.key_field, e.key_type, e.link_field, sorted(e.fields.items()))
                      for name, e in spec.entities.items())
    types = sorted({*spec.event_types, *(e["type"] for e in spec.events)})
    return repr((sorted(spec.attributes.items()), sorted(spec.event_fields.items()), entities,
                 spec.derived_age_from, types))


@pytest.fixture(scope="module", autouse=True)
def _close_reused_stores() -> Iterator[None]:
    yield
    while _reused:
        place, conn = _reused.popitem()[1]
        conn.close()
        place.__exit__(None, None, None)


@st.composite
def cases(draw: st.DrawFn, rules: int = 3, leaves: int = 0, mixed_bounds: bool = True,
          scope: str | None = None) -> tuple[Scene, dict[str, Segment], list[Node]]:
    """A store, a library of segments to refer to, and a few rule trees over both.

    ``leaves`` more single conditions (only on ``SCOPES[scope]`` when a scope is
    given) put many operators to the test on each store.
    """
    scene = draw(scenes())
    library = draw(libraries(scene.as_of, mixed_bounds=mixed_bounds))
    trees: list[Node] = []
    if rules:
        trees += draw(st.lists(rule_nodes(scene.as_of, tuple(library), mixed_bounds=mixed_bounds),
                               min_size=1, max_size=rules))
    leaf: st.SearchStrategy[Node]
    if scope is None:
        leaf = leaf_nodes(scene.as_of, mixed_bounds)
    elif scope == "sequences":  # alone, negated, and beside another condition
        sequence = sequence_conditions(scene.as_of, mixed_bounds)
        leaf = st.one_of(sequence, sequence, sequence.map(NotOf), st.tuples(
            sequence, leaf_nodes(scene.as_of, mixed_bounds)).map(AllOf))
    elif scope == "fields":
        leaf = st.one_of(field_comparisons("profile"),
                         event_conditions(scene.as_of, mixed_bounds, with_fields=True))
    else:
        leaf = attribute_conditions(scope, scene.as_of, mixed_bounds)
    trees += draw(st.lists(leaf, min_size=leaves // 2, max_size=leaves))
    return scene, library, trees


def describe(node: Node, refs: dict[str, Segment], as_of: dt.datetime) -> str:
    text = f"as of {as_of.isoformat()}\n{dump_node(node)}"
    for seg_id, ref in refs.items():
        text += f"--- {seg_id}:\n{dump_node(ref.rule)}"
    return text


def assert_counts_agree(conn: Connection, catalog: Catalog, profiles: list[ProfileData],
                        as_of: dt.datetime, rule: Node, library: dict[str, Segment],
                        checked: set[Node]) -> None:
    """Every node of ``rule``: compiled count == evaluator count. A node that asks for any
    event in a window is counted twice: as the catalog says, and through the per-profile
    rollup whatever the window (``Catalog.activity_until`` forced below every event time:
    the rollup's answer must be exact at any as-of instant, events after it included)."""
    rollup = (replace(catalog, activity_until=float("-inf"))
              if catalog.activity_until is not None else None)
    for path, node in walk(rule):
        if node in checked:
            continue
        checked.add(node)
        resolved = ResolvedSegment(Segment("probe", "Probe", node), closure(node, library))
        expected = sum(matches(p, resolved, as_of) for p in profiles)
        got = compiled_count(conn, resolved, as_of, catalog)
        assert got == expected, (
            f"{path}: compiled {got}, evaluator {expected}\n{describe(node, resolved.refs, as_of)}")
        if rollup is not None and asks_any_event(node):
            got = compiled_count(conn, resolved, as_of, rollup)
            assert got == expected, (f"{path}: compiled through the rollup {got}, evaluator"
                                     f" {expected}\n{describe(node, resolved.refs, as_of)}")


def asks_any_event(node: Node) -> bool:
    """Whether a rule has an event condition of every type ("*")."""
    return any(isinstance(n, EventCondition) and n.types is None for _, n in walk(node))


@on_every_engine
@PROPERTY
@given(cases(leaves=8))
def test_compiled_counts_equal_evaluator(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    check_all(case, engine_kind, server, with_evaluate_all=True)


@on_every_engine
@SMALLER
@given(cases(rules=0, leaves=16, scope="text"))
def test_text_operators_agree(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Many text conditions per store: LIKE wildcards, ASCII-only case folding, quotes."""
    check_all(case, engine_kind, server)


@on_every_engine
@SMALLER
@given(cases(rules=0, leaves=16, scope="dates"))
def test_date_operators_agree(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Many date, datetime and age conditions per store, at every calendar edge."""
    check_all(case, engine_kind, server)


@on_every_engine
@PROPERTY
@given(cases(rules=0, leaves=8, scope="sequences"))
def test_sequences_agree(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Sequences of 2-4 steps: gaps with min and max, absent last steps, windows, where on
    fields, entities and the profile; events at the same instant and at a gap's exact bounds."""
    check_all(case, engine_kind, server)


@on_every_engine
@PROPERTY
@given(cases(rules=0, leaves=8, scope="fields"))
def test_field_comparisons_agree(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Field comparisons of every compatible pair of types, on profiles and in events' where
    (event fields, entity fields, ``profile.NAME``)."""
    check_all(case, engine_kind, server)


@on_every_engine
@pytest.mark.slow
@settings(PROPERTY, max_examples=10_000)
@given(cases(rules=0, leaves=8, scope="sequences"))
def test_sequences_agree_long_run(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """The sequence property, twenty times longer (``--run-slow``)."""
    check_all(case, engine_kind, server)


@on_every_engine
@pytest.mark.slow
@settings(PROPERTY, max_examples=10_000)
@given(cases(rules=0, leaves=8, scope="fields"))
def test_field_comparisons_agree_long_run(engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """The field comparison property, twenty times longer (``--run-slow``)."""
    check_all(case, engine_kind, server)


def check_all(case: tuple[Scene, dict[str, Segment], list[Node]], engine_kind: str,
              server: str | None, with_evaluate_all: bool = False) -> None:
    """Build the store once; check every node of every tree (and evaluate_all on the first)."""
    scene, library, trees = case
    with built(scene.spec, engine_kind, server) as conn:
        catalog = Catalog.load(conn)
        profiles = list(load_all_profiles(conn, catalog))
        checked: set[Node] = set()
        for rule in trees:
            assert_counts_agree(conn, catalog, profiles, scene.as_of, rule, library, checked)
        if with_evaluate_all and trees:
            root = ResolvedSegment(Segment("probe", "Probe", trees[0]), closure(trees[0], library))
            assert len(evaluator_all(conn, root, scene.as_of, catalog)) == compiled_count(
                conn, root, scene.as_of, catalog)


@on_every_engine
@settings(PROPERTY, max_examples=100)
@given(cases(rules=2))
def test_node_counts_and_waterfall_equal_evaluator(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """node_counts: each node's own count, and for the i-th child of an ``all`` the number
    matching children 0..i, as the evaluator counts them."""
    check_node_counts(case, engine_kind, server)


@on_every_engine
@settings(PROPERTY, max_examples=100)
@given(cases(rules=0, leaves=4, scope="sequences"))
def test_sequence_funnels_equal_evaluator(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """node_counts on sequences: every node's count and each sequence's funnel (how many
    match its first 1, 2, ... steps), as the evaluator counts them."""
    check_node_counts(case, engine_kind, server)


def check_node_counts(case: tuple[Scene, dict[str, Segment], list[Node]], engine_kind: str,
                      server: str | None) -> None:
    scene, library, trees = case
    with built(scene.spec, engine_kind, server) as conn:
        catalog = Catalog.load(conn)
        profiles = list(load_all_profiles(conn, catalog))
        for rule in trees:
            refs = closure(rule, library)
            resolved = ResolvedSegment(Segment("probe", "Probe", rule), refs)

            def size(node: Node, refs: dict[str, Segment] = refs) -> int:
                probe = ResolvedSegment(Segment("probe", "Probe", node), refs)
                return sum(matches(p, probe, scene.as_of) for p in profiles)

            wanted: dict[str, tuple[int, int | None]] = {
                path: (size(node), None) for path, node in walk(rule)}
            for path, node in walk(rule):
                if isinstance(node, AllOf):
                    for index in range(len(node.children)):
                        wanted[f"{path}.all[{index}]"] = (
                            wanted[f"{path}.all[{index}]"][0],
                            size(AllOf(node.children[:index + 1])))
            counted = node_counts(conn, resolved, scene.as_of, catalog)
            got = {n.path: (n.own, n.remaining) for n in counted}
            assert got == wanted, describe(rule, refs, scene.as_of)
            funnels = {path: tuple(size(node.prefix(n)) for n in range(1, len(node.steps) + 1))
                       for path, node in walk(rule) if isinstance(node, SequenceCondition)}
            assert {n.path: n.funnel for n in counted if n.funnel} == funnels, describe(
                rule, refs, scene.as_of)


@on_every_engine
@pytest.mark.slow
@settings(PROPERTY, max_examples=10_000)
@given(cases(leaves=8))
def test_compiled_counts_equal_evaluator_long_run(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """The main property, twenty times longer (``--run-slow``)."""
    check_all(case, engine_kind, server, with_evaluate_all=True)


def through_yaml(segment: Segment, library: dict[str, Segment],
                 catalog: Catalog) -> ResolvedSegment:
    """Dump a typed segment and its library to YAML, then load and validate them again."""
    texts = {seg_id: dump_segment(seg) for seg_id, seg in library.items()}

    def lookup(seg_id: str, source: str | None) -> tuple[Segment, dict[str, int]] | None:
        text = texts.get(seg_id)
        return None if text is None else load_segment_text(text, f"{seg_id}.yaml")

    loaded, lines = load_segment_text(dump_segment(segment), "probe.yaml")
    return validate_segment(loaded, catalog, lines, lookup)


@on_sqlite
@SMALLER
@given(cases(rules=2, leaves=4, mixed_bounds=False))
def test_yaml_route_gives_back_the_typed_tree(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """dump -> load -> validate returns the typed tree, and (with the compiler) the same counts."""
    check_yaml_route(case, engine_kind, server)


def check_yaml_route(case: tuple[Scene, dict[str, Segment], list[Node]], engine_kind: str,
                     server: str | None) -> None:
    scene, library, trees = case
    with built(scene.spec, engine_kind, server) as conn:
        catalog = Catalog.load(conn)
        profiles = list(load_all_profiles(conn, catalog))
        for rule in trees:
            segment = Segment("probe", "Probe", rule)
            try:
                resolved = through_yaml(segment, library, catalog)
            except SegmentError as exc:
                raise AssertionError(f"{exc}\n{dump_segment(segment)}") from exc
            assert resolved.segment == segment, dump_segment(segment)
            assert resolved.refs == closure(rule, library)
            if compiled_count is not None:
                expected = sum(matches(p, resolved, scene.as_of) for p in profiles)
                assert compiled_count(conn, resolved, scene.as_of) == expected, describe(
                    rule, resolved.refs, scene.as_of)


@on_sqlite
@SMALLER
@given(st.sampled_from(["sequences", "fields"]).flatmap(
    lambda scope: cases(rules=0, leaves=4, mixed_bounds=False, scope=scope)))
def test_yaml_route_of_sequences_and_field_comparisons(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """Sequences and field comparisons also come back typed and counted the same from YAML."""
    check_yaml_route(case, engine_kind, server)


@on_sqlite
@SMALLER
@given(cases(rules=2))
def test_explain_agrees_with_matches_and_walk(
        engine_kind: str, server: str | None,
        case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
    """explain() decides like matches(), and names every node with walk()'s paths."""
    scene, library, trees = case
    with built(scene.spec, engine_kind, server) as conn:
        profiles = list(load_all_profiles(conn, Catalog.load(conn)))
    for rule in trees:
        resolved = ResolvedSegment(Segment("probe", "Probe", rule), closure(rule, library))
        wanted = [path for path, _ in walk(rule)]
        for profile in profiles:
            explanation = explain(profile, resolved, scene.as_of)
            assert explanation.matched == matches(profile, resolved, scene.as_of)
            assert own_paths(explanation) == wanted
            assert explanation.label


def own_paths(explanation: Any) -> list[str]:
    """Paths of the explanation tree, without the rules of referenced segments."""
    found = [explanation.path]
    if ":" not in explanation.path:
        for child in explanation.children:
            if ":" not in child.path:
                found.extend(own_paths(child))
    return found


@on_every_engine
@settings(PROPERTY, max_examples=100)
@given(scenes())
def test_one_profile_loads_like_all_of_them(engine_kind: str, server: str | None,
        scene: Scene) -> None:
    """load_profile (the why panel) and load_all_profiles (the oracle) read the same data."""
    with built(scene.spec, engine_kind, server) as conn:
        catalog = Catalog.load(conn)
        every = list(load_all_profiles(conn, catalog))
        assert [p.id for p in every] == [str(p["id"]) for p in scene.spec.profiles]
        assert sum(len(p.events) for p in every) == len(scene.spec.events)
        for profile in every:
            assert load_profile(conn, catalog, profile.pk) == profile
