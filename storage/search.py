"""Search: keyword, semantic and hybrid search, and similar papers, answered from the
in-process index (``storage.search_index``) — at 75k papers a few milliseconds plus, for a
query typed as text, the ~20 ms of encoding it.

- keyword: every word of the query starts a word of the title or abstract (``segment``
  finds *segmentation*), with the filter's other conditions; newest first, with the total;
- semantic: the papers nearest the query (cosine of MiniLM embeddings) among those passing
  the filter's other conditions, best first;
- hybrid, what Browse shows: keyword hits first (they contain every word), then the
  nearest papers not already listed;
- similar: the papers nearest one paper.

Results are cards: the fields of ``reading.browse``'s cards except the abstract, plus
``labels`` (the family labels shown; None when not classified yet) and, for nearest papers,
``score`` (the cosine).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.families import CODES
from storage import search_index
from storage.reading import BrowseFilter, _plain
from storage.search_index import search_words

_EPOCH = date(1970, 1, 1).toordinal()


def find_keyword(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """Papers passing the filter (its text as word prefixes), newest first: up to
    ``wanted.limit`` cards, and how many match."""
    index = search_index.current(db_path, words=bool(search_words(wanted.text)))
    hits = _passing(index, wanted)
    return _cards(index, _newest(index, hits, wanted.limit)), int(hits.sum())


def find_semantic(db_path: Path, query: str | np.ndarray, wanted: BrowseFilter = BrowseFilter(),
                  limit: int | None = None) -> list[dict]:
    """The papers nearest ``query`` (a text, encoded here, or a vector) among those passing
    the filter's conditions other than its text, best first; [] without embeddings."""
    if isinstance(query, str) and not query.strip():
        return []
    vector = encode_query(query) if isinstance(query, str) else query
    index = search_index.current(db_path, vectors=True)
    rows, scores = _nearest(index, vector, _passing(index, replace(wanted, text="")),
                            limit or wanted.limit)
    return _cards(index, rows, scores)


def find_hybrid(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """Keyword hits (newest first, up to ``wanted.limit``), then the papers nearest the
    text that pass the other conditions and not already listed; and the keyword total.
    Without text, the filter's papers, as ``find_keyword``."""
    if not search_words(wanted.text):
        return find_keyword(db_path, wanted)
    vector = encode_query(wanted.text)
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


def warm_encoder() -> None:
    """Load the query encoder and give torch one thread, for a process that encodes short
    queries (the app): one query is ~20 ms on one thread, and 3-5x slower and erratic with
    idle OpenMP workers contending with DuckDB and other processes for two cores. The
    thread count is set after loading, since loading sets it to every core."""
    import torch

    encode_query("warm up")
    torch.set_num_threads(1)


@lru_cache(maxsize=64)
def encode_query(text: str) -> np.ndarray:
    """The query's embedding. Cached: Streamlit reruns the page, with the same text, on
    every click."""
    from pipeline.embed import embed_texts

    vector = embed_texts([text])[0]
    vector.setflags(write=False)
    return vector


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
        card = _plain(record)
        card["state"] = index.state_names[index.states[row]]
        card["labels"] = index.labels_of(int(row))
        found.append(card)
    if scores is not None:
        for card, score in zip(found, scores):
            card["score"] = float(score)
    return found
