"""Summaries: choosing a backend, and the stage (the type and parser are in ``summary``).

A summary belongs to one paper version and one (backend, model, prompt version). It is
stale when the paper gets a new version or when the configured backend's model or prompt
changes; ``run_stage`` (re)summarizes exactly the stale and missing papers, writes each
chunk as soon as it is done, and records one paper's failure without losing the others.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from pipeline.core.errors import ConfigError
from pipeline.core.paper import Paper
from pipeline.core.settings import SUMMARIZERS, Settings
from pipeline.stages.summaries.summary import (BackendUnavailable, Summarizer, Summary,
                                               SummaryFailure)
from storage.papers import load_papers
from storage.summaries import pending_ids, save_summaries

log = logging.getLogger(__name__)

BACKENDS = SUMMARIZERS
"""The values the ``summarizer`` setting accepts (defined in core, where settings are checked)."""


# ---- choosing a backend --------------------------------------------------------

def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_backend(settings: Settings) -> str:
    """The backend to use: ``auto`` is ``hf`` with CUDA and a model, else ``extractive``."""
    name = (settings.summarizer or "auto").strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"summarizer = {settings.summarizer!r} is not a backend; "
                          f"use one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "hf" if settings.model and cuda_available() else "extractive"
    return name


def make_summarizer(settings: Settings) -> Summarizer:
    """The configured backend, ready to run (generative models load on first use)."""
    name = resolve_backend(settings)
    if name == "hf":
        from pipeline.stages.summaries.hf import HFSummarizer
        return HFSummarizer.from_settings(settings)
    if name == "openai":
        from pipeline.stages.summaries.openai import OpenAISummarizer
        return OpenAISummarizer.from_settings(settings)
    from pipeline.stages.summaries.extractive import ExtractiveSummarizer
    return ExtractiveSummarizer.from_settings(settings)


# ---- the stage -------------------------------------------------------------------

@dataclass
class StageResult:
    """What one summarize pass did; ``as_dict`` is what the run report stores."""

    backend: str
    model: str
    prompt_version: str
    pending: int = 0
    summarized: int = 0
    errors: list[dict] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        record = asdict(self)
        record["failed"] = len(self.errors)
        if record["error"] is None:
            del record["error"]
        return record


def _summarize_isolated(summarizer: Summarizer,
                        papers: list[Paper]) -> list[Summary | SummaryFailure]:
    """The batch in one call; if the call itself fails, each paper alone, so one bad
    paper costs only itself."""
    try:
        return summarizer.summarize(papers)
    except BackendUnavailable:
        raise
    except Exception as error:
        if len(papers) == 1:
            return [SummaryFailure(papers[0].arxiv_id, f"{type(error).__name__}: {error}")]
        log.warning("batch of %d failed (%s); retrying paper by paper", len(papers), error)
    return [result for paper in papers for result in _summarize_isolated(summarizer, [paper])]


def _store(settings: Settings, results, stage: StageResult) -> None:
    done = [item for item in results if isinstance(item, Summary)]
    for item in results:
        if isinstance(item, SummaryFailure):
            stage.errors.append({"arxiv_id": item.arxiv_id, "error": item.error.splitlines()[0]
                                 if item.error else "unknown error"})
    save_summaries(settings.db_path, done)
    stage.summarized += len(done)


def summarize_pending(settings: Settings, limit: int | None = None,
                      summarizer: Summarizer | None = None) -> dict:
    """(Re)summarize the stale and missing papers for the configured backend."""
    summarizer = summarizer or make_summarizer(settings)
    stage = StageResult(summarizer.backend, summarizer.model, summarizer.prompt_version)
    ids = pending_ids(settings.db_path, summarizer.backend, summarizer.model,
                      summarizer.prompt_version)
    ids = ids[:limit] if limit else ids
    stage.pending = len(ids)
    # Chunks bound what a kill can lose: each chunk is stored before the next is generated.
    chunk = getattr(summarizer, "chunk_size", 0) or max(1, settings.batch_size) * 8
    try:
        for start in range(0, len(ids), chunk):
            papers = load_papers(settings.db_path, ids[start:start + chunk])
            _store(settings, _summarize_isolated(summarizer, papers), stage)
            log.info("summarized %d of %d", stage.summarized, stage.pending)
    except BackendUnavailable as error:
        stage.error = str(error)
    finally:
        summarizer.close()
    return stage.as_dict()


def run_stage(settings: Settings, report: dict) -> dict:
    """The ``octet run`` stage: summaries for every new, updated or not yet summarized paper."""
    result = summarize_pending(settings)
    if result.get("error"):
        report.setdefault("errors", []).append(f"summarize: {result['error']}")
    return result
