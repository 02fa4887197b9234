"""The one core type: an arXiv paper, and the helpers for arXiv identifiers."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

# New style: 2506.01234 (or 0704.0001 with four digits); old style: hep-th/9901001.
_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(?:v(\d+))?$", re.ASCII)
_OLD_ID = re.compile(r"^([a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?$", re.ASCII)
_PREFIXES = ("arxiv:", "oai:arxiv.org:", "http://arxiv.org/abs/", "https://arxiv.org/abs/",
             "http://arxiv.org/pdf/", "https://arxiv.org/pdf/")

ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross", "api", "import", "demo")


class InvalidArxivId(ValueError):
    """Raised for a string that is not an arXiv identifier in either style."""


def split_id(raw: str) -> tuple[str, int | None]:
    """Split ``'2506.01234v2'`` into ``('2506.01234', 2)``; no version gives ``None``.

    Accepts URLs (abs/pdf), ``arXiv:`` and ``oai:arXiv.org:`` prefixes and old-style
    ids such as ``hep-th/9901001v1``. Raises ``InvalidArxivId`` for anything else.
    """
    text = (raw or "").strip()
    lowered = text.lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix):]
            break
    if text.lower().endswith(".pdf"):
        text = text[:-4]
    for pattern in (_NEW_ID, _OLD_ID):
        match = pattern.match(text)
        if match:
            version = int(match.group(2)) if match.group(2) else None
            return match.group(1), version
    raise InvalidArxivId(
        f"{raw!r} is not an arXiv id: use the form 2506.01234 (or 2506.01234v2, hep-th/9901001)")


def normalize_id(raw: str) -> str:
    """The arXiv id without its version: ``'arXiv:2506.01234v2'`` → ``'2506.01234'``."""
    return split_id(raw)[0]


def abs_url(arxiv_id: str, version: int | None = None) -> str:
    """The abstract page of a paper (of one version when ``version`` is given)."""
    return f"https://arxiv.org/abs/{arxiv_id}" + (f"v{version}" if version else "")


def pdf_url(arxiv_id: str, version: int | None = None) -> str:
    """The PDF of a paper (of one version when ``version`` is given)."""
    return f"https://arxiv.org/pdf/{arxiv_id}" + (f"v{version}" if version else "")


@dataclass(frozen=True)
class Paper:
    """One arXiv paper at one version, as Octet stores it."""

    arxiv_id: str
    """The arXiv identifier without version, e.g. ``2506.01234`` or ``hep-th/9901001``."""

    version: int
    """The version number this record describes (1 for ``v1``)."""

    title: str
    """The title with runs of whitespace collapsed to one space (LaTeX kept as sent)."""

    authors: tuple[str, ...] = ()
    """Author names in the order arXiv lists them."""

    abstract: str = ""
    """The abstract as arXiv sends it, whitespace collapsed; may be empty."""

    categories: tuple[str, ...] = ()
    """Every arXiv category the paper is listed in, primary first."""

    primary_category: str = ""
    """The primary arXiv category (``cs.CL``); empty when the source did not say."""

    published: datetime | None = None
    """When version 1 was submitted (UTC); ``None`` when the source did not say."""

    updated: datetime | None = None
    """When this version was submitted (UTC); ``None`` when the source did not say."""

    comment: str | None = None
    """The authors' comment (pages, venue, code link), or ``None``."""

    journal_ref: str | None = None
    """The journal reference, or ``None``."""

    doi: str | None = None
    """The bare DOI (``10.1109/...``), or ``None``."""

    abs_url: str = ""
    """Link to the abstract page of this version."""

    pdf_url: str = ""
    """Link to the PDF of this version."""

    announce_type: str = "api"
    """How the paper arrived: ``new``, ``cross``, ``replace``, ``replace-cross`` (RSS),
    ``api`` (hydration or backfill), ``import`` (a JSONL file) or ``demo``."""

    listed_date: str | None = None
    """The day (YYYY-MM-DD) of the daily listing the paper arrived in, when known."""

    def with_changes(self, **changes) -> "Paper":
        """A copy with some fields replaced (the dataclass is frozen)."""
        return replace(self, **changes)

    @property
    def versioned_id(self) -> str:
        """``2506.01234v2``."""
        return f"{self.arxiv_id}v{self.version}"


# C0 controls, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates that
# can make a terminal or a page show text in another order than it is stored.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n?|[\x85\u2028\u2029]")


def strip_controls(text: str | None, keep: str = "") -> str:
    """``text`` without control characters (C0, DEL, C1, bidi overrides), except those in
    ``keep`` (e.g. ``"\\n\\t"`` for notes). CR, CRLF and Unicode line separators count as a
    newline, so notes from any platform keep their lines."""
    text = _LINE_BREAKS.sub("\n", text or "") if "\n" in keep else (text or "")
    return _CONTROLS.sub(lambda match: match.group() if match.group() in keep else "", text)


def find_control(text: str) -> str | None:
    """The first control character in ``text`` (see ``strip_controls``), or None."""
    match = _CONTROLS.search(text)
    return match.group() if match else None


def clean_text(text: str | None) -> str:
    """One line of untrusted text: control characters dropped, the hard line breaks and runs
    of spaces arXiv sends collapsed into single spaces."""
    return " ".join(strip_controls(" ".join((text or "").split())).split())
