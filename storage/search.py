"""Search: keyword, semantic and hybrid search, and similar papers, answered from the
in-process index (``storage.search_index``) — at 75k papers a few milliseconds; a text query
is encoded by ``pipeline.stages.search`` (storage never loads the encoder).

- keyword: every word of the query starts a word of the title or abstract (``segment``
  finds *segmentation*), with the filter's other conditions; newest first, with the total;
- semantic: the papers nearest the query (cosine of MiniLM embeddings) among those passing
  the filter's other conditions, best first;
- hybrid, what Browse shows: keyword hits first (they contain every word), then the
  nearest papers not already listed;
- similar: the papers nearest one paper.

Results are cards: the fields of ``browse``'s cards except the abstract, plus
``labels`` (the family labels shown; None when not classified yet) and, for nearest papers,
``score`` (the cosine).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.families import CODES
from storage import search_index
from storage.db import connect, plain_record, rows_of
from storage.reading import CARD_COLUMNS, cards
from storage.search_index import search_words

_EPOCH = date(1970, 1, 1).toordinal()


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
        rows = rows_of(con.execute(f"""
            WITH top AS (SELECT p.arxiv_id, p.listed_date, coalesce(r.state, 'inbox') AS state
                         {base} ORDER BY p.listed_date DESC NULLS LAST, p.arxiv_id DESC
                         LIMIT ?)
            SELECT {CARD_COLUMNS}, top.state FROM top JOIN papers p USING (arxiv_id)
            ORDER BY top.listed_date DESC NULLS LAST, p.arxiv_id DESC""",
            params + [wanted.limit]))
    return [plain_record(row) for row in rows], total


def _browse_words(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """A filter with search words: matched by the search index, full cards read here."""
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


def find_keyword(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """Papers passing the filter (its text as word prefixes), newest first: up to
    ``wanted.limit`` cards, and how many match."""
    index = search_index.current(db_path, words=bool(search_words(wanted.text)))
    hits = _passing(index, wanted)
    return _cards(index, _newest(index, hits, wanted.limit)), int(hits.sum())


def find_nearest(db_path: Path, vector: np.ndarray, wanted: BrowseFilter | None = None,
                 limit: int | None = None) -> list[dict]:
    """The papers nearest ``vector`` (an encoded query) among those passing the filter's
    conditions other than its text, best first; [] without embeddings."""
    wanted = wanted or BrowseFilter()
    index = search_index.current(db_path, vectors=True)
    rows, scores = _nearest(index, vector, _passing(index, replace(wanted, text="")),
                            limit or wanted.limit)
    return _cards(index, rows, scores)


def find_hybrid(db_path: Path, wanted: BrowseFilter,
                vector: np.ndarray | None) -> tuple[list[dict], int]:
    """Keyword hits (newest first, up to ``wanted.limit``), then the papers nearest the
    text that pass the other conditions and not already listed; and the keyword total.
    Without text, the filter's papers, as ``find_keyword``."""
    if not search_words(wanted.text) or vector is None:
        return find_keyword(db_path, wanted)
    index = search_index.current(db_path, words=True, vectors=True)
    passing = _passing(index, replace(wanted, text=""))
    hits = passing & _containing(index, search_words(wanted.text))
    rows = _newest(index, hits, wanted.limit)
    passing[rows] = False
    # At least half a page of neighbours even when keyword hits fill the page: they find
    # the papers that say it in other words.
    near, scores = _nearest(index, vector, passing, wanted.limit - len(rows) // 2)
    return _cards(index, rows) + _cards(index, near, scores), int(hits.sum())


def find_similar(db_path: Path, arxiv_id: str, limit: int = 10) -> list[dict]:
    """The papers most like one stored paper (itself left out), best first; [] when it
    has no embedding."""
    index = search_index.current(db_path, vectors=True)
    row = index.row_of.get(arxiv_id)
    if row is None or not index.has_vector[row]:
        return []
    others = index.alive.copy()
    others[row] = False
    return _cards(index, *_nearest(index, index.vectors[row], others, limit))


def has_vectors(db_path: Path) -> bool:
    """Whether any paper has an embedding (semantic search and Similar need them)."""
    return search_index.current(db_path).vector_count > 0


# ---- the filter as a mask over the index's rows ----------------------------------

def _passing(index: search_index.Snapshot, wanted: BrowseFilter) -> np.ndarray:
    """Which rows pass the filter, as ``reading.browse`` reads it."""
    passing = index.alive.copy()
    words = search_words(wanted.text)
    if words:
        passing &= _containing(index, words)
    if wanted.category:
        passing &= _rows_mask(index, index.category_rows[
            _equal(index.category_names, wanted.category)])
    if wanted.date_from:
        passing &= index.day >= wanted.date_from.toordinal() - _EPOCH
    if wanted.date_to:
        passing &= (index.day <= wanted.date_to.toordinal() - _EPOCH) & (
            index.day != search_index.NO_DAY)
    if wanted.states:
        codes = [index.state_names.index(s) for s in wanted.states if s in index.state_names]
        passing &= np.isin(index.states, codes)
    if wanted.arxiv_ids is not None:
        rows = [index.row_of[i] for i in wanted.arxiv_ids if i in index.row_of]
        passing &= _rows_mask(index, np.array(rows, np.int64))
    if wanted.family:
        passing &= _in_family(index, wanted.family, wanted.min_score)
    return passing


def _containing(index: search_index.Snapshot, words: list[str]) -> np.ndarray:
    """Rows with, for every word, a word of the title or abstract starting with it."""
    found = None
    for word in words:
        hits = np.zeros(len(index.ids), bool)
        for part in index.words:
            part.mark(word, hits)
        found = hits if found is None else found & hits
    return found


def _equal(values: pa.Array, wanted: str) -> np.ndarray:
    return pc.equal(values, wanted).to_numpy(zero_copy_only=False).astype(bool)


def _rows_mask(index: search_index.Snapshot, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(index.ids), bool)
    mask[rows] = True
    return mask


def _in_family(index: search_index.Snapshot, family: str, min_score: float) -> np.ndarray:
    """The reader's label, or (for papers the reader has not labeled) the model's label
    with at least ``min_score``."""
    if family not in CODES:
        raise ValueError(f"{family!r} is not a family; use one of {', '.join(CODES)}")
    column = CODES.index(family)
    by_reader = _rows_mask(index, np.fromiter(index.reader_labels, np.int64))
    by_model = index.model_labeled[:, column] & (index.scores[:, column] >= float(min_score))
    return np.where(by_reader, index.reader_labeled[:, column], by_model)


# ---- ranking and cards ----------------------------------------------------------

def _newest(index: search_index.Snapshot, passing: np.ndarray, limit: int) -> np.ndarray:
    return index.newest[passing[index.newest]][:max(limit, 0)]


def _nearest(index: search_index.Snapshot, vector: np.ndarray, passing: np.ndarray,
             limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``limit`` passing rows with the highest cosine to ``vector``, best first."""
    rows = np.flatnonzero(passing & index.has_vector)
    count = min(max(limit, 0), len(rows))
    if count == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    query = np.asarray(vector, np.float32)
    query = query / (np.linalg.norm(query) or 1.0)
    # A narrow filter scores only its rows; otherwise one product over all rows is cheaper
    # than gathering most of the matrix.
    if len(rows) * 8 < len(index.vectors):
        scores = index.vectors[rows] @ query
    else:
        scores = (index.vectors @ query)[rows]
    best = np.argpartition(-scores, count - 1)[:count]
    best = sorted(best, key=lambda i: (-scores[i], index.ids[rows[i]]))
    return rows[best], scores[best]


def _cards(index: search_index.Snapshot, rows: np.ndarray,
           scores: np.ndarray | None = None) -> list[dict]:
    found = []
    for row, record in zip(rows, index.cards.take(pa.array(rows, pa.int64())).to_pylist()):
        card = plain_record(record)
        card["state"] = index.state_names[index.states[row]]
        card["labels"] = index.labels_of(int(row))
        found.append(card)
    if scores is not None:
        for card, score in zip(found, scores):
            card["score"] = float(score)
    return found
