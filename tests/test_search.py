"""Search on a real DuckDB file: keyword prefixes, filters, semantic, hybrid and similar
papers from the in-process index, and that index following what other connections (and
another process) store. Correctness only; speed is measured in bench/bench_search.py."""
from __future__ import annotations

from storage.search import BrowseFilter, browse
from tests.helpers import nearest_ids, similar_ids
from storage.families import set_reader_labels
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from storage import reading, search, search_index
from tests.helpers import (paper_from_row, store_embeddings, store_families,
                                        store_real_papers)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cold_index():
    """Each test starts without a held index (paths differ anyway; this keeps memory low)."""
    search_index.forget()
    yield
    search_index.forget()


@pytest.fixture
def papers(settings):
    return store_real_papers(settings.db_path, 60)


def _unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _expected(papers, text: str, keep=lambda paper: True) -> list[str]:
    """The brute-force answer: every query word starts a word; newest first."""
    wanted = re.findall(r"[a-z0-9]+", text.lower())
    found = [p for p in papers if keep(p) and all(
        any(word.startswith(w) for word in re.findall(r"[a-z0-9]+",
                                                      (p.title + " " + p.abstract).lower()))
        for w in wanted)]
    found.sort(key=lambda p: (p.listed_date or "", p.arxiv_id), reverse=True)
    return [p.arxiv_id for p in found]


QUERIES = ["segment", "SEGMENTATION", "vision-language", "diffusion mod", "3d", "llm agent",
           "mentation", "zzzq", "the of"]


@pytest.mark.parametrize("indexed", [False, True], ids=["not indexed", "indexed"])
def test_keyword_search_is_word_prefixes_newest_first(settings, papers, indexed):
    db = settings.db_path
    if indexed:
        search_index.refresh_search_index(db)
    for text in QUERIES:
        cards, total = search.find_keyword(db, BrowseFilter(text=text, limit=100))
        expected = _expected(papers, text)
        assert [card["arxiv_id"] for card in cards] == expected, text
        assert total == len(expected)
    cards, total = search.find_keyword(db, BrowseFilter(text="segment", limit=2))
    assert len(cards) == 2 and total == len(_expected(papers, "segment")) > 2
    assert {"title", "abs_url", "state", "labels", "listed_date"} <= set(cards[0])


def test_filters_match_the_sql_browse(settings, papers):
    db = settings.db_path
    ids = [p.arxiv_id for p in papers]
    store_families(db, {ids[0]: ["VLM"], ids[1]: ["VLM", "MoE"], ids[2]: []}, score=0.9)
    store_families(db, {ids[3]: ["VLM"]}, score=0.55)
    set_reader_labels(db, ids[1], ["SAM"])
    reading.queue_add(db, ids[4:8])
    reading.dismiss(db, ids[8:12])
    days = sorted({p.listed_date for p in papers})
    filters = [
        BrowseFilter(),
        BrowseFilter(category=papers[0].categories[-1]),
        BrowseFilter(category="cs.CV", date_from=date.fromisoformat(days[0]),
                             date_to=date.fromisoformat(days[0])),
        BrowseFilter(date_from=date.fromisoformat(days[-1])),
        BrowseFilter(date_to=date(2000, 1, 1)),
        BrowseFilter(states=("queued", "dismissed")),
        BrowseFilter(states=("inbox",), category="cs.CV"),
        BrowseFilter(states=("read",)),
        BrowseFilter(family="VLM"),
        BrowseFilter(family="VLM", min_score=0.6),
        BrowseFilter(family="SAM", min_score=0.99),
        BrowseFilter(arxiv_ids=tuple(ids[::3]) + ("2699.99999",), states=("inbox",)),
        BrowseFilter(arxiv_ids=()),
    ]
    for wanted in filters:
        sql_cards, sql_total = browse(db, wanted)
        cards, total = search.find_keyword(db, wanted)
        assert total == sql_total, wanted
        assert [c["arxiv_id"] for c in cards] == [c["arxiv_id"] for c in sql_cards], wanted
        assert [c["state"] for c in cards] == [c["state"] for c in sql_cards], wanted
    labels = {c["arxiv_id"]: c["labels"] for c in search.find_keyword(
        db, BrowseFilter(limit=100))[0]}
    assert (labels[ids[0]], labels[ids[1]], labels[ids[2]], labels[ids[5]]) == (
        ["VLM"], ["SAM"], [], None)
    with pytest.raises(ValueError, match="not a family"):
        search.find_keyword(db, BrowseFilter(family="XYZ"))


def test_keyword_with_filters(settings, papers):
    db = settings.db_path
    search_index.refresh_search_index(db)
    hits = _expected(papers, "model")
    reading.queue_add(db, hits[:2])
    cards, total = search.find_keyword(db, BrowseFilter(text="model", states=("queued",)))
    assert [c["arxiv_id"] for c in cards] == hits[:2] and total == 2
    category = "cs.CV"
    cards, total = search.find_keyword(db, BrowseFilter(text="model", category=category))
    assert [c["arxiv_id"] for c in cards] == _expected(
        papers, "model", lambda p: category in p.categories)


def test_index_follows_what_other_connections_store(settings, papers, monkeypatch):
    db = settings.db_path
    monkeypatch.setattr(search_index, "RACY_SECONDS", 0.0)  # trust every stat in this test
    search_index.refresh_search_index(db)
    store_embeddings(db, papers, _unit_vectors(len(papers)))
    assert search.find_keyword(db, BrowseFilter(text="quokka"))[1] == 0
    assert search.find_similar(db, papers[0].arxiv_id, 3)
    # A new paper and a new version, stored (not indexed) through their own connections.
    from storage.papers import upsert_papers

    upsert_papers(db, [papers[1].with_changes(arxiv_id="2699.00001", title="Quokkanet")])
    upsert_papers(db, [papers[2].with_changes(version=2, title="Quokkabench")])
    cards, total = search.find_keyword(db, BrowseFilter(text="quokka"))
    assert total == 2 and {c["arxiv_id"] for c in cards} == {"2699.00001", papers[2].arxiv_id}
    assert search.find_keyword(db, BrowseFilter(text=papers[2].title))[1] == 0
    assert search.find_keyword(db, BrowseFilter())[1] == len(papers) + 1
    # The new version has no embedding yet: semantic search leaves it out until it has.
    vector = _unit_vectors(1, seed=7)[0]
    nearest = [c["arxiv_id"] for c in search.find_nearest(db, vector, limit=100)]
    assert papers[2].arxiv_id not in nearest and "2699.00001" not in nearest
    new = [papers[1].with_changes(arxiv_id="2699.00001"), papers[2].with_changes(version=2)]
    store_embeddings(db, new, [vector, -vector])
    nearest = search.find_nearest(db, vector, limit=100)
    assert nearest[0]["arxiv_id"] == "2699.00001" and nearest[0]["score"] == pytest.approx(1)
    assert nearest[-1]["arxiv_id"] == papers[2].arxiv_id
    # States and labels written by the app itself show at once.
    reading.queue_add(db, ["2699.00001"])
    cards, _ = search.find_keyword(db, BrowseFilter(text="quokkanet"))
    assert cards[0]["state"] == "queued"
    set_reader_labels(db, "2699.00001", ["LAM"])
    assert search.find_keyword(db, BrowseFilter(family="LAM"))[1] == 1


def test_a_steady_database_is_searched_without_a_connection(settings, papers, monkeypatch):
    db = settings.db_path
    monkeypatch.setattr(search_index, "RACY_SECONDS", 0.0)
    store_embeddings(db, papers, _unit_vectors(len(papers)))
    query = _unit_vectors(1, 3)[0]
    search.find_hybrid(db, BrowseFilter(text="model"), query)
    opened = []
    real = search_index.connect
    monkeypatch.setattr(search_index, "connect",
                        lambda *args, **kwargs: opened.append(1) or real(*args, **kwargs))
    search.find_hybrid(db, BrowseFilter(text="vision", category="cs.CV"), query)
    search.find_keyword(db, BrowseFilter(states=("inbox",)))
    search.find_similar(db, papers[0].arxiv_id)
    assert opened == []
    reading.dismiss(db, [papers[0].arxiv_id])  # the file changed: one connection, then none
    assert search.find_keyword(db, BrowseFilter(states=("dismissed",)))[1] == 1
    search.find_keyword(db, BrowseFilter(states=("dismissed",)))
    assert opened == [1]


def test_another_process_storing_papers_is_seen(settings, papers):
    db = settings.db_path
    assert search.find_keyword(db, BrowseFilter(text="wombatformer"))[1] == 0
    code = f"""
import sys
sys.path[:0] = [{str(REPO)!r}]
from tests.helpers import real_listings
from tests.helpers import paper_from_row
from storage.papers import upsert_papers
paper = paper_from_row(real_listings(limit=61)[60])
upsert_papers({str(db)!r}, [paper.with_changes(title="Wombatformer: " + paper.title)])
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    cards, total = search.find_keyword(db, BrowseFilter(text="wombatformer"))
    assert total == 1 and cards[0]["title"].startswith("Wombatformer")


def test_semantic_search_ranks_by_cosine_within_the_filter(settings, papers):
    db = settings.db_path
    assert search.find_nearest(db, _unit_vectors(1)[0]) == []  # no embeddings yet
    assert not search.has_vectors(db)
    vectors = _unit_vectors(len(papers))
    store_embeddings(db, papers, vectors * 3)  # cosine, whatever the stored length
    assert search.has_vectors(db)
    query = vectors[5] + 0.5 * vectors[9]
    expected = np.argsort(-(vectors @ (query / np.linalg.norm(query))), kind="stable")
    nearest = search.find_nearest(db, query, limit=5)
    assert [c["arxiv_id"] for c in nearest] == [papers[i].arxiv_id for i in expected[:5]]
    assert nearest[0]["arxiv_id"] == papers[5].arxiv_id
    assert [c["score"] for c in nearest] == sorted((c["score"] for c in nearest), reverse=True)
    reading.dismiss(db, [papers[5].arxiv_id])
    kept = search.find_nearest(db, query, BrowseFilter(states=("inbox",)), 5)
    assert [c["arxiv_id"] for c in kept] == [papers[i].arxiv_id for i in expected[1:6]]
    category = "cs.CV"
    in_category = search.find_nearest(db, query, BrowseFilter(category=category), 100)
    assert [c["arxiv_id"] for c in in_category] == [
        papers[i].arxiv_id for i in expected if category in papers[i].categories]
    # The old SQL entry points answer the same.
    assert nearest_ids(db, query, BrowseFilter(), 5) == [
        (c["arxiv_id"], c["score"]) for c in nearest]


def test_hybrid_lists_keyword_hits_then_new_neighbours(settings, papers, monkeypatch):
    db = settings.db_path
    vectors = _unit_vectors(len(papers))
    store_embeddings(db, papers, vectors)
    hits = _expected(papers, "model")
    outside = next(i for i, p in enumerate(papers) if p.arxiv_id not in hits)
    inside = papers.index(next(p for p in papers if p.arxiv_id == hits[0]))
    # The query lies between a paper without the word and one with it.
    query = vectors[outside] + 0.9 * vectors[inside]
    for limit in (4, 25, 100):
        cards, total = search.find_hybrid(db, BrowseFilter(text="model", limit=limit), query)
        keyword = hits[:limit]
        assert total == len(hits)
        assert [c["arxiv_id"] for c in cards[:len(keyword)]] == keyword
        extra = cards[len(keyword):]
        assert len(extra) == min(limit - len(keyword) // 2, len(papers) - len(keyword))
        assert extra[0]["arxiv_id"] == papers[outside].arxiv_id
        assert all("score" in c for c in extra)
        assert not any("score" in c for c in cards[:len(keyword)])
        ids = [c["arxiv_id"] for c in cards]
        assert len(ids) == len(set(ids))  # no paper twice
    # No text: the filter's papers, as keyword search lists them.
    assert search.find_hybrid(db, BrowseFilter(), None) == search.find_keyword(
        db, BrowseFilter())


def test_similar_papers_leave_the_paper_out(settings, papers):
    db = settings.db_path
    assert search.find_similar(db, papers[0].arxiv_id) == []
    vectors = _unit_vectors(len(papers))
    vectors[7] = vectors[0] * 0.9 + vectors[7] * 0.1
    store_embeddings(db, papers, vectors)
    similar = search.find_similar(db, papers[0].arxiv_id, 5)
    assert len(similar) == 5 and papers[0].arxiv_id not in [c["arxiv_id"] for c in similar]
    assert similar[0]["arxiv_id"] == papers[7].arxiv_id
    assert [c["score"] for c in similar] == sorted((c["score"] for c in similar), reverse=True)
    assert search.find_similar(db, "2699.99999") == []
    assert similar_ids(db, papers[0].arxiv_id, 1) == [
        (similar[0]["arxiv_id"], similar[0]["score"])]


def test_an_empty_database_and_a_replaced_file(settings):
    db = settings.db_path
    assert search.find_keyword(db, BrowseFilter(text="model")) == ([], 0)
    assert search.find_hybrid(db, BrowseFilter(), None) == ([], 0)
    store_real_papers(db, 5)
    assert search.find_keyword(db, BrowseFilter())[1] == 5
    # Another database put in its place (a restored backup): the index follows it.
    db.unlink()
    db.with_name(db.name + ".wal").unlink(missing_ok=True)
    from storage import db as storage_db
    from storage.papers import upsert_papers
    from tests.helpers import real_listings

    storage_db._migrated.clear()
    upsert_papers(db, [paper_from_row(row) for row in real_listings(limit=8)[5:8]])
    cards, total = search.find_keyword(db, BrowseFilter())
    assert total == 3 and len(cards) == 3


def test_a_cold_load_tokenizes_what_the_word_table_lacks(settings, papers):
    db = settings.db_path
    search_index.refresh_search_index(db)
    from storage.papers import upsert_papers

    # Every paper gets a newer version: the word table holds only old words.
    upsert_papers(db, [p.with_changes(version=2, title="Zebrafied " + p.title) for p in papers])
    search_index.forget()
    assert search.find_keyword(db, BrowseFilter(text="zebrafied"))[1] == len(papers)
    search_index.refresh_search_index(db)
    search_index.forget()
    assert search.find_keyword(db, BrowseFilter(text="zebra"))[1] == len(papers)
