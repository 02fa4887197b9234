"""`octet search`, the twin of Browse, on a real DuckDB file: the same matches, related
papers and counts as the page's search, filters by family and author, and one line naming
the fix for bad input (a real subprocess where the exit code and streams matter)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.stages.search import search_text
from storage.search import RELATED_MIN_SCORE, BrowseFilter
from tests.helpers import store_families, store_real_papers
from tests.test_app_browse import store_read_papers

REPO = Path(__file__).resolve().parents[1]


def _octet(home: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("OCTET_")}
    environment.update(OCTET_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "search", *args], cwd=REPO,
                          env=environment, capture_output=True, text=True, timeout=120)


def _json(capsys, *args: str) -> dict:
    assert main(["search", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_keyword_search_in_a_real_process(settings, octet_home):
    papers = store_real_papers(settings.db_path, 40)
    done = _octet(octet_home, "segmentation", "--keyword", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    expected = search_text(settings.db_path, BrowseFilter(text="segmentation", limit=20), False)
    assert found["match_total"] == expected.match_total > 0
    assert [p["arxiv_id"] for p in found["matches"]] == [c["arxiv_id"] for c in expected.matches]
    assert found["related"] == [] and found["related_total"] == 0
    first = next(p for p in papers if p.arxiv_id == found["matches"][0]["arxiv_id"])
    assert found["matches"][0]["title"] == first.title
    assert found["matches"][0]["authors"] == list(first.authors)
    text = _octet(octet_home, "segmentation", "--keyword", "--limit", "2")
    lines = text.stdout.splitlines()
    assert lines[0] == f"{expected.match_total} papers with every word (in the title, abstract or authors)."
    assert lines[2] == f"Every word, newest first (2 of {expected.match_total}):"
    assert lines[3].split()[:2] == [expected.matches[0]["arxiv_id"],
                                    expected.matches[0]["listed_date"]]
    assert "None" not in text.stdout and text.stderr == ""


def test_related_papers_follow_with_their_scores_above_the_cut_off(settings, capsys):
    store_read_papers(settings.db_path, 400)
    found = _json(capsys, "vision language model", "--limit", "5")
    expected = search_text(settings.db_path, BrowseFilter(text="vision language model", limit=5),
                           True, 5)
    assert (found["match_total"], found["related_total"]) == (expected.match_total,
                                                               expected.related_total)
    assert [p["arxiv_id"] for p in found["related"]] == [c["arxiv_id"] for c in expected.related]
    scores = [p["score"] for p in found["related"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert min(scores) >= RELATED_MIN_SCORE == found["min_score"]
    assert main(["search", "vision language model", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert f"; {expected.related_total} more related by meaning (similarity >= 0.40)." in out
    assert f"Related by meaning, best first (3 of {expected.related_total}):" in out
    assert f"  {scores[0]:.2f}  {found['related'][0]['arxiv_id']}" in out


def test_family_and_author_filters(settings, capsys):
    papers = store_real_papers(settings.db_path, 40)
    store_families(settings.db_path, {papers[2].arxiv_id: ["SLM"], papers[5].arxiv_id: ["SLM"]})
    found = _json(capsys, "--family", "slm")
    assert found["family"] == "SLM" and found["match_total"] == 2
    assert {p["arxiv_id"] for p in found["matches"]} == {papers[2].arxiv_id, papers[5].arxiv_id}
    assert all(p["labels"] == ["SLM"] for p in found["matches"])
    author = papers[9].authors[0]
    found = _json(capsys, "--author", author)
    assert papers[9].arxiv_id in [p["arxiv_id"] for p in found["matches"]]
    assert all(author in p["authors"] for p in found["matches"])
    # One name holds every word, the last may be cut short (as typed): the first name of one
    # author and the surname of another match nothing.
    assert papers[9].arxiv_id in [p["arxiv_id"] for p in
                                  _json(capsys, "--author", author[:-1])["matches"]]
    mixed = f"{author.split()[0]} {papers[9].authors[1].split()[-1]}"
    assert _json(capsys, "--author", mixed)["match_total"] == 0


@pytest.mark.parametrize("args, says", [
    ([], "give words to search for, --author NAME or --family CODE"),
    (["x", "--family", "GPT"], "'GPT' is not a family; use one of LLM, LCM, LAM, MoE"),
    (["x", "--limit", "0"], "--limit 0 lists nothing; give a number of 1 or more"),
])
def test_bad_input_is_one_line_naming_the_fix(settings, octet_home, args, says):
    store_real_papers(settings.db_path, 3)
    done = _octet(octet_home, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and says in done.stderr


def test_nothing_found_and_an_empty_database(settings, capsys):
    assert main(["search", "wombatformer", "--keyword"]) == 0
    assert capsys.readouterr().out.strip() == (
        "No stored paper matches; try fewer or shorter words, or another filter.")
    store_real_papers(settings.db_path, 5)
    found = _json(capsys, "wombatformer")
    assert (found["match_total"], found["related_total"], found["matches"]) == (0, 0, [])
