"""The sample store's schema labels and example segments, shipped as package data."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DATA_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = SAMPLE_DATA_DIR / "schema.yaml"
SEGMENTS_DIR = SAMPLE_DATA_DIR / "segments"
