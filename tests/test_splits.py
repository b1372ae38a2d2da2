"""Splits and holdouts, schedules, refresh definitions and the campaign store's migration (library level)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.campaign.activation import activate, refresh, review
from store.campaign.delivery import create_delivery, preview
from store.campaign.schedule import is_due, next_run
from store.campaign.splits import SplitSpec, allocate, parse_split
from store.campaign.store import (
    CAMPAIGN_SCHEMA_VERSION,
    find_audience,
    history,
    list_audiences,
    open_campaign,
    split_counts,
)
from store.engines.layout import write_transaction
from store.engines.sqlite import open_store
from store.errors import InputError
from store.segments.library import save_segment
from tests.engine_helpers import resolve_rule
from tests.test_activation import AS_OF, make_profile_store

UTC = dt.UTC


def groups_of(campaign: sqlite3.Connection, audience_id: int) -> dict[str, str]:
    return dict(campaign.execute("SELECT profile_id, split FROM audience_members WHERE audience_id = ?",
                                 (audience_id,)).fetchall())


@pytest.fixture()
def big(tmp_path: Path) -> Any:
    make_profile_store(tmp_path / "shop.db", 24_000)
    conn = open_store(tmp_path / "shop.db")
    campaign = open_campaign(tmp_path / "campaign.db")
    yield conn, campaign
    conn.close()
    campaign.close()


def test_shares_hold_within_a_point_and_groups_stay_through_churn(big: Any) -> None:
    conn, campaign = big
    spec = parse_split("A:45,B:45,holdout:10", "42")
    resolved = resolve_rule(conn, {"attribute": "n", "op": "less_than", "value": 20_001}, "most")
    first = activate(conn, campaign, resolved, AS_OF, split=spec)
    assert first.count == 20_000 and first.splits == {"A": 9_000, "B": 9_000, "holdout": 2_000}
    before = groups_of(campaign, first.audience_id)
    # churn: a quarter of the members leave, new ones come in
    with write_transaction(conn):
        conn.execute("UPDATE profiles SET n = n + 20000 WHERE n % 4 = 0 AND n <= 20000")
        conn.execute("UPDATE profiles SET n = n - 20000 WHERE n > 20000 AND n <= 24000 AND n % 4 = 0")
    later = activate(conn, campaign, resolved, AS_OF)  # no split given: the audience keeps its own
    after = groups_of(campaign, later.audience_id)
    assert (later.removed, later.added) == (4_000, 1_000)
    assert all(after[pid] == before[pid] for pid in set(after) & set(before))
    assert later.splits is not None
    for name, share in spec.groups:
        assert abs(later.splits[name] / later.count - share / 100) <= 0.01
    # another seed deals the members anew
    reseeded = activate(conn, campaign, resolved, AS_OF, split=parse_split("A:45,B:45,holdout:10", "43"))
    assert groups_of(campaign, reseeded.audience_id) != after
    assert reseeded.changed > 0
    # and SplitSpec() removes the split
    plain = activate(conn, campaign, resolved, AS_OF, split=SplitSpec())
    assert plain.splits is None and set(groups_of(campaign, plain.audience_id).values()) == {None}


def test_the_holdout_is_never_delivered_to(tmp_path: Path) -> None:
    profiles = make_profile_store(tmp_path / "shop.db", 200)
    conn = open_store(tmp_path / "shop.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        resolved = resolve_rule(conn, {"attribute": "n", "op": "less_than", "value": 101}, "hundred")
        result = activate(conn, campaign, resolved, AS_OF, split=parse_split("test:80,holdout:20"))
        assert result.splits == {"test": 80, "holdout": 20}
        delivery = create_delivery(campaign, result.audience_id, "Hello", "Hi {{ first_name }}", "Hi")
        shown = preview(campaign, delivery, limit=100)
        held = {pid for pid, group in groups_of(campaign, result.audience_id).items() if group == "holdout"}
        assert shown.members == 80
        assert len(shown.messages) == 80 and not {m.profile_id for m in shown.messages} & held
        # members lacking a field the template uses: counted among those delivered to only
        lacking = {p["id"] for p in profiles if p["n"] < 101 and not p["first_name"]}
        assert lacking & held and lacking - held  # the test means something only if both hold some
        assert shown.missing["first_name"] == len(lacking - held)
    finally:
        conn.close()
        campaign.close()


@pytest.mark.parametrize("text, message", [
    ("A:45,B:45", "add up to 90"),
    ("A:50,A:50", "named twice"),
    ("A:0,B:100", "above 0"),
    ("", "empty"),
    (":50,B:50", "not NAME:PCT"),
    ("A;50,B:50", "not NAME:PCT"),
])
def test_bad_split_text(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_split(text)


def test_allocation_sums_to_the_total() -> None:
    assert allocate(10, [45, 45, 10]) == [5, 4, 1]
    assert allocate(0, [1, 2]) == [0, 0]
    assert sum(allocate(12_345, [33.3, 33.3, 33.4])) == 12_345


def test_schedule_times() -> None:
    last = "2026-11-30 10:00:00"
    assert next_run("daily", last) == dt.datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert next_run("off", last) is None
    assert not is_due("daily", "active", last, dt.datetime(2026, 12, 1, 7, tzinfo=UTC))
    assert is_due("daily", "active", last, dt.datetime(2026, 12, 1, 8, tzinfo=UTC))  # a tenth early
    assert not is_due("daily", "inactive", last, dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert is_due("hourly", "active", last, dt.datetime(2026, 11, 30, 11, tzinfo=UTC))
    assert not is_due("weekly", "active", last, dt.datetime(2026, 12, 6, tzinfo=UTC))


def test_review_shows_both_definitions_in_words(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db", 100)
    conn = open_store(tmp_path / "shop.db")
    campaign = open_campaign(tmp_path / "campaign.db")
    try:
        old = resolve_rule(conn, {"attribute": "n", "op": "less_than", "value": 10}, "Small")
        save_segment(conn, old)
        activate(conn, campaign, old, AS_OF)
        new = resolve_rule(conn, {"any": [{"attribute": "n", "op": "less_than", "value": 20},
                                          {"attribute": "vip", "op": "is_true"}]}, "Small")
        save_segment(conn, new)
        seen = review(conn, campaign, new, AS_OF)
        assert seen.definition_changed
        assert seen.previous_words() == ["N is less than 10"]
        assert seen.definition_words() == ["Any of:", "  N is less than 20", "  VIP is true"]
        result = refresh(conn, campaign, "small", AS_OF)
        assert result.definition_changed and result.trigger == "refresh"
        assert history(campaign, result.audience_id)[-1].trigger == "refresh"
        assert not review(conn, campaign, new, AS_OF).definition_changed
    finally:
        conn.close()
        campaign.close()


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE audiences (id INTEGER PRIMARY KEY, name TEXT NOT NULL, segment_id TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL, refs TEXT NOT NULL DEFAULT '{}', fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active', fields TEXT NOT NULL DEFAULT '[]', source_db TEXT,
    created_at TEXT NOT NULL, activated_at TEXT NOT NULL, as_of TEXT NOT NULL,
    member_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audience_members (audience_id INTEGER NOT NULL, profile_id TEXT NOT NULL, fields TEXT,
    PRIMARY KEY (audience_id, profile_id)) WITHOUT ROWID;
CREATE TABLE activations (id INTEGER PRIMARY KEY, audience_id INTEGER NOT NULL, activated_at TEXT NOT NULL,
    as_of TEXT NOT NULL, count INTEGER NOT NULL, added INTEGER NOT NULL, removed INTEGER NOT NULL,
    kept INTEGER NOT NULL, changed INTEGER NOT NULL DEFAULT 0, duration_ms REAL NOT NULL,
    fingerprint TEXT NOT NULL);
CREATE TABLE deliveries (id INTEGER PRIMARY KEY, name TEXT NOT NULL, channel TEXT NOT NULL,
    audience_id INTEGER NOT NULL, subject TEXT NOT NULL DEFAULT '', body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'draft', created_at TEXT NOT NULL);
INSERT INTO meta VALUES ('format', 'audiences-tui-campaign'), ('schema_version', '1'),
    ('created_at', '2026-01-01 00:00:00');
INSERT INTO audiences VALUES (1, 'Old', 'old',
    'name: Old\nrule:\n  attribute: n\n  op: less_than\n  value: 5\n',
    '{}', 'x', 'active', '["email"]', NULL, '2026-01-01 00:00:00', '2026-01-01 00:00:00',
    '2026-01-01 23:59:59', 2);
INSERT INTO audience_members VALUES (1, 'p0001', '{"email": "a"}'), (1, 'p0002', '{"email": "b"}');
INSERT INTO activations VALUES (1, 1, '2026-01-01 00:00:00', '2026-01-01 23:59:59', 2, 2, 0, 0, 0, 1.0, 'x');
"""


def make_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()


def test_a_version_1_campaign_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "campaign.db"
    make_v1(path)
    path.chmod(0o444)
    reader = open_campaign(path)  # read-only by its bits: read as if current, not changed
    try:
        (old,) = list_audiences(reader)
        assert (old.schedule, old.splits, old.origin, old.member_count) == ("off", None, "file", 2)
        assert old.identifiers is None  # not recorded then: an export judges the fields by name
        assert history(reader, 1)[0].trigger == "activate"
    finally:
        reader.close()
    path.chmod(0o644)
    campaign = open_campaign(path)
    try:
        version = campaign.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        assert int(version) == CAMPAIGN_SCHEMA_VERSION == 3
        columns = {row[1] for row in campaign.execute("PRAGMA table_info(audience_members)")}
        assert "split" in columns
        assert find_audience(campaign, "old").schedule == "off"
        assert split_counts(campaign, 1) == {}
        assert groups_of(campaign, 1) == {"p0001": None, "p0002": None}
    finally:
        campaign.close()
