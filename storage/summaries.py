"""All SQL about summaries: what is pending, storing a batch, and the summary to show."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pyarrow as pa

from storage.db import connect, plain_value, register_ids, rows_of, transaction

_TEXT = ("tldr", "problem", "method", "results", "why_it_matters")
_COLUMNS = ("arxiv_id", "backend", "model", "prompt_version", "version", *_TEXT,
            "extractive", "fallback_fields", "ungrounded_fields", "created_at")
_SCHEMA = pa.schema([
    ("arxiv_id", pa.string()), ("backend", pa.string()), ("model", pa.string()),
    ("prompt_version", pa.string()), ("version", pa.int32()),
    *[(name, pa.string()) for name in _TEXT],
    ("extractive", pa.bool_()), ("fallback_fields", pa.list_(pa.string())),
    ("ungrounded_fields", pa.list_(pa.string())), ("created_at", pa.timestamp("us", tz="UTC")),
])


# A generated summary none of whose fields the model wrote (stored before replies were
# checked): worth nothing, so it counts as missing and is made again.
_NOTHING_GENERATED = """
    NOT s.extractive AND len(coalesce(s.fallback_fields, [])) >=
        (s.tldr <> '')::INT + (s.problem <> '')::INT + (s.method <> '')::INT
        + (s.results <> '')::INT + (s.why_it_matters <> '')::INT"""


SUMMARY_JOIN = """LEFT JOIN summaries s ON s.arxiv_id = p.arxiv_id AND s.backend = $backend
     AND s.model = $model AND s.prompt_version = $prompt_version AND s.version = p.version"""
SUMMARY_MISSING = f"(s.arxiv_id IS NULL OR ({_NOTHING_GENERATED}))"
"""A paper ``p`` with no summary ``s`` (``SUMMARY_JOIN``) from this backend, model and prompt
at its current version (a generated one with no field the model wrote counts as none)."""


def pending_ids(db_path: Path, backend: str, model: str, prompt_version: str) -> list[str]:
    """Papers with no summary from this backend/model/prompt at their current version (a
    generated one with no field the model wrote counts as none)."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(f"""
            SELECT p.arxiv_id FROM papers p {SUMMARY_JOIN}
            WHERE {SUMMARY_MISSING} ORDER BY p.arxiv_id""",
                           {"backend": backend, "model": model,
                            "prompt_version": prompt_version}).fetchall()
    return [row[0] for row in rows]


def _arrow(summaries: Iterable) -> pa.Table:
    columns = {name: [] for name in _COLUMNS}
    for summary in summaries:
        for name in _COLUMNS:
            columns[name].append(getattr(summary, name))
    for name in ("fallback_fields", "ungrounded_fields"):
        columns[name] = [list(value) for value in columns[name]]
    columns["created_at"] = [value or datetime.now(timezone.utc)
                             for value in columns["created_at"]]
    return pa.table(columns, schema=_SCHEMA)


def save_summaries(db_path: Path, summaries: list) -> int:
    """Store a batch of ``Summary`` objects in one transaction, replacing older ones
    from the same backend/model/prompt. Returns how many were written."""
    if not summaries:
        return 0
    incoming = _arrow(summaries)
    names = ", ".join(_COLUMNS)
    with transaction(db_path) as con:
        con.register("incoming_summaries", incoming)
        con.execute(f"INSERT OR REPLACE INTO summaries ({names}) "
                    f"SELECT {names} FROM incoming_summaries")
        con.unregister("incoming_summaries")
    return len(summaries)


def merge_results(con, relation: str) -> int:
    """Inside the caller's transaction: the summaries in ``relation`` (a view with the
    columns of ``summaries``; rows whose ``backend`` is null carry none), kept only where
    the row's version is the stored one. Returns how many were written."""
    names = ", ".join(_COLUMNS)
    current = (f"FROM {relation} r JOIN papers p ON p.arxiv_id = r.arxiv_id "
               "AND p.version = r.version WHERE r.backend IS NOT NULL")
    written = con.execute(f"SELECT count(*) {current}").fetchone()[0]
    con.execute(f"INSERT OR REPLACE INTO summaries ({names}) "
                f"SELECT {', '.join('r.' + name for name in _COLUMNS)} {current}")
    return written


MAX_BORROWED_FIELDS = 2
"""A generated summary with more fields copied from the abstract than this (or with its
TL;DR copied) is mostly extractive: it ranks below a real extractive summary."""

# The summary to show: one at the paper's current version when there is one; then a
# generated one, an extractive one, a mostly borrowed generated one; the newest first.
# `stale` says the paper moved on since.
_BEST = f"""
SELECT s.*, s.version <> p.version AS stale
FROM summaries s JOIN papers p USING (arxiv_id)
WHERE s.arxiv_id IN (SELECT arxiv_id FROM wanted)
QUALIFY row_number() OVER (PARTITION BY s.arxiv_id
        ORDER BY s.version = p.version DESC,
                 CASE WHEN s.extractive THEN 1
                      WHEN list_contains(coalesce(s.fallback_fields, []), 'tldr')
                           OR len(coalesce(s.fallback_fields, [])) > {MAX_BORROWED_FIELDS} THEN 2
                      ELSE 0 END,
                 s.created_at DESC) = 1
"""


def summary_for(db_path: Path, arxiv_ids: Iterable[str]) -> dict[str, dict]:
    """``{arxiv_id: summary dict}`` for the ids that have one. Fields: tldr, problem,
    method, results, why_it_matters, backend, model, prompt_version, version, created_at
    (ISO text), extractive, fallback_fields (list), ungrounded_fields (list: fields the
    model wrote that were not grounded in the abstract, replaced; also in fallback_fields),
    stale."""
    wanted = list(dict.fromkeys(arxiv_ids))
    if not wanted:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, wanted)
        records = rows_of(con.execute(_BEST))
    found = {}
    for record in records:
        record["created_at"] = plain_value(record["created_at"])
        for name in ("fallback_fields", "ungrounded_fields"):
            record[name] = list(record[name] or [])
        found[record["arxiv_id"]] = record
    return found


def summary_counts(db_path: Path) -> list[dict]:
    """How many current summaries each backend/model/prompt holds (for status output)."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("""
            SELECT s.backend, s.model, s.prompt_version, count(*) FILTER (s.version = p.version),
                   count(*) FILTER (s.version <> p.version)
            FROM summaries s JOIN papers p USING (arxiv_id)
            GROUP BY ALL ORDER BY ALL""").fetchall()
    return [{"backend": b, "model": m, "prompt_version": v, "current": c, "stale": s}
            for b, m, v, c, s in rows]
