"""The week's digest: what ``octet digest`` writes, mails, posts and the app shows.

One ``Digest`` is built from what is stored (``build_digest``) and rendered by
``pipeline.stages.digest_format`` as Markdown, plain text, HTML or JSON. It holds the
week's pick with its TL;DR and "why this one", the two runners-up, the top papers of each
family that arrived since the last digest (in the Inbox's "for you" order), the reader's
streak and family coverage, and last week's read with its rating and notes.

Every text in it comes from a paper, a model or the reader, so it is held here as plain
text, cut to a size a message can carry; each format escapes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import quote

from pipeline.core import weeks
from pipeline.core.families import CODES
from pipeline.core.paper import abs_url, clean_text, strip_controls
from pipeline.core.settings import Settings
from pipeline.stages.ranking import rank
from pipeline.stages.reading import ensure_pick, neglect_order
from storage import digests, reading
from storage.families import families_for
from storage.summaries import summary_for

TITLE_CHARS, TLDR_CHARS, WHY_CHARS, NOTES_CHARS = 300, 600, 300, 1500
"""The most characters of a title, TL;DR, reason and notes a digest carries (paper and
model text is untrusted: a title of a megabyte must not make a megabyte of mail)."""

ARRIVALS = 20000
"""The most papers of the window a digest ranks (newest first): a week is about 10,000."""

RUNNERS_UP = 2
"""How many runners-up the digest names."""


@dataclass(frozen=True)
class DigestPaper:
    """One paper as the digest shows it."""

    arxiv_id: str
    """The arXiv id without version."""

    title: str
    """The title on one line, cut to ``TITLE_CHARS``."""

    authors: tuple[str, ...]
    """Up to three author names (the rest are "et al.")."""

    more_authors: bool
    """Whether there are authors beyond those three."""

    families: tuple[str, ...]
    """Its family codes (empty: no family, or not classified yet)."""

    tldr: str
    """Its TL;DR (empty when it has no summary yet), cut to ``TLDR_CHARS``."""

    url: str
    """Its arXiv abstract page."""

    app_url: str
    """Its page in the Octet app (``<app_url>/?paper=ID``)."""

    why: str = ""
    """Why it is here: the pick's reason, or the Inbox's "why" line."""


@dataclass(frozen=True)
class FamilySection:
    """The top papers of one family that arrived since the last digest."""

    code: str
    """The family code (``LLM`` …)."""

    arrived: int
    """How many papers of this family arrived in the window."""

    papers: tuple[DigestPaper, ...]
    """The top ones in the Inbox's "for you" order."""


@dataclass(frozen=True)
class LastRead:
    """Last week's paper: read or not, with the reader's rating and notes."""

    paper: DigestPaper
    """The paper."""

    read: bool
    """Whether the reader marked it read."""

    rating: int | None
    """The reader's rating, 1-5."""

    notes: str
    """The reader's notes, cut to ``NOTES_CHARS`` (line breaks kept)."""


@dataclass(frozen=True)
class Digest:
    """Everything one week's digest says."""

    week: str
    """The ISO week, ``YYYY-Www``."""

    generated_at: datetime
    """When it was built (UTC)."""

    app_url: str
    """The app's address; every paper links to its page there."""

    pick: DigestPaper | None
    """The week's paper (None: nothing stored to pick from)."""

    pick_status: str = "pick"
    """``pick``, ``reading`` or ``read``."""

    runners_up: tuple[DigestPaper, ...] = ()
    """The two papers that came closest."""

    since: datetime | None = None
    """The start of the window the family sections cover (the last digest, else a week
    before the week's Monday)."""

    fresh: bool = True
    """False when nothing arrived in the window and the sections show the newest listing
    day instead."""

    arrived: int = 0
    """Untriaged papers that arrived in the window."""

    sections: tuple[FamilySection, ...] = ()
    """One section per family with papers, in the seed order."""

    streak: int = 0
    """Consecutive weeks read, ending this week (or last)."""

    longest_streak: int = 0
    """The longest run of read weeks."""

    papers_read: int = 0
    """Papers read in all."""

    coverage: dict[str, int] = field(default_factory=dict)
    """Papers read per family code (every family present, 0 when never read)."""

    next_family: str = ""
    """The family read least recently (never-read ones first): the one to read next."""

    last_week: LastRead | None = None
    """Last week's pick and what became of it."""

    @property
    def subject(self) -> str:
        """The mail subject and feed title: ``Octet 2026-W49: <pick title>``."""
        head = f"Octet {self.week}"
        return f"{head}: {cut(self.pick.title, 120)}" if self.pick else f"{head}: no paper yet"

    @property
    def app_week_url(self) -> str:
        """The app's This week page."""
        return self.app_url


def cut(text: str | None, most: int) -> str:
    """``text`` on one line without control characters, at most ``most`` characters (an ellipsis marks a cut)."""
    line = clean_text(text)
    return line if len(line) <= most else line[:most - 1].rstrip() + "…"


def cut_lines(text: str | None, most: int) -> str:
    """``text`` with its line breaks kept (at most 3 blank lines in a row), at most
    ``most`` characters."""
    lines = [clean_text(line) for line in strip_controls(text, keep="\n").strip().split("\n")]
    kept = "\n".join(lines)
    while "\n\n\n\n" in kept:
        kept = kept.replace("\n\n\n\n", "\n\n\n")
    return kept if len(kept) <= most else kept[:most - 1].rstrip() + "…"


def paper_app_url(app_url: str, arxiv_id: str) -> str:
    """The paper's page in the app."""
    return f"{app_url.rstrip('/')}/?paper={quote(arxiv_id, safe='./')}"


def build_digest(settings: Settings, week: str | None = None,
                 now: datetime | None = None) -> Digest:
    """The digest of ``week`` (default: this week in the reader's zone). For this week a
    pick is proposed first when the week has none (as ``octet run`` would)."""
    now = now or datetime.now(timezone.utc)
    this_week = weeks.current_week(settings.timezone, now)
    week = week or this_week
    db_path = settings.db_path
    pick = ensure_pick(settings, now) if week == this_week else reading.get_pick(db_path, week)
    # Shown as a date in the reader's zone; the same instant either way.
    since = window_start(settings, week).astimezone(weeks.reader_zone(settings.timezone))
    window = reading.inbox_candidates(db_path, since, ARRIVALS, window_end(settings, week, now))
    shown = {pick["arxiv_id"]} if pick else set()
    runner_ids = _runner_ids(settings, pick, shown)
    sections = _sections(settings, window["ids"], shown | set(runner_ids))
    papers = papers_of(settings, [*shown, *runner_ids,
                                *(p.arxiv_id for _, _, ranked in sections for p in ranked)])
    return Digest(
        week=week, generated_at=now, app_url=settings.app_url, pick=_pick_paper(pick, papers),
        pick_status=(pick or {}).get("status") or "pick",
        runners_up=tuple(papers[i] for i in runner_ids if i in papers),
        since=since, fresh=window["new"], arrived=window["total"],
        sections=tuple(FamilySection(code, count, tuple(_with_why(papers[p.arxiv_id], p.why)
                                                        for p in ranked if p.arxiv_id in papers))
                       for code, count, ranked in sections),
        **_habit(settings, week), last_week=_last_week(settings, week))


def _pick_paper(pick: dict | None, papers: dict[str, DigestPaper]) -> DigestPaper | None:
    if pick is None or pick["arxiv_id"] not in papers:
        return None
    return _with_why(papers[pick["arxiv_id"]], pick["reason"] or "Chosen by you.")


def window_start(settings: Settings, week: str) -> datetime:
    """Since the last digest of an earlier week went out; else since the Monday a week
    before ``week``'s, at midnight in the reader's zone."""
    last = digests.previous_digest_at(settings.db_path, week)
    if last is not None:
        return last
    return _midnight(weeks.week_monday(week) - timedelta(days=7), settings.timezone)


def window_end(settings: Settings, week: str, now: datetime) -> datetime:
    """The end of ``week`` (the next Monday, midnight in the reader's zone), or now."""
    end = _midnight(weeks.week_monday(week) + timedelta(days=7), settings.timezone)
    return min(end, now + timedelta(seconds=1))


def _midnight(day: date, zone_name: str) -> datetime:
    """The day's start in the reader's zone, in UTC."""
    start = datetime.combine(day, time(0), weeks.reader_zone(zone_name))
    return start.astimezone(timezone.utc)


def _runner_ids(settings: Settings, pick: dict | None, shown: set[str]) -> list[str]:
    """The pick's runners-up as proposed; when the reader chose the pick (no runners-up
    stored), the top of the queue."""
    stored = [i for i in (pick or {}).get("runners_up") or [] if i not in shown]
    if len(stored) < RUNNERS_UP:
        queued = [row["arxiv_id"] for row in reading.queue_list(settings.db_path)]
        stored += [i for i in queued if i not in shown and i not in stored]
    return stored[:RUNNERS_UP]


def _sections(settings: Settings, ids: list[str], shown: set[str]) -> list[tuple]:
    """``(code, papers of the family that arrived, its top papers)`` per family with any to
    show, in the seed order. A family's top papers are the Inbox's "for you" view of that
    family, less the papers shown above it (the pick, the runners-up, an earlier family):
    a paper is shown once, and a full section never hides one from the next family."""
    ranked = rank(settings.db_path, ids, "for you") if ids else []
    sections = []
    for code in CODES:
        members = [paper for paper in ranked if code in (paper.labels or ())]
        top = [paper for paper in members if paper.arxiv_id not in shown]
        top = top[:settings.digest_per_family]
        shown.update(paper.arxiv_id for paper in top)
        if top:
            sections.append((code, len(members), top))
    return sections


def papers_of(settings: Settings, ids: list[str]) -> dict[str, DigestPaper]:
    """The digest's view of each paper: card, families and TL;DR."""
    ids = list(dict.fromkeys(ids))
    cards = reading.cards(settings.db_path, ids)
    families = families_for(settings.db_path, ids)
    summaries = summary_for(settings.db_path, ids)
    return {i: _paper(settings, cards[i], families.get(i, {}), summaries.get(i) or {})
            for i in ids if i in cards}


def _paper(settings: Settings, card: dict, family: dict, summary: dict) -> DigestPaper:
    authors = [cut(name, 80) for name in card.get("authors") or []]
    return DigestPaper(
        arxiv_id=card["arxiv_id"], title=cut(card["title"], TITLE_CHARS),
        authors=tuple(authors[:3]), more_authors=len(authors) > 3,
        families=tuple(code for code in family.get("labels") or () if code in CODES),
        tldr=cut(summary.get("tldr"), TLDR_CHARS), url=abs_url(card["arxiv_id"]),
        app_url=paper_app_url(settings.app_url, card["arxiv_id"]))


def _with_why(paper: DigestPaper, why: str) -> DigestPaper:
    return DigestPaper(**{**paper.__dict__, "why": cut(why, WHY_CHARS)})


def _habit(settings: Settings, week: str) -> dict:
    """Streak, papers read, reads per family and the family to read next, as they stood
    in ``week`` (a past week's digest leaves out what was read after it). The streak
    counts the weeks whose pick was read, as the app and ``octet status`` do."""
    history = [row for row in reading.read_history(settings.db_path)
               if (row["week"] or "") <= week]
    read_weeks = {read for read in reading.read_weeks(settings.db_path) if read <= week}
    labels = families_for(settings.db_path, [row["arxiv_id"] for row in history])
    read_labels = [(row["week"] or "", tuple(labels.get(row["arxiv_id"], {}).get("labels", ())))
                   for row in history]
    coverage = {code: sum(code in found for _, found in read_labels) for code in CODES}
    return {"streak": weeks.streak(read_weeks, week),
            "longest_streak": weeks.longest_streak(read_weeks),
            "papers_read": len(history), "coverage": coverage,
            "next_family": neglect_order(read_labels)[0]}


def _last_week(settings: Settings, week: str) -> LastRead | None:
    pick = reading.get_pick(settings.db_path, weeks.previous_week(week))
    if pick is None:
        return None
    paper = papers_of(settings, [pick["arxiv_id"]]).get(pick["arxiv_id"])
    if paper is None:
        return None
    return LastRead(paper=paper, read=pick["status"] == "read", rating=pick.get("rating"),
                    notes=cut_lines(pick.get("notes"), NOTES_CHARS))
