"""`octet search`: the Browse page's search from a terminal (the same words, filters,
relevance cut-off and counts)."""
from __future__ import annotations

import json

from pipeline.core.errors import UsageError
from pipeline.core.families import family as family_named
from pipeline.core.paper import clean_text
from pipeline.stages.search import search_text
from storage.search import BrowseFilter, SearchPage, search_words

DEFAULT_LIMIT = 20
CARD_FIELDS = ("arxiv_id", "title", "authors", "primary_category", "listed_date", "labels",
               "state", "abs_url")
"""The fields of each paper in ``--json`` (related papers add ``score``)."""


def register(subparsers) -> None:
    """Add ``search`` to the `octet` parser."""
    command = subparsers.add_parser(
        "search", help="search the stored papers as Browse does: every word in the title, "
        "abstract or authors, then papers related by meaning")
    command.add_argument("query", nargs="?", default="", metavar="QUERY",
                         help="words that must all start words of the title, abstract or "
                         "authors (quote several)")
    command.add_argument("--family", help="only papers of this family (LLM, VLM, ...)")
    command.add_argument("--author", help="only papers with an author whose name holds every "
                         "word of NAME (the last may be cut short: 'yann lec')")
    command.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                         help=f"papers listed of each part (default {DEFAULT_LIMIT})")
    command.add_argument("--keyword", action="store_true",
                         help="words only: no papers related by meaning (no encoder loaded)")
    command.add_argument("--json", action="store_true", help="print one JSON object")
    command.set_defaults(handler=search_command)


def wanted_from(args) -> BrowseFilter:
    """The filter the arguments ask for; a usage error names what to fix."""
    if not (search_words(args.query) or search_words(args.author) or args.family):
        raise UsageError("give words to search for, --author NAME or --family CODE "
                         "(e.g. octet search \"mixture of experts\")")
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} lists nothing; give a number of 1 or more")
    code = ""
    if args.family:
        try:
            code = family_named(args.family).code
        except KeyError as error:
            raise UsageError(str(error.args[0])) from None
    return BrowseFilter(text=args.query or "", family=code, author=args.author or "",
                        limit=args.limit)


def search_command(args, settings) -> int:
    """``octet search``: print the matches and the related papers (or JSON)."""
    wanted = wanted_from(args)
    found = search_text(settings.db_path, wanted, semantic=not args.keyword,
                        related_limit=args.limit)
    if args.json:
        print(json.dumps(as_json(wanted, found), indent=2, ensure_ascii=False))
    else:
        print("\n".join(as_lines(wanted, found)))
    return 0


def as_json(wanted: BrowseFilter, found: SearchPage) -> dict:
    """The result as ``--json`` prints it."""
    return {"query": wanted.text, "author": wanted.author or None,
            "family": wanted.family or None, "match_total": found.match_total,
            "related_total": found.related_total, "min_score": found.min_score,
            "matches": [_fields(card) for card in found.matches],
            "related": [{**_fields(card), "score": round(card["score"], 4)}
                        for card in found.related]}


def _fields(card: dict) -> dict:
    return {name: card.get(name) for name in CARD_FIELDS}


def as_lines(wanted: BrowseFilter, found: SearchPage) -> list[str]:
    """The result as lines for a terminal: the counts, then each part."""
    if not found.matches and not found.related:
        return ["No stored paper matches; try fewer or shorter words, or another filter."]
    lines = [_count_line(wanted, found)]
    if found.matches:
        heading = "Every word, newest first" if search_words(wanted.text) else "Newest first"
        lines += ["", f"{heading} ({len(found.matches)} of {found.match_total:,}):"]
        lines += [f"  {_line(card)}" for card in found.matches]
    if found.related:
        lines += ["", f"Related by meaning, best first ({len(found.related)} of "
                      f"{found.related_total:,}):"]
        lines += [f"  {card['score']:.2f}  {_line(card)}" for card in found.related]
    return lines


def _papers(count: int) -> str:
    return f"{count:,} paper" + ("" if count == 1 else "s")


def _count_line(wanted: BrowseFilter, found: SearchPage) -> str:
    if not search_words(wanted.text):
        verb = "matches" if found.match_total == 1 else "match"
        return f"{_papers(found.match_total)} {verb} the filters."
    line = f"{_papers(found.match_total)} with every word (in the title, abstract or authors)"
    if found.related_total:
        line += (f"; {found.related_total:,} more related by meaning "
                 f"(similarity >= {found.min_score:.2f})")
    return line + "."


def _line(card: dict) -> str:
    """One paper: id, listing day, families, title (paper text made one clean line)."""
    day = card.get("listed_date") or str(card.get("published") or "")[:10] or "-"
    labels = card.get("labels")
    families = "?" if labels is None else ",".join(labels) or "-"
    return f"{card['arxiv_id']}  {day}  {families:<8}  {clean_text(card.get('title'))}"
