"""The sample data generator and ``audiences-tui sample``.

One 50,000-profile store (about three seconds) serves the checks that need a
realistic size; determinism and refills use small stores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from store.engines.sqlite import open_store
from store.errors import InputError, StoreError
from store.sample import generator as sample
from store.schema.catalog import Catalog
from store.schema.values import day_start_epoch
from tui.cli import cli

UNTIL = dt.date(2026, 11, 28)
SEGMENTS_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "segments"
BIG = 50_000


def table_digest(path: Path) -> dict[str, str]:
    """A hash of every table's rows in a fixed order (meta without its timestamps)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name")]
        digests = {}
        for table in tables:
            width = len(conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
            query = f'SELECT * FROM "{table}" ORDER BY {", ".join(map(str, range(1, width + 1)))}'
            if table == "meta":
                query = "SELECT * FROM meta WHERE key NOT LIKE '%_at' ORDER BY key"
            digest = hashlib.sha256()
            for row in conn.execute(query):
                digest.update(repr(row).encode())
            digests[table] = digest.hexdigest()
        return digests
    finally:
        conn.close()


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.db"
    sample.generate_sample(path, profiles=BIG, seed=42, until=UNTIL)
    return path


@pytest.fixture()
def big(big_store: Path) -> Iterator[sqlite3.Connection]:
    conn = open_store(big_store, readonly=True)
    yield conn
    conn.close()


def scalar(conn: sqlite3.Connection, sql: str, *params: object) -> Any:
    return conn.execute(sql, params).fetchone()[0]


# ------------------------------------------------------------------ determinism


def test_same_arguments_give_identical_tables(tmp_path: Path) -> None:
    first = sample.generate_sample(tmp_path / "a.db", profiles=400, seed=5, until=UNTIL)
    second = sample.generate_sample(tmp_path / "b.db", profiles=400, seed=5, until=UNTIL)
    assert (first.profiles, first.events) == (second.profiles, second.events)
    assert table_digest(tmp_path / "a.db") == table_digest(tmp_path / "b.db")
    # Another process (other hash seed, fresh name pools) writes the same rows too.
    script = ("import datetime, sys; from store.sample.generator import generate_sample;"
              f" generate_sample(sys.argv[1], profiles=400, seed=5, until=datetime.date({UNTIL.year},"
              f" {UNTIL.month}, {UNTIL.day}))")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "c.db")], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "123"})
    assert table_digest(tmp_path / "c.db") == table_digest(tmp_path / "a.db")


def test_other_seed_or_date_gives_other_data(tmp_path: Path) -> None:
    base = table_digest_of(tmp_path, "base", seed=5, until=UNTIL)
    assert table_digest_of(tmp_path, "seed", seed=6, until=UNTIL)["events"] != base["events"]
    shifted = table_digest_of(tmp_path, "date", seed=5, until=UNTIL - dt.timedelta(days=1))
    assert shifted["events"] != base["events"]


def table_digest_of(folder: Path, name: str, seed: int, until: dt.date) -> dict[str, str]:
    sample.generate_sample(folder / f"{name}.db", profiles=300, seed=seed, until=until)
    return table_digest(folder / f"{name}.db")


# ------------------------------------------------------------------ shape of the data


def test_row_counts_are_as_asked(big: sqlite3.Connection) -> None:
    assert scalar(big, "SELECT count(*) FROM profiles") == BIG
    events = scalar(big, "SELECT count(*) FROM events")
    assert 8 * BIG <= events <= 13 * BIG
    products = scalar(big, "SELECT count(*) FROM entity_product")
    assert 200 <= products <= 500
    idle = scalar(big, "SELECT count(*) FROM profiles WHERE pk NOT IN"
                       " (SELECT profile_pk FROM events)")
    assert 0.03 * BIG < idle < 0.3 * BIG
    per_type = dict(big.execute(
        "SELECT t.name, count(*) FROM events e JOIN event_types t ON t.id = e.type_id GROUP BY 1"))
    assert set(per_type) == set(sample.EVENT_TYPES)
    assert per_type["page_view"] > per_type["add_to_cart"] > per_type["purchase"]
    assert per_type["email_sent"] > per_type["email_open"] > per_type["email_click"]


def test_activity_is_skewed(big: sqlite3.Connection) -> None:
    counts = sorted(r[0] for r in big.execute(
        "SELECT count(*) FROM events GROUP BY profile_pk"))
    median = counts[len(counts) // 2]
    assert counts[-1] > 20 * median  # a few heavy users, many light ones


def test_events_span_two_years_up_to_until(big: sqlite3.Connection) -> None:
    first_allowed = day_start_epoch(dt.date(2024, 11, 29))
    last_allowed = day_start_epoch(UNTIL) + 86399
    low, high = big.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    assert first_allowed <= low < first_allowed + 86400
    assert last_allowed - 86400 < high <= last_allowed
    early = scalar(big, "SELECT count(*) FROM events e JOIN profiles p ON p.pk = e.profile_pk"
                        " WHERE e.ts < CAST(strftime('%s', p.signup_date) AS INTEGER)")
    assert early == 0  # nobody acts before signing up


def test_stored_values_follow_the_storage_rules(big: sqlite3.Connection) -> None:
    ids = [r[0] for r in big.execute("SELECT id FROM profiles ORDER BY pk LIMIT 3")]
    assert ids == ["C0000001", "C0000002", "C0000003"]
    for column in ("first_name", "last_name", "email", "gender", "city", "loyalty_tier"):
        assert scalar(big, f"SELECT count(*) FROM profiles WHERE {column} = ''") == 0
    assert scalar(big, "SELECT count(*) - count(DISTINCT email) - sum(email IS NULL)"
                       " FROM profiles") == 0
    assert scalar(big, "SELECT count(*) FROM profiles WHERE email <> lower(email)") == 0
    genders = {r[0] for r in big.execute("SELECT DISTINCT gender FROM profiles")}
    assert genders == {"female", "male", "other", None}
    tiers = {r[0] for r in big.execute("SELECT DISTINCT loyalty_tier FROM profiles")}
    assert tiers == {"bronze", "silver", "gold", "platinum", None}
    for column in ("email_opt_in", "sms_opt_in"):
        values = {r[0] for r in big.execute(f"SELECT DISTINCT {column} FROM profiles")}
        assert values <= {0, 1, None}
    assert {r[0] for r in big.execute("SELECT DISTINCT sms_opt_in FROM profiles")} == {0, 1, None}
    signup = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\Z")
    for (text,) in big.execute("SELECT signup_date FROM profiles LIMIT 500"):
        assert signup.match(text)
    oldest, youngest = big.execute(
        "SELECT min(birth_date), max(birth_date) FROM profiles").fetchone()
    assert dt.date.fromisoformat(youngest) <= dt.date(UNTIL.year - 18, UNTIL.month, UNTIL.day)
    assert dt.date.fromisoformat(oldest) > dt.date(UNTIL.year - 91, UNTIL.month, UNTIL.day)
    share_missing = scalar(big, "SELECT avg(birth_date IS NULL) FROM profiles")
    assert 0.01 < share_missing < 0.06


def test_markets_and_mailboxes_are_skewed(big: sqlite3.Connection) -> None:
    countries = [r[0] for r in big.execute(
        "SELECT country FROM profiles GROUP BY 1 ORDER BY count(*) DESC")]
    assert countries[:2] == ["US", "GB"]
    domains = [r[0] for r in big.execute(
        "SELECT substr(email, instr(email, '@') + 1) FROM profiles WHERE email IS NOT NULL"
        " GROUP BY 1 ORDER BY count(*) DESC LIMIT 2")]
    assert domains == ["gmail.com", "yahoo.com"]


def test_purchases_are_order_lines(big: sqlite3.Connection) -> None:
    purchase = scalar(big, "SELECT id FROM event_types WHERE name = 'purchase'")
    bad = scalar(big, "SELECT count(*) FROM events WHERE type_id = ? AND (amount IS NULL"
                      " OR amount <= 0 OR quantity < 1 OR order_id IS NULL OR sku IS NULL)",
                 purchase)
    assert bad == 0
    multi_line = scalar(big, "SELECT count(*) FROM (SELECT order_id FROM events"
                             " WHERE type_id = ? GROUP BY 1 HAVING count(*) > 1)", purchase)
    assert multi_line > 0
    spenders = scalar(big, "SELECT count(*) FROM profiles p WHERE lifetime_value + 0.01 < "
                           " (SELECT coalesce(sum(amount), 0) FROM events e"
                           "  WHERE e.profile_pk = p.pk AND e.type_id = ?)", purchase)
    assert spenders == 0  # lifetime value includes every purchase in the history


# ------------------------------------------------------------------ catalog


def test_every_catalog_entry_has_a_label(big: sqlite3.Connection) -> None:
    for table in ("attributes", "event_types", "event_fields", "entities", "entity_fields"):
        unlabelled = [r[0] for r in big.execute(
            f"SELECT name FROM {table} WHERE coalesce(label, '') = ''"
            " OR coalesce(description, '') = ''")]
        assert unlabelled == [], table
    ungrouped = [r[0] for r in big.execute(
        "SELECT name FROM attributes WHERE coalesce(grp, '') = ''")]
    assert ungrouped == []


def test_schema_file_matches_the_catalog(big: sqlite3.Connection) -> None:
    schema = yaml.safe_load(sample.SCHEMA_FILE.read_text(encoding="utf-8"))
    catalog = Catalog.load(big)
    attributes = {k: v for k, v in catalog.attributes.items() if k != "id"}
    assert {k: v["type"] for k, v in schema["attributes"].items()} == {
        k: a.type for k, a in attributes.items()}
    assert set(schema["event_types"]) == set(catalog.event_types)
    assert {k: v["type"] for k, v in schema["event_fields"].items()} == {
        k: f.type for k, f in catalog.event_fields.items()}
    product = catalog.entities["product"]
    assert {k: v["type"] for k, v in schema["entities"]["product"]["fields"].items()} == {
        k: f.type for k, f in product.fields.items()}
    assert catalog.attributes["age"].derived_from == "age:birth_date"
    assert [a.group for a in catalog.attributes.values()][1:4] == ["Identity"] * 3


def test_product_entity_is_linked_from_sku(big: sqlite3.Connection) -> None:
    catalog = Catalog.load(big)
    product = catalog.entities["product"]
    assert (product.key_field, product.link_field) == ("sku", "sku")
    assert set(product.fields) == {"sku", "name", "category", "brand", "price"}
    for name in ("product_view", "add_to_cart", "purchase"):
        assert "sku" in catalog.event_types[name].fields
    assert catalog.event_types["email_open"].fields == ("campaign",)
    orphans = scalar(big, "SELECT count(*) FROM events e WHERE e.sku IS NOT NULL AND NOT EXISTS"
                          " (SELECT 1 FROM entity_product p WHERE p.key = e.sku)")
    assert orphans == 0
    categories = {r[0] for r in big.execute("SELECT DISTINCT category FROM entity_product")}
    assert {"Shoes", "Boots", "Sneakers", "Apparel", "Accessories", "Bags", "Outdoor"} == categories


def test_indexes_exist_after_the_bulk_insert(big: sqlite3.Connection) -> None:
    names = {r[0] for r in big.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}
    assert {"events_type_ts_profile", "events_profile_ts"} <= names


# ------------------------------------------------------------------ example segments


def test_example_segments_cover_the_format() -> None:
    files = sorted(SEGMENTS_DIR.glob("*.yaml"))
    assert len(files) >= 12
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    for needle in ("all:", "any:", "not:", "segment:", "where:", "within:", "count:",
                   "distinct: order_id", "aggregate:", "product.category", "{ago:",
                   "{from_now:", "today", "event: \"*\"", "{between:"):
        assert needle in text, needle
    ops = set(re.findall(r"op: (\w+)", text))
    assert ops >= {
        "equals", "not_equals", "in", "not_in", "contains", "starts_with", "ends_with",
        "is_empty", "is_not_empty", "greater_than", "greater_or_equal", "less_or_equal",
        "less_than", "between", "not_between", "is_true", "is_false", "on", "before", "after",
        "in_last", "in_next", "not_in_last", "at_least", "at_most", "exactly",
    }
    fns = set(re.findall(r"fn: (\w+)", text))
    assert fns == {"sum", "avg", "min", "max"}
    for path in files:
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["id"] == path.stem


def test_example_segments_find_audiences(big: sqlite3.Connection) -> None:
    from store.query.audience import count
    from store.segments.library import resolve_file

    as_of = dt.datetime.combine(UNTIL, dt.time(23, 59, 59), tzinfo=dt.UTC)
    sizes = {path.stem: count(big, resolve_file(big, path), as_of)
             for path in sorted(SEGMENTS_DIR.glob("*.yaml"))}
    empty = [name for name, size in sizes.items() if size == 0]
    everyone = [name for name, size in sizes.items() if size == BIG]
    assert empty == [] and everyone == [], sizes


# ------------------------------------------------------------------ refill and safety


def test_refill_keeps_saved_segments(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    sample.generate_sample(path, profiles=300, seed=1, until=UNTIL)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO segments(id, name, description, definition, created_at, updated_at)"
                 " VALUES ('vip', 'VIP', 'kept', 'rule: {all: []}', '2026-01-01 00:00:00',"
                 " '2026-01-02 00:00:00')")
    conn.close()
    result = sample.generate_sample(path, profiles=200, seed=2, until=UNTIL)
    assert result.segments_kept == 1
    conn = open_store(path, readonly=True)
    try:
        assert conn.execute("SELECT * FROM segments").fetchall() == [
            ("vip", "VIP", "kept", "rule: {all: []}", "2026-01-01 00:00:00",
             "2026-01-02 00:00:00")]
        assert scalar(conn, "SELECT count(*) FROM profiles") == 200
        assert scalar(conn, "SELECT value FROM meta WHERE key = 'sample_seed'") == "2"
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]


def test_a_failed_refill_leaves_the_old_store(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.db"
    sample.generate_sample(path, profiles=200, seed=1, until=UNTIL)
    before = table_digest(path)

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sample, "make_events", broken)
    with pytest.raises(RuntimeError):
        sample.generate_sample(path, profiles=300, seed=9, until=UNTIL)
    assert table_digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]


def test_a_killed_run_leaves_nothing_behind_after_the_next(tmp_path: Path) -> None:
    """A run killed with SIGKILL cannot delete its unfinished store; the next run does,
    and leaves a temporary store of a process that still runs alone."""
    path = tmp_path / "store.db"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = [tmp_path / f"store.db.tmp-{ended.pid}-0a1b2c3d{suffix}" for suffix in ("", "-wal")]
    live = tmp_path / f"store.db.tmp-{os.getpid()}-feedbeef"
    for file in (*stale, live):
        file.write_bytes(b"unfinished")
    sample.generate_sample(path, profiles=50, seed=1, until=UNTIL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db", live.name]


def test_refuses_to_overwrite_other_files(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just notes")
    with pytest.raises(StoreError, match="does not overwrite"):
        sample.generate_sample(path, profiles=10, until=UNTIL)
    assert path.read_text() == "not a database, just notes"
    with pytest.raises(StoreError, match="folder"):
        sample.generate_sample(tmp_path, profiles=10, until=UNTIL)


def test_bad_arguments_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        sample.generate_sample(tmp_path / "x.db", profiles=0)
    with pytest.raises(InputError):
        sample.generate_sample(tmp_path / "x.db", profiles=10, seed=-1)
    with pytest.raises(InputError, match="--until"):
        sample.generate_sample(tmp_path / "x.db", profiles=10, until=dt.date(1, 1, 1))
    assert not (tmp_path / "x.db").exists()


def test_tiny_stores_work(tmp_path: Path) -> None:
    for seed in range(8):
        result = sample.generate_sample(tmp_path / "tiny.db", profiles=1 + seed % 2, seed=seed,
                                        until=UNTIL)
        assert result.profiles == 1 + seed % 2


def test_progress_reports_every_phase(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    sample.generate_sample(tmp_path / "p.db", profiles=50, until=UNTIL,
                           progress=lambda phase, fraction: seen.append((phase, fraction)))
    phases = list(dict.fromkeys(phase for phase, _ in seen))
    assert phases == ["Reading the existing store", "Preparing the store", "Generating profiles",
                      "Generating events", "Writing profiles", "Writing events",
                      "Building indexes"]
    assert all(0.0 <= fraction <= 1.0 for _, fraction in seen)
    assert all((phase, 1.0) in seen for phase in phases)


# ------------------------------------------------------------------ command line


def test_cli_creates_a_store(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["sample", "--db", str(path), "--profiles", "300",
                                      "--seed", "3", "--until", "2026-01-15"])
    assert result.exit_code == 0, result.output
    assert "Wrote 300 profiles" in result.stdout
    assert "Building indexes" in result.stderr
    conn = open_store(path, readonly=True)
    try:
        assert scalar(conn, "SELECT count(*) FROM profiles") == 300
        last = scalar(conn, "SELECT max(ts) FROM events")
        assert last <= day_start_epoch(dt.date(2026, 1, 15)) + 86399
    finally:
        conn.close()
    again = CliRunner().invoke(cli, ["sample", "--db", str(path), "--profiles", "300",
                                     "--seed", "3", "--until", "2026-01-15", "--quiet"])
    assert again.exit_code == 0 and again.stderr == ""


@pytest.mark.parametrize("arguments, message", [
    (["--until", "2026-02-30"], "--until '2026-02-30' is not a date"),
    (["--until", "yesterday"], "is not a date"),
    (["--profiles", "0"], "--profiles"),
    (["--seed", "-4"], "--seed"),
])
def test_cli_rejects_bad_input(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["sample", "--db", str(tmp_path / "x.db"), *arguments])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_cli_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(cli, ["sample", "--db", str(path), "--profiles", "10", "-q"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert path.read_bytes() == b"\x00" * 64
