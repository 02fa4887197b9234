"""BibTeX export: parses back, stable unique keys, escaping that BibTeX and LaTeX accept."""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone

import bibtexparser
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from pipeline.stages import export
from pipeline.cli import main
from pipeline.core.paper import Paper, clean_text
from storage.papers import upsert_papers
from tests.helpers import real_listings, set_reading

HOSTILE_TITLES = [r"$\alpha$-Nets: {Unbalanced \textbf{x} 100% & #1 _ ~ ^ }}",
                  "🚀 Rocket 👨‍👩‍👧 Models", "Ångström Über Čapek ß Øre — “quoted” … ≤ 5 × 3",
                  "Ω and β-VAE in $\\mathcal{O}(n)$ time", 'a / b : c * d ? e " f < g > h | i',
                  "$unbalanced {math$ and $$", "../../x", "", "@inproceedings{evil, title={x}}"]


def paper_from_row(row: dict) -> Paper:
    return Paper(arxiv_id=row["id"], version=1, title=clean_text(row["title"]),
                 authors=tuple(row["authors"]), abstract=clean_text(row["abstract"]),
                 categories=tuple(row["categories"]), primary_category=row["categories"][0],
                 published=datetime.fromisoformat(row["listed_date"]).replace(tzinfo=timezone.utc))


@pytest.fixture
def papers(settings):
    """Real papers and hostile ones, all on the reading list."""
    real = [paper_from_row(row) for row in real_listings(limit=40)]
    hostile = [Paper(arxiv_id=f"2601.{90000 + n}", version=2, title=title,
                     authors=("Jürgen Schmidhuber", "Ann and Bob", "Plato", "Doe, Jane",
                              "Martin Luther King Jr."),
                     primary_category="cs.LG", published=datetime(2026, 1, 2, tzinfo=timezone.utc),
                     journal_ref="J. Foo & Bar 12 (2026) 1-10 {x" if n % 2 else None,
                     doi="10.1000/x_y{z}" if n % 3 == 0 else None)
               for n, title in enumerate(HOSTILE_TITLES)]
    upsert_papers(settings.db_path, real + hostile)
    set_reading(settings.db_path, [{"arxiv_id": paper.arxiv_id, "state": "read"}
                                          for paper in real + hostile])
    return real + hostile


def parse(text: str):
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == []
    return library


def test_every_paper_parses_back_with_bibtexparser(settings, papers):
    text, count = export.bibtex(settings)
    library = parse(text)
    assert count == len(papers) == len(library.entries)
    by_id = {entry.fields_dict["eprint"].value: entry for entry in library.entries}
    assert set(by_id) == {paper.arxiv_id for paper in papers}
    real = papers[0]
    entry = by_id[real.arxiv_id]
    assert entry.entry_type == "misc"
    assert entry.fields_dict["archivePrefix"].value == "arXiv"
    assert entry.fields_dict["primaryClass"].value == real.primary_category
    assert entry.fields_dict["url"].value == f"https://arxiv.org/abs/{real.arxiv_id}"
    assert entry.fields_dict["year"].value == str(real.published.year)
    assert entry.fields_dict["author"].value.count(" and ") == len(real.authors) - 1
    journal = by_id["2601.90001"]
    assert journal.entry_type == "article" and "journal" in journal.fields_dict
    # An identifier keeps what comes before the first character it may not hold.
    assert by_id["2601.90000"].fields_dict["doi"].value == "10.1000/x_y"


def test_authors_are_unambiguous(settings, papers):
    library = parse(export.bibtex(settings)[0])
    entry = next(e for e in library.entries if e.fields_dict["eprint"].value == "2601.90000")
    assert entry.fields_dict["author"].value == (
        r"Schmidhuber, J{\"{u}}rgen and Bob, Ann {and} and {Plato} and Doe, Jane and "
        "King, Jr., Martin Luther")


def test_keys_are_stable_across_runs_and_unique(settings, papers):
    first = {e.fields_dict["eprint"].value: e.key for e in parse(export.bibtex(settings)[0]).entries}
    assert len(set(first.values())) == len(first)
    assert all(key.isascii() and " " not in key and "," not in key for key in first.values())
    # Ω, β and math are not words; "and" is a stop word.
    assert first["2601.90003"] == "schmidhuber2026vae"
    # A new colliding paper (older, earlier id) arrives: existing keys must not move.
    newcomer = Paper(arxiv_id="2501.00001", version=1, title="Rocket Models",
                     authors=("Jürgen Schmidhuber",), primary_category="cs.LG",
                     published=datetime(2026, 1, 1, tzinfo=timezone.utc))
    upsert_papers(settings.db_path, [newcomer])
    set_reading(settings.db_path, [{"arxiv_id": "2501.00001", "state": "read"}])
    second = {e.fields_dict["eprint"].value: e.key for e in parse(export.bibtex(settings)[0]).entries}
    assert {arxiv_id: second[arxiv_id] for arxiv_id in first} == first
    assert second["2501.00001"] == first["2601.90001"] + "b"


def test_key_is_surname_year_first_significant_word():
    paper = Paper(arxiv_id="1706.03762", version=7, title="Attention Is All You Need",
                  authors=("Ashish Vaswani", "Noam Shazeer"), primary_category="cs.CL",
                  published=datetime(2017, 6, 12, tzinfo=timezone.utc))
    assert export.base_key(paper) == "vaswani2017attention"
    other = Paper(arxiv_id="hep-th/9901001", version=1, title="On the $\\beta$ of Müller",
                  authors=("Jörg Müller-Lüdenscheidt",), primary_category="hep-th")
    assert export.base_key(other) == "mullerludenscheidt1999muller"


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_keeps_braces_balanced(text):
    escaped = export.latex_text(text)
    depth = 0
    for char in escaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert "%" not in escaped.replace("\\%", "")
    assert escaped.replace("\\$", "").count("$") % 2 == 0


def test_math_is_kept_and_text_is_escaped():
    assert export.latex_text(r"$\alpha$-Nets 100% & more") == r"$\alpha$-Nets 100\% \& more"
    assert export.latex_text("a{b") == r"a\textbraceleft{}b"
    assert export.latex_text("Über α") == r"{\"{U}}ber $\alpha$"
    assert export.latex_text("🚀 Rocket") == "Rocket"


def _run(command: list[str], folder) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)


def _require(*tools: str) -> None:
    """A missing TeX tool fails the test with the fix; it is never skipped silently."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; run .ci/system-deps")


def test_bib_compiles_in_a_latex_document(settings, papers, tmp_path):
    _require("bibtex", "pdflatex")
    assert main(["export", "bibtex", "--output", str(tmp_path / "refs.bib")]) == 0
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{url}\n\\begin{document}\nReading list.\n"
        "\\nocite{*}\n\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n")
    latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"]
    assert _run(latex, tmp_path).returncode == 0
    bibtex = _run(["bibtex", "doc"], tmp_path)
    assert bibtex.returncode == 0, bibtex.stdout
    assert "error message" not in bibtex.stdout
    for _ in range(2):
        result = _run(latex, tmp_path)
        assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Citation" not in log or "undefined" not in log
    assert (tmp_path / "doc.bbl").read_text().count("\\bibitem") == len(papers)


def test_bib_validates_with_biber(settings, papers, tmp_path):
    _require("biber")
    assert main(["export", "bibtex", "--output", str(tmp_path / "refs.bib")]) == 0
    result = _run(["biber", "--tool", "--validate-datamodel", "refs.bib"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ERROR" not in result.stdout


def test_cli_writes_to_stdout_or_file(settings, papers, tmp_path, capsys):
    assert main(["export", "bibtex", "--state", "queued"]) == 0
    assert parse(capsys.readouterr().out).entries == []
    assert main(["export", "bibtex", "-o", str(tmp_path / "x.bib")]) == 0
    assert f"Wrote {len(papers)} entries" in capsys.readouterr().out
    assert len(parse((tmp_path / "x.bib").read_text(encoding="utf-8")).entries) == len(papers)
