"""Run subcommands: ``run`` (the scheduled job) and ``status``."""
from __future__ import annotations

import json
import sys
from dataclasses import replace

from pipeline import job
from pipeline.cli.papers import ensure_demo, report_of
from pipeline.core import weeks
from pipeline.stages import last_digest
from pipeline.stages.library import choose_library, demo_reason, is_demo_database
from pipeline.stages.sources import ArxivUnreachable
from pipeline.core.paper import clean_text
from storage import backfill, papers, runs


def register(subparsers) -> None:
    """Add ``run`` and ``status`` to the `octet` parser."""
    command = subparsers.add_parser("run", help="the scheduled job: fetch, store, classify, "
                                    "summarize, report")
    command.add_argument("--categories", help="comma-separated arXiv categories for this run")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--or-demo", action="store_true",
                         help="if arXiv cannot be reached, say so and load the demo database")
    command.set_defaults(handler=run)

    command = subparsers.add_parser("status", help="how many papers, the last run and the "
                                    "last digest")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=status)


def run(args, settings) -> int:
    if args.or_demo:  # interactive first run: say "offline" in seconds, not minutes
        settings = replace(settings, http_retries=min(settings.http_retries, 1))
    instead = (lambda error: _demo_instead(error, settings)) if args.or_demo else None
    was_demo = choose_library(settings).demo
    code = report_of(lambda: job.run_job(settings), args.json, instead)
    if was_demo and not choose_library(settings).demo:
        _say(f"octet: your own database now has papers: the app and the commands use it from "
             f"now on (the demo stays in {settings.demo_db_path}).", args.json)
    return code


def _say(line: str, as_json: bool) -> None:
    """A line for people, kept off standard output when that carries JSON."""
    print(line, file=sys.stderr if as_json else sys.stdout)


def _demo_instead(error: ArxivUnreachable, settings) -> int:
    print(f"octet: arXiv cannot be reached ({error.brief}); continuing with the DEMO database "
          f"at {settings.demo_db_path}: the app and the commands show it until a run stores "
          "your own papers")
    return ensure_demo(settings)


def status(args, settings) -> int:
    """``octet status``: the database the app shows, its papers, last run and last digest,
    and whether it is the demo (and why)."""
    latest = runs.recent_runs(settings.db_path, limit=1)
    demo = is_demo_database(settings)
    digest = last_digest.last_digest(settings.db_path)
    result = {"db": str(settings.db_path), "papers": papers.count_papers(settings.db_path),
              "demo": demo, "demo_reason": demo_reason(settings) if demo else None,
              "last_run": latest[0] if latest else None,
              "last_digest": last_digest.as_json(digest),
              "backfill": backfill_status(settings)}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{result['papers']} papers in {result['db']}" + (" (DEMO)" if demo else ""))
    print(_last_run_line(result["last_run"]))
    print(last_digest.status_line(digest, weeks.reader_zone(settings.timezone)))
    if result["backfill"]:
        print(_backfill_line(result["backfill"]))
    return 0


def backfill_status(settings) -> dict | None:
    """The newest backfill, with ``status``: running, interrupted (its process is gone:
    a rerun of the same command resumes it), done or failed."""
    held = backfill.latest_job(settings.db_path)
    if held is None:
        return None
    status = held["state"]
    if status in ("storing", "running"):
        status = "running" if runs.run_in_progress(settings.home) else "interrupted"
    return {**held, "status": status}


def _backfill_line(held: dict) -> str:
    source = clean_text(held["source"])
    if held["status"] == "failed":
        return (f"last backfill {held['job_id']}: {held['failed']} shards failed; run "
                f"`octet backfill {source}` again to retry them")
    if held["status"] == "done":
        return (f"last backfill {held['job_id']}: done {_minute(held['finished_at'])}, "
                f"{held['merged']} of {held['shards']} shards merged")
    where = ("storing its papers" if held["state"] == "storing" else
             f"{held['merged']} of {held['shards']} shards merged, {held['papers_left']} "
             "papers to go")
    line = f"backfill {held['job_id']} ({held['engine']}): {held['status']}, {where}"
    if held["status"] == "interrupted":
        line += f"; resume with `octet backfill {source}` and the same options"
    return line


def _last_run_line(last: dict | None) -> str:
    if not last:
        return "no run yet: start one with `octet run`"
    return (f"last run #{last['run_id']} ({last['command']}) {_minute(last['started_at'])}: "
            f"{last['status']}, {last.get('new') or 0} new, {last.get('updated') or 0} updated")


def _minute(iso_text: str | None) -> str:
    """A stored UTC time, to the minute (``unknown`` if absent)."""
    return f"{iso_text[:16].replace('T', ' ')} UTC" if iso_text else "unknown"
