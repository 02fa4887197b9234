"""The Inbox's "for you" order: a per-reader model of what the reader wants to read.

A logistic regression (numpy) over each paper's stored encoder vector and its eight family
scores, trained on the reader's own actions — ratings, thumbs up/down, the queue, reads,
dismissals — and retrained whenever the Inbox is shown (a few milliseconds for hundreds of
actions), so every action counts at once. Cold start is family fit: an offset that puts
papers of one of the eight families before papers of none, which the learned part then
corrects (a reader who dismisses every LLM paper soon sees them last).

``simulate_readers`` measures it offline: readers drawn from the labeled papers who like
one or two families give twenty ratings; their Inbox's NDCG@10 is compared with newest first.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.families import CODES
from pipeline.core.text import DIMENSIONS
from storage import reading as store
from storage.families import families_for

log = logging.getLogger(__name__)

ORDERS = ("for you", "newest", "family score")
"""The Inbox's orders; the first is the default."""

EMBEDDING_SCALE = 2.0
"""Multiplier of the (unit-length) encoder vector in the model's input."""
FAMILY_SCALE = 2.0
"""Multiplier of the family scores in the model's input."""
COLD_START = 2.0
"""Weight of family fit (the highest family score, centred on 0.5) in every score: the
order before any action, and the prior the reader's actions correct."""
L2 = 1.0
"""L2 penalty on the learned weights (not the intercept)."""
MAX_EXAMPLES = 2000
"""The most recent actions the model learns from (older ones are left out)."""
CLOSE = 0.5
"""Cosine from which a candidate is said to be close to a paper the reader acted on."""

RATING_SIGNAL = {5: (1, 1.0), 4: (1, 0.8), 3: (1, 0.3), 2: (0, 0.8), 1: (0, 1.0)}
"""A rating's ``(target, weight)``: 3 stars is a mild like, 1-2 a dislike."""
THUMB_SIGNAL = {1: (1, 1.0), -1: (0, 1.0)}
"""A thumb's ``(target, weight)``."""
STATE_SIGNAL = {"queued": (1, 0.8), "pick": (1, 0.8), "read": (1, 0.8),
                "dismissed": (0, 1.0), "skipped": (0, 0.3)}
"""A reading state's ``(target, weight)`` when the paper has no rating or thumb."""


# ---- the reader's examples ----------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """One paper the reader acted on, as the model learns it."""

    arxiv_id: str
    """The paper's id."""

    target: int
    """1: the reader wants papers like it; 0: not."""

    weight: float
    """How much the action counts (a 5-star rating more than a queued paper)."""

    action: str
    """What the reader did, for the "why" line: ``rated it 5★``, ``queued it``, …"""

    title: str = ""
    """The paper's title, for the "why" line."""


def example_of(signal: dict) -> Example | None:
    """The example one ``storage.reading.reader_signals`` row gives (None: no signal). A
    rating speaks first, then a thumb, then the reading state."""
    rating, thumb, state = signal.get("rating"), signal.get("thumb"), signal.get("state")
    if rating in RATING_SIGNAL:
        (target, weight), action = RATING_SIGNAL[rating], f"you rated it {rating}★"
    elif thumb in THUMB_SIGNAL:
        (target, weight), action = THUMB_SIGNAL[thumb], ("you gave it 👍" if thumb > 0
                                                          else "you gave it 👎")
    elif state in STATE_SIGNAL:
        (target, weight), action = STATE_SIGNAL[state], _STATE_ACTIONS[state]
    else:
        return None
    return Example(signal["arxiv_id"], target, weight, action, signal.get("title") or "")


_STATE_ACTIONS = {"queued": "you queued it", "pick": "your pick", "read": "you read it",
                  "dismissed": "you dismissed it", "skipped": "you skipped it"}


# ---- the model --------------------------------------------------------------------------

def family_fit(families: np.ndarray) -> np.ndarray:
    """The cold-start prior of each row of family scores ``(n, 8)``: the highest family
    score, centred on 0.5 and weighted by ``COLD_START``."""
    if families.shape[0] == 0:
        return np.zeros(0)
    return COLD_START * (families.max(axis=1) - 0.5)


def features(vectors: np.ndarray, families: np.ndarray) -> np.ndarray:
    """The model's input: scaled encoder vector then scaled family scores, one row a paper."""
    return np.hstack([EMBEDDING_SCALE * vectors, FAMILY_SCALE * families]).astype(np.float64)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -40, 40)))


def fit_logistic(design: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                 offsets: np.ndarray, l2: float = L2, iterations: int = 300,
                 tolerance: float = 1e-5) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression with a fixed per-row offset (the prior); returns
    ``(weights, intercept)``. The intercept is barely penalized, so a reader who only
    dismisses still gets an order among what remains.

    Newton's method. While the reader has fewer actions than the model has inputs, each
    step solves the ``rows x rows`` form (Woodbury): a few milliseconds. With more actions,
    Böhning's bound (the logistic curvature is at most 1/4) keeps the step matrix the same
    at every step, so the ``inputs x inputs`` matrix is inverted once."""
    rows, dimensions = design.shape
    with_bias = np.hstack([design, np.ones((rows, 1))])
    penalty = np.full(dimensions + 1, float(l2))
    penalty[-1] = 1e-2
    fixed = _solver(with_bias, weights / 4.0, penalty) if rows > dimensions else None
    theta = np.zeros(dimensions + 1)
    for _ in range(iterations):
        probability = _sigmoid(offsets + with_bias @ theta)
        solve = fixed or _solver(with_bias, weights * probability * (1 - probability), penalty)
        step = solve(with_bias.T @ (weights * (probability - targets)) + penalty * theta)
        theta -= step
        if np.max(np.abs(step)) < tolerance:
            break
    return theta[:-1], float(theta[-1])


def _solver(design: np.ndarray, curvature: np.ndarray, penalty: np.ndarray):
    """``g -> (X' C X + D)^-1 g`` for diagonal ``C`` and ``D``, factored once, through
    whichever of the two sides of ``X`` is smaller."""
    rows, dimensions = design.shape
    if rows > dimensions:
        inverse = np.linalg.inv((design.T * curvature) @ design + np.diag(penalty))
        return lambda gradient: inverse @ gradient
    scaled = design / penalty  # X D^-1
    inner = np.linalg.inv(np.eye(rows) + curvature[:, None] * (scaled @ design.T))
    return lambda gradient: gradient / penalty - scaled.T @ (
        inner @ (curvature * (scaled @ gradient)))


@dataclass(frozen=True)
class ReaderModel:
    """What the reader's actions say, ready to score and explain candidates."""

    weights: np.ndarray
    """Learned weights over ``features`` (zeros before any action)."""

    intercept: float = 0.0
    """Learned intercept (does not change the order)."""

    examples: tuple[Example, ...] = ()
    """The actions it learned from."""

    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DIMENSIONS)))
    """The examples' encoder vectors (rows of ``examples`` that had one)."""

    vector_rows: tuple[int, ...] = ()
    """For each row of ``vectors``, its index in ``examples``."""

    family_votes: dict = field(default_factory=dict)
    """Per family code: ``(liked, disliked)``, how many examples of each it labels."""

    def scores(self, vectors: np.ndarray, families: np.ndarray) -> np.ndarray:
        """Each candidate's logit: family fit plus what the reader's actions learned."""
        if vectors.shape[0] == 0:
            return np.zeros(0)
        # Split rather than stacked (no copy of the candidates' vectors), and einsum rather
        # than BLAS: a matrix-vector product this small gains nothing from BLAS threads,
        # which on two busy cores made it 10-50x slower (measured in the simulation).
        learned = (EMBEDDING_SCALE * np.einsum("ij,j->i", vectors, self.weights[:DIMENSIONS])
                   + FAMILY_SCALE * np.einsum("ij,j->i", families, self.weights[DIMENSIONS:]))
        return family_fit(families) + learned + self.intercept

    def why(self, vector: np.ndarray | None, labels: list | None, scores: dict) -> str:
        """One line on why a candidate stands where it does (plain text: escape it), from
        its family ``labels`` (None: not classified yet) and the model's ``scores``."""
        parts = [_family_reason(labels, scores, self.family_votes)]
        nearest = self._nearest(vector)
        if nearest is not None:
            example, similarity = nearest
            parts.append(f"close to “{_short(example.title)}” ({example.action}; "
                         f"similarity {similarity:.2f})")
        return " · ".join(part for part in parts if part)

    def _nearest(self, vector: np.ndarray | None) -> tuple[Example, float] | None:
        """The closest paper the reader liked, else the closest they did not (from
        ``CLOSE`` on): what the reader will recognise."""
        if vector is None or not self.vector_rows:
            return None
        similarity = self.vectors @ vector
        liked = np.array([self.examples[row].target == 1 for row in self.vector_rows])
        for side in (liked, ~liked):
            if side.any() and similarity[side].max() >= CLOSE:
                best = int(np.flatnonzero(side)[np.argmax(similarity[side])])
                return self.examples[self.vector_rows[best]], float(similarity[best])
        return None


def _short(title: str, most: int = 60) -> str:
    title = " ".join((title or "").split())
    return title if len(title) <= most else title[:most - 1].rstrip() + "…"


def _family_reason(labels: list | None, scores: dict, votes: dict) -> str:
    if labels is None:
        return "not classified yet"
    if not labels:
        closest = max(scores, key=scores.get) if scores else None
        return "no family fits" + (f" (closest {closest} {scores[closest]:.2f})" if closest else "")
    code = max(labels, key=lambda c: _net(votes, c))  # max keeps the first label on ties
    liked, disliked = votes.get(code, (0, 0))
    fit = f"{code} {scores[code]:.2f}" if code in scores else code
    if liked > disliked:
        return f"{fit}: you liked {_papers(liked, code)}"
    if disliked > liked:
        return f"{fit}: you passed on {_papers(disliked, code)}"
    return fit


def _net(votes: dict, code: str) -> int:
    liked, disliked = votes.get(code, (0, 0))
    return liked - disliked


def _papers(count: int, code: str) -> str:
    return f"{count} {code} paper" + ("" if count == 1 else "s")


def fit_reader_model(examples: list[Example], vectors: dict[str, np.ndarray],
                     families: dict[str, np.ndarray]) -> ReaderModel:
    """Train on the examples that have a vector or family scores (``vectors`` and
    ``families`` by id; family scores as an 8-vector in ``CODES`` order)."""
    usable = [e for e in examples if e.arxiv_id in vectors or e.arxiv_id in families]
    votes = _family_votes(examples, families)
    rows = [i for i, e in enumerate(examples) if e.arxiv_id in vectors]
    matrix = (np.stack([vectors[examples[i].arxiv_id] for i in rows]) if rows
              else np.zeros((0, DIMENSIONS)))
    if not usable:
        return ReaderModel(np.zeros(DIMENSIONS + len(CODES)), 0.0, tuple(examples), matrix,
                           tuple(rows), votes)
    x = np.stack([vectors.get(e.arxiv_id, np.zeros(DIMENSIONS)) for e in usable])
    f = np.stack([families.get(e.arxiv_id, np.zeros(len(CODES))) for e in usable])
    weights, intercept = fit_logistic(
        features(x, f), np.array([e.target for e in usable], dtype=np.float64),
        np.array([e.weight for e in usable]), family_fit(f))
    return ReaderModel(weights, intercept, tuple(examples), matrix, tuple(rows), votes)


def _family_votes(examples: list[Example], families: dict[str, np.ndarray]) -> dict:
    votes: dict[str, tuple[int, int]] = {}
    for example in examples:
        scores = families.get(example.arxiv_id)
        if scores is None:
            continue
        for index in np.flatnonzero(scores >= 0.5):
            liked, disliked = votes.get(CODES[index], (0, 0))
            votes[CODES[index]] = (liked + example.target, disliked + 1 - example.target)
    return votes


# ---- from the store ---------------------------------------------------------------------

def family_matrix(db_path: Path, arxiv_ids: list[str]) -> dict[str, np.ndarray]:
    """Each id's family scores as an 8-vector (``CODES`` order): the model's scores, with
    the families the paper is labeled with (the reader's or the judge's) raised to 1."""
    return _scores_with_labels(families_for(db_path, arxiv_ids))


def vectors_of(db_path: Path, arxiv_ids: list[str]) -> dict[str, np.ndarray]:
    """The stored encoder vectors of the ids that have one."""
    return {arxiv_id: vector.astype(np.float64)
            for arxiv_id, vector in store.embeddings_of(db_path, arxiv_ids).items()}


def reader_model(db_path: Path) -> ReaderModel:
    """The model of the reader's stored actions (the most recent ``MAX_EXAMPLES``)."""
    examples = [e for e in map(example_of, store.reader_signals(db_path)) if e is not None]
    examples = examples[:MAX_EXAMPLES]
    ids = [e.arxiv_id for e in examples]
    return fit_reader_model(examples, vectors_of(db_path, ids), family_matrix(db_path, ids))


@dataclass(frozen=True)
class Ranked:
    """One Inbox paper in the chosen order."""

    arxiv_id: str
    """The paper's id."""

    score: float
    """Its score in this order (higher first)."""

    why: str
    """One line: why it stands here."""

    labels: list | None = None
    """Its family labels (None: not classified yet)."""


def rank(db_path: Path, arxiv_ids: list[str], order: str = "for you", family: str = "",
         model: ReaderModel | None = None) -> list[Ranked]:
    """``arxiv_ids`` (newest first) in ``order`` (one of ``ORDERS``), with a "why" line;
    ``family`` keeps only the papers labeled with that family code."""
    if order not in ORDERS:
        raise ValueError(f"{order!r} is not an order; use one of {', '.join(ORDERS)}")
    records = families_for(db_path, arxiv_ids)
    if family:
        arxiv_ids = [i for i in arxiv_ids if family in records.get(i, {}).get("labels", ())]
    scores_by_id = _scores_with_labels(records)
    matrix = np.stack([scores_by_id.get(i, np.zeros(len(CODES))) for i in arxiv_ids]) \
        if arxiv_ids else np.zeros((0, len(CODES)))
    # Every order gets the reader's "why", so the model and vectors are read for all.
    vectors = vectors_of(db_path, arxiv_ids)
    model = model or reader_model(db_path)
    values = _order_values(order, arxiv_ids, matrix, vectors, model, family)
    ranked = sorted(range(len(arxiv_ids)), key=lambda row: (-values[row], row))
    found = [records.get(arxiv_ids[row]) for row in ranked]
    return [Ranked(arxiv_ids[row], float(values[row]),
                   model.why(vectors.get(arxiv_ids[row]), record and record["labels"],
                             record["scores"] if record else {}),
                   record["labels"] if record else None)
            for row, record in zip(ranked, found)]


def _scores_with_labels(records: dict) -> dict[str, np.ndarray]:
    matrix = {}
    for arxiv_id, record in records.items():
        scores = np.array([record["scores"].get(code, 0.0) for code in CODES])
        for label in record["labels"]:
            if label in CODES:
                scores[CODES.index(label)] = 1.0
        matrix[arxiv_id] = scores
    return matrix


def _order_values(order: str, arxiv_ids: list[str], families: np.ndarray, vectors: dict,
                  model: ReaderModel, family: str) -> np.ndarray:
    count = len(arxiv_ids)
    if order == "newest":  # the ids come newest first
        return -np.arange(count, dtype=np.float64)
    if order == "family score":
        column = families[:, CODES.index(family)] if family else families.max(axis=1) \
            if count else np.zeros(0)
        return column.astype(np.float64)
    matrix = np.stack([vectors.get(i, np.zeros(DIMENSIONS)) for i in arxiv_ids]) if count \
        else np.zeros((0, DIMENSIONS))
    return model.scores(matrix, families)


# ---- offline measurement: simulated readers ----------------------------------------------

def ndcg_at(relevance_in_order: list[float] | np.ndarray, k: int = 10) -> float:
    """Normalized discounted cumulative gain of the first ``k`` (1.0: the best order); 0.0
    when nothing is relevant."""
    relevance = np.asarray(relevance_in_order, dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gain = float((relevance[:k] * discounts[:len(relevance[:k])]).sum())
    ideal = np.sort(relevance)[::-1][:k]
    best = float((ideal * discounts[:len(ideal)]).sum())
    return gain / best if best > 0 else 0.0


@dataclass(frozen=True)
class LabeledPapers:
    """Papers with known families, their shipped vectors and the head's family scores."""

    ids: list[str]
    """Paper ids, one per row."""
    labels: list[frozenset]
    """The families a person read in each paper (empty: none)."""
    days: list[str]
    """Listing day of each paper (``YYYY-MM-DD``), for "newest first"."""
    heldout: np.ndarray
    """True for the held-out split (never trained on): the simulated Inboxes."""
    vectors: np.ndarray
    """Shipped encoder vectors, ``(rows, 384)``."""
    families: np.ndarray
    """The shipped head's family scores, ``(rows, 8)`` (what the app would store)."""


def labeled_papers() -> LabeledPapers:
    """The papers labeled by reading (``pipeline/data/families_read.jsonl``) with their
    shipped embeddings and the shipped head's scores for them."""
    from pipeline.stages.families import READ_LABELS, classify_embedded, current_head, data_file

    rows = [json.loads(line) for line in data_file(READ_LABELS).read_text(
        encoding="utf-8").splitlines() if line.strip()]
    with np.load(data_file("families_embeddings.npz"), allow_pickle=False) as data:
        by_id = dict(zip(data["ids"].tolist(), data["vectors"].astype(np.float32)))
    rows = [row for row in rows if row["arxiv_id"] in by_id]
    vectors = np.stack([by_id[row["arxiv_id"]] for row in rows])
    scored = classify_embedded(current_head(), [r["arxiv_id"] for r in rows],
                               [r["title"] for r in rows], [r["abstract"] for r in rows], vectors)
    return LabeledPapers([r["arxiv_id"] for r in rows],
                         [frozenset(x for x in r["labels"] if x in CODES) for r in rows],
                         [r["listed_date"] or "" for r in rows],
                         np.array([r["split"] == "heldout" for r in rows]),
                         vectors.astype(np.float64),
                         np.array([[c.scores[code] for code in CODES] for c in scored]))


SIMULATED_TASTES: tuple[tuple[str, ...], ...] = (
    *((code,) for code in CODES),
    ("LLM", "MoE"), ("VLM", "LAM"), ("SAM", "LAM"), ("SLM", "LLM"),
    ("LCM", "VLM"), ("MLM", "LLM"), ("MoE", "VLM"), ("SAM", "VLM"))
"""The simulated readers' tastes: each family alone, and eight pairs."""


def simulate_readers(papers: LabeledPapers, tastes=SIMULATED_TASTES, ratings: int = 20,
                     inbox_size: int = 100, inboxes: int = 5, seed: int = 0) -> dict:
    """NDCG@10 of simulated readers' Inboxes. Each reader likes the papers of one or two
    families and rates ``ratings`` papers of the training split, each the top of their own
    "for you" order at that moment (retrained after every rating): 5★ when it is one of
    their families, else 1★. Their Inboxes are ``inboxes`` random draws of ``inbox_size``
    held-out papers (with at least one they like), ordered four ways: for you, for you
    before any rating (family fit), newest first, and highest family score. Returns the
    mean NDCG@10 of each order and the per-reader values."""
    generator = np.random.default_rng(seed)
    history = np.flatnonzero(~papers.heldout)
    pool = np.flatnonzero(papers.heldout)
    per_reader = []
    for taste in tastes:
        liked = np.array([bool(labels & set(taste)) for labels in papers.labels])
        model = _rate_top(papers, history, liked, ratings)
        cold = fit_reader_model([], {}, {})
        for _ in range(inboxes):
            inbox = _draw_inbox(generator, pool, liked, inbox_size)
            per_reader.append({"taste": "+".join(taste), **_inbox_ndcg(papers, inbox, liked,
                                                                       model, cold)})
    orders = [key for key in per_reader[0] if key != "taste"]
    return {"mean": {order: float(np.mean([r[order] for r in per_reader])) for order in orders},
            "readers": per_reader, "ratings": ratings, "inbox_size": inbox_size,
            "inboxes": len(per_reader)}


def _rate_top(papers: LabeledPapers, history: np.ndarray, liked: np.ndarray,
              ratings: int) -> ReaderModel:
    """The reader rates the top of their own order, ``ratings`` times, retraining after each."""
    examples: list[Example] = []
    vectors = {papers.ids[i]: papers.vectors[i] for i in history}
    families = {papers.ids[i]: papers.families[i] for i in history}
    model = fit_reader_model([], {}, {})
    pool_vectors, pool_families = papers.vectors[history], papers.families[history]
    rated = np.zeros(len(history), dtype=bool)
    for _ in range(ratings):
        scores = np.where(rated, -np.inf, model.scores(pool_vectors, pool_families))
        row = int(np.argmax(scores))
        rated[row] = True
        top = history[row]
        rating = 5 if liked[top] else 1
        target, weight = RATING_SIGNAL[rating]
        examples.insert(0, Example(papers.ids[top], target, weight, f"you rated it {rating}★"))
        model = fit_reader_model(examples, vectors, families)
    return model


def _draw_inbox(generator, pool: np.ndarray, liked: np.ndarray, size: int) -> np.ndarray:
    for _ in range(100):
        inbox = generator.choice(pool, size=min(size, len(pool)), replace=False)
        if liked[inbox].any():
            return inbox
    raise ValueError("no inbox with a liked paper: the taste matches no held-out paper")


def _inbox_ndcg(papers: LabeledPapers, inbox: np.ndarray, liked: np.ndarray,
                model: ReaderModel, cold: ReaderModel) -> dict:
    relevance = liked[inbox].astype(np.float64)
    newest = sorted(range(len(inbox)), key=lambda r: (papers.days[inbox[r]],
                                                      papers.ids[inbox[r]]), reverse=True)
    vectors, families = papers.vectors[inbox], papers.families[inbox]
    orders = {"for you": np.argsort(-model.scores(vectors, families), kind="stable"),
              "for you, no ratings yet": np.argsort(-cold.scores(vectors, families),
                                                    kind="stable"),
              "newest first": np.array(newest),
              "family score": np.argsort(-families.max(axis=1), kind="stable")}
    return {name: ndcg_at(relevance[order]) for name, order in orders.items()}
