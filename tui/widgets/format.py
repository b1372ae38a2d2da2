"""How stored values look on screen: one place, so every table and panel agrees.

Cells are always ``rich.text.Text`` (never markup strings), so a profile
whose name contains brackets is shown as typed, not interpreted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import JustifyMethod
from rich.text import Text

from store.schema.catalog import Catalog
from store.schema.values import from_epoch_seconds

MISSING = "—"
_FALLBACK_TONES = {"success": "green", "warning": "yellow", "error": "red", "primary": "blue",
                   "accent": "yellow", "secondary": "blue"}
NUMERIC_TYPES = frozenset({"integer", "number"})


def plain_value(value: Any, attr_type: str) -> str:
    """The display text of a stored value of ``attr_type`` (missing shown as a dash)."""
    if value is None or value == "":
        return MISSING
    if attr_type == "boolean":
        return "Yes" if value in (1, True, "1", "true") else "No"
    if attr_type == "integer" and isinstance(value, int | float):
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if attr_type == "number" and isinstance(value, int | float):
        return f"{value:,.2f}"
    if attr_type == "datetime":
        return str(value)[:16]
    return str(value)


def cell(value: Any, attr_type: str) -> Text:
    """A table cell: numbers right-aligned, missing values dimmed."""
    text = plain_value(value, attr_type)
    justify: JustifyMethod = "right" if attr_type in NUMERIC_TYPES else "left"
    if value is None or value == "":
        return Text(text, style="dim", justify=justify)
    return Text(text, justify=justify, no_wrap=True, overflow="ellipsis")


def _moment(ts: Any) -> dt.datetime | None:
    """The UTC instant of stored epoch seconds; None for a value no datetime can hold.

    Imports refuse instants outside the years 1-9999, but a store written by an older
    version may hold one (milliseconds read as seconds), or a value that is no number.
    """
    try:
        return from_epoch_seconds(ts)
    except (OverflowError, ValueError, TypeError):
        return None


def format_ts(ts: float | None, with_time: bool = True) -> str:
    """An event timestamp (epoch seconds, UTC) as ``YYYY-MM-DD HH:MM``.

    A stored value outside the years 1-9999 is shown as the raw number; it never raises.
    """
    if ts is None:
        return MISSING
    moment = _moment(ts)
    if moment is None:
        return str(ts) or MISSING
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def format_money(amount: float | None) -> str:
    return MISSING if amount is None else f"{amount:,.2f}"


def format_count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 profile`` / ``2 profiles`` with thousands separators."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def relative_day(ts: float | None, today: dt.date) -> str:
    """How long ago an instant was, in words a marketer uses (``3 days ago``)."""
    moment = None if ts is None else _moment(ts)
    if moment is None:  # missing, or outside the years 1-9999: no words for it
        return ""
    days = (today - moment.date()).days
    if days < 0:
        return "in the future"
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def tone(app: Any, name: str) -> str:
    """The current theme's colour ``name`` (success, warning, error, primary, accent) as a style.

    Rich's named colours ("yellow", "cyan") are pure terminal colours that
    vanish on a light background; the theme's own colours are readable in
    the theme they belong to. Text made with them should be made again when
    the theme changes (``App.theme_changed_signal``).
    """
    theme = getattr(app, "current_theme", None)
    value = getattr(theme, name, None) if theme is not None else None
    return str(value) if value else _FALLBACK_TONES.get(name, "")


def field_label(catalog: Catalog, name: str) -> str:
    """An attribute's label from the store's schema catalog (its own name when there is none)."""
    attribute = catalog.attributes.get(name)
    return attribute.display_label if attribute is not None else name
