"""Summaries: choosing a backend, and the stage (the type and parser are in ``summary``).

A summary belongs to one paper version and one (backend, model, prompt version). It is
stale when the paper gets a new version or when the configured backend's model or prompt
changes; ``run_stage`` (re)summarizes exactly the stale and missing papers, writes each
chunk as soon as it is done, and records one paper's failure without losing the others.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from pipeline.core.errors import ConfigError
from pipeline.core.paper import Paper
from pipeline.core.settings import SUMMARIZERS, Settings
from pipeline.stages import progress
from pipeline.stages.summaries.summary import (BackendUnavailable, Summarizer, Summary,
                                               SummaryFailure)
from storage.papers import load_papers
from storage.summaries import pending_ids, save_summaries

log = logging.getLogger(__name__)

BACKENDS = SUMMARIZERS
"""The values the ``summarizer`` setting accepts (defined in core, where settings are checked)."""


# ---- choosing a backend --------------------------------------------------------

def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_backend(settings: Settings, cuda: Callable[[], bool] | None = None) -> str:
    """The backend to use: ``auto`` is ``hf`` on a machine with CUDA (the configured model,
    or ``hf.DEFAULT_MODEL`` when none is: see ``plan_backend``), else ``extractive``.
    ``cuda`` answers whether CUDA is there (default: ``cuda_available``)."""
    name = (settings.summarizer or "auto").strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"summarizer = {settings.summarizer!r} is not a backend; "
                          f"use one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "hf" if (cuda or cuda_available)() else "extractive"
    return name


@dataclass(frozen=True)
class Plan:
    """What a summarize run uses once ``auto`` has chosen."""

    settings: Settings
    """The settings with ``summarizer`` named (never ``auto``) and, for the default
    model, ``model`` set to its hub id."""

    weights: str | None = None
    """The cache folder the default model loads from (None: ``model`` itself)."""

    notice: str | None = None
    """One line for the reader when ``auto`` fetched the default model or could not."""


def plan_backend(settings: Settings, cuda: Callable[[], bool] | None = None,
                 fetch: Callable[[], tuple[str, bool]] | None = None) -> Plan:
    """The backend ``settings`` ask for, ``auto`` resolved. On a machine with CUDA and no
    model configured, ``auto`` is ``hf`` on ``DEFAULT_MODEL``: from the Hugging Face cache,
    or fetched into it once (``fetch``; one line says so); when it cannot be fetched, one
    line says why and the run is extractive."""
    name = resolve_backend(settings, cuda)
    if name != "hf" or settings.model or (settings.summarizer or "").strip().lower() != "auto":
        return Plan(replace(settings, summarizer=name))
    from pipeline.stages.summaries.hf import DEFAULT_MODEL, fetch_default_model

    try:
        folder, fetched = (fetch or fetch_default_model)()
    except Exception as error:  # offline, no network, hub errors: all mean the same here
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        return Plan(replace(settings, summarizer="extractive"), notice=(
            f"no model is configured and the default {DEFAULT_MODEL} could not be fetched "
            f"from the Hugging Face hub ({reason}); extractive summaries this run (set model "
            f"/ OCTET_MODEL to a local folder or reachable model)"))
    notice = (f"no model is configured: fetched the default {DEFAULT_MODEL} from the Hugging "
              f"Face hub once, into {folder} (set model / OCTET_MODEL to use another)"
              if fetched else None)
    return Plan(replace(settings, summarizer="hf", model=DEFAULT_MODEL), folder, notice)


def build_summarizer(plan: Plan) -> Summarizer:
    """The planned backend, ready to run (generative models load on first use)."""
    name = plan.settings.summarizer
    if name == "hf":
        from pipeline.stages.summaries.hf import HFSummarizer
        summarizer = HFSummarizer.from_settings(plan.settings)
        summarizer.weights = plan.weights
        return summarizer
    if name == "openai":
        from pipeline.stages.summaries.openai import OpenAISummarizer
        return OpenAISummarizer.from_settings(plan.settings)
    from pipeline.stages.summaries.extractive import ExtractiveSummarizer
    return ExtractiveSummarizer.from_settings(plan.settings)


def _configured(settings: Settings) -> tuple[Summarizer, str | None]:
    """The configured backend and the line ``auto`` has for the reader (logged), if any."""
    plan = plan_backend(settings)
    if plan.notice:
        log.warning(plan.notice)
    elif plan.weights:
        log.info("no model is configured: using the default %s from %s",
                 plan.settings.model, plan.weights)
    return build_summarizer(plan), plan.notice


def make_summarizer(settings: Settings) -> Summarizer:
    """The configured backend, ready to run (generative models load on first use); the
    line ``auto`` has for the reader, if any, is logged."""
    return _configured(settings)[0]


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
    notice: str | None = None
    """The line ``auto`` has for the reader (default model fetched, or not), if any."""

    def as_dict(self) -> dict:
        record = asdict(self)
        record["failed"] = len(self.errors)
        for optional in ("error", "notice"):
            if record[optional] is None:
                del record[optional]
        return record


def summarize_isolated(summarizer: Summarizer,
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
    return [result for paper in papers for result in summarize_isolated(summarizer, [paper])]


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
    notice = None
    if summarizer is None:
        summarizer, notice = _configured(settings)
    stage = StageResult(summarizer.backend, summarizer.model, summarizer.prompt_version,
                        notice=notice)
    ids = pending_ids(settings.db_path, summarizer.backend, summarizer.model,
                      summarizer.prompt_version)
    ids = ids[:limit] if limit else ids
    stage.pending = len(ids)
    # Chunks bound what a kill can lose: each chunk is stored before the next is generated.
    chunk = getattr(summarizer, "chunk_size", 0) or max(1, settings.batch_size) * 8
    try:
        _summarize_chunks(settings, summarizer, ids, chunk, stage)
    except BackendUnavailable as error:
        stage.error = str(error)
    finally:
        summarizer.close()
    return stage.as_dict()


def _summarize_chunks(settings: Settings, summarizer: Summarizer, ids: list[str], chunk: int,
                      stage: StageResult) -> None:
    """Summarize and store ``ids`` chunk by chunk, under a bar (none when nothing is pending)."""
    if not ids:
        return
    with progress.bar("summarize", len(ids)) as shown:
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            papers = load_papers(settings.db_path, part)
            _store(settings, summarize_isolated(summarizer, papers), stage)
            log.info("summarized %d of %d", stage.summarized, stage.pending)
            shown.update(len(part))


def run_stage(settings: Settings, report: dict) -> dict:
    """The ``octet run`` stage: summaries for every new, updated or not yet summarized paper."""
    result = summarize_pending(settings)
    if result.get("error"):
        report.setdefault("errors", []).append(f"summarize: {result['error']}")
    return result
