"""Saving a folder of segment files, as the first-run store does with the examples."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sample_data import SEGMENTS_DIR
from store.engines.sqlite import open_store
from store.query import audience
from store.sample.generator import generate_sample
from store.segments.library import list_segments, resolve_saved, save_segment_files


def test_example_segments_save_and_count(tmp_path: Path) -> None:
    path = tmp_path / "sample.db"
    generate_sample(path, profiles=400, seed=3, until=dt.date(2026, 11, 1))
    conn = open_store(path)
    try:
        saved = save_segment_files(conn, SEGMENTS_DIR)
        files = {p.stem for p in SEGMENTS_DIR.glob("*.yaml")}
        assert saved and set(saved) <= files
        assert {s.id for s in list_segments(conn)} == files  # references were saved with them
        assert save_segment_files(conn, SEGMENTS_DIR) == []  # already there: left alone
        as_of = dt.datetime(2026, 11, 1, 23, 59, 59, tzinfo=dt.UTC)
        for item in list_segments(conn):
            size = audience.count(conn, resolve_saved(conn, item.id), as_of)
            assert 0 <= size <= 400
    finally:
        conn.close()
