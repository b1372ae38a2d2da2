"""Activation into the campaign store: members, differences, history, fields, and failures."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.campaign.activation import (
    DEFAULT_FIELDS,
    MAX_FIELDS,
    ScanProgress,
    activate,
    definition_of,
    personalisation_fields,
    resolve_audience,
    review,
)
from store.campaign.store import find_audience, history, member_ids, open_campaign
from store.engines.cancel import Cancel
from store.engines.sqlite import open_store
from store.errors import InputError, QueryCancelled, StoreError
from store.schema.catalog import Catalog
from store.segments.library import save_segment
from tests.engine_helpers import resolve_rule
from tests.factory import StoreSpec, build_store

UTC = dt.UTC
AS_OF = dt.datetime(2026, 6, 30, 12, tzinfo=UTC)
NAMES = ("Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gus")


def profile(i: int) -> dict[str, Any]:
    """Profile number ``i``: some lack an email (every 7th) or a first name (every 5th)."""
    return {
        "id": f"p{i:04d}",
        "email": f"user{i}@example.com" if i % 7 else None,
        "first_name": NAMES[i % len(NAMES)] if i % 5 else None,
        "n": i,
        "vip": i % 3 == 0,
        "birth_date": dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
    }


def make_profile_store(path: Path, count: int = 240) -> list[dict[str, Any]]:
    """A profile store of ``count`` profiles; every 4th bought something in June 2026."""
    profiles = [profile(i) for i in range(1, count + 1)]
    events = [{"profile_id": p["id"], "type": "purchase", "amount": float(p["n"]),
               "timestamp": dt.datetime(2026, 6, 1 + p["n"] % 28, 10, tzinfo=UTC)}
              for p in profiles if p["n"] % 4 == 0]
    spec = StoreSpec(
        attributes={"email": "string", "first_name": "string", "n": "integer", "vip": "boolean",
                    "birth_date": "date"},
        derived_age_from="birth_date", profiles=profiles, event_fields={"amount": "number"},
        events=events)
    build_store(path, spec).close()
    return profiles


def below(limit: int, name: str = "Under a limit") -> dict[str, Any]:
    return {"attribute": "n", "op": "less_than", "value": limit}


@pytest.fixture()
def stores(tmp_path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection, list[dict[str, Any]]]:
    profiles = make_profile_store(tmp_path / "shop.db")
    conn = open_store(tmp_path / "shop.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    yield conn, campaign, profiles
    conn.close()
    campaign.close()


def ids(profiles: list[dict[str, Any]], keep: Any) -> set[str]:
    return {p["id"] for p in profiles if keep(p)}


def member_rows(campaign: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return campaign.execute(
        "SELECT audience_id, profile_id, fields FROM audience_members ORDER BY 1, 2").fetchall()


def watch_member_writes(campaign: sqlite3.Connection) -> Any:
    """Temporary triggers that log every write to ``audience_members``; returns a reader of the log."""
    campaign.execute("CREATE TEMP TABLE member_writes(kind TEXT)")
    for kind in ("INSERT", "UPDATE", "DELETE"):
        campaign.execute(f"CREATE TEMP TRIGGER watch_{kind.lower()} AFTER {kind} ON main.audience_members"
                         f" BEGIN INSERT INTO member_writes VALUES ('{kind}'); END")
    return lambda: [row[0] for row in campaign.execute("SELECT kind FROM member_writes")]


def test_first_activation_materialises_exactly_the_audience(stores: Any) -> None:
    conn, campaign, profiles = stores
    resolved = resolve_rule(conn, below(100), "Small numbers")
    result = activate(conn, campaign, resolved, AS_OF)
    expected = ids(profiles, lambda p: p["n"] < 100)
    assert (result.count, result.added, result.removed, result.kept) == (99, 99, 0, 0)
    assert member_ids(campaign, result.audience_id) == expected
    audience = find_audience(campaign, "small-numbers")
    assert audience.id == result.audience_id
    assert audience.member_count == 99 and audience.status == "active"
    assert audience.fields == DEFAULT_FIELDS
    assert audience.as_of == "2026-06-30 12:00:00"
    assert audience.fingerprint == definition_of(resolved)[2]
    assert [(h.count, h.added, h.removed) for h in history(campaign, audience.id)] == [(99, 99, 0)]


@pytest.mark.parametrize("rule", [
    {"attribute": "email", "op": "contains", "value": "USER1"},
    {"attribute": "first_name", "op": "is_empty"},
    {"not": {"attribute": "vip", "op": "is_true"}},
    {"event": "purchase", "count": {"op": "at_most", "value": 0}},
    {"event": "purchase", "aggregate": {"fn": "sum", "attribute": "amount", "op": "greater_than",
                                        "value": 100}},
    {"any": [{"attribute": "age", "op": "less_than", "value": 30}, {"attribute": "n", "op": "in",
                                                                     "value": [1, 2, 3]}]},
])
def test_members_agree_with_the_count_and_the_compiled_query(stores: Any, rule: Any) -> None:
    from store.query import audience
    from tests.engine_helpers import members

    conn, campaign, _ = stores
    resolved = resolve_rule(conn, rule, "Agree")
    result = activate(conn, campaign, resolved, AS_OF)
    assert result.count == audience.count(conn, resolved, AS_OF)
    assert member_ids(campaign, result.audience_id) == members(conn, rule, AS_OF)
    assert result.count > 0


def test_fields_are_captured_with_their_types(stores: Any) -> None:
    conn, campaign, profiles = stores
    resolved = resolve_rule(conn, below(50), "Fields")
    result = activate(conn, campaign, resolved, AS_OF, ["email", "first_name", "vip", "age", "n"])
    rows = dict(campaign.execute("SELECT profile_id, fields FROM audience_members WHERE audience_id = ?",
                                 (result.audience_id,)).fetchall())
    for p in profiles[:49]:
        fields = json.loads(rows[p["id"]])
        assert fields["email"] == p["email"]
        assert fields["first_name"] == p["first_name"]
        assert fields["vip"] is p["vip"]
        assert fields["n"] == p["n"]
        birth = p["birth_date"]
        assert fields["age"] == 2026 - birth.year - ((birth.month, birth.day) > (6, 30))


def test_activating_again_with_the_same_data_changes_no_member(stores: Any) -> None:
    conn, campaign, _ = stores
    resolved = resolve_rule(conn, below(120), "Again")
    first = activate(conn, campaign, resolved, AS_OF)
    before = member_rows(campaign)
    writes = watch_member_writes(campaign)
    second = activate(conn, campaign, resolved, AS_OF)
    assert (second.added, second.removed, second.kept, second.changed) == (0, 0, 119, 0)
    assert second.audience_id == first.audience_id
    assert member_rows(campaign) == before
    assert writes() == []  # not one member row was inserted, updated or deleted
    assert len(history(campaign, first.audience_id)) == 2


def test_refresh_reports_the_difference_and_replaces_members(stores: Any) -> None:
    conn, campaign, profiles = stores
    activate(conn, campaign, resolve_rule(conn, below(100), "Moving"), AS_OF)
    moved = resolve_rule(conn, {"all": [{"attribute": "n", "op": "greater_or_equal", "value": 50},
                                        {"attribute": "n", "op": "less_than", "value": 180}]}, "Moving")
    result = activate(conn, campaign, moved, AS_OF)
    old = ids(profiles, lambda p: p["n"] < 100)
    new = ids(profiles, lambda p: 50 <= p["n"] < 180)
    assert result.added == len(new - old) == 80
    assert result.removed == len(old - new) == 49
    assert result.kept == len(old & new) == 50
    assert member_ids(campaign, result.audience_id) == new
    audience = find_audience(campaign, result.audience_id)
    assert audience.member_count == 130
    assert audience.fingerprint == definition_of(moved)[2]


def test_review_predicts_activation_and_writes_nothing(stores: Any) -> None:
    conn, campaign, _ = stores
    activate(conn, campaign, resolve_rule(conn, below(100), "Reviewed"), AS_OF)
    moved = resolve_rule(conn, {"attribute": "n", "op": "between", "value": [90, 150]}, "Reviewed")
    before = member_rows(campaign)
    writes = watch_member_writes(campaign)
    audiences = campaign.execute("SELECT * FROM audiences").fetchall()
    seen = review(conn, campaign, moved, AS_OF, samples=3)
    assert writes() == []
    assert campaign.execute("SELECT * FROM audiences").fetchall() == audiences
    assert member_rows(campaign) == before
    assert (seen.count, seen.added, seen.removed, seen.kept, seen.previous) == (61, 51, 89, 10, 99)
    assert seen.definition_changed
    assert [m.profile_id for m in seen.samples_added] == ["p0100", "p0101", "p0102"]
    assert [m.profile_id for m in seen.samples_removed] == ["p0001", "p0002", "p0003"]
    assert [m.profile_id for m in seen.samples_kept] == ["p0090", "p0091", "p0092"]
    assert seen.samples_added[0].fields == {"email": "user100@example.com", "first_name": None}
    assert seen.samples_added[1].fields == {"email": "user101@example.com", "first_name": "Dmitri"}
    done = activate(conn, campaign, moved, AS_OF)
    assert (done.count, done.added, done.removed, done.kept) == (seen.count, seen.added, seen.removed,
                                                                  seen.kept)


def test_review_of_a_new_segment_has_no_previous(stores: Any) -> None:
    conn, campaign, _ = stores
    seen = review(conn, campaign, resolve_rule(conn, below(11), "Fresh"), AS_OF)
    assert seen.previous is None and not seen.definition_changed
    assert (seen.count, seen.added, seen.removed, seen.kept) == (10, 10, 0, 0)
    assert seen.samples_removed == () and seen.samples_kept == ()


def test_changed_fields_are_updated_and_counted(stores: Any, tmp_path: Path) -> None:
    conn, campaign, _ = stores
    resolved = resolve_rule(conn, below(30), "Changing")
    first = activate(conn, campaign, resolved, AS_OF, ["email"])
    writer = sqlite3.connect(tmp_path / "shop.db")
    writer.execute("UPDATE profiles SET email = 'new@example.com' WHERE id IN ('p0001', 'p0002')")
    writer.commit()
    writer.close()
    second = activate(conn, campaign, resolved, AS_OF, ["email"])
    assert (second.added, second.removed, second.changed) == (0, 0, 2)
    fields = dict(campaign.execute("SELECT profile_id, fields FROM audience_members WHERE audience_id = ?",
                                   (first.audience_id,)).fetchall())
    assert json.loads(fields["p0001"]) == {"email": "new@example.com"}
    assert json.loads(fields["p0003"]) == {"email": "user3@example.com"}
    third = activate(conn, campaign, resolved, AS_OF, ["email", "first_name"])
    assert third.changed == 29  # every kept member now has one more field
    assert find_audience(campaign, first.audience_id).fields == ("email", "first_name")


def test_a_refresh_without_fields_keeps_the_audience_fields(stores: Any) -> None:
    conn, campaign, _ = stores
    resolved = resolve_rule(conn, below(20), "Kept fields")
    activate(conn, campaign, resolved, AS_OF, ["vip", "n"])
    again = activate(conn, campaign, resolved, AS_OF)
    assert again.fields == ("vip", "n") and again.changed == 0
    assert review(conn, campaign, resolved, AS_OF).fields == ("vip", "n")


def test_the_as_of_instant_decides_event_rules(stores: Any) -> None:
    conn, campaign, profiles = stores
    rule = {"event": "purchase", "within": {"last": 7, "unit": "days"}}
    early = activate(conn, campaign, resolve_rule(conn, rule, "Recent buyers"),
                     dt.datetime(2026, 6, 10, 23, tzinfo=UTC))
    day = lambda p: 1 + p["n"] % 28  # noqa: E731
    assert member_ids(campaign, early.audience_id) == ids(
        profiles, lambda p: p["n"] % 4 == 0 and 4 <= day(p) <= 10)
    late = activate(conn, campaign, resolve_rule(conn, rule, "Recent buyers"),
                    dt.datetime(2026, 6, 28, 23, tzinfo=UTC))
    assert member_ids(campaign, late.audience_id) == ids(
        profiles, lambda p: p["n"] % 4 == 0 and 22 <= day(p) <= 28)
    assert late.added + late.kept == late.count


def test_an_empty_audience_is_activated_and_can_grow(stores: Any) -> None:
    conn, campaign, _ = stores
    empty = activate(conn, campaign, resolve_rule(conn, {"any": []}, "Grows"), AS_OF)
    assert (empty.count, empty.added) == (0, 0)
    assert find_audience(campaign, "grows").member_count == 0
    grown = activate(conn, campaign, resolve_rule(conn, below(6), "Grows"), AS_OF)
    assert (grown.count, grown.added, grown.removed) == (5, 5, 0)


def test_audiences_of_different_segments_are_separate(stores: Any) -> None:
    conn, campaign, _ = stores
    a = activate(conn, campaign, resolve_rule(conn, below(10), "A"), AS_OF)
    b = activate(conn, campaign, resolve_rule(conn, below(20), "B"), AS_OF)
    assert a.audience_id != b.audience_id
    activate(conn, campaign, resolve_rule(conn, below(3), "A"), AS_OF)
    assert len(member_ids(campaign, a.audience_id)) == 2
    assert len(member_ids(campaign, b.audience_id)) == 19


# ------------------------------------------------------------------ fields


def test_personalisation_fields(stores: Any) -> None:
    conn, _, _ = stores
    catalog = Catalog.load(conn)
    assert personalisation_fields(catalog) == ("email", "first_name")
    assert personalisation_fields(catalog, ["vip", "email", "vip"]) == ("vip", "email")
    with pytest.raises(InputError, match=r"unknown field 'emial'.*'email'"):
        personalisation_fields(catalog, ["emial"])
    too_many = ["email", "first_name", "n", "vip", "birth_date", "age", "id"]
    assert len(personalisation_fields(catalog, too_many)) == 7
    catalog.attributes.update({f"extra{i}": catalog.attributes["n"] for i in range(MAX_FIELDS)})
    with pytest.raises(InputError, match="at most 20"):
        personalisation_fields(catalog, [f"extra{i}" for i in range(MAX_FIELDS)] + ["n"])


def test_default_fields_only_those_the_store_has(tmp_path: Path) -> None:
    build_store(tmp_path / "bare.db", StoreSpec(attributes={"email": "string"},
                                                 profiles=[{"id": "x", "email": "x@y.z"}])).close()
    conn = open_store(tmp_path / "bare.db", readonly=True)
    assert personalisation_fields(Catalog.load(conn)) == ("email",)
    campaign = open_campaign(tmp_path / "campaign.db")
    result = activate(conn, campaign, resolve_rule(conn, {"all": []}, "Everyone"), AS_OF)
    assert campaign.execute("SELECT fields FROM audience_members").fetchone()[0] == '{"email":"x@y.z"}'
    assert result.fields == ("email",)


# ------------------------------------------------------------------ references


def test_fingerprint_covers_referenced_segments(stores: Any, tmp_path: Path) -> None:
    conn, campaign, _ = stores
    writer = open_store(tmp_path / "shop.db")
    save_segment(writer, resolve_rule(writer, below(40), "Base"))
    outer = resolve_rule(writer, {"all": [{"segment": "base"}, {"attribute": "vip", "op": "is_true"}]},
                         "Outer")
    first_print = definition_of(outer)[2]
    result = activate(conn, campaign, outer, AS_OF)
    assert result.count == 13  # multiples of 3 below 40
    save_segment(writer, resolve_rule(writer, below(10), "Base"))
    changed = resolve_rule(writer, {"all": [{"segment": "base"}, {"attribute": "vip", "op": "is_true"}]},
                           "Outer")
    assert definition_of(changed)[2] != first_print
    writer.close()
    # the audience can be resolved again from what was kept at activation
    audience = find_audience(campaign, "outer")
    assert "base" in audience.refs
    again = resolve_audience(conn, audience)
    assert activate(conn, campaign, again, AS_OF).count == 3  # the saved 'base' changed since


# ------------------------------------------------------------------ failures


def test_a_read_only_campaign_file_is_a_clear_error(stores: Any, tmp_path: Path) -> None:
    conn, campaign, _ = stores
    first = activate(conn, campaign, resolve_rule(conn, below(10), "Locked"), AS_OF)
    campaign.close()
    path = tmp_path / "campaign.db"
    path.chmod(0o444)
    try:
        locked = open_campaign(path)
        with pytest.raises(StoreError, match="read-only"):
            activate(conn, locked, resolve_rule(conn, below(50), "Locked"), AS_OF)
        assert member_ids(locked, first.audience_id) == {f"p{i:04d}" for i in range(1, 10)}
        locked.close()
    finally:
        path.chmod(0o644)


def test_a_full_disk_leaves_the_previous_members(stores: Any) -> None:
    conn, campaign, _ = stores
    first = activate(conn, campaign, resolve_rule(conn, below(10), "Full"), AS_OF)
    before = member_rows(campaign)
    pages = campaign.execute("PRAGMA page_count").fetchone()[0]
    campaign.execute(f"PRAGMA max_page_count = {pages}")
    big = resolve_rule(conn, {"all": []}, "Full")
    with pytest.raises(StoreError, match="full"):
        activate(conn, campaign, big, AS_OF, ["email", "first_name", "vip", "n", "birth_date"])
    assert member_rows(campaign) == before
    assert len(history(campaign, first.audience_id)) == 1
    assert find_audience(campaign, "full").member_count == 9
    assert not campaign.in_transaction


def test_cancel_stops_and_changes_nothing(stores: Any) -> None:
    conn, campaign, _ = stores
    activate(conn, campaign, resolve_rule(conn, below(10), "Cancelled"), AS_OF)
    before = member_rows(campaign)
    cancel = Cancel()

    def progress(step: str, fraction: float) -> None:
        cancel.cancel()

    with pytest.raises(QueryCancelled):
        activate(conn, campaign, resolve_rule(conn, below(200), "Cancelled"), AS_OF,
                 progress=progress, cancel=cancel)
    assert member_rows(campaign) == before
    assert not campaign.in_transaction


def test_progress_goes_forward_to_the_end(stores: Any) -> None:
    conn, campaign, _ = stores
    seen: list[tuple[str, float]] = []
    activate(conn, campaign, resolve_rule(conn, below(200), "Progress"), AS_OF,
             progress=lambda step, fraction: seen.append((step, fraction)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert seen[-1][0] == "Done"


def test_scan_progress_never_goes_back_when_members_come_out_of_pk_order() -> None:
    """Members in an attribute index's order (or an `any`'s parts one after the other)
    reach the pks out of order: without a known size the bar shows the furthest pk."""
    done = ScanProgress(top=40_960, expected=None)
    shown = [done.after(pk) for pk in (16_384, 4_096, 36_864, 8_192, 12_288)]
    assert shown == [0.4, 0.4, 0.9, 0.9, 0.9]


def test_scan_progress_counts_the_sampled_members_when_the_size_is_known() -> None:
    done = ScanProgress(top=1_000_000, expected=4 * 4096)
    shown = [done.after(pk) for pk in (4096 * 200, 4096, 4096 * 3, 4096 * 100, 4096 * 7)]
    assert shown == [0.25, 0.5, 0.75, 0.99, 0.99]


def test_activation_progress_with_the_reviewed_size_goes_forward(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "big.db", count=30_000)
    conn = open_store(tmp_path / "big.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        rule = {"any": [{"event": "purchase"}, {"attribute": "n", "op": "greater_than",
                                                 "value": 10_000}]}
        resolved = resolve_rule(conn, rule, "Passes")
        size = review(conn, campaign, resolved, AS_OF).count
        seen: list[float] = []
        activate(conn, campaign, resolved, AS_OF, expected=size,
                 progress=lambda step, fraction: seen.append(fraction))
        assert len(set(seen)) > 5
        assert seen == sorted(seen)
        assert seen[-1] == 1.0
    finally:
        conn.close()
        campaign.close()


def test_another_store_cannot_refresh_an_audience_it_did_not_activate(tmp_path: Path) -> None:
    """Two profile stores in one folder share the default campaign.db: the second one's
    review and activation of the same segment are refused, and the members stay."""
    make_profile_store(tmp_path / "shop.db")
    make_profile_store(tmp_path / "other.db", count=50)
    shop = open_store(tmp_path / "shop.db", readonly=True)
    other = open_store(tmp_path / "other.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        first = activate(shop, campaign, resolve_rule(shop, below(100), "Shared"), AS_OF)
        before = member_rows(campaign)
        theirs = resolve_rule(other, below(100), "Shared")
        for attempt in (review, activate):
            with pytest.raises(StoreError, match=r"activated from the profile store .*shop\.db"):
                attempt(other, campaign, theirs, AS_OF)
        assert member_rows(campaign) == before
        assert len(history(campaign, first.audience_id)) == 1
        again = activate(shop, campaign, resolve_rule(shop, below(100), "Shared"), AS_OF)
        assert (again.audience_id, again.added, again.removed) == (first.audience_id, 0, 0)
    finally:
        for conn in (shop, other, campaign):
            conn.close()


def test_a_moved_store_takes_its_audience_over(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db")
    shop = open_store(tmp_path / "shop.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        first = activate(shop, campaign, resolve_rule(shop, below(100), "Moved"), AS_OF)
        shop.close()
        (tmp_path / "shop.db").rename(tmp_path / "renamed.db")
        shop = open_store(tmp_path / "renamed.db", readonly=True)
        again = activate(shop, campaign, resolve_rule(shop, below(100), "Moved"), AS_OF)
        assert (again.audience_id, again.added, again.removed) == (first.audience_id, 0, 0)
        assert find_audience(campaign, "moved").source_db == str(tmp_path / "renamed.db")
    finally:
        shop.close()
        campaign.close()


def test_a_reader_keeps_its_snapshot_while_an_activation_commits(stores: Any, tmp_path: Path) -> None:
    conn, campaign, _ = stores
    first = activate(conn, campaign, resolve_rule(conn, below(10), "Shared"), AS_OF)
    reader = open_campaign(tmp_path / "campaign.db", readonly=True)
    reader.execute("BEGIN")
    assert len(member_ids(reader, first.audience_id)) == 9
    activate(conn, campaign, resolve_rule(conn, below(100), "Shared"), AS_OF)
    assert len(member_ids(reader, first.audience_id)) == 9  # its snapshot
    reader.execute("COMMIT")
    assert len(member_ids(reader, first.audience_id)) == 99
    reader.close()


def test_an_in_memory_profile_store_is_refused(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db", 5)
    disk = open_store(tmp_path / "shop.db", readonly=True)
    memory = sqlite3.connect(":memory:")
    disk.backup(memory)
    campaign = open_campaign(tmp_path / "campaign.db")
    with pytest.raises(StoreError, match="profile store file"):
        activate(memory, campaign, resolve_rule(disk, {"all": []}, "Mem"), AS_OF)
