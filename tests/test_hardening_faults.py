"""Hardening: a process killed (SIGKILL) at any moment of a write leaves the old state or the new one.

Real subprocesses import, save segments and refill the sample store in a loop,
alternating between two outcomes; each is killed after a random delay, half of
the time aimed at its write transaction. After every kill the store must open,
pass ``PRAGMA integrity_check`` and hold one complete state: never some rows of
one import and some of the next, never a segment without the segment it refers
to, never a lost saved segment. (Activation has its own kill test:
tests/test_activation_kill.py.)
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from store.engines.sqlite import open_store
from store.sample.generator import generate_sample
from store.segments.library import resolve_file, save_segment

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PROFILES = 20_000
EVENTS = 10_000

IMPORT_WORKER = """
import sys
from store.ingest.importer import import_events, import_profiles
db, files = sys.argv[1], sys.argv[2:5]
turn = int(sys.argv[5])
shown = set()

def progress(phase, done, total):
    if phase == "Writing" and phase not in shown:
        shown.add(phase)
        print("writing", flush=True)

print("ready", flush=True)
while True:
    shown.clear()
    print("started", flush=True)
    if turn % 3 == 2:
        import_events(db, files[2], progress=progress)
    else:
        import_profiles(db, files[turn % 3], progress=progress)
    print("committed", flush=True)
    turn += 1
"""

SAVE_WORKER = """
import sys
from store.engines.sqlite import open_store
from store.segments.library import resolve_file, save_segment
db, files, turn = sys.argv[1], sys.argv[2:4], int(sys.argv[4])
print("ready", flush=True)
while True:
    print("started", flush=True)
    conn = open_store(db)
    resolved = resolve_file(conn, files[turn % 2])
    print("writing", flush=True)
    save_segment(conn, resolved)
    conn.close()
    print("committed", flush=True)
    turn += 1
"""

SAMPLE_WORKER = """
import datetime as dt, sys
from store.sample.generator import generate_sample
db, turn = sys.argv[1], int(sys.argv[2])

def progress(phase, fraction):
    if phase == "Building indexes" and fraction >= 1.0:
        print("writing", flush=True)

print("ready", flush=True)
while True:
    print("started", flush=True)
    generate_sample(db, profiles=3000, seed=1 + turn % 2, until=dt.date(2026, 6, 30),
                    progress=progress)
    print("committed", flush=True)
    turn += 1
"""


def _read(process: subprocess.Popen[str], markers: queue.Queue[str], seen: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line.strip())
        markers.put(line.strip())


def kill_loop(script: str, args: Callable[[int], list[str]], kills: int, seed: int,
              check: Callable[[int], None], longest: float) -> Counter[str]:
    """Start the worker ``kills`` times, kill it with SIGKILL, then ``check`` the store."""
    rng = random.Random(seed)
    landed: Counter[str] = Counter()
    for kill in range(kills):
        process = subprocess.Popen([sys.executable, "-c", script, *args(kill)], cwd=ROOT, env=ENV,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        markers: queue.Queue[str] = queue.Queue()
        seen: list[str] = []
        reader = threading.Thread(target=_read, args=(process, markers, seen), daemon=True)
        reader.start()
        try:
            assert markers.get(timeout=60) == "ready", process.stderr.read() if process.stderr else ""
            if kill % 2:  # aim at the write: wait for it to start, then kill a moment later
                while markers.get(timeout=60) != "writing":
                    pass
                time.sleep(rng.uniform(0.0, 0.05))
            else:
                time.sleep(rng.uniform(0.0, longest))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            reader.join(timeout=10)
        assert process.returncode == -signal.SIGKILL, (
            f"the worker stopped by itself: {process.stderr.read() if process.stderr else ''}")
        landed[seen[-1] if seen else "nothing"] += 1
        check(kill)
    return landed


def _integrity(db: Path) -> sqlite3.Connection:
    conn = open_store(db)  # opens (and recovers from the write-ahead log) like any command would
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return conn


# ------------------------------------------------------------------ import


def _import_files(folder: Path) -> list[Path]:
    files = []
    for score in (1, 2):
        path = folder / f"profiles-{score}.csv"
        with path.open("w") as out:
            out.write("id,score,name\n")
            out.writelines(f"k{i:06d},{score},Name{i}\n" for i in range(PROFILES))
        files.append(path)
    events = folder / "events.csv"
    with events.open("w") as out:
        out.write("profile_id,type,timestamp,amount\n")
        out.writelines(f"k{i % PROFILES:06d},purchase,2026-01-{1 + i % 28:02d}T10:00:00Z,{i}\n"
                       for i in range(EVENTS))
    files.append(events)
    return files


def run_import_kills(folder: Path, kills: int, seed: int) -> Counter[str]:
    db = folder / "shop.db"
    files = _import_files(folder)
    from store.ingest.importer import import_profiles

    import_profiles(db, files[0])  # a store with the profiles (score 1) to start from
    history = {"events": 0}

    def check(kill: int) -> None:
        conn = _integrity(db)
        try:
            scores = conn.execute("SELECT score, count(*) FROM profiles GROUP BY score").fetchall()
            assert len(scores) == 1 and scores[0][1] == PROFILES, f"kill {kill}: mixed {scores}"
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            assert events % EVENTS == 0, f"kill {kill}: {events} events, a partial import"
            assert events >= history["events"], "committed events were lost"
            history["events"] = events
        finally:
            conn.close()

    landed = kill_loop(IMPORT_WORKER, lambda kill: [str(db), *map(str, files), str(kill)], kills,
                       seed, check, longest=2.0)
    assert history["events"] >= EVENTS, "no events import ever committed: the test proved nothing"
    return landed


def test_killed_imports_leave_the_old_or_the_new_rows(tmp_path: Path) -> None:
    started = time.monotonic()
    landed = run_import_kills(tmp_path, kills=8, seed=11)
    assert landed["writing"] >= 2, dict(landed)
    assert time.monotonic() - started < 60


# ------------------------------------------------------------------ segment save

SEGMENT = """id: kill-seg
name: Kill {turn}
rule:
  all:
    - segment: {ref}
    - attribute: score
      op: {op}
      value: {value}
"""
HELPER = "id: {ref}\nname: Helper\nrule:\n  attribute: score\n  op: is_not_empty\n"


def test_killed_segment_saves_keep_whole_segments_and_their_references(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    from store.ingest.importer import import_profiles

    (tmp_path / "p.csv").write_text("id,score\n" + "".join(f"s{i},{i}\n" for i in range(50)))
    import_profiles(db, tmp_path / "p.csv")
    files = []
    for turn, (op, value, ref) in enumerate((("greater_than", 10, "helper-a"),
                                             ("less_than", 40, "helper-b"))):
        path = tmp_path / f"kill-seg-{turn}.yaml"
        path.write_text(SEGMENT.format(turn=turn, op=op, value=value, ref=ref))
        (tmp_path / f"{ref}.yaml").write_text(HELPER.format(ref=ref))
        files.append(path)
    (tmp_path / "keeper.yaml").write_text(HELPER.format(ref="keeper"))
    conn = open_store(db)
    save_segment(conn, resolve_file(conn, tmp_path / "helper-a.yaml"))
    save_segment(conn, resolve_file(conn, tmp_path / "keeper.yaml"))
    conn.close()
    from store.segments.yamlio import load_segment_file

    wanted = {load_segment_file(path)[0].name: path for path in files}
    saved_once = {"done": False}

    def check(kill: int) -> None:
        conn = _integrity(db)
        try:
            rows = dict(conn.execute("SELECT id, name FROM segments"))
            assert {"helper-a", "keeper"} <= set(rows), f"kill {kill}: a saved segment was lost"
            if "kill-seg" in rows:
                saved_once["done"] = True
                assert rows["kill-seg"] in wanted
                resolved = open_store(db, readonly=True)
                try:
                    from store.segments.library import resolve_saved

                    resolve_saved(resolved, "kill-seg")  # whole, and its reference is saved too
                finally:
                    resolved.close()
            elif saved_once["done"]:
                raise AssertionError(f"kill {kill}: the saved segment disappeared")
        finally:
            conn.close()

    landed = kill_loop(SAVE_WORKER, lambda kill: [str(db), *map(str, files), str(kill)], 8, 12,
                       check, longest=1.5)
    assert saved_once["done"], dict(landed)


# ------------------------------------------------------------------ sample refill


def test_killed_sample_refills_keep_a_whole_store_and_its_segments(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    generate_sample(db, profiles=3000, seed=1, until=dt.date(2026, 6, 30))
    (tmp_path / "keeper.yaml").write_text("id: keeper\nname: Keeper\nrule:\n  attribute: loyalty_tier\n"
                                          "  op: equals\n  value: gold\n")
    conn = open_store(db)
    save_segment(conn, resolve_file(conn, tmp_path / "keeper.yaml"))
    conn.close()

    def check(kill: int) -> None:
        conn = _integrity(db)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            assert meta["sample_seed"] in ("1", "2") and meta["sample_profiles"] == "3000"
            assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 3000
            assert conn.execute("SELECT id FROM segments").fetchall() == [("keeper",)], (
                f"kill {kill}: the saved segment was lost")
        finally:
            conn.close()

    landed = kill_loop(SAMPLE_WORKER, lambda kill: [str(db), str(kill)], 6, 13, check, longest=2.5)
    assert sum(landed.values()) == 6


@pytest.mark.slow
def test_many_killed_imports(tmp_path: Path) -> None:
    landed = run_import_kills(tmp_path, kills=60, seed=99)
    assert landed["writing"] >= 20, dict(landed)


HALF_WRITE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = DELETE")
conn.execute("PRAGMA cache_size = 1")  # spill changed pages into the file before the commit
conn.execute("BEGIN")
conn.execute("UPDATE profiles SET score = score + 1000")
print("spilled", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("first", ["count", "import"])
def test_a_write_killed_in_rollback_journal_mode_is_rolled_back_on_the_next_open(
        tmp_path: Path, first: str) -> None:
    """A store in rollback-journal mode (as the sample generator leaves it) killed mid-write keeps
    a "hot" journal: the next command, even a read-only one, must undo it, not fail."""
    from click.testing import CliRunner

    from tui.cli import cli

    db = tmp_path / "shop.db"
    from store.ingest.importer import import_profiles

    (tmp_path / "p.csv").write_text("id,score\n" + "".join(f"h{i},{i % 10}\n" for i in range(5000)))
    import_profiles(db, tmp_path / "p.csv")
    process = subprocess.Popen([sys.executable, "-c", HALF_WRITE, str(db)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "spilled"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert Path(f"{db}-journal").exists()
    (tmp_path / "s.yaml").write_text("rule: {attribute: score, op: less_than, value: 10}\n")
    (tmp_path / "q.csv").write_text("id,score\nnew,1\n")
    commands = {"count": ["count", str(tmp_path / "s.yaml"), "--db", str(db), "--json"],
                "import": ["import", "profiles", str(tmp_path / "q.csv"), "--db", str(db)]}
    result = CliRunner().invoke(cli, commands[first])
    assert result.exit_code == 0, result.output
    conn = _integrity(db)
    try:
        assert conn.execute("SELECT max(score) FROM profiles").fetchone()[0] == 9
    finally:
        conn.close()
    if first == "count":
        assert '"count": 5000' in result.output


def test_sigterm_stops_a_command_like_ctrl_c(tmp_path: Path) -> None:
    """``timeout``, cron and systemd stop a command with SIGTERM: it unwinds as Ctrl-C does
    (the half-built store file is removed, a server's query cancelled) and says so, exit 143.
    Before, the process died at once and left ``shop.db.tmp-*`` behind."""
    target = tmp_path / "shop.db"
    process = subprocess.Popen(
        [sys.executable, "-c", "from tui.cli import main; main()", "sample", "--db", str(target),
         "--profiles", "400000", "--quiet"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("shop.db.tmp-*")) and process.poll() is None:
        assert time.monotonic() < deadline, "the sample never started writing"
        time.sleep(0.05)
    assert process.poll() is None, "the sample ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Interrupted; nothing half-written was kept." in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
