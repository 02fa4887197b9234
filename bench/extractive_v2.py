"""The v2 extractive selection (word overlap plus cue words), frozen here so the benchmark
measures v2 and v3 in the same run on the same papers. Not used by the product.

Copied from ``pipeline/stages/summaries/extractive.py`` as of ``extractive.v2``; the sentence
splitter and ``lexical_scores`` it used are still the product's.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from pipeline.core.paper import Paper
from pipeline.stages.summaries.extractive import lexical_scores, split_sentences

# Cue words per field: weak evidence that a sentence states the problem, method, ...
_CUES = {
    "problem": r"\b(challeng\w*|problem\w*|limit\w*|lack\w*|remain\w*|struggl\w*|difficult\w*|"
               r"however|fail\w*|bottleneck\w*|issue\w*|costly|expensive|unclear|gap)\b",
    "method": r"\b(we (first )?(propos|introduc|present|develop|design|buil|construct|devis|"
              r"train|stud|formulat|investigat|leverag|employ)\w*|our (method|approach|framework|model|system)|"
              r"this (paper|work) (proposes|introduces|presents)|called|named|dubbed)\b",
    "results": r"(\b(outperform\w*|achiev\w*|improv\w*|surpass\w*|state-of-the-art|sota|"
               r"results? (show|demonstrate)|experiments?|accuracy|speedup|reduc\w*|"
               r"gain\w*|benchmark\w*)\b|\d+(\.\d+)?\s?(%|x|×))",
    "why_it_matters": r"\b(enabl\w*|implication\w*|insight\w*|pav\w* the way|practical|"
                      r"deploy\w*|open[- ]source|release|publicly available|code is|"
                      r"broad\w*|future|impact\w*|promising|valuable)\b",
}
_CUE_PATTERNS = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in _CUES.items()}
# Where in the abstract a field's sentence tends to sit (0 = first sentence, 1 = last).
_POSITION = {"problem": 0.0, "method": 0.35, "results": 0.8, "why_it_matters": 1.0}


def _cue_matrix(sentences: list[str]) -> dict[str, np.ndarray]:
    return {name: np.array([bool(pattern.search(s)) for s in sentences], dtype=float)
            for name, pattern in _CUE_PATTERNS.items()}


def _mask(count: int, chosen: set[int]) -> np.ndarray:
    mask = np.zeros(count)
    mask[list(chosen)] = 1.0
    return mask


def pick_fields(sentences: list[str], centrality: np.ndarray,
                title_similarity: np.ndarray | None = None) -> dict[str, str]:
    """One sentence per field. The TL;DR is the sentence closest to the abstract's centre
    and the title, nudged towards one that says what the paper does; the other fields
    need a cue word (or, for the problem, an unused sentence early on), prefer distinct
    sentences and their usual place in an abstract. A field with no candidate stays empty."""
    if not sentences:
        return {}
    count = len(sentences)
    title_similarity = np.zeros(count) if title_similarity is None else title_similarity
    positions = np.arange(count) / max(count - 1, 1)
    cues = _cue_matrix(sentences)
    chosen = {"tldr": int(np.argmax(centrality + title_similarity + 0.3 * cues["method"]))}
    used = {chosen["tldr"]}
    # Sentences that report numbers are results, not the problem ("remaining" is no gap).
    penalty = {"problem": cues["results"] + cues["method"], "method": 0.5 * cues["results"]}
    for name in ("method", "problem", "results", "why_it_matters"):
        score = (cues[name] + 0.3 * centrality - 0.5 * np.abs(positions - _POSITION[name])
                 - 0.5 * penalty.get(name, 0) - 1.2 * _mask(count, used))
        best = int(np.argmax(score))
        spare = (name == "problem" and best not in used and positions[best] < 0.5
                 and not penalty["problem"][best])
        if cues[name][best] or spare:
            chosen[name] = best
            used.add(best)
    if "method" not in chosen and cues["method"][chosen["tldr"]]:
        chosen["method"] = chosen["tldr"]  # the TL;DR is the method sentence: say it again
    return {name: sentences[index] for name, index in chosen.items()}


def fields_v2(papers: Sequence[Paper]) -> list[dict[str, str]]:
    """The v2 fields of each paper, as ``ExtractiveSummarizer.fields_for`` made them."""
    results = []
    for paper in papers:
        title = " ".join(paper.title.split())
        sentences = split_sentences(paper.abstract)
        fields = pick_fields(sentences, *lexical_scores(sentences, title)) if sentences else {}
        results.append(fields or {"tldr": title})
    return results


def pick_indices_v2(sentences: list[str], title: str) -> dict[str, int]:
    """The v2 field indices of one abstract (for the role-quality table)."""
    fields = pick_fields(sentences, *lexical_scores(sentences, title))
    return {name: sentences.index(text) for name, text in fields.items()}
