"""Typed messages that thread workers post back to the screens that started them.

Workers never touch widgets. Each message carries the generation of the
request that produced it; a screen drops results from requests it has since
replaced (the user typed more, picked another segment, moved on).
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class WorkerResult(Message, bubble=False):
    """Base of worker results: the request's generation number."""

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation


class QueryFailed(WorkerResult):
    """A query failed; ``message`` is a sentence for the user."""

    def __init__(self, generation: int, what: str, message: str) -> None:
        super().__init__(generation)
        self.what = what
        self.message = message


class StoreCounted(WorkerResult):
    """The number of profiles in the store (for the header)."""

    def __init__(self, generation: int, total: int) -> None:
        super().__init__(generation)
        self.total = total


class ListingCounted(WorkerResult):
    """How many profiles the browser's current listing holds (``capped``: at least that many)."""

    def __init__(self, generation: int, count: int, capped: bool, elapsed: float) -> None:
        super().__init__(generation)
        self.count = count
        self.capped = capped
        self.elapsed = elapsed


class SegmentsListed(WorkerResult):
    """The saved segments, for a picker."""

    def __init__(self, generation: int, segments: list[Any]) -> None:
        super().__init__(generation)
        self.segments = segments


class ProfileLoaded(WorkerResult):
    """A profile's attributes and summary, for the profile view."""

    def __init__(self, generation: int, attributes: list[Any] | None, summary: Any) -> None:
        super().__init__(generation)
        self.attributes = attributes
        self.summary = summary


class MembershipLoaded(WorkerResult):
    """The saved segments a profile belongs to, and every saved segment's name."""

    def __init__(self, generation: int, member_of: list[tuple[str, str]],
                 segments: list[tuple[str, str]], failed: list[tuple[str, str]],
                 profile: Any = None, resolved: dict[str, Any] | None = None) -> None:
        super().__init__(generation)
        self.member_of = member_of
        self.segments = segments
        self.failed = failed
        self.profile = profile  # the evaluator's ProfileData, kept to explain without re-reading
        self.resolved = resolved or {}


class Explained(WorkerResult):
    """Why a profile is or is not in a segment: the explanation tree."""

    def __init__(self, generation: int, segment_id: str, segment_name: str,
                 explanation: Any) -> None:
        super().__init__(generation)
        self.segment_id = segment_id
        self.segment_name = segment_name
        self.explanation = explanation
