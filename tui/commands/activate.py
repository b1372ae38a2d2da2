"""``activate``, ``audiences ...`` and ``deliveries ...``: the campaign store from the command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from store.engines.base import Connection, Engine
from store.errors import InputError, StoreError
from store.files import check_store_path, printable
from tui.commands.common import (
    ExistingFile,
    SegmentSource,
    engine_option,
    given_engine,
    parse_when,
    resolve_segment_arg,
    segment_id_option,
    store_engine,
)

SQLITE_HEADER = b"SQLite format 3\x00"


def campaign_option() -> Any:
    return click.option(
        "--campaign-db", "campaign_db", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="The campaign store, a local SQLite file (default: campaign.db beside a profile store"
             " file; for a store on a server, in the user's data folder).")


def campaign_path(db: Engine | None, campaign_db: Path | None) -> Path:
    """``--campaign-db``, else the profile store's default (``campaign.db`` beside a store
    file, in the user's data folder for a server), or the default store's."""
    if campaign_db is not None:
        return campaign_db
    store = given_engine(db)
    if store is None:
        from tui.store_path import default_store

        store = default_store()
    return store.default_campaign_path()


def open_campaign_file(path: Path, *, readonly: bool = False) -> Connection:
    """``store.campaign.open_campaign``, after checking that an existing file is an SQLite
    database at all, so that a wrong ``--campaign-db`` is called a campaign store, not a
    profile store, in the message."""
    from store.campaign.store import open_campaign

    check_store_path(path, "campaign store")  # a pipe would block the read below
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError:  # missing, a folder or unreadable: open_campaign says which
        head = b""
    if head and head != SQLITE_HEADER:
        raise StoreError(f"{printable(path)} is not an Audiences campaign store"
                         " (not an SQLite database).")
    return open_campaign(path, readonly=readonly)


@contextmanager
def campaign_reader(db: Engine | None, campaign_db: Path | None) -> Iterator[Connection | None]:
    """A read-only connection to the campaign store, or None when there is none yet."""
    path = campaign_path(db, campaign_db)
    if not path.exists():
        yield None
        return
    conn = open_campaign_file(path, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


class _StderrProgress:
    """One self-overwriting line on stderr while a big activation runs (only on a terminal)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, step: str, fraction: float) -> None:
        if not self.enabled:
            return
        click.echo(f"\r{step}: {fraction:.0%}\x1b[K", err=True, nl=False)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)


# ------------------------------------------------------------------ activate


@click.command("activate")
@click.argument("segment", required=False, type=SegmentSource())
@engine_option()
@campaign_option()
@segment_id_option("Activate the segment saved in the store under this id")
@click.option("--as-of", "as_of", metavar="WHEN", help="Evaluate at this instant (default: now, UTC).")
@click.option("--field", "fields", multiple=True, metavar="NAME",
              help="A profile attribute to capture with each member (repeatable, up to 20;"
                   " default: the audience's current fields, else email and first_name).")
@click.option("--name", default=None, help="Name of the audience (default: the segment's name).")
@click.option("--split", "split", default=None, metavar="NAME:PCT[,NAME:PCT...]",
              help="Divide the members into named groups by share, e.g. A:45,B:45,holdout:10 (a group"
                   " named holdout is never delivered to); none removes a split. Default: the"
                   " audience's current split.")
@click.option("--split-seed", "split_seed", default=None, metavar="S",
              help="Seed of a split by share (default 1): the same seed gives the same groups.")
@click.option("--split-by", "split_by", default=None, metavar="ATTRIBUTE",
              help="Divide the members by an attribute's values instead (at most 20 groups).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def activate_command(segment: str | None, db: Engine | None, campaign_db: Path | None,
                     segment_id: str | None, as_of: str | None, fields: tuple[str, ...],
                     name: str | None, split: str | None, split_seed: str | None,
                     split_by: str | None, as_json: bool) -> None:
    """Materialise SEGMENT's audience (a YAML file or a saved id) into the campaign store."""
    from store.campaign.activation import activate, personalisation_fields, split_attribute
    from store.schema.catalog import Catalog

    spec = split_option(split, split_seed, split_by)
    when = parse_when(as_of)
    store = store_engine(db)
    conn = store.open_store(readonly=True)
    try:
        resolved = resolve_segment_arg(conn, segment, segment_id, when)
        catalog = Catalog.load(conn)
        personalisation_fields(catalog, fields)  # bad --field: exit 2 before touching the campaign file
        if spec is not None and spec.attribute is not None:
            split_attribute(catalog, spec.attribute)
        campaign = open_campaign_file(campaign_path(store, campaign_db))
        progress = _StderrProgress()
        try:
            result = activate(conn, campaign, resolved, when, fields, catalog=catalog, name=name,
                              progress=progress, split=spec)
        finally:
            progress.close()
            campaign.close()
    finally:
        conn.close()
    echo_result(result, campaign_path(store, campaign_db), as_json, "Activated")


def split_option(split: str | None, seed: str | None, split_by: str | None) -> Any:
    """``--split``/``--split-seed``/``--split-by`` as a ``SplitSpec`` (None: keep the audience's)."""
    from store.campaign.splits import SplitSpec, parse_split

    if split is not None and split_by is not None:
        raise InputError("Give --split or --split-by, not both.")
    if split_by is not None:
        if seed is not None:
            raise InputError("--split-seed goes with --split (a split by share), not --split-by.")
        return SplitSpec(attribute=split_by.strip())
    if split is None:
        if seed is not None:
            raise InputError("--split-seed needs --split NAME:PCT[,NAME:PCT...].")
        return None
    return parse_split(split, seed)


def echo_result(result: Any, campaign: Path, as_json: bool, verb: str) -> None:
    """One activation's outcome: the ``--json`` object, or one line in words."""
    if as_json:
        payload = result.to_json()
        payload["campaign_db"] = printable(campaign)
        if verb != "Activated":
            payload["trigger"] = result.trigger
        click.echo(json.dumps(payload))
        return
    changed = f" ({result.changed:,} with new field values)" if result.changed else ""
    groups = ""
    if result.splits is not None:
        groups = "; groups " + ", ".join(f"{name} {n:,}" for name, n in result.splits.items())
    click.echo(
        f"{verb} {result.name!r} as audience {result.audience_id} ({result.segment_id}):"
        f" {result.count:,} members, {result.added:,} added, {result.removed:,} removed,"
        f" {result.kept:,} kept{changed}{groups} in {result.duration_ms:,.0f} ms"
    )
    if result.definition_changed:
        click.echo(f"The definition of segment '{result.segment_id}' changed since the last activation.")


# ------------------------------------------------------------------ refresh


@click.command("refresh")
@click.argument("audience", required=False)
@engine_option()
@campaign_option()
@click.option("--all", "every", is_flag=True, help="Refresh every active audience.")
@click.option("--due", is_flag=True, help="Refresh the audiences whose schedule says so (for cron).")
@click.option("--as-of", "as_of", metavar="WHEN", help="Evaluate at this instant (default: now, UTC).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (with --all or --due: a JSON array of them).")
def refresh_command(audience: str | None, db: Engine | None, campaign_db: Path | None, every: bool,
                    due: bool, as_of: str | None, as_json: bool) -> None:
    """Re-evaluate AUDIENCE (a number or segment id), --all or the --due ones with their
    segment's current saved definition; prints the same differences as ``activate``."""
    from store.campaign.activation import refresh
    from store.campaign.schedule import is_due
    from store.campaign.store import find_audience, list_audiences
    from store.errors import AudiencesError
    from store.schema.catalog import Catalog

    if sum((audience is not None, every, due)) != 1:
        raise InputError("Give one AUDIENCE, --all or --due.")
    when = parse_when(as_of)
    store = store_engine(db)
    path = campaign_path(store, campaign_db)
    if not path.exists():
        if audience is not None:
            raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
        click.echo("[]" if as_json else "No audience activated yet.")
        return
    conn = store.open_store(readonly=True)
    try:
        catalog = Catalog.load(conn)
        campaign = open_campaign_file(path)
        try:
            if audience is not None:
                targets = [find_audience(campaign, audience)]
            else:
                now = parse_when(None)
                targets = [a for a in list_audiences(campaign) if a.status == "active"
                           and (every or is_due(a.schedule, a.status, a.activated_at, now))]
                targets.sort(key=lambda a: a.id)
            trigger = "schedule" if due else "refresh"
            results, failures = [], 0
            for target in targets:
                progress = _StderrProgress()
                try:
                    result = refresh(conn, campaign, target.id, when, catalog=catalog,
                                     trigger=trigger, progress=progress)
                except AudiencesError as exc:
                    if audience is not None:
                        raise
                    failures = max(failures, exc.exit_code)
                    click.echo(f"Error: audience {target.id} ({target.segment_id}): {exc}", err=True)
                    continue
                finally:
                    progress.close()
                results.append(result)
                if not as_json or audience is not None:
                    echo_result(result, path, as_json, "Refreshed")
        finally:
            campaign.close()
    finally:
        conn.close()
    if audience is None:
        if as_json:
            click.echo(json.dumps([{**r.to_json(), "trigger": r.trigger, "campaign_db": str(path)}
                                   for r in results]))
        elif not targets:
            click.echo("No audience is due." if due else "No active audience to refresh.")
        if failures:
            raise click.exceptions.Exit(failures)


# ------------------------------------------------------------------ audiences


@click.group("audiences")
def audiences_group() -> None:
    """Activated audiences in the campaign store."""


def _audience_json(audience: Any, splits: dict[str, int] | None = None) -> dict[str, Any]:
    from store.campaign.schedule import next_run
    from store.campaign.splits import SplitSpec

    upcoming = next_run(audience.schedule, audience.activated_at)
    payload = {
        "id": audience.id, "name": audience.name, "segment_id": audience.segment_id,
        "status": audience.status, "members": audience.member_count, "fields": list(audience.fields),
        "activated_at": audience.activated_at, "as_of": audience.as_of,
        "created_at": audience.created_at, "fingerprint": audience.fingerprint,
        "schedule": audience.schedule, "last_run": audience.activated_at,
        "next_run": None if upcoming is None else upcoming.strftime("%Y-%m-%d %H:%M:%S"),
        "split": SplitSpec.from_json(audience.splits).describe(),
    }
    if splits is not None:
        payload["splits"] = splits
    return payload


@audiences_group.command("list")
@engine_option()
@campaign_option()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def audiences_list(db: Engine | None, campaign_db: Path | None, as_json: bool) -> None:
    """List the activated audiences with their sizes."""
    from store.campaign.store import list_audiences, split_counts

    with campaign_reader(db, campaign_db) as conn:
        audiences = list_audiences(conn) if conn is not None else []
        groups = {a.id: split_counts(conn, a.id) for a in audiences if a.splits} if conn else {}
    if as_json:
        click.echo(json.dumps([_audience_json(a, groups.get(a.id)) for a in audiences]))
        return
    if not audiences:
        click.echo("No audience activated yet.")
        return
    click.echo(f"{'id':>4}  {'segment':<28} {'status':<8} {'members':>10}  {'schedule':<8}  last activation")
    for a in audiences:
        click.echo(f"{a.id:>4}  {a.segment_id:<28} {a.status:<8} {a.member_count:>10,}  {a.schedule:<8}"
                   f"  {a.activated_at}")


@audiences_group.command("show")
@click.argument("audience")
@engine_option()
@campaign_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def audiences_show(audience: str, db: Engine | None, campaign_db: Path | None, as_json: bool) -> None:
    """Show one audience (by number or segment id) and its activation history."""
    from store.campaign.schedule import next_run
    from store.campaign.splits import SplitSpec
    from store.campaign.store import find_audience, history, split_counts

    with campaign_reader(db, campaign_db) as conn:
        if conn is None:
            raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
        found = find_audience(conn, audience)
        records = history(conn, found.id)
        groups = split_counts(conn, found.id)
    if as_json:
        payload = _audience_json(found, groups if found.splits else None)
        payload["definition"] = found.definition
        payload["history"] = [
            {"activated_at": r.activated_at, "as_of": r.as_of, "count": r.count, "added": r.added,
             "removed": r.removed, "kept": r.kept, "changed": r.changed, "duration_ms": r.duration_ms,
             "trigger": r.trigger, **({"splits": r.splits} if r.splits is not None else {})}
            for r in records]
        click.echo(json.dumps(payload))
        return
    click.echo(f"Audience {found.id}: {found.name} (segment {found.segment_id}, {found.status})")
    click.echo(f"Members: {found.member_count:,}   fields: {', '.join(found.fields) or '-'}")
    if found.splits:
        click.echo(f"Split {SplitSpec.from_json(found.splits).describe()}: "
                   + ", ".join(f"{name} {n:,}" for name, n in groups.items()))
    click.echo(f"Last activation: {found.activated_at} (as of {found.as_of})")
    upcoming = next_run(found.schedule, found.activated_at)
    click.echo(f"Schedule: {found.schedule}" + (f", next run {upcoming:%Y-%m-%d %H:%M:%S}"
                                                if upcoming is not None else ""))
    click.echo("")
    click.echo(f"{'activated at':<20} {'as of':<27} {'count':>10} {'added':>9} {'removed':>9}  by")
    for r in records:
        added, removed = f"+{r.added:,}", f"-{r.removed:,}"
        click.echo(f"{r.activated_at:<20} {r.as_of:<27} {r.count:>10,} {added:>9} {removed:>9}"
                   f"  {r.trigger}")


@audiences_group.command("schedule")
@click.argument("audience")
@click.argument("schedule", metavar="hourly|daily|weekly|off")
@engine_option()
@campaign_option()
def audiences_schedule(audience: str, schedule: str, db: Engine | None,
                       campaign_db: Path | None) -> None:
    """Set when ``refresh --due`` refreshes AUDIENCE: hourly, daily, weekly or off."""
    from store.campaign.schedule import check_schedule, next_run
    from store.campaign.store import find_audience, set_schedule

    word = check_schedule(schedule)  # a wrong word: exit 2 before anything is opened
    path = campaign_path(db, campaign_db)
    if not path.exists():
        raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
    conn = open_campaign_file(path)
    try:
        found = find_audience(conn, audience)
        set_schedule(conn, found.id, word)
    finally:
        conn.close()
    upcoming = next_run(word, found.activated_at)
    when = "" if upcoming is None else f"; next run {upcoming:%Y-%m-%d %H:%M:%S} UTC"
    click.echo(f"Audience {found.id} ({found.segment_id}) is refreshed {word}{when}."
               if word != "off" else f"Audience {found.id} ({found.segment_id}) has no schedule.")


@audiences_group.command("export")
@click.argument("audience")
@engine_option()
@campaign_option()
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              default=None, help="Write the members here (default or `-`: standard output; a regular"
                                 " file is replaced once complete, a pipe or a device written into).")
@click.option("--format", "fmt", type=click.Choice(["csv", "ndjson"], case_sensitive=False),
              default="csv", show_default=True, help="CSV, or one JSON object per line.")
@click.option("--field", "fields", multiple=True, metavar="F",
              help="Export only these of the audience's fields (repeatable; default: all of them).")
@click.option("--hash", "hash_name", default=None, metavar="sha256",
              help="Write identifier fields (email, phone) as the SHA-256 of the trimmed,"
                   " lowercased value, as ad platforms take them.")
@click.option("--split", "groups", multiple=True, metavar="GROUP",
              help="Export only this group of a split audience (repeatable; default: every group"
                   " but the holdout).")
def audiences_export(audience: str, db: Engine | None, campaign_db: Path | None,
                     output: Path | None, fmt: str, fields: tuple[str, ...], hash_name: str | None,
                     groups: tuple[str, ...]) -> None:
    """Export an audience's members with their fields as CSV or NDJSON."""
    from store.campaign.store import export_csv_file, export_members, export_plan, find_audience

    with campaign_reader(db, campaign_db) as conn:
        if conn is None:
            raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
        found = find_audience(conn, audience)
        plan = export_plan(conn, found, fmt=fmt.lower(), fields=fields, hash_name=hash_name,
                           groups=groups)
        if output is None or str(output) == "-":
            try:
                export_members(conn, found, sys.stdout, plan)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader (e.g. `head`) has had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        written = export_csv_file(conn, found, output, plan)
    click.echo(f"Wrote {written:,} members to {printable(output)}", err=True)


@audiences_group.command("deactivate")
@click.argument("audience")
@engine_option()
@campaign_option()
def audiences_deactivate(audience: str, db: Engine | None, campaign_db: Path | None) -> None:
    """Mark an audience inactive (its members are kept; activating again re-activates it)."""
    from store.campaign.store import find_audience, set_status

    path = campaign_path(db, campaign_db)
    if not path.exists():
        raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
    conn = open_campaign_file(path)
    try:
        found = find_audience(conn, audience)
        set_status(conn, found.id, "inactive")
    finally:
        conn.close()
    click.echo(f"Audience {found.id} ({found.segment_id}) is now inactive.")


# ------------------------------------------------------------------ deliveries


@click.group("deliveries")
def deliveries_group() -> None:
    """Message drafts for audiences, with previews rendered for members."""


@deliveries_group.command("create")
@click.argument("audience")
@engine_option()
@campaign_option()
@click.option("--name", required=True, help="Name of the delivery.")
@click.option("--channel", type=click.Choice(["email", "sms", "push"]), default="email", show_default=True)
@click.option("--subject", default="", help='Subject template, e.g. "Hello {{ first_name }}".')
@click.option("--body", default=None, help="Body template.")
@click.option("--body-file", type=ExistingFile(), default=None,
              help="Read the body template from a file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def deliveries_create(audience: str, db: Engine | None, campaign_db: Path | None, name: str,
                      channel: str, subject: str, body: str | None, body_file: Path | None,
                      as_json: bool) -> None:
    """Create a draft delivery for AUDIENCE (templates use {{ field }} placeholders)."""
    from store.campaign.delivery import create_delivery

    if (body is None) == (body_file is None):
        raise InputError("Give the body with --body TEXT or --body-file FILE (one of them).")
    text = body if body is not None else _read_text(body_file)
    path = campaign_path(db, campaign_db)
    if not path.exists():
        raise InputError(f"No audience {audience!r}: nothing has been activated yet.")
    conn = open_campaign_file(path)
    try:
        delivery = create_delivery(conn, audience, name, text, subject, channel)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({"id": delivery.id, "name": delivery.name, "channel": delivery.channel,
                               "audience_id": delivery.audience_id, "status": delivery.status}))
    else:
        click.echo(f"Created delivery {delivery.id} ({delivery.channel})"
                   f" for audience {delivery.audience_id}.")


def _read_text(path: Path | None) -> str:
    assert path is not None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}") from exc


@deliveries_group.command("list")
@engine_option()
@campaign_option()
@click.option("--audience", default=None, help="Only this audience's deliveries.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def deliveries_list(db: Engine | None, campaign_db: Path | None, audience: str | None,
                    as_json: bool) -> None:
    """List deliveries, newest first."""
    from store.campaign.delivery import list_deliveries
    from store.campaign.store import find_audience

    with campaign_reader(db, campaign_db) as conn:
        if conn is None:
            items = []
        else:
            audience_id = find_audience(conn, audience).id if audience else None
            items = list_deliveries(conn, audience_id)
    if as_json:
        click.echo(json.dumps([{"id": d.id, "name": d.name, "channel": d.channel,
                                "audience_id": d.audience_id, "status": d.status,
                                "created_at": d.created_at} for d in items]))
        return
    if not items:
        click.echo("No deliveries.")
        return
    for d in items:
        click.echo(f"{d.id:>4}  {d.name:<30} {d.channel:<6} audience {d.audience_id:<5} {d.status}")


@deliveries_group.command("preview")
@click.argument("delivery")
@engine_option()
@campaign_option()
@click.option("--limit", default=3, show_default=True, type=click.IntRange(1, 100),
              help="How many members to render.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def deliveries_preview(delivery: str, db: Engine | None, campaign_db: Path | None, limit: int,
                       as_json: bool) -> None:
    """Render DELIVERY for sample members and count members lacking a field it uses."""
    from store.campaign.delivery import get_delivery, preview, preview_json

    with campaign_reader(db, campaign_db) as conn:
        if conn is None:
            raise InputError(f"No delivery {delivery!r}: nothing has been activated yet.")
        result = preview(conn, get_delivery(conn, delivery), limit)
    if as_json:
        click.echo(json.dumps(preview_json(result)))
        return
    click.echo(f"Delivery {result.delivery.id}: {result.delivery.name} ({result.delivery.channel}),"
               f" audience {result.audience.id} with {result.members:,} members")
    for name, missing in result.missing.items():
        note = "" if name in result.needed else " (has a default)"
        click.echo(f"  {missing:,} members lack {name}{note}")
    for message in result.messages:
        click.echo(f"\n--- {message.profile_id}")
        if message.subject:
            click.echo(f"Subject: {message.subject}")
        click.echo(message.body)


commands = [activate_command, refresh_command, audiences_group, deliveries_group]
