"""Hardening, second round, the "also noticed" items, on every engine where they touch one.

- A file in the working folder named like a saved id wins over the saved segment
  (as it always has), with a warning; ``--segment ID`` names the saved one on
  ``count``, ``sql``, ``pql``, ``trend``, ``overlap`` (and ``activate``).
- Two segment names that reduce to one id (``Café ☕`` and ``Cafe``): saving the
  second from the command line is refused (exit 2) unless ``--replace``.
- A pretty-printed JSON object (or array in an NDJSON file) given to import is
  one message, not a "not valid JSON" problem per line.
- An import that widens a column's stored type (integer to number) says so in
  its summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tui.cli import cli

Location = Callable[[str], str]
AS_OF = "2026-06-30"
PEOPLE = "id,tier,n\np1,gold,1\np2,silver,2\np3,gold,3\n"
SAVED = "id: gold\nname: Gold\nrule:\n  attribute: tier\n  op: equals\n  value: gold\n"
SHADOW = "id: gold\nname: Gold\nrule:\n  attribute: tier\n  op: equals\n  value: silver\n"
SILVER = "id: silver\nname: Silver\nrule:\n  attribute: tier\n  op: equals\n  value: silver\n"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [os.fspath(a) for a in args])


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def refused(result: Result, *expected: str) -> str:
    """The one ``Error:`` line of a command refused with exit 2."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    assert result.stderr.count("Error:") == 1, result.output
    for text in expected:
        assert text in result.stderr, result.output
    return result.stderr


@pytest.fixture
def store(fresh_location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three profiles on the test's engine; the working folder is the test's own."""
    location = fresh_location("noticed")
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    ok("import", "profiles", tmp_path / "people.csv", "--db", location)
    monkeypatch.chdir(tmp_path)
    return location


# ------------------------------------------------- (a) --segment ID names the saved segment


def test_segment_option_names_the_saved_segment_over_a_file_of_that_name(store: str,
                                                                       tmp_path: Path) -> None:
    Path("saved.yaml").write_text(SAVED, encoding="utf-8")
    Path("silver.yaml").write_text(SILVER, encoding="utf-8")
    ok("segments", "save", "saved.yaml", "--db", store)
    ok("segments", "save", "silver.yaml", "--db", store)
    assert ok("count", "gold", "--db", store, "--as-of", AS_OF).stdout.startswith("2 ")
    Path("gold").write_text(SHADOW, encoding="utf-8")  # a file named like the saved id

    by_file = ok("count", "gold", "--db", store, "--as-of", AS_OF)
    assert by_file.stdout.startswith("1 ")  # the file still wins, as documented...
    assert "--segment gold" in by_file.stderr  # ...but not silently

    saved = ok("count", "--segment", "gold", "--db", store, "--as-of", AS_OF, "--json")
    assert json.loads(saved.stdout)["count"] == 2
    assert saved.stderr == ""
    assert "'gold'" in ok("sql", "--segment", "gold", "--db", store, "--as-of", AS_OF).stdout
    assert "'silver'" in ok("sql", "gold", "--db", store, "--as-of", AS_OF).stdout
    assert '"gold"' in ok("pql", "--segment", "gold", "--db", store).stdout
    assert '"gold"' in ok("segments", "export", "gold", "--format", "pql", "--db", store).stdout
    trend = ok("trend", "--segment", "gold", "--db", store, "--as-of", AS_OF, "--json",
               "--every", "1w", "--last", "1w")
    assert {point["count"] for point in json.loads(trend.stdout)["points"]} == {2}
    overlap = json.loads(ok("overlap", "silver.yaml", "--segment", "gold", "--db", store,
                            "--as-of", AS_OF, "--json").stdout)
    assert overlap["sizes"] == [1, 2]

    refused(run("count", "gold", "--segment", "gold", "--db", store), "not both")
    refused(run("count", "--db", store), "--segment ID")
    refused(run("count", "--segment", "nope", "--db", store), "No saved segment 'nope'")
    refused(run("overlap", "--segment", "gold", "--db", store), "at least two")


# ------------------------------------------------- (b) two names, one id


def test_two_names_that_reduce_to_one_id_do_not_replace_each_other(store: str) -> None:
    Path("cafe1.yaml").write_text("name: Café ☕\nrule:\n  attribute: tier\n  op: equals\n"
                                  "  value: gold\n", encoding="utf-8")
    Path("cafe2.yaml").write_text("name: Cafe\nrule:\n  attribute: tier\n  op: equals\n"
                                  "  value: silver\n", encoding="utf-8")
    assert "'cafe'" in ok("segments", "save", "cafe1.yaml", "--db", store).stdout
    before = ok("segments", "show", "cafe", "--db", store).stdout

    message = refused(run("segments", "save", "cafe2.yaml", "--db", store),
                      "'Café ☕'", "'Cafe'", "--replace")
    assert message.count("\n") == 1
    refused(run("segments", "import", "cafe2.yaml", "--db", store), "'Café ☕'", "--replace")
    assert ok("segments", "show", "cafe", "--db", store).stdout == before

    ok("segments", "save", "cafe1.yaml", "--db", store)  # the same name again: an update
    ok("segments", "import", "cafe2.yaml", "--id", "cafe-plain", "--db", store)  # its own id
    ok("segments", "save", "cafe2.yaml", "--replace", "--db", store)  # on purpose
    listed = json.loads(ok("segments", "list", "--json", "--db", store).stdout)
    assert sorted((s["id"], s["name"]) for s in listed) == [("cafe", "Cafe"),
                                                            ("cafe-plain", "Cafe")]


def test_a_segment_whose_id_is_written_out_is_renamed_by_saving_it_again(store: str) -> None:
    """The id in the file names the segment meant: renaming it there and saving updates it."""
    path = Path("gold.yaml")
    path.write_text("id: gold\nname: Gold members\nrule:\n  attribute: tier\n  op: equals\n"
                    "  value: gold\n", encoding="utf-8")
    ok("segments", "save", str(path), "--db", store)
    path.write_text(path.read_text(encoding="utf-8").replace("Gold members", "Gold tier"),
                    encoding="utf-8")
    ok("segments", "save", str(path), "--db", store)
    listed = json.loads(ok("segments", "list", "--json", "--db", store).stdout)
    assert [(s["id"], s["name"]) for s in listed if s["id"] == "gold"] == [("gold", "Gold tier")]


# ------------------------------------------------- (c) one pretty-printed JSON document


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("one.json", '{\n  "id": "p9",\n  "tier": "gold"\n}\n', "one JSON object"),
    ("one.ndjson", '{\n  "id": "p9",\n  "tier": "gold"\n}\n', "one JSON object"),
    ("arr.ndjson", '[\n  {"id": "p9", "tier": "gold"}\n]\n', "one JSON array"),
])
def test_a_pretty_printed_json_document_is_one_message(store: str, name: str, text: str,
                                                      expected: str) -> None:
    Path(name).write_text(text, encoding="utf-8")
    message = refused(run("import", "profiles", name, "--db", store), expected, "line 1")
    assert "not valid JSON" not in message
    assert message.count("\n") == 1


def test_ndjson_with_a_bad_first_line_still_reports_its_lines(store: str) -> None:
    Path("rows.ndjson").write_text('{"id": "p9"\n{"id": "p8", "tier": "gold"}\n', encoding="utf-8")
    result = run("import", "profiles", "rows.ndjson", "--db", store)
    assert result.exit_code == 2, result.output
    assert "line 1" in result.stderr and "not valid JSON" in result.stderr


# ------------------------------------------------- (d) widening is in the summary


def test_an_import_that_widens_a_column_says_so(store: str) -> None:
    Path("e1.csv").write_text("profile_id,type,timestamp,q\np1,view,2024-01-01,1\n",
                              encoding="utf-8")
    Path("e2.csv").write_text("profile_id,type,timestamp,q\np2,view,2024-01-02,0.5\n",
                              encoding="utf-8")
    Path("p2.csv").write_text("id,n\np4,2.5\n", encoding="utf-8")
    first = ok("import", "events", "e1.csv", "--db", store).stdout
    assert "widened" not in first
    again = ok("import", "events", "e1.csv", "--db", store).stdout
    assert "widened" not in again  # integers into an integer field: nothing to say
    widened = ok("import", "events", "e2.csv", "--db", store).stdout
    assert "; event field 'q' widened from integer to number" in widened
    assert widened.count("\n") == 1
    profiles = ok("import", "profiles", "p2.csv", "--db", store).stdout
    assert "; attribute 'n' widened from integer to number" in profiles
