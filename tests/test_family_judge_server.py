"""The LLM judge through a local OpenAI-compatible stand-in server (stdlib, in a thread):
the request it sends, the re-check of uncertain papers on a real DuckDB file, which label
wins, staleness, junk replies, a server that goes away, and the commands."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import ThreadingHTTPServer

import pytest

from pipeline import job
from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.core.families import CODES
from pipeline.core.settings import load_settings
from pipeline.stages import family_judge
from pipeline.stages.families import current_head
from pipeline.stages.family_judge import (Judgement, JudgeUnreachable, classify_stage,
                                          make_judge, recheck_uncertain)
from prompts import families_messages, untrusted
from storage.families import families_for, set_reader_labels, store_results
from storage.papers import upsert_papers
from tests.helpers import JsonHandler, LABELED_DEV, REPO, chat_reply, first_papers, serving, store_real_papers

MODEL = "judge-model"
JUDGE_VERSION = f"openai:{MODEL}:families.v1"


class JudgeServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions with the reply set for the paper's title (found in the
    prompt), else ``default``; after ``drop_after`` requests it drops every connection
    without an answer, as a server that went away."""

    daemon_threads = True
    request_queue_size = 128  # accept a burst of connections, as a real server does

    def __init__(self):
        super().__init__(("127.0.0.1", 0), JudgeHandler)
        self.replies: dict[str, str] = {}
        self.default = '{"families": ["LLM"]}'
        self.drop_after: int | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def answer(self, title: str, reply: str) -> None:
        """Reply ``reply`` to the prompt about the paper with this title."""
        self.replies[untrusted(title, 1000)] = reply

    def titles_asked(self) -> list[str]:
        return [re.search(r"<title>(.*?)</title>", body["messages"][1]["content"]).group(1)
                for body in self.requests]


class JudgeHandler(JsonHandler):
    def do_POST(self):
        server: JudgeServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append(body)
            dropped = server.drop_after is not None and len(server.requests) > server.drop_after
        if dropped:
            self.close_connection = True
            return
        title = re.search(r"<title>(.*?)</title>", body["messages"][1]["content"]).group(1)
        content = server.replies.get(title, server.default)
        self.send_json(200, chat_reply(content))


@pytest.fixture
def server():
    with serving(JudgeServer()) as judge_server:
        yield judge_server


@pytest.fixture
def judged(settings, server):
    """Settings pointing the judge at the stand-in server (no retries)."""
    return replace(settings, summarizer="openai", model=MODEL, openai_base_url=server.base_url,
                   http_retries=0)


def _environment(settings, base_url: str) -> dict:
    return {**os.environ, "OCTET_HOME": str(settings.home), "OCTET_SUMMARIZER": "openai",
            "OCTET_MODEL": MODEL, "OCTET_OPENAI_BASE_URL": base_url, "OCTET_HTTP_RETRIES": "0"}


def _use_server(monkeypatch, server) -> None:
    for key, value in _environment(load_settings(), server.base_url).items():
        if key.startswith("OCTET_"):
            monkeypatch.setenv(key, value)


def _score(settings, papers, kinds: list[str]) -> None:
    """Store the current head's scores: ``uncertain`` (LLM 0.05 over its threshold, so the
    head says LLM), ``certain`` (every family far below its threshold: none) or ``title``
    (no family, but judged on the title alone)."""
    head = current_head(settings.home)
    thresholds = dict(zip(CODES, head.thresholds.tolist()))
    rows = []
    for paper, kind in zip(papers, kinds):
        scores = {code: 0.0 for code in CODES}
        if kind == "uncertain":
            scores["LLM"] = thresholds["LLM"] + 0.05
        rows.append({"arxiv_id": paper.arxiv_id, "version": paper.version, "scores": scores,
                     "labels": ["LLM"] if kind == "uncertain" else [],
                     "low_confidence": kind == "title"})
    store_results(settings.db_path, [], rows, head.version)


def _stored(settings, kinds: list[str]):
    papers = store_real_papers(settings.db_path, limit=len(kinds))
    _score(settings, papers, kinds)
    return papers


# ---- the request ---------------------------------------------------------------------------


def test_the_request_carries_the_rules_and_the_delimited_paper(server, judged):
    papers = first_papers(3)
    server.answer(papers[1].title, '```json\n{"families": ["VLM", "LAM"]}\n```')
    verdicts = make_judge(judged).judge(papers)
    assert verdicts == [Judgement(papers[0].arxiv_id, ("LLM",), JUDGE_VERSION),
                        Judgement(papers[1].arxiv_id, ("LAM", "VLM"), JUDGE_VERSION),
                        Judgement(papers[2].arxiv_id, ("LLM",), JUDGE_VERSION)]
    assert len(server.requests) == 3
    for request in server.requests:
        assert (request["model"], request["max_tokens"], request["temperature"]) == (MODEL, 64, 0)
        system, user = request["messages"]
        assert system == families_messages("x", "y")[0]
        assert "sharpness-aware minimization" in system["content"]
        assert re.fullmatch(r"<paper>\n<title>.+</title>\n<abstract>.+</abstract>\n</paper>",
                            user["content"], re.DOTALL)
    asked = {body["messages"][1]["content"] for body in server.requests}
    assert asked == {families_messages(p.title, p.abstract)[1]["content"] for p in papers}


# ---- the re-check, and which label wins ----------------------------------------------------


def test_recheck_judges_only_uncertain_papers_and_the_judgement_wins_until_the_reader_speaks(
        server, judged):
    papers = _stored(judged, ["uncertain", "certain", "title", "uncertain"])
    set_reader_labels(judged.db_path, papers[3].arxiv_id, ["SAM"])
    server.answer(papers[0].title, '{"families": ["VLM"]}')
    server.answer(papers[2].title, '{"families": []}')
    result = recheck_uncertain(judged)
    assert result == {"checked": 2, "changed": 1, "failed": 0, "judge_version": JUDGE_VERSION,
                      "errors": []}
    assert sorted(server.titles_asked()) == sorted([papers[0].title, papers[2].title])
    shown = families_for(judged.db_path, [p.arxiv_id for p in papers])
    first = shown[papers[0].arxiv_id]
    assert (first["labels"], first["source"], first["judge_version"]) == (
        ["VLM"], "llm", JUDGE_VERSION)
    assert first["scores"]["LLM"] > first["scores"]["VLM"]  # scores stay the head's
    assert [shown[p.arxiv_id]["source"] for p in papers[1:]] == ["model", "llm", "reader"]
    assert shown[papers[3].arxiv_id]["labels"] == ["SAM"]

    set_reader_labels(judged.db_path, papers[0].arxiv_id, ["LLM", "MoE"])
    assert families_for(judged.db_path, [papers[0].arxiv_id])[papers[0].arxiv_id][
        "source"] == "reader"
    assert recheck_uncertain(judged)["checked"] == 0 and len(server.requests) == 2


def test_a_new_paper_version_makes_the_judgement_stale(server, judged):
    [paper] = _stored(judged, ["uncertain"])
    server.answer(paper.title, '{"families": ["VLM"]}')
    recheck_uncertain(judged)
    upsert_papers(judged.db_path, [replace(paper, version=2)])
    record = families_for(judged.db_path, [paper.arxiv_id])[paper.arxiv_id]
    assert (record["labels"], record["source"], record["judge_version"]) == (
        ["LLM"], "model", None)
    assert recheck_uncertain(judged)["checked"] == 0  # v2 has no current head scores yet
    _score(judged, [replace(paper, version=2)], ["uncertain"])  # as the classify stage would
    server.answer(paper.title, '{"families": ["LCM"]}')
    assert recheck_uncertain(judged)["checked"] == 1
    record = families_for(judged.db_path, [paper.arxiv_id])[paper.arxiv_id]
    assert (record["labels"], record["source"]) == (["LCM"], "llm")


def test_a_junk_reply_is_a_counted_failure_and_the_head_label_stays(server, judged):
    papers = _stored(judged, ["uncertain", "uncertain"])
    server.answer(papers[0].title, "Sure! This is clearly an LLM paper.")
    server.answer(papers[1].title, '{"families": ["LLM"], "also": ["SAM"]}')
    result = recheck_uncertain(judged)
    assert (result["checked"], result["changed"], result["failed"]) == (2, 0, 2)
    assert {item["arxiv_id"] for item in result["errors"]} == {p.arxiv_id for p in papers}
    assert any("not one JSON object" in item["error"] for item in result["errors"])
    shown = families_for(judged.db_path, [p.arxiv_id for p in papers])
    assert {(r["labels"][0], r["source"]) for r in shown.values()} == {("LLM", "model")}

    server.replies.clear()  # answered properly, the failed papers are asked again
    assert recheck_uncertain(judged)["checked"] == 2
    shown = families_for(judged.db_path, [p.arxiv_id for p in papers])
    assert {r["source"] for r in shown.values()} == {"llm"}


def test_a_server_gone_mid_run_keeps_every_stored_judgement(server, judged, monkeypatch):
    monkeypatch.setattr(family_judge, "CHUNK_SIZE", 1)
    papers = _stored(judged, ["uncertain", "uncertain", "uncertain"])
    server.drop_after = 1
    with pytest.raises(JudgeUnreachable, match="OCTET_OPENAI_BASE_URL") as raised:
        recheck_uncertain(judged)
    assert raised.value.result["checked"] == 1
    sources = [r["source"] for r in families_for(judged.db_path,
                                                 [p.arxiv_id for p in papers]).values()]
    assert sorted(sources) == ["llm", "model", "model"]
    server.drop_after = None
    assert recheck_uncertain(judged)["checked"] == 2


# ---- the commands --------------------------------------------------------------------------


def _octet(settings, base_url: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *arguments], cwd=REPO,
                          env=_environment(settings, base_url), capture_output=True,
                          text=True, timeout=120)


def test_cli_recheck_stores_prints_json_and_an_unreachable_server_exits_3(server, settings):
    papers = _stored(settings, ["uncertain", "title", "certain"])
    done = _octet(settings, server.base_url, "classify", "--backend", "llm", "--recheck",
                  "--limit", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {key: result[key] for key in ("checked", "changed", "failed", "judge_version")} == {
        "checked": 1, "changed": 0, "failed": 0, "judge_version": JUDGE_VERSION}
    assert server.titles_asked() == [untrusted(papers[0].title)]  # the closest to a threshold

    gone = _octet(settings, "http://127.0.0.1:9/v1", "classify", "--backend", "llm",
                  "--recheck")
    assert gone.returncode == 3 and gone.stdout == ""
    assert len(gone.stderr.strip().splitlines()) == 1
    assert "OCTET_OPENAI_BASE_URL" in gone.stderr and "0 papers were re-checked" in gone.stderr
    record = families_for(settings.db_path, [papers[0].arxiv_id])[papers[0].arxiv_id]
    assert (record["source"], record["judge_version"]) == ("llm", JUDGE_VERSION)


def test_recheck_says_what_it_did_in_one_line(server, settings, monkeypatch, capsys):
    _use_server(monkeypatch, server)
    papers = _stored(settings, ["uncertain", "uncertain"])
    server.answer(papers[1].title, "no idea")
    assert main(["classify", "--backend", "llm", "--recheck"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"re-checked 2 uncertain papers with {JUDGE_VERSION}: 0 changed, "
                        "1 failed (asked again next time)")
    assert lines[1].startswith(f"  failed {papers[1].arxiv_id}: the reply is not one JSON")


@pytest.mark.parametrize("arguments, message", [
    (["--recheck"], "--backend llm --recheck"),
    (["--backend", "llm", "--recheck", "--input", "x.jsonl"], "leave out --input"),
    (["--backend", "llm"], "pass --input"),
    (["--backend", "llm", "--recheck", "--margin", "2"], "--margin must be between 0 and 1"),
    (["--backend", "llm", "--recheck", "--limit", "0"], "--limit must be at least 1"),
])
def test_classify_flags_that_do_not_fit_are_usage_errors(arguments, message, capsys):
    assert main(["classify", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_without_a_generative_model_the_judge_commands_exit_2_naming_the_fix(capsys):
    for arguments in (["classify", "--backend", "llm", "--recheck"],
                      ["eval", "--backend", "llm"]):
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "the llm judge needs a generative model" in error
        assert "summarizer = openai" in error


def _dev_rows(count: int) -> list[dict]:
    return [json.loads(line) for line in LABELED_DEV.read_text().splitlines()[:count]]


def test_classify_input_with_the_llm_adds_the_judge_and_keeps_the_head_on_junk(
        server, monkeypatch, tmp_path, capsys):
    _use_server(monkeypatch, server)
    rows = _dev_rows(3)
    source = tmp_path / "papers.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    server.answer(rows[0]["title"], '{"families": ["MLM", "LLM"]}')
    server.answer(rows[1]["title"], '{"families": ["MLM"], "reason": "BERT"}')
    server.answer(rows[2]["title"], '<think>\n\n</think>\n\n{"families": []}')
    assert main(["classify", "--input", str(source)]) == 0
    head = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all("judge" not in item for item in head) and server.requests == []
    assert main(["classify", "--input", str(source), "--backend", "llm"]) == 0
    judged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [item["id"] for item in judged] == [row["arxiv_id"] for row in rows]
    assert judged[0]["labels"] == ["LLM", "MLM"] and judged[0]["judge"] == {
        "labels": ["LLM", "MLM"], "judge_version": JUDGE_VERSION}
    assert judged[1]["labels"] == head[1]["labels"]
    assert 'the one key "families"' in judged[1]["judge"]["error"]
    assert judged[2]["labels"] == ["none"] and judged[2]["judge"]["labels"] == ["none"]
    for mine, theirs in zip(judged, head):
        assert {k: mine[k] for k in ("scores", "low_confidence", "model_version")} == {
            k: theirs[k] for k in ("scores", "low_confidence", "model_version")}


# ---- measuring the judge -------------------------------------------------------------------


def test_eval_llm_scores_the_judge_on_a_labeled_file(server, monkeypatch, tmp_path, capsys):
    _use_server(monkeypatch, server)
    rows = _dev_rows(4)
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for row in rows[:3]:
        truth = [code for code in row["labels"] if code != "none"]
        server.answer(row["title"], json.dumps({"families": truth}))
    server.answer(rows[3]["title"], "I cannot tell.")
    assert main(["eval", "--backend", "llm", "--labeled", str(labeled), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert (metrics["papers"], metrics["failed"]) == (4, 1)
    assert metrics["exact_set_accuracy"] == 0.75  # the failed paper counts as none
    assert metrics["judge_version"] == JUDGE_VERSION and JUDGE_VERSION in metrics["method"]
    assert main(["eval", "--backend", "llm", "--labeled", str(labeled), "--folds", "3"]) == 2
    assert "leave out --folds" in capsys.readouterr().err


def test_eval_llm_on_the_held_out_split_reports_its_parts(server, monkeypatch, capsys):
    _use_server(monkeypatch, server)
    server.default = '{"families": []}'
    assert main(["eval", "--backend", "llm", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert len(server.requests) == metrics["papers"] == 516  # each paper asked once
    assert metrics["random"]["papers"] + metrics["targeted"]["papers"] == 516
    assert metrics["none_accuracy"] == 1.0 and metrics["badge_precision"] == 1.0
    assert metrics["macro_f1"] < 0.2 and metrics["failed"] == 0
    assert "cross_validation" not in metrics


# ---- the setting and `octet run` -----------------------------------------------------------


def test_the_families_judge_setting_is_checked_where_it_is_given(monkeypatch):
    assert load_settings().families_judge == "off"
    monkeypatch.setenv("OCTET_FAMILIES_JUDGE", "Recheck")
    assert load_settings().families_judge == "recheck"
    monkeypatch.setenv("OCTET_FAMILIES_JUDGE", "always")
    with pytest.raises(ConfigError, match="OCTET_FAMILIES_JUDGE must be one of off, recheck"):
        load_settings()


def test_the_run_rechecks_after_classifying_only_when_the_setting_says_so(server, judged):
    assert job.STAGES["classify"] is classify_stage
    _stored(judged, ["uncertain", "certain", "title"])
    report: dict = {"errors": []}
    result = classify_stage(judged, report)
    assert result["classified"] == 0 and "judge" not in result and server.requests == []
    result = classify_stage(replace(judged, families_judge="recheck"), report)
    assert result["classified"] == 0 and result["judge"]["checked"] == 2
    assert report["errors"] == []
    result = classify_stage(replace(judged, families_judge="recheck", summarizer="extractive"),
                            report)
    assert result["judge"]["error"].startswith("the llm judge needs a generative model")
    assert report["errors"][0].startswith("families judge: the llm judge needs")
