"""Property: a random segment written as PQL and read back has the same audience, on every
engine (spec/pql.md, "The subset written").

The random stores and rule trees are those of tests/test_property.py; the store
gets XDM names for part of its schema (so that both kinds of name are written).
Every node of every tree is written; the only refusal allowed is the one the
spec names (a distinct count), and every node written is read back, validated
and counted by the compiler against the original.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from store.engines.base import Connection
from store.engines.layout import write_transaction
from store.query.audience import count as compiled_count
from store.schema.catalog import Catalog, set_xdm
from store.segments.errors import SegmentError
from store.segments.model import Node, Segment, walk
from store.segments.pql_reader import read_pql
from store.segments.pql_writer import PqlWriteError, write_pql
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import dump_segment, load_segment_text
from tests.strategies import Scene, closure
from tests.test_property import (  # noqa: F401 - fixtures shared with the main properties
    SMALLER,
    _close_reused_stores,
    built,
    cases,
    describe,
    on_every_engine,
    server,
)

XDM_NAMES = {
    "attribute": {"gender": "person.gender", "score": "loyalty.score", "signup": "loyalty.joinDate",
                  "vip": "loyalty.vip", "last_seen": "web.lastSeen"},
    "event type": {"purchase": "commerce.purchases", "view": "commerce.productViews"},
    "event field": {"amount": "commerce.order.priceTotal", "sku": "productListItems.SKU"},
}


def name_things(conn: Connection) -> Catalog:
    """XDM names for part of the test store's schema (idempotent: stores are reused)."""
    catalog = Catalog.load(conn)
    if catalog.attributes["gender"].xdm:
        return catalog
    with write_transaction(conn):
        for kind, names in XDM_NAMES.items():
            for name, xdm in names.items():
                set_xdm(conn, kind, name, xdm)  # type: ignore[arg-type]
    return Catalog.load(conn)


def through_pql(node: Node, library: dict[str, Segment], catalog: Catalog) -> ResolvedSegment | None:
    """Write ``node`` as PQL and read it back (references resolved in ``library``, as YAML);
    None when the writer refuses, which only a distinct count may make it do."""
    try:
        text = write_pql(node, catalog)
    except PqlWriteError as exc:
        assert "a distinct count" in str(exc), exc
        return None
    texts = {seg_id: dump_segment(seg) for seg_id, seg in library.items()}

    def lookup(seg_id: str, source: str | None) -> tuple[Segment, dict[str, int]] | None:
        found = texts.get(seg_id)
        return None if found is None else load_segment_text(found, f"{seg_id}.yaml")

    try:
        reading = read_pql(text, catalog, source="probe.pql", segment_id="probe")
        return validate_segment(reading.segment, catalog, reading.lines, lookup)
    except SegmentError as exc:
        raise AssertionError(f"{exc}\n{text}") from exc


# The reading and writing do not depend on the engine; the counts that compare the two
# audiences do, and the main properties (tests/test_property.py) already draw the same nodes
# hundreds of times on each engine: the servers get fewer examples here than SQLite.
EXAMPLES = {"sqlite": 200, "duckdb": 50, "postgresql": 50}


@on_every_engine
def test_pql_round_trip_keeps_the_audience(engine_kind: str, server: str | None) -> None:  # noqa: F811
    @settings(SMALLER, max_examples=EXAMPLES[engine_kind])
    @given(cases(rules=2, leaves=6))
    def round_trip(case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
        check_round_trips(case, engine_kind, server)

    round_trip()


@on_every_engine
def test_pql_round_trip_of_sequences_and_field_comparisons(
        engine_kind: str, server: str | None) -> None:  # noqa: F811
    """CHAIN(...) for sequences (gaps, an absent last step, a window), X op Y for two fields
    (inside xEvent[...]: event, entity and profile.NAME fields)."""
    @settings(SMALLER, max_examples=EXAMPLES[engine_kind])
    @given(st.sampled_from(["sequences", "fields"]).flatmap(
        lambda scope: cases(rules=0, leaves=6, scope=scope)))
    def round_trip(case: tuple[Scene, dict[str, Segment], list[Node]]) -> None:
        check_round_trips(case, engine_kind, server)

    round_trip()


def check_round_trips(case: tuple[Scene, dict[str, Segment], list[Node]], engine_kind: str,
                      postgres: str | None) -> None:
    scene, library, trees = case
    with built(scene.spec, engine_kind, postgres) as conn:
        catalog = name_things(conn)
        checked: set[Node] = set()
        for rule in trees:
            for path, node in walk(rule):
                if node in checked:
                    continue
                checked.add(node)
                read_back = through_pql(node, library, catalog)
                if read_back is None:
                    continue
                original = ResolvedSegment(Segment("probe", "Probe", node), closure(node, library))
                expected = compiled_count(conn, original, scene.as_of, catalog)
                got = compiled_count(conn, read_back, scene.as_of, catalog)
                assert got == expected, (
                    f"{path}: {got} after PQL, {expected} before\n{write_pql(node, catalog)}\n"
                    + describe(node, original.refs, scene.as_of))
