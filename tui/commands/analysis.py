"""``overlap`` and ``trend``: how audiences intersect, and how an audience's size moved over time."""

from __future__ import annotations

import json

import click

from store.engines.base import Engine
from store.errors import InputError
from tui.commands.common import (
    SegmentSource,
    engine_option,
    parse_when,
    resolve_segment,
    resolve_segment_arg,
    segment_id_option,
    store_engine,
)


@click.command("overlap")
@click.argument("segments", nargs=-1, metavar="SEGMENT SEGMENT [SEGMENT...]", type=SegmentSource())
@engine_option()
@click.option("--segment", "segment_ids", multiple=True, metavar="ID",
              help="A segment saved in the store under this id, even if a file in the working"
                   " folder has that name (repeatable; after the SEGMENT arguments).")
@click.option("--as-of", "as_of", metavar="WHEN", help="Evaluate at this instant (default: now, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def overlap_command(segments: tuple[str, ...], db: Engine | None, segment_ids: tuple[str, ...],
                    as_of: str | None, as_json: bool) -> None:
    """Sizes and pairwise overlaps of two or more SEGMENTs (YAML files or saved ids) and
    --segment IDs, exact.

    Also the profiles in exactly each combination (for up to 8 segments).
    """
    from store.query.overlap import MIN_SEGMENTS, check_segments, overlap

    given = len(segments) + len(segment_ids)
    if given < MIN_SEGMENTS:
        raise InputError(f"overlap needs at least two segments (got {given}).")
    when = parse_when(as_of)
    conn = store_engine(db).open_store(readonly=True)
    try:
        resolved = [resolve_segment(conn, segment, when) for segment in segments]
        resolved += [resolve_segment_arg(conn, None, saved, when) for saved in segment_ids]
        check_segments(resolved)
        result = overlap(conn, resolved, when)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    width = max(len(name) for name in result.ids)
    click.echo(f"Overlap of {len(result.ids)} segments as of {when:%Y-%m-%d %H:%M:%S} UTC"
               f" ({result.total:,} profiles; {result.union:,} in at least one) in"
               f" {result.elapsed_ms:,.0f} ms")
    cells = [max(len(f"{n:,}") for n in column) for column in zip(*result.matrix, strict=True)]
    cells = [max(c, len(f"[{j + 1}]"), 6) for j, c in enumerate(cells)]
    click.echo("")
    click.echo("profiles in both (row and column):")
    click.echo(f"{'':>4} {'':<{width}}  " + "  ".join(f"{f'[{j + 1}]':>{cells[j]}}"
                                                       for j in range(len(result.ids))))
    for i, seg in enumerate(result.ids):
        click.echo(f"{f'[{i + 1}]':>4} {seg:<{width}}  " + "  ".join(
            f"{result.matrix[i][j]:>{cells[j]},}" for j in range(len(result.ids))))
    click.echo("")
    click.echo("share of the row's audience also in the column:")
    for i, seg in enumerate(result.ids):
        click.echo(f"{f'[{i + 1}]':>4} {seg:<{width}}  " + "  ".join(
            f"{result.share(i, j):>{cells[j]}.1%}" for j in range(len(result.ids))))
    if result.exclusive:
        click.echo("")
        click.echo("profiles in exactly these segments and no other:")
        for combo, size in result.exclusive:
            names = " & ".join(f"[{i + 1}]" for i in combo)
            click.echo(f"  {size:>12,}  {names}")


@click.command("trend")
@click.argument("segment", required=False, type=SegmentSource())
@engine_option()
@segment_id_option("Follow the segment saved in the store under this id")
@click.option("--every", default="1w", show_default=True, metavar="SPAN",
              help="Time between points: a number and d, w or m (days, weeks, months).")
@click.option("--last", "last", default="12w", show_default=True, metavar="SPAN",
              help="How far back from WHEN the points go.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The newest point (default: now, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trend_command(segment: str | None, db: Engine | None, segment_id: str | None, every: str,
                  last: str, as_of: str | None, as_json: bool) -> None:
    """SEGMENT's exact audience size at past as-of instants, oldest first (from the events,
    so a segment made today has a history too; attribute values are today's)."""
    from store.query.audience import total
    from store.query.trend import instants, parse_span, trend, trend_json

    when = parse_when(as_of)
    points = instants(when, parse_span(every, "--every"), parse_span(last, "--last"))
    conn = store_engine(db).open_store(readonly=True)
    try:
        resolved = resolve_segment_arg(conn, segment, segment_id, when)
        found = trend(conn, resolved, points)
        everyone = total(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(trend_json(found, resolved.segment.id, everyone)))
        return
    top = max((p.count for p in found), default=0)
    click.echo(f"{resolved.segment.name} ({resolved.segment.id}): size every {every} over the last"
               f" {last}, {everyone:,} profiles")
    for point in found:
        bar = "█" * (round(point.count / top * 40) if top else 0)
        click.echo(f"{point.as_of:%Y-%m-%d %H:%M}  {point.count:>12,}  {bar}")


commands = [overlap_command, trend_command]
