"""The importer as a library: inference, storage, upserts, events, entities, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.engines.layout import write_transaction
from store.engines.sqlite import connect, create_store
from store.errors import InputError
from store.ingest.importer import ImportResult, import_entity, import_events, import_profiles
from store.ingest.inference import (
    ColumnInference,
    _all_fit,
    parse_timestamps,
    text_kind,
    timestamp_parser,
)
from store.ingest.readers import ImportFile, RowProblem
from store.schema.catalog import Catalog, declare_derived_age


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = connect(db, readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def catalog(db: Path) -> Catalog:
    conn = connect(db, readonly=True)
    try:
        return Catalog.load(conn)
    finally:
        conn.close()


def attribute_types(db: Path) -> dict[str, str]:
    return {name: a.type for name, a in catalog(db).attributes.items()}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def people(tmp_path: Path, db: Path) -> Path:
    """A store with profiles p1, p2, p3."""
    import_profiles(db, write(tmp_path / "people.csv", "id,name\np1,Ann\np2,Bob\np3,Cy\n"))
    return db


# ---------------------------------------------------------------- inference


@pytest.mark.parametrize(("text", "kind"), [
    ("12", "integer"), ("-7", "integer"), ("+3", "integer"), ("007", "integer"),
    ("1.5", "number"), ("-.5", "number"), ("1e3", "number"),
    ("9223372036854775807", "integer"), ("-9223372036854775808", "integer"),
    ("12345678901234567890", "string"), ("9223372036854775808", "string"),  # past 64 bits: text
    ("12345678901234567890.0", "number"), ("1234567890123456789e1", "number"),
    ("true", "boolean"), ("FALSE", "boolean"), ("True", "boolean"),
    ("yes", "string"), ("no", "string"), ("t", "string"),
    ("2024-02-29", "date"), ("2023-02-29", "string"), ("2024-13-01", "string"),
    ("2024-03-01T10:00:00", "datetime"), ("2024-03-01 10:00", "datetime"),
    ("2024-03-01T10:00:00+02:00", "datetime"), ("2024-03-01T10:00:00.123Z", "datetime"),
    ("9999-12-31T23:59:59-05:00", "datetime"),  # a datetime by its spelling, out of range in UTC
    ("03/01/2024", "string"), ("abc", "string"), (" 12", "string"), ("nan", "string"),
])
def test_text_kind(text: str, kind: str) -> None:
    assert text_kind(text) == kind


@pytest.mark.parametrize(("values", "kind"), [
    (["1", "2", ""], "integer"),
    (["1", "2.5"], "number"),
    (["true", "False", ""], "boolean"),
    (["0", "1"], "integer"),
    (["yes", "no"], "string"),
    (["2024-01-01", "2024-01-02"], "date"),
    (["2024-01-01", "2024-01-02T10:00:00Z"], "datetime"),
    (["1", "true"], "string"),
    (["1", "2024-01-01"], "string"),
    (["", ""], None),
])
def test_column_inference_joins_every_value(values: list[str], kind: str | None) -> None:
    inference = ColumnInference("c")
    half = len(values) // 2
    inference.observe_text(tuple(values[:half]), range(2, 2 + half))
    inference.observe_text(tuple(values[half:]), range(2 + half, 2 + len(values)))
    assert inference.kind == kind


@pytest.mark.parametrize(("chunks", "kind"), [
    ((["1.5"] * 3, ["2.5", "12345678901234567890"]), "string"),  # the whole-chunk check of numbers
    ((["1"] * 3, ["2", "-9223372036854775809"]), "string"),
    ((["1.5"] * 3, ["123456789012345678", "-1234567890123456789"]), "number"),
])
def test_a_whole_number_past_64_bits_makes_text_in_any_chunk(chunks: tuple[list[str], ...],
                                                             kind: str) -> None:
    inference = ColumnInference("c")
    line = 2
    for values in chunks:
        inference.observe_text(tuple(values), range(line, line + len(values)))
        line += len(values)
    assert inference.kind == kind


def test_json_integers_past_64_bits_are_text() -> None:
    inference = ColumnInference("c")
    inference.observe_json([1, 2**63 - 1], [1, 2], [])
    assert inference.kind == "integer"
    inference.observe_json([2**63], [3], [])
    assert inference.kind == "string"
    assert inference.examples["string"] == (3, "9223372036854775808")


def test_inference_keeps_the_datetimes_out_of_range() -> None:
    inference = ColumnInference("seen")
    inference.observe_text(("2024-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59+01:00"), range(2, 7))
    inference.observe_json(["9999-12-31T23:00:00-05:00", None], [7, 8], [])
    assert inference.kind == "datetime"
    assert inference.out_of_range_count == 4
    assert [(p.line, p.value) for p in inference.range_problems()] == [
        (3, "0001-01-01T00:00:00+01:00"), (4, "9999-12-31T23:59:59-01:00"),
        (5, "0001-01-01T00:00:00+01:00"), (7, "9999-12-31T23:00:00-05:00")]
    assert {p.why for p in inference.range_problems()} == {"falls outside the years 1-9999 in UTC"}


def test_epoch_parsers_refuse_instants_out_of_the_years_1_to_9999() -> None:
    seconds, millis = timestamp_parser("epoch"), timestamp_parser("epoch_ms")
    assert seconds("-62135596800") == -62135596800 and seconds(253402300799) == 253402300799
    assert seconds("-62135596801") is None and seconds(253402300800) is None
    assert seconds(1709280000000) is None and seconds("1e20") is None and seconds(1e20) is None
    assert millis(1709280000000) == 1709280000 and millis("253402300800000") is None
    zoned = timestamp_parser("%Y-%m-%d %H:%M %z")
    assert zoned("9999-12-31 23:00 +0500") == 253402279200 and zoned("9999-12-31 23:00 -0500") is None
    assert timestamp_parser(None)("0001-01-01T00:30:00+01:00") is None


def test_inference_remembers_the_first_misfit() -> None:
    inference = ColumnInference("age")
    inference.observe_text(("1", "2", "x", "y"), range(2, 6))
    assert inference.kind == "string"
    problem = inference.conflict("integer", "attribute 'age'")
    assert problem is not None
    assert (problem.line, problem.column, problem.value) == (4, "age", "x")


def test_timestamps_fast_and_slow_paths_agree() -> None:
    values = ("2024-03-01T10:00:00Z", "2024-03-01 10:00:00", "2024-03-01",
              "1969-12-31T23:59:59")
    fast, bad = parse_timestamps(values, timestamp_parser(None), None)
    assert bad == []
    slow = [timestamp_parser(None)(v) for v in values]
    assert fast.tolist() == slow == [1709287200, 1709287200, 1709251200, -1]
    mixed = (*values, "2024-03-01T12:00:00+02:00", "2024-02-30T00:00:00", "soon")
    stamps, bad = parse_timestamps(mixed, timestamp_parser(None), None)
    assert bad == [5, 6]
    assert stamps.tolist()[4] == 1709287200
    _stamps, bad = parse_timestamps(("2024-03-01", ""), timestamp_parser(None), None)
    assert bad == [1]


def test_whole_column_date_check_knows_the_calendar() -> None:
    """The whole-column check of dates (a regex, then numpy) agrees with the calendar on every day of every
    month (0-13, days 0-32) of years around every kind of leap year."""
    years = [1, 4, 100, 400, 1600, 1700, 1800, 1900, 1999, 2000, 2023, 2024, 2100, 9999]
    for year in years:
        for month in range(14):
            for day in range(33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    dt.date(year, month, day)
                except ValueError:
                    valid = False
                else:
                    valid = True
                assert _all_fit("date", [text, ""]) is valid, text
                assert _all_fit("datetime", [f"{text}T23:59:59Z"]) is valid, text


# ---------------------------------------------------------------- profiles


def test_profiles_types_are_inferred_and_stored(tmp_path: Path, db: Path) -> None:
    source = write(tmp_path / "p.csv",
                   "id,age,score,vip,born,seen,nick,flag01\n"
                   "p1,34,1.5,true,1990-01-02,2024-01-01T10:00:00+02:00,Al,0\n"
                   "p2,,2,FALSE,1985-05-05,2024-01-01 10:00:00,,1\n")
    result = import_profiles(db, source)
    assert isinstance(result, ImportResult)
    assert (result.rows, result.created_profiles, result.updated_profiles) == (2, 2, 0)
    types = attribute_types(db)
    assert {k: types[k] for k in ("age", "score", "vip", "born", "seen", "nick", "flag01")} == {
        "age": "integer", "score": "number", "vip": "boolean", "born": "date",
        "seen": "datetime", "nick": "string", "flag01": "integer"}
    assert rows(db, "SELECT id, age, score, vip, born, seen, nick FROM profiles ORDER BY id") == [
        ("p1", 34, 1.5, 1, "1990-01-02", "2024-01-01 08:00:00", "Al"),
        ("p2", None, 2.0, 0, "1985-05-05", "2024-01-01 10:00:00", None),
    ]


def test_profile_id_column_defaults(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "a.csv", "profile_id,city\n7,Paris\n"))
    assert rows(db, "SELECT id, city FROM profiles") == [("7", "Paris")]
    with pytest.raises(InputError, match=r"no 'id' or 'profile_id' column.*Columns: who, city"):
        import_profiles(db, write(tmp_path / "b.csv", "who,city\nx,Rome\n"))
    import_profiles(db, write(tmp_path / "c.csv", "who,city\nx,Rome\n"), id_column="who")
    assert rows(db, "SELECT id, city FROM profiles ORDER BY id") == [("7", "Paris"), ("x", "Rome")]


def test_reimport_updates_given_columns_and_keeps_others(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "a.csv", "id,name,city\np1,Ann,Paris\np2,Bob,Rome\n"))
    result = import_profiles(db, write(tmp_path / "b.csv", "id,city\np1,Lyon\np3,Oslo\n"))
    assert (result.created_profiles, result.updated_profiles) == (1, 1)
    assert rows(db, "SELECT id, name, city FROM profiles ORDER BY id") == [
        ("p1", "Ann", "Lyon"), ("p2", "Bob", "Rome"), ("p3", None, "Oslo")]


def test_duplicate_ids_in_one_file_last_row_wins(tmp_path: Path, db: Path) -> None:
    result = import_profiles(db, write(tmp_path / "a.csv", "id,n\np1,1\np1,2\np2,3\np1,4\n"))
    assert (result.rows, result.created_profiles, result.updated_profiles) == (4, 2, 0)
    assert rows(db, "SELECT id, n FROM profiles ORDER BY id") == [("p1", 4), ("p2", 3)]


def test_integer_attribute_widens_to_number(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "a.csv", "id,score\np1,3\n"))
    import_profiles(db, write(tmp_path / "b.csv", "id,score\np2,2.5\n"))
    assert attribute_types(db)["score"] == "number"
    assert rows(db, "SELECT id, score FROM profiles ORDER BY id") == [("p1", 3), ("p2", 2.5)]


def test_all_empty_column_declares_nothing(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "a.csv", "id,note\np1,\np2,\n"))
    assert "note" not in attribute_types(db)


def test_conflicting_type_is_rejected_and_store_unchanged(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "a.csv", "id,age\np1,30\n"))
    before = digest(db)
    with pytest.raises(InputError) as caught:
        import_profiles(db, write(tmp_path / "b.csv", "id,age\np2,31\np3,old\n"))
    message = str(caught.value)
    assert "line 3" in message and "'age'" in message and "'old'" in message
    assert "integer in the store" in message
    assert digest(db) == before


def test_derived_attribute_cannot_be_imported(tmp_path: Path, db: Path) -> None:
    conn = create_store(db)
    with write_transaction(conn):
        declare_derived_age(conn)
    conn.close()
    with pytest.raises(InputError, match="derived"):
        import_profiles(db, write(tmp_path / "a.csv", "id,age\np1,30\n"))


def test_id_column_other_than_id_with_an_id_column_is_refused(tmp_path: Path, db: Path) -> None:
    with pytest.raises(InputError, match="clash with the built-in profile id"):
        import_profiles(db, write(tmp_path / "a.csv", "key,id\nk1,x\n"), id_column="key")


# ---------------------------------------------------------------- formats


def test_json_array_keeps_json_types(tmp_path: Path, db: Path) -> None:
    data = [{"id": 1, "n": 5, "ok": True, "s": "12", "x": 1.0, "d": "2024-01-01"},
            {"id": "2", "n": None, "ok": False, "s": 13, "x": 2, "tag": "a"}]
    import_profiles(db, write(tmp_path / "p.json", json.dumps(data)))
    types = attribute_types(db)
    assert {k: types[k] for k in ("n", "ok", "s", "x", "d", "tag")} == {
        "n": "integer", "ok": "boolean", "s": "integer", "x": "number", "d": "date",
        "tag": "string"}
    assert rows(db, "SELECT id, n, ok, s, x, tag FROM profiles ORDER BY id") == [
        ("1", 5, 1, 12, 1.0, None), ("2", None, 0, 13, 2.0, "a")]


def test_json_mixed_numbers_and_words_become_text(tmp_path: Path, db: Path) -> None:
    data = [{"id": "a", "v": 1}, {"id": "b", "v": "x"}, {"id": "c", "v": True}]
    import_profiles(db, write(tmp_path / "p.json", json.dumps(data)))
    assert rows(db, "SELECT id, v FROM profiles ORDER BY id") == [
        ("a", "1"), ("b", "x"), ("c", "true")]


def test_ndjson_and_gzip(tmp_path: Path, db: Path) -> None:
    text = '{"id": "p1", "n": 1}\n\n{"id": "p2", "n": 2, "extra": "e"}\n'
    plain = write(tmp_path / "p.ndjson", text)
    packed = tmp_path / "q.ndjson.gz"
    packed.write_bytes(gzip.compress(text.replace("p1", "q1").replace("p2", "q2").encode()))
    import_profiles(db, plain)
    import_profiles(db, packed)
    assert rows(db, "SELECT id, n, extra FROM profiles ORDER BY id") == [
        ("p1", 1, None), ("p2", 2, "e"), ("q1", 1, None), ("q2", 2, "e")]


def test_gzip_detected_by_magic_bytes(tmp_path: Path, db: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_bytes(gzip.compress(b"id,n\np1,1\n"))
    import_profiles(db, source)
    assert rows(db, "SELECT id, n FROM profiles") == [("p1", 1)]


def test_truncated_gzip_is_an_input_error(tmp_path: Path, db: Path) -> None:
    data = gzip.compress(("id,n\n" + "".join(f"p{i},{i}\n" for i in range(5000))).encode())
    source = tmp_path / "p.csv.gz"
    source.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="gzip"):
        import_profiles(db, source)
    assert not db.exists()


@pytest.mark.parametrize(("name", "content", "match"), [
    ("empty.csv", "", "empty"),
    ("header.csv", "id,name\n", "no rows"),
    ("empty.json", "[]", "no rows"),
    ("object.json", '{"id": 1}\n{"id": 2', "not valid JSON"),
    ("scalar.json", "[1, 2]", "not an object"),
])
def test_files_without_rows_or_objects_are_refused(tmp_path: Path, db: Path, name: str,
                                                   content: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        import_profiles(db, write(tmp_path / name, content))
    assert not db.exists()


def test_invalid_utf8_names_the_line(tmp_path: Path, db: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_bytes(b"id,name\np1,Ann\np2,B\xe9b\n")
    with pytest.raises(InputError, match=r"UTF-8.*line 3"):
        import_profiles(db, source)


def test_nested_json_values_are_bad_rows(tmp_path: Path, db: Path) -> None:
    data = '[\n{"id": "p1", "tags": ["a"]},\n{"id": "p2", "address": {"city": "x"}}\n]'
    with pytest.raises(InputError) as caught:
        import_profiles(db, write(tmp_path / "p.json", data))
    message = str(caught.value)
    assert "line 2, column 'tags'" in message and "nested array" in message
    assert "line 3, column 'address'" in message and "nested object" in message


# ---------------------------------------------------------------- all or nothing


def test_bad_rows_leave_the_store_byte_for_byte_unchanged(tmp_path: Path, people: Path) -> None:
    before = digest(people)
    bad = write(tmp_path / "e.csv",
                "profile_id,type,timestamp,amount\n"
                "p1,purchase,2024-03-01T10:00:00Z,10\n"
                "p2,purchase,2024-13-01,11\n"
                "p1,purchase,2024-03-02,12,extra\n"
                ",view,2024-03-03,\n"
                "p1,,2024-03-03,\n")
    with pytest.raises(InputError) as caught:
        import_events(people, bad)
    message = str(caught.value)
    assert "4 problems" in message and "nothing was imported" in message
    assert "line 3, column 'timestamp', value '2024-13-01'" in message
    assert "line 4" in message and "5 fields" in message
    assert "line 5, column 'profile_id': missing profile id" in message
    assert "line 6, column 'type': missing event type" in message
    assert digest(people) == before
    assert rows(people, "SELECT count(*) FROM events") == [(0,)]


def test_report_lists_at_most_ten_problems(tmp_path: Path, people: Path) -> None:
    lines = "".join(f"p1,view,bad{i}\n" for i in range(25))
    with pytest.raises(InputError) as caught:
        import_events(people, write(tmp_path / "e.csv", "profile_id,type,timestamp\n" + lines))
    message = str(caught.value)
    assert "25 problems" in message and "The first 10:" in message
    assert "line 11," in message and "line 12," not in message


def test_rejected_import_does_not_create_the_store(tmp_path: Path, db: Path) -> None:
    with pytest.raises(InputError, match="unknown profile"):
        import_events(db, write(tmp_path / "e.csv", "profile_id,type,timestamp\nx,view,2024-01-01\n"))
    assert not db.exists()


def test_a_second_valid_import_after_a_rejection(tmp_path: Path, people: Path) -> None:
    with pytest.raises(InputError):
        import_events(people, write(tmp_path / "bad.csv", "profile_id,type,timestamp\np1,v,x\n"))
    result = import_events(people, write(tmp_path / "ok.csv",
                                         "profile_id,type,timestamp\np1,v,2024-01-01\n"))
    assert result.rows == 1


# ---------------------------------------------------------------- events


def test_events_fields_types_and_registration(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv",
                   "profile_id,type,timestamp,sku,amount,quantity\n"
                   "p1,purchase,2024-03-01T10:00:00+01:00,A1,10.5,2\n"
                   "p2,page_view,2024-03-02 11:00:00,,,\n"
                   "p1,purchase,2024-03-03,B2,3,1\n")
    result = import_events(people, source)
    assert (result.rows, result.event_types) == (3, ("purchase", "page_view"))
    assert "3 events (2 types)" in result.summary()
    known = catalog(people)
    assert {n: f.type for n, f in known.event_fields.items()} == {
        "sku": "string", "amount": "number", "quantity": "integer"}
    assert known.event_types["purchase"].fields == ("amount", "quantity", "sku")
    assert known.event_types["page_view"].fields == ()
    assert rows(people, "SELECT p.id, t.name, e.ts, e.sku, e.amount, e.quantity FROM events e"
                        " JOIN profiles p ON p.pk = e.profile_pk"
                        " JOIN event_types t ON t.id = e.type_id ORDER BY e.pk") == [
        ("p1", "purchase", 1709283600, "A1", 10.5, 2),
        ("p2", "page_view", 1709377200, None, None, None),
        ("p1", "purchase", 1709424000, "B2", 3.0, 1),
    ]


def test_events_are_appended(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,type,timestamp\np1,view,2024-01-01\n")
    import_events(people, source)
    import_events(people, source)
    assert rows(people, "SELECT count(*) FROM events") == [(2,)]


def test_indexes_exist_after_a_big_first_import(tmp_path: Path, people: Path) -> None:
    import_events(people, write(tmp_path / "e.csv", "profile_id,type,timestamp\np1,v,2024-01-01\n"))
    names = {r[0] for r in rows(people, "SELECT name FROM sqlite_master WHERE type = 'index'"
                                        " AND tbl_name = 'events'")}
    assert {"events_type_ts_profile", "events_profile_ts"} <= names


def test_unknown_profiles_with_and_without_create(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv",
                   "profile_id,type,timestamp\np1,view,2024-01-01\nnew1,view,2024-01-02\n"
                   "new1,view,2024-01-03\nnew2,view,2024-01-04\n")
    before = digest(people)
    with pytest.raises(InputError) as caught:
        import_events(people, source)
    assert "line 3, column 'profile_id', value 'new1': unknown profile id" in str(caught.value)
    assert digest(people) == before
    result = import_events(people, source, create_profiles=True)
    assert (result.rows, result.created_profiles) == (4, 2)
    assert "2 new profiles" in result.summary()
    assert rows(people, "SELECT p.id, count(*) FROM events e JOIN profiles p"
                        " ON p.pk = e.profile_pk GROUP BY p.id ORDER BY p.id") == [
        ("new1", 2), ("new2", 1), ("p1", 1)]


def test_create_profiles_into_a_new_store(tmp_path: Path, db: Path) -> None:
    result = import_events(db, write(tmp_path / "e.csv",
                                     "profile_id,type,timestamp\nz,view,2024-01-01\n"),
                           create_profiles=True)
    assert result.created_profiles == 1
    assert rows(db, "SELECT id FROM profiles") == [("z",)]


def test_profile_ids_match_as_text_across_files(tmp_path: Path, db: Path) -> None:
    import_profiles(db, write(tmp_path / "p.json", '[{"id": 123, "n": 1}]'))
    import_events(db, write(tmp_path / "e.csv", "profile_id,type,timestamp\n123,v,2024-01-01\n"))
    import_events(db, write(tmp_path / "e.ndjson",
                            '{"profile_id": 123, "type": "v", "timestamp": "2024-01-02"}\n'))
    assert rows(db, "SELECT count(*) FROM events e JOIN profiles p ON p.pk = e.profile_pk"
                    " WHERE p.id = '123'") == [(2,)]


def test_type_name_and_custom_columns(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "who,when,type,value\np1,2024-01-01,x,5\np2,2024-01-02,y,6\n")
    result = import_events(people, source, profile_column="who", type_name="click",
                           time_column="when")
    assert result.event_types == ("click",)
    known = catalog(people)
    assert set(known.event_fields) == {"type", "value"}  # with --type, 'type' is just a field
    assert known.event_types["click"].fields == ("type", "value")
    source2 = write(tmp_path / "f.csv", "who,when,kind\np1,2024-01-03,open\n")
    result2 = import_events(people, source2, profile_column="who", type_column="kind",
                            time_column="when")
    assert result2.event_types == ("open",)
    assert "kind" not in catalog(people).event_fields


def test_missing_role_column_names_the_option(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,kind,timestamp\np1,v,2024-01-01\n")
    with pytest.raises(InputError, match=r"no column 'type'.*--type-column"):
        import_events(people, source)


def test_time_formats(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,type,timestamp\np1,v,01/03/2024 10:00\n")
    with pytest.raises(InputError, match="not an ISO 8601"):
        import_events(people, source)
    import_events(people, source, time_format="%d/%m/%Y %H:%M")
    epoch = write(tmp_path / "f.ndjson",
                  '{"profile_id": "p1", "type": "v", "timestamp": 1709287200000}\n')
    import_events(people, epoch, time_format="epoch_ms")
    assert [r[0] for r in rows(people, "SELECT ts FROM events ORDER BY pk")] == [
        1709287200, 1709287200]


def test_json_number_timestamp_needs_an_epoch_format(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.ndjson",
                   '{"profile_id": "p1", "type": "v", "timestamp": 1709287200}\n')
    with pytest.raises(InputError, match="--time-format epoch"):
        import_events(people, source)


def test_event_field_conflict_is_rejected(tmp_path: Path, people: Path) -> None:
    import_events(people, write(tmp_path / "a.csv", "profile_id,type,timestamp,n\np1,v,2024-01-01,1\n"))
    before = digest(people)
    with pytest.raises(InputError, match=r"column 'n'.*'many'.*integer in the store"):
        import_events(people, write(tmp_path / "b.csv",
                                    "profile_id,type,timestamp,n\np1,v,2024-01-01,many\n"))
    assert digest(people) == before


# ---------------------------------------------------------------- entities


def test_entity_import_and_link(tmp_path: Path, people: Path) -> None:
    import_events(people, write(tmp_path / "e.csv",
                                "profile_id,type,timestamp,sku\np1,buy,2024-01-01,A1\n"))
    source = write(tmp_path / "products.csv", "sku,category,price\nA1,Shoes,50\nB2,Hats,19.5\n")
    result = import_entity(people, "product", source, key="sku", link="sku")
    assert result.rows == 2 and result.entity == "product"
    entity = catalog(people).entities["product"]
    assert (entity.table, entity.key_field, entity.link_field) == ("entity_product", "sku", "sku")
    assert {n: f.type for n, f in entity.fields.items()} == {
        "sku": "string", "category": "string", "price": "number"}
    assert rows(people, "SELECT e.sku, p.category FROM events e"
                        " JOIN entity_product p ON p.key = e.sku") == [("A1", "Shoes")]
    import_entity(people, "product", write(tmp_path / "more.csv", "sku,category\nA1,Boots\n"),
                  key="sku", link="sku")
    assert rows(people, "SELECT key, category, price FROM entity_product ORDER BY key") == [
        ("A1", "Boots", 50.0), ("B2", "Hats", 19.5)]


def test_entity_numeric_keys_follow_a_text_link_field(tmp_path: Path, people: Path) -> None:
    import_events(people, write(tmp_path / "e.csv",
                                "profile_id,type,timestamp,sku\np1,buy,2024-01-01,X9\n"))
    import_entity(people, "product", write(tmp_path / "p.csv", "sku,name\n12,Hat\n"),
                  key="sku", link="sku")
    assert rows(people, "SELECT key, typeof(key) FROM entity_product") == [("12", "text")]


def test_entity_declares_the_link_field_when_events_lack_it(tmp_path: Path, db: Path) -> None:
    import_entity(db, "product", write(tmp_path / "p.csv", "id,name\n1,Hat\n"),
                  key="id", link="product_id")
    assert catalog(db).event_fields["product_id"].type == "integer"


def test_entity_errors(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "p.csv", "sku,name\nA1,Hat\n,Cap\n")
    with pytest.raises(InputError, match="line 3, column 'sku': missing key"):
        import_entity(people, "product", source, key="sku", link="sku")
    with pytest.raises(InputError, match="letters, digits"):
        import_entity(people, "bad name", source, key="sku", link="sku")
    import_entity(people, "product", write(tmp_path / "ok.csv", "sku,name\nA1,Hat\n"),
                  key="sku", link="sku")
    with pytest.raises(InputError, match="keyed by 'sku'"):
        import_entity(people, "product", write(tmp_path / "k.csv", "code,name\nA1,Hat\n"),
                      key="code", link="sku")


def test_store_that_is_not_a_store_is_a_store_error(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    from store.errors import StoreError

    with pytest.raises(StoreError):
        import_profiles(other, write(tmp_path / "p.csv", "id\np1\n"))


def test_a_failed_write_removes_a_store_it_created(tmp_path: Path, db: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import store.ingest.importer as importer

    def boom(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("disk is full")

    monkeypatch.setattr(importer, "ensure_attribute", boom)
    from store.errors import StoreError

    with pytest.raises(StoreError, match="full"):
        import_profiles(db, write(tmp_path / "p.csv", "id,n\np1,1\n"))
    assert not db.exists()


def test_progress_reports_both_passes(tmp_path: Path, db: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    source = write(tmp_path / "p.csv", "id,n\n" + "".join(f"p{i},{i}\n" for i in range(10_000)))
    import_profiles(db, source, progress=lambda *args: seen.append(args))
    phases = [phase for phase, _done, _total in seen]
    assert "Checking" in phases and "Writing" in phases
    assert seen[-1][1] == seen[-1][2] == source.stat().st_size


# ---------------------------------------------------------------- reading files


def read_all(path: Path, chunk_rows: int = 4096) -> tuple[list[int], dict[str, list[Any]],
                                                          list[RowProblem]]:
    """Every row of a file through ImportFile: line numbers, columns, row problems."""
    lines: list[int] = []
    columns: dict[str, list[Any]] = {}
    problems: list[RowProblem] = []
    done = 0
    for chunk in ImportFile(path, chunk_rows=chunk_rows).chunks():
        for name in chunk.columns:
            columns.setdefault(name, [None] * done)
        for name, values in columns.items():
            values.extend(chunk.column(name))
        lines.extend(chunk.lines)
        problems.extend(chunk.problems)
        done += len(chunk)
    return lines, columns, problems


@pytest.mark.parametrize("chunk_rows", [1, 2, 4096])
def test_csv_line_numbers_follow_quoted_line_breaks(tmp_path: Path, chunk_rows: int) -> None:
    source = write(tmp_path / "p.csv",
                   'id,note\np1,"two\nlines"\n\np2,plain\np3,"a\r\nb",extra\np4,x\n')
    lines, columns, problems = read_all(source, chunk_rows)
    assert lines == [2, 5, 8]
    assert columns == {"id": ["p1", "p2", "p4"], "note": ["two\nlines", "plain", "x"]}
    assert [(p.line, p.why) for p in problems] == [(6, "has 3 fields but the header has 2 fields")]


def test_csv_unterminated_quote_names_the_record_where_it_opens(tmp_path: Path) -> None:
    source = write(tmp_path / "p.csv", 'id,note\np1,ok\np2,"never closed\np3,x\np4,y\n')
    with pytest.raises(InputError, match=r"p\.csv, line 3: cannot read the CSV"):
        read_all(source)


def test_csv_bom_delimiters_and_header_names(tmp_path: Path) -> None:
    semicolons = tmp_path / "p.csv"
    semicolons.write_bytes("\ufeffid ; city\np1;Köln\n".encode())
    assert read_all(semicolons)[1] == {"id": ["p1"], "city": ["Köln"]}
    tabs = write(tmp_path / "p.tsv", "id\tcity, region\np1\tParis, IdF\n")
    assert read_all(tabs)[1] == {"id": ["p1"], "city, region": ["Paris, IdF"]}
    for header, why in (("id,name,id\n", "appears twice"), ("id,,name\n", "column 2 has no name")):
        with pytest.raises(InputError, match=why):
            read_all(write(tmp_path / "h.csv", header + "p1,a,b\n"))


def test_json_elements_keep_their_lines_and_keys_in_order(tmp_path: Path) -> None:
    source = write(tmp_path / "p.json",
                   '[\n  {"id": "p1",\n   "n": 1},\n  "oops",\n  {"id": "p2", "extra": true}\n]\n')
    lines, columns, problems = read_all(source, chunk_rows=1)
    assert lines == [2, 5]
    assert columns == {"id": ["p1", "p2"], "n": [1, None], "extra": [None, True]}
    assert [(p.line, p.value, p.why) for p in problems] == [
        (4, "oops", "is a JSON string, not an object")]
    for text, why in (('[{"id": 1}', "not valid JSON"), ('[{"id": 1}] [2]', "more data"),
                      ('[{"id": 1},]', "not valid JSON")):
        with pytest.raises(InputError, match=why):
            read_all(write(tmp_path / "bad.json", text))


def test_ndjson_bad_lines_are_row_problems(tmp_path: Path) -> None:
    source = write(tmp_path / "p.jsonl", '{"id": "p1"}\n\n{"id": \n[1]\n{"id": "p2"}\n')
    lines, columns, problems = read_all(source)
    assert lines == [1, 5]
    assert columns == {"id": ["p1", "p2"]}
    assert [(p.line, p.why.split(" (")[0]) for p in problems] == [
        (3, "not valid JSON"), (4, "is a JSON array, not an object")]


def test_format_and_compression_are_detected_from_content(tmp_path: Path) -> None:
    blob = tmp_path / "export.dat"
    blob.write_bytes(gzip.compress(b'[{"id": "p1"}]'))
    source = ImportFile(blob)
    assert (source.compressed, source.format) == (True, "json")
    assert read_all(blob)[1] == {"id": ["p1"]}
    lines = write(tmp_path / "export.txt", '{"id": "p1"}\n')
    assert ImportFile(lines).format == "csv"  # a .txt file is CSV whatever it starts with
    assert ImportFile(write(tmp_path / "export", '{"id": "p1"}\n')).format == "ndjson"


@pytest.mark.slow
def test_events_import_speed(tmp_path: Path) -> None:
    """300,000 generated events at 100,000 rows per second of CPU or better."""
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location(
        "bench_import", Path(__file__).parent.parent / "bench" / "bench_import.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths = bench.write_files(tmp_path, events=300_000, profiles=20_000, products=500, seed=1,
                        compress=False)
    db = tmp_path / "speed.db"
    import_profiles(db, paths["profiles"])
    started = time.process_time()
    result = import_events(db, paths["events"])
    cpu = time.process_time() - started
    assert result.rows == 300_000
    assert result.rows / cpu >= 100_000, f"{result.rows / cpu:,.0f} rows/s of CPU"


def test_summary_counts_profiles_not_rows(tmp_path: Path) -> None:
    result = ImportResult(kind="profiles", rows=3, created_profiles=2, updated_profiles=0,
                          elapsed_s=0.0, db_path=tmp_path / "s.db", file_path=tmp_path / "a.csv")
    assert result.profiles == 2
    assert result.summary().startswith("Imported 2 profiles (2 new, 0 updated) from 3 rows into ")
    one = ImportResult(kind="profiles", rows=1, created_profiles=0, updated_profiles=1,
                       elapsed_s=0.0, db_path=tmp_path / "s.db", file_path=tmp_path / "a.csv")
    assert one.summary().startswith("Imported 1 profile (0 new, 1 updated) into ")


def test_a_blank_id_is_missing_in_every_chunk(tmp_path: Path, db: Path) -> None:
    lines = "".join(f"p{i},{i}\n" for i in range(9000)) + " \t ,1\n"
    with pytest.raises(InputError, match="line 9002, column 'id': missing profile id"):
        import_profiles(db, write(tmp_path / "a.csv", "id,n\n" + lines))
    assert not db.exists()


def test_a_not_gzip_file_and_a_damaged_one_are_told_apart(tmp_path: Path) -> None:
    plain = tmp_path / "p.csv.gz"
    plain.write_bytes(b"id,n\np1,1\n")
    with pytest.raises(InputError, match=r"p\.csv\.gz is not a gzip file, though its name ends in"
                                         r" \.gz; rename it without \.gz, or compress it\."):
        ImportFile(plain)
    damaged = tmp_path / "d.csv.gz"
    damaged.write_bytes(gzip.compress(b"id,n\np1,1\n") + b"junk")
    with pytest.raises(InputError, match="not a valid gzip file"):
        list(ImportFile(damaged).chunks())
