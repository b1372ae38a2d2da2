"""The deterministic sample store: a believable retail brand's customers, products and events.

``generate_sample`` builds a complete store and puts it in place of the old
one at once (``store.schema.rebuild``: a temporary file renamed over the
target, or one transaction on a server), so an interrupted run never leaves a
half-written store. Segments saved in the store being replaced are copied
into the new one.

Profiles are generated in blocks of ``BLOCK_PROFILES``, so memory stays
bounded whatever the size: a first pass draws each block's sign-ups and
events, keeps per profile only a few numbers (what loyalty tiers need) and
spools the block's events, sorted, to a temporary file; the profiles are then
written block by block, and the events are merged from the spool by type and
week into the stored order (by type, then time, then profile), so the rows
are the same whatever the block boundaries of the spool reads.

Everything is drawn from numpy generators seeded by ``(seed, what, block)``:
the same profile count, seed and end date give the same rows on every
engine. Faker is only used once per country to draw small name pools
(``store.sample.pools``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dateutil.relativedelta import relativedelta

from sample_data import SCHEMA_FILE
from store.engines.base import Connection, Engine, engine_for
from store.errors import InputError, StoreError
from store.sample import pools as pools
from store.schema.activity import refresh_activity
from store.schema.catalog import (
    XdmKind,
    declare_derived_age,
    ensure_attribute,
    ensure_entity,
    ensure_entity_field,
    ensure_event_field,
    ensure_event_type,
    set_labels,
    set_xdm,
)
from store.schema.indexes import create_missing_indexes, drop_event_indexes
from store.schema.rebuild import Build, SavedRows, process_runs, replacement
from store.schema.values import UTC, AttrType, day_start_epoch

ProgressCallback = Callable[[str, float], None]

DEFAULT_PROFILES = 50_000
DEFAULT_SEED = 42
MAX_PROFILES = 20_000_000
HISTORY_YEARS = 2
SIGNUP_YEARS = 5
CHUNK_ROWS = 100_000
BLOCK_PROFILES = 100_000  # profiles generated at once (memory grows with it, not with the store)
SPOOL_PREFIX = "audiences-sample-"  # + pid: the event spool of a run, in the temporary folder
MERGE_WINDOW_S = 7 * 86400  # events are merged from the spool a week of one type at a time
# What each generator draws: one stream per (seed, kind, block).
CORE, TEXT, EVENTS, PRODUCTS, LOYALTY = range(5)
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
# one value per profile, or nearly (``ensure_attribute``'s mostly_distinct): signups to the second
DISTINCT_ATTRIBUTES = frozenset({"email", "signup_date"})
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
    path: Path | str  # the store file, or where a server store is (never a password)


def generate_sample(db_path: str | Path | Engine, profiles: int = DEFAULT_PROFILES,
                    seed: int = DEFAULT_SEED, until: dt.date | None = None,
                    progress: ProgressCallback | None = None) -> SampleResult:
    """Create or refill the store ``db_path`` names (any engine) with sample data whose
    events end on ``until`` (UTC today).

    ``progress(phase, fraction)`` is called as each phase advances (fraction 0..1).
    Raises ``InputError`` for bad arguments and ``StoreError`` when the target
    exists but is not a store, or cannot be written; the old store is then untouched.
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
    engine = db_path if isinstance(db_path, Engine) else engine_for(db_path)
    report = progress or (lambda phase, fraction: None)
    report("Reading the existing store", 0.0)
    labels = load_schema_labels()
    try:
        with replacement(engine) as build:
            report("Reading the existing store", 1.0)
            events, products = _build_store(build, profiles, seed, until, labels, report)
    except sqlite3.Error as exc:
        raise StoreError(engine.describe_error(exc) + " The sample was not written.") from exc
    return SampleResult(profiles, events, time.perf_counter() - started, products,
                        len(build.kept[1]), engine.path or engine.display)


def _remove_stale_spools() -> None:
    """Delete the event spools of killed runs (``audiences-sample-<pid>-...`` in the
    temporary folder, whose process no longer runs)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*"):
        pid_text = folder.name[len(SPOOL_PREFIX):].partition("-")[0]
        if pid_text.isdigit() and not process_runs(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _rng(seed: int, kind: int, block: int = 0) -> np.random.Generator:
    """The generator of one kind of draw for one block: independent of every other one."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(kind, block)))


def _blocks(total: int) -> list[tuple[int, int]]:
    return [(low, min(low + BLOCK_PROFILES, total)) for low in range(0, total, BLOCK_PROFILES)]


def _build_store(build: Build, profiles: int, seed: int, until: dt.date,
                 labels: dict[str, Any], report: ProgressCallback) -> tuple[int, int]:
    """Write the whole store through ``build.conn`` (in the transactions ``build`` keeps);
    returns (events, products)."""
    conn = build.conn
    report("Preparing the store", 0.0)
    columns = _declare_catalog(conn)
    _apply_labels(conn, labels)
    dropped = drop_event_indexes(conn)
    report("Preparing the store", 1.0)
    products = pools.build_products(_rng(seed, PRODUCTS))
    blocks = _blocks(profiles)
    report("Generating profiles", 0.0)
    people = Profiles.empty(profiles)
    for number, (low, high) in enumerate(blocks):
        core = _core(high - low, _rng(seed, CORE, number), until)
        people.signup_ts[low:high] = core.signup_ts
        people.emailable[low:high] = core.email_opt_in
        people.age[low:high] = core.age
        report("Generating profiles", high / profiles)
    _remove_stale_spools()
    with tempfile.TemporaryDirectory(prefix=f"{SPOOL_PREFIX}{os.getpid()}-") as folder:
        spool = EventSpool(Path(folder), until)
        report("Generating events", 0.0)
        spend = np.zeros(profiles)
        for number, (low, high) in enumerate(blocks):
            events = make_events(people.block(low, high), products, _rng(seed, EVENTS, number), until)
            buys = events.type_code == PURCHASE
            spend[low:high] = np.bincount(events.profile[buys], weights=events.amount[buys],
                                          minlength=high - low)
            spool.add(events, low)
            del events
            report("Generating events", high / profiles)
        loyalty = _loyalty(people, spend, _rng(seed, LOYALTY), until)
        _write_profiles(build, columns, blocks, seed, until, loyalty, report)
        _write_products(conn, columns, products)
        total = _write_events(build, columns, spool, products, report)
    _write_segments(conn, build.kept)
    conn.execute("DELETE FROM meta WHERE key IN ('sample_profiles', 'sample_seed', 'sample_until',"
                 " 'sample_brand')")
    build.engine.bulk_insert(conn, "meta", ["key", "value"], [
        ("sample_profiles", str(profiles)), ("sample_seed", str(seed)),
        ("sample_until", until.isoformat()), ("sample_brand", pools.BRAND)])
    report("Building indexes", 0.0)
    for number, sql in enumerate(dropped):
        conn.execute(sql)
        report("Building indexes", (number + 1) / (len(dropped) + 1))
    refresh_activity(conn)
    build.engine.analyze(conn)
    create_missing_indexes(conn)  # after ANALYZE: attribute indexes get no misleading statistics
    report("Building indexes", 1.0)
    return total, len(products.sku)


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
        profile[name] = ensure_attribute(conn, name, attr_type,
                                         mostly_distinct=name in DISTINCT_ATTRIBUTES).column
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
    """Write the labels and XDM names of ``schema.yaml``; entity labels go straight to the
    entity tables."""
    sections: tuple[tuple[str, XdmKind], ...] = (
        ("attributes", "attribute"), ("event_types", "event type"), ("event_fields", "event field"))
    for key, kind in sections:
        for name, entry in (labels.get(key) or {}).items():
            set_labels(conn, key, str(name), label=entry.get("label"),
                       group=entry.get("group"), description=entry.get("description"))
            if entry.get("xdm"):
                set_xdm(conn, kind, str(name), str(entry["xdm"]))
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
    """What events and loyalty tiers need of every profile (a few numbers each, for all)."""

    count: int
    signup_ts: np.ndarray
    emailable: np.ndarray
    age: np.ndarray  # years at the end of the history, NaN when unknown

    @classmethod
    def empty(cls, count: int) -> Profiles:
        return cls(count, np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool),
                   np.zeros(count))

    def block(self, low: int, high: int) -> Profiles:
        return Profiles(high - low, self.signup_ts[low:high], self.emailable[low:high],
                        self.age[low:high])


@dataclass
class Loyalty:
    """Lifetime value, tier and renewal date of every profile."""

    lifetime_value: np.ndarray
    tier: np.ndarray  # index into pools.LOYALTY_TIERS; len(LOYALTY_TIERS) for no tier
    renewal: np.ndarray  # days since 1970-01-01
    member: np.ndarray


def _loyalty(people: Profiles, spend: np.ndarray, rng: np.random.Generator,
             until: dt.date) -> Loyalty:
    """Lifetime value from the generated purchases plus earlier spend; tiers by value rank."""
    count = people.count
    history_start = day_start_epoch(history_first_day(until))
    before_days = np.clip((history_start - people.signup_ts) / 86400.0, 0.0, None)
    history_days = (day_start_epoch(until) - history_start) / 86400.0 + 1.0
    factor = rng.lognormal(0.0, 0.45, count)
    earlier = np.where(
        spend > 0, spend * before_days / history_days * factor,
        np.where((before_days > 0) & (rng.random(count) < 0.4),
                 rng.lognormal(np.log(140.0), 0.9, count), 0.0),
    )
    ltv = np.round(spend + earlier, 2)
    # Members who spent are ranked by a noisy value (tiers follow qualifying-period
    # spend, not lifetime value exactly); members who never bought are bronze.
    noisy = ltv * rng.lognormal(0.0, 0.3, count)
    member = (rng.random(count) < pools.LOYALTY_MEMBER_SHARE) | (ltv >= np.quantile(ltv, 0.9))
    ranks = np.zeros(count)
    spenders = np.flatnonzero(member & (ltv > 0))
    ranks[spenders[np.argsort(noisy[spenders], kind="stable")]] = (
        np.arange(len(spenders)) / max(len(spenders), 1)
    )
    tier = np.searchsorted(np.array(pools.LOYALTY_TIER_CUTS), ranks, side="right")
    tier = np.where(member, tier, len(pools.LOYALTY_TIERS)).astype(np.int8)
    # Tiers are reviewed yearly on the membership anniversary: within the next 365 days.
    until_day = (until - dt.date(1970, 1, 1)).days
    ahead = (people.signup_ts // 86400 - until_day) % 365
    return Loyalty(ltv, tier, (until_day + ahead).astype(np.int32), member)


def history_first_day(until: dt.date) -> dt.date:
    """First day of the event history: two years up to and including ``until``."""
    return until - relativedelta(years=HISTORY_YEARS) + dt.timedelta(days=1)


@dataclass
class Core:
    """The drawn facts of a block of profiles that events depend on (no text yet)."""

    count: int
    country: np.ndarray  # index into pools.COUNTRIES
    gender: np.ndarray  # names, object array
    email_present: np.ndarray
    age: np.ndarray  # NaN when unknown
    birth_day: np.ndarray  # days since 1970-01-01
    signup_ts: np.ndarray
    email_opt_in: np.ndarray
    sms_opt_in: np.ndarray  # 1, 0, -1 unknown
    channel: np.ndarray  # names, object array


def _core(count: int, rng: np.random.Generator, until: dt.date) -> Core:
    """Demographics, consent and sign-up time of ``count`` customers."""
    countries = pools.COUNTRIES
    country = rng.choice(len(countries), count, p=pools.normalised([c.weight for c in countries]))
    gender_names = np.array([g[0] for g in pools.GENDERS], dtype=object)
    gender = gender_names[rng.choice(len(gender_names), count,
                                     p=pools.normalised([g[1] for g in pools.GENDERS]))]
    email_present = rng.random(count) >= 0.015
    birth_day, age = _birth_dates(count, rng, until)
    signup_ts = _signup_times(count, rng, until)
    email_opt_in = email_present & (rng.random(count) < 0.70)
    sms_draw = rng.random(count)
    sms_opt_in = np.where(sms_draw < 0.28, 1, np.where(sms_draw < 0.83, 0, -1))
    channel_names = np.array([c[0] for c in pools.CHANNELS], dtype=object)
    channel = channel_names[rng.choice(len(channel_names), count,
                                       p=pools.normalised([c[1] for c in pools.CHANNELS]))]
    channel[(channel == "email") & ~email_opt_in] = "push"
    channel[(channel == "sms") & (sms_opt_in != 1)] = np.where(
        email_opt_in[(channel == "sms") & (sms_opt_in != 1)], "email", "push")
    return Core(count, country, gender, email_present, age, birth_day, signup_ts, email_opt_in,
                sms_opt_in, channel)


def profile_values(core: Core, rng: np.random.Generator, seed: int,
                   taken: set[str]) -> dict[str, list[Any]]:
    """The stored values of a block's attributes that are not loyalty's: names, emails
    (unique across blocks: ``taken``), city and what ``core`` drew."""
    count = core.count
    countries = pools.COUNTRIES
    city = np.empty(count, dtype=object)
    for index, market in enumerate(countries):
        mask = core.country == index
        names = np.array([c[0] for c in market.cities], dtype=object)
        city[mask] = names[rng.choice(len(names), int(mask.sum()),
                                      p=pools.normalised([c[1] for c in market.cities]))]
    first, last, first_slug, last_slug = _names(count, rng, core.country, core.gender, seed)
    email = _emails(count, rng, core.country, first_slug, last_slug, core.email_present, taken)
    birth_text = np.datetime_as_string(core.birth_day.astype("datetime64[D]"), unit="D")
    signup_text = np.datetime_as_string(core.signup_ts.astype("datetime64[s]"), unit="s")
    return {
        "first_name": first, "last_name": last, "email": email,
        "gender": core.gender.tolist(),
        "birth_date": [None if unknown else day for unknown, day
                       in zip(np.isnan(core.age).tolist(), birth_text.tolist(), strict=True)],
        "country": np.array([c.code for c in countries], dtype=object)[core.country].tolist(),
        "city": city.tolist(),
        "signup_date": [text.replace("T", " ") for text in signup_text.tolist()],
        "email_opt_in": core.email_opt_in.astype(int).tolist(),
        "sms_opt_in": [None if v < 0 else v for v in core.sms_opt_in.tolist()],
        "preferred_channel": core.channel.tolist(),
    }


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
            last: list[str], present: np.ndarray, taken: set[str]) -> list[str | None]:
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
                 until: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Birth days (days since 1970) and ages (NaN: unknown): ages 18-90, most between 25 and
    55; about 3% unknown."""
    ages = np.where(rng.random(count) < 0.85, rng.normal(39.0, 11.0, count),
                    rng.uniform(18.0, 91.0, count))
    ages = np.clip(ages, 18.02, 90.98)
    days_before = np.floor(ages * 365.2425).astype(np.int64)
    until_day = (until - dt.date(1970, 1, 1)).days
    missing = rng.random(count) < 0.03
    return until_day - days_before, np.where(missing, np.nan, ages)


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




# ------------------------------------------------------------------ the event spool

SPOOL_DTYPE = np.dtype([("profile", "<i4"), ("ts", "<i8"), ("page", "<i2"), ("sku", "<i2"),
                        ("quantity", "<i2"), ("amount", "<f8"), ("order", "<i8"),
                        ("campaign", "<i2")])


class EventSpool:
    """Each block's events on disk (in the temporary folder, 36 bytes an event), sorted by
    type, time and profile, with where every type's week starts, so that the stored order
    can be merged back a week at a time."""

    def __init__(self, folder: Path, until: dt.date) -> None:
        self.folder = folder
        self.first_ts = day_start_epoch(history_first_day(until))
        last_ts = day_start_epoch(until) + 86399
        weeks = (last_ts - self.first_ts) // MERGE_WINDOW_S + 1
        self.edges = self.first_ts + np.arange(weeks + 1, dtype=np.int64) * MERGE_WINDOW_S
        self.files: list[Path] = []
        self.starts: list[np.ndarray] = []  # per block: (types, weeks + 1) row offsets
        self.orders = 0
        self.total = 0
        self.pages: list[str] = []
        self.campaigns: list[str] = []

    def add(self, events: Events, low: int) -> None:
        """Spool one block's events (profile indexes of the block start at ``low``)."""
        rows = np.empty(len(events.ts), dtype=SPOOL_DTYPE)
        rows["profile"] = events.profile + low
        rows["ts"] = events.ts
        rows["page"] = events.page
        rows["sku"] = events.sku
        rows["quantity"] = events.quantity
        rows["amount"] = events.amount
        rows["order"] = np.where(events.order > 0, events.order + self.orders, 0)
        rows["campaign"] = events.campaign
        self.orders += int(events.order.max(initial=0))
        bounds = np.searchsorted(events.type_code, np.arange(len(EVENT_TYPES) + 1))
        starts = np.empty((len(EVENT_TYPES), len(self.edges)), dtype=np.int64)
        for code in range(len(EVENT_TYPES)):
            low_row, high_row = int(bounds[code]), int(bounds[code + 1])
            starts[code] = low_row + np.searchsorted(events.ts[low_row:high_row], self.edges)
        path = self.folder / f"block-{len(self.files)}.bin"
        rows.tofile(path)
        self.files.append(path)
        self.starts.append(starts)
        self.total += len(rows)
        self.pages, self.campaigns = events.pages, events.campaigns

    def weeks(self, code: int) -> Iterator[np.ndarray]:
        """The events of one type, a week at a time, in the stored order (time, then profile)."""
        handles = [path.open("rb") for path in self.files]
        try:
            for week in range(len(self.edges) - 1):
                parts = []
                for handle, starts in zip(handles, self.starts, strict=True):
                    begin, end = int(starts[code, week]), int(starts[code, week + 1])
                    if end > begin:
                        handle.seek(begin * SPOOL_DTYPE.itemsize)
                        parts.append(np.fromfile(handle, dtype=SPOOL_DTYPE, count=end - begin))
                if parts:
                    rows = np.concatenate(parts)
                    yield rows[np.lexsort((rows["profile"], rows["ts"]))]
        finally:
            for handle in handles:
                handle.close()


# ------------------------------------------------------------------ writing


def _write_profiles(build: Build, columns: Columns, blocks: list[tuple[int, int]], seed: int,
                    until: dt.date, loyalty: Loyalty, report: ProgressCallback) -> None:
    conn = build.conn
    names = [name for name, _ in PROFILE_ATTRIBUTES]
    target = ["pk", "id", *(columns.profile[n] for n in names)]
    total = blocks[-1][1]
    width = max(7, len(str(total)))
    tiers = np.array([*pools.LOYALTY_TIERS, None], dtype=object)
    taken: set[str] = set()  # emails, unique across blocks
    report("Writing profiles", 0.0)
    for number, (low, high) in enumerate(blocks):
        core = _core(high - low, _rng(seed, CORE, number), until)
        values = profile_values(core, _rng(seed, TEXT, number), seed, taken)
        values["lifetime_value"] = loyalty.lifetime_value[low:high].tolist()
        values["loyalty_tier"] = tiers[loyalty.tier[low:high]].tolist()
        values["tier_renewal_date"] = [
            day if is_member else None for day, is_member
            in zip(np.datetime_as_string(loyalty.renewal[low:high].astype("datetime64[D]"),
                                         unit="D").tolist(),
                   loyalty.member[low:high].tolist(), strict=True)]
        for start in range(low, high, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, high)
            pks = range(start + 1, stop + 1)
            data: list[Any] = [pks, [f"C{pk:0{width}d}" for pk in pks],
                               *(values[n][start - low:stop - low] for n in names)]
            conn.engine.bulk_insert_columns(conn, "profiles", target, data)
            build.wrote(stop - start)
            report("Writing profiles", stop / total)


def _write_products(conn: Connection, columns: Columns, products: pools.Products) -> None:
    target = ["key", *(columns.product[n] for n, _ in PRODUCT_FIELDS)]
    conn.engine.bulk_insert_columns(conn, columns.product_table, target, [
        list(products.sku), list(products.name), list(products.category), list(products.brand),
        products.price.tolist()])


def _write_events(build: Build, columns: Columns, spool: EventSpool,
                  products: pools.Products, report: ProgressCallback) -> int:
    """Insert each event type's rows with only the fields it uses (narrow rows insert faster),
    numbered in the stored order; returns how many."""
    conn = build.conn
    page_text = np.array([*spool.pages, None], dtype=object)
    sku_text = np.array([*products.sku, None], dtype=object)
    campaign_text = np.array([*spool.campaigns, None], dtype=object)
    values: dict[str, Callable[[np.ndarray], Any]] = {
        "page": lambda rows: page_text[rows["page"]],
        "sku": lambda rows: sku_text[rows["sku"]],
        "quantity": lambda rows: rows["quantity"].astype(np.int64),
        "amount": lambda rows: rows["amount"],
        "order_id": lambda rows: np.array([f"ORD-{10_000_000 + o}" for o in rows["order"].tolist()],
                                          dtype=object),
        "campaign": lambda rows: campaign_text[rows["campaign"]],
    }
    total = spool.total
    written = 0
    report("Writing events", 0.0)
    for code, name in enumerate(EVENT_TYPES):
        fields = [f for f, _, used_by in EVENT_FIELDS if name in used_by]
        target = ["pk", "profile_pk", "type_id", "ts", *(columns.event[f] for f in fields)]
        type_id = columns.type_ids[name]
        pending: list[np.ndarray] = []
        waiting = 0
        for week in [*spool.weeks(code), None]:
            if week is not None:
                pending.append(week)
                waiting += len(week)
            if waiting and (waiting >= CHUNK_ROWS or week is None):
                rows = np.concatenate(pending)
                pending, waiting = [], 0
                data = [np.arange(written + 1, written + len(rows) + 1, dtype=np.int64),
                        rows["profile"].astype(np.int64) + 1,
                        np.full(len(rows), type_id, dtype=np.int64), rows["ts"],
                        *(values[f](rows) for f in fields)]
                conn.engine.bulk_insert_columns(conn, "events", target, data)
                build.wrote(len(rows))
                written += len(rows)
                report("Writing events", written / max(total, 1))
    report("Writing events", 1.0)
    return written


def _write_segments(conn: Connection, kept: SavedRows) -> None:
    """Copy the saved segments of the replaced store (columns both stores have)."""
    old_columns, rows = kept
    if not rows:
        return
    current = set(conn.engine.table_columns(conn, "segments"))
    keep = [i for i, name in enumerate(old_columns) if name in current]
    conn.engine.bulk_insert(conn, "segments", [old_columns[i] for i in keep],
                            [tuple(row[i] for i in keep) for row in rows])
