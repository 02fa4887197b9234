"""Extractive v3: the sentence-role model and fields chosen by role probability.

The shipped model is checked against the shipped labels: retrained from them it is the
same model, and on the held-out abstracts (never used for a choice) the summarizer's fields
land on sentences of their role at least as often as the issue's goals and the trivial rules.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from bench import role_quality
from pipeline.core.paper import Paper
from pipeline.stages.summaries.extractive import ExtractiveSummarizer, pick_indices, standalone
from pipeline.stages.summaries.roles import (ROLES, labeled_rows, load_model, role_probabilities,
                                             shipped_model, train_roles)

# The examples and their kin, written here independently of the product's list.
CONNECTIVES = ("however", "finally", "to this end", "thus", "moreover", "furthermore",
               "additionally", "specifically", "therefore", "hence", "consequently", "first",
               "second", "then", "next", "also", "notably", "in addition", "in particular",
               "to address this", "to address these", "results:", "conclusions:")
DANGLING = re.compile(rf"^({'|'.join(map(re.escape, CONNECTIVES))})\b[,:]?", re.IGNORECASE)

CONNECTIVE_ABSTRACT = (
    "Large language models are expensive to serve at scale. However, existing "
    "mixture-of-experts routers spend the same compute on easy and hard tokens. To this end, "
    "we propose TinyRoute, a router that skips experts for tokens it is confident about. "
    "Specifically, TinyRoute scores each token with a small gate and sends only uncertain "
    "tokens to the experts. Moreover, we train the gate with a distillation loss from the "
    "full model. Finally, experiments on three benchmarks show that TinyRoute reduces "
    "inference cost by 40% while matching the accuracy of the dense baseline.")
IMPLICATION = (" These findings suggest that confidence-aware routing is a practical path "
               "towards cheaper language models and pave the way for adaptive computation "
               "in deployed systems.")
TITLE = "TinyRoute: Confidence-Aware Routing for Cheap Mixture-of-Experts Inference"


def _summary(abstract: str, title: str = TITLE):
    return ExtractiveSummarizer().summarize([Paper(arxiv_id="2501.00002", version=1, title=title,
                                                   abstract=abstract)])[0]


def _is_tail(text: str, sentence: str) -> bool:
    """The whole sentence, or its words from some word on, the first letter maybe capitalized."""
    start = len(sentence) - len(text)
    return (start >= 0 and sentence[start + 1:] == text[1:] and sentence[start].upper() == text[0].upper()
            and (start == 0 or sentence[start - 1] == " "))


# ---- the role model ------------------------------------------------------------------------

def test_training_on_the_shipped_labels_rebuilds_the_shipped_model():
    shipped = shipped_model()
    rebuilt = train_roles(labeled_rows("train"))
    assert rebuilt.version == shipped.version
    assert rebuilt.info == shipped.info and rebuilt.info["abstracts"] == 260
    np.testing.assert_allclose(rebuilt.weights, shipped.weights, atol=1e-4)
    np.testing.assert_allclose(rebuilt.bias, shipped.bias, atol=1e-4)


def test_a_model_trained_on_other_features_is_refused_with_the_fix(tmp_path):
    model = shipped_model()
    stale = type(model)(model.version, model.weights, model.bias,
                        {**model.info, "features": "role-features.v0"})
    with pytest.raises(ValueError, match="python -m bench.train_roles"):
        load_model(stale.save(tmp_path / "old.npz"))


def test_role_probabilities_are_one_distribution_per_sentence():
    sentences = ["Mixture-of-experts models have become a popular way to scale language models.",
                 "We propose TinyRoute, a router that skips experts.",
                 "Experiments show that TinyRoute reduces inference cost by 40% on three benchmarks."]
    probabilities = role_probabilities(sentences, TITLE)
    assert probabilities.shape == (3, len(ROLES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert [ROLES[i] for i in probabilities.argmax(axis=1)] == ["background", "method", "result"]
    assert role_probabilities([], TITLE).shape == (0, len(ROLES)) and pick_indices(np.zeros((0, 6)), []) == {}


# ---- stand-alone sentences --------------------------------------------------------------------

@pytest.mark.parametrize("sentence, text, leans", [
    ("However, existing methods fail on long inputs.", "Existing methods fail on long inputs.", False),
    ("To this end, we propose X.", "We propose X.", False),
    ("To address these limitations, we introduce Y.", "We introduce Y.", False),
    ("Thus we propose X.", "We propose X.", False),
    ("Finally, however, we release the code.", "We release the code.", False),
    ("Moreover, xLSTM scales well.", "xLSTM scales well.", False),  # a name keeps its case
    ("Results: accuracy rose by 5%.", "Accuracy rose by 5%.", False),
    ("Thus far, no method scales.", "Thus far, no method scales.", False),
    ("Further experiments confirm it.", "Further experiments confirm it.", False),
    ("However, .", "However, .", False),  # nothing would be left: kept whole
    ("It also halves the memory.", "It also halves the memory.", True),
    ("This design halves the memory.", "This design halves the memory.", True),
    ("This paper proposes X.", "This paper proposes X.", False),
    ("These findings suggest that X matters.", "These findings suggest that X matters.", False),
])
def test_a_leading_connective_is_dropped_and_a_leaning_start_is_flagged(sentence, text, leans):
    assert standalone(sentence) == (text, leans)


def test_a_leaning_sentence_gives_way_to_the_next_best_that_stands_alone():
    probabilities = np.array([[0.1, 0.1, 0.8, 0.0, 0.0, 0.0],   # TL;DR
                              [0.0, 0.0, 0.1, 0.9, 0.0, 0.0],   # "It also ...": the likeliest result
                              [0.0, 0.0, 0.2, 0.8, 0.0, 0.0]])  # stands alone, nearly as likely
    chosen = pick_indices(probabilities, [False, True, False])
    assert chosen["results"] == 2
    assert pick_indices(probabilities, [False, False, False])["results"] == 1


def test_no_field_starts_with_a_dangling_connective():
    summary = _summary(CONNECTIVE_ABSTRACT)
    fields = {name: text for name, text in summary.fields().items() if text}
    assert {"tldr", "problem", "method", "results"} <= set(fields)
    for name, text in fields.items():
        assert not DANGLING.match(text) and text[0].isupper(), (name, text)
    assert summary.tldr == "We propose TinyRoute, a router that skips experts for tokens it is confident about."
    assert summary.results.startswith("Experiments on three benchmarks show")


def test_no_field_of_a_labeled_train_abstract_starts_with_a_dangling_connective():
    rows = labeled_rows("train")
    papers = [Paper(arxiv_id=row["arxiv_id"], version=1, title=row["title"],
                  abstract=" ".join(row["sentences"])) for row in rows]
    starts_with_one = sum(bool(DANGLING.match(sentence)) for row in rows for sentence in row["sentences"])
    assert starts_with_one > 100  # the abstracts are full of them: the check is not empty
    for summary in ExtractiveSummarizer().summarize(papers):
        for name, text in summary.fields().items():
            assert not DANGLING.match(text), (summary.arxiv_id, name, text)


# ---- why it matters ----------------------------------------------------------------------------

def test_why_it_matters_appears_only_when_the_abstract_has_an_implication_sentence():
    with_implication = _summary(CONNECTIVE_ABSTRACT + IMPLICATION)
    assert with_implication.why_it_matters == IMPLICATION.strip()
    without = _summary(CONNECTIVE_ABSTRACT)
    assert without.why_it_matters == ""
    assert without.tldr == with_implication.tldr


# ---- the goals, on the held-out abstracts --------------------------------------------------------

def _indices(summary, sentences: list[str]) -> dict[str, int]:
    """Which stored sentence each field came from (a field matching none counts as a miss)."""
    found = {}
    for name, text in summary.fields().items():
        matches = [index for index, sentence in enumerate(sentences) if text and _is_tail(text, sentence)]
        if matches:
            found[name] = matches[0]
    return found


@pytest.fixture(scope="module")
def heldout():
    rows = labeled_rows("heldout")
    papers = [Paper(arxiv_id=row["arxiv_id"], version=1, title=row["title"],
                    abstract=" ".join(row["sentences"])) for row in rows]
    summaries = ExtractiveSummarizer().summarize(papers)
    picks = [_indices(summary, row["sentences"]) for summary, row in zip(summaries, rows)]
    return rows, picks


def test_heldout_fields_meet_the_goals_and_beat_every_trivial_rule(heldout):
    rows, picks = heldout
    assert len(rows) == 100
    rates = role_quality.hit_rates(rows, picks)
    assert rates["tldr"] >= 0.80 and rates["mean"] >= 0.60, rates
    for rule, trivial in role_quality.trivial_rates(rows).items():
        for name in role_quality.SCORED:
            assert rates[name] >= trivial[name], (name, rule, rates[name], trivial[name])


def test_heldout_why_it_matters_is_mostly_on_implication_sentences(heldout):
    rows, picks = heldout
    counts = role_quality.why_counts(rows, picks)
    shown = counts["shown_with"] + counts["shown_without"]
    assert shown and counts["shown_on_implication"] >= shown / 2, counts
