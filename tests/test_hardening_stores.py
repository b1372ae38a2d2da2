"""Hardening: stores that are not stores, damaged, too new, read-only, locked or on a full disk.

Every command that touches the profile store (count, import, segments save,
activate, sample) and the app's start-up check meet each kind of bad store.
Each ends with one clear message and exit 1 (or succeeds where reading is all
it needs), never a traceback, and the file is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store.errors import StoreError
from store.sample.generator import generate_sample
from tui.cli import cli
from tui.launch import check_store

ROOT = Path(__file__).resolve().parent.parent
SEGMENT = "id: everyone-vip\nname: VIPs\nrule:\n  attribute: loyalty_tier\n  op: in\n  value: [gold]\n"
PROFILES_CSV = "id,nickname\nz1,Zed\nz2,Zoe\n"


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "shop.db"
    generate_sample(path, profiles=200, seed=3, until=dt.date(2026, 6, 30))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bad_store(kind: str, folder: Path, good: Path) -> Path:
    path = folder / "shop.db"
    if kind == "not-sqlite":
        path.write_text("id,name\nthis is a CSV file, not a database\n" * 50)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "header-only":
        path.write_bytes(good.read_bytes()[:100])
    elif kind == "zeroed-pages":
        damaged = bytearray(good.read_bytes())
        damaged[4096 * 2: 4096 * 40] = bytes(4096 * 38)
        path.write_bytes(bytes(damaged))
    elif kind == "foreign-sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices(total) VALUES (9.5)")
        conn.commit()
        conn.close()
    elif kind == "newer-version":
        shutil.copyfile(good, path)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
        conn.close()
    elif kind == "bad-version":
        shutil.copyfile(good, path)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE meta SET value = 'two' WHERE key = 'schema_version'")
        conn.commit()
        conn.close()
    else:
        raise AssertionError(kind)
    return path


BAD_KINDS = {
    "not-sqlite": "not an Audiences store",
    "truncated": "",
    "header-only": "",
    "zeroed-pages": "",
    "foreign-sqlite": "not an Audiences store",
    "newer-version": "newer version",
    "bad-version": "unknown version",
}


def commands(folder: Path, db: Path) -> dict[str, list[str]]:
    segment = folder / "vip.yaml"
    segment.write_text(SEGMENT)
    profiles = folder / "p.csv"
    profiles.write_text(PROFILES_CSV)
    campaign = folder / "campaigns" / "campaign.db"
    return {
        "count": ["count", str(segment), "--db", str(db), "--as-of", "2026-06-30"],
        "import": ["import", "profiles", str(profiles), "--db", str(db)],
        "segments save": ["segments", "save", str(segment), "--db", str(db)],
        "segments list": ["segments", "list", "--db", str(db)],
        "activate": ["activate", str(segment), "--db", str(db), "--campaign-db", str(campaign),
                     "--as-of", "2026-06-30"],
        "sample": ["sample", "--db", str(db), "--profiles", "20", "--quiet", "--until", "2026-06-30"],
    }


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def assert_failed_cleanly(result: Result, code: int, *expected: str) -> None:
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output and "unexpected" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert output.startswith("Error: ") and output.count("Error:") == 1, output
    for text in expected:
        assert text in output, output


def snapshot(path: Path) -> str:
    return sha(path)


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_every_command_refuses_a_bad_store_and_leaves_it_alone(kind: str, tmp_path: Path,
                                                               good_store: Path) -> None:
    db = _bad_store(kind, tmp_path, good_store)
    before = snapshot(db)
    for name, args in commands(tmp_path, db).items():
        result = run(args)
        assert_failed_cleanly(result, 1, BAD_KINDS[kind])
        assert snapshot(db) == before, f"{name} changed the {kind} store"
        assert not Path(str(db) + "-wal").exists()
    with pytest.raises(StoreError) as raised:
        check_store(db)
    assert BAD_KINDS[kind] in str(raised.value)
    launched = run(["--db", str(db)])  # the app itself: refused before any screen is drawn
    assert_failed_cleanly(launched, 1, BAD_KINDS[kind])
    assert snapshot(db) == before


def test_a_missing_store_is_named_and_not_created_by_readers(tmp_path: Path) -> None:
    db = tmp_path / "nowhere.db"
    cmds = commands(tmp_path, db)
    for name in ("count", "segments save", "segments list", "activate"):
        assert_failed_cleanly(run(cmds[name]), 1, "No store at")
        assert not db.exists(), name
    with pytest.raises(StoreError, match="No store at"):
        check_store(db)


@pytest.fixture()
def read_only_store(tmp_path: Path, good_store: Path) -> Iterator[Path]:
    db = tmp_path / "shop.db"
    shutil.copyfile(good_store, db)
    os.chmod(db, 0o444)
    yield db
    os.chmod(db, 0o644)


def test_a_read_only_store_can_be_read_but_never_written(read_only_store: Path, tmp_path: Path) -> None:
    db = read_only_store
    cmds = commands(tmp_path, db)
    os.chmod(db, 0o644)  # a saved segment to try to delete
    assert run(cmds["segments save"]).exit_code == 0
    os.chmod(db, 0o444)
    before = sha(db)
    for name in ("count", "segments list", "activate"):
        result = run(cmds[name])
        assert result.exit_code == 0, f"{name}: {result.output}"
    for name in ("import", "segments save", "sample"):
        assert_failed_cleanly(run(cmds[name]), 1, "read-only")
        assert sha(db) == before, name
    assert_failed_cleanly(run(["segments", "delete", "everyone-vip", "--db", str(db)]), 1, "read-only")
    assert_failed_cleanly(run(["segments", "delete", "nothing", "--db", str(db)]), 2, "No saved segment")
    check_store(db)  # the app opens it (to browse)
    assert sha(db) == before
    assert os.stat(db).st_mode & 0o777 == 0o444


def test_a_read_only_campaign_store_refuses_activation(good_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    shutil.copyfile(good_store, db)
    cmds = commands(tmp_path, db)
    assert run(cmds["activate"]).exit_code == 0
    campaign = tmp_path / "campaigns" / "campaign.db"
    os.chmod(campaign, 0o444)
    try:
        before = sha(campaign)
        assert_failed_cleanly(run(cmds["activate"]), 1, "read-only")
        assert sha(campaign) == before
    finally:
        os.chmod(campaign, 0o644)


# ------------------------------------------------------------------ locks held by another program

LOCKER = """
import sqlite3, sys, time
held = []
for path in sys.argv[2:]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS lock_probe(x)")
    held.append(conn)
print("locked", flush=True)
time.sleep(float(sys.argv[1]))
for conn in held:
    conn.execute("ROLLBACK")
print("released", flush=True)
"""


@contextlib.contextmanager
def locked(seconds: float, *paths: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the write lock of each file for ``seconds``."""
    process = subprocess.Popen([sys.executable, "-c", LOCKER, str(seconds), *map(str, paths)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def cli_process(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_store_locked_for_longer_than_the_busy_timeout_says_locked(good_store: Path,
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    shutil.copyfile(good_store, db)
    cmds = commands(tmp_path, db)
    assert run(cmds["activate"]).exit_code == 0  # so that the campaign store exists to be locked
    campaign = tmp_path / "campaigns" / "campaign.db"
    conn = sqlite3.connect(db)
    profiles_before = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
    segments_before = conn.execute("SELECT count(*) FROM segments").fetchone()[0]
    conn.close()
    # Held for longer than start-up plus the busy timeout of every writer, even on a loaded
    # machine (the writers are four programs starting at once); released when they are done.
    with locked(30, db, campaign):
        started = time.monotonic()
        writers = {name: cli_process(cmds[name])
                   for name in ("import", "segments save", "activate", "sample")}
        reader = cli_process(cmds["count"])
        out, err = reader.communicate(timeout=30)
        assert reader.returncode == 0, err  # readers are not blocked by a writer (WAL)
        for name, process in writers.items():
            out, err = process.communicate(timeout=40)
            assert process.returncode == 1, f"{name}: {out} {err}"
            assert "Traceback" not in err and err.startswith("Error: "), f"{name}: {err}"
            assert "locked" in err or "open in another program" in err, f"{name}: {err}"
        waited = time.monotonic() - started
    assert 4.5 <= waited < 30, waited  # each writer waited for the busy timeout, not for ever
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == profiles_before
        assert conn.execute("SELECT count(*) FROM segments").fetchone()[0] == segments_before
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_a_lock_released_within_the_busy_timeout_is_waited_for(good_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    shutil.copyfile(good_store, db)
    cmds = commands(tmp_path, db)
    with locked(1.5, db):
        writers = {name: cli_process(cmds[name]) for name in ("import", "segments save")}
        for name, process in writers.items():
            out, err = process.communicate(timeout=40)
            assert process.returncode == 0, f"{name}: {out} {err}"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM profiles WHERE id IN ('z1', 'z2')").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM segments WHERE id = 'everyone-vip'").fetchone()[0] == 1
    finally:
        conn.close()


# ------------------------------------------------------------------ a full disk


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_fails_cleanly_and_loses_nothing(small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "shop.db"
    first = tmp_path / "first.csv"
    first.write_text("id,name\n" + "".join(f"a{i},N{i}\n" for i in range(200)))
    assert run(["import", "profiles", str(first), "--db", str(db)]).exit_code == 0
    segment = tmp_path / "named.yaml"
    segment.write_text("id: named\nname: Named\nrule: {attribute: name, op: is_not_empty}\n")
    assert run(["segments", "save", str(segment), "--db", str(db)]).exit_code == 0
    campaign = small_disk / "campaign.db"
    few = tmp_path / "few.yaml"
    few.write_text("id: named\nname: Named\nrule: {attribute: name, op: in, value: [N1, N2]}\n")
    activate = ["activate", str(few), "--db", str(db), "--campaign-db", str(campaign)]
    assert run(activate).exit_code == 0
    more = tmp_path / "more.csv"
    more.write_text("id,name,bio\n" + "".join(f"b{i},M{i},{'x' * 200}\n" for i in range(20_000)))
    filler = _fill(small_disk)
    before = sha(db)
    result = run(["import", "profiles", str(more), "--db", str(db)])
    assert_failed_cleanly(result, 1, "full")
    big_segment = tmp_path / "big.yaml"
    big_segment.write_text("id: big\nname: Big\ndescription: " + "d" * 200_000
                           + "\nrule: {attribute: name, op: is_not_empty}\n")
    result = run(["segments", "save", str(big_segment), "--db", str(db)])
    assert_failed_cleanly(result, 1)
    assert "full" in result.output or "disk" in result.output, result.output
    campaign_before = sha(campaign)
    result = run(["activate", str(segment), "--db", str(db), "--campaign-db", str(campaign),
                  "--field", "name", "--field", "id"])
    assert result.exit_code == 1, result.output  # the new members do not fit
    if result.exit_code != 0:  # refused, and the old members are kept
        assert_failed_cleanly(result, 1)
        assert "full" in result.output or "disk" in result.output, result.output
        assert sha(campaign) == campaign_before
    filler.unlink()
    assert sha(db) == before
    conn = sqlite3.connect(campaign)
    try:
        members = conn.execute("SELECT count(*) FROM audience_members").fetchone()[0]
        assert members == (2 if result.exit_code else 200)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 200
        assert [r[0] for r in conn.execute("SELECT id FROM segments")] == ["named"]
    finally:
        conn.close()
    counted = run(["count", "named", "--db", str(db), "--json"])
    assert counted.exit_code == 0 and '"count": 200' in counted.output, counted.output
