"""arXiv sources: the RSS listing feed, the API (the ``arxiv`` package) and JSONL files → ``Paper``.

Every request goes through one ``Transport``: one connection, at least
``delay_seconds`` between requests, a deadline on each (connect, headers and the whole
body), a cap on the size of each answer, retries with exponential backoff on timeouts,
resets, 429 (honouring ``Retry-After``), 5xx and truncated or malformed bodies, and a
budget for the time all retries of a run may wait. A bad entry is logged and skipped; the
rest of the page is kept. ``build_paper`` is the one place a ``Paper`` is made, and it caps
every text field (``FIELD_LIMITS``).
"""
from __future__ import annotations

import itertools
import json
import logging
import lzma
import random
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

import arxiv
import feedparser
import requests
from arxiv import _feed as arxiv_feed
from lxml import etree

from pipeline.core.settings import ConfigError, Settings
from pipeline.stages.http import BodyTooLarge, DeadlineAdapter, http_request, mebibytes
from pipeline.core.paper import InvalidArxivId, Paper, abs_url, clean_text, pdf_url, split_id

log = logging.getLogger(__name__)

USER_AGENT = "octet/0.1 (arXiv reading tracker; https://github.com/octet)"
MAX_RETRY_AFTER_SECONDS = 600.0
"""The longest one ``Retry-After`` is honoured; all waits of a run share ``http_retry_budget``."""

FIELD_LIMITS = {"title": 2_000, "abstract": 20_000, "author": 1_000, "authors": 10_000,
                "comment": 5_000, "journal_ref": 1_000, "category": 100, "categories": 100}
"""The most ``build_paper`` keeps of a field: characters, or items for ``authors`` and
``categories``. Far above real data (arXiv abstracts are at most 1,920 characters, the
longest author lists about 5,000 names); a longer value is cut, with a logged note."""


class ArxivUnreachable(RuntimeError):
    """arXiv did not give a usable answer after every retry (exit code 3)."""

    def __init__(self, message: str, url: str = "", tries: int = 0):
        super().__init__(message)
        self.url = url
        """The request that failed."""
        self.tries = tries
        """How many attempts were made."""
        self.report: dict | None = None
        """The run's report, once the run that failed has recorded it."""

    @property
    def brief(self) -> str:
        """``no answer from rss.arxiv.org after 2 tries``: for one-line notices."""
        from urllib.parse import urlparse
        return f"no answer from {urlparse(self.url).netloc or self.url} after {self.tries} tries"


class ArxivRequestError(RuntimeError):
    """arXiv answered that the request itself is wrong (a 4xx other than 429)."""


class ResponseTooLarge(ArxivRequestError):
    """arXiv's answer was longer than ``http_max_bytes``: refused, not retried (the same
    request would get as large an answer again)."""


class MalformedResponse(ValueError):
    """A body that is truncated or not the XML we asked for: retried, never half-stored."""


class FeedError(ConfigError):
    """The RSS feed answered with its error feed (an unknown category): exit 2."""


class BadEntry(ValueError):
    """One entry that cannot become a Paper; logged and skipped."""


class DamagedFile(ValueError):
    """An input file that cannot be read to its end (a truncated .xz/.gz): the lines
    before the damage were read; the rest is lost."""


# ---- transport ---------------------------------------------------------------

class Transport:
    """Polite HTTP GET: pacing, a deadline and a size cap on each request, retries with
    backoff within a budget of waiting, body checks."""

    def __init__(self, delay_seconds: float = 3.0, timeout_seconds: float = 60.0,
                 num_retries: int = 5, sleep: Callable[[float], None] = time.sleep,
                 max_body_bytes: int = 32 * 1024 * 1024, retry_budget: float = 600.0):
        self.delay_seconds = delay_seconds
        self.timeout_seconds = timeout_seconds
        """The deadline of one request: connect, headers and the whole body."""
        self.num_retries = num_retries
        self.sleep = sleep
        self.max_body_bytes = max_body_bytes
        self.retry_budget = retry_budget
        """Seconds all retry waits of this transport (one run) may add up to."""
        self.waited = 0.0
        """Seconds spent waiting before retries so far."""
        self.session = requests.Session()
        # One connection at a time, as arXiv's terms ask.
        adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=1)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self._last_request_end: float | None = None
        self.request_times: list[float] = []
        """Start time (monotonic) of every request made, for reports and tests."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "Transport":
        options = dict(delay_seconds=settings.arxiv_delay,
                       timeout_seconds=settings.http_timeout,
                       num_retries=settings.http_retries,
                       max_body_bytes=settings.http_max_bytes,
                       retry_budget=settings.http_retry_budget)
        options.update(overrides)
        return cls(**options)

    def _pace(self) -> None:
        if self._last_request_end is None:
            return
        wait = self.delay_seconds - (time.monotonic() - self._last_request_end)
        if wait > 0:
            self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        base = max(self.delay_seconds, 0.1)
        return min(60.0, base * (2 ** attempt)) * (0.8 + 0.4 * random.random())

    def get(self, url: str, check: Callable[[bytes], None] | None = None) -> bytes:
        """The body of ``url``; ``check`` raises ``MalformedResponse`` for a bad body."""
        last_error = "no attempt"
        for attempt in range(self.num_retries + 1):
            body, last_error, wait = self._attempt(url, check, attempt)
            if body is not None:
                return body
            log.warning("request %s failed (%s); try %d of %d", url, last_error,
                        attempt + 1, self.num_retries + 1)
            if attempt < self.num_retries:
                self._wait(wait, url, last_error, attempt + 1)
        raise ArxivUnreachable(
            f"arXiv could not be reached at {url} after {self.num_retries + 1} tries "
            f"({last_error}); check the network (or OCTET_ARXIV_RSS_URL / OCTET_ARXIV_API_URL) "
            f"and run again — nothing stored was changed",
            url=url, tries=self.num_retries + 1)

    def _attempt(self, url: str, check: Callable[[bytes], None] | None,
                 attempt: int) -> tuple[bytes | None, str, float]:
        """One request: ``(body, "", 0)``, or ``(None, what went wrong, seconds to wait)``."""
        self._pace()
        self.request_times.append(time.monotonic())
        try:
            response, body = http_request(self.session, "GET", url, seconds=self.timeout_seconds,
                                          max_bytes=self.max_body_bytes)
        except BodyTooLarge as error:
            log.warning("request %s refused: %s", url, error)
            raise ResponseTooLarge(
                f"arXiv's answer for {url} is over {mebibytes(self.max_body_bytes)}; nothing "
                "of it was stored (raise http_max_bytes, OCTET_HTTP_MAX_BYTES, if it is real)"
            ) from None
        except requests.RequestException as error:
            return None, f"{type(error).__name__}: {error}", self._backoff(attempt)
        finally:
            self._last_request_end = time.monotonic()
        return self._judge(url, response, body, check, self._backoff(attempt))

    def _judge(self, url: str, response: requests.Response, body: bytes,
               check: Callable[[bytes], None] | None, wait: float) -> tuple[bytes | None, str, float]:
        status = response.status_code
        if status == 429 or status >= 500:
            return None, f"HTTP {status}", max(wait, _retry_after(response.headers.get("Retry-After")))
        if status != 200:
            raise ArxivRequestError(f"arXiv answered HTTP {status} for {url}: "
                                    f"{_error_summary(body)}")
        try:
            if check:
                check(body)
        except MalformedResponse as error:
            return None, f"malformed response: {error}", wait
        return body, "", 0.0

    def _wait(self, seconds: float, url: str, last_error: str, tries: int) -> None:
        """Sleep before a retry if the run's retry budget still holds the wait."""
        if self.waited + seconds > self.retry_budget:
            raise ArxivUnreachable(
                f"arXiv could not be reached at {url} after {tries} tries ({last_error}); the "
                f"retry budget of this run is spent ({self.waited:.0f} of {self.retry_budget:g} s "
                f"waited, {seconds:.0f} s more asked; http_retry_budget, "
                "OCTET_HTTP_RETRY_BUDGET): run again later — nothing stored was changed",
                url=url, tries=tries)
        self.waited += seconds
        self.sleep(seconds)


def _retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _error_summary(body: bytes) -> str:
    match = re.search(rb"<summary>(.*?)</summary>", body or b"", re.S)
    text = match.group(1) if match else (body or b"")[:200]
    return clean_text(text.decode("utf-8", "replace")) or "no detail"


def check_xml(root_tag: str) -> Callable[[bytes], None]:
    """A body check: strict well-formed XML whose root element is ``root_tag``."""
    def check(body: bytes) -> None:
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False,
                                                           no_network=True))
        except etree.XMLSyntaxError as error:
            raise MalformedResponse(f"not well-formed XML ({error})") from None
        if etree.QName(root).localname != root_tag:
            raise MalformedResponse(f"expected <{root_tag}>, got <{etree.QName(root).localname}>")
    return check


# ---- the one place a Paper is built --------------------------------------------

def build_paper(*, arxiv_id: str, title: str, version: int | None = None,
                authors: Iterable[str] = (), abstract: str | None = "",
                categories: Iterable[str] = (), primary_category: str | None = None,
                published: datetime | None = None, updated: datetime | None = None,
                comment: str | None = None, journal_ref: str | None = None,
                doi: str | None = None, announce_type: str = "api",
                listed_date: str | None = None) -> Paper:
    """Validate and normalize one record from any source; raises ``BadEntry``. Every text
    field is cleaned and capped (``FIELD_LIMITS``, with a logged note)."""
    try:
        bare_id, id_version = split_id(arxiv_id)
    except InvalidArxivId as error:
        raise BadEntry(str(error)) from None
    version = version or id_version or 1
    title = _capped(bare_id, "title", clean_text(title))
    if not title:
        raise BadEntry(f"{bare_id}: no title")
    categories, primary = _categories(bare_id, categories, primary_category)
    if listed_date:
        try:
            listed_date = date.fromisoformat(str(listed_date)[:10]).isoformat()
        except ValueError:
            raise BadEntry(f"{bare_id}: listed date {listed_date!r} is not YYYY-MM-DD") from None
    return Paper(
        arxiv_id=bare_id, version=int(version), title=title,
        authors=_authors(bare_id, authors),
        abstract=_capped(bare_id, "abstract", clean_text(abstract)), categories=categories,
        primary_category=primary, published=_utc(published), updated=_utc(updated),
        comment=_capped(bare_id, "comment", clean_text(comment)) or None,
        journal_ref=_capped(bare_id, "journal_ref", clean_text(journal_ref)) or None,
        doi=clean_text(doi) or None, abs_url=abs_url(bare_id, version),
        pdf_url=pdf_url(bare_id, version), announce_type=announce_type,
        listed_date=listed_date)


def _capped(arxiv_id: str, name: str, text: str) -> str:
    """``text`` cut to ``FIELD_LIMITS[name]`` characters (ending in "…"), with a note."""
    limit = FIELD_LIMITS[name]
    if len(text) <= limit:
        return text
    log.warning("%s: %s cut from %d to %d characters", arxiv_id, name, len(text), limit)
    return text[:limit - 1] + "…"


def _first(arxiv_id: str, name: str, items: Iterable[str]) -> list[str]:
    """The first ``FIELD_LIMITS[name]`` items, with a note when there were more."""
    limit = FIELD_LIMITS[name]
    kept = list(itertools.islice(items, limit + 1))
    if len(kept) > limit:
        log.warning("%s: %s cut to the first %d", arxiv_id, name, limit)
    return kept[:limit]


def _authors(arxiv_id: str, names: Iterable[str]) -> tuple[str, ...]:
    cleaned = (clean_text(name) for name in names if name)
    return tuple(_capped(arxiv_id, "author", name)
                 for name in _first(arxiv_id, "authors", (name for name in cleaned if name)))


def _categories(arxiv_id: str, categories: Iterable[str],
                primary_category: str | None) -> tuple[tuple[str, ...], str]:
    """``(categories, primary)``: cleaned, each once, the primary first, capped."""
    cleaned = (clean_text(category) for category in categories if category)
    listed = list(dict.fromkeys(category for category in cleaned if category))
    primary = clean_text(primary_category) or (listed[0] if listed else "")
    ordered = [primary, *[c for c in listed if c != primary]] if primary else listed
    kept = (_capped(arxiv_id, "category", category)
            for category in _first(arxiv_id, "categories", iter(ordered)))
    kept = tuple(dict.fromkeys(kept))
    return kept, kept[0] if primary else ""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(
        timezone.utc)


# ---- RSS listing feed -----------------------------------------------------------

@dataclass
class Listing:
    """One day's RSS listing for the configured categories."""

    papers: list[Paper] = field(default_factory=list)
    """Each announced paper once (a paper listed in several categories is one paper)."""
    announced: int = 0
    """Items in the feed, before merging duplicates and skipping bad entries."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Item id (or position) → why it was skipped."""
    feed_date: date | None = None
    """The announcement day the feed is for (its pubDate, US Eastern)."""
    weekend: bool = False
    """True when the feed is for a Saturday or Sunday, when arXiv announces nothing."""


_ABSTRACT_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*Abstract:\s*", re.S)


def parse_rss(body: bytes) -> Listing:
    """Parse an RSS 2.0 listing feed; raises ``FeedError`` for arXiv's error feed."""
    parsed = feedparser.parse(body)
    title = parsed.feed.get("title", "")
    if title.startswith("Feed error"):
        raise FeedError(f"arXiv rejected the categories ({clean_text(parsed.feed.get('subtitle', ''))}); "
                        "fix OCTET_CATEGORIES or `categories` in config.toml")
    listing = Listing(announced=len(parsed.entries), feed_date=_feed_date(parsed))
    if listing.feed_date:
        listing.weekend = listing.feed_date.weekday() >= 5
    for position, entry in enumerate(parsed.entries):
        try:
            listing.papers.append(_paper_from_rss(entry, listing.feed_date))
        except (BadEntry, KeyError, TypeError, ValueError) as error:
            key = entry.get("id") or f"item {position + 1}"
            log.warning("skipping RSS entry %s: %s", key, error)
            listing.skipped[key] = str(error)
    return listing


def _feed_date(parsed) -> date | None:
    stamp = parsed.feed.get("published") or parsed.feed.get("updated")
    if not stamp:
        return None
    try:
        return parsedate_to_datetime(stamp).date()
    except (TypeError, ValueError):
        return None


def _paper_from_rss(entry, feed_date: date | None) -> Paper:
    raw_id = entry.get("id") or entry.get("link") or ""
    abstract = _ABSTRACT_PREFIX.sub("", entry.get("summary", ""))
    creators = entry.get("author", "")
    return build_paper(
        arxiv_id=raw_id, title=entry.get("title", ""),
        authors=[name for name in creators.split(", ")] if creators else (),
        abstract=abstract, categories=[tag.get("term", "") for tag in entry.get("tags", [])],
        journal_ref=entry.get("arxiv_journal_reference"), doi=entry.get("arxiv_doi"),
        announce_type=entry.get("arxiv_announce_type") or "new",
        listed_date=feed_date.isoformat() if feed_date else None)


def fetch_feed(transport: Transport, settings: Settings) -> bytes:
    """The raw RSS feed of today's listing for the configured categories (checked XML)."""
    return transport.get(settings.rss_url(), check=check_xml("rss"))


# ---- arXiv API --------------------------------------------------------------------

class _TransportClient(arxiv.Client):
    """The ``arxiv`` package's client with our transport underneath (it sends no
    timeout and knows nothing of Retry-After or truncated bodies)."""

    def __init__(self, transport: Transport, api_url: str, page_size: int):
        super().__init__(page_size=page_size, delay_seconds=0, num_retries=0)
        self.transport = transport
        self.query_url_format = api_url + "?{}"

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0):
        def check(body: bytes) -> None:
            check_xml("feed")(body)
            if not first_page and b"<entry" not in body:
                raise MalformedResponse("unexpected empty page")
        return arxiv_feed.parse(self.transport.get(url, check=check))


def paper_from_result(result: arxiv.Result, announce_type: str = "api",
                      listed_date: str | None = None) -> Paper:
    """An API result → ``Paper`` (through ``build_paper``)."""
    return build_paper(
        arxiv_id=result.entry_id, title=result.title,
        authors=[author.name for author in result.authors], abstract=result.summary,
        categories=result.categories, primary_category=result.primary_category,
        published=result.published, updated=result.updated, comment=result.comment,
        journal_ref=result.journal_ref, doi=result.doi, announce_type=announce_type,
        listed_date=listed_date)


def hydrate(transport: Transport, settings: Settings, arxiv_ids: list[str]) -> Iterator[list[Paper]]:
    """Full API records for ids, one list per batch of ``settings.api_batch_size``."""
    size = max(1, settings.api_batch_size)
    for start in range(0, len(arxiv_ids), size):
        batch = arxiv_ids[start:start + size]
        client = _TransportClient(transport, settings.arxiv_api_url, page_size=len(batch))
        search = arxiv.Search(id_list=batch, max_results=len(batch))
        yield list(_results_to_papers(client.results(search)))


def _results_to_papers(results: Iterable[arxiv.Result]) -> Iterator[Paper]:
    for result in results:
        try:
            yield paper_from_result(result)
        except BadEntry as error:
            log.warning("skipping API entry %s: %s", result.entry_id, error)


def backfill(transport: Transport, settings: Settings, since: date, until: date,
             page_size: int = 200) -> Iterator[list[Paper]]:
    """Papers submitted in [since, until] in the configured categories, one list per page."""
    categories = " OR ".join(f"cat:{category}" for category in settings.categories)
    window = f"submittedDate:[{since:%Y%m%d}0000 TO {until:%Y%m%d}2359]"
    search = arxiv.Search(query=f"({categories}) AND {window}", max_results=None,
                          sort_by=arxiv.SortCriterion.SubmittedDate,
                          sort_order=arxiv.SortOrder.Ascending)
    client = _TransportClient(transport, settings.arxiv_api_url, page_size=page_size)
    page: list[Paper] = []
    for paper in _results_to_papers(client.results(search)):
        page.append(paper)
        if len(page) >= page_size:
            yield page
            page = []
    if page:
        yield page


# ---- JSONL files --------------------------------------------------------------------

def open_jsonl(path: Path):
    """A JSON-lines file as text lines, decompressed by its suffix (.xz, .gz). Bytes that
    are not UTF-8 survive as surrogates, so ``read_jsonl`` reports and skips that one line
    instead of the whole file failing."""
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    if path.suffix == ".gz":
        import gzip
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape")
    return open(path, encoding="utf-8", errors="surrogateescape")


def read_jsonl(lines: Iterable[str], announce_type: str = "import"
               ) -> Iterator[tuple[int, Paper | None, str | None]]:
    """``(line number, paper or None, error or None)`` per non-blank line.

    Reads Octet's own listing format (``id``, ``title``, ``authors`` list,
    ``categories`` list, ``abstract``, ``comment``, ``listed_date``) and arXiv's
    public metadata snapshot (``categories`` as one string, ``authors`` as one
    string, ``versions``, ``update_date``, ``journal-ref``, ``doi``). A file that
    cannot be read to its end (a truncated .xz/.gz) raises ``DamagedFile`` after the
    lines before the damage.
    """
    numbered = enumerate(lines, start=1)
    number = 0
    while True:
        try:
            number, line = next(numbered)
        except StopIteration:
            return
        except (EOFError, OSError, lzma.LZMAError, zlib.error) as error:
            raise DamagedFile(f"line {number + 1}: the file cannot be read from here on "
                              f"({type(error).__name__}: {error}); the lines before it are "
                              "kept") from error
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise BadEntry("not a JSON object")
            yield number, paper_from_record(row, announce_type), None
        except (json.JSONDecodeError, BadEntry, TypeError, ValueError, KeyError,
                RecursionError) as error:  # RecursionError: JSON nested too deeply
            yield number, None, f"line {number}: {error}"


def paper_from_record(row: dict, announce_type: str = "import") -> Paper:
    """One JSON record (either format) → ``Paper``; wrong types are a ``BadEntry``."""
    raw_id = _field(row, "id") or _field(row, "arxiv_id")
    if not raw_id:
        raise BadEntry("no 'id' field")
    categories = _string_list(row, "categories")
    authors = row.get("authors")
    authors = _split_author_string(authors) if isinstance(authors, str) else _string_list(
        row, "authors")
    versions = row.get("versions") or []
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        raise BadEntry("'versions' must be a list of objects")
    return _storable(build_paper(
        arxiv_id=raw_id, version=len(versions) or None, title=_field(row, "title") or "",
        authors=authors, abstract=_field(row, "abstract"), categories=categories,
        primary_category=_field(row, "primary_category"),
        published=_snapshot_date(versions[0]) if versions else None,
        updated=_snapshot_date(versions[-1]) if versions else None,
        comment=_field(row, "comment"),
        journal_ref=_field(row, "journal-ref") or _field(row, "journal_ref"),
        doi=_field(row, "doi"), announce_type=announce_type,
        listed_date=_field(row, "listed_date") or _field(row, "update_date")))


_MAX_VERSION = 2**31 - 1  # the papers.version column is an INTEGER


def _storable(paper: Paper) -> Paper:
    """The paper, if the database can store it: an ASCII id, a version that fits, and
    text that is valid Unicode (JSON's ``\\ud800`` escapes and bytes that are not UTF-8
    give lone surrogates); else a ``BadEntry``."""
    if not paper.arxiv_id.isascii():
        raise BadEntry(f"{paper.arxiv_id!r} is not an arXiv id (digits must be 0-9)")
    if paper.version > _MAX_VERSION:
        raise BadEntry(f"{paper.arxiv_id}: version {paper.version} is not a version number")
    texts = (paper.title, paper.abstract, paper.comment, paper.journal_ref, paper.doi,
             paper.primary_category, paper.listed_date, *paper.authors, *paper.categories)
    for text in texts:
        if text and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadEntry(f"{paper.arxiv_id}: text that is not valid UTF-8 "
                               f"({text[:40]!r})") from None
    return paper


def _field(row: dict, name: str) -> str | None:
    value = row.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadEntry(f"'{name}' must be a string, not {type(value).__name__}")


def _string_list(row: dict, name: str) -> list[str]:
    value = row.get(name) or []
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadEntry(f"'{name}' must be a list of strings (or one string)")
    return value


def _split_author_string(text: str) -> list[str]:
    text = re.sub(r"\s+and\s+", ", ", clean_text(text))
    return [name.strip() for name in text.split(",") if name.strip()]


def _snapshot_date(version: dict) -> datetime | None:
    stamp = version.get("created")
    try:
        return _utc(parsedate_to_datetime(stamp)) if isinstance(stamp, str) and stamp else None
    except (TypeError, ValueError, IndexError, OverflowError):  # 9999-12-31 -2359 overflows
        return None
