"""Shared helpers for the engine tests: a rule as plain data -> validated segment -> members."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import yaml

from store.query.compiler import CompiledQuery, compile_segment, count_query
from store.schema.catalog import Catalog
from store.segments.library import make_lookup
from store.segments.model import Segment, slugify
from store.segments.validate import ResolvedSegment, validate_segment
from store.segments.yamlio import load_segment_text

UTC = dt.UTC


def resolve_rule(conn: sqlite3.Connection, rule: Any, name: str = "test") -> ResolvedSegment:
    """A rule validated against the store: plain data goes through YAML as a user would write
    it; a model node (for very large rules) is validated directly."""
    if isinstance(rule, dict):
        text = yaml.safe_dump({"name": name, "rule": rule}, sort_keys=False, allow_unicode=True)
        segment, lines = load_segment_text(text)
    else:
        segment, lines = Segment(id=slugify(name), name=name, rule=rule), {}
    return validate_segment(segment, Catalog.load(conn), lines, make_lookup(conn))


def compiled(conn: sqlite3.Connection, rule: Any, as_of: dt.datetime) -> CompiledQuery:
    return compile_segment(resolve_rule(conn, rule), Catalog.load(conn), as_of)


def members(conn: sqlite3.Connection, rule: Any, as_of: dt.datetime) -> set[str]:
    """External ids of the profiles the rule selects at ``as_of``, through the compiled SQL."""
    query = compiled(conn, rule, as_of)
    conn.execute("PRAGMA case_sensitive_like = OFF")
    pks = [row[0] for row in conn.execute(query.sql, query.params)]
    assert len(pks) == len(set(pks)), "the compiled query returned a pk twice"
    counted = count_query(query)
    assert conn.execute(counted.sql, counted.params).fetchone()[0] == len(pks)
    ids = dict(conn.execute("SELECT pk, id FROM profiles"))
    return {ids[pk] for pk in pks}
