"""Time the three imports through the CLI on generated files (deterministic, numpy).

Usage: .venv/bin/python bench/bench_import.py [--events N] [--profiles N] [--products N]
       [--seed S] [--dir DIR [--reuse]] [--gzip] [--db STORE ...] [--no-entity]
       [--before CHECKOUT]

Writes profiles.csv (12 columns: id,first_name,last_name,email,country,city,
birth_date,gender,vip,signup_at,score,loyalty_tier), events.csv
(profile_id,type,timestamp,sku,amount,quantity) and products.csv
(sku,category,price,launched) into a temporary folder, then runs
``audiences-tui import profiles``, ``import events`` and ``import entity``
into a new store and prints the time and rows/second of each. ``--db`` names
the stores to import into, one after the other with the same files (a path
ending in .db or .duckdb, which must not exist yet, or a PostgreSQL URL with
a schema that must be empty; default: bench.db in the folder). Target: at
least 100,000 rows per second on every engine, indexes included.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from store.engines.base import redact

START_EPOCH = 1_672_531_200  # 2023-01-01 00:00:00 UTC
SPAN_SECONDS = 730 * 86_400
COUNTRIES = np.array(["FR", "DE", "ES", "IT", "US", "GB", "NL", "BE"])
NAMES = np.array(["Ann", "Bob", "Chloe", "David", "Emma", "Farid", "Greta", "Hugo"])
SURNAMES = np.array(["Martin", "Smith", "Muller", "Garcia", "Rossi", "Jansen", "Peeters",
                     "Dupont", "Schmidt", "Lopez", "Brown", "Bianchi"])
CITIES = np.array(["Paris", "Berlin", "Madrid", "Rome", "New York", "London", "Amsterdam",
                   "Brussels", "Lyon", "Munich", "Seville", "Milan"])
TIERS = np.array(["bronze", "silver", "gold", "platinum"])
DOMAINS = np.array(["gmail.com", "yahoo.com", "example.org", "mail.fr"])
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
        out.write("id,first_name,last_name,email,country,city,birth_date,gender,vip,signup_at,"
                  "score,loyalty_tier\n")
        names = NAMES[rng.integers(0, len(NAMES), profiles)]
        surnames = SURNAMES[rng.integers(0, len(SURNAMES), profiles)]
        emails = np.char.add(np.char.add(np.char.lower(names), np.char.add(".", ids)),
                             np.char.add("@", DOMAINS[rng.integers(0, len(DOMAINS), profiles)]))
        countries = COUNTRIES[rng.integers(0, len(COUNTRIES), profiles)]
        cities = CITIES[rng.integers(0, len(CITIES), profiles)]
        genders = np.array(["female", "male", ""])[rng.choice(3, profiles, p=[0.49, 0.49, 0.02])]
        vip = np.where(rng.random(profiles) < 0.1, "true", "false")
        score = np.round(rng.random(profiles) * 100, 2).astype(str)
        tiers = TIERS[rng.integers(0, len(TIERS), profiles)]
        block = 250_000
        for start in range(0, profiles, block):
            part = slice(start, start + block)
            lines = [",".join(row) for row in zip(
                ids[part], names[part], surnames[part], emails[part], countries[part],
                cities[part], births[part], genders[part], vip[part], signup[part], score[part],
                tiers[part], strict=True)]
            out.write("\n".join(lines) + "\n")

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


def postgres_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL server at ``url`` so far (its postmaster, the backends it
    has reaped and those still running), if it runs on this machine; else 0."""
    import psycopg

    base, _, query = url.partition("?")  # (libpq knows no schema= parameter)
    parts = [part for part in query.split("&") if part and not part.startswith("schema=")]
    with psycopg.connect(base + ("?" + "&".join(parts) if parts else "")) as conn:
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'").fetchone()
    pid_file = Path(row[0]) / "postmaster.pid" if row else None
    if pid_file is None or not pid_file.exists():
        return 0.0
    postmaster = int(pid_file.read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(map(int, fields[11:15]))  # its own time and its reaped children's
        elif parent == postmaster:
            total += sum(map(int, fields[11:13]))
    return total / ticks


def run_cli(args: list[str], code: Path | None) -> tuple[float, float, float, str]:
    """Wall-clock, client CPU and server CPU seconds of one CLI run in its own process (the
    code of ``code`` when given, else this checkout's), and its summary line."""
    env = dict(os.environ)
    # `python -m` puts the working folder first on sys.path, ahead of PYTHONPATH: without
    # PYTHONSAFEPATH a run from the project's folder would import this checkout's code as "before".
    env["PYTHONSAFEPATH"] = "1"
    if code is not None:
        env["PYTHONPATH"] = str(code)
    db = args[args.index("--db") + 1]
    server = db.startswith("postgres")
    before = postgres_cpu(db) if server else 0.0
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed ({status}): {output}")
    time.sleep(0.2 if server else 0)  # (the backend's CPU counts once the postmaster reaps it)
    spent = postgres_cpu(db) - before if server else 0.0
    summary = [line for line in output.splitlines() if line.startswith("Imported")]
    return elapsed, usage.ru_utime + usage.ru_stime, spent, summary[-1] if summary else output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--gzip", action="store_true", help="compress the files (.csv.gz)")
    parser.add_argument("--db", action="append", default=None,
                        help="a store to import into (repeat for several engines)")
    parser.add_argument("--no-entity", action="store_true", help="skip the entity import")
    parser.add_argument("--reuse", action="store_true",
                        help="use the files already in --dir (made with the same options)")
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout of older code: each store is also imported with it"
                             " (into a twin store: NAME-before.db, or schema NAME_before),"
                             " before and after side by side")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = options.dir or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        suffix = ".csv.gz" if options.gzip else ".csv"
        paths = {name: folder / f"{name}{suffix}" for name in ("profiles", "events", "products")}
        if not (options.reuse and all(path.exists() for path in paths.values())):
            paths = write_files(folder, options.events, options.profiles, options.products,
                                options.seed, options.gzip)
        print(f"files ready in {time.perf_counter() - started:.1f} s:"
              + "".join(f" {p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values()))
        stores = options.db or [str(folder / "bench.db")]
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        codes: list[tuple[str, Path | None]] = [("this", None)]
        if options.before is not None:
            codes.insert(0, ("before", options.before.resolve()))
        for db in stores:
            for label, code in codes:
                target = db if code is None else twin(db)
                print(f"store {redact(target)} ({label} code)")
                runs = [
                    ("profiles", options.profiles,
                     ["import", "profiles", str(paths["profiles"]), "--db", target]),
                    ("events", options.events,
                     ["import", "events", str(paths["events"]), "--db", target]),
                ]
                if not options.no_entity:
                    runs.append(("entity", options.products,
                                 ["import", "entity", "product", str(paths["products"]), "--db",
                                  target, "--key", "sku", "--link", "sku"]))
                for name, rows, args in runs:
                    elapsed, cpu, server, _summary = run_cli(args, code)
                    print(f"{name:9s} {rows:>10,} rows  wall {elapsed:6.2f} s"
                          f" {rows / elapsed:>9,.0f} rows/s  cpu {cpu:6.2f} s"
                          + (f" + server {server:6.2f} s" if server else "")
                          + f" {rows / (cpu + server):>9,.0f} rows/s"
                          f"  load {os.getloadavg()[0]:.1f}  ({label} code)", flush=True)
                if Path(target).is_file():
                    print(f"store size {Path(target).stat().st_size / 1e6:.1f} MB")


def twin(db: str) -> str:
    """Where the older code imports: beside the store, or in a schema named after it."""
    if db.startswith("postgres"):
        return re.sub(r"schema=([A-Za-z0-9_]+)", r"schema=\1_before", db)
    path = Path(db)
    return str(path.with_name(f"{path.stem}-before{path.suffix}"))


if __name__ == "__main__":
    main()
