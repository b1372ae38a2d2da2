"""``sample`` and ``import`` on every engine: the same layout, the same rows, all or nothing.

Each test runs once per engine (``engine_kind``: SQLite, DuckDB, PostgreSQL) and compares
what the engine holds with what SQLite holds after the same writes.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.engines.base import engine_for, quote_identifier
from store.errors import InputError, StoreError
from store.ingest.importer import import_entity, import_events, import_profiles
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from tui.cli import cli

UNTIL = dt.date(2026, 11, 28)
Location = Callable[[str], str]

PEOPLE = ("id,name,age,score,vip,joined,signed_up\n"
          "p1,Ann,31,1.5,true,2024-01-02,2024-01-02T10:00:00Z\n"
          "p2,Bob,,2,false,2023-05-06,2023-05-06 08:30:00\n"
          "p3,Cy,45,,,2022-12-31,\n"
          "p2,Bobby,29,3.25,true,,\n")  # a repeated id: the last row wins
MORE_PEOPLE = "id,name,city\np4,Dee,Oslo\np1,Annie,Rome\n"
EVENTS = ("profile_id,type,timestamp,sku,amount,quantity\n"
          "p1,purchase,2024-03-01T10:00:00+01:00,A1,10.5,2\n"
          "p2,page_view,2024-03-02 11:00:00.250,,,\n"
          "p1,purchase,2024-03-03,B2,3,1\n"
          "p9,purchase,2024-03-04,A1,7.25,1\n")
PRODUCTS = "sku,category,price\nA1,Shoes,50\nB2,Hats,19.5\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def normal(value: Any) -> Any:
    """A value as every engine stores it: a whole float (DOUBLE event times) as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def contents(location: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (sorted, columns in order) and each table's columns."""
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        tables = ["meta", "attributes", "event_types", "event_fields", "event_type_fields",
                  "entities", "entity_fields", "segments", "profiles", "events",
                  "profile_activity"]
        tables += [row[0] for row in conn.execute("SELECT table_name FROM entities ORDER BY 1")]
        found: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            columns = engine.table_columns(conn, table)
            found[f"{table} columns"] = [tuple(columns)]
            names = ", ".join(quote_identifier(c) for c in columns)
            rows = [tuple(map(normal, row)) for row in
                    conn.execute(f"SELECT {names} FROM {quote_identifier(table)}").fetchall()]
            if table == "meta":
                rows = [row for row in rows
                        if not str(row[0]).endswith("_at") and row[0] != "data_version"]
            found[table] = sorted(rows, key=repr)
        return found
    finally:
        conn.close()


def counts(location: str) -> dict[str, int]:
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("profiles", "events", "attributes", "event_types", "event_fields")}
    finally:
        conn.close()


def catalog(location: str) -> Catalog:
    conn = engine_for(location).open_store(readonly=True)
    try:
        return Catalog.load(conn)
    finally:
        conn.close()


def assert_same(location: str, reference: str) -> None:
    got, want = contents(location), contents(reference)
    assert got.keys() == want.keys()
    for table in want:
        assert got[table] == want[table], table


def import_all(location: str, folder: Path) -> None:
    import_profiles(location, write(folder / "people.csv", PEOPLE))
    import_events(location, write(folder / "events.csv", EVENTS), create_profiles=True)
    import_entity(location, "product", write(folder / "products.csv", PRODUCTS), key="sku",
                  link="sku")
    import_profiles(location, write(folder / "more.csv", MORE_PEOPLE))


# ------------------------------------------------------------------ sample


def test_sample_writes_the_same_rows_as_on_sqlite(engine_kind: str, fresh_location: Location,
                                                  tmp_path: Path) -> None:
    location = fresh_location("sample")
    result = generate_sample(location, profiles=300, seed=3, until=UNTIL)
    found = counts(location)
    assert found["profiles"] == result.profiles == 300
    assert found["events"] == result.events > 300
    assert result.products == 320
    reference = str(tmp_path / "reference.db")
    generate_sample(reference, profiles=300, seed=3, until=UNTIL)
    assert_same(location, reference)


def test_sample_refill_keeps_saved_segments(engine_kind: str, fresh_location: Location) -> None:
    location = fresh_location("refill")
    generate_sample(location, profiles=50, seed=1, until=UNTIL)
    conn = engine_for(location).open_store()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO segments(id, name, description, definition, created_at, updated_at)"
                 " VALUES ('keep', 'Keep', '', 'rule: {}', '2026-01-01', '2026-01-01')")
    conn.commit()
    conn.close()
    result = generate_sample(location, profiles=80, seed=2, until=UNTIL)
    assert result.segments_kept == 1
    assert counts(location)["profiles"] == 80
    assert [row[0] for row in contents(location)["segments"]] == ["keep"]


def test_sample_refuses_other_tables(engine_kind: str, fresh_location: Location) -> None:
    location = fresh_location("foreign")
    engine = engine_for(location)
    if engine.path is not None:
        write(engine.path, "not a store, just notes")
    else:
        conn = engine.connect()
        conn.execute("CREATE TABLE notes (x TEXT)")
        conn.close()
    with pytest.raises(StoreError):
        generate_sample(location, profiles=10, until=UNTIL)
    if engine.path is not None:
        assert engine.path.read_text() == "not a store, just notes"


# ------------------------------------------------------------------ import


def test_imports_give_the_same_catalog_and_rows_as_on_sqlite(
        engine_kind: str, fresh_location: Location, tmp_path: Path) -> None:
    location = fresh_location("imported")
    import_all(location, tmp_path)
    reference = str(tmp_path / "reference.db")
    import_all(reference, tmp_path)
    assert catalog(location) == catalog(reference)
    assert_same(location, reference)
    rows = dict((row[1], row) for row in contents(location)["profiles"])
    assert rows["p2"][2] == "Bobby"  # the last row of a repeated id
    assert rows["p1"][2] == "Annie"  # a later import updates the columns it has...
    assert rows["p1"][3] == 31  # ...and keeps the others
    assert [row[1] for row in sorted(contents(location)["profiles"])] == [
        "p1", "p2", "p3", "p9", "p4"]  # numbered in the order first seen


def test_widening_and_appending_match_sqlite(engine_kind: str, fresh_location: Location,
                                             tmp_path: Path) -> None:
    location = fresh_location("widen")
    reference = str(tmp_path / "reference.db")
    for target in (location, reference):
        import_profiles(target, write(tmp_path / "a.csv", "id,n\np1,1\np2,2\n"))
        import_profiles(target, write(tmp_path / "b.csv", "id,n\np3,2.5\n"))
        import_events(target, write(tmp_path / "e.csv", "profile_id,type,timestamp,q\n"
                                    "p1,view,2024-01-01,1\n"))
        import_events(target, write(tmp_path / "f.csv", "profile_id,type,timestamp,q\n"
                                    "p2,view,2024-01-02,0.5\n"))
    assert catalog(location).attributes["n"].type == "number"
    assert catalog(location).event_fields["q"].type == "number"
    assert_same(location, reference)


def test_an_events_import_that_rebuilds_the_indexes_writes_without_any(
        engine_kind: str, fresh_location: Location, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An events import of at least half the rows already there drops the indexes on events
    that its rows would update before writing, the recommended ones too (``events(type_id,
    profile_pk, ts)``, which the profiles import made on the empty table, and the covering
    indexes of the imported types), so that none is updated row by row; all of them are there
    again after it. The covering index of a type the file does not hold stays."""
    from store.engines.base import Engine
    from store.schema.indexes import missing_indexes

    location = fresh_location("rebuilt")
    import_profiles(location, write(tmp_path / "people.csv", PEOPLE))
    events = write(tmp_path / "events.csv", EVENTS)
    engine_class = type(engine_for(location))
    write_events = engine_class.bulk_insert_column_batches
    present: list[set[str]] = []

    def watched(self: Engine, conn: Any, table: str, columns: Any, batches: Any) -> None:
        if table == "events":
            present.append(set(self.index_columns(conn, "events")))
        write_events(self, conn, table, columns, batches)

    monkeypatch.setattr(engine_class, "bulk_insert_column_batches", watched)
    import_events(location, events, create_profiles=True)  # the first events: a rebuild
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert missing_indexes(conn) == []
        after_first = set(conn.engine.index_columns(conn, "events"))
    finally:
        conn.close()
    import_events(location, events)  # as many again: a rebuild, covering indexes there too
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert missing_indexes(conn) == []
        assert set(conn.engine.index_columns(conn, "events")) == after_first
        catalog = Catalog.load(conn)
        purchases = catalog.event_types["purchase"].id
        kept = {name for name in after_first if name == f"events_type_{purchases}_fields"}
    finally:
        conn.close()
    refunds = "".join(f"p{i % 3 + 1},refund,2024-04-0{i % 9 + 1},{i}.5\n" for i in range(10))
    import_events(location, write(tmp_path / "refunds.csv",
                                  "profile_id,type,timestamp,amount\n" + refunds))
    conn = engine_for(location).open_store(readonly=True)
    try:
        assert missing_indexes(conn) == []
    finally:
        conn.close()
    # another type's rows leave the purchases' covering index (partial) alone
    assert present == [set(), set(), kept]
    if engine_kind != "duckdb":  # (DuckDB keeps no indexes: counts scan columns)
        assert {"events_type_profile_ts", "events_type_ts_profile", "events_profile_ts"} \
            <= after_first
        assert kept  # (the purchases' covering index)


TRICKY_TEXT = ["tab\there", "a\\b", "\\N", "two\nlines", "cr\rhere", "é😀", "plain", ""]


def test_bulk_loads_of_many_chunks_keep_every_value(engine_kind: str, fresh_location: Location,
                                                    tmp_path: Path) -> None:
    """Files of several chunks (the engines join or stream them: one COPY, inserts of many
    chunks), text that COPY escapes, missing values, and event times whole in the first chunks
    and with fractions in the last: the same rows as on SQLite."""
    import csv

    rows = 9_000
    with (tmp_path / "people.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "note", "n", "x"])
        for i in range(rows):
            writer.writerow([f"p{i}", TRICKY_TEXT[i % len(TRICKY_TEXT)],
                             "" if i % 7 == 0 else i, "" if i % 5 == 0 else i / 4])
    with (tmp_path / "events.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["profile_id", "type", "timestamp", "label"])
        for i in range(rows):
            second = f"{i % 60:02d}" + (".5" if i >= 8_500 else "")
            writer.writerow([f"p{i % 100}", "view", f"2024-01-01T10:00:{second}Z",
                             TRICKY_TEXT[i % len(TRICKY_TEXT)]])
    location = fresh_location("chunks")
    reference = str(tmp_path / "reference.db")
    for target in (location, reference):
        import_profiles(target, tmp_path / "people.csv")
        import_profiles(target, tmp_path / "people.csv")  # again: every row updated (staged)
        import_events(target, tmp_path / "events.csv")
    assert_same(location, reference)
    notes = {row[0] for row in contents(location)["profiles"] for row in [row[2:3]]}
    assert notes == {*TRICKY_TEXT[:-1], None}


def test_a_rejected_import_leaves_the_store_as_it_was(engine_kind: str, fresh_location: Location,
                                                      tmp_path: Path) -> None:
    location = fresh_location("rejected")
    import_all(location, tmp_path)
    before = contents(location)
    with pytest.raises(InputError, match="nothing was imported"):
        import_events(location, write(tmp_path / "bad.csv", "profile_id,type,timestamp\n"
                                      "p1,view,2024-01-01\np1,view,yesterday\n"))
    with pytest.raises(InputError, match="nothing was imported"):
        import_profiles(location, write(tmp_path / "clash.csv", "id,age\np1,old\n"))
    assert contents(location) == before


def test_a_failed_write_is_rolled_back(engine_kind: str, fresh_location: Location,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.ingest.importer as importer

    location = fresh_location("failed")
    import_all(location, tmp_path)
    before = contents(location)
    real = importer._Upsert.finish

    def broken(self: importer._Upsert) -> None:
        real(self)
        raise sqlite3.OperationalError("disk is full")

    monkeypatch.setattr(importer._Upsert, "finish", broken)
    with pytest.raises(StoreError, match="Nothing was imported"):
        import_profiles(location, write(tmp_path / "new.csv", "id,name,extra\np7,Gus,1\n"))
    assert contents(location) == before


def test_a_rejected_first_import_creates_no_store(engine_kind: str, fresh_location: Location,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import store.ingest.importer as importer

    location = fresh_location("never")
    with pytest.raises(InputError):
        import_profiles(location, write(tmp_path / "bad.csv", "id,n\n,1\n"))
    assert not engine_for(location).exists()

    def boom(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("disk is full")

    monkeypatch.setattr(importer, "ensure_attribute", boom)
    with pytest.raises(StoreError):
        import_profiles(location, write(tmp_path / "p.csv", "id,n\np1,1\n"))
    assert not engine_for(location).exists()


# ------------------------------------------------------------------ command line


def test_cli_sample_and_import_take_every_engine(engine_kind: str, fresh_location: Location,
                                                 tmp_path: Path) -> None:
    runner = CliRunner()
    location = fresh_location("cli")
    result = runner.invoke(cli, ["sample", "--db", location, "--profiles", "120", "--seed", "4",
                                 "--until", UNTIL.isoformat(), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Wrote 120 profiles" in result.output
    people = write(tmp_path / "people.csv", "id,nickname\nC0000001,Al\nnew1,Zed\n")
    result = runner.invoke(cli, ["import", "profiles", str(people), "--db", location])
    assert result.exit_code == 0, result.output
    assert "Imported 2 profiles (1 new, 1 updated)" in result.output
    assert counts(location)["profiles"] == 121


def test_sample_removes_the_spools_of_killed_runs(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp_path / f"audiences-sample-{ended.pid}-abc"
    live = tmp_path / f"audiences-sample-{os.getpid()}-def"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "block-0.bin").write_bytes(b"events")
    generate_sample(str(tmp_path / "s.db"), profiles=20, seed=1, until=UNTIL)
    assert not stale.exists() and live.exists()


# ------------------------------------------------------------------ after a bulk write


def vacuumed_tables(location: str) -> set[str]:
    """The store's tables that PostgreSQL has vacuumed and analysed since they were written."""
    engine = engine_for(location)
    conn = engine.open_store(readonly=True)
    try:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        return {row[0] for row in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = ?"
            " AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL", (schema,))}
    finally:
        conn.close()


def test_postgres_bulk_writes_leave_the_tables_vacuumed(postgres_url: str, tmp_path: Path) -> None:
    """Fresh rows have no visibility-map bits: without VACUUM, index-only scans visit the heap
    and the first count after a sample, an import or a copy pays for every hint bit."""
    from tests.services.fixtures import fresh_schema

    sampled = fresh_schema(postgres_url)
    generate_sample(sampled, profiles=30, until=UNTIL)
    assert {"profiles", "events", "entity_product"} <= vacuumed_tables(sampled)

    imported = fresh_schema(postgres_url)
    import_profiles(imported, write(tmp_path / "people.csv", PEOPLE))
    assert {"profiles", "events"} <= vacuumed_tables(imported)

    copied = fresh_schema(postgres_url)
    result = CliRunner().invoke(cli, ["copy", "--db", sampled, "--to", copied])
    assert result.exit_code == 0, result.output
    assert {"profiles", "events", "entity_product"} <= vacuumed_tables(copied)


def text_storage(path: Path) -> dict[str, str]:
    """How DuckDB stores each text column of the profiles (after the writer's checkpoint)."""
    conn = engine_for(str(path)).open_store(readonly=True)
    try:
        conn.execute("CHECKPOINT")  # the rows still in the write-ahead log are not compressed yet
        return dict(conn.execute(
            "SELECT column_name, string_agg(DISTINCT compression, '+') FROM pragma_storage_info('profiles')"
            " WHERE segment_type = 'VARCHAR' GROUP BY 1").fetchall())
    finally:
        conn.close()


def test_duckdb_stores_mostly_distinct_text_uncompressed(tmp_path: Path) -> None:
    """A column of emails or of signup times (every value different) is stored uncompressed,
    whoever wrote it (an import, a copy from SQLite, the sample): FSST would make every scan
    decompress it. A column of repeated values (cities, dates among 20,000) keeps DuckDB's
    dictionary; so does a first import too small to judge by."""
    draw = random.Random(7)  # codes drawn from 20,000: most of 3,000 draws differ, not 99%
    rows = "".join(f"p{i},User{i}@Example.com,{('Oslo', 'Rome', 'Lima')[i % 3]},C{draw.randrange(20_000)},"
                   f"{dt.datetime(2020, 1, 1) + dt.timedelta(seconds=37 * i)},"
                   f"{dt.date(1950, 1, 1) + dt.timedelta(days=draw.randrange(20_000))}\n"
                   for i in range(3000))
    people = write(tmp_path / "people.csv", "id,email,city,code,joined,born\n" + rows)
    imported = tmp_path / "imported.duckdb"
    import_profiles(str(imported), people)
    storage = text_storage(imported)
    assert storage["email"] == storage["joined"] == "Uncompressed"
    assert "Uncompressed" not in storage["city"]
    assert "Uncompressed" not in storage["code"]
    assert "Uncompressed" not in storage["born"]

    on_sqlite = tmp_path / "people.db"
    import_profiles(str(on_sqlite), people)
    copied = tmp_path / "copied.duckdb"
    result = CliRunner().invoke(cli, ["copy", "--db", str(on_sqlite), "--to", str(copied)])
    assert result.exit_code == 0, result.output
    assert text_storage(copied)["email"] == text_storage(copied)["joined"] == "Uncompressed"
    assert "Uncompressed" not in text_storage(copied)["city"]
    assert "Uncompressed" not in text_storage(copied)["born"]

    sampled = tmp_path / "sampled.duckdb"
    generate_sample(str(sampled), profiles=2000, until=UNTIL)
    assert text_storage(sampled)["email"] == text_storage(sampled)["signup_date"] == "Uncompressed"
    assert "Uncompressed" not in text_storage(sampled)["country"]

    few = write(tmp_path / "few.csv", "id,email,city,code,joined,born\n" + rows[: rows.index("p10,")])
    small = tmp_path / "small.duckdb"
    import_profiles(str(small), few)
    conn = engine_for(str(small)).open_store(readonly=True)
    try:  # the column was declared as any other: nothing forces its storage
        assert "uncompressed" not in str(conn.execute(
            "SELECT sql FROM duckdb_tables() WHERE table_name = 'profiles'").fetchone()).lower()
    finally:
        conn.close()
