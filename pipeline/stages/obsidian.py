"""Obsidian note files: safe names, YAML frontmatter, and the reader's ``## My notes``.

Everything Octet writes into a note is regenerated on every export, except what sits
under the heading ``## My notes``: that belongs to the reader and is kept byte for byte.
The heading comes right after the marker line ``<!-- octet:my-notes -->``; paper text is
escaped (``note_text``) so that it can never form that marker, a heading or a ``---`` fence.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from pipeline.core.paper import Paper, abs_url, pdf_url, strip_controls

MY_NOTES = "## My notes"
NOTES_MARKER = "<!-- octet:my-notes -->"
MAX_NAME_BYTES = 120  # far below the 255-byte file name limit, leaves room for long vault paths
_MY_NOTES_LINE = re.compile(r"^## My notes[ \t]*\r?$", re.MULTILINE | re.IGNORECASE)
_MARKED_NOTES = re.compile(r"^<!-- octet:my-notes -->[ \t]*\r?\n## My notes[ \t]*\r?$",
                           re.MULTILINE | re.IGNORECASE)
_OLD_ABSTRACT = re.compile(r"^## Abstract\r?\n\r?\n\Z", re.MULTILINE)
_FENCE = re.compile(r"---[ \t]*\r?")
# Wide enough that YAML never folds a value onto a line of its own (which could read "---").
_YAML_WIDTH = 1_000_000_000
# Path separators, Windows wildcards and reserved characters, and the characters that
# break an Obsidian link or turn into a tag or block reference: [ ] # ^ |
_UNSAFE = re.compile(r'[/\\:*?"<>|\[\]#^]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)),
             *(f"LPT{n}" for n in range(10))}
_WEEK = re.compile(r"^\d{4}-W\d{2}$")
# libyaml's safe loader and dumper when PyYAML has them: ~10x faster on a large vault.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_name(title: str, fallback: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name stem from a title that is valid on Windows, macOS and Linux.

    Separators, wildcards, control characters and Obsidian's link characters become
    spaces; leading dots and trailing dots/spaces go; Windows device names (``CON``,
    ``com1.txt``) get a trailing underscore; the UTF-8 length is bounded. An empty
    result falls back to ``fallback`` (made safe the same way).
    """
    text = unicodedata.normalize("NFC", title or "")
    text = "".join(" " if unicodedata.category(char)[0] in "CZ" else char for char in text)
    text = " ".join(_UNSAFE.sub(" ", text).split())
    text = _truncate(text, max_bytes).lstrip(". ").rstrip(". ")
    if not text:
        return safe_name(fallback, "note", max_bytes) if fallback else "note"
    head, dot, rest = text.partition(".")
    if head.strip().upper() in _RESERVED:  # Windows reserves CON and con.txt alike
        text = f"{head}_{dot}{rest}"
    return text


def _truncate(text: str, max_bytes: int) -> str:
    """Cut at a character boundary (preferably a word boundary) to at most ``max_bytes``."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    words = cut.rsplit(" ", 1)[0]
    return words if len(words) >= len(cut) * 2 // 3 else cut


def id_suffix(arxiv_id: str) -> str:
    """The suffix that makes a colliding note name unique: `` (2506.01234)``."""
    return f" ({arxiv_id.replace('/', '_')})"


def note_stem(title: str, arxiv_id: str, with_id: bool) -> str:
    """The note name for a paper; ``with_id`` appends the id for titles that collide."""
    if not with_id:
        return safe_name(title, arxiv_id)
    suffix = id_suffix(arxiv_id)
    return safe_name(title, "", MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix


def inside(folder: Path, stem: str) -> Path:
    """``folder/<stem>.md``, refusing any name that would land outside ``folder``."""
    path = folder / f"{stem}.md"
    if path.parent != folder or os.sep in stem or "/" in stem or stem in (".", ".."):
        raise ValueError(f"refusing to write note {stem!r} outside {folder}")
    return path


def week_name(week: str | None) -> str | None:
    """The ISO week (``2026-W48``) when it is one, else None (never used as a file name)."""
    if not week or not _WEEK.match(week):
        return None
    try:
        date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    except ValueError:  # 2025-W53 does not exist
        return None
    return week


# ---- reading and writing note files --------------------------------------------------------

@dataclass(frozen=True)
class NoteFile:
    """An existing note, split into Octet's part and the reader's."""

    frontmatter: dict
    """The parsed YAML frontmatter ({} when missing or unreadable)."""

    my_notes: str | None
    """Everything after the ``## My notes`` heading line, exactly as on disk; None
    when the note has no such heading."""

    frontmatter_ok: bool
    """False when the note starts with a frontmatter block that YAML cannot parse."""


def read_note(path: Path) -> NoteFile | None:
    """Read a note file; None when it does not exist (or is a folder named like a note)."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    # surrogateescape keeps any byte the reader wrote, even invalid UTF-8, round-trippable.
    return parse_note(raw.decode("utf-8", errors="surrogateescape"))


def parse_note(text: str) -> NoteFile:
    """Split a note's text into its frontmatter and the reader's ``## My notes``."""
    frontmatter, ok = parse_frontmatter(text)
    start = _notes_start(text)
    my_notes = None
    if start is not None:
        rest = text[start:]
        my_notes = rest[1:] if rest.startswith("\n") else rest
    return NoteFile(frontmatter=frontmatter, my_notes=my_notes, frontmatter_ok=ok)


def _notes_start(text: str) -> int | None:
    """Where the ``## My notes`` heading line ends: the heading right after the marker; in
    a note written before the marker existed, the first such heading that is not the
    abstract (older exports wrote an abstract reading ``## My notes`` as it was)."""
    match = _MARKED_NOTES.search(text)
    if match is None:
        match = next((found for found in _MY_NOTES_LINE.finditer(text)
                      if not _OLD_ABSTRACT.search(text, 0, found.start())), None)
    return match.end() if match else None


def parse_frontmatter(text: str) -> tuple[dict, bool]:
    """The YAML block between the leading ``---`` lines: (data, parsed_ok). A fence is
    ``---`` at the start of a line, alone: an indented ``  ---`` is part of a YAML value."""
    lines = text.split("\n")
    if not _FENCE.fullmatch(lines[0]):
        return {}, True
    end = next((index for index in range(1, len(lines)) if _FENCE.fullmatch(lines[index])), None)
    if end is None:
        return {}, False
    try:
        data = yaml.load("\n".join(lines[1:end]), Loader=_LOADER) or {}
    except (yaml.YAMLError, ValueError, RecursionError):
        # ValueError: a date YAML cannot build (2026-02-30), an int over Python's digit
        # limit, bytes that are not UTF-8 (UnicodeEncodeError) -- all unreadable YAML.
        return {}, False
    return (data, True) if isinstance(data, dict) else ({}, False)


def render_frontmatter(data: dict) -> str:
    """``---`` + YAML that any YAML parser reads + ``---``."""
    body = yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=_YAML_WIDTH,
                     default_flow_style=False)
    return f"---\n{body}---\n"


def compose(generated: str, my_notes: str) -> str:
    """The full note: Octet's part, the marker and the heading, then the reader's part
    unchanged."""
    return f"{generated.rstrip()}\n\n{NOTES_MARKER}\n{MY_NOTES}\n{my_notes}"


def write_if_changed(path: Path, text: str) -> bool:
    """Write atomically (temp file + rename) unless the file already holds ``text``;
    True when written. Unchanged files keep their mtime, so sync tools see nothing."""
    data = text.encode("utf-8", errors="surrogateescape")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".octet-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def normalize_notes(text: str | None) -> str:
    """The reader's notes compared by content: blank lines around them and trailing
    spaces do not count as an edit."""
    # Control characters are dropped as storage drops them, so a note that still holds
    # one is not an edit on every import.
    lines = strip_controls(text, keep="\n\t").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def notes_sha(text: str | None) -> str:
    """Fingerprint of the normalized notes (what the export baseline stores)."""
    return hashlib.sha256(normalize_notes(text).encode("utf-8", "surrogateescape")).hexdigest()


def initial_notes(stored: str | None) -> str:
    """The ``## My notes`` section of a new note: the notes kept in Octet, if any."""
    text = normalize_notes(stored)
    return f"\n{text}\n" if text else "\n"


def link(target: str, label: str) -> str:
    """An Obsidian wikilink ``[[target|label]]`` whose label cannot break the link."""
    clean = " ".join(re.sub(r"[\[\]|]", " ", label).split())
    return f"[[{target}|{clean}]]" if clean else f"[[{target}]]"


def one_line(text: str | None) -> str:
    """Collapse a text to one line (every Unicode line break and space run becomes a space)."""
    return " ".join((text or "").split())


# ---- paper text as Markdown text -----------------------------------------------------------

# The commands ``$…$`` math from a paper may use (in a note and in BibTeX). Anything else
# (\input, \write, \immediate, \def, \catcode, \csname, \url, \href, a macro a package
# could define) may read or write files, run commands or load a URL: such math is text.
MATH_COMMANDS = frozenset("""
alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi
pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta
Lambda Xi Pi Sigma Upsilon Phi Psi Omega
times cdot div pm mp leq geq le ge neq ne approx sim simeq cong equiv propto ll gg lesssim
gtrsim leqslant geqslant prec succ preceq succeq subset subseteq supset supseteq in notin ni
cup cap setminus emptyset varnothing forall exists nexists neg lnot land lor wedge vee oplus
otimes odot circ bullet star ast dagger ddagger mid nmid parallel perp top bot vdash models
triangleq sqcup sqcap colon not
to gets rightarrow leftarrow leftrightarrow Rightarrow Leftarrow Leftrightarrow longrightarrow
longleftarrow Longrightarrow mapsto uparrow downarrow hookrightarrow implies iff
sum prod coprod int iint oint bigcup bigcap bigoplus bigotimes lim limsup liminf log ln exp
sin cos tan sinh cosh tanh arg max min sup inf det dim ker deg gcd Pr
infty partial nabla ell hbar Re Im aleph wp prime ldots cdots dots vdots ddots langle rangle
lfloor rfloor lceil rceil lbrace rbrace vert Vert angle triangle square diamond
quad qquad left right big Big bigg Bigg bigl bigr Bigl Bigr limits nolimits displaystyle
textstyle scriptstyle
frac dfrac tfrac sqrt binom hat bar tilde vec dot ddot check breve acute grave widehat
widetilde overline underline overbrace underbrace overrightarrow
mathbf mathcal mathrm mathit mathsf mathtt mathbb mathfrak boldsymbol operatorname text
textrm textbf textit textsf texttt textnormal mbox
""".split())
MATH_SYMBOLS = frozenset(",;:! {}|#%&_")  # control symbols: spacing and escaped characters
_MATH_COMMAND = re.compile(r"\\([a-zA-Z]+|.?)", re.DOTALL)
_MATH_SPAN = re.compile(r"(\$[^$]+\$)")
# Markdown and Obsidian syntax inside math that a renderer not taking the span as math
# would act on: a link or image, a wikilink or embed, HTML, code, a comment.
_MATH_MARKDOWN = re.compile(r"\]\(|!\[|\[\[|[<`]|%%")
# ASCII punctuation that can start Markdown or Obsidian syntax: links, images, HTML, code,
# emphasis, tags, tables, math, comments, highlights. Backslash-escaped in paper text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~&$%=^])")
# What starts a block at the beginning of a line once the above is escaped: a list item,
# a thematic break (``---``, which is also the frontmatter fence), a numbered item.
_BLOCK_START = re.compile(r"^([-+:]|\d+(?=[.)]))")


def has_safe_commands(math: str) -> bool:
    """True when the body of ``$…$`` math uses only ``MATH_COMMANDS`` and ``MATH_SYMBOLS``;
    ``^^5c`` is TeX's spelling of a backslash, so ``^^`` is refused, as is a lone ``\\``."""
    if "^^" in math:
        return False
    for match in _MATH_COMMAND.finditer(math):
        name = match.group(1)
        allowed = MATH_COMMANDS if name[:1].isalpha() else MATH_SYMBOLS
        if not name or name not in allowed:
            return False
    return True


def escape_markdown(text: str | None) -> str:
    """Text on one line that every Markdown renderer shows as exactly this text: no link,
    image, HTML, code, emphasis or math can form, and the line starts no block."""
    return _escape_block_start(_MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text)))


def note_text(text: str | None) -> str:
    """Paper or model text for a note: ``escape_markdown``, except that ``$…$`` math is
    kept for Obsidian to typeset when it is balanced, uses only allowed commands and holds
    no Markdown a renderer could act on. It can never be a heading, a ``---`` fence or
    the ``NOTES_MARKER`` line."""
    parts = []
    for index, piece in enumerate(_MATH_SPAN.split(one_line(text))):
        if index % 2 and _keeps_math(piece[1:-1]):
            parts.append(piece)
        else:
            parts.append(_MARKDOWN_SPECIAL.sub(r"\\\1", piece))
    return _escape_block_start("".join(parts))


def _escape_block_start(text: str) -> str:
    """``- x`` → ``\\- x``, ``1. x`` → ``1\\. x``: the line starts no list or break."""
    match = _BLOCK_START.match(text)
    if not match:
        return text
    if match.group(1)[0].isdigit():
        return text[:match.end()] + "\\" + text[match.end():]
    return "\\" + text


def _keeps_math(body: str) -> bool:
    """Obsidian takes ``$x$`` as math only when no space follows the opening or precedes
    the closing ``$``; anything else must be safe as Markdown too."""
    if body != body.strip() or _MATH_MARKDOWN.search(body):
        return False
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and has_safe_commands(body)


# ---- what a note says ----------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One paper on the reading list, with everything an export writes about it."""

    paper: Paper
    """The stored paper (latest version)."""

    state: str
    """Reading state: ``pick``, ``queued``, ``read``, ``inbox``, ``skipped`` or ``dismissed``."""

    rating: int | None = None
    """The reader's rating, 1-5, or None."""

    notes: str | None = None
    """The reader's notes as stored in Octet (Markdown), or None."""

    week: str | None = None
    """ISO week (``2026-W48``) the paper was picked or read in, or None."""

    read_on: date | None = None
    """The day the reader marked it read, or None."""

    families: tuple[str, ...] = ()
    """Family codes the paper belongs to (``LLM``, ``MoE``), best first."""

    summary: dict | None = None
    """The summary to show (``tldr``, ``problem``, ``method``, ``results``,
    ``why_it_matters``, ``extractive``, ``fallback_fields``), or None."""


SUMMARY_FIELDS = (("problem", "Problem"), ("method", "Method"), ("results", "Results"),
                  ("why_it_matters", "Why it matters"))
PAPERS, FAMILIES, WEEKS = "Octet/Papers", "Octet/Families", "Octet/Weeks"


def paper_frontmatter(entry: Entry) -> dict:
    """The note's properties, in the order Obsidian shows them."""
    paper = entry.paper
    return {
        "title": one_line(paper.title),
        "authors": [one_line(name) for name in paper.authors],
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "url": abs_url(paper.arxiv_id),
        "pdf": pdf_url(paper.arxiv_id, paper.version),
        "published": paper.published.date() if paper.published else None,
        "families": list(entry.families),
        "state": entry.state,
        "rating": entry.rating,
        "week": entry.week,
        "read_on": entry.read_on,
        "tags": ["octet", *(f"octet/{code}" for code in entry.families)],
        "aliases": [alias for alias in (one_line(paper.title), paper.arxiv_id) if alias],
    }


def render_paper(entry: Entry, frontmatter: dict) -> str:
    """Octet's part of a paper note: frontmatter, summary, abstract and links."""
    paper = entry.paper
    parts = [render_frontmatter(frontmatter), f"# {note_text(paper.title)}\n",
             _byline(paper) + "\n"]
    parts += _summary_lines(entry.summary)
    if one_line(paper.abstract):
        parts.append(f"## Abstract\n\n{note_text(paper.abstract)}\n")
    parts.append(_links(entry))
    return "\n".join(parts)


def _byline(paper: Paper) -> str:
    authors = ", ".join(paper.authors[:8]) + (f" and {len(paper.authors) - 8} more"
                                              if len(paper.authors) > 8 else "")
    published = f" · {paper.published.date().isoformat()}" if paper.published else ""
    return (f"{note_text(authors) or 'Unknown authors'}{published} · "
            f"[arXiv:{paper.arxiv_id}v{paper.version}]({abs_url(paper.arxiv_id)}) · "
            f"[PDF]({pdf_url(paper.arxiv_id, paper.version)})")


def _summary_lines(summary: dict | None) -> list[str]:
    if not summary:
        return []
    copied = set(summary.get("fallback_fields") or ())
    whole = bool(summary.get("extractive"))
    lines = []
    if summary.get("tldr"):
        mark = " (extractive)" if whole or "tldr" in copied else ""
        lines.append(f"> [!summary] TL;DR{mark}\n> {note_text(summary['tldr'])}\n")
    fields = [(name, label) for name, label in SUMMARY_FIELDS if summary.get(name)]
    if fields:
        heading = "## Summary" + (" (extractive: sentences from the abstract)" if whole else "")
        items = [f"- **{label}**{' (extractive)' if name in copied and not whole else ''}: "
                 f"{note_text(summary[name])}" for name, label in fields]
        lines.append(heading + "\n\n" + "\n".join(items) + "\n")
    return lines


def _links(entry: Entry) -> str:
    items = []
    if entry.families:
        items.append("- Families: " + ", ".join(link(f"{FAMILIES}/{code}", code)
                                                for code in entry.families))
    week = week_name(entry.week)
    if week:
        items.append(f"- Week: {link(f'{WEEKS}/{week}', week)}")
    return "## Links\n\n" + ("\n".join(items) if items else "- Not in a family yet") + "\n"


@dataclass(frozen=True)
class VaultNote:
    """A paper note as the hubs see it: what its frontmatter says."""

    stem: str
    """The note's file name without ``.md``."""

    title: str
    """The paper title."""

    families: tuple[str, ...]
    """Family codes."""

    state: str
    """Reading state."""

    week: str | None
    """ISO week, or None."""

    read_on: str | None
    """ISO date the paper was read, or None."""

    rating: int | None
    """Rating 1-5, or None."""


def render_family(code: str, name: str, notes: list[VaultNote], definition: str = "") -> str:
    """The hub note of one family: papers read in it, then the rest in the vault."""
    read = sorted((note for note in notes if note.state == "read"),
                  key=lambda note: (note.read_on or "", note.title), reverse=True)
    others = sorted((note for note in notes if note.state != "read"), key=lambda n: n.title)
    heading = f"# {code}" + (f" — {name}" if name and name != code else "")
    parts = [render_frontmatter({"family": code, "tags": ["octet", f"octet/{code}"]}),
             heading + "\n", *([one_line(definition) + "\n"] if definition else []),
             "## Read\n\n" + (_list(read) or "Nothing read in this family yet.") + "\n"]
    if others:
        parts.append("## Also in the vault\n\n" + _list(others) + "\n")
    return "\n".join(parts)


def render_week(week: str, notes: list[VaultNote]) -> str:
    """The note of one ISO week: the papers picked or read in it."""
    first = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    span = f"{first:%b %d} – {first + timedelta(days=6):%b %d, %Y}"
    ordered = sorted(notes, key=lambda note: (note.state != "pick", note.title))
    return "\n".join([render_frontmatter({"week": week, "tags": ["octet", "octet/week"]}),
                      f"# Week {week} ({span})\n", "## Papers\n\n" + _list(ordered) + "\n"])


def _list(notes: list[VaultNote]) -> str:
    lines = []
    for note in notes:
        details = [note.state if note.state != "read" else f"read {note.read_on or ''}".strip()]
        if note.rating:
            details.append("★" * note.rating)
        lines.append(f"- {link(f'{PAPERS}/{note.stem}', note.title)} — {' · '.join(details)}")
    return "\n".join(lines)
