"""A local HTTP server that speaks arXiv: RSS listing feeds and the API, in arXiv's exact
formats, built from real papers (tests/fixtures/listings_slice.jsonl.xz) or replaying the recorded responses
in tests/fixtures/arxiv, with faults that tests can script."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

RSS_HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>{cats} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{cats}</link>
    <description>{cats} updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/{cats}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{build}</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{pub}</pubDate>
    <skipDays>
      <day>Saturday</day>
      <day>Sunday</day>
    </skipDays>
"""

RSS_ITEM = """    <item>
      <title>{title}</title>
      <link>https://arxiv.org/abs/{id}</link>
      <description>arXiv:{id}v{version} Announce Type: {kind} 
Abstract: {abstract}</description>
      <guid isPermaLink="false">oai:arXiv.org:{id}v{version}</guid>
{categories}      <pubDate>{pub}</pubDate>
      <arxiv:announce_type>{kind}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{authors}</dc:creator>
    </item>
"""

ATOM_HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/octet-replay</id>
  <title>arXiv Query: {query}</title>
  <updated>{now}</updated>
  <link href="https://arxiv.org/api/query?{query}" type="application/atom+xml"/>
  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
"""

ATOM_ENTRY = """  <entry>
    <id>http://arxiv.org/abs/{id}v{version}</id>
    <title>{title}</title>
    <updated>{updated}</updated>
    <link href="https://arxiv.org/abs/{id}v{version}" rel="alternate" type="text/html"/>
    <link href="https://arxiv.org/pdf/{id}v{version}" rel="related" type="application/pdf" title="pdf"/>
    <summary>{abstract}</summary>
{categories}    <published>{published}</published>
{comment}    <arxiv:primary_category term="{primary}"/>
{authors}{doi}  </entry>
"""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReplayPaper:
    """A real paper as the replay server serves it (one version)."""

    row: dict
    version: int = 1
    kind: str = "new"

    @property
    def arxiv_id(self) -> str:
        return self.row["id"]

    def submitted(self) -> datetime:
        listed = date.fromisoformat(self.row.get("listed_date") or "2025-06-02")
        return datetime(listed.year, listed.month, listed.day, 13, 0, tzinfo=timezone.utc) \
            - timedelta(days=1)


def rss_feed(papers: list[ReplayPaper], day: date, cats: str) -> bytes:
    pub = format_datetime(datetime(day.year, day.month, day.day,
                                   tzinfo=timezone(timedelta(hours=-4))))
    build = format_datetime(datetime(day.year, day.month, day.day, 4, tzinfo=timezone.utc))
    parts = [RSS_HEAD.format(cats=cats, build=build, pub=pub)]
    for paper in papers:
        row = paper.row
        parts.append(RSS_ITEM.format(
            title=escape(row["title"]), id=row["id"], version=paper.version, kind=paper.kind,
            abstract=escape(row["abstract"]), pub=pub, authors=escape(", ".join(row["authors"])),
            categories="".join(f"      <category>{escape(c)}</category>\n"
                               for c in row["categories"])))
    parts.append("  </channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


def atom_feed(papers: list[ReplayPaper], query: str, start: int, total: int,
              per_page: int) -> bytes:
    parts = [ATOM_HEAD.format(query=escape(query), now=_stamp(datetime.now(timezone.utc)),
                              per_page=per_page, total=total, start=start)]
    for paper in papers:
        row = paper.row
        submitted = paper.submitted()
        parts.append(ATOM_ENTRY.format(
            id=row["id"], version=paper.version, title=escape(row["title"]),
            updated=_stamp(submitted + timedelta(days=paper.version - 1)),
            published=_stamp(submitted), abstract=escape(row["abstract"]),
            primary=escape(row["categories"][0]),
            categories="".join(f'    <category term="{escape(c)}" '
                               'scheme="http://arxiv.org/schemas/atom"/>\n'
                               for c in row["categories"]),
            comment=(f"    <arxiv:comment>{escape(row['comment'])}</arxiv:comment>\n"
                     if row.get("comment") else ""),
            authors="".join(f"    <author>\n      <name>{escape(a)}</name>\n    </author>\n"
                            for a in row["authors"]),
            doi=(f"    <arxiv:doi>{escape(row['doi'])}</arxiv:doi>\n" if row.get("doi") else "")))
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")


@dataclass
class Fault:
    """One scripted misbehaviour, used once by the next matching request."""

    kind: str  # status | reset | hang | truncate | garbage
    status: int = 503
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0
    path: str = ""  # only requests whose path starts with this
    body: bytes = b"<html>unavailable</html>"


class ArxivReplay:
    """The server state: what each endpoint answers, faults to inject, requests seen."""

    def __init__(self):
        self.papers: dict[str, ReplayPaper] = {}
        self.listing: list[ReplayPaper] = []
        self.listing_day = date(2025, 6, 2)
        self.rss_override: bytes | None = None
        self.faults: list[Fault] = []
        self.scripts: dict[str, list[Fault | None]] = {}
        self.requests: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    # scripting --------------------------------------------------------------------
    def set_day(self, rows: list[dict], day: date, kinds: dict[str, str] | None = None,
                versions: dict[str, int] | None = None) -> None:
        """Announce these real papers on ``day`` (kinds/versions per id)."""
        kinds, versions = kinds or {}, versions or {}
        self.listing_day = day
        self.listing = []
        for row in rows:
            paper = ReplayPaper(row, versions.get(row["id"], 1), kinds.get(row["id"], "new"))
            self.listing.append(paper)
            self.papers[row["id"]] = paper

    def add_fault(self, kind: str, **options) -> None:
        self.faults.append(Fault(kind, **options))

    def script_faults(self, path: str, plan: list[Fault | None]) -> None:
        """Answer the next requests under ``path`` in this order: a ``Fault`` misbehaves,
        ``None`` answers normally; once the plan is used up, ``add_fault`` rules again."""
        with self.lock:
            self.scripts[path] = list(plan)

    def script_left(self) -> dict[str, int]:
        """How many scripted answers each path has not given yet."""
        with self.lock:
            return {path: len(plan) for path, plan in self.scripts.items() if plan}

    def paths(self, prefix: str = "") -> list[str]:
        return [path for _, path in self.requests if path.startswith(prefix)]

    # answering --------------------------------------------------------------------
    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for prefix, plan in self.scripts.items():
                if plan and path.startswith(prefix):
                    return plan.pop(0)
            for index, fault in enumerate(self.faults):
                if path.startswith(fault.path):
                    return self.faults.pop(index)
        return None

    def answer(self, path: str, query: dict) -> tuple[int, bytes]:
        if path.startswith("/rss/"):
            if self.rss_override is not None:
                return 200, self.rss_override
            return 200, rss_feed(self.listing, self.listing_day, path[len("/rss/"):])
        if path.startswith("/api/query"):
            return self.answer_api(query)
        return 404, b"not found"

    def answer_api(self, query: dict) -> tuple[int, bytes]:
        ids = [i for i in query.get("id_list", [""])[0].split(",") if i]
        start = int(query.get("start", ["0"])[0])
        per_page = int(query.get("max_results", ["10"])[0])
        search = query.get("search_query", [""])[0]
        if ids:
            found = [self.papers[i.split("v")[0]] for i in ids if i.split("v")[0] in self.papers]
        else:
            found = self.search(search)
        page = found[start:start + per_page]
        return 200, atom_feed(page, f"search_query={search}&id_list={','.join(ids)}", start,
                              len(found), per_page)

    def search(self, search: str) -> list[ReplayPaper]:
        """Only the backfill form Octet sends: categories AND submittedDate:[a TO b]."""
        import re
        window = re.search(r"submittedDate:\[(\d{8})\d{4} TO (\d{8})\d{4}\]", search)
        cats = set(re.findall(r"cat:([\w.\-]+)", search))
        hits = []
        for paper in self.papers.values():
            day = paper.submitted().strftime("%Y%m%d")
            if window and not (window.group(1) <= day <= window.group(2)):
                continue
            if cats and not cats & set(paper.row["categories"]):
                continue
            hits.append(paper)
        return sorted(hits, key=lambda p: (p.submitted(), p.arxiv_id))


class _Handler(BaseHTTPRequestHandler):
    replay: ArxivReplay

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        self.replay.requests.append((time.monotonic(), self.path))
        fault = self.replay.take_fault(parsed.path)
        status, body = self.replay.answer(parsed.path, parse_qs(parsed.query))
        if fault and self.misbehave(fault, body):
            return
        self.send(status, body)

    def misbehave(self, fault: Fault, body: bytes) -> bool:
        if fault.kind == "status":
            self.send(fault.status, fault.body, fault.headers)
        elif fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        elif fault.kind == "hang":
            time.sleep(fault.seconds)
            return False
        elif fault.kind == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.end_headers()  # no Content-Length: the cut is only visible in the XML
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif fault.kind == "garbage":
            self.send(200, b"<html><body>Rate exceeded.</body></html>")
        return True

    def send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class ReplayServer:
    """Runs ``ArxivReplay`` on 127.0.0.1 in a thread: ``with ReplayServer() as server``."""

    def __init__(self):
        self.replay = ArxivReplay()
        handler = type("Handler", (_Handler,), {"replay": self.replay})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The OCTET_* settings that point Octet at this server."""
        return {"OCTET_ARXIV_RSS_URL": f"{self.base}/rss/",
                "OCTET_ARXIV_API_URL": f"{self.base}/api/query",
                "OCTET_ARXIV_DELAY": "0", "OCTET_HTTP_TIMEOUT": "5", "OCTET_HTTP_RETRIES": "5"}

    def __enter__(self) -> "ReplayServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
