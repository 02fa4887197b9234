"""Core subcommands: run, fetch, import, demo, status, show."""
from __future__ import annotations

import json
import lzma
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from pipeline import run as job
from pipeline.cli import UsageError
from pipeline.paper import InvalidArxivId, normalize_id
from pipeline.sources import ArxivUnreachable
from storage import papers as store


def register(subparsers) -> None:
    command = subparsers.add_parser("run", help="the scheduled job: fetch, store, classify, "
                                    "summarize, report")
    command.add_argument("--categories", help="comma-separated arXiv categories for this run")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--or-demo", action="store_true",
                         help="if arXiv cannot be reached, say so and load the demo database")
    command.set_defaults(handler=run)

    command = subparsers.add_parser("fetch", help="backfill a date range through the arXiv API")
    command.add_argument("--since", required=True, help="first submission day, YYYY-MM-DD")
    command.add_argument("--until", help="last submission day, YYYY-MM-DD (default: today)")
    command.add_argument("--categories", help="comma-separated arXiv categories")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(handler=fetch)

    command = subparsers.add_parser("import", help="store papers from a JSONL file (Octet's "
                                    "format or arXiv's metadata snapshot; .xz/.gz ok), or "
                                    "`import obsidian --vault DIR`")
    command.add_argument("source", help="a .jsonl file (- for stdin), or the word obsidian")
    command.add_argument("--vault", help="the Obsidian vault (with `import obsidian`)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(handler=import_file)

    command = subparsers.add_parser("demo", help="load the packaged sample of real papers into "
                                    "the demo database (never your own)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.set_defaults(handler=demo)

    command = subparsers.add_parser("status", help="how many papers, and the last run")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=status)

    command = subparsers.add_parser("show", help="one stored paper")
    command.add_argument("arxiv_id")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=show)


def _print_report(report: dict, as_json: bool) -> None:
    report = {k: v for k, v in report.items() if k != "updated_ids"}
    print(json.dumps(report, indent=2, default=str) if as_json else job.format_report(report))


def run(args, settings) -> int:
    if args.or_demo:  # interactive first run: say "offline" in seconds, not minutes
        settings = replace(settings, http_retries=min(settings.http_retries, 1))
    try:
        report = job.run_job(settings)
    except job.RunLocked as error:
        print(f"octet: {error}")
        return 0
    except ArxivUnreachable as error:
        if not args.or_demo:
            raise
        print(f"octet: arXiv cannot be reached ({error.brief}); "
              f"continuing with the DEMO database at {settings.demo_db_path}")
        return _ensure_demo(settings)
    _print_report(report, args.json)
    return report["exit_code"]


def _ensure_demo(settings) -> int:
    if settings.demo_db_path.exists() and store.count_papers(settings.demo_db_path):
        return 0
    report = job.import_lines(settings, _demo_lines(), command="demo", announce_type="demo",
                              db_path=settings.demo_db_path)
    return report["exit_code"]


def _demo_lines() -> list[str]:
    from pipeline.ingest import demo_lines

    return demo_lines()


def _parse_day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not a date; write it as YYYY-MM-DD") from None


def fetch(args, settings) -> int:
    since = _parse_day(args.since, "--since")
    until = _parse_day(args.until, "--until") or date.today()
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}; swap them")
    if (until - since) > timedelta(days=366):
        raise UsageError("the range is over a year; arXiv asks for bulk harvesting to use "
                         "OAI-PMH or the metadata snapshot (`octet import FILE`)")
    try:
        report = job.fetch_range(settings, since, until)
    except job.RunLocked as error:
        print(f"octet: {error}")
        return 0
    _print_report(report, args.json)
    return report["exit_code"]


def _open_lines(source: str):
    # surrogateescape: a line with bytes that are not UTF-8 is reported and skipped by
    # read_jsonl instead of stopping the whole import.
    if source == "-":
        if hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="surrogateescape")
        return sys.stdin
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"{source} does not exist; give the path of a .jsonl file")
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    if path.suffix == ".gz":
        import gzip
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    return open(path, encoding="utf-8", errors="surrogateescape")


def import_file(args, settings) -> int:
    if args.source == "obsidian":
        from pipeline.commands.notes import run_import_obsidian
        return run_import_obsidian(args, settings)
    with _open_lines(args.source) as lines:
        report = job.import_lines(settings, lines)
    _print_report(report, args.json)
    return report["exit_code"]


def demo(args, settings) -> int:
    report = job.import_lines(settings, _demo_lines(), command="demo", announce_type="demo",
                              db_path=settings.demo_db_path)
    _print_report(report, args.json)
    print(f"demo database: {settings.demo_db_path} (open it with `octet app --or-demo`)")
    return report["exit_code"]


def status(args, settings) -> int:
    runs = store.recent_runs(settings.db_path, limit=1)
    result = {"db": str(settings.db_path), "papers": store.count_papers(settings.db_path),
              "last_run": runs[0] if runs else None}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{result['papers']} papers in {result['db']}")
    last = result["last_run"]
    print("no run yet: start one with `octet run`" if not last else
          f"last run #{last['run_id']} ({last['command']}) {last['started_at']}: "
          f"{last['status']}, {last.get('new', 0)} new, {last.get('updated', 0)} updated")
    return 0


def show(args, settings) -> int:
    try:
        arxiv_id = normalize_id(args.arxiv_id)
    except InvalidArxivId as error:
        raise UsageError(str(error)) from None
    paper = store.get_paper(settings.db_path, arxiv_id)
    if paper is None:
        raise UsageError(f"{arxiv_id} is not stored; fetch it with `octet run` or "
                         f"`octet fetch --since DATE`")
    paper.update(_derived(settings.db_path, arxiv_id))
    if args.json:
        print(json.dumps(paper, indent=2, default=str, ensure_ascii=False))
    else:
        print(_format_paper(paper))
    return 0


def _derived(db_path: Path, arxiv_id: str) -> dict:
    """Families and summary, from their stores when those exist."""
    derived = {"families": None, "summary": None}
    try:
        from storage.families import families_for
        derived["families"] = families_for(db_path, [arxiv_id]).get(arxiv_id)
    except ImportError:
        pass
    try:
        from storage.summaries import summary_for
        derived["summary"] = summary_for(db_path, [arxiv_id]).get(arxiv_id)
    except ImportError:
        pass
    return derived


def _format_paper(paper: dict) -> str:
    lines = [f"{paper['arxiv_id']}v{paper['version']}  {paper['title']}",
             f"  authors: {', '.join(paper['authors'])}",
             f"  categories: {', '.join(paper['categories'])}  published: {paper['published']}",
             f"  versions: {', '.join('v%d' % v['version'] for v in paper['versions'])}",
             f"  {paper['abs_url']}"]
    families = paper.get("families")
    if families:
        lines.append(f"  families: {', '.join(families.get('labels') or ['none'])}")
    summary = paper.get("summary")
    if summary:
        tag = " (extractive)" if summary.get("extractive") else ""
        lines.append(f"  tl;dr{tag}: {summary.get('tldr')}")
    return "\n".join(lines)
