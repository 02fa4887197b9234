"""All SQL about papers and their versions (tables ``papers`` and ``paper_versions``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timezone
from pathlib import Path

import pyarrow as pa

from pipeline.core.paper import Paper
from storage.db import connect, plain_value, register_ids, transaction

_PAPER_COLUMNS = ("arxiv_id", "version", "title", "authors", "abstract", "categories",
                  "primary_category", "published", "updated", "comment", "journal_ref", "doi",
                  "abs_url", "pdf_url", "announce_type", "listed_date", "hydrated")

_SCHEMA = pa.schema([
    ("arxiv_id", pa.string()), ("version", pa.int32()), ("title", pa.string()),
    ("authors", pa.list_(pa.string())), ("abstract", pa.string()),
    ("categories", pa.list_(pa.string())), ("primary_category", pa.string()),
    ("published", pa.timestamp("us", tz="UTC")), ("updated", pa.timestamp("us", tz="UTC")),
    ("comment", pa.string()), ("journal_ref", pa.string()), ("doi", pa.string()),
    ("abs_url", pa.string()), ("pdf_url", pa.string()), ("announce_type", pa.string()),
    ("listed_date", pa.date32()), ("hydrated", pa.bool_()),
])

PAPER_FIELDS = _PAPER_COLUMNS[:-1]
"""The columns that make a ``Paper`` (all but ``hydrated``)."""


@dataclass
class UpsertResult:
    """What a batch of papers did to the store."""

    new: list[str] = field(default_factory=list)
    """Ids stored for the first time."""
    updated: list[str] = field(default_factory=list)
    """Ids that arrived with a higher version than stored (derived data is now stale)."""
    refreshed: list[str] = field(default_factory=list)
    """Ids at the stored version whose metadata was filled in (e.g. by API hydration)."""
    unchanged: list[str] = field(default_factory=list)
    """Ids that changed nothing."""


def _arrow(papers: list[Paper], hydrated: bool) -> pa.Table:
    # getattr, not dataclasses.asdict: asdict deep-copies every field and cost a third of
    # a 75k-paper import.
    rows = {name: [getattr(paper, name) for paper in papers] for name in _PAPER_COLUMNS[:-1]}
    rows["authors"] = [list(authors) for authors in rows["authors"]]
    rows["categories"] = [list(categories) for categories in rows["categories"]]
    rows["listed_date"] = [date.fromisoformat(day) if day else None for day in rows["listed_date"]]
    rows["hydrated"] = [hydrated] * len(papers)
    return pa.table(rows, schema=_SCHEMA)


def _latest_per_id(papers: list[Paper]) -> list[Paper]:
    best: dict[str, Paper] = {}
    for paper in papers:
        held = best.get(paper.arxiv_id)
        if held is None or paper.version > held.version:
            best[paper.arxiv_id] = paper
        elif paper.version == held.version:
            best[paper.arxiv_id] = _merge_same_version(held, paper)
    return list(best.values())


def _merge_same_version(first: Paper, second: Paper) -> Paper:
    """One paper listed in several categories: keep every category, fill blanks."""
    categories = tuple(dict.fromkeys(first.categories + second.categories))
    filled = {name: getattr(second, name) for name in ("comment", "journal_ref", "doi",
                                                       "published", "updated")
              if getattr(first, name) in (None, "") and getattr(second, name)}
    # "new" beats "cross": the paper is new today whichever feed listed it first.
    announce = first.announce_type
    if second.announce_type in ("new", "replace") and first.announce_type.endswith("cross"):
        announce = second.announce_type
    return first.with_changes(categories=categories, announce_type=announce, **filled)


_CLASSIFY = """
SELECT i.arxiv_id,
       CASE WHEN p.arxiv_id IS NULL THEN 'new'
            WHEN i.version > p.version THEN 'updated'
            WHEN i.version < p.version THEN 'unchanged'
            WHEN (i.hydrated AND NOT p.hydrated)
              OR i.title IS DISTINCT FROM p.title
              OR i.abstract IS DISTINCT FROM p.abstract
              OR i.doi IS DISTINCT FROM p.doi AND i.doi IS NOT NULL
              OR i.journal_ref IS DISTINCT FROM p.journal_ref AND i.journal_ref IS NOT NULL
              OR i.comment IS DISTINCT FROM p.comment AND i.comment IS NOT NULL
              OR list_sort(i.categories) IS DISTINCT FROM list_sort(p.categories)
              THEN 'refreshed'
            ELSE 'unchanged' END AS outcome
FROM incoming i LEFT JOIN papers p USING (arxiv_id)
"""

_INSERT_COLUMNS = ", ".join(_PAPER_COLUMNS)


def upsert_papers(db_path: Path, papers: list[Paper], hydrated: bool = True) -> UpsertResult:
    """Store a batch in one transaction: new ids inserted, higher versions replace the
    row (the old version stays in ``paper_versions``), same versions fill blanks."""
    result = UpsertResult()
    papers = _latest_per_id(papers)
    if not papers:
        return result
    incoming = _arrow(papers, hydrated)
    with transaction(db_path) as con:
        con.register("incoming", incoming)
        outcomes = con.execute(_CLASSIFY).fetchall()
        for arxiv_id, outcome in outcomes:
            getattr(result, outcome).append(arxiv_id)
        replace_ids = pa.table({"arxiv_id": result.updated + result.refreshed})
        con.register("replace_ids", replace_ids)
        _replace_rows(con)
        con.execute(f"""
            INSERT INTO papers ({_INSERT_COLUMNS})
            SELECT {_INSERT_COLUMNS}
            FROM incoming WHERE arxiv_id IN (SELECT arxiv_id FROM incoming EXCEPT
                                             SELECT arxiv_id FROM papers)""")
        con.execute("""
            INSERT INTO paper_versions (arxiv_id, version, title, abstract, updated)
            SELECT arxiv_id, version, title, abstract, updated FROM incoming
            ON CONFLICT DO UPDATE SET updated = coalesce(excluded.updated, paper_versions.updated)""")
        con.unregister("incoming")
        con.unregister("replace_ids")
    return result


def _replace_rows(con) -> None:
    """Rewrite the rows of updated/refreshed ids, keeping first_seen and any blank
    field the incoming record lacks (an RSS record must not erase a hydrated DOI)."""
    con.execute("""
        CREATE TEMP TABLE merged AS
        SELECT i.arxiv_id, i.version, i.title,
               CASE WHEN len(i.authors) > 0 THEN i.authors ELSE p.authors END AS authors,
               CASE WHEN i.abstract <> '' THEN i.abstract ELSE p.abstract END AS abstract,
               list_concat(i.categories, list_filter(p.categories, c -> NOT list_contains(i.categories, c)))
                   AS categories,
               coalesce(nullif(i.primary_category, ''), p.primary_category) AS primary_category,
               coalesce(i.published, p.published) AS published,
               coalesce(i.updated, p.updated) AS updated,
               coalesce(i.comment, p.comment) AS comment,
               coalesce(i.journal_ref, p.journal_ref) AS journal_ref,
               coalesce(i.doi, p.doi) AS doi,
               i.abs_url, i.pdf_url,
               CASE WHEN i.version > p.version THEN i.announce_type ELSE p.announce_type END
                   AS announce_type,
               coalesce(i.listed_date, p.listed_date) AS listed_date,
               (i.hydrated OR (p.hydrated AND i.version = p.version)) AS hydrated,
               p.first_seen
        FROM incoming i JOIN papers p USING (arxiv_id)
        WHERE i.arxiv_id IN (SELECT arxiv_id FROM replace_ids)""")
    con.execute("DELETE FROM papers WHERE arxiv_id IN (SELECT arxiv_id FROM replace_ids)")
    con.execute(f"INSERT INTO papers ({_INSERT_COLUMNS}, first_seen) "
                f"SELECT {_INSERT_COLUMNS}, first_seen FROM merged")
    con.execute("DROP TABLE merged")


def count_papers(db_path: Path) -> int:
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT count(*) FROM papers").fetchone()[0]


def unhydrated_ids(db_path: Path, limit: int = 5000) -> list[str]:
    """Ids announced by RSS whose API fields are still missing (hydration failed)."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT arxiv_id FROM papers WHERE NOT hydrated "
                           "ORDER BY arxiv_id LIMIT ?", [limit]).fetchall()
    return [row[0] for row in rows]


def existing_versions(db_path: Path, arxiv_ids: list[str]) -> dict[str, int]:
    """The stored version of each id that is stored."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        rows = con.execute("SELECT arxiv_id, version FROM papers "
                           "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)").fetchall()
    return dict(rows)


def _paper_dict(con, arxiv_id: str) -> dict | None:
    cursor = con.execute("SELECT * FROM papers WHERE arxiv_id = ?", [arxiv_id])
    row = cursor.fetchone()
    if row is None:
        return None
    names = [column[0] for column in cursor.description]
    record = dict(zip(names, row))
    record["versions"] = [
        {"version": v, "title": t, "updated": plain_value(u), "seen_at": plain_value(s)}
        for v, t, u, s in con.execute(
            "SELECT version, title, updated, seen_at FROM paper_versions "
            "WHERE arxiv_id = ? ORDER BY version", [arxiv_id]).fetchall()]
    return record


def get_paper(db_path: Path, arxiv_id: str) -> dict | None:
    """The stored paper as a plain dict (JSON-ready values), with ``versions``; or None."""
    with connect(db_path, read_only=True) as con:
        record = _paper_dict(con, arxiv_id)
    if record is None:
        return None
    return {key: plain_value(value) for key, value in record.items()}


def load_papers(db_path: Path, arxiv_ids: list[str] | None = None) -> list[Paper]:
    """Stored papers as ``Paper`` objects (all, or the given ids), in id order."""
    where = ""
    with connect(db_path, read_only=True) as con:
        if arxiv_ids is not None:
            register_ids(con, arxiv_ids)
            where = "WHERE arxiv_id IN (SELECT arxiv_id FROM wanted)"
        rows = con.execute(f"SELECT {', '.join(_PAPER_COLUMNS[:-1])} FROM papers {where} "
                           "ORDER BY arxiv_id").fetchall()
    return [_paper_from_row(row) for row in rows]


def _paper_from_row(row) -> Paper:
    return paper_from_record(dict(zip(PAPER_FIELDS, row)))


def paper_from_record(record: dict) -> Paper:
    """A ``Paper`` from a stored row's values by column name (``PAPER_FIELDS``), as DuckDB
    and Arrow give them: lists, aware timestamps, a date."""
    record["authors"] = tuple(record["authors"] or ())
    record["categories"] = tuple(record["categories"] or ())
    for name in ("published", "updated"):
        if record[name] is not None:
            record[name] = record[name].astimezone(timezone.utc)
    if record["listed_date"] is not None:
        record["listed_date"] = record["listed_date"].isoformat()
    return Paper(**record)


def last_listed_date(db_path: Path) -> str | None:
    """The newest daily-listing date stored (YYYY-MM-DD), or None."""
    with connect(db_path, read_only=True) as con:
        value = con.execute("SELECT max(listed_date) FROM papers "
                            "WHERE announce_type IN ('new','cross','replace','replace-cross')"
                            ).fetchone()[0]
    return value.isoformat() if value else None


def paper_with_versions(db_path: Path, arxiv_id: str) -> dict | None:
    """The stored paper as ``get_paper`` gives it, with ``versions`` holding every version
    Octet has seen, oldest first, each with its ``abstract`` too (to say what changed);
    None when not stored. One connection: the paper page asks on every rerun."""
    with connect(db_path, read_only=True) as con:
        record = _paper_dict(con, arxiv_id)
        if record is None:
            return None
        record["versions"] = [
            {"version": version, "title": title, "abstract": abstract, "updated": updated,
             "seen_at": seen_at}
            for version, title, abstract, updated, seen_at in con.execute(
                "SELECT version, title, abstract, updated, seen_at FROM paper_versions "
                "WHERE arxiv_id = ? ORDER BY version", [arxiv_id]).fetchall()]
    record["versions"] = [{key: plain_value(value) for key, value in version.items()}
                          for version in record["versions"]]
    return {key: plain_value(value) for key, value in record.items()}
