"""Paper subcommands: fetch, import, demo, show."""
from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

from pipeline import job
from pipeline.core.errors import UsageError
from pipeline.job import print_report
from pipeline.core.paper import InvalidArxivId, normalize_id
from pipeline.stages.library import choose_library
from pipeline.stages.papers import demo_lines
from pipeline.stages.sources import ArxivRequestError, ArxivUnreachable, open_jsonl
from storage import papers as store
from storage.families import families_for
from storage.reading import reading_of
from storage.runs import RunLocked, RunStuck
from storage.summaries import summary_for


def register(subparsers) -> None:
    command = subparsers.add_parser("fetch", help="papers through the arXiv API: a date range "
                                    "(--since/--until) or named papers (--ids)")
    which = command.add_mutually_exclusive_group(required=True)
    which.add_argument("--since", help="first submission day, YYYY-MM-DD")
    which.add_argument("--ids", help="comma-separated arXiv ids (2401.12345, 2401.12345v2, "
                       "hep-th/9901001 or an arxiv.org URL)")
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

    command = subparsers.add_parser("show", help="one stored paper")
    command.add_argument("arxiv_id")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=show)


def parse_day(text: str | None, name: str) -> date | None:
    """A ``--since``/``--until`` flag as a date (None when not given); a bad one names the form."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not a date; write it as YYYY-MM-DD") from None


def fetch(args, settings) -> int:
    if args.ids:
        return report_of(lambda: job.fetch_ids(settings, _id_list(args.ids)), args.json)
    since = parse_day(args.since, "--since")
    until = parse_day(args.until, "--until") or date.today()
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}; swap them")
    if (until - since) > timedelta(days=366):
        raise UsageError("the range is over a year; arXiv asks for bulk harvesting to use "
                         "OAI-PMH or the metadata snapshot (`octet import FILE`)")
    return report_of(lambda: job.fetch_range(settings, since, until), args.json)


def _id_list(text: str) -> list[str]:
    try:
        ids = [normalize_id(raw) for raw in text.split(",") if raw.strip()]
    except InvalidArxivId as error:
        raise UsageError(str(error)) from None
    if not ids:
        raise UsageError("--ids is empty; give arXiv ids such as 2401.12345,2401.12346")
    return list(dict.fromkeys(ids))


def report_of(fetch, as_json: bool, when_unreachable=None) -> int:
    """Run a fetching job and print its report; a locked run is no error for cron, a stuck
    one is. ``when_unreachable(error)`` answers for a run arXiv ended (by default: the
    recorded report with ``--json``, then exit 3 with one line)."""
    try:
        report = fetch()
    except RunLocked as error:
        print(f"octet: {error}")
        return 0
    except (RunStuck, ArxivRequestError) as error:
        print(f"octet: {error}", file=sys.stderr)
        return 1
    except ArxivUnreachable as error:
        if when_unreachable is not None:
            return when_unreachable(error)
        print_failed_report(error, as_json)
        raise
    print_report(report, as_json)
    if report.get("unreachable"):
        print(f"octet: {report['unreachable']}", file=sys.stderr)
    return report["exit_code"]


def print_failed_report(error: ArxivUnreachable, as_json: bool) -> None:
    """With ``--json``, the recorded report of a run that arXiv ended: scripts get it on
    stdout, while the one line of every exit 3 goes to stderr."""
    if as_json and error.report is not None:
        print_report(error.report, True)


def _open_lines(source: str):
    # surrogateescape: a line with bytes that are not UTF-8 is reported and skipped by
    # read_jsonl instead of stopping the whole import.
    if source == "-":
        if hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="surrogateescape")
        return sys.stdin
    path = Path(source)
    if path.is_dir():
        raise UsageError(f"{source} is a directory; give the path of a .jsonl file "
                         "(or .jsonl.xz / .jsonl.gz) in it")
    if not path.is_file():
        raise UsageError(f"{source} does not exist; give the path of a .jsonl file")
    return open_jsonl(path)


def import_file(args, settings) -> int:
    if args.source == "obsidian":
        from pipeline.cli.export import run_import_obsidian
        return run_import_obsidian(args, settings)
    with _open_lines(args.source) as lines:
        try:
            report = job.import_lines(settings, lines)
        except (RunLocked, RunStuck) as error:
            print(f"octet: {error}; nothing was imported: run the import again when it is "
                  "done", file=sys.stderr)
            return 1
    print_report(report, args.json)
    return report["exit_code"]


def ensure_demo(settings) -> int:
    """Load the demo database unless it already holds papers."""
    if settings.demo_db_path.exists() and store.count_papers(settings.demo_db_path):
        return 0
    report = job.import_lines(settings, demo_lines(), command="demo", announce_type="demo",
                              db_path=settings.demo_db_path)
    return report["exit_code"]


def demo(args, settings) -> int:
    report = job.import_lines(settings, demo_lines(), command="demo", announce_type="demo",
                              db_path=settings.demo_db_path)
    print_report(report, args.json)
    print(_demo_line(settings), file=sys.stderr if args.json else sys.stdout)
    return report["exit_code"]


def _demo_line(settings) -> str:
    """Where the demo went, and whether the app and the commands now show it."""
    library = choose_library(settings)
    if library.demo:
        return (f"demo database: {settings.demo_db_path}. Your own database has no papers yet, "
                "so `octet app` and the commands (status, show, pick, queue, done, export) "
                "show the demo until a run stores yours.")
    return (f"demo database: {settings.demo_db_path}. Your own database ({library.path}) has "
            f"papers and stays in use; look at the demo with `--db {settings.demo_db_path}`.")


def show(args, settings) -> int:
    try:
        arxiv_id = normalize_id(args.arxiv_id)
    except InvalidArxivId as error:
        raise UsageError(str(error)) from None
    paper = store.get_paper(settings.db_path, arxiv_id)
    if paper is None:
        raise UsageError(f"{arxiv_id} is not stored; fetch it with `octet fetch --ids {arxiv_id}`")
    paper.update(_derived(settings.db_path, arxiv_id))
    if args.json:
        print(json.dumps(paper, indent=2, default=str, ensure_ascii=False))
    else:
        print(_format_paper(paper))
    return 0


def _derived(db_path: Path, arxiv_id: str) -> dict:
    """Families, summary and reading state; None where there is none yet."""
    return {"families": families_for(db_path, [arxiv_id]).get(arxiv_id),
            "summary": summary_for(db_path, [arxiv_id]).get(arxiv_id),
            "reading": reading_of(db_path, arxiv_id)}


def _format_paper(paper: dict) -> str:
    """The stored paper in a few lines; a field not known yet is left out, never ``None``."""
    lines = [f"{paper['arxiv_id']}v{paper['version']}  {paper['title']}"]
    if paper.get("authors"):
        lines.append(f"  authors: {', '.join(paper['authors'])}")
    lines.append("  " + "  ".join(_known([
        ("categories", ", ".join(paper.get("categories") or ())),
        ("published", _day(paper.get("published"))), ("updated", _day(paper.get("updated"))),
        ("listed", _day(paper.get("listed_date")))])))
    lines.append(f"  versions: {', '.join('v%d' % v['version'] for v in paper['versions'])}")
    lines.append(f"  {paper['abs_url']}")
    families = paper.get("families")
    if families:
        lines.append(f"  families: {', '.join(families.get('labels') or ['none'])}")
    lines += _reading_lines(paper.get("reading"))
    summary = paper.get("summary")
    if summary and summary.get("tldr"):
        copied = summary.get("extractive") or "tldr" in (summary.get("fallback_fields") or ())
        tag = " (extractive)" if copied else ""
        lines.append(f"  tl;dr{tag}: {summary['tldr']}")
    return "\n".join(lines)


def _known(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{name}: {value}" for name, value in pairs if value]


def _day(value) -> str:
    """A stored date or timestamp as ``YYYY-MM-DD`` (empty when there is none)."""
    return str(value)[:10] if value else ""


def _reading_lines(held: dict | None) -> list[str]:
    if not held:
        return []
    rating = f", rated {held['rating']}/5" if held.get("rating") else ""
    week = f" in {held['week']}" if held.get("week") and held.get("state") == "read" else ""
    return [f"  reading: {held['state']}{week}{rating}"]
