"""The Inbox's "for you" order (pipeline/stages/ranking.py): the model on real labeled papers
with their shipped embeddings, stored in a real DuckDB file; the reader's signals; and the
offline measurement (simulated readers, NDCG@10 against newest first)."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest

from pipeline.core.families import CODES
from pipeline.core.paper import Paper, abs_url, clean_text, pdf_url
from pipeline.stages import ranking
from pipeline.stages.families import READ_LABELS, classify_embedded, current_head, data_file
from storage import reading
from storage.families import store_results
from storage.papers import upsert_papers

INBOX_DAY, HISTORY_DAY = "2026-06-30", "2026-01-05"


def labeled_rows() -> list[dict]:
    """The papers labeled by reading, with their shipped vector (``vector``)."""
    rows = [json.loads(line) for line in data_file(READ_LABELS).read_text(
        encoding="utf-8").splitlines() if line.strip()]
    with np.load(data_file("families_embeddings.npz"), allow_pickle=False) as data:
        by_id = dict(zip(data["ids"].tolist(), data["vectors"].astype(np.float32)))
    return [{**row, "vector": by_id[row["arxiv_id"]]} for row in rows if row["arxiv_id"] in by_id]


def store_labeled_papers(db_path, history: int = 120, inbox: int = 80, seed: int = 0,
                         summaries: bool = False) -> dict:
    """Store real labeled papers as the classify stage would (shipped vectors, the shipped
    head's scores and labels): ``history`` of the training split listed on HISTORY_DAY (for
    the reader to act on) and ``inbox`` held-out ones listed on INBOX_DAY (the newest day:
    the Inbox of a first visit); with ``summaries``, the extractive backend's summaries too.
    Returns ``{"history": rows, "inbox": rows}``; each row keeps its read labels."""
    rows = labeled_rows()
    generator = np.random.default_rng(seed)
    train = [rows[i] for i in generator.permutation(len(rows)) if rows[i]["split"] == "train"]
    held = [rows[i] for i in generator.permutation(len(rows)) if rows[i]["split"] == "heldout"]
    chosen = {"history": train[:history], "inbox": held[:inbox]}
    for name, day in (("history", HISTORY_DAY), ("inbox", INBOX_DAY)):
        _store(db_path, chosen[name], day, summaries)
    return chosen


def _store(db_path, rows: list[dict], day: str, summaries: bool) -> None:
    papers = [Paper(
        arxiv_id=row["arxiv_id"], version=1, title=clean_text(row["title"]),
        authors=("A. Reader",), abstract=clean_text(row["abstract"]),
        categories=tuple(row["categories"]), primary_category=row["categories"][0],
        published=datetime.fromisoformat(day).replace(tzinfo=timezone.utc),
        abs_url=abs_url(row["arxiv_id"]), pdf_url=pdf_url(row["arxiv_id"]),
        announce_type="new", listed_date=day) for row in rows]
    upsert_papers(db_path, papers)
    if summaries:
        from pipeline.stages.summaries.extractive import ExtractiveSummarizer
        from storage.summaries import save_summaries

        save_summaries(db_path, ExtractiveSummarizer().summarize(papers))
    vectors = np.stack([row["vector"] for row in rows])
    scored = classify_embedded(current_head(), [r["arxiv_id"] for r in rows],
                               [r["title"] for r in rows], [r["abstract"] for r in rows], vectors)
    store_results(db_path, [{"arxiv_id": r["arxiv_id"], "version": 1, "vector": v}
                            for r, v in zip(rows, vectors)],
                  [{"arxiv_id": c.arxiv_id, "version": 1, "scores": c.scores, "labels": c.labels}
                   for c in scored], current_head().version)


def likes(row: dict, taste: set[str]) -> bool:
    """Whether a reader of ``taste`` (family codes) likes the paper, by its read labels."""
    return bool(taste & set(row["labels"]))


@pytest.fixture
def library(settings):
    return store_labeled_papers(settings.db_path)


# ---- pieces ---------------------------------------------------------------------------

def test_ndcg_at_10_of_known_orders():
    assert ranking.ndcg_at([1, 1, 0, 0]) == 1.0
    assert ranking.ndcg_at([0, 0, 0]) == 0.0
    # One relevant paper in third place: 1/log2(4) over the ideal 1/log2(2).
    assert ranking.ndcg_at([0, 0, 1, 0]) == pytest.approx(0.5)
    # Only the first ten count: a relevant paper in eleventh place gains nothing.
    assert ranking.ndcg_at([0] * 10 + [1]) == 0.0


@pytest.mark.parametrize("rows", [12, 600])  # fewer actions than inputs (Woodbury), and more
def test_fit_reaches_the_optimum_of_the_penalized_likelihood(rows):
    generator = np.random.default_rng(rows)
    design = generator.standard_normal((rows, 40))
    targets = (generator.random(rows) < 0.3).astype(float)
    weights = generator.random(rows) + 0.5
    offsets = generator.standard_normal(rows)
    learned, intercept = ranking.fit_logistic(design, targets, weights, offsets, l2=1.0)
    theta = np.append(learned, intercept)
    with_bias = np.hstack([design, np.ones((rows, 1))])
    probability = 1 / (1 + np.exp(-(offsets + with_bias @ theta)))
    penalty = np.append(np.ones(40), 1e-2)
    gradient = with_bias.T @ (weights * (probability - targets)) + penalty * theta
    assert np.max(np.abs(gradient)) < 1e-2


def test_a_rating_speaks_before_a_thumb_and_a_thumb_before_the_state():
    rated = ranking.example_of({"arxiv_id": "a", "state": "dismissed", "rating": 5, "thumb": -1})
    assert (rated.target, rated.action) == (1, "you rated it 5★")
    thumbed = ranking.example_of({"arxiv_id": "b", "state": "queued", "rating": None, "thumb": -1})
    assert (thumbed.target, thumbed.action) == (0, "you gave it 👎")
    queued = ranking.example_of({"arxiv_id": "c", "state": "queued", "rating": None, "thumb": None})
    assert (queued.target, queued.action) == (1, "you queued it")
    assert ranking.example_of({"arxiv_id": "d", "state": "inbox", "rating": None,
                               "thumb": None}) is None


def test_signals_are_stored_thumbs_and_reading_states(settings, library):
    db = settings.db_path
    first, second, third, fourth = (row["arxiv_id"] for row in library["history"][:4])
    reading.set_thumb(db, first, 1)
    reading.set_thumb(db, second, -1)
    reading.set_thumb(db, second, None)  # taken back
    reading.queue_add(db, [third])
    reading.dismiss(db, [fourth])
    reading.set_pick(db, "2026-W27", library["inbox"][0]["arxiv_id"], "octet")  # not the reader's
    signals = {row["arxiv_id"]: row for row in reading.reader_signals(db)}
    assert set(signals) == {first, third, fourth}
    assert (signals[first]["thumb"], signals[third]["state"], signals[fourth]["state"]) == (
        1, "queued", "dismissed")
    assert reading.thumbs_of(db, [first, second]) == {first: 1}
    with pytest.raises(ValueError, match="1, -1 or None"):
        reading.set_thumb(db, first, 2)
    with pytest.raises(reading.NotStored, match="octet fetch"):
        reading.set_thumb(db, "2501.99999", 1)


# ---- the order, from the store ----------------------------------------------------------

def test_cold_start_puts_papers_of_a_family_before_papers_of_none(settings, library):
    ids = [row["arxiv_id"] for row in library["inbox"]]
    ranked = ranking.rank(settings.db_path, ids)
    labeled = [bool(paper.labels) for paper in ranked]
    assert any(labeled) and not all(labeled)
    assert labeled == sorted(labeled, reverse=True)  # every family paper before any of none
    assert ranked[-1].why.startswith("no family fits")


def test_the_readers_actions_reorder_the_inbox_and_say_why(settings, library):
    db, taste = settings.db_path, {"SAM", "LAM"}
    for row in library["history"]:  # rate what they read, dismiss the rest
        if likes(row, taste):
            reading.mark_read(db, row["arxiv_id"], "2026-W02", 5)
    reading.dismiss(db, [row["arxiv_id"] for row in library["history"]
                         if not likes(row, taste) and row["labels"] != ["none"]])
    inbox = library["inbox"]
    liked = {row["arxiv_id"] for row in inbox if likes(row, taste)}
    assert 0 < len(liked) < len(inbox) / 2
    ranked = ranking.rank(db, [row["arxiv_id"] for row in inbox])
    newest = ranking.rank(db, [row["arxiv_id"] for row in inbox], "newest")
    ndcg = {name: ranking.ndcg_at([p.arxiv_id in liked for p in order])
            for name, order in (("for you", ranked), ("newest", newest))}
    assert ndcg["for you"] > ndcg["newest"] + 0.3, ndcg
    assert ranked[0].arxiv_id in liked
    assert ranked[0].why.split(":")[1].strip().startswith("you liked")  # "LAM 0.92: you liked 6 LAM papers"
    # The closest paper the reader liked is named (from a cosine of 0.5).
    assert any("(you rated it 5★; similarity 0." in p.why for p in ranked[:5])


def test_newest_and_family_score_orders_and_the_family_filter(settings, library):
    ids = [row["arxiv_id"] for row in library["inbox"]]
    newest_first = sorted(ids, reverse=True)  # one listing day: the newer id first
    assert [p.arxiv_id for p in ranking.rank(settings.db_path, newest_first, "newest")] == newest_first
    by_score = ranking.rank(settings.db_path, ids, "family score")
    scores = [p.score for p in by_score]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    vlm = ranking.rank(settings.db_path, ids, "family score", family="VLM")
    assert vlm and all("VLM" in p.labels for p in vlm)
    with pytest.raises(ValueError, match="for you, newest, family score"):
        ranking.rank(settings.db_path, ids, "random")


# ---- the offline measurement ------------------------------------------------------------

def test_simulated_readers_inbox_beats_newest_first_clearly():
    """Sixteen simulated readers (each family alone and eight pairs) rate twenty papers
    each, the top of their own order each time; their Inboxes (held-out papers, never
    trained on, by the head or by them) are ranked against newest first. Fixed seed."""
    result = ranking.simulate_readers(ranking.labeled_papers(), inboxes=3, seed=0)
    mean = result["mean"]
    assert result["ratings"] == 20 and result["inboxes"] == 16 * 3
    assert mean["for you"] >= 2 * mean["newest first"], mean
    assert mean["for you"] >= mean["newest first"] + 0.3, mean
    assert mean["for you"] > mean["for you, no ratings yet"] + 0.2, mean  # the ratings count
    per_taste = defaultdict(list)
    for row in result["readers"]:
        per_taste[row["taste"]].append(row["for you"] - row["newest first"])
    assert sum(np.mean(gains) > 0 for gains in per_taste.values()) >= 14, dict(per_taste)
    assert set(CODES) <= set(per_taste)
