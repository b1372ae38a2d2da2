"""Black-box acceptance checks of the ``audiences-tui`` command line against spec/cli.md and
spec/segments.md, on small hand-made files (CSV, gzip CSV, JSON array, NDJSON, gzip NDJSON).

Every store here is built by the import commands themselves, and every expected count was
worked out by hand from the data below (the comments say which profiles match).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from store.engines.base import engine_for
from tests.services.fixtures import ENGINE_KINDS, fresh_schema
from tui.cli import cli

AS_OF = "2025-06-30"

# Five profiles. age: 30, 41, -, 25, 50. score: 1.5, 2, 3, -, 4.25 (ints and floats mixed).
# vip: booleans in any case, one missing. flag: yes/no (text, not booleans).
# joined: dates. seen: datetimes written with 'T' and with a space, one with Z.
PROFILES_CSV = """\
id,name,age,score,vip,flag,joined,seen,city,note
1,Ann,30,1.5,TRUE,yes,2024-01-15,2024-01-15T10:00:00Z,Paris,50%_off
2,Bob,41,2,false,no,2024-02-29,2024-03-01 09:30:00,paris,
3,Cid,,3,True,yes,,,Berlin,a_b
4,Dee,25,,FALSE,no,2023-12-31,2023-12-31T23:59:59Z,,x%y
5,Eve,50,4.25,,yes,2025-06-30,2025-06-30T00:00:00Z,Rome,plain
"""

# Profile ids written as numbers here, as text in the profiles file: they meet as text.
EVENTS_CSV = """\
profile_id,type,timestamp,amount,sku,order
1,purchase,2025-06-01T10:00:00Z,10,A,o1
1,purchase,2025-06-01 11:00:00,20,B,o1
1,purchase,2025-06-20,5.5,X,o2
2,purchase,2025-05-01T00:00:00Z,100,A,o3
2,view,2025-06-30T23:00:00Z,,A,
3,view,2025-06-29T12:00:00Z,,,
4,refund,2025-06-15T08:00:00Z,-10,B,o4
"""

# Sku X has no product row: its product fields are missing.
PRODUCTS_JSON = json.dumps(
    [
        {"sku": "A", "category": "Shoes", "price": 50},
        {"sku": "B", "category": "Boots", "price": 80},
    ]
)


# ------------------------------------------------------------------ engines
# Every test here runs on each engine: the stores are built by the CLI on SQLite, DuckDB
# and PostgreSQL, and every expected count is the same. Tests about files themselves
# (junk files, absent paths, campaign.db beside the store) say which engines they are for.

ENGINE: dict[str, str | None] = {"kind": "sqlite", "server": None}


@pytest.fixture(scope="module", params=ENGINE_KINDS, autouse=True)
def engine_kind(request: pytest.FixtureRequest) -> str:
    ENGINE["kind"] = str(request.param)
    ENGINE["server"] = (str(request.getfixturevalue("postgres_url"))
                        if request.param == "postgresql" else None)
    return str(request.param)


class Location(str):
    """A ``--db`` value with the folder its test writes files into (``.parent``)."""

    parent: Path

    def exists(self) -> bool:
        return engine_for(str(self)).exists()


def store_at(folder: Path, name: str) -> Location:
    """A new store location named ``name`` on the current engine."""
    kind = ENGINE["kind"]
    if kind == "postgresql":
        assert ENGINE["server"] is not None
        text = fresh_schema(ENGINE["server"])
    else:
        text = str(folder / f"{name}.{'duckdb' if kind == 'duckdb' else 'db'}")
    location = Location(text)
    location.parent = folder
    return location


def campaign_beside(db: Path) -> Path:
    """Where the campaign store goes by default for this store."""
    return engine_for(str(db)).default_campaign_path()


def contents_digest(location: str) -> str:
    """Every row of every table of a store, in order."""
    engine = engine_for(location)
    conn = engine.connect(readonly=True)
    try:
        tables = sorted(t for t in ("meta", "attributes", "event_types", "event_fields",
                                    "event_type_fields", "entities", "entity_fields", "segments",
                                    "profiles", "events") if engine.has_table(conn, t))
        tables += sorted(row[0] for row in conn.execute("SELECT table_name FROM entities"))
        parts = []
        for table in tables:
            columns = engine.table_columns(conn, table)
            order = ", ".join(str(n) for n in range(1, len(columns) + 1))
            rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
            parts.append(repr((table, columns, rows)))
    finally:
        conn.close()
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def only_on(*kinds: str) -> pytest.MarkDecorator:
    """Run a test on these engines only (it is about a file, or the default campaign store)."""
    return pytest.mark.engines(*kinds)


# ------------------------------------------------------------------ helpers


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ok(*args: str | Path) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def digest(path: Path) -> str:
    """The store file plus any write-ahead log, so a write that stayed in the WAL shows too
    (SQLite: byte for byte); on other engines, every row of every table."""
    if ENGINE["kind"] != "sqlite":
        return contents_digest(str(path))
    path = Path(path)
    parts = [path.read_bytes()]
    wal = Path(f"{path}-wal")
    if wal.exists():
        parts.append(wal.read_bytes())
    return hashlib.sha256(b"".join(parts)).hexdigest()


def count_json(db: Path, rule: str, as_of: str = AS_OF, folder: Path | None = None) -> dict:
    segment = write((folder or db.parent) / "rule.yaml", f"rule: {rule}\n")
    result = invoke("count", segment, "--db", db, "--as-of", as_of, "--json")
    assert result.exit_code == 0, (rule, result.output)
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def count(db: Path, rule: str, as_of: str = AS_OF) -> int:
    return int(count_json(db, rule, as_of)["count"])


def count_error(db: Path, rule: str, as_of: str = AS_OF) -> str:
    segment = write(db.parent / "bad.yaml", f"rule: {rule}\n")
    result = invoke("count", segment, "--db", db, "--as-of", as_of, "--json")
    assert result.exit_code == 2, (rule, result.output)
    assert "Traceback" not in result.output
    return result.stderr


def entry_point() -> str:
    beside = Path(sys.executable).with_name("audiences-tui")
    return str(beside) if beside.exists() else (shutil.which("audiences-tui") or "audiences-tui")


def build_shop(folder: Path) -> Path:
    """The five profiles (from a gzip CSV), their events (CSV) and products (JSON array)."""
    db = store_at(folder, "shop")
    packed = folder / "profiles.csv.gz"
    packed.write_bytes(gzip.compress(PROFILES_CSV.encode()))
    ok("import", "profiles", packed, "--db", db)
    ok("import", "events", write(folder / "events.csv", EVENTS_CSV), "--db", db)
    ok(
        "import",
        "entity",
        "product",
        write(folder / "products.json", PRODUCTS_JSON),
        "--db",
        db,
        "--key",
        "sku",
        "--link",
        "sku",
    )
    return db


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only for the tests that use it (counts and sql only)."""
    return build_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture()
def own_shop(tmp_path: Path) -> Path:
    """A fresh copy for tests that write."""
    return build_shop(tmp_path)


# ------------------------------------------------------------------ import and type inference


PEOPLE_CSV = """\
id,b1,yn,zo,d,dt,mix,n
a,tRuE,yes,0,2024-01-01,2024-01-01T10:00:00Z,2024-01-01,1
b,FALSE,no,1,2024-02-01,2024-01-02 23:30:00,2024-01-02 10:00:00,2.5
c,,YES,,,,,
"""


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{attribute: b1, op: is_true}", 1),  # tRuE is a boolean
        ("{attribute: b1, op: is_false}", 1),  # FALSE
        ("{attribute: b1, op: is_empty}", 1),  # c: an empty field is missing
        ("{attribute: yn, op: equals, value: 'yes'}", 1),  # text, compared exactly
        ("{attribute: yn, op: contains, value: 'yes'}", 2),  # yes, YES
        ("{attribute: zo, op: equals, value: 1}", 1),  # 0/1 are integers
        ("{attribute: zo, op: is_empty}", 1),
        ("{attribute: d, op: on, value: 2024-02-01}", 1),
        ("{attribute: dt, op: on, value: 2024-01-02}", 1),  # written with a space
        ("{attribute: dt, op: before, value: '2024-01-02T23:30:00Z'}", 1),  # an instant: only a
        ("{attribute: mix, op: after, value: '2024-01-01T12:00:00Z'}", 1),  # dates + datetimes
        ("{attribute: mix, op: on, value: 2024-01-01}", 1),
        ("{attribute: n, op: equals, value: 2.5}", 1),  # 1 and 2.5 make a number column
        ("{attribute: n, op: less_than, value: 2}", 1),
    ],
)
def test_inferred_types_count_as_typed(tmp_path: Path, rule: str, expected: int) -> None:
    db = store_at(tmp_path, "people")
    ok("import", "profiles", write(tmp_path / "people.csv", PEOPLE_CSV), "--db", db)
    assert count(db, rule) == expected


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        ("{attribute: yn, op: is_true}", "string"),  # yes/no are not booleans
        ("{attribute: zo, op: is_true}", "integer"),  # 0/1 are not booleans
        ("{attribute: d, op: after, value: '2024-01-01T12:00:00Z'}", "date"),  # only dates: a date
        ("{attribute: n, op: contains, value: '1'}", "number"),
    ],
)
def test_inferred_types_refuse_other_operators(tmp_path: Path, rule: str, kind: str) -> None:
    db = store_at(tmp_path, "people")
    ok("import", "profiles", write(tmp_path / "people.csv", PEOPLE_CSV), "--db", db)
    assert kind in count_error(db, rule)


def test_json_ndjson_and_gzip_ids_meet_as_text(tmp_path: Path) -> None:
    db = store_at(tmp_path, "j")
    write(
        tmp_path / "p.json",
        '[{"id": 10, "tier": "gold"}, {"id": 11, "tier": "silver"}, {"id": "12", "tier": null}]',
    )
    ok("import", "profiles", tmp_path / "p.json", "--db", db)
    ndjson = (
        '{"profile_id": "10", "type": "open", "timestamp": "2024-05-01T00:00:00Z"}\n'
        '{"profile_id": 11, "type": "open", "timestamp": "2024-05-02"}\n'
    )
    ok("import", "events", write(tmp_path / "e.ndjson", ndjson), "--db", db)
    packed = tmp_path / "e.csv.gz"
    packed.write_bytes(gzip.compress(b"profile_id,type,timestamp\n12,open,2024-05-03\n10,click,2024-05-03\n"))
    ok("import", "events", packed, "--db", db)
    again = tmp_path / "again.ndjson.gz"
    again.write_bytes(gzip.compress(ndjson.encode()))
    ok("import", "events", again, "--db", db)  # appended: 10 and 11 now opened twice
    assert count(db, "{attribute: tier, op: is_empty}", "2024-06-30") == 1  # JSON null
    assert count(db, "{event: open}", "2024-06-30") == 3
    assert count(db, "{event: open, count: {op: exactly, value: 2}}", "2024-06-30") == 2
    assert count(db, "{all: [{event: click}, {event: open}]}", "2024-06-30") == 1
    assert count_json(db, "{all: []}", "2024-06-30")["total"] == 3  # no profile was added


def test_event_columns_type_option_and_create_profiles(tmp_path: Path) -> None:
    db = store_at(tmp_path, "k")
    ok("import", "profiles", write(tmp_path / "p.csv", "id,name\nu1,A\nu2,B\n"), "--db", db)
    source = write(
        tmp_path / "e.csv",
        "who,what,when,type,qty\n"
        "u1,signup,2024-03-01T08:00:00Z,web,2\n"
        "u2,signup,2024-03-02,app,3\n"
        "u9,signup,2024-03-03,web,1\n",
    )
    columns = ["--profile-column", "who", "--time-column", "when"]
    before = digest(db)
    refused = invoke("import", "events", source, "--db", db, *columns, "--type-column", "what")
    assert refused.exit_code == 2
    assert "line 4" in refused.stderr and "'who'" in refused.stderr and "'u9'" in refused.stderr
    assert digest(db) == before
    ok("import", "events", source, "--db", db, *columns, "--type-column", "what", "--create-profiles")
    assert count_json(db, "{all: []}")["total"] == 3  # u9 was added
    assert count(db, "{event: signup}") == 3
    assert count(db, "{event: signup, where: [{attribute: type, op: equals, value: web}]}") == 2
    assert count(db, "{event: signup, aggregate: {fn: sum, attribute: qty, op: equals, value: 1}}") == 1  # u9
    # --type: every row is a login; the file's own 'type' and 'what' columns are plain fields.
    ok("import", "events", source, "--db", db, *columns, "--type", "login")
    assert count(db, "{event: login, where: [{attribute: what, op: equals, value: signup}]}") == 3
    assert count(db, "{event: login, where: [{attribute: type, op: equals, value: app}]}") == 1


def test_entity_key_and_link_and_a_missing_entity(tmp_path: Path) -> None:
    db = store_at(tmp_path, "m")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\nu2\nu3\n"), "--db", db)
    ok(
        "import",
        "events",
        write(
            tmp_path / "e.csv",
            "profile_id,type,timestamp,item\n"
            "u1,buy,2024-03-01,K1\nu2,buy,2024-03-01,K2\n"
            "u3,buy,2024-03-01,\n",
        ),
        "--db",
        db,
    )
    ok(
        "import",
        "entity",
        "item_info",
        write(tmp_path / "i.csv", "code,colour,weight\nK1,Red,1.5\nK3,Blue,2\n"),
        "--db",
        db,
        "--key",
        "code",
        "--link",
        "item",
    )

    def buyers(where: str) -> int:
        return count(db, f"{{event: buy, where: [{where}]}}", "2024-06-30")

    assert buyers("{attribute: item_info.colour, op: equals, value: Red}") == 1  # u1
    # u2 links to K2 (no row), u3 has no item: both see the entity's fields as missing.
    assert buyers("{attribute: item_info.colour, op: is_empty}") == 2
    assert buyers("{attribute: item_info.colour, op: not_equals, value: Red}") == 2
    assert buyers("{attribute: item_info.weight, op: less_than, value: 2}") == 1
    packed = tmp_path / "more.ndjson.gz"
    packed.write_bytes(gzip.compress(b'{"code": "K2", "colour": "Green"}\n'))
    ok("import", "entity", "item_info", packed, "--db", db, "--key", "code", "--link", "item")
    assert buyers("{attribute: item_info.colour, op: is_empty}") == 1  # only u3 now
    assert buyers("{attribute: item_info.colour, op: in, value: [Red, Green]}") == 2


def test_reimport_updates_profiles_and_events_are_appended(own_shop: Path, tmp_path: Path) -> None:
    result = ok(
        "import",
        "profiles",
        write(tmp_path / "up.csv", "id,city,age\n1,Lyon,31\n6,Oslo,\n"),
        "--db",
        own_shop,
    )
    assert "1 new, 1 updated" in result.stdout
    assert count_json(own_shop, "{all: []}")["total"] == 6
    # Ann keeps what the file did not have (name, vip) and gets the new city and age.
    assert (
        count(
            own_shop,
            "{all: [{attribute: name, op: equals, value: Ann},"
            " {attribute: city, op: equals, value: Lyon},"
            " {attribute: age, op: equals, value: 31},"
            " {attribute: vip, op: is_true}]}",
        )
        == 1
    )
    assert count(own_shop, "{attribute: city, op: equals, value: Paris}") == 0
    ok("import", "events", tmp_path / "events.csv", "--db", own_shop)
    assert count(own_shop, "{event: purchase, count: {op: exactly, value: 6}}") == 1  # Ann
    assert (
        count(own_shop, "{event: purchase, count: {op: exactly, value: 2, distinct: order}}") == 1
    )  # still o1 and o2


@pytest.mark.parametrize(
    ("kind", "name", "text", "fragments"),
    [
        (
            "events",
            "e.csv",
            "profile_id,type,timestamp,amount\n1,purchase,2025-06-02,lots\n",
            ["line 2", "'amount'", "'lots'", "number"],
        ),
        ("profiles", "p.csv", "id,vip,extra\n7,1,x\n", ["line 2", "'vip'", "'1'", "boolean"]),
        ("profiles", "p.csv", "id,joined\n8,2024-01-01T10:00:00Z\n", ["line 2", "'joined'", "date"]),
        ("profiles", "p.csv", "id,age\n8,30\n9,old\n", ["line 3", "'age'", "'old'", "integer"]),
        ("entity", "products.csv", "sku,price\nC,cheap\n", ["line 2", "'price'", "'cheap'"]),
    ],
)
def test_schema_conflicts_exit_2_and_write_nothing(
    own_shop: Path, tmp_path: Path, kind: str, name: str, text: str, fragments: list[str]
) -> None:
    before = digest(own_shop)
    source = write(tmp_path / "bad" / name, text)
    extra = ["--key", "sku", "--link", "sku"] if kind == "entity" else []
    args = ["import", kind, *(["product"] if kind == "entity" else []), source, "--db", own_shop]
    result = invoke(*args, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr
    assert digest(own_shop) == before
    assert count_json(own_shop, "{all: []}")["total"] == 5


def test_bad_rows_are_reported_by_line_column_value_and_why(own_shop: Path, tmp_path: Path) -> None:
    before = digest(own_shop)
    pretty = write(
        tmp_path / "bad.json",
        "[\n"
        '  {"profile_id": "1", "type": "view", "timestamp": "2025-01-01"},\n'
        '  {"profile_id": "1", "type": "view", "timestamp": "2025-02-30"},\n'
        '  {"profile_id": "77", "type": "view", "timestamp": "2025-01-01"}\n]\n',
    )
    result = invoke("import", "events", pretty, "--db", own_shop)
    assert result.exit_code == 2
    assert "line 3, column 'timestamp', value '2025-02-30'" in result.stderr
    assert "line 4, column 'profile_id', value '77': unknown profile" in result.stderr
    packed = tmp_path / "bad.ndjson.gz"
    packed.write_bytes(
        gzip.compress(
            b'{"profile_id": "1", "type": "view", "timestamp": "2025-01-01"}\n'
            b'{"profile_id": "1", "timestamp": "2025-01-01"}\n'
        )
    )
    result = invoke("import", "events", packed, "--db", own_shop)
    assert result.exit_code == 2
    assert "line 2, column 'type'" in result.stderr and "missing" in result.stderr
    result = invoke(
        "import", "profiles", write(tmp_path / "noid.csv", "id,name\n1,Ann\n,X\n"), "--db", own_shop
    )
    assert result.exit_code == 2 and "line 3, column 'id'" in result.stderr
    assert digest(own_shop) == before


# ------------------------------------------------------------------ count --json and --as-of


def test_count_json_keys_and_types(shop: Path) -> None:
    payload = count_json(shop, "{attribute: vip, op: is_true}")
    assert payload["count"] == 2 and payload["total"] == 5
    assert type(payload["count"]) is int and type(payload["total"]) is int
    assert isinstance(payload["elapsed_ms"], float) and payload["elapsed_ms"] >= 0


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2025-06-30", 2),  # the end of that day: Bob's 23:00 view counts
        ("2025-06-30T12:00:00Z", 1),  # Cid only
        ("2025-06-30T23:00:00Z", 2),  # an event at exactly A counts
        ("2025-06-30 23:00:00", 2),  # ISO 8601 with a space
        ("2025-07-01T01:00:00+02:00", 2),  # = 23:00 UTC
        ("2025-06-30T22:59:59Z", 1),
        ("2025-06-29", 1),  # Cid viewed at noon on the 29th
        ("2025-06-29T11:59:59Z", 0),
    ],
)
def test_as_of_a_date_is_the_end_of_that_day(shop: Path, as_of: str, expected: int) -> None:
    assert count(shop, "{event: view}", as_of) == expected


# ------------------------------------------------------------------ operators


OPERATOR_COUNTS = [
    # string (city: Paris, paris, Berlin, -, Rome; note: 50%_off, -, a_b, x%y, plain)
    ("{attribute: city, op: equals, value: Paris}", 1),
    ("{attribute: city, op: not_equals, value: Paris}", 4),
    ("{attribute: city, op: in, value: [Paris, Rome]}", 2),
    ("{attribute: city, op: not_in, value: [Paris, Rome]}", 3),
    ("{attribute: city, op: contains, value: AR}", 2),
    ("{attribute: city, op: not_contains, value: AR}", 3),
    ("{attribute: city, op: starts_with, value: PAR}", 2),
    ("{attribute: city, op: ends_with, value: LIN}", 1),
    ("{attribute: city, op: is_empty}", 1),
    ("{attribute: city, op: is_not_empty}", 4),
    ("{attribute: city, op: equals, value: ''}", 0),
    ("{attribute: city, op: not_equals, value: ''}", 5),
    ("{attribute: note, op: contains, value: '%'}", 2),
    ("{attribute: note, op: contains, value: '_'}", 2),
    ("{attribute: note, op: not_contains, value: '_'}", 3),
    ("{attribute: note, op: starts_with, value: '50%'}", 1),
    ("{attribute: note, op: ends_with, value: '_B'}", 1),
    ("{attribute: note, op: contains, value: 'X%Y'}", 1),
    ("{attribute: note, op: is_empty}", 1),
    ("{attribute: flag, op: equals, value: yes}", 3),  # the word yes, not a YAML boolean
    # integer (age: 30, 41, -, 25, 50)
    ("{attribute: age, op: equals, value: 30}", 1),
    ("{attribute: age, op: not_equals, value: 30}", 4),
    ("{attribute: age, op: greater_than, value: 30}", 2),
    ("{attribute: age, op: greater_or_equal, value: 30}", 3),
    ("{attribute: age, op: less_than, value: 30}", 1),
    ("{attribute: age, op: less_or_equal, value: 30}", 2),
    ("{attribute: age, op: between, value: [25, 41]}", 3),
    ("{attribute: age, op: not_between, value: [25, 41]}", 2),
    ("{attribute: age, op: in, value: [25, 50]}", 2),
    ("{attribute: age, op: not_in, value: [25, 50]}", 3),
    ("{attribute: age, op: is_empty}", 1),
    ("{attribute: age, op: is_not_empty}", 4),
    # number (score: 1.5, 2, 3, -, 4.25)
    ("{attribute: score, op: equals, value: 2}", 1),
    ("{attribute: score, op: greater_than, value: 1.75}", 3),
    ("{attribute: score, op: less_or_equal, value: 1.5}", 1),
    ("{attribute: score, op: between, value: [1.5, 3]}", 3),
    ("{attribute: score, op: not_between, value: [1.5, 3]}", 2),
    ("{attribute: score, op: in, value: [2, 4.25]}", 2),
    ("{attribute: score, op: not_in, value: [2, 4.25]}", 3),
    # boolean (vip: true, false, true, false, -)
    ("{attribute: vip, op: is_true}", 2),
    ("{attribute: vip, op: is_false}", 2),
    ("{attribute: vip, op: is_empty}", 1),
    ("{attribute: vip, op: is_not_empty}", 4),
    ("{not: {attribute: vip, op: is_true}}", 3),  # false twice and the missing one
    # date (joined: 2024-01-15, 2024-02-29, -, 2023-12-31, 2025-06-30)
    ("{attribute: joined, op: on, value: 2024-02-29}", 1),
    ("{attribute: joined, op: before, value: 2024-02-29}", 2),
    ("{attribute: joined, op: after, value: 2024-02-29}", 1),
    ("{attribute: joined, op: between, value: [2024-01-15, 2024-02-29]}", 2),
    ("{attribute: joined, op: in_last, value: {amount: 1, unit: days}}", 1),  # today is in
    ("{attribute: joined, op: not_in_last, value: {amount: 1, unit: days}}", 4),
    ("{attribute: joined, op: in_next, value: {amount: 1, unit: days}}", 1),  # today is in
    ("{attribute: joined, op: on, value: today}", 1),
    ("{attribute: joined, op: is_empty}", 1),
    # datetime (seen: 01-15 10:00, 03-01 09:30, -, 2023-12-31 23:59:59, 2025-06-30 00:00)
    ("{attribute: seen, op: on, value: 2024-03-01}", 1),
    ("{attribute: seen, op: after, value: '2024-03-01T09:30:00Z'}", 1),  # an instant
    ("{attribute: seen, op: after, value: '2024-03-01T09:29:59Z'}", 2),
    ("{attribute: seen, op: after, value: 2024-03-01}", 1),  # by date: not on the day itself
    ("{attribute: seen, op: before, value: 2024-01-01}", 1),
    ("{attribute: seen, op: between, value: [2024-01-01, 2024-01-15]}", 1),  # by date: Ann
    ("{attribute: seen, op: between, value: ['2024-01-01T00:00:00Z', '2024-01-15T09:59:59Z']}", 0),
    ("{attribute: seen, op: between, value: ['2023-12-31T23:59:59Z', '2024-01-15T10:00:00Z']}", 2),
    ("{attribute: seen, op: in_last, value: {amount: 1, unit: days}}", 1),
    ("{attribute: seen, op: not_in_last, value: {amount: 1, unit: days}}", 4),
]


@pytest.mark.parametrize(("rule", "expected"), OPERATOR_COUNTS)
def test_every_operator_of_every_type(shop: Path, rule: str, expected: int) -> None:
    assert count(shop, rule) == expected


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        ("{attribute: city, op: equals, value: Paris}", "{attribute: city, op: not_equals, value: Paris}"),
        ("{attribute: age, op: equals, value: 30}", "{attribute: age, op: not_equals, value: 30}"),
        ("{attribute: score, op: in, value: [2, 4.25]}", "{attribute: score, op: not_in, value: [2, 4.25]}"),
        ("{attribute: note, op: contains, value: '_'}", "{attribute: note, op: not_contains, value: '_'}"),
        (
            "{attribute: age, op: between, value: [25, 41]}",
            "{attribute: age, op: not_between, value: [25, 41]}",
        ),
        (
            "{attribute: score, op: between, value: [2, 4]}",
            "{attribute: score, op: not_between, value: [2, 4]}",
        ),
        (
            "{attribute: seen, op: in_last, value: {amount: 2, unit: years}}",
            "{attribute: seen, op: not_in_last, value: {amount: 2, unit: years}}",
        ),
        ("{attribute: vip, op: is_empty}", "{attribute: vip, op: is_not_empty}"),
    ],
)
def test_negative_twins_are_exact_complements(shop: Path, positive: str, negative: str) -> None:
    hits = count(shop, positive)
    assert count(shop, negative) == 5 - hits
    assert count(shop, f"{{not: {positive}}}") == 5 - hits


# ------------------------------------------------------------------ relative dates and windows


DATES_CSV = (
    "id,d\nd1,2025-02-27\nd2,2025-02-28\nd3,2025-03-01\nd4,2025-03-31\nd5,2025-04-30\n"
    "d6,2025-05-01\nd7,2024-02-29\nd8,2024-02-28\n"
)
DATE_EVENTS_CSV = (
    "profile_id,type,timestamp\nd1,e,2025-02-27T12:00:00Z\nd2,e,2025-02-28T00:00:00Z\n"
    "d3,e,2025-03-01T00:00:00Z\nd5,e,2025-04-30T23:59:59Z\nd6,e,2025-05-01T00:00:00Z\n"
)


@pytest.fixture(scope="module")
def dates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dates")
    db = store_at(folder, "d")
    ok("import", "profiles", write(folder / "d.csv", DATES_CSV), "--db", db)
    ok("import", "events", write(folder / "e.csv", DATE_EVENTS_CSV), "--db", db)
    return db


@pytest.mark.parametrize(
    ("as_of", "rule", "expected"),
    [
        # 2025-03-31 minus 1 month is 2025-02-28 (clamped): d2
        ("2025-03-31", "{attribute: d, op: on, value: {ago: 1, unit: months}}", 1),
        ("2025-03-31", "{attribute: d, op: on, value: {from_now: 1, unit: months}}", 1),  # 04-30: d5
        ("2025-03-31", "{attribute: d, op: in_last, value: {amount: 1, unit: months}}", 2),  # d3, d4
        ("2025-03-31", "{attribute: d, op: not_in_last, value: {amount: 1, unit: months}}", 6),
        ("2025-03-31", "{attribute: d, op: in_next, value: {amount: 1, unit: months}}", 1),  # d4
        ("2025-03-31", "{attribute: d, op: in_last, value: {amount: 1, unit: weeks}}", 1),  # d4
        ("2025-03-31", "{attribute: d, op: before, value: {ago: 1, unit: months}}", 3),  # d1, d7, d8
        ("2025-03-31", "{event: e, within: {last: 1, unit: months}}", 1),  # d3's event on 03-01
        ("2025-03-31", "{event: e, within: {between: [{ago: 1, unit: months}, today]}}", 2),  # d2, d3
        ("2025-02-28", "{attribute: d, op: on, value: {ago: 1, unit: years}}", 1),  # 2024-02-28: d8
        ("2025-02-28", "{attribute: d, op: in_last, value: {amount: 1, unit: years}}", 3),  # d7 d1 d2
        ("2024-02-29", "{attribute: d, op: on, value: {from_now: 1, unit: years}}", 1),  # 2025-02-28
        ("2024-02-29", "{attribute: d, op: in_next, value: {amount: 1, unit: years}}", 2),  # d7, d1
        ("2028-02-29", "{attribute: d, op: on, value: {ago: 4, unit: years}}", 1),  # d7
        ("2025-02-28", "{attribute: d, op: on, value: {ago: 2, unit: weeks}}", 0),  # 02-14
        ("2025-03-01", "{attribute: d, op: on, value: {ago: 2, unit: days}}", 1),  # 02-27: d1
        ("2025-04-30", "{event: e, within: {last: 1, unit: days}}", 1),  # d5 at 23:59:59
        ("2025-04-30T23:59:58Z", "{event: e, within: {last: 1, unit: days}}", 0),
        ("2025-05-01", "{event: e, within: {last: 1, unit: days}}", 1),  # d6 only, not d5
        ("2025-05-01", "{event: e, within: {last: 2, unit: days}}", 2),
    ],
)
def test_relative_dates_and_windows(dates: Path, as_of: str, rule: str, expected: int) -> None:
    assert count(dates, rule, as_of) == expected


# ------------------------------------------------------------------ events


EVENT_COUNTS = [
    ("{event: purchase}", 2),  # Ann, Bob
    ("{event: purchase, count: {op: at_most, value: 0}}", 3),  # did not: Cid, Dee, Eve
    ("{event: purchase, count: {op: at_least, value: 0}}", 5),
    ("{event: purchase, within: {last: 30, unit: days}}", 1),  # 05-31 < date <= 06-30: Ann
    ("{event: purchase, within: {last: 60, unit: days}}", 1),  # Bob's 05-01 is just outside
    ("{event: purchase, within: {last: 61, unit: days}}", 2),
    ("{event: purchase, count: {op: exactly, value: 3}}", 1),
    ("{event: purchase, count: {op: between, value: [1, 1]}}", 1),  # Bob
    ("{event: purchase, count: {op: at_least, value: 2, distinct: order}}", 1),  # Ann: o1, o2
    ("{event: purchase, count: {op: exactly, value: 1, distinct: order}}", 1),  # Bob
    ("{event: view, count: {op: at_most, value: 0, distinct: order}}", 5),  # views have none
    ("{event: purchase, aggregate: {fn: sum, attribute: amount, op: greater_or_equal, value: 35.5}}", 2),
    ("{event: purchase, aggregate: {fn: sum, attribute: amount, op: less_than, value: 1}}", 3),
    ("{event: purchase, aggregate: {fn: sum, attribute: amount, op: between, value: [0, 0]}}", 3),
    ("{event: view, aggregate: {fn: sum, attribute: amount, op: equals, value: 0}}", 5),
    ("{event: purchase, aggregate: {fn: avg, attribute: amount, op: between, value: [11, 12]}}", 1),
    ("{event: purchase, aggregate: {fn: avg, attribute: amount, op: less_than, value: 1000}}", 2),
    ("{event: view, aggregate: {fn: avg, attribute: amount, op: less_than, value: 1000000}}", 0),
    ("{event: purchase, aggregate: {fn: min, attribute: amount, op: equals, value: 5.5}}", 1),
    ("{event: purchase, aggregate: {fn: min, attribute: amount, op: greater_than, value: -1000}}", 2),
    ("{event: purchase, aggregate: {fn: max, attribute: amount, op: between, value: [20, 100]}}", 2),
    ("{not: {event: purchase, aggregate: {fn: max, attribute: amount, op: greater_than, value: 0}}}", 3),
    (
        "{event: purchase, count: {op: at_least, value: 2},"
        " aggregate: {fn: sum, attribute: amount, op: greater_than, value: 30}}",
        1,
    ),  # Ann only
    (
        "{event: purchase, count: {op: at_least, value: 1},"
        " aggregate: {fn: sum, attribute: amount, op: equals, value: 0}}",
        0,
    ),
    ("{event: [purchase, refund]}", 3),
    ("{event: '*'}", 4),
    ("{event: '*', count: {op: at_most, value: 0}}", 1),  # Eve
    ("{event: '*', where: [{attribute: amount, op: less_than, value: 0}]}", 1),  # Dee's refund
    ("{event: purchase, where: [{attribute: product.category, op: equals, value: Shoes}]}", 2),
    (
        "{event: purchase, where: [{attribute: product.category, op: equals, value: Shoes}],"
        " count: {op: at_most, value: 0}}",
        3,
    ),
    ("{event: purchase, where: [{attribute: product.category, op: is_empty}]}", 1),  # Ann's X
    # Ann: A (Shoes) and X (no product, so missing) are not Boots: 2 events.
    (
        "{event: purchase, where: [{attribute: product.category, op: not_equals, value: Boots}],"
        " count: {op: at_least, value: 2}}",
        1,
    ),
    ("{event: purchase, where: [{attribute: product.price, op: greater_than, value: 60}]}", 1),
    ("{event: purchase, count: {op: at_least, value: 2, distinct: product.category}}", 1),
    ("{event: purchase, aggregate: {fn: sum, attribute: product.price, op: equals, value: 130}}", 1),
    ("{event: view, where: [{attribute: amount, op: not_equals, value: 5}]}", 2),
    ("{event: purchase, within: {between: [2025-06-01, 2025-06-01]}, count: {op: at_least, value: 2}}", 1),
    (
        "{event: purchase, within: {between: ['2025-06-01T10:30:00Z', 2025-06-20]},"
        " count: {op: exactly, value: 2}}",
        1,
    ),  # Ann's 11:00 and 06-20 events
    ("{event: view, within: {between: [2025-06-30, 2025-06-30]}}", 1),  # Bob at 23:00
    ("{event: view, within: {last: 1, unit: days}}", 1),
]


@pytest.mark.parametrize(("rule", "expected"), EVENT_COUNTS)
def test_event_conditions(shop: Path, rule: str, expected: int) -> None:
    assert count(shop, rule) == expected


def test_events_after_the_as_of_instant_never_count(shop: Path) -> None:
    rule = "{event: view, within: {between: [2025-06-29, 2025-06-30]}}"
    assert count(shop, rule, "2025-06-29T00:00:00Z") == 0  # Cid's view is at noon, after A
    assert count(shop, rule, "2025-06-29T12:00:00Z") == 1


# ------------------------------------------------------------------ sql


@pytest.mark.parametrize(
    "rule",
    [
        "{any: [{attribute: city, op: starts_with, value: p}, {event: purchase, within: {last: 30,"
        " unit: days}}, {event: refund, where: [{attribute: product.category, op: not_equals,"
        " value: Shoes}]}]}",
        "{all: [{attribute: note, op: not_contains, value: '_'}, {not: {attribute: vip, op: is_true}}]}",
        "{event: purchase, count: {op: at_least, value: 2, distinct: order},"
        " aggregate: {fn: sum, attribute: amount, op: greater_than, value: 30}}",
        "{event: '*', count: {op: at_most, value: 0}}",
    ],
)
def test_printed_query_selects_the_counted_audience(shop: Path, tmp_path: Path, rule: str) -> None:
    segment = write(tmp_path / "s.yaml", f"rule: {rule}\n")
    engine = engine_for(shop)
    result = ok("sql", segment, "--db", shop, "--dialect", engine.dialect, "--as-of", AS_OF)
    conn = engine.connect(readonly=True)
    try:
        rows = conn.execute(result.stdout.rstrip().rstrip(";")).fetchall()
    finally:
        conn.close()
    assert len(rows) == count_json(shop, rule, folder=tmp_path)["count"]


# ------------------------------------------------------------------ saved segments and references


def test_references_resolve_in_the_store_first_then_beside_the_file(own_shop: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    write(files / "vips.yaml", "id: vips\nname: Local\nrule: {attribute: vip, op: is_empty}\n")
    user = write(files / "user.yaml", "id: user\nname: User\nrule: {segment: vips}\n")
    saved = write(
        tmp_path / "saved" / "vips.yaml",
        "id: vips\nname: Saved\nrule: {attribute: age, op: greater_than, value: 26}\n",
    )

    def counted() -> int:
        result = ok("count", user, "--db", own_shop, "--as-of", AS_OF, "--json")
        return int(json.loads(result.stdout)["count"])

    assert counted() == 1  # not saved yet: vips.yaml beside user.yaml (Eve)
    ok("segments", "save", saved, "--db", own_shop)
    assert counted() == 3  # the saved one wins: Ann, Bob, Eve
    exported = tmp_path / "out" / "vips.yaml"
    exported.parent.mkdir()
    ok("segments", "export", "vips", "--db", own_shop, "-o", exported)
    assert yaml.safe_load(exported.read_text())["rule"] == {
        "attribute": "age",
        "op": "greater_than",
        "value": 26,
    }
    result = ok("count", exported, "--db", own_shop, "--as-of", AS_OF, "--json")
    assert json.loads(result.stdout)["count"] == 3
    ok("segments", "save", user, "--db", own_shop)
    refused = invoke("segments", "delete", "vips", "--db", own_shop)
    assert refused.exit_code == 2 and "user" in refused.stderr
    shown = ok("segments", "show", "user", "--db", own_shop)
    assert yaml.safe_load(shown.stdout)["rule"] == {"segment": "vips"}
    ok("segments", "delete", "user", "--db", own_shop)
    ok("segments", "delete", "vips", "--db", own_shop)
    assert invoke("segments", "show", "vips", "--db", own_shop).exit_code == 2


def test_saving_a_segment_whose_reference_is_invalid_saves_nothing(own_shop: Path, tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "id: base\nrule:\n  attribute: agge\n  op: equals\n  value: 1\n")
    top = write(tmp_path / "top.yaml", "id: top\nrule: {segment: base}\n")
    result = invoke("segments", "save", top, "--db", own_shop)
    assert result.exit_code == 2
    assert "base.yaml:3" in result.stderr and "'age'" in result.stderr
    listed = ok("segments", "list", "--db", own_shop).stdout
    assert "top" not in listed and "base" not in listed


@pytest.mark.parametrize(
    ("files", "start", "cycle"),
    [
        ({"selfy": "rule: {any: [{segment: selfy}]}"}, "selfy", "selfy -> selfy"),
        (
            {
                "c1": "rule: {segment: c2}",
                "c2": "rule: {all: [{attribute: vip, op: is_true}, {segment: c3}]}",
                "c3": "rule: {not: {segment: c1}}",
            },
            "c1",
            "c1 -> c2 -> c3 -> c1",
        ),
    ],
)
def test_cycles_are_named(shop: Path, tmp_path: Path, files: dict[str, str], start: str, cycle: str) -> None:
    for name, text in files.items():
        write(tmp_path / f"{name}.yaml", f"id: {name}\n{text}\n")
    result = invoke("count", tmp_path / f"{start}.yaml", "--db", shop)
    assert result.exit_code == 2
    assert cycle in result.stderr


# ------------------------------------------------------------------ activation


def test_activation_campaign_store_and_refresh(
    own_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ok("import", "profiles", write(tmp_path / "more.csv", "id,name\n007,Bond\n"), "--db", own_shop)
    segment = write(
        tmp_path / "idle.yaml", "id: idle\nname: Idle\nrule: {event: '*', count: {op: at_most, value: 0}}\n"
    )

    def activate(as_of: str) -> dict:
        result = ok("activate", segment, "--db", own_shop, "--as-of", as_of, "--json")
        return json.loads(result.stdout)

    first = activate(AS_OF)
    assert {"audience_id", "count", "added", "removed"} <= set(first)
    assert (first["count"], first["added"], first["removed"]) == (2, 2, 0)  # Eve and 007
    campaign = campaign_beside(own_shop)  # beside the store, not in the working folder
    assert campaign.exists() and not (elsewhere / "campaign.db").exists()

    def members() -> set[tuple[object, str]]:
        conn = sqlite3.connect(campaign)
        try:
            return set(
                conn.execute(
                    "SELECT profile_id, typeof(profile_id) FROM audience_members WHERE audience_id = ?",
                    (first["audience_id"],),
                )
            )
        finally:
            conn.close()

    assert members() == {("5", "text"), ("007", "text")}
    conn = sqlite3.connect(campaign)
    try:
        assert conn.execute("SELECT id, name, segment_id FROM audiences").fetchall() == [
            (first["audience_id"], "Idle", "idle")
        ]
    finally:
        conn.close()
    # Before Cid's first event (06-29 noon) he was idle too; Dee refunded on 06-15.
    earlier = activate("2025-06-29T11:00:00Z")
    assert (earlier["audience_id"], earlier["count"], earlier["added"], earlier["removed"]) == (
        first["audience_id"],
        3,
        1,
        0,
    )
    assert members() == {("3", "text"), ("5", "text"), ("007", "text")}
    again = activate(AS_OF)
    assert (again["count"], again["added"], again["removed"]) == (2, 0, 1)
    assert members() == {("5", "text"), ("007", "text")}


# ------------------------------------------------------------------ wrong input, exit codes


def test_value_errors_name_the_file_line_and_node_path(shop: Path, tmp_path: Path) -> None:
    segment = write(
        tmp_path / "deep.yaml",
        "name: Deep\nrule:\n  all:\n"
        "    - attribute: city\n      op: equals\n      value: x\n"
        "    - event: purchase\n      where:\n        - attribute: amount\n"
        "          op: greater_than\n          value: lots\n",
    )
    result = invoke("count", segment, "--db", shop)
    assert result.exit_code == 2
    assert f"{segment}:11" in result.stderr
    assert "rule.all[1].where[0].value" in result.stderr


@pytest.mark.parametrize(
    ("rule", "fragments"),
    [
        ("{attribute: citty, op: equals, value: x}", ["rule.attribute", "'city'"]),
        ("{event: purchse}", ["rule.event", "'purchase'"]),
        (
            "{event: purchase, where: [{attribute: amont, op: equals, value: 1}]}",
            ["rule.where[0].attribute", "'amount'"],
        ),
        (
            "{event: purchase, where: [{attribute: product.categry, op: equals, value: x}]}",
            ["rule.where[0].attribute", "'category'"],
        ),
        (
            "{event: purchase, where: [{attribute: prodct.category, op: equals, value: x}]}",
            ["rule.where[0].attribute", "'product'"],
        ),
        (
            "{event: purchase, count: {op: at_least, value: 1, distinct: ordr}}",
            ["rule.count.distinct", "'order'"],
        ),
        (
            "{event: purchase, aggregate: {fn: sum, attribute: sku, op: equals, value: 1}}",
            ["rule.aggregate.attribute"],
        ),
        ("{attribute: age, op: greater_than, value: abc}", ["rule.value", "age"]),
        ("{attribute: joined, op: on, value: 2025-13-01}", ["rule.value", "joined"]),
        ("{attribute: vip, op: equals, value: true}", ["rule.op", "is_true"]),
        ("{attribute: city, op: in, value: []}", ["rule.value"]),
        ("{event: purchase, count: {op: between, value: [3, 1]}}", ["rule.count.value"]),
    ],
)
def test_wrong_rules_are_refused_with_the_node_and_nearest_names(
    shop: Path, rule: str, fragments: list[str]
) -> None:
    message = count_error(shop, rule)
    assert len(message.strip().splitlines()) == 1, message
    assert "bad.yaml:1" in message
    for fragment in fragments:
        assert fragment in message


@only_on("sqlite")
@pytest.mark.parametrize(
    ("name", "text", "db_kind", "code", "fragment"),
    [
        ("bad.yaml", "rule: {attribute: city, op: equals, value: x\n", "shop", 2, "bad.yaml:"),
        ("typo.yaml", "rule: {attribute: citty, op: equals, value: x}\n", "shop", 2, "Did you mean"),
        ("missing.yaml", None, "shop", 2, "missing.yaml"),
        ("ok.yaml", "rule: {all: []}\n", "junk", 1, "not an Audiences store"),
        ("ok.yaml", "rule: {all: []}\n", "absent", 1, "absent.db"),
    ],
)
def test_the_real_command_exits_cleanly(
    shop: Path, tmp_path: Path, name: str, text: str | None, db_kind: str, code: int, fragment: str
) -> None:
    if text is not None:
        write(tmp_path / name, text)
    db = {"shop": shop, "junk": tmp_path / "junk.db", "absent": tmp_path / "absent.db"}[db_kind]
    if db_kind == "junk":
        db.write_bytes(b"not a database at all " * 50)
    before = digest(shop)
    done = subprocess.run(
        [entry_point(), "count", str(tmp_path / name), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert fragment in done.stderr
    assert digest(shop) == before
    assert not (tmp_path / "absent.db").exists()


# ------------------------------------------------------------------ gaps the audit found (fixed)


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            "{attribute: age, op: greater_than, value: '30'}",
            "rule.value: \"30\" is text (in quotes); 'age' is an integer attribute: write 30 without quotes",
        ),
        (
            '{attribute: age, op: greater_than, value: "1.5"}',
            "\"1.5\" is text (in quotes); 'age' is an integer attribute: write a whole number without quotes",
        ),
        (
            "{attribute: score, op: greater_than, value: '1.5'}",
            "\"1.5\" is text (in quotes); 'score' is a number attribute: write 1.5 without quotes",
        ),
        ("{attribute: age, op: in, value: [25, '50']}", 'rule.value[1]: "50" is text (in quotes)'),
        (
            "{event: purchase, where: [{attribute: amount, op: equals, value: '10'}]}",
            "'amount' is a number event field: write 10 without quotes",
        ),
        (
            "{event: purchase, where: [{attribute: product.price, op: less_than, value: '60'}]}",
            "'product.price' is an integer entity field: write 60 without quotes",
        ),
        (
            "{event: purchase, aggregate: {fn: sum, attribute: amount, op: greater_than, value: '30'}}",
            'rule.aggregate.value: "30" is text (in quotes)',
        ),
    ],
)
def test_a_quoted_number_is_refused_as_text_truthfully(shop: Path, rule: str, fragment: str) -> None:
    # Types are strict: a YAML string is text, even when it holds digits.
    message = count_error(shop, rule)
    assert len(message.strip().splitlines()) == 1, message
    assert fragment in message
    assert "out of range" not in message


@pytest.mark.parametrize(
    ("digits", "fragment"),
    [
        (400, "a whole number of about 400 digits is out of range"),  # beyond a float
        (5000, "a whole number of 5000 digits is out of range"),  # beyond what Python reads
    ],
)
def test_a_whole_number_too_long_for_the_database_is_out_of_range(
    shop: Path, digits: int, fragment: str
) -> None:
    message = count_error(shop, f"{{attribute: age, op: greater_than, value: {'9' * digits}}}")
    assert fragment in message and "in quotes" not in message


def test_sub_second_event_times_are_kept(tmp_path: Path) -> None:
    db = store_at(tmp_path, "f")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\n"), "--db", db)
    ok(
        "import",
        "events",
        write(tmp_path / "e.csv", "profile_id,type,timestamp\nu1,e,2025-06-30T12:00:00.700Z\n"),
        "--db",
        db,
    )
    assert count(db, "{event: e}", "2025-06-30T12:00:00.800Z") == 1
    assert count(db, "{event: e}", "2025-06-30T12:00:00Z") == 0
    assert count(db, "{event: e, within: {between: ['2025-06-30T12:00:00.500Z', 2025-06-30]}}") == 1
    assert count(db, "{event: e, within: {between: ['2025-06-30T12:00:00.701Z', 2025-06-30]}}") == 0
    assert count(db, "{event: e}", "2025-06-30T12:00:00.700Z") == 1
    assert count(db, "{event: e}", "2025-06-30T12:00:00.699999Z") == 0


def test_sub_second_times_from_epoch_milliseconds_and_a_days_last_instant(
    tmp_path: Path,
) -> None:
    db = store_at(tmp_path, "f")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\nu2\n"), "--db", db)
    stamps = "profile_id,type,timestamp\nu1,e,1751284800700\n"  # 2025-06-30T12:00:00.700Z
    ok("import", "events", write(tmp_path / "e.csv", stamps), "--db", db, "--time-format", "epoch_ms")
    ok(
        "import",
        "events",
        write(tmp_path / "l.csv", "profile_id,type,timestamp\nu2,l,2025-06-30T23:59:59.999999Z\n"),
        "--db",
        db,
    )
    assert count(db, "{event: e}", "2025-06-30T12:00:00.700Z") == 1
    assert count(db, "{event: e}", "2025-06-30T12:00:00.6999Z") == 0
    assert count(db, "{event: l, within: {between: [2025-06-30, 2025-06-30]}}") == 1
    assert count(db, "{event: l}", "2025-06-30") == 1
    assert count(db, "{event: l}", "2025-06-30T23:59:59.999998Z") == 0


def test_an_entity_keeps_its_link(tmp_path: Path) -> None:
    db = store_at(tmp_path, "m")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\n"), "--db", db)
    ok(
        "import",
        "events",
        write(tmp_path / "e.csv", "profile_id,type,timestamp,item\nu1,buy,2024-03-01,K1\n"),
        "--db",
        db,
    )
    products = write(tmp_path / "i.csv", "code,colour\nK1,Red\n")
    ok("import", "entity", "item_info", products, "--db", db, "--key", "code", "--link", "item")
    rule = "{event: buy, where: [{attribute: item_info.colour, op: equals, value: Red}]}"
    assert count(db, rule, "2024-06-30") == 1
    before = digest(db)
    result = invoke("import", "entity", "item_info", products, "--db", db, "--key", "code", "--link", "sku")
    assert count(db, rule, "2024-06-30") == 1
    assert result.exit_code == 2 and digest(db) == before
    assert result.stderr.strip() == (
        "Error: Entity 'item_info' is linked from the event field 'item' in the store, not 'sku';"
        " use --link item (or import it under another name)."
    )
    ok("import", "entity", "item_info", products, "--db", db, "--key", "code", "--link", "item")


@pytest.mark.parametrize(
    ("rule", "path", "resolved"),
    [
        (
            "{attribute: joined, op: between, value: [today, {ago: 5, unit: days}]}",
            "rule.value",
            "'between' needs low <= high; as of 2025-06-30,"
            " [today, {ago: 5, unit: days}] is [2025-06-30, 2025-06-25]",
        ),
        (
            "{attribute: seen, op: between, value: [{from_now: 1, unit: days}, '2025-06-30T12:00:00Z']}",
            "rule.value",
            "[{from_now: 1, unit: days}, 2025-06-30T12:00:00+00:00]"
            " is [2025-07-01, 2025-06-30T12:00:00+00:00]",
        ),
        (
            "{event: purchase, within: {between: [today, {ago: 5, unit: days}]}}",
            "rule.within.between",
            "'between' needs start <= end; as of 2025-06-30,"
            " [today, {ago: 5, unit: days}] is [2025-06-30, 2025-06-25]",
        ),
        (
            "{not: {event: view, within: {between: [{ago: 1, unit: weeks}, 2025-06-01]}}}",
            "rule.not.within.between",
            "[{ago: 1, unit: weeks}, 2025-06-01] is [2025-06-23, 2025-06-01]",
        ),
    ],
)
def test_relative_between_bounds_in_the_wrong_order_are_refused(
    shop: Path, tmp_path: Path, rule: str, path: str, resolved: str
) -> None:
    message = count_error(shop, rule)
    assert len(message.strip().splitlines()) == 1, message
    assert f"bad.yaml:1: {path}: " in message and resolved in message
    segment = write(tmp_path / "s.yaml", f"rule: {rule}\n")
    printed = invoke("sql", segment, "--db", shop, "--as-of", AS_OF)  # the query is refused too
    assert printed.exit_code == 2 and resolved in printed.stderr


def test_relative_bounds_are_checked_at_the_as_of_date(shop: Path, tmp_path: Path) -> None:
    # A month back and 30 days back: in order on 2024-03-31, not on 2024-03-01.
    rule = "{attribute: joined, op: between, value: [{ago: 1, unit: months}, {ago: 30, unit: days}]}"
    assert count(shop, rule, "2024-03-31") == 1  # [02-29, 03-01]: Bob
    message = count_error(shop, rule, "2024-03-01")
    assert (
        "as of 2024-03-01, [{ago: 1, unit: months}, {ago: 30, unit: days}] is [2024-02-01, 2024-01-31]"
        in (message)
    )
    # Inside a referenced segment, the error names that segment's file and line.
    write(
        tmp_path / "recent.yaml",
        "id: recent\nrule:\n  attribute: joined\n  op: between\n  value: [today, {ago: 5, unit: days}]\n",
    )
    top = write(tmp_path / "top.yaml", "rule: {any: [{attribute: vip, op: is_true}, {segment: recent}]}\n")
    result = invoke("count", top, "--db", shop, "--as-of", AS_OF)
    assert result.exit_code == 2
    assert f"{tmp_path / 'recent.yaml'}:5: rule.value: 'between' needs low <= high" in result.stderr


def test_relative_bounds_of_an_event_field_are_checked_too(tmp_path: Path) -> None:
    db = store_at(tmp_path, "d")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\n"), "--db", db)
    events = "profile_id,type,timestamp,due\nu1,bill,2025-06-01,2025-06-28\n"
    ok("import", "events", write(tmp_path / "e.csv", events), "--db", db)
    good = "{event: bill, where: [{attribute: due, op: between, value: [{ago: 5, unit: days}, today]}]}"
    assert count(db, good) == 1
    message = count_error(db, good.replace("[{ago: 5, unit: days}, today]", "[today, {ago: 5, unit: days}]"))
    assert "rule.where[0].value: 'between' needs low <= high; as of 2025-06-30" in message


MISSING_FILE_COMMANDS = [
    ("import", "profiles", "FILE"),
    ("import", "events", "FILE"),
    ("import", "entity", "product", "FILE", "--key", "sku", "--link", "sku"),
    ("count", "FILE"),
    ("sql", "FILE"),
    ("activate", "FILE"),
    ("segments", "save", "FILE"),
]


@pytest.mark.parametrize("command", MISSING_FILE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("kind", "why"), [("missing", "no such"), ("folder", "is a folder")])
def test_a_missing_import_file_is_one_message(
    shop: Path, tmp_path: Path, command: tuple[str, ...], kind: str, why: str
) -> None:
    target = tmp_path / "nope.csv"
    if kind == "folder":
        target.mkdir()
    before = digest(shop)
    args = [str(target) if part == "FILE" else part for part in command]
    result = invoke(*args, "--db", shop)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(target) in result.stderr and why in result.stderr
    assert "Usage" not in result.output
    assert digest(shop) == before
    assert not (campaign_beside(shop)).exists()


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            "{event: purchase, where: [{attribute: zork.qqqq, op: equals, value: 1}]}",
            "rule.where[0].attribute: unknown entity 'zork' in 'zork.qqqq'. Known entities: product.",
        ),
        (
            "{event: purchase, where: [{attribute: sku.code, op: equals, value: 1}]}",
            "Known entities: product. 'sku' is an event field, not an entity: write attribute: sku.",
        ),
        (
            "{event: purchase, where: [{attribute: amount, op: equals, value: lots}]}",
            "rule.where[0].value: 'amount' is a number event field; 'lots' is not a number",
        ),
        (
            "{attribute: age, op: equals, value: true}",
            "rule.value: 'age' is an integer attribute; true is not a whole number",
        ),
        ("{event: purchase, count: {op: at_least, value: false}}", "got false"),
        (
            "{any: [{attribute: vip, op: is_true}, {segment: nosuch}]}",
            "rule.any[1].segment: unknown segment 'nosuch'",
        ),
    ],
)
def test_messages_use_the_words_of_the_spec(shop: Path, rule: str, fragment: str) -> None:
    message = count_error(shop, rule)
    assert len(message.strip().splitlines()) == 1, message
    assert fragment in message
    assert "True" not in message and "False" not in message and "Known: amount" not in message


@only_on("sqlite")
def test_a_junk_campaign_store_is_called_a_campaign_store(shop: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 50)
    segment = write(tmp_path / "all.yaml", "rule: {all: []}\n")
    for args in (
        ("activate", segment, "--db", shop, "--campaign-db", junk, "--as-of", AS_OF),
        ("audiences", "list", "--db", shop, "--campaign-db", junk),
    ):
        result = invoke(*args)
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"Error: {junk} is not an Audiences campaign store (not an SQLite database)."
        )
    assert junk.read_bytes() == b"not a database at all " * 50


def test_every_subcommand_finds_the_store_as_import_does(
    own_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIENCES_DB", raising=False)
    segment = write(tmp_path / "vips.yaml", "id: vips\nname: VIPs\nrule: {attribute: vip, op: is_true}\n")

    def counted(*args: str | Path) -> int:
        return int(json.loads(ok(*args, "--as-of", AS_OF, "--json").stdout)["count"])

    # The spec's forms, then the top-level --db, then $AUDIENCES_DB: the same store each time.
    assert counted("count", segment, "--db", own_shop) == 2
    assert counted("--db", own_shop, "count", segment) == 2
    assert "SELECT" in ok("--db", own_shop, "sql", segment).stdout
    ok("--db", own_shop, "segments", "save", segment)
    assert "vips" in ok("--db", own_shop, "segments", "list").stdout
    assert "VIPs" in ok("--db", own_shop, "segments", "show", "vips").stdout
    monkeypatch.setenv("AUDIENCES_DB", str(own_shop))
    assert counted("count", "vips") == 2
    assert "SELECT" in ok("sql", "vips").stdout
    assert counted("activate", "vips") == 2
    assert (campaign_beside(own_shop)).exists()
    exported = tmp_path / "out.yaml"
    ok("segments", "export", "vips", "-o", exported)
    assert yaml.safe_load(exported.read_text())["id"] == "vips"
    ok("segments", "delete", "vips")
    assert "vips" not in ok("--db", own_shop, "segments", "list").stdout
    # A subcommand's own --db wins over the top-level one and over $AUDIENCES_DB.
    other = store_at(tmp_path, "other")
    ok("import", "profiles", write(tmp_path / "one.csv", "id\nz1\n"), "--db", other)
    everyone = write(tmp_path / "everyone.yaml", "rule: {all: []}\n")
    result = ok("--db", own_shop, "count", everyone, "--db", other, "--json")
    assert json.loads(result.stdout)["total"] == 1


@only_on("sqlite")
@pytest.mark.parametrize(
    "command",
    [
        ("count", "SEGMENT"),
        ("sql", "SEGMENT"),
        ("activate", "SEGMENT"),
        ("segments", "save", "SEGMENT"),
        ("segments", "list"),
        ("segments", "show", "vips"),
        ("segments", "export", "vips"),
        ("segments", "delete", "vips"),
        ("import", "profiles", "SEGMENT"),
    ],
    ids=" ".join,
)
def test_no_store_given_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.delenv("AUDIENCES_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    segment = write(tmp_path / "vips.yaml", "id: vips\nrule: {all: []}\n")
    result = invoke(*(str(segment) if part == "SEGMENT" else part for part in command))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: No profile store given: pass --db PATH (after the subcommand or before it)"
        " or set $AUDIENCES_DB."
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vips.yaml"]


@only_on("sqlite")
def test_sample_never_refills_the_store_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIENCES_DB", str(tmp_path / "mine.db"))
    result = invoke("sample", "--profiles", "5", "--quiet")
    assert result.exit_code == 2 and "$AUDIENCES_DB is not used here" in result.stderr
    assert not (tmp_path / "mine.db").exists()


def test_an_as_of_outside_the_calendar_says_so(tmp_path: Path) -> None:
    db = store_at(tmp_path, "s")
    ok("import", "profiles", write(tmp_path / "p.csv", "id\nu1\n"), "--db", db)
    segment = write(tmp_path / "r.yaml", "rule: {all: []}\n")
    result = invoke("count", segment, "--db", db, "--as-of", "9999-12-31T23:59:59-05:00")
    assert result.exit_code == 2
    assert "falls outside the years 1-9999 in UTC" in result.stderr
