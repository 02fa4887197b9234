"""The one place that opens DuckDB: short connections, migrations on open, lock retry.

DuckDB lets one process hold a file read-write. The scheduled job and the app are
separate processes, so every unit of work opens, works and closes, and an open that
meets another process's lock waits with backoff (seconds, not forever).
"""
from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 30.0
_migrated: set[str] = set()


class DatabaseBusy(RuntimeError):
    """Another process held the database for longer than we were willing to wait."""


def _is_lock_error(error: Exception) -> bool:
    text = str(error)
    return "lock" in text.lower() and ("Could not set lock" in text or "Conflicting lock" in text)


def _open(path: Path, read_only: bool, timeout_seconds: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_seconds
    wait = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            if not _is_lock_error(error) or time.monotonic() >= deadline:
                if _is_lock_error(error):
                    raise DatabaseBusy(
                        f"{path} is held by another Octet process (a running `octet run`?) "
                        f"for over {timeout_seconds:.0f} s; try again when it has finished"
                    ) from error
                raise
            # Jitter keeps two waiting processes from retrying in lockstep.
            time.sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, 0.5)


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` for every packaged migration, in order."""
    folder = resources.files("storage") / "migrations"
    files = sorted((entry.name for entry in folder.iterdir() if entry.name.endswith(".sql")))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in files]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded in ``_migrations``; return their names."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations "
                "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())")
    done = {row[0] for row in con.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, sql in migration_files():
        if name in done:
            continue
        con.execute("BEGIN")
        try:
            con.execute(sql)
            con.execute("INSERT INTO _migrations (name) VALUES (?)", [name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


@contextmanager
def connect(path: Path | str, read_only: bool = False,
            timeout_seconds: float = LOCK_TIMEOUT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one unit of work, migrating it first when needed.

    A read-only open of a file that does not exist yet creates and migrates it first,
    so readers (the app) work on a fresh data directory.
    """
    path = Path(path)
    key = str(path.resolve())
    if key not in _migrated or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open(path, False, timeout_seconds)
        try:
            migrate(con)
        finally:
            con.close()
        _migrated.add(key)
    con = _open(path, read_only, timeout_seconds)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(path: Path | str,
                timeout_seconds: float = LOCK_TIMEOUT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection inside one transaction: all of it lands, or none."""
    with connect(path, timeout_seconds=timeout_seconds) as con:
        con.execute("BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


_IDS = pa.schema([("arxiv_id", pa.string())])


def register_ids(con: duckdb.DuckDBPyConnection, arxiv_ids, name: str = "wanted") -> None:
    """Make ``arxiv_ids`` a one-column view ``name`` for ``... IN (SELECT arxiv_id FROM
    wanted)``: one scan of an Arrow table instead of thousands of bound parameters."""
    con.register(name, pa.table({"arxiv_id": list(arxiv_ids)}, schema=_IDS))


def plain_value(value):
    """A JSON-ready value: timestamps as UTC ISO strings, dates as ISO strings."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def plain_record(record: dict) -> dict:
    """A row with every value JSON-ready (see ``plain_value``)."""
    return {key: plain_value(value) for key, value in record.items()}


def rows_of(cursor) -> list[dict]:
    """A cursor's rows as dicts keyed by column name."""
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
