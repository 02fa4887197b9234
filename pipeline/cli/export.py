"""`octet export obsidian|bibtex|list`, and the handler behind `octet import obsidian`."""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
from datetime import date
from pathlib import Path

from pipeline.stages import export
from storage.reading import STATES
from pipeline.core.errors import UsageError

_STATES_HELP = ("comma-separated reading states to export: " + ", ".join(
    STATES) + " (default: pick,queued,read — the reading list)")


def register(subparsers) -> None:
    """Add `octet export …` to the `octet` parser."""
    parser = subparsers.add_parser(
        "export", help="export the reading list: Obsidian notes, BibTeX, plain lists",
        description="Export the reading list (this week's pick, the queue and everything "
        "read; or --state/--all) to an Obsidian vault, a .bib file or a list.")
    kinds = parser.add_subparsers(dest="export_kind", metavar="KIND", required=True)

    obsidian = kinds.add_parser("obsidian", help="one Markdown note per paper in an Obsidian vault")
    obsidian.add_argument("--vault", required=True, type=Path, metavar="DIR",
                          help="the vault folder; notes go to DIR/Octet/Papers")
    _add_selection(obsidian)
    obsidian.add_argument("--json", action="store_true", help="print the report as JSON")
    obsidian.set_defaults(handler=run_export_obsidian)

    bibtex = kinds.add_parser("bibtex", help="a .bib file with stable citation keys")
    bibtex.add_argument("--output", "-o", default="-", metavar="FILE",
                        help="the .bib file to write (default: standard output)")
    _add_selection(bibtex)
    bibtex.set_defaults(handler=run_export_bibtex)

    listing = kinds.add_parser("list", help="a Markdown checklist, CSV or JSON reading list")
    listing.add_argument("--format", choices=("md", "csv", "json"), default="md",
                         help="md (a checklist, default), csv or json")
    listing.add_argument("--output", "-o", default="-", metavar="FILE",
                         help="file to write (default: standard output)")
    _add_selection(listing)
    listing.set_defaults(handler=run_export_list)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", dest="include_all",
                       help="every stored paper, whatever its state")
    which.add_argument("--state", metavar="STATES", help=_STATES_HELP)
    parser.add_argument("--since", metavar="YYYY-MM-DD",
                        help="only papers whose reading state changed (or that were picked "
                        "or first seen) on or after this day")


def _selection(args) -> dict:
    try:
        states = export.parse_states(getattr(args, "state", None))
    except export.ExportError as error:
        raise UsageError(str(error)) from None
    since = None
    if getattr(args, "since", None):
        try:
            since = date.fromisoformat(args.since)
        except ValueError:
            raise UsageError(f"--since {args.since!r} is not a date; use YYYY-MM-DD, "
                             "e.g. --since 2026-11-01") from None
    return {"states": states, "include_all": bool(getattr(args, "include_all", False)),
            "since": since}


def run_export_obsidian(args, settings) -> int:
    """`octet export obsidian --vault DIR`."""
    try:
        report = export.export_obsidian(settings, args.vault, **_selection(args))
    except export.ExportError as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for line in obsidian_summary(report):
        print(line)
    return 0


def obsidian_summary(report: dict) -> list[str]:
    """The export report in sentences."""
    folder = Path(report["vault"]) / "Octet" / "Papers"
    if not report["notes"]:
        return ["Nothing to export: no paper matches (the reading list is this week's pick, "
                "the queue and what you read); use --state or --all to export others."]
    lines = [f"Exported {report['notes']} notes to {folder}: {report['created']} created, "
             f"{report['updated']} updated, {report['unchanged']} unchanged; "
             f"{report['families']} family hubs, {report['weeks']} week notes."]
    lines += [f"  recreated (it had been deleted): {path}" for path in report["recreated"]]
    lines += [f"  renamed: {move['from']} -> {move['to']}" for move in report["renamed"]]
    lines += [f"  no '## My notes' heading; previous note kept as {path}"
              for path in report["backups"]]
    lines += [f"  left alone, its frontmatter is not valid YAML: {path}"
              for path in report["unreadable"]]
    if report["pending_edits"]:
        lines.append(f"{len(report['pending_edits'])} notes hold edits made in Obsidian that "
                     "are not imported yet (kept as they are); run `octet import obsidian "
                     f"--vault {report['vault']}` to bring them in.")
    return lines


def run_import_obsidian(args, settings) -> int:
    """`octet import obsidian --vault DIR`: state, rating and My notes back into Octet."""
    if not getattr(args, "vault", None):
        raise UsageError("name the vault: octet import obsidian --vault DIR")
    try:
        report = export.import_obsidian(settings, Path(args.vault))
    except export.ExportError as error:
        raise UsageError(str(error)) from None
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, default=str))
        return 0
    for line in import_summary(report):
        print(line)
    return 0


def import_summary(report: dict) -> list[str]:
    """The import report in sentences."""
    lines = [f"Read {report['scanned']} notes in {report['vault']}: {len(report['changed'])} "
             f"changed, {report['unchanged']} unchanged, {len(report['conflicts'])} conflicts, "
             f"{len(report['skipped'])} skipped."]
    for item in report["changed"]:
        parts = [f"{field} {values[0]} -> {values[1]}" if isinstance(values, list)
                 else f"{field} {values}" for field, values in item["changes"].items()]
        lines.append(f"  {item['arxiv_id']}: {', '.join(parts)}")
    lines += [f"  conflict in {item['file']} ({item['field']}): kept {item['kept']}"
              for item in report["conflicts"]]
    lines += [f"  skipped {item['file']}: {item['reason']}" for item in report["skipped"]]
    return lines


def run_export_bibtex(args, settings) -> int:
    """`octet export bibtex --output FILE`."""
    text, count = export.bibtex(settings, **_selection(args))
    emit(text, args.output)
    if args.output != "-":
        print(f"Wrote {count} entries to {args.output}")
    return 0


def run_export_list(args, settings) -> int:
    """`octet export list --format md|csv|json`."""
    entries = export.select_entries(settings, **_selection(args))
    emit(export.reading_list(entries, args.format), args.output)
    if args.output != "-":
        print(f"Wrote {len(entries)} papers to {args.output}")
    return 0


def emit(text: str, output: str) -> None:
    """Print to standard output ('-') or replace the file atomically."""
    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output).expanduser()
    if path.is_dir():
        raise UsageError(f"--output {output} is a folder; name a file, e.g. {path / 'octet.bib'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".octet-")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
        stream.write(text)
    # mkstemp makes the file private (0600); the file keeps its mode, a new one gets the
    # usual one, so a web server can still serve a feed and a notes folder stays shared.
    os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
    os.replace(temporary, path)


def _umask() -> int:
    current = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(current)
    return current
