"""All SQL for exporting the reading list (Obsidian, BibTeX, lists) and importing it back.

Reads the ``reading`` and ``weekly_picks`` tables (owned by ``storage.reading``, which makes
every change to them, the Obsidian import's included) and owns ``note_exports`` and
``citation_keys`` (migration 005).
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from storage.db import connect, register_ids, transaction

# A paper's effective state: its reading row, else its weekly pick, else the inbox. The
# pick of the current week counts as "pick" while the reader has not finished with it.
_ENTRIES = """
WITH picks AS (
    SELECT arxiv_id, max(week) AS pick_week, arg_max(status, week) AS pick_status,
           max(picked_at) AS picked_at, bool_or(week = $week) AS current_pick
    FROM weekly_picks GROUP BY arxiv_id
), entries AS (
    SELECT p.arxiv_id, p.first_seen, r.rating, r.notes, r.read_on, r.queue_position,
           r.updated_at, coalesce(r.week, k.pick_week) AS week,
           CASE WHEN coalesce(k.current_pick, false)
                     AND coalesce(r.state, 'inbox') IN ('inbox', 'queued', 'pick') THEN 'pick'
                ELSE coalesce(r.state, k.pick_status, 'inbox') END AS state,
           coalesce(r.updated_at, k.picked_at, p.first_seen) AS touched_at
    FROM papers p LEFT JOIN reading r USING (arxiv_id) LEFT JOIN picks k USING (arxiv_id)
)
SELECT arxiv_id, state, rating, notes, week, read_on, queue_position, updated_at
FROM entries
WHERE ($all OR list_contains($states, state))
  AND ($since IS NULL OR touched_at >= $since)
  {only}
ORDER BY list_position(['pick', 'queued', 'read', 'inbox', 'skipped', 'dismissed'], state),
         queue_position NULLS LAST, read_on DESC NULLS LAST, arxiv_id
"""

_ENTRY_COLUMNS = ("arxiv_id", "state", "rating", "notes", "week", "read_on",
                  "queue_position", "updated_at")


def reading_entries(db_path: Path, states: tuple[str, ...], include_all: bool,
                    since: date | None, current_week: str,
                    arxiv_ids: list[str] | None = None) -> list[dict]:
    """Reading state of the papers to export, pick first, then the queue, then read ones.

    ``include_all`` ignores ``states`` and takes every stored paper; ``since`` keeps papers
    whose reading state changed (or that were picked or first seen) on or after that day;
    ``arxiv_ids`` limits the result to those papers.
    """
    parameters = {"week": current_week, "all": include_all, "states": list(states),
                  "since": datetime(since.year, since.month, since.day) if since else None}
    only = "AND arxiv_id IN (SELECT arxiv_id FROM wanted)" if arxiv_ids is not None else ""
    with connect(db_path, read_only=True) as con:
        if arxiv_ids is not None:
            register_ids(con, arxiv_ids)
        rows = con.execute(_ENTRIES.format(only=only), parameters).fetchall()
    return [dict(zip(_ENTRY_COLUMNS, row)) for row in rows]


def reading_rows(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """The stored reading row of each id that has one (state, rating, notes, week, ...)."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        cursor = con.execute("SELECT arxiv_id, state, rating, notes, week, read_on, updated_at "
                             "FROM reading WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)")
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def stored_ids(db_path: Path, arxiv_ids: list[str]) -> set[str]:
    """The ids among ``arxiv_ids`` that are stored papers."""
    if not arxiv_ids:
        return set()
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        rows = con.execute("SELECT arxiv_id FROM papers "
                           "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)").fetchall()
    return {row[0] for row in rows}


# ---- Obsidian export baselines ---------------------------------------------------------

def export_baselines(db_path: Path, vault: str) -> dict[str, dict]:
    """What the last export wrote into each note of ``vault``: id → file, notes_sha,
    state, rating."""
    with connect(db_path, read_only=True) as con:
        cursor = con.execute("SELECT arxiv_id, file, notes_sha, state, rating "
                             "FROM note_exports WHERE vault = ?", [vault])
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def record_exports(db_path: Path, vault: str, rows: list[dict]) -> None:
    """Remember what was just written (``arxiv_id``, ``file``, ``notes_sha``, ``state``,
    ``rating`` per note) as the baseline of the next export or import."""
    if not rows:
        return
    table = pa.table({
        "arxiv_id": [row["arxiv_id"] for row in rows],
        "file": [row["file"] for row in rows],
        "notes_sha": [row.get("notes_sha") for row in rows],
        "state": [row.get("state") for row in rows],
        "rating": pa.array([row.get("rating") for row in rows], pa.int32())})
    with transaction(db_path) as con:
        con.register("written", table)
        con.execute("""
            INSERT INTO note_exports (vault, arxiv_id, file, notes_sha, state, rating,
                                      exported_at)
            SELECT ?, arxiv_id, file, notes_sha, state, rating, now() FROM written
            ON CONFLICT (vault, arxiv_id) DO UPDATE SET file = excluded.file,
                notes_sha = excluded.notes_sha, state = excluded.state,
                rating = excluded.rating, exported_at = now()""", [vault])
        con.unregister("written")


# ---- BibTeX citation keys ----------------------------------------------------------------

def citation_keys(db_path: Path) -> dict[str, str]:
    """Every citation key assigned so far: arXiv id → key."""
    with connect(db_path, read_only=True) as con:
        return dict(con.execute("SELECT arxiv_id, citation_key FROM citation_keys").fetchall())


def save_citation_keys(db_path: Path, keys: dict[str, str]) -> None:
    """Store newly assigned keys; an id that already has one keeps it."""
    if not keys:
        return
    table = pa.table({"arxiv_id": list(keys), "citation_key": list(keys.values())})
    with transaction(db_path) as con:
        con.register("assigned", table)
        con.execute("INSERT INTO citation_keys (arxiv_id, citation_key) "
                    "SELECT arxiv_id, citation_key FROM assigned ON CONFLICT DO NOTHING")
        con.unregister("assigned")
