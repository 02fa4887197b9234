"""The extractive backend: sentence splitting on real arXiv text, and never inventing text."""
from __future__ import annotations

import itertools
import json
import lzma

import numpy as np
import pytest

from tests.helpers import LISTINGS
from pipeline.stages.summaries.extractive import (ALGORITHM_VERSION, ExtractiveSummarizer,
                                                  lexical_scores, pick_fields, split_sentences,
                                                  standalone)
from pipeline.core.paper import Paper
from pipeline.stages.summaries.roles import ROLES
from pipeline.stages.summaries.summary import FIELDS


@pytest.mark.parametrize("text, expected", [
    ("We study MoE.\nIt works well. Really!", ["We study MoE.", "It works well.", "Really!"]),
    ("Methods (e.g. LoRA, i.e. adapters) help. Smith et al. show it. Gains are 3.5 points.",
     ["Methods (e.g. LoRA, i.e. adapters) help.", "Smith et al. show it.",
      "Gains are 3.5 points."]),
    ("We bound $O(n. M)$ terms. Code: https://github.com/a/b.c is public.",
     ["We bound $O(n. M)$ terms.", "Code: https://github.com/a/b.c is public."]),
    ("Compared with Fig. 2 in prior work vs. ours. Done.",
     ["Compared with Fig. 2 in prior work vs. ours.", "Done."]),
    ("", []),
])
def test_split_sentences_handles_abbreviations_decimals_urls_and_math(text, expected):
    assert split_sentences(text) == expected


def test_lexical_scores_count_shared_content_words_leaving_the_sentence_out():
    sentences = ["Routers route tokens.", "Experts process tokens.", "The sky is blue."]
    centrality, title = lexical_scores(sentences, "Token routers")
    # {router, route, token} against the rest {expert, process, token, sky, blue}:
    # one shared word, cosine 1 / sqrt(3 * 5).
    assert centrality[0] == pytest.approx(1 / 15 ** 0.5)
    assert centrality[2] == 0.0  # shares nothing with the rest
    # {router, route, token} against the title {token, router}: 2 / sqrt(3 * 2).
    assert title[0] == pytest.approx(2 / 6 ** 0.5) and title[2] == 0.0


def test_overlong_sentences_are_cut_at_a_word_with_an_ellipsis():
    sentence = split_sentences("word " * 400)[0]
    assert sentence.endswith(" …") and len(sentence) <= 602


def _probabilities(*rows: dict[str, float]) -> np.ndarray:
    """A role-probability matrix from {role: probability} rows (the rest of each row is 'other')."""
    matrix = np.zeros((len(rows), len(ROLES)))
    for index, row in enumerate(rows):
        for role, value in row.items():
            matrix[index, ROLES.index(role)] = value
        matrix[index, ROLES.index("other")] = 1 - sum(row.values())
    return matrix


def test_fields_follow_role_probabilities_and_leave_unsupported_fields_empty():
    sentences = ["Large models remain costly to serve.", "We propose TinyRoute, a router.",
                 "TinyRoute improves throughput by 40%."]
    picked = pick_fields(sentences, _probabilities({"problem": 0.8, "background": 0.2},
                                                   {"method": 0.9, "problem": 0.1},
                                                   {"result": 0.7, "method": 0.2}))
    assert picked["tldr"] == "We propose TinyRoute, a router."
    assert picked["problem"] == "Large models remain costly to serve."
    assert picked["results"] == "TinyRoute improves throughput by 40%."
    # The only likely method sentence is the TL;DR: said again rather than a guess.
    assert picked["method"] == "We propose TinyRoute, a router."
    assert "why_it_matters" not in picked  # no sentence says so: nothing is invented


@pytest.fixture(scope="module")
def real_summaries():
    with lzma.open(LISTINGS, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, 12)]
    papers = [Paper(arxiv_id=row["id"], version=1, title=row["title"], abstract=row["abstract"])
              for row in rows]
    papers.append(Paper(arxiv_id="2501.00001", version=3, title="Only\n a  title"))
    return papers, ExtractiveSummarizer().summarize(papers)


def _is_tail(text: str, sentence: str) -> bool:
    """The whole sentence, or its words from some word on, the first letter maybe capitalized."""
    start = len(sentence) - len(text)
    return (start >= 0 and sentence[start + 1:] == text[1:] and sentence[start].upper() == text[0].upper()
            and (start == 0 or sentence[start - 1] == " "))


def test_every_field_is_a_sentence_of_the_abstract(real_summaries):
    """Verbatim, or (v3) without its leading connective: "However, x ..." becomes "X ..."."""
    papers, summaries = real_summaries
    for paper, summary in zip(papers[:-1], summaries):
        sentences = split_sentences(paper.abstract)
        assert summary.tldr in [standalone(sentence)[0] for sentence in sentences]
        for name in FIELDS:
            text = getattr(summary, name)
            assert not text or any(_is_tail(text, sentence) for sentence in sentences), (name, text)


def test_real_abstracts_get_distinct_fields_and_provenance(real_summaries):
    papers, summaries = real_summaries
    assert [summary.arxiv_id for summary in summaries] == [paper.arxiv_id for paper in papers]
    assert all(summary.extractive and summary.backend == "extractive" for summary in summaries)
    assert all(summary.prompt_version == ALGORITHM_VERSION == "extractive.v3" and summary.created_at
               for summary in summaries)
    with_results = sum(bool(summary.results) for summary in summaries[:-1])
    assert with_results >= 8  # real abstracts nearly always report results
    assert all(summary.problem != summary.results for summary in summaries[:-1]
               if summary.problem)


def test_a_paper_without_abstract_gets_its_title_and_nothing_else(real_summaries):
    summary = real_summaries[1][-1]
    assert summary.tldr == "Only a title" and summary.version == 3
    assert [getattr(summary, name) for name in FIELDS[1:]] == ["", "", "", ""]
