"""Fetch + parse + store a replayed day of 1,000 real papers (delay 0), and a no-op rerun."""
from __future__ import annotations

import statistics
import tempfile
from datetime import date

import feedparser
from arxiv import _feed as arxiv_feed

from arxiv_server import ReplayServer, atom_feed, rss_feed
from bench.common import median_seconds, octet, table
from conftest import real_listings

REPEATS = 3


def _day() -> list[dict]:
    return real_listings(day="2026-06-02") + real_listings(day="2025-05-27")[:288]


def _raw_parse(rows: list[dict]) -> None:
    """The baseline: only parsing the same bytes (no HTTP, no checks, no store)."""
    from arxiv_server import ReplayPaper
    papers = [ReplayPaper(row) for row in rows]
    feedparser.parse(rss_feed(papers, date(2026, 6, 2), "cs.CL"))
    for start in range(0, len(papers), 100):
        arxiv_feed.parse(atom_feed(papers[start:start + 100], "q", start, len(papers), 100))


def main() -> str:
    rows = _day()
    runs, noops, startups = [], [], []
    with ReplayServer() as server:
        server.replay.set_day(rows, date(2026, 6, 2))
        env = {**server.env(), "OCTET_STAGES": "none", "OCTET_HTTP_RETRIES": "0"}
        for _ in range(REPEATS):
            home = tempfile.mkdtemp(prefix="octet-bench-")
            runs.append(octet(["run"], {**env, "OCTET_HOME": home}))
            noops.append(octet(["run"], {**env, "OCTET_HOME": home}))
            startups.append(octet(["status"], {**env, "OCTET_HOME": home}))
    parse = median_seconds(lambda: _raw_parse(rows), REPEATS)
    run_s = statistics.median(r["seconds"] for r in runs)
    noop_s = statistics.median(r["seconds"] for r in noops)
    status_s = statistics.median(r["seconds"] for r in startups)
    rss = statistics.median(r["peak_rss_mb"] for r in runs)
    rows_out = [
        ["`OCTET_STAGES=none octet run` (fresh db)", f"{len(rows)} papers", f"{run_s:.2f} s",
         f"raw feedparser+Atom parse of the same bytes: {parse:.2f} s",
         f"{run_s / parse:.1f}x", f"{rss:.0f} MB"],
        ["`OCTET_STAGES=none octet run` again (no-op)", f"{len(rows)} announced, 0 new",
         f"{noop_s:.2f} s", f"`octet status` in the same home: {status_s:.2f} s",
         f"{noop_s / status_s:.1f}x", f"{statistics.median(r['peak_rss_mb'] for r in noops):.0f} MB"],
    ]
    return ("## Fetch and store (issue 2)\n\n"
            "`python -m bench fetch`: a local server replays a day of real papers in arXiv's RSS "
            "and API formats with `OCTET_ARXIV_DELAY=0`; times are inside the `octet` process "
            f"(imports excluded), median of {REPEATS}; peak RSS of that process.\n\n"
            + table(["command", "input", "median", "baseline (same run)", "ratio", "peak RSS"],
                    rows_out))
