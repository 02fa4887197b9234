"""The embedded default: summaries made only of sentences copied from the abstract.

Every field is one sentence of the abstract (whitespace collapsed, a leading connective
such as "However," dropped, otherwise verbatim), so nothing is ever invented;
``extractive=True`` marks it wherever it is shown. v3 chooses each field by the
probability that a sentence has the field's role (``roles.role_probabilities``: a small
logistic regression over position, cue words, tense, person, numbers and hashed n-grams,
trained on abstracts labeled sentence by sentence): the TL;DR is the likeliest
problem-or-method sentence, then problem, method, results, and "why it matters" only when
a sentence is likely an implication. A chosen sentence must stand alone: its leading
connective is dropped, and one that leans on the sentence before ("It also ...") gives
way to the next best.

v1 scored centrality with MiniLM sentence embeddings (11 papers/s on two cores); v2 by
word overlap and cue words (``make bench`` measures v2 and v3 side by side).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.core.paper import Paper
from pipeline.stages.summaries.roles import ROLES, role_probabilities, shipped_model
from pipeline.stages.summaries.summary import Summary, SummaryFailure, with_provenance

log = logging.getLogger(__name__)

ALGORITHM_VERSION = "extractive.v3"
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


# ---- v3: fields by sentence role ------------------------------------------------------

FIELD_ROLES = {"tldr": ("problem", "method"), "problem": ("problem",), "method": ("method",),
               "results": ("result",), "why_it_matters": ("implication",)}
"""The roles a field's sentence should have: the TL;DR says the task or the idea."""

MIN_PROBABILITY = {"problem": 0.5, "method": 0.5, "results": 0.5, "why_it_matters": 0.4}
"""Below this role probability a field stays empty (the TL;DR is always filled). Problem,
results and why it matters: chosen by cross-validation on the train split, where a field is
right when it lands on its role, or stays empty in an abstract with no sentence of that
role (``python -m bench.train_roles --search``). Method: a second method sentence must be
more likely a method than not, else the method field repeats the TL;DR."""

TLDR_LATENESS = 0.5
"""How much a method sentence's chance of being the TL;DR drops from the first sentence
to the last (chosen by cross-validation on the labeled ``main`` sentence of the train split)."""

STANDALONE_SHARE = 0.3
"""A sentence that leans on the one before ("It also ...", "This design ...") gives way to
the next best sentence that stands alone, if that one has at least this share of its
probability."""

# Leading connectives: dropped (the rest of the sentence stands alone once they are gone).
_LEAD = (r"however|thus|hence|therefore|moreover|furthermore|further|additionally|"
         r"in addition|also|besides|specifically|more specifically|in particular|notably|"
         r"importantly|more importantly|most importantly|crucially|critically|remarkably|"
         r"interestingly|surprisingly|finally|lastly|first(ly)?|second(ly)?|third(ly)?|then|"
         r"next|subsequently|meanwhile|in contrast|by contrast|conversely|on the other hand|"
         r"on one hand|on the one hand|instead|nevertheless|nonetheless|as a result|"
         r"consequently|accordingly|overall|together|taken together|collectively|in summary|"
         r"in conclusion|to summari[sz]e|for instance|for example|to this end|to that end|"
         r"to this aim|to do so|here|empirically|for this reason|yet|but|still|in turn|"
         r"similarly|likewise|ultimately|concretely|in practice|as such|in this regard|"
         r"with this in mind|beyond this|on top of this|in response|against this backdrop|"
         r"to achieve this")
_CLAUSE = (r"(to (address|tackle|overcome|bridge|fill|solve|mitigate|alleviate|remedy|resolve|"
           r"handle|close|achieve|counter|combat|meet|support|facilitate|fix|circumvent|avoid|"
           r"enable|answer|study|investigate|explore) (this|these|that|those|such|the above|both|"
           r"them|it)\b[^,]{0,80}|(building|based|inspired|motivated|guided|drawing|grounded)"
           r" (on|by|upon|from) (this|these|that|those|such|the above)\b[^,]{0,80}|"
           r"in (light|view) of (this|these|that)\b[^,]{0,60}|given (this|these|that)\b[^,]{0,60})")
_HEADER = (r"(background|objectives?|purpose|aims?|motivation|context|introduction|methods?|"
           r"methodology|approach|materials and methods|design|results?|findings|"
           r"conclusions?|significance|summary|implications?)\s*:")
# Without a comma only these, and not "Thus far" or "Yet another".
_BARE = r"(however|thus|hence|therefore|yet|but|consequently|here)(?= [a-z])(?! (far|another|again)\b)"
_CONNECTIVE = re.compile(rf"^(({_LEAD}|{_CLAUSE}),|{_BARE}|{_HEADER})\s*", re.IGNORECASE)
# A start that points back at the sentence before; "this paper" or "these results" point
# at the paper itself and are fine.
_ANAPHORA = re.compile(r"^(it|its|they|their|them|such|both|he|she|the latter|the former|"
                       r"(this|that|these|those)(?! (paper|work|study|research|article|survey|"
                       r"thesis|report|letter|chapter|position|findings?|results?|"
                       r"experiments?|analys[ie]s|observations?|insights?|contributions?)\b))\b",
                       re.IGNORECASE)


def standalone(sentence: str) -> tuple[str, bool]:
    """``(text, leans)``: the sentence without a leading connective ("However,",
    "To this end,", "Results:"), its first letter capitalized if that was a plain word, and
    whether what is left still leans on the sentence before ("It ...", "This design ...")."""
    text = sentence
    for _ in range(2):  # "Finally, however, ..." drops both
        match = _CONNECTIVE.match(text)
        if not match or not any(character.isalnum() for character in text[match.end():]):
            break  # nothing left worth showing: keep the sentence whole
        text = text[match.end():]
    if text is not sentence:
        word = text.split(" ", 1)[0]
        if word.replace("-", "").isalpha() and word.islower():
            text = text[0].upper() + text[1:]
    return text, bool(_ANAPHORA.match(text))


def _tldr_scores(probabilities: np.ndarray) -> np.ndarray:
    """How likely a method sentence, less ``TLDR_LATENESS`` at the end of the abstract:
    the sentence that says what a paper does comes before the ones detailing how."""
    count = len(probabilities)
    lateness = np.arange(count) / max(count - 1, 1)
    return probabilities[:, ROLES.index("method")] - TLDR_LATENESS * lateness


def _field_scores(probabilities: np.ndarray) -> dict[str, np.ndarray]:
    scores = {"tldr": _tldr_scores(probabilities)}
    for name, roles in FIELD_ROLES.items():
        if name != "tldr":
            scores[name] = probabilities[:, ROLES.index(roles[0])]
    return scores


def _best(score: np.ndarray, leans: list[bool], free: np.ndarray, floor: float) -> int | None:
    """The highest-scoring free sentence at or above ``floor``, giving way to a stand-alone
    one with at least ``STANDALONE_SHARE`` of its score."""
    order = [int(i) for i in np.argsort(-score, kind="stable") if free[i] and score[i] >= floor]
    if not order:
        return None
    top = order[0]
    if leans[top]:
        for index in order[1:]:
            if score[index] < STANDALONE_SHARE * score[top]:
                break
            if not leans[index]:
                return index
    return top


def pick_indices(probabilities: np.ndarray, leans: list[bool]) -> dict[str, int]:
    """The sentence index of each field from the role probabilities (``roles.ROLES``
    columns): the TL;DR first (the likeliest method sentence, early ones preferred), then the other
    fields from the most to the least confident, each on a sentence not used yet. The
    method field repeats the TL;DR only when no other sentence is likely a method."""
    count = len(probabilities)
    if not count:
        return {}
    scores, free = _field_scores(probabilities), np.ones(count, dtype=bool)
    chosen = {"tldr": _best(scores["tldr"], leans, free, -1.0)}
    free[chosen["tldr"]] = False
    pending = [name for name in FIELD_ROLES if name != "tldr"]
    while pending:
        found = {name: _best(scores[name], leans, free, MIN_PROBABILITY[name]) for name in pending}
        ready = [name for name in pending if found[name] is not None]
        if not ready:
            break
        name = max(ready, key=lambda candidate: scores[candidate][found[candidate]])
        chosen[name] = found[name]
        free[found[name]] = False
        pending.remove(name)
    method = ROLES.index("method")
    if "method" not in chosen and probabilities[chosen["tldr"], method] >= MIN_PROBABILITY["method"]:
        chosen["method"] = chosen["tldr"]  # the TL;DR is the only method sentence: say it again
    return chosen


def pick_fields(sentences: list[str], probabilities: np.ndarray) -> dict[str, str]:
    """One stand-alone sentence per field (see ``pick_indices``); a field with no likely
    sentence stays empty."""
    texts, leans = zip(*map(standalone, sentences)) if sentences else ((), ())
    return {name: texts[index] for name, index in pick_indices(probabilities, list(leans)).items()}


@dataclass
class ExtractiveSummarizer:
    """Summaries from abstract sentences; no generative model, no encoder, no device."""

    backend: str = "extractive"
    model: str = field(default_factory=lambda: shipped_model().version)
    """The role model's version: a retrained model makes stored summaries stale too."""
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
            fields = pick_fields(sentences, role_probabilities(sentences, title)) if sentences else {}
            results.append(fields or {"tldr": title})
        return results

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        return [with_provenance(Summary(**fields), paper, self, extractive=True)
                for paper, fields in zip(papers, self.fields_for(papers))]

    def close(self) -> None:
        """Nothing to release."""
