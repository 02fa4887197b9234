"""Fuzzing the parsers of outside input: no input crashes; bad input is reported and skipped."""
from __future__ import annotations

import json

from arxiv import _feed as arxiv_feed
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import FIXTURES
from pipeline.stages.sources import (BadEntry, FeedError, MalformedResponse, check_xml,
                              paper_from_result, parse_rss, read_jsonl)

RSS = (FIXTURES / "rss_quant-ph_2025-04-28.xml").read_bytes()[:20000]
ATOM = (FIXTURES / "api_query_testing_start0_max10.xml").read_bytes()
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, cut, insert in edits:
        position %= max(len(data), 1)
        data = data[:position] + insert + data[position + cut:]
    return data


edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 50), st.binary(max_size=20)),
                 max_size=6)


@FAST
@given(edits)
def test_mutated_rss_never_crashes(changes):
    try:
        listing = parse_rss(mutate(RSS, changes))
    except FeedError:
        return
    assert len(listing.papers) + len(listing.skipped) <= max(listing.announced, 0) + 1
    for paper in listing.papers:
        assert paper.arxiv_id and paper.title


@FAST
@given(st.binary(max_size=3000))
def test_any_bytes_as_rss_never_crash(data):
    try:
        parse_rss(data)
    except FeedError:
        pass


@FAST
@given(edits)
def test_mutated_atom_is_rejected_or_parsed_never_crashes(changes):
    body = mutate(ATOM, changes)
    try:
        check_xml("feed")(body)
    except MalformedResponse:
        return
    for result in arxiv_feed.parse(body).results:
        try:
            paper = paper_from_result(result)
        except BadEntry:
            continue
        assert paper.arxiv_id and paper.version >= 1


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=10), children, max_size=4),
                           max_leaves=12)
record = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=20), st.just("2501.00001"), st.just("hep-th/9901001v2"),
                    st.integers()),
    "title": json_values, "abstract": json_values, "authors": json_values,
    "categories": json_values, "versions": json_values, "listed_date": json_values,
    "doi": json_values, "comment": json_values})


@FAST
@given(st.lists(st.one_of(st.text(max_size=80), record.map(json.dumps)), max_size=8))
def test_jsonl_lines_are_stored_or_reported_never_crash(lines):
    rows = list(read_jsonl(lines))
    assert len(rows) == sum(1 for line in lines if line.strip())
    for number, paper, error in rows:
        assert (paper is None) != (error is None)
        if error:
            assert error.startswith(f"line {number}:")
