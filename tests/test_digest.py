"""The weekly digest's content and formats (pipeline/stages/digest.py, digest_format.py) on
a real DuckDB file of real labeled papers: the pick, the runners-up, the family sections in
the Inbox's order, the window since the last digest, the habit, last week's read; hostile
paper and reader text in Markdown, HTML and plain text; and `octet digest` itself."""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline.cli import main
from pipeline.core import weeks
from pipeline.core.families import CODES
from pipeline.core.paper import Paper, abs_url, find_control
from pipeline.core.settings import load_settings
from pipeline.stages.digest import TITLE_CHARS, build_digest, cut, paper_app_url, window_end
from pipeline.stages.digest_format import DISCORD_CHARS, WORD_JOINER, render, to_payload
from pipeline.stages.ranking import rank
from storage import digests, reading
from storage.families import families_for
from storage.papers import upsert_papers
from storage.summaries import summary_for
from tests.helpers import store_families, store_real_papers
from tests.test_ranking import store_labeled_papers

HOSTILE = ("# Heading\r\nBcc: evil@example.org\r\nX-Injected: yes\n```js\nalert(1)\n```"
           " [x](javascript:alert(1)) <script>alert('x')</script> </td></tr></table> A & B &amp;"
           " \x1b[31mred\x1b[0m \u202egnp.exe\u202c \x00\x07\x08"
           " <http://127.0.0.1:9/auto> www.example.com ![i](http://127.0.0.1:9/i.png) "
           "*em* _u_ ~~s~~ | a | b | <!channel> @everyone")
"""Paper text that would form a heading, mail headers, a fence, links, an image, HTML, a
table, terminal colours, a right-to-left override and mentions wherever it is not escaped."""

HOSTILE_NOTES = ("# my heading\n```\ncode\n```\n[x](javascript:alert(1))\n<script>alert(1)</script>"
                 "\n</td>\n    indented code\n---\n\x1b[2J\u202eevil\n> quote\n- item\n1. one")
"""The reader's notes, many lines of Markdown and controls."""

PICK_ID, RUNNER_ID, SECTION_ID, LAST_ID = "2611.00001", "2611.00002", "2611.00003", "2611.00004"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def build_library(tmp_path_factory) -> tuple[Path, dict]:
    """A database of real labeled papers with embeddings, family labels and extractive
    summaries (the papers first seen now: this week's arrivals), and their rows."""
    home = tmp_path_factory.mktemp("digest-library")
    db_path = load_settings(environ={"OCTET_HOME": str(home)}).db_path
    return db_path, store_labeled_papers(db_path, history=40, inbox=80, summaries=True)


def copy_library(settings, built: tuple[Path, dict]) -> dict:
    """A copy of that database as the test's own; returns its rows."""
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built[0], settings.db_path)
    return built[1]


@pytest.fixture(scope="module")
def library_file(tmp_path_factory) -> tuple[Path, dict]:
    """The library, built once per module."""
    return build_library(tmp_path_factory)


@pytest.fixture
def library(settings, library_file) -> dict:
    """The library as this test's own database."""
    return copy_library(settings, library_file)


def this_week(settings) -> str:
    return weeks.current_week(settings.timezone)


def shown_ids(digest) -> list[str]:
    """Every paper the digest shows, in order, repeats kept."""
    return ([digest.pick.arxiv_id] if digest.pick else []) + \
        [p.arxiv_id for p in digest.runners_up] + \
        [p.arxiv_id for s in digest.sections for p in s.papers]


# ---- content -----------------------------------------------------------------------------

def test_the_pick_comes_with_its_tldr_and_why_and_two_runners_up(settings, library):
    digest = build_digest(settings)
    pick = reading.get_pick(settings.db_path, this_week(settings))
    assert digest.week == this_week(settings) and digest.pick.arxiv_id == pick["arxiv_id"]
    assert digest.pick.tldr and digest.pick.tldr == \
        summary_for(settings.db_path, [pick["arxiv_id"]])[pick["arxiv_id"]]["tldr"]
    assert digest.pick.why == pick["reason"] and digest.pick.why
    assert [p.arxiv_id for p in digest.runners_up] == list(pick["runners_up"])[:2]
    assert len(digest.runners_up) == 2 and all(p.tldr for p in digest.runners_up)
    assert digest.pick.url == abs_url(pick["arxiv_id"])
    assert digest.pick.app_url == f"http://localhost:8501/?paper={pick['arxiv_id']}"
    assert digest.subject == f"Octet {digest.week}: {digest.pick.title}"


def test_runners_up_come_from_the_queue_when_the_reader_chose_the_pick(settings, library):
    ids = [row["arxiv_id"] for row in library["inbox"][:4]]
    reading.queue_add(settings.db_path, ids[1:])
    reading.set_pick(settings.db_path, this_week(settings), ids[0], "reader", "chosen by you")
    digest = build_digest(settings)
    assert digest.pick.arxiv_id == ids[0] and digest.pick.why == "chosen by you"
    assert [p.arxiv_id for p in digest.runners_up] == ids[1:3]


def test_family_sections_follow_the_inbox_order_and_show_each_paper_once(settings, library):
    digest = build_digest(settings)
    window = reading.inbox_candidates(settings.db_path, digest.since, 20000, datetime.now(timezone.utc))
    assert digest.fresh and digest.arrived == window["total"] == len(window["ids"]) > 100
    labels = {i: r["labels"] for i, r in families_for(settings.db_path, window["ids"]).items()}
    shown = {digest.pick.arxiv_id, *(p.arxiv_id for p in digest.runners_up)}
    assert [s.code for s in digest.sections] == [c for c in CODES if any(
        c in labels.get(i, ()) and i not in shown for i in window["ids"])]
    for section in digest.sections:
        # The Inbox's "for you" view of this family, less what the digest showed above.
        inbox = [p.arxiv_id for p in rank(settings.db_path, window["ids"], "for you",
                                          family=section.code) if p.arxiv_id not in shown]
        assert [p.arxiv_id for p in section.papers] == inbox[:settings.digest_per_family]
        assert section.arrived == sum(section.code in labels.get(i, ()) for i in window["ids"])
        assert all(section.code in p.families and p.why for p in section.papers)
        shown |= {p.arxiv_id for p in section.papers}
    assert len(shown_ids(digest)) == len(set(shown_ids(digest)))
    assert sum(len(s.papers) for s in digest.sections) > 8


def test_digest_per_family_is_respected(settings, library):
    for per_family in (1, 5):
        digest = build_digest(replace(settings, digest_per_family=per_family))
        sizes = [len(s.papers) for s in digest.sections]
        assert max(sizes) == per_family and all(size <= per_family for size in sizes)
    assert main(["digest"]) == 0  # the default, 3, from the settings
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCTET_DIGEST_PER_FAMILY", "0")
        assert main(["digest"]) == 2


def test_the_window_starts_at_the_last_digest_of_an_earlier_week(settings, library):
    week = this_week(settings)
    monday = weeks.week_monday(weeks.previous_week(week))
    first = build_digest(settings)
    midnight = datetime.combine(monday, datetime.min.time(), weeks.reader_zone(settings.timezone))
    assert first.since == midnight
    digests.record_send(settings.db_path, week, "email", "me@example.org")
    assert build_digest(settings).since == first.since  # this week's own send moves nothing
    digests.record_send(settings.db_path, weeks.previous_week(week), "email", "me@example.org")
    sent_at = digests.previous_digest_at(settings.db_path, week)
    quiet = build_digest(settings)
    assert quiet.since == sent_at and not quiet.fresh  # nothing arrived since: newest day
    new = store_real_papers(settings.db_path, 6)
    store_families(settings.db_path, {p.arxiv_id: ["SAM"] for p in new})
    later = build_digest(settings)
    assert later.fresh and later.arrived == 6 and later.since == sent_at
    assert [(s.code, s.arrived) for s in later.sections] == [("SAM", 6)]
    assert {p.arxiv_id for p in later.sections[0].papers} <= {p.arxiv_id for p in new}


def test_the_window_follows_the_readers_midnight(settings, library):
    """A reader in Tokyo: the first digest covers from last week's Monday 00:00 in Tokyo
    (Sunday 15:00 UTC), and a past week ends at its next Monday 00:00 in Tokyo."""
    tokyo = replace(settings, timezone="Asia/Tokyo")
    week = this_week(tokyo)
    monday = weeks.week_monday(weeks.previous_week(week))
    sunday_utc = datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc) - timedelta(hours=9)
    assert build_digest(tokyo).since == sunday_utc
    end = window_end(tokyo, weeks.previous_week(week), datetime.now(timezone.utc))
    assert end == sunday_utc + timedelta(days=7)


def test_streak_coverage_and_next_family_after_reads(settings, library):
    db, week = settings.db_path, this_week(settings)
    before = build_digest(settings)
    assert (before.streak, before.papers_read, before.next_family) == (0, 0, CODES[0])
    assert before.coverage == {code: 0 for code in CODES}
    ids = [row["arxiv_id"] for row in library["history"][:3]]
    store_families(db, {ids[0]: ["LLM", "VLM"], ids[1]: ["LLM"], ids[2]: ["LCM"]})
    reading.mark_read(db, ids[0], weeks.previous_week(weeks.previous_week(week)))
    reading.mark_read(db, ids[1], weeks.previous_week(week), rating=5)
    after = build_digest(settings)
    assert (after.streak, after.longest_streak, after.papers_read) == (2, 2, 2)
    assert after.coverage == {**{code: 0 for code in CODES}, "LLM": 2, "VLM": 1}
    assert after.next_family == "LCM"  # never read, first in the seed order
    reading.mark_read(db, ids[2], week)
    now = build_digest(settings)
    assert (now.streak, now.papers_read, now.coverage["LCM"], now.next_family) == (3, 3, 1, "LAM")
    assert now.pick_status == "read"
    # A past week's digest says what was true then.
    past = build_digest(settings, weeks.previous_week(week))
    assert (past.streak, past.papers_read, past.coverage["LCM"]) == (2, 2, 0)
    text = render(now, "text")
    assert "Streak: 3 weeks (longest 3) · 3 papers read" in text and "LCM 1" in text


def test_last_weeks_read_with_rating_and_notes(settings, library):
    db, week = settings.db_path, this_week(settings)
    last_id = library["history"][0]["arxiv_id"]
    reading.set_pick(db, weeks.previous_week(week), last_id, "octet", "proposed")
    assert build_digest(settings).last_week.read is False
    reading.mark_read(db, last_id, weeks.previous_week(week), rating=4,
                      notes="First line.\n\nSecond line, after a blank one.")
    last = build_digest(settings).last_week
    assert (last.paper.arxiv_id, last.read, last.rating) == (last_id, True, 4)
    assert last.notes == "First line.\n\nSecond line, after a blank one."
    digest = build_digest(settings)
    markdown, text, page = (render(digest, form) for form in ("md", "text", "html"))
    assert "> First line.\n>\n> Second line, after a blank one." in markdown
    assert "★★★★☆" in markdown and "★★★★☆" in text and "★★★★☆" in page
    assert "  | First line.\n  | \n  | Second line, after a blank one." in text
    assert "First line.\n\nSecond line, after a blank one." in page


def test_an_empty_library_says_there_is_no_paper_yet(settings):
    digest = build_digest(settings)
    assert digest.pick is None and digest.sections == () and digest.subject.endswith("no paper yet")
    for form in ("md", "html", "text"):
        assert "No paper stored yet" in render(digest, form)


# ---- hostile text ------------------------------------------------------------------------

def store_hostile_library(settings, library) -> dict:
    """A hostile pick (hostile reason), a hostile runner-up with a 1 MB title, a hostile
    paper in a family section, and last week's hostile read with hostile notes."""
    db, week = settings.db_path, this_week(settings)
    papers = [Paper(arxiv_id, 1, title, (HOSTILE, "Eve <b>", "x", "y"), HOSTILE, ("cs.CL",),
                    "cs.CL", abs_url=abs_url(arxiv_id), listed_date="2026-06-30")
              for arxiv_id, title in ((PICK_ID, HOSTILE), (RUNNER_ID, "# " + HOSTILE * 8000),
                                      (SECTION_ID, "[x](javascript:alert(1)) " + HOSTILE),
                                      (LAST_ID, "<script>alert(1)</script> " + HOSTILE))]
    upsert_papers(db, papers)
    from pipeline.stages.summaries.summary import Summary
    from storage.summaries import save_summaries
    save_summaries(db, [Summary(arxiv_id=p.arxiv_id, version=1, backend="openai", model="m",
                                prompt_version="summarize.v1", tldr=HOSTILE, problem="p",
                                method="m", results="r", why_it_matters="w") for p in papers])
    store_families(db, {p.arxiv_id: ["SAM"] for p in papers})
    reading.set_pick(db, week, PICK_ID, "octet", HOSTILE, [RUNNER_ID])
    reading.mark_read(db, LAST_ID, weeks.previous_week(week), rating=2, notes=HOSTILE_NOTES)
    return {p.arxiv_id: p for p in papers}


def allowed_links(digest) -> set[str]:
    papers = [digest.pick, *digest.runners_up, *(p for s in digest.sections for p in s.papers),
              digest.last_week.paper]
    return {url for p in papers for url in (p.url, p.app_url)} | {digest.app_url}


def hostile_digest(settings):
    """The digest of the hostile library, every family's papers shown."""
    return build_digest(replace(settings, digest_per_family=20))


def test_hostile_text_is_capped_and_cleaned_in_the_digest(settings, library):
    store_hostile_library(settings, library)
    digest = hostile_digest(settings)
    assert digest.pick.arxiv_id == PICK_ID and digest.runners_up[0].arxiv_id == RUNNER_ID
    sam = next(s for s in digest.sections if s.code == "SAM")
    assert SECTION_ID in [p.arxiv_id for p in sam.papers]
    assert shown_ids(digest).count(SECTION_ID) == shown_ids(digest).count(RUNNER_ID) == 1
    assert len(digest.runners_up[0].title) == TITLE_CHARS and digest.runners_up[0].title[-1] == "…"
    assert digest.pick.title == cut(HOSTILE, TITLE_CHARS) and "\n" not in digest.pick.title
    for paper in shown_papers(digest):
        for text in (paper.title, paper.tldr, paper.why, *paper.authors):
            assert not CONTROL.search(text), text
    assert not CONTROL.search(digest.last_week.notes.replace("\n", ""))
    assert digest.last_week.notes.splitlines()[0] == "# my heading"
    usual = build_digest(settings)  # three papers a family
    assert usual.runners_up[0].arxiv_id == RUNNER_ID
    for form in ("md", "html", "text"):
        assert len(render(usual, form)) < 60_000  # a 1 MB title makes no 1 MB digest


def shown_papers(digest):
    return [digest.pick, *digest.runners_up, *(p for s in digest.sections for p in s.papers),
            digest.last_week.paper]


def flat(tokens):
    for token in tokens:
        yield token
        yield from flat(token.children or [])


def test_hostile_text_forms_no_markdown_structure(settings, library):
    store_hostile_library(settings, library)
    digest = hostile_digest(settings)
    markdown = render(digest, "md")
    tokens = list(flat(MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)))
    kinds = {token.type for token in tokens}
    assert not kinds & {"html_block", "html_inline", "fence", "code_block", "code_inline", "image",
                        "hr", "table_open", "s_open", "ordered_list_open"}
    assert sum(t.type == "list_item_open" for t in tokens) == \
        len(digest.runners_up) + sum(len(s.papers) for s in digest.sections)
    assert sum(t.type == "blockquote_open" for t in tokens) == 1
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [f"Octet · week {digest.week} (from "
                        f"{weeks.week_monday(digest.week):%a %d %b %Y})", "This week's paper",
                        "What arrived",
                        *(f"{s.code} · {name_of(s.code)} ({s.arrived:,} new)" for s in digest.sections),
                        "Your habit", "Last week"]
    links = [t.attrGet("href") for t in tokens if t.type == "link_open"]
    assert links and set(links) <= allowed_links(digest)
    # No bare URL, www. or @name a chat app or GFM would link or mention by itself.
    assert not [url for url in re.findall(r"[a-z]+://[^\s)\]>]*", markdown)
                if url not in allowed_links(digest)]
    assert "www." not in markdown and "@everyone" not in markdown
    assert not [href for href in links if "javascript" in href]
    # The pick's title reads as it is, link text and all.
    assert unjoined(link_text(tokens, digest.pick.url)[0]) == digest.pick.title
    assert unjoined(link_text(tokens, digest.last_week.paper.url)[0]) == \
        digest.last_week.paper.title
    # Each line of the notes shows as typed, on a line of its own in the quote.
    shown = rendered_lines(markdown)
    assert [line for line in digest.last_week.notes.split("\n") if line not in shown] == []


def unjoined(text: str) -> str:
    return text.replace(WORD_JOINER, "")


def name_of(code: str) -> str:
    from pipeline.core.families import BY_CODE
    return BY_CODE[code].name


def link_text(tokens, href: str) -> list[str]:
    """The text of each link to ``href``, as a reader sees it."""
    texts, inside = [], None
    for token in tokens:
        if token.type == "link_open" and token.attrGet("href") == href:
            inside = []
        elif token.type == "link_close" and inside is not None:
            texts.append("".join(inside))
            inside = None
        elif inside is not None and token.type == "text":
            inside.append(token.content)
    return texts


def rendered_lines(markdown: str) -> list[str]:
    """The lines of plain text the Markdown shows (word joiners left out)."""
    parser = TextCollector()
    parser.feed(MarkdownIt("commonmark").render(markdown))
    return [line.strip() for line in unjoined("".join(parser.text)).splitlines()]


class TextCollector(HTMLParser):
    """The text, the start tags and each link's href and text of an HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.tags, self.links, self.open = [], [], [], []
        self._link = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "br", "img", "hr", "link", "input"):
            self.open.append(tag)
        if tag == "a":
            self._link = [dict(attrs).get("href"), ""]
            self.links.append(self._link)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag == "a":
            self._link = None

    def handle_data(self, data):
        self.text.append(data)
        if self._link is not None:
            self._link[1] += data


def test_hostile_text_forms_no_html_structure(settings, library):
    store_hostile_library(settings, library)
    digest = hostile_digest(settings)
    page = render(digest, "html")
    parser = TextCollector()
    parser.feed(page)
    parser.close()
    assert parser.open == []  # every element closed in order: no </td> of a title counts
    assert "script" not in parser.tags and "img" not in parser.tags
    assert {href for href, _ in parser.links} <= allowed_links(digest)
    by_href = {}
    for href, text in parser.links:
        by_href.setdefault(href, []).append(text)
    assert digest.pick.title in map(unjoined, by_href[digest.pick.url])
    assert digest.runners_up[0].title in map(unjoined, by_href[digest.runners_up[0].url])
    text = unjoined("".join(parser.text))
    assert "://127.0.0.1" not in "".join(parser.text)  # a mail client links no bare URL
    assert digest.pick.tldr in text and digest.pick.why in text
    assert digest.last_week.notes in text and "<script>alert(1)</script>" in text
    assert parser.tags.count("table") == page.count("<table")


def test_hostile_text_leaves_no_control_character_in_plain_text(settings, library):
    store_hostile_library(settings, library)
    text = render(hostile_digest(settings), "text")
    assert not CONTROL.search(text) and find_control(text.replace("\n", "")) is None
    assert "\x1b" not in text and "[31mred" in text  # the escape dropped, the words kept
    assert "http://127.0.0.1:9" not in text and "www." not in text
    assert "  | # my heading" in text


def test_the_webhook_body_carries_the_same_capped_text(settings, library):
    store_hostile_library(settings, library)
    digest = hostile_digest(settings)
    payload = to_payload(digest)
    assert len(payload["content"]) <= DISCORD_CHARS
    assert len(json.dumps(payload)) < 200_000
    assert payload["papers"][0]["title"] == digest.pick.title
    assert payload["last_week"]["notes"] == digest.last_week.notes
    assert payload["allowed_mentions"] == {"parse": []}
    # Slack's "text": no < or > a chat app reads as a link or a mention; the same words.
    assert "<" not in payload["text"] and ">" not in payload["text"].replace("\n>", "\n")
    render_md = MarkdownIt("commonmark").render
    assert render_md(payload["text"]) == render_md(payload["markdown"])
    assert payload["content"].endswith(f"[More in Octet]({digest.app_url})")
    long_url = replace(digest, app_url="http://localhost:8501/" + "a" * 1500)
    assert len(to_payload(long_url)["content"]) <= DISCORD_CHARS


# ---- the command -------------------------------------------------------------------------

@pytest.mark.parametrize("week, message", [
    ("2026-W99", "is not an ISO week"), ("2026-13", "is not an ISO week"),
    ("W49", "is not an ISO week"), ("2026-W5", "is not an ISO week"),
    ("2099-W01", "has not begun"), ("2026-W49\n--send", "is not an ISO week")])
def test_digest_week_errors_are_one_line_and_exit_2(settings, library, capsys, week, message):
    assert main(["digest", "--week", week]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("octet: ")
    assert captured.out == ""


def test_digest_future_week_is_refused(settings, library, capsys):
    after = weeks.week_of(weeks.week_monday(this_week(settings)) + timedelta(days=7))
    assert main(["digest", "--week", after]) == 2
    assert "has not begun" in capsys.readouterr().err


def test_digest_writes_each_format_to_the_output_file(settings, library, tmp_path, capsys):
    for form, marker in (("md", "# Octet · week"), ("html", "<!DOCTYPE html>"),
                         ("text", "THIS WEEK'S PAPER")):
        target = tmp_path / f"digest.{form}"
        assert main(["digest", "--format", form, "--output", str(target)]) == 0
        written = target.read_text(encoding="utf-8")
        assert any(line.startswith(marker) for line in written.splitlines()[:4]), form
        pick = reading.get_pick(settings.db_path, this_week(settings))
        assert paper_app_url(settings.app_url, pick["arxiv_id"]) in written
    last_week = weeks.previous_week(this_week(settings))
    assert main(["digest", "--week", last_week, "--format", "text"]) == 0
    assert f"week {last_week}" in capsys.readouterr().out.splitlines()[0]


def test_force_and_dry_run_need_send(settings, library, capsys):
    assert main(["digest", "--dry-run"]) == 2
    assert "add --send" in capsys.readouterr().err
