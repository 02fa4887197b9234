"""Model replies → summaries: the strict parser, with the extractive summary filling any
field a reply left empty."""
from __future__ import annotations

from typing import Sequence

from pipeline.core.paper import Paper
from pipeline.stages.summaries.extractive import ExtractiveSummarizer
from pipeline.stages.summaries.summary import Summary, parse_summary


def parse_replies(texts: Sequence[str], papers: Sequence[Paper]) -> list[Summary]:
    """``parse_summary`` for each reply; only papers whose reply left a field empty pay
    for the extractive fallback."""
    parsed = [parse_summary(text) for text in texts]
    needy = [index for index, summary in enumerate(parsed) if not all(summary.fields().values())]
    if needy:
        fallback = ExtractiveSummarizer().fields_for([papers[i] for i in needy])
        for index, fields in zip(needy, fallback):
            parsed[index] = parse_summary(texts[index], Summary(**fields))
    return parsed
