"""Build a large synthetic store for engine benchmarks (default 1M profiles, 10M events).

    .venv/bin/python bench/engine_data.py /tmp/bench.db --profiles 1000000 --events 10000000

The data is random but shaped like the sample store: string, date, datetime,
boolean, integer and number attributes (some missing), derived ``age``, five
event types with fields, and a ``product`` entity linked through ``sku``.
Events end at 2026-03-01.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.engines.layout import write_transaction
from store.engines.sqlite import create_store
from store.schema import catalog as cat
from store.schema.values import AttrType

END = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
TYPES = ("page_view", "email_open", "add_to_cart", "purchase", "email_click")
TYPE_WEIGHTS = (0.5, 0.2, 0.15, 0.1, 0.05)
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR", "CA", "AU", "JP", "IN")
CATEGORIES = ("Shoes", "Boots", "Shirts", "Pants", "Hats", "Bags", "Socks", "Jackets")


def build(path: Path, profiles: int, events: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    if path.exists():
        path.unlink()
    conn = create_store(path)
    conn.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    with write_transaction(conn):
        attributes: tuple[tuple[str, AttrType], ...] = (
            ("gender", "string"), ("country", "string"), ("email", "string"),
            ("birth_date", "date"), ("signup", "datetime"), ("vip", "boolean"),
            ("loyalty_points", "integer"), ("ltv", "number"))
        columns = {name: cat.ensure_attribute(conn, name, kind).column for name, kind in attributes}
        cat.declare_derived_age(conn, "age", "birth_date")
        genders = rng.choice(np.array(["male", "female", "other", ""], dtype=object), profiles,
                             p=[0.47, 0.47, 0.01, 0.05])
        countries = rng.choice(np.array(COUNTRIES, dtype=object), profiles)
        births = rng.integers(dt.date(1940, 1, 1).toordinal(), dt.date(2008, 1, 1).toordinal(),
                              profiles)
        birth_missing = rng.random(profiles) < 0.03
        signups = rng.integers(int(END.timestamp()) - 5 * 365 * 86400, int(END.timestamp()),
                               profiles)
        vip = rng.choice(np.array([1, 0, None], dtype=object), profiles, p=[0.1, 0.8, 0.1])
        points = rng.integers(0, 10_000, profiles)
        ltv = np.round(rng.gamma(2.0, 150.0, profiles), 2)

        def profile_rows() -> Iterator[tuple[object, ...]]:
            for i in range(profiles):
                yield (
                    f"P{i + 1:08d}", genders[i] or None, countries[i], f"user{i + 1}@example.com",
                    None if birth_missing[i] else dt.date.fromordinal(int(births[i])).isoformat(),
                    dt.datetime.fromtimestamp(int(signups[i]), dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    vip[i], int(points[i]), float(ltv[i]),
                )

        names = ", ".join(f'"{columns[n]}"' for n in (
            "gender", "country", "email", "birth_date", "signup", "vip", "loyalty_points", "ltv"))
        conn.executemany(f"INSERT INTO profiles(id, {names}) VALUES (?,?,?,?,?,?,?,?,?)",
                         profile_rows())
        type_ids = [cat.ensure_event_type(conn, name) for name in TYPES]
        event_fields: tuple[tuple[str, AttrType], ...] = (
            ("amount", "number"), ("order_id", "string"), ("channel", "string"))
        fields = {name: cat.ensure_event_field(conn, name, kind, type_ids).column
                  for name, kind in event_fields}
        cat.ensure_entity(conn, "product", "sku", "string", "sku")
        fields["sku"] = cat.Catalog.load(conn).event_fields["sku"].column
        category = cat.ensure_entity_field(conn, "product", "category", "string").column
        price = cat.ensure_entity_field(conn, "product", "price", "number").column
        skus = [f"SKU{i:05d}" for i in range(5000)]
        conn.executemany(
            f'INSERT INTO entity_product(key, "{category}", "{price}") VALUES (?, ?, ?)',
            [(sku, CATEGORIES[i % len(CATEGORIES)], round(5 + (i % 200) * 1.5, 2))
             for i, sku in enumerate(skus[:4900])])  # the last 100 skus have no product row
        conn.execute("DROP INDEX events_type_ts_profile")
        conn.execute("DROP INDEX events_profile_ts")
        # Activity is skewed: a few profiles have many events.
        weights = rng.pareto(1.5, profiles) + 0.05
        weights /= weights.sum()
        owners = rng.choice(profiles, events, p=weights) + 1
        kinds = rng.choice(len(TYPES), events, p=TYPE_WEIGHTS)
        stamps = np.sort(rng.integers(int(END.timestamp()) - 2 * 365 * 86400,
                                      int(END.timestamp()), events))
        amounts = np.round(rng.gamma(2.0, 30.0, events), 2)
        sku_index = rng.integers(0, len(skus), events)
        orders = rng.integers(0, events // 3 + 1, events)
        channels = np.array(["web", "app", "store"], dtype=object)[rng.integers(0, 3, events)]

        def event_rows() -> Iterator[tuple[object, ...]]:
            for i in range(events):
                kind = int(kinds[i])
                buying = kind in (2, 3)
                yield (
                    int(owners[i]), type_ids[kind], int(stamps[i]),
                    float(amounts[i]) if kind == 3 else None,
                    f"O{orders[i]}" if kind == 3 else None,
                    channels[i],
                    skus[sku_index[i]] if buying else None,
                )

        conn.executemany(
            f'INSERT INTO events(profile_pk, type_id, ts, "{fields["amount"]}",'
            f' "{fields["order_id"]}", "{fields["channel"]}", "{fields["sku"]}")'
            " VALUES (?,?,?,?,?,?,?)", event_rows())
        conn.execute("CREATE INDEX events_type_ts_profile ON events(type_id, ts, profile_pk)")
        conn.execute("CREATE INDEX events_profile_ts ON events(profile_pk, ts)")
    conn.close()
    print(f"built {path}: {profiles:,} profiles, {events:,} events in"
          f" {time.perf_counter() - started:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    build(args.path, args.profiles, args.events, args.seed)


if __name__ == "__main__":
    main()
