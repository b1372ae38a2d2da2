"""Deliveries: message drafts for an audience, with a tiny safe template language.

Templates may contain only placeholders of a member's fields:

- ``{{ first_name }}``: the value, or nothing when the member lacks it;
- ``{{ first_name | default("there") }}``: the value, or the given text.

Nothing else is understood inside ``{{ }}`` and nothing is ever evaluated, so
a template cannot run code or reach anything but the member's captured fields.
``profile_id`` is always available.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store.campaign.store import DELIVERABLE, Audience, Member, find_audience, member_page, store_error
from store.engines.base import Connection
from store.engines.layout import write_transaction
from store.errors import InputError
from store.schema.catalog import did_you_mean
from store.schema.values import UTC, format_datetime

CHANNELS = ("email", "sms", "push")
PREVIEW_LIMIT = 3
MAX_TEMPLATE_CHARS = 100_000

_OPEN = "{{"
_CLOSE = "}}"
_PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\s*\(\s*(?:\"(?P<dq>(?:[^\"\\]|\\.)*)\"|'(?P<sq>(?:[^'\\]|\\.)*)')\s*\)\s*)?\}\}",
    re.DOTALL,
)


@dataclass(frozen=True)
class Placeholder:
    """``{{ name }}`` or ``{{ name | default("text") }}``."""

    name: str
    default: str | None = None


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names the template uses, each once, in order of first use."""
        seen: list[str] = []
        for part in self.parts:
            if isinstance(part, Placeholder) and part.name not in seen:
                seen.append(part.name)
        return tuple(seen)

    def needs(self, name: str) -> bool:
        """Whether some use of ``name`` has no default (so a missing value leaves a gap)."""
        return any(isinstance(p, Placeholder) and p.name == name and p.default is None
                   for p in self.parts)

    def render(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = format_value(values.get(part.name))
            out.append(text if text else (part.default or ""))
        return "".join(out)


def format_value(value: Any) -> str:
    """A field value as message text; missing (None or empty) is the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def parse_template(text: str, what: str = "template") -> Template:
    """Parse a template; anything but a known placeholder inside ``{{ }}`` is an ``InputError``."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InputError(f"the {what} is too long ({len(text):,} characters; at most"
                         f" {MAX_TEMPLATE_CHARS:,}).")
    parts: list[str | Placeholder] = []
    position = 0
    while True:
        start = text.find(_OPEN, position)
        if start < 0:
            if position < len(text):
                parts.append(text[position:])
            break
        match = _PLACEHOLDER.match(text, start)
        if match is None:
            end = text.find(_CLOSE, start + len(_OPEN))
            if end < 0:
                raise InputError(f"{what}, {_where(text, start)}: '{{{{' is never closed by '}}}}'.")
            inner = text[start + len(_OPEN):end]
            raise InputError(
                f"{what}, {_where(text, start)}: {{{{{inner}}}}} is not a placeholder; write"
                ' {{ field }} or {{ field | default("text") }}.')
        if start > position:
            parts.append(text[position:start])
        raw_default = match.group("dq") if match.group("dq") is not None else match.group("sq")
        parts.append(Placeholder(match.group("name"),
                                 None if raw_default is None else _unescape(raw_default)))
        position = match.end()
    return Template(text, tuple(parts))


def check_fields(template: Template, available: tuple[str, ...], what: str) -> None:
    """Every placeholder must name a field the audience captured (or ``profile_id``)."""
    known = {"profile_id", *available}
    for name in template.fields:
        if name not in known:
            raise InputError(
                f"{what} uses {{{{ {name} }}}} but the audience has no such field."
                + did_you_mean(name, known)
                + " (Activate with --field to capture more fields.)")


# ------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class Delivery:
    id: int
    name: str
    channel: str
    audience_id: int
    subject: str
    body: str
    status: str
    created_at: str


@dataclass(frozen=True)
class RenderedMessage:
    profile_id: str
    subject: str
    body: str


@dataclass(frozen=True)
class Preview:
    """A delivery rendered for some members, and how many members lack each used field."""

    delivery: Delivery
    audience: Audience
    messages: tuple[RenderedMessage, ...]
    missing: dict[str, int]  # field -> members without a value for it
    needed: tuple[str, ...]  # used fields that have no default somewhere
    members: int


_DELIVERY_COLUMNS = "id, name, channel, audience_id, subject, body, status, created_at"


def create_delivery(conn: Connection, audience_key: int | str, name: str, body: str,
                    subject: str = "", channel: str = "email") -> Delivery:
    """Validate the templates against the audience's fields, then save a draft delivery."""
    audience = find_audience(conn, audience_key)
    name = name.strip()
    if not name:
        raise InputError("A delivery needs a name.")
    if channel not in CHANNELS:
        raise InputError(f"Unknown channel {channel!r}; use one of: {', '.join(CHANNELS)}.")
    if channel == "email" and not subject.strip():
        raise InputError("An email delivery needs a subject.")
    if not body.strip():
        raise InputError("A delivery needs a body.")
    for text, what in ((subject, "subject"), (body, "body")):
        check_fields(parse_template(text, what), audience.fields, what.capitalize())
    now = format_datetime(dt.datetime.now(UTC).replace(microsecond=0))
    try:
        with write_transaction(conn):
            new_id = conn.execute(
                "INSERT INTO deliveries(name, channel, audience_id, subject, body, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'draft', ?)",
                (name, channel, audience.id, subject, body, now)).lastrowid
    except sqlite3.DatabaseError as exc:
        raise store_error(conn, exc) from exc
    return get_delivery(conn, int(new_id or 0))


def list_deliveries(conn: Connection, audience_id: int | None = None) -> list[Delivery]:
    """Deliveries, newest first; only one audience's when ``audience_id`` is given."""
    sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
    params: tuple[Any, ...] = ()
    if audience_id is not None:
        sql += " WHERE audience_id = ?"
        params = (audience_id,)
    return [Delivery(*row) for row in conn.execute(sql + " ORDER BY id DESC", params)]


def get_delivery(conn: Connection, delivery_id: int | str) -> Delivery:
    row = None
    if str(delivery_id).isdigit():
        row = conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",
                           (int(delivery_id),)).fetchone()
    if row is None:
        raise InputError(f"No delivery {delivery_id!r}.")
    return Delivery(*row)


def delete_delivery(conn: Connection, delivery_id: int) -> None:
    try:
        with write_transaction(conn):
            if conn.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,)).rowcount == 0:
                raise InputError(f"No delivery {delivery_id!r}.")
    except sqlite3.DatabaseError as exc:
        raise store_error(conn, exc) from exc


def missing_counts(conn: Connection, audience_id: int, fields: tuple[str, ...]) -> dict[str, int]:
    """For each field, how many members have no value (missing or empty) for it; one pass
    (the holdout group is never delivered to, so it is not counted)."""
    names = [name for name in fields if name != "profile_id"]
    result = {name: 0 for name in fields}
    if not names:
        return result
    sums = ", ".join(
        "coalesce(sum(coalesce(json_extract(fields, ?), '') = ''), 0)" for _ in names)
    paths = ['$."' + name.replace('"', '\\"') + '"' for name in names]
    row = conn.execute(f"SELECT {sums} FROM audience_members WHERE audience_id = ? AND {DELIVERABLE}",
                       (*paths, audience_id)).fetchone()
    result.update({name: int(value) for name, value in zip(names, row, strict=True)})
    return result


def render_member(delivery: Delivery, member: Member) -> RenderedMessage:
    values = {**member.fields, "profile_id": member.profile_id}
    subject = parse_template(delivery.subject, "subject").render(values)
    body = parse_template(delivery.body, "body").render(values)
    return RenderedMessage(member.profile_id, subject, body)


def preview(conn: Connection, delivery: Delivery, limit: int = PREVIEW_LIMIT,
            after: str | None = None) -> Preview:
    """The delivery rendered for ``limit`` members (after ``after`` in id order), with missing counts."""
    audience = find_audience(conn, delivery.audience_id)
    subject = parse_template(delivery.subject, "subject")
    body = parse_template(delivery.body, "body")
    used = tuple(dict.fromkeys((*subject.fields, *body.fields)))
    needed = tuple(name for name in used if subject.needs(name) or body.needs(name))
    conn.execute("BEGIN")
    try:
        members = member_page(conn, audience.id, after, limit, deliverable=True)
        missing = missing_counts(conn, audience.id, used)
        size = int(conn.execute("SELECT count(*) FROM audience_members WHERE audience_id = ?"
                                f" AND {DELIVERABLE}", (audience.id,)).fetchone()[0])
    finally:
        conn.execute("COMMIT")
    messages = tuple(render_member(delivery, member) for member in members)
    return Preview(delivery, audience, messages, missing, needed, size)


def preview_json(result: Preview) -> dict[str, Any]:
    """The ``deliveries preview --json`` object."""
    return {
        "delivery_id": result.delivery.id,
        "audience_id": result.audience.id,
        "members": result.members,
        "missing": result.missing,
        "needed": list(result.needed),
        "messages": [{"profile_id": m.profile_id, "subject": m.subject, "body": m.body}
                     for m in result.messages],
    }

