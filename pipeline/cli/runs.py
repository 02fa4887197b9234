"""Run subcommands: ``run`` (the scheduled job) and ``status``."""
from __future__ import annotations

import json
from dataclasses import replace

from pipeline import job
from pipeline.cli.papers import ensure_demo, report_of
from pipeline.stages.sources import ArxivUnreachable
from storage import papers, runs


def register(subparsers) -> None:
    """Add ``run`` and ``status`` to the `octet` parser."""
    command = subparsers.add_parser("run", help="the scheduled job: fetch, store, classify, "
                                    "summarize, report")
    command.add_argument("--categories", help="comma-separated arXiv categories for this run")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--or-demo", action="store_true",
                         help="if arXiv cannot be reached, say so and load the demo database")
    command.set_defaults(handler=run)

    command = subparsers.add_parser("status", help="how many papers, and the last run")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=status)


def run(args, settings) -> int:
    if args.or_demo:  # interactive first run: say "offline" in seconds, not minutes
        settings = replace(settings, http_retries=min(settings.http_retries, 1))
    instead = (lambda error: _demo_instead(error, settings)) if args.or_demo else None
    return report_of(lambda: job.run_job(settings), args.json, instead)


def _demo_instead(error: ArxivUnreachable, settings) -> int:
    print(f"octet: arXiv cannot be reached ({error.brief}); "
          f"continuing with the DEMO database at {settings.demo_db_path}")
    return ensure_demo(settings)


def status(args, settings) -> int:
    latest = runs.recent_runs(settings.db_path, limit=1)
    result = {"db": str(settings.db_path), "papers": papers.count_papers(settings.db_path),
              "last_run": latest[0] if latest else None}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{result['papers']} papers in {result['db']}")
    last = result["last_run"]
    print("no run yet: start one with `octet run`" if not last else
          f"last run #{last['run_id']} ({last['command']}) {last['started_at']}: "
          f"{last['status']}, {last.get('new', 0)} new, {last.get('updated', 0)} updated")
    return 0
