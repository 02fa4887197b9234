"""The DuckDB store: migrations, upserts and versions, and two processes on one file."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from pipeline.core.paper import Paper
from storage import papers as store
from storage.db import DatabaseBusy, connect, migration_files, transaction


def paper(number: int, version: int = 1, **changes) -> Paper:
    base = Paper(arxiv_id=f"2501.{number:05d}", version=version, title=f"Title {number}",
                 authors=("Ada Lovelace",), abstract="An abstract.", categories=("cs.CL",),
                 primary_category="cs.CL", announce_type="new", listed_date="2025-01-02")
    return base.with_changes(**changes)


def test_migrations_are_applied_once_and_recorded(tmp_path):
    db = tmp_path / "a.duckdb"
    with connect(db) as con:
        names = [row[0] for row in con.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    assert names == [name for name, _ in migration_files()]
    with connect(db) as con:  # a second open applies nothing again
        assert con.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(names)


def test_upsert_counts_new_updated_refreshed_unchanged(tmp_path):
    db = tmp_path / "a.duckdb"
    result = store.upsert_papers(db, [paper(1), paper(2), paper(3)], hydrated=False)
    assert sorted(result.new) == ["2501.00001", "2501.00002", "2501.00003"]
    result = store.upsert_papers(db, [paper(1, version=2, title="New title"),
                                      paper(2, doi="10.1/x"), paper(3)])
    # 3 arrives hydrated for the first time: that too is a refresh
    assert result.updated == ["2501.00001"]
    assert sorted(result.refreshed) == ["2501.00002", "2501.00003"]
    assert store.upsert_papers(db, [paper(3)]).unchanged == ["2501.00003"]
    shown = store.get_paper(db, "2501.00001")
    assert shown["version"] == 2 and shown["title"] == "New title"
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert [v["title"] for v in shown["versions"]] == ["Title 1", "New title"]


def test_an_older_version_never_overwrites_a_newer_one(tmp_path):
    db = tmp_path / "a.duckdb"
    store.upsert_papers(db, [paper(1, version=3, title="v3")])
    result = store.upsert_papers(db, [paper(1, version=1, title="v1")])
    assert result.unchanged == ["2501.00001"]
    assert store.get_paper(db, "2501.00001")["title"] == "v3"


def test_a_feed_record_never_erases_hydrated_fields(tmp_path):
    db = tmp_path / "a.duckdb"
    stamp = datetime(2025, 1, 1, tzinfo=timezone.utc)
    store.upsert_papers(db, [paper(1, doi="10.1/x", published=stamp, comment="9 pages")])
    store.upsert_papers(db, [paper(1, version=2, title="v2")], hydrated=False)
    shown = store.get_paper(db, "2501.00001")
    assert shown["doi"] == "10.1/x" and shown["comment"] == "9 pages"
    assert shown["published"].startswith("2025-01-01") and shown["hydrated"] is False


def test_round_trip_through_load_papers(tmp_path):
    db = tmp_path / "a.duckdb"
    original = paper(7, published=datetime(2025, 1, 1, tzinfo=timezone.utc), doi="10.1/y")
    store.upsert_papers(db, [original])
    assert store.load_papers(db, ["2501.00007"]) == [original]


def test_a_failed_transaction_stores_nothing(tmp_path):
    db = tmp_path / "a.duckdb"
    with pytest.raises(RuntimeError):
        with transaction(db) as con:
            con.execute("INSERT INTO runs (command, started_at, status) "
                        "VALUES ('x', now(), 'running')")
            raise RuntimeError("boom")
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(db, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_writer_waits_for_another_process_and_lands(tmp_path):
    db = tmp_path / "a.duckdb"
    store.upsert_papers(db, [paper(1)])
    holder = _hold(db, 1.5)
    started = time.monotonic()
    store.upsert_papers(db, [paper(2)])
    assert time.monotonic() - started >= 1.0  # it waited, then wrote
    holder.wait()
    assert store.count_papers(db) == 2


def test_a_writer_gives_up_with_a_clear_message(tmp_path):
    db = tmp_path / "a.duckdb"
    store.upsert_papers(db, [paper(1)])
    holder = _hold(db, 3)
    with pytest.raises(DatabaseBusy, match="try again"):
        with connect(db, timeout_seconds=0.5):
            pass
    holder.wait()
