"""Hardening: whatever a segment file holds, `count` ends in a count or one clear error (exit 2).

Segment files come from marketers, editors and scripts. They are fuzzed here
three ways: hypothesis text and YAML-shaped data straight into the reader and
the validator; random mutations of the shipped example segments (wrong types,
missing, unknown and misspelt keys, huge lists, deep nesting, unicode, binary
junk, duplicate keys, anchors) through the real CLI command; and the classic
attacks (alias bombs, 2,000-deep nesting, 10,000 conditions) one by one. Every
case must finish quickly, in bounded memory, as either a count (exit 0) or a
single ``Error: ...`` line (exit 2), and never a traceback.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import random
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engines.sqlite import open_store
from store.sample.generator import generate_sample
from store.schema.catalog import Catalog
from store.segments.errors import SegmentError
from store.segments.library import make_lookup
from store.segments.validate import validate_segment
from store.segments.yamlio import MAX_CONDITIONS, MAX_DEPTH, load_segment_text
from tui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "sample_data" / "segments"
AS_OF = "2026-06-30"
COUNT_LINE = re.compile(r"^[\d,]+ \([\d.]+% of [\d,]+\) in [\d.]+ ms$")
CASE_SECONDS = 15.0  # a generous bound for one case on a loaded 2-core machine


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small sample store and a folder holding copies of every example segment."""
    folder = tmp_path_factory.mktemp("segfuzz")
    db = folder / "shop.db"
    generate_sample(db, profiles=300, seed=7, until=dt.date(2026, 6, 30))
    files = folder / "segments"
    shutil.copytree(EXAMPLES, files)
    return db, files


def count(db: Path, file: Path) -> Result:
    return CliRunner().invoke(cli, ["count", str(file), "--db", str(db), "--as-of", AS_OF])


def assert_clean(result: Result) -> int:
    """Exit 0 with a count line, or exit 2 with exactly one ``Error:`` line; never a traceback."""
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{output}")
    assert result.exit_code in (0, 2), f"exit {result.exit_code}: {output}"
    lines = output.rstrip("\n").split("\n")
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{output}"
    if result.exit_code == 0:
        assert COUNT_LINE.match(lines[0]), output
    else:
        assert lines[0].startswith("Error: "), output
        assert "unexpected" not in lines[0], output  # the CLI's last-resort handler
    return result.exit_code


def timed_count(db: Path, file: Path) -> tuple[int, str]:
    started = time.monotonic()
    result = count(db, file)
    code = assert_clean(result)
    assert time.monotonic() - started < CASE_SECONDS, f"{file.name} took too long"
    return code, result.output


# ------------------------------------------------------------------ the examples themselves


def test_every_example_segment_counts(env: tuple[Path, Path]) -> None:
    db, files = env
    for file in sorted(files.glob("*.yaml")):
        code, output = timed_count(db, file)
        assert code == 0, f"{file.name}: {output}"


# ------------------------------------------------------------------ structural mutations

JUNK_VALUES: list[Any] = [
    None, 0, -1, 1.5, True, False, "", "x" * 5000, [], {}, [1, 2, 3], {"a": 1},
    "2026-13-45", "\u202eevil", "💥🎯", "'; DROP TABLE profiles; --", "%_\\", "nan", "inf",
    -(2**70), 2**70, 1e308, {"ago": -3, "unit": "days"}, {"amount": 5, "unit": "fortnights"},
    {"from_now": 2, "unit": "weeks"}, "today", ["today", "today"], [None], [[1, 2]],
    "1970-01-01T00:00:00Z", "0000-01-01", "9999-12-31",
]
TYPO_KEYS = ["atribute", "opp", "vaule", "al", "anyy", "nott", "evnt", "withn", "cout", "segmnt"]
UNKNOWN_KEYS = ["extra", "weight", "__proto__", "💥", "1", "rule"]


def _containers(data: Any, found: list[Any]) -> list[Any]:
    """Every dict and list inside ``data`` (the places a mutation can land)."""
    if isinstance(data, dict):
        found.append(data)
        for value in data.values():
            _containers(value, found)
    elif isinstance(data, list):
        found.append(data)
        for value in data:
            _containers(value, found)
    return found


def mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One random structural change of a parsed segment."""
    data = copy.deepcopy(data)
    places = _containers(data, [])
    mappings = [p for p in places if isinstance(p, dict) and p]
    lists = [p for p in places if isinstance(p, list) and p]
    kind = rng.choice(["delete", "junk", "unknown", "typo", "huge_list", "wrap_not", "repeat",
                       "swap_kind", "unicode", "rule_junk", "many_children"])
    if kind == "delete" and mappings:
        target = rng.choice(mappings)
        del target[rng.choice(list(target))]
    elif kind == "junk" and mappings:
        target = rng.choice(mappings)
        target[rng.choice(list(target))] = copy.deepcopy(rng.choice(JUNK_VALUES))
    elif kind == "unknown" and mappings:
        rng.choice(mappings)[rng.choice(UNKNOWN_KEYS)] = rng.choice(JUNK_VALUES)
    elif kind == "typo" and mappings:
        target = rng.choice(mappings)
        key = rng.choice(list(target))
        target[rng.choice(TYPO_KEYS)] = target.pop(key)
    elif kind == "huge_list":
        target = rng.choice(mappings) if mappings else data
        target[rng.choice(list(target) or ["value"])] = [rng.choice(["x", 1, None])] * 20_000
    elif kind == "wrap_not":
        rule: Any = data.get("rule")
        for _ in range(rng.randint(1, 300)):
            rule = {"not": rule}
        data["rule"] = rule
    elif kind == "repeat" and lists:
        chosen: list[Any] = rng.choice(lists)
        chosen.extend(copy.deepcopy(chosen[:1]) * rng.randint(1, 300))
    elif kind == "swap_kind" and mappings:
        target = rng.choice(mappings)
        key = rng.choice(list(target))
        new = rng.choice(["all", "any", "not", "attribute", "event", "segment"])
        if new not in target:
            target[new] = target.pop(key)
    elif kind == "unicode" and mappings:
        target = rng.choice(mappings)
        key = rng.choice(list(target))
        target[key] = rng.choice(["Ünïcødé", "名前", "مرحبا", "\u200b", "🏳️‍🌈", "a\u0301", "\ufeff"])
    elif kind == "rule_junk":
        data["rule"] = copy.deepcopy(rng.choice(JUNK_VALUES))
    elif kind == "many_children":
        data["rule"] = {rng.choice(["all", "any"]): [data.get("rule")] * rng.randint(50, 500)}
    return data


TEXT_MUTATIONS = ("truncate", "bytes", "duplicate_line", "tab", "anchor", "bom", "delete_char",
                  "latin1")


def mutate_text(raw: bytes, rng: random.Random) -> bytes:
    """One random change of a segment file's bytes."""
    kind = rng.choice(TEXT_MUTATIONS)
    cut = rng.randrange(len(raw) + 1)
    if kind == "truncate":
        return raw[:cut]
    if kind == "bytes":
        return raw[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + raw[cut:]
    if kind == "duplicate_line":
        lines = raw.split(b"\n")
        at = rng.randrange(len(lines))
        lines.insert(at, lines[at])
        return b"\n".join(lines)
    if kind == "tab":
        return raw[:cut] + b"\t" + raw[cut:]
    if kind == "anchor":
        return raw[:cut] + rng.choice([b" &a ", b" *a ", b" *nope ", b" !!python/object ", b" !x "]) \
            + raw[cut:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    if kind == "delete_char":
        return raw[:cut] + raw[cut + 1:]
    return raw.decode("utf-8").replace("e", "\xe9").encode("latin-1", errors="replace")


def _run_mutations(env: tuple[Path, Path], runs: int, seed: int) -> dict[int, int]:
    db, files = env
    rng = random.Random(seed)
    examples = sorted(EXAMPLES.glob("*.yaml"))
    outcomes = {0: 0, 2: 0}
    for number in range(runs):
        source = rng.choice(examples)
        target = files / f"zz-mutant-{seed}-{number}.yaml"
        if number % 3 == 0:
            target.write_bytes(mutate_text(source.read_bytes(), rng))
        else:
            data = mutate(yaml.safe_load(source.read_text(encoding="utf-8")), rng)
            # JSON is YAML too, and its encoder copes with the deep mutants
            text = (json.dumps(data, ensure_ascii=False) if number % 2
                    else yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
            target.write_text(text, encoding="utf-8")
        code, _ = timed_count(db, target)
        outcomes[code] += 1
        target.unlink()
    return outcomes


def test_mutated_examples_count_or_fail_cleanly(env: tuple[Path, Path]) -> None:
    outcomes = _run_mutations(env, runs=100, seed=2026)
    # not vacuous: some mutants are still valid segments, most are not
    assert outcomes[0] >= 3 and outcomes[2] >= 40, outcomes


@pytest.mark.slow
def test_many_mutated_examples(env: tuple[Path, Path]) -> None:
    for seed in range(10):
        _run_mutations(env, runs=300, seed=seed)


# ------------------------------------------------------------------ hypothesis: reader and validator

NAMES = ["gender", "age", "country", "email", "lifetime_value", "birth_date", "loyalty_tier",
         "purchase", "page_view", "amount", "product.category", "order_id", "unsubscribed", "*",
         "nope", ""]
KEYS = ["all", "any", "not", "attribute", "event", "segment", "op", "value", "where", "within",
        "count", "aggregate", "last", "unit", "between", "distinct", "fn", "amount", "ago",
        "from_now", "id", "name", "rule", "description"]
OPS = ["equals", "not_equals", "in", "not_in", "contains", "starts_with", "ends_with", "is_empty",
       "greater_than", "between", "on", "before", "after", "in_last", "in_next", "is_true",
       "at_least", "at_most", "exactly", "sum", "avg", "days", "months", "bogus"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(NAMES + OPS + ["today", "2026-01-31", "2026-02-30", "2026-01-31T10:00:00Z"]),
)
yamlish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=40,
)


@pytest.fixture(scope="module")
def catalog_and_lookup(env: tuple[Path, Path]) -> Any:
    conn = open_store(env[0], readonly=True)
    yield Catalog.load(conn), make_lookup(conn), conn
    conn.close()


def _load_and_validate(text: str, catalog: Catalog, lookup: Any) -> None:
    try:
        segment, lines = load_segment_text(text, "fuzz.yaml")
        validate_segment(segment, catalog, lines, lookup)
    except SegmentError as exc:
        assert str(exc).startswith("fuzz.yaml"), str(exc)
        assert "\n" not in str(exc), str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=400))
def test_arbitrary_text_is_read_or_refused(text: str, catalog_and_lookup: Any) -> None:
    catalog, lookup, _ = catalog_and_lookup
    _load_and_validate(text, catalog, lookup)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(rule=yamlish, name=st.one_of(st.none(), st.text(max_size=20)), as_rule=st.booleans())
def test_yaml_shaped_data_is_validated_or_refused(rule: Any, name: str | None, as_rule: bool,
                                                  catalog_and_lookup: Any) -> None:
    catalog, lookup, _ = catalog_and_lookup
    data = {"name": name, "rule": rule} if as_rule else rule
    text = yaml.safe_dump(data, allow_unicode=True)
    _load_and_validate(text, catalog, lookup)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
@given(rule=yamlish)
def test_yaml_shaped_data_long_run(rule: Any, catalog_and_lookup: Any) -> None:
    catalog, lookup, _ = catalog_and_lookup
    _load_and_validate(yaml.safe_dump({"name": "x", "rule": rule}, allow_unicode=True), catalog,
                       lookup)


# ------------------------------------------------------------------ one attack at a time


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _bomb(levels: int, where: str) -> str:
    """A "billion laughs" document: each anchor is a list of ten of the one before."""
    anchors = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        anchors.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    if where == "value":
        items = "\n".join(f"    - {{attribute: country, op: in, value: {a}}}" for a in anchors)
        return f"name: bomb\nrule:\n  any:\n{items}\n"
    if where == "description":
        return ("name: bomb\nrule:\n  any:\n"
                + "\n".join(f"    - {{attribute: country, op: in, value: {a}}}" for a in anchors[:1])
                + f"\ndescription: {anchors[0]}\n")
    # where: the rule tree itself, nodes aliased into groups of ten
    nodes = ["&n0 {attribute: country, op: equals, value: US}"]
    for level in range(1, levels):
        nodes.append(f"&n{level} {{any: [" + ", ".join([f"*n{level - 1}"] * 10) + "]}")
    return "name: bomb\nrule:\n  all:\n" + "\n".join(f"    - {n}" for n in nodes) + "\n"


@pytest.mark.parametrize("where", ["value", "rule", "description"])
def test_alias_bombs_are_refused_quickly_in_bounded_memory(env: tuple[Path, Path], where: str) -> None:
    db, files = env
    text = _bomb(9, where)
    tracemalloc.start()
    try:
        started = time.monotonic()
        with contextlib.suppress(SegmentError):
            load_segment_text(text, "bomb.yaml")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 10 and peak < 200 * 2**20, (elapsed, peak)
    code, output = timed_count(db, _write(files, f"zz-bomb-{where}.yaml", text))
    if where != "description":
        assert code == 2 and ("too large" in output or "conditions" in output), output


ATTACKS: dict[str, str | bytes] = {
    "duplicate-key": "name: a\nname: b\nrule: {all: []}\n",
    "duplicate-key-in-node": "rule: {attribute: country, attribute: gender, op: is_empty}\n",
    "undefined-alias": "rule: *nothing\n",
    "self-alias": "rule: &a {not: *a}\n",
    "merge-key": "base: &b {op: is_empty}\nrule: {attribute: country, <<: *b}\n",
    "python-tag": "rule: !!python/object/apply:os.system ['echo hi']\n",
    "binary-tag": "rule: {attribute: country, op: equals, value: !!binary aGVsbG8=}\n",
    "set-tag": "rule: {attribute: country, op: in, value: !!set {US: null}}\n",
    "timestamp-value": "rule: {attribute: birth_date, op: on, value: 2001-12-14t21:59:43.10-05:00}\n",
    "nul-bytes": b"rule: {attribute: country, op: equals, value: US}\x00\n",
    "escaped-nul": 'rule: {attribute: country, op: equals, value: "U\\0S"}\n',
    "binary-junk": bytes(range(256)) * 4,
    "latin-1": "name: caf\xe9\nrule: {all: []}\n".encode("latin-1"),
    "utf-16": "rule: {all: []}\n".encode("utf-16"),
    "bom": "\ufeffname: bom\nrule: {all: []}\n",
    "empty": "",
    "only-comment": "# nothing here\n",
    "list-document": "- rule: {all: []}\n",
    "scalar-document": "just words\n",
    "two-documents": "rule: {all: []}\n---\nrule: {any: []}\n",
    "key-is-a-list": "[rule]: {all: []}\n",
    "key-is-null": "~: {all: []}\nrule: {all: []}\n",
    "huge-key": "rule: {" + "k" * 100_000 + ": 1}\n",
    "huge-string": "name: " + "n" * 1_000_000 + "\nrule: {all: []}\n",
    "too-large-file": "description: " + "d" * 6_000_000 + "\nrule: {all: []}\n",
    "rtl-and-emoji-name": "name: \u202e🎯 مرحبا\nrule: {all: []}\n",
    "unicode-attribute": "rule: {attribute: ägé, op: is_empty}\n",
    "sql-attribute": "rule: {attribute: 'x\"; DROP TABLE profiles; --', op: is_empty}\n",
    "sql-event": "rule: {event: \"purchase'; DROP TABLE events; --\"}\n",
    "sql-entity-field": "rule: {event: purchase, where: [{attribute: 'product.x\" OR 1=1 --',"
                        " op: is_empty}]}\n",
    "sql-segment-ref": "rule: {segment: \"../../etc/passwd\"}\n",
    "path-ref": "rule: {segment: \"/tmp\"}\n",
    "big-integer": "rule: {attribute: lifetime_value, op: greater_than, value: 1" + "0" * 400 + "}\n",
    "big-count": "rule: {event: purchase, count: {op: at_least, value: 1" + "0" * 30 + "}}\n",
    "negative-window": "rule: {event: purchase, within: {last: -5, unit: days}}\n",
    "huge-window": "rule: {event: purchase, within: {last: 99999999999, unit: years}}\n",
    "huge-relative-date": "rule: {attribute: birth_date, op: after, value: {ago: 99999999, unit: years}}\n",
    "huge-period": "rule: {attribute: birth_date, op: in_last, value: {amount: 99999999999, unit: days}}\n",
    "year-zero": "rule: {attribute: birth_date, op: on, value: '0000-01-01'}\n",
    "nan-value": "rule: {attribute: lifetime_value, op: greater_than, value: .nan}\n",
    "inf-value": "rule: {attribute: lifetime_value, op: less_than, value: .inf}\n",
    "huge-in-list": "rule: {attribute: country, op: in, value: ["
                    + ", ".join(f"c{i}" for i in range(100_001)) + "]}\n",
    "deep-lists": "rule: {attribute: country, op: in, value: " + "[" * 500 + "]" * 500 + "}\n",
    "deep-flow-2000": "rule: " + "{not: " * 2000 + "{all: []}" + "}" * 2000 + "\n",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_files_end_in_a_count_or_one_error(env: tuple[Path, Path], name: str) -> None:
    db, files = env
    code, output = timed_count(db, _write(files, f"zz-attack-{name}.yaml", ATTACKS[name]))
    if name.startswith(("sql-", "duplicate", "python", "nul", "binary-junk", "latin", "utf-16",
                        "huge-in-list", "deep-flow", "too-large", "undefined", "self-", "big-integer",
                        "nan-", "inf-")):
        assert code == 2, output
    conn = open_store(db, readonly=True)
    try:  # nothing an attack did reached the store's tables
        assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 300
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


# ------------------------------------------------------------------ rules the database cannot run


def _deep_not(depth: int, style: str) -> str:
    condition = "{attribute: country, op: equals, value: US}"
    if style == "flow":
        return "name: deep\nrule: " + "{not: " * depth + condition + "}" * depth + "\n"
    lines, indent = ["name: deep", "rule:"], "  "
    for _ in range(depth):
        lines.append(indent + "not:")
        indent += " "
    lines.append(indent + "attribute: country\n" + indent + "op: equals\n" + indent + "value: US")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth,style", [(2000, "flow"), (2000, "block"), (900, "flow"),
                                         (300, "flow"), (300, "block")])
def test_deep_not_chains_count_or_fail_cleanly(env: tuple[Path, Path], depth: int, style: str) -> None:
    db, files = env
    code, output = timed_count(db, _write(files, f"zz-deep-{depth}-{style}.yaml",
                                          _deep_not(depth, style)))
    if depth >= 2000:
        assert code == 2 and "deep" in output, output


@pytest.mark.parametrize("kind", ["all", "any"])
def test_deep_alternating_groups_count_or_fail_cleanly(env: tuple[Path, Path], kind: str) -> None:
    """Groups nested inside groups (each level one more subquery or parenthesis)."""
    db, files = env
    condition = "{event: purchase, where: [{attribute: amount, op: greater_than, value: 1}]}"
    depth = 450
    other = "any" if kind == "all" else "all"
    text = "".join(f"{{{kind if i % 2 else other}: [{condition}, " for i in range(depth))
    text += condition + "]}" * depth
    timed_count(db, _write(files, f"zz-deepgroups-{kind}.yaml", f"name: deep\nrule: {text}\n"))


def _wide(kind: str, children: int) -> str:
    items = "".join(f"    - {{attribute: lifetime_value, op: equals, value: {i}}}\n"
                    for i in range(children))
    return f"name: wide\nrule:\n  {kind}:\n{items}"


def test_ten_thousand_children_of_any_count_exactly(env: tuple[Path, Path]) -> None:
    db, files = env
    conn = open_store(db, readonly=True)
    try:
        wanted = conn.execute(
            "SELECT count(*) FROM profiles WHERE lifetime_value IN"
            " (SELECT value FROM json_each(?))", (str(list(range(10_000))),)).fetchone()[0]
    finally:
        conn.close()
    result = CliRunner().invoke(cli, ["count", str(_write(files, "zz-wide.yaml", _wide("any", 10_000))),
                                      "--db", str(db), "--as-of", AS_OF, "--json"])
    assert result.exit_code == 0, result.output
    assert f'"count": {wanted},' in result.output


def test_more_conditions_than_the_limit_are_refused_with_the_node(env: tuple[Path, Path]) -> None:
    db, files = env
    code, output = timed_count(db, _write(files, "zz-wider.yaml", _wide("all", MAX_CONDITIONS + 1)))
    assert code == 2
    assert f"rule.all[{MAX_CONDITIONS}]" in output and "conditions" in output


def test_the_real_command_refuses_a_deep_rule_without_a_traceback(env: tuple[Path, Path]) -> None:
    """The installed entry point (not click's test runner): stderr holds one line, exit 2."""
    db, files = env
    file = _write(files, "zz-deep-real.yaml", _deep_not(2000, "flow"))
    done = subprocess.run([sys.executable, "-m", "tui.cli", "count", str(file), "--db", str(db)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ")
    assert "Traceback" not in done.stderr


def test_a_rule_at_the_depth_limit_counts_saves_and_activates(env: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    """Every command that walks the rule (count, save, activate, export) copes with MAX_DEPTH;
    one level more is refused with the node's path (900 levels used to count, then crash
    `segments save` and `activate` with a RecursionError)."""
    db, files = env
    copy_db = tmp_path / "shop.db"
    shutil.copyfile(db, copy_db)
    condition = "{attribute: loyalty_tier, op: equals, value: gold}"
    for depth, code in ((MAX_DEPTH, 0), (MAX_DEPTH + 1, 2)):
        text = (f"id: deep-{depth}\nname: Deep\nrule: " + "{all: [{not: " * (depth // 2)
                + ("{not: " if depth % 2 else "") + condition + ("}" if depth % 2 else "")
                + "}]}" * (depth // 2) + "\n")
        file = _write(files, f"zz-limit-{depth}.yaml", text)
        for args in (["count", str(file), "--as-of", AS_OF], ["segments", "save", str(file)],
                     ["activate", str(file), "--as-of", AS_OF,
                      "--campaign-db", str(tmp_path / "campaign.db")],
                     ["sql", str(file)]):
            result = CliRunner().invoke(cli, [*args, "--db", str(copy_db)])
            assert result.exit_code == code, f"{args[0]}: {result.output[-300:]}"
            assert result.exception is None or isinstance(result.exception, SystemExit)
            if code:
                assert "nested more than" in result.output
    exported = CliRunner().invoke(cli, ["segments", "export", f"deep-{MAX_DEPTH}", "--db", str(copy_db)])
    assert exported.exit_code == 0 and exported.output.count("not:") == MAX_DEPTH // 2
