"""The search index: the word table the pipeline keeps in DuckDB, and the in-process copy
the app searches (card fields, word postings, vectors and filter columns of every paper).

A fresh DuckDB connection costs ~25 ms before any query, more than a whole search may
take, so the app searches a copy held in memory and keeps it fresh cheaply:

- a query first compares the ``stat`` of the database file and its WAL with what they were
  at the last load; unchanged, it opens no connection at all;
- changed, it opens one connection, reads a fingerprint of each table and loads only what
  changed: new or replaced papers (found by ``last_seen``) and their words and vectors are
  appended; the small tables (reading states, the reader's labels) are read whole;
- word postings are seeded from ``search_words`` (written by ``refresh_search_index``, the
  pipeline's index stage); papers it has not indexed yet are tokenized here the same way.

A snapshot is never changed once built: a refresh builds a new one and swaps it in, so a
query running in another thread (another Streamlit session) keeps a consistent view.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.text import DIMENSIONS, ENCODER_NAME
from pipeline.core.families import CODES
from storage.db import DatabaseBusy, connect, transaction

log = logging.getLogger(__name__)

NO_DAY = np.iinfo(np.int32).min
"""``day`` of a paper with neither a listing day nor a publication date."""
BUSY_WAIT_SECONDS = 1.0
"""How long a refresh waits for a writer before serving the index it already holds."""
RACY_SECONDS = 1.0
"""A file changed this recently may change again within the same mtime tick; its stat is
not trusted, so the next query checks the fingerprint again (as git does)."""
_HELD_DATABASES = 2  # the reader's database and the demo one

# The fields of a search result card: everything a result line shows. The abstract is left
# out (it would double the memory held); ``reading.cards`` reads it for the few shown.
_CARD_COLUMNS = ("arxiv_id", "version", "title", "authors", "categories", "primary_category",
                 "published", "listed_date", "abs_url", "pdf_url")
_PAPER_FIELDS = (f"{', '.join(_CARD_COLUMNS)}, last_seen, "
                 "coalesce(listed_date, CAST(published AS DATE)) AS day")
# The text as the word table tokenizes it, so a paper indexed here matches the same words.
_TEXT = "lower(title || ' ' || abstract) AS text"


def search_words(text: str) -> list[str]:
    """The words of a text as the index stores them: lower-case letters and digits."""
    return list(dict.fromkeys(re.findall(r"[a-z0-9]+", (text or "").lower())))


# ---- the word table in DuckDB (written by the pipeline) ---------------------------

_TOKENIZE = """
    SELECT DISTINCT word, arxiv_id FROM (
        SELECT arxiv_id, unnest(regexp_split_to_array(lower(title || ' ' || abstract),
                                                      '[^a-z0-9]+')) AS word
        FROM papers WHERE arxiv_id IN (SELECT arxiv_id FROM batch))
    WHERE word <> ''"""


def refresh_search_index(db_path: Path, batch_size: int = 10_000) -> int:
    """Index the words of papers that are new or changed since they were indexed, in short
    transactions (so the app never waits long); re-sorts the index when appended rows
    would slow lookups. Returns how many papers were indexed."""
    with connect(db_path, read_only=True) as con:
        stale = [row[0] for row in con.execute(
            "SELECT p.arxiv_id FROM papers p LEFT JOIN search_indexed s USING (arxiv_id) "
            "WHERE s.version IS DISTINCT FROM p.version ORDER BY p.arxiv_id").fetchall()]
    for start in range(0, len(stale), batch_size):
        with transaction(db_path) as con:
            con.register("batch", pa.table({"arxiv_id": stale[start:start + batch_size]}))
            con.execute("DELETE FROM search_words WHERE arxiv_id IN (SELECT arxiv_id FROM batch)")
            con.execute(f"INSERT INTO search_words {_TOKENIZE} ORDER BY word")
            con.execute("INSERT OR REPLACE INTO search_indexed SELECT arxiv_id, version "
                        "FROM papers WHERE arxiv_id IN (SELECT arxiv_id FROM batch)")
    if stale:
        _resort_when_fragmented(db_path, len(stale))
    return len(stale)


def _resort_when_fragmented(db_path: Path, indexed_now: int) -> None:
    """Rows appended since the last sort sit in row groups spanning a..z that every lookup
    must read; once they are a fifth of the index, sort the whole table again."""
    with transaction(db_path) as con:
        row = con.execute("SELECT value FROM reader_state "
                          "WHERE key = 'search_unsorted_papers'").fetchone()
        since_sort = int(row[0] if row else 0) + indexed_now
        total = con.execute("SELECT count(*) FROM search_indexed").fetchone()[0]
        if since_sort * 5 >= total or since_sort == total:
            con.execute("CREATE OR REPLACE TABLE search_words AS "
                        "SELECT * FROM search_words ORDER BY word")
            since_sort = 0
        con.execute("INSERT INTO reader_state (key, value) VALUES ('search_unsorted_papers', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
                    [str(since_sort)])


# ---- the in-process copy ----------------------------------------------------------

@dataclass(frozen=True)
class Words:
    """Word postings: the rows holding each word, words sorted, so the words starting with
    a prefix are one contiguous run and their rows one slice."""

    vocabulary: list[str]
    offsets: np.ndarray
    rows: np.ndarray

    def mark(self, prefix: str, hits: np.ndarray) -> None:
        """Set ``hits[row]`` for every row with a word starting with ``prefix``."""
        low = bisect_left(self.vocabulary, prefix)
        # '{' sorts right after 'z', so [w, w + '{') is every word starting with w.
        high = bisect_left(self.vocabulary, prefix + "{", low)
        hits[self.rows[self.offsets[low]:self.offsets[high]]] = True


def _words_from_pairs(words, rows: np.ndarray) -> Words:
    """Postings from ``(word, row)`` pairs in any order; pairs with ``row < 0`` are dropped.
    Hash kernels over Arrow strings: 10M pairs in about a second."""
    vocabulary = pc.unique(words)
    vocabulary = vocabulary.take(pc.sort_indices(vocabulary))
    word_ids = np.asarray(pc.index_in(words, value_set=vocabulary).to_numpy(), np.int32)
    kept = rows >= 0
    word_ids, rows = word_ids[kept], rows[kept]
    offsets = np.zeros(len(vocabulary) + 1, np.int64)
    np.cumsum(np.bincount(word_ids, minlength=len(vocabulary)), out=offsets[1:])
    return Words(vocabulary.to_pylist(), offsets,
                 rows[np.argsort(word_ids, kind="stable")].astype(np.int32))


def _author_words(authors, first_row: int) -> Words:
    """Postings of the words of author names (tokenized as ``search_words`` does), for the
    rows ``first_row`` onwards whose ``authors`` lists these are. Arrow kernels: the 450k
    names of 75k papers in a fraction of a second."""
    authors = authors.combine_chunks() if isinstance(authors, pa.ChunkedArray) else authors
    name_rows = pc.list_parent_indices(authors).to_numpy().astype(np.int64) + first_row
    parts = pc.split_pattern_regex(pc.utf8_lower(pc.list_flatten(authors)), "[^a-z0-9]+")
    words = pc.list_flatten(parts)
    rows = name_rows[pc.list_parent_indices(parts).to_numpy()]
    kept = pc.not_equal(words, "")
    return _words_from_pairs(words.filter(kept),
                             rows[kept.to_numpy(zero_copy_only=False)].astype(np.int32))


def _words_from_texts(texts: dict[int, list[str]]) -> Words:
    """Postings for a few rows tokenized here (papers the word table lacks)."""
    pairs = [(word, row) for row, words in texts.items() for word in words]
    return _words_from_pairs(pa.array([word for word, _ in pairs], pa.string()),
                             np.array([row for _, row in pairs], np.int32))


@dataclass(frozen=True)
class Snapshot:
    """Every stored paper as a row (a replaced paper's old row stays, marked not alive)."""

    marks: tuple
    """The table fingerprint it was loaded at (see ``_MARKS``)."""
    cards: pa.Table
    ids: list[str]
    row_of: dict[str, int]
    alive: np.ndarray
    versions: np.ndarray
    day: np.ndarray
    """Days since 1970 of the listing day, else of the publication date (else ``NO_DAY``)."""
    newest: np.ndarray
    """Live rows ordered newest listing first, as ``reading.browse`` orders them."""
    category_rows: np.ndarray
    category_names: pa.Array
    """``categories`` flattened: the row of each entry, and its name."""
    last_seen: datetime | None
    states: np.ndarray = None
    state_names: tuple[str, ...] = ("inbox",)
    """Reading state of each row as an index into ``state_names`` (0 is ``inbox``)."""
    scores: np.ndarray = None
    """The model's family scores (rows x CODES; NaN where unscored)."""
    model_labels: pa.Array = None
    model_labeled: np.ndarray = None
    """The model's family labels, as lists and as booleans (rows x CODES)."""
    reader_labels: dict[int, list[str]] = field(default_factory=dict)
    reader_labeled: np.ndarray = None
    """The reader's labels (they win over the model's), as lists and booleans."""
    words: tuple[Words, ...] | None = None
    """Postings, from the word table then the rows tokenized here; None until needed."""
    author_words: tuple[Words, ...] | None = None
    """Postings of the words of author names (built here with ``words``); None until needed."""
    vectors: np.ndarray | None = None
    """Unit vectors of the current encoder (rows x 384, zero where none); None until needed."""
    has_vector: np.ndarray | None = None

    @property
    def paper_count(self) -> int:
        return len(self.newest)

    @property
    def vector_count(self) -> int:
        """Stored embeddings of the current encoder (known without loading them)."""
        return self.marks[2]

    def labels_of(self, row: int) -> list[str] | None:
        """The family labels shown for a row (None: not classified yet)."""
        if row in self.reader_labels:
            return self.reader_labels[row]
        return self.model_labels[row].as_py()


_MARKS = """
    SELECT (SELECT count(*) FROM papers), (SELECT max(last_seen) FROM papers),
           (SELECT count(*) FROM embeddings WHERE encoder = $encoder),
           (SELECT max(created_at) FROM embeddings WHERE encoder = $encoder),
           (SELECT count(*) FROM family_scores), (SELECT max(scored_at) FROM family_scores)"""


@dataclass
class _Held:
    """One database's snapshot, the file stat it is valid for, and the refresh lock."""

    snapshot: Snapshot | None = None
    stamp: tuple | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_held: OrderedDict[str, _Held] = OrderedDict()
_held_lock = threading.Lock()


def current(db_path: Path | str, words: bool = False, vectors: bool = False) -> Snapshot:
    """The index of ``db_path`` as the database is now; ``words`` and ``vectors`` ask for
    the postings and the embeddings too (each is loaded the first time a query needs it)."""
    db_path = Path(db_path)
    held = _holder(db_path)
    stamp = _file_stamp(db_path)
    if _fresh(held, stamp, words, vectors):
        return held.snapshot
    with held.lock:
        if _fresh(held, stamp, words, vectors):
            return held.snapshot  # another thread refreshed it meanwhile
        try:
            snapshot = _refresh(db_path, held.snapshot, words, vectors)
        except DatabaseBusy:
            if not _usable(held.snapshot, words, vectors):
                raise
            return held.snapshot  # a writer holds the file: the last view is close enough
        held.snapshot = snapshot
        held.stamp = None if stamp is None or _racy(stamp) else stamp
    return snapshot


def forget(db_path: Path | str | None = None) -> None:
    """Drop the held index of one database (or of all), so the next query loads it cold."""
    with _held_lock:
        if db_path is None:
            _held.clear()
        else:
            _held.pop(str(Path(db_path).resolve()), None)


def _holder(db_path: Path) -> _Held:
    key = str(db_path.resolve())
    with _held_lock:
        held = _held.pop(key, None) or _Held()
        _held[key] = held
        while len(_held) > _HELD_DATABASES:
            _held.popitem(last=False)
    return held


def _fresh(held: _Held, stamp: tuple | None, words: bool, vectors: bool) -> bool:
    return stamp is not None and stamp == held.stamp and _usable(held.snapshot, words, vectors)


def _usable(snapshot: Snapshot | None, words: bool, vectors: bool) -> bool:
    return (snapshot is not None and (not words or snapshot.author_words is not None)
            and (not vectors or snapshot.vectors is not None))


def _file_stamp(db_path: Path) -> tuple | None:
    """What changes whenever DuckDB writes: inode, size and mtime of the file and its WAL."""
    stamp = []
    for path in (db_path, db_path.with_name(db_path.name + ".wal")):
        try:
            info = os.stat(path)
        except FileNotFoundError:
            if path == db_path:
                return None
            stamp.append(None)
            continue
        stamp.append((info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


def _racy(stamp: tuple) -> bool:
    newest = max(part[2] for part in stamp if part is not None)
    return time.time_ns() - newest < RACY_SECONDS * 1e9


def _refresh(db_path: Path, old: Snapshot | None, words: bool, vectors: bool) -> Snapshot:
    # Holding an index, wait for a busy writer only briefly (then the old view serves).
    wait = {} if old is None else {"timeout_seconds": BUSY_WAIT_SECONDS}
    with connect(db_path, read_only=True, **wait) as con:
        marks = con.execute(_MARKS, {"encoder": ENCODER_NAME}).fetchone()
        snapshot, added = _papers(con, old, marks)
        if added is None or added or old.marks[4:] != marks[4:]:
            snapshot = _families(con, snapshot)
        snapshot = _reader_tables(con, snapshot)
        if words or snapshot.words is not None:
            snapshot = _words(con, snapshot, added)
        if vectors or snapshot.vectors is not None:
            snapshot = _vectors(con, snapshot, old, added)
    return snapshot


# -- papers: the rows, their card fields and filter columns

def _papers(con, old: Snapshot | None, marks: tuple) -> tuple[Snapshot, dict | None]:
    """The papers part, and the rows appended since ``old`` with their text (None: every
    row was loaded again)."""
    if old is not None and old.marks[:2] == marks[:2]:
        return replace(old, marks=marks), {}
    if old is not None and None not in (old.last_seen, marks[1]) and marks[1] >= old.last_seen:
        # A stored or replaced paper gets last_seen = now() inside a writer's transaction,
        # which began after this process last read (DuckDB locks the file for a writer).
        changed = _arrow(con.execute(f"SELECT {_PAPER_FIELDS}, {_TEXT} FROM papers "
                                     "WHERE last_seen > ?", [old.last_seen]))
        snapshot = _append_papers(old, changed, marks)
        if snapshot.paper_count == marks[0]:
            start = len(old.ids)
            return snapshot, dict(enumerate(changed.column("text").to_pylist(), start))
        log.info("search index out of step with the papers table; loading it again")
    return _all_papers(_arrow(con.execute(f"SELECT {_PAPER_FIELDS} FROM papers")), marks), None


def _arrow(cursor) -> pa.Table:
    return cursor.to_arrow_table().combine_chunks()


def _all_papers(table: pa.Table, marks: tuple) -> Snapshot:
    ids = table.column("arxiv_id").to_pylist()
    return _ordered(Snapshot(
        marks=marks, cards=table.select(_CARD_COLUMNS), ids=ids,
        row_of={arxiv_id: row for row, arxiv_id in enumerate(ids)},
        alive=np.ones(len(ids), bool), versions=table.column("version").to_numpy(),
        day=_days(table.column("day")), newest=np.zeros(0, np.int64),
        category_rows=np.zeros(0, np.int64), category_names=pa.array([], pa.string()),
        last_seen=_max(table.column("last_seen"))))


def _append_papers(old: Snapshot, changed: pa.Table, marks: tuple) -> Snapshot:
    """``old`` with new and replaced papers appended (a replaced paper's old row dies).
    Families and states are read again after this."""
    start = len(old.ids)
    ids = old.ids + changed.column("arxiv_id").to_pylist()
    row_of = dict(old.row_of)
    alive = np.concatenate([old.alive, np.ones(changed.num_rows, bool)])
    for row, arxiv_id in enumerate(ids[start:], start):
        if arxiv_id in row_of:
            alive[row_of[arxiv_id]] = False
        row_of[arxiv_id] = row
    return _ordered(replace(
        old, marks=marks, ids=ids, row_of=row_of, alive=alive,
        cards=pa.concat_tables([old.cards, changed.select(_CARD_COLUMNS)]).combine_chunks(),
        versions=np.concatenate([old.versions, changed.column("version").to_numpy()]),
        day=np.concatenate([old.day, _days(changed.column("day"))]),
        last_seen=max(old.last_seen, _max(changed.column("last_seen")))))


def _days(column) -> np.ndarray:
    days = pc.fill_null(column.cast(pa.int32()), NO_DAY)
    return np.asarray(days.to_numpy(), np.int32)


def _max(column):
    return pc.max(column).as_py() if len(column) else None


def _ordered(snapshot: Snapshot) -> Snapshot:
    """What depends on every row: the newest-first order, the flattened categories."""
    listed = _days(snapshot.cards.column("listed_date")).astype(np.int64)
    id_rank = np.empty(len(snapshot.ids), np.int64)
    id_rank[pc.sort_indices(snapshot.cards.column("arxiv_id")).to_numpy()] = \
        np.arange(len(snapshot.ids))
    # Newest listing first, then the higher id; papers without a listing day last.
    order = np.lexsort((-id_rank, -listed))
    categories = snapshot.cards.column("categories").combine_chunks()
    return replace(snapshot, newest=order[snapshot.alive[order]],
                   category_rows=pc.list_parent_indices(categories).to_numpy(),
                   category_names=pc.list_flatten(categories))


def _rows_of(snapshot: Snapshot, arxiv_ids) -> np.ndarray:
    """The current row of each id (-1 for an id not held)."""
    return np.array([snapshot.row_of.get(arxiv_id, -1) for arxiv_id in arxiv_ids.to_pylist()],
                    np.int64)


# -- families and reading states

def _families(con, snapshot: Snapshot) -> Snapshot:
    """The model's scores and labels (read whole, when they or the papers changed)."""
    columns = ", ".join(code.lower() for code in CODES)
    table = _arrow(con.execute(f"SELECT arxiv_id, labels, {columns} FROM family_scores"))
    rows = _rows_of(snapshot, table.column("arxiv_id"))
    kept = rows >= 0
    scores = np.full((len(snapshot.ids), len(CODES)), np.nan)
    scores[rows[kept]] = np.column_stack(
        [table.column(code.lower()).to_numpy() for code in CODES])[kept]
    source = np.full(len(snapshot.ids), -1)  # the table row holding each snapshot row
    source[rows[kept]] = np.flatnonzero(kept)
    labels = table.column("labels").take(pa.array(source, mask=source < 0))
    return replace(snapshot, scores=scores, model_labels=labels,
                   model_labeled=_label_matrix(labels))


def _label_matrix(labels: pa.Array) -> np.ndarray:
    """Booleans (rows x CODES) from a list array of family codes."""
    matrix = np.zeros((len(labels), len(CODES)), bool)
    codes = pc.index_in(pc.list_flatten(labels), value_set=pa.array(CODES))
    codes = np.asarray(pc.fill_null(codes, -1).to_numpy(), np.int64)
    rows = pc.list_parent_indices(labels).to_numpy()
    matrix[rows[codes >= 0], codes[codes >= 0]] = True
    return matrix


def _reader_tables(con, snapshot: Snapshot) -> Snapshot:
    """Reading states and the reader's labels: small tables the app itself writes, so they
    are read whole on every refresh."""
    states = _arrow(con.execute("SELECT arxiv_id, state FROM reading"))
    names = ("inbox", *sorted(set(states.column("state").to_pylist()) - {"inbox"}))
    codes = np.zeros(len(snapshot.ids), np.int8)
    for row, state in zip(_rows_of(snapshot, states.column("arxiv_id")),
                          states.column("state").to_pylist()):
        if row >= 0:
            codes[row] = names.index(state)
    labeled = _arrow(con.execute("SELECT arxiv_id, labels FROM reader_labels"))
    reader = {int(row): list(labels) for row, labels in
              zip(_rows_of(snapshot, labeled.column("arxiv_id")),
                  labeled.column("labels").to_pylist()) if row >= 0}
    matrix = np.zeros((len(snapshot.ids), len(CODES)), bool)
    for row, labels in reader.items():
        matrix[row] = [code in labels for code in CODES]
    return replace(snapshot, states=codes, state_names=names, reader_labels=reader,
                   reader_labeled=matrix)


# -- words: postings from the word table, plus rows tokenized here

def _words(con, snapshot: Snapshot, added: dict | None) -> Snapshot:
    if snapshot.author_words is not None and added is not None:
        if not added:
            return snapshot
        extra = _words_from_texts({row: search_words(text) for row, text in added.items()})
        first = min(added)
        names = _author_words(snapshot.cards.column("authors").slice(first), first)
        return replace(snapshot, words=(*snapshot.words, extra),
                       author_words=(*snapshot.author_words, names))
    # The word table holds the words of the version it indexed; rows of another version
    # (or not indexed at all) are tokenized here. Matching ids in Arrow, not in a DuckDB
    # join, halves the load (measured at 75k papers).
    indexed = con.execute("SELECT arxiv_id, version FROM search_indexed").to_arrow_table()
    rows = _rows_of(snapshot, indexed.column("arxiv_id"))
    held = rows >= 0
    current = np.zeros(len(rows), bool)
    current[held] = snapshot.alive[rows[held]] & (
        snapshot.versions[rows[held]] == indexed.column("version").to_numpy()[held])
    pairs = con.execute("SELECT word, arxiv_id FROM search_words").to_arrow_table()
    ids = indexed.column("arxiv_id").filter(pa.array(current)).combine_chunks()
    found = pc.index_in(pairs.column("arxiv_id"), value_set=ids)
    found = np.asarray(pc.fill_null(found, -1).to_numpy(), np.int64)
    row_at = np.append(rows[current], -1)  # found = -1 (an id not current) maps to row -1
    base = _words_from_pairs(pairs.column("word"), row_at[found])
    del pairs, found
    stale = snapshot.alive.copy()
    stale[rows[current]] = False
    con.register("stale_ids", pa.table({"arxiv_id": [snapshot.ids[row]
                                                     for row in np.flatnonzero(stale)]}))
    texts = con.execute(f"SELECT arxiv_id, {_TEXT} FROM papers "
                        "WHERE arxiv_id IN (SELECT arxiv_id FROM stale_ids)").fetchall()
    con.unregister("stale_ids")
    extra = _words_from_texts({snapshot.row_of[arxiv_id]: search_words(text)
                               for arxiv_id, text in texts})
    return replace(snapshot, words=(base, extra),
                   author_words=(_author_words(snapshot.cards.column("authors"), 0),))


def _held_rows(snapshot: Snapshot, rows: np.ndarray) -> pa.Table:
    return pa.table({"arxiv_id": pa.array([snapshot.ids[row] for row in rows], pa.string()),
                     "version": pa.array(snapshot.versions[rows], pa.int32()),
                     "row": pa.array(rows, pa.int64())})


# -- vectors: the current version's embedding of each row, as unit vectors

def _vectors(con, snapshot: Snapshot, old: Snapshot | None, added: dict | None) -> Snapshot:
    if snapshot.vectors is not None and added is not None:
        if not added and old.marks[2:4] == snapshot.marks[2:4]:
            return snapshot
        grow = len(snapshot.ids) - len(snapshot.vectors)
        matrix = np.concatenate([snapshot.vectors, np.zeros((grow, DIMENSIONS), np.float32)])
        has = np.concatenate([snapshot.has_vector, np.zeros(grow, bool)])
    else:
        matrix = np.zeros((len(snapshot.ids), DIMENSIONS), np.float32)
        has = np.zeros(len(snapshot.ids), bool)
    missing = np.flatnonzero(snapshot.alive & ~has)
    if len(missing):
        con.register("held_rows", _held_rows(snapshot, missing))
        found = _arrow(con.execute("""
            SELECT h.row, e.vector FROM embeddings e
            JOIN held_rows h ON h.arxiv_id = e.arxiv_id AND h.version = e.version
            WHERE e.encoder = ?""", [ENCODER_NAME]))
        con.unregister("held_rows")
        rows = found.column("row").to_numpy()
        flat = found.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vectors = np.asarray(flat, np.float32).reshape(-1, DIMENSIONS)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        matrix[rows] = vectors / np.where(norms > 0, norms, 1)  # cosine = dot of unit vectors
        has[rows] = True
    return replace(snapshot, vectors=matrix, has_vector=has)
