"""The scheduled job: fetch → store → classify → summarize → report.

Every stage works on what is pending in the database, so a crash, a kill or a failed
model call never loses finished work, and the next run picks up where this one stopped.
A stage is a function ``run_stage(settings, report) -> dict`` in its own module; the
dict it returns (counts, errors) becomes ``report["stages"][name]``.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import time
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from pipeline.core.settings import Settings
from pipeline.stages import family_judge, reading, summaries
from pipeline.stages.papers import ingest_backfill, ingest_ids, ingest_lines, ingest_listing
from pipeline.stages.sources import ArxivUnreachable, FeedError, Transport
from storage import runs
from storage.runs import RunLocked, run_lock  # noqa: F401 (RunLocked: what callers catch)

log = logging.getLogger(__name__)

STAGES: dict[str, Callable[[Settings, dict], dict]] = {
    "classify": family_judge.classify_stage, "summarize": summaries.run_stage,
    "reading": reading.run_stage}
"""What each name of ``settings.stages`` runs, after storing; run in ``settings.STAGES`` order."""


def run_stages(settings: Settings, report: dict) -> None:
    """Run every post-fetch stage; one failing stage is reported and does not stop the others."""
    stages = report.setdefault("stages", {})
    for name, run_stage in STAGES.items():
        if name not in settings.stages:
            continue
        started = time.perf_counter()
        try:
            result = run_stage(settings, report) or {}
        except Exception as error:  # a broken stage must not lose what earlier stages stored
            log.error("stage %s failed: %s", name, error, exc_info=True)
            result = {"error": f"{type(error).__name__}: {error}"}
            report.setdefault("errors", []).append(f"{name}: {result['error']}")
        result["seconds"] = round(time.perf_counter() - started, 3)
        stages[name] = result


def _done(report: dict) -> dict:
    """A stage that failed as a whole, an input file damaged part way, an import that
    stored no paper, an asked-for id arXiv does not know, or a backfill shard that failed
    after its retries is an error (exit 1); per-paper
    errors are not. An API that answered no hydration request is arXiv unreachable (exit 3)."""
    failed = (any("error" in stage for stage in report["stages"].values())
              or "damaged" in report or report.get("not_found")
              or report.get("nothing_imported")
              or report.get("backfill", {}).get("failed_shards"))
    report.update(status="done with errors" if failed else "done", exit_code=1 if failed else 0)
    if report.get("unreachable"):
        report.update(status="unreachable", exit_code=3)
    return report


def format_report(report: dict) -> str:
    """The run report as a few plain lines for the terminal (and cron's mail)."""
    lines = [f"octet {report.get('command', 'run')}: {report.get('status', '?')} in "
             f"{report.get('duration_seconds', 0):.1f} s",
             "  announced {announced}, fetched {fetched}, new {new}, updated {updated}, "
             "unchanged {unchanged}, skipped {skipped}".format(
                 **{k: report.get(k, 0) for k in ("announced", "fetched", "new", "updated",
                                                  "unchanged", "skipped")})]
    if report.get("note"):
        lines.append(f"  note: {report['note']}")
    if report.get("unreachable"):
        lines.append(f"  unreachable: {report['unreachable']}")
    for name, stage in report.get("stages", {}).items():
        details = ", ".join(f"{k} {v}" for k, v in stage.items()
                            if k not in ("errors",) and v is not None
                            and not isinstance(v, (list, dict)))
        lines.append(f"  {name}: {details}")
    for key, reason in list(report.get("skipped_reasons", {}).items())[:10]:
        lines.append(f"  skipped {key}: {reason}")
    for error in report.get("errors", [])[:10]:
        lines.append(f"  error: {error}")
    return "\n".join(lines)


def print_report(report: dict, as_json: bool) -> None:
    """The report on stdout: JSON for scripts, a few lines for people and cron's mail."""
    report = {k: v for k, v in report.items() if k != "updated_ids"}
    print(json.dumps(report, indent=2, default=str) if as_json else format_report(report))


def new_report(command: str, settings: Settings) -> dict:
    """An empty run report: the counters every run fills."""
    return {"command": command, "categories": list(settings.categories),
            "started_at": datetime.now(timezone.utc).isoformat(),
            "announced": 0, "fetched": 0, "new": 0, "updated": 0, "unchanged": 0,
            "skipped": 0, "skipped_reasons": {}, "errors": [], "stages": {}}


def record(settings: Settings, report: dict, run_id: int, started: float) -> dict:
    """Finish the report and store it in the run log."""
    report["duration_seconds"] = round(time.perf_counter() - started, 3)
    report["finished_at"] = datetime.now(timezone.utc).isoformat()
    runs.finish_run(settings.db_path, run_id, report)
    return report


# ---- the job -------------------------------------------------------------------

@contextmanager
def run_log(home: Path) -> Iterator[None]:
    """Log the run to ``<home>/logs/octet.log`` (rotating: 5 files of 1 MB)."""
    folder = home / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(folder / "octet.log", maxBytes=1_000_000,
                                                   backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_job(settings: Settings, transport: Transport | None = None) -> dict:
    """Fetch today's listing, store it, run every stage; returns the stored report.

    Raises ``ArxivUnreachable`` (after recording the failed run) when the feed could
    not be fetched, and ``RunLocked`` when another run is working.
    """
    return _fetching_run(settings, "run", transport,
                         lambda transport, report: ingest_listing(settings, transport, report))


def fetch_range(settings: Settings, since: date, until: date,
                transport: Transport | None = None) -> dict:
    """``octet fetch --since``: backfill a date range through the API, then run the stages."""
    def fetch(transport: Transport, report: dict) -> None:
        report["range"] = [since.isoformat(), until.isoformat()]
        ingest_backfill(settings, transport, since, until, report)
    return _fetching_run(settings, "fetch", transport, fetch)


def fetch_ids(settings: Settings, arxiv_ids: list[str],
              transport: Transport | None = None) -> dict:
    """``octet fetch --ids``: store the named papers from the API, then run the stages."""
    def fetch(transport: Transport, report: dict) -> None:
        report["ids"] = list(arxiv_ids)
        ingest_ids(settings, transport, arxiv_ids, report)
    return _fetching_run(settings, "fetch", transport, fetch)


def _fetching_run(settings: Settings, command: str, transport: Transport | None,
                  fetch: Callable[[Transport, dict], None]) -> dict:
    """One run that talks to arXiv, under the run lock and in the run log: ``fetch`` stores
    papers, then the stages run. A fetch that cannot reach arXiv is recorded and re-raised."""
    client = transport or Transport.from_settings(settings)

    def work(report: dict, started: float) -> None:
        fetch(client, report)
        report["stages"]["fetch"] = {"seconds": round(time.perf_counter() - started, 3),
                                     "requests": len(client.request_times),
                                     "retry_wait_seconds": round(client.waited, 1)}
        run_stages(settings, report)
    return _run(settings, command, settings.categories, work, logged=True)


def _run(settings: Settings, command: str, categories, work: Callable[[dict, float], None],
         locked: bool = True, logged: bool = False) -> dict:
    """The frame of every run: the run lock (``RunLocked``, ``RunStuck``), the run log, a
    row in the runs table that ``_recorded`` closes whatever happens, and the report;
    ``work(report, started)`` does the run's own part."""
    lock = run_lock(settings.home, settings.lock_max_age) if locked else nullcontext()
    with lock, (run_log(settings.home) if logged else nullcontext()):
        report = new_report(command, settings)
        started = time.perf_counter()
        if locked:
            runs.close_interrupted_runs(settings.db_path)
        run_id = runs.start_run(settings.db_path, command, tuple(categories))
        with _recorded(settings, report, run_id, started):
            work(report, started)
        return record(settings, _done(report), run_id, started)


@contextmanager
def _recorded(settings: Settings, report: dict, run_id: int, started: float) -> Iterator[None]:
    """Whatever ends a run early, its row is recorded (never left 'running') and the error
    re-raised; an ``ArxivUnreachable`` carries the report, for ``--json``."""
    try:
        yield
    except BaseException as error:
        status, exit_code = _failure(error)
        report.update(status=status, exit_code=exit_code)
        report["errors"].append(str(error) or type(error).__name__)
        try:
            record(settings, report, run_id, started)
        except Exception:  # the database itself failed: the original error is the news
            log.error("could not record run %s", run_id, exc_info=True)
        if isinstance(error, ArxivUnreachable):
            error.report = report
        raise


def _failure(error: BaseException) -> tuple[str, int]:
    """The run's status and exit code for the error that ended it."""
    if isinstance(error, ArxivUnreachable):
        return "unreachable", 3
    if isinstance(error, FeedError):
        return "bad-config", 2
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "interrupted", 1
    return "failed", 1


def import_lines(settings: Settings, lines, command: str = "import",
                 announce_type: str = "import", db_path: Path | None = None) -> dict:
    """``octet import FILE`` / ``octet demo``: store JSONL papers, then run the stages.

    Into the reader's own database it works under the run lock (``RunLocked``,
    ``RunStuck``), like a run; ``db_path`` (the demo database) needs none."""
    target = replace(settings, db=db_path) if db_path else settings

    def work(report: dict, started: float) -> None:
        ingest_lines(target.db_path, lines, report, announce_type)
        _check_stored(report)
        report["stages"]["store"] = {"seconds": round(time.perf_counter() - started, 3)}
        run_stages(target, report)
    return _run(target, command, (), work, locked=not db_path)


def _check_backfilled(report: dict) -> None:
    """A fresh backfill that stored nothing is a wrong file, as for an import; one whose
    filters kept nothing says so."""
    if report["backfill"]["resumed"]:
        return
    if report.get("filtered") and not report["fetched"]:
        report["note"] = (f"no paper matched the filters ({report['filtered']} left out); check "
                          "--categories, --since and --until")
        return
    _check_stored(report)


def _check_stored(report: dict) -> None:
    """An import in which no line was a paper is an error (exit 1): a wrong file. (A file
    damaged before its first paper already is one.)"""
    if report["fetched"] or "damaged" in report:
        return
    report["nothing_imported"] = True
    report["errors"].append(f"no line is a paper ({report['skipped']} skipped, see "
                            "skipped_reasons); nothing was stored — check the file")


def backfill(settings: Settings, options) -> dict:
    """``octet backfill FILE``: store the file's papers, then classify and summarize every
    stored paper lacking them on the chosen engine (``pipeline.stages.backfill``). Under
    the run lock and in the run log, like a run; a rerun resumes an unfinished one."""
    from pipeline.stages.backfill import run_backfill

    def work(report: dict, started: float) -> None:
        report["categories"] = list(options.categories)
        run_backfill(settings, options, report)
        _check_backfilled(report)
        if report["backfill"].get("failed_shards"):
            report["errors"].append(f"{report['backfill']['failed_shards']} shard(s) failed "
                                    "after retries (see shard_errors); run the same command "
                                    "again to retry them")
    return _run(settings, "backfill", options.categories, work, logged=True)
