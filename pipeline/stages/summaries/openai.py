"""Summaries from any OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp
server, Ollama, hosted APIs): base URL, model, key from an environment variable.

Enough requests in flight to keep a GPU server's batch full (``concurrency``, default 64:
a bounded pool of that many threads, each with one request), a deadline and a size cap on
each request, retries with backoff within a budget of waiting. Summary requests ask for
structured output (``response_format`` with the summary's JSON schema, which vLLM, SGLang,
llama.cpp and Ollama turn into constrained decoding); a server that refuses the field with
a 400 gets the same request without it, and plain requests for the rest of the run. Either
way the strict parser judges every reply."""
from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import requests
import urllib3

from pipeline.core.paper import Paper
from pipeline.stages.http import (BodyTooLarge, DeadlineAdapter, DeadlineExceeded, http_request,
                                  mebibytes)
from pipeline.stages.summaries.replies import summaries_from_replies
from pipeline.stages.summaries.summary import (SUMMARY_JSON_SCHEMA, BackendUnavailable, Summary,
                                               SummaryFailure, with_provenance)
from prompts import SUMMARY_PROMPT, summary_messages

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

MAX_REPLY_BYTES = 1024 * 1024
"""The longest reply read (1 MiB; a summary is about 1 KB): a longer one fails the paper."""


DEFAULT_CONCURRENCY = 64
"""Requests in flight by default: enough to fill a vLLM/SGLang batch on one GPU, few enough
for a laptop's llama.cpp or Ollama to queue (the ``openai_concurrency`` setting)."""

_SCHEMA_REFUSED = {400, 422}
"""The statuses with which a server refuses a request's fields (422: FastAPI validation)."""

_NAMES_SCHEMA = re.compile(r"response_format|json_schema|schema|guided|structured|grammar",
                           re.IGNORECASE)


class RequestFailed(RuntimeError):
    """One paper's request failed for good (after retries, or with a non-retryable status)."""


class SchemaRefused(RequestFailed):
    """The server answered a structured request with 400/422; ``named`` when its message
    names the structured-output field (then no structured request is worth sending)."""

    def __init__(self, message: str, named: bool):
        super().__init__(message)
        self.named = named


@dataclass
class OpenAISummarizer:
    """Chat-completions client; one request per paper, ``concurrency`` in flight at once."""

    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    """Requests in flight at once (a thread each; never more)."""
    max_new_tokens: int = 256
    structured: bool = True
    """Ask for structured output on summary requests (``response_format`` with
    ``SUMMARY_JSON_SCHEMA``); False sends plain requests only."""
    completion_tokens: int = 0
    """Output tokens the server reported (``usage.completion_tokens``) since construction."""
    timeout: float = 60.0
    """The deadline of one request: connect, headers and the whole reply."""
    retries: int = 5
    retry_delay: float = 1.0
    """Seconds before the first retry; doubled after each (with jitter), capped at 30."""
    retry_budget: float = 600.0
    """Seconds all retry waits of this summarizer (one run) may add up to."""
    backend: str = "openai"
    prompt_version: str = SUMMARY_PROMPT
    _session: requests.Session | None = field(default=None, repr=False)
    _down: threading.Event = field(default_factory=threading.Event, repr=False)
    _waited: float = field(default=0.0, repr=False)
    _budget_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _plain_only: threading.Event = field(default_factory=threading.Event, repr=False)
    _probed: threading.Event = field(default_factory=threading.Event, repr=False)
    _schema_accepted: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def from_settings(cls, settings) -> "OpenAISummarizer":
        if not settings.model:
            raise BackendUnavailable("the openai backend needs a model name: pass --model "
                                     "(the server's model id) or set OCTET_MODEL")
        return cls(model=settings.model, base_url=settings.openai_base_url,
                   api_key=os.environ.get(settings.openai_api_key_env) or None,
                   concurrency=max(1, settings.openai_concurrency),
                   max_new_tokens=settings.max_new_tokens, timeout=settings.http_timeout,
                   retries=settings.http_retries, retry_budget=settings.http_retry_budget)

    @property
    def chunk_size(self) -> int:
        """Papers per stored chunk: four rounds of ``concurrency`` requests, so the pool
        stays full between chunks (the stage stores each chunk before the next)."""
        return self.concurrency * 4

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _payload(self, messages: list[dict[str, str]], schema: dict | None) -> dict:
        payload = {"model": self.model, "messages": messages,
                   "max_tokens": self.max_new_tokens, "temperature": 0, "stream": False}
        if schema is not None:
            payload["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": schema, "strict": True}}
        return payload

    @property
    def sends_structured(self) -> bool:
        """Whether summary requests still ask for structured output in this run."""
        return self.structured and not self._plain_only.is_set()

    def _pause(self, attempt: int, response: requests.Response | None, problem: str) -> None:
        """Wait before retry ``attempt + 1``, or fail the paper when the wait would pass the
        retry budget (shared by every paper of this summarizer)."""
        delay = min(30.0, self.retry_delay * 2 ** attempt) * (0.5 + random.random())
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.isdigit():
            delay = min(60.0, float(retry_after))
        with self._budget_lock:
            if self._waited + delay > self.retry_budget:
                raise RequestFailed(
                    f"{self.url} failed {attempt + 1} times (last: {problem}); the retry budget "
                    f"of this run is spent ({self._waited:.0f} of {self.retry_budget:g} s "
                    f"waited, {delay:.0f} s more asked; http_retry_budget, "
                    "OCTET_HTTP_RETRY_BUDGET)")
            self._waited += delay
        time.sleep(delay)

    def complete(self, paper: Paper) -> str:
        """The model's summary reply for one paper; raises ``RequestFailed`` or, when the
        server cannot be reached at all, ``BackendUnavailable``."""
        return self.chat(summary_messages(paper.title, paper.abstract), self._summary_schema)

    @property
    def _summary_schema(self) -> dict | None:
        return SUMMARY_JSON_SCHEMA if self.structured else None

    def chat(self, messages: list[dict[str, str]], schema: dict | None = None) -> str:
        """The model's reply to chat ``messages`` (greedy, capped at ``max_new_tokens``),
        with the retries, deadline and size cap of every request; with ``schema``, asked as
        structured output while the server accepts it (a refusal with 400/422 is asked
        again plain, and remembered). Raises ``RequestFailed`` or, when the server cannot
        be reached at all, ``BackendUnavailable``."""
        if schema is None or not self.sends_structured:
            return self._request(messages, None)
        try:
            reply = self._request(messages, schema)
        except SchemaRefused as refusal:
            if refusal.named:
                self._go_plain(refusal)
            reply = self._request(messages, None)
            self._go_plain(refusal)  # plain worked where structured did not
            return reply
        self._schema_accepted.set()
        return reply

    def _go_plain(self, refusal: SchemaRefused) -> None:
        """Plain requests for the rest of the run; said once."""
        with self._budget_lock:
            if self._plain_only.is_set():
                return
            self._plain_only.set()
        log.warning("%s refused structured output (%s); plain requests for the rest of this "
                    "run, every reply still parsed strictly", self.base_url, refusal)

    def _request(self, messages: list[dict[str, str]], schema: dict | None) -> str:
        """One chat request with its retries; ``SchemaRefused`` for a structured request
        the server refused while no structured one has succeeded, or naming the field."""
        session = self._session or _session(1)
        unreachable, problem = False, "no answer"
        for attempt in range(self.retries + 1):
            if self._down.is_set():  # another request already found the server gone
                unreachable = True
                break
            response = None
            try:
                response, body = self._post(session, messages, schema)
            except requests.ConnectionError as error:
                unreachable, problem = True, type(error).__name__
            except requests.Timeout as error:
                unreachable, problem = False, (str(error) if isinstance(error, DeadlineExceeded)
                                               else f"no answer within {self.timeout:g} s")
            else:
                if response.status_code == 200:
                    return self._counted(body)
                unreachable, problem = False, f"HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUS:
                    raise self._refusal(response.status_code, body, schema)
            if attempt < self.retries:
                self._pause(attempt, response, problem)
        if unreachable:
            self._down.set()
            raise BackendUnavailable(f"no OpenAI-compatible server answers at {self.base_url}; "
                                     f"start it or set openai_base_url "
                                     f"(OCTET_OPENAI_BASE_URL)")
        raise RequestFailed(f"{self.url} failed {self.retries + 1} times (last: {problem})")

    def _refusal(self, status: int, body: bytes, schema: dict | None) -> RequestFailed:
        """The error for a status not worth retrying: ``SchemaRefused`` when it may be the
        structured-output field the server refuses."""
        text = " ".join(body[:2000].decode("utf-8", "replace").split())
        message = f"HTTP {status} from {self.url}: {text[:200]}"
        if schema is not None and status in _SCHEMA_REFUSED:
            named = bool(_NAMES_SCHEMA.search(text))
            if named or not self._schema_accepted.is_set():
                return SchemaRefused(message, named)
        return RequestFailed(message)

    def _counted(self, body: bytes) -> str:
        """The reply's text; its ``usage.completion_tokens`` added to ``completion_tokens``."""
        text, tokens = _reply_parts(body)
        with self._budget_lock:
            self.completion_tokens += tokens
        return text

    def _post(self, session: requests.Session, messages: list[dict[str, str]],
              schema: dict | None) -> tuple[requests.Response, bytes]:
        """One request under the deadline and the size cap; a reply over the cap fails the
        paper at once (asked again, it would be as long). A connection dropped before any
        answer is sent once more, a moment later: a burst of new connections over a small
        accept queue (Python's and cpp-httplib's servers listen with 5) is reset unread."""
        payload = self._payload(messages, schema)
        try:
            try:
                return self._send(session, payload)
            except requests.ConnectionError as error:
                if not _dropped(error):
                    raise
            time.sleep(random.uniform(0.05, 0.25))
            return self._send(session, payload)
        except BodyTooLarge:
            log.warning("reply from %s refused: over %s", self.url, mebibytes(MAX_REPLY_BYTES))
            raise RequestFailed(f"the reply from {self.url} is over "
                                f"{mebibytes(MAX_REPLY_BYTES)}; nothing of it was kept (check "
                                "the server, or lower max_new_tokens)") from None

    def _send(self, session: requests.Session, payload: dict) -> tuple[requests.Response, bytes]:
        return http_request(session, "POST", self.url, seconds=self.timeout,
                            max_bytes=MAX_REPLY_BYTES, json=payload, headers=self._headers())

    def _attempt(self, messages: list[dict[str, str]],
                 schema: dict | None) -> str | RequestFailed:
        try:
            return self.chat(messages, schema)
        except RequestFailed as error:
            return error

    def chat_many(self, conversations: Sequence[list[dict[str, str]]],
                  schema: dict | None = None) -> list[str | RequestFailed]:
        """The replies to many chats, in order, ``concurrency`` in flight at once (``chat``
        with ``schema`` for each); a chat whose request failed for good is its
        ``RequestFailed``. Raises ``BackendUnavailable`` when the server cannot be reached."""
        conversations = list(conversations)
        self._session = self._session or _session(self.concurrency)
        # The run's first chat alone: a server that is down costs one request's retries,
        # not all, and one that refuses structured output says so once.
        alone = 0 if self._probed.is_set() else 1
        replies = [self._attempt(messages, schema) for messages in conversations[:alone]]
        self._probed.set()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies += list(pool.map(lambda messages: self._attempt(messages, schema),
                                     conversations[alone:]))
        return replies

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        papers = list(papers)
        conversations = [summary_messages(paper.title, paper.abstract) for paper in papers]
        replies = [reply if isinstance(reply, str) else SummaryFailure(paper.arxiv_id, str(reply))
                   for paper, reply in zip(papers,
                                           self.chat_many(conversations, self._summary_schema))]
        answered = [index for index, reply in enumerate(replies) if isinstance(reply, str)]
        # A reply with no usable field, or about another paper, is a failure: retried next run.
        checked = summaries_from_replies([replies[i] for i in answered],
                                         [papers[i] for i in answered])
        for index, result in zip(answered, checked):
            replies[index] = (with_provenance(result, papers[index], self)
                              if isinstance(result, Summary) else result)
        return replies

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _session(concurrency: int) -> requests.Session:
    """A session whose connection pool holds one connection per request in flight."""
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _dropped(error: requests.ConnectionError) -> bool:
    """The connection was made, then dropped or reset before an answer (not refused)."""
    return bool(error.args) and isinstance(error.args[0], urllib3.exceptions.ProtocolError)


def _reply_parts(body: bytes) -> tuple[str, int]:
    """``choices[0].message.content`` and ``usage.completion_tokens`` (0 when the server
    gives none); a malformed body is this paper's failure."""
    try:
        reply = json.loads(body)
        content = reply["choices"][0]["message"]["content"]
        if content is not None and not isinstance(content, str):
            raise TypeError(f"the content is {type(content).__name__}, not text")
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as error:
        raise RequestFailed(f"the server's reply is not a chat completion "
                            f"({type(error).__name__}: {error})") from None
    usage = reply.get("usage") if isinstance(reply, dict) else None
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    counted = isinstance(tokens, int) and not isinstance(tokens, bool) and 0 <= tokens < 2**31
    return content or "", tokens if counted else 0
