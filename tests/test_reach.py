"""Reach per channel from consent attributes, on every engine: exact against the profiles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.campaign.activation import review
from store.campaign.store import open_campaign
from store.engines.base import engine_for
from store.query.reach import consent_channels, reach
from store.schema.catalog import Catalog
from store.schema.values import UTC
from tests.engine_helpers import resolve_rule
from tests.factory import StoreSpec, build_store

AS_OF = dt.datetime(2026, 7, 1, 12, tzinfo=UTC)


def person(i: int) -> dict[str, Any]:
    """Email consent for two in three; SMS consent true, false or unknown; a decoy boolean."""
    return {"id": f"p{i:03d}", "n": i, "email": f"u{i}@example.com",
            "email_opt_in": i % 3 != 0,
            "sms_opt_in": None if i % 5 == 0 else i % 2 == 0,
            "push_consent": i % 4 == 0, "vip": True, "opt_in_note": "x"}


PEOPLE = [person(i) for i in range(1, 181)]
SPEC = StoreSpec(attributes={"email": "string", "n": "integer", "email_opt_in": "boolean",
                             "sms_opt_in": "boolean", "push_consent": "boolean", "vip": "boolean",
                             "opt_in_note": "string"}, profiles=PEOPLE)


def test_channels_are_boolean_attributes_named_for_consent(tmp_path: Path) -> None:
    conn = build_store(tmp_path / "s.db", SPEC)
    try:
        assert consent_channels(Catalog.load(conn)) == {
            "email": "email_opt_in", "sms": "sms_opt_in", "push": "push_consent"}
    finally:
        conn.close()


def test_reach_is_exact_on_every_engine(fresh_location: Callable[[str], str], tmp_path: Path,
                                        engine_kind: str) -> None:
    location = fresh_location("reach")
    build_store(location, SPEC).close()
    conn = engine_for(location).open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        resolved = resolve_rule(conn, {"attribute": "n", "op": "less_than", "value": 100}, "under 100")
        members = [p for p in PEOPLE if p["n"] < 100]
        expected = {"email": sum(p["email_opt_in"] for p in members),
                    "sms": sum(p["sms_opt_in"] is True for p in members),
                    "push": sum(p["push_consent"] for p in members)}
        assert reach(conn, resolved, AS_OF, catalog) == expected
        campaign = open_campaign(tmp_path / "campaign.db")
        try:
            result = review(conn, campaign, resolved, AS_OF, ["email"], catalog=catalog)
        finally:
            campaign.close()
        assert result.count == len(members)
        assert result.reach == expected
    finally:
        conn.close()
        if engine_kind == "duckdb":
            from store.engines.duckdb import DuckDBEngine

            DuckDBEngine.forget(location)


def test_a_catalog_without_consent_attributes_has_no_reach(tmp_path: Path) -> None:
    spec = StoreSpec(attributes={"n": "integer"}, profiles=[{"id": "a", "n": 1}])
    conn = build_store(tmp_path / "s.db", spec)
    try:
        resolved = resolve_rule(conn, {"attribute": "n", "op": "equals", "value": 1})
        assert reach(conn, resolved, AS_OF, Catalog.load(conn)) == {}
    finally:
        conn.close()


@pytest.mark.parametrize("fields", [[f"f{i}" for i in range(21)]])
def test_more_than_twenty_fields_are_refused(tmp_path: Path, fields: list[str]) -> None:
    from store.campaign.activation import personalisation_fields
    from store.errors import InputError

    attributes = {name: "string" for name in fields}
    conn = build_store(tmp_path / "s.db", StoreSpec(attributes=attributes, profiles=[]))
    try:
        with pytest.raises(InputError, match="at most 20"):
            personalisation_fields(Catalog.load(conn), fields)
        assert len(personalisation_fields(Catalog.load(conn), fields[:20])) == 20
    finally:
        conn.close()
