"""Summaries: the ``Summary`` type, the ``Summarizer`` protocol, output parsing and the stage.

A summary belongs to one paper version and one (backend, model, prompt version). It is
stale when the paper gets a new version or when the configured backend's model or prompt
changes; ``run_stage`` (re)summarizes exactly the stale and missing papers, writes each
chunk as soon as it is done, and records one paper's failure without losing the others.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol, Sequence

from pipeline.config import ConfigError, Settings
from pipeline.paper import Paper

log = logging.getLogger(__name__)

FIELDS = ("tldr", "problem", "method", "results", "why_it_matters")
"""The five text fields of every summary, in reading order."""

BACKENDS = ("auto", "extractive", "hf", "openai")
"""The values the ``summarizer`` setting accepts."""

MAX_FIELD_CHARACTERS = 1200
"""A model that rambles is cut here; nothing a reader decides on in ten seconds is longer."""


@dataclass(frozen=True)
class Summary:
    """A structured summary of one paper version, with where it came from."""

    arxiv_id: str = ""
    """The paper's arXiv id (no version)."""

    version: int = 0
    """The paper version the summary was made from."""

    tldr: str = ""
    """One sentence: what the paper does and found."""

    problem: str = ""
    """The problem the paper addresses ("" when unknown)."""

    method: str = ""
    """How it addresses it ("" when unknown)."""

    results: str = ""
    """Its main results ("" when unknown)."""

    why_it_matters: str = ""
    """Why a reader of the paper's model family should care ("" when unknown)."""

    backend: str = ""
    """``extractive``, ``hf`` or ``openai``."""

    model: str = ""
    """The model that wrote it (a Hugging Face id, folder, server model, or the encoder)."""

    prompt_version: str = ""
    """The prompt (``summarize.v1``) or extractive algorithm (``extractive.v1``) version."""

    created_at: datetime | None = None
    """When the summary was made (UTC)."""

    extractive: bool = False
    """True when every field is a sentence copied from the abstract (nothing generated)."""

    fallback_fields: tuple[str, ...] = ()
    """Fields copied from the abstract because the model gave nothing usable for them."""

    def fields(self) -> dict[str, str]:
        """The five text fields by name."""
        return {name: getattr(self, name) for name in FIELDS}


@dataclass(frozen=True)
class SummaryFailure:
    """One paper a backend could not summarize; it is retried on the next run."""

    arxiv_id: str
    """The paper's arXiv id."""

    error: str
    """One line saying what went wrong."""


class BackendUnavailable(ConfigError):
    """The backend cannot start at all (no model folder, no server); the message names the fix."""


class Summarizer(Protocol):
    """What every backend provides. ``summarize`` returns one result per paper, in order.
    A backend may also set ``chunk_size``, the papers stored per chunk (default: eight
    batches)."""

    backend: str
    model: str
    prompt_version: str

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]: ...

    def close(self) -> None: ...


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ---- parsing model output ---------------------------------------------------

_ALIASES = {"tldr": "tldr", "tl_dr": "tldr", "summary": "tldr", "problem": "problem",
            "method": "method", "approach": "method", "results": "results",
            "result": "results", "findings": "results", "why_it_matters": "why_it_matters",
            "why": "why_it_matters", "significance": "why_it_matters",
            "impact": "why_it_matters"}
# C0, DEL, C1, and lone surrogates (a server's JSON can hold "\ud83d" escapes), which
# no database column or terminal takes.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_FIELD = re.compile(r"^\W*([A-Za-z][A-Za-z ;_'-]{1,30}?)\W*[:=]\s*(.+)$")


def _key(name: str) -> str | None:
    return _ALIASES.get(re.sub(r"[^a-z]+", "_", name.lower()).strip("_"))


_NOTHING = ("", "n/a", "none", "null", "unknown", "-", '""')


def _plain(value) -> str:
    """Model output as plain text: lists joined, control characters and runs of spaces gone."""
    parts, stack = [], [value]
    while stack:  # a stack, not recursion: a reply can nest lists deeper than Python recurses
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif item is not None and not isinstance(item, bool):
            text = " ".join(_CONTROL.sub(" ", str(item)).split())
            if text.lower() not in _NOTHING:
                parts.append(text)
    text = " ".join(parts)
    return "" if text.lower() in _NOTHING else text[:MAX_FIELD_CHARACTERS]


def _json_objects(text: str):
    """Every JSON object that starts somewhere in the text (fences and prose around it ignored)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            continue
        if isinstance(value, dict):
            yield value


def _fields_from_json(text: str) -> dict[str, str]:
    """The first JSON object with a non-empty known field; else the first with known
    fields, all empty (the model said "" everywhere: nothing to read line by line)."""
    empty: dict[str, str] = {}
    for candidate in _json_objects(text):
        found = {_key(name): _plain(value) for name, value in candidate.items() if _key(name)}
        if any(found.values()):
            return found
        empty = empty or found
    return empty


def _fields_from_lines(text: str) -> dict[str, str]:
    """``TL;DR: ...`` style answers from models that ignored the JSON instruction."""
    found = {}
    for line in text.splitlines():
        match = _LINE_FIELD.match(line.strip())
        if match and _key(match.group(1)) and _key(match.group(1)) not in found:
            found[_key(match.group(1))] = _plain(match.group(2).strip().strip('",'))
    return found


def parse_summary(text: str, fallback: Summary | None = None) -> Summary:
    """Turn model output into a ``Summary`` (provenance left empty for the caller to fill).

    Tolerates code fences, prose around the JSON, aliases and missing fields. Fields the
    model left empty are copied from ``fallback`` (an extractive summary) and listed in
    ``fallback_fields``. The output is only ever treated as plain text.
    """
    text = text or ""
    found = _fields_from_json(text) or _fields_from_lines(text)
    values, borrowed = {}, []
    for name in FIELDS:
        values[name] = found.get(name, "")
        if not values[name] and fallback is not None and getattr(fallback, name):
            values[name] = getattr(fallback, name)
            borrowed.append(name)
    return Summary(**values, fallback_fields=tuple(borrowed))


def parse_replies(texts: Sequence[str], papers: Sequence[Paper]) -> list[Summary]:
    """``parse_summary`` for each reply; only papers whose reply left a field empty pay
    for the extractive fallback."""
    parsed = [parse_summary(text) for text in texts]
    needy = [index for index, summary in enumerate(parsed) if not all(summary.fields().values())]
    if needy:
        from pipeline.backends.extractive import ExtractiveSummarizer

        fallback = ExtractiveSummarizer().fields_for([papers[i] for i in needy])
        for index, fields in zip(needy, fallback):
            parsed[index] = parse_summary(texts[index], Summary(**fields))
    return parsed


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
        from pipeline.backends.hf import HFSummarizer
        return HFSummarizer.from_settings(settings)
    if name == "openai":
        from pipeline.backends.openai import OpenAISummarizer
        return OpenAISummarizer.from_settings(settings)
    from pipeline.backends.extractive import ExtractiveSummarizer
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
    from storage.summaries import save_summaries

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
    from storage.papers import load_papers
    from storage.summaries import pending_ids

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


def with_provenance(summary: Summary, paper: Paper, summarizer: Summarizer,
                    **extra) -> Summary:
    """The summary stamped with the paper version, backend, model, prompt and time."""
    return replace(summary, arxiv_id=paper.arxiv_id, version=paper.version,
                   backend=summarizer.backend, model=summarizer.model,
                   prompt_version=summarizer.prompt_version, created_at=now_utc(), **extra)
