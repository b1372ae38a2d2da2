"""What the user says about a file's columns, over what inference would guess.

``--boolean COL`` stores a 0/1 or yes/no column as a boolean, so a rule reads
"Senior citizen is true", not "Senior citizen is 1". ``--schema FILE`` (YAML)
gives any column a type, a label, a group, a description and an XDM name (for PQL)::

    SeniorCitizen: {type: boolean, label: Senior citizen, group: Demographics,
                    xdm: person.seniorCitizen}
    MonthlyCharges: {type: number, label: Monthly charges, group: Billing}
    Contract: {label: Contract type}

A declared type is checked like a type the store already has: a value that does
not fit is a bad row, and nothing is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import yaml

from store.errors import InputError
from store.schema.values import ATTR_TYPES, AttrType

# How a boolean column may spell its values (trimmed, any case); empty is missing.
BOOLEAN_WORDS: Final = {"true": 1, "false": 0, "yes": 1, "no": 0, "y": 1, "n": 0, "1": 1, "0": 0,
                        "t": 1, "f": 0}
SPEC_KEYS: Final = ("type", "label", "group", "description", "xdm")


@dataclass(frozen=True)
class ColumnSpec:
    """One column as the user declared it (empty: leave it to inference and the store)."""

    type: AttrType | None = None
    label: str = ""
    group: str = ""
    description: str = ""
    xdm: str = ""  # the attribute's XDM name, for PQL (as --xdm COL=NAME)


def load_column_specs(path: str | Path) -> dict[str, ColumnSpec]:
    """The columns a ``--schema`` YAML file declares; ``InputError`` naming the file and the
    column for anything it cannot use."""
    path = Path(path)
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}).") from None
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise InputError(f"{path}: expected one entry per column (COLUMN: {{type: ..., label:"
                         " ...}}), not a list or a value.")
    specs: dict[str, ColumnSpec] = {}
    for column, entry in found.items():
        where = f"{path}: column {column!r}"
        if entry is None:
            entry = {}
        if isinstance(entry, str):  # "Contract: Contract type" is a label
            entry = {"label": entry}
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: expected type, label, group or description.")
        unknown = sorted(str(k) for k in entry if k not in SPEC_KEYS)
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(SPEC_KEYS)}).")
        kind = entry.get("type")
        if kind is not None and kind not in ATTR_TYPES:
            raise InputError(f"{where}: type {kind!r} is not one of {', '.join(ATTR_TYPES)}.")
        texts = {key: entry.get(key) for key in ("label", "group", "description", "xdm")}
        for key, value in texts.items():
            if value is not None and not isinstance(value, str | int | float):
                raise InputError(f"{where}: {key} must be text.")
        specs[str(column)] = ColumnSpec(kind, *(str(texts[k] or "").strip()
                                                for k in ("label", "group", "description", "xdm")))
    return specs


def with_booleans(specs: Mapping[str, ColumnSpec], booleans: Iterable[str]) -> dict[str, ColumnSpec]:
    """``specs`` with the ``--boolean`` columns typed boolean (a conflicting type is an error)."""
    merged = dict(specs)
    for column in booleans:
        spec = merged.get(column, ColumnSpec())
        if spec.type not in (None, "boolean"):
            raise InputError(f"Column {column!r} is given --boolean and the type {spec.type!r}"
                             " in the schema file; keep one.")
        merged[column] = replace(spec, type="boolean")
    return merged


def boolean_value(value: Any) -> int | str | None:
    """1, 0, None (missing), or the text of a value that is no boolean (for the report)."""
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower()
    if not text:
        return None
    found = BOOLEAN_WORDS.get(text)
    return str(value) if found is None else found


def boolean_converter(values: Sequence[Any]) -> list[int | None]:
    """A checked boolean column as stored values (1, 0, None)."""
    return [found if isinstance(found, int) else None
            for found in map(boolean_value, values)]
