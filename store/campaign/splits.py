"""Splits and holdouts: an audience's members divided into named groups at activation.

Two kinds of split:

- **by share** (``A:45,B:45,holdout:10``): on a first activation the members
  are ordered by a hash of the seed and their profile id and cut into groups
  of the given shares (exact to one member). On a refresh with the same split
  every member that stays keeps its group; the newcomers, again in hash
  order, fill the groups that fell below their share. So a member's group
  never changes while it stays in the audience, and the sizes stay within a
  member or two of the shares however the audience churns.
- **by an attribute's values** (``--split-by country``): a member's group is
  its value of the attribute (``(missing)`` when it has none).

A group named ``holdout`` (any case) is a holdout: its members are stored
like the others but deliveries and exports leave them out unless asked.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from store.engines.base import Connection
from store.errors import InputError

HOLDOUT = "holdout"
MISSING_GROUP = "(missing)"
MAX_GROUPS = 20
DEFAULT_SEED = "1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")
_TOLERANCE = 1e-6  # shares are percentages with a few decimals at most


@dataclass(frozen=True)
class SplitSpec:
    """How an audience is split: named shares (percent) with a seed, or an attribute's values.

    ``SplitSpec()`` (no groups, no attribute) means "no split".
    """

    groups: tuple[tuple[str, float], ...] = ()
    seed: str = DEFAULT_SEED
    attribute: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.groups) or self.attribute is not None

    def to_json(self) -> str | None:
        if self.attribute is not None:
            return json.dumps({"attribute": self.attribute})
        if self.groups:
            return json.dumps({"groups": [[name, share] for name, share in self.groups],
                               "seed": self.seed})
        return None

    @classmethod
    def from_json(cls, text: str | None) -> SplitSpec:
        if not text:
            return cls()
        data = json.loads(text)
        if data.get("attribute"):
            return cls(attribute=str(data["attribute"]))
        return cls(tuple((str(name), float(share)) for name, share in data.get("groups", [])),
                   str(data.get("seed", DEFAULT_SEED)))

    def shares_text(self) -> str:
        """The shares as ``--split`` takes them (``A:45,B:45,holdout:10``; empty without)."""
        return ",".join(f"{name}:{_number(share)}" for name, share in self.groups)

    def describe(self) -> str:
        """The split in the CLI's words: ``A:45,B:45,holdout:10 (seed 1)`` or ``by country``."""
        if self.attribute is not None:
            return f"by {self.attribute}"
        if not self.groups:
            return "none"
        return ",".join(f"{name}:{_number(share)}" for name, share in self.groups) + f" (seed {self.seed})"


def _number(share: float) -> str:
    return str(int(share)) if share == int(share) else f"{share:g}"


def is_holdout(group: str | None) -> bool:
    return group is not None and group.lower() == HOLDOUT


def parse_split(text: str, seed: str | None = None) -> SplitSpec:
    """``NAME:PCT[,NAME:PCT...]`` as a ``SplitSpec``; ``none`` removes a split.

    Shares must add up to 100, names be distinct (ignoring case) and plain
    (letters, digits, space, ``_.-``; up to 40 characters). Wrong input is an
    ``InputError`` naming what is wrong.
    """
    raw = text.strip()
    if raw.lower() in ("none", "off"):
        return SplitSpec()
    if not raw:
        raise InputError("--split is empty; give NAME:PCT pairs, e.g. A:45,B:45,holdout:10.")
    groups: list[tuple[str, float]] = []
    seen: set[str] = set()
    for item in raw.split(","):
        name, colon, pct = item.strip().rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise InputError(f"--split {text!r}: {item.strip()!r} is not NAME:PCT"
                             " (e.g. A:45,B:45,holdout:10).")
        if not _NAME.match(name):
            raise InputError(f"--split: group name {name!r} must be letters, digits, spaces or _.-"
                             " (up to 40 characters, starting with a letter or digit).")
        try:
            share = float(pct)
        except ValueError:
            raise InputError(f"--split: the share of {name!r} is {pct.strip()!r}, not a number.") from None
        if not 0 < share <= 100 or share != share:
            raise InputError(f"--split: the share of {name!r} must be above 0 and at most 100,"
                             f" not {pct.strip()}.")
        if name.lower() in seen:
            raise InputError(f"--split: the group {name!r} is named twice.")
        seen.add(name.lower())
        groups.append((name, share))
    if len(groups) > MAX_GROUPS:
        raise InputError(f"--split: at most {MAX_GROUPS} groups (got {len(groups)}).")
    total = sum(share for _, share in groups)
    if abs(total - 100) > _TOLERANCE:
        raise InputError(f"--split: the shares add up to {_number(round(total, 6))}, not 100.")
    seed_text = DEFAULT_SEED if seed is None else str(seed).strip()
    if not seed_text:
        raise InputError("--split-seed is empty.")
    return SplitSpec(tuple(groups), seed_text)


def split_key(seed: str, profile_id: str) -> int:
    """The order in which newcomers are dealt into groups: a hash of the seed and the id."""
    digest = hashlib.blake2b(f"{seed}\x1f{profile_id}".encode(), digest_size=7).digest()
    return int.from_bytes(digest, "big")


def allocate(total: int, shares: list[float]) -> list[int]:
    """``total`` divided in proportion to ``shares`` (largest remainders; sums to ``total``)."""
    weight = sum(shares)
    if total <= 0 or weight <= 0:
        return [0] * len(shares)
    exact = [total * share / weight for share in shares]
    whole = [int(x) for x in exact]
    rest = total - sum(whole)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - whole[i]), i))
    for i in order[:rest]:
        whole[i] += 1
    return whole


def assign_share_groups(campaign_conn: Connection, staged: str, spec: SplitSpec,
                        audience_id: int | None, keep_groups: bool) -> None:
    """Fill the ``split`` column of the staged members for a split by share.

    ``keep_groups``: the audience had this very split, so members already in
    it keep their group; the rest are dealt, in ``split_key`` order, into the
    groups that are short of their share of the new total.
    """
    names = [name for name, _ in spec.groups]
    campaign_conn.execute(f"UPDATE {staged} SET split = NULL")
    if keep_groups and audience_id is not None:
        placeholders = ", ".join("?" * len(names))
        campaign_conn.execute(
            f"UPDATE {staged} SET split = (SELECT m.split FROM audience_members AS m"
            f" WHERE m.audience_id = ? AND m.profile_id = {staged}.profile_id"
            f" AND m.split IN ({placeholders}))", (audience_id, *names))
    kept = dict(campaign_conn.execute(
        f"SELECT split, count(*) FROM {staged} WHERE split IS NOT NULL GROUP BY split").fetchall())
    newcomers = int(campaign_conn.execute(
        f"SELECT count(*) FROM {staged} WHERE split IS NULL").fetchone()[0])
    if newcomers == 0:
        return
    total = newcomers + sum(kept.values())
    targets = allocate(total, [share for _, share in spec.groups])
    short = [max(0, target - int(kept.get(name, 0))) for name, target in zip(names, targets, strict=True)]
    dealt = allocate(newcomers, [float(s) for s in short] if sum(short) else
                     [share for _, share in spec.groups])
    create_function = getattr(campaign_conn, "create_function")  # noqa: B009 - sqlite3 only
    create_function("split_key", 2, split_key, deterministic=True)
    campaign_conn.execute("DROP TABLE IF EXISTS temp.split_rank")
    campaign_conn.execute(
        "CREATE TEMP TABLE split_rank (profile_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
    try:
        campaign_conn.execute(
            f"INSERT INTO temp.split_rank SELECT profile_id, row_number() OVER"
            f" (ORDER BY split_key(?, profile_id), profile_id) FROM {staged} WHERE split IS NULL",
            (spec.seed,))
        cases, params, upto = [], [], 0
        for name, count in zip(names, dealt, strict=True):
            if count:
                upto += count
                cases.append("WHEN r.n <= ? THEN ?")
                params.extend([upto, name])
        campaign_conn.execute(
            f"UPDATE {staged} SET split = (SELECT CASE {' '.join(cases)} END FROM temp.split_rank AS r"
            f" WHERE r.profile_id = {staged}.profile_id) WHERE split IS NULL", params)
    finally:
        campaign_conn.execute("DROP TABLE IF EXISTS temp.split_rank")


def check_group_count(campaign_conn: Connection, staged: str, spec: SplitSpec) -> None:
    """A split by an attribute with too many values (an email, an id) is refused."""
    if spec.attribute is None:
        return
    groups = int(campaign_conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT split FROM {staged})").fetchone()[0])
    if groups > MAX_GROUPS:
        raise InputError(f"--split-by {spec.attribute}: the audience has {groups:,} different values"
                         f" of {spec.attribute}; a split has at most {MAX_GROUPS} groups.")


def group_counts(campaign_conn: Connection, table: str, where: str = "",
                 params: tuple[Any, ...] = ()) -> dict[str, int]:
    """Members per group (groups in name order; members without a group are not counted)."""
    rows = campaign_conn.execute(
        f"SELECT split, count(*) FROM {table} WHERE split IS NOT NULL {where}"
        " GROUP BY split ORDER BY split", params).fetchall()
    return {str(name): int(n) for name, n in rows}


def ordered_counts(spec: SplitSpec, counts: dict[str, int]) -> dict[str, int]:
    """Per-group counts in the split's own order (every named group, even an empty one)."""
    if spec.groups:
        return {name: counts.get(name, 0) for name, _ in spec.groups}
    return dict(sorted(counts.items(), key=lambda item: (item[0] == MISSING_GROUP, item[0])))
