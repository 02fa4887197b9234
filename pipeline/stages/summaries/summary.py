"""The ``Summary`` type, the ``Summarizer`` protocol every backend implements, and the
pure parser of a model's reply (tested on exact text, no model loaded)."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol, Sequence

from pipeline.core.errors import ConfigError
from pipeline.core.paper import Paper

log = logging.getLogger(__name__)

FIELDS = ("tldr", "problem", "method", "results", "why_it_matters")
"""The five text fields of every summary, in reading order."""

MAX_FIELD_CHARACTERS = 1200
"""A model that rambles is cut here; nothing a reader decides on in ten seconds is longer."""

SUMMARY_JSON_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in FIELDS},
    "required": list(FIELDS),
    "additionalProperties": False,
}
"""The JSON schema of a reply, sent to servers that constrain decoding to it (structured
output); the strict parser still judges every reply, constrained or not."""

MAX_REPLY_CHARACTERS = 65_536
"""Only the start of a reply is parsed: five capped fields fit many times over, and the
parser's work stays bounded whatever a server sends."""


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
    """Fields copied from the abstract because the model gave nothing usable for them
    (including every field of ``ungrounded_fields`` the abstract had a sentence for)."""

    ungrounded_fields: tuple[str, ...] = ()
    """Fields the model wrote that were not grounded in the title and abstract (under
    ``grounding.MIN_GROUNDED_SHARE`` of their content words there): their text was dropped
    for the extractive field, or for "" when the abstract had no sentence for it."""

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


# Each failed start costs a scan of the text (the decoder's error counts lines up to it):
# a reply of nothing but "{" would be quadratic. A summary starts within the first few.
_MAX_JSON_STARTS = 256


def _json_objects(text: str):
    """Every JSON object that starts somewhere in the text (fences and prose around it ignored)."""
    decoder = json.JSONDecoder()
    for _, match in zip(range(_MAX_JSON_STARTS), re.finditer(r"\{", text)):
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
    ``fallback_fields``. The output is only ever treated as plain text; only its first
    ``MAX_REPLY_CHARACTERS`` are read.
    """
    text = (text or "")[:MAX_REPLY_CHARACTERS]
    found = _fields_from_json(text) or _fields_from_lines(text)
    values, borrowed = {}, []
    for name in FIELDS:
        values[name] = found.get(name, "")
        if not values[name] and fallback is not None and getattr(fallback, name):
            values[name] = getattr(fallback, name)
            borrowed.append(name)
    return Summary(**values, fallback_fields=tuple(borrowed))


def with_provenance(summary: Summary, paper: Paper, summarizer: Summarizer,
                    **extra) -> Summary:
    """The summary stamped with the paper version, backend, model, prompt and time."""
    return replace(summary, arxiv_id=paper.arxiv_id, version=paper.version,
                   backend=summarizer.backend, model=summarizer.model,
                   prompt_version=summarizer.prompt_version, created_at=now_utc(), **extra)
