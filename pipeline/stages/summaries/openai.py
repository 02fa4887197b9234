"""Summaries from any OpenAI-compatible chat-completions server (vLLM, llama.cpp server,
Ollama, hosted APIs): base URL, model, key from an environment variable; bounded
concurrency, a deadline and a size cap on each request, retries with backoff within a
budget of waiting."""
from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import requests

from pipeline.core.paper import Paper
from pipeline.stages.http import (BodyTooLarge, DeadlineAdapter, DeadlineExceeded, http_request,
                                  mebibytes)
from pipeline.stages.summaries.replies import summaries_from_replies
from pipeline.stages.summaries.summary import (BackendUnavailable, Summary, SummaryFailure,
                                               with_provenance)
from prompts import SUMMARY_PROMPT, summary_messages

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

MAX_REPLY_BYTES = 1024 * 1024
"""The longest reply read (1 MiB; a summary is about 1 KB): a longer one fails the paper."""


class RequestFailed(RuntimeError):
    """One paper's request failed for good (after retries, or with a non-retryable status)."""


@dataclass
class OpenAISummarizer:
    """Chat-completions client; one request per paper, ``concurrency`` in flight at once."""

    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    concurrency: int = 4
    max_new_tokens: int = 256
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
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _payload(self, messages: list[dict[str, str]]) -> dict:
        return {"model": self.model, "messages": messages,
                "max_tokens": self.max_new_tokens, "temperature": 0, "stream": False}

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
        return self.chat(summary_messages(paper.title, paper.abstract))

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The model's reply to chat ``messages`` (greedy, capped at ``max_new_tokens``),
        with the retries, deadline and size cap of every request; raises ``RequestFailed``
        or, when the server cannot be reached at all, ``BackendUnavailable``."""
        session = self._session or _session(1)
        unreachable, problem = False, "no answer"
        for attempt in range(self.retries + 1):
            if self._down.is_set():  # another request already found the server gone
                unreachable = True
                break
            response = None
            try:
                response, body = self._post(session, messages)
            except requests.ConnectionError as error:
                unreachable, problem = True, type(error).__name__
            except requests.Timeout as error:
                unreachable, problem = False, (str(error) if isinstance(error, DeadlineExceeded)
                                               else f"no answer within {self.timeout:g} s")
            else:
                if response.status_code == 200:
                    return _reply_text(body)
                unreachable, problem = False, f"HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUS:
                    text = body[:200].decode("utf-8", "replace")
                    raise RequestFailed(f"HTTP {response.status_code} from {self.url}: "
                                        f"{' '.join(text.split())}")
            if attempt < self.retries:
                self._pause(attempt, response, problem)
        if unreachable:
            self._down.set()
            raise BackendUnavailable(f"no OpenAI-compatible server answers at {self.base_url}; "
                                     f"start it or set openai_base_url "
                                     f"(OCTET_OPENAI_BASE_URL)")
        raise RequestFailed(f"{self.url} failed {self.retries + 1} times (last: {problem})")

    def _post(self, session: requests.Session,
              messages: list[dict[str, str]]) -> tuple[requests.Response, bytes]:
        """One request under the deadline and the size cap; a reply over the cap fails the
        paper at once (asked again, it would be as long)."""
        try:
            return http_request(session, "POST", self.url, seconds=self.timeout,
                                max_bytes=MAX_REPLY_BYTES, json=self._payload(messages),
                                headers=self._headers())
        except BodyTooLarge:
            log.warning("reply from %s refused: over %s", self.url, mebibytes(MAX_REPLY_BYTES))
            raise RequestFailed(f"the reply from {self.url} is over "
                                f"{mebibytes(MAX_REPLY_BYTES)}; nothing of it was kept (check "
                                "the server, or lower max_new_tokens)") from None

    def _attempt(self, messages: list[dict[str, str]]) -> str | RequestFailed:
        try:
            return self.chat(messages)
        except RequestFailed as error:
            return error

    def chat_many(self,
                  conversations: Sequence[list[dict[str, str]]]) -> list[str | RequestFailed]:
        """The replies to many chats, in order, ``concurrency`` in flight at once; a chat
        whose request failed for good is its ``RequestFailed``. Raises ``BackendUnavailable``
        when the server cannot be reached."""
        conversations = list(conversations)
        self._session = self._session or _session(self.concurrency)
        # The first chat alone: a server that is down costs one request's retries, not all.
        replies = [self._attempt(messages) for messages in conversations[:1]]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies += list(pool.map(self._attempt, conversations[1:]))
        return replies

    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        papers = list(papers)
        conversations = [summary_messages(paper.title, paper.abstract) for paper in papers]
        replies = [reply if isinstance(reply, str) else SummaryFailure(paper.arxiv_id, str(reply))
                   for paper, reply in zip(papers, self.chat_many(conversations))]
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


def _reply_text(body: bytes) -> str:
    """``choices[0].message.content``; a malformed body is this paper's failure."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
        if content is not None and not isinstance(content, str):
            raise TypeError(f"the content is {type(content).__name__}, not text")
        return content or ""
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as error:
        raise RequestFailed(f"the server's reply is not a chat completion "
                            f"({type(error).__name__}: {error})") from None
