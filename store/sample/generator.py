"""The deterministic sample store: a believable retail brand's customers, products and events.

``generate_sample`` builds a complete store in a temporary file beside the
target (journal off, indexes created after the bulk insert) and renames it
over the target only when it is complete, so an interrupted run never leaves
a half-written store. Segments saved in the store being replaced are copied
into the new one.

Everything is drawn from one numpy ``SeedSequence``: the same profile count,
seed and end date give byte-for-byte the same rows. Faker is only used once
per country to draw small name pools (``store.sample.pools``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dateutil.relativedelta import relativedelta

from sample_data import SCHEMA_FILE
from store.engines.base import Connection
from store.engines.layout import quote_identifier, write_transaction
from store.engines.sqlite import BUSY_TIMEOUT_MS, create_store, describe_sqlite_error, open_store
from store.errors import InputError, StoreError
from store.sample import pools as pools
from store.schema.catalog import (
    declare_derived_age,
    ensure_attribute,
    ensure_entity,
    ensure_entity_field,
    ensure_event_field,
    ensure_event_type,
    set_labels,
)
from store.schema.indexes import ensure_indexes
from store.schema.values import UTC, AttrType, day_start_epoch

ProgressCallback = Callable[[str, float], None]

DEFAULT_PROFILES = 50_000
DEFAULT_SEED = 42
MAX_PROFILES = 20_000_000
HISTORY_YEARS = 2
SIGNUP_YEARS = 5
CHUNK_ROWS = 100_000
# Sign-ups reach five years back and birth dates 91: keep every date well inside the calendar.
EARLIEST_UNTIL = dt.date(1980, 1, 1)
LATEST_UNTIL = dt.date(9000, 12, 31)

PROFILE_ATTRIBUTES: tuple[tuple[str, AttrType], ...] = (
    ("first_name", "string"), ("last_name", "string"), ("email", "string"),
    ("gender", "string"), ("birth_date", "date"), ("country", "string"), ("city", "string"),
    ("loyalty_tier", "string"), ("tier_renewal_date", "date"), ("lifetime_value", "number"),
    ("signup_date", "datetime"),
    ("email_opt_in", "boolean"), ("sms_opt_in", "boolean"), ("preferred_channel", "string"),
)
EVENT_TYPES: tuple[str, ...] = (
    "page_view", "product_view", "add_to_cart", "purchase", "email_sent", "email_open",
    "email_click",
)
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, PURCHASE, EMAIL_SENT, EMAIL_OPEN, EMAIL_CLICK = range(7)
EVENT_FIELDS: tuple[tuple[str, AttrType, tuple[str, ...]], ...] = (
    ("page", "string", ("page_view",)),
    ("sku", "string", ("product_view", "add_to_cart", "purchase")),
    ("quantity", "integer", ("add_to_cart", "purchase")),
    ("amount", "number", ("purchase",)),
    ("order_id", "string", ("purchase",)),
    ("campaign", "string", ("email_sent", "email_open", "email_click")),
)
PRODUCT_FIELDS: tuple[tuple[str, AttrType], ...] = (
    ("name", "string"), ("category", "string"), ("brand", "string"), ("price", "number"),
)
GENERAL_PAGES = ("/", "/sale", "/new-arrivals", "/stores", "/account", "/help/returns",
                 "/gift-cards")


@dataclass(frozen=True)
class SampleResult:
    """What a run produced, for the CLI's summary line and the app's first-run screen."""

    profiles: int
    events: int
    elapsed_s: float
    products: int
    segments_kept: int
    path: Path


def generate_sample(db_path: str | Path, profiles: int = DEFAULT_PROFILES, seed: int = DEFAULT_SEED,
                    until: dt.date | None = None,
                    progress: ProgressCallback | None = None) -> SampleResult:
    """Create or refill ``db_path`` with sample data whose events end on ``until`` (UTC today).

    ``progress(phase, fraction)`` is called as each phase advances (fraction 0..1).
    Raises ``InputError`` for bad arguments and ``StoreError`` when ``db_path``
    exists but is not a store, or cannot be written; the old file is then untouched.
    """
    started = time.perf_counter()
    if not 1 <= profiles <= MAX_PROFILES:
        raise InputError(f"--profiles must be between 1 and {MAX_PROFILES:,} (got {profiles:,}).")
    if seed < 0:
        raise InputError(f"--seed must be zero or positive (got {seed}).")
    until = until or dt.datetime.now(UTC).date()
    if not EARLIEST_UNTIL <= until <= LATEST_UNTIL:
        raise InputError(f"--until must be between {EARLIEST_UNTIL} and {LATEST_UNTIL}"
                         f" (got {until}).")
    report = progress or (lambda phase, fraction: None)
    path = Path(db_path)
    report("Reading the existing store", 0.0)
    kept, guard = _lock_and_read(path)
    report("Reading the existing store", 1.0)
    _remove_stale_temps(path)
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    replaced = False
    try:
        labels = load_schema_labels()
        events, products = _build_store(temp, profiles, seed, until, labels, kept, report)
        _fsync(temp)
        os.replace(temp, path)
        replaced = True
        _fsync_directory(path.parent)
    except OSError as exc:
        _remove_quietly(temp)
        raise StoreError(f"Cannot write the sample store {path}: {exc}") from exc
    except BaseException:
        _remove_quietly(temp)
        raise
    finally:
        if guard is not None:
            guard.release(replaced)
    return SampleResult(profiles, events, time.perf_counter() - started, products, len(kept[1]),
                        path)


# ------------------------------------------------------------------ the file


SavedRows = tuple[list[str], list[tuple[Any, ...]]]


def saved_segments(path: Path) -> SavedRows:
    """The segment rows of the store at ``path`` (none if there is no file yet).

    Refuses a file that is not a store, and a store another program is still
    writing to (its write-ahead log could not be folded back in).
    """
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give a file path for the store.")
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    try:
        conn = open_store(path)
    except StoreError as exc:
        raise StoreError(f"{exc} The sample generator does not overwrite it.") from exc
    try:
        cursor = conn.execute("SELECT * FROM segments ORDER BY id")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(describe_sqlite_error(path, exc)) from exc
    finally:
        conn.close()
    if busy:
        raise StoreError(f"{path} is open in another program; close it and run the sample again.")
    return columns, rows


def _lock_and_read(path: Path) -> tuple[SavedRows, _OldStore | None]:
    """The saved segments of the old store, read while holding it exclusively.

    The new store replaces the old file by a rename. A connection that another
    program opened on the old file would go on writing into the replaced file,
    and whatever it saved would be silently lost. So the old store is switched
    out of WAL mode first, which only succeeds when no other program has it
    open (otherwise: refused, "close it and run the sample again"), and is then
    held with an exclusive lock until the rename; any program that opened it
    meanwhile waits, then finds it marked replaced and fails with an error.
    """
    kept = saved_segments(path)  # refuses a non-store, a newer store, one being written to
    if not kept[0]:
        return kept, None
    conn = open_store(path)
    try:
        conn.execute("PRAGMA busy_timeout = 0")  # an open app stays open: no use waiting
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError:
            mode = "wal"
        if str(mode).lower() != "delete":
            raise StoreError(f"{path} is open in another program; close it and run the sample again.")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN EXCLUSIVE")
        cursor = conn.execute("SELECT * FROM segments ORDER BY id")
        rows = ([d[0] for d in cursor.description], cursor.fetchall())
        fd = os.open(path, os.O_RDWR)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(describe_sqlite_error(path, exc) + " The sample was not written.") from exc
    except BaseException:
        conn.close()
        raise
    return rows, _OldStore(conn, fd)


class _OldStore:
    """The old store's connection (holding its exclusive lock) and a handle on its file."""

    def __init__(self, conn: Connection, fd: int) -> None:
        self.conn = conn
        self.fd = fd

    def release(self, replaced: bool) -> None:
        """Let go of the old file; once replaced, mark it so that no late reader trusts it."""
        try:
            if replaced:  # SQLite checks this header before each transaction: "not a database"
                os.pwrite(self.fd, b"replaced by a new sample store".ljust(32, b"\0"), 0)
        finally:
            os.close(self.fd)
            with contextlib.suppress(sqlite3.Error):
                self.conn.rollback()
            self.conn.close()


def _build_store(temp: Path, profiles: int, seed: int, until: dt.date,
                 labels: dict[str, Any], kept: SavedRows,
                 report: ProgressCallback) -> tuple[int, int]:
    """Write the whole store into ``temp``; returns (events, products)."""
    report("Preparing the store", 0.0)
    conn = create_store(temp)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA cache_size = -262144")
        with write_transaction(conn):
            columns = _declare_catalog(conn)
            _apply_labels(conn, labels)
            dropped = _drop_event_indexes(conn)
        report("Preparing the store", 1.0)
        profile_rng, product_rng, event_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
        )
        report("Generating profiles", 0.0)
        people = make_profiles(profiles, profile_rng, until, seed)
        products = pools.build_products(product_rng)
        report("Generating profiles", 1.0)
        report("Generating events", 0.0)
        events = make_events(people, products, event_rng, until)
        report("Generating events", 1.0)
        people.finish_loyalty(events, profile_rng, until)
        with write_transaction(conn):
            _write_profiles(conn, columns, people, report)
            _write_products(conn, columns, products)
            _write_events(conn, columns, events, products, report)
            _write_segments(conn, kept)
            conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [("sample_profiles", str(profiles)), ("sample_seed", str(seed)),
                 ("sample_until", until.isoformat()), ("sample_brand", pools.BRAND)],
            )
        report("Building indexes", 0.0)
        for number, sql in enumerate(dropped):
            conn.execute(sql)
            report("Building indexes", (number + 1) / (len(dropped) + 1))
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")
        ensure_indexes(conn)  # after ANALYZE: attribute indexes get no misleading statistics
        report("Building indexes", 1.0)
        conn.execute("PRAGMA locking_mode = NORMAL")
        conn.execute("PRAGMA journal_mode = DELETE")
        return len(events.ts), len(products.sku)
    except sqlite3.DatabaseError as exc:
        raise StoreError(describe_sqlite_error(temp, exc)) from exc
    finally:
        conn.close()


def _drop_event_indexes(conn: Connection) -> list[str]:
    """Drop the events indexes (rebuilt after the bulk insert, which is much faster)."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
        " AND sql IS NOT NULL ORDER BY name"
    ).fetchall()
    for name, _sql in rows:
        conn.execute(f"DROP INDEX {quote_identifier(name)}")
    return [sql for _name, sql in rows]


def _fsync(path: Path) -> None:
    """Make the finished file durable before it replaces the old one."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable too (where the platform lets a folder be synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Delete the unfinished stores that killed runs left beside ``path``.

    A temporary store is named ``<store>.tmp-<pid>-<random>``; one whose process
    no longer runs can never be finished (a live one may be another run's).
    """
    prefix = f"{path.name}.tmp-"
    for candidate in path.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):].partition("-")[0]
        if not pid_text.isdigit() or _process_runs(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an absurd number
        return True
    return True


def _remove_quietly(temp: Path) -> None:
    """Delete an unfinished temporary store and its side files."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(str(temp) + suffix).unlink()


# ------------------------------------------------------------------ catalog and labels


def load_schema_labels(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """Labels, groups and descriptions of the sample schema (``sample_data/schema.yaml``)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StoreError(f"Cannot read the sample schema {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise StoreError(f"The sample schema {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"The sample schema {path} must be a mapping.")
    return data


@dataclass(frozen=True)
class Columns:
    """Column names the catalog gave each attribute, event field and product field."""

    profile: dict[str, str]
    event: dict[str, str]
    product_table: str
    product: dict[str, str]
    type_ids: dict[str, int]


def _declare_catalog(conn: Connection) -> Columns:
    """Declare every attribute, event type, event field and the product entity, in fixed order."""
    profile: dict[str, str] = {}
    for name, attr_type in PROFILE_ATTRIBUTES:
        profile[name] = ensure_attribute(conn, name, attr_type).column
        if name == "birth_date":
            declare_derived_age(conn, "age", "birth_date")
    type_ids = {name: ensure_event_type(conn, name) for name in EVENT_TYPES}
    entity = ensure_entity(conn, "product", "sku", "string", "sku")
    event: dict[str, str] = {}
    for name, attr_type, used_by in EVENT_FIELDS:
        field = ensure_event_field(conn, name, attr_type, [type_ids[t] for t in used_by])
        event[name] = field.column
    product = {name: ensure_entity_field(conn, "product", name, attr_type).column
               for name, attr_type in PRODUCT_FIELDS}
    return Columns(profile, event, entity.table, product, type_ids)


def _apply_labels(conn: Connection, labels: dict[str, Any]) -> None:
    """Write the labels of ``schema.yaml``; entity labels go straight to the entity tables."""
    sections = (("attributes", "attributes"), ("event_types", "event_types"),
                ("event_fields", "event_fields"))
    for key, table in sections:
        for name, entry in (labels.get(key) or {}).items():
            set_labels(conn, table, str(name), label=entry.get("label"),
                       group=entry.get("group"), description=entry.get("description"))
    for name, entry in (labels.get("entities") or {}).items():
        conn.execute("UPDATE entities SET label = ?, description = ? WHERE name = ?",
                     (entry.get("label"), entry.get("description"), name))
        for field_name, field_entry in (entry.get("fields") or {}).items():
            conn.execute(
                "UPDATE entity_fields SET label = ?, description = ? WHERE entity = ? AND name = ?",
                (field_entry.get("label"), field_entry.get("description"), name, field_name),
            )


# ------------------------------------------------------------------ profiles


@dataclass
class Profiles:
    """Generated profile columns (Python lists of stored values) and what events depend on."""

    count: int
    values: dict[str, list[Any]]
    signup_ts: np.ndarray
    emailable: np.ndarray
    age: np.ndarray  # years at the end of the history, NaN when unknown

    def finish_loyalty(self, events: Events, rng: np.random.Generator, until: dt.date) -> None:
        """Lifetime value from the generated purchases plus earlier spend; tiers by value rank."""
        buys = events.type_code == PURCHASE
        spend = np.bincount(events.profile[buys], weights=events.amount[buys],
                            minlength=self.count)
        history_start = day_start_epoch(history_first_day(until))
        before_days = np.clip((history_start - self.signup_ts) / 86400.0, 0.0, None)
        history_days = (day_start_epoch(until) - history_start) / 86400.0 + 1.0
        factor = rng.lognormal(0.0, 0.45, self.count)
        earlier = np.where(
            spend > 0, spend * before_days / history_days * factor,
            np.where((before_days > 0) & (rng.random(self.count) < 0.4),
                     rng.lognormal(np.log(140.0), 0.9, self.count), 0.0),
        )
        ltv = np.round(spend + earlier, 2)
        self.values["lifetime_value"] = ltv.tolist()
        # Members who spent are ranked by a noisy value (tiers follow qualifying-period
        # spend, not lifetime value exactly); members who never bought are bronze.
        noisy = ltv * rng.lognormal(0.0, 0.3, self.count)
        member = (rng.random(self.count) < pools.LOYALTY_MEMBER_SHARE) | (
            ltv >= np.quantile(ltv, 0.9)
        )
        ranks = np.zeros(self.count)
        spenders = np.flatnonzero(member & (ltv > 0))
        ranks[spenders[np.argsort(noisy[spenders], kind="stable")]] = (
            np.arange(len(spenders)) / max(len(spenders), 1)
        )
        tier = np.searchsorted(np.array(pools.LOYALTY_TIER_CUTS), ranks, side="right")
        names = np.array([*pools.LOYALTY_TIERS, None], dtype=object)
        self.values["loyalty_tier"] = names[np.where(member, tier, len(pools.LOYALTY_TIERS))].tolist()
        # Tiers are reviewed yearly on the membership anniversary: within the next 365 days.
        until_day = (until - dt.date(1970, 1, 1)).days
        ahead = (self.signup_ts // 86400 - until_day) % 365
        renewal = np.datetime_as_string((until_day + ahead).astype("datetime64[D]"), unit="D")
        self.values["tier_renewal_date"] = [day if is_member else None for day, is_member
                                            in zip(renewal.tolist(), member.tolist(), strict=True)]


def history_first_day(until: dt.date) -> dt.date:
    """First day of the event history: two years up to and including ``until``."""
    return until - relativedelta(years=HISTORY_YEARS) + dt.timedelta(days=1)


def make_profiles(count: int, rng: np.random.Generator, until: dt.date, seed: int) -> Profiles:
    """Names, emails, demographics, location, consent and sign-up time of ``count`` customers."""
    countries = pools.COUNTRIES
    country = rng.choice(len(countries), count, p=pools.normalised([c.weight for c in countries]))
    city = np.empty(count, dtype=object)
    for index, market in enumerate(countries):
        mask = country == index
        names = np.array([c[0] for c in market.cities], dtype=object)
        city[mask] = names[rng.choice(len(names), int(mask.sum()),
                                      p=pools.normalised([c[1] for c in market.cities]))]
    gender_names = np.array([g[0] for g in pools.GENDERS], dtype=object)
    gender = gender_names[rng.choice(len(gender_names), count,
                                     p=pools.normalised([g[1] for g in pools.GENDERS]))]
    first, last, first_slug, last_slug = _names(count, rng, country, gender, seed)
    email_present = rng.random(count) >= 0.015
    email = _emails(count, rng, country, first_slug, last_slug, email_present)
    birth_date, age = _birth_dates(count, rng, until)
    signup_ts = _signup_times(count, rng, until)
    signup_text = np.datetime_as_string(signup_ts.astype("datetime64[s]"), unit="s")
    email_opt_in = email_present & (rng.random(count) < 0.70)
    sms_draw = rng.random(count)
    sms_opt_in = np.where(sms_draw < 0.28, 1, np.where(sms_draw < 0.83, 0, -1))
    channel_names = np.array([c[0] for c in pools.CHANNELS], dtype=object)
    channel = channel_names[rng.choice(len(channel_names), count,
                                       p=pools.normalised([c[1] for c in pools.CHANNELS]))]
    channel[(channel == "email") & ~email_opt_in] = "push"
    channel[(channel == "sms") & (sms_opt_in != 1)] = np.where(
        email_opt_in[(channel == "sms") & (sms_opt_in != 1)], "email", "push")
    values: dict[str, list[Any]] = {
        "first_name": first, "last_name": last, "email": email,
        "gender": gender.tolist(), "birth_date": birth_date,
        "country": np.array([c.code for c in countries], dtype=object)[country].tolist(),
        "city": city.tolist(),
        "signup_date": [text.replace("T", " ") for text in signup_text.tolist()],
        "email_opt_in": email_opt_in.astype(int).tolist(),
        "sms_opt_in": [None if v < 0 else v for v in sms_opt_in.tolist()],
        "preferred_channel": channel.tolist(),
    }
    return Profiles(count, values, signup_ts, email_opt_in, age)


def _names(count: int, rng: np.random.Generator, country: np.ndarray, gender: np.ndarray,
           seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """First and last names from each country's pool, and their email-ready slugs."""
    name_pools = pools.name_pools(seed)
    female = (gender == "female") | ((gender != "male") & (rng.random(count) < 0.5))
    first_pick = rng.random(count)
    last_pick = rng.random(count)
    first = np.empty(count, dtype=object)
    last = np.empty(count, dtype=object)
    first_slug = np.empty(count, dtype=object)
    last_slug = np.empty(count, dtype=object)
    for index, pool in enumerate(name_pools):
        in_country = country == index
        for wanted, names in ((True, pool.female), (False, pool.male)):
            mask = in_country & (female == wanted)
            picks = (first_pick[mask] * len(names)).astype(int)
            first[mask] = np.array(names, dtype=object)[picks]
            first_slug[mask] = np.array([pools.email_slug(n) for n in names], dtype=object)[picks]
        picks = (last_pick[in_country] * len(pool.last)).astype(int)
        last[in_country] = np.array(pool.last, dtype=object)[picks]
        last_slug[in_country] = np.array([pools.email_slug(n) for n in pool.last],
                                         dtype=object)[picks]
    return first.tolist(), last.tolist(), first_slug.tolist(), last_slug.tolist()


def _emails(count: int, rng: np.random.Generator, country: np.ndarray, first: list[str],
            last: list[str], present: np.ndarray) -> list[str | None]:
    """Unique addresses in the usual shapes (jane.doe, janedoe, j.doe, jane.doe84...)."""
    webmail = [d for d, _ in pools.WEBMAIL_DOMAINS]
    domain_pick = rng.choice(len(webmail), count, p=pools.normalised([w for _, w in pools.WEBMAIL_DOMAINS]))
    domain = np.array(webmail, dtype=object)[domain_pick]
    kind = rng.random(count)
    local_choice = rng.random(count)
    for index, market in enumerate(pools.COUNTRIES):
        mask = (country == index) & (kind < pools.LOCAL_DOMAIN_SHARE)
        locals_ = np.array(market.local_domains, dtype=object)
        domain[mask] = locals_[(local_choice[mask] * len(locals_)).astype(int)]
    company = kind > 1.0 - pools.COMPANY_DOMAIN_SHARE
    companies = np.array(pools.COMPANY_DOMAINS, dtype=object)
    domain[company] = companies[(local_choice[company] * len(companies)).astype(int)]
    shape = rng.choice(6, count, p=pools.normalised([30, 14, 14, 7, 22, 13])).tolist()
    number = rng.integers(1, 100, count).tolist()
    taken: set[str] = set()
    result: list[str | None] = []
    domains = domain.tolist()
    for i, is_present in enumerate(present.tolist()):
        if not is_present:
            result.append(None)
            continue
        f, s, n = first[i], last[i], number[i]
        local = (f"{f}.{s}", f"{f}{s}", f"{f[0]}.{s}", f"{f}_{s}", f"{f}.{s}{n}", f"{f}{n}")[shape[i]]
        address = f"{local}@{domains[i]}"
        suffix = 1
        while address in taken:
            suffix += 1
            address = f"{local}{suffix}@{domains[i]}"
        taken.add(address)
        result.append(address)
    return result


def _birth_dates(count: int, rng: np.random.Generator,
                 until: dt.date) -> tuple[list[str | None], np.ndarray]:
    """Ages 18-90, most between 25 and 55; about 3% unknown."""
    ages = np.where(rng.random(count) < 0.85, rng.normal(39.0, 11.0, count),
                    rng.uniform(18.0, 91.0, count))
    ages = np.clip(ages, 18.02, 90.98)
    days_before = np.floor(ages * 365.2425).astype(np.int64)
    until_day = (until - dt.date(1970, 1, 1)).days
    text = np.datetime_as_string((until_day - days_before).astype("datetime64[D]"), unit="D")
    missing = rng.random(count) < 0.03
    dates = [None if gone else day for gone, day in zip(missing.tolist(), text.tolist(), strict=True)]
    return dates, np.where(missing, np.nan, ages)


def _signup_times(count: int, rng: np.random.Generator, until: dt.date) -> np.ndarray:
    """Sign-up instants over the last five years, more of them recent (the brand is growing)."""
    span_days = (until - (until - relativedelta(years=SIGNUP_YEARS))).days
    share = np.where(rng.random(count) < 0.8, rng.beta(1.0, 1.6, count), rng.random(count))
    days_ago = np.floor(share * span_days).astype(np.int64)
    seconds = rng.integers(0, 86400, count)
    return day_start_epoch(until) - days_ago * 86400 + seconds


# ------------------------------------------------------------------ events


@dataclass
class Events:
    """All events as parallel arrays, grouped by type, then by time and profile (the pk order).

    Grouping by type lets each type be inserted with only the columns it uses;
    time order within a type keeps the rows of a recent window together, which
    makes event conditions with ``where`` two to three times faster to count.
    """

    profile: np.ndarray  # 0-based profile index
    type_code: np.ndarray  # index into EVENT_TYPES
    ts: np.ndarray
    page: np.ndarray  # index into the page list, -1 none
    sku: np.ndarray  # product index, -1 none
    quantity: np.ndarray  # 0 none
    amount: np.ndarray  # NaN none
    order: np.ndarray  # order number, 0 none
    campaign: np.ndarray  # campaign index, -1 none
    pages: list[str]
    campaigns: list[str]


def make_events(people: Profiles, products: pools.Products, rng: np.random.Generator,
                until: dt.date) -> Events:
    """Browsing sessions (views, carts, orders) and email campaigns, with a realistic skew.

    Most customers are light and a few are heavy (lognormal intensity); some
    stopped coming months ago (lapse); about one in eight has no events at all.
    """
    n = people.count
    first_ts = day_start_epoch(history_first_day(until))
    last_ts = day_start_epoch(until) + 86399
    start = np.maximum(first_ts, people.signup_ts)
    active = rng.random(n) >= 0.09
    lapse = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(160.0, n)) * 86400
    end = (last_ts - lapse).astype(np.int64)
    end = np.where(end < start, np.minimum(start + 14 * 86400, last_ts), end)
    intensity = rng.lognormal(np.log(0.9), 1.0, n)
    # Signing up during the history is itself a visit.
    joined = people.signup_ts >= first_ts
    sessions = np.where(active, rng.poisson(intensity * (end - start) / (365.0 * 86400)) + joined, 0)
    favourite = _favourite_categories(people.age, rng)
    buy_rate = rng.beta(3.0, 2.5, n)
    web = _sessions(sessions, start, end, last_ts, favourite, buy_rate, products, rng)
    mail = _emails_sent(people, active, start, last_ts, rng, until)
    parts = [web, mail]
    columns = [np.concatenate([p[k] for p in parts]) for k in range(8)]
    profile, type_code, ts, page, sku, quantity, amount, order = columns[:8]
    campaign = np.concatenate([np.full(len(web[0]), -1), mail[8]])
    # Stored grouped by type, then time, then profile: one integer key, stable sort.
    span = last_ts - first_ts + 1
    key = (type_code * span + (ts - first_ts)) * n + profile
    order_by = np.argsort(key, kind="stable")
    pages = list(GENERAL_PAGES) + [f"/c/{c.name.lower()}" for c in pools.CATEGORIES]
    return Events(profile[order_by], type_code[order_by], ts[order_by], page[order_by],
                  sku[order_by], quantity[order_by], amount[order_by], order[order_by],
                  campaign[order_by], pages, mail[9])


def _favourite_categories(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each customer's favourite category: classic shoes and boots lean older, sneakers younger."""
    favourite = np.empty(len(age), dtype=np.int64)
    base = np.array([c.weight for c in pools.CATEGORIES])
    groups = (age < 30, (age >= 30) & (age < 45), age >= 45, np.isnan(age))
    for mask, tilt in zip(groups, pools.AGE_CATEGORY_TILT, strict=True):
        favourite[mask] = rng.choice(len(base), int(mask.sum()), p=pools.normalised(base * tilt))
    return favourite


def _pick_products(category: np.ndarray, products: pools.Products,
                   rng: np.random.Generator) -> np.ndarray:
    """A product of each given category, popular ones more often."""
    picked = np.empty(len(category), dtype=np.int64)
    draws = rng.random(len(category))
    for index in range(len(pools.CATEGORIES)):
        members = np.flatnonzero(products.category_index == index)
        cdf = np.cumsum(products.popularity[members])
        mask = category == index
        slot = np.searchsorted(cdf / cdf[-1], draws[mask], side="right")
        picked[mask] = members[np.minimum(slot, len(members) - 1)]
    return picked


def _sessions(sessions: np.ndarray, start: np.ndarray, end: np.ndarray, last_ts: int,
              favourite: np.ndarray, buy_rate: np.ndarray, products: pools.Products,
              rng: np.random.Generator) -> list[np.ndarray]:
    """Page views, product views, carts and purchases, grouped into visits."""
    owner = np.repeat(np.arange(len(sessions)), sessions)
    count = len(owner)
    moment = start[owner] + rng.random(count) * (end[owner] - start[owner])
    hour = rng.choice(24, count, p=pools.normalised(pools.HOUR_WEIGHTS))
    begin = (moment // 86400).astype(np.int64) * 86400 + hour * 3600 + rng.integers(0, 3600, count)
    begin = np.clip(begin, start[owner], last_ts)
    category = np.where(rng.random(count) < 0.7, favourite[owner],
                        rng.choice(len(pools.CATEGORIES), count,
                                   p=pools.normalised([c.weight for c in pools.CATEGORIES])))
    page_views = 1 + rng.poisson(0.5, count)
    product_views = rng.poisson(1.2, count)
    carted = rng.random(count) < 0.34
    product_views = np.where(carted & (product_views == 0), 1, product_views)
    cart_lines = np.where(carted, 1 + rng.poisson(0.4, count), 0)
    bought = carted & (rng.random(count) < buy_rate[owner])
    order_no = np.zeros(count, dtype=np.int64)
    buyers = np.flatnonzero(bought)
    order_no[buyers[np.lexsort((buyers, begin[buyers]))]] = np.arange(1, len(buyers) + 1)
    discount = rng.choice([0.0, 0.1, 0.2, 0.3], count, p=[0.7, 0.2, 0.07, 0.03])

    pv_s = np.repeat(np.arange(count), page_views)
    general = rng.random(len(pv_s)) < 0.55
    pv_page = np.where(general, rng.integers(0, len(GENERAL_PAGES), len(pv_s)),
                       len(GENERAL_PAGES) + category[pv_s])
    view_s = np.repeat(np.arange(count), product_views)
    view_sku = _pick_products(category[view_s], products, rng)
    cart_s = np.repeat(np.arange(count), cart_lines)
    cart_sku = _pick_products(category[cart_s], products, rng)
    cart_qty = rng.choice([1, 2, 3], len(cart_s), p=[0.86, 0.11, 0.03])
    buy_line = bought[cart_s]
    buy_s, buy_sku, buy_qty = cart_s[buy_line], cart_sku[buy_line], cart_qty[buy_line]
    buy_amount = np.round(products.price[buy_sku] * buy_qty * (1.0 - discount[buy_s]), 2)

    session = np.concatenate([pv_s, view_s, cart_s, buy_s])
    sizes = (len(pv_s), len(view_s), len(cart_s), len(buy_s))
    kind = np.repeat(np.array([PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, PURCHASE]), sizes)
    # Views interleave at random; carts follow the views, the order comes last.
    step = np.concatenate([rng.random(sizes[0] + sizes[1]), 1 + rng.random(sizes[2]),
                           2 + rng.random(sizes[3])])
    order_by = np.argsort(session + step / 3.0, kind="stable")
    session, kind = session[order_by], kind[order_by]
    gaps = np.cumsum(np.round(rng.exponential(45.0, len(session))).astype(np.int64) + 3)
    first_index = np.searchsorted(session, np.arange(count))
    offset = gaps - gaps[first_index[session]]
    none = np.full(len(session), -1, dtype=np.int64)
    page = np.concatenate([pv_page, none[: sizes[1] + sizes[2] + sizes[3]]])[order_by]
    sku = np.concatenate([none[: sizes[0]], view_sku, cart_sku, buy_sku])[order_by]
    quantity = np.concatenate([np.zeros(sizes[0] + sizes[1], dtype=np.int64), cart_qty,
                               buy_qty])[order_by]
    amount = np.concatenate([np.full(sum(sizes[:3]), np.nan), buy_amount])[order_by]
    order = np.concatenate([np.zeros(sum(sizes[:3]), dtype=np.int64),
                            order_no[buy_s]])[order_by]
    ts = np.minimum(begin[session] + offset, last_ts)
    return [owner[session], kind, ts, page, sku, quantity, amount, order]


def _emails_sent(people: Profiles, active: np.ndarray, start: np.ndarray, last_ts: int,
                 rng: np.random.Generator, until: dt.date) -> list[Any]:
    """Campaign sends to opted-in customers after they signed up, with opens and clicks."""
    n = people.count
    calendar = pools.marketing_calendar(history_first_day(until), until)
    send_at = np.array([day_start_epoch(c.day) for c in calendar], dtype=np.int64)
    send_at += 8 * 3600 + rng.integers(0, 7200, len(calendar))
    weight = np.cumsum([0.0] + [c.weight for c in calendar])
    first_campaign = np.searchsorted(send_at, start)
    eligible = people.emailable & active & (first_campaign < len(calendar))
    span_years = (last_ts - start) / (365.0 * 86400)
    rate = rng.gamma(2.0, 1.2, n)
    sends = np.where(eligible, rng.poisson(rate * span_years), 0)
    to = np.repeat(np.arange(n), sends)
    low = weight[first_campaign[to]]
    target = low + rng.random(len(to)) * (weight[-1] - low)
    which = np.clip(np.searchsorted(weight, target, side="right") - 1, 0, len(calendar) - 1)
    pairs = np.sort(to * len(calendar) + which)
    first_of_pair = np.ones(len(pairs), dtype=bool)
    first_of_pair[1:] = pairs[1:] != pairs[:-1]
    pairs = pairs[first_of_pair]  # one send per customer and campaign
    to, which = pairs // len(calendar), pairs % len(calendar)
    sent_ts = np.minimum(send_at[which] + rng.integers(0, 5400, len(to)), last_ts)

    opens_rate = rng.beta(1.2, 2.8, n)
    click_rate = 0.04 + 0.4 * rng.beta(1.5, 4.0, n)
    opened = rng.random(len(to)) < opens_rate[to]
    open_ts = sent_ts + 60 + np.round(rng.exponential(5 * 3600.0, len(to))).astype(np.int64)
    opened &= open_ts <= last_ts
    clicked = opened & (rng.random(len(to)) < click_rate[to])
    click_ts = open_ts + 5 + np.round(rng.exponential(90.0, len(to))).astype(np.int64)
    clicked &= click_ts <= last_ts

    profile = np.concatenate([to, to[opened], to[clicked]])
    sizes = (len(to), int(opened.sum()), int(clicked.sum()))
    kind = np.repeat(np.array([EMAIL_SENT, EMAIL_OPEN, EMAIL_CLICK]), sizes)
    ts = np.concatenate([sent_ts, open_ts[opened], click_ts[clicked]])
    campaign = np.concatenate([which, which[opened], which[clicked]])
    total = len(profile)
    none = np.full(total, -1, dtype=np.int64)
    return [profile, kind, ts, none, none, np.zeros(total, dtype=np.int64),
            np.full(total, np.nan), np.zeros(total, dtype=np.int64), campaign,
            [c.name for c in calendar]]


# ------------------------------------------------------------------ writing


def _chunks(total: int) -> Iterator[tuple[int, int]]:
    for low in range(0, total, CHUNK_ROWS):
        yield low, min(low + CHUNK_ROWS, total)


def _write_profiles(conn: Connection, columns: Columns, people: Profiles,
                    report: ProgressCallback) -> None:
    names = [name for name, _ in PROFILE_ATTRIBUTES]
    target = ", ".join(["pk", "id", *(quote_identifier(columns.profile[n]) for n in names)])
    sql = f"INSERT INTO profiles({target}) VALUES ({', '.join('?' * (len(names) + 2))})"
    width = max(7, len(str(people.count)))
    for low, high in _chunks(people.count):
        pks = range(low + 1, high + 1)
        ids = [f"C{pk:0{width}d}" for pk in pks]
        conn.executemany(sql, zip(pks, ids, *(people.values[n][low:high] for n in names),
                                  strict=True))
        report("Writing profiles", high / people.count)


def _write_products(conn: Connection, columns: Columns, products: pools.Products) -> None:
    target = ", ".join(["key", *(quote_identifier(columns.product[n]) for n, _ in PRODUCT_FIELDS)])
    conn.executemany(
        f"INSERT INTO {quote_identifier(columns.product_table)}({target}) VALUES (?, ?, ?, ?, ?)",
        zip(products.sku, products.name, products.category, products.brand,
            products.price.tolist(), strict=True),
    )


def _write_events(conn: Connection, columns: Columns, events: Events,
                  products: pools.Products, report: ProgressCallback) -> None:
    """Insert each event type's rows with only the fields it uses (narrow rows insert faster)."""
    page_text = np.array([*events.pages, None], dtype=object)
    sku_text = np.array([*products.sku, None], dtype=object)
    campaign_text = np.array([*events.campaigns, None], dtype=object)
    values: dict[str, Callable[[slice], list[Any]]] = {
        "page": lambda rows: page_text[events.page[rows]].tolist(),
        "sku": lambda rows: sku_text[events.sku[rows]].tolist(),
        "quantity": lambda rows: events.quantity[rows].tolist(),
        "amount": lambda rows: events.amount[rows].tolist(),
        "order_id": lambda rows: [f"ORD-{10_000_000 + o}" for o in events.order[rows].tolist()],
        "campaign": lambda rows: campaign_text[events.campaign[rows]].tolist(),
    }
    total = len(events.ts)
    bounds = np.searchsorted(events.type_code, np.arange(len(EVENT_TYPES) + 1))
    for code, name in enumerate(EVENT_TYPES):
        fields = [f for f, _, used_by in EVENT_FIELDS if name in used_by]
        target = ", ".join(["profile_pk", "type_id", "ts",
                            *(quote_identifier(columns.event[f]) for f in fields)])
        sql = (f"INSERT INTO events({target}) VALUES (?, {columns.type_ids[name]:d}, ?"
               f"{', ?' * len(fields)})")
        for low in range(int(bounds[code]), int(bounds[code + 1]), CHUNK_ROWS):
            rows = slice(low, min(low + CHUNK_ROWS, int(bounds[code + 1])))
            conn.executemany(sql, zip((events.profile[rows] + 1).tolist(),
                                      events.ts[rows].tolist(),
                                      *(values[f](rows) for f in fields), strict=True))
            report("Writing events", rows.stop / total)
    report("Writing events", 1.0)


def _write_segments(conn: Connection, kept: SavedRows) -> None:
    """Copy the saved segments of the replaced store (columns both stores have)."""
    old_columns, rows = kept
    if not rows:
        return
    current = {row[1] for row in conn.execute("PRAGMA table_info(segments)")}
    keep = [i for i, name in enumerate(old_columns) if name in current]
    target = ", ".join(quote_identifier(old_columns[i]) for i in keep)
    conn.executemany(
        f"INSERT INTO segments({target}) VALUES ({', '.join('?' * len(keep))})",
        [tuple(row[i] for i in keep) for row in rows],
    )
