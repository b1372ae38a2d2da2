"""``copy``: a store moved to another engine keeps every row, key and saved segment."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.engines.base import engine_for
from store.engines.layout import write_transaction
from store.errors import InputError, StoreError
from store.ingest import copy as copying
from store.ingest.copy import copy_store
from store.ingest.importer import import_entity, import_events, import_profiles
from store.sample.generator import generate_sample
from store.schema.activity import refresh_activity
from store.schema.indexes import missing_indexes
from tests.services.fixtures import fresh_schema
from tests.test_engines_write import Location, contents, counts, write
from tui.cli import cli

UNTIL = dt.date(2026, 11, 28)


def save_segment(location: str, segment_id: str) -> None:
    conn = engine_for(location).open_store()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO segments(id, name, description, definition, created_at, updated_at)"
                 " VALUES (?, ?, '', 'rule: {}', '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
                 (segment_id, segment_id.title()))
    conn.commit()
    conn.close()


@pytest.fixture
def source(tmp_path: Path) -> str:
    """An SQLite store with sample data, an imported entity, widened columns and a segment."""
    path = str(tmp_path / "source.db")
    generate_sample(path, profiles=200, seed=7, until=UNTIL)
    import_profiles(path, write(tmp_path / "p.csv", "id,score\nC0000001,1\nnew-1,2\n"))
    import_profiles(path, write(tmp_path / "q.csv", "id,score\nC0000002,2.5\n"))
    import_events(path, write(tmp_path / "e.csv", "profile_id,type,timestamp,store\n"
                              "new-1,visit,2024-05-01T10:00:00.5Z,S1\n"))
    import_entity(path, "shop", write(tmp_path / "s.csv", "store,city\nS1,Oslo\n"), key="store",
                  link="store")
    save_segment(path, "keep-me")
    return path


def test_round_trip_through_every_engine(source: str, tmp_path: Path, postgres_url: str) -> None:
    duck = str(tmp_path / "copy.duckdb")
    pg = fresh_schema(postgres_url)
    back = str(tmp_path / "back.db")
    want = contents(source)
    for origin, target in ((source, duck), (duck, pg), (pg, back)):
        result = copy_store(engine_for(origin), engine_for(target))
        assert result.rows["profiles"] == 201 and result.rows["segments"] == 1
        assert contents(target) == want, target
    conn = engine_for(back).open_store(readonly=True)
    try:
        assert missing_indexes(conn) == []  # the destination's indexes are built
    finally:
        conn.close()


def test_copy_to_each_engine_keeps_writing(source: str, engine_kind: str,
                                           fresh_location: Location, tmp_path: Path) -> None:
    target = fresh_location("copy")
    copy_store(engine_for(source), engine_for(target))
    assert contents(target) == contents(source)
    for location in (source, target):  # new rows are numbered after the copied ones
        import_profiles(location, write(tmp_path / "n.csv", "id,score\nnew-2,3\n"))
        import_events(location, write(tmp_path / "m.csv", "profile_id,type,timestamp\n"
                                      "new-2,visit,2024-06-01\n"))
    assert contents(target) == contents(source)


def test_a_store_with_data_is_only_replaced_when_asked(source: str, engine_kind: str,
                                                       fresh_location: Location,
                                                       tmp_path: Path) -> None:
    target = fresh_location("busy")
    generate_sample(target, profiles=30, seed=1, until=UNTIL)
    before = contents(target)
    with pytest.raises(StoreError, match="--replace"):
        copy_store(engine_for(source), engine_for(target))
    assert contents(target) == before
    copy_store(engine_for(source), engine_for(target), replace=True)
    assert contents(target) == contents(source)


def test_a_failed_copy_leaves_the_destination_as_it_was(
        source: str, engine_kind: str, fresh_location: Location,
        monkeypatch: pytest.MonkeyPatch) -> None:
    target = fresh_location("kept")
    generate_sample(target, profiles=30, seed=1, until=UNTIL)
    before = contents(target)
    real = copying._copy_keyed

    def broken(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise sqlite3.OperationalError("disk is full")

    monkeypatch.setattr(copying, "_copy_keyed", broken)
    with pytest.raises(StoreError, match="Nothing was copied"):
        copy_store(engine_for(source), engine_for(target), replace=True)
    assert contents(target) == before
    fresh = fresh_location("fresh")
    with pytest.raises(StoreError):
        copy_store(engine_for(source), engine_for(fresh))
    assert not engine_for(fresh).exists()


def test_copy_reads_in_batches(source: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copying, "BATCH_ROWS", 7)
    conn = engine_for(source).connect()  # keys far apart: the copy steps over the gap
    with write_transaction(conn):
        conn.execute("UPDATE events SET pk = 5000000000 WHERE pk = (SELECT max(pk) FROM events)")
        refresh_activity(conn)  # as a writer of events does
    conn.close()
    seen: list[tuple[str, int, int]] = []
    target = str(tmp_path / "batched.duckdb")
    copy_store(engine_for(source), engine_for(target), progress=lambda *a: seen.append(a))
    assert contents(target) == contents(source)
    profiles = [done for table, done, _total in seen if table == "profiles"]
    assert profiles[:3] == [0, 7, 14] and profiles[-1] == 201
    assert seen[-1] == ("indexes", 1, 1)


def test_refusals(source: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="being copied"):
        copy_store(engine_for(source), engine_for(source))
    notes = write(tmp_path / "notes.db", "not a store")
    with pytest.raises(StoreError, match="copy does not overwrite"):
        copy_store(engine_for(source), engine_for(notes), replace=True)
    assert notes.read_text() == "not a store"
    with pytest.raises(StoreError):
        copy_store(engine_for(tmp_path / "missing.db"), engine_for(tmp_path / "x.duckdb"))
    assert not (tmp_path / "x.duckdb").exists()


def test_cli_copy(source: str, tmp_path: Path) -> None:
    runner = CliRunner()
    target = str(tmp_path / "cli.duckdb")
    result = runner.invoke(cli, ["copy", "--db", source, "--to", target])
    assert result.exit_code == 0, result.output
    assert "Copied 201 profiles" in result.stdout and "1 saved segments" in result.stdout
    assert counts(target) == counts(source)
    again = runner.invoke(cli, ["copy", "--db", source, "--to", target])
    assert again.exit_code == 1 and "--replace" in again.stderr
    replaced = runner.invoke(cli, ["copy", "--db", source, "--to", target, "--replace", "-q"])
    assert replaced.exit_code == 0, replaced.output
    same = runner.invoke(cli, ["copy", "--db", source, "--to", source])
    assert same.exit_code == 2
    wrong = runner.invoke(cli, ["copy", "--db", source, "--to", "mysql://db/x"])
    assert wrong.exit_code == 2
