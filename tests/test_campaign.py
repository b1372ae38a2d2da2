"""The campaign store file: schema, opening rules, audience queries, paging and CSV export."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from store.campaign.activation import activate
from store.campaign.store import (
    CAMPAIGN_SCHEMA_VERSION,
    default_campaign_path,
    export_csv,
    export_csv_file,
    find_audience,
    get_audience,
    history,
    iter_members,
    list_audiences,
    member_count,
    member_page,
    open_campaign,
    set_status,
    size_history,
)
from store.engines.sqlite import open_store
from store.errors import InputError, StoreError
from tests.engine_helpers import resolve_rule
from tests.test_activation import AS_OF, below, make_profile_store


@pytest.fixture()
def filled(tmp_path: Path) -> tuple[sqlite3.Connection, int]:
    """A campaign store with audience 'pages' (p0001..p0239) activated three times, and 'small'."""
    make_profile_store(tmp_path / "shop.db")
    conn = open_store(tmp_path / "shop.db", readonly=True)
    campaign = open_campaign(tmp_path / "campaign.db")
    for limit in (100, 240, 240):
        result = activate(conn, campaign, resolve_rule(conn, below(limit), "Pages"), AS_OF,
                          ["email", "first_name", "vip"])
    activate(conn, campaign, resolve_rule(conn, below(4), "Small"), AS_OF)
    conn.close()
    yield campaign, result.audience_id
    campaign.close()


def test_the_schema_has_the_contract_tables_and_columns(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "new" / "campaign.db")
    columns = {table: {row[1] for row in campaign.execute(f"PRAGMA table_info({table})")}
               for table in ("audiences", "audience_members", "activations", "deliveries")}
    assert {"id", "name", "segment_id", "definition", "fingerprint", "status", "fields", "created_at",
            "activated_at", "as_of", "member_count"} <= columns["audiences"]
    assert {"audience_id", "profile_id", "fields"} <= columns["audience_members"]
    assert {"id", "audience_id", "activated_at", "as_of", "count", "added", "removed", "kept",
            "duration_ms"} <= columns["activations"]
    assert {"id", "name", "channel", "audience_id", "subject", "body", "status",
            "created_at"} <= columns["deliveries"]
    assert campaign.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert campaign.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    without_rowid = campaign.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'audience_members'").fetchone()[0]
    assert "WITHOUT ROWID" in without_rowid
    campaign.close()
    again = open_campaign(tmp_path / "new" / "campaign.db")  # opening twice is fine
    assert list_audiences(again) == []
    again.close()


def test_default_path_is_beside_the_profile_store(tmp_path: Path) -> None:
    assert default_campaign_path(tmp_path / "data" / "shop.db") == tmp_path / "data" / "campaign.db"


def test_a_profile_store_is_not_a_campaign_store(tmp_path: Path) -> None:
    make_profile_store(tmp_path / "shop.db", 3)
    with pytest.raises(StoreError, match="not an Audiences campaign store"):
        open_campaign(tmp_path / "shop.db")


def test_a_newer_campaign_store_is_refused(tmp_path: Path) -> None:
    open_campaign(tmp_path / "campaign.db").close()
    raw = sqlite3.connect(tmp_path / "campaign.db")
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(CAMPAIGN_SCHEMA_VERSION + 1),))
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="newer version"):
        open_campaign(tmp_path / "campaign.db")


def test_a_missing_store_opened_read_only_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="No campaign store"):
        open_campaign(tmp_path / "campaign.db", readonly=True)
    assert not (tmp_path / "campaign.db").exists()
    with pytest.raises(StoreError, match="folder"):
        open_campaign(tmp_path)


def test_audiences_are_found_by_number_or_segment_id(filled: tuple[sqlite3.Connection, int]) -> None:
    campaign, pages = filled
    assert [a.segment_id for a in list_audiences(campaign)] == ["small", "pages"]
    by_number = get_audience(campaign, pages)
    assert by_number == get_audience(campaign, "pages") == get_audience(campaign, str(pages))
    assert get_audience(campaign, "nope") is None
    with pytest.raises(InputError, match=r"No audience 'nope'.*pages"):
        find_audience(campaign, "nope")


def test_history_and_sizes(filled: tuple[sqlite3.Connection, int]) -> None:
    campaign, pages = filled
    records = history(campaign, pages)
    assert [(r.count, r.added, r.removed, r.kept) for r in records] == [
        (99, 99, 0, 0), (239, 140, 0, 99), (239, 0, 0, 239)]
    assert [r.count for r in history(campaign, pages, limit=2)] == [239, 239]
    sizes = size_history(campaign)
    assert sizes[pages] == [99, 239, 239]
    assert size_history(campaign, limit=1)[pages] == [239]


def test_member_pages_use_keys_forward_and_back(filled: tuple[sqlite3.Connection, int]) -> None:
    campaign, pages = filled
    first = member_page(campaign, pages, None, 50)
    assert [m.profile_id for m in first[:3]] == ["p0001", "p0002", "p0003"]
    second = member_page(campaign, pages, first[-1].profile_id, 50)
    assert second[0].profile_id == "p0051"
    back = member_page(campaign, pages, limit=50, before=second[0].profile_id)
    assert back == first
    walked = list(iter_members(campaign, pages, batch=64))
    assert [m.profile_id for m in walked] == [f"p{i:04d}" for i in range(1, 240)]
    assert walked[2].fields == {"email": "user3@example.com", "first_name": "Dmitri", "vip": True}
    assert member_count(campaign, pages) == 239


def test_export_csv_has_a_column_per_field(filled: tuple[sqlite3.Connection, int]) -> None:
    campaign, pages = filled
    out = io.StringIO()
    assert export_csv(campaign, find_audience(campaign, pages), out) == 239
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["profile_id", "email", "first_name", "vip"]
    assert rows[3] == ["p0003", "user3@example.com", "Dmitri", "true"]
    assert rows[5] == ["p0005", "user5@example.com", "", "false"]  # a missing field is empty
    assert rows[7][1] == ""  # p0007 has no email
    assert len(rows) == 240


def test_export_to_a_file_leaves_no_partial_file(filled: tuple[sqlite3.Connection, int],
                                                 tmp_path: Path) -> None:
    campaign, pages = filled
    audience = find_audience(campaign, pages)
    target = tmp_path / "out.csv"
    assert export_csv_file(campaign, audience, target) == 239
    assert target.read_text().startswith("profile_id,email,first_name,vip\n")
    with pytest.raises(StoreError, match="Cannot write"):
        export_csv_file(campaign, audience, tmp_path / "missing-folder" / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".csv", ".partial")) == ["out.csv"]


def test_deactivate_keeps_members_and_activation_reactivates(filled: tuple[sqlite3.Connection, int],
                                                             tmp_path: Path) -> None:
    campaign, pages = filled
    set_status(campaign, pages, "inactive")
    assert find_audience(campaign, pages).status == "inactive"
    assert member_count(campaign, pages) == 239
    with pytest.raises(InputError):
        set_status(campaign, pages, "paused")
    with pytest.raises(InputError):
        set_status(campaign, 999, "inactive")
    conn = open_store(tmp_path / "shop.db", readonly=True)
    activate(conn, campaign, resolve_rule(conn, below(240), "Pages"), AS_OF)
    conn.close()
    assert find_audience(campaign, pages).status == "active"
