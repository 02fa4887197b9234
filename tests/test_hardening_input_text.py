"""Issue 12, item 8: control characters are stripped on the way in.

Paper fields (every one goes through ``clean_text`` in ``build_paper``) lose C0/C1 controls
and bidi overrides; the reader's notes keep only newlines and tabs. Checked with a real
``octet import`` of ``tests/fixtures/hostile/input/controls.jsonl`` and the terminal output
of ``octet show`` / ``octet queue list``, and with notes stored through ``octet done`` and
through ``storage.reading`` (``tests/fixtures/hostile/input/notes.json``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from pipeline.core.paper import clean_text
from pipeline.core.weeks import current_week
from storage import reading
from storage.papers import get_paper
from tests.helpers import REPO, store_real_papers

HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "input"
NOTES = json.loads((HOSTILE / "notes.json").read_text(encoding="utf-8"))["cases"]
# What must never reach a terminal: C0 but newline, DEL, C1, bidi embeddings/overrides/isolates.
FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def octet(home, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OCTET_HOME": str(home), "OCTET_STAGES": "none"}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, encoding="utf-8", errors="surrogateescape", timeout=120,
                          env=env, cwd=REPO)


def test_clean_text_drops_every_control_and_bidi_override():
    text = "a\x1b[31mb\x00c\x7fd\x9be\u202ef\u2066g\u2069\x07h \t\r\n i\x85j"
    assert clean_text(text) == "a[31mbcdefgh i j"
    assert not FORBIDDEN.search(clean_text("".join(map(chr, range(0x00, 0xA0)))))


def test_strip_controls_keeps_only_what_is_asked():
    from pipeline.core.paper import strip_controls
    assert strip_controls("a\tb\nc\x1bd\x00", keep="\n\t") == "a\tb\ncd"
    assert strip_controls("a\tb\nc", keep="") == "abc"


def test_import_then_show_and_queue_list_print_no_controls(octet_home):
    imported = octet(octet_home, "import", str(HOSTILE / "controls.jsonl"), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["new"] == 2
    assert octet(octet_home, "queue", "add", "2601.00001", "2601.00002").returncode == 0
    for arxiv_id in ("2601.00001", "2601.00002"):
        shown = octet(octet_home, "show", arxiv_id)
        assert shown.returncode == 0, shown.stderr
        assert "Hostile" in shown.stdout or "Snapshot" in shown.stdout
        assert not FORBIDDEN.search(shown.stdout), repr(shown.stdout)
    listed = octet(octet_home, "queue", "list")
    assert listed.returncode == 0 and "Hostile" in listed.stdout
    assert not FORBIDDEN.search(listed.stdout + listed.stderr), repr(listed.stdout)


def test_imported_fields_are_stored_without_controls(settings, monkeypatch):
    from pipeline.cli import main
    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["import", str(HOSTILE / "controls.jsonl")]) == 0
    first, second = (get_paper(settings.db_path, i) for i in ("2601.00001", "2601.00002"))
    assert first["title"] == "Hostile[2J[H title with 31m CSI and RLO override"
    assert first["authors"][:2] == ["Ann]0;pwned Author", "Bob Bee"]
    assert "CR LF" in first["abstract"] and "backspace." in first["abstract"]
    assert second["doi"] == "10.1000/xy" and second["authors"][0] == "Carol[1m Bold"
    for paper in (first, second):
        text = json.dumps(paper, default=str, ensure_ascii=False)
        assert not FORBIDDEN.search(text.replace("\\n", "")), text


@pytest.fixture
def stored(settings):
    return [paper.arxiv_id for paper in store_real_papers(settings.db_path, limit=6)]


@pytest.mark.parametrize("raw, clean", NOTES, ids=[repr(raw[:12]) for raw, _ in NOTES])
def test_notes_keep_newlines_and_tabs_only(settings, stored, raw, clean):
    db, week = settings.db_path, current_week("")
    reading.save_notes(db, stored[0], notes=raw)
    reading.mark_read(db, stored[1], week, rating=4, notes=raw)
    reading.set_state(db, stored[2], "queued", week, notes=raw)
    for arxiv_id in stored[:3]:
        assert reading.reading_of(db, arxiv_id)["notes"] == clean


def test_pick_reason_is_stored_without_controls(settings, stored):
    week = current_week("")
    reading.set_pick(settings.db_path, week, stored[3], "octet", "because\x1b[31m red\x00\nand more")
    assert reading.get_pick(settings.db_path, week)["reason"] == "because[31m red and more"


def test_notes_given_to_octet_done_come_back_clean(octet_home, settings, stored):
    done = octet(octet_home, "done", stored[0], "--rating", "5", "--note",
                 "great\x1b[2J paper\x07\n\tsee section 3\x1b]0;title\x07")
    assert done.returncode == 0, done.stderr
    picked = octet(octet_home, "pick", "--json")
    assert picked.returncode == 0, picked.stderr
    assert json.loads(picked.stdout)["notes"] == "great[2J paper\n\tsee section 3]0;title"


def test_error_lines_carry_no_controls(capsys):
    """An error that quotes untrusted text (here a file name) is still one clean line."""
    from pipeline.cli import main
    assert main(["import", "/nonexistent/\x1b[2Jpapers\n* * * * * x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not FORBIDDEN.search(err.rstrip("\n")), repr(err)
