"""Hardening: bad import files are rejected as spec/cli.md says, and the store stays exactly as it was.

A rejected import exits 2 with one report (the first bad rows: line, column,
value, why) and leaves the store byte for byte unchanged: the main file has
the same sha256, and its write-ahead log holds no committed change (checked
by folding a copy of the log into a copy of the file and hashing that too).
An import into a store that did not exist leaves no file behind.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tui.cli import cli

SMALL_ROWS = 40_000  # about 2 MB of CSV
LARGE_BYTES = 100 * 2**20


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def state(db: Path, scratch: Path) -> tuple[str, str]:
    """(sha256 of the file, sha256 of the file after folding in a copy of its -wal)."""
    raw = hashlib.sha256(db.read_bytes()).hexdigest()
    scratch.mkdir(exist_ok=True)
    copy = scratch / "copy.db"
    for suffix in ("", "-wal"):
        source = Path(str(db) + suffix)
        target = Path(str(copy) + suffix)
        target.unlink(missing_ok=True)
        if source.exists():
            shutil.copyfile(source, target)
    conn = sqlite3.connect(copy)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    folded = hashlib.sha256(copy.read_bytes()).hexdigest()
    for suffix in ("", "-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    return raw, folded


def assert_rejected(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    before, found, _ = result.output.partition("Error: ")
    # a file of 50 MB or more shows its progress bar first (on stderr, as a terminal would)
    assert found and all(line.startswith("Checking ") for line in before.splitlines()), result.output
    assert result.output.count("Error:") == 1
    for text in expected:
        assert text in result.output, result.output


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A store with three profiles and two events, every connection closed."""
    db = tmp_path / "shop.db"
    (tmp_path / "base.csv").write_text("id,name,score\np1,Ann,3\np2,Bob,4\np3,Cy,5\n")
    (tmp_path / "base-events.csv").write_text(
        "profile_id,type,timestamp,amount\np1,purchase,2026-01-01T10:00:00Z,5\n"
        "p2,purchase,2026-01-02T10:00:00Z,7\n")
    assert run("import", "profiles", tmp_path / "base.csv", "--db", db).exit_code == 0
    assert run("import", "events", tmp_path / "base-events.csv", "--db", db).exit_code == 0
    return db


def _gzip_truncated(text: str) -> bytes:
    data = gzip.compress(text.encode())
    return data[: len(data) * 2 // 3]


BAD_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "truncated.csv.gz": (_gzip_truncated("id,name\n" + "".join(f"q{i},N{i}\n" for i in range(5000))),
                         ("gzip", "truncated")),
    "not-gzip.csv.gz": (b"\x1f\x8b" + b"this is not deflate data" * 10, ("gzip",)),
    "latin1.csv": ("id,name\nq1,Ann\nq2,Jos\xe9\n".encode("latin-1"), ("UTF-8", "line 3")),
    "ragged.csv": (b"id,name,score\nq1,Ann,1\nq2,Bob\nq3,Cy,3,extra\n",
                   ("line 3", "line 4", "2 fields", "4 fields", "nothing was imported")),
    "header-only.csv": (b"id,name,score\n", ("no rows",)),
    "empty.csv": (b"", ("empty",)),
    "blank.csv": (b"\n\n  \n", ("empty",)),
    "no-id.csv": (b"name,score\nAnn,1\n", ("--id-column",)),
    "missing-id.csv": (b"id,name\nq1,Ann\n,Bob\n", ("line 3", "missing profile id")),
    "bad-quotes.csv": (b'id,name\nq1,"Ann\nq2,Bob\n', ("CSV",)),
    "duplicate-header.csv": (b"id,name,name\nq1,a,b\n", ("appears twice",)),
    "type-conflict.csv": (b"id,score\nq1,high\n", ("score", "integer")),
    "truncated.json": (b'[{"id": "q1"}, {"id": "q2"', ("JSON",)),
    "nested.json": (b'[{"id": "q1", "tags": ["a"]}]', ("nested",)),
    "not-objects.ndjson": (b'{"id": "q1"}\n[1, 2]\n"text"\n', ("line 2", "line 3")),
    "bad-line.ndjson": (b'{"id": "q1"}\n{"id": \n', ("line 2", "not valid JSON")),
    "binary.csv": (bytes(range(256)) * 8, ()),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_profiles_file_is_rejected_and_the_store_is_untouched(store: Path, tmp_path: Path,
                                                                   name: str) -> None:
    content, expected = BAD_FILES[name]
    file = tmp_path / name
    file.write_bytes(content)
    before = state(store, tmp_path / "scratch")
    assert_rejected(run("import", "profiles", file, "--db", store), *expected)
    assert state(store, tmp_path / "scratch") == before


@pytest.mark.parametrize("name", ["truncated.csv.gz", "latin1.csv", "ragged.csv", "header-only.csv",
                                  "empty.csv", "truncated.json"])
def test_a_bad_file_does_not_create_a_store(tmp_path: Path, name: str) -> None:
    content, expected = BAD_FILES[name]
    file = tmp_path / name
    file.write_bytes(content)
    db = tmp_path / "new.db"
    assert_rejected(run("import", "profiles", file, "--db", db), *expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_bad_events_are_rejected_with_their_rows(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text("profile_id,type,timestamp,amount\n"
                    "p1,purchase,2026-02-01T10:00:00Z,3\n"
                    "nobody,purchase,2026-02-01T10:00:00Z,3\n"
                    "p2,,2026-02-01T10:00:00Z,3\n"
                    "p3,purchase,yesterday,3\n"
                    "p3,purchase,2026-02-31T10:00:00Z,3\n"
                    "p1,purchase,2026-02-01T10:00:00Z,lots\n")
    before = state(store, tmp_path / "scratch")
    result = run("import", "events", file, "--db", store)
    assert_rejected(result, "line 3", "unknown profile id", "line 4", "line 5", "line 6")
    assert state(store, tmp_path / "scratch") == before


def test_duplicate_ids_in_one_file_are_accepted_and_the_last_row_wins(store: Path,
                                                                      tmp_path: Path) -> None:
    file = tmp_path / "dupes.csv"
    file.write_text("id,name,score\nq1,First,1\nq2,Other,2\nq1,Last,3\np1,Updated,9\n")
    result = run("import", "profiles", file, "--db", store)
    assert result.exit_code == 0, result.output
    assert "(2 new, 1 updated)" in result.output, result.output
    conn = sqlite3.connect(store)
    try:
        rows = dict(conn.execute("SELECT id, name FROM profiles"))
    finally:
        conn.close()
    assert rows == {"p1": "Updated", "p2": "Bob", "p3": "Cy", "q1": "Last", "q2": "Other"}


def test_duplicate_keys_in_an_entity_file_last_row_wins(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "products.csv"
    file.write_text("sku,title\nA,first\nB,b\nA,last\n")
    result = run("import", "entity", "product", file, "--db", store, "--key", "sku", "--link", "sku")
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(store)
    try:
        assert dict(conn.execute("SELECT key, title FROM entity_product")) == {"A": "last", "B": "b"}
    finally:
        conn.close()


def _big_csv(path: Path, target_bytes: int, bad_last: str) -> int:
    """A profiles CSV of about ``target_bytes`` whose very last row is ``bad_last``; returns rows."""
    written = rows = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "first_name", "email", "score", "signup_date", "vip"])
        while written < target_bytes:
            block = io.StringIO()
            batch = csv.writer(block)
            for _ in range(2000):
                i = rows
                batch.writerow([f"b{i:08d}", f"Name{i % 997}", f"user{i}@example.com", i % 1000,
                                f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", "true" if i % 3 else "false"])
                rows += 1
            text = block.getvalue()
            out.write(text)
            written += len(text)
        out.write(bad_last)
    return rows


@pytest.mark.parametrize("bad_last,expected", [
    ("b-last,Ann,ann@example.com,7,2025-01-01\n", "5 fields"),  # ragged
    (",Ann,ann@example.com,7,2025-01-01,true\n", "missing profile id"),
])
def test_a_two_megabyte_file_with_one_bad_last_row_is_rejected(store: Path, tmp_path: Path,
                                                               bad_last: str, expected: str) -> None:
    file = tmp_path / "big.csv"
    rows = _big_csv(file, SMALL_ROWS * 50, bad_last)
    before = state(store, tmp_path / "scratch")
    assert_rejected(run("import", "profiles", file, "--db", store), f"line {rows + 2}", expected,
                    "1 problem")
    assert state(store, tmp_path / "scratch") == before


def test_the_same_file_without_the_bad_row_is_accepted(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "big.csv.gz"
    rows = _big_csv(file, SMALL_ROWS * 50, "")
    result = run("import", "profiles", file, "--db", store)
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(store)
    try:
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == rows + 3
    finally:
        conn.close()


@pytest.mark.slow
def test_a_hundred_megabyte_file_with_one_bad_last_row_is_rejected(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "huge.csv"
    rows = _big_csv(file, LARGE_BYTES, "b-last,Ann\n")
    before = state(store, tmp_path / "scratch")
    assert_rejected(run("import", "profiles", file, "--db", store), f"line {rows + 2}")
    assert state(store, tmp_path / "scratch") == before


def test_a_store_that_is_not_a_store_is_refused_before_reading(tmp_path: Path) -> None:
    file = tmp_path / "p.csv"
    file.write_text("id\nq1\n")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    result = run("import", "profiles", file, "--db", other)
    assert result.exit_code == 1 and "not an Audiences store" in result.output, result.output
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
