"""Each profile's latest event time (``profile_activity``), rebuilt by every writer of events.

"No activity of any kind in six months" asks every profile whether one of its events falls in
a wide window: millions of events to look through. With one row per profile holding its latest
event time, most profiles are answered by that row alone (``store.query.compiler`` asks it,
and still asks the events for a profile whose latest event lies after the window, so the
answer is exact at any as-of instant). AEP keeps such per-profile rollups as computed
attributes; here the rollup is rebuilt from ``events`` in the transaction that wrote them
(imports, the sample generator, copies), so it is never behind.

A store written by something else (an older version, a hand-made table) has no current rollup:
``meta`` records which events it was built from (their greatest pk), and the catalog uses the
rollup only when that still matches (``activity_until``).
"""

from __future__ import annotations

from store.engines.base import Connection

ACTIVITY_TABLE = "profile_activity"
BUILT_FROM_KEY = "activity_events"  # meta: the greatest events pk the rollup was built from
UNTIL_KEY = "activity_until"  # meta: the latest event time of the store, epoch seconds


def refresh_activity(conn: Connection) -> None:
    """Rebuild the rollup from ``events`` (inside the caller's write transaction)."""
    engine = conn.engine
    conn.execute(f"DROP TABLE IF EXISTS {ACTIVITY_TABLE}")
    conn.execute(f"CREATE TABLE {ACTIVITY_TABLE} (profile_pk {engine.key_column(ACTIVITY_TABLE)},"
                 f" last_ts {engine.time_column_type} NOT NULL)")
    conn.execute(f"INSERT INTO {ACTIVITY_TABLE} (profile_pk, last_ts)"
                 " SELECT profile_pk, max(ts) FROM events GROUP BY profile_pk")
    engine.analyze_table(conn, ACTIVITY_TABLE)
    newest = conn.execute("SELECT max(pk) FROM events").fetchone()[0]  # the key: no scan
    until = conn.execute(f"SELECT max(last_ts) FROM {ACTIVITY_TABLE}").fetchone()[0]
    conn.execute(f"DELETE FROM meta WHERE key IN ('{BUILT_FROM_KEY}', '{UNTIL_KEY}')")
    if newest is not None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?), (?, ?)",
                     (BUILT_FROM_KEY, str(int(newest)), UNTIL_KEY, repr(float(until))))


def activity_until(conn: Connection) -> float | None:
    """The store's latest event time when the rollup is current (built from the events there
    are now); None when there is no current rollup (or no event). Tables the project did not
    create (a source file) have none, whatever their database holds."""
    if conn.engine.fixed_catalog or not conn.engine.has_table(conn, ACTIVITY_TABLE):
        return None
    stamps = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)",
                               (BUILT_FROM_KEY, UNTIL_KEY)).fetchall())
    if BUILT_FROM_KEY not in stamps or UNTIL_KEY not in stamps:
        return None
    newest = conn.execute("SELECT max(pk) FROM events").fetchone()[0]
    if newest is None or str(int(newest)) != stamps[BUILT_FROM_KEY]:
        return None
    return float(stamps[UNTIL_KEY])
