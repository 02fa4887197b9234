"""Speed of the exports on a real reading list: Obsidian (first export, re-export, import),
BibTeX and the JSON list.

Loads N real papers from ../shared/data, marks half read (rated, with notes) and half
queued, then times each export. Baselines measured in the same run: loading the same
papers from the database (``load_papers``, the floor of every export) and writing N small
files of the same total size straight to disk (the floor of an Obsidian export).
"""
from __future__ import annotations

from bench.common import median_seconds
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS = 3
SIZES = (200, 1000)




def _setup(home: Path, size: int):
    os.environ["OCTET_HOME"] = str(home)
    from pipeline.core.settings import load_settings
    from pipeline.core.paper import Paper, clean_text
    from datetime import datetime, timezone
    from storage import export as store
    from storage.papers import upsert_papers
    from bench.common import real_listings

    settings = load_settings()
    papers = [Paper(arxiv_id=row["id"], version=1, title=clean_text(row["title"]),
                    authors=tuple(row["authors"]), abstract=clean_text(row["abstract"]),
                    categories=tuple(row["categories"]), primary_category=row["categories"][0],
                    published=datetime.fromisoformat(row["listed_date"]).replace(
                        tzinfo=timezone.utc)) for row in real_listings(limit=size)]
    upsert_papers(settings.db_path, papers)
    store.save_reading(settings.db_path, [
        {"arxiv_id": paper.arxiv_id, "state": "read", "rating": 1 + n % 5,
         "notes": f"Note {n}.", "read_on": date(2026, 11, 2), "week": "2026-W45"}
        if n % 2 else {"arxiv_id": paper.arxiv_id, "state": "queued"}
        for n, paper in enumerate(papers)])
    return settings, [paper.arxiv_id for paper in papers]


def _rows(size: int, work: Path) -> list[tuple[str, float, float]]:
    from pipeline.stages import export
    from storage.papers import load_papers

    settings, ids = _setup(work / f"home-{size}", size)
    vault = work / f"vault-{size}"
    fresh = lambda: shutil.rmtree(vault, ignore_errors=True)  # noqa: E731
    floor_load = median_seconds(lambda: load_papers(settings.db_path, ids))
    first = median_seconds(lambda: export.export_obsidian(settings, vault), before=fresh)
    notes = list((vault / "Octet" / "Papers").glob("*.md"))
    texts = [path.read_text(encoding="utf-8") for path in notes]
    plain = work / f"plain-{size}"

    def write_plain():
        shutil.rmtree(plain, ignore_errors=True)
        plain.mkdir()
        for number, text in enumerate(texts):
            (plain / f"{number}.md").write_text(text, encoding="utf-8")
    floor_write = median_seconds(write_plain)
    again = median_seconds(lambda: export.export_obsidian(settings, vault))
    imported = median_seconds(lambda: export.import_obsidian(settings, vault))
    bib = median_seconds(lambda: export.bibtex(settings))
    listing = median_seconds(lambda: export.reading_list(export.select_entries(settings), "json"))
    return [("`export obsidian` (new vault)", first, floor_write),
            ("`export obsidian` (again, nothing changed)", again, floor_write),
            ("`import obsidian` (nothing changed)", imported, floor_write),
            ("`export bibtex`", bib, floor_load),
            ("`export list --format json`", listing, floor_load)]


def main() -> str:
    lines = ["## Export (Obsidian, BibTeX, lists)", "",
             f"Median of {RUNS} runs. Baselines: writing the same notes as plain files "
             "(Obsidian rows) and `load_papers` of the same papers (BibTeX and list rows).", "",
             "| command | papers | median s | baseline s | ratio |", "|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            for command, seconds, baseline in _rows(size, Path(folder)):
                lines.append(f"| {command} | {size} | {seconds:.3f} | {baseline:.3f} | "
                             f"{seconds / baseline:.1f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
