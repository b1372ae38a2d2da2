"""Time the segment engine on a large store (see bench/engine_data.py).

    .venv/bin/python bench/engine_data.py /tmp/bench.db
    .venv/bin/python bench/engine_bench.py /tmp/bench.db [--plans] [--only NAME]

For each segment: the exact count (best of 3, ms), the first keyset page and a
page deep into the audience, a seeded sample, and optionally the query plan.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.engines.sqlite import open_store
from store.query import audience
from store.query.compiler import compile_segment, explain
from store.schema.catalog import Catalog
from store.segments.validate import validate_segment
from store.segments.yamlio import load_segment_text

T = TypeVar("T")
AS_OF = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=dt.UTC)

SEGMENTS: dict[str, Any] = {
    "attr: gender=male": {"attribute": "gender", "op": "equals", "value": "male"},
    "attr: male, age>50, country in": {"all": [
        {"attribute": "gender", "op": "equals", "value": "male"},
        {"attribute": "age", "op": "greater_than", "value": 50},
        {"attribute": "country", "op": "in", "value": ["US", "GB", "DE"]}]},
    "attr: email contains": {"attribute": "email", "op": "contains", "value": "user12"},
    "event: 2 purchases in 30 days": {"event": "purchase", "within": {"last": 30, "unit": "days"},
                                      "count": {"op": "at_least", "value": 2}},
    "event: purchased ever": {"event": "purchase"},
    "event: no purchase in 90 days": {"event": "purchase", "within": {"last": 90, "unit": "days"},
                                      "count": {"op": "at_most", "value": 0}},
    "event: any event in 7 days": {"event": "*", "within": {"last": 7, "unit": "days"}},
    "event: shoes sum>=100 in 1y": {"event": "purchase",
                                    "where": [{"attribute": "product.category", "op": "equals",
                                               "value": "Shoes"}],
                                    "within": {"last": 1, "unit": "years"},
                                    "aggregate": {"fn": "sum", "attribute": "amount",
                                                  "op": "greater_or_equal", "value": 100}},
    "event: 3 distinct orders": {"event": "purchase",
                                 "count": {"op": "at_least", "value": 3, "distinct": "order_id"}},
    "mixed: male>50 + 2 purchases 90d + not vip": {"all": [
        {"attribute": "gender", "op": "equals", "value": "male"},
        {"attribute": "age", "op": "greater_than", "value": 50},
        {"event": "purchase", "within": {"last": 90, "unit": "days"},
         "count": {"op": "at_least", "value": 2}},
        {"not": {"attribute": "vip", "op": "is_true"}}]},
    "mixed: any(cart 7d, open 7d) and not purchase 30d": {"all": [
        {"any": [{"event": "add_to_cart", "within": {"last": 7, "unit": "days"}},
                 {"event": "email_open", "within": {"last": 7, "unit": "days"}}]},
        {"not": {"event": "purchase", "within": {"last": 30, "unit": "days"}}}]},
    "list: 50k ids": {"attribute": "id", "op": "in",
                      "value": [f"P{i:08d}" for i in range(1, 100_001, 2)]},
}


def best_ms(action: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    times: list[float] = []
    result = action()
    for _ in range(repeat - 1):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--plans", action="store_true")
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    conn = open_store(args.path, readonly=True)
    catalog = Catalog.load(conn)
    print(f"total profiles: {audience.total(conn):,}")
    rows = []
    for name, rule in SEGMENTS.items():
        if args.only and args.only not in name:
            continue
        segment, lines = load_segment_text(yaml.safe_dump({"name": "bench", "rule": rule}))
        resolved = validate_segment(segment, catalog, lines)
        count_ms, size = best_ms(partial(audience.count, conn, resolved, AS_OF, catalog))
        page_ms, page = best_ms(partial(audience.member_page, conn, resolved, AS_OF,
                                        catalog=catalog))
        deep_after = page[-1][0] * 50 if page else None
        deep_ms, _ = best_ms(partial(audience.member_page, conn, resolved, AS_OF,
                                     after_pk=deep_after, catalog=catalog))
        sample_ms, _ = best_ms(partial(audience.sample, conn, resolved, AS_OF, n=10, seed=1,
                                       catalog=catalog))
        rows.append((name, size, count_ms, page_ms, deep_ms, sample_ms))
        print(f"{name:<52} {size:>9,}  count {count_ms:8.1f} ms  page {page_ms:7.1f} ms"
              f"  deep page {deep_ms:7.1f} ms  sample {sample_ms:7.1f} ms", flush=True)
        if args.plans:
            for line in explain(conn, compile_segment(resolved, catalog, AS_OF)):
                print("    " + line)
    print(f"median count: {statistics.median(r[2] for r in rows):.1f} ms")


if __name__ == "__main__":
    main()
