"""Files as real marketing exports write them, through ``audiences-tui import`` and ``count``.

Black-box checks against spec/cli.md and docs/import.md: byte-order marks, CRLF and CR line
ends, quoted commas, quotes and line breaks, non-ASCII names and values, column names that
look alike or like the store's own columns, gzip of every format, misnamed files, ids written
as numbers in one file and text in another, and timestamps spelled several ways in one column.
Every expected count is worked out by hand in the comment beside it. A rejected file must leave
the store byte for byte as it was (the file plus its write-ahead log).

The last section holds cases an audit found wrong (crashes, silent rounding, invisible ids):
each now has the behaviour docs/import.md describes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from tui.cli import cli

# ------------------------------------------------------------------ helpers


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def put(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def ok(*args: str | Path) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def refused(*args: str | Path) -> str:
    """Exit 2 with one error (no traceback); the stderr text."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("Error:") == 1, result.stderr
    return result.stderr


def digest(db: Path) -> str:
    parts = [db.read_bytes()]
    wal = Path(f"{db}-wal")
    if wal.exists():
        parts.append(wal.read_bytes())
    return hashlib.sha256(b"".join(parts)).hexdigest()


def count(db: Path, rule: Any, as_of: str = "2025-06-30") -> int:
    segment = db.parent / "rule.yaml"
    segment.write_text(yaml.safe_dump({"rule": rule}, allow_unicode=True), encoding="utf-8")
    result = invoke("count", segment, "--db", db, "--as-of", as_of, "--json")
    assert result.exit_code == 0, (rule, result.output)
    return int(json.loads(result.stdout)["count"])


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def people(folder: Path, *ids: str) -> Path:
    db = folder / "store.db"
    ok("import", "profiles", put(folder / "people.csv", "id\n" + "".join(f"{i}\n" for i in ids)),
       "--db", db)
    return db


def eq(attribute: str, value: Any) -> dict[str, Any]:
    return {"attribute": attribute, "op": "equals", "value": value}


# ------------------------------------------------------------------ byte-order marks, line ends


def test_bom_and_crlf_leave_no_trace_in_names_ids_or_values(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    source = put(tmp_path / "p.csv", b"\xef\xbb\xbfid,name,tier\r\np1,Ann,gold\r\np2,Bob,silver\r\n")
    ok("import", "profiles", source, "--db", db, "--id-column", "id")
    assert query(db, "SELECT id FROM profiles ORDER BY id") == [("p1",), ("p2",)]
    assert sorted(n for (n,) in query(db, "SELECT name FROM attributes")) == ["name", "tier"]
    assert count(db, eq("tier", "silver")) == 1  # p2: the last field of a CRLF line has no \r
    assert count(db, eq("name", "Ann")) == 1


def test_bom_crlf_gzip_events_find_their_first_column(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", "p2")
    packed = put(tmp_path / "e.csv.gz", gzip.compress(
        b"\xef\xbb\xbfprofile_id,type,timestamp,amount\r\n"
        b"p1,buy,2024-03-01T10:00:00Z,5\r\np2,buy,2024-03-02,7\r\np1,buy,2024-03-03,1\r\n"))
    ok("import", "events", packed, "--db", db)
    assert count(db, {"event": "buy", "count": {"op": "at_least", "value": 2}}) == 1  # p1
    sum_7 = {"fn": "sum", "attribute": "amount", "op": "equals", "value": 7}
    assert count(db, {"event": "buy", "aggregate": sum_7}) == 1  # p2 (p1 sums 6)


def test_cr_only_line_ends_import_and_report_lines(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "mac.csv", "id,name,n\rc1,Ann,1\rc2,Bob,2\r"), "--db", db)
    assert count(db, eq("n", 2)) == 1
    before = digest(db)
    stderr = refused("import", "profiles", put(tmp_path / "bad.csv", "id,n\rc1,1\rc2,x,y\r"), "--db", db)
    assert "line 3, value 'c2,x,y': has 3 fields but the header has 2 fields" in stderr
    assert digest(db) == before


def test_blank_lines_before_between_and_after_rows_are_skipped(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.csv", "\r\n\r\nid,n\r\np1,1\r\n\r\n\r\np2,2\r\n\r\n\r\n"),
       "--db", db)
    assert count(db, {"attribute": "n", "op": "greater_than", "value": 0}) == 2


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n  \r\n\n", b"profile_id,type,timestamp,sku\r\n\r\n"],
                         ids=["zero-bytes", "blank-lines", "header-only"])
@pytest.mark.parametrize("command", [("events",), ("entity", "product")], ids=["events", "entity"])
def test_events_and_entities_without_rows_are_refused(tmp_path: Path, content: bytes,
                                                      command: tuple[str, ...]) -> None:
    db = people(tmp_path, "p1")
    before = digest(db)
    extra = ["--key", "sku", "--link", "sku"] if command[0] == "entity" else []
    stderr = refused("import", *command, put(tmp_path / "f.csv", content), "--db", db, *extra)
    assert ("empty" in stderr) if content.strip() == b"" else ("no rows to import" in stderr)
    assert digest(db) == before


@pytest.mark.parametrize(("header", "why"), [
    ("id,name,", "line 1: column 3 has no name"),  # a spreadsheet's trailing comma
    ("id,name, name ", "the column 'name' appears twice"),  # names are trimmed first
])
def test_header_with_a_trailing_comma_or_a_padded_repeat_is_refused(tmp_path: Path, header: str,
                                                                    why: str) -> None:
    db = people(tmp_path, "p1")
    before = digest(db)
    assert why in refused("import", "profiles", put(tmp_path / "h.csv", f"{header}\np1,a,b\n"), "--db", db)
    assert digest(db) == before


# ------------------------------------------------------------------ quoting


def test_quoted_commas_quotes_and_line_breaks_keep_their_text(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    source = put(tmp_path / "p.csv", 'id,note,city\r\np1,"Smith, John",Paris\r\n'
                 'p2,"He said ""hi""",Lyon\r\np3,"two\r\nlines",Nice\r\n')
    ok("import", "profiles", source, "--db", db)
    assert count(db, eq("note", "Smith, John")) == 1
    assert count(db, eq("note", 'He said "hi"')) == 1
    assert count(db, eq("note", "two\r\nlines")) == 1
    assert count(db, eq("city", "Nice")) == 1  # the row after the quoted line break


def test_bad_rows_after_quoted_line_breaks_name_their_file_line(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", "p2")
    before = digest(db)
    source = put(tmp_path / "e.csv", 'profile_id,type,timestamp,note\n'
                 'p1,view,2024-01-01,"a\nb"\n'  # lines 2-3
                 'p2,view,2024-13-01,"c\r\nd"\n'  # lines 4-5
                 'p9,view,2024-01-01,x\n'  # line 6
                 'p1,view,2024-01-01,"x\ny",extra\n')  # lines 7-8
    stderr = refused("import", "events", source, "--db", db)
    assert "3 problems in the rows; nothing was imported." in stderr
    assert "line 4, column 'timestamp', value '2024-13-01': not an ISO 8601 datetime" in stderr
    assert "line 6, column 'profile_id', value 'p9': unknown profile id" in stderr
    assert "line 7, value " in stderr and "has 5 fields but the header has 4 fields" in stderr
    assert digest(db) == before


# ------------------------------------------------------------------ names


def test_non_ascii_column_names_and_values_count(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    put(tmp_path / "p.csv", "id,ville,名前,émoji 🎉\np1,Paris é,日本,🎉🎉\np2,Köln,東京,👍🏽\n")
    ok("import", "profiles", tmp_path / "p.csv", "--db", db)
    assert count(db, eq("名前", "日本")) == 1  # p1
    assert count(db, {"attribute": "émoji 🎉", "op": "contains", "value": "🎉"}) == 1  # p1
    assert count(db, eq("ville", "Köln")) == 1  # p2
    assert count(db, {"attribute": "ville", "op": "contains", "value": "PARIS"}) == 1  # ASCII case


def test_lookalike_and_reserved_column_names_stay_distinct(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    names = ["a b", "a_b", "a-b", "a.b", "Name", "name", "NAME", "pk", "rowid", "oid", "type", "ts"]
    rows = [[f"{n}-{p}" for n in names] for p in ("p1", "p2")]
    put(tmp_path / "p.csv", "id," + ",".join(names) + "\n"
        + "".join(f"{p}," + ",".join(r) + "\n" for p, r in zip(("p1", "p2"), rows, strict=True)))
    ok("import", "profiles", tmp_path / "p.csv", "--db", db)
    for name in names:
        assert count(db, eq(name, f"{name}-p2")) == 1, name  # each name reads its own column
    assert count(db, {"all": []}) == 2


def test_event_fields_named_like_the_events_table_columns(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", "p2")
    ok("import", "events", put(tmp_path / "e.csv",
                               "profile_id,type,timestamp,pk,ts,profile_pk,type_id,rowid,id\n"
                               "p1,buy,2024-01-01,100,x,9,9,9,abc\n"
                               "p2,buy,2024-01-02,200,y,8,8,8,def\n"), "--db", db)

    def buyers(where: dict[str, Any]) -> int:
        return count(db, {"event": "buy", "where": [where]})

    assert buyers(eq("pk", 200)) == 1  # p2
    assert buyers(eq("ts", "x")) == 1  # p1
    assert buyers(eq("profile_pk", 8)) == 1  # p2
    assert buyers(eq("type_id", 9)) == 1  # p1
    assert buyers({"attribute": "rowid", "op": "less_than", "value": 9}) == 1  # p2
    assert buyers(eq("id", "abc")) == 1  # p1


# ------------------------------------------------------------------ JSON


def test_one_object_json_and_ndjson_with_blank_and_crlf_lines(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "one.json", '{"id": "a", "n": 1}'), "--db", db)
    ok("import", "profiles", put(tmp_path / "b.ndjson", '{"id": "b", "n": 2}\r\n\r\n{"id": "c", "n": 3}\r\n'),
       "--db", db)
    assert count(db, {"attribute": "n", "op": "greater_than", "value": 1}) == 2  # b, c
    assert count(db, {"all": []}) == 3


@pytest.mark.parametrize(("name", "content", "fragments"), [
    ("trailing.ndjson", '{"id": "c", "n": 1},\n{"id": "d", "n": 2},\n',
     ("2 problems", "line 1, value '{\"id\": \"c\", \"n\": 1},': not valid JSON", "line 2, value ")),
    ("pretty.json", '{\n  "id": "pp",\n  "n": 5\n}\n', ("line 1", "one JSON object written over")),
    ("wrapped.json", '{"data": [{"id": "w"}]}', ("--id-column", "data")),
])
def test_json_that_is_not_rows_is_refused_whole(tmp_path: Path, name: str, content: str,
                                                fragments: tuple[str, ...]) -> None:
    db = people(tmp_path, "p1")
    before = digest(db)
    stderr = refused("import", "profiles", put(tmp_path / name, content), "--db", db)
    for fragment in fragments:
        assert fragment in stderr
    assert digest(db) == before


def test_json_numbers_as_strings_nulls_and_empty_strings(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    put(tmp_path / "p.json", json.dumps([
        {"id": 1, "age": "30", "score": "1.5", "vip": "true", "note": None},
        {"id": "2", "age": 41, "score": 2, "vip": False, "note": ""},
        {"id": "003", "age": None, "score": None, "vip": None, "note": "x"},
    ]))
    ok("import", "profiles", tmp_path / "p.json", "--db", db)
    assert query(db, "SELECT id FROM profiles ORDER BY id") == [("003",), ("1",), ("2",)]
    assert count(db, {"attribute": "age", "op": "greater_than", "value": 35}) == 1  # "2"
    assert count(db, {"attribute": "age", "op": "is_empty"}) == 1  # "003"
    assert count(db, eq("score", 1.5)) == 1
    assert count(db, {"attribute": "vip", "op": "is_true"}) == 1  # "true" as text is a boolean
    assert count(db, {"attribute": "vip", "op": "is_false"}) == 1
    assert count(db, {"attribute": "note", "op": "is_empty"}) == 2  # null and ""


# ------------------------------------------------------------------ ids as text


def test_ids_meet_as_text_so_1_and_001_are_two_profiles(tmp_path: Path) -> None:
    db = people(tmp_path, "1", "001")
    ok("import", "events", put(tmp_path / "e.ndjson",
                               '{"profile_id": 1, "type": "open", "timestamp": "2024-05-01"}\n'), "--db", db)
    ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp\n001,click,2024-05-02\n"),
       "--db", db)
    assert count(db, {"all": [{"event": "open"}, {"event": "click"}]}) == 0  # two people
    assert count(db, {"any": [{"event": "open"}, {"event": "click"}]}) == 2
    before = digest(db)
    unknown = put(tmp_path / "x.csv", "profile_id,type,timestamp\n01,open,2024-05-03\n")
    stderr = refused("import", "events", unknown, "--db", db)
    assert "line 2, column 'profile_id', value '01': unknown profile id" in stderr
    stderr = refused("import", "events", put(tmp_path / "f.ndjson",
                                             '{"profile_id": 1.0, "type": "v", "timestamp": "2024-05-03"}\n'),
                     "--db", db)
    assert "line 1, column 'profile_id', value '1.0': profile id must be text or a whole number" in stderr
    assert digest(db) == before


# ------------------------------------------------------------------ size


def test_a_hundred_kilobyte_value_and_a_fifty_column_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    long = "x" * 100_000
    put(tmp_path / "long.csv", f'id,bio\np1,"{long}END"\np2,"a,{long}\nline2"\np3,short\n')
    ok("import", "profiles", tmp_path / "long.csv", "--db", db)
    assert count(db, {"attribute": "bio", "op": "ends_with", "value": "END"}) == 1  # p1
    assert count(db, {"attribute": "bio", "op": "ends_with", "value": "\nline2"}) == 1  # p2
    assert query(db, "SELECT length(bio) FROM profiles ORDER BY id") == [(100_003,), (100_008,), (5,)]
    header = "id," + ",".join(f"c{i}" for i in range(50))
    lines = "".join(f"w{r}," + ",".join(str(r * 100 + i) for i in range(50)) + "\n" for r in range(3))
    ok("import", "profiles", put(tmp_path / "wide.csv", header + "\n" + lines), "--db", db)
    assert count(db, eq("c49", 149)) == 1  # w1
    assert count(db, {"attribute": "c0", "op": "is_empty"}) == 3  # p1, p2, p3


def test_a_long_bad_value_is_shortened_in_the_report(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "a.csv", "id,n\np0,1\n"), "--db", db)
    before = digest(db)
    stderr = refused("import", "profiles", put(tmp_path / "b.csv", "id,n\np1," + "y" * 100_000 + "\n"),
                     "--db", db)
    assert "line 2, column 'n', value 'yyy" in stderr and len(stderr) < 1000
    assert digest(db) == before


# ------------------------------------------------------------------ timestamps


def test_event_times_with_offsets_fractions_and_dates_in_one_column(tmp_path: Path) -> None:
    db = people(tmp_path, "a", "b", "c", "d", "e")
    ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp\n"
                               "a,buy,2024-03-01T01:00:00+02:00\n"  # 2024-02-29 23:00 UTC
                               "b,buy,2024-02-29T23:59:59.999Z\n"
                               "c,buy,2024-03-01\n"  # midnight UTC
                               "d,buy,2024-03-01T00:00:00.001Z\n"
                               "e,buy,2024-03-01T01:30:00+0200\n"),  # 2024-02-29 23:30 UTC
       "--db", db)
    buy = {"event": "buy"}
    assert count(db, buy, "2024-02-29") == 3  # a, b, e by the end of that day
    assert count(db, buy, "2024-03-01T00:00:00Z") == 4  # + c
    assert count(db, buy, "2024-03-01T00:00:00.001Z") == 5  # + d
    assert count(db, {"event": "buy", "within": {"between": ["2024-02-29", "2024-02-29"]}}) == 3


def test_profile_datetimes_with_offsets_compare_in_utc(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.csv", "id,seen\n"
                                 "a,2024-03-01T01:00:00+02:00\n"  # 2024-02-29 23:00 UTC
                                 "b,2024-03-01\n"
                                 "c,2024-02-29T23:59:59.999Z\n"
                                 "d,2024-03-01T00:00:00.000-00:30\n"  # 00:30 UTC
                                 "e,\n"), "--db", db)
    assert count(db, {"attribute": "seen", "op": "on", "value": "2024-02-29"}) == 2  # a, c
    assert count(db, {"attribute": "seen", "op": "on", "value": "2024-03-01"}) == 2  # b, d
    assert count(db, {"attribute": "seen", "op": "before", "value": "2024-03-01T00:00:00Z"}) == 2
    assert count(db, {"attribute": "seen", "op": "after", "value": "2024-02-29T23:59:59.999Z"}) == 2
    assert count(db, {"attribute": "seen", "op": "is_empty"}) == 1  # e


def test_event_type_spellings_are_distinct_types(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", "p2", "p3")
    result = ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp\n"
                                        "p1,Purchase,2024-01-01\np2,purchase,2024-01-01\n"
                                        "p3,PURCHASE,2024-01-01\n"), "--db", db)
    assert "Imported 3 events (3 types)" in result.stdout
    assert count(db, {"event": "purchase"}) == 1  # p2
    assert count(db, {"event": ["purchase", "Purchase"]}) == 2  # p1, p2
    assert count(db, {"event": "*"}) == 3


# ------------------------------------------------------------------ gzip and file names


@pytest.mark.parametrize(("name", "text"), [
    ("p.csv.gz", "id,n\ng1,1\ng2,2\n"),
    ("p.tsv.gz", "id\tn\ng1\t1\ng2\t2\n"),
    ("p.json.gz", '[{"id": "g1", "n": 1}, {"id": "g2", "n": 2}]'),
    ("p.ndjson.gz", '{"id": "g1", "n": 1}\n{"id": "g2", "n": 2}\n'),
    ("p.jsonl.gz", '{"id": "g1", "n": 1}\n{"id": "g2", "n": 2}\n'),
])
def test_gzip_of_every_format(tmp_path: Path, name: str, text: str) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / name, gzip.compress(text.encode())), "--db", db)
    assert count(db, eq("n", 2)) == 1


def test_concatenated_gzip_members_are_read_whole(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    packed = gzip.compress(b"id,n\nm1,1\n") + gzip.compress(b"m2,2\n")
    ok("import", "profiles", put(tmp_path / "p.csv.gz", packed), "--db", db)
    assert count(db, {"attribute": "n", "op": "greater_than", "value": 0}) == 2


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("plain.csv.gz", b"id,n\nq1,1\n", "plain.csv.gz is not a gzip file, though its name ends in .gz"),
    ("twice.csv.gz", gzip.compress(gzip.compress(b"id,n\nq1,1\n", mtime=0), mtime=0), "not valid UTF-8"),
    ("csv.json", b"id,n\nq1,1\n", "not valid JSON"),
    ("csv.jsonl", b"id,n\nq1,1\n", "not valid JSON"),
    ("lines.csv", b'{"id": "q1", "n": 1}\n{"id": "q2", "n": 2}\n', "has no 'id' or 'profile_id' column"),
    ("array.ndjson", b'[{"id": "q1", "n": 1}]\n', "is a JSON array, not an object"),
    ("utf16.csv", "id,n\nq1,1\n".encode("utf-16"), "not valid UTF-8"),
])
def test_misnamed_or_misencoded_files_are_refused_whole(tmp_path: Path, name: str, content: bytes,
                                                        fragment: str) -> None:
    db = people(tmp_path, "p1")
    before = digest(db)
    assert fragment in refused("import", "profiles", put(tmp_path / name, content), "--db", db)
    assert digest(db) == before


def test_entity_from_a_bom_crlf_file_with_quoted_commas(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", "p2", "p3")
    ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp,sku\n"
                               "p1,buy,2024-01-01,001\np2,buy,2024-01-01,1\np3,buy,2024-01-01,A-1\n"),
       "--db", db)  # A-1 makes sku a text field: 001 and 1 stay apart
    put(tmp_path / "prod.csv", b'\xef\xbb\xbfsku,category,price\r\n001,Shoes,10\r\n1,Boots,20\r\n'
        b'A-1,"Hats, caps",30\r\n')
    ok("import", "entity", "product", tmp_path / "prod.csv", "--db", db, "--key", "sku", "--link", "sku")

    def buyers(where: dict[str, Any]) -> int:
        return count(db, {"event": "buy", "where": [where]})

    assert buyers(eq("product.category", "Shoes")) == 1  # p1
    assert buyers(eq("product.category", "Hats, caps")) == 1  # p3
    assert buyers({"attribute": "product.price", "op": "greater_than", "value": 15}) == 2  # p2, p3


# ------------------------------------------------------------------ found by an audit


@pytest.mark.parametrize("command", ["events", "profiles"])
def test_an_offset_past_year_9999_is_a_bad_value(tmp_path: Path, command: str) -> None:
    db = people(tmp_path, "c1")
    before = digest(db)
    header = "profile_id,type,timestamp" if command == "events" else "id,kind,valid_until"
    column = "timestamp" if command == "events" else "valid_until"
    source = put(tmp_path / "f.csv", f"{header}\nc1,v,2024-01-01T00:00:00Z\nc1,v,9999-12-31T23:59:59-05:00\n")
    stderr = refused("import", command, source, "--db", db)
    assert "1 problem in the rows; nothing was imported." in stderr
    assert (f"line 3, column '{column}', value '9999-12-31T23:59:59-05:00':"
            " falls outside the years 1-9999 in UTC") in stderr
    assert digest(db) == before


def test_epoch_seconds_past_year_9999_are_bad_rows(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    source = put(tmp_path / "e.csv", "profile_id,type,timestamp\na,buy,1709280000000\n")
    stderr = refused("import", "events", source, "--db", db, "--time-format", "epoch")
    assert ("line 2, column 'timestamp', value '1709280000000': is year 56134 as seconds;"
            " milliseconds need --time-format epoch_ms") in stderr
    assert digest(db) == before
    ok("import", "events", source, "--db", db, "--time-format", "epoch_ms")
    assert count(db, {"event": "buy", "within": {"between": ["2024-03-01", "2024-03-01"]}}) == 1


def test_json_keys_are_trimmed_like_csv_headers(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.ndjson", '{"id": "a", "n ": 1}\n{"id": "b", "n": 2}\n'),
       "--db", db)
    assert [n for (n,) in query(db, "SELECT name FROM attributes")] == ["n"]


@pytest.mark.parametrize("command", ["profiles", "events"])
def test_an_empty_json_key_is_refused(tmp_path: Path, command: str) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    row = '{"id": "a", "": 1}' if command == "profiles" else (
        '{"profile_id": "a", "type": "v", "timestamp": "2024-01-01", "": 1}')
    stderr = refused("import", command, put(tmp_path / "f.ndjson", '\n' + row + "\n"), "--db", db)
    position = 2 if command == "profiles" else 4
    assert f"f.ndjson, line 2: column {position} has no name." in stderr  # as for a CSV header
    assert digest(db) == before


@pytest.mark.parametrize(("command", "content", "report"), [
    ("profiles", "id,n\n  ,1\nok,2\n", "line 2, column 'id': missing profile id"),
    ("events", "profile_id,type,timestamp\na,   ,2024-01-01\n", "line 2, column 'type': missing event type"),
])
def test_a_blank_id_or_type_is_missing(tmp_path: Path, command: str, content: str, report: str) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    assert report in refused("import", command, put(tmp_path / "f.csv", content), "--db", db)
    assert digest(db) == before


def test_whole_numbers_past_64_bits_keep_every_digit(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.csv", "id,acct\na,12345678901234567891\n"
                                 "b,12345678901234567892\n"), "--db", db)
    [(column, kind)] = query(db, "SELECT column_name, type FROM attributes WHERE name = 'acct'")
    assert kind == "string"
    assert query(db, f'SELECT count(DISTINCT "{column}") FROM profiles') == [(2,)]
    assert count(db, eq("acct", "12345678901234567891")) == 1  # a


def test_a_semicolon_export_with_a_comma_in_a_quoted_header(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    source = put(tmp_path / "eu.csv", '"id";"Name, Vorname";"Umsatz"\n"k1";"Müller, Hans";"1,5"\n'
                 '"k2";"Schmidt, Eva";"2"\n')
    ok("import", "profiles", source, "--db", db)
    assert count(db, eq("Name, Vorname", "Müller, Hans")) == 1


def test_a_repeated_header_from_concatenated_exports_is_a_bad_row(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    part = b"\xef\xbb\xbfid,name,n\r\n"
    joined = put(tmp_path / "all.csv", part + b"a,A,1\r\n" + part + b"b,B,2\r\n")
    stderr = refused("import", "profiles", joined, "--db", db)
    assert ("line 3, value '\\ufeffid,name,n': repeats the header line (were files joined"
            " together?); remove it, or import the files one by one") in stderr
    assert digest(db) == before


def test_a_repeated_header_is_found_padded_or_far_down_and_lookalike_rows_are_kept(
        tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    rows = "".join(f"p{i},x,{i}\n" for i in range(5000))  # the repeat is in the second chunk
    stderr = refused("import", "profiles", put(tmp_path / "a.csv", f" id , name,n\n{rows} id ,name , n\n"),
                     "--db", db)
    assert "1 problem in the rows" in stderr and "line 5002, value ' id ,name , n': repeats" in stderr
    assert not db.exists()
    ok("import", "profiles", put(tmp_path / "b.csv", "id,name,n\nid,name,1\nname,id,n\n"), "--db", db)
    assert count(db, {"all": []}) == 2  # a profile 'id' and one 'name': not the header again
    ok("import", "profiles", put(tmp_path / "c.csv", "id\nc\nid\n"), "--db", db)
    assert query(db, "SELECT count(*) FROM profiles WHERE id IN ('c', 'id')") == [(2,)]  # one column


@pytest.mark.parametrize(("header", "names"), [
    ('id;"a,b";c\n', ["a,b", "c"]),  # the comma is inside quotes: ';' delimits
    ('"id"|"x, y"\n', ["x, y"]),
    ('id,"a;b"\n', ["a;b"]),  # a comma outside quotes: comma-separated
])
def test_the_delimiter_ignores_what_is_inside_quotes(tmp_path: Path, header: str,
                                                    names: list[str]) -> None:
    db = tmp_path / "s.db"
    separator = ";" if ";" in header.replace('"a;b"', "") else ("|" if "|" in header else ",")
    row = separator.join(["k1", *(f"v{i}" for i in range(len(names)))]) + "\n"
    ok("import", "profiles", put(tmp_path / "p.csv", header + row), "--db", db)
    assert sorted(n for (n,) in query(db, "SELECT name FROM attributes")) == sorted(names)


# ------------------------------------------------------------------ instants out of the years 1-9999

OUT = "falls outside the years 1-9999 in UTC"


@pytest.mark.parametrize(("stamp", "fits"), [
    ("0001-01-01T00:30:00+01:00", False),  # 0000-12-31 23:30 UTC
    ("0001-01-01T00:30:00-01:00", True),
    ("9999-12-31T23:59:59+05:00", True),
    ("9999-12-31T20:00:00-04:00", False),  # 10000-01-01 00:00 UTC
    ("9999-12-31 19:59:59.999999-04:00", True),
])
def test_event_times_at_both_ends_of_the_calendar(tmp_path: Path, stamp: str, fits: bool) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    source = put(tmp_path / "e.csv", f"profile_id,type,timestamp\na,buy,{stamp}\n")
    if fits:
        ok("import", "events", source, "--db", db)
        assert count(db, {"event": "buy"}, "9999-12-31") == 1
    else:
        assert f"line 2, column 'timestamp', value '{stamp}': {OUT}" in refused(
            "import", "events", source, "--db", db)
        assert digest(db) == before


def test_out_of_range_json_times_and_datetime_fields_are_bad_rows(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    ok("import", "events", put(tmp_path / "ok.csv", "profile_id,type,timestamp,sku\na,buy,2024-01-01,S1\n"),
       "--db", db)
    before = digest(db)
    events = put(tmp_path / "e.ndjson",
                 '{"profile_id": "a", "type": "buy", "timestamp": "9999-12-31T23:00:00-05:00"}\n'
                 '{"profile_id": "a", "type": "buy", "timestamp": "2024-01-01", "until": "2024-02-01"}\n'
                 '{"profile_id": "a", "type": "buy", "timestamp": "2024-01-01",'
                 ' "until": "0001-01-01T00:00:00+00:01"}\n')
    stderr = refused("import", "events", events, "--db", db)
    assert "2 problems in the rows" in stderr
    assert f"line 1, column 'timestamp', value '9999-12-31T23:00:00-05:00': {OUT}" in stderr
    assert f"line 3, column 'until', value '0001-01-01T00:00:00+00:01': {OUT}" in stderr
    products = put(tmp_path / "prod.csv", "sku,launched\nS1,2024-01-01T00:00:00Z\n"
                   "S2,9999-12-31T23:59:59-00:01\n")
    assert f"line 3, column 'launched', value '9999-12-31T23:59:59-00:01': {OUT}" in refused(
        "import", "entity", "product", products, "--db", db, "--key", "sku", "--link", "sku")
    assert digest(db) == before


def test_an_out_of_range_datetime_in_a_text_column_is_kept_as_text(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.csv", "id,note\na,9999-12-31T23:59:59-05:00\nb,soon\n"),
       "--db", db)
    assert count(db, eq("note", "9999-12-31T23:59:59-05:00")) == 1  # a string column: as written
    ok("import", "profiles", put(tmp_path / "q.csv", "id,note\nc,9999-12-31T23:59:59-05:00\n"), "--db", db)
    assert count(db, eq("note", "9999-12-31T23:59:59-05:00")) == 2  # the attribute is a string
    ok("import", "profiles", put(tmp_path / "r.csv", "id,seen\nd,2024-01-01T00:00:00Z\n"), "--db", db)
    before = digest(db)
    stderr = refused("import", "profiles", put(tmp_path / "s.csv", "id,seen\ne,0001-01-01T00:00:00+01:00\n"
                                               "f,0001-01-01T00:00:00+01:00\n"), "--db", db)
    assert "2 problems in the rows" in stderr and "line 3, column 'seen', value '0001" in stderr
    assert digest(db) == before


@pytest.mark.parametrize(("value", "options", "why"), [
    ("1709280000000", ["--time-format", "epoch"],
     "is year 56134 as seconds; milliseconds need --time-format epoch_ms"),
    ("1e20", ["--time-format", "epoch"], "is year 3168873852651 as seconds, outside the years 1-9999"),
    ("-62135596801", ["--time-format", "epoch"],  # as milliseconds: 1968
     "is year 0 as seconds; milliseconds need --time-format epoch_ms"),
    ("-1e17", ["--time-format", "epoch"], "is year -3168871881 as seconds, outside the years 1-9999"),
    ("1709280000000000", ["--time-format", "epoch_ms"],
     "is year 56134 as milliseconds, outside the years 1-9999"),
    ("31/12/9999 23:00 -0500", ["--time-format", "%d/%m/%Y %H:%M %z"], OUT),
    ("inf", ["--time-format", "epoch"], "not a number of seconds"),
])
def test_epoch_and_strptime_times_out_of_range_say_why(tmp_path: Path, value: str, options: list[str],
                                                       why: str) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    source = put(tmp_path / "e.csv", f"profile_id,type,timestamp\na,buy,{value}\n")
    assert f"line 2, column 'timestamp', value '{value}': {why}" in refused(
        "import", "events", source, "--db", db, *options)
    assert digest(db) == before


def test_json_epoch_numbers_out_of_range_and_the_last_instants_that_fit(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    stderr = refused("import", "events", put(tmp_path / "e.ndjson",
                     '{"profile_id": "a", "type": "buy", "timestamp": 1709280000000}\n'
                     '{"profile_id": "a", "type": "buy", "timestamp": 1e20}\n'), "--db", db,
                     "--time-format", "epoch")
    assert "line 1, column 'timestamp', value '1709280000000': is year 56134 as seconds;" in stderr
    assert "line 2, column 'timestamp', value '1e+20': is year 3168873852651 as seconds" in stderr
    assert digest(db) == before
    ok("import", "events", put(tmp_path / "edge.csv", "profile_id,type,timestamp\n"
                               "a,first,-62135596800\na,last,253402300799.5\n"), "--db", db,
       "--time-format", "epoch")
    assert count(db, {"event": "first"}, "0001-01-01") == 1
    assert count(db, {"event": "last"}, "9999-12-31") == 1


def test_the_app_shows_a_stored_time_past_year_9999_without_failing() -> None:
    import datetime as dt

    from tui.widgets.format import MISSING, format_ts, relative_day

    today = dt.date(2025, 6, 30)
    for raw in (1709280000000, 1e20, -1e15, float("nan"), float("inf")):
        assert format_ts(raw) == str(raw) and format_ts(raw, with_time=False) == str(raw)
        assert relative_day(raw, today) == ""
    assert format_ts(None) == MISSING and relative_day(None, today) == ""
    assert format_ts(253402300799) == "9999-12-31 23:59"
    assert relative_day(1751241600, today) == "today"  # 2025-06-30 00:00 UTC


# ------------------------------------------------------------------ whole numbers past 64 bits


def test_integers_at_the_64_bit_edges(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.csv", "id,big,small,over\n"
                                 "a,9223372036854775807,-9223372036854775808,9223372036854775808\n"
                                 "b,1,2,3\n"), "--db", db)
    kinds = dict(query(db, "SELECT name, type FROM attributes"))
    assert kinds == {"big": "integer", "small": "integer", "over": "string"}
    assert count(db, eq("big", 9223372036854775807)) == 1  # a
    assert count(db, eq("over", "9223372036854775808")) == 1  # a, every digit
    assert count(db, eq("over", "3")) == 1  # b: the column is text


def test_json_integers_past_64_bits_and_a_late_chunk_make_text(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.ndjson", '{"id": "a", "acct": 12345678901234567891}\n'
                                 '{"id": "b", "acct": 12345678901234567892}\n'), "--db", db)
    assert dict(query(db, "SELECT name, type FROM attributes")) == {"acct": "string"}
    assert count(db, eq("acct", "12345678901234567892")) == 1  # b
    # 5,000 numbers make the first chunk a number column; the big one in the second makes text
    lines = "".join(f"q{i},{i}.5\n" for i in range(5000)) + "q5000,98765432109876543210\n"
    ok("import", "profiles", put(tmp_path / "n.csv", "id,score\n" + lines), "--db", db)
    assert dict(query(db, "SELECT name, type FROM attributes"))["score"] == "string"
    assert count(db, eq("score", "98765432109876543210")) == 1


@pytest.mark.parametrize("existing", ["integer", "number"])
@pytest.mark.parametrize("name", ["p.csv", "p.ndjson"])
def test_a_big_whole_number_conflicts_with_a_numeric_attribute(tmp_path: Path, existing: str,
                                                                name: str) -> None:
    db = tmp_path / "s.db"
    first = "7" if existing == "integer" else "7.5"
    ok("import", "profiles", put(tmp_path / "a.csv", f"id,acct\nz,{first}\n"), "--db", db)
    before = digest(db)
    text = ("id,acct\na,1\nb,12345678901234567891\n" if name == "p.csv"
            else '{"id": "a", "acct": 1}\n{"id": "b", "acct": 12345678901234567891}\n')
    stderr = refused("import", "profiles", put(tmp_path / name, text), "--db", db)
    line = 3 if name == "p.csv" else 2
    assert (f"line {line}, column 'acct', value '12345678901234567891': a string value, but"
            f" attribute 'acct' is {'an integer' if existing == 'integer' else 'a number'} in the store"
            ) in stderr
    assert digest(db) == before


def test_big_keys_and_event_fields_keep_every_digit(tmp_path: Path) -> None:
    db = people(tmp_path, "a", "b")
    ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp,sku\n"
                               "a,buy,2024-01-01,12345678901234567891\nb,buy,2024-01-01,12345678901234567892\n"),
       "--db", db)
    ok("import", "entity", "product", put(tmp_path / "prod.csv", "sku,label\n12345678901234567891,one\n"
                                          "12345678901234567892,two\n"),
       "--db", db, "--key", "sku", "--link", "sku")
    assert count(db, {"event": "buy", "where": [eq("product.label", "two")]}) == 1  # b


# ------------------------------------------------------------------ JSON keys, blank ids


def test_a_padded_json_id_key_and_padded_keys_of_events_and_entities(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ok("import", "profiles", put(tmp_path / "p.json", '[{" id ": "a", " n": 1}, {"id": "b", "n ": 2}]'),
       "--db", db)
    assert query(db, "SELECT id FROM profiles ORDER BY id") == [("a",), ("b",)]
    ok("import", "events", put(tmp_path / "e.ndjson",
                               '{" profile_id": "a", "type ": "buy", "timestamp\\t": "2024-01-01",'
                               ' " sku ": "S1"}\n'), "--db", db)
    ok("import", "entity", "product", put(tmp_path / "prod.ndjson", '{" sku": "S1", "label ": "one"}\n'),
       "--db", db, "--key", "sku", "--link", "sku")
    assert count(db, {"event": "buy", "where": [eq("product.label", "one")]}) == 1
    assert sorted(n for (n,) in query(db, "SELECT name FROM attributes")) == ["n"]


@pytest.mark.parametrize(("name", "content", "why"), [
    ("dup.ndjson", '{"id": "a", "n": 1, "n ": 2}\n', "dup.ndjson, line 1: the column 'n' appears twice."),
    ("dup.json", '[\n{"id": "a"},\n{"id": "b", " id": "c"}]',
     "dup.json, line 3: the column 'id' appears twice."),
    ("blank.json", '[{"id": "a", "  ": 1}]', "blank.json, line 1: column 2 has no name."),
])
def test_json_keys_that_trim_to_nothing_or_to_a_repeat_are_refused(tmp_path: Path, name: str,
                                                                   content: str, why: str) -> None:
    db = people(tmp_path, "p1")
    before = digest(db)
    assert why in refused("import", "profiles", put(tmp_path / name, content), "--db", db)
    assert digest(db) == before


def test_an_empty_json_key_in_an_entity_is_refused(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    assert "f.ndjson, line 1: column 3 has no name." in refused(
        "import", "entity", "product", put(tmp_path / "f.ndjson", '{"sku": "S1", "x": 1, "": 2}\n'),
        "--db", db, "--key", "sku", "--link", "sku")
    assert digest(db) == before


@pytest.mark.parametrize(("command", "name", "content", "report"), [
    ("profiles", "p.ndjson", '{"id": " \\t "}\n', "line 1, column 'id': missing profile id"),
    ("events", "e.csv", "profile_id,type,timestamp\n  ,buy,2024-01-01\n",
     "line 2, column 'profile_id': missing profile id"),
    ("events", "e.ndjson", '{"profile_id": "a", "type": " ", "timestamp": "2024-01-01"}\n',
     "line 1, column 'type': missing event type"),
])
def test_blank_ids_and_types_in_csv_and_json_are_missing(tmp_path: Path, command: str, name: str,
                                                         content: str, report: str) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    stderr = refused("import", command, put(tmp_path / name, content), "--db", db, *(
        ["--create-profiles"] if command == "events" else []))
    assert report in stderr and "1 problem in the rows" in stderr  # not an unknown profile too
    assert digest(db) == before


def test_a_blank_entity_key_is_missing(tmp_path: Path) -> None:
    db = people(tmp_path, "a")
    before = digest(db)
    assert "line 3, column 'sku': missing key" in refused(
        "import", "entity", "product", put(tmp_path / "p.csv", "sku,label\nS1,one\n   ,two\n"),
        "--db", db, "--key", "sku", "--link", "sku")
    assert digest(db) == before


def test_ids_are_not_trimmed(tmp_path: Path) -> None:
    db = people(tmp_path, "p1", " p1")  # two profiles
    ok("import", "events", put(tmp_path / "e.csv", "profile_id,type,timestamp\n p1,buy,2024-01-01\n"),
       "--db", db)
    assert query(db, "SELECT p.id FROM events e JOIN profiles p ON p.pk = e.profile_pk") == [(" p1",)]
    assert count(db, {"all": []}) == 2


# ------------------------------------------------------------------ the summary


def test_the_summary_counts_profiles_and_says_rows_when_ids_repeat(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = ok("import", "profiles", put(tmp_path / "a.csv", "id,n\na,1\nb,2\na,3\n"), "--db", db)
    assert result.stdout.startswith(f"Imported 2 profiles (2 new, 0 updated) from 3 rows into {db} in ")
    result = ok("import", "profiles", put(tmp_path / "b.csv", "id,n\nb,5\nc,6\nc,7\nc,8\n"), "--db", db)
    assert result.stdout.startswith("Imported 2 profiles (1 new, 1 updated) from 4 rows into ")
    result = ok("import", "profiles", put(tmp_path / "c.csv", "id,n\na,1\nd,2\n"), "--db", db)
    assert result.stdout.startswith("Imported 2 profiles (1 new, 1 updated) into ")
