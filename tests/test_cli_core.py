"""The core commands as a user types them: status, show, import, demo, bad settings."""
from __future__ import annotations

import json
import lzma

import pytest

from tests.helpers import real_listings
from pipeline.cli import main
from storage import papers as store


@pytest.fixture(autouse=True)
def fetch_only(monkeypatch):
    monkeypatch.setenv("OCTET_STAGES", "none")


def test_status_on_a_fresh_home(capsys):
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["papers"] == 0 and status["last_run"] is None


def test_bad_setting_is_exit_2_with_the_fix(monkeypatch, capsys):
    monkeypatch.setenv("OCTET_ARXIV_DELAY", "soon")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "OCTET_ARXIV_DELAY" in err and "fix or remove" in err


def test_bad_config_file_is_exit_2(octet_home, capsys):
    octet_home.mkdir(parents=True)
    (octet_home / "config.toml").write_text('categories = "cs.CL"\nunknown_key = 1\n')
    assert main(["status"]) == 2
    assert "unknown setting 'unknown_key'" in capsys.readouterr().err


def test_config_file_env_and_flags_layer_in_order(octet_home, monkeypatch, tmp_path):
    from pipeline.core.settings import load_settings
    octet_home.mkdir(parents=True)
    (octet_home / "config.toml").write_text('categories = ["cs.RO"]\narxiv_delay = 5\n')
    settings = load_settings()
    assert settings.categories == ("cs.RO",) and settings.arxiv_delay == 5
    monkeypatch.setenv("OCTET_CATEGORIES", "cs.CL, cs.CV")
    assert load_settings().categories == ("cs.CL", "cs.CV")
    assert load_settings({"categories": "eess.AS"}).categories == ("eess.AS",)
    assert load_settings({"db": str(tmp_path / "x.duckdb")}).db_path == tmp_path / "x.duckdb"


def test_show_unknown_and_malformed_ids(capsys):
    assert main(["show", "2501.00001"]) == 2
    assert "not stored" in capsys.readouterr().err
    assert main(["show", "banana"]) == 2
    assert "not an arXiv id" in capsys.readouterr().err


def test_import_snapshot_and_octet_formats_with_bad_lines(tmp_path, capsys, settings):
    rows = real_listings(day="2025-05-27")[:40]
    path = tmp_path / "papers.jsonl.xz"
    with lzma.open(path, "wt", encoding="utf-8") as handle:
        for row in rows[:20]:
            handle.write(json.dumps(row) + "\n")
        handle.write("{broken\n")
        for row in rows[20:]:  # arXiv's metadata snapshot shape
            handle.write(json.dumps({"id": row["id"], "title": row["title"],
                                     "abstract": row["abstract"],
                                     "authors": ", ".join(row["authors"]),
                                     "categories": " ".join(row["categories"]),
                                     "versions": [{"version": "v1", "created":
                                                   "Mon, 26 May 2025 17:00:00 GMT"}],
                                     "update_date": "2025-05-27"}) + "\n")
    assert main(["import", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new"] == 40 and report["skipped"] == 1
    assert "line 21" in report["skipped_reasons"]
    assert store.count_papers(settings.db_path) == 40
    assert main(["import", str(path)]) == 0  # idempotent
    assert store.count_papers(settings.db_path) == 40


def test_import_missing_file_is_exit_2(capsys):
    assert main(["import", "/nonexistent/papers.jsonl"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_demo_goes_to_its_own_database(settings, capsys):
    assert main(["demo"]) == 0
    assert store.count_papers(settings.demo_db_path) == 300
    assert store.count_papers(settings.db_path) == 0


def test_run_or_demo_offline_says_one_line_and_loads_demo(monkeypatch, settings, capsys):
    monkeypatch.setenv("OCTET_ARXIV_RSS_URL", "http://127.0.0.1:9/rss/")  # nothing listens
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "1")
    monkeypatch.setenv("OCTET_ARXIV_DELAY", "0")
    assert main(["run", "--or-demo"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "arXiv cannot be reached" in out[0] and "DEMO" in out[0]
    assert store.count_papers(settings.demo_db_path) == 300
    assert main(["run"]) == 3  # without --or-demo, cron gets exit 3


def test_global_flags_work_before_or_after_the_command(tmp_path, capsys):
    other = tmp_path / "elsewhere.duckdb"
    assert main(["status", "--json", "--db", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["db"] == str(other)
    assert main(["--db", str(other), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["db"] == str(other)
    assert main(["queue", "list", "--db", str(other)]) == 0


def test_every_known_stage_setting_names_a_stage_of_the_job():
    from pipeline.core.settings import STAGES, Settings
    from pipeline.job import STAGES as RUNNERS
    assert tuple(RUNNERS) == STAGES == Settings().stages
