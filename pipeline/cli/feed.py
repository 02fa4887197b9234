"""`octet feed`: the Atom feed of the weekly picks and the top new papers of each family."""
from __future__ import annotations

from pathlib import Path

from pipeline.cli.export import emit
from pipeline.core.errors import UsageError
from pipeline.stages.feed import build_feed, to_atom


def register(subparsers) -> None:
    """Add `octet feed` to the `octet` parser."""
    parser = subparsers.add_parser(
        "feed", help="an Atom feed of the weekly picks and the top new papers per family",
        description="An Atom 1.0 feed: the paper of each of the last 12 weeks (with why, and "
        "whether you read it) and the top papers of each family in this week's digest, each "
        "with its TL;DR. Entry ids never change, so a feed reader shows each entry once.")
    parser.add_argument("--output", "-o", default="-", metavar="FILE",
                        help="file to write, replaced atomically (default: standard output)")
    parser.set_defaults(handler=run_feed)


def run_feed(args, settings) -> int:
    """`octet feed [--output FILE]`."""
    _check_output(args.output)
    feed = build_feed(settings)
    try:
        emit(to_atom(feed), args.output)
    except OSError as error:  # e.g. a parent that is a file, or a folder we may not write
        raise UsageError(f"cannot write --output {args.output}: {error.strerror or error}; "
                         "name a file in a folder you can write") from None
    if args.output != "-":
        print(f"Wrote {len(feed.entries)} entries to {args.output}")
    return 0


def _check_output(output: str) -> None:
    """A folder, or a path through a file, is refused before anything is built (a missing
    folder is made by ``emit``)."""
    if output == "-":
        return
    path = Path(output).expanduser()
    if path.is_dir():
        raise UsageError(f"--output {output} is a folder; name a file, e.g. {path / 'octet.atom'}")
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"--output {output}: {existing} is a file, not a folder; name a file "
                         "in a folder")
