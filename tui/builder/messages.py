"""Results the builder's workers post back; each carries the generation of the edit it counted.

A result whose generation is not the screen's current one belongs to a
superseded edit and is dropped unseen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from store.query.audience import NodeCount
from store.segments.editing import Problem
from store.segments.library import SavedSegment
from store.segments.model import Node
from store.segments.validate import ResolvedSegment
from tui.messages import WorkerResult


class ProblemsFound(WorkerResult):
    """Every node that cannot count (schema problems and bad references), by node path."""

    def __init__(self, generation: int, problems: dict[str, Problem]) -> None:
        super().__init__(generation)
        self.problems = problems


class Counted(WorkerResult):
    """The exact audience of the countable draft, every node's own count and waterfall
    (by path), and how long counting took (seconds)."""

    def __init__(self, generation: int, count: int, total: int, elapsed: float,
                 resolved: ResolvedSegment, as_of: dt.datetime, nodes: Sequence[NodeCount]) -> None:
        super().__init__(generation)
        self.count = count
        self.total = total
        self.elapsed = elapsed
        self.resolved = resolved
        self.as_of = as_of
        self.nodes = {c.path: c for c in nodes}


class Uncountable(WorkerResult):
    """Nothing in the draft can be counted yet (e.g. its only condition is invalid)."""

    def __init__(self, generation: int, reason: str) -> None:
        super().__init__(generation)
        self.reason = reason


class Sampled(WorkerResult):
    def __init__(self, generation: int, members: list[tuple[int, str]], audience: int) -> None:
        super().__init__(generation)
        self.members = members
        self.audience = audience


class BrokenDown(WorkerResult):
    def __init__(self, generation: int, attribute: str, rows: list[tuple[str, int]],
                 audience: int) -> None:
        super().__init__(generation)
        self.attribute = attribute
        self.rows = rows
        self.audience = audience


class PreviewDone(WorkerResult):
    """The preview worker of this edit has posted everything it will (tests and the
    benchmark wait for it; the screen shows nothing new)."""


class PreviewFailed(WorkerResult):
    def __init__(self, generation: int, message: str) -> None:
        super().__init__(generation)
        self.message = message


class SavedSegmentsLoaded(WorkerResult):
    def __init__(self, generation: int, segments: list[SavedSegment]) -> None:
        super().__init__(generation)
        self.segments = segments


class ReferenceLoaded(WorkerResult):
    """The rule of a referenced segment, to put in place of the reference at ``path``."""

    def __init__(self, generation: int, path: str, segment_id: str, rule: Node | None,
                 error: str = "") -> None:
        super().__init__(generation)
        self.path = path
        self.segment_id = segment_id
        self.rule = rule
        self.error = error


class SegmentSaved(WorkerResult):
    def __init__(self, generation: int, segment_id: str, then: str | None) -> None:
        super().__init__(generation)
        self.segment_id = segment_id
        self.then = then


class SaveFailed(WorkerResult):
    def __init__(self, generation: int, message: str) -> None:
        super().__init__(generation)
        self.message = message
