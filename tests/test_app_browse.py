"""Browse with AppTest on a real DuckDB file: pages through every result, one count, papers
related by meaning under their own heading with their similarity and a cut-off, authors
searchable (and filled from ``?author=``), cards with the TL;DR and the abstract."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core.paper import Paper
from pipeline.stages.search import encode_query, search_text
from storage.papers import upsert_papers
from storage.search import RELATED_MIN_SCORE, BrowseFilter, find_keyword
from tests.helpers import nearest_ids, similar_ids, states_of, store_embeddings, store_real_papers

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
READ_PAPERS = REPO / "pipeline" / "data" / "families_read.jsonl"
SHIPPED_VECTORS = REPO / "pipeline" / "data" / "families_embeddings.npz"


def _open(**params) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    for name, value in params.items():
        app.query_params[name] = value
    app.switch_page("ui/browse.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _listed(app: AppTest) -> list[str]:
    """The ids of the cards shown, in order (each card has one Queue button)."""
    return [b.key.removeprefix("bqueue_") for b in app.button if (b.key or "").startswith("bqueue_")]


def _markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def store_read_papers(db_path, count: int) -> list[Paper]:
    """Real papers read for the family labels, with their shipped MiniLM embeddings (real
    vectors without running the encoder over them)."""
    rows = [json.loads(line) for line in READ_PAPERS.read_text().splitlines()[:count]]
    papers = [Paper(row["arxiv_id"], 1, row["title"], ("A. Reader",), row["abstract"],
                    tuple(row["categories"]), row["categories"][0],
                    listed_date=row["listed_date"]) for row in rows]
    upsert_papers(db_path, papers)
    with np.load(SHIPPED_VECTORS) as data:
        vectors = dict(zip(data["ids"].tolist(), data["vectors"].astype(np.float32)))
    store_embeddings(db_path, papers, [vectors[paper.arxiv_id] for paper in papers])
    return papers


def test_browse_pages_through_every_paper(settings):
    papers = store_real_papers(settings.db_path, 60)
    app = _open()
    assert "**60** papers stored, newest first" in _markdown(app)
    newest = [card["arxiv_id"] for card in find_keyword(settings.db_path,
                                                        BrowseFilter(limit=100))[0]]
    assert _listed(app) == newest[:25]
    assert "Papers 1–25 of 60 · page 1 of 3" in [c.value for c in app.caption]
    seen = list(_listed(app))
    for page in (2, 3):
        app.get("pagination")[0].set_value(page).run()
        seen += _listed(app)
    assert seen == newest and len(set(seen)) == len(papers)
    assert "Papers 51–60 of 60 · page 3 of 3" in [c.value for c in app.caption]


def test_a_search_has_one_count_and_related_papers_under_their_own_heading(settings):
    store_read_papers(settings.db_path, 400)
    query = "vision language model"
    app = _open()
    app.text_input(key="browse_text").input(query).run()
    assert not app.exception
    expected = search_text(settings.db_path, BrowseFilter(text=query, limit=25), True, 10)
    assert expected.match_total > 0 and expected.related_total > 10  # shows more than a page
    count = (f"**{expected.match_total:,}** papers with every word (in the title, abstract or "
             f"authors) · **{expected.related_total:,}** more related by meaning (similarity "
             f"≥ {RELATED_MIN_SCORE:.2f})")
    assert count in _markdown(app)
    assert f"##### Related by meaning ({expected.related_total:,})" in _markdown(app)
    related = [card["arxiv_id"] for card in expected.related]
    matches = [card["arxiv_id"] for card in expected.matches]
    assert _listed(app) == matches + related and not set(matches) & set(related)
    scores = [float(c.value.split()[1]) for c in app.caption if c.value.startswith("Similarity")]
    assert scores == sorted(scores, reverse=True) and min(scores) >= RELATED_MIN_SCORE
    # The cut-off leaves out neighbours below it, which the plain nearest list would show.
    nearest = nearest_ids(settings.db_path, encode_query(query), BrowseFilter(), 400)
    below = [arxiv_id for arxiv_id, score in nearest if score < RELATED_MIN_SCORE]
    assert below and not set(below) & (set(_listed(app)) - set(matches))
    app.button(key="browse_more_related").click().run()
    assert len(_listed(app)) == len(matches) + min(20, expected.related_total)


def test_authors_are_searchable_and_filled_from_the_url(settings):
    papers = store_real_papers(settings.db_path, 60)
    author = papers[7].authors[1]
    surname = author.split()[-1]
    assert surname.lower() not in (papers[7].title + papers[7].abstract).lower()
    app = _open(author=author)
    assert app.text_input(key="browse_author").value == author
    listed = _listed(app)
    assert papers[7].arxiv_id in listed
    assert all(author in p.authors for p in papers if p.arxiv_id in listed)
    # The search box finds authors too: every word in the title, abstract or authors.
    app = _open()
    app.text_input(key="browse_text").input(surname).run()
    assert papers[7].arxiv_id in _listed(app)


def test_family_from_the_url_and_cards_with_the_tldr_and_abstract(settings):
    from pipeline.stages.summaries.summary import Summary
    from storage.summaries import save_summaries
    from tests.helpers import store_families

    papers = store_real_papers(settings.db_path, 20)
    target = papers[3]
    store_families(settings.db_path, {target.arxiv_id: ["SLM"]})
    save_summaries(settings.db_path, [Summary(arxiv_id=target.arxiv_id, version=1,
                                              tldr="Speech in, *text* out.", backend="extractive",
                                              model="m", prompt_version="extractive.v3",
                                              extractive=True)])
    app = _open(family="SLM")
    assert app.selectbox(key="browse_family").value == "SLM"
    assert _listed(app) == [target.arxiv_id]
    assert "**TL;DR** Speech in, \\*text\\* out\\." in [m.value for m in app.markdown]
    assert [e.label for e in app.expander] == ["Abstract"]
    assert f"(?paper={target.arxiv_id})" in _markdown(app)


def test_queue_and_similar_from_a_card(settings):
    papers = store_read_papers(settings.db_path, 60)
    app = _open()
    first = next(arxiv_id for arxiv_id in _listed(app)  # not this week's pick
                 if not app.button(key=f"bqueue_{arxiv_id}").disabled)
    app.button(key=f"bqueue_{first}").click().run()
    assert states_of(settings.db_path, [first]) == {first: "queued"}
    app.button(key=f"bs_{first}").click().run()
    similar = similar_ids(settings.db_path, first, 1)[0][0]
    assert f"`{similar}`" in "\n".join(m.value for m in app.sidebar.markdown)
    assert len(papers) == 60


@pytest.mark.parametrize("words", ["zzzq wombat", "mixture of experts"])
def test_nothing_found_says_what_to_try(settings, words):
    store_real_papers(settings.db_path, 5)  # no embeddings: keyword only
    app = _open(q=words)
    assert app.text_input(key="browse_text").value == words
    assert "**0** papers with every word" in _markdown(app)
    assert "Nothing matches" in app.info[0].value
