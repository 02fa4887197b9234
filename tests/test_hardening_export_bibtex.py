"""Issue 12, item 3: paper text cannot inject into the BibTeX export.

The hostile set is ``tests/fixtures/hostile/export/bibtex_papers.json``: categories,
identifiers, DOIs and journal references that try to add a field or an entry, and ``$…$``
math that tries to read files, write files or run commands. Every paper must give exactly
one entry with only Octet's fields, and the set must compile with pdflatex + bibtex (shell
escape off) and pass biber without anything hostile reaching TeX.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone

import bibtexparser
import pytest

from pipeline.core.paper import Paper
from pipeline.stages import export
from storage.papers import upsert_papers
from tests.helpers import REPO, set_reading

HOSTILE = json.loads((REPO / "tests/fixtures/hostile/export/bibtex_papers.json").read_text("utf-8"))
FIELDS = {"title", "author", "year", "journal", "howpublished", "eprint", "archivePrefix",
          "primaryClass", "url", "doi"}
SENTINEL = "OCTET-SENTINEL-READ"


def hostile_papers() -> list[Paper]:
    """The fixture's papers as stored papers."""
    return [Paper(arxiv_id=row["arxiv_id"], version=1, title=row["title"],
                  authors=tuple(row["authors"]), primary_category=row["primary_category"],
                  categories=tuple(row["categories"]), doi=row.get("doi"),
                  journal_ref=row.get("journal_ref"),
                  published=datetime(2026, 1, 2, tzinfo=timezone.utc))
            for row in HOSTILE["papers"]]


@pytest.fixture
def bib(settings) -> tuple[str, int]:
    """The .bib text of the hostile set, all of it on the reading list."""
    papers = hostile_papers()
    upsert_papers(settings.db_path, papers)
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "read"} for paper in papers])
    return export.bibtex(settings)


def test_hostile_fields_add_no_field_and_no_entry(bib):
    text, count = bib
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == []
    assert count == len(HOSTILE["papers"]) == len(library.entries)
    assert len(re.findall(r"^@", text, flags=re.MULTILINE)) == count
    for entry in library.entries:
        assert set(entry.fields_dict) <= FIELDS, entry.key
        assert "injected" not in entry.key
    assert "@misc{injected" not in text


def test_unsafe_math_reaches_latex_only_as_text(bib):
    text, _ = bib
    for command in HOSTILE["refused_commands"]:
        assert not re.search(rf"\\{command}(?![a-zA-Z])", text), command
    assert "^^" not in text
    for math in HOSTILE["kept_math"]:
        assert math in text


@pytest.mark.parametrize("value", [row["primary_category"] for row in HOSTILE["papers"][:2]])
def test_every_field_of_an_entry_is_escaped(value):
    paper = Paper(arxiv_id=f"2601.00001}},\n note = {{{value}", version=1, title=value,
                  authors=(value,), primary_category=value, doi=value, journal_ref=value,
                  published=datetime(2026, 1, 2, tzinfo=timezone.utc))
    for variant in (paper, paper.with_changes(journal_ref=None)):
        library = bibtexparser.parse_string(export.bibtex_entry("key2026", variant))
        assert library.failed_blocks == [] and len(library.entries) == 1
        fields = library.entries[0].fields_dict
        assert set(fields) <= FIELDS
        for name, field in fields.items():
            assert "\n" not in field.value and export._balanced(field.value), name


def test_ordinary_identifiers_are_unchanged():
    paper = Paper(arxiv_id="hep-th/9901001", version=1, title="T", authors=("A B",),
                  primary_category="cond-mat.str-el", doi="10.1002/(SICI)1097-4636(199702)34:2<189>3.0.CO;2-I",
                  published=datetime(1999, 1, 2, tzinfo=timezone.utc))
    fields = bibtexparser.parse_string(export.bibtex_entry("k", paper)).entries[0].fields_dict
    assert fields["primaryClass"].value == "cond-mat.str-el"
    assert fields["eprint"].value == "hep-th/9901001"
    assert fields["url"].value == "https://arxiv.org/abs/hep-th/9901001"
    assert fields["doi"].value == "10.1002/(SICI)1097-4636(199702)34:2<189>3.0.CO;2-I"
    assert fields["howpublished"].value == "arXiv:hep-th/9901001"


@pytest.mark.parametrize("math", ["$\\input{x}$", "$\\immediate\\write18{ls}$", "$\\def\\a{b}$",
                                  "$\\csname input\\endcsname$", "$^^5cinput x$", "$\\catcode`\\@=0$",
                                  "$\\url{http://h/x}$", "$\\href{http://h}{y}$", "$\\frobnicate$",
                                  "$a\\$", "$\\openout1=x$", "$\\include{x}$", "$\\let\\a\\b$"])
def test_math_outside_the_allow_list_is_escaped_as_text(math):
    escaped = export.latex_text(f"A {math} B")
    assert escaped.startswith("A \\$") and escaped.endswith("\\$ B")
    assert not re.search(r"\\(input|immediate|write|def|csname|catcode|url|href|frobnicate|openout|"
                         r"include|let)(?![a-zA-Z])", escaped)
    assert "^^" not in escaped


@pytest.mark.parametrize("math", ["$\\alpha$", "$\\mathcal{O}(n \\log n)$", "$x^2_{i}$",
                                  "$\\mathbf{W}\\in\\mathbb{R}^{d\\times d}$", "$\\text{ReLU}$",
                                  "$\\sqrt{\\frac{a}{b}} \\leq \\infty$", "$\\{1, \\ldots, n\\}$"])
def test_math_inside_the_allow_list_is_kept(math):
    assert export.latex_text(f"A {math} B") == f"A {math} B"


def _tool(name: str) -> str:
    """The path of a TeX tool; a missing one fails the test (never a silent skip)."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed; run .ci/system-deps (it installs "
                    "texlive-latex-base and biber)")
    return path


def _run(command: list[str], folder) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120,
                          errors="replace")


def _write_document(folder, text: str) -> None:
    (folder / "refs.bib").write_text(text, encoding="utf-8")
    (folder / "octet-sentinel.tex").write_text(f"\\typeout{{{SENTINEL}}}\n", encoding="utf-8")
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{amsmath,amssymb,url}\n"
        "\\begin{document}\nReading list.\n\\nocite{*}\n\\bibliographystyle{plain}\n"
        "\\bibliography{refs}\n\\end{document}\n", encoding="utf-8")


def test_hostile_set_compiles_with_bibtex_and_runs_nothing(bib, tmp_path):
    text, count = bib
    latex = [_tool("pdflatex"), "-no-shell-escape", "-interaction=nonstopmode", "doc.tex"]
    bibtex = _tool("bibtex")
    _write_document(tmp_path, text)
    results = [_run(latex, tmp_path), _run([bibtex, "doc"], tmp_path)]
    results += [_run(latex, tmp_path) for _ in range(2)]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert SENTINEL not in log and "(/etc/passwd" not in log
    assert "runsystem" not in log
    assert not (tmp_path / "octet-pwned").exists() and not (tmp_path / "octet-written.tex").exists()
    assert (tmp_path / "doc.bbl").read_text(errors="replace").count("\\bibitem") == count
    assert [result.returncode for result in results] == [0, 0, 0, 0], results[-1].stdout[-3000:]
    assert "error message" not in results[1].stdout


def test_hostile_set_passes_biber_with_one_entry_each(bib, tmp_path):
    text, count = bib
    (tmp_path / "refs.bib").write_text(text, encoding="utf-8")
    result = _run([_tool("biber"), "--tool", "--validate-datamodel", "--output-file=out.bib",
                   "refs.bib"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ERROR" not in result.stdout
    output = (tmp_path / "out.bib").read_text(encoding="utf-8")
    assert len(re.findall(r"^@", output, flags=re.MULTILINE)) == count
    assert not re.search(r"^\s*NOTE\s*=", output, flags=re.MULTILINE | re.IGNORECASE)
    assert "injected" not in "".join(re.findall(r"^@\w+\{([^,]*),", output, flags=re.MULTILINE))
