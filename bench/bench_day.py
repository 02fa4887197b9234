"""The daily job end to end on a replayed real day of 2,000 papers, and a no-op rerun.

A local server replays the day in arXiv's RSS and API formats (delay 0). Each repeat runs
``octet run`` with the embedded defaults (packaged encoder, extractive summaries) in a fresh
process and a fresh data directory, then reruns it (nothing new). Stage times come from the
run's own report; wall times include the interpreter and imports, as a cron user sees them.
"""
from __future__ import annotations

import json
import statistics
import tempfile
from datetime import date

import feedparser
from arxiv import _feed as arxiv_feed

from tests.arxiv_server import ReplayPaper, ReplayServer, atom_feed, rss_feed
from bench.common import median_seconds, octet, table
from bench.common import real_listings
from pipeline.core.settings import DEFAULT_CATEGORIES

REPEATS = 3
SIZE = 2000
# The four biggest real listing days of the shared data, announced as one day.
DAYS = ("2026-06-02", "2025-05-27", "2026-04-14", "2026-04-21")
TARGET_SECONDS, TARGET_RSS_MB, TARGET_NOOP_SECONDS = 60.0, 1536, 2.0


def day_rows() -> list[dict]:
    """2,000 real papers in the default categories."""
    wanted = set(DEFAULT_CATEGORIES)
    rows = [row for day in DAYS for row in real_listings(day=day)
            if wanted & set(row["categories"])]
    return rows[:SIZE]


def _raw_parse(rows: list[dict]) -> None:
    """Baseline for the fetch stage: only parsing the same bytes (no HTTP, no store)."""
    papers = [ReplayPaper(row) for row in rows]
    feedparser.parse(rss_feed(papers, date(2026, 6, 2), "+".join(DEFAULT_CATEGORIES)))
    for start in range(0, len(papers), 100):
        arxiv_feed.parse(atom_feed(papers[start:start + 100], "q", start, len(papers), 100))


def _papers(rows: list[dict]):
    from pipeline.stages.sources import paper_from_record

    return [paper_from_record(row) for row in rows]


def _encoder_rate(papers, sample: int = 256) -> float:
    """Baseline for the classify stage: papers/s of the bare encoder on the same texts."""
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    texts = [paper_text(paper.title, paper.abstract) for paper in papers[:sample]]
    embed_texts(texts[:8])  # load the model outside the timing
    return sample / median_seconds(lambda: embed_texts(texts), REPEATS)


def _extractive_seconds(papers) -> float:
    """Baseline for the summarize stage: the extractive algorithm alone, no database."""
    from pipeline.stages.summaries.extractive import ExtractiveSummarizer

    return median_seconds(lambda: ExtractiveSummarizer().fields_for(papers), REPEATS)


def _measure(rows: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    runs, noops, statuses = [], [], []
    with ReplayServer() as server:
        server.replay.set_day(rows, date(2026, 6, 2))
        for _ in range(REPEATS):
            env = {**server.env(), "OCTET_HOME": tempfile.mkdtemp(prefix="octet-bench-day-")}
            runs.append(octet(["run", "--json"], env))
            noops.append(octet(["run", "--json"], env))
            statuses.append(octet(["status"], env))
    for result in runs + noops:
        result["report"] = json.loads(result["stdout"])
    return runs, noops, statuses


def _stage(runs: list[dict], name: str) -> float:
    return statistics.median(run["report"]["stages"][name]["seconds"] for run in runs)


def _met(value: float, target: float) -> str:
    return "yes" if value <= target else "**no**"


def main() -> str:
    rows = day_rows()
    runs, noops, statuses = _measure(rows)
    papers = _papers(rows)
    parse = median_seconds(lambda: _raw_parse(rows), REPEATS)
    encoder = _encoder_rate(papers)
    extractive = _extractive_seconds(papers)
    count = len(rows)
    fetch, classify = _stage(runs, "fetch"), _stage(runs, "classify")
    summarize, reading = _stage(runs, "summarize"), _stage(runs, "reading")
    wall = statistics.median(run["wall_seconds"] for run in runs)
    rss = statistics.median(run["peak_rss_mb"] for run in runs)
    stages = [
        ["fetch + store (RSS, API hydration, DuckDB)", count, f"{fetch:.1f}",
         f"raw feedparser + Atom parse of the same bytes: {parse:.1f} s", f"{fetch / parse:.1f}x"],
        ["classify (encode, heads, store)", count, f"{classify:.1f} ({count / classify:.0f}/s)",
         f"bare encoder, 64 word pieces: {encoder:.0f} papers/s",
         f"{(count / classify) / encoder:.2f}x the speed"],
        ["summarize (extractive, store)", count, f"{summarize:.1f} ({count / summarize:.0f}/s)",
         f"the extractive algorithm alone: {extractive:.1f} s", f"{summarize / extractive:.1f}x"],
        ["reading (search index, weekly pick)", count, f"{reading:.1f}", "", ""],
        ["**whole `octet run`, process wall**", count, f"**{wall:.1f}**",
         f"target {TARGET_SECONDS:.0f} s", _met(wall, TARGET_SECONDS)],
        ["peak RSS of that process", count, f"{rss:.0f} MB", f"target {TARGET_RSS_MB} MB",
         _met(rss, TARGET_RSS_MB)],
    ]
    noop_wall = statistics.median(run["wall_seconds"] for run in noops)
    status_wall = statistics.median(run["wall_seconds"] for run in statuses)
    torch_loaded = any(run["torch_loaded"] for run in noops)
    noop_rows = [
        ["`octet run` again (no-op)", f"{count} announced, "
         f"{statistics.median(run['report']['new'] for run in noops)} new",
         f"{noop_wall:.2f}", f"`octet status` in the same home: {status_wall:.2f} s",
         f"{noop_wall / status_wall:.1f}x", "yes" if torch_loaded else "no",
         _met(noop_wall, TARGET_NOOP_SECONDS)],
    ]
    return (
        "## The daily job end to end (issue 7)\n\n"
        f"`python -m bench day`: {count:,} real papers of the default categories (the listings "
        f"of {', '.join(DAYS)}) replayed as one day by a local server in arXiv's RSS and API "
        "formats, `OCTET_ARXIV_DELAY=0`; `octet run --json` with the embedded defaults on CPU "
        f"in a fresh process and data directory; median of {REPEATS}. Stage seconds are the "
        "run report's; the whole-run time is the process wall time, interpreter and imports "
        "included. Baselines are measured in the same benchmark process.\n\n"
        + table(["stage", "papers", "median s", "baseline (same run)", "ratio"], stages)
        + "\nThe rerun finds the feed byte-identical to the one the first run stored, so it "
          "neither parses it nor loads a model:\n\n"
        + table(["command", "input", "wall s", "baseline (same run)", "ratio",
                 "torch imported", f"≤ {TARGET_NOOP_SECONDS:.0f} s"], noop_rows))
