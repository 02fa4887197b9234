"""Real papers for the reading tests: rows of ../shared/data stored as ``Paper``s."""
from __future__ import annotations

from datetime import datetime, timezone

from pipeline.paper import Paper, abs_url, clean_text, pdf_url
from storage.papers import upsert_papers
from tests.conftest import real_listings


def paper_from_row(row: dict) -> Paper:
    """A stored-shape ``Paper`` from one line of the real listings file."""
    day = row["listed_date"]
    return Paper(
        arxiv_id=row["id"], version=1, title=clean_text(row["title"]),
        authors=tuple(row["authors"]), abstract=clean_text(row["abstract"]),
        categories=tuple(row["categories"]), primary_category=row["categories"][0],
        published=datetime.fromisoformat(day).replace(tzinfo=timezone.utc),
        comment=row.get("comment"), abs_url=abs_url(row["id"]), pdf_url=pdf_url(row["id"]),
        announce_type="new", listed_date=day)


def store_real_papers(db_path, limit: int = 60, day: str | None = None) -> list[Paper]:
    """Store ``limit`` real papers (optionally of one listing day); returns them."""
    papers = [paper_from_row(row) for row in real_listings(limit=limit, day=day)]
    upsert_papers(db_path, papers)
    return papers


def store_embeddings(db_path, papers: list[Paper], vectors) -> None:
    """Store embeddings the way the classify stage does (``storage.families``)."""
    from storage.families import store_results

    store_results(db_path, [{"arxiv_id": p.arxiv_id, "version": p.version, "vector": v}
                            for p, v in zip(papers, vectors)], [], "test")


def store_families(db_path, labeled: dict[str, list[str]], score: float = 0.9) -> None:
    """Store model family labels (with ``score`` for each label, 0.05 for the others)."""
    from pipeline.families import CODES
    from storage.families import store_results

    rows = [{"arxiv_id": arxiv_id, "version": 1, "labels": labels,
             "scores": {code: score if code in labels else 0.05 for code in CODES}}
            for arxiv_id, labels in labeled.items()]
    store_results(db_path, [], rows, "test")
