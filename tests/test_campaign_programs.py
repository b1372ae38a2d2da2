"""Campaign programs from the command line on every engine: overlap, trend, splits and holdouts,
refresh with the current saved definition, schedules (spec/cli.md "Additions").

The same sample store is made on SQLite, DuckDB and PostgreSQL; each command must give the
same exact numbers on each, and those numbers must agree with member sets computed apart.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sample_data import SEGMENTS_DIR
from store.engines.base import engine_for
from store.query.audience import member_ids
from store.schema.catalog import Catalog
from store.segments.library import resolve_saved
from tests.services.fixtures import fresh_schema
from tests.test_engines_activation import forget_duckdb
from tui.cli import cli
from tui.commands.common import parse_when

AS_OF = "2026-11-30"
PROFILES = 1500
OVERLAP = ("lapsed-vips", "dormant-customers", "bargain-hunters", "one-time-buyers")
ENGINES = ("sqlite", "duckdb", "postgresql")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(*args: str | Path) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str | Path) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module", params=ENGINES)
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(store location, folder for campaign stores) of the sample store on one engine,
    with the example segments saved in it."""
    kind = str(request.param)
    folder = tmp_path_factory.mktemp(kind)
    if kind == "postgresql":
        location = fresh_schema(request.getfixturevalue("postgres_url"))
    else:
        location = str(folder / ("shop.duckdb" if kind == "duckdb" else "shop.db"))
    ok("sample", "--db", location, "--profiles", str(PROFILES), "--seed", "7", "--until", AS_OF, "--quiet")
    for name in OVERLAP:
        ok("segments", "save", SEGMENTS_DIR / f"{name}.yaml", "--db", location)
    yield location, folder
    if kind == "duckdb":
        forget_duckdb(location)


def python_sets(location: str, names: tuple[str, ...]) -> list[set[str]]:
    """Each saved segment's members, streamed by the membership query (not the overlap code)."""
    conn = engine_for(location).open_store(readonly=True)
    try:
        when = parse_when(AS_OF)
        catalog = Catalog.load(conn)
        return [set(member_ids(conn, resolve_saved(conn, name), when, catalog)) for name in names]
    finally:
        conn.close()


# ------------------------------------------------------------------ overlap


def test_overlap_is_exact_and_the_same_on_every_engine(shop: Any) -> None:
    location, _ = shop
    found = as_json("overlap", *OVERLAP, "--db", location, "--as-of", AS_OF)
    sets = python_sets(location, OVERLAP)
    assert found["segments"] == list(OVERLAP)
    assert found["sizes"] == [len(s) for s in sets]
    assert found["overlap"] == [[len(a & b) for b in sets] for a in sets]
    assert all(found["overlap"][i][i] == found["sizes"][i] for i in range(len(OVERLAP)))
    assert found["total"] == PROFILES
    assert found["union"] == len(set().union(*sets))
    exclusive = {tuple(item["segments"]): item["count"] for item in found["exclusive"]}
    for combo, size in exclusive.items():
        inside = set.intersection(*(sets[OVERLAP.index(name)] for name in combo))
        outside = set().union(*(s for name, s in zip(OVERLAP, sets, strict=True) if name not in combo))
        assert size == len(inside - outside)
    assert sum(exclusive.values()) == found["union"]
    assert any(len(combo) > 1 for combo in exclusive), "the example segments overlap somewhere"


def test_overlap_of_files_and_text_output(shop: Any) -> None:
    location, _ = shop
    files = [SEGMENTS_DIR / f"{name}.yaml" for name in OVERLAP[:2]]
    text = ok("overlap", *files, "--db", location, "--as-of", AS_OF).stdout
    assert "profiles in both" in text and "share of the row's audience" in text
    assert "lapsed-vips" in text and "dormant-customers" in text


@pytest.mark.parametrize("args", [
    ("lapsed-vips",),
    ("lapsed-vips", "lapsed-vips"),
    ("lapsed-vips", "no-such-segment"),
])
def test_overlap_bad_input_is_exit_2(shop: Any, args: tuple[str, ...]) -> None:
    location, _ = shop
    one_line_error(invoke("overlap", *args, "--db", location, "--as-of", AS_OF), 2)


# ------------------------------------------------------------------ trend


def test_trend_points_are_counts_at_each_instant(shop: Any) -> None:
    location, _ = shop
    found = as_json("trend", "lapsed-vips", "--db", location, "--every", "1w", "--last", "12w",
                    "--as-of", AS_OF)
    points = found["points"]
    assert len(points) == 12
    instants = [p["as_of"] for p in points]
    assert instants == sorted(instants)
    assert instants[-1].startswith("2026-11-30T23:59:59")
    assert instants[0].startswith("2026-09-14T23:59:59")
    for point in (points[0], points[-1]):
        counted = as_json("count", "lapsed-vips", "--db", location, "--as-of", point["as_of"])
        assert counted["count"] == point["count"]


@pytest.mark.parametrize("args", [
    ("--every", "1d", "--last", "500d"),
    ("--every", "0w"),
    ("--every", "week"),
])
def test_trend_bad_input_is_exit_2(shop: Any, args: tuple[str, ...]) -> None:
    location, _ = shop
    one_line_error(invoke("trend", "lapsed-vips", "--db", location, *args), 2)


def test_trend_by_months(shop: Any) -> None:
    location, _ = shop
    points = as_json("trend", "dormant-customers", "--db", location, "--every", "1m", "--last", "6m",
                     "--as-of", "2026-08-31")["points"]
    assert [p["as_of"][:10] for p in points] == ["2026-03-31", "2026-04-30", "2026-05-31",
                                                 "2026-06-30", "2026-07-31", "2026-08-31"]


# ------------------------------------------------------------------ splits, refresh, schedules


def campaign_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_split_activation_refresh_and_export(shop: Any, tmp_path: Path) -> None:
    location, _ = shop
    campaign = tmp_path / "campaign.db"
    base = ("--db", location, "--campaign-db", campaign)
    first = as_json("activate", "dormant-customers", *base, "--as-of", AS_OF,
                    "--split", "A:45,B:45,holdout:10", "--split-seed", "7")
    count = first["count"]
    assert count > 100
    assert set(first["splits"]) == {"A", "B", "holdout"}
    assert sum(first["splits"].values()) == count
    for name, share in (("A", 45), ("B", 45), ("holdout", 10)):
        assert abs(first["splits"][name] - count * share / 100) <= 1
    groups = dict(campaign_rows(campaign, "SELECT profile_id, split FROM audience_members"))
    assert len(groups) == count and set(groups.values()) == {"A", "B", "holdout"}

    # the same seed on the same members gives the same groups, in another campaign store too
    other = tmp_path / "other.db"
    as_json("activate", "dormant-customers", "--db", location, "--campaign-db", other, "--as-of", AS_OF,
            "--split", "A:45,B:45,holdout:10", "--split-seed", "7")
    assert dict(campaign_rows(other, "SELECT profile_id, split FROM audience_members")) == groups

    # a refresh later on: members who stay keep their group
    later = as_json("refresh", "dormant-customers", *base, "--as-of", "2026-12-31")
    assert later["splits"] and sum(later["splits"].values()) == later["count"]
    again = dict(campaign_rows(campaign, "SELECT profile_id, split FROM audience_members"))
    assert later["removed"] + later["added"] > 0, "the audience moves between the two dates"
    assert all(again[pid] == groups[pid] for pid in set(again) & set(groups))

    shown = as_json("audiences", "show", "dormant-customers", *base)
    assert shown["splits"] == later["splits"]
    assert shown["history"][-1]["trigger"] == "refresh"

    # exports: every group but the holdout by default, one group on request, hashed emails
    text = ok("audiences", "export", "dormant-customers", *base).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["split"] for r in rows} == {"A", "B"}
    assert len(rows) == later["count"] - later["splits"]["holdout"]
    holdout = ok("audiences", "export", "dormant-customers", *base, "--split", "holdout",
                 "--format", "ndjson", "--hash", "sha256", "--field", "email").stdout
    lines = [json.loads(line) for line in holdout.splitlines()]
    assert len(lines) == later["splits"]["holdout"]
    assert all(set(line) == {"profile_id", "email", "split"} for line in lines)
    plain = {r["profile_id"]: r["email"] for r in csv.DictReader(io.StringIO(ok(
        "audiences", "export", "dormant-customers", *base, "--split", "holdout").stdout))}
    for line in lines:
        email = plain[line["profile_id"]]
        assert line["email"] == (hashlib.sha256(email.strip().lower().encode()).hexdigest()
                                 if email else "")


IDENTIFIER_PROFILES = """id,contact,cell,landline,work_mobile,email_opt_in,phone_opt_in,nickname
p1, Ann@Example.com ,+44 7700 900001,020 7946 0001,+44 7700 900101,true,yes,Annie
p2,bob@example.com,+44 7700 900002,,+44 7700 900102,false,no,Bobby
"""
# contact, cell and landline have no identifier word in their names: their XDM names say what
# they are; email_opt_in has the word "email" but its XDM name says it is a consent, not an
# address; work_mobile has no XDM name, so its name decides; phone_opt_in has the word "phone"
# and no XDM name, but a yes/no value is never an identifier.
IDENTIFIER_SCHEMA = """contact: {xdm: personalEmail.address}
cell: {xdm: mobilePhone.number}
landline: {xdm: homePhone.number}
email_opt_in: {type: boolean, xdm: consents.marketing.email.val}
nickname: {xdm: person.name.nickname}
phone_opt_in: {type: boolean}
"""
IDENTIFIER_FIELDS = ("contact", "cell", "landline", "work_mobile", "email_opt_in", "phone_opt_in",
                     "nickname")


def test_hash_picks_identifiers_by_xdm_name_at_activation(fresh_location: Any, tmp_path: Path) -> None:
    """``--hash sha256`` hashes the fields the activation recorded as identifiers: by the XDM
    name an imported ``--schema`` gave them, else by the words of their names; the export
    reads only the campaign store (the profile store may be gone by then)."""
    location = fresh_location("identifiers")
    (tmp_path / "profiles.csv").write_text(IDENTIFIER_PROFILES)
    (tmp_path / "schema.yaml").write_text(IDENTIFIER_SCHEMA)
    (tmp_path / "everyone.yaml").write_text(
        "name: Everyone\nrule:\n  attribute: nickname\n  op: is_not_empty\n")
    ok("import", "profiles", tmp_path / "profiles.csv", "--db", location,
       "--schema", tmp_path / "schema.yaml")
    campaign = tmp_path / "campaign.db"
    fields = [arg for name in IDENTIFIER_FIELDS for arg in ("--field", name)]
    found = as_json("activate", tmp_path / "everyone.yaml", "--db", location, "--campaign-db", campaign,
                    "--as-of", AS_OF, *fields)
    assert found["count"] == 2
    ((recorded,),) = campaign_rows(campaign, "SELECT identifiers FROM audiences")
    assert json.loads(recorded) == ["contact", "cell", "landline", "work_mobile"]
    if location.endswith(".duckdb"):
        forget_duckdb(location)
    if not location.startswith("postgresql"):
        Path(location).unlink()  # the export does not look at the profile store again
    base = ("--campaign-db", campaign)
    plain = {r["profile_id"]: r for r in csv.DictReader(io.StringIO(ok(
        "audiences", "export", "everyone", *base).stdout))}
    exported = ok("audiences", "export", "everyone", *base, "--format", "ndjson", "--hash", "sha256")
    hashed = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [line["profile_id"] for line in hashed] == ["p1", "p2"]

    def sha(value: str) -> str:
        return hashlib.sha256(value.strip().lower().encode()).hexdigest() if value else ""

    for line in hashed:
        row = plain[line["profile_id"]]
        assert {name: line[name] for name in ("contact", "cell", "landline", "work_mobile")} == {
            name: sha(row[name]) for name in ("contact", "cell", "landline", "work_mobile")}
        assert line["nickname"] == row["nickname"] and line["nickname"] in ("Annie", "Bobby")
        assert line["email_opt_in"] in (True, False)  # a consent flag stays as it is
        assert line["phone_opt_in"] in (True, False)
    assert hashed[0]["contact"] == sha("ann@example.com")
    assert hashed[1]["landline"] == ""  # a missing value stays empty


def test_split_by_an_attribute(shop: Any, tmp_path: Path) -> None:
    location, _ = shop
    campaign = tmp_path / "campaign.db"
    found = as_json("activate", "dormant-customers", "--db", location, "--campaign-db", campaign,
                    "--as-of", AS_OF, "--split-by", "loyalty_tier")
    tiers = dict(campaign_rows(campaign, "SELECT split, count(*) FROM audience_members GROUP BY split"))
    assert found["splits"] == {k: v for k, v in sorted(tiers.items(), key=lambda kv: (
        kv[0] == "(missing)", kv[0]))}
    assert sum(found["splits"].values()) == found["count"]


@pytest.mark.parametrize("split, why", [
    ("A:50,B:40", "add up to 90"),
    ("A:50,a:50", "named twice"),
    ("A:50,B", "not NAME:PCT"),
    ("A:x,B:50", "not a number"),
])
def test_bad_splits_are_exit_2_and_write_nothing(shop: Any, tmp_path: Path, split: str,
                                                 why: str) -> None:
    location, _ = shop
    campaign = tmp_path / "campaign.db"
    line = one_line_error(invoke("activate", "dormant-customers", "--db", location, "--campaign-db",
                                 campaign, "--split", split), 2)
    assert why in line
    assert not campaign.exists()


def test_refresh_follows_the_saved_definition(shop: Any, tmp_path: Path) -> None:
    location, _ = shop
    campaign = tmp_path / "campaign.db"
    base = ("--db", location, "--campaign-db", campaign)
    (tmp_path / "mine.yaml").write_text(
        "id: mine\nname: Mine\nrule:\n  attribute: loyalty_tier\n  op: equals\n  value: gold\n")
    ok("segments", "save", tmp_path / "mine.yaml", "--db", location)
    first = as_json("activate", "mine", *base, "--as-of", AS_OF)
    (tmp_path / "mine.yaml").write_text(
        "id: mine\nname: Mine\nrule:\n  attribute: loyalty_tier\n  op: in\n  value: [gold, silver]\n")
    ok("segments", "save", tmp_path / "mine.yaml", "--db", location)
    refreshed = as_json("refresh", "mine", *base, "--as-of", AS_OF)
    assert refreshed["definition_changed"] is True
    assert refreshed["count"] > first["count"] and refreshed["added"] == refreshed["count"] - first["count"]
    assert as_json("refresh", "mine", *base, "--as-of", AS_OF)["definition_changed"] is False
    # the segment is deleted: the refresh says so and the members stay
    ok("segments", "delete", "mine", "--db", location)
    line = one_line_error(invoke("refresh", "mine", *base, "--as-of", AS_OF), 2)
    assert "no longer saved" in line
    assert campaign_rows(campaign, "SELECT count(*) FROM audience_members")[0][0] == refreshed["count"]


def test_schedules_and_refresh_due(shop: Any, tmp_path: Path) -> None:
    location, _ = shop
    campaign = tmp_path / "campaign.db"
    base = ("--db", location, "--campaign-db", campaign)
    as_json("activate", "lapsed-vips", *base, "--as-of", AS_OF)
    as_json("activate", "dormant-customers", *base, "--as-of", AS_OF)
    one_line_error(invoke("audiences", "schedule", "1", "nightly", *base), 2)
    ok("audiences", "schedule", "1", "daily", *base)
    assert as_json("refresh", "--due", *base, "--as-of", AS_OF) == []  # just activated
    with sqlite3.connect(campaign) as conn:
        conn.execute("UPDATE audiences SET activated_at = '2026-01-01 00:00:00'")
    done = as_json("refresh", "--due", *base, "--as-of", AS_OF)
    assert [r["audience_id"] for r in done] == [1] and done[0]["trigger"] == "schedule"
    listed = {a["id"]: a for a in as_json("audiences", "list", *base)}
    assert listed[1]["schedule"] == "daily" and listed[1]["next_run"] is not None
    assert listed[2]["schedule"] == "off" and listed[2]["next_run"] is None
    assert as_json("audiences", "show", "1", *base)["history"][-1]["trigger"] == "schedule"
    assert "No audience is due." in ok("refresh", "--due", *base).stdout
    everything = as_json("refresh", "--all", *base, "--as-of", AS_OF)
    assert sorted(r["audience_id"] for r in everything) == [1, 2]
    one_line_error(invoke("refresh", *base), 2)
