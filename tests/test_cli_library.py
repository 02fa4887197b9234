"""One database for the app and the commands: after `octet run --or-demo` falls back to the
demo, every reading command uses the demo and says so first, `status --json` carries
``"demo": true``, and the first run that stores papers switches everything back. Real DuckDB
files, a local arXiv stand-in, and a real subprocess where the first line matters."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cli.reading import app_environment
from pipeline.stages.library import choose_library
from storage import papers as store
from storage import reading
from tests.arxiv_server import ReplayServer
from tests.helpers import real_listings, store_real_papers

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fetch_only(monkeypatch):
    monkeypatch.setenv("OCTET_STAGES", "none")


@pytest.fixture
def offline_demo(monkeypatch, settings, capsys):
    """What `make run` leaves when arXiv cannot be reached: a failed run in the reader's
    database and the demo loaded."""
    monkeypatch.setenv("OCTET_ARXIV_RSS_URL", "http://127.0.0.1:9/rss/")  # nothing listens
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "0")
    monkeypatch.setenv("OCTET_ARXIV_DELAY", "0")
    assert main(["run", "--or-demo"]) == 0
    assert "the app and the commands show it" in capsys.readouterr().out
    return settings


def _demo_said_first(err: str) -> None:
    first = err.strip().splitlines()[0]
    assert first.startswith("octet: DEMO database") and "arXiv was unreachable at" in first


def test_after_the_demo_fallback_every_reading_command_uses_it_and_says_so(offline_demo, capsys):
    settings = offline_demo
    assert main(["status", "--json"]) == 0
    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert status["demo"] is True and status["papers"] == 300
    assert status["db"] == str(settings.demo_db_path)
    assert status["demo_reason"].startswith("arXiv was unreachable at")
    _demo_said_first(captured.err)

    demo_id = store.load_papers(settings.demo_db_path)[0].arxiv_id
    for command in (["show", demo_id], ["queue", "add", demo_id], ["queue", "list", "--json"],
                    ["pick", "--json"], ["done", demo_id, "--rating", "4"]):
        assert main(command) == 0, command
        captured = capsys.readouterr()
        _demo_said_first(captured.err)
        assert "not stored" not in captured.out + captured.err
    assert main(["export", "bibtex", "--all"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("@") >= 300  # BibTeX on stdout stays clean: the notice is on stderr
    _demo_said_first(captured.err)
    assert reading.reading_of(settings.demo_db_path, demo_id)["state"] == "read"
    assert store.count_papers(settings.db_path) == 0  # the reader's own database is untouched


def test_the_first_run_that_stores_papers_switches_back(offline_demo, monkeypatch, capsys):
    settings = offline_demo
    with ReplayServer() as server:
        server.replay.set_day(real_listings(day="2025-05-27")[:5], date(2025, 5, 27))
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        assert main(["run"]) == 0
    assert "your own database now has papers" in capsys.readouterr().out
    assert main(["status", "--json"]) == 0
    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert status["demo"] is False and status["db"] == str(settings.db_path)
    assert status["papers"] == 5 and status["demo_reason"] is None
    assert "DEMO" not in captured.err
    assert store.count_papers(settings.demo_db_path) == 300  # the demo is kept, unused


def test_a_named_database_is_never_swapped_for_the_demo(settings, tmp_path, capsys):
    store_real_papers(settings.demo_db_path, 3)
    mine = tmp_path / "mine.duckdb"
    assert main(["status", "--json", "--db", str(mine)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["db"] == str(mine) and captured.err == ""
    assert main(["status", "--json", "--db", str(settings.demo_db_path)]) == 0
    assert json.loads(capsys.readouterr().out)["demo"] is True


def test_no_demo_no_file_opened_and_the_app_is_not_pinned(settings, monkeypatch, tmp_path):
    library = choose_library(settings)
    assert (library.path, library.demo) == (settings.db_path, False)
    assert not settings.db_path.exists()  # choosing created nothing
    assert "OCTET_DB" not in app_environment(settings)  # the app chooses on every page
    monkeypatch.setenv("OCTET_DB", str(tmp_path / "mine.duckdb"))
    from pipeline.core.settings import load_settings
    assert app_environment(load_settings())["OCTET_DB"] == str(tmp_path / "mine.duckdb")


def test_octet_demo_says_which_database_the_commands_now_show(settings, capsys):
    assert main(["demo"]) == 0
    assert "show the demo until a run stores yours" in capsys.readouterr().out
    store_real_papers(settings.db_path, 2)
    assert main(["demo"]) == 0
    assert "has papers and stays in use" in capsys.readouterr().out


def test_show_and_status_print_no_raw_none(offline_demo, capsys):
    demo = store.load_papers(offline_demo.demo_db_path)
    assert any(paper.published is None for paper in demo)  # the case that printed None
    for paper in demo[:20]:
        assert main(["show", paper.arxiv_id]) == 0
        assert "None" not in capsys.readouterr().out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and out.splitlines()[0].endswith("(DEMO)")


def test_the_notice_is_the_first_line_a_real_process_prints(offline_demo, tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "OCTET_DB"}
    environment["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "queue", "list"],
                            cwd=REPO, env=environment, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    _demo_said_first(result.stderr)
    assert "The queue is empty" in result.stdout
