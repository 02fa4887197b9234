"""The eight families: definitions, cue phrases, and the traps on real papers."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.stages import families as classify
from pipeline.core.families import BY_CODE, CODES, FAMILIES, family, normalize_labels
from tests.helpers import real_listings

# Real papers of the listings slice (tests/fixtures), with the label set the written rules give
# them (each is a trap or its plain counterpart). Two (2504.14662, 2505.22105) are now also in the
# read training split and four are in the held-out split; the others are in no labeled set.
TRAP_PAPERS = {
    "2505.02369": set(),           # Sharpness-Aware Minimization: not SAM
    "2504.14662": set(),           # Sharpness-Aware fine-tuning for model merging: not SAM
    "2504.12082": set(),           # implicit hate speech detection: not speech
    "2504.08609": set(),           # textual hate speech survey: not speech
    "2503.18746": set(),           # masked image modelling for scene text: not MLM
    "2503.19149": set(),           # masked autoencoders in microscopy: not MLM
    "2504.01666": {"LAM"},         # CLIP adaptation: LAM, not VLM
    "2504.14280": {"LAM"},         # CLIP-powered domain generalization survey: LAM
    "2505.22105": {"SAM"},         # adapting Segment Anything
    "2507.02294": {"SAM"},         # reference-guided Segment Anything
    "2503.16057": {"MoE"},         # mixture-of-experts routing in diffusion transformers
    "2504.06963": {"SLM"},         # speech recognition losses
    "2506.19831": {"MLM"},         # BERT models for Bengali text
    "2503.12018": {"LCM"},         # text-to-image models
    "2503.14674": {"VLM"},         # VQA with LVLMs
}


@pytest.fixture(scope="module")
def trap_results():
    wanted = {row["id"].split("v")[0]: row for row in real_listings()
              if row["id"].split("v")[0] in TRAP_PAPERS}
    ids = list(TRAP_PAPERS)
    results = classify.classify_texts(ids, [wanted[i]["title"] for i in ids],
                                      [wanted[i]["abstract"] for i in ids])
    return dict(zip(ids, results))


def test_eight_families_in_seed_order_with_definitions_and_traps():
    assert CODES == ("LLM", "LCM", "LAM", "MoE", "VLM", "SLM", "MLM", "SAM")
    for item in FAMILIES:
        assert item.tagline.startswith("The ") and len(item.definition) > 100
        assert item.traps and item.seed_name == f"{item.tagline} — {item.name}"
    assert BY_CODE["LLM"].tagline == "The Universal Translator"
    assert any("sharpness" in trap for trap in BY_CODE["SAM"].traps)


def test_family_lookup_is_case_insensitive_and_names_the_codes():
    assert family("vlm").code == "VLM"
    with pytest.raises(KeyError, match="LLM, LCM, LAM"):
        family("GAN")


def test_normalize_labels_orders_and_drops_none():
    assert normalize_labels(["MoE", "llm"]) == ["LLM", "MoE"]
    assert normalize_labels(["none"]) == []
    with pytest.raises(KeyError):
        normalize_labels(["speech"])


def test_cues_separate_the_traps_from_the_families():
    names = [name for name, _ in classify.CUES]
    features = classify.cue_features("Sharpness-Aware Minimization (SAM) revisited", "")
    assert features[names.index("sam")] == 1 and features[names.index("sam_trap")] == 1
    features = classify.cue_features("Hate speech detection in tweets", "")
    assert features[names.index("speech_trap")] == 1
    features = classify.cue_features("Segment Anything for cells", "")
    assert features[names.index("sam_trap")] == 0 and features[names.index("sam")] == 1
    abstract = classify.cue_features("x", "We use CLIP. CLIP features help.")
    assert abstract[len(names) + names.index("clip")] == pytest.approx(np.log1p(2))


KNOWN_MISSES: dict[str, str] = {}
"""Trap papers the shipped head gets wrong, each with why (strict xfail: when a head gets one
right, its marker must go). None with ``families-379a354cd4``: "linguistics-aware" masked
image modelling for scene text (2503.18746), a miss of every earlier head (LAM), is now at
LAM 0.37 against a threshold of 0.39 (close: a retrain may bring it back). The survey of
classifiers for textual hate speech (2504.08609), once at the MLM threshold by a hair, is
at MLM 0.18 against 0.41."""


@pytest.mark.parametrize("arxiv_id", [
    pytest.param(arxiv_id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[arxiv_id]))
    if arxiv_id in KNOWN_MISSES else arxiv_id for arxiv_id in TRAP_PAPERS])
def test_traps_on_real_papers(trap_results, arxiv_id):
    result = trap_results[arxiv_id]
    assert set(result.labels) == TRAP_PAPERS[arxiv_id], result.scores


def test_scores_are_probabilities_and_labels_follow_thresholds(trap_results):
    head = classify.current_head()
    for result in trap_results.values():
        assert set(result.scores) == set(CODES)
        assert all(0.0 <= value <= 1.0 for value in result.scores.values())
        chosen = {code for code, threshold in zip(CODES, head.thresholds)
                  if result.scores[code] >= round(float(threshold), 4) + 1e-4}
        possible = {code for code, threshold in zip(CODES, head.thresholds)
                    if result.scores[code] >= round(float(threshold), 4) - 1e-4}
        assert chosen <= set(result.labels) <= possible
        assert result.model_version == head.version and not result.low_confidence
