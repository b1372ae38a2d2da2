"""``audiences-tui import ...`` through click: options, summaries, exit codes, clean errors."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tui.cli import cli


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def people(tmp_path: Path, db: Path) -> Path:
    result = run("import", "profiles", write(tmp_path / "p.csv", "id,name\np1,Ann\np2,Bob\n"),
                 "--db", db)
    assert result.exit_code == 0, result.output
    return db


def test_profiles_summary_and_creation(tmp_path: Path, db: Path) -> None:
    result = run("import", "profiles", write(tmp_path / "p.csv", "id,age\np1,3\np2,4\n"),
                 "--db", db)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Imported 2 profiles (2 new, 0 updated) into {db} in ")
    assert result.output.rstrip().endswith(" s")
    assert count(db, "SELECT count(*) FROM profiles") == 2


def test_id_column_option(tmp_path: Path, db: Path) -> None:
    source = write(tmp_path / "p.csv", "customer,age\nc1,3\n")
    missing = run("import", "profiles", source, "--db", db)
    assert_clean_failure(missing, 2)
    assert "--id-column" in missing.output and "customer, age" in missing.output
    ok = run("import", "profiles", source, "--db", db, "--id-column", "customer")
    assert ok.exit_code == 0, ok.output


def test_events_summary_with_types(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv",
                   "profile_id,type,timestamp,sku,amount\n"
                   "p1,purchase,2024-03-01T10:00:00Z,A1,10\n"
                   "p2,view,2024-03-01T11:00:00Z,,\n"
                   "p2,cart,2024-03-01T12:00:00Z,A1,\n")
    result = run("import", "events", source, "--db", people)
    assert result.exit_code == 0, result.output
    assert "Imported 3 events (3 types) into" in result.output


def test_type_option_and_custom_columns(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "who,at\np1,2024-01-01\n")
    result = run("import", "events", source, "--db", people, "--type", "login",
                 "--profile-column", "who", "--time-column", "at")
    assert result.exit_code == 0, result.output
    assert "(1 type)" in result.output
    both = run("import", "events", source, "--db", people, "--type", "x", "--type-column", "y")
    assert_clean_failure(both, 2)
    assert "not both" in both.output


def test_type_column_option(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,kind,timestamp\np1,open,2024-01-01\n")
    result = run("import", "events", source, "--db", people, "--type-column", "kind")
    assert result.exit_code == 0, result.output


def test_unknown_profile_needs_create_profiles(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,type,timestamp\nzz,view,2024-01-01\n")
    before = hashlib.sha256(people.read_bytes()).hexdigest()
    refused = run("import", "events", source, "--db", people)
    assert_clean_failure(refused, 2)
    assert "line 2, column 'profile_id', value 'zz': unknown profile id" in refused.output
    assert hashlib.sha256(people.read_bytes()).hexdigest() == before
    created = run("import", "events", source, "--db", people, "--create-profiles")
    assert created.exit_code == 0, created.output
    assert "1 new profile)" in created.output
    assert count(people, "SELECT count(*) FROM profiles") == 3


def test_bad_rows_report_and_unchanged_store(tmp_path: Path, people: Path) -> None:
    before = hashlib.sha256(people.read_bytes()).hexdigest()
    source = write(tmp_path / "e.csv",
                   "profile_id,type,timestamp,amount\np1,buy,yesterday,3\np1,buy,2024-01-01\n")
    result = run("import", "events", source, "--db", people)
    assert_clean_failure(result, 2)
    assert result.output.startswith("Error: ")
    assert "line 2, column 'timestamp', value 'yesterday'" in result.output
    assert "line 3" in result.output and "3 fields" in result.output
    assert hashlib.sha256(people.read_bytes()).hexdigest() == before


def test_conflicting_type_exit_2(tmp_path: Path, people: Path) -> None:
    ok = run("import", "profiles", write(tmp_path / "a.csv", "id,age\np1,30\n"), "--db", people)
    assert ok.exit_code == 0
    result = run("import", "profiles", write(tmp_path / "b.csv", "id,age\np2,old\n"),
                 "--db", people)
    assert_clean_failure(result, 2)
    assert "'age'" in result.output and "integer in the store" in result.output


@pytest.mark.parametrize(("name", "content"), [
    ("empty.csv", ""), ("header.csv", "id,name\n"), ("ragged.csv", "id,name\np1\n"),
    ("bad.json", "[{\"id\": 1},"), ("nested.json", '[{"id": 1, "a": {"b": 2}}]'),
])
def test_bad_files_exit_2_without_creating_the_store(tmp_path: Path, db: Path, name: str,
                                                     content: str) -> None:
    result = run("import", "profiles", write(tmp_path / name, content), "--db", db)
    assert_clean_failure(result, 2)
    assert not db.exists()


def test_missing_file_exit_2(tmp_path: Path, db: Path) -> None:
    result = run("import", "profiles", tmp_path / "nope.csv", "--db", db)
    assert_clean_failure(result, 2)


def test_not_a_store_exit_1(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(b"this is not sqlite at all" * 100)
    result = run("import", "profiles", write(tmp_path / "p.csv", "id\np1\n"), "--db", other)
    assert_clean_failure(result, 1)
    assert result.output.startswith("Error: ")


def test_gzip_json_and_ndjson(tmp_path: Path, db: Path) -> None:
    packed = tmp_path / "p.csv.gz"
    packed.write_bytes(gzip.compress(b"id,n\np1,1\n"))
    assert run("import", "profiles", packed, "--db", db).exit_code == 0
    assert run("import", "profiles", write(tmp_path / "p.json", '[{"id": "p2", "n": 2}]'),
               "--db", db).exit_code == 0
    assert run("import", "profiles", write(tmp_path / "p.ndjson", '{"id": "p3", "n": 3}\n'),
               "--db", db).exit_code == 0
    assert count(db, "SELECT sum(n) FROM profiles") == 6


def test_entity_command(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "products.csv", "sku,category\nA1,Shoes\n")
    result = run("import", "entity", "product", source, "--db", people, "--key", "sku",
                 "--link", "sku")
    assert result.exit_code == 0, result.output
    assert "Imported 1 product row into" in result.output
    missing = run("import", "entity", "product", source, "--db", people, "--key", "code",
                  "--link", "sku")
    assert_clean_failure(missing, 2)
    assert "no column 'code'" in missing.output
    no_link = run("import", "entity", "product", source, "--db", people, "--key", "sku")
    assert_clean_failure(no_link, 2)


def test_time_format_option(tmp_path: Path, people: Path) -> None:
    source = write(tmp_path / "e.csv", "profile_id,type,timestamp\np1,v,01/03/2024\n")
    result = run("import", "events", source, "--db", people, "--time-format", "%d/%m/%Y")
    assert result.exit_code == 0, result.output
    wrong = run("import", "events", source, "--db", people, "--time-format", "dd/mm/yyyy")
    assert_clean_failure(wrong, 2)


def test_db_falls_back_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env.db"
    monkeypatch.setenv("AUDIENCES_DB", str(target))
    result = run("import", "profiles", write(tmp_path / "p.csv", "id\np1\n"))
    assert result.exit_code == 0, result.output
    assert target.exists()


def test_progress_bar_without_a_terminal(tmp_path: Path, db: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.commands.import_ as command

    monkeypatch.setattr(command, "PROGRESS_MIN_BYTES", 0)  # as if the file were big
    result = run("import", "profiles", write(tmp_path / "p.csv", "id\np1\n"), "--db", db)
    assert result.exit_code == 0, result.output
    assert "Imported 1 profile (1 new, 0 updated)" in result.output
