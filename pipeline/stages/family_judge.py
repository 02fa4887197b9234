"""The LLM family judge: a generative model (the configured ``hf`` or ``openai`` backend)
reads a paper's title and abstract under the written labeling rules (``prompts/families.v1``)
and answers with one JSON object naming the families, which is parsed strictly.

It works beside the embedding head, not instead of it: ``octet classify --backend llm`` shows
both, and the re-check asks it only about the papers the head is unsure of (a probability
near a family's threshold, or a paper without an abstract). A stored judgement wins over the
head's labels (the reader's own labels still win over both) until the paper gets a new
version. A reply that is not exactly the asked-for object is that paper's failure: the
head's labels stay, and the paper is asked again on the next re-check.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Sequence

from pipeline.core.errors import ConfigError
from pipeline.core.families import CODES, NONE
from pipeline.core.paper import Paper
from prompts import FAMILIES_PROMPT, families_messages

log = logging.getLogger(__name__)

JUDGE_MAX_NEW_TOKENS = 64
"""Tokens a reply may take: the object with all eight codes is about 45."""

MAX_REPLY_CHARACTERS = 4096
"""A longer reply is refused unread: the longest right answer is about 100 characters
(plus the empty ``<think></think>`` block some servers put before it)."""

DEFAULT_MARGIN = 0.15
"""A family's probability this close to its threshold makes the head's call uncertain."""

CHUNK_SIZE = 32
"""Papers judged, then stored, before the next ones are asked: a stop loses at most these."""

NEEDS_MODEL = ("the llm judge needs a generative model: set summarizer = openai (with model "
               "and openai_base_url) or hf (with model) in config.toml, or OCTET_SUMMARIZER "
               "and OCTET_MODEL (summarizer = auto means hf only on a GPU)")
"""The one line a judge command says when no generative backend is configured."""

_THINK = re.compile(r"\A<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)
_EXCERPT_CHARACTERS = 60


class JudgeReplyError(ValueError):
    """A model's reply that is not exactly ``{"families": [codes]}``; the message says how."""


class JudgeUnreachable(RuntimeError):
    """The judge's server cannot be reached at all (exit 3); ``result`` holds what was
    judged and stored before, when a re-check was under way."""

    result: dict | None = None


# ---- the strict parser ---------------------------------------------------------------------


def parse_families_reply(text: str) -> tuple[str, ...]:
    """The family codes of a reply, in family order (``()`` for none). Only what real
    servers add around the object is tolerated: surrounding whitespace, a ```json fence
    around the whole reply, one ``<think>…</think>`` block before it. Anything else raises
    ``JudgeReplyError``: not JSON, another shape, an unknown or repeated code, "none" with
    codes, a reply over ``MAX_REPLY_CHARACTERS``."""
    if not isinstance(text, str):
        raise JudgeReplyError("the reply is not text")
    if len(text) > MAX_REPLY_CHARACTERS:
        raise JudgeReplyError(f"the reply is {len(text)} characters long, over the "
                              f"{MAX_REPLY_CHARACTERS} a families answer can need")
    return _codes(_json_value(_unwrapped(text)))


def _unwrapped(text: str) -> str:
    """The reply without a leading think block and without a fence around all of it."""
    body = _THINK.sub("", text.strip(), count=1).strip()
    fenced = _FENCE.fullmatch(body)
    return fenced.group(1) if fenced else body


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise JudgeReplyError("the reply repeats a key of its JSON object")
    return dict(pairs)


def _json_value(body: str):
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except JudgeReplyError:
        raise
    except (ValueError, RecursionError):
        raise JudgeReplyError(f"the reply is not one JSON object ({_excerpt(body)})") from None


def _excerpt(text: str) -> str:
    """The reply's start on one line (it is untrusted: printable characters only)."""
    start = " ".join("".join(c if c.isprintable() else " " for c in text[:200]).split())
    if not start:
        return "the reply was empty"
    return f"reply: {start[:_EXCERPT_CHARACTERS]!r}" + (
        "…" if len(start) > _EXCERPT_CHARACTERS else "")


def _codes(value) -> tuple[str, ...]:
    if not isinstance(value, dict) or list(value) != ["families"]:
        raise JudgeReplyError('the reply must be a JSON object with the one key "families"')
    listed = value["families"]
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise JudgeReplyError('"families" must be a list of family codes')
    unknown = [item for item in listed if item not in CODES and item != NONE]
    if unknown:
        raise JudgeReplyError(f"the reply names {len(unknown)} unknown code(s); use "
                              f"{', '.join(CODES)} (or [] for none)")
    if len(set(listed)) != len(listed):
        raise JudgeReplyError("the reply names a family twice")
    if NONE in listed and len(listed) > 1:
        raise JudgeReplyError('"none" is never combined with a family')
    return tuple(code for code in CODES if code in listed)


# ---- the judge -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """The families the judge gave one paper."""

    arxiv_id: str
    """The paper's id (or whatever id the input row carried)."""

    labels: tuple[str, ...]
    """Family codes in family order; empty means none."""

    judge_version: str
    """``backend:model:prompt`` of the judge that gave them."""


@dataclass(frozen=True)
class JudgeFailure:
    """A paper the judge gave no usable answer for; its head labels stay."""

    arxiv_id: str
    """The paper's id."""

    error: str
    """One line saying what went wrong."""


@dataclass
class FamilyJudge:
    """A generative model asked for the families of papers, one prompt per paper."""

    backend: str
    """``openai`` or ``hf``."""

    model: str
    """The server's model id, or the Hugging Face id or folder."""

    client: object
    """The backend's client (``OpenAISummarizer`` or ``HFSummarizer``) that talks to it."""

    @property
    def judge_version(self) -> str:
        """The provenance stored with every judgement: ``backend:model:prompt``."""
        return f"{self.backend}:{self.model}:{FAMILIES_PROMPT}"

    def judge(self, papers: Sequence[Paper]) -> list[Judgement | JudgeFailure]:
        """One result per paper, in order; raises ``JudgeUnreachable`` when the server
        cannot be reached at all."""
        papers = list(papers)
        if not papers:
            return []
        replies = self._replies([families_messages(p.title, p.abstract) for p in papers])
        return [self._verdict(paper, reply) for paper, reply in zip(papers, replies)]

    def _replies(self, conversations: list[list[dict]]) -> list:
        from pipeline.stages.summaries.summary import BackendUnavailable

        if self.backend == "hf":  # batched, greedy
            return self.client.generate_texts([self.client.prompt_from(c) for c in conversations])
        try:  # bounded concurrency, retries, deadline and size cap of the summary client
            return self.client.chat_many(conversations)
        except BackendUnavailable as error:
            raise JudgeUnreachable(str(error)) from None

    def _verdict(self, paper: Paper, reply) -> Judgement | JudgeFailure:
        if not isinstance(reply, str):
            return JudgeFailure(paper.arxiv_id, str(reply).splitlines()[0])
        try:
            return Judgement(paper.arxiv_id, parse_families_reply(reply), self.judge_version)
        except JudgeReplyError as error:
            return JudgeFailure(paper.arxiv_id, str(error))

    def close(self) -> None:
        """Close the connections, or free the model."""
        self.client.close()


def make_judge(settings) -> FamilyJudge:
    """The judge on the configured generative backend (a model loads on first use); a
    ``ConfigError`` naming the fix when none is configured."""
    from pipeline.stages.summaries import resolve_backend

    backend = resolve_backend(settings)
    if backend not in ("hf", "openai") or not settings.model:
        raise ConfigError(NEEDS_MODEL)
    if backend == "openai":
        from pipeline.stages.summaries.openai import OpenAISummarizer as Client
    else:
        from pipeline.stages.summaries.hf import HFSummarizer as Client
    client = Client.from_settings(settings)
    client.max_new_tokens = JUDGE_MAX_NEW_TOKENS
    return FamilyJudge(backend, client.model, client)


def judge_all(judge: FamilyJudge, papers: Sequence[Paper]) -> list[Judgement | JudgeFailure]:
    """Every paper judged, ``CHUNK_SIZE`` at a time (bounded memory on the hf path)."""
    papers = list(papers)
    results: list[Judgement | JudgeFailure] = []
    for start in range(0, len(papers), CHUNK_SIZE):
        results += judge.judge(papers[start:start + CHUNK_SIZE])
    return results


# ---- re-checking the head's uncertain papers -----------------------------------------------


def recheck_uncertain(settings, margin: float = DEFAULT_MARGIN, limit: int | None = None,
                      judge: FamilyJudge | None = None) -> dict:
    """Judge the stored papers whose current head scores are uncertain and that have no
    judgement of their current version; store each chunk's judgements as it is done.
    Returns ``checked`` (papers asked), ``changed`` (judged otherwise than the head),
    ``failed``, ``judge_version`` and ``errors`` (``arxiv_id``, ``error``)."""
    from pipeline.stages.families import current_head
    from storage.families import uncertain_papers

    judge = judge or make_judge(settings)
    head = current_head(settings.home)
    rows = uncertain_papers(settings.db_path, head.version,
                            dict(zip(CODES, head.thresholds.tolist())), margin, limit)
    result = {"checked": 0, "changed": 0, "failed": 0, "judge_version": judge.judge_version,
              "errors": []}
    try:
        for start in range(0, len(rows), CHUNK_SIZE):
            _recheck_chunk(settings, judge, rows[start:start + CHUNK_SIZE], result)
            log.info("re-checked %d of %d uncertain papers", result["checked"], len(rows))
    except JudgeUnreachable as error:
        error.result = result
        raise
    finally:
        judge.close()
    return result


def _recheck_chunk(settings, judge: FamilyJudge, rows: list[dict], result: dict) -> None:
    from storage.families import store_judgements

    papers = [Paper(arxiv_id=row["arxiv_id"], version=row["version"], title=row["title"],
                    abstract=row["abstract"] or "") for row in rows]
    stored = []
    for row, verdict in zip(rows, judge.judge(papers)):
        if isinstance(verdict, JudgeFailure):
            result["errors"].append({"arxiv_id": verdict.arxiv_id, "error": verdict.error})
            continue
        stored.append({"arxiv_id": row["arxiv_id"], "version": row["version"],
                       "judge_version": verdict.judge_version, "labels": list(verdict.labels)})
        result["changed"] += set(verdict.labels) != set(row["labels"])
    store_judgements(settings.db_path, stored)
    result["checked"] += len(rows)
    result["failed"] = len(result["errors"])


def classify_stage(settings, report: dict) -> dict:
    """The ``octet run`` classify stage, then, with ``families_judge = "recheck"``, the
    judge's re-check of the papers the head is unsure of (``result["judge"]``). A judge that
    cannot run is a report error; the head's scores are stored either way."""
    from pipeline.stages import families

    result = families.run_stage(settings, report)
    if settings.families_judge == "recheck":
        result["judge"] = _stage_recheck(settings, report)
    return result


def _stage_recheck(settings, report: dict) -> dict:
    try:
        return recheck_uncertain(settings)
    except Exception as error:  # the classify stage's scores are stored; keep its report
        log.error("families judge failed: %s", error, exc_info=not isinstance(
            error, (ConfigError, JudgeUnreachable)))
        report.setdefault("errors", []).append(f"families judge: {error}")
        return {"error": str(error)}


# ---- measuring the judge -------------------------------------------------------------------


def judged_metrics(labels: list[list[str]], verdicts: Sequence[Judgement | JudgeFailure]) -> dict:
    """``families.evaluate`` of the judge's labels against ``labels``; a paper the judge
    failed counts as predicted none, and ``failed`` says how many there were."""
    from pipeline.stages.families import evaluate, label_matrix

    predicted = [list(v.labels) if isinstance(v, Judgement) else [] for v in verdicts]
    metrics = evaluate(label_matrix(labels), label_matrix(predicted))
    metrics["failed"] = sum(isinstance(v, JudgeFailure) for v in verdicts)
    return metrics
