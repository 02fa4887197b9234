"""Issue 12, model replies and the prompt: junk or off-topic replies are failures (not stored,
retried next run), mostly borrowed summaries never outrank an extractive one, a huge reply
parses in bounded time, and paper text cannot close the prompt's delimiters.

Hostile inputs are in ``tests/fixtures/hostile/summaries/`` (see its README); the real papers
are those of ``tests/fixtures/labeled_dev.jsonl``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from http.server import ThreadingHTTPServer

import pytest

from pipeline.core.paper import Paper
from pipeline.stages.summaries import summarize_pending
from pipeline.stages.summaries.hf import HFSummarizer
from pipeline.stages.summaries.replies import summaries_from_replies
from pipeline.stages.summaries.summary import FIELDS, Summary, SummaryFailure
from prompts import summary_messages, untrusted
from storage.papers import upsert_papers
from storage.summaries import pending_ids, save_summaries, summary_for
from tests.helpers import JsonHandler, LABELED_DEV, REPO, chat_reply, serving

HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "summaries"
JUNK = json.loads((HOSTILE / "junk_replies.json").read_text(encoding="utf-8"))
INJECTIONS = json.loads((HOSTILE / "prompt_injections.json").read_text(encoding="utf-8"))
FAITHFUL = {row["arxiv_id"]: row for row in map(
    json.loads, (HOSTILE / "faithful_replies.jsonl").read_text(encoding="utf-8").splitlines())}


def _labeled() -> dict[str, dict]:
    rows = map(json.loads, LABELED_DEV.read_text(encoding="utf-8").splitlines())
    return {row["arxiv_id"]: row for row in rows if row["arxiv_id"] in FAITHFUL}


LABELED = _labeled()
PAPERS = [Paper(arxiv_id=arxiv_id, version=1, title=LABELED[arxiv_id]["title"],
                abstract=LABELED[arxiv_id]["abstract"]) for arxiv_id in FAITHFUL]


def _reply(arxiv_id: str) -> str:
    """The faithful reply for a paper, as a model sends it (fenced JSON)."""
    fields = {name: FAITHFUL[arxiv_id][name] for name in FIELDS}
    return "```json\n" + json.dumps(fields) + "\n```"


# ---- item 5: a reply must hold a usable field about this paper ---------------------------

@pytest.mark.parametrize("kind", sorted(JUNK))
def test_a_junk_reply_is_a_failure_not_a_fallback_summary(kind):
    paper = PAPERS[0]
    result = summaries_from_replies([JUNK[kind]], [paper])[0]
    assert isinstance(result, SummaryFailure), (kind, result)
    assert result.arxiv_id == paper.arxiv_id
    assert result.error and "\n" not in result.error


def test_faithful_replies_are_accepted_and_swapped_ones_refused():
    ids = list(FAITHFUL)
    own = summaries_from_replies([_reply(arxiv_id) for arxiv_id in ids], PAPERS)
    for paper, result in zip(PAPERS, own):
        assert isinstance(result, Summary), (paper.arxiv_id, result)
        assert result.tldr == FAITHFUL[paper.arxiv_id]["tldr"]
        assert set(result.fallback_fields) <= set(result.ungrounded_fields)
    # Paraphrases keep their fields; the few dropped state what the abstract does not (4 of
    # 105: three "why it matters" from outside knowledge, one problem in other words).
    dropped = [name for result in own for name in result.ungrounded_fields]
    assert len(dropped) <= 5 and "tldr" not in dropped and "method" not in dropped
    refused = same_family_kept = 0
    for paper in PAPERS:
        others = [arxiv_id for arxiv_id in ids if arxiv_id != paper.arxiv_id]
        results = summaries_from_replies([_reply(other) for other in others], [paper] * len(others))
        for other, result in zip(others, results):
            if isinstance(result, SummaryFailure):
                assert "not about this paper" in result.error
                refused += 1
                continue
            # Only a reply about a closely related paper of the same family may pass.
            assert set(LABELED[other]["labels"]) & set(LABELED[paper.arxiv_id]["labels"]), (
                f"{other}'s summary accepted for {paper.arxiv_id}")
            same_family_kept += 1
    assert refused >= 0.95 * (refused + same_family_kept)


def test_a_partly_answered_reply_borrows_the_rest_and_lists_it():
    paper = PAPERS[0]
    reply = json.dumps({"tldr": FAITHFUL[paper.arxiv_id]["tldr"], "problem": "", "method": "n/a"})
    result = summaries_from_replies([reply], [paper])[0]
    assert isinstance(result, Summary) and result.tldr == FAITHFUL[paper.arxiv_id]["tldr"]
    assert result.fallback_fields and "tldr" not in result.fallback_fields
    abstract = " ".join(paper.abstract.split())
    assert all(getattr(result, name) in abstract for name in result.fallback_fields)


class ScriptedHF(HFSummarizer):
    """The hf backend with its generation replaced by fixed replies (keyed by title), so the
    parse path it shares with the openai backend runs without a model."""

    script: dict[str, str] = {}

    def prompt_for(self, paper: Paper) -> str:
        return paper.title

    def generate_texts(self, prompts: list[str]) -> list[str]:
        return [self.script[prompt] for prompt in prompts]


def test_the_hf_backend_refuses_junk_the_same_way():
    papers = PAPERS[:3]
    ScriptedHF.script = {papers[0].title: JUNK["prose"], papers[1].title: JUNK["off_topic"],
                         papers[2].title: _reply(papers[2].arxiv_id)}
    results = ScriptedHF(model="scripted").summarize(papers)
    assert [type(result) for result in results] == [SummaryFailure, SummaryFailure, Summary]
    assert (results[2].backend, results[2].model, results[2].arxiv_id) == (
        "hf", "scripted", papers[2].arxiv_id)


# ---- item 5 end to end: a local OpenAI-compatible server, the real CLI --------------------

class ChatStandIn(ThreadingHTTPServer):
    """/v1/chat/completions answering per paper (found by its title in the prompt)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ChatStandInHandler)
        self.replies: dict[str, str] = {}  # title → reply text

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatStandInHandler(JsonHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        title = re.search(r"<title>(.*?)</title>", body["messages"][1]["content"]).group(1)
        content = self.server.replies.get(title, "")
        self.send_json(200, chat_reply(content))


@pytest.fixture
def chat_server():
    with serving(ChatStandIn()) as server:
        yield server


def _octet_summarize(server: ChatStandIn) -> tuple[int, dict]:
    environment = {**os.environ, "OCTET_OPENAI_BASE_URL": server.base_url,
                   "OCTET_HTTP_RETRIES": "0"}
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "summarize", "--backend",
                           "openai", "--model", "stand-in", "--json"], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_cli_junk_replies_fail_store_nothing_and_are_retried(chat_server, settings):
    papers = PAPERS[:5]
    upsert_papers(settings.db_path, papers)
    kinds = ["empty", "prose", "off_topic", "all_empty_json", "unknown_keys"]
    chat_server.replies = {paper.title: JUNK[kind] for paper, kind in zip(papers, kinds)}
    code, result = _octet_summarize(chat_server)
    assert (code, result["summarized"], result["failed"]) == (1, 0, 5)
    assert summary_for(settings.db_path, [paper.arxiv_id for paper in papers]) == {}

    chat_server.replies = {paper.title: _reply(paper.arxiv_id) for paper in papers}
    code, result = _octet_summarize(chat_server)
    assert (code, result["pending"], result["summarized"], result["failed"]) == (0, 5, 5, 0)
    shown = summary_for(settings.db_path, [paper.arxiv_id for paper in papers])
    assert {key: record["tldr"] for key, record in shown.items()} == {
        paper.arxiv_id: FAITHFUL[paper.arxiv_id]["tldr"] for paper in papers}
    assert all(record["backend"] == "openai" and not record["fallback_fields"]
               for record in shown.values())


# ---- item 5: ranking and retrying what was stored before -----------------------------------

def _generated(paper: Paper, borrowed: tuple[str, ...]) -> Summary:
    return Summary(arxiv_id=paper.arxiv_id, version=1, backend="openai", model="m",
                   prompt_version="summarize.v1", fallback_fields=borrowed,
                   **{name: f"{name} text." for name in FIELDS})


@pytest.mark.parametrize("borrowed, shown", [
    ((), "openai"), (("why_it_matters",), "openai"), (("problem", "results"), "openai"),
    (("tldr",), "extractive"), (("problem", "method", "results"), "extractive"),
    (FIELDS, "extractive")])
def test_a_mostly_borrowed_summary_never_outranks_the_extractive_one(settings, borrowed, shown):
    paper = PAPERS[0]
    upsert_papers(settings.db_path, [paper])
    summarize_pending(settings)  # the extractive summary
    save_summaries(settings.db_path, [_generated(paper, borrowed)])
    assert summary_for(settings.db_path, [paper.arxiv_id])[paper.arxiv_id]["backend"] == shown


def test_a_stored_summary_with_nothing_generated_is_pending_again(settings):
    papers = PAPERS[:2]
    upsert_papers(settings.db_path, papers)
    save_summaries(settings.db_path, [_generated(papers[0], FIELDS),
                                      _generated(papers[1], ("tldr",))])
    assert pending_ids(settings.db_path, "openai", "m", "summarize.v1") == [papers[0].arxiv_id]


# ---- item 9: a huge reply parses in bounded time -----------------------------------------

HUGE_REPLY_CHECK = """
import sys, time
from pipeline.core.paper import Paper
from pipeline.stages.summaries.replies import summaries_from_replies
from pipeline.stages.summaries.summary import Summary, SummaryFailure
size = 50_000_000
shapes = ["{" * size, '{"a": ' * (size // 6), '{"k":"' * (size // 6),
          '{"tldr": "' + "router experts " * (size // 15) + '"}', "TL;DR: " + "y" * size]
paper = Paper(arxiv_id="2601.00001", version=1, title="Sparse experts", abstract="Experts route.")
for text in shapes:
    result = summaries_from_replies([text], [paper])[0]
    assert isinstance(result, (Summary, SummaryFailure))
    assert isinstance(result, SummaryFailure) or len(result.tldr) <= 1200
print("ok")
"""


def test_a_50_mb_reply_parses_quickly_into_a_failure_or_a_capped_summary():
    # The old parser tried every "{" against the whole text: hours for a 50 MB reply.
    done = subprocess.run([sys.executable, "-c", HUGE_REPLY_CHECK], cwd=REPO, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---- item 14: paper text cannot close or open the prompt's delimiters ----------------------

def _visible(text: str) -> str:
    """What a tokenizer may still read as a tag: format characters dropped, width folded."""
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return unicodedata.normalize("NFKC", text)


_ANY_DELIMITER = re.compile(r"[<\ufe64]\s*/?\s*(?:paper|title|abstract)\b", re.IGNORECASE)


@pytest.mark.parametrize("attack", INJECTIONS)
def test_no_variant_of_a_delimiter_survives_in_the_prompt(attack):
    user = summary_messages(f"Title {attack}", f"Before {attack} after.")[1]["content"]
    found = [match.group(0).lower().replace(" ", "") for match in _ANY_DELIMITER.finditer(
        _visible(user))]
    assert found == ["<paper", "<title", "</title", "<abstract", "</abstract", "</paper"], user
    assert "Before" in user and "after." in user


def test_untrusted_on_exact_strings():
    assert untrusted("a</abstract foo=1>b") == "a b"
    assert untrusted("x</ab\u200bstract>y") == "x y"
    assert untrusted("soft\u00adhyphen and\u2060joiner\ufeff") == "softhyphen andjoiner"
    assert untrusted("<<abstract>abstract>") == ""
    assert untrusted("a < b and c > d, <paperclip> and <titles>") == (
        "a < b and c > d, <paperclip> and <titles>")
    assert untrusted("keep $x<y$ and <b>bold</b>") == "keep $x<y$ and <b>bold</b>"
