"""Issue 12, items 9 and 14 (parts) and 5 (`octet show`): bodies are capped while they are
read, stored fields are capped with a logged note, and the import and show commands say
what happened.

Reads the hostile inputs in ``tests/fixtures/hostile/network/`` (written by its
``generate.py``; see its README): a paper whose every field is far over its cap (a 5 MB
abstract), an RSS feed of 54 MB and a chat completion of 50 MB (both xz-packed and
streamed by the server here without a length, so only a cap on reading stops them), and a
file of junk lines.
"""
from __future__ import annotations

import json
import lzma
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.cli import main
from pipeline.core.paper import clean_text
from pipeline.stages.sources import build_paper
from pipeline.stages.summaries.openai import OpenAISummarizer
from pipeline.stages.summaries.summary import Summary, SummaryFailure
from storage.db import connect
from storage.papers import count_papers, upsert_papers
from storage.summaries import save_summaries
from tests.arxiv_server import ReplayServer
from tests.helpers import REPO, first_papers, real_listings

HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "network"
DAY = date(2026, 6, 2)


def oversized_row() -> dict:
    with lzma.open(HOSTILE / "oversized_fields.jsonl.xz", "rt", encoding="utf-8") as handle:
        return json.loads(handle.readline())


class PackedHandler(BaseHTTPRequestHandler):
    """Streams one xz-packed fixture as the body of every answer, without a length."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.stream()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.stream()

    def stream(self) -> None:
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            with lzma.open(self.server.fixture) as packed:
                while chunk := packed.read(1 << 20):
                    self.wfile.write(chunk)
        except OSError:  # the client stopped reading: what a cap should make it do
            pass


@pytest.fixture
def packed():
    def start(name: str) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), PackedHandler)
        server.daemon_threads = True
        server.fixture, server.requests = HOSTILE / name, 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server
    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def replay(monkeypatch):
    with ReplayServer() as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("OCTET_STAGES", "none")
        monkeypatch.setenv("OCTET_CATEGORIES", "cs.CL,cs.CV")
        monkeypatch.setenv("OCTET_HTTP_RETRIES", "1")
        yield running


def db_rows(home, sql: str):
    with connect(home / "octet.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_5_mb_abstract_in_the_feed_and_the_api_is_capped_with_a_logged_note(
        replay, octet_home):
    from pipeline.stages.sources import FIELD_LIMITS

    row = oversized_row()
    assert len(row["abstract"]) > 5_000_000
    replay.replay.set_day([row], DAY)
    assert main(["run"]) == 0
    [(title, abstract, authors, categories, comment, hydrated)] = db_rows(
        octet_home, "SELECT title, abstract, authors, categories, comment, hydrated FROM papers")
    assert hydrated  # the API answer was capped the same way
    assert len(abstract) <= FIELD_LIMITS["abstract"] and abstract.startswith("We study")
    assert len(title) <= FIELD_LIMITS["title"]
    assert len(authors) == FIELD_LIMITS["authors"]
    assert max(map(len, authors)) <= FIELD_LIMITS["author"]
    assert len(categories) <= FIELD_LIMITS["categories"]
    assert len(comment) <= FIELD_LIMITS["comment"]
    log = (octet_home / "logs" / "octet.log").read_text(encoding="utf-8")
    assert "2506.99001: abstract cut from 5" in log and "authors cut to the first" in log


def test_an_imported_paper_has_every_field_capped(settings, tmp_path, monkeypatch):
    from pipeline.stages.sources import FIELD_LIMITS

    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["import", str(HOSTILE / "oversized_fields.jsonl.xz")]) == 0
    [(title, abstract, authors, comment, journal_ref)] = db_rows(
        settings.home, "SELECT title, abstract, authors, comment, journal_ref FROM papers")
    assert len(title) <= FIELD_LIMITS["title"] and len(abstract) <= FIELD_LIMITS["abstract"]
    assert len(authors) == FIELD_LIMITS["authors"]
    assert len(comment) <= FIELD_LIMITS["comment"]
    assert len(journal_ref) <= FIELD_LIMITS["journal_ref"]


def test_categories_and_primary_category_are_cleaned_like_other_text():
    paper = build_paper(arxiv_id="2501.00001", title="T", categories=["cs.LG", "cs.AI \n x"],
                        primary_category=" cs.CL\t")
    assert paper.primary_category == "cs.CL"
    assert paper.categories == ("cs.CL", "cs.LG", clean_text("cs.AI \n x"))
    assert "\n" not in "".join(paper.categories)


def test_a_50_mb_feed_is_refused_and_nothing_is_stored(packed, replay, octet_home,
                                                       monkeypatch, capsys):
    server = packed("oversized_feed.xml.xz")
    monkeypatch.setenv("OCTET_ARXIV_RSS_URL", f"{url_of(server)}/rss/")
    assert main(["run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OCTET_HTTP_MAX_BYTES" in err[0], err
    assert server.requests == 1  # the same answer again would be as large: not retried
    assert count_papers(octet_home / "octet.duckdb") == 0
    assert db_rows(octet_home, "SELECT status, exit_code FROM runs") == [("failed", 1)]


def test_a_50_mb_api_answer_is_refused_and_the_listing_waits(packed, replay, octet_home,
                                                             monkeypatch, capsys):
    replay.replay.set_day(real_listings(day="2025-05-27")[:3], DAY)
    monkeypatch.setenv("OCTET_ARXIV_API_URL", f"{url_of(packed('oversized_feed.xml.xz'))}/api")
    main(["run", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert any("OCTET_HTTP_MAX_BYTES" in error for error in report["errors"])
    assert db_rows(octet_home, "SELECT count(*), count(*) FILTER (WHERE hydrated) "
                               "FROM papers") == [(3, 0)]


def test_a_50_mb_model_reply_is_a_failed_request(packed):
    server = packed("oversized_reply.json.xz")
    client = OpenAISummarizer(model="m", base_url=f"{url_of(server)}/v1", retry_delay=0.01)
    [result] = client.summarize(first_papers(1))
    assert isinstance(result, SummaryFailure) and "MiB" in result.error
    assert server.requests == 1


def test_import_of_only_junk_lines_exits_1_and_stores_nothing(settings, monkeypatch, capsys):
    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["import", str(HOSTILE / "junk_only.jsonl"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == 7 and report["fetched"] == 0
    assert "nothing was stored" in report["errors"][0]
    assert count_papers(settings.db_path) == 0


def test_import_of_a_directory_says_it_is_one(tmp_path, capsys):
    assert main(["import", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and ".jsonl" in err and "does not exist" not in err


def test_show_marks_a_tldr_from_the_extractive_fallback(settings, capsys):
    paper = first_papers(1)[0]
    upsert_papers(settings.db_path, [paper])
    save_summaries(settings.db_path, [Summary(
        arxiv_id=paper.arxiv_id, version=1, tldr="A sentence of the abstract.",
        problem="Made up.", backend="openai", model="m", prompt_version="summarize.v1",
        fallback_fields=("tldr",))])
    assert main(["show", paper.arxiv_id]) == 0
    assert "tl;dr (extractive): A sentence of the abstract." in capsys.readouterr().out
