"""Hardening, second round: hostile paths, bytes and timings on the command line.

- Output (``segments export -o``, ``audiences export -o``, ``sample``/``copy``
  into a symlink): a regular file is replaced atomically, a symlink's target is
  written (the link stays), a named pipe or a device is written into, ``-o -``
  is standard output.
- Stores and inputs must be regular files or new paths: ``/dev/null``, a named
  pipe or a folder is refused before anything opens it (no ``-journal``
  beside ``/dev/null``, no read that blocks on a pipe).
- Arguments are bytes: a file name that is not UTF-8 works; a text argument
  (an id, a name, a type) that is not UTF-8 is refused with exit 2 before
  anything is written; hypothesis throws arbitrary bytes at every argument.
- A JSON object naming one key twice is refused with its line.
- A refused import or save leaves a store exactly as ``sample`` left it,
  byte for byte (the switch to WAL waits for a committed write).
- A new campaign store locked by another program is waited for (the busy
  timeout); racing first activations both succeed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.errors import StoreError
from store.files import output_file, printable
from store.sample.generator import generate_sample
from tui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-06-30"
SEGMENT = "id: gold\nname: Gold members\nrule:\n  attribute: loyalty_tier\n  op: in\n  value: [gold]\n"
NOT_UTF8 = os.fsdecode(b"caf\xe9-\xff")  # what Python makes of these bytes in argv: lone surrogates


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [os.fspath(a) for a in args])


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def refused(result: Result, code: int, *expected: str) -> str:
    """The one ``Error:`` line of a command that failed cleanly with ``code``."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output and "unexpected" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr.count("Error:") == 1, output
    for text in expected:
        assert text in output, output
    return output


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store exactly as ``sample`` leaves it (copied by each test that writes)."""
    path = tmp_path_factory.mktemp("sampled") / "shop.db"
    generate_sample(path, profiles=300, seed=5, until=dt.date(2026, 6, 30))
    return path


@pytest.fixture()
def shop(sampled: Path, tmp_path: Path) -> Path:
    """A copy of the sample store with one saved segment and one activated audience."""
    db = tmp_path / "shop.db"
    shutil.copyfile(sampled, db)
    (tmp_path / "gold.yaml").write_text(SEGMENT)
    ok("segments", "save", tmp_path / "gold.yaml", "--db", db)
    ok("activate", "--segment", "gold", "--db", db, "--as-of", AS_OF)
    return db


EXPORTS = {
    "segments export": ("segments", "export", "gold"),
    "audiences export": ("audiences", "export", "gold"),
}


def _expected(shop: Path, command: str) -> str:
    return ok(*EXPORTS[command], "--db", shop).stdout


# ------------------------------------------------------------------ output


@pytest.mark.parametrize("command", sorted(EXPORTS))
def test_an_export_into_a_symlink_writes_its_target_and_keeps_the_link(shop: Path, tmp_path: Path,
                                                                       command: str) -> None:
    target = tmp_path / "real" / "out.txt"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    ok(*EXPORTS[command], "--db", shop, "-o", link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == _expected(shop, command)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the old file's permissions are kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temporary file left


@pytest.mark.parametrize("command", sorted(EXPORTS))
def test_an_export_into_a_named_pipe_reaches_its_reader(shop: Path, tmp_path: Path,
                                                        command: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = ok(*EXPORTS[command], "--db", shop, "-o", fifo)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a pipe, not replaced by a file
    assert received == [_expected(shop, command).encode()]
    assert "Error" not in result.output


@pytest.mark.parametrize("command", sorted(EXPORTS))
def test_an_export_to_dash_is_standard_output(shop: Path, tmp_path: Path, command: str) -> None:
    result = ok(*EXPORTS[command], "--db", shop, "-o", "-")
    assert result.stdout == _expected(shop, command)
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("command", sorted(EXPORTS))
def test_an_export_to_dev_stdout_writes_into_it_not_over_it(shop: Path, command: str) -> None:
    """In a real process (the device is the process's own standard output)."""
    done = subprocess.run([sys.executable, "-m", "tui.cli", *EXPORTS[command], "--db", str(shop),
                           "-o", "/dev/stdout"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == _expected(shop, command)
    assert Path("/dev/stdout").is_symlink()


def test_a_failed_export_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), output_file(target) as stream:
        stream.write("half")
        raise RuntimeError("the export failed half way")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_an_export_into_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Cannot write"), output_file(tmp_path / "no" / "x.csv") as s:
        s.write("x")


@pytest.mark.engines("sqlite", "duckdb")
def test_sample_and_copy_into_a_symlink_replace_its_target(engine_kind: str, tmp_path: Path) -> None:
    suffix = ".duckdb" if engine_kind == "duckdb" else ".db"
    target = tmp_path / "real" / f"shop{suffix}"
    target.parent.mkdir()
    link = tmp_path / f"link{suffix}"
    link.symlink_to(target)
    ok("sample", "--db", link, "--profiles", "30", "--until", AS_OF, "--quiet")
    assert link.is_symlink() and target.is_file()
    ok("sample", "--db", link, "--profiles", "40", "--until", AS_OF, "--quiet")  # a refill too
    assert link.is_symlink()
    copy_target = tmp_path / "real" / f"copy{suffix}"
    copy_link = tmp_path / f"copy-link{suffix}"
    copy_link.symlink_to(copy_target)
    ok("copy", "--db", link, "--to", copy_link, "--quiet")
    assert copy_link.is_symlink() and copy_target.is_file()
    assert ok("count", _everyone(tmp_path), "--db", copy_link).stdout.startswith("40 (")


def _everyone(folder: Path) -> Path:
    path = folder / "everyone.yaml"
    path.write_text("id: everyone\nname: Everyone\nrule:\n  attribute: id\n  op: is_not_empty\n")
    return path


# ------------------------------------------------------------------ stores that are not files


def _devnull_leftovers() -> set[str]:
    return {name for name in os.listdir("/dev") if name.startswith("null-")}


@pytest.fixture()
def clean_dev() -> Iterator[None]:
    before = _devnull_leftovers()
    yield
    left = _devnull_leftovers() - before
    for name in left:  # a regression must not leave files in /dev for the next test run
        with contextlib.suppress(OSError):
            os.unlink(f"/dev/{name}")
    assert not left, f"left beside /dev/null: {left}"


def test_dev_null_as_a_campaign_store_is_refused_and_nothing_is_left(shop: Path,
                                                                     clean_dev: None) -> None:
    for args in (("activate", "--segment", "gold", "--db", shop, "--as-of", AS_OF),
                 ("audiences", "list"), ("audiences", "export", "gold"),
                 ("deliveries", "create", "gold", "--name", "n", "--body", "b")):
        refused(run(*args, "--campaign-db", "/dev/null"), 1, "/dev/null is a device",
                "not a campaign store file")


@pytest.mark.engines("sqlite", "duckdb")
def test_dev_null_as_a_profile_store_is_refused_by_every_command(engine_kind: str, tmp_path: Path,
                                                                 clean_dev: None) -> None:
    db = "/dev/null" if engine_kind == "sqlite" else "duckdb:/dev/null"
    (tmp_path / "p.csv").write_text("id,name\np1,Ann\n")
    campaign = ("--campaign-db", tmp_path / "c.db")
    for args in (("count", _everyone(tmp_path)), ("import", "profiles", tmp_path / "p.csv"),
                 ("segments", "save", _everyone(tmp_path)), ("segments", "list"),
                 ("sample", "--profiles", "10", "--quiet"), ("activate", _everyone(tmp_path), *campaign)):
        refused(run(*args, "--db", db), 1, "/dev/null is a device")
    assert not (tmp_path / "c.db").exists()


def _pipe_commands(folder: Path, fifo: Path, shop: Path) -> dict[str, tuple[list[str | Path], int]]:
    return {
        "store": (["count", _everyone(folder), "--db", fifo], 1),
        "campaign store": (["audiences", "list", "--db", shop, "--campaign-db", fifo], 1),
        "import file": (["import", "profiles", fifo, "--db", shop], 2),
        "segment file": (["count", fifo, "--db", shop], 2),
        "saved segment file": (["segments", "save", fifo, "--db", shop], 2),
        "template file": (["deliveries", "create", "gold", "--db", shop, "--name", "n",
                           "--body-file", fifo], 2),
    }


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(shop: Path, tmp_path: Path) -> None:
    """In real processes, each with a deadline: a read of a pipe with no writer never ends."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for name, (args, code) in _pipe_commands(tmp_path, fifo, shop).items():
        done = subprocess.run([sys.executable, "-m", "tui.cli", *(os.fspath(a) for a in args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == code, f"{name}: {done.stderr}"
        assert "named pipe" in done.stderr and done.stderr.count("Error:") == 1, f"{name}: {done.stderr}"


# ------------------------------------------------------------------ bytes in arguments


def test_file_names_that_are_not_utf8_work(shop: Path, tmp_path: Path) -> None:
    folder = tmp_path / NOT_UTF8
    folder.mkdir()
    db = folder / f"shop-{NOT_UTF8}.db"
    shutil.copyfile(shop, db)
    segment = folder / f"gold-{NOT_UTF8}.yaml"
    segment.write_text(SEGMENT.replace("id: gold", "id: gold2"))
    profiles = folder / f"p-{NOT_UTF8}.csv"
    profiles.write_text("id,name\nq1,Ann\n")
    campaign = folder / f"c-{NOT_UTF8}.db"
    assert "/shop-caf\\xe9-\\xff.db in" in ok("import", "profiles", profiles, "--db", db).stdout
    ok("count", segment, "--db", db, "--as-of", AS_OF)
    ok("segments", "save", segment, "--db", db)
    ok("activate", segment, "--db", db, "--campaign-db", campaign, "--as-of", AS_OF, "--json")
    out = folder / f"out-{NOT_UTF8}.csv"
    result = ok("audiences", "export", "gold2", "--campaign-db", campaign, "-o", out)
    assert out.read_text().startswith("profile_id,") and "\\xe9" in result.stderr
    ok("segments", "export", "gold2", "--db", db, "-o", folder / f"s-{NOT_UTF8}.yaml")
    # a name SQL cannot hold: the activation reads the store through Python instead of ATTACH
    assert ok("activate", segment, "--db", db, "--campaign-db", campaign,
              "--as-of", AS_OF).stdout.startswith("Activated")
    refused(run("count", folder / "missing.yaml", "--db", db), 2, "no such segment file")
    refused(run("count", segment, "--db", f"{folder}/x.duckdb"), 2, "UTF-8")


TEXT_ARGUMENTS = {
    "segments show": ["segments", "show", NOT_UTF8],
    "segments delete": ["segments", "delete", NOT_UTF8],
    "segments export": ["segments", "export", NOT_UTF8],
    "segments rename": ["segments", "rename", "gold", NOT_UTF8],
    "count id": ["count", NOT_UTF8],
    "activate --segment": ["activate", "--segment", NOT_UTF8],
    "activate --name": ["activate", "--segment", "gold", "--name", NOT_UTF8],
    "activate --field": ["activate", "--segment", "gold", "--field", NOT_UTF8],
    "audiences show": ["audiences", "show", NOT_UTF8],
    "audiences export": ["audiences", "export", NOT_UTF8],
    "import --type": ["import", "events", "EVENTS", "--type", NOT_UTF8],
    "import --id-column": ["import", "profiles", "PROFILES", "--id-column", NOT_UTF8],
    "import entity name": ["import", "entity", NOT_UTF8, "PROFILES", "--key", "id", "--link", "sku"],
    "deliveries --name": ["deliveries", "create", "gold", "--name", NOT_UTF8, "--body", "hi"],
    "deliveries --body": ["deliveries", "create", "gold", "--name", "n", "--body", NOT_UTF8],
    "--as-of": ["count", "SEGMENT", "--as-of", NOT_UTF8],
}


@pytest.mark.parametrize("name", sorted(TEXT_ARGUMENTS))
def test_a_text_argument_that_is_not_utf8_is_refused_and_nothing_is_written(
        shop: Path, tmp_path: Path, name: str) -> None:
    (tmp_path / "e.csv").write_text("profile_id,timestamp\np1,2026-01-01T00:00:00Z\n")
    (tmp_path / "p.csv").write_text("id,name\nq1,Ann\n")
    files = {"EVENTS": str(tmp_path / "e.csv"), "PROFILES": str(tmp_path / "p.csv"),
             "SEGMENT": str(tmp_path / "gold.yaml")}
    args = [files.get(a, a) for a in TEXT_ARGUMENTS[name]]
    campaign = tmp_path / "new-campaign.db"
    before = sha(shop)
    if args[0] in ("activate", "audiences", "deliveries"):
        args += ["--campaign-db", str(campaign)]
    result = run(*args, "--db", shop)
    output = refused(result, 2)
    assert "not UTF-8" in output or "no such segment file" in output, output
    assert "caf\\xe9-\\xff" in output  # the bytes are shown, escaped
    assert sha(shop) == before
    assert not campaign.exists()


ARGUMENT_BYTES = st.binary(max_size=12).filter(lambda b: b"\x00" not in b).map(os.fsdecode)
TEMPLATES = [
    ["count", "{}", "--as-of", AS_OF], ["count", "{SEGMENT}", "--as-of", "{}"], ["sql", "{}"],
    ["segments", "show", "{}"], ["segments", "export", "{}"], ["segments", "export", "gold", "-o", "{}"],
    ["segments", "save", "{}"], ["segments", "delete", "{}"], ["segments", "rename", "gold", "{}"],
    ["activate", "{}"], ["activate", "--segment", "{}"], ["activate", "--segment", "gold", "--name", "{}"],
    ["activate", "--segment", "gold", "--field", "{}"],
    ["activate", "--segment", "gold", "--campaign-db", "{}"],
    ["audiences", "show", "{}"], ["audiences", "export", "{}"], ["audiences", "export", "gold", "-o", "{}"],
    ["audiences", "deactivate", "{}"], ["deliveries", "create", "gold", "--name", "{}", "--body", "b"],
    ["deliveries", "list", "--audience", "{}"], ["deliveries", "preview", "{}"],
    ["import", "profiles", "{}"], ["import", "events", "{EVENTS}", "--type", "{}"],
    ["import", "events", "{EVENTS}", "--profile-column", "{}"],
    ["import", "entity", "{}", "{PROFILES}", "--key", "id", "--link", "sku"],
    ["segments", "list", "--db", "{}"],
    ["pql", "{}"], ["overlap", "{}", "gold"], ["trend", "{}", "--every", "1w", "--last", "4w"],
    ["segments", "import", "{}"], ["segments", "import", "{SEGMENT}", "--id", "{}"],
    ["refresh", "{}"], ["audiences", "schedule", "{}", "daily"], ["audiences", "schedule", "gold", "{}"],
    ["activate", "--segment", "gold", "--split", "{}"],
]


@pytest.fixture(scope="module")
def fuzz_folder(sampled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(sampled, folder / "shop.db")
    (folder / "gold.yaml").write_text(SEGMENT)
    (folder / "e.csv").write_text("profile_id,timestamp\np1,2026-01-01T00:00:00Z\n")
    (folder / "p.csv").write_text("id,name\nq1,Ann\n")
    ok("segments", "save", folder / "gold.yaml", "--db", folder / "shop.db")
    ok("activate", "--segment", "gold", "--db", folder / "shop.db", "--as-of", AS_OF)
    return folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(TEMPLATES), value=ARGUMENT_BYTES)
def test_fuzz_every_argument_with_arbitrary_bytes(fuzz_folder: Path, template: list[str],
                                                  value: str) -> None:
    """Whatever bytes an argument holds (in 35 positions of every command): exit 0, 1 or 2 with
    a message, never an unexpected error or a traceback, and a refused command leaves no empty
    campaign store and no temporary file."""
    files = {"{SEGMENT}": "gold.yaml", "{EVENTS}": "e.csv", "{PROFILES}": "p.csv"}
    args = [value if a == "{}" else files.get(a, a) for a in template]
    campaign = fuzz_folder / "campaign-fuzz.db"
    if "--db" not in template:
        args += ["--db", "shop.db"]
    if template[0] in ("activate", "audiences", "deliveries", "refresh") and "--campaign-db" not in template:
        args += ["--campaign-db", str(campaign)]
    with contextlib.chdir(fuzz_folder):
        result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exit_code in (0, 1, 2), (args, output)
    assert "Traceback" not in output and "unexpected" not in output, (args, output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    if result.exit_code:
        assert "Error" in output or "Usage" in output, (args, output)
        assert not campaign.exists() or campaign.stat().st_size > 0, args
    for leftover in fuzz_folder.glob("*.partial"):
        raise AssertionError(f"temporary file left: {printable(leftover)}")


# ------------------------------------------------------------------ JSON keys


@pytest.mark.parametrize(("name", "content", "line"), [
    ("array.json", '[{"id": "C1", "score": 1, "score": 2}]', 1),
    ("lines.ndjson", '{"id": "C1", "score": 1}\n{"id": "C2", "score": 1, "score": 2}\n', 2),
    ("pretty.json", '[\n  {"id": "C1"},\n  {"id": "C2",\n   "score": 1,\n   "score": 2}\n]\n', 3),
])
def test_a_json_object_with_a_repeated_key_is_refused_with_its_line(shop: Path, tmp_path: Path,
                                                                    name: str, content: str,
                                                                    line: int) -> None:
    file = tmp_path / name
    file.write_text(content)
    before = sha(shop)
    refused(run("import", "profiles", file, "--db", shop), 2, f"line {line}", "'score' appears twice")
    assert sha(shop) == before


# ------------------------------------------------------------------ byte for byte


def _bad_segment(folder: Path) -> Path:
    path = folder / "bad.yaml"
    path.write_text("id: bad\nname: Bad\nrule:\n  attribute: no_such_attribute\n  op: is_set\n")
    return path


@pytest.mark.engines("sqlite", "duckdb")
def test_refused_writes_leave_a_sampled_store_byte_for_byte(engine_kind: str, tmp_path: Path) -> None:
    """A store exactly as ``sample`` left it (SQLite: in rollback-journal mode): a refused
    command changes no byte (it checks on a read-only connection before opening the store
    for writing, which would switch it to WAL mode)."""
    db = tmp_path / ("shop.duckdb" if engine_kind == "duckdb" else "shop.db")
    ok("sample", "--db", db, "--profiles", "50", "--until", AS_OF, "--quiet")
    (tmp_path / "bad.csv").write_text("id,score\nq1,1\nq2,high\nq3\n")
    (tmp_path / "dup.json").write_text('[{"id": "q1", "id": "q2"}]')
    before = sha(db)
    refused(run("import", "profiles", tmp_path / "bad.csv", "--db", db), 2)
    refused(run("import", "profiles", tmp_path / "dup.json", "--db", db), 2)
    refused(run("segments", "save", _bad_segment(tmp_path), "--db", db), 2)
    refused(run("segments", "delete", "no-such-segment", "--db", db), 2)
    refused(run("segments", "rename", "no-such-segment", "New", "--db", db), 2)
    refused(run("segments", "rename", "everyone", " ", "--db", db), 2)
    assert sha(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bad.csv", "dup.json", "bad.yaml",
                                                                 db.name])
    if engine_kind == "sqlite":  # the first write that is not refused switches it to WAL
        ok("segments", "save", _everyone(tmp_path), "--db", db)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


# ------------------------------------------------------------------ a new campaign store, locked


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS lock_probe(x)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def locked_new_file(path: Path, seconds: float) -> Iterator[None]:
    """Another process holding the write lock of a new (zero-byte) SQLite file."""
    process = subprocess.Popen([sys.executable, "-c", LOCKER, str(path), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        assert path.stat().st_size == 0
        yield
    finally:
        process.kill()
        process.wait(timeout=10)


def _activate(shop: Path, campaign: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli", "activate", "--segment", "gold", "--db",
                           str(shop), "--campaign-db", str(campaign), "--as-of", AS_OF],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_new_campaign_store_locked_briefly_is_waited_for(shop: Path, tmp_path: Path) -> None:
    campaign = tmp_path / "new-campaign.db"
    with locked_new_file(campaign, 2.0):
        done = _activate(shop, campaign)
    assert done.returncode == 0, done.stderr
    assert "Activated" in done.stdout


def test_a_new_campaign_store_locked_for_long_waits_the_busy_timeout(shop: Path,
                                                                     tmp_path: Path) -> None:
    campaign = tmp_path / "new-campaign.db"
    with locked_new_file(campaign, 15.0):
        started = time.monotonic()
        done = _activate(shop, campaign)
        waited = time.monotonic() - started
    assert done.returncode == 1 and "locked" in done.stderr, done.stderr
    assert waited >= 5.0, waited  # the documented busy timeout, not a fraction of it


def _create_at(kind: str, path: str, start: float) -> str:
    from store.campaign.store import open_campaign
    from store.engines.sqlite import create_store

    while time.time() < start:
        pass
    try:
        (open_campaign if kind == "campaign" else create_store)(path).close()
    except Exception as exc:  # reported to the test, which fails with it
        return f"{type(exc).__name__}: {exc}"
    return "ok"


RACES = 40
FORMATS = {"campaign": "audiences-tui-campaign", "profile": "audiences-tui-store"}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_racing_first_openings_of_a_new_store_both_succeed(tmp_path: Path, kind: str,
                                                          request: pytest.FixtureRequest) -> None:
    """Two processes creating the same campaign store (or SQLite profile store) at the same
    moment, again and again (300 times in the slow run): both succeed, and the store is whole."""
    races = 300 if request.config.getoption("--run-slow") else RACES
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        for race in range(races):
            path = str(tmp_path / f"race-{race}.db")
            start = time.time() + 0.3
            outcomes = pool.starmap(_create_at, [(kind, path, start), (kind, path, start)])
            assert outcomes == ["ok", "ok"], (race, outcomes)
            conn = sqlite3.connect(path)
            try:
                assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (
                    FORMATS[kind],)
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            finally:
                conn.close()


def test_racing_first_activations_both_succeed(shop: Path, tmp_path: Path) -> None:
    campaign = tmp_path / "raced.db"
    command = [sys.executable, "-m", "tui.cli", "activate", "--segment", "gold", "--db", str(shop),
               "--campaign-db", str(campaign), "--as-of", AS_OF]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert out.startswith("Activated")


# ------------------------------------------------------------------ messages


RELATIVE = ("id: rel\nname: Relative\nrule:\n  all:\n    - attribute: id\n      op: is_not_empty\n"
            "    - attribute: signup_date\n      op: after\n      value: {ago: 5, unit: days}\n")


def test_a_relative_date_off_the_calendar_at_the_as_of_date_names_file_and_line(
        shop: Path, tmp_path: Path) -> None:
    segment = tmp_path / "rel.yaml"
    segment.write_text(RELATIVE)
    for args in (("count", segment), ("activate", segment, "--campaign-db", tmp_path / "c.db"),
                 ("sql", segment)):
        refused(run(*args, "--db", shop, "--as-of", "0001-01-01"), 2,
                "rel.yaml:9: rule.all[1].value: the relative date falls outside the calendar"
                " (as of 0001-01-01)")
    ok("segments", "save", segment, "--db", shop)
    refused(run("count", "rel", "--db", shop, "--as-of", "0001-01-02"), 2,
            "saved segment 'rel':9: rule.all[1].value")
    assert not (tmp_path / "c.db").exists()


def test_a_refused_sample_prints_only_the_error(tmp_path: Path) -> None:
    """With the progress display on (no --quiet): no blank line before the error."""
    result = run("sample", "--db", tmp_path / "new.db", "--until", "0001-01-01", "--profiles", "20")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --until must be between"), repr(result.stderr)
    assert not (tmp_path / "new.db").exists()


def test_a_segment_file_over_the_limit_says_what_the_limit_is(shop: Path, tmp_path: Path) -> None:
    segment = tmp_path / "big.yaml"
    segment.write_text(SEGMENT + "#" * 5_000_001 + "\n")
    refused(run("count", segment, "--db", shop), 2, "too large", "at most 5,000,000")
