"""``octet backfill``: store a file's papers, then classify and summarize every stored paper
that lacks them, on this process (``local``) or on Ray Data (``ray``), shard by shard.

The driver plans the pending papers into Parquet shards, an engine turns each into result
parts (``work``), and the driver merges a shard into DuckDB once all its papers are back,
in one transaction. A rerun of the same command resumes the unfinished job: merged shards
are skipped, the others are done again.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.core.settings import Settings
from pipeline.stages import progress
from pipeline.stages.backfill.inputs import input_files, paper_filter
from pipeline.stages.backfill.plan import BackfillOptions, Job, job_key, new_job_id
from pipeline.stages.papers import ingest_lines
from pipeline.stages.sources import open_jsonl
from storage import backfill as store
from storage.runs import keep_lock_alive

log = logging.getLogger(__name__)


class Stamp:
    """What the results will be stamped with (the head, the summary backend), and what
    the workers are built from."""

    def __init__(self, settings: Settings, stages: tuple[str, ...]):
        from pipeline.stages.families import current_head, user_head_path

        self.head = current_head(settings.home) if "classify" in stages else None
        retrained = self.head and user_head_path(settings.home).is_file()
        self.head_bytes = user_head_path(settings.home).read_bytes() if retrained else None
        self.summary_plan = _summary_plan(settings) if "summarize" in stages else None
        self.provenance = store.Provenance(self.head.version if self.head else None,
                                           *_summary_stamp(self.summary_plan))

    def as_dict(self) -> dict:
        return asdict(self.provenance)


def _summary_plan(settings: Settings):
    from pipeline.stages.summaries import plan_backend

    plan = plan_backend(settings)
    if plan.notice:
        log.warning(plan.notice)
    return plan


def _summary_stamp(plan) -> tuple[str | None, str | None, str | None]:
    if plan is None:
        return None, None, None
    from pipeline.stages.summaries import build_summarizer

    summarizer = build_summarizer(plan)  # generative models load on first use: cheap here
    try:
        return summarizer.backend, summarizer.model, summarizer.prompt_version
    finally:
        summarizer.close()


# ---- the job ------------------------------------------------------------------------------

def run_backfill(settings: Settings, options: BackfillOptions, report: dict) -> dict:
    """Store, plan, run and merge; fills ``report`` and returns its ``backfill`` part."""
    files = input_files(options.source)
    stamp = Stamp(settings, options.stages)
    key = job_key(files, options, stamp.as_dict())
    held = _resumable(settings, store.unfinished_job(settings.db_path, key))
    job = _resumed(settings, held, report) if held else _started(settings, options, key)
    summary = report.setdefault("backfill", {"job_id": job.job_id, "engine": options.engine,
                                             "resumed": bool(held)})
    if not held or held["state"] == "storing":
        started = time.perf_counter()
        _store(settings, options, files, job, report)
        summary["store_seconds"] = round(time.perf_counter() - started, 3)
        _plan(settings, options, stamp, job, summary)
    job = replace(job, shards={row["shard"]: row["papers"]
                               for row in store.open_shards(settings.db_path, job.job_id)})
    _compute(settings, options, stamp, job, summary)
    return summary


def _resumable(settings: Settings, held: dict | None) -> dict | None:
    """The unfinished job to resume, unless its shards were deleted meanwhile (then it is
    closed as failed, and a new job plans what is still missing)."""
    if held and held["state"] == "running" and not (Path(held["staging"]) / "input").is_dir():
        log.warning("backfill %s lost its staging folder %s; planning again", held["job_id"],
                    held["staging"])
        store.set_job_state(settings.db_path, held["job_id"], "failed")
        return None
    return held


def _started(settings: Settings, options: BackfillOptions, key: str) -> Job:
    """A new job; unfinished jobs of other inputs or options are closed (their papers are
    stored, and what they lacked is planned again here) and their shards deleted."""
    for staging in store.close_unfinished_jobs(settings.db_path):
        shutil.rmtree(staging, ignore_errors=True)
    job_id = new_job_id(key)
    staging = Path(options.staging or settings.home / "backfill") / job_id
    store.start_job(settings.db_path, {"job_id": job_id, "job_key": key,
                                       "source": options.source, "engine": options.engine,
                                       "stages": options.stages, "staging": str(staging)})
    return Job(job_id, key, staging, options.stages)


def _resumed(settings: Settings, held: dict, report: dict) -> Job:
    log.info("resuming backfill %s (%s)", held["job_id"], held["state"])
    report["fetched"] = held["papers"]
    return Job(held["job_id"], held["job_key"], Path(held["staging"]), tuple(held["stages"]))


def _store(settings: Settings, options: BackfillOptions, files: list[Path], job: Job,
           report: dict) -> None:
    """Store the input's papers as ``octet import`` does (filtered by the options)."""
    keep = paper_filter(options.categories, options.since, options.until)
    for path in files:
        with open_jsonl(path) as lines:
            ingest_lines(settings.db_path, lines, report, keep=keep)
        if "damaged" in report:
            break
    store.set_job_state(settings.db_path, job.job_id, "storing", papers=report["fetched"])


def _plan(settings: Settings, options: BackfillOptions, stamp: Stamp, job: Job,
          summary: dict) -> None:
    shards = store.plan_shards(settings.db_path, job.job_id, options.stages, stamp.provenance,
                               job.input_folder, options.shard_size)
    summary["planned_shards"] = len(shards)
    summary["planned_papers"] = sum(row["papers"] for row in shards)


def _compute(settings: Settings, options: BackfillOptions, stamp: Stamp, job: Job,
             summary: dict) -> None:
    """Run the engine over the open shards and merge each as it completes."""
    started = time.perf_counter()
    for shard in job.shards:  # parts of an earlier, unfinished try are not trusted
        shutil.rmtree(job.results_folder / f"shard-{shard:06d}", ignore_errors=True)
    merger = Merger(settings, job, summary)
    with progress.bar(f"backfill ({options.engine})", total=sum(job.shards.values())) as bar:
        merger.bar = bar
        for part in _engine(options).run(settings, job, stamp, options) if job.shards else ():
            merger.take(part)
    merger.finish()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    summary["merge_seconds"] = round(summary["merge_seconds"], 3)
    papers = summary.get("merged_papers", 0)
    summary["papers_per_second"] = round(papers / summary["seconds"], 1) if papers else 0.0
    _close(settings, job, summary)


def _engine(options: BackfillOptions):
    if options.engine == "ray":
        from pipeline.stages.backfill.ray_engine import RayEngine
        return RayEngine()
    from pipeline.stages.backfill.local import LocalEngine
    return LocalEngine()


def _close(settings: Settings, job: Job, summary: dict) -> None:
    """The job is done, or failed when a shard failed (a rerun plans the papers still
    lacking results again); either way its staging folder goes."""
    failed = summary.get("failed_shards", 0)
    store.set_job_state(settings.db_path, job.job_id, "failed" if failed else "done")
    shutil.rmtree(job.staging, ignore_errors=True)


class Merger:
    """Collects the parts the engine reports and merges each shard once all its papers
    are back; a shard with a failed batch is recorded as failed and never merged."""

    def __init__(self, settings: Settings, job: Job, summary: dict):
        self.settings, self.job, self.summary = settings, job, summary
        self.parts: dict[int, dict[str, int]] = {shard: {} for shard in job.shards}
        self.errors: dict[int, str] = {}
        self.bar: progress.Bar | None = None
        for name in ("merged_shards", "merged_papers", "failed_shards", "scores", "summaries",
                     "summary_errors", "merge_seconds"):
            summary.setdefault(name, 0)

    def take(self, part: dict) -> None:
        shard = int(part["shard"])
        if shard not in self.parts or part["path"] in self.parts[shard]:
            return  # a shard merged already, or a retried task's second report
        if part.get("error"):
            self.errors.setdefault(shard, part["error"])
            return
        self.parts[shard][part["path"]] = int(part["rows"])
        self.summary["summary_errors"] += int(part.get("summary_errors") or 0)
        if self.bar:
            self.bar.update(int(part["rows"]))
        if shard not in self.errors and self._complete(shard):
            self._merge(shard)

    def _complete(self, shard: int) -> bool:
        parts = self.parts[shard]
        if sum(parts.values()) < self.job.shards[shard]:
            return False
        ids = {value for path in parts for value in
               pq.read_table(path, columns=["arxiv_id"]).column("arxiv_id").to_pylist()}
        return len(ids) >= self.job.shards[shard]

    def _merge(self, shard: int) -> None:
        log.info("merging shard %d of backfill %s", shard, self.job.job_id)
        started = time.perf_counter()
        counts = store.merge_shard(self.settings.db_path, self.job.job_id, shard,
                                   [Path(path) for path in self.parts.pop(shard)])
        self.summary["merge_seconds"] += time.perf_counter() - started
        log.info("merged shard %d of backfill %s", shard, self.job.job_id)
        keep_lock_alive(self.settings.home)  # a long backfill that moves on is not stuck
        self.summary["merged_shards"] += 1
        self.summary["merged_papers"] += self.job.shards[shard]
        self.summary["scores"] += counts["scores"]
        self.summary["summaries"] += counts["summaries"]
        if self.bar:
            self.bar.note(f"{self.summary['merged_shards']}/{len(self.job.shards)} shards merged")

    def finish(self) -> None:
        """Every shard neither merged nor complete is failed (its error, or missing rows)."""
        for shard in list(self.parts):
            reason = self.errors.get(shard) or "the engine returned only part of its papers"
            store.fail_shard(self.settings.db_path, self.job.job_id, shard, reason)
            self.summary["failed_shards"] += 1
            self.summary.setdefault("shard_errors", {})[str(shard)] = reason

