"""`octet backfill --engine ray` on a local Ray (2 CPUs, as this machine has): the rows equal
the local engine's and the daily stages', and a worker killed mid-shard costs nothing.

The command runs in its own process, as a user runs it: it starts Ray, runs the Ray Data
pipeline (actor pools for classification and summaries, Parquet parts), merges, and stops
Ray again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import assert_same_results, real_listings, result_rows, write_input

pytestmark = pytest.mark.slow


def _start(home: Path, *arguments: str, **variables: str) -> subprocess.Popen:
    environment = {**os.environ, "OCTET_HOME": str(home), "HF_HUB_OFFLINE": "1", **variables}
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "backfill", *arguments,
                             "--engine", "ray", "--json"], env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:] + out[-2000:]
    assert out.startswith("{"), (out[:3000], err[-3000:])
    return json.loads(out)


def _classify_workers() -> set[int]:
    """The pids of Ray's classification actors on this machine."""
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in listing.splitlines()[1:]
            if "ClassifyWorker" in line and "ps -eo" not in line}


def _parts(home: Path) -> list[Path]:
    return list((home / "backfill").glob("*/results/shard-*/part-*.parquet"))


def test_the_ray_engine_fills_a_fresh_database_like_the_local_one_despite_a_killed_worker(
        daily_rows, octet_home, tmp_path):
    """`octet backfill FILE --engine ray` on 1,200 real papers, with every classification
    actor killed mid-shard: Ray restarts them, and the rows equal the local engine's (the
    daily stages', ``daily_rows``) with nothing lost or doubled."""
    # 1,200 papers: seconds of classification are still to come when the first part lands.
    source = write_input(tmp_path / "in", real_listings(limit=1200))
    process = _start(octet_home, str(source), "--shard-size", "100")
    deadline = time.monotonic() + 300
    while not _parts(octet_home):  # one batch is written; the others are under way
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    killed = _classify_workers()
    assert killed, "no classification actor was found to kill"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    restarted: set[int] = set()
    while process.poll() is None:
        restarted |= _classify_workers() - killed
        time.sleep(0.05)
    report = _finish(process)
    part = report["backfill"]
    assert (part["engine"], part["merged_shards"], part["failed_shards"]) == ("ray", 12, 0)
    assert (report["new"], part["scores"], part["summaries"]) == (1200, 1200, 1200)
    assert restarted, "Ray did not restart the killed actors"
    rows = result_rows(octet_home / "octet.duckdb")
    assert len(rows) == 1200 and all(
        len(row.get("vectors", [])) == 1 and "scores" in row and len(row["summaries"]) == 1
        for row in rows.values())
    assert_same_results({key: rows[key] for key in daily_rows}, daily_rows)


def test_a_generative_backend_gets_its_own_pool_and_stamps_what_the_daily_job_stamps(
        octet_home, tmp_path):
    """The openai backend against a local OpenAI-compatible stand-in (a vLLM server's API):
    the summary actors call it, and `octet summarize` finds nothing left to do."""
    from tests.helpers import octet, serving
    from tests.test_summaries_gpu_path import StandIn

    source = write_input(tmp_path / "in", real_listings(limit=60))
    with serving(StandIn()) as server:
        backend = {"OCTET_SUMMARIZER": "openai", "OCTET_MODEL": "stand-in",
                   "OCTET_OPENAI_BASE_URL": server.base_url}
        report = _finish(_start(octet_home, str(source), "--stages", "summarize", **backend))
        assert (report["backfill"]["summaries"], report["backfill"]["summary_errors"]) == (60, 0)
        assert len(server.requests) == 60
        daily = octet(octet_home, "summarize", "--backend", "openai", "--model", "stand-in",
                      "--json", variables=backend)
    assert json.loads(daily.stdout)["pending"] == 0
    rows = result_rows(octet_home / "octet.duckdb")
    assert all([(s["backend"], s["model"]) for s in row["summaries"]] == [("openai", "stand-in")]
               for row in rows.values())
