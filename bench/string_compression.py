"""How DuckDB's compression of text columns bears on string conditions, on a copy of a store's
profiles made three ways, each timed in its own read-only connection (best of 5):

- ``auto``: as every store is written today (DuckDB picks DICT_FSST for every text column);
- ``no fsst``: ``disabled_compression_methods = 'fsst,dict_fsst'`` (every text column uncompressed);
- ``email uncompressed``: only ``email`` declared ``USING COMPRESSION uncompressed``.

    .venv/bin/python bench/string_compression.py bench/data/sample-10000000.duckdb /tmp/compression

DuckDB 1GB / 2 threads, as the engine's defaults.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

CONDITIONS = {
    "email ends with @gmail.com (ILIKE)": "email ILIKE '%@gmail.com'",
    "city contains 'mun' (folded)": "lower(city) LIKE '%mun%'",
    "loyalty_tier = gold": "loyalty_tier = 'gold'",
    "country in 4": "country IN ('GB', 'DE', 'FR', 'NL')",
}
CONFIG = {"threads": 2, "memory_limit": "1GB"}


def build(source: Path, target: Path, way: str) -> float:
    """The store's profiles copied into ``target`` the given way; returns seconds."""
    target.unlink(missing_ok=True)
    conn = duckdb.connect(str(target), config=CONFIG)
    try:
        conn.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        started = time.perf_counter()
        if way == "no fsst":
            conn.execute("SET disabled_compression_methods = 'fsst,dict_fsst'")
        if way == "email uncompressed":
            conn.execute("CREATE TABLE profiles AS SELECT * FROM source.profiles LIMIT 0")
            conn.execute("ALTER TABLE profiles DROP COLUMN email")
            conn.execute("ALTER TABLE profiles ADD COLUMN email VARCHAR USING COMPRESSION uncompressed")
            names = [row[0] for row in conn.execute("DESCRIBE profiles").fetchall()]
            conn.execute(f"INSERT INTO profiles SELECT {', '.join(names)} FROM source.profiles")
        else:
            conn.execute("CREATE TABLE profiles AS SELECT * FROM source.profiles")
        conn.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        conn.close()


def main(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{source}; load {os.getloadavg()[0]:.1f}")
    for way in ("auto", "no fsst", "email uncompressed"):
        target = folder / (way.replace(" ", "-") + ".duckdb")
        seconds = build(source, target, way)
        conn = duckdb.connect(str(target), read_only=True, config=CONFIG)
        used = dict(conn.execute(
            "SELECT column_name, string_agg(DISTINCT compression, '+') FROM pragma_storage_info('profiles')"
            " WHERE segment_type = 'VARCHAR' GROUP BY 1").fetchall())
        print(f"\n{way}: written in {seconds:.1f} s, {target.stat().st_size / 1e6:,.0f} MB;"
              f" email {used.get('email')}, city {used.get('city')}, country {used.get('country')}")
        for label, condition in CONDITIONS.items():
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                count = conn.execute(f"SELECT count(*) FROM profiles WHERE {condition}").fetchone()
                best = min(best, time.perf_counter() - started)
            print(f"  {label:38} {best * 1000:7.1f} ms  {count[0] if count else None:,}")
        conn.close()
        target.unlink()
    print(f"\nload at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
