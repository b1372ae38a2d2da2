"""The segment commands of the CLI: exit codes, messages, and what is written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.factory import SPEC_EXAMPLE_YAML, EntitySpec, StoreSpec, build_store
from tui.cli import cli

AS_OF = "2026-06-30"
UTC = dt.UTC


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    spec = StoreSpec(
        attributes={"gender": "string", "birth_date": "date", "email_opt_in": "boolean",
                    "email": "string"},
        derived_age_from="birth_date",
        profiles=[
            {"id": "p1", "gender": "male", "birth_date": dt.date(1960, 5, 1), "email_opt_in": True,
             "email": "a@gmail.com"},
            {"id": "p2", "gender": "male", "birth_date": dt.date(1990, 5, 1), "email_opt_in": True,
             "email": "b@yahoo.com"},
            {"id": "p3", "gender": "female", "birth_date": dt.date(1950, 1, 1),
             "email_opt_in": False, "email": "c%d@x.com"},
            {"id": "p4", "gender": "male", "birth_date": dt.date(1965, 7, 1),
             "email_opt_in": False},
        ],
        event_fields={"amount": "number"},
        events=[
            {"profile_id": pid, "type": "purchase", "sku": "S1", "amount": 10.0,
             "timestamp": dt.datetime(2026, 6, day, 12, tzinfo=UTC)}
            for pid in ("p1", "p4") for day in (1, 2)
        ],
        entities={"product": EntitySpec("sku", "string", "sku", {"sku": "string",
                                                                 "category": "string"},
                                        [{"sku": "S1", "category": "Shoes"}])},
    )
    build_store(path, spec).close()
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


UNSUBSCRIBED = """\
id: unsubscribed
name: Unsubscribed
rule:
  attribute: email_opt_in
  op: is_false
"""



def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_count_spec_example_with_reference_beside_file(store: Path, tmp_path: Path) -> None:
    write(tmp_path / "unsubscribed.yaml", UNSUBSCRIBED)
    segment = write(tmp_path / "men.yaml", SPEC_EXAMPLE_YAML)
    code, out, err = invoke("count", str(segment), "--db", str(store), "--as-of", AS_OF, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["count"] == 1  # p1: male, 66, 2 shoe purchases, opted in
    assert payload["total"] == 4
    assert payload["elapsed_ms"] >= 0


def test_save_list_show_export_delete(store: Path, tmp_path: Path) -> None:
    write(tmp_path / "unsubscribed.yaml", UNSUBSCRIBED)
    segment = write(tmp_path / "men.yaml", SPEC_EXAMPLE_YAML)
    code, out, err = invoke("segments", "save", str(segment), "--db", str(store))
    assert code == 0, err
    code, out, _ = invoke("segments", "list", "--db", str(store))
    assert "men-over-50-shoes" in out and "unsubscribed" in out  # the reference was saved too
    code, out, _ = invoke("segments", "show", "men-over-50-shoes", "--db", str(store))
    assert "product.category" in out
    exported = tmp_path / "out.yaml"
    code, _, _ = invoke("segments", "export", "men-over-50-shoes", "-o", str(exported),
                        "--db", str(store))
    assert code == 0 and "Men over 50" in exported.read_text()
    code, _, err = invoke("segments", "delete", "unsubscribed", "--db", str(store))
    assert code == 2 and "men-over-50-shoes" in err and "Traceback" not in err
    code, _, err = invoke("count", "men-over-50-shoes", "--db", str(store), "--as-of", AS_OF)
    assert code == 0, err
    assert invoke("segments", "delete", "men-over-50-shoes", "--db", str(store))[0] == 0
    assert invoke("segments", "delete", "unsubscribed", "--db", str(store))[0] == 0
    code, out, _ = invoke("segments", "list", "--db", str(store))
    assert "No saved segments" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rule: {attribute: agee, op: equals, value: 1}", "did you mean 'age'"),
        ("rule: {attribute: age, op: greater_than, value: abc}", "rule.value"),
        ("rule: {attribute: gender, op: greater_than, value: 1}", "rule.op"),
        ("rule: {all: [{attribute: gender, op: equals}]}", "rule.all[0].value"),
        ("rule: {event: purchse}", "did you mean 'purchase'"),
        ("rule: {event: purchase, where: [{attribute: product.colour, op: equals, value: x}]}",
         "product.colour"),
        ("rule: {segment: nowhere}", "nowhere"),
        ("rule: {attribute: age, op: between, value: [60, 50]}", "low <= high"),
        ("rule: {attribute: birth_date, op: before, value: {ago: 99999, unit: years}}",
         "bad.yaml:1: rule.value: 99,999 years ago falls outside the calendar"),
        ("rule: [unclosed", "not valid YAML"),
        ("name: x", "missing required key 'rule'"),
        ("rule: {attribute: gender, op: equals, value: x, extra: 1}", "unknown key 'extra'"),
    ],
)
def test_bad_segments_exit_2_with_one_message(store: Path, tmp_path: Path, text: str,
                                              expected: str) -> None:
    before = digest(store)
    segment = write(tmp_path / "bad.yaml", text)
    for command in (["count"], ["sql"], ["segments", "save"]):
        code, out, err = invoke(*command, str(segment), "--db", str(store))
        assert code == 2, (command, out, err)
        assert expected.lower() in err.lower(), err
        assert "Traceback" not in err and str(segment) in err
        assert len(err.strip().splitlines()) == 1
    assert digest(store) == before


def test_cycle_is_named(store: Path, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "id: a\nrule: {segment: b}\n")
    write(tmp_path / "b.yaml", "id: b\nrule: {not: {segment: a}}\n")
    code, _, err = invoke("count", str(tmp_path / "a.yaml"), "--db", str(store))
    assert code == 2 and "a -> b -> a" in err


def test_values_are_only_values(store: Path, tmp_path: Path) -> None:
    injection = write(tmp_path / "inj.yaml", "rule: {attribute: gender, op: equals,"
                      " value: \"'; DROP TABLE profiles; --\"}\n")
    code, out, err = invoke("count", str(injection), "--db", str(store), "--json")
    assert code == 0, err
    assert json.loads(out)["count"] == 0
    percent = write(tmp_path / "pct.yaml", "rule: {attribute: email, op: contains, value: '%'}\n")
    code, out, _ = invoke("count", str(percent), "--db", str(store), "--json")
    assert json.loads(out)["count"] == 1  # only c%d@x.com
    assert invoke("sql", str(injection), "--db", str(store))[0] == 0
    assert invoke("count", str(injection), "--db", str(store))[0] == 0  # the table is still there


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    segment = write(tmp_path / "s.yaml", UNSUBSCRIBED)
    code, _, err = invoke("count", str(segment), "--db", str(tmp_path / "none.db"))
    assert code == 1 and "No store" in err and "Traceback" not in err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    code, _, err = invoke("count", str(segment), "--db", str(junk))
    assert code == 1 and "not an Audiences store" in err


def test_as_of_must_be_a_date(store: Path, tmp_path: Path) -> None:
    segment = write(tmp_path / "s.yaml", UNSUBSCRIBED)
    code, _, err = invoke("count", str(segment), "--db", str(store), "--as-of", "yesterday")
    assert code == 2 and "--as-of" in err
