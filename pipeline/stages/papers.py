"""Getting papers into the store: today's listing, a date-range backfill, a JSONL file,
the packaged demo sample. Each writes page by page, so a kill loses at most one page."""
from __future__ import annotations

import hashlib
import logging
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

from pipeline.core.settings import Settings
from pipeline.core.paper import Paper
from pipeline.stages import progress
from pipeline.stages.sources import (ArxivRequestError, ArxivUnreachable, DamagedFile, Listing,
                              Transport, backfill, fetch_feed, hydrate, parse_rss, read_jsonl)
from storage import papers as store
from storage import runs

log = logging.getLogger(__name__)

STORE_CHUNK = 25_000
"""Papers per import transaction. Each transaction's close checkpoints the file, which
cost 33 of 75 s of a 74,602-paper import at 5,000 per chunk; 25,000 peaks under 0.8 GB."""
DEMO_SAMPLE = "demo_papers.jsonl"


def _count(report: dict, result: store.UpsertResult) -> None:
    report["new"] += len(result.new)
    report["updated"] += len(result.updated)
    report["unchanged"] += len(result.unchanged) + len(result.refreshed)
    report.setdefault("updated_ids", []).extend(result.updated)


def ingest_listing(settings: Settings, transport: Transport, report: dict) -> None:
    """Fetch today's RSS listing, store it, then fill every API field by id.

    The listing is stored before hydration, so an API outage keeps the day: the
    papers wait as "not hydrated" and the next run fills them in.
    """
    previous_day = store.last_listed_date(settings.db_path)
    body = fetch_feed(transport, settings)
    report["feed_sha256"] = hashlib.sha256(body).hexdigest()
    earlier = _same_feed_stored(settings, report["feed_sha256"])
    if earlier:
        feed_date = _repeat(earlier, report)
    else:
        feed_date = _store_listing(settings, transport, parse_rss(body), report)
    _fill_gap(settings, transport, previous_day, feed_date, report)


def _same_feed_stored(settings: Settings, feed_sha256: str) -> dict | None:
    """The report of a finished run that stored these exact feed bytes, unless a paper
    still waits for its API fields (hydrating it needs the parsed listing). Parsing a
    2,000-item feed costs seconds; a rerun on the same day needs none of it."""
    earlier = runs.run_with_feed(settings.db_path, feed_sha256)
    return earlier if earlier and not store.unhydrated_ids(settings.db_path, limit=1) else None


def _repeat(earlier: dict, report: dict) -> date | None:
    """Count an unchanged feed as the earlier run saw it; returns its day."""
    report["same_feed_as_run"] = earlier["run_id"]
    for key in ("announced", "feed_date", "note"):
        if earlier.get(key) is not None:
            report[key] = earlier[key]
    report["skipped"] += len(earlier.get("skipped_reasons", {}))
    report["skipped_reasons"].update(earlier.get("skipped_reasons", {}))
    report["unchanged"] += report["announced"] - report["skipped"]
    return date.fromisoformat(earlier["feed_date"]) if earlier.get("feed_date") else None


def _store_listing(settings: Settings, transport: Transport, listing: Listing,
                   report: dict) -> date | None:
    """Store the listing's new and changed papers, then hydrate; returns the feed's day."""
    report["announced"] = listing.announced
    report["feed_date"] = listing.feed_date.isoformat() if listing.feed_date else None
    report["skipped"] += len(listing.skipped)
    report["skipped_reasons"].update(listing.skipped)
    if not listing.announced:
        report["note"] = _empty_feed_note(listing, settings)
    stored = store.existing_versions(settings.db_path, [p.arxiv_id for p in listing.papers])
    fresh = [p for p in listing.papers if stored.get(p.arxiv_id, 0) < p.version]
    _count(report, store.upsert_papers(settings.db_path, fresh, hydrated=False))
    report["unchanged"] += len(listing.papers) - len(fresh)
    pending = store.unhydrated_ids(settings.db_path)
    report["fetched"] = _hydrate(settings, transport, pending, listing.papers, report)
    return listing.feed_date


MAX_GAP_DAYS = 31


def missed_feed_days(previous: date | None, current: date | None) -> list[date]:
    """Weekday feeds strictly between the last one stored and today's: days a run missed."""
    if previous is None or current is None or current <= previous:
        return []
    days = [previous + timedelta(days=n) for n in range(1, (current - previous).days)]
    return [day for day in days if day.weekday() < 5]


def _fill_gap(settings: Settings, transport: Transport, previous: str | None,
              current: date | None, report: dict) -> None:
    """The RSS feed only holds today: papers of missed days come from the API instead."""
    missed = missed_feed_days(date.fromisoformat(previous) if previous else None, current)
    if not missed:
        return
    since = max(missed[0] - timedelta(days=3), current - timedelta(days=MAX_GAP_DAYS))
    until = current - timedelta(days=1)
    gap = {"missed_feeds": [day.isoformat() for day in missed], "since": since.isoformat(),
           "until": until.isoformat(), "new_before": report["new"]}
    try:
        ingest_backfill(settings, transport, since, until, report)
    except (ArxivUnreachable, ArxivRequestError) as error:
        report["errors"].append(f"gap fill {since}..{until}: {error}; run `octet fetch "
                                f"--since {since} --until {until}` later")
    gap["new"] = report["new"] - gap.pop("new_before")
    report["gap"] = gap


def _empty_feed_note(listing, settings: Settings) -> str:
    cats = ", ".join(settings.categories)
    if listing.weekend:
        return (f"no new papers: the feed for {listing.feed_date} is a weekend one "
                "(arXiv announces Sunday to Thursday only)")
    return (f"no new papers in {cats} for {listing.feed_date or 'today'}: an arXiv holiday, "
            "or categories with nothing announced")


def _hydrate(settings: Settings, transport: Transport, arxiv_ids: list[str],
             announced: list[Paper], report: dict) -> int:
    """Fill API fields for ``arxiv_ids``; keeps the RSS announce type and listing day."""
    by_id = {paper.arxiv_id: paper for paper in announced}
    fetched = 0
    try:
        for batch in hydrate(transport, settings, arxiv_ids):
            batch = [_keep_listing_facts(paper, by_id.get(paper.arxiv_id)) for paper in batch]
            result = store.upsert_papers(settings.db_path, batch, hydrated=True)
            report["updated"] += len(result.updated)
            report.setdefault("updated_ids", []).extend(result.updated)
            fetched += len(batch)
    except (ArxivUnreachable, ArxivRequestError) as error:
        report["errors"].append(f"hydration: {error}; the papers are stored from the feed "
                                "and the next run fills in their API fields")
        if isinstance(error, ArxivUnreachable) and not fetched:
            report["unreachable"] = (f"arXiv's API answered no request: no paper could be "
                                     f"hydrated ({error.brief}); the {len(arxiv_ids)} papers are "
                                     "stored from the feed and the next run fills them in")
    return fetched


def _keep_listing_facts(paper: Paper, listed: Paper | None) -> Paper:
    if listed is None:
        return paper.with_changes(announce_type="replace" if paper.version > 1 else "new")
    categories = tuple(dict.fromkeys(paper.categories + listed.categories))
    return paper.with_changes(announce_type=listed.announce_type,
                              listed_date=listed.listed_date, categories=categories)


def ingest_backfill(settings: Settings, transport: Transport, since: date, until: date,
                    report: dict) -> None:
    """Store every paper submitted in [since, until] (API range query, paged)."""
    for page in backfill(transport, settings, since, until):
        report["fetched"] += len(page)
        _count(report, store.upsert_papers(settings.db_path, page, hydrated=True))


def ingest_ids(settings: Settings, transport: Transport, arxiv_ids: list[str],
               report: dict) -> None:
    """Store the named papers (``octet fetch --ids``) with every API field. An id arXiv
    does not know is reported (``report["not_found"]``) and the others are stored."""
    found: set[str] = set()
    for batch in hydrate(transport, settings, arxiv_ids):
        report["fetched"] += len(batch)
        found.update(paper.arxiv_id for paper in batch)
        _count(report, store.upsert_papers(settings.db_path, batch, hydrated=True))
    missing = [arxiv_id for arxiv_id in arxiv_ids if arxiv_id not in found]
    if missing:
        report["not_found"] = missing
        report["errors"].append(f"arXiv has no paper {', '.join(missing)}; check the id")


def ingest_lines(db_path: Path, lines: Iterable[str], report: dict,
                 announce_type: str = "import",
                 keep: Callable[[Paper], bool] | None = None) -> None:
    """Store papers from JSONL lines in chunks; bad lines are reported and skipped. A file
    damaged part way is an error of the run (``report["damaged"]``): what came before the
    damage is stored. A bar counts the papers read (a stream has no known total)."""
    chunk: list[Paper] = []
    with progress.bar("import") as shown:
        try:
            for number, paper, error in read_jsonl(lines, announce_type):
                if error:
                    _skip_line(report, number, error)
                    continue
                shown.update()  # every paper read: a filtered-out stretch is no stall
                if keep is not None and not keep(paper):
                    report["filtered"] = report.get("filtered", 0) + 1
                    continue
                report["fetched"] += 1
                chunk.append(paper)
                if len(chunk) >= STORE_CHUNK:
                    _store_chunk(db_path, chunk, report, shown)
                    chunk = []
        except DamagedFile as error:
            report["damaged"] = str(error)
            report["errors"].append(str(error))
        _store_chunk(db_path, chunk, report, shown)


def _skip_line(report: dict, number: int, error: str) -> None:
    report["skipped"] += 1
    key = f"line {number}"
    report["skipped_reasons"][key] = error.removeprefix(f"{key}: ")


def _store_chunk(db_path: Path, chunk: list[Paper], report: dict, shown: progress.Bar) -> None:
    # Storing 25,000 papers takes seconds: the bar says why its count stands still.
    if chunk:
        shown.note(f"storing {len(chunk)}")
    _count(report, store.upsert_papers(db_path, chunk))
    shown.note("")


def demo_lines() -> list[str]:
    """The packaged sample of real recent papers (arXiv metadata, CC0)."""
    path = resources.files("pipeline") / "data" / DEMO_SAMPLE
    return path.read_text(encoding="utf-8").splitlines()
