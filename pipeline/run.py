"""The scheduled job: fetch → store → classify → summarize → report.

Every stage works on what is pending in the database, so a crash, a kill or a failed
model call never loses finished work, and the next run picks up where this one stopped.
A stage is a function ``run_stage(settings, report) -> dict`` in its own module; the
dict it returns (counts, errors) becomes ``report["stages"][name]``.
"""
from __future__ import annotations

import fcntl
import importlib
import logging
import logging.handlers
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

from pipeline.config import Settings
from pipeline.ingest import ingest_backfill, ingest_lines, ingest_listing
from pipeline.sources import ArxivUnreachable, FeedError, Transport
from storage import papers as store

log = logging.getLogger(__name__)

# Post-fetch stages, in order; each module exposes ``run_stage``.
STAGES = (("classify", "pipeline.classify"), ("summarize", "pipeline.summarize"),
          ("reading", "pipeline.queue"))


def run_stages(settings: Settings, report: dict) -> None:
    """Run every post-fetch stage; one failing stage is reported and does not stop the others."""
    stages = report.setdefault("stages", {})
    for name, module_name in STAGES:
        if name not in settings.stages:
            continue
        started = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            result = module.run_stage(settings, report) or {}
        except Exception as error:  # a broken stage must not lose what earlier stages stored
            log.error("stage %s failed: %s", name, error, exc_info=True)
            result = {"error": f"{type(error).__name__}: {error}"}
            report.setdefault("errors", []).append(f"{name}: {result['error']}")
        result["seconds"] = round(time.perf_counter() - started, 3)
        stages[name] = result


def _done(report: dict) -> dict:
    """A stage that failed as a whole, or an input file damaged part way, is unexpected
    (exit 1); per-paper errors are not."""
    failed = (any("error" in stage for stage in report["stages"].values())
              or "damaged" in report)
    report.update(status="done with errors" if failed else "done", exit_code=1 if failed else 0)
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
    for name, stage in report.get("stages", {}).items():
        details = ", ".join(f"{k} {v}" for k, v in stage.items()
                            if k not in ("errors",) and not isinstance(v, (list, dict)))
        lines.append(f"  {name}: {details}")
    for key, reason in list(report.get("skipped_reasons", {}).items())[:10]:
        lines.append(f"  skipped {key}: {reason}")
    for error in report.get("errors", [])[:10]:
        lines.append(f"  error: {error}")
    return "\n".join(lines)


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
    store.finish_run(settings.db_path, run_id, report)
    return report


# ---- the job -------------------------------------------------------------------

class RunLocked(RuntimeError):
    """Another ``octet run`` holds the lock; this one does nothing (exit 0)."""


@contextmanager
def run_lock(home: Path) -> Iterator[None]:
    """An exclusive lock in the data directory, released by the OS even on SIGKILL."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "run.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunLocked(f"another `octet run` is already working (pid {holder}); "
                        "this one exits and leaves it to finish") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def run_in_progress(home: Path) -> bool:
    """Whether the process that last took the run lock is alive: a run row still marked
    'running' without one was killed. Reads the pid instead of trying the lock, which
    could make a run starting at that instant believe another one works."""
    try:
        pid = int((home / "run.lock").read_text().strip())
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, owned by another user
    except (OSError, ValueError):
        return False  # no lock file, no pid, or no such process
    return True


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
    with run_lock(settings.home), run_log(settings.home):
        transport = transport or Transport.from_settings(settings)
        report = new_report("run", settings)
        started = time.perf_counter()
        store.close_interrupted_runs(settings.db_path)
        run_id = store.start_run(settings.db_path, "run", settings.categories)
        try:
            stage_started = time.perf_counter()
            ingest_listing(settings, transport, report)
            report["stages"]["fetch"] = {"seconds": round(time.perf_counter() - stage_started, 3),
                                         "requests": len(transport.request_times)}
        except (ArxivUnreachable, FeedError) as error:
            report.update(status="unreachable" if isinstance(error, ArxivUnreachable)
                          else "bad-config", exit_code=3 if isinstance(error, ArxivUnreachable)
                          else 2)
            report["errors"].append(str(error))
            record(settings, report, run_id, started)
            raise
        run_stages(settings, report)
        return record(settings, _done(report), run_id, started)


def fetch_range(settings: Settings, since: date, until: date,
                transport: Transport | None = None) -> dict:
    """``octet fetch``: backfill a date range through the API, then run the stages."""
    with run_lock(settings.home), run_log(settings.home):
        transport = transport or Transport.from_settings(settings)
        report = new_report("fetch", settings)
        report["range"] = [since.isoformat(), until.isoformat()]
        started = time.perf_counter()
        store.close_interrupted_runs(settings.db_path)
        run_id = store.start_run(settings.db_path, "fetch", settings.categories)
        try:
            ingest_backfill(settings, transport, since, until, report)
        except ArxivUnreachable as error:
            report.update(status="unreachable", exit_code=3)
            report["errors"].append(str(error))
            record(settings, report, run_id, started)
            raise
        run_stages(settings, report)
        return record(settings, _done(report), run_id, started)


def import_lines(settings: Settings, lines, command: str = "import",
                 announce_type: str = "import", db_path: Path | None = None) -> dict:
    """``octet import FILE`` / ``octet demo``: store JSONL papers, then run the stages."""
    target = replace(settings, db=db_path) if db_path else settings
    report = new_report(command, target)
    started = time.perf_counter()
    run_id = store.start_run(target.db_path, command, ())
    ingest_lines(target.db_path, lines, report, announce_type)
    report["stages"]["store"] = {"seconds": round(time.perf_counter() - started, 3)}
    run_stages(target, report)
    return record(target, _done(report), run_id, started)
