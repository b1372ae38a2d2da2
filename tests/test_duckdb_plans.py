"""DuckDB builds an event condition's hash join on the subquery the compiler wrote.

The compiler puts the profiles an event condition keeps in an ``IN`` subquery. DuckDB's
estimate of ``GROUP BY profile_pk HAVING count(*) >= n`` is its input's size, so with its
``build_side_probe_side`` pass it built the hash table on the profiles an attribute kept
instead (bench/RESULTS.md, "Hash joins built on the subquery"); the engine turns that pass
off (``store.engines.duckdb.instance_config``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from store.engines.base import Connection, engine_for
from store.query.compiler import compile_segment, count_query
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from tests.engine_helpers import resolve_rule

UNTIL = dt.date(2025, 6, 1)
AS_OF = dt.datetime(2025, 6, 1, 23, 59, 59, tzinfo=dt.UTC)
# Many profiles kept by the attributes, few by the events: the shape of "frequent buyers on
# Gmail, not gold" (the suite's segment-refs).
RULE = {"all": [
    {"event": "purchase", "within": {"last": 30, "unit": "days"}, "count": {"op": "at_least", "value": 2}},
    {"attribute": "email", "op": "ends_with", "value": "@gmail.com"},
    {"not": {"attribute": "loyalty_tier", "op": "equals", "value": "gold"}},
]}


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    location = str(tmp_path_factory.mktemp("plans") / "shop.duckdb")
    generate_sample(location, profiles=3000, seed=5, until=UNTIL)
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    yield conn
    conn.close()
    engine.release()


def _joins(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "JOIN" in str(node.get("name", "")):
        yield node
    for child in node.get("children", []):
        yield from _joins(child)


def _tables(node: dict[str, Any]) -> set[str]:
    extra = node.get("extra_info", {})
    found = {str(extra.get("Table", "")).rsplit(".", 1)[-1]} if isinstance(extra, dict) else set()
    for child in node.get("children", []):
        found |= _tables(child)
    return found - {""}


def test_the_event_set_is_the_build_side(duck: Connection) -> None:
    catalog = Catalog.load(duck)
    query = count_query(compile_segment(resolve_rule(duck, RULE), catalog, AS_OF, "duckdb"))
    plan = json.loads(duck.execute("EXPLAIN (FORMAT JSON) " + query.sql, query.params).fetchall()[0][1])
    joins = [join for root in plan for join in _joins(root)]
    assert joins, plan
    for join in joins:
        probe, build = join["children"]
        assert _tables(build) == {"events"}, (join["name"], _tables(probe), _tables(build))
        assert "profiles" in _tables(probe)
    assert duck.execute(query.sql, query.params).fetchone()[0] > 0
