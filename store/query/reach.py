"""Reach: how many of a segment's members each channel may contact, from consent attributes.

A channel is found in the catalog by name: a boolean profile attribute called
``<channel>_opt_in``, ``<channel>_optin`` or ``<channel>_consent`` (any case)
is that channel's consent (``email_opt_in`` -> email, ``sms_opt_in`` -> sms).
A member is reachable on a channel when the attribute is true; false and
missing are not. The count is the segment and ``attribute is true``, compiled
and counted like any segment, so it is exact on every engine.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace

from store.engines.base import Connection
from store.query.audience import count
from store.schema.catalog import Catalog
from store.segments.model import AllOf, AttributeCondition
from store.segments.validate import ResolvedSegment

_CONSENT = re.compile(r"^(?P<channel>.+?)_(?:opt_in|optin|consent)$", re.IGNORECASE)


def consent_channels(catalog: Catalog) -> dict[str, str]:
    """Channel name -> its consent attribute, in catalog order (first attribute wins a channel)."""
    channels: dict[str, str] = {}
    for name, attribute in catalog.attributes.items():
        match = _CONSENT.match(name)
        if match and attribute.type == "boolean":
            channels.setdefault(match.group("channel").lower(), name)
    return channels


def reachable(resolved: ResolvedSegment, attribute: str) -> ResolvedSegment:
    """``resolved`` narrowed to the members whose ``attribute`` is true."""
    rule = AllOf((resolved.segment.rule, AttributeCondition(attribute, "is_true")))
    return replace(resolved, segment=replace(resolved.segment, rule=rule))


def reach(conn: Connection, resolved: ResolvedSegment, as_of: dt.datetime, catalog: Catalog,
          check: Callable[[], None] | None = None) -> dict[str, int]:
    """Members reachable per consent channel at ``as_of`` ({} when the catalog has none).

    ``check`` runs before each count (it raises to stop between two channels).
    """
    result: dict[str, int] = {}
    for channel, attribute in consent_channels(catalog).items():
        if check is not None:
            check()
        result[channel] = count(conn, reachable(resolved, attribute), as_of, catalog)
    return result
