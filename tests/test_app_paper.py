"""The paper page (``?paper=<arXiv id>``) with AppTest on a real DuckDB file: what it shows
(authors linked to Browse, families with scores, the summary's provenance, versions and what
changed, similar papers) and each action checked in the database."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from storage import reading
from storage.families import families_for
from storage.papers import upsert_papers
from tests.helpers import similar_ids, states_of, store_embeddings, store_families, store_real_papers
from ui import paper as paper_page

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _open(arxiv_id: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params["paper"] = arxiv_id
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _text(app: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "success", "warning",
                                  "error", "toast") for e in getattr(app, kind)]
    return "\n".join(str(part) for part in parts).replace("\\", "")


@pytest.fixture
def papers(settings):
    return store_real_papers(settings.db_path, 30)


@pytest.fixture
def revised(settings, papers):
    """The first paper seen again as v2 with a new title word and a changed abstract."""
    first = papers[0]
    words = first.abstract.split()
    abstract = " ".join(words[:10] + ["substantially"] + words[10:20] + words[21:])
    upsert_papers(settings.db_path, [first.with_changes(version=2, title=first.title + " Revisited",
                                                        abstract=abstract)])
    return first, words[20]


def test_the_page_shows_the_paper_its_authors_links_and_its_versions(settings, revised):
    first, removed_word = revised
    app = _open(first.arxiv_id)
    assert app.title[0].value.replace("\\", "") == first.title + " Revisited"
    text = _text(app)
    assert f"{first.arxiv_id}v2" in text and "published 2025-" in text and "None" not in text
    authors = next(m.value for m in app.markdown if "browse?author=" in m.value)
    targets = [unquote(part.split(")")[0]) for part in authors.split("browse?author=")[1:]]
    assert targets == list(first.authors)
    urls = {button.label: button.url for button in app.link_button}
    assert urls["Abstract"].endswith(f"/abs/{first.arxiv_id}")
    assert urls["PDF"].endswith(f"/pdf/{first.arxiv_id}")
    assert urls["HTML"] == f"https://arxiv.org/html/{first.arxiv_id}v2"
    # Both versions, the title change and the abstract's changed passages.
    assert "**v1 → v2**" in text and "**Revisited**" not in text
    assert "Revisited**" in text and "~~" + first.title.split()[0] in text
    assert "**substantially**" in text and f"~~{removed_word}~~" in text.replace("\\", "")
    assert "No summary yet" in text and "not classified yet" in text


def test_families_with_scores_and_the_summary_with_its_provenance(settings, papers):
    from pipeline.stages.summaries.summary import Summary
    from storage.summaries import save_summaries

    target = papers[1]
    store_families(settings.db_path, {target.arxiv_id: ["VLM", "MoE"]}, score=0.83)
    save_summaries(settings.db_path, [Summary(
        arxiv_id=target.arxiv_id, version=1, tldr="A short *claim*.", problem="P.",
        method="M.", results="R.", backend="openai", model="qwen-test",
        prompt_version="summarize.v1", fallback_fields=("results",))])
    app = _open(target.arxiv_id)
    text = _text(app)
    badges = next(m.value for m in app.markdown if "labeled by the classifier" in m.value)
    assert "[MoE]" in badges and "[VLM]" in badges
    scores = next(c.value for c in app.caption if c.value.startswith("Classifier scores"))
    assert scores == "Classifier scores: MoE 0.83 · VLM 0.83"  # 0.05 and under left out
    caption = next(c.value for c in app.caption
                   if c.value.startswith("Summary by")).replace("\\", "")
    assert "qwen-test (openai backend, prompt summarize.v1)" in caption
    assert "for v1" in caption and "1 field(s) copied from the abstract" in caption
    assert "**TL;DR** A short \\*claim\\*\\." in [m.value for m in app.markdown]
    assert any(m.value.startswith("**Results.** _(extractive") for m in app.markdown)
    assert target.abstract.split()[0] in text


def test_queue_pick_dismiss_and_take_back(settings, papers):
    db, week = settings.db_path, weeks.current_week(settings.timezone)
    reading.set_pick(db, week, papers[5].arxiv_id, "octet", "proposed")
    target = papers[2].arxiv_id
    app = _open(target)
    assert "In your inbox" in _text(app)
    app.button(key=f"paper_queue_{target}").click().run()
    assert states_of(db, [target])[target] == "queued"
    assert "In your queue (#1 of 1)" in _text(app)
    assert app.button(key=f"paper_queue_{target}").disabled
    app.button(key=f"paper_week_{target}").click().run()
    # The rules of `octet pick ID`: this paper is the pick; the proposed one is released.
    pick = reading.get_pick(db, week)
    assert (pick["arxiv_id"], pick["chosen_by"]) == (target, "reader")
    assert states_of(db, [papers[5].arxiv_id])[papers[5].arxiv_id] == "inbox"
    assert "is this week's paper" in _text(app) and "This week's pick" in _text(app)

    other = papers[3].arxiv_id
    reading.queue_add(db, [papers[4].arxiv_id, other])
    app = _open(other)
    assert "In your queue (#2 of 2)" in _text(app)
    app.button(key=f"paper_dismiss_{other}").click().run()
    assert states_of(db, [other])[other] == "dismissed"
    assert not [b for b in app.button if b.key == "paper_undismiss"]  # the undo bar is there
    next(b for b in app.button if b.label.startswith("Undo")).click().run()  # to its place
    assert [row["arxiv_id"] for row in reading.queue_list(db)] == [papers[4].arxiv_id, other]
    # A dismissal made earlier (another visit) is taken back on the page too.
    reading.dismiss(db, [other])
    app = _open(other)
    assert "Dismissed: not interested" in _text(app)
    app.button(key="paper_undismiss").click().run()
    assert states_of(db, [other])[other] == "inbox" and f"{papers[3].title}”: In your inbox." in _text(app)


def test_labels_notes_and_rating(settings, papers):
    db, target = settings.db_path, papers[6].arxiv_id
    store_families(db, {target: ["LLM"]})
    app = _open(target)
    app.multiselect(key=f"paper_labels_{target}").set_value(["SAM", "VLM"])
    app.button(key="paper_save_labels").click().run()
    assert families_for(db, [target])[target]["labels"] == ["SAM", "VLM"]
    assert "labeled by you" in _text(app)
    app.button(key="paper_clear_labels").click().run()
    assert families_for(db, [target])[target]["labels"] == ["LLM"]

    app.feedback(key=f"paper_rating_{target}").set_value(3)
    app.text_area(key=f"paper_notes_{target}").input("Key idea: *sparse* routing")
    app.button(key="FormSubmitter:paper_notes_form-Save notes").click().run()
    stored = reading.reading_of(db, target)
    assert (stored["state"], stored["rating"], stored["notes"]) == (
        "inbox", 4, "Key idea: *sparse* routing")
    app = _open(target)  # a new visit shows what is stored
    assert app.feedback(key=f"paper_rating_{target}").value == 3
    assert app.text_area(key=f"paper_notes_{target}").value == "Key idea: *sparse* routing"


def test_similar_papers_with_one_click_actions(settings, papers):
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    store_embeddings(settings.db_path, papers,
                     embed_texts([paper_text(p.title, p.abstract) for p in papers]))
    target = papers[0].arxiv_id
    app = _open(target)
    expected = [arxiv_id for arxiv_id, _ in similar_ids(settings.db_path, target,
                                                         paper_page.SIMILAR_COUNT)]
    shown = [b.key.removeprefix("similar_queue_") for b in app.button
             if (b.key or "").startswith("similar_queue_")]
    scores = [float(c.value.split()[1]) for c in app.caption if c.value.startswith("Similarity")]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(shown)
    assert shown == expected and target not in shown
    assert any(f"(?paper={expected[0]})" in m.value for m in app.markdown)
    app.button(key=f"similar_queue_{expected[0]}").click().run()
    app.button(key=f"similar_dislike_{expected[1]}").click().run()
    app.button(key=f"similar_dismiss_{expected[1]}").click().run()
    assert states_of(settings.db_path, expected[:2]) == {expected[0]: "queued",
                                                          expected[1]: "dismissed"}
    assert reading.thumbs_of(settings.db_path, [expected[1]]) == {expected[1]: -1}


@pytest.mark.parametrize("raw, says", [
    ("2699.99999", "`2699.99999` is not stored; fetch it with `octet fetch --ids 2699.99999`"),
    ("<img src=x>", "is not an arXiv id"),
])
def test_an_unknown_or_invalid_id_says_why(settings, papers, raw, says):
    app = _open(raw)
    assert app.title[0].value == "Paper not found"
    assert says in app.error[0].value
    assert "`<img src=x>`" in app.error[0].value or "<img" not in app.error[0].value


def test_any_form_of_the_id_opens_the_page(settings, papers):
    app = _open(f"arXiv:{papers[0].arxiv_id}v1")
    assert app.title[0].value.replace("\\", "") == papers[0].title


def test_paper_text_is_escaped(settings, injected_url="http://127.0.0.1:9/x"):
    from tests.test_hardening_app import HOSTILE_ID, store_hostile_paper
    from ui.common import md_escape

    hostile = store_hostile_paper(settings, injected_url)
    app = _open(HOSTILE_ID)
    assert app.title[0].value == md_escape(hostile["title"])
    assert all(not m.allow_html for m in app.markdown)
    for element in app.markdown:
        assert f"]({injected_url}" not in element.value and "![" not in element.value


def test_text_changes_finds_each_changed_passage():
    changes = paper_page.text_changes("a b c d e f g h i j", "a b X d e f g h i j k")
    assert [(c.removed, c.added) for c in changes] == [("c", "X"), ("", "k")]
    assert changes[0].before == "a b" and changes[0].after == "d e f g"
    assert (changes[0].cut_before, changes[0].cut_after) == (False, True)
    assert (changes[1].before, changes[1].cut_before, changes[1].cut_after) == ("g h i j", True, False)
    assert paper_page.text_changes("same  words\nhere", "same words here") == []
