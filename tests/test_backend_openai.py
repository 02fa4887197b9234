"""The openai backend against a local HTTP server speaking /v1/chat/completions."""
from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer

import pytest

from storage.papers import upsert_papers
from tests.helpers import JsonHandler, first_papers, serving
from pipeline.stages.summaries.openai import OpenAISummarizer
from pipeline.cli import main
from pipeline.stages.summaries.summary import BackendUnavailable, Summary, SummaryFailure
from storage.summaries import summary_for



def reply_fields(title: str) -> dict[str, str]:
    """A summary about the paper the prompt names (replies about something else are refused)."""
    title = " ".join(title.split())
    return {"tldr": f"{title}.", "problem": f"Why {title}?", "method": f"How {title}?",
            "results": f"What {title} does.", "why_it_matters": f"Because {title}."}


class ChatServer(ThreadingHTTPServer):
    """Answers chat completions; behaviour per request is steered by the test."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []
        self.failures_left = 0          # answer 503 this many times first
        self.reject_marker = None       # answer 400 for abstracts containing this
        self.reply = None               # None: an on-topic summary of the requested paper
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(JsonHandler):
    def do_POST(self):
        server: ChatServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append(body)
            server.headers_seen.append(dict(self.headers))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            fail = server.failures_left > 0
            server.failures_left -= int(fail)
        try:
            threading.Event().wait(0.05)  # long enough for requests to overlap
            if self.path != "/v1/chat/completions":
                return self.send_json(404, {"error": "not found"})
            if fail:
                return self.send_json(503, {"error": "busy"})
            prompt = body["messages"][1]["content"]
            if server.reject_marker and server.reject_marker in prompt:
                return self.send_json(400, {"error": {"message": "content rejected"}})
            title = re.search(r"<title>(.*?)</title>", prompt).group(1)
            reply = server.reply
            if reply is None:
                reply = "```json\n" + json.dumps(reply_fields(title)) + "\n```"
            self.send_json(200, {"id": "x", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply},
                 "finish_reason": "stop"}]})
        finally:
            with server.lock:
                server.in_flight -= 1


@pytest.fixture
def server():
    with serving(ChatServer()) as chat:
        yield chat


def _client(server, **options) -> OpenAISummarizer:
    return OpenAISummarizer(model="tiny-chat", base_url=server.base_url, retry_delay=0.01,
                            **options)


def test_each_paper_becomes_one_request_and_one_parsed_summary(server):
    papers = first_papers(3)
    results = _client(server, api_key="sekret", max_new_tokens=99).summarize(papers)
    assert [summary.arxiv_id for summary in results] == [paper.arxiv_id for paper in papers]
    for paper, summary in zip(papers, results):
        assert isinstance(summary, Summary)
        assert summary.fields() == reply_fields(paper.title) and summary.fallback_fields == ()
        assert (summary.backend, summary.model, summary.prompt_version) == (
            "openai", "tiny-chat", "summarize.v1")
    request = server.requests[0]
    assert request["model"] == "tiny-chat" and request["max_tokens"] == 99
    assert request["temperature"] == 0 and [m["role"] for m in request["messages"]] == [
        "system", "user"]
    assert server.headers_seen[0]["Authorization"] == "Bearer sekret"


def test_concurrency_is_bounded(server):
    _client(server, concurrency=2).summarize(first_papers(7))
    assert len(server.requests) == 7 and server.max_in_flight == 2


def test_server_errors_are_retried(server):
    server.failures_left = 2
    results = _client(server, retries=3).summarize(first_papers(1))
    assert isinstance(results[0], Summary) and len(server.requests) == 3


def test_a_rejected_paper_fails_alone_and_others_succeed(server):
    papers = first_papers(3)
    server.reject_marker = " ".join(papers[1].abstract.split())[:40]
    results = _client(server).summarize(papers)
    assert isinstance(results[0], Summary) and isinstance(results[2], Summary)
    assert isinstance(results[1], SummaryFailure) and "HTTP 400" in results[1].error
    assert len(server.requests) == 3  # a 400 is not retried


def test_retries_run_out_into_a_failure_naming_the_last_status(server):
    server.failures_left = 10
    result = _client(server, retries=1).summarize(first_papers(1))[0]
    assert isinstance(result, SummaryFailure) and "failed 2 times (last: HTTP 503)" in result.error


def test_unparseable_reply_is_a_failure_not_abstract_sentences(server):
    server.reply = "I cannot comply."
    paper = first_papers(1)[0]
    result = _client(server).summarize([paper])[0]
    assert isinstance(result, SummaryFailure) and result.arxiv_id == paper.arxiv_id
    assert result.error.startswith("the model's reply has no usable summary field")


def test_a_partial_reply_borrows_the_missing_fields_and_lists_them(server):
    paper = first_papers(1)[0]
    server.reply = json.dumps({"tldr": reply_fields(paper.title)["tldr"], "method": "n/a"})
    summary = _client(server).summarize([paper])[0]
    assert summary.tldr == reply_fields(paper.title)["tldr"]
    assert summary.fallback_fields and "tldr" not in summary.fallback_fields
    abstract = " ".join(paper.abstract.split())
    assert all(getattr(summary, name) in abstract for name in summary.fallback_fields)


def test_no_server_is_backend_unavailable_naming_the_setting():
    client = OpenAISummarizer(model="m", base_url="http://127.0.0.1:9/v1", retries=1,
                              retry_delay=0.01, timeout=2)
    with pytest.raises(BackendUnavailable, match="OCTET_OPENAI_BASE_URL"):
        client.summarize(first_papers(2))


def test_cli_openai_end_to_end_with_failure_retried_next_run(server, settings, monkeypatch,
                                                             capsys):
    monkeypatch.setenv("OCTET_OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "0")
    monkeypatch.setenv("OCTET_API_KEY_FOR_TEST", "k1")
    monkeypatch.setenv("OCTET_OPENAI_API_KEY_ENV", "OCTET_API_KEY_FOR_TEST")
    papers = first_papers(3)
    upsert_papers(settings.db_path, papers)
    server.reject_marker = " ".join(papers[0].abstract.split())[:40]
    argv = ["summarize", "--backend", "openai", "--model", "tiny-chat", "--json"]
    assert main(argv) == 1
    result = json.loads(capsys.readouterr().out)
    assert (result["summarized"], result["failed"]) == (2, 1)
    assert result["errors"][0]["arxiv_id"] == papers[0].arxiv_id
    assert server.headers_seen[0]["Authorization"] == "Bearer k1"
    server.reject_marker = None
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["summarized"] == 1
    shown = summary_for(settings.db_path, [paper.arxiv_id for paper in papers])
    assert {key: record["tldr"] for key, record in shown.items()} == {
        paper.arxiv_id: reply_fields(paper.title)["tldr"] for paper in papers}
