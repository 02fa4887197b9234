"""`octet backfill FILE`: years of arXiv, classified and summarized, here or on Ray."""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline import job
from pipeline.core.errors import UsageError
from pipeline.cli.papers import parse_day
from pipeline.job import print_report
from pipeline.stages.backfill.plan import ENGINES, STAGES, SHARD_SIZE, BackfillOptions
from storage.runs import RunLocked, RunStuck


def register(subparsers) -> None:
    """Add ``octet backfill`` to the `octet` parser."""
    command = subparsers.add_parser(
        "backfill", help="store a snapshot or JSONL file and classify and summarize its "
                         "papers in parallel (here, or on a Ray cluster)",
        description="Store the papers of FILE as `octet import` does, then run the stages "
                    "over every stored paper that lacks their results, shard by shard, and "
                    "merge each shard into the database in one transaction. Rerun the same "
                    "command to resume an interrupted backfill.")
    command.add_argument("source", metavar="FILE", help="arXiv metadata snapshot or Octet "
                         "JSONL (.jsonl/.json, .gz/.xz ok), a folder of such shards, or a "
                         "quoted glob")
    command.add_argument("--engine", choices=ENGINES, default="local",
                         help="local: this process (default); ray: Ray Data "
                              "(pip install 'octet[cluster]')")
    command.add_argument("--address", help="the Ray cluster to join (ray://HOST:10001 or "
                         "auto); without it Ray starts on this machine")
    command.add_argument("--categories", help="comma-separated arXiv categories to keep")
    command.add_argument("--since", help="keep papers first submitted on or after, YYYY-MM-DD")
    command.add_argument("--until", help="keep papers first submitted on or before, YYYY-MM-DD")
    command.add_argument("--stages", default=",".join(STAGES),
                         help="comma-separated: classify, summarize (default: both)")
    command.add_argument("--workers", type=int, help="classification actors on Ray "
                         "(default: one per CPU of the cluster)")
    command.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=float, default=0.0,
                         help="GPUs each Ray worker asks for (e.g. 1, or 0.5 to share one)")
    command.add_argument("--shard-size", dest="shard_size", type=int, default=SHARD_SIZE,
                         help=f"papers per shard, one merge each (default {SHARD_SIZE})")
    command.add_argument("--staging", help="folder for the Parquet shards, one every Ray node "
                         "can reach (default: <home>/backfill)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(handler=backfill)


def backfill(args, settings) -> int:
    options = options_from(args, settings)
    try:
        report = job.backfill(settings, options)
    except (RunLocked, RunStuck) as error:
        print(f"octet: {error}; nothing was done: run the backfill again when it is done",
              file=sys.stderr)
        return 1
    print_report(report, args.json)
    if not args.json:
        print(summary_line(report["backfill"]))
    return report["exit_code"]


def options_from(args, settings) -> BackfillOptions:
    """The flags as ``BackfillOptions``, each checked with a one-line fix."""
    stages = tuple(name.strip() for name in args.stages.split(",") if name.strip())
    unknown = [name for name in stages if name not in STAGES]
    if unknown or not stages:
        raise UsageError(f"--stages {args.stages!r}: use classify, summarize or both "
                         "(comma-separated)")
    since, until = parse_day(args.since, "--since"), parse_day(args.until, "--until")
    if since and until and since > until:
        raise UsageError(f"--since {since} is after --until {until}; swap them")
    _check_numbers(args)
    if args.engine != "ray" and (args.address or args.gpus_per_worker or args.workers):
        raise UsageError("--address, --workers and --gpus-per-worker are for --engine ray; "
                         "add --engine ray (the local engine uses the device setting)")
    categories = tuple(settings.categories) if args.categories else ()
    return BackfillOptions(args.source, args.engine, args.address, categories, since, until,
                           tuple(name for name in STAGES if name in stages), args.workers,
                           args.gpus_per_worker, args.shard_size,
                           Path(args.staging).expanduser() if args.staging else None)


def _check_numbers(args) -> None:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1 (leave it out for one per CPU)")
    if args.gpus_per_worker < 0:
        raise UsageError("--gpus-per-worker cannot be negative (0 runs on CPUs)")
    if args.shard_size < 1:
        raise UsageError("--shard-size must be at least 1 (default 1000)")


def summary_line(summary: dict) -> str:
    """The backfill part of the report in one line."""
    line = (f"  backfill {summary['job_id']} ({summary['engine']}"
            f"{', resumed' if summary.get('resumed') else ''}): merged "
            f"{summary.get('merged_shards', 0)} shards, {summary.get('merged_papers', 0)} papers "
            f"({summary.get('papers_per_second', 0)} papers/s): {summary.get('scores', 0)} "
            f"scored, {summary.get('summaries', 0)} summarized")
    if summary.get("failed_shards"):
        line += f"; {summary['failed_shards']} shards failed (rerun to retry)"
    if summary.get("summary_errors"):
        line += f"; {summary['summary_errors']} summaries failed (the next run retries them)"
    return line
