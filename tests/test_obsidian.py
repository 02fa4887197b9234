"""Obsidian export and import: safe names, frontmatter, `## My notes`, round trip."""
from __future__ import annotations

import json
import os
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings as hypothesis_settings, strategies as st

from pipeline.stages import export
from pipeline.stages import obsidian as note_files
from pipeline.cli import main
from pipeline.core.paper import Paper, clean_text
from pipeline.core import weeks
from pipeline.core.weeks import current_week
from storage import export as store
from storage import reading
from storage.papers import upsert_papers
from tests.helpers import real_listings, set_reading

HOSTILE = ["../../x", "..\\..\\evil", "CON", "con.txt", "nul", "x" * 400, "é" * 300,
           '/ : * ? " < > |', r"$\alpha$-Nets: {Unbalanced \textbf{x} 100% & #1 _ ~ ^",
           "🚀 Rocket 👨‍👩‍👧 Models", "[[Link]] #tag ^block", "..", "", "   ", ".hidden",
           "trailing dot.", "## My notes", "line\nbreak\ttab\x00nul\x1fctl", "/", "a/../../b"]


def paper_from_row(row: dict, **changes) -> Paper:
    published = datetime.fromisoformat(row["listed_date"]).replace(tzinfo=timezone.utc)
    paper = Paper(arxiv_id=row["id"], version=1, title=clean_text(row["title"]),
                  authors=tuple(row["authors"]), abstract=clean_text(row["abstract"]),
                  categories=tuple(row["categories"]), primary_category=row["categories"][0],
                  published=published, comment=row.get("comment"))
    return paper.with_changes(**changes)


@pytest.fixture
def library(settings):
    """Six real papers: two read (rated, with notes), two queued, one pick, one inbox."""
    papers = [paper_from_row(row) for row in real_listings(limit=6)]
    upsert_papers(settings.db_path, papers)
    ids = [paper.arxiv_id for paper in papers]
    set_reading(settings.db_path, [
        {"arxiv_id": ids[0], "state": "read", "rating": 4, "notes": "Stored note.",
         "read_on": date(2026, 11, 20), "week": "2026-W47"},
        {"arxiv_id": ids[1], "state": "read", "rating": 2, "read_on": date(2026, 11, 12),
         "week": "2026-W46"},
        {"arxiv_id": ids[2], "state": "queued"}, {"arxiv_id": ids[3], "state": "queued"}])
    reading.set_pick(settings.db_path, current_week(settings.timezone), ids[4], "reader")
    return papers


def note_path(vault: Path, arxiv_id: str) -> Path:
    owned, _, _ = export.scan_papers(vault / "Octet" / "Papers")
    return owned[arxiv_id].path


def frontmatter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


# ---- names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_title_gives_a_plain_file_name(title, tmp_path):
    stem = note_files.safe_name(title, "2601.00001")
    path = note_files.inside(tmp_path, stem)
    assert path.parent == tmp_path
    assert stem and stem == stem.strip() and not stem.endswith(".") and not stem.startswith(".")
    assert not set(stem) & set('/\\:*?"<>|[]#^') and stem.isprintable()
    assert len(stem.encode("utf-8")) <= note_files.MAX_NAME_BYTES
    assert stem.partition(".")[0].upper() not in ("CON", "NUL")
    path.write_text("ok", encoding="utf-8")  # the file system accepts it
    assert path.read_text(encoding="utf-8") == "ok"


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=500))
def test_any_title_stays_one_safe_name(title):
    stem = note_files.safe_name(title, "2601.00001")
    assert stem not in ("", ".", "..")
    assert "/" not in stem and "\\" not in stem and os.sep not in stem
    assert len(stem.encode("utf-8")) <= note_files.MAX_NAME_BYTES
    assert all(char.isprintable() for char in stem)


def test_hostile_titles_all_land_inside_the_vault(settings, tmp_path):
    papers = [Paper(arxiv_id=f"2601.{90000 + n}", version=1, title=title, authors=("A B",),
                    primary_category="cs.LG") for n, title in enumerate(HOSTILE)]
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [{"arxiv_id": p.arxiv_id, "state": "queued"}
                                          for p in papers])
    vault = tmp_path / "vault"
    report = export.export_obsidian(settings, vault)
    assert report["created"] == len(HOSTILE)
    everything = [path for path in tmp_path.rglob("*")
                  if path.is_file() and settings.home not in path.parents]
    assert everything and all(vault in path.parents for path in everything)
    notes = sorted((vault / "Octet" / "Papers").glob("*.md"))
    assert len(notes) == len(HOSTILE)
    ids = {frontmatter(path)["arxiv_id"] for path in notes}
    assert ids == {paper.arxiv_id for paper in papers}


def test_colliding_titles_get_unique_stable_names(settings, tmp_path):
    first = Paper(arxiv_id="2601.00002", version=1, title="Attention", primary_category="cs.LG")
    upsert_papers(settings.db_path, [first])
    set_reading(settings.db_path, [{"arxiv_id": "2601.00002", "state": "queued"}])
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    assert (vault / "Octet/Papers/Attention.md").is_file()
    # A paper with an earlier id and the same title (other case) arrives later: the
    # first note keeps its name, the newcomer gets its id appended.
    second = Paper(arxiv_id="2601.00001", version=1, title="ATTENTION", primary_category="cs.LG")
    upsert_papers(settings.db_path, [second])
    set_reading(settings.db_path, [{"arxiv_id": "2601.00001", "state": "queued"}])
    export.export_obsidian(settings, vault)
    names = sorted(path.name for path in (vault / "Octet/Papers").glob("*.md"))
    assert names == ["ATTENTION (2601.00001).md", "Attention.md"]
    assert frontmatter(vault / "Octet/Papers/Attention.md")["arxiv_id"] == "2601.00002"
    export.export_obsidian(settings, vault)
    assert sorted(path.name for path in (vault / "Octet/Papers").glob("*.md")) == names


def test_a_note_the_reader_wrote_is_never_overwritten(settings, tmp_path):
    paper = Paper(arxiv_id="2601.00003", version=1, title="My Idea", primary_category="cs.LG")
    upsert_papers(settings.db_path, [paper])
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "queued"}])
    folder = tmp_path / "vault/Octet/Papers"
    folder.mkdir(parents=True)
    (folder / "my idea.md").write_text("the reader's own note\n", encoding="utf-8")
    export.export_obsidian(settings, tmp_path / "vault")
    assert (folder / "my idea.md").read_text(encoding="utf-8") == "the reader's own note\n"
    assert frontmatter(folder / "My Idea (2601.00003).md")["arxiv_id"] == "2601.00003"


# ---- what a note holds ---------------------------------------------------------------------

def test_frontmatter_parses_and_says_what_the_database_says(settings, library, tmp_path):
    vault = tmp_path / "vault"
    report = export.export_obsidian(settings, vault)
    assert report["notes"] == 5  # the inbox paper is not on the reading list
    read = library[0]
    data = frontmatter(note_path(vault, read.arxiv_id))
    assert data["title"] == read.title and data["authors"] == list(read.authors)
    assert data["arxiv_id"] == read.arxiv_id and data["version"] == 1
    assert data["url"] == f"https://arxiv.org/abs/{read.arxiv_id}"
    assert data["pdf"] == f"https://arxiv.org/pdf/{read.arxiv_id}v1"
    assert data["published"] == read.published.date()
    assert (data["state"], data["rating"], data["week"]) == ("read", 4, "2026-W47")
    assert data["read_on"] == date(2026, 11, 20)
    assert "octet" in data["tags"] and read.title in data["aliases"]
    assert isinstance(data["families"], list)
    pick = frontmatter(note_path(vault, library[4].arxiv_id))
    assert pick["state"] == "pick" and pick["week"] == current_week(settings.timezone)
    assert library[5].arxiv_id not in export.scan_papers(vault / "Octet/Papers")[0]


def test_body_links_week_and_keeps_stored_notes(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    text = note_path(vault, library[0].arxiv_id).read_text(encoding="utf-8")
    assert "## Abstract" in text and clean_text(library[0].abstract)[:80] in text
    assert "[[Octet/Weeks/2026-W47|2026-W47]]" in text
    assert text.endswith("## My notes\n\nStored note.\n")
    week = (vault / "Octet/Weeks/2026-W47.md").read_text(encoding="utf-8")
    assert note_path(vault, library[0].arxiv_id).stem in week and "★★★★" in week
    assert library[1].arxiv_id not in week


def test_summary_is_marked_extractive(settings, tmp_path):
    entry = note_files.Entry(
        paper=Paper(arxiv_id="2601.00004", version=1, title="T", primary_category="cs.LG"),
        state="read", families=("LLM", "MoE"),
        summary={"tldr": "Short.", "problem": "P.", "method": "M.", "results": "R.",
                 "why_it_matters": "W.", "extractive": False, "fallback_fields": ["results"]})
    text = note_files.render_paper(entry, note_files.paper_frontmatter(entry))
    assert "> [!summary] TL;DR\n> Short." in text
    assert "- **Results** (extractive): R." in text and "- **Method**: M." in text
    assert "[[Octet/Families/LLM|LLM]]" in text and "[[Octet/Families/MoE|MoE]]" in text
    whole = entry.__class__(**{**entry.__dict__, "summary": {**entry.summary, "extractive": True}})
    text = note_files.render_paper(whole, note_files.paper_frontmatter(whole))
    assert "TL;DR (extractive)" in text and "## Summary (extractive" in text


def test_family_hubs_list_the_papers_read_in_them(tmp_path):
    notes = [note_files.VaultNote("A", "Paper A", ("LLM",), "read", None, "2026-11-01", 5),
             note_files.VaultNote("B", "Paper B", ("LLM", "MoE"), "queued", None, None, None)]
    hub = note_files.render_family("LLM", "The Universal Translator", notes)
    read_part, _, rest = hub.partition("## Also in the vault")
    assert "[[Octet/Papers/A|Paper A]] — read 2026-11-01 · ★★★★★" in read_part
    assert "[[Octet/Papers/B|Paper B]]" in rest and "Paper B" not in read_part
    assert yaml.safe_load(hub.split("---\n")[1]) == {"family": "LLM",
                                                      "tags": ["octet", "octet/LLM"]}


# ---- the reader's notes ----------------------------------------------------------------------

def test_my_notes_survive_reexport_byte_for_byte(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    path = note_path(vault, library[0].arxiv_id)
    mine = ("\nMy thoughts, with a [[link]] and #tag.\r\n\n## A heading of mine\n"
            "- trailing spaces   \n\n\n").encode("utf-8") + b"\xff raw byte\n"
    path.write_bytes(path.read_bytes().split(b"## My notes\n")[0] + b"## My notes\n" + mine)
    upsert_papers(settings.db_path, [library[0].with_changes(version=2, abstract="New abstract.")])
    report = export.export_obsidian(settings, vault)
    assert report["updated"] >= 1
    data = path.read_bytes()
    assert data.endswith(b"## My notes\n" + mine)
    assert b"New abstract." in data and b"version: 2" in data


def test_a_deleted_note_is_recreated(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    path = note_path(vault, library[0].arxiv_id)
    path.unlink()
    report = export.export_obsidian(settings, vault)
    assert report["recreated"] == [str(path)]
    assert path.read_text(encoding="utf-8").endswith("## My notes\n\nStored note.\n")


def test_a_note_without_the_heading_is_backed_up(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    path = note_path(vault, library[2].arxiv_id)
    original = path.read_text(encoding="utf-8").replace("## My notes", "Scribbles")
    path.write_text(original, encoding="utf-8")
    report = export.export_obsidian(settings, vault)
    assert len(report["backups"]) == 1
    assert Path(report["backups"][0]).read_text(encoding="utf-8") == original
    assert "## My notes" in path.read_text(encoding="utf-8")


def test_reexport_without_changes_writes_nothing(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    before = {path: path.stat().st_mtime_ns for path in vault.rglob("*.md")}
    report = export.export_obsidian(settings, vault)
    assert report["unchanged"] == 5 and report["updated"] == 0 and report["created"] == 0
    assert {path: path.stat().st_mtime_ns for path in vault.rglob("*.md")} == before


def test_title_change_renames_the_note_and_keeps_my_notes(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    old = note_path(vault, library[2].arxiv_id)
    old.write_text(old.read_text(encoding="utf-8") + "kept words\n", encoding="utf-8")
    upsert_papers(settings.db_path, [library[2].with_changes(version=2, title="A New Title")])
    report = export.export_obsidian(settings, vault)
    new = vault / "Octet/Papers/A New Title.md"
    assert report["renamed"] == [{"from": str(old), "to": str(new)}]
    assert not old.exists() and new.read_text(encoding="utf-8").endswith("kept words\n")


# ---- import ----------------------------------------------------------------------------------

def edit(path: Path, **fields) -> None:
    """Change frontmatter fields the way a reader does in Obsidian's properties."""
    text = path.read_text(encoding="utf-8")
    head, body = text[4:].split("---\n", 1)
    data = yaml.safe_load(head)
    data.update(fields)
    path.write_text(note_files.render_frontmatter(data) + body, encoding="utf-8")


def test_import_round_trip(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    queued, read = note_path(vault, library[2].arxiv_id), note_path(vault, library[0].arxiv_id)
    edit(queued, state="read", rating=5)
    read.write_text(read.read_text(encoding="utf-8").replace("Stored note.", "Edited in Obsidian."),
                    encoding="utf-8")
    report = export.import_obsidian(settings, vault)
    changed = {item["arxiv_id"]: item["changes"] for item in report["changed"]}
    assert changed == {library[2].arxiv_id: {"state": ["queued", "read"], "rating": [None, 5]},
                       library[0].arxiv_id: {"notes": "updated"}}
    rows = store.reading_rows(settings.db_path, [library[0].arxiv_id, library[2].arxiv_id])
    assert rows[library[2].arxiv_id]["state"] == "read" and rows[library[2].arxiv_id]["rating"] == 5
    assert rows[library[2].arxiv_id]["read_on"] is not None
    assert rows[library[0].arxiv_id]["notes"] == "Edited in Obsidian."
    again = export.import_obsidian(settings, vault)
    assert again["changed"] == [] and again["unchanged"] == 5
    export.export_obsidian(settings, vault)
    assert frontmatter(queued)["state"] == "read"
    assert read.read_text(encoding="utf-8").endswith("Edited in Obsidian.\n")


def test_import_leaves_what_the_app_changed_since(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    set_reading(settings.db_path, [{"arxiv_id": library[0].arxiv_id, "state": "read",
                                           "rating": 1, "notes": "Changed in the app."}])
    report = export.import_obsidian(settings, vault)
    assert report["changed"] == [] and report["conflicts"] == []
    row = store.reading_rows(settings.db_path, [library[0].arxiv_id])[library[0].arxiv_id]
    assert (row["rating"], row["notes"]) == (1, "Changed in the app.")
    export.export_obsidian(settings, vault)  # the app's edit now flows into the note
    path = note_path(vault, library[0].arxiv_id)
    assert frontmatter(path)["rating"] == 1
    assert path.read_text(encoding="utf-8").endswith("## My notes\n\nChanged in the app.\n")


def test_notes_edited_on_both_sides_are_reported_not_overwritten(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    path = note_path(vault, library[0].arxiv_id)
    path.write_text(path.read_text(encoding="utf-8") + "Obsidian words.\n", encoding="utf-8")
    set_reading(settings.db_path, [{"arxiv_id": library[0].arxiv_id, "state": "read",
                                           "notes": "App words."}])
    report = export.import_obsidian(settings, vault)
    assert [(item["arxiv_id"], item["field"]) for item in report["conflicts"]] == [
        (library[0].arxiv_id, "notes")]
    row = store.reading_rows(settings.db_path, [library[0].arxiv_id])[library[0].arxiv_id]
    assert row["notes"] == "App words."
    export.export_obsidian(settings, vault)
    assert path.read_text(encoding="utf-8").endswith("Obsidian words.\n")


def test_export_keeps_edits_not_yet_imported(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    path = note_path(vault, library[3].arxiv_id)
    edit(path, rating=3)
    report = export.export_obsidian(settings, vault)
    assert report["pending_edits"] == [library[3].arxiv_id]
    assert frontmatter(path)["rating"] == 3
    imported = export.import_obsidian(settings, vault)
    assert imported["changed"][0]["changes"] == {"rating": [None, 3]}


def test_import_skips_bad_values_and_unknown_papers(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    edit(note_path(vault, library[2].arxiv_id), state="finished", rating=9)
    stray = vault / "Octet/Papers/stray.md"
    stray.write_text(note_files.render_frontmatter({"arxiv_id": "2101.99999"}), encoding="utf-8")
    broken = note_path(vault, library[3].arxiv_id)
    broken.write_text("---\ntitle: [unclosed\n---\n## My notes\nx\n", encoding="utf-8")
    report = export.import_obsidian(settings, vault)
    reasons = " | ".join(item["reason"] for item in report["skipped"])
    assert "'finished'" in reasons and "rating 9" in reasons
    assert "2101.99999 is not in the database" in reasons
    assert "not valid YAML" in reasons
    assert any(item["file"] == str(broken) for item in report["skipped"])
    assert report["changed"] == []
    assert store.reading_rows(settings.db_path, [library[2].arxiv_id])[
        library[2].arxiv_id]["state"] == "queued"


def test_state_conflict_goes_to_the_later_edit(settings, library, tmp_path):
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    set_reading(settings.db_path, [{"arxiv_id": library[2].arxiv_id, "state": "skipped"}])
    time.sleep(0.05)
    edit(note_path(vault, library[2].arxiv_id), state="read")
    report = export.import_obsidian(settings, vault)
    assert report["changed"][0]["changes"] == {"state": ["skipped", "read"]}


# ---- the command line ------------------------------------------------------------------------

def test_cli_export_and_import(settings, library, tmp_path, capsys):
    vault = tmp_path / "vault"
    assert main(["export", "obsidian", "--vault", str(vault), "--state", "read"]) == 0
    assert "Exported 2 notes" in capsys.readouterr().out
    assert main(["export", "obsidian", "--vault", str(vault), "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == 6
    edit(note_path(vault, library[5].arxiv_id), state="queued")
    assert main(["import", "obsidian", "--vault", str(vault)]) == 0
    out = capsys.readouterr().out
    assert f"{library[5].arxiv_id}: state inbox -> queued" in out and "1 changed" in out
    assert main(["import", "obsidian"]) == 2
    assert "--vault DIR" in capsys.readouterr().err
    assert main(["import", "obsidian", "--vault", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_rejects_bad_input(settings, tmp_path, capsys):
    assert main(["export", "obsidian", "--vault", str(tmp_path), "--state", "done"]) == 2
    assert "unknown state 'done'" in capsys.readouterr().err
    assert main(["export", "obsidian", "--vault", str(tmp_path), "--since", "yesterday"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["export", "obsidian", "--vault", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_since_limits_to_recent_changes(settings, library, tmp_path):
    entries = export.select_entries(settings, since=date(2999, 1, 1))
    assert entries == []
    assert len(export.select_entries(settings, since=date(2000, 1, 1))) == 5


def test_family_hubs_follow_the_labels(settings, library, tmp_path):
    families = pytest.importorskip("storage.families")
    families.set_reader_labels(settings.db_path, library[0].arxiv_id, ["LLM", "MoE"])
    families.set_reader_labels(settings.db_path, library[2].arxiv_id, ["LLM"])
    families.set_reader_labels(settings.db_path, library[3].arxiv_id, ["none"])
    vault = tmp_path / "vault"
    report = export.export_obsidian(settings, vault)
    assert report["families"] == 2
    read = note_path(vault, library[0].arxiv_id)
    data = frontmatter(read)
    assert data["families"] == ["LLM", "MoE"] and "octet/MoE" in data["tags"]
    assert "[[Octet/Families/LLM|LLM]]" in read.read_text(encoding="utf-8")
    assert frontmatter(note_path(vault, library[3].arxiv_id))["families"] == []
    hub = (vault / "Octet/Families/LLM.md").read_text(encoding="utf-8")
    read_part, _, rest = hub.partition("## Also in the vault")
    assert read.stem in read_part and note_path(vault, library[2].arxiv_id).stem in rest
    assert "Universal Translator" in hub
    assert sorted(path.name for path in (vault / "Octet/Families").iterdir()) == ["LLM.md",
                                                                                  "MoE.md"]


def _reading_facts(db_path, arxiv_id: str, week: str) -> tuple:
    """What the streak and the pick depend on, without the timestamps."""
    row = reading.reading_of(db_path, arxiv_id)
    pick = reading.get_pick(db_path, week)
    return ((row["state"], row["queue_position"], row["week"], row["read_on"],
             row["started_at"] is not None),
            (pick["arxiv_id"] == arxiv_id, pick["status"], pick["chosen_by"], pick["reason"]),
            weeks.streak(reading.read_weeks(db_path), week))


def test_state_read_in_obsidian_counts_in_the_streak_exactly_as_octet_done(settings, tmp_path):
    """The Obsidian import and `octet done` write reading state through the same rules:
    a queued paper marked read leaves the queue, gets a start time and becomes the week's
    read pick, so the streak counts it either way."""
    twin_db = tmp_path / "twin.duckdb"
    week = current_week(settings.timezone)
    for db_path in (settings.db_path, twin_db):
        papers = [paper_from_row(row) for row in real_listings(limit=3)]
        upsert_papers(db_path, papers)
        reading.queue_add(db_path, [paper.arxiv_id for paper in papers])
    target = papers[1].arxiv_id
    vault = tmp_path / "vault"
    export.export_obsidian(settings, vault)
    edit(note_path(vault, target), state="read")
    report = export.import_obsidian(settings, vault)
    assert [item["arxiv_id"] for item in report["changed"]] == [target]

    assert main(["--db", str(twin_db), "done", target]) == 0
    imported = _reading_facts(settings.db_path, target, week)
    assert imported == _reading_facts(twin_db, target, week)
    assert imported[0][:2] == ("read", None) and imported[0][4]
    assert imported[1][:2] == (True, "read") and imported[2] == 1
