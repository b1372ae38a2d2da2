"""Hardening: the app, imports and activations at the same time, and two activations at once.

The app stays open and responsive while other processes import into its store
and activate audiences from it; two processes activating the same segment at
the same moment both finish (no deadlock, within the busy timeout), and the
audience they leave is exactly the segment's audience.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from store.campaign.store import find_audience, history, member_ids, open_campaign
from store.engines.sqlite import open_store
from store.query import audience
from store.segments.library import resolve_file
from tests.app_store import AS_OF, build, settle
from tui.app import make_app
from tui.screens.audiences import AudiencesScreen
from tui.screens.profiles import ProfilesScreen
from tui.screens.segments import SegmentsScreen

ROOT = Path(__file__).resolve().parent.parent
AS_OF_TEXT = "2025-06-30"
SEGMENT = """id: buyers
name: Buyers
rule:
  any:
    - event: purchase
    - attribute: round
      op: greater_or_equal
      value: {round}
"""
SECONDS = 60  # no single command may take this long: a deadlock would


def cli(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def members_wanted(db: Path, segment: Path) -> set[str]:
    conn = open_store(db, readonly=True)
    try:
        resolved = resolve_file(conn, segment)
        as_of = dt.datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
        ids = dict(conn.execute("SELECT pk, id FROM profiles"))
        page = audience.member_page(conn, resolved, as_of, limit=100_000)
        assert len(page) == audience.count(conn, resolved, as_of)
        return {ids[pk] for pk, _ in page}
    finally:
        conn.close()


def _profiles_file(folder: Path, round_: int) -> Path:
    path = folder / f"round-{round_}.csv"
    path.write_text("id,round\n" + "".join(f"P{i:04d},{round_}\n" for i in range(1, 151, 3))
                    + "".join(f"N{round_}-{i},{round_}\n" for i in range(20)))
    return path


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return build(tmp_path / "shop.db")


def test_two_activations_of_the_same_segment_at_once(store: Path, tmp_path: Path) -> None:
    segment = tmp_path / "buyers.yaml"
    campaign = tmp_path / "campaign.db"
    for round_ in range(1, 4):
        done = cli("import", "profiles", _profiles_file(tmp_path, round_), "--db", store)
        assert done.wait(SECONDS) == 0, done.stderr.read() if done.stderr else ""
        segment.write_text(SEGMENT.format(round=round_))
        pair = [cli("activate", segment, "--db", store, "--campaign-db", campaign, "--as-of",
                    AS_OF_TEXT, "--json") for _ in range(2)]
        results = []
        for process in pair:
            out, err = process.communicate(timeout=SECONDS)
            assert process.returncode == 0, err
            assert "Traceback" not in err
            results.append(json.loads(out))
        wanted = members_wanted(store, segment)
        conn = open_campaign(campaign, readonly=True)
        try:
            found = find_audience(conn, "buyers")
            assert member_ids(conn, found.id) == wanted
            assert found.member_count == len(wanted)
            records = history(conn, found.id)
            assert len(records) == 2 * round_
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
        assert all(r["count"] == len(wanted) for r in results)
        # one of the two did the work, the other found it done (same members, nothing to add)
        assert sorted(r["added"] + r["removed"] for r in results)[0] == 0


def test_concurrent_imports_into_one_store_both_land_or_one_says_locked(store: Path,
                                                                        tmp_path: Path) -> None:
    files = [_profiles_file(tmp_path, round_) for round_ in (7, 8)]
    pair = [cli("import", "profiles", file, "--db", store) for file in files]
    codes = []
    for process in pair:
        _, err = process.communicate(timeout=SECONDS)
        assert "Traceback" not in err
        assert process.returncode == 0 or (process.returncode == 1 and "locked" in err), err
        codes.append(process.returncode)
    conn = open_store(store, readonly=True)
    try:
        for code, round_ in zip(codes, (7, 8), strict=True):
            landed = conn.execute("SELECT count(*) FROM profiles WHERE id LIKE ?",
                                  (f"N{round_}-%",)).fetchone()[0]
            assert landed == (20 if code == 0 else 0)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


async def _responsive(pilot: object, app: object, key: str, screen: type, limit: float = 5.0) -> float:
    started = time.monotonic()
    await pilot.press(key)  # type: ignore[attr-defined]
    await settle(pilot, lambda: isinstance(app.screen, screen), timeout=limit)  # type: ignore[attr-defined]
    return time.monotonic() - started


async def test_the_app_stays_responsive_while_other_processes_write(store: Path, tmp_path: Path) -> None:
    segment = tmp_path / "buyers.yaml"
    segment.write_text(SEGMENT.format(round=1))
    campaign = store.with_name("campaign.db")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot, lambda: app.profile_total is not None)
        # each area once before the writers start: the first visit imports and builds the area,
        # which is start-up work, not waiting on the writers' locks (what the bound below catches)
        for key, screen in (("f3", SegmentsScreen), ("f4", AudiencesScreen), ("f2", ProfilesScreen)):
            await _responsive(pilot, app, key, screen, limit=30)
        running: list[subprocess.Popen[str]] = []
        for round_ in range(1, 6):
            running.append(cli("import", "profiles", _profiles_file(tmp_path, round_), "--db", store))
            running.append(cli("activate", segment, "--db", store, "--campaign-db", campaign,
                               "--as-of", AS_OF_TEXT))
        slowest = 0.0
        deadline = time.monotonic() + SECONDS
        while any(p.poll() is None for p in running):
            assert time.monotonic() < deadline, "the commands did not finish"
            for key, screen in (("f3", SegmentsScreen), ("f4", AudiencesScreen),
                                ("f2", ProfilesScreen)):
                slowest = max(slowest, await _responsive(pilot, app, key, screen))
                await pilot.press("ctrl+r")
                await pilot.pause(0.05)
        for process in running:
            _, err = process.communicate(timeout=SECONDS)
            assert "Traceback" not in err
            assert process.returncode == 0 or (process.returncode == 1 and "locked" in err), err
        assert slowest < 5.0
        # the app sees what the others wrote
        await _responsive(pilot, app, "f4", AudiencesScreen)
        await pilot.press("ctrl+r")
        await asyncio.sleep(0.2)
        def listed() -> bool:
            tables = app.screen.query(DataTable)
            return bool(tables) and tables.first().row_count > 0 and "buyers" in str(
                tables.first().get_row_at(0))

        await settle(pilot, listed, timeout=10)
    conn = open_store(store, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


REFILL = """
import datetime as dt, sys
from store.sample.generator import generate_sample

def progress(phase, fraction):
    if phase == "Generating profiles" and fraction == 0.0:
        print("building", flush=True)

generate_sample(sys.argv[1], profiles=40_000, seed=5, until=dt.date(2026, 6, 30), progress=progress)
print("refilled", flush=True)
"""


def test_a_segment_saved_during_a_sample_refill_is_kept_or_refused(tmp_path: Path) -> None:
    """The refill copies the saved segments, builds a new file, then renames it over the old one:
    a segment saved in between must not be silently lost."""
    from store.sample.generator import generate_sample

    db = tmp_path / "shop.db"
    generate_sample(db, profiles=500, seed=5, until=dt.date(2026, 6, 30))
    segment = tmp_path / "late.yaml"
    segment.write_text("id: late\nname: Saved late\nrule: {attribute: loyalty_tier, op: equals,"
                       " value: gold}\n")
    refill = subprocess.Popen([sys.executable, "-c", REFILL, str(db)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert refill.stdout is not None and refill.stdout.readline().strip() == "building"
    save = cli("segments", "save", segment, "--db", db)
    _, save_err = save.communicate(timeout=SECONDS)
    out, err = refill.communicate(timeout=SECONDS)
    assert refill.returncode == 0 and "refilled" in out, err
    conn = open_store(db, readonly=True)
    try:
        saved = {row[0] for row in conn.execute("SELECT id FROM segments")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 40_000
    finally:
        conn.close()
    if save.returncode == 0:
        assert "late" in saved, "the save reported success but the refill dropped the segment"
    else:  # it waited for the refill, then found the old store locked or replaced
        assert save.returncode == 1 and save_err.startswith("Error: "), save_err
        assert "Traceback" not in save_err and ("locked" in save_err or "damaged" in save_err)
        assert "late" not in saved


def test_a_sample_refill_is_refused_while_another_program_has_the_store_open(tmp_path: Path) -> None:
    from store.errors import StoreError
    from store.sample.generator import generate_sample

    db = tmp_path / "shop.db"
    generate_sample(db, profiles=200, seed=5, until=dt.date(2026, 6, 30))
    other = open_store(db)  # the app, or any program, holding a connection
    try:
        with pytest.raises(StoreError, match="open in another program"):
            generate_sample(db, profiles=300, seed=6, until=dt.date(2026, 6, 30))
        assert other.execute("SELECT count(*) FROM profiles").fetchone()[0] == 200
    finally:
        other.close()
    assert generate_sample(db, profiles=300, seed=6, until=dt.date(2026, 6, 30)).profiles == 300
