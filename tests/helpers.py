"""What the tests share, imported one way (``from tests.helpers import ...``): where the
fixtures are, the real papers of the listings slice, and helpers that store them.

Everything here reads ``tests/fixtures/`` only, so a fresh clone with nothing beside it
runs the suite. The fixtures are real arXiv metadata (CC0) and real arXiv responses; see
``tests/fixtures/README.md`` for where each came from.
"""
from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.paper import Paper, abs_url, clean_text, pdf_url
from storage.papers import upsert_papers

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "arxiv"
LISTINGS = REPO / "tests" / "fixtures" / "listings_slice.jsonl.xz"
LABELED_DEV = REPO / "tests" / "fixtures" / "labeled_dev.jsonl"


@lru_cache(maxsize=2)
def _listings(path: Path) -> tuple[dict, ...]:
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


def listing_rows(path: Path, limit: int | None = None, day: str | None = None) -> list[dict]:
    """Real papers of an ``.jsonl.xz`` listings file, in file order (optionally of one
    listing day), read once per process."""
    rows = [row for row in _listings(Path(path)) if day is None or row["listed_date"] == day]
    return rows[:limit] if limit else rows


def real_listings(limit: int | None = None, day: str | None = None) -> list[dict]:
    """Real papers of the listings slice, in file order (optionally of one listing day)."""
    return listing_rows(LISTINGS, limit, day)


def first_papers(count: int) -> list[Paper]:
    """The first ``count`` papers of the slice as bare ``Paper``s (title and abstract)."""
    return [Paper(arxiv_id=row["id"], version=1, title=row["title"], abstract=row["abstract"])
            for row in real_listings(limit=count)]


def paper_from_row(row: dict) -> Paper:
    """A stored-shape ``Paper`` from one line of the real listings file."""
    day = row["listed_date"]
    return Paper(
        arxiv_id=row["id"], version=1, title=clean_text(row["title"]),
        authors=tuple(row["authors"]), abstract=clean_text(row["abstract"]),
        categories=tuple(row["categories"]), primary_category=row["categories"][0],
        published=datetime.fromisoformat(day).replace(tzinfo=timezone.utc),
        comment=row.get("comment"), abs_url=abs_url(row["id"]), pdf_url=pdf_url(row["id"]),
        announce_type="new", listed_date=day)


def store_real_papers(db_path, limit: int = 60, day: str | None = None) -> list[Paper]:
    """Store ``limit`` real papers (optionally of one listing day); returns them."""
    papers = [paper_from_row(row) for row in real_listings(limit=limit, day=day)]
    upsert_papers(db_path, papers)
    return papers


def store_embeddings(db_path, papers: list[Paper], vectors) -> None:
    """Store embeddings the way the classify stage does (``storage.families``)."""
    from storage.families import store_results

    store_results(db_path, [{"arxiv_id": p.arxiv_id, "version": p.version, "vector": v}
                            for p, v in zip(papers, vectors)], [], "test")


def store_families(db_path, labeled: dict[str, list[str]], score: float = 0.9) -> None:
    """Store model family labels (with ``score`` for each label, 0.05 for the others)."""
    from pipeline.core.families import CODES
    from storage.families import store_results

    rows = [{"arxiv_id": arxiv_id, "version": 1, "labels": labels,
             "scores": {code: score if code in labels else 0.05 for code in CODES}}
            for arxiv_id, labels in labeled.items()]
    store_results(db_path, [], rows, "test")


def set_reading(db_path, rows: list[dict]) -> None:
    """Give papers reading states the way the app and the Obsidian import do
    (``storage.reading.set_state``): ``arxiv_id``, ``state`` and optionally ``week``
    (default: this week), ``read_on``, ``rating``, ``notes``."""
    from pipeline.core.weeks import current_week
    from storage import reading

    for row in rows:
        reading.set_state(db_path, row["arxiv_id"], row["state"],
                          row.get("week") or current_week(""), row.get("read_on"),
                          rating=row.get("rating", reading.KEEP),
                          notes=row.get("notes", reading.KEEP))


def states_of(db_path, arxiv_ids: list[str]) -> dict[str, str]:
    """The reading state of each id, as the app's cards show it."""
    from storage.reading import cards

    found = cards(db_path, list(arxiv_ids))
    return {arxiv_id: found[arxiv_id]["state"] for arxiv_id in arxiv_ids}


def nearest_ids(db_path, vector, wanted=None, limit: int = 50) -> list[tuple[str, float]]:
    """``(id, cosine)`` of the papers nearest a vector (``storage.search.find_nearest``)."""
    from storage.search import find_nearest

    return [(card["arxiv_id"], card["score"]) for card in find_nearest(db_path, vector, wanted,
                                                                       limit)]


def similar_ids(db_path, arxiv_id: str, limit: int = 10) -> list[tuple[str, float]]:
    """``(id, cosine)`` of the papers most like one paper (``storage.search.find_similar``)."""
    from storage.search import find_similar

    return [(card["arxiv_id"], card["score"]) for card in find_similar(db_path, arxiv_id, limit)]


def systemd_verify(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``systemd-analyze --user verify`` on the units in ``folder``, in a private runtime
    directory (no user session is needed)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(["systemd-analyze", "--user", "verify", str(folder / "octet.timer"),
                           str(folder / "octet.service")], capture_output=True, text=True,
                          timeout=60, env={"XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin",
                                           "HOME": str(tmp_path)})


@contextmanager
def serving(server):
    """A stdlib HTTP server answering from a thread for the ``with`` block; shut down and
    closed after it, even when the block fails."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


APP = str(Path(__file__).resolve().parents[1] / "app.py")
"""The app's entry point, for Streamlit's AppTest."""


def open_app(page: str | None = None):
    """The app in Streamlit's AppTest: the default page (This week) runs first, as in a
    browser, then ``page`` when given; fails on any exception the page raised."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    if page:
        app.switch_page(page)
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


class JsonHandler(BaseHTTPRequestHandler):
    """The base of the tests' stand-in servers: quiet, and ``send_json`` answers one JSON body."""

    def log_message(self, *args):  # keep the test output quiet
        pass

    def send_json(self, status: int, body: dict) -> None:
        """One JSON response with its length, so the client reads exactly this."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def chat_reply(content: str) -> dict:
    """An OpenAI chat-completions body whose one choice says ``content``."""
    return {"object": "chat.completion", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": content}, "finish_reason": "stop"}]}



# ---- backfills: the real command, and its rows compared with the daily stages' ----------

BACKFILL_PAPERS = 300
"""Real papers a backfill test runs through (the ``backfill_input`` fixture)."""


def write_input(folder: Path, rows: list[dict], name: str = "papers.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def octet(home: Path, *arguments: str, check: bool = True, variables: dict | None = None,
          **options) -> subprocess.CompletedProcess:
    """The real command in its own process, on ``home`` (``variables``: more environment)."""
    environment = {**os.environ, "OCTET_HOME": str(home), "HF_HUB_OFFLINE": "1",
                   **(variables or {})}
    finished = subprocess.run([sys.executable, "-m", "pipeline.cli", *arguments], text=True,
                              capture_output=True, env=environment, timeout=600, **options)
    if check:
        assert finished.returncode == 0, finished.stderr + finished.stdout
    return finished


def result_rows(db_path: Path) -> dict[str, dict]:
    """Every paper's version, scores, labels, embedding and summary, as comparable values."""
    from storage.db import connect, rows_of

    with connect(db_path, read_only=True) as con:
        scores = rows_of(con.execute("SELECT * EXCLUDE (scored_at) FROM family_scores"))
        summaries = rows_of(con.execute(
            "SELECT * EXCLUDE (created_at) FROM summaries ORDER BY arxiv_id"))
        vectors = rows_of(con.execute("SELECT arxiv_id, version, vector FROM embeddings"))
        papers = rows_of(con.execute("SELECT arxiv_id, version FROM papers"))
    rows = {row["arxiv_id"]: {"version": row["version"]} for row in papers}
    for row in scores:
        rows[row.pop("arxiv_id")]["scores"] = row
    for row in summaries:
        rows[row.pop("arxiv_id")].setdefault("summaries", []).append(row)
    for row in vectors:
        rows[row["arxiv_id"]].setdefault("vectors", []).append(row["vector"])
    return rows


def assert_same_results(found: dict[str, dict], expected: dict[str, dict]) -> None:
    """Labels and summaries equal; scores and embeddings within float tolerance; nothing
    missing, nothing twice."""
    assert found.keys() == expected.keys()
    for arxiv_id, want in expected.items():
        got = found[arxiv_id]
        assert got["version"] == want["version"]
        assert len(got.get("vectors", [])) == len(want.get("vectors", [])) == 1, arxiv_id
        assert np.allclose(got["vectors"][0], want["vectors"][0], atol=1e-4), arxiv_id
        got_scores, want_scores = dict(got["scores"]), dict(want["scores"])
        assert got_scores.pop("labels") == want_scores.pop("labels"), arxiv_id
        for name, value in want_scores.items():
            if isinstance(value, float):
                assert got_scores[name] == pytest.approx(value, abs=1e-3), (arxiv_id, name)
            else:
                assert got_scores[name] == value, (arxiv_id, name)
        assert got["summaries"] == want["summaries"], arxiv_id
