"""Issue 12, items 4 and 10: paper text cannot form a heading or a fence in an Obsidian note,
the reader's notes are found by a marker paper text cannot produce, and a long title cannot
break Octet's own frontmatter reader.

The hostile set is ``tests/fixtures/hostile/export/obsidian_papers.json``;
``legacy_note_heading_abstract.md`` is a note as Octet wrote it before the marker existed.
Notes are parsed with a real CommonMark parser (markdown-it-py).
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline.cli import main
from pipeline.core.paper import Paper
from pipeline.stages import export
from pipeline.stages import obsidian as note_files
from storage import export as store
from storage.papers import upsert_papers
from tests.helpers import REPO, set_reading

FOLDER = REPO / "tests/fixtures/hostile/export"
HOSTILE = json.loads((FOLDER / "obsidian_papers.json").read_text("utf-8"))
IDS = [row["arxiv_id"] for row in HOSTILE["papers"]]


def hostile_papers() -> list[Paper]:
    return [Paper(arxiv_id=row["arxiv_id"], version=1, title=row["title"], authors=tuple(row["authors"]),
                  abstract=row["abstract"], primary_category="cs.CL",
                  published=datetime(2026, 1, 2, tzinfo=timezone.utc))
            for row in HOSTILE["papers"]]


@pytest.fixture
def hostile(settings) -> list[Paper]:
    papers = hostile_papers()
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "queued"} for paper in papers])
    return papers


def notes_in(vault: Path) -> dict[str, bytes]:
    return {str(path.relative_to(vault)): path.read_bytes() for path in sorted(vault.rglob("*.md"))}


def blocks(text: str) -> list[str]:
    """The top-level Markdown blocks of a note's body (after its frontmatter), as
    ``heading_open:h2:Links``, ``paragraph_open``, ``html_block`` …"""
    data, ok = note_files.parse_frontmatter(text)
    assert ok and data
    body = text.split("\n---\n", 1)[1]
    tokens = MarkdownIt("commonmark").parse(body)
    found = []
    for index, token in enumerate(tokens):
        if token.level == 0 and (token.type.endswith("_open") or token.nesting == 0):
            label = token.type
            if token.type == "heading_open":
                label += f":{token.tag}" + (f":{tokens[index + 1].content}" if token.tag != "h1" else "")
            found.append(label)
    return found


EXPECTED = ["heading_open:h1", "paragraph_open", "heading_open:h2:Abstract", "paragraph_open",
            "heading_open:h2:Links", "bullet_list_open", "html_block", "heading_open:h2:My notes"]


def test_paper_text_forms_no_heading_fence_or_html_in_a_note(settings, hostile, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    owned, foreign, broken = export.scan_papers(vault / note_files.PAPERS)
    assert sorted(owned) == IDS and not foreign and not broken
    for arxiv_id, existing in owned.items():
        text = existing.path.read_text(encoding="utf-8")
        assert blocks(text) == EXPECTED, arxiv_id
        assert existing.note.my_notes == "\n", arxiv_id
        body = text.split("\n---\n", 1)[1]  # Obsidian shows the frontmatter as properties
        inline = [child for token in MarkdownIt("commonmark").parse(body) for child in token.children or []]
        assert not [child for child in inline if child.type in ("image", "html_inline")], arxiv_id
        hrefs = [child.attrs["href"] for child in inline if child.type == "link_open"]
        assert all(href.startswith("https://arxiv.org/") for href in hrefs), arxiv_id
        assert "[[Secret" not in text and "%%" not in text
    math_note = owned["2601.60006"].path.read_text(encoding="utf-8")
    assert all(math in math_note for math in HOSTILE["kept_math"])


def test_summary_fields_form_no_heading_fence_or_html(settings):
    paper = hostile_papers()[0]
    for summary in (HOSTILE["summary"], {**HOSTILE["summary"], "extractive": True}):
        entry = note_files.Entry(paper=paper, state="read", summary=summary)
        text = note_files.compose(note_files.render_paper(entry, note_files.paper_frontmatter(entry)), "\n")
        assert [block for block in blocks(text) if block.startswith(("heading", "html", "hr"))] == [
            "heading_open:h1", next(block for block in blocks(text) if ":Summary" in block),
            "heading_open:h2:Abstract", "heading_open:h2:Links", "html_block", "heading_open:h2:My notes"]
        assert "![pix]" not in text and note_files.parse_note(text).my_notes == "\n"


def test_repeated_exports_are_byte_stable(settings, hostile, tmp_path, capsys):
    vault = tmp_path / "vault"
    assert main(["export", "obsidian", "--vault", str(vault), "--all"]) == 0
    first = notes_in(vault)
    for _ in range(2):
        capsys.readouterr()
        assert main(["export", "obsidian", "--vault", str(vault), "--all", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["unchanged"] == len(IDS)
        assert notes_in(vault) == first


def test_import_stores_nothing_from_a_hostile_abstract(settings, hostile, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    report = export.import_obsidian(settings, vault)
    assert report["changed"] == [] and report["conflicts"] == []
    rows = store.reading_rows(settings.db_path, IDS)
    assert [rows[arxiv_id]["notes"] for arxiv_id in IDS] == [None] * len(IDS)
    path = export.scan_papers(vault / note_files.PAPERS)[0]["2601.60001"].path
    path.write_text(path.read_text(encoding="utf-8") + "Mine.\n", encoding="utf-8")
    export.import_obsidian(settings, vault)
    assert store.reading_rows(settings.db_path, ["2601.60001"])["2601.60001"]["notes"] == "Mine."


def test_a_note_written_before_the_marker_keeps_its_notes(settings, hostile, tmp_path):
    folder = tmp_path / "vault" / note_files.PAPERS
    folder.mkdir(parents=True)
    legacy = folder / "A paper whose abstract is a heading.md"
    shutil.copy(FOLDER / "legacy_note_heading_abstract.md", legacy)
    assert note_files.read_note(legacy).my_notes == "\nReader's own words.\n"
    export.import_obsidian(settings, tmp_path / "vault")
    row = store.reading_rows(settings.db_path, ["2601.60001"])["2601.60001"]
    assert row["notes"] == "Reader's own words."
    export.export_obsidian(settings, tmp_path / "vault")
    migrated = legacy.read_text(encoding="utf-8")
    assert blocks(migrated)[-3:] == ["html_block", "heading_open:h2:My notes", "paragraph_open"]
    assert migrated.endswith(f"{note_files.NOTES_MARKER}\n## My notes\n\nReader's own words.\n")
    before = legacy.read_bytes()
    export.export_obsidian(settings, tmp_path / "vault")
    assert legacy.read_bytes() == before


@pytest.mark.parametrize("text", ["## My notes", "---", "<!-- octet:my-notes -->", "# x", "> x", "- x",
                                  "+ x", "1. x", "2) x", "=== x", "``` x", "~~~ x", "| a |", "    code",
                                  "\\## x", "\\--- x", "<img src=x>"])
def test_note_text_never_starts_a_block(text):
    escaped = note_files.note_text(text)
    tokens = MarkdownIt("commonmark").parse(escaped)
    assert [token.type for token in tokens] == ["paragraph_open", "inline", "paragraph_close"], escaped
    assert not [child for child in tokens[1].children if child.type == "html_inline"]
    assert "\n" not in escaped and escaped != "---" and not escaped.startswith("#")


# ---- item 10: a long title and the frontmatter fence ---------------------------------------

LONG_TITLE = ("Attention --- is --- all you need\n---\n" * 200)[:5000]


def test_a_long_title_with_dash_runs_gives_one_note_per_export(settings, tmp_path):
    paper = Paper(arxiv_id="2601.50001", version=1, title=LONG_TITLE, authors=("A B",),
                  primary_category="cs.LG")
    upsert_papers(settings.db_path, [paper])
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "queued"}])
    vault = tmp_path / "vault"
    reports = [export.export_obsidian(settings, vault) for _ in range(3)]
    assert [(report["created"], report["unchanged"]) for report in reports] == [(1, 0), (0, 1), (0, 1)]
    notes = list((vault / note_files.PAPERS).glob("*.md"))
    assert len(notes) == 1
    data, ok = note_files.parse_frontmatter(notes[0].read_text(encoding="utf-8"))
    assert ok and data["title"] == " ".join(LONG_TITLE.split())
    assert [line for line in notes[0].read_text(encoding="utf-8").split("\n") if line.strip() == "---"] == [
        "---", "---"]


def test_the_fence_is_matched_exactly():
    folded = "---\ntitle: 'a\n  ---\n  b'\nstate: read\n---\n# body\n"
    assert note_files.parse_frontmatter(folded) == ({"title": "a --- b", "state": "read"}, True)
    assert note_files.parse_frontmatter("---\r\ntitle: x\r\n---\r\nbody") == ({"title": "x"}, True)
    assert note_files.parse_frontmatter("--- \ntitle: x\n---\n")[0] == {"title": "x"}
    assert note_files.parse_frontmatter("----\ntitle: x\n---\n") == ({}, True)
    assert note_files.parse_frontmatter("---\ntitle: x\n ---\n") == ({}, False)


def test_frontmatter_never_folds_a_value():
    rendered = note_files.render_frontmatter({"title": "word " * 5000 + "---", "aliases": ["x --- " * 3000]})
    assert len(rendered.split("\n")) == len(["---", "title", "aliases:", "- item", "---", ""])
