"""`octet feed`: the Atom feed of the weekly picks and the digest's top papers per family,
read back with feedparser (what feed readers use) and with xml.etree; real DuckDB, the
real CLI (in process, and once as a subprocess for standard output)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import feedparser
import pytest

from pipeline.cli import main
from pipeline.core import weeks
from pipeline.core.families import BY_CODE
from pipeline.core.paper import abs_url
from pipeline.stages.summaries.summary import Summary
from pipeline.stages.digest import DigestPaper, build_digest, paper_app_url
from pipeline.stages.feed import Feed, FeedEntry, entry_id, to_atom
from storage import reading
from storage.papers import upsert_papers
from storage.summaries import save_summaries
from tests.helpers import REPO, paper_from_row, real_listings, store_families, store_real_papers

ATOM = "{http://www.w3.org/2005/Atom}"
# Texts a paper could carry that break feeds built by string concatenation.
HOSTILE = {
    "tag": "</title><script>alert(1)</script> Closing tags",
    "cdata": "]]> & <![CDATA[ cdata & ampersands",
    "controls": "Controls\x00\x01\x08\x0b\x0c\x1b[31m\x7f\x85 that XML forbids",
    "bidi": "Bidi \u202eoverride\u202c and \u2066isolate\u2069 marks",
    "noncharacters": "Nonchars \ufffe\uffff gone",
    "huge": "Huge " + "A" * 1_000_000,
}


def _summary(arxiv_id: str, tldr: str) -> Summary:
    return Summary(arxiv_id=arxiv_id, version=1, tldr=tldr, problem="p", method="m",
                   results="r", why_it_matters="w", backend="openai", model="m1",
                   prompt_version="v1", created_at=datetime.now(timezone.utc))


def _weeks_back(week: str, count: int) -> str:
    return weeks.week_of(weeks.week_monday(week) - timedelta(weeks=count))


@pytest.fixture
def library(settings):
    """Twelve real papers: this week's pick (with two runners-up), last week's read pick, a
    pick 13 weeks ago (older than the feed keeps), and eight untriaged papers in families,
    most with a TL;DR."""
    ids = [paper.arxiv_id for paper in store_real_papers(settings.db_path, 12)]
    store_families(settings.db_path, {ids[0]: ["LLM"], ids[3]: ["VLM"], ids[4]: ["LLM", "MoE"],
                                      ids[5]: ["LLM"], ids[6]: ["SAM"], ids[7]: ["VLM"],
                                      ids[8]: ["SLM"], ids[9]: ["LLM"], ids[10]: []})
    save_summaries(settings.db_path, [_summary(i, f"TL;DR of {i}.") for i in ids[:9]])
    this_week = weeks.current_week(settings.timezone)
    reading.set_pick(settings.db_path, this_week, ids[0], "octet", "Newest LLM paper.",
                     [ids[1], ids[2]])
    last_week = weeks.previous_week(this_week)
    reading.set_pick(settings.db_path, last_week, ids[11], "reader")
    reading.mark_read(settings.db_path, ids[11], last_week, rating=4, read_on=date(2026, 1, 2))
    reading.set_pick(settings.db_path, _weeks_back(this_week, 12), ids[10], "octet", "Old.")
    return {"ids": ids, "this_week": this_week, "last_week": last_week}


def _feed(tmp_path, *extra: str, name: str = "octet.atom"):
    """Run `octet feed --output FILE`; the file, checked against RFC 4287, and feedparser's
    reading of it."""
    path = tmp_path / "out" / name
    assert main(["feed", "--output", str(path), *extra]) == 0
    _check_atom(path.read_bytes())
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return path, parsed


def _check_atom(document: bytes) -> ET.Element:
    """Well-formed XML whose feed and every entry hold what RFC 4287 says they must."""
    root = ET.fromstring(document)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
        datetime.strptime(entry.find(f"{ATOM}updated").text, "%Y-%m-%dT%H:%M:%SZ")
    ids = [entry.find(f"{ATOM}id").text for entry in root.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids))
    return root


def _links(entry) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in entry.links}


def test_the_feed_has_the_picks_newest_first_and_the_digest_papers(settings, library, tmp_path):
    ids, this_week, last_week = library["ids"], library["this_week"], library["last_week"]
    path, parsed = _feed(tmp_path)
    assert parsed.feed.title == "Octet — one paper a week"
    assert parsed.feed.link == settings.app_url and parsed.feed.author == "Octet"
    assert parsed.feed.generator == "Octet"
    titles = [entry.title for entry in parsed.entries]
    picks = [entry for entry in parsed.entries if entry.title.startswith("Week ")]
    assert [entry.title.split(":")[0] for entry in picks] == [f"Week {this_week}",
                                                              f"Week {last_week}"]
    assert titles[:2] == [entry.title for entry in picks]  # picks first; 13 weeks ago is gone
    now, last = picks
    assert _links(now) == {"alternate": abs_url(ids[0]),
                           "related": paper_app_url(settings.app_url, ids[0])}
    assert now.summary == f"TL;DR of {ids[0]}."
    assert [(tag.term, tag.label) for tag in now.tags] == [("LLM", "Large Language Model")]
    assert "Newest LLM paper." in now.content[0].value and "Not read yet" in now.content[0].value
    assert "Read on 2026-01-02" in last.content[0].value and "Chosen by you." in last.content[0].value
    assert now.id == entry_id("pick", this_week) and last.id == entry_id("pick", last_week)

    digest = build_digest(settings)
    expected = [paper for section in digest.sections for paper in section.papers]
    papers = parsed.entries[2:]
    assert [entry.title for entry in papers] == [paper.title for paper in expected]
    assert {paper.arxiv_id for paper in expected} == {ids[i] for i in (3, 4, 5, 6, 7, 8, 9)}
    for entry, paper in zip(papers, expected):
        assert _links(entry)["alternate"] == abs_url(paper.arxiv_id)
        assert _links(entry)["related"] == paper.app_url
        assert [(t.term, t.label) for t in entry.tags] == [(c, BY_CODE[c].name)
                                                           for c in paper.families]
        assert entry.id == entry_id("paper", paper.arxiv_id)
        assert [a.name for a in entry.authors] == list(paper.authors)
    moe = next(entry for entry in papers if entry.link == abs_url(ids[4]))
    assert [tag.term for tag in moe.tags] == ["LLM", "MoE"]
    assert moe.summary == f"TL;DR of {ids[4]}."
    no_tldr = next(entry for entry in papers if entry.link == abs_url(ids[9]))
    assert "No summary yet." in no_tldr.content[0].value
    without = [entry.find(f"{ATOM}link").get("href") for entry in
               _check_atom(path.read_bytes()).findall(f"{ATOM}entry")
               if entry.find(f"{ATOM}summary") is None]
    assert without == [abs_url(ids[11]), abs_url(ids[9])]  # no TL;DR: no empty summary
    assert parsed.feed.updated == max(entry.updated for entry in parsed.entries)


def test_the_entry_html_shows_well_and_is_escaped_once(settings, library, tmp_path):
    path, parsed = _feed(tmp_path)
    content = _check_atom(path.read_bytes()).find(f"{ATOM}entry/{ATOM}content")
    assert content.get("type") == "html"
    fragment = ET.fromstring(content.text)  # the HTML travels as text: it parses on its own
    assert fragment.tag == "div"
    assert [p.find("strong").text for p in fragment.findall("p")[:3]] == [
        "TL;DR:", "Why this one:", "Status:"]
    assert [a.get("href") for a in fragment.iter("a")] == [
        abs_url(library["ids"][0]), paper_app_url(settings.app_url, library["ids"][0])]


def test_ids_and_the_whole_feed_stay_the_same_across_runs_and_machines(settings, library,
                                                                       tmp_path):
    first, parsed = _feed(tmp_path, name="first.atom")
    second, _ = _feed(tmp_path, name="second.atom")
    assert first.read_bytes() == second.read_bytes()
    elsewhere = tmp_path / "elsewhere" / "copy.duckdb"  # another machine: another path
    elsewhere.parent.mkdir()
    shutil.copy(settings.db_path, elsewhere)
    third, _ = _feed(tmp_path, "--db", str(elsewhere), name="third.atom")
    assert third.read_bytes() == first.read_bytes()
    expected = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"octet:pick:{library['this_week']}"))
    assert parsed.entries[0].id == expected

    row = real_listings(limit=13)[12]
    upsert_papers(settings.db_path, [paper_from_row(row)])
    store_families(settings.db_path, {row["id"]: ["SAM"]})
    _, after = _feed(tmp_path, name="after.atom")
    before = {entry.link: entry.id for entry in parsed.entries}
    now = {entry.link: entry.id for entry in after.entries}
    assert now[abs_url(row["id"])] == entry_id("paper", row["id"])
    assert abs_url(row["id"]) not in before
    assert {link: now[link] for link in before if link in now} == {
        link: before[link] for link in before if link in now}
    assert len([link for link in before if link in now]) >= len(before) - 1


def test_hostile_paper_text_stays_text(settings, tmp_path):
    rows = real_listings(limit=len(HOSTILE))
    papers = [replace(paper_from_row(row), title=title, authors=(title[:200], "Ok Author"))
              for row, title in zip(rows, HOSTILE.values())]
    upsert_papers(settings.db_path, papers)
    ids = [paper.arxiv_id for paper in papers]
    store_families(settings.db_path, {arxiv_id: [code] for arxiv_id, code in
                                      zip(ids[1:], ("LLM", "VLM", "MoE", "SAM", "SLM"))})
    save_summaries(settings.db_path, [_summary(i, t[:5000]) for i, t in zip(ids, HOSTILE.values())])
    reading.set_pick(settings.db_path, weeks.current_week(settings.timezone), ids[0], "octet",
                     HOSTILE["cdata"] + HOSTILE["controls"])
    path, parsed = _feed(tmp_path)
    document = path.read_bytes()
    assert len(document) < 100_000  # the megabyte title is cut, not carried
    root = _check_atom(document)
    assert not any(element.tag.endswith("script") for element in root.iter())
    shown = {entry.link: entry.title for entry in parsed.entries}
    assert shown[abs_url(ids[0])].endswith(": </title><script>alert(1)</script> Closing tags")
    assert "]]> & <![CDATA[ cdata & ampersands" in shown.values()
    assert "Controls [31m that XML forbids" in shown.values()  # \x0b and \x0c were spaces
    assert "Bidi override and isolate marks" in shown.values()
    assert "Nonchars  gone" in shown.values()
    huge = next(title for title in shown.values() if title.startswith("Huge "))
    assert len(huge) <= 300 and huge.endswith("…")
    texts = [element.text or "" for element in root.iter()] + \
        [value for element in root.iter() for value in element.attrib.values()]
    assert not any(ch in text for text in texts for ch in "\x00\x1b\x7f\x85\u202e\u2066\ufffe")
    html = root.find(f"{ATOM}entry/{ATOM}content").text
    assert "&lt;/title&gt;&lt;script&gt;" in html and "<script" not in html
    assert "]]&gt; &amp; &lt;![CDATA[" in html


def test_text_that_xml_cannot_carry_is_dropped_when_the_feed_is_written():
    paper = DigestPaper(arxiv_id="2601.00001", title="Lone \ud800 surrogate \x00 and \ufffe",
                        authors=("A \x0b B",), more_authors=False, families=("LLM",),
                        tldr="T \udfff", url=abs_url("2601.00001"),
                        app_url="http://localhost:8501/?paper=2601.00001", why="w\x1b")
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    document = to_atom(Feed("http://localhost:8501", moment, (FeedEntry(
        entry_id("paper", "2601.00001"), paper.title, paper, moment, moment),)))
    root = _check_atom(document.encode("utf-8"))
    assert root.find(f"{ATOM}entry/{ATOM}title").text == "Lone  surrogate  and "
    assert root.find(f"{ATOM}entry/{ATOM}author/{ATOM}name").text == "A  B"
    assert feedparser.parse(document.encode("utf-8")).bozo == 0


def test_an_empty_library_gives_a_valid_feed(tmp_path):
    _, parsed = _feed(tmp_path)
    assert parsed.entries == [] and parsed.feed.title == "Octet — one paper a week"
    assert parsed.feed.id.startswith("urn:uuid:")


def test_standard_output_is_the_default(octet_home):
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "feed"], cwd=REPO,
                            capture_output=True, check=True)
    assert result.stdout.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<feed")
    _check_atom(result.stdout)
    assert feedparser.parse(result.stdout).bozo == 0


def test_output_makes_a_missing_folder_and_refuses_a_folder_or_a_file_parent(library, tmp_path,
                                                                             capsys):
    target = tmp_path / "new" / "deeper" / "octet.atom"
    assert main(["feed", "--output", str(target)]) == 0
    assert target.is_file() and list(target.parent.iterdir()) == [target]  # no temporary left
    assert capsys.readouterr().out == f"Wrote 9 entries to {target}\n"
    before = target.read_bytes()

    assert main(["feed", "--output", str(target.parent)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a folder; name a file, e.g. " in error

    assert main(["feed", "--output", str(target / "inside.atom")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a file, not a folder" in error
    assert target.read_bytes() == before
