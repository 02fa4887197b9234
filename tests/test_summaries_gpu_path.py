"""Issue 14, generated summaries on a GPU, checked without one: the openai backend against a
local OpenAI-compatible stand-in (requests in flight, structured output and the fallback
when a server refuses it, the per-request deadline), the hf backend's length batching on a
tiny local model, ``auto``'s default model (cached, fetched, or not to be had), and the
GPU benchmark's parts on CPU. The CUDA-only checks are marked ``gpu`` and skipped here."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer

import pytest
import torch
import transformers

from pipeline.cli import main
from pipeline.core.settings import Settings
from pipeline.stages.summaries import hf as hf_module
from pipeline.stages.summaries import plan_backend
from pipeline.stages.summaries.extractive import split_sentences
from pipeline.stages.summaries.hf import DEFAULT_MODEL, HFSummarizer
from pipeline.stages.summaries.openai import OpenAISummarizer
from pipeline.stages.summaries.summary import SUMMARY_JSON_SCHEMA, Summary, SummaryFailure
from prompts import families_messages, untrusted
from storage.papers import upsert_papers
from storage.summaries import summary_for
from tests.helpers import JsonHandler, REPO, first_papers, serving

CHAT_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
                 "\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


# ---- a stand-in OpenAI-compatible server ----------------------------------------------------

def copied_fields(title: str, abstract: str) -> dict[str, str]:
    """A summary made of the abstract's own sentences (what a faithful model may write)."""
    sentences = split_sentences(abstract) or [title]
    return {"tldr": sentences[0], "problem": sentences[0], "method": sentences[min(1, len(sentences) - 1)],
            "results": sentences[-1], "why_it_matters": sentences[-1]}


class StandIn(ThreadingHTTPServer):
    """Answers /v1/chat/completions with ``reply(title, abstract)`` (a dict is sent as JSON)
    and ``usage.completion_tokens`` (its word count). ``structured``: ``accept`` checks the
    ``response_format`` it gets; ``refuse-named`` / ``refuse-bare`` answer a request that
    has one with 400, naming the field or not. ``hold_until``: every request after the
    first waits until that many are in flight at once (then none waits again)."""

    daemon_threads = True
    request_queue_size = 256  # a real server's accept queue: a burst of connections fits

    def __init__(self, reply=copied_fields, structured: str = "accept"):
        super().__init__(("127.0.0.1", 0), StandInHandler)
        self.reply, self.structured = reply, structured
        self.hold_until: int | None = None
        self.reject_marker: str | None = None  # a bare 400 for prompts containing it
        self.slow_marker: str | None = None    # held (no answer) until ``release`` is set
        self.release = threading.Event()
        self.requests: list[dict] = []
        self.lock = threading.Condition()
        self.in_flight = self.max_in_flight = self.tokens_sent = 0
        self.peak_reached = self.waited_out = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def structured_requests(self) -> int:
        return sum("response_format" in body for body in self.requests)

    def arrive(self, body: dict) -> None:
        with self.lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.hold_until and len(self.requests) > 1 and not self.peak_reached:
                if self.in_flight >= self.hold_until:
                    self.peak_reached = True
                    self.lock.notify_all()
                elif not self.lock.wait_for(lambda: self.peak_reached, timeout=60):
                    self.waited_out = True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class StandInHandler(JsonHandler):
    def do_POST(self):
        server: StandIn = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.arrive(body)
        try:
            self._answer(server, body)
        finally:
            server.leave()

    def _answer(self, server: StandIn, body: dict) -> None:
        prompt = body["messages"][1]["content"]
        if server.slow_marker and server.slow_marker in prompt:
            server.release.wait(30)
        if "response_format" in body and server.structured != "accept":
            named = server.structured == "refuse-named"
            return self.send_json(400, {"error": {"message": "Unrecognized request argument "
                                              "supplied: response_format" if named else
                                              "bad request", "type": "invalid_request_error"}})
        if "response_format" in body:
            expected = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": SUMMARY_JSON_SCHEMA, "strict": True}}
            assert body["response_format"] == expected
        if server.reject_marker and server.reject_marker in prompt:
            return self.send_json(400, {"error": {"message": "content rejected"}})
        title = re.search(r"<title>(.*?)</title>", prompt, re.S).group(1)
        abstract = re.search(r"<abstract>(.*?)</abstract>", prompt, re.S).group(1)
        reply = server.reply(title, abstract)
        content = reply if isinstance(reply, str) else json.dumps(reply)
        tokens = len(content.split())
        with server.lock:
            server.tokens_sent += tokens
        self.send_json(200, {"object": "chat.completion", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": tokens}})


@pytest.fixture
def stand_in():
    with serving(StandIn()) as server:
        yield server
        server.release.set()


def client_for(server: StandIn, **options) -> OpenAISummarizer:
    return OpenAISummarizer(model="stand-in", base_url=server.base_url, retry_delay=0.01,
                            **options)


# ---- requests in flight ---------------------------------------------------------------------

def test_the_default_64_requests_are_in_flight_at_once_and_never_more(stand_in, settings):
    assert Settings().openai_concurrency == 64
    client = OpenAISummarizer.from_settings(dataclasses.replace(
        settings, model="stand-in", openai_base_url=stand_in.base_url))
    assert client.concurrency == 64 and client.chunk_size == 256  # stored chunks keep it full
    stand_in.hold_until = 64
    papers = first_papers(96)  # one alone (the probe), then 64 held together, then the rest
    results = client.summarize(papers)
    assert not stand_in.waited_out and stand_in.max_in_flight == 64
    assert [result.arxiv_id for result in results] == [paper.arxiv_id for paper in papers]
    assert all(isinstance(result, Summary) for result in results)


def test_a_lower_bound_is_reached_and_kept(stand_in):
    stand_in.hold_until = 5
    results = client_for(stand_in, concurrency=5).summarize(first_papers(20))
    assert not stand_in.waited_out and stand_in.max_in_flight == 5
    assert len(stand_in.requests) == 20 and all(isinstance(r, Summary) for r in results)


def test_the_deadline_bounds_each_request_while_others_are_in_flight(stand_in):
    papers = first_papers(6)
    stand_in.slow_marker = " ".join(papers[2].abstract.split())[:40]
    results = client_for(stand_in, concurrency=4, timeout=1.0, retries=0).summarize(papers)
    stand_in.release.set()
    assert isinstance(results[2], SummaryFailure)
    assert "no complete answer within 1 s" in results[2].error
    assert all(isinstance(results[index], Summary) for index in (0, 1, 3, 4, 5))


def test_output_tokens_are_counted_from_the_servers_usage(stand_in):
    client = client_for(stand_in, concurrency=3)
    client.summarize(first_papers(7))
    assert client.completion_tokens == stand_in.tokens_sent > 0


# ---- structured output ----------------------------------------------------------------------

def test_summary_requests_ask_for_the_schema_and_the_parser_still_judges(stand_in):
    papers = first_papers(4)
    junk = papers[3].title
    stand_in.reply = lambda title, abstract: ("{}" if title == " ".join(junk.split()) else
                                              copied_fields(title, abstract))
    client = client_for(stand_in, concurrency=2)
    results = client.summarize(papers)
    assert stand_in.structured_requests() == len(stand_in.requests) == 4  # checked by the server
    assert client.sends_structured
    assert all(isinstance(result, Summary) for result in results[:3])
    # Constrained decoding guarantees the shape, not the content: "{}" is still refused.
    assert isinstance(results[3], SummaryFailure) and "no usable summary field" in results[3].error


@pytest.mark.parametrize("refusal", ["refuse-named", "refuse-bare"])
def test_a_server_refusing_the_schema_gets_plain_requests_once_remembered(refusal, caplog):
    papers = first_papers(10)
    fenced = lambda title, abstract: ("Sure! Here it is:\n```json\n"  # noqa: E731
                                      + json.dumps(copied_fields(title, abstract)) + "\n```")
    with serving(StandIn(reply=fenced, structured=refusal)) as server:
        client = client_for(server, concurrency=4)
        results = client.summarize(papers)
        later = client.summarize(first_papers(2))
    # One structured request (refused), then plain: its retry and every later request.
    assert server.structured_requests() == 1 and len(server.requests) == 13
    assert not client.sends_structured
    assert all(isinstance(result, Summary) for result in results + later)
    # Parsed out of the prose and the fence, as any plain reply is.
    assert results[0].fields() == copied_fields(untrusted(papers[0].title, 1000),
                                                untrusted(papers[0].abstract))
    said = [record.getMessage() for record in caplog.records if "structured" in record.getMessage()]
    assert len(said) == 1 and "plain requests for the rest of this run" in said[0]


def test_a_400_after_the_schema_worked_is_that_papers_failure_not_a_fallback(stand_in):
    papers = first_papers(5)
    stand_in.reject_marker = " ".join(papers[3].abstract.split())[:40]
    client = client_for(stand_in, concurrency=2)
    results = client.summarize(papers)
    assert isinstance(results[3], SummaryFailure) and "HTTP 400" in results[3].error
    assert len(stand_in.requests) == 5 == stand_in.structured_requests()
    assert client.sends_structured


def test_a_400_on_the_first_request_that_plain_gets_too_keeps_the_schema(stand_in):
    papers = first_papers(3)
    stand_in.reject_marker = " ".join(papers[0].abstract.split())[:40]
    client = client_for(stand_in, concurrency=2)
    results = client.summarize(papers)
    assert isinstance(results[0], SummaryFailure) and "HTTP 400" in results[0].error
    # Asked once plain to tell a refused schema from a refused paper; the schema stays.
    assert client.sends_structured and stand_in.structured_requests() == 3
    assert len(stand_in.requests) == 4


def test_the_family_judge_chats_stay_plain(stand_in):
    stand_in.reply = lambda title, abstract: '{"families": ["LLM"]}'
    client = client_for(stand_in, concurrency=3)
    papers = first_papers(4)
    replies = client.chat_many([families_messages(p.title, p.abstract) for p in papers])
    assert replies == ['{"families": ["LLM"]}'] * 4 and stand_in.structured_requests() == 0


def test_structured_false_sends_plain_requests(stand_in):
    results = client_for(stand_in, structured=False).summarize(first_papers(2))
    assert stand_in.structured_requests() == 0 and all(isinstance(r, Summary) for r in results)


# ---- the hf backend: batches of neighbours in length ----------------------------------------

@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def build_tiny_llama(folder) -> str:
    """A tiny random Llama with a byte tokenizer and a chat template, as a local folder."""
    tokenizer = transformers.ByT5Tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_length_batches_hold_neighbours_and_results_come_back_in_input_order(tiny_llama):
    prompts = ["medium length prompt here", "x", "a much longer prompt about experts and routers",
               "tiny", "the longest prompt of them all, about masked diffusion language models",
               "short one", "mid-sized prompt"]
    batched = HFSummarizer(model=tiny_llama, device="cpu", batch_size=2, max_new_tokens=6)
    seen = []
    original = batched._generate_batch
    batched._generate_batch = lambda batch: seen.append(list(batch)) or original(batch)
    texts = batched.generate_texts(prompts)
    alone = HFSummarizer(model=tiny_llama, device="cpu", batch_size=1, max_new_tokens=6)
    assert texts == [alone.generate_texts([prompt])[0] for prompt in prompts]
    by_length = sorted(prompts, key=len, reverse=True)  # a byte tokenizer: length = bytes
    assert [prompt for batch in seen for prompt in batch] == by_length
    assert [len(batch) for batch in seen] == [2, 2, 2, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_model_loads_in_bf16_with_sdpa(tiny_llama):
    summarizer = HFSummarizer(model=tiny_llama, device="cuda", batch_size=4, max_new_tokens=6)
    _, model, device, _ = summarizer.load()
    assert device == "cuda" and model.dtype == torch.bfloat16
    assert model.config._attn_implementation == "sdpa"
    assert len(summarizer.generate_texts(["a", "bb", "ccc"])) == 3


# ---- auto: the default model on a machine with CUDA -----------------------------------------

def test_without_cuda_auto_stays_extractive_and_fetches_nothing(settings):
    def fetch():
        raise AssertionError("nothing is fetched without CUDA")
    plan = plan_backend(settings, cuda=lambda: False, fetch=fetch)
    assert plan.settings.summarizer == "extractive" and plan.notice is None


def test_with_cuda_and_no_model_auto_takes_the_default_or_says_why_not(settings):
    fetched = plan_backend(settings, cuda=lambda: True, fetch=lambda: ("/cache/qwen", True))
    assert (fetched.settings.summarizer, fetched.settings.model, fetched.weights) == (
        "hf", DEFAULT_MODEL, "/cache/qwen")
    assert "fetched the default" in fetched.notice and "\n" not in fetched.notice
    cached = plan_backend(settings, cuda=lambda: True, fetch=lambda: ("/cache/qwen", False))
    assert cached.settings.summarizer == "hf" and cached.notice is None
    configured = plan_backend(dataclasses.replace(settings, model="my/model"), cuda=lambda: True)
    assert configured.settings.model == "my/model" and configured.weights is None


def _offline(monkeypatch) -> None:
    def unreachable(name=DEFAULT_MODEL):
        raise OSError("Cannot reach the Hugging Face hub: outgoing traffic has been disabled")
    monkeypatch.setattr("pipeline.stages.summaries.cuda_available", lambda: True)
    monkeypatch.setattr(hf_module, "fetch_default_model", unreachable)


def test_a_default_model_that_cannot_be_fetched_is_one_line_then_extractive(settings,
                                                                            monkeypatch, capsys):
    _offline(monkeypatch)
    papers = first_papers(3)
    upsert_papers(settings.db_path, papers)
    assert main(["summarize", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "extractive" and result["summarized"] == 3
    assert result["notice"].startswith(f"no model is configured and the default {DEFAULT_MODEL} "
                                       "could not be fetched")
    assert "\n" not in result["notice"] and "extractive summaries this run" in result["notice"]
    shown = summary_for(settings.db_path, [paper.arxiv_id for paper in papers])
    assert all(record["extractive"] for record in shown.values())


OFFLINE_PLAN = """
import json, sys
from pipeline.core.settings import load_settings
from pipeline.stages.summaries import plan_backend
plan = plan_backend(load_settings(), cuda=lambda: True)
print(json.dumps({"backend": plan.settings.summarizer, "model": plan.settings.model,
                  "weights": plan.weights, "notice": plan.notice}))
"""


def _plan_offline(hf_home, octet_home) -> dict:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home),
                   "OCTET_HOME": str(octet_home)}
    done = subprocess.run([sys.executable, "-c", OFFLINE_PLAN], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_real_fetch_offline_with_no_cache_is_extractive(tmp_path, octet_home):
    plan = _plan_offline(tmp_path / "empty-hf-home", octet_home)
    assert plan["backend"] == "extractive" and "could not be fetched" in plan["notice"]


def test_a_cached_default_model_loads_from_the_cache_with_no_network(tmp_path, octet_home,
                                                                     tiny_llama):
    revision = "0123456789abcdef0123456789abcdef01234567"
    repository = tmp_path / "hf" / "hub" / f"models--{DEFAULT_MODEL.replace('/', '--')}"
    snapshot = repository / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(revision)
    for path in os.scandir(tiny_llama):
        (snapshot / path.name).write_bytes(open(path.path, "rb").read())
    plan = _plan_offline(tmp_path / "hf", octet_home)
    assert plan == {"backend": "hf", "model": DEFAULT_MODEL, "weights": str(snapshot),
                    "notice": None}
    summarizer = HFSummarizer(model=plan["model"], weights=plan["weights"], device="cpu",
                              max_new_tokens=4)
    results = summarizer.summarize(first_papers(2))
    assert summarizer.load()[1].config.hidden_size == 32  # the tiny model, from the cache
    assert all(isinstance(result, SummaryFailure) for result in results)  # random weights: junk


# ---- the GPU benchmark ----------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA answer")
def test_bench_gpu_without_cuda_is_one_line_and_exit_0():
    done = subprocess.run([sys.executable, "-m", "bench", "gpu"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == [
        "CUDA is not available here; the GPU summary benchmark was skipped (run "
        "`python -m bench gpu` on a machine with a CUDA GPU)."]


def test_bench_parts_measure_and_tabulate_on_cpu(stand_in, tiny_llama):
    from bench import gpu_summarize as bench

    papers = first_papers(3)
    hf = bench.run_hf(HFSummarizer(model=tiny_llama, device="cpu", batch_size=2,
                                   max_new_tokens=4), papers, 300)
    assert (hf.papers, hf.failed, hf.stored) == (3, 3, 0)  # random weights write no summary
    assert hf.output_tokens == 3 * 4 and hf.batch == 1.5  # batches of 2 and 1
    served = bench.run_server(client_for(stand_in, concurrency=3), papers, 300, "stand-in")
    assert (served.papers, served.stored, served.failed, served.batch) == (3, 3, 0, 3)
    assert served.output_tokens > 0 and served.papers_per_second > 0
    assert bench.roofline_tokens_per_second(4, 1000.0, 2 * 10**9) == 2000.0
    lines = bench.table([hf, served], 1000.0, 2 * 10**9).splitlines()
    assert len(lines) == 4 and lines[3].startswith("| stand-in | 3 |")
    assert lines[3].endswith("| 3 / 0 / 0 |")
