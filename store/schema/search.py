"""What the profile browser's quick search looks in, and the index each engine keeps for it.

The search finds the profiles whose text attributes hold every typed word
(``store.query.profiles.ProfileQuery``: SQLite's LIKE, folding ASCII case only,
on every engine). It looks in every text attribute of the store, not only names
and emails: an imported table's plan name or city is what a marketer types.

Reading every row for a rare word is slow on a large store, so each engine keeps
an index of these columns its own way (``Engine.build_search_index``): SQLite an
FTS5 trigram table kept up to date by triggers, which names the few candidate
profiles; PostgreSQL pg_trgm indexes on the very expression the search compares,
which its planner uses by itself; DuckDB and Spark scan, column by column. An index
only narrows: the search's own LIKE decides every row, so results are the same on
every engine, with or without an index.

``ensure_search_index`` runs after every bulk write (sample, import, copy), in a write
transaction of its own.
"""

from __future__ import annotations

from store.engines.base import Connection
from store.engines.layout import write_transaction
from store.schema.catalog import Attribute, Catalog


def searchable_attributes(catalog: Catalog) -> list[Attribute]:
    """Every text attribute stored as such (not derived ones), the id first."""
    found = [a for a in catalog.attributes.values() if a.type == "string" and not a.derived_from]
    return sorted(found, key=lambda a: a.name != "id")


def search_columns(catalog: Catalog) -> tuple[str, ...]:
    """The profile columns the quick search reads."""
    return tuple(a.column for a in searchable_attributes(catalog))


def ensure_search_index(conn: Connection) -> bool:
    """Build the engine's search index, in one write transaction, if it is missing or covers
    other columns than the catalog's text attributes (an import added one); True when it was
    (re)built. Checked again inside the transaction: two imports ending together build once."""
    if not conn.engine.keeps_search_index:  # nothing to build: no write transaction either
        return False
    wanted = search_columns(Catalog.load(conn))
    if set(conn.engine.search_index_columns(conn)) == set(wanted):
        return False
    with write_transaction(conn):
        if set(conn.engine.search_index_columns(conn)) == set(wanted):
            return False
        conn.engine.build_search_index(conn, wanted)
    return True


# An import of at least this share of the store's profiles drops the search index and builds
# it again afterwards: keeping it up to date row by row (SQLite's triggers, PostgreSQL's GIN
# insertions) costs more than one build. A smaller import keeps it as it goes.
REBUILD_SHARE = 0.2


def suspend_search_index(conn: Connection, rows: int) -> bool:
    """Before a write of ``rows`` profiles: drop the search index if rebuilding it afterwards
    (``ensure_search_index``) is the cheaper way; True when it was dropped."""
    if not conn.engine.search_index_columns(conn):
        return False
    total = int(conn.execute("SELECT count(*) FROM profiles").fetchone()[0])
    if rows < REBUILD_SHARE * total:
        return False
    with write_transaction(conn):
        conn.engine.drop_search_index(conn)
    return True
