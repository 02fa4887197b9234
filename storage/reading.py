"""All SQL about reading: states, the queue, weekly picks, notes, and the reader's
views over papers (inbox, cards). Owns the tables ``reading``, ``weekly_picks``,
``reader_state`` and ``reader_feedback`` (thumbs up/down); every write to ``reading`` goes
through the rules below (``set_state`` is the one entry for a change of state from outside
the app and CLI, e.g. the Obsidian import).

A paper with no row in ``reading`` is in the inbox. Every write opens its own short
transaction through ``storage.db.transaction``, which waits (with backoff) while
another process such as ``octet run`` holds the file, so a reader's action is never lost.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core.paper import clean_text, strip_controls
from pipeline.core.text import ENCODER_NAME
from storage.db import connect, plain_record, register_ids, rows_of, transaction

log = logging.getLogger(__name__)

STATES = ("inbox", "queued", "pick", "read", "skipped", "dismissed")

# The columns a paper card needs; kept small so pages stay fast at 75k papers.
CARD_COLUMNS = ("p.arxiv_id, p.version, p.title, p.authors, p.abstract, p.categories, "
         "p.primary_category, p.published, p.listed_date, p.abs_url, p.pdf_url")


class NotStored(LookupError):
    """The arXiv id is not in the database; the message says how to add it."""


def _require_paper(con, arxiv_id: str) -> None:
    if con.execute("SELECT 1 FROM papers WHERE arxiv_id = ?", [arxiv_id]).fetchone() is None:
        raise NotStored(f"{arxiv_id} is not in the database; fetch it first with "
                        f"`octet fetch --ids {arxiv_id}` (or check the id)")


def _upsert_state(con, arxiv_id: str, state: str, **values) -> None:
    """Set a paper's state (and any other columns) in one statement."""
    columns = ["arxiv_id", "state", *values]
    updates = ", ".join(f"{name} = excluded.{name}" for name in ["state", *values])
    marks = ", ".join("?" for _ in columns)
    con.execute(f"INSERT INTO reading ({', '.join(columns)}, updated_at) VALUES ({marks}, now()) "
                f"ON CONFLICT (arxiv_id) DO UPDATE SET {updates}, updated_at = now()",
                [arxiv_id, state, *values.values()])


# ---- states -----------------------------------------------------------------

def reading_of(db_path: Path, arxiv_id: str) -> dict | None:
    """The paper's reading row as a JSON-ready dict, or None when it is in the inbox."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute("SELECT * FROM reading WHERE arxiv_id = ?", [arxiv_id]))
    return plain_record(rows[0]) if rows else None


def dismiss(db_path: Path, arxiv_ids: list[str]) -> int:
    """Mark papers "not interested"; they leave the inbox and the queue."""
    with transaction(db_path) as con:
        for arxiv_id in arxiv_ids:
            _require_paper(con, arxiv_id)
            _upsert_state(con, arxiv_id, "dismissed", queue_position=None)
    return len(arxiv_ids)


def undo_dismiss(db_path: Path, arxiv_id: str, previous: dict | None) -> str:
    """Take a dismissal back: the paper returns to the state ``previous`` held (its
    ``reading_of`` row before the dismissal; None: the inbox), a queued paper to its old
    place. Returns the state it is in now; a paper no longer dismissed is left alone."""
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        if _state(con, arxiv_id) != "dismissed":
            return _state(con, arxiv_id)
        previous = previous or {}
        if previous.get("state") == "queued" and previous.get("queue_position") is not None:
            _upsert_state(con, arxiv_id, "queued", queue_position=previous["queue_position"])
        elif previous.get("state") == "skipped":
            _upsert_state(con, arxiv_id, "skipped")
        else:  # the inbox (dismissing a pick or a read paper is not offered)
            _back_to_inbox(con, arxiv_id)
        return _state(con, arxiv_id)


# ---- the queue --------------------------------------------------------------

def queue_add(db_path: Path, arxiv_ids: list[str]) -> dict[str, str]:
    """Append papers to the end of the queue; returns ``{id: outcome}`` where outcome is
    ``queued``, ``already queued``, ``already read`` or ``this week's pick``."""
    with transaction(db_path) as con:
        return {arxiv_id: _queue(con, arxiv_id) for arxiv_id in arxiv_ids}


def _queue(con, arxiv_id: str, again: bool = False) -> str:
    """The end of the queue; a read paper goes back only when asked ``again`` (a reader who
    sets a read note back to queued in Obsidian wants to read it again)."""
    _require_paper(con, arxiv_id)
    state = _state(con, arxiv_id)
    if state in ("queued", "pick") or (state == "read" and not again):
        return {"queued": "already queued", "read": "already read",
                "pick": "this week's pick"}[state]
    last = con.execute("SELECT coalesce(max(queue_position), 0) FROM reading "
                       "WHERE state = 'queued'").fetchone()[0]
    _upsert_state(con, arxiv_id, "queued", queue_position=last + 1)
    return "queued"


def _state(con, arxiv_id: str) -> str:
    row = con.execute("SELECT state FROM reading WHERE arxiv_id = ?", [arxiv_id]).fetchone()
    return row[0] if row else "inbox"


def queue_remove(db_path: Path, arxiv_ids: list[str]) -> list[str]:
    """Take papers out of the queue (back to the inbox); returns the ids that were queued."""
    removed = []
    with transaction(db_path) as con:
        for arxiv_id in arxiv_ids:
            row = con.execute("SELECT state FROM reading WHERE arxiv_id = ?",
                              [arxiv_id]).fetchone()
            if row and row[0] == "queued":
                _back_to_inbox(con, arxiv_id)
                removed.append(arxiv_id)
    return removed


def _back_to_inbox(con, arxiv_id: str) -> None:
    """Out of the queue or the pick. The row goes only when it holds nothing of the
    reader's: notes, a rating or a start date must outlive a change of plan."""
    con.execute("""UPDATE reading SET state = 'inbox', queue_position = NULL, week = NULL,
                   updated_at = now() WHERE arxiv_id = ?""", [arxiv_id])
    con.execute("""DELETE FROM reading WHERE arxiv_id = ? AND notes IS NULL
                   AND rating IS NULL AND started_at IS NULL""", [arxiv_id])


def queue_list(db_path: Path) -> list[dict]:
    """The queue in reading order: position (1-based), id, title, category, dates."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute(f"""
            SELECT row_number() OVER (ORDER BY r.queue_position, r.arxiv_id) AS position,
                   {CARD_COLUMNS}, r.updated_at AS queued_at
            FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'queued' ORDER BY r.queue_position, r.arxiv_id"""))
    return [plain_record(row) for row in rows]


def queue_move(db_path: Path, arxiv_id: str, where: str) -> bool:
    """Move a queued paper ``up``, ``down`` or to the ``top``; False when it cannot move."""
    with transaction(db_path) as con:
        order = [row[0] for row in con.execute(
            "SELECT arxiv_id FROM reading WHERE state = 'queued' "
            "ORDER BY queue_position, arxiv_id").fetchall()]
        if arxiv_id not in order:
            return False
        index = order.index(arxiv_id)
        target = {"up": index - 1, "down": index + 1, "top": 0}[where]
        if target < 0 or target >= len(order) or target == index:
            return False
        order.insert(target, order.pop(index))
        # Renumbering the whole (short) queue keeps positions dense and ties impossible.
        con.register("renumbered", pa.table({"arxiv_id": order,
                                             "position": [float(i + 1)
                                                          for i in range(len(order))]}))
        con.execute("UPDATE reading SET queue_position = n.position, updated_at = now() "
                    "FROM renumbered n WHERE reading.arxiv_id = n.arxiv_id")
    return True


# ---- weekly picks and reading -------------------------------------------------

def get_pick(db_path: Path, week: str) -> dict | None:
    """The week's pick with its paper card, or None when the week has none yet."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute(f"""
            SELECT w.week, w.chosen_by, w.reason, w.runners_up, w.status, w.picked_at,
                   r.started_at, r.rating, r.notes, r.read_on, {CARD_COLUMNS}
            FROM weekly_picks w JOIN papers p USING (arxiv_id)
            LEFT JOIN reading r USING (arxiv_id)
            WHERE w.week = ?""", [week]))
    return plain_record(rows[0]) if rows else None


def set_pick(db_path: Path, week: str, arxiv_id: str, chosen_by: str, reason: str = "",
             runners_up: list[str] | None = None, replace: bool = True) -> bool:
    """Make a paper the week's pick, replacing any earlier pick of that week (which goes
    back to the queue when it came from there, else to the inbox). With ``replace=False``
    an existing pick wins (two processes proposing at once keep the first); returns
    whether this paper is now the pick."""
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        return _set_pick(con, week, arxiv_id, chosen_by, reason, runners_up, replace)


def _set_pick(con, week: str, arxiv_id: str, chosen_by: str, reason: str,
              runners_up: list[str] | None, replace: bool) -> bool:
    previous = con.execute("SELECT arxiv_id FROM weekly_picks WHERE week = ?",
                           [week]).fetchone()
    reason = clean_text(reason) if reason else reason  # may come from a model: one line, no controls
    if previous and not replace:
        return previous[0] == arxiv_id
    if previous and previous[0] != arxiv_id:
        _release(con, previous[0])
    con.execute(
        "INSERT INTO weekly_picks (week, arxiv_id, chosen_by, reason, runners_up, status, "
        "picked_at) VALUES (?, ?, ?, ?, ?, 'pick', now()) ON CONFLICT (week) DO UPDATE SET "
        "arxiv_id = excluded.arxiv_id, chosen_by = excluded.chosen_by, "
        "reason = excluded.reason, runners_up = excluded.runners_up, status = 'pick', "
        "picked_at = now()",
        [week, arxiv_id, chosen_by, reason, list(runners_up or [])])
    # The queue position is kept, so a swapped-out pick returns to its place.
    _upsert_state(con, arxiv_id, "pick", week=week)
    return True


def _release(con, arxiv_id: str) -> None:
    """An unread pick that is no longer the pick: back to the queue or the inbox."""
    row = con.execute("SELECT state, queue_position FROM reading WHERE arxiv_id = ?",
                      [arxiv_id]).fetchone()
    if row is None or row[0] != "pick":
        return
    if row[1] is not None:
        _upsert_state(con, arxiv_id, "queued", week=None)
    else:
        _back_to_inbox(con, arxiv_id)


def queue_top_after_pick(db_path: Path, week: str) -> str | None:
    """The first paper of the queue when it took that place after the week's pick was
    made (queued into an empty queue, or moved to the top, since); else None."""
    with connect(db_path, read_only=True) as con:
        row = con.execute("""
            SELECT r.arxiv_id, r.updated_at > w.picked_at FROM reading r, weekly_picks w
            WHERE w.week = ? AND r.state = 'queued'
            ORDER BY r.queue_position, r.arxiv_id LIMIT 1""", [week]).fetchone()
    return row[0] if row and row[1] else None


def start_reading(db_path: Path, arxiv_id: str) -> None:
    """Record when the reader started the paper (the first time only)."""
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        con.execute("UPDATE reading SET started_at = coalesce(started_at, now()), "
                    "updated_at = now() WHERE arxiv_id = ?", [arxiv_id])


def mark_read(db_path: Path, arxiv_id: str, week: str, rating: int | None = None,
              notes: str | None = None, read_on: date | None = None) -> None:
    """Mark a paper read in ``week``; when the week has no pick (or this paper is it) it
    becomes the week's read pick, so reading from the terminal keeps the streak too."""
    _check_rating(rating)
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        _mark_read(con, arxiv_id, week, read_on)
        _keep_notes(con, arxiv_id, notes, rating)


def _check_rating(rating) -> None:
    if rating is not None and rating is not KEEP and not 1 <= int(rating) <= 5:
        raise ValueError(f"rating {rating} is out of range; give a number from 1 to 5")


def _mark_read(con, arxiv_id: str, week: str, read_on: date | None) -> None:
    _upsert_state(con, arxiv_id, "read", queue_position=None, week=week,
                  read_on=read_on or date.today())
    con.execute("UPDATE reading SET started_at = coalesce(started_at, now()) "
                "WHERE arxiv_id = ?", [arxiv_id])
    pick = con.execute("SELECT arxiv_id, status FROM weekly_picks WHERE week = ?",
                       [week]).fetchone()
    if pick is None:
        con.execute("INSERT INTO weekly_picks (week, arxiv_id, chosen_by, reason, status) "
                    "VALUES (?, ?, 'reader', 'read from the terminal or app', 'read')",
                    [week, arxiv_id])
    elif pick[0] == arxiv_id:
        con.execute("UPDATE weekly_picks SET status = 'read' WHERE week = ?", [week])
    elif pick[1] != "read":
        # Reading another paper instead of the pick makes it the week's pick.
        _release(con, pick[0])
        con.execute("UPDATE weekly_picks SET arxiv_id = ?, chosen_by = 'reader', "
                    "reason = 'read instead of the proposed pick', status = 'read' "
                    "WHERE week = ?", [arxiv_id, week])


KEEP = object()
"""Passed for a rating or notes: leave what is stored (``None`` clears it)."""


def _keep_notes(con, arxiv_id: str, notes=None, rating=None, clear: bool = False) -> None:
    """Set notes and rating on an existing row; ``None`` leaves a value unless ``clear``."""
    for name, value in (("notes", notes), ("rating", rating)):
        if value is KEEP or (value is None and not clear):
            continue
        if name == "notes" and value:
            value = _clean_notes(value)
        con.execute(f"UPDATE reading SET {name} = ?, updated_at = now() WHERE arxiv_id = ?",
                    [value, arxiv_id])


def _clean_notes(notes: str) -> str | None:
    """Notes as stored: pasted text keeps its lines and tabs but no other control character
    (ESC or NUL would reach a terminal); notes that were nothing else are no notes."""
    return strip_controls(notes, keep="\n\t") or None


def set_state(db_path: Path, arxiv_id: str, state: str, week: str, read_on: date | None = None,
              rating=KEEP, notes=KEEP) -> None:
    """Move one paper to ``state`` by the same rules as the app's and the CLI's actions
    (read: the week's pick is recorded and the streak counts it; queued: the end of the
    queue; pick: this week's pick; inbox: out of the queue or the pick), and set its
    rating and notes (``KEEP`` leaves them, ``None`` clears them)."""
    if state not in STATES:
        raise ValueError(f"{state!r} is not a reading state; use one of {', '.join(STATES)}")
    _check_rating(rating)
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        if state != _state(con, arxiv_id):
            _STATE_RULES[state](con, arxiv_id, week, read_on)
        if (rating is not KEEP or notes is not KEEP) and _state_row(con, arxiv_id) is None:
            _upsert_state(con, arxiv_id, "inbox")
        _keep_notes(con, arxiv_id, notes, rating, clear=True)


def _state_row(con, arxiv_id: str):
    return con.execute("SELECT state FROM reading WHERE arxiv_id = ?", [arxiv_id]).fetchone()


def _to_pick(con, arxiv_id: str, week: str, read_on) -> None:
    _set_pick(con, week, arxiv_id, "reader", "chosen in your notes", [], replace=True)


def _to_skipped(con, arxiv_id: str, week: str, read_on) -> None:
    pick = con.execute("SELECT week FROM weekly_picks WHERE arxiv_id = ? AND status = 'pick'",
                       [arxiv_id]).fetchone()
    if pick:
        _skip_week(con, pick[0])
    else:
        _upsert_state(con, arxiv_id, "skipped", queue_position=None)


_STATE_RULES = {
    "inbox": lambda con, arxiv_id, week, read_on: (_release(con, arxiv_id),
                                                   _back_to_inbox(con, arxiv_id)),
    "queued": lambda con, arxiv_id, week, read_on: _queue(con, arxiv_id, again=True),
    "pick": _to_pick,
    "read": lambda con, arxiv_id, week, read_on: _mark_read(con, arxiv_id, week, read_on),
    "skipped": _to_skipped,
    "dismissed": lambda con, arxiv_id, week, read_on: _upsert_state(
        con, arxiv_id, "dismissed", queue_position=None),
}


def save_notes(db_path: Path, arxiv_id: str, notes: str | None = None,
               rating: int | None = None) -> None:
    """Change the notes and/or rating of a paper without changing its state."""
    _check_rating(rating)
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        if _state_row(con, arxiv_id) is None:
            _upsert_state(con, arxiv_id, "inbox")
        _keep_notes(con, arxiv_id, notes, rating)


def skip_week(db_path: Path, week: str) -> str | None:
    """Skip the week: its pick is marked skipped (a queued pick returns to the queue)."""
    with transaction(db_path) as con:
        return _skip_week(con, week)


def _skip_week(con, week: str) -> str | None:
    pick = con.execute("SELECT arxiv_id FROM weekly_picks WHERE week = ?", [week]).fetchone()
    if pick is None:
        return None
    con.execute("UPDATE weekly_picks SET status = 'skipped' WHERE week = ?", [week])
    row = con.execute("SELECT queue_position FROM reading WHERE arxiv_id = ? "
                      "AND state = 'pick'", [pick[0]]).fetchone()
    if row is not None and row[0] is not None:
        _upsert_state(con, pick[0], "queued", week=None)
    elif row is not None:
        _upsert_state(con, pick[0], "skipped")
    return pick[0]


def all_picks(db_path: Path) -> list[dict]:
    """Every weekly pick, oldest first: week, id, status, chosen_by, title."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute(
            "SELECT w.week, w.arxiv_id, w.status, w.chosen_by, w.reason, p.title "
            "FROM weekly_picks w LEFT JOIN papers p USING (arxiv_id) ORDER BY w.week"))
    return [plain_record(row) for row in rows]


def read_weeks(db_path: Path) -> set[str]:
    """The weeks whose pick was read: what the streak counts."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT week FROM weekly_picks WHERE status = 'read'").fetchall()
    return {row[0] for row in rows}


def read_history(db_path: Path) -> list[dict]:
    """Papers read, newest first, with week, date, rating and notes."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute(f"""
            SELECT r.week, r.read_on, r.rating, r.notes, {CARD_COLUMNS}
            FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'read' ORDER BY r.read_on DESC, r.week DESC, r.arxiv_id"""))
    return [plain_record(row) for row in rows]


def rated_ids(db_path: Path) -> dict[str, list[str]]:
    """``{"liked": [...], "disliked": [...]}``: read papers rated 4-5, and papers rated 1-2
    or dismissed; the pick proposal leans toward the first and away from the second."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT arxiv_id, state, rating FROM reading "
                           "WHERE state = 'dismissed' OR rating IS NOT NULL").fetchall()
    liked = [i for i, state, rating in rows if state == "read" and (rating or 0) >= 4]
    disliked = [i for i, state, rating in rows if state == "dismissed" or (rating or 5) <= 2]
    return {"liked": liked, "disliked": disliked}


def pick_candidates(db_path: Path, recent_days: int = 14, limit: int = 400) -> list[dict]:
    """Papers a pick may come from: the queue (in order) when it has any, else the newest
    papers (by listing day, within ``recent_days`` of the newest) nobody has touched."""
    with connect(db_path, read_only=True) as con:
        queued = rows_of(con.execute(f"""
            SELECT 'queue' AS source, {CARD_COLUMNS} FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'queued' ORDER BY r.queue_position, r.arxiv_id LIMIT ?""", [limit]))
        if queued:
            return [plain_record(row) for row in queued]
        recent = rows_of(con.execute(f"""
            WITH newest AS (SELECT max(coalesce(listed_date, CAST(published AS DATE))) AS day
                            FROM papers)
            SELECT 'recent' AS source, {CARD_COLUMNS} FROM papers p, newest
            WHERE coalesce(p.listed_date, CAST(p.published AS DATE)) >= newest.day - ?::INTEGER
              AND p.arxiv_id NOT IN (SELECT arxiv_id FROM reading)
              AND p.arxiv_id NOT IN (SELECT arxiv_id FROM weekly_picks)
            ORDER BY coalesce(p.listed_date, CAST(p.published AS DATE)) DESC, p.arxiv_id DESC
            LIMIT ?""", [recent_days, limit]))
    return [plain_record(row) for row in recent]


# ---- the reader's visits and the inbox -----------------------------------------

def get_reader_value(db_path: Path, key: str) -> str | None:
    """A small stored fact about the reader (e.g. ``last_visit``), or None."""
    with connect(db_path, read_only=True) as con:
        row = con.execute("SELECT value FROM reader_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_reader_value(db_path: Path, key: str, value: str) -> None:
    with transaction(db_path) as con:
        con.execute("INSERT INTO reader_state (key, value, updated_at) VALUES (?, ?, now()) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
                    [key, value])


def inbox(db_path: Path, since: datetime | None, limit: int = 300) -> tuple[list[dict], int]:
    """Untouched papers first seen after ``since`` (or, when none, the newest listing day);
    returns up to ``limit`` cards (newest first) and the total count."""
    found = inbox_candidates(db_path, since, limit)
    return _in_order(cards(db_path, found["ids"]), found["ids"]), found["total"]


def _in_order(by_id: dict[str, dict], arxiv_ids: list[str]) -> list[dict]:
    return [by_id[arxiv_id] for arxiv_id in arxiv_ids if arxiv_id in by_id]


def inbox_candidates(db_path: Path, since: datetime | None, limit: int = 3000,
                     until: datetime | None = None) -> dict:
    """What the Inbox ranks (and the digest's family sections): the untouched papers first
    seen after ``since`` (and before ``until``, when given) or, when none arrived then (or
    on a first visit), the untouched papers of the newest listing day.
    Returns ``{"ids": [...] (newest first, at most limit), "total": N, "new": bool}``
    where ``new`` says the papers arrived since ``since``."""
    with connect(db_path, read_only=True) as con:
        where, params, new = ("p.first_seen > ?", [since], True) if since else ("FALSE", [], False)
        if since and until:
            where, params = where + " AND p.first_seen < ?", params + [until]
        total = _inbox_count(con, where, params)
        if total == 0:
            where, params, new = ("p.listed_date = (SELECT max(listed_date) FROM papers)", [], False)
            total = _inbox_count(con, where, params)
        rows = con.execute(f"""
            SELECT p.arxiv_id FROM papers p
            WHERE {where} AND p.arxiv_id NOT IN (SELECT arxiv_id FROM reading)
            ORDER BY p.listed_date DESC NULLS LAST, p.arxiv_id DESC LIMIT ?""",
                           params + [limit]).fetchall()
    return {"ids": [row[0] for row in rows], "total": total, "new": new}


def _inbox_count(con, where: str, params: list) -> int:
    return con.execute(f"SELECT count(*) FROM papers p WHERE {where} AND p.arxiv_id NOT IN "
                       "(SELECT arxiv_id FROM reading)", params).fetchone()[0]


# ---- the reader's signals: what the Inbox's "for you" order learns from ------------

def set_thumb(db_path: Path, arxiv_id: str, thumb: int | None) -> None:
    """Record the reader's thumb on a paper: 1 (more like this), -1 (less like this) or
    None (take it back). The paper's reading state does not change."""
    if thumb not in (1, -1, None):
        raise ValueError(f"thumb {thumb!r} is not 1, -1 or None")
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        if thumb is None:
            con.execute("DELETE FROM reader_feedback WHERE arxiv_id = ?", [arxiv_id])
            return
        con.execute("INSERT INTO reader_feedback (arxiv_id, thumb, updated_at) "
                    "VALUES (?, ?, now()) ON CONFLICT (arxiv_id) DO UPDATE SET "
                    "thumb = excluded.thumb, updated_at = now()", [arxiv_id, thumb])


def thumbs_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, int]:
    """The reader's thumbs (1 or -1) on the ids that have one."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        rows = con.execute("SELECT arxiv_id, thumb FROM reader_feedback "
                           "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)").fetchall()
    return {arxiv_id: int(thumb) for arxiv_id, thumb in rows}


def reader_signals(db_path: Path) -> list[dict]:
    """Every stored paper the reader acted on: ``arxiv_id``, ``title``, ``state`` (its
    reading state; ``inbox`` when only thumbed), ``rating`` (1-5 or None), ``thumb`` (1,
    -1 or None). Most recent action first. A pick Octet proposed counts only once the
    reader started it (or had queued it): the proposal is not the reader's choice."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute("""
            WITH acted AS (
                SELECT p.arxiv_id, p.title,
                       CASE WHEN r.state = 'pick' AND r.started_at IS NULL
                                 AND r.queue_position IS NULL
                                 AND coalesce(w.chosen_by, '') <> 'reader'
                            THEN 'inbox' ELSE coalesce(r.state, 'inbox') END AS state,
                       r.rating, f.thumb, greatest(r.updated_at, f.updated_at) AS acted_at
                FROM papers p LEFT JOIN reading r USING (arxiv_id)
                LEFT JOIN reader_feedback f USING (arxiv_id)
                LEFT JOIN weekly_picks w ON w.week = r.week AND w.arxiv_id = p.arxiv_id
                WHERE r.arxiv_id IS NOT NULL OR f.arxiv_id IS NOT NULL)
            SELECT arxiv_id, title, state, rating, thumb FROM acted
            WHERE state <> 'inbox' OR rating IS NOT NULL OR thumb IS NOT NULL
            ORDER BY acted_at DESC, arxiv_id"""))
    return [{**row, "thumb": None if row["thumb"] is None else int(row["thumb"])}
            for row in rows]


# ---- papers for pages: cards, browse, search, similar ---------------------------

def cards(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """Paper cards (title, authors, abstract, links, dates) with reading state, by id."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        rows = rows_of(con.execute(f"""
            SELECT {CARD_COLUMNS}, coalesce(r.state, 'inbox') AS state, r.rating, r.notes
            FROM papers p LEFT JOIN reading r USING (arxiv_id)
            WHERE p.arxiv_id IN (SELECT arxiv_id FROM wanted)"""))
    return {row["arxiv_id"]: plain_record(row) for row in rows}


def paper_count(db_path: Path) -> int:
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT count(*) FROM papers").fetchone()[0]


def category_counts(db_path: Path) -> list[tuple[str, int]]:
    """Primary categories with their paper counts, most common first (for filters)."""
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT primary_category, count(*) FROM papers "
                           "GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()


# Embeddings live in ``embeddings`` (written by the classify stage through
# ``storage.families``): one row per paper version and encoder; only the stored version's
# vector from the current encoder counts. The rows are found first (ids and versions only)
# and their vectors read by rowid: filtering on the id while reading the vectors scans
# every vector, 0.5-1 s at 75k papers against 20 ms this way (measured, bench_app).
_CURRENT_VECTORS = """
    SELECT arxiv_id, vector FROM embeddings WHERE rowid IN (
        SELECT e.rowid FROM embeddings e
        JOIN papers v ON v.arxiv_id = e.arxiv_id AND v.version = e.version
        WHERE e.encoder = ? AND e.arxiv_id IN (SELECT arxiv_id FROM wanted))"""


def has_embeddings(db_path: Path) -> bool:
    """Whether any paper has an embedding from the current encoder (one indexed lookup)."""
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT 1 FROM embeddings WHERE encoder = ? LIMIT 1",
                           [ENCODER_NAME]).fetchone() is not None


def embeddings_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, np.ndarray]:
    """Stored embeddings (float32, unit length) of the ids that have one."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        table = con.execute(_CURRENT_VECTORS, [ENCODER_NAME]).arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    if table.num_rows == 0:
        return {}
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    matrix = np.asarray(flat, dtype=np.float32).reshape(table.num_rows, -1)
    return dict(zip(table.column("arxiv_id").to_pylist(), matrix))
