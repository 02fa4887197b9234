"""Issue 12, item 14 (export part): `octet export list` shows paper and model text as text.

The hostile set is ``tests/fixtures/hostile/export/list_papers.json``. The Markdown
checklist is parsed with a real CommonMark parser (markdown-it-py): each line holds exactly
one link, the paper's own, and no image, heading or HTML. Every CSV cell that starts like a
spreadsheet formula (= + - @ tab CR) is prefixed with a single quote.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from markdown_it import MarkdownIt

from pipeline.cli import main
from pipeline.core.paper import Paper, abs_url
from pipeline.stages import export
from storage.papers import upsert_papers
from tests.helpers import REPO, set_reading

HOSTILE = json.loads((REPO / "tests/fixtures/hostile/export/list_papers.json").read_text("utf-8"))
ROWS = {row["arxiv_id"]: row for row in HOSTILE["papers"]}
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def store_hostile(settings) -> None:
    papers = [Paper(arxiv_id=row["arxiv_id"], version=1, title=row["title"],
                    authors=tuple(row["authors"]), primary_category="cs.LG")
              for row in HOSTILE["papers"]]
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "queued"} for paper in papers])


def hostile_entries(settings) -> list:
    """The hostile papers on the reading list, with the families and TL;DR a model gave."""
    store_hostile(settings)
    return [replace(entry, families=tuple(ROWS[entry.paper.arxiv_id]["families"]),
                    summary={"tldr": ROWS[entry.paper.arxiv_id]["tldr"]})
            for entry in export.select_entries(settings)]


def _tokens(text: str) -> list:
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        found += [token, *(token.children or [])]
    return found


def test_markdown_list_forms_no_link_image_heading_or_html(settings):
    text = export.reading_list(hostile_entries(settings), "md")
    assert len(text.splitlines()) == len(HOSTILE["papers"])
    tokens = _tokens(text)
    kinds = [token.type for token in tokens]
    assert not {"image", "html_inline", "html_block", "heading_open", "code_inline"} & set(kinds)
    links = sorted(token.attrs["href"] for token in tokens if token.type == "link_open")
    assert links == sorted(abs_url(arxiv_id) for arxiv_id in ROWS)


def test_cli_markdown_list_escapes_authors(settings, capsys):
    store_hostile(settings)
    assert main(["export", "list", "--format", "md"]) == 0
    kinds = {token.type for token in _tokens(capsys.readouterr().out)}
    assert "image" not in kinds and "html_inline" not in kinds


def test_csv_cells_never_start_a_formula(settings):
    entries = hostile_entries(settings)
    rows = list(csv.DictReader(io.StringIO(export.reading_list(entries, "csv"))))
    assert len(rows) == len(HOSTILE["papers"])
    for row in rows:
        assert not [value for value in row.values() if value.startswith(FORMULA)], row
    first = next(row for row in rows if row["arxiv_id"] == "2601.70001")
    assert first["title"] == "'" + ROWS["2601.70001"]["title"]
    assert first["tldr"] == "'=1+1" and first["families"] == "'=cmd|' /C calc'!A0"
    assert first["authors"] == "![pix](http://127.0.0.1:9/a.png); Bob"  # text, not a formula
    fourth = next(row for row in rows if row["arxiv_id"] == "2601.70004")
    assert fourth["authors"] == "'@SUM(A1:A9)" and fourth["families"] == "'@x"


def test_csv_hyperlink_formula_is_text(settings):
    entries = [entry for entry in hostile_entries(settings) if entry.paper.arxiv_id == "2601.70001"]
    row = next(csv.DictReader(io.StringIO(export.reading_list(entries, "csv"))))
    assert row["title"] == "'=HYPERLINK(\"http://127.0.0.1:9/x\",\"click\")" and row["tldr"] == "'=1+1"


def test_json_list_keeps_the_text_as_data(settings):
    records = json.loads(export.reading_list(hostile_entries(settings), "json"))
    by_id = {record["arxiv_id"]: record for record in records}
    assert by_id["2601.70001"]["title"] == ROWS["2601.70001"]["title"]
    assert by_id["2601.70001"]["tldr"] == "=1+1"


def test_a_tldr_copied_from_the_abstract_is_marked_in_json_and_csv(settings):
    """Issue 12, item 5: a TL;DR the model left empty (borrowed from the abstract) is marked."""
    entries = hostile_entries(settings)
    marked = [replace(entries[0], summary={"tldr": "Copied.", "fallback_fields": ["tldr"]}),
              replace(entries[1], summary={"tldr": "Written.", "fallback_fields": ["method"]}),
              replace(entries[2], summary=None)]
    records = json.loads(export.reading_list(marked, "json"))
    assert [record["tldr_extractive"] for record in records] == [True, False, None]
    rows = list(csv.DictReader(io.StringIO(export.reading_list(marked, "csv"))))
    assert [row["tldr_extractive"] for row in rows] == ["True", "False", ""]
