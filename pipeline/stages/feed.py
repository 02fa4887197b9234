"""The Atom 1.0 feed (RFC 4287) that ``octet feed`` writes: the weekly picks of the last
``PICK_WEEKS`` weeks, and the top papers of each family in this week's digest.

Every entry's id is a ``urn:uuid:`` derived from what it is about (the pick's week, the
paper's arXiv id) and nothing else, so it is the same in every run and on every machine
and a feed reader never shows an entry twice.

Paper, model and reader text is untrusted. The XML is built with ElementTree, which
escapes every text and attribute, so a title such as ``</title>`` or ``]]>`` stays text;
what XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF) and
the bidi overrides are dropped first (``xml_text``), and the texts are the capped ones of
the digest (``DigestPaper``). The HTML shown by feed readers is built as elements too,
then carried escaped in ``<content type="html">``.
"""
from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from pipeline.core import weeks
from pipeline.core.families import BY_CODE
from pipeline.core.paper import strip_controls
from pipeline.core.settings import Settings
from pipeline.stages.digest import (WHY_CHARS, Digest, DigestPaper, papers_of, build_digest,
                                    cut)
from storage import reading

ATOM = "http://www.w3.org/2005/Atom"
"""The Atom namespace."""

FEED_TITLE = "Octet — one paper a week"
"""The feed's title."""

FEED_SUBTITLE = ("The paper of each week, and the top new papers of each model family, "
                 "with their TL;DR.")
"""The feed's subtitle."""

PICK_WEEKS = 12
"""How many weeks of picks the feed carries (this week and the ones before)."""

ID_NAMESPACE = uuid.NAMESPACE_URL
"""The uuid5 namespace of every id; with the names below it fixes the ids for good."""

# What XML 1.0 allows (its Char production) is tab, newline, carriage return and the rest of
# Unicode but the surrogates and U+FFFE/U+FFFF; anything else makes the document ill-formed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedEntry:
    """One entry of the feed: a weekly pick or a paper of the digest's family sections."""

    entry_id: str
    """Its stable ``urn:uuid:`` id."""

    title: str
    """The entry's title (``Week 2026-W49: <title>`` for a pick, the paper's title else)."""

    paper: DigestPaper
    """The paper, as the digest shows it (capped texts, links, families, TL;DR, why)."""

    published: datetime
    """When it first appeared: the pick was made, or the paper was published on arXiv."""

    updated: datetime
    """When it last changed: the pick was started or read, or the paper was listed."""

    status: str = ""
    """For a pick: whether it was read (``Read on 2026-12-03``, ``Not read yet`` …)."""

    why_label: str = "Why"
    """What the ``why`` line is called in the entry's HTML."""


@dataclass(frozen=True)
class Feed:
    """Everything the feed says."""

    app_url: str
    """The app's address: the feed's alternate link and the seed of its id."""

    updated: datetime
    """The newest entry's ``updated`` (when there is none: when the feed was built)."""

    entries: tuple[FeedEntry, ...]
    """The picks, newest first, then the family sections' papers in the digest's order."""


def build_feed(settings: Settings, now: datetime | None = None) -> Feed:
    """The feed of what is stored: builds this week's digest (which proposes the week's
    pick when it has none, as ``octet digest`` does) and reads the stored picks."""
    digest = build_digest(settings, now=now)
    entries = (*pick_entries(settings, digest), *paper_entries(settings, digest))
    newest = max((entry.updated for entry in entries), default=digest.generated_at)
    return Feed(app_url=digest.app_url, updated=newest, entries=entries)


def entry_id(kind: str, key: str) -> str:
    """``urn:uuid:`` of uuid5 over ``octet:<kind>:<key>``: the same for the same pick or
    paper in every run and on every machine."""
    return f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, f'octet:{kind}:{key}')}"


def pick_entries(settings: Settings, digest: Digest) -> list[FeedEntry]:
    """One entry per stored pick of the last ``PICK_WEEKS`` weeks, newest first."""
    oldest = weeks.week_of(weeks.week_monday(digest.week) - timedelta(weeks=PICK_WEEKS - 1))
    stored = [row for row in reading.all_picks(settings.db_path)
              if oldest <= row["week"] <= digest.week]
    picks = [reading.get_pick(settings.db_path, row["week"]) for row in reversed(stored)]
    picks = [pick for pick in picks if pick]
    papers = papers_of(settings, [pick["arxiv_id"] for pick in picks])
    return [_pick_entry(pick, papers[pick["arxiv_id"]]) for pick in picks
            if pick["arxiv_id"] in papers]


def _pick_entry(pick: dict, paper: DigestPaper) -> FeedEntry:
    why = pick.get("reason") or ("Chosen by you." if pick["chosen_by"] == "reader" else "")
    picked = moment(pick["picked_at"]) or moment(pick["listed_date"])
    changes = [moment(pick.get(name)) for name in ("started_at", "read_on")]
    return FeedEntry(
        entry_id=entry_id("pick", pick["week"]), title=f"Week {pick['week']}: {paper.title}",
        paper=replace(paper, why=cut(why, WHY_CHARS)), published=picked,
        updated=max([picked, *(change for change in changes if change)]),
        status=pick_status(pick), why_label="Why this one")


def pick_status(pick: dict) -> str:
    """Whether the week's paper was read, in words."""
    if pick["status"] == "read":
        return f"Read on {pick['read_on']}" if pick.get("read_on") else "Read"
    if pick["status"] == "skipped":
        return "Skipped"
    if pick.get("started_at"):
        return f"Reading (started {str(pick['started_at'])[:10]})"
    return "Not read yet"


def paper_entries(settings: Settings, digest: Digest) -> list[FeedEntry]:
    """One entry per paper of the digest's family sections, in the digest's order."""
    papers = [paper for section in digest.sections for paper in section.papers]
    cards = reading.cards(settings.db_path, [paper.arxiv_id for paper in papers])
    monday = moment(weeks.week_monday(digest.week).isoformat())
    return [_paper_entry(paper, cards.get(paper.arxiv_id, {}), monday) for paper in papers]


def _paper_entry(paper: DigestPaper, card: dict, fallback: datetime) -> FeedEntry:
    published = moment(card.get("published")) or moment(card.get("listed_date")) or fallback
    listed = moment(card.get("listed_date")) or published
    return FeedEntry(entry_id=entry_id("paper", paper.arxiv_id), title=paper.title,
                     paper=paper, published=published, updated=max(published, listed))


def moment(value) -> datetime | None:
    """A stored time or day (ISO text, ``date`` or ``datetime``) as an aware UTC datetime;
    a day is its midnight UTC; None for nothing or what is not a time."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day)
    else:
        try:
            found = datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None
    if found is None:
        return None
    return found.replace(tzinfo=timezone.utc) if found.tzinfo is None else found.astimezone(
        timezone.utc)


def rfc3339(value: datetime) -> str:
    """``2026-12-01T08:00:00Z``: RFC 3339, in UTC, to the second."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def xml_text(text: str | None) -> str:
    """``text`` as XML 1.0 can carry it: without what XML forbids (C0 controls but tab,
    newline and carriage return; lone surrogates; U+FFFE, U+FFFF) and without the other
    control characters and bidi overrides (``strip_controls``)."""
    return strip_controls(_NOT_XML.sub("", text or ""), keep="\t\n")


def to_atom(feed: Feed) -> str:
    """The feed as an Atom 1.0 document (UTF-8, with its XML declaration)."""
    root = _element(None, "feed", xmlns=ATOM)
    _element(root, "id", f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, 'octet:feed:' + feed.app_url)}")
    _element(root, "title", FEED_TITLE, type="text")
    _element(root, "subtitle", FEED_SUBTITLE, type="text")
    _element(root, "updated", rfc3339(feed.updated))
    _element(_element(root, "author"), "name", "Octet")
    _element(root, "generator", "Octet")
    _element(root, "link", rel="alternate", type="text/html", href=feed.app_url)
    for entry in feed.entries:
        _entry(root, entry)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _element(parent: ET.Element | None, tag: str, text: str | None = None,
             **attributes: str) -> ET.Element:
    """An Atom element (the root declares the namespace; ElementTree cannot write a
    default namespace with the un-prefixed attributes Atom uses); its text and attributes
    cleaned by ``xml_text``."""
    attrib = {name: xml_text(value) for name, value in attributes.items()}
    element = ET.Element(tag, attrib) if parent is None else ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = xml_text(text)
    return element


def _entry(root: ET.Element, entry: FeedEntry) -> None:
    paper = entry.paper
    node = _element(root, "entry")
    _element(node, "id", entry.entry_id)
    _element(node, "title", entry.title, type="text")
    _element(node, "link", rel="alternate", type="text/html", href=paper.url)
    _element(node, "link", rel="related", type="text/html", href=paper.app_url,
             title="In Octet")
    _element(node, "published", rfc3339(entry.published))
    _element(node, "updated", rfc3339(entry.updated))
    for name in paper.authors:
        _element(_element(node, "author"), "name", name)
    for code in paper.families:
        _element(node, "category", term=code, label=BY_CODE[code].name)
    if paper.tldr:
        _element(node, "summary", paper.tldr, type="text")
    _element(node, "content", entry_html(entry), type="html")


def entry_html(entry: FeedEntry) -> str:
    """The entry as an HTML fragment for feed readers: TL;DR, why, whether it was read,
    authors, families and links. Built as elements, so no paper text can form markup."""
    paper = entry.paper
    body = ET.Element("div")
    _labelled(body, "TL;DR", paper.tldr or "No summary yet.")
    if paper.why:
        _labelled(body, entry.why_label, paper.why)
    if entry.status:
        _labelled(body, "Status", entry.status)
    if paper.authors:
        _labelled(body, "Authors", ", ".join(paper.authors) + (" et al." if paper.more_authors
                                                                else ""))
    if paper.families:
        _labelled(body, "Families", ", ".join(f"{code} ({BY_CODE[code].name})"
                                              for code in paper.families))
    links = ET.SubElement(body, "p")
    _link(links, paper.url, "arXiv abstract").tail = " · "
    _link(links, paper.app_url, "Open in Octet")
    return ET.tostring(body, encoding="unicode", method="html")


def _labelled(parent: ET.Element, label: str, text: str) -> None:
    """``<p><strong>label:</strong> text</p>``."""
    line = ET.SubElement(parent, "p")
    ET.SubElement(line, "strong").text = f"{label}:"
    line[0].tail = f" {xml_text(text)}"


def _link(parent: ET.Element, href: str, text: str) -> ET.Element:
    anchor = ET.SubElement(parent, "a", {"href": xml_text(href)})
    anchor.text = text
    return anchor
