"""Model replies → summaries: the strict parser, the check that a reply is a summary of its
paper, the check that each field is grounded in it, and the extractive summary filling any
field an accepted reply left empty or wrote ungrounded."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from pipeline.core.paper import Paper
from pipeline.stages.summaries.extractive import ExtractiveSummarizer, content_words
from pipeline.stages.summaries.grounding import MIN_GROUNDED_SHARE, paper_terms, ungrounded_fields
from pipeline.stages.summaries.summary import FIELDS, Summary, SummaryFailure, parse_summary

MIN_TOPIC_OVERLAP = 0.3
"""The share of a reply's distinct content words that must occur in the paper's title and
abstract. Faithful summaries of the real papers in ``tests/fixtures/hostile/summaries``
share 50-80%; a summary of another paper shares 10% (median), and of 420 swapped ones the
few over 30% were about a closely related paper of the same family."""

MIN_PAPER_WORDS = 20
"""Below this many distinct content words in title and abstract, a paper says too little
to judge a reply's topic by: only the usable-field rule applies."""

_EXCERPT_CHARACTERS = 60


def check_reply(summary: Summary, paper: Paper) -> str | None:
    """Why a parsed reply (before any fallback) cannot be stored for ``paper``, or None."""
    words = set(content_words(" ".join(summary.fields().values())))
    if not words:
        return "the model's reply has no usable summary field"
    known = set(content_words(f"{paper.title} {paper.abstract}"))
    if len(known) < MIN_PAPER_WORDS:
        return None
    shared = len(words & known) / len(words)
    if shared >= MIN_TOPIC_OVERLAP:
        return None
    return (f"the model's reply is not about this paper ({shared:.0%} of its content words "
            f"are in the title and abstract, {MIN_TOPIC_OVERLAP:.0%} needed)")


def _excerpt(text: str) -> str:
    """The reply's start on one line, for the error (the reply is untrusted: no controls)."""
    start = "".join(char if char.isprintable() else " " for char in (text or "")[:200])
    start = " ".join(start.split())
    if not start:
        return "the reply was empty"
    cut = start[:_EXCERPT_CHARACTERS]
    return f"reply: {cut!r}" + ("…" if len(start) > len(cut) else "")


def _filled(summary: Summary, extractive: dict[str, str]) -> Summary:
    """The summary with each empty field taken from the extractive one, listed in
    ``fallback_fields`` (in reading order)."""
    values = summary.fields()
    borrowed = set(summary.fallback_fields)
    for name in FIELDS:
        if not values[name] and extractive.get(name):
            values[name] = extractive[name]
            borrowed.add(name)
    return replace(summary, **values,
                   fallback_fields=tuple(name for name in FIELDS if name in borrowed))


def _with_fallback(parsed: list[Summary], papers: Sequence[Paper]) -> list[Summary]:
    """Only papers whose summary has an empty field pay for the extractive fallback."""
    needy = [index for index, summary in enumerate(parsed) if not all(summary.fields().values())]
    if needy:
        fallback = ExtractiveSummarizer().fields_for([papers[i] for i in needy])
        for index, fields in zip(needy, fallback):
            parsed[index] = _filled(parsed[index], fields)
    return parsed


def parse_replies(texts: Sequence[str], papers: Sequence[Paper]) -> list[Summary]:
    """``parse_summary`` for each reply, empty fields filled from the abstract, nothing
    refused (``summaries_from_replies`` is what the backends use)."""
    return _with_fallback([parse_summary(text) for text in texts], papers)


def ground(summary: Summary, paper: Paper) -> Summary | str:
    """The summary with its ungrounded fields emptied and listed in ``ungrounded_fields``
    (``_with_fallback`` then fills them from the abstract); or why it cannot be stored,
    when no field the model wrote is grounded. A paper that says too little to judge by
    (under ``MIN_PAPER_WORDS`` content words) keeps every field."""
    if len(set(content_words(f"{paper.title} {paper.abstract}"))) < MIN_PAPER_WORDS:
        return summary
    dropped = ungrounded_fields(summary, paper_terms(paper))
    written = [name for name in FIELDS if getattr(summary, name)]
    if dropped and len(dropped) == len(written):
        return (f"no field of the model's reply is grounded in the title and abstract (each "
                f"has under {MIN_GROUNDED_SHARE:.0%} of its content words there)")
    return replace(summary, **{name: "" for name in dropped}, ungrounded_fields=dropped)


def summaries_from_replies(texts: Sequence[str],
                           papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
    """One result per reply, in order: a ``SummaryFailure`` (not stored, retried next run)
    for a reply with no usable field, about something else than its paper, or with no
    grounded field; otherwise its summary, with the fields it left empty or wrote
    ungrounded filled from the abstract and listed in ``fallback_fields`` (the ungrounded
    ones in ``ungrounded_fields`` too)."""
    results: list[Summary | SummaryFailure] = []
    for text, paper in zip(texts, papers):
        summary = parse_summary(text)
        problem = check_reply(summary, paper)
        grounded = summary if problem else ground(summary, paper)
        problem = problem or (grounded if isinstance(grounded, str) else None)
        results.append(SummaryFailure(paper.arxiv_id, f"{problem}; {_excerpt(text)}")
                       if problem else grounded)
    accepted = [index for index, result in enumerate(results) if isinstance(result, Summary)]
    filled = _with_fallback([results[i] for i in accepted], [papers[i] for i in accepted])
    for index, summary in zip(accepted, filled):
        results[index] = summary
    return results
