"""Overlap of audiences: sizes, pairwise intersections and exclusive intersections, exact.

Each segment's audience is read once as a bitmap over the pk space
(``store.query.membersets``: one query per segment, the cheaper side of it, 1
bit a profile), kept in a ``MemberSetCache`` keyed by the segment's whole
definition and the as-of instant; every intersection is then a bitwise AND
and a population count. Reading the sets is what costs; comparing ten of
them pairwise, or counting the profiles in exactly each combination (for an
UpSet chart), takes milliseconds. Pass the same cache again (the app does)
and a segment that did not change is not read again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store.engines.base import Connection
from store.engines.cancel import Cancel, watching
from store.errors import InputError
from store.query.compiler import compile_members
from store.query.membersets import Bits, MemberSetCache, Universe, population, read_pks
from store.schema.catalog import Catalog
from store.segments.validate import ResolvedSegment

MIN_SEGMENTS = 2
MAX_SEGMENTS = 20
MAX_EXCLUSIVE = 8  # exclusive intersections (UpSet) for up to this many segments


@dataclass(frozen=True)
class Overlap:
    """The sizes of some audiences and how they intersect, at one as-of instant."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    as_of: dt.datetime
    total: int  # profiles in the store
    sizes: tuple[int, ...]
    matrix: tuple[tuple[int, ...], ...]  # matrix[i][j]: profiles in both i and j (diagonal: sizes)
    union: int  # profiles in at least one
    # profiles in exactly these segments (indices, ascending) and no other; non-empty ones only,
    # largest first; empty when there are more than MAX_EXCLUSIVE segments
    exclusive: tuple[tuple[tuple[int, ...], int], ...] = ()
    elapsed_ms: float = 0.0
    reads: int = field(default=0, compare=False)  # sets read from the store (not from the cache)

    def share(self, i: int, j: int) -> float:
        """The share of audience i that is also in j (0 when i is empty)."""
        return self.matrix[i][j] / self.sizes[i] if self.sizes[i] else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "segments": list(self.ids),
            "names": list(self.names),
            "sizes": list(self.sizes),
            "overlap": [list(row) for row in self.matrix],
            "total": self.total,
            "union": self.union,
            "exclusive": [{"segments": [self.ids[i] for i in combo], "count": count}
                          for combo, count in self.exclusive],
            "as_of": self.as_of.isoformat(),
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


def check_segments(resolved: Sequence[ResolvedSegment]) -> None:
    """Two to ``MAX_SEGMENTS`` different segments, or an ``InputError`` saying what is wrong."""
    if len(resolved) < MIN_SEGMENTS:
        raise InputError("Overlap needs at least two segments"
                         f" (got {len(resolved)}); name two or more.")
    if len(resolved) > MAX_SEGMENTS:
        raise InputError(f"Overlap compares at most {MAX_SEGMENTS} segments (got {len(resolved)}).")
    seen: set[str] = set()
    for item in resolved:
        if item.segment.id in seen:
            raise InputError(f"The segment {item.segment.id!r} is named twice.")
        seen.add(item.segment.id)


def segment_key(resolved: ResolvedSegment, as_of: dt.datetime) -> Hashable:
    """What a segment's members depend on: its rule, every rule it refers to, the as-of instant."""
    refs = tuple(sorted((k, repr(v.rule)) for k, v in resolved.refs.items()))
    return "segment", repr(resolved.segment.rule), refs, as_of.isoformat()


def member_bits(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime, catalog: Catalog,
                cache: MemberSetCache, universe: Universe, cancel: Cancel | None = None) -> Bits:
    """A segment's audience as a bitmap, from the cache or read with one query."""
    key = segment_key(resolved, as_of)
    bits = cache.get(key)
    if bits is None:
        if cancel is not None:
            cancel.check()
        query, outside = compile_members(resolved.segment.rule, resolved, catalog, as_of,
                                         dialect=conn.engine.dialect)
        with watching(cancel, conn):
            conn.engine.prepare_reads(conn)
            pks = read_pks(conn, query.sql, query.params)
        bits = universe.bits(pks)
        if outside:
            bits = universe.complement(bits)
        cache.put(key, bits)
    return bits


READERS = 2  # segments read at once, each on its own connection (the machines have 2 cores)


def read_sets(conn: Connection, resolved: Sequence[ResolvedSegment], as_of: dt.datetime,
              catalog: Catalog, cache: MemberSetCache, universe: Universe,
              cancel: Cancel | None = None) -> list[Bits]:
    """Every segment's bitmap; those not cached are read two at a time when the store can be
    opened a second time (a file that exists, a server), else one after the other."""
    missing = [item for item in resolved if cache.get(segment_key(item, as_of)) is None]
    location = conn.engine.path
    other: Connection | None = None
    if len(missing) > 1 and READERS > 1 and (location is None or location.exists()):
        try:
            other = conn.engine.connect(readonly=True)
        except Exception:  # no second connection: read on the first alone
            other = None
    if other is not None:
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                helper = pool.submit(_read_all, other, missing[1::2], as_of, catalog, cache,
                                     universe, cancel)
                try:
                    _read_all(conn, missing[0::2], as_of, catalog, cache, universe, cancel)
                except BaseException:
                    with contextlib.suppress(Exception):
                        other.interrupt()
                    raise
                finally:
                    helper_error = helper.exception()
                if helper_error is not None:
                    raise helper_error
        finally:
            other.close()
    return [member_bits(conn, item, as_of, catalog, cache, universe, cancel) for item in resolved]


def _read_all(conn: Connection, items: Sequence[ResolvedSegment], as_of: dt.datetime,
              catalog: Catalog, cache: MemberSetCache, universe: Universe,
              cancel: Cancel | None) -> None:
    for item in items:
        member_bits(conn, item, as_of, catalog, cache, universe, cancel)


def overlap(conn: Connection, resolved: Sequence[ResolvedSegment], as_of: dt.datetime,
            catalog: Catalog | None = None, cache: MemberSetCache | None = None,
            cancel: Cancel | None = None) -> Overlap:
    """Sizes, pairwise overlaps and exclusive intersections of two or more segments at ``as_of``."""
    started = time.perf_counter()
    check_segments(resolved)
    catalog = catalog or Catalog.load(conn)
    cache = cache if cache is not None else MemberSetCache()
    reads_before = cache.reads
    with watching(cancel, conn):
        universe = cache.prepare(conn)
    sets = read_sets(conn, resolved, as_of, catalog, cache, universe, cancel)
    sizes = tuple(population(bits) for bits in sets)
    matrix = tuple(tuple(sizes[i] if i == j else population(np.bitwise_and(sets[i], sets[j]))
                         for j in range(len(sets))) for i in range(len(sets)))
    union = universe.nobody()
    for bits in sets:
        union = np.bitwise_or(union, bits)
    exclusive = exclusive_counts(sets, universe) if len(sets) <= MAX_EXCLUSIVE else ()
    return Overlap(
        ids=tuple(item.segment.id for item in resolved),
        names=tuple(item.segment.name for item in resolved),
        as_of=as_of, total=population(universe.everyone), sizes=sizes, matrix=matrix,
        union=population(union), exclusive=exclusive,
        elapsed_ms=(time.perf_counter() - started) * 1000, reads=cache.reads - reads_before)


def exclusive_counts(sets: Sequence[Bits], universe: Universe) -> tuple[tuple[tuple[int, ...], int], ...]:
    """For every combination of the sets, the profiles in exactly those and in no other.

    Each profile gets a code with bit i set when it is in set i; counting the
    codes gives every exclusive intersection in one pass. Only profiles of the
    store count (the pk space may have gaps), and code 0 (in none) is left out.
    """
    code = np.zeros(universe.size, dtype=np.uint16)
    for index, bits in enumerate(sets):
        member = np.unpackbits(bits, count=universe.size).astype(np.uint16)
        code |= member << index
    present = np.unpackbits(universe.everyone, count=universe.size).astype(bool)
    counts = np.bincount(code[present], minlength=1 << len(sets))
    found = [(tuple(i for i in range(len(sets)) if value >> i & 1), int(counts[value]))
             for value in range(1, len(counts)) if counts[value]]
    found.sort(key=lambda item: (-item[1], len(item[0]), item[0]))
    return tuple(found)
