"""``activate``, ``audiences`` and ``deliveries`` from the command line: output, exit codes, files."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store.campaign.store import member_ids, open_campaign
from store.engines.sqlite import open_store
from store.segments.library import save_segment
from tests.engine_helpers import resolve_rule
from tests.test_activation import make_profile_store
from tui.cli import cli

SEGMENT = """id: under-{limit}
name: Under {limit}
rule:
  attribute: n
  op: less_than
  value: {limit}
"""


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    make_profile_store(tmp_path / "shop.db", 60)
    for limit in (10, 20):
        (tmp_path / f"under-{limit}.yaml").write_text(SEGMENT.format(limit=limit))
    return tmp_path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def activate_json(shop: Path, *args: str | Path) -> dict[str, object]:
    result = run("activate", *args, "--db", shop / "shop.db", "--as-of", "2026-06-30", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert isinstance(payload, dict)
    return payload


def test_activate_json_and_refresh(shop: Path) -> None:
    first = activate_json(shop, shop / "under-20.yaml")
    assert {"audience_id", "count", "added", "removed", "kept", "duration_ms"} <= set(first)
    assert (first["count"], first["added"], first["removed"]) == (19, 19, 0)
    assert first["campaign_db"] == str(shop / "campaign.db")
    again = activate_json(shop, shop / "under-20.yaml")
    assert (again["audience_id"], again["added"], again["removed"], again["kept"]) == (
        first["audience_id"], 0, 0, 19)
    campaign = open_campaign(shop / "campaign.db", readonly=True)
    assert member_ids(campaign, int(str(first["audience_id"]))) == {f"p{i:04d}" for i in range(1, 20)}
    campaign.close()


def test_activate_human_summary(shop: Path) -> None:
    result = run("activate", shop / "under-10.yaml", "--db", shop / "shop.db")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Activated 'Under 10' as audience 1 (under-10): 9 members, 9 added,"
                                    " 0 removed, 0 kept in ")


def test_campaign_db_option_and_fields(shop: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "c.db"
    payload = activate_json(shop, shop / "under-10.yaml", "--campaign-db", other, "--field", "vip",
                            "--field", "age")
    assert payload["fields"] == ["vip", "age"]
    assert other.exists() and not (shop / "campaign.db").exists()
    campaign = open_campaign(other, readonly=True)
    fields = json.loads(campaign.execute("SELECT fields FROM audience_members WHERE profile_id = 'p0003'"
                                         ).fetchone()[0])
    assert fields == {"vip": True, "age": 73}  # born 1953-04-04, as of 2026-06-30
    campaign.close()


def test_saved_segments_by_option_or_bare_id(shop: Path) -> None:
    writer = open_store(shop / "shop.db")
    save_segment(writer, resolve_rule(writer, {"attribute": "vip", "op": "is_true"}, "VIPs"))
    writer.close()
    by_option = activate_json(shop, "--segment", "vips")
    assert by_option["count"] == 20  # multiples of 3 up to 60
    bare = activate_json(shop, "vips")
    assert bare["audience_id"] == by_option["audience_id"] and bare["added"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["missing.yaml"], "no such segment file"),
    (["--field", "emial"], "Did you mean 'email'"),
    (["--segment", "nope"], "No saved segment 'nope'"),
    (["--as-of", "yesterday"], "--as-of"),
    ([], "Give a segment file"),
])
def test_bad_input_exits_2_and_writes_nothing(shop: Path, args: list[str], message: str) -> None:
    if args[:1] == ["--field"] or args[:1] == ["--as-of"]:
        args = [str(shop / "under-10.yaml"), *args]
    result = CliRunner().invoke(cli, ["activate", *args, "--db", str(shop / "shop.db")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (shop / "campaign.db").exists()


def test_a_bad_segment_file_exits_2(shop: Path) -> None:
    (shop / "bad.yaml").write_text("name: Bad\nrule:\n  attribute: nope\n  op: equals\n  value: 1\n")
    result = CliRunner().invoke(cli, ["activate", str(shop / "bad.yaml"), "--db", str(shop / "shop.db")])
    assert result.exit_code == 2
    assert "unknown attribute 'nope'" in result.output and "bad.yaml:3" in result.output


def test_a_read_only_campaign_store_exits_1(shop: Path) -> None:
    activate_json(shop, shop / "under-10.yaml")
    path = shop / "campaign.db"
    path.chmod(0o444)
    try:
        result = CliRunner().invoke(cli, ["activate", str(shop / "under-20.yaml"), "--db",
                                          str(shop / "shop.db")])
        assert result.exit_code == 1
        assert "read-only" in result.output and "Traceback" not in result.output
    finally:
        path.chmod(0o644)
    listed = json.loads(run("audiences", "list", "--db", shop / "shop.db", "--json").output)
    assert [a["segment_id"] for a in listed] == ["under-10"]


def test_audiences_list_show_export_deactivate(shop: Path) -> None:
    assert run("audiences", "list", "--db", shop / "shop.db").output == "No audience activated yet.\n"
    activate_json(shop, shop / "under-10.yaml")
    activate_json(shop, shop / "under-20.yaml", "--field", "email")
    activate_json(shop, shop / "under-20.yaml", "--field", "email")
    listed = json.loads(run("audiences", "list", "--db", shop / "shop.db", "--json").output)
    assert [(a["segment_id"], a["members"]) for a in listed] == [("under-20", 19), ("under-10", 9)]
    table = run("audiences", "list", "--campaign-db", shop / "campaign.db").output
    assert "under-20" in table and "19" in table
    shown = json.loads(run("audiences", "show", "under-20", "--db", shop / "shop.db", "--json").output)
    assert [(h["count"], h["added"], h["removed"]) for h in shown["history"]] == [(19, 19, 0), (19, 0, 0)]
    assert "op: less_than" in shown["definition"]
    text = run("audiences", "show", "2", "--db", shop / "shop.db").output
    assert "Audience 2: Under 20 (segment under-20, active)" in text and "+19" in text
    exported = run("audiences", "export", "under-20", "--db", shop / "shop.db").output
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["profile_id", "email"] and len(rows) == 20
    assert rows[7] == ["p0007", ""]
    out = shop / "members.csv"
    result = run("audiences", "export", "1", "--db", shop / "shop.db", "-o", out)
    assert result.exit_code == 0 and "Wrote 9 members" in result.output
    assert out.read_text().splitlines()[0] == "profile_id,email,first_name"
    assert run("audiences", "deactivate", "1", "--db", shop / "shop.db").exit_code == 0
    listed = json.loads(run("audiences", "list", "--db", shop / "shop.db", "--json").output)
    assert {a["segment_id"]: a["status"] for a in listed} == {"under-20": "active", "under-10": "inactive"}
    missing = CliRunner().invoke(cli, ["audiences", "show", "nope", "--db", str(shop / "shop.db")])
    assert missing.exit_code == 2 and "No audience 'nope'" in missing.output


def test_deliveries_create_list_preview(shop: Path) -> None:
    activate_json(shop, shop / "under-10.yaml")
    body = shop / "body.txt"
    body.write_text('Hello {{ first_name | default("there") }}, see you!')
    created = run("deliveries", "create", "under-10", "--db", shop / "shop.db", "--name", "Hello",
                  "--subject", "For {{ first_name }}", "--body-file", body, "--json")
    assert created.exit_code == 0, created.output
    delivery = json.loads(created.output)
    listed = json.loads(run("deliveries", "list", "--db", shop / "shop.db", "--json").output)
    assert [d["id"] for d in listed] == [delivery["id"]]
    preview = json.loads(run("deliveries", "preview", str(delivery["id"]), "--db", shop / "shop.db",
                             "--limit", "5", "--json").output)
    assert preview["members"] == 9
    assert preview["missing"] == {"first_name": 1}  # p0005
    assert preview["messages"][4] == {"profile_id": "p0005", "subject": "For ",
                                      "body": "Hello there, see you!"}
    text = run("deliveries", "preview", str(delivery["id"]), "--db", shop / "shop.db").output
    assert "1 members lack first_name" in text and "Subject: For Bob" in text
    bad = CliRunner().invoke(cli, ["deliveries", "create", "under-10", "--db", str(shop / "shop.db"),
                                   "--name", "Bad", "--subject", "S", "--body", "Hi {{ city }}"])
    assert bad.exit_code == 2 and "no such field" in bad.output


def test_the_campaign_store_can_be_read_while_the_cli_writes(shop: Path) -> None:
    activate_json(shop, shop / "under-10.yaml")
    reader = sqlite3.connect(f"file:{shop / 'campaign.db'}?mode=ro", uri=True)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM audience_members").fetchone()[0] == 9
    activate_json(shop, shop / "under-20.yaml")  # commits while the reader holds a snapshot
    assert reader.execute("SELECT count(*) FROM audience_members").fetchone()[0] == 9
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM audience_members").fetchone()[0] == 28
    reader.close()
