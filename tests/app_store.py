"""A small, fully deterministic store for the app's tests, and helpers to wait on the app.

150 profiles with names, emails (some missing), birth dates (some missing),
countries and loyalty tiers; a product entity; purchases with order ids and
amounts; page views; profile P0001 has 250 events so its timeline spans
several pages. Three saved segments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from store.engines.layout import write_transaction
from store.schema import catalog as cat
from store.segments.library import resolve_segment, save_segment
from store.segments.yamlio import load_segment_text
from tests.factory import EntitySpec, StoreSpec, build_store

AS_OF = dt.datetime(2025, 6, 30, 23, 59, 59, tzinfo=dt.UTC)
PROFILE_COUNT = 150
FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon"]
LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Roberts",
        "Walker", "Wright", "Hall", "Green", "Wood", "Clarke"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL"]
TIERS = [None, "bronze", "silver", "gold", "platinum"]
PRODUCTS = [
    {"sku": "SKU-1", "name": "Trail Runner", "category": "Shoes", "price": 89.0},
    {"sku": "SKU-2", "name": "Harbor Boot", "category": "Boots", "price": 149.0},
    {"sku": "SKU-3", "name": "Canvas Tote", "category": "Bags", "price": 35.0},
]

SEGMENTS = {
    "smiths": """
id: smiths
name: The Smiths
rule:
  attribute: last_name
  op: equals
  value: Smith
""",
    "shoe-buyers": """
id: shoe-buyers
name: Shoe buyers
description: Bought shoes at least once.
rule:
  event: purchase
  where:
    - attribute: product.category
      op: equals
      value: Shoes
""",
    "gold-over-30": """
id: gold-over-30
name: Gold members over 30
rule:
  all:
    - attribute: loyalty_tier
      op: equals
      value: gold
    - attribute: age
      op: greater_than
      value: 30
""",
}

LABELS = {
    "first_name": ("First name", "Identity"),
    "last_name": ("Last name", "Identity"),
    "email": ("Email address", "Identity"),
    "birth_date": ("Date of birth", "Demographics"),
    "country": ("Country", "Location"),
    "loyalty_tier": ("Loyalty tier", "Loyalty"),
    "lifetime_value": ("Lifetime value", "Loyalty"),
    "email_opt_in": ("Email consent", "Consent"),
}


def profile_row(i: int) -> dict[str, Any]:
    """Profile number ``i`` (1-based)."""
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    return {
        "id": f"P{i:04d}",
        "first_name": first,
        "last_name": last,
        "email": None if i % 11 == 0 else f"{first.lower()}.{last.lower()}{i}@example.com",
        "birth_date": None if i % 7 == 0 else dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
        "country": COUNTRIES[i % len(COUNTRIES)],
        "loyalty_tier": TIERS[i % len(TIERS)],
        "lifetime_value": round(i * 13.5, 2),
        "email_opt_in": i % 2 == 0,
    }


def events() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    base = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    for i in range(1, PROFILE_COUNT + 1):
        pid = f"P{i:04d}"
        count = 250 if i == 1 else i % 4
        for n in range(count):
            when = base + dt.timedelta(hours=13 * n + i)
            if n % 3 == 2:
                product = PRODUCTS[(i + n) % len(PRODUCTS)]
                found.append({"profile_id": pid, "type": "purchase", "timestamp": when,
                              "sku": product["sku"], "amount": product["price"], "quantity": 1,
                              "order_id": f"O{i}-{n // 6}"})
            else:
                found.append({"profile_id": pid, "type": "page_view", "timestamp": when,
                              "page": f"/p/{n % 5}"})
    return found


def build(path: Path) -> Path:
    """Create the store at ``path`` (with its saved segments); returns ``path``."""
    spec = StoreSpec(
        attributes={"first_name": "string", "last_name": "string", "email": "string",
                    "birth_date": "date", "country": "string", "loyalty_tier": "string",
                    "lifetime_value": "number", "email_opt_in": "boolean"},
        profiles=[profile_row(i) for i in range(1, PROFILE_COUNT + 1)],
        event_fields={"page": "string", "amount": "number", "quantity": "integer",
                      "order_id": "string"},
        events=events(),
        entities={"product": EntitySpec("sku", "string", "sku",
                                        {"sku": "string", "name": "string", "category": "string",
                                         "price": "number"}, PRODUCTS)},
        derived_age_from="birth_date",
    )
    conn = build_store(path, spec)
    with write_transaction(conn):
        for name, (label, group) in LABELS.items():
            cat.set_labels(conn, "attributes", name, label=label, group=group)
        cat.set_labels(conn, "event_types", "purchase", label="Purchase")
        cat.set_labels(conn, "event_types", "page_view", label="Page view")
    for text in SEGMENTS.values():
        segment, lines = load_segment_text(text)
        save_segment(conn, resolve_segment(conn, segment, lines))
    conn.close()
    return path


STAMP = "2025-06-01 09:30:00"


def build_with_audiences(path: Path) -> Path:
    """``build``, then two activated audiences (gold-over-30, smiths) in campaign.db beside
    it; every save and activation stamp pinned to ``STAMP`` so screens draw the same."""
    from store.campaign.activation import activate
    from store.campaign.store import open_campaign
    from store.engines.sqlite import open_store
    from store.segments.library import resolve_saved

    build(path)
    conn = open_store(path)
    campaign = open_campaign(path.parent / "campaign.db")
    for segment_id in ("gold-over-30", "smiths"):
        activate(conn, campaign, resolve_saved(conn, segment_id), AS_OF)
    with campaign:
        campaign.execute("UPDATE audiences SET activated_at = ?, created_at = ?", (STAMP, STAMP))
        campaign.execute("UPDATE activations SET activated_at = ?, duration_ms = 12", (STAMP,))
    campaign.close()
    conn.execute("UPDATE segments SET created_at = ?, updated_at = ?", (STAMP, STAMP))
    conn.commit()
    conn.close()
    return path


async def settle(pilot: Any, condition: Any, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds (workers finished, messages handled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the app did not reach the expected state in time")
        await pilot.pause(0.02)


def table_ready(table: Any) -> Any:
    """A condition: the keyset table has rows and nothing pending."""
    return lambda: bool(table.window) and not table.busy


async def browser_ready(pilot: Any) -> None:
    """The profile browser on screen with its first page, its total and its status line
    settled (the status line follows the table through a message: its "loading…" must be
    gone too, or a snapshot may catch the note's empty width)."""
    from tui.screens.profiles import ProfilesScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
    screen = app.screen
    await settle(pilot, table_ready(screen.table))
    await settle(pilot, lambda: not screen._table_busy)
    await settle(pilot, lambda: not screen._count_busy and app.profile_total is not None)
