"""The ``octet`` command: a thin argparse layer over the library.

Each concept registers its own subcommands from ``pipeline/cli/<concept>.py`` (a
``register(subparsers)`` function); handlers take ``(args, settings)`` and return an exit
code. Errors become one sentence that names the fix; the exit codes are in
``pipeline.core.errors`` (0 done, 1 unexpected, 2 usage or configuration, 3 arXiv,
the mail server or the webhook unreachable).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace

from pipeline.cli import (backfill, digest, export, families, feed, papers, reading, runs,
                          schedule, search, summaries)
from pipeline.core.errors import (EXIT_UNEXPECTED, EXIT_UNREACHABLE, EXIT_USAGE, ConfigError,
                                  UsageError)
from pipeline.core.paper import clean_text
from pipeline.core.settings import load_settings
from pipeline.stages import progress
from pipeline.stages.library import choose_library, demo_notice
from pipeline.stages.delivery import DeliveryUnreachable
from pipeline.stages.sources import ArxivUnreachable

COMMAND_MODULES = (runs, papers, backfill, families, summaries, reading, search, export, digest,
                   feed, schedule)
"""In the order ``octet --help`` lists their commands."""

READING_COMMANDS = frozenset({"status", "show", "pick", "queue", "done", "export", "label",
                              "search", "app", "digest", "feed"})
"""Commands that look at the reader's library: they use the database the app shows (the
demo while the reader's own holds no paper; see ``pipeline.stages.library``) and say so
when it is the demo. Commands that store papers (run, fetch, import) use the reader's own."""

log = logging.getLogger("octet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="octet", description="Track arXiv for eight model "
                                     "families and read one paper a week.")
    parser.add_argument("--home", help="data directory (default: platform user data dir; "
                        "env OCTET_HOME)")
    parser.add_argument("--db", help="DuckDB file (default: <home>/octet.duckdb; env OCTET_DB)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    _accept_global_flags_anywhere(parser)
    return parser


def _accept_global_flags_anywhere(parser: argparse.ArgumentParser) -> None:
    """`octet status --db X` works like `octet --db X status`: people type flags last."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command in action.choices.values():
            known = {flag for item in command._actions for flag in item.option_strings}
            if "--home" not in known:
                command.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            if "--db" not in known:
                command.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            _accept_global_flags_anywhere(command)


def settings_from(args: argparse.Namespace):
    """Settings with the flags of this invocation applied on top of every other layer; a
    reading command's point at the database the app shows (announced on stderr when it is
    the demo, so that standard output stays the command's own: JSON, BibTeX, a list)."""
    flags = {name: getattr(args, name, None) for name in
             ("home", "db", "categories", "summarizer", "model", "device", "batch_size",
              "timezone")}
    settings = load_settings(flags)
    if args.command not in READING_COMMANDS or args.command == "app":
        return settings  # `octet app` lets the app choose on every page, to follow a run
    library = choose_library(settings)
    if library.demo:
        _error(demo_notice(library))
    return replace(settings, db=library.path)


class _OneLine(logging.Formatter):
    """Tracebacks go to the log file (and to -v), not to cron's mail."""

    def format(self, record: logging.LogRecord) -> str:
        return f"octet: {record.levelname.lower()}: {record.getMessage()}"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine())
    handler.setLevel(logging.INFO if verbose else logging.ERROR)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("arxiv", "urllib3", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error(message: str) -> None:
    # One line for cron's mail, and no terminal controls should paper text reach a message.
    print(f"octet: {clean_text(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # Progress bars from model loading would land in cron's mail.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    # A script reads --json output: no bar, even when it runs the command in a terminal.
    progress.set_quiet(bool(getattr(args, "json", False)))
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args, settings_from(args)) or 0)
    except (ConfigError, UsageError) as error:
        _error(str(error))
        return EXIT_USAGE
    except (ArxivUnreachable, DeliveryUnreachable) as error:
        _error(str(error))
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        _error("interrupted; finished work is stored, the next run picks up the rest")
        return EXIT_UNEXPECTED
    except Exception as error:  # the one catch-all: cron gets a line, the log the detail
        log.debug("unexpected error", exc_info=True)
        _error(f"{type(error).__name__}: {error} (rerun with -v for details)")
        return EXIT_UNEXPECTED
