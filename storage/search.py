"""Search: keyword, semantic and hybrid search, and similar papers, answered from the
in-process index (``storage.search_index``) — at 75k papers a few milliseconds; a text query
is encoded by ``pipeline.stages.search`` (storage never loads the encoder).

- keyword: every word of the query starts a word of the title, the abstract or an
  author's name (``segment`` finds *segmentation*), with the filter's other conditions;
  newest first, with the total;
- author: one author's name holds every word of the filter's ``author`` (the last may be
  the start of a word);
- semantic: the papers nearest the query (cosine of MiniLM embeddings) among those passing
  the filter's other conditions, best first;
- hybrid, what Browse shows: keyword hits first (they contain every word), then the
  nearest papers not already listed;
- similar: the papers nearest one paper;
- a search page (``search_page``, what Browse and ``octet search`` show): one page of the
  keyword matches, and the papers related by meaning — not matching every word, but with a
  cosine of at least ``RELATED_MIN_SCORE`` — with both totals.

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

RELATED_MIN_SCORE = 0.40
"""The relevance cut-off: the lowest cosine (MiniLM) for a paper to be listed as related
by meaning. Measured on the 1,939 papers read for the family labels, with 12 queries a
reader types ("mixture of experts", "segment anything", ...) and the paper's family as
relevance: mean precision 0.56 at 0.40 (recall 0.38), 0.32 at 0.30, 0.67 at 0.45 (recall
0.25); 0.09 of the papers are relevant to a query (README, *Search*)."""


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

    author: str = ""
    """Words one author's name must hold: whole words, the last may be the start of one
    (``lecun``, ``Yann LeCun``, ``yann lec``)."""

    limit: int = 50
    """Most rows returned."""

    offset: int = 0
    """Matches to pass over before the first returned (newest first): the page's start."""


@dataclass(frozen=True)
class SearchPage:
    """One page of a search, as Browse and ``octet search`` show it."""

    matches: list[dict]
    """The page of papers passing every condition (every word included), newest first."""

    match_total: int
    """How many papers pass every condition."""

    related: list[dict]
    """Papers related by meaning (each with its ``score``), best first: passing the other
    conditions but not every word, with a cosine of at least the cut-off."""

    related_total: int
    """How many papers are related by meaning above the cut-off."""

    min_score: float = RELATED_MIN_SCORE
    """The cut-off the related papers passed."""


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
    if search_words(wanted.text) or search_words(wanted.author):
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
                         LIMIT ? OFFSET ?)
            SELECT {CARD_COLUMNS}, top.state FROM top JOIN papers p USING (arxiv_id)
            ORDER BY top.listed_date DESC NULLS LAST, p.arxiv_id DESC""",
            params + [wanted.limit, max(wanted.offset, 0)]))
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
    index = search_index.current(db_path, words=_needs_words(wanted))
    hits = _passing(index, wanted)
    return (_cards(index, _newest(index, hits, wanted.limit, wanted.offset)),
            int(hits.sum()))


def find_nearest(db_path: Path, vector: np.ndarray, wanted: BrowseFilter | None = None,
                 limit: int | None = None) -> list[dict]:
    """The papers nearest ``vector`` (an encoded query) among those passing the filter's
    conditions other than its text, best first; [] without embeddings."""
    wanted = wanted or BrowseFilter()
    index = search_index.current(db_path, words=bool(search_words(wanted.author)),
                                 vectors=True)
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
    rows = _newest(index, hits, wanted.limit, wanted.offset)
    passing[rows] = False
    # At least half a page of neighbours even when keyword hits fill the page: they find
    # the papers that say it in other words.
    near, scores = _nearest(index, vector, passing, wanted.limit - len(rows) // 2)
    return _cards(index, rows) + _cards(index, near, scores), int(hits.sum())


def search_page(db_path: Path, wanted: BrowseFilter, vector: np.ndarray | None = None,
                related_limit: int = 10,
                min_score: float = RELATED_MIN_SCORE) -> SearchPage:
    """One page of ``wanted`` (``limit`` matches from ``offset``, newest first) and, with
    the text's ``vector``, up to ``related_limit`` papers related by meaning: passing the
    other conditions, not matching every word, cosine at least ``min_score``, best first."""
    words = search_words(wanted.text)
    semantic = vector is not None and bool(words)
    index = search_index.current(db_path, words=_needs_words(wanted), vectors=semantic)
    passing = _passing(index, replace(wanted, text=""))
    hits = passing & _containing(index, words) if words else passing
    matches = _cards(index, _newest(index, hits, wanted.limit, wanted.offset))
    if not semantic:
        return SearchPage(matches, int(hits.sum()), [], 0, min_score)
    rows, scores = _above(index, vector, passing & ~hits, min_score)
    related = _cards(index, rows[:max(related_limit, 0)], scores[:max(related_limit, 0)])
    return SearchPage(matches, int(hits.sum()), related, len(rows), min_score)


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

def _needs_words(wanted: BrowseFilter) -> bool:
    """Whether the filter needs the word postings (its text or author)."""
    return bool(search_words(wanted.text) or search_words(wanted.author))


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
    if search_words(wanted.author):
        passing &= _by_author(index, search_words(wanted.author))
    return passing


def _containing(index: search_index.Snapshot, words: list[str],
                parts: str = "words author_words") -> np.ndarray:
    """Rows with, for every word, a word of the title, abstract or an author's name (of
    the postings named in ``parts``) starting with it."""
    found = None
    for word in words:
        hits = np.zeros(len(index.ids), bool)
        for name in parts.split():
            for part in getattr(index, name):
                part.mark(word, hits)
        found = hits if found is None else found & hits
    return found


def _by_author(index: search_index.Snapshot, words: list[str]) -> np.ndarray:
    """Rows with an author whose name holds every word: whole words, but the last may be
    the start of one (as typed: ``yann lec``), so ``Yi Wang`` is not ``Yifan Wang``. The
    postings find the rows with each word starting some name's word; the few found are
    checked for one name holding them all."""
    rows = np.flatnonzero(_containing(index, words, "author_words") & index.alive)
    names = index.cards.column("authors").take(pa.array(rows, pa.int64())).to_pylist()
    kept = [row for row, authors in zip(rows, names)
            if any(_starts_all(words, search_words(name)) for name in authors or ())]
    return _rows_mask(index, np.array(kept, np.int64))


def _starts_all(words: list[str], name_words: list[str]) -> bool:
    *whole, last = words
    return (all(word in name_words for word in whole)
            and any(part.startswith(last) for part in name_words))


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

def _newest(index: search_index.Snapshot, passing: np.ndarray, limit: int,
            offset: int = 0) -> np.ndarray:
    start = max(offset, 0)
    return index.newest[passing[index.newest]][start:start + max(limit, 0)]


def _above(index: search_index.Snapshot, vector: np.ndarray, passing: np.ndarray,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Every passing row with a cosine to ``vector`` of at least ``min_score``, best first."""
    rows = np.flatnonzero(passing & index.has_vector)
    scores = _scores(index, rows, vector)
    kept = scores >= min_score
    rows, scores = rows[kept], scores[kept]
    order = np.lexsort((np.array([index.ids[row] for row in rows]), -scores))
    return rows[order], scores[order]


def _nearest(index: search_index.Snapshot, vector: np.ndarray, passing: np.ndarray,
             limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``limit`` passing rows with the highest cosine to ``vector``, best first."""
    rows = np.flatnonzero(passing & index.has_vector)
    count = min(max(limit, 0), len(rows))
    if count == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = _scores(index, rows, vector)
    best = np.argpartition(-scores, count - 1)[:count]
    best = sorted(best, key=lambda i: (-scores[i], index.ids[rows[i]]))
    return rows[best], scores[best]


def _scores(index: search_index.Snapshot, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """The cosine of each row's vector to ``vector``."""
    query = np.asarray(vector, np.float32)
    query = query / (np.linalg.norm(query) or 1.0)
    # A narrow filter scores only its rows; otherwise one product over all rows is cheaper
    # than gathering most of the matrix.
    if len(rows) * 8 < len(index.vectors):
        return index.vectors[rows] @ query
    return (index.vectors @ query)[rows]


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
