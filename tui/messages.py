"""Typed messages that thread workers post back to the screens that started them.

Workers never touch widgets. How a request is stopped and how its late results
are dropped is one rule for every screen, with two parts, each with its own job:

- Stopping the work, for every request that counts or scans profiles (one that may
  run for seconds on a large store): a cancellation token (``store.engines.cancel.Cancel``) from
  the app's query runner, ``host(self).queries.start(group)``, made in the UI
  thread before the worker starts (one group per kind of request and screen, e.g.
  ``builder-<id>:preview``). Starting the next request of a group cancels the
  previous token, which interrupts its statement on any engine; a screen leaving
  interrupts its groups (``queries.interrupt`` / ``interrupt_prefix`` in
  ``on_unmount``), and quitting cancels every token. The worker hands the token to
  the store (``cancel=``, or ``queries.connection(token)``), checks
  ``token.cancelled`` between steps, and treats ``QueryCancelled`` as "stopped",
  never as an error. Workers do not look at Textual's
  ``get_current_worker().is_cancelled``: the token is the one flag.
- Dropping late results: each message carries the generation of the request that
  produced it (``WorkerResult``); the handler drops results of a generation it has
  since replaced (the user typed more, picked another segment, moved on). A token
  cannot do this job: a result posted just before the next request started still
  arrives after it.

Quick look-ups (a saved segment or a profile by its key, the campaign store's
audience and delivery lists) and saves take no token: nothing long is there to
stop, and generation alone drops what comes late. The activation dialog follows
the same rule: its review and its activation each take a token of the group
``activation`` (``store.campaign.activation`` checks it between steps and it
interrupts both the profile store's and the campaign store's statements).
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
