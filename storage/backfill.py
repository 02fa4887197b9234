"""All SQL about backfills (tables ``backfill_jobs`` and ``backfill_shards``): the job and
its shard plan, the Parquet input of each shard, and merging a shard's results.

DuckDB keeps one writer: the engines only read and write Parquet in the staging folder,
and the driver merges a finished shard here in one transaction (its scores, embeddings,
summaries and its 'merged' mark land together or not at all).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.db import connect, plain_value, rows_of, transaction
from storage.families import SCORES_STALE
from storage.papers import PAPER_FIELDS
from storage.families import merge_results as merge_scores
from storage.summaries import SUMMARY_JOIN, SUMMARY_MISSING
from storage.summaries import merge_results as merge_summaries

INPUT_COLUMNS = PAPER_FIELDS
"""The paper columns a shard's input carries: enough to rebuild each ``Paper``."""


@dataclass(frozen=True)
class Provenance:
    """What a current result is stamped with: a result with another stamp is redone."""

    model_version: str | None
    """The family head's version; None when the job does not classify."""

    backend: str | None = None
    """The summary backend; None when the job does not summarize."""

    model: str | None = None
    """The summary model."""

    prompt_version: str | None = None
    """The summary prompt (or extractive algorithm) version."""


# ---- jobs ---------------------------------------------------------------------------------

def unfinished_job(db_path: Path, job_key: str) -> dict | None:
    """The newest job with this key that has not finished: what a rerun resumes."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute(
            "SELECT * FROM backfill_jobs WHERE job_key = ? AND state IN ('storing', 'running') "
            "ORDER BY started_at DESC LIMIT 1", [job_key]))
    return rows[0] if rows else None


def start_job(db_path: Path, job: dict) -> None:
    """Record a new job (``job_id``, ``job_key``, ``source``, ``engine``, ``stages``,
    ``staging``), in state 'storing'."""
    with transaction(db_path) as con:
        con.execute("INSERT INTO backfill_jobs (job_id, job_key, source, engine, stages, staging, "
                    "state) VALUES (?, ?, ?, ?, ?, ?, 'storing')",
                    [job["job_id"], job["job_key"], job["source"], job["engine"],
                     list(job["stages"]), job["staging"]])


def close_unfinished_jobs(db_path: Path) -> list[Path]:
    """Mark every unfinished job failed (a new job supersedes it); returns their staging
    folders, for the caller to delete."""
    with transaction(db_path) as con:
        rows = con.execute("UPDATE backfill_jobs SET state = 'failed', updated_at = now(), "
                           "finished_at = now() WHERE state IN ('storing', 'running') "
                           "RETURNING staging").fetchall()
    return [Path(row[0]) for row in rows]


def set_job_state(db_path: Path, job_id: str, state: str, papers: int | None = None,
                  engine: str | None = None) -> None:
    """Move a job on (``running``, ``done``, ``failed``); ``papers``: how many the input held."""
    finished = "now()" if state in ("done", "failed") else "NULL"
    with transaction(db_path) as con:
        con.execute(f"UPDATE backfill_jobs SET state = ?, updated_at = now(), "
                    f"finished_at = {finished}, papers = coalesce(?, papers), "
                    "engine = coalesce(?, engine) WHERE job_id = ?",
                    [state, papers, engine, job_id])


def latest_job(db_path: Path) -> dict | None:
    """The newest job and its shard counts (``shards``, ``merged``, ``failed``,
    ``papers_left``), or None when no backfill ever ran."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute("""
            SELECT j.*, count(s.shard) AS shards,
                   count(s.shard) FILTER (s.state = 'merged') AS merged,
                   count(s.shard) FILTER (s.state = 'failed') AS failed,
                   coalesce(sum(s.papers) FILTER (s.state <> 'merged'), 0) AS papers_left
            FROM backfill_jobs j LEFT JOIN backfill_shards s USING (job_id)
            GROUP BY ALL ORDER BY j.started_at DESC LIMIT 1"""))
    return {key: plain_value(value) for key, value in rows[0].items()} if rows else None


# ---- the shard plan -----------------------------------------------------------------------

def _plan_sql(stages: tuple[str, ...]) -> str:
    """Papers that lack what ``stages`` make, with which part each lacks."""
    nothing = "SELECT NULL::VARCHAR AS arxiv_id WHERE false"
    classify = (f"SELECT p.arxiv_id FROM papers p LEFT JOIN family_scores s "
                f"ON s.arxiv_id = p.arxiv_id WHERE {SCORES_STALE}"
                if "classify" in stages else nothing)
    summarize = (f"SELECT p.arxiv_id FROM papers p {SUMMARY_JOIN} WHERE {SUMMARY_MISSING}"
                 if "summarize" in stages else nothing)
    columns = ", ".join(f"p.{name}" for name in INPUT_COLUMNS)
    return f"""
        WITH to_classify AS ({classify}), to_summarize AS ({summarize})
        SELECT {columns}, c.arxiv_id IS NOT NULL AS classify, m.arxiv_id IS NOT NULL AS summarize
        FROM papers p LEFT JOIN to_classify c ON c.arxiv_id = p.arxiv_id
        LEFT JOIN to_summarize m ON m.arxiv_id = p.arxiv_id
        WHERE c.arxiv_id IS NOT NULL OR m.arxiv_id IS NOT NULL"""


def plan_shards(db_path: Path, job_id: str, stages: tuple[str, ...], provenance: Provenance,
                folder: Path, shard_size: int) -> list[dict]:
    """Write the papers that lack ``stages``' results as Parquet shards of ``shard_size``
    papers (``folder/shard=N/*.parquet``, id order) and record the plan in one
    transaction. Returns ``[{"shard", "papers"}]``."""
    parameters = {"model_version": provenance.model_version or "", "backend": provenance.backend
                  or "", "model": provenance.model or "", "prompt_version":
                  provenance.prompt_version or "", "shard_size": shard_size}
    folder.mkdir(parents=True, exist_ok=True)
    with transaction(db_path) as con:
        con.execute(f"CREATE TEMP TABLE plan AS SELECT *, "
                    f"((row_number() OVER (ORDER BY arxiv_id) - 1) // $shard_size)::INTEGER "
                    f"AS shard FROM ({_plan_sql(stages)})", _used(stages, parameters))
        if con.execute("SELECT count(*) FROM plan").fetchone()[0]:
            con.execute(f"COPY plan TO '{_quoted(folder)}' (FORMAT parquet, PARTITION_BY (shard), "
                        "WRITE_PARTITION_COLUMNS true, OVERWRITE_OR_IGNORE true)")
        con.execute("INSERT INTO backfill_shards (job_id, shard, papers) "
                    "SELECT ?, shard, count(*) FROM plan GROUP BY shard", [job_id])
        con.execute("UPDATE backfill_jobs SET state = 'running', updated_at = now() "
                    "WHERE job_id = ?", [job_id])
        return rows_of(con.execute("SELECT shard, count(*) AS papers FROM plan "
                                   "GROUP BY shard ORDER BY shard"))


def _used(stages: tuple[str, ...], parameters: dict) -> dict:
    """The named parameters the plan's SQL mentions (DuckDB refuses unused ones)."""
    names = {"shard_size"}
    names |= {"model_version"} if "classify" in stages else set()
    names |= {"backend", "model", "prompt_version"} if "summarize" in stages else set()
    return {name: value for name, value in parameters.items() if name in names}


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def open_shards(db_path: Path, job_id: str) -> list[dict]:
    """The job's shards not merged yet: ``[{"shard", "papers", "state", "attempts"}]``."""
    with connect(db_path, read_only=True) as con:
        return rows_of(con.execute(
            "SELECT shard, papers, state, attempts FROM backfill_shards WHERE job_id = ? "
            "AND state <> 'merged' ORDER BY shard", [job_id]))


def fail_shard(db_path: Path, job_id: str, shard: int, error: str) -> None:
    """Record a shard that failed after its retries: a rerun tries it again."""
    with transaction(db_path) as con:
        con.execute("UPDATE backfill_shards SET state = 'failed', attempts = attempts + 1, "
                    "error = ? WHERE job_id = ? AND shard = ?", [error[:500], job_id, shard])


# ---- merging ------------------------------------------------------------------------------

def merge_shard(db_path: Path, job_id: str, shard: int, parts: list[Path]) -> dict:
    """One transaction: the results in ``parts`` (Parquet files of one shard; a row twice,
    from a retried task, counts once) into embeddings, scores and summaries, and the
    shard marked merged. Returns ``{"scores", "summaries"}`` written."""
    files = ", ".join(f"'{_quoted(part)}'" for part in parts)
    with transaction(db_path) as con:
        con.execute(f"CREATE TEMP VIEW shard_rows AS SELECT * FROM read_parquet([{files}], "
                    "union_by_name = true) QUALIFY row_number() OVER (PARTITION BY arxiv_id "
                    "ORDER BY arxiv_id) = 1")
        counts = {"scores": merge_scores(con, "shard_rows"),
                  "summaries": merge_summaries(con, "shard_rows")}
        con.execute("DROP VIEW shard_rows")
        con.execute("UPDATE backfill_shards SET state = 'merged', merged_at = now(), "
                    "attempts = attempts + 1, error = NULL WHERE job_id = ? AND shard = ?",
                    [job_id, shard])
        con.execute("UPDATE backfill_jobs SET updated_at = now() WHERE job_id = ?", [job_id])
    return counts
