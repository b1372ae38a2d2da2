"""Reading a source file ("bring your own tables", spec/engines.md): what it maps, where it said it.

A source file names an engine and maps that database's own tables onto
profiles, events and entities::

    engine: postgresql://analytics@db.internal/shop   # a .duckdb path, duckdb (Parquet only), ...
    profiles: {table: crm.customers, id: customer_id, labels: {dob: Date of birth}, age_from: dob}
    events:
      - {table: web.orders, profile: customer_id, type: purchase, time: ordered_at}
      - {table: web.events, profile: customer_id, type_column: event_name, time: occurred_at}
    entities:
      - {name: product, table: catalog.products, key: sku, link: sku}
    segments: shop-segments.db

Every mistake in the file is an ``InputError`` (exit 2) naming the file, the
line and the key. Whether the tables and columns exist is checked against the
database when the store is opened (store/engines/source.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from store.errors import InputError
from store.files import printable, special_kind

SOURCE_SUFFIXES = (".yaml", ".yml")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Where:
    """A place in the source file, for messages: ``shop.yaml:4: events[0].time``."""

    path: Path
    line: int
    key: str

    def error(self, message: str) -> InputError:
        return InputError(f"{self.path}:{self.line}: {self.key}: {message}")


@dataclass(frozen=True)
class TableMap:
    """One mapped table: its name (or a Parquet path), the columns it plays roles with, and which of
    its other columns to offer (all usable ones when ``columns`` is None), with labels."""

    table: str
    where: Where
    roles: dict[str, str]  # role (id, age_from, profile, time, type_column, key) -> column
    role_places: dict[str, Where]
    columns: tuple[str, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    event_type: str | None = None  # a fixed event type
    event_types: tuple[str, ...] = ()  # types a type column may hold besides those found in it
    name: str | None = None  # an entity's name
    link: str | None = None  # the event field an entity is linked from
    label: str = ""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    engine: str
    engine_place: Where
    profiles: TableMap
    events: tuple[TableMap, ...]
    entities: tuple[TableMap, ...]
    segments: Path

    @property
    def folder(self) -> Path:
        return self.path.parent


def is_source_file(spec: str) -> bool:
    return spec.lower().endswith(SOURCE_SUFFIXES)


# ------------------------------------------------------------------ YAML with line numbers


def _lines(node: yaml.Node, key: str, lines: dict[str, int]) -> None:
    """Record the line of every key path of a composed YAML document (``events[1].time``)."""
    lines.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{key}.{key_node.value}" if key else str(key_node.value)
            lines[path] = key_node.start_mark.line + 1
            _lines(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, f"{key}[{i}]", lines)


def load_source_file(path: str | Path) -> SourceFile:
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:  # a pipe is read once, a device may never end
        raise InputError(f"The source file {printable(path)} is {kind}, not a file.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"No source file at {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the source file {path} ({exc}).") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}{line}: not valid YAML ({problem}).") from None
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    return _SourceReader(path, lines).read(data)


class _SourceReader:
    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines

    def at(self, key: str) -> Where:
        line = self.lines.get(key)
        probe = key
        while line is None and probe:
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
            line = self.lines.get(probe)
        return Where(self.path, line or 1, key or "(top)")

    def read(self, data: Any) -> SourceFile:
        if not isinstance(data, dict):
            raise self.at("").error("a source file is a mapping with engine, profiles, events,"
                                    " entities and segments.")
        self.known(data, "", {"engine", "profiles", "events", "entities", "segments"})
        engine = self.text(data, "engine", required=True)
        assert engine is not None
        if "profiles" not in data:
            raise self.at("").error("profiles is missing: name the table of profiles and its id column,"
                                    " e.g. profiles: {table: crm.customers, id: customer_id}.")
        profiles = self.table(data["profiles"], "profiles", roles=("id",), optional_roles=("age_from",),
                              extra={"columns", "labels"})
        events = [self.event(item, f"events[{i}]") for i, item in enumerate(self.items(data, "events"))]
        fixed: dict[str, str] = {}
        for item in events:
            if item.event_type is not None:
                key = item.where.key.rsplit(".", 1)[0]
                if item.event_type in fixed:
                    raise self.at(f"{key}.type").error(
                        f"event type {item.event_type!r} is mapped twice ({fixed[item.event_type]} and"
                        f" {key}); one table per fixed type.")
                fixed[item.event_type] = key
        entities = [self.entity(item, f"entities[{i}]")
                    for i, item in enumerate(self.items(data, "entities"))]
        names = [e.name for e in entities]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.at(f"entities[{i}].name").error(f"entity {name!r} is mapped twice.")
        segments_text = self.text(data, "segments", required=False)
        segments = (self.path.parent / segments_text if segments_text
                    else self.path.with_name(self.path.stem + "-segments.db"))
        if segments.suffix.lower() in (*SOURCE_SUFFIXES, ".duckdb"):
            raise self.at("segments").error("segments is a local SQLite file (e.g. shop-segments.db).")
        return SourceFile(self.path, engine, self.at("engine"), profiles, tuple(events), tuple(entities),
                          segments)

    # -- pieces ------------------------------------------------------------------------
    def known(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.at(where).error(f"unknown key; expected one of {', '.join(sorted(allowed))}.")

    def text(self, data: dict[str, Any], name: str, *, required: bool, key: str = "") -> str | None:
        where = f"{key}.{name}" if key else name
        value = data.get(name)
        if value is None:
            if required:
                raise self.at(key).error(f"{name} is missing.")
            return None
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.at(where).error("expected a name (text).")
        return str(value).strip()

    def items(self, data: dict[str, Any], name: str) -> list[Any]:
        value = data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.at(name).error("expected a list of tables.")
        return value

    def table(self, data: Any, key: str, *, roles: tuple[str, ...], extra: set[str],
              optional_roles: tuple[str, ...] = ()) -> TableMap:
        if not isinstance(data, dict):
            raise self.at(key).error("expected a mapping with table and its columns.")
        self.known(data, key, {"table", *roles, *optional_roles, *extra})
        table = self.text(data, "table", required=True, key=key)
        assert table is not None
        found: dict[str, str] = {}
        places: dict[str, Where] = {}
        for role in (*roles, *optional_roles):
            value = self.text(data, role, required=role in roles, key=key)
            if value is not None:
                found[role] = value
                places[role] = self.at(f"{key}.{role}")
        columns = data.get("columns")
        if columns is not None and (not isinstance(columns, list)
                                    or not all(isinstance(c, str) and c for c in columns)):
            raise self.at(f"{key}.columns").error("expected a list of column names.")
        labels = data.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise self.at(f"{key}.labels").error("expected a mapping of column name to label.")
        return TableMap(table, self.at(f"{key}.table"), found, places,
                        None if columns is None else tuple(columns),
                        {str(k): v for k, v in labels.items()})

    def event(self, data: Any, key: str) -> TableMap:
        base = self.table(data, key, roles=("profile", "time"), optional_roles=("type_column",),
                          extra={"type", "types", "columns", "labels"})
        fixed = self.text(data, "type", required=False, key=key)
        if (fixed is None) == ("type_column" not in base.roles):
            raise self.at(key).error("give either type (every row is one event type) or type_column"
                                     " (a column holds each row's type), not both or neither.")
        if fixed is not None and not NAME.match(fixed):
            raise self.at(f"{key}.type").error(f"{fixed!r} is not an event type name (letters, digits, _).")
        declared = data.get("types") or []
        if "types" in data and ("type_column" not in base.roles or not isinstance(declared, list)
                                or not all(isinstance(t, str) and NAME.match(t) for t in declared)):
            raise self.at(f"{key}.types").error("types lists event type names a type_column may hold"
                                                " (letters, digits, _).")
        return TableMap(base.table, base.where, base.roles, base.role_places, base.columns, base.labels,
                        event_type=fixed, event_types=tuple(declared))

    def entity(self, data: Any, key: str) -> TableMap:
        base = self.table(data, key, roles=("key", "link"), extra={"name", "label", "columns", "labels"})
        name = self.text(data, "name", required=True, key=key)
        assert name is not None
        if not NAME.match(name):
            raise self.at(f"{key}.name").error(f"{name!r} is not an entity name (letters, digits, _).")
        label = self.text(data, "label", required=False, key=key) or ""
        roles = {"key": base.roles["key"]}
        return TableMap(base.table, base.where, roles, base.role_places, base.columns, base.labels,
                        name=name, link=base.roles["link"], label=label)
