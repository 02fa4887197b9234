"""Issue 12, item 1 and part of 14: every request has a total deadline, retry waits have a
budget per run, a stuck run lock is reported, and `run` says what happened when it exits 3.

The slow server here sends its headers at once and then one byte every 0.5 s: each read
gets a byte long before any per-read timeout, so only a deadline on the whole request ends
it. Timing assertions are generous: "done within 10 s" where the deadline is 1 s and the
server would take 30 s for each request.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.cli import main
from pipeline.core.settings import load_settings
from pipeline.stages.summaries.openai import OpenAISummarizer
from pipeline.stages.summaries.summary import SummaryFailure
from storage.db import connect
from tests.arxiv_server import ReplayServer
from tests.helpers import first_papers, real_listings, serving

DAY = date(2026, 6, 2)
DRIP_SECONDS = 30.0
"""How long the slow server takes to send one body: far past every deadline used here."""


class SlowHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.drip()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.drip()

    def drip(self) -> None:
        """Headers now, then one byte every 0.5 s until ``DRIP_SECONDS`` have passed."""
        self.server.requests.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(int(DRIP_SECONDS * 2)))
        self.end_headers()
        try:
            for _ in range(int(DRIP_SECONDS * 2)):
                if self.server.stopping.wait(0.5):
                    return
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:  # the client gave up: what a deadline should make it do
            pass


class SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SlowHandler)
        self.requests: list[float] = []
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def slow():
    with serving(SlowServer()) as server:
        yield server
        server.stopping.set()  # the drips end, so shutting down does not wait for them


@pytest.fixture
def replay(monkeypatch):
    with ReplayServer() as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        yield running


@pytest.fixture
def quick(monkeypatch):
    """A deadline of 1 s, one retry, no pacing, fetch only."""
    for key, value in {"OCTET_HTTP_TIMEOUT": "1", "OCTET_HTTP_RETRIES": "1",
                       "OCTET_ARXIV_DELAY": "0", "OCTET_STAGES": "none",
                       "OCTET_CATEGORIES": "cs.CL,cs.CV"}.items():
        monkeypatch.setenv(key, value)


def db_rows(home, sql: str):
    with connect(home / "octet.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_feed_that_drips_ends_the_run_at_the_deadline_with_exit_3(slow, quick, octet_home,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv("OCTET_ARXIV_RSS_URL", f"{slow.base}/rss/")
    started = time.monotonic()
    assert main(["run"]) == 3
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OCTET_HTTP_TIMEOUT" in err[0], err
    assert len(slow.requests) == 2  # the deadline is retried like any timeout
    assert db_rows(octet_home, "SELECT status, exit_code FROM runs") == [("unreachable", 3)]


def test_an_api_that_drips_ends_hydration_at_the_deadline_and_keeps_the_listing(
        replay, slow, quick, octet_home, monkeypatch, capsys):
    replay.replay.set_day(real_listings(day="2025-05-27")[:5], DAY)
    monkeypatch.setenv("OCTET_ARXIV_API_URL", f"{slow.base}/api/query")
    started = time.monotonic()
    assert main(["run", "--json"]) == 3
    assert time.monotonic() - started < 10
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == 3 and "no paper could be hydrated" in report["unreachable"]
    assert db_rows(octet_home, "SELECT count(*), count(*) FILTER (WHERE hydrated) "
                               "FROM papers") == [(5, 0)]
    assert db_rows(octet_home, "SELECT status, exit_code FROM runs") == [("unreachable", 3)]


def test_an_openai_server_that_drips_fails_the_paper_at_the_deadline(slow):
    client = OpenAISummarizer(model="m", base_url=f"{slow.base}/v1", timeout=1, retries=1,
                              retry_delay=0.01)
    started = time.monotonic()
    [result] = client.summarize(first_papers(1))
    assert time.monotonic() - started < 10
    assert isinstance(result, SummaryFailure) and "within 1 s" in result.error
    assert len(slow.requests) == 2


def test_a_total_api_outage_during_hydration_says_so_and_exits_3(replay, quick, octet_home,
                                                                capsys):
    replay.replay.set_day(real_listings(day="2025-05-27")[:5], DAY)
    for _ in range(2):
        replay.replay.add_fault("status", status=503, path="/api")
    assert main(["run"]) == 3
    captured = capsys.readouterr()
    assert "no paper could be hydrated" in captured.out
    assert len(captured.err.strip().splitlines()) == 1
    assert db_rows(octet_home, "SELECT count(*) FILTER (WHERE NOT hydrated) FROM papers") == [
        (5,)]
    assert main(["run"]) == 0  # arXiv is back: the next run fills them in
    assert db_rows(octet_home, "SELECT count(*) FILTER (WHERE hydrated) FROM papers") == [(5,)]


def test_run_json_prints_the_report_when_arxiv_is_down(replay, quick, octet_home, capsys):
    for _ in range(2):
        replay.replay.add_fault("status", status=503, path="/rss")
    assert main(["run", "--json"]) == 3
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["status"], report["exit_code"]) == ("unreachable", 3)
    assert "could not be reached" in report["errors"][0]
    assert len(captured.err.strip().splitlines()) == 1


def test_retry_after_waits_are_bounded_by_the_retry_budget(replay, quick, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "3")
    monkeypatch.setenv("OCTET_HTTP_RETRY_BUDGET", "5")
    for _ in range(4):
        replay.replay.add_fault("status", status=429, headers={"Retry-After": "30"},
                                path="/rss")
    started = time.monotonic()
    assert main(["run", "--json"]) == 3
    assert time.monotonic() - started < 10
    captured = capsys.readouterr()
    assert "OCTET_HTTP_RETRY_BUDGET" in captured.err
    assert "retry budget" in json.loads(captured.out)["errors"][0]


class BusyHandler(BaseHTTPRequestHandler):
    """A chat server that always asks to come back in 30 s."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(429)
        self.send_header("Retry-After", "30")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_openai_retry_after_waits_are_bounded_by_the_retry_budget(settings, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), BusyHandler)
    server.daemon_threads = True
    for key, value in {"OCTET_OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
                       "OCTET_MODEL": "m", "OCTET_HTTP_RETRIES": "3",
                       "OCTET_HTTP_RETRY_BUDGET": "5"}.items():
        monkeypatch.setenv(key, value)
    with serving(server):
        client = OpenAISummarizer.from_settings(load_settings())
        started = time.monotonic()
        [result] = client.summarize(first_papers(1))
        assert time.monotonic() - started < 10
        assert isinstance(result, SummaryFailure) and "OCTET_HTTP_RETRY_BUDGET" in result.error


LOCK_HOLDER = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write("%d" % __import__("os").getpid()); handle.flush()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def lock_holder(octet_home):
    """Another live process holding ``run.lock`` (as a run would)."""
    octet_home.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(octet_home / "run.lock")],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


def test_a_run_lock_held_past_lock_max_age_is_reported_with_exit_1(lock_holder, octet_home,
                                                                   monkeypatch, capsys):
    monkeypatch.setenv("OCTET_LOCK_MAX_AGE", "3600")
    assert main(["run"]) == 0  # a fresh lock: another run is working, as before
    assert "already working" in capsys.readouterr().out
    two_hours_ago = time.time() - 7200
    os.utime(octet_home / "run.lock", (two_hours_ago, two_hours_ago))
    assert main(["run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OCTET_LOCK_MAX_AGE" in err[0] and str(lock_holder.pid) in err[0]
    assert main(["fetch", "--ids", "2501.00001"]) == 1


def test_import_takes_the_run_lock(lock_holder, settings, tmp_path, capsys):
    path = tmp_path / "papers.jsonl"
    path.write_text(json.dumps({"id": "2501.00001", "title": "A paper"}) + "\n")
    assert main(["import", str(path)]) == 1
    assert "nothing was imported" in capsys.readouterr().err
    assert not settings.db_path.exists() or db_rows(settings.home,
                                                    "SELECT count(*) FROM papers") == [(0,)]
