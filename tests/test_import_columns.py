"""``import profiles --boolean COL --schema FILE``: the user's types, labels and groups over
inference, on every engine (``engine_kind``), all or nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.engines.base import engine_for
from store.errors import InputError
from store.ingest.columns import ColumnSpec, load_column_specs, with_booleans
from store.query import audience
from store.schema.catalog import Catalog
from store.segments.describe import describe
from store.segments.library import resolve_segment
from store.segments.yamlio import load_segment_text
from tui.cli import cli

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TELCO = ("customerID,gender,SeniorCitizen,Partner,StreamingTV,MonthlyCharges,Contract\n"
         "7590-VHVEG,Female,0,Yes,No,29.85,Month-to-month\n"
         "5575-GNVDE,Male,1,no,Yes,56.95,One year\n"
         "3668-QPYBK,Male,1,YES,,53.85,Month-to-month\n"
         "7795-CFOCW,Male,0,No,No internet service,42.30,Two year\n")
SCHEMA = ("MonthlyCharges: {type: number, label: Monthly charges, group: Billing,"
          " xdm: _acme.billing.monthlyCharges}\n"
          "Contract: Contract type\n"
          "gender: {group: Demographics, description: As given at sign-up}\n")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_boolean_and_schema_columns_on_every_engine(tmp_path: Path, engine_kind: str,
                                                    fresh_location: Callable[[str], str]) -> None:
    """0/1 and yes/no columns become booleans ("Senior citizen is true" counts the 1s), the
    schema's labels and groups reach the catalog, labels without one read as words."""
    db = fresh_location("telco")
    code, output = run("import", "profiles", str(write(tmp_path / "telco.csv", TELCO)),
                       "--db", db, "--id-column", "customerID", "--boolean", "SeniorCitizen",
                       "--boolean", "Partner", "--schema", str(write(tmp_path / "s.yaml", SCHEMA)))
    assert code == 0, output
    conn = engine_for(db).open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        attributes = catalog.attributes
        assert attributes["SeniorCitizen"].type == "boolean"
        assert attributes["Partner"].type == "boolean"
        assert attributes["StreamingTV"].type == "string"  # three values: stays text
        assert (attributes["MonthlyCharges"].display_label, attributes["MonthlyCharges"].group) \
            == ("Monthly charges", "Billing")
        assert attributes["Contract"].display_label == "Contract type"
        assert attributes["MonthlyCharges"].xdm == "_acme.billing.monthlyCharges"
        assert (attributes["gender"].group, attributes["gender"].description) == (
            "Demographics", "As given at sign-up")
        assert attributes["SeniorCitizen"].display_label == "Senior citizen"
        assert attributes["StreamingTV"].display_label == "Streaming TV"
        seniors, _ = load_segment_text(
            "id: s\nname: Seniors\nrule:\n  attribute: SeniorCitizen\n  op: is_true\n")
        resolved = resolve_segment(conn, seniors, catalog=catalog)
        assert describe(seniors.rule, catalog) == "Senior citizen is true"
        assert audience.count(conn, resolved, AS_OF) == 2
        partners, _ = load_segment_text(
            "id: p\nname: Partners\nrule:\n  attribute: Partner\n  op: is_true\n")
        assert audience.count(conn, resolve_segment(conn, partners, catalog=catalog),
                              AS_OF) == 2
    finally:
        conn.close()


def test_a_value_that_is_no_boolean_rejects_the_file(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    code, output = run("import", "profiles", str(write(tmp_path / "telco.csv", TELCO)),
                       "--db", db, "--id-column", "customerID", "--boolean", "StreamingTV")
    assert code == 2
    assert "line 5, column 'StreamingTV', value 'No internet service': not a yes/no value" \
        in output
    assert not Path(db).exists()  # nothing written, not even the store


@pytest.mark.parametrize(("schema", "message"), [
    ("Nope: {type: boolean}\n", "has no column 'Nope'"),
    ("gender: {colour: red}\n", "unknown key 'colour'"),
    ("gender: {type: bool}\n", "type 'bool' is not one of"),
    ("- gender\n", "one entry per column"),
    ("gender: [\n", "not valid YAML"),
    ("customerID: {type: integer}\n", "is the id column"),
    ("MonthlyCharges: {type: integer}\n", "value '29.85': a number value, but the column is"
                                           " declared integer"),
])
def test_a_schema_it_cannot_use_is_one_clear_message(tmp_path: Path, schema: str,
                                                     message: str) -> None:
    code, output = run("import", "profiles", str(write(tmp_path / "telco.csv", TELCO)),
                       "--db", str(tmp_path / "t.db"), "--id-column", "customerID",
                       "--schema", str(write(tmp_path / "s.yaml", schema)))
    assert code == 2, output
    assert message in output, output
    assert "Traceback" not in output


def test_a_declared_type_must_agree_with_the_store(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    csv = write(tmp_path / "telco.csv", TELCO)
    assert run("import", "profiles", str(csv), "--db", db, "--id-column", "customerID")[0] == 0
    code, output = run("import", "profiles", str(csv), "--db", db, "--id-column", "customerID",
                       "--boolean", "SeniorCitizen")
    assert code == 2
    assert "declared boolean but attribute 'SeniorCitizen' is an integer in the store" in output


def test_specs_merge_and_refuse_two_types(tmp_path: Path) -> None:
    specs = load_column_specs(write(tmp_path / "s.yaml", "A: {type: string, label: Aa}\n"))
    assert specs == {"A": ColumnSpec("string", "Aa")}
    assert with_booleans({"B": ColumnSpec(label="Bee")}, ["B"]) == {
        "B": ColumnSpec("boolean", "Bee")}
    with pytest.raises(InputError, match="keep one"):
        with_booleans(specs, ["A"])
