"""All SQL about reading: states, the queue, weekly picks, notes, and the reader's
views over papers (inbox, browse, cards). Search (keyword, semantic, similar papers) lives
in ``storage.search``; the few names here are kept for their callers.

A paper with no row in ``reading`` is in the inbox. Every write opens its own short
transaction through ``storage.db.transaction``, which waits (with backoff) while
another process such as ``octet run`` holds the file, so a reader's action is never lost.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.embed import ENCODER_NAME
from storage.db import connect, transaction
from storage.search_index import refresh_search_index, search_words  # noqa: F401 (callers)

log = logging.getLogger(__name__)

STATES = ("inbox", "queued", "pick", "read", "skipped", "dismissed")

# The columns a paper card needs; kept small so pages stay fast at 75k papers.
_CARD = ("p.arxiv_id, p.version, p.title, p.authors, p.abstract, p.categories, "
         "p.primary_category, p.published, p.listed_date, p.abs_url, p.pdf_url")


class NotStored(LookupError):
    """The arXiv id is not in the database; the message says how to add it."""


def _rows(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _plain(record: dict) -> dict:
    """JSON-ready values: dates and timestamps as ISO strings, lists as lists."""
    out = {}
    for key, value in record.items():
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        out[key] = value
    return out


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

def states_for(db_path: Path, arxiv_ids: list[str]) -> dict[str, str]:
    """The reading state of each id (``inbox`` for ids with no row)."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        con.register("wanted", pa.table({"arxiv_id": list(arxiv_ids)}))
        found = dict(con.execute("SELECT arxiv_id, state FROM reading "
                                 "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)").fetchall())
    return {arxiv_id: found.get(arxiv_id, "inbox") for arxiv_id in arxiv_ids}


def reading_of(db_path: Path, arxiv_id: str) -> dict | None:
    """The paper's reading row as a JSON-ready dict, or None when it is in the inbox."""
    with connect(db_path, read_only=True) as con:
        rows = _rows(con.execute("SELECT * FROM reading WHERE arxiv_id = ?", [arxiv_id]))
    return _plain(rows[0]) if rows else None


def dismiss(db_path: Path, arxiv_ids: list[str]) -> int:
    """Mark papers "not interested"; they leave the inbox and the queue."""
    with transaction(db_path) as con:
        for arxiv_id in arxiv_ids:
            _require_paper(con, arxiv_id)
            _upsert_state(con, arxiv_id, "dismissed", queue_position=None)
    return len(arxiv_ids)


# ---- the queue --------------------------------------------------------------

def queue_add(db_path: Path, arxiv_ids: list[str]) -> dict[str, str]:
    """Append papers to the end of the queue; returns ``{id: outcome}`` where outcome is
    ``queued``, ``already queued``, ``already read`` or ``this week's pick``."""
    outcomes = {}
    with transaction(db_path) as con:
        for arxiv_id in arxiv_ids:
            _require_paper(con, arxiv_id)
            row = con.execute("SELECT state FROM reading WHERE arxiv_id = ?", [arxiv_id]).fetchone()
            state = row[0] if row else "inbox"
            if state in ("queued", "read", "pick"):
                outcomes[arxiv_id] = {"queued": "already queued", "read": "already read",
                                      "pick": "this week's pick"}[state]
                continue
            last = con.execute("SELECT coalesce(max(queue_position), 0) FROM reading "
                               "WHERE state = 'queued'").fetchone()[0]
            _upsert_state(con, arxiv_id, "queued", queue_position=last + 1)
            outcomes[arxiv_id] = "queued"
    return outcomes


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
        rows = _rows(con.execute(f"""
            SELECT row_number() OVER (ORDER BY r.queue_position, r.arxiv_id) AS position,
                   {_CARD}, r.updated_at AS queued_at
            FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'queued' ORDER BY r.queue_position, r.arxiv_id"""))
    return [_plain(row) for row in rows]


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
        rows = _rows(con.execute(f"""
            SELECT w.week, w.chosen_by, w.reason, w.runners_up, w.status, w.picked_at,
                   r.started_at, r.rating, r.notes, r.read_on, {_CARD}
            FROM weekly_picks w JOIN papers p USING (arxiv_id)
            LEFT JOIN reading r USING (arxiv_id)
            WHERE w.week = ?""", [week]))
    return _plain(rows[0]) if rows else None


def set_pick(db_path: Path, week: str, arxiv_id: str, chosen_by: str, reason: str = "",
             runners_up: list[str] | None = None, replace: bool = True) -> bool:
    """Make a paper the week's pick, replacing any earlier pick of that week (which goes
    back to the queue when it came from there, else to the inbox). With ``replace=False``
    an existing pick wins (two processes proposing at once keep the first); returns
    whether this paper is now the pick."""
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        previous = con.execute("SELECT arxiv_id FROM weekly_picks WHERE week = ?",
                               [week]).fetchone()
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
    if rating is not None and not 1 <= int(rating) <= 5:
        raise ValueError(f"rating {rating} is out of range; give a number from 1 to 5")
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        held = con.execute("SELECT rating, notes FROM reading WHERE arxiv_id = ?",
                           [arxiv_id]).fetchone()
        rating = rating if rating is not None else (held[0] if held else None)
        notes = notes if notes is not None else (held[1] if held else None)
        _upsert_state(con, arxiv_id, "read", queue_position=None, week=week, rating=rating,
                      notes=notes, read_on=read_on or date.today())
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


def save_notes(db_path: Path, arxiv_id: str, notes: str | None = None,
               rating: int | None = None) -> None:
    """Change the notes and/or rating of a paper without changing its state."""
    if rating is not None and not 1 <= int(rating) <= 5:
        raise ValueError(f"rating {rating} is out of range; give a number from 1 to 5")
    with transaction(db_path) as con:
        _require_paper(con, arxiv_id)
        state = con.execute("SELECT state FROM reading WHERE arxiv_id = ?", [arxiv_id]).fetchone()
        values = {key: value for key, value in (("notes", notes), ("rating", rating))
                  if value is not None}
        _upsert_state(con, arxiv_id, state[0] if state else "inbox", **values)


def skip_week(db_path: Path, week: str) -> str | None:
    """Skip the week: its pick is marked skipped (a queued pick returns to the queue)."""
    with transaction(db_path) as con:
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
        rows = _rows(con.execute(
            "SELECT w.week, w.arxiv_id, w.status, w.chosen_by, w.reason, p.title "
            "FROM weekly_picks w LEFT JOIN papers p USING (arxiv_id) ORDER BY w.week"))
    return [_plain(row) for row in rows]


def read_history(db_path: Path) -> list[dict]:
    """Papers read, newest first, with week, date, rating and notes."""
    with connect(db_path, read_only=True) as con:
        rows = _rows(con.execute(f"""
            SELECT r.week, r.read_on, r.rating, r.notes, {_CARD}
            FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'read' ORDER BY r.read_on DESC, r.week DESC, r.arxiv_id"""))
    return [_plain(row) for row in rows]


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
        queued = _rows(con.execute(f"""
            SELECT 'queue' AS source, {_CARD} FROM reading r JOIN papers p USING (arxiv_id)
            WHERE r.state = 'queued' ORDER BY r.queue_position, r.arxiv_id LIMIT ?""", [limit]))
        if queued:
            return [_plain(row) for row in queued]
        recent = _rows(con.execute(f"""
            WITH newest AS (SELECT max(coalesce(listed_date, CAST(published AS DATE))) AS day
                            FROM papers)
            SELECT 'recent' AS source, {_CARD} FROM papers p, newest
            WHERE coalesce(p.listed_date, CAST(p.published AS DATE)) >= newest.day - ?::INTEGER
              AND p.arxiv_id NOT IN (SELECT arxiv_id FROM reading)
              AND p.arxiv_id NOT IN (SELECT arxiv_id FROM weekly_picks)
            ORDER BY coalesce(p.listed_date, CAST(p.published AS DATE)) DESC, p.arxiv_id DESC
            LIMIT ?""", [recent_days, limit]))
    return [_plain(row) for row in recent]


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
    with connect(db_path, read_only=True) as con:
        where, params = ("p.first_seen > ?", [since]) if since else ("FALSE", [])
        total = _inbox_count(con, where, params)
        if total == 0:
            where, params = ("p.listed_date = (SELECT max(listed_date) FROM papers)", [])
            total = _inbox_count(con, where, params)
        rows = _rows(con.execute(f"""
            WITH top AS (SELECT p.arxiv_id, p.listed_date FROM papers p
                         WHERE {where} AND p.arxiv_id NOT IN (SELECT arxiv_id FROM reading)
                         ORDER BY p.listed_date DESC NULLS LAST, p.arxiv_id DESC LIMIT ?)
            SELECT {_CARD} FROM top JOIN papers p USING (arxiv_id)
            ORDER BY top.listed_date DESC NULLS LAST, p.arxiv_id DESC""", params + [limit]))
    return [_plain(row) for row in rows], total


def _inbox_count(con, where: str, params: list) -> int:
    return con.execute(f"SELECT count(*) FROM papers p WHERE {where} AND p.arxiv_id NOT IN "
                       "(SELECT arxiv_id FROM reading)", params).fetchone()[0]


# ---- papers for pages: cards, browse, search, similar ---------------------------

def cards(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """Paper cards (title, authors, abstract, links, dates) with reading state, by id."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        con.register("wanted", pa.table({"arxiv_id": list(arxiv_ids)}))
        rows = _rows(con.execute(f"""
            SELECT {_CARD}, coalesce(r.state, 'inbox') AS state, r.rating, r.notes
            FROM papers p LEFT JOIN reading r USING (arxiv_id)
            WHERE p.arxiv_id IN (SELECT arxiv_id FROM wanted)"""))
    return {row["arxiv_id"]: _plain(row) for row in rows}


def paper_count(db_path: Path) -> int:
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT count(*) FROM papers").fetchone()[0]


def category_counts(db_path: Path) -> list[tuple[str, int]]:
    """Primary categories with their paper counts, most common first (for filters)."""
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT primary_category, count(*) FROM papers "
                           "GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()


@dataclass(frozen=True)
class BrowseFilter:
    """What the Browse page (or a caller) asks for; empty fields filter nothing."""

    text: str = ""
    """Words that must all start a word of the title or abstract (case-insensitive)."""

    category: str = ""
    """An arXiv category the paper is listed in (``cs.CL``)."""

    date_from: date | None = None
    """First listing (or publication) day to include."""

    date_to: date | None = None
    """Last listing (or publication) day to include."""

    states: tuple[str, ...] = ()
    """Reading states to include (``inbox``, ``queued``, ...); empty means all."""

    family: str = ""
    """A family code (``VLM``): papers the reader labeled so, or the model did with at least
    ``min_score``."""

    min_score: float = 0.0
    """Lowest model score for ``family`` (the reader's own labels always pass)."""

    arxiv_ids: tuple[str, ...] | None = None
    """Restrict to these ids; None means no restriction."""

    limit: int = 50
    """Most rows returned."""


def _family_clause(family: str) -> str:
    from pipeline.families import CODES

    if family not in CODES:
        raise ValueError(f"{family!r} is not a family; use one of {', '.join(CODES)}")
    # The score column is named after the code; the code was checked against CODES above.
    return f"""p.arxiv_id IN (
        SELECT arxiv_id FROM reader_labels WHERE list_contains(labels, ?)
        UNION ALL
        SELECT s.arxiv_id FROM family_scores s ANTI JOIN reader_labels l USING (arxiv_id)
        WHERE list_contains(s.labels, ?) AND s.{family.lower()} >= ?)"""


def browse(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """Papers matching the filter, newest first: up to ``limit`` cards and the total."""
    if search_words(wanted.text):
        return _browse_words(db_path, wanted)
    clauses, params = _browse_where(wanted)
    where = " AND ".join(clauses) or "TRUE"
    with connect(db_path, read_only=True) as con:
        if wanted.arxiv_ids is not None:
            con.register("restrict", pa.table({"arxiv_id": list(wanted.arxiv_ids)},
                                              schema=pa.schema([("arxiv_id", pa.string())])))
        base = f"FROM papers p LEFT JOIN reading r USING (arxiv_id) WHERE {where}"
        total = con.execute(f"SELECT count(*) {base}", params).fetchone()[0]
        # Order narrow rows first, then fetch the wide columns of the few kept: sorting
        # 75k abstracts to keep 25 costs ~10x more.
        rows = _rows(con.execute(f"""
            WITH top AS (SELECT p.arxiv_id, p.listed_date, coalesce(r.state, 'inbox') AS state
                         {base} ORDER BY p.listed_date DESC NULLS LAST, p.arxiv_id DESC
                         LIMIT ?)
            SELECT {_CARD}, top.state FROM top JOIN papers p USING (arxiv_id)
            ORDER BY top.listed_date DESC NULLS LAST, p.arxiv_id DESC""",
            params + [wanted.limit]))
    return [_plain(row) for row in rows], total


def _browse_words(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """A filter with search words: matched by the search index, full cards read here."""
    from storage.search import find_keyword

    found, total = find_keyword(db_path, wanted)
    full = cards(db_path, [card["arxiv_id"] for card in found])
    return [full[card["arxiv_id"]] for card in found if card["arxiv_id"] in full], total


def _browse_where(wanted: BrowseFilter) -> tuple[list[str], list]:
    clauses, params = [], []
    if wanted.category:
        clauses.append("list_contains(p.categories, ?)")
        params.append(wanted.category)
    day = "coalesce(p.listed_date, CAST(p.published AS DATE))"
    if wanted.date_from:
        clauses.append(f"{day} >= ?")
        params.append(wanted.date_from)
    if wanted.date_to:
        clauses.append(f"{day} <= ?")
        params.append(wanted.date_to)
    if wanted.states:
        clauses.append("coalesce(r.state, 'inbox') IN (SELECT unnest(?))")
        params.append(list(wanted.states))
    if wanted.arxiv_ids is not None:
        clauses.append("p.arxiv_id IN (SELECT arxiv_id FROM restrict)")
    if wanted.family:
        clauses.append(_family_clause(wanted.family))
        params += [wanted.family, wanted.family, float(wanted.min_score)]
    return clauses, params


# ---- what other concepts store (families, summaries, embeddings) ----------------
# Families and summaries are stored by their own modules; a paper the stages have not
# reached yet is simply absent, and the pages say "not classified yet" / "no summary yet".

def families_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """``{id: {"labels": [...], "scores": {...}, "source": ...}}`` for classified ids."""
    from storage.families import families_for

    return families_for(db_path, list(arxiv_ids)) if arxiv_ids else {}


def summaries_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """``{id: {tldr, problem, method, results, why_it_matters, extractive, ...}}``."""
    from storage.summaries import summary_for

    return summary_for(db_path, list(arxiv_ids)) if arxiv_ids else {}


def set_labels(db_path: Path, arxiv_id: str, labels: list[str]) -> None:
    """Store the reader's family labels for a paper (the full set; they win over the model's)."""
    from storage.families import set_reader_labels

    with connect(db_path, read_only=True) as con:
        _require_paper(con, arxiv_id)
    set_reader_labels(db_path, arxiv_id, list(labels))


# Embeddings live in ``embeddings`` (written by the classify stage through
# ``storage.families``): one row per paper version and encoder; only the stored version's
# vector from the current encoder counts.
_CURRENT_VECTORS = """
    SELECT e.arxiv_id, e.vector FROM embeddings e
    JOIN papers v ON v.arxiv_id = e.arxiv_id AND v.version = e.version
    WHERE e.encoder = ?"""


def has_embeddings(db_path: Path) -> bool:
    """Whether any paper has a stored embedding (semantic search and similarity need one)."""
    with connect(db_path, read_only=True) as con:
        return con.execute(f"SELECT EXISTS ({_CURRENT_VECTORS})", [ENCODER_NAME]).fetchone()[0]


def semantic_search(db_path: Path, vector: np.ndarray, wanted: BrowseFilter,
                    limit: int = 50) -> list[tuple[str, float]]:
    """``(id, cosine)`` of the papers nearest ``vector`` among those passing the filter's
    non-text conditions, best first (``storage.search.find_semantic``)."""
    from storage.search import find_semantic

    return [(card["arxiv_id"], card["score"])
            for card in find_semantic(db_path, vector, wanted, limit)]


def similar_papers(db_path: Path, arxiv_id: str, limit: int = 10) -> list[tuple[str, float]]:
    """``(id, cosine)`` of the papers most like one stored paper; [] without embeddings
    (``storage.search.find_similar``)."""
    from storage.search import find_similar

    return [(card["arxiv_id"], card["score"]) for card in find_similar(db_path, arxiv_id, limit)]


def embeddings_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, np.ndarray]:
    """Stored embeddings of the ids that have one."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        con.register("wanted", pa.table({"arxiv_id": list(arxiv_ids)}))
        rows = con.execute(f"SELECT * FROM ({_CURRENT_VECTORS}) "
                           "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)",
                           [ENCODER_NAME]).fetchall()
    return {arxiv_id: np.asarray(vector, dtype=np.float32) for arxiv_id, vector in rows}
