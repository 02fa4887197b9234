"""The embedded default: summaries made only of sentences copied from the abstract.

Every field is one sentence of the abstract (whitespace collapsed, otherwise verbatim),
chosen by lexical centrality (the content words a sentence shares with the rest of the
abstract and with the title) plus cue words for the field, so nothing is ever invented.
``extractive=True`` marks it wherever it is shown.

v1 scored centrality with MiniLM sentence embeddings: eight encoder inputs per paper made
it 11 papers/s on two cores, three minutes for a 2,000-paper day. Word overlap runs at
over 1,000 papers/s (``make bench``) and picks from the same cue-gated candidates.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.core.paper import Paper
from pipeline.stages.summaries.summary import Summary, SummaryFailure, with_provenance

log = logging.getLogger(__name__)

ALGORITHM_VERSION = "extractive.v2"
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


# Function words carry no topic: left out of the overlap.
_STOPWORDS = frozenset("""
a about above after again against all also an and any are as at be been being both but by
can could did do does doing during each either for from further had has have having here
how however i if in into is it its itself just more most much must no nor not of off on
once only or other our ours out over own same should so some such than that the their them
then there these they this those through thus to too under until up upon very via was we
were what when where whether which while who whom why will with within without would yet
you your paper work approach method methods propose proposed present show shows using use
used based new""".split())
_WORD = re.compile(r"[a-z][a-z0-9\-]*")


def content_words(text: str) -> dict[str, float]:
    """Counts of the content words of a text: lower-cased, a plural 's' dropped, function
    words left out."""
    counts: dict[str, float] = {}
    for word in _WORD.findall(text.lower()):
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        if word not in _STOPWORDS and len(word) > 1:
            counts[word] = counts.get(word, 0.0) + 1.0
    return counts


def _dot(left: dict[str, float], right: dict[str, float]) -> float:
    if len(left) > len(right):
        left, right = right, left
    return sum(count * right.get(word, 0.0) for word, count in left.items())


def _cosine(dot: float, left_square: float, right_square: float) -> float:
    return dot / (left_square * right_square) ** 0.5 if left_square and right_square else 0.0


def lexical_scores(sentences: list[str], title: str) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence: the cosine of its word counts with those of the rest of the abstract
    (centrality) and with the title's. Leaving the sentence out of the rest keeps long
    sentences from matching themselves; the rest is never built, its products follow from
    the whole: (total - s)·s = total·s - s·s."""
    bags = [content_words(sentence) for sentence in sentences]
    total: dict[str, float] = {}
    for bag in bags:
        for word, count in bag.items():
            total[word] = total.get(word, 0.0) + count
    total_square = _dot(total, total)
    title_bag = content_words(title)
    title_square = _dot(title_bag, title_bag)
    centrality, title_similarity = [], []
    for bag in bags:
        own, shared = _dot(bag, bag), _dot(bag, total)
        rest_square = total_square - 2 * shared + own
        centrality.append(_cosine(shared - own, own, rest_square))
        title_similarity.append(_cosine(_dot(bag, title_bag), own, title_square))
    return np.array(centrality), np.array(title_similarity)


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


@dataclass
class ExtractiveSummarizer:
    """Summaries from abstract sentences; no model, no device."""

    backend: str = "extractive"
    model: str = "lexical"
    prompt_version: str = ALGORITHM_VERSION
    chunk_size: int = 500
    """Papers per stored chunk: under a second of work. Chunks sized for a generative
    model (64) spent more time opening the database than summarizing."""

    @classmethod
    def from_settings(cls, settings) -> "ExtractiveSummarizer":
        return cls()

    def fields_for(self, papers: Sequence[Paper]) -> list[dict[str, str]]:
        """The extractive fields of each paper (an empty abstract gives the title as TL;DR)."""
        results = []
        for paper in papers:
            title = " ".join(paper.title.split())
            sentences = split_sentences(paper.abstract)
            fields = pick_fields(sentences, *lexical_scores(sentences, title)) if sentences else {}
            results.append(fields or {"tldr": title})
        return results

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        return [with_provenance(Summary(**fields), paper, self, extractive=True)
                for paper, fields in zip(papers, self.fields_for(papers))]

    def close(self) -> None:
        """Nothing to release."""
