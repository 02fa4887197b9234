"""The ``octet`` command: a thin argparse layer over the library.

Each concept registers its own subcommands from ``pipeline/commands/<concept>.py``
(a ``register(subparsers)`` function); handlers take ``(args, settings)`` and
return an exit code. Errors become one sentence that names the fix.

Exit codes (cron mails only on non-zero):
  0 done (also: nothing announced today), 2 bad usage or configuration,
  3 arXiv unreachable after retries (nothing stored changed), 1 anything unexpected.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from pipeline.config import ConfigError, load_settings

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
COMMAND_MODULES = ("core", "families", "summaries", "reading", "notes", "schedule")

log = logging.getLogger("octet")


class UsageError(ValueError):
    """Bad input from the user; the message says what to do instead (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="octet", description="Track arXiv for eight model "
                                     "families and read one paper a week.")
    parser.add_argument("--home", help="data directory (default: platform user data dir; "
                        "env OCTET_HOME)")
    parser.add_argument("--db", help="DuckDB file (default: <home>/octet.duckdb; env OCTET_DB)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pipeline.commands.{name}").register(subparsers)
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
    """Settings with the flags of this invocation applied on top of every other layer."""
    flags = {name: getattr(args, name, None) for name in
             ("home", "db", "categories", "summarizer", "model", "device", "batch_size",
              "timezone")}
    return load_settings(flags)


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
    print(f"octet: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # Progress bars from model loading would land in cron's mail.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args, settings_from(args)) or 0)
    except (ConfigError, UsageError) as error:
        _error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted; finished work is stored, the next run picks up the rest")
        return EXIT_UNEXPECTED
    except Exception as error:  # the one catch-all: cron gets a line, the log the detail
        from pipeline.sources import ArxivUnreachable
        if isinstance(error, ArxivUnreachable):
            _error(str(error))
            return EXIT_UNREACHABLE
        log.debug("unexpected error", exc_info=True)
        _error(f"{type(error).__name__}: {error} (rerun with -v for details)")
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    # Under `python -m`, this file runs as __main__ *and* is imported as pipeline.cli by the
    # commands; use the imported one so its exception classes are the ones caught.
    from pipeline.cli import main as entry
    sys.exit(entry())
