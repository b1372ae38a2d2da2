"""Time the three imports through the CLI on generated files (deterministic, numpy).

Usage: .venv/bin/python bench/bench_import.py [--events N] [--profiles N] [--products N]
       [--seed S] [--dir DIR] [--gzip]

Writes profiles.csv (id,first_name,country,birth_date,vip,signup_at,score),
events.csv (profile_id,type,timestamp,sku,amount,quantity) and products.csv
(sku,category,price,launched) into a temporary folder, then runs
``audiences-tui import profiles``, ``import events`` and ``import entity``
into a new store and prints the time and rows/second of each. Target: at
least 100,000 event rows per second for 1,500,000 events.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from tui.cli import cli

START_EPOCH = 1_672_531_200  # 2023-01-01 00:00:00 UTC
SPAN_SECONDS = 730 * 86_400
COUNTRIES = np.array(["FR", "DE", "ES", "IT", "US", "GB", "NL", "BE"])
NAMES = np.array(["Ann", "Bob", "Chloe", "David", "Emma", "Farid", "Greta", "Hugo"])
CATEGORIES = np.array(["Shoes", "Boots", "Hats", "Shirts", "Bags", "Socks"])
TYPES = np.array(["purchase", "page_view", "add_to_cart"])


def _iso(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as 'YYYY-MM-DDTHH:MM:SSZ' strings (numpy does the formatting)."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return np.char.add(text, "Z")


def write_files(folder: Path, events: int, profiles: int, products: int, seed: int,
                compress: bool) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    opener = gzip.open if compress else open
    suffix = ".csv.gz" if compress else ".csv"
    paths = {name: folder / f"{name}{suffix}" for name in ("profiles", "events", "products")}

    ids = np.char.add("c", np.arange(1, profiles + 1).astype(str))
    births = np.datetime_as_string(
        (np.datetime64("1950-01-01") + rng.integers(0, 20_000, profiles)).astype("datetime64[D]")
    )
    signup = _iso(START_EPOCH + rng.integers(0, SPAN_SECONDS, profiles))
    with opener(paths["profiles"], "wt", newline="") as out:
        out.write("id,first_name,country,birth_date,vip,signup_at,score\n")
        names = NAMES[rng.integers(0, len(NAMES), profiles)]
        countries = COUNTRIES[rng.integers(0, len(COUNTRIES), profiles)]
        vip = np.where(rng.random(profiles) < 0.1, "true", "false")
        score = np.round(rng.random(profiles) * 100, 2).astype(str)
        for row in zip(ids, names, countries, births, vip, signup, score, strict=True):
            out.write(",".join(row) + "\n")

    skus = np.char.add("SKU", np.arange(1, products + 1).astype(str))
    with opener(paths["products"], "wt", newline="") as out:
        out.write("sku,category,price,launched\n")
        categories = CATEGORIES[rng.integers(0, len(CATEGORIES), products)]
        prices = np.round(rng.random(products) * 200 + 5, 2).astype(str)
        launched = np.datetime_as_string(
            (np.datetime64("2020-01-01") + rng.integers(0, 1500, products)).astype("datetime64[D]")
        )
        for row in zip(skus, categories, prices, launched, strict=True):
            out.write(",".join(row) + "\n")

    stamps = np.sort(START_EPOCH + rng.integers(0, SPAN_SECONDS, events))
    with opener(paths["events"], "wt", newline="") as out:
        out.write("profile_id,type,timestamp,sku,amount,quantity\n")
        block = 250_000
        for start in range(0, events, block):
            size = min(block, events - start)
            who = ids[rng.integers(0, profiles, size)]
            kind = TYPES[rng.choice(len(TYPES), size, p=[0.2, 0.6, 0.2])]
            when = _iso(stamps[start:start + size])
            sku = skus[rng.integers(0, products, size)]
            amount = np.round(rng.random(size) * 150 + 1, 2).astype(str)
            quantity = rng.integers(1, 5, size).astype(str)
            lines = [",".join(row) for row in zip(who, kind, when, sku, amount, quantity,
                                                   strict=True)]
            out.write("\n".join(lines) + "\n")
    return paths


def run_cli(args: list[str]) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds of one CLI run, and its summary line."""
    runner = CliRunner()
    started, cpu = time.perf_counter(), time.process_time()
    result = runner.invoke(cli, args, catch_exceptions=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.exit_code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.exit_code}): {result.output}")
    summary = [line for line in result.output.splitlines() if line.startswith("Imported")]
    return elapsed, cpu, summary[-1] if summary else result.output.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--gzip", action="store_true", help="compress the files (.csv.gz)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = options.dir or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = write_files(folder, options.events, options.profiles, options.products,
                            options.seed, options.gzip)
        print(f"generated files in {time.perf_counter() - started:.1f} s:"
              + "".join(f" {p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values()))
        db = folder / "bench.db"
        db.unlink(missing_ok=True)
        runs = [
            ("profiles", options.profiles,
             ["import", "profiles", str(paths["profiles"]), "--db", str(db)]),
            ("events", options.events,
             ["import", "events", str(paths["events"]), "--db", str(db)]),
            ("entity", options.products,
             ["import", "entity", "product", str(paths["products"]), "--db", str(db),
              "--key", "sku", "--link", "sku"]),
        ]
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        for name, rows, args in runs:
            elapsed, cpu, output = run_cli(args)
            print(f"{name:9s} {rows:>10,} rows  wall {elapsed:6.2f} s {rows / elapsed:>9,.0f}"
                  f" rows/s  cpu {cpu:6.2f} s {rows / cpu:>9,.0f} rows/s  | {output}")
        print(f"store size {db.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
