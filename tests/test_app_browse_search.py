"""What Browse and ``octet search`` stand on (``storage.search.search_page`` over the
in-process index), on a real DuckDB file, against brute-force answers: pages, author words,
related papers above the cut-off, and the index following papers stored meanwhile."""
from __future__ import annotations

import re

import numpy as np
import pytest

from storage import search, search_index
from storage.papers import upsert_papers
from storage.search import BrowseFilter, search_page
from tests.helpers import store_embeddings, store_real_papers


@pytest.fixture(autouse=True)
def cold_index():
    search_index.forget()
    yield
    search_index.forget()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _has_every_word(paper, query: str) -> bool:
    """Brute force: every query word starts a word of the title, abstract or an author."""
    mine = _words(" ".join([paper.title, paper.abstract, *paper.authors]))
    return all(any(word.startswith(w) for word in mine) for w in _words(query))


def _name_holds(name: str, typed: str) -> bool:
    """Brute force: the name holds every typed word, the last perhaps cut short."""
    *whole, last = _words(typed)
    return all(w in _words(name) for w in whole) and any(
        w.startswith(last) for w in _words(name))


def _newest(papers) -> list[str]:
    return [p.arxiv_id for p in sorted(papers, key=lambda p: (p.listed_date, p.arxiv_id),
                                       reverse=True)]


def test_pages_cover_every_match_once_newest_first(settings):
    papers = store_real_papers(settings.db_path, 60)
    for query in ("", "model", "image segmentation"):
        expected = _newest([p for p in papers if _has_every_word(p, query)])
        seen, offset = [], 0
        while True:
            page = search_page(settings.db_path, BrowseFilter(text=query, limit=7, offset=offset))
            assert page.match_total == len(expected)
            if not page.matches:
                break
            seen += [card["arxiv_id"] for card in page.matches]
            offset += 7
        assert seen == expected, query


def test_query_words_match_author_names_and_the_author_filter_one_name(settings):
    papers = store_real_papers(settings.db_path, 60)
    target = papers[11]
    surname = target.authors[0].split()[-1]
    expected = _newest([p for p in papers if _has_every_word(p, surname)])
    assert target.arxiv_id in expected
    assert [c["arxiv_id"] for c in search_page(settings.db_path, BrowseFilter(
        text=surname, limit=100)).matches] == expected
    # The author filter: one name holds every word (the last may be cut short).
    name = target.authors[0]
    by_name = [p for p in papers if any(_name_holds(a, name[:-1]) for a in p.authors)]
    found = search_page(settings.db_path, BrowseFilter(author=name[:-1], limit=100))
    assert [c["arxiv_id"] for c in found.matches] == _newest(by_name)
    # The SQL browse (another reader of the same filter) agrees.
    cards, total = search.browse(settings.db_path, BrowseFilter(author=name, limit=100))
    assert total == found.match_total and target.arxiv_id in [c["arxiv_id"] for c in cards]


def test_related_papers_pass_the_other_filters_and_the_cut_off(settings):
    papers = store_real_papers(settings.db_path, 40)
    vectors = np.random.default_rng(3).standard_normal((40, 384)).astype(np.float32)
    query = vectors[0] + 0.8 * vectors[1]  # near papers 0 and 1, far from the rest
    store_embeddings(settings.db_path, papers, vectors)
    text = papers[0].title.split()[0]
    page = search_page(settings.db_path, BrowseFilter(text=text, limit=100), query,
                       related_limit=100, min_score=0.3)
    matches = {c["arxiv_id"] for c in page.matches}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    expected = [p.arxiv_id for score, p in sorted(zip(cosine, papers), key=lambda x: -x[0])
                if score >= 0.3 and p.arxiv_id not in matches]
    assert [c["arxiv_id"] for c in page.related] == expected and page.related_total == len(expected)
    assert all(c["score"] >= 0.3 for c in page.related)
    inbox_only = search_page(settings.db_path, BrowseFilter(text=text, states=("queued",)),
                             query, min_score=0.3)
    assert (inbox_only.match_total, inbox_only.related_total) == (0, 0)


def test_the_held_index_finds_the_authors_of_papers_stored_meanwhile(settings):
    papers = store_real_papers(settings.db_path, 20)
    assert search_page(settings.db_path, BrowseFilter(author="Quokka Wombatson")).match_total == 0
    newcomer = papers[0].with_changes(arxiv_id="2699.00001", authors=("Quokka Wombatson",))
    upsert_papers(settings.db_path, [newcomer])
    held = search_index.current(settings.db_path)
    assert len(held.author_words) == 2  # appended, not rebuilt
    found = search_page(settings.db_path, BrowseFilter(author="quokka wombat"))
    assert [c["arxiv_id"] for c in found.matches] == ["2699.00001"]
    assert search_page(settings.db_path, BrowseFilter(text="wombatson")).match_total == 1


def test_the_app_loads_the_search_index_after_the_first_page(settings):
    """Issue 15: the first search waited seconds for the index; the app now loads it once
    the first page is drawn, so the search finds it held."""
    from storage import search_index
    from tests.helpers import open_app, store_real_papers

    store_real_papers(settings.db_path, 20)
    search_index.forget()
    open_app()
    held = search_index._held.get(str(settings.db_path.resolve()))
    assert held is not None and held.snapshot is not None
    assert held.snapshot.author_words is not None
