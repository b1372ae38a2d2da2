"""How PQL names map to a store's names (spec/pql.md, "Names"), in both directions.

A PQL name is looked up first as an XDM name the catalog declares (``xdm:``),
then as the store's own name. The writer uses the same lookup to check that
every name it writes reads back as the thing it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from store.schema.catalog import Catalog, nearest

PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# Names with a meaning of their own in PQL: never an attribute's or a field's written name.
RESERVED = frozenset({
    "or", "and", "not", "in", "notIn", "like", "occurs", "before", "after", "on", "between",
    "today", "yesterday", "now", "true", "false", "xEvent", "eventType", "timestamp",
})


@dataclass(frozen=True)
class Names:
    """The catalog's names as PQL sees them: XDM names first, then the store's own."""

    catalog: Catalog
    attributes: dict[str, str] = field(default_factory=dict)  # PQL name -> attribute
    event_types: dict[str, str] = field(default_factory=dict)
    event_fields: dict[str, str] = field(default_factory=dict)  # event and ENTITY.FIELD names

    @classmethod
    def of(cls, catalog: Catalog) -> Names:
        names = cls(catalog)
        names.attributes.update({a.name: a.name for a in catalog.attributes.values()})
        names.attributes.update({a.xdm: a.name for a in catalog.attributes.values() if a.xdm})
        names.event_types.update({t.name: t.name for t in catalog.event_types.values()})
        names.event_types.update({t.xdm: t.name for t in catalog.event_types.values() if t.xdm})
        names.event_fields.update({f.name: f.name for f in catalog.event_fields.values()})
        names.event_fields.update({
            f"{entity}.{name}": f"{entity}.{name}"
            for entity, ent in catalog.entities.items() for name in ent.fields})
        names.event_fields.update({f.xdm: f.name for f in catalog.event_fields.values() if f.xdm})
        return names

    # -- reading ------------------------------------------------------------------
    def attribute(self, pql: str) -> str | None:
        return self.attributes.get(pql)

    def event_type(self, pql: str) -> str | None:
        return self.event_types.get(pql)

    def event_field(self, pql: str) -> str | None:
        return self.event_fields.get(pql)

    @staticmethod
    def suggest(pql: str, known: dict[str, str]) -> str:
        """ " Did you mean ...?" with the nearest PQL names (XDM names preferred)."""
        close = nearest(pql, list(known), n=3)
        if not close:
            return ""
        return " Did you mean " + " or ".join(repr(c) for c in close) + "?"

    # -- writing ------------------------------------------------------------------
    def written_attribute(self, name: str) -> str | None:
        attribute = self.catalog.attributes.get(name)
        return self._written(name, attribute.xdm if attribute else "", self.attributes)

    def written_event_type(self, name: str) -> str | None:
        event_type = self.catalog.event_types.get(name)
        return self._written(name, event_type.xdm if event_type else "", self.event_types,
                             path=False)

    def written_event_field(self, name: str) -> str | None:
        event_field = self.catalog.event_fields.get(name)
        return self._written(name, event_field.xdm if event_field else "", self.event_fields)

    @staticmethod
    def _written(name: str, xdm: str, lookup: dict[str, str], path: bool = True) -> str | None:
        """The PQL name of ``name``: its XDM name, else its own; None when neither reads back
        as ``name`` (a name that is not a PQL path, or another entry's XDM name)."""
        for candidate in (xdm, name):
            if not candidate or lookup.get(candidate) != name:
                continue
            if path and (not PATH.match(candidate) or candidate in RESERVED
                         or candidate.split(".")[0] in RESERVED):
                continue
            return candidate
        return None
