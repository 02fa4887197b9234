"""`octet run` and `octet fetch` against a local server that speaks arXiv, with faults."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from tests.arxiv_server import ReplayServer
from tests.helpers import FIXTURES, REPO, real_listings
from pipeline.cli import main
from storage.db import connect

DAY = date(2026, 6, 2)  # a Tuesday


@pytest.fixture
def server(monkeypatch):
    with ReplayServer() as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("OCTET_STAGES", "none")
        monkeypatch.setenv("OCTET_CATEGORIES", "cs.CL,cs.CV")
        yield running


@pytest.fixture(scope="module")
def big_day() -> list[dict]:
    """About 1,000 real papers: two real daily listings announced as one day."""
    return real_listings(day="2026-06-02") + real_listings(day="2025-05-27")[:300]


def db_rows(home, sql: str):
    with connect(home / "octet.duckdb", read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_day_is_stored_once_with_every_api_field_and_a_rerun_changes_nothing(
        server, big_day, octet_home, capsys):
    server.replay.set_day(big_day, DAY)
    assert main(["run"]) == 0
    assert db_rows(octet_home, "SELECT count(*), count(DISTINCT arxiv_id) FROM papers") == [
        (len(big_day), len(big_day))]
    assert db_rows(octet_home, "SELECT count(*) FROM papers WHERE NOT hydrated OR published "
                   "IS NULL OR primary_category = '' OR len(authors) = 0") == [(0,)]
    sample = big_day[5]
    stored = db_rows(octet_home, f"SELECT title, authors, categories, comment FROM papers "
                                 f"WHERE arxiv_id = '{sample['id']}'")[0]
    assert stored[1] == sample["authors"] and stored[2] == sample["categories"]
    assert stored[3] == (" ".join(sample["comment"].split()) if sample["comment"] else None)
    before = db_rows(octet_home, "SELECT * FROM papers ORDER BY arxiv_id")
    capsys.readouterr()
    api_requests = len(server.replay.paths("/api"))
    assert main(["run"]) == 0
    assert "new 0, updated 0" in capsys.readouterr().out
    assert db_rows(octet_home, "SELECT * FROM papers ORDER BY arxiv_id") == before
    assert len(server.replay.paths("/api")) == api_requests  # nothing to hydrate again
    runs = db_rows(octet_home, "SELECT run_id, json_extract(report, '$.same_feed_as_run'), "
                   "unchanged FROM runs ORDER BY run_id")
    assert runs == [(1, None, 0), (2, "1", len(big_day))]  # the same bytes: not parsed again


def test_a_changed_feed_is_parsed_again(server, octet_home, capsys):
    rows = real_listings(day="2025-05-27")[:30]
    server.replay.set_day(rows[:20], DAY)
    assert main(["run"]) == 0
    server.replay.set_day(rows, DAY)  # ten more papers in the same day's feed
    capsys.readouterr()
    assert main(["run", "--json"]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert (report["new"], report["unchanged"], "same_feed_as_run" in report) == (10, 20, False)
    assert db_rows(octet_home, "SELECT count(*) FROM papers") == [(30,)]


def test_v2_reannouncement_updates_and_keeps_history(server, octet_home, capsys):
    rows = real_listings(day="2025-05-27")[:60]
    server.replay.set_day(rows, DAY)
    assert main(["run"]) == 0
    replaced = {row["id"]: 2 for row in rows[:20]}
    server.replay.set_day(rows[:20], date(2026, 6, 3), kinds=dict.fromkeys(replaced, "replace"),
                          versions=replaced)
    capsys.readouterr()
    assert main(["run", "--json"]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert report["updated"] == 20 and report["new"] == 0
    assert main(["show", rows[0]["id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 2 and [v["version"] for v in shown["versions"]] == [1, 2]
    assert db_rows(octet_home, "SELECT count(*) FROM papers") == [(60,)]


def test_a_paper_listed_in_two_categories_is_one_paper(server, octet_home):
    rows = real_listings(day="2025-05-27")[:10]
    cross = dict(rows[0], categories=["cs.RO"])  # the same paper, seen again in another feed
    server.replay.set_day(rows + [cross], DAY, kinds={rows[0]["id"]: "new"})
    assert main(["run"]) == 0
    assert db_rows(octet_home, "SELECT count(*) FROM papers") == [(10,)]
    [(categories,)] = db_rows(octet_home, f"SELECT categories FROM papers "
                                          f"WHERE arxiv_id = '{rows[0]['id']}'")
    assert set(rows[0]["categories"]) <= set(categories)


def test_empty_weekend_feed_says_why(server, octet_home, capsys):
    server.replay.set_day([], date(2026, 6, 6))  # a Saturday
    assert main(["run"]) == 0
    assert "weekend" in capsys.readouterr().out


def test_empty_weekday_feed_says_holiday_or_empty(server, capsys):
    server.replay.rss_override = (FIXTURES / "rss_empty_test_2024-11-28.xml").read_bytes()
    assert main(["run"]) == 0
    assert "holiday" in capsys.readouterr().out


def test_error_feed_is_a_configuration_error(server, capsys):
    server.replay.rss_override = (FIXTURES / "rss_error_bad_archive_2024-11-28.xml").read_bytes()
    assert main(["run"]) == 2
    assert "Bad archive" in capsys.readouterr().err


@pytest.mark.parametrize("fault", [
    dict(kind="status", status=503),
    dict(kind="status", status=502),
    dict(kind="reset"),
    dict(kind="truncate"),
    dict(kind="garbage"),
    dict(kind="hang", seconds=2.5),
])
@pytest.mark.parametrize("path", ["/rss", "/api"])
def test_faults_are_retried_and_nothing_is_lost(server, octet_home, monkeypatch, fault, path):
    monkeypatch.setenv("OCTET_HTTP_TIMEOUT", "1")
    rows = real_listings(day="2025-05-27")[:150]
    server.replay.set_day(rows, DAY)
    server.replay.add_fault(path=path, **fault)
    server.replay.add_fault(path=path, **fault)
    assert main(["run"]) == 0
    assert db_rows(octet_home, "SELECT count(*), count(*) FILTER (WHERE hydrated) "
                               "FROM papers") == [(150, 150)]
    assert len(server.replay.paths(path)) >= 3


def test_429_retry_after_is_honoured(server, octet_home):
    rows = real_listings(day="2025-05-27")[:5]
    server.replay.set_day(rows, DAY)
    server.replay.add_fault("status", status=429, headers={"Retry-After": "2"}, path="/api")
    assert main(["run"]) == 0
    api = [moment for moment, path in server.replay.requests if path.startswith("/api")]
    assert len(api) == 2 and api[1] - api[0] >= 1.9


def test_configured_delay_is_kept_between_requests(server, octet_home, monkeypatch):
    monkeypatch.setenv("OCTET_ARXIV_DELAY", "0.4")
    rows = real_listings(day="2025-05-27")[:250]
    server.replay.set_day(rows, DAY)
    server.replay.add_fault("status", status=503, path="/api")
    assert main(["run"]) == 0
    moments = [moment for moment, _ in server.replay.requests]
    assert len(moments) == 5  # rss + failed api + 3 api pages of 100
    gaps = [b - a for a, b in zip(moments, moments[1:])]
    assert min(gaps) >= 0.39


def test_api_400_keeps_the_feed_papers_and_the_next_run_hydrates(server, octet_home, capsys):
    rows = real_listings(day="2025-05-27")[:30]
    server.replay.set_day(rows, DAY)
    server.replay.add_fault("status", status=400, path="/api",
                            body=(FIXTURES / "api_error_400_idlist_abc.xml").read_bytes())
    assert main(["run"]) == 0
    assert "incorrect id format" in capsys.readouterr().out
    assert db_rows(octet_home, "SELECT count(*) FILTER (WHERE NOT hydrated) FROM papers") == [
        (30,)]
    assert main(["run"]) == 0
    assert db_rows(octet_home, "SELECT count(*) FILTER (WHERE hydrated) FROM papers") == [(30,)]


def test_arxiv_down_exits_3_and_changes_no_paper(server, octet_home, monkeypatch, capsys):
    rows = real_listings(day="2025-05-27")[:20]
    server.replay.set_day(rows, DAY)
    assert main(["run"]) == 0
    before = db_rows(octet_home, "SELECT * FROM papers ORDER BY arxiv_id")
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "2")
    for _ in range(3):
        server.replay.add_fault("status", status=503, path="/rss")
    capsys.readouterr()
    assert main(["run"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be reached" in err[0]
    assert db_rows(octet_home, "SELECT * FROM papers ORDER BY arxiv_id") == before
    assert db_rows(octet_home, "SELECT status, exit_code FROM runs ORDER BY run_id DESC "
                               "LIMIT 1") == [("unreachable", 3)]


def test_entry_missing_fields_is_skipped_and_reported(server, octet_home, capsys):
    rows = real_listings(day="2025-05-27")[:10]
    broken = dict(rows[3], title="")
    server.replay.set_day(rows[:3] + [broken] + rows[4:], DAY)
    assert main(["run"]) == 0
    assert "skipped 1" in capsys.readouterr().out
    assert db_rows(octet_home, "SELECT count(*) FROM papers") == [(9,)]


def test_backfill_pages_through_a_date_range(server, octet_home, capsys):
    rows = real_listings(day="2025-05-27")[:250] + real_listings(day="2025-05-28")[:120]
    server.replay.set_day(rows, DAY)
    cats = {c for row in rows for c in row["categories"]} & {"cs.CL", "cs.CV"}
    expected = [row for row in rows if set(row["categories"]) & cats]
    assert main(["fetch", "--since", "2025-05-26", "--until", "2025-05-27"]) == 0
    assert db_rows(octet_home, "SELECT count(*) FROM papers") == [(len(expected),)]
    pages = server.replay.paths("/api")
    assert len(pages) == -(-len(expected) // 200)
    assert main(["fetch", "--since", "2025-05-27", "--until", "2025-05-01"]) == 2
    assert "swap them" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_mid_run_loses_and_doubles_nothing(server, octet_home):
    rows = real_listings(day="2026-06-02")
    server.replay.set_day(rows, DAY)
    env = dict(os.environ, OCTET_ARXIV_DELAY="0.3", OCTET_API_BATCH_SIZE="50",
               PYTHONPATH=str(REPO))
    import random
    chooser = random.Random(7)
    for attempt in range(10):
        process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(chooser.uniform(0.5, 4.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        ids = db_rows(octet_home, "SELECT count(*), count(DISTINCT arxiv_id) FROM papers")
        assert ids[0][0] == ids[0][1]  # never doubled
    final = subprocess.run([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert db_rows(octet_home, "SELECT count(*), count(DISTINCT arxiv_id), "
                               "count(*) FILTER (WHERE hydrated) FROM papers") == [
        (len(rows), len(rows), len(rows))]
    assert db_rows(octet_home, "SELECT count(*) FROM paper_versions") == [(len(rows),)]


def test_second_run_while_one_works_exits_0(server, octet_home):
    rows = real_listings(day="2025-05-27")[:200]
    server.replay.set_day(rows, DAY)
    env = dict(os.environ, OCTET_ARXIV_DELAY="1", OCTET_API_BATCH_SIZE="50",
               PYTHONPATH=str(REPO))
    first = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    second = subprocess.run([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert first.wait(timeout=120) == 0
    assert second.returncode == 0 and "already working" in second.stdout


def test_missed_days_are_filled_from_the_api(server, octet_home, capsys):
    first = real_listings(day="2025-05-27")[:40]
    missed = real_listings(day="2025-05-28")[:30] + real_listings(day="2025-05-29")[:30]
    today = real_listings(day="2025-05-30")[:20]
    server.replay.set_day(first, date(2025, 5, 27))
    assert main(["run"]) == 0
    server.replay.set_day(missed, date(2025, 5, 29))  # the server knows them; no run saw them
    server.replay.set_day(today, date(2025, 5, 30))
    capsys.readouterr()
    assert main(["run", "--json"]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert report["gap"]["missed_feeds"] == ["2025-05-28", "2025-05-29"]
    in_categories = [row for row in missed if {"cs.CL", "cs.CV"} & set(row["categories"])]
    stored = {row[0] for row in db_rows(octet_home, "SELECT arxiv_id FROM papers")}
    assert {row["id"] for row in in_categories} <= stored
    assert {row["id"] for row in today + first} <= stored


def test_fetch_ids_stores_the_named_papers_and_runs_the_stages(server, octet_home, capsys,
                                                                monkeypatch):
    rows = real_listings(day="2025-05-27")[:12]
    server.replay.set_day(rows, DAY)
    wanted = [rows[3]["id"], rows[7]["id"]]
    monkeypatch.setenv("OCTET_STAGES", "summarize")
    # Any usual id form: a version, an arxiv.org URL.
    assert main(["fetch", "--ids", f"{wanted[0]}v1,https://arxiv.org/abs/{wanted[1]}",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ids"] == wanted and report["new"] == 2 and "summarize" in report["stages"]
    stored = db_rows(octet_home, "SELECT arxiv_id, hydrated, len(authors) > 0 FROM papers "
                                 "ORDER BY arxiv_id")
    assert stored == [(arxiv_id, True, True) for arxiv_id in sorted(wanted)]
    assert db_rows(octet_home, "SELECT count(*) FROM summaries") == [(2,)]
    assert all("id_list=" in path for path in server.replay.paths("/api"))
    assert main(["show", wanted[0]]) == 0


def test_fetch_ids_names_an_id_arxiv_does_not_know_and_keeps_the_others(server, octet_home,
                                                                         capsys):
    rows = real_listings(day="2025-05-27")[:3]
    server.replay.set_day(rows, DAY)
    assert main(["fetch", "--ids", f"{rows[0]['id']},2501.99999"]) == 1
    out = capsys.readouterr().out
    assert "arXiv has no paper 2501.99999" in out
    assert db_rows(octet_home, "SELECT arxiv_id FROM papers") == [(rows[0]["id"],)]


def test_fetch_ids_refuses_what_is_not_an_id(server, capsys):
    assert main(["fetch", "--ids", "not-an-id"]) == 2
    assert "not-an-id" in capsys.readouterr().err
    assert main(["fetch", "--ids", " , "]) == 2
    assert "--ids is empty" in capsys.readouterr().err
    assert server.replay.paths("/api") == []


def test_show_points_at_fetch_ids_for_a_paper_not_stored(settings, capsys):
    assert main(["show", "2501.00001"]) == 2
    assert "octet fetch --ids 2501.00001" in capsys.readouterr().err
