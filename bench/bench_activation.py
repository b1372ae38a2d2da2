"""Activation speed on sample stores: first activation, unchanged refresh, shrink and grow.

    .venv/bin/python bench/bench_activation.py                       # 300,000 and 1,000,000
    .venv/bin/python bench/bench_activation.py --profiles 300000 --dir /tmp/bench

Sample stores are generated once into ``--dir`` (same seed and end date, so
the same data every run) and reused. Each size gets a fresh campaign store.
Every scenario runs the review (its own diff with samples) and then the
activation (which computes the diff again inside its transaction); the
targets apply to the activation: 300,000 members < 2 s, 1,000,000 < 6 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import sys
import time
from pathlib import Path

from store.campaign.activation import activate, review
from store.campaign.store import open_campaign
from store.engines.sqlite import open_store
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.segments.library import resolve_segment
from store.segments.validate import ResolvedSegment
from store.segments.yamlio import load_segment_text

UNTIL = dt.date(2026, 1, 31)
AS_OF = dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=dt.UTC)
TARGETS_S = {300_000: 2.0, 1_000_000: 6.0}

EVERYONE = "id: bench\nname: Bench\nrule:\n  all: []\n"
NOT_GOLD = "id: bench\nname: Bench\nrule:\n  attribute: loyalty_tier\n  op: not_equals\n  value: gold\n"


def sample_store(folder: Path, profiles: int) -> Path:
    path = folder / f"sample-{profiles}.db"
    if not path.exists():
        print(f"generating {path} ({profiles:,} profiles)…", file=sys.stderr)
        generate_sample(path, profiles=profiles, seed=1, until=UNTIL)
    return path


def segment(conn: sqlite3.Connection, text: str) -> ResolvedSegment:
    parsed, lines = load_segment_text(text)
    return resolve_segment(conn, parsed, lines)


def run(folder: Path, profiles: int) -> bool:
    path = sample_store(folder, profiles)
    campaign_path = folder / f"campaign-{profiles}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{campaign_path}{suffix}").unlink(missing_ok=True)
    conn = open_store(path, readonly=True)
    campaign = open_campaign(campaign_path)
    catalog = Catalog.load(conn)
    everyone, not_gold = segment(conn, EVERYONE), segment(conn, NOT_GOLD)
    target = TARGETS_S.get(profiles)
    ok = True
    print(f"\n{profiles:,} profiles (load average {os.getloadavg()[0]:.1f})")
    print(f"{'scenario':<22}{'members':>11}{'added':>10}{'removed':>10}{'review s':>10}{'activate s':>12}")
    for name, resolved in (("first activation", everyone), ("unchanged refresh", everyone),
                           ("shrink (not gold)", not_gold), ("grow back", everyone)):
        started = time.perf_counter()
        seen = review(conn, campaign, resolved, AS_OF, catalog=catalog)
        reviewed = time.perf_counter() - started
        started = time.perf_counter()
        result = activate(conn, campaign, resolved, AS_OF, catalog=catalog)
        took = time.perf_counter() - started
        assert (seen.count, seen.added, seen.removed) == (result.count, result.added, result.removed)
        late = target is not None and result.count >= profiles * 0.9 and took > target
        ok = ok and not late
        print(f"{name:<22}{result.count:>11,}{result.added:>10,}{result.removed:>10,}{reviewed:>10.2f}"
              f"{took:>12.2f}{'  over target' if late else ''}")
    conn.close()
    campaign.close()
    if target is not None:
        print(f"target: activation < {target:.0f} s -> {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[300_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/audiences-bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    results = [run(args.dir, n) for n in args.profiles]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
