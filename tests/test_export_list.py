"""Reading lists for pasting into any notes app: Markdown checklist, CSV, JSON."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone

import pytest

from tests.helpers import set_reading

from pipeline.stages import export
from pipeline.cli import main
from pipeline.core.paper import Paper
from storage.papers import upsert_papers


@pytest.fixture
def listed(settings):
    papers = [Paper(arxiv_id="2601.00001", version=1, title="Read [one] *bold*",
                    authors=("Ada Lovelace", "Alan Turing"), primary_category="cs.LG",
                    published=datetime(2026, 1, 5, tzinfo=timezone.utc)),
              Paper(arxiv_id="2601.00002", version=1, title="Queued, with \"quotes\"",
                    authors=("Grace Hopper",), primary_category="cs.CL"),
              Paper(arxiv_id="2601.00003", version=1, title="Inbox", primary_category="cs.CV")]
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [
        {"arxiv_id": "2601.00001", "state": "read", "rating": 5, "read_on": date(2026, 11, 2),
         "week": "2026-W45"},
        {"arxiv_id": "2601.00002", "state": "queued"}])
    return papers


def test_markdown_checklist(settings, listed):
    text = export.reading_list(export.select_entries(settings), "md")
    assert text.splitlines() == [
        "- [ ] [Queued, with \"quotes\"](https://arxiv.org/abs/2601.00002) — Grace Hopper · queued",
        "- [x] [Read \\[one\\] \\*bold\\*](https://arxiv.org/abs/2601.00001) — Ada Lovelace et al."
        " · 2026 · read · ★★★★★"]


def test_csv_and_json_carry_the_same_records(settings, listed):
    entries = export.select_entries(settings, states=("read", "queued", "inbox"))
    rows = list(csv.DictReader(io.StringIO(export.reading_list(entries, "csv"))))
    records = json.loads(export.reading_list(entries, "json"))
    assert [row["arxiv_id"] for row in rows] == [r["arxiv_id"] for r in records] == [
        "2601.00002", "2601.00001", "2601.00003"]
    assert rows[0]["title"] == 'Queued, with "quotes"'
    assert rows[1]["authors"] == "Ada Lovelace; Alan Turing" and rows[1]["rating"] == "5"
    assert records[1]["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert records[1]["read_on"] == "2026-11-02" and records[1]["week"] == "2026-W45"
    assert records[2]["state"] == "inbox" and records[2]["rating"] is None
    assert set(records[0]) == set(export.LIST_FIELDS)


def test_cli_list(settings, listed, tmp_path, capsys):
    assert main(["export", "list", "--all", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["export", "list", "--state", "read", "-o", str(tmp_path / "l.md")]) == 0
    assert "Wrote 1 papers" in capsys.readouterr().out
    assert (tmp_path / "l.md").read_text(encoding="utf-8").startswith("- [x] [Read")
    with pytest.raises(SystemExit) as stopped:
        main(["export", "list", "--format", "xml"])
    assert stopped.value.code == 2
