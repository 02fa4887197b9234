"""The run log (table ``runs``) and the run lock (``<home>/run.lock``).

Only one ``octet run`` (or ``fetch``, or ``import``) works on a data directory at a time:
the lock is an ``flock`` the OS releases even on SIGKILL, the pid inside lets the app tell a
live run from a killed one, and the file's modification time says since when it is held.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from storage.db import connect, plain_value


class RunLocked(RuntimeError):
    """Another ``octet run`` holds the lock; this one does nothing (exit 0)."""


class RunStuck(RuntimeError):
    """A live process has held the lock for longer than ``lock_max_age``: reported (exit 1),
    not waited on in silence."""


@contextmanager
def run_lock(home: Path, max_age: float | None = None) -> Iterator[None]:
    """An exclusive lock in the data directory, released by the OS even on SIGKILL. Raises
    ``RunLocked`` when another process holds it, ``RunStuck`` when it has held it for more
    than ``max_age`` seconds."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "run.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        error = _held(handle, home / "run.lock", max_age)
        handle.close()
        raise error from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _held(handle, path: Path, max_age: float | None) -> RuntimeError:
    """Why the lock cannot be taken: another run works, or one is stuck."""
    handle.seek(0)
    holder = handle.read().strip()[:20] or "unknown"
    age = time.time() - os.fstat(handle.fileno()).st_mtime
    if max_age is not None and age > max_age:
        return RunStuck(f"the run lock {path} has been held by pid {holder} for "
                        f"{age / 3600:.1f} h, longer than lock_max_age ({max_age:g} s, "
                        f"OCTET_LOCK_MAX_AGE): that run is stuck; stop it (kill {holder}) "
                        "and run again")
    return RunLocked(f"another `octet run` is already working (pid {holder}); "
                     "this one exits and leaves it to finish")


def keep_lock_alive(home: Path) -> None:
    """Say the lock's holder still moves on (a backfill merging its shards for hours): the
    lock's age, which ``lock_max_age`` judges, counts from now."""
    try:
        os.utime(home / "run.lock")
    except OSError:  # no lock file: nothing to keep alive
        pass


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


_RUN_COUNTERS = ("announced", "fetched", "new", "updated", "unchanged", "skipped")


def start_run(db_path: Path, command: str, categories: tuple[str, ...]) -> int:
    """Record that a run started; returns its id."""
    with connect(db_path) as con:
        return con.execute(
            "INSERT INTO runs (command, started_at, status, categories) "
            "VALUES (?, now(), 'running', ?) RETURNING run_id",
            [command, list(categories)]).fetchone()[0]


def close_interrupted_runs(db_path: Path) -> int:
    """Mark runs left 'running' by a killed process as 'interrupted'. Call it only while
    holding the run lock: then no other run can still be working."""
    with connect(db_path) as con:
        return len(con.execute(
            "UPDATE runs SET status = 'interrupted' WHERE status = 'running' "
            "AND command IN ('run', 'fetch', 'import') RETURNING run_id").fetchall())


def finish_run(db_path: Path, run_id: int, report: dict) -> None:
    """Store a run's final report (counters are copied into their own columns)."""
    counters = [int(report.get(name, 0) or 0) for name in _RUN_COUNTERS]
    with connect(db_path) as con:
        con.execute(
            "UPDATE runs SET finished_at = now(), status = ?, exit_code = ?, announced = ?, "
            "fetched = ?, new = ?, updated = ?, unchanged = ?, skipped = ?, report = ?, "
            "duration_seconds = ? WHERE run_id = ?",
            [report.get("status", "done"), report.get("exit_code"), *counters,
             json.dumps(report, default=str), report.get("duration_seconds"), run_id])


def recent_runs(db_path: Path, limit: int = 20) -> list[dict]:
    """The latest runs, newest first, each as its report dict plus run id and times."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, command, started_at, finished_at, status, exit_code, report "
            "FROM runs ORDER BY run_id DESC LIMIT ?", [limit]).fetchall()
    runs = []
    for run_id, command, started, finished, status, exit_code, report in rows:
        record = json.loads(report) if report else {}
        record.update(run_id=run_id, command=command, started_at=plain_value(started),
                      finished_at=plain_value(finished), status=status, exit_code=exit_code)
        runs.append(record)
    return runs


def run_with_feed(db_path: Path, feed_sha256: str) -> dict | None:
    """The report of the latest finished run that stored a feed with these exact bytes."""
    with connect(db_path, read_only=True) as con:
        row = con.execute(
            "SELECT run_id, report FROM runs WHERE status IN ('done', 'done with errors') "
            "AND json_extract_string(report, '$.feed_sha256') = ? "
            "ORDER BY run_id DESC LIMIT 1", [feed_sha256]).fetchone()
    return {**json.loads(row[1]), "run_id": row[0]} if row else None
