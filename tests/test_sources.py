"""Parsing arXiv's real responses (tests/fixtures/arxiv) into Paper, no network."""
from datetime import date

import pytest
from arxiv import _feed as arxiv_feed

from tests.helpers import FIXTURES
from pipeline.stages.sources import (BadEntry, FeedError, MalformedResponse, build_paper, check_xml,
                              paper_from_record, paper_from_result, parse_rss, read_jsonl)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rss_day_gives_every_announce_type_and_fields():
    listing = parse_rss(fixture("rss_quant-ph_2025-04-28.xml"))
    assert listing.announced == 81 and len(listing.papers) == 81 and not listing.skipped
    kinds = {p.announce_type for p in listing.papers}
    assert kinds == {"new", "cross", "replace", "replace-cross"}
    assert listing.feed_date == date(2025, 4, 28) and not listing.weekend
    first = listing.papers[0]
    assert first.arxiv_id == "2504.17830" and first.version == 1
    assert first.abstract.startswith("We introduce a self-adjoint time operator")
    assert "Announce Type" not in first.abstract
    assert first.authors == ("Radmir Kokoulin",)
    assert first.listed_date == "2025-04-28"
    assert sum(1 for p in listing.papers if p.doi) == 10
    assert sum(1 for p in listing.papers if p.journal_ref) == 9
    replaced = [p for p in listing.papers if p.announce_type == "replace"]
    assert all(p.version >= 2 for p in replaced)


def test_empty_feed_is_not_an_error():
    listing = parse_rss(fixture("rss_empty_test_2024-11-28.xml"))
    assert listing.announced == 0 and listing.papers == []
    assert listing.feed_date == date(2024, 11, 28)


def test_error_feed_raises_with_arxivs_explanation():
    with pytest.raises(FeedError, match="Bad archive 'astroph'"):
        parse_rss(fixture("rss_error_bad_archive_2024-11-28.xml"))


def test_rss_entry_without_id_is_skipped_and_the_rest_kept():
    body = fixture("rss_quant-ph_2025-04-28.xml").replace(
        b"<guid isPermaLink=\"false\">oai:arXiv.org:2504.17830v1</guid>", b"", 1).replace(
        b"<link>https://arxiv.org/abs/2504.17830</link>", b"", 1)
    listing = parse_rss(body)
    assert len(listing.papers) == 80 and len(listing.skipped) == 1


@pytest.mark.parametrize("name, count", [
    ("api_query_testing_start0_max10.xml", 10),
    ("api_idlist_1707.08567.xml", 1),
    ("api_idlist_astro-ph_0601001.xml", 1),
    ("api_legacy2016_idlist_1111.2011v2.xml", 1),
])
def test_api_results_become_papers_with_every_field(name, count):
    results = arxiv_feed.parse(fixture(name)).results
    papers = [paper_from_result(r) for r in results]
    assert len(papers) == count
    for paper in papers:
        assert paper.title and paper.authors and paper.categories and paper.published
        assert paper.primary_category == paper.categories[0]


def test_api_paper_fields_match_the_response():
    [result] = arxiv_feed.parse(fixture("api_idlist_1707.08567.xml")).results
    paper = paper_from_result(result)
    assert paper.arxiv_id == "1707.08567" and paper.version == 1
    assert len(paper.authors) == 34 and "Dirk Wübben" in paper.authors
    [old] = arxiv_feed.parse(fixture("api_idlist_astro-ph_0601001.xml")).results
    old_paper = paper_from_result(old)
    assert old_paper.arxiv_id == "astro-ph/0601001" and old_paper.journal_ref


def test_check_xml_catches_truncation_and_wrong_documents():
    body = fixture("api_idlist_1707.08567.xml")
    check_xml("feed")(body)
    with pytest.raises(MalformedResponse):
        check_xml("feed")(body[: len(body) // 2])
    with pytest.raises(MalformedResponse):
        check_xml("feed")(fixture("rss_empty_test_2024-11-28.xml"))


def test_build_paper_rejects_bad_entries():
    with pytest.raises(BadEntry):
        build_paper(arxiv_id="nonsense", title="x")
    with pytest.raises(BadEntry):
        build_paper(arxiv_id="2501.00001", title="   ")
    paper = build_paper(arxiv_id="2501.00001v3", title="A\n  title", categories=["cs.LG"],
                        primary_category="cs.CL")
    assert paper.version == 3 and paper.title == "A title"
    assert paper.categories == ("cs.CL", "cs.LG")


def test_jsonl_reads_both_formats_and_names_bad_lines():
    snapshot = ('{"id": "0704.0001", "title": "Calculation of prompt diphoton", '
                '"abstract": " A fully differential calculation", "authors": "C. Bal\\u00e1zs, '
                'E. L. Berger and C.-P. Yuan", "categories": "hep-ph cs.LG", "versions": '
                '[{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, {"version": "v2",'
                ' "created": "Tue, 24 Jul 2007 20:10:27 GMT"}], "update_date": "2008-11-13", '
                '"journal-ref": "Phys.Rev.D76:013009,2007", "doi": "10.1103/PhysRevD.76.013009"}')
    lines = [snapshot, "", "{not json", '{"id": "2501.00002"}', '[1]',
             '{"id": "2501.00003", "title": "Ok", "authors": ["A B"], "categories": ["cs.CL"]}']
    rows = list(read_jsonl(lines))
    papers = [paper for _, paper, _ in rows if paper]
    errors = [error for _, _, error in rows if error]
    assert [p.arxiv_id for p in papers] == ["0704.0001", "2501.00003"]
    first = papers[0]
    assert first.version == 2 and first.authors == ("C. Balázs", "E. L. Berger", "C.-P. Yuan")
    assert first.categories == ("hep-ph", "cs.LG") and first.doi.startswith("10.1103")
    assert first.published.year == 2007 and first.listed_date == "2008-11-13"
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 4", "line 5"]


def test_record_with_bad_listed_date_is_a_bad_entry():
    with pytest.raises(BadEntry, match="YYYY-MM-DD"):
        paper_from_record({"id": "2501.00001", "title": "x", "listed_date": "yesterday"})
