"""`octet backfill` on the local engine: it stores a file's papers as `octet import` does,
its rows equal the daily stages', and a killed, interrupted or failing backfill resumes
with nothing lost or doubled. (The Ray engine: ``test_backfill_ray.py``.)

Every test runs the real encoder on real papers of the listings slice; the expensive
reference (the daily stages over the same papers) is computed once for the module.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from tests.helpers import (BACKFILL_PAPERS as PAPERS, assert_same_results, octet, real_listings,
                           result_rows, write_input)


def backfill_status(capsys) -> dict:
    """`octet status --json`'s backfill part (in this process: the test's OCTET_HOME)."""
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["backfill"]


def status_text(capsys) -> str:
    capsys.readouterr()
    assert main(["status"]) == 0
    return capsys.readouterr().out


def no_cluster(tmp_path: Path) -> dict:
    """Ray's temp folder, private to the test: `--address auto` finds no cluster there, even
    while another test (or a user) runs Ray on this machine."""
    return {"RAY_TMPDIR": str(tmp_path / "no-ray")}


def backfill_report(home: Path, *arguments: str, check: bool = True) -> tuple[int, dict]:
    finished = octet(home, "backfill", *arguments, "--json", check=check)
    return finished.returncode, json.loads(finished.stdout)


def test_local_backfill_matches_the_daily_stages_and_leaves_them_nothing(
        papers_file, daily_rows, octet_home):
    code, report = backfill_report(octet_home, str(papers_file), "--shard-size", "70")
    assert code == 0, report["errors"]
    part = report["backfill"]
    assert (report["new"], part["planned_shards"], part["merged_shards"]) == (PAPERS, 5, 5)
    assert (part["scores"], part["summaries"], part["failed_shards"]) == (PAPERS, PAPERS, 0)
    assert_same_results(result_rows(octet_home / "octet.duckdb"), daily_rows)
    assert not (octet_home / "backfill").exists() or not any((octet_home / "backfill").iterdir())
    # The daily job's stages find nothing left: the provenance is theirs.
    ran = octet(octet_home, "import", str(papers_file), "--json")
    stages = json.loads(ran.stdout)["stages"]
    assert (stages["classify"]["classified"], stages["summarize"]["pending"]) == (0, 0)
    # A second backfill of the same file plans nothing and changes nothing.
    code, again = backfill_report(octet_home, str(papers_file))
    assert (code, again["backfill"]["planned_shards"], again["unchanged"]) == (0, 0, PAPERS)


def test_filters_keep_only_the_asked_for_papers(tmp_path, octet_home):
    rows = real_listings(limit=120)
    source = write_input(tmp_path / "in", rows)
    days = sorted({row["listed_date"] for row in rows})
    wanted = [row for row in rows if "cs.CL" in row["categories"]]
    code, report = backfill_report(octet_home, str(source), "--categories", "cs.CL",
                                   "--stages", "summarize")
    assert code == 0 and report["new"] == len(wanted) and report["categories"] == ["cs.CL"]
    stored = result_rows(octet_home / "octet.duckdb")
    assert set(stored) == {row["id"] for row in wanted}
    assert all("scores" not in row and len(row["summaries"]) == 1 for row in stored.values())
    assert days, "the slice has listing days"


def test_a_folder_of_shards_and_a_glob_are_one_input(tmp_path, octet_home):
    rows = real_listings(limit=40)
    folder = tmp_path / "shards"
    write_input(folder, rows[:25], "a.jsonl")
    write_input(folder, rows[25:], "b.jsonl")
    (folder / "notes.txt").write_text("not a shard")
    code, report = backfill_report(octet_home, str(folder), "--stages", "summarize")
    assert (code, report["new"]) == (0, 40)
    code, report = backfill_report(octet_home, str(folder / "*.jsonl"), "--stages", "summarize")
    assert (code, report["new"], report["unchanged"]) == (0, 0, 40)


@pytest.mark.parametrize(("arguments", "words"), [
    (["missing.jsonl"], "does not exist"),
    (["{empty}"], "holds no .jsonl"),
    (["{empty}/*.jsonl"], "no file matches"),
    (["{file}", "--stages", "classify,translate"], "--stages"),
    (["{file}", "--since", "2026-02-01", "--until", "2026-01-01"], "swap them"),
    (["{file}", "--address", "auto"], "--engine ray"),
    (["{file}", "--engine", "ray", "--workers", "0"], "--workers must be at least 1"),
    (["{file}", "--shard-size", "0"], "--shard-size"),
])
def test_bad_input_is_one_line_that_names_the_fix(arguments, words, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    source = write_input(tmp_path, real_listings(limit=2))
    filled = [item.format(empty=empty, file=source) for item in arguments]
    assert main(["backfill", *filled]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and words in error, error


def test_a_failing_shard_is_retried_reported_and_never_half_merged(tmp_path, daily_rows,
                                                                   octet_home, capsys):
    from pipeline.stages.families import Head, current_head, user_head_path

    shipped = current_head()
    source = write_input(tmp_path / "in", real_listings(limit=60))  # the first 60 of the 300
    # A head for other features: every classification batch raises, every time.
    Head("families-broken", np.zeros((8, 10)), np.zeros(8), np.full(8, 0.5), np.ones(10),
         dict(shipped.info)).save(user_head_path(octet_home))
    code, report = backfill_report(octet_home, str(source), "--shard-size", "30", check=False)
    part = report["backfill"]
    assert code == 1 and (part["failed_shards"], part["merged_shards"]) == (2, 0)
    assert "expects 10 features" in json.dumps(part["shard_errors"])
    assert "run the same command again" in " ".join(report["errors"])
    stored = result_rows(octet_home / "octet.duckdb")
    assert all("scores" not in row and "summaries" not in row for row in stored.values())
    status = backfill_status(capsys)
    assert (status["status"], status["failed"]) == ("failed", 2)
    user_head_path(octet_home).unlink()
    code, report = backfill_report(octet_home, str(source), "--shard-size", "30")
    assert (code, report["backfill"]["merged_shards"]) == (0, 2)
    found = result_rows(octet_home / "octet.duckdb")
    assert_same_results(found, {arxiv_id: daily_rows[arxiv_id] for arxiv_id in found})


def _wait_for(log: Path, text: str, process: subprocess.Popen, seconds: float = 300) -> None:
    """Poll the run log every few milliseconds until ``text`` shows (the kill must land
    while the line's step is under way, not a scheduler tick later)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace"):
            return
        assert process.poll() is None, "the backfill ended before the awaited step"
        time.sleep(0.002)
    raise AssertionError(f"no {text!r} in the log after {seconds} s")


def _start(home: Path, *arguments: str) -> subprocess.Popen:
    environment = {**os.environ, "OCTET_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "backfill", *arguments],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_ctrl_c_then_a_kill_mid_merge_both_resume_with_nothing_lost_or_doubled(
        papers_file, daily_rows, octet_home, capsys):
    arguments = (str(papers_file), "--shard-size", "60")
    log = octet_home / "logs" / "octet.log"
    # Ctrl+C after the first shard is merged: a clean stop, one line, exit 1.
    process = _start(octet_home, *arguments)
    _wait_for(log, "merged shard 0 ", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1 and "interrupted" in err, err
    status = backfill_status(capsys)
    assert status["status"] == "interrupted" and 0 < status["merged"] < status["shards"]
    assert "resume with `octet backfill" in status_text(capsys)
    # The rerun resumes; SIGKILL lands as it starts merging its second shard.
    merged_before = status["merged"]
    process = _start(octet_home, *arguments)
    _wait_for(log, f"merging shard {merged_before + 1} ", process)
    process.kill()
    process.communicate(timeout=60)
    status = backfill_status(capsys)
    assert status["status"] == "interrupted"
    assert status["merged"] in (merged_before + 1, merged_before + 2), status
    # The shard under merge landed whole or not at all: its rows match the merged marks.
    stored = result_rows(octet_home / "octet.duckdb")
    assert sum("scores" in row for row in stored.values()) == 60 * status["merged"]
    assert sum("summaries" in row for row in stored.values()) == 60 * status["merged"]
    # The next rerun finishes: every paper once, equal to the daily stages.
    code, report = backfill_report(octet_home, *arguments)
    assert code == 0 and report["backfill"]["resumed"] is True
    assert report["backfill"]["merged_shards"] == status["shards"] - status["merged"]
    assert_same_results(result_rows(octet_home / "octet.duckdb"), daily_rows)
    done = backfill_status(capsys)
    assert (done["status"], done["merged"], done["papers_left"]) == ("done", 5, 0)


def test_a_wrong_file_is_an_error_and_filters_that_keep_nothing_say_so(tmp_path, octet_home):
    wrong = tmp_path / "notes.jsonl"
    wrong.write_text('{"hello": "world"}\n[1, 2]\n', encoding="utf-8")
    code, report = backfill_report(octet_home, str(wrong), check=False)
    assert code == 1 and "no line is a paper" in " ".join(report["errors"])
    source = write_input(tmp_path / "in", real_listings(limit=20))
    code, report = backfill_report(octet_home, str(source), "--categories", "hep-th")
    assert (code, report["fetched"], report["filtered"]) == (0, 0, 20)
    assert "no paper matched the filters" in report["note"]


def test_an_unreachable_cluster_is_one_line_and_the_rerun_resumes_without_storing_again(
        tmp_path, octet_home, capsys):
    source = write_input(tmp_path / "in", real_listings(limit=40))
    failed = octet(octet_home, "backfill", str(source), "--stages", "summarize", "--engine",
                   "ray", "--address", "auto", check=False, variables=no_cluster(tmp_path))
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
    assert "cannot join the Ray cluster at auto" in failed.stderr
    status = status_text(capsys)
    assert "interrupted, 0 of 1 shards merged, 40 papers to go" in status
    assert f"resume with `octet backfill {source}`" in status
    # The same input and options on the local engine resume the job: nothing is stored again.
    code, report = backfill_report(octet_home, str(source), "--stages", "summarize")
    assert code == 0 and report["backfill"]["resumed"] is True and report["new"] == 0
    assert report["backfill"]["summaries"] == 40


def test_a_lost_staging_folder_is_planned_again_and_a_new_job_closes_the_old(tmp_path,
                                                                            octet_home, capsys):
    import shutil

    first = write_input(tmp_path / "a", real_listings(limit=30))
    second = write_input(tmp_path / "b", real_listings(limit=60)[30:])
    arguments = ("--stages", "summarize", "--engine", "ray", "--address", "auto")
    octet(octet_home, "backfill", str(first), *arguments, check=False,
          variables=no_cluster(tmp_path))
    shutil.rmtree(octet_home / "backfill")
    code, report = backfill_report(octet_home, str(first), "--stages", "summarize")
    assert code == 0 and report["backfill"]["resumed"] is False
    assert report["backfill"]["summaries"] == 30
    # An unfinished job of another input is closed, and its shards deleted, by a new one.
    octet(octet_home, "backfill", str(second), *arguments, check=False,
          variables=no_cluster(tmp_path))
    left = list((octet_home / "backfill").iterdir())
    assert len(left) == 1
    code, report = backfill_report(octet_home, str(first), "--stages", "summarize")
    assert code == 0 and report["backfill"]["planned_papers"] == 30  # the second file's
    assert not (octet_home / "backfill").exists() or not any((octet_home / "backfill").iterdir())
    status = backfill_status(capsys)
    assert status["status"] == "done" and status["papers_left"] == 0
