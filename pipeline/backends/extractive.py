"""The embedded default: summaries made only of sentences copied from the abstract.

Every field is one sentence of the abstract (whitespace collapsed, otherwise verbatim),
chosen by centrality under the packaged MiniLM encoder plus cue words for the field, so
nothing is ever invented. Runs on CPU; ``extractive=True`` marks it wherever it is shown.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.paper import Paper
from pipeline.summarize import Summary, SummaryFailure, with_provenance

log = logging.getLogger(__name__)

ALGORITHM_VERSION = "extractive.v1"
"""Stored as the prompt version: a change to the selection rules makes summaries stale."""

MAX_SENTENCE_CHARACTERS = 600
"""A longer 'sentence' is cut at a word boundary and marked with an ellipsis."""

# Tokens that end with a period without ending a sentence.
_ABBREVIATIONS = {"e.g", "i.e", "et al", "al", "etc", "vs", "cf", "fig", "figs", "eq", "eqs",
                  "sec", "no", "approx", "resp", "incl", "dr", "prof", "mr", "ms", "st",
                  "ca", "viz", "w.r.t", "a.k.a", "tab", "ref", "refs", "ch", "vol", "pp"}
# A sentence ends at . ! ? (optionally closed by a quote or bracket) before a space and
# something that can start a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$\\])")
_LAST_TOKEN = re.compile(r"(\S+)\.$")

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


def split_sentences(text: str) -> list[str]:
    """The sentences of an abstract, whitespace collapsed; abbreviations, decimals, URLs
    and inline LaTeX do not split."""
    text = " ".join((text or "").split())
    if not text:
        return []
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(text):
        candidate = text[start:match.start()].rstrip()
        token = _LAST_TOKEN.search(candidate)
        if token and token.group(1).lower().lstrip("(") in _ABBREVIATIONS:
            continue
        if candidate.count("$") % 2:  # inside inline math
            continue
        pieces.append(candidate)
        start = match.end()
    pieces.append(text[start:].strip())
    return [_shorten(piece) for piece in pieces if len(piece) > 1]


def _shorten(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARACTERS:
        return sentence
    return sentence[:MAX_SENTENCE_CHARACTERS].rsplit(" ", 1)[0] + " …"


def _centrality(vectors: np.ndarray) -> np.ndarray:
    """How close each sentence is to the abstract's centre (unit vectors → cosine)."""
    centre = vectors.mean(axis=0)
    norm = np.linalg.norm(centre)
    return vectors @ (centre / norm) if norm > 0 else np.zeros(len(vectors))


def _cue_matrix(sentences: list[str]) -> dict[str, np.ndarray]:
    return {name: np.array([bool(pattern.search(s)) for s in sentences], dtype=float)
            for name, pattern in _CUE_PATTERNS.items()}


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
                 - 0.5 * penalty.get(name, 0) - 1.2 * np.isin(np.arange(count), list(used)))
        best = int(np.argmax(score))
        spare = (name == "problem" and best not in used and positions[best] < 0.5
                 and not penalty["problem"][best])
        if cues[name][best] or spare:
            chosen[name] = best
            used.add(best)
    if "method" not in chosen and cues["method"][chosen["tldr"]]:
        chosen["method"] = chosen["tldr"]  # the TL;DR is the method sentence: say it again
    return {name: sentences[index] for name, index in chosen.items()}


@dataclass
class ExtractiveSummarizer:
    """Summaries from abstract sentences, batched through the packaged encoder."""

    device: str = "auto"
    batch_size: int = 64
    backend: str = "extractive"
    prompt_version: str = ALGORITHM_VERSION

    @property
    def model(self) -> str:
        from pipeline.embed import ENCODER_NAME

        return ENCODER_NAME

    @classmethod
    def from_settings(cls, settings) -> "ExtractiveSummarizer":
        return cls(device=settings.device if settings.device.startswith("cuda") else "auto")

    def fields_for(self, papers: Sequence[Paper]) -> list[dict[str, str]]:
        """The extractive fields of each paper (an empty abstract gives the title as TL;DR)."""
        from pipeline.embed import embed_texts

        sentences = [split_sentences(paper.abstract) for paper in papers]
        flat = [sentence for group in sentences for sentence in group]
        titles = [" ".join(paper.title.split()) for paper in papers]
        # One encoder call for the whole batch: titles first, then every sentence.
        vectors = embed_texts(titles + flat, batch_size=self.batch_size, device=self.device)
        results, start = [], len(titles)
        for index, (title, group) in enumerate(zip(titles, sentences)):
            block = vectors[start:start + len(group)]
            start += len(group)
            fields = (pick_fields(group, _centrality(block), block @ vectors[index])
                      if group else {})
            results.append(fields or {"tldr": title})
        return results

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        return [with_provenance(Summary(**fields), paper, self, extractive=True)
                for paper, fields in zip(papers, self.fields_for(papers))]

    def close(self) -> None:
        """Nothing to release: the encoder stays cached for the process."""
