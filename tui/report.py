"""The demo report: the view on screen written as an SVG screenshot and a short Markdown
summary beside it, into one folder, for slides (F6 from any area).

A screen says what its summary holds through ``report_title`` and ``report_lines``
(``Reportable``): the builder gives the segment in words with its size and share,
the overlap view its matrix, the trend its points, the Audiences area the
highlighted audience with its groups and schedule. Any other view gets the
screenshot and the store line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

REPORT_DIR_VARIABLE = "AUDIENCES_REPORT_DIR"
DEFAULT_REPORT_DIR = "audiences-reports"


@runtime_checkable
class Reportable(Protocol):
    """A screen that can say, in Markdown, what it shows."""

    def report_title(self) -> str: ...
    def report_lines(self) -> list[str]: ...


@dataclass(frozen=True)
class Report:
    svg: Path
    markdown: Path


def report_folder() -> Path:
    """Where reports go: $AUDIENCES_REPORT_DIR, else ./audiences-reports."""
    return Path(os.environ.get(REPORT_DIR_VARIABLE) or DEFAULT_REPORT_DIR)


def slug(text: str) -> str:
    """A file-name-safe form of a title: ``Segment: Lapsed VIPs`` -> ``segment-lapsed-vips``."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:60].rstrip("-") or "view"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; cells other than the first are right-aligned (they are numbers)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return lines


def write_report(app: Any, folder: Path | None = None, now: dt.datetime | None = None) -> Report:
    """Write the current screen of ``app`` as ``STAMP-TITLE.svg`` and ``STAMP-TITLE.md``.

    Raises OSError when the folder cannot be made or written (the caller says so)."""
    folder = folder if folder is not None else report_folder()
    screen = app.screen
    reportable = isinstance(screen, Reportable)
    title = screen.report_title() if reportable else str(screen.TITLE or app.title)
    lines = screen.report_lines() if reportable else []
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    svg = folder / f"{stamp}-{slug(title)}.svg"
    markdown = svg.with_suffix(".md")
    svg.write_text(app.export_screenshot(title=title), encoding="utf-8")
    text = [f"# {title}", "", f"{str(app.sub_title).strip(' ·')} · written {now:%Y-%m-%d %H:%M} UTC",
            "", *lines]
    if lines:
        text.append("")
    text.append(f"![{title}]({svg.name})")
    markdown.write_text("\n".join(text) + "\n", encoding="utf-8")
    return Report(svg, markdown)
