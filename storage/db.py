"""The one place that opens DuckDB: short connections, migrations on open, lock retry.

DuckDB lets one process hold a file read-write. The scheduled job and the app are
separate processes, so every unit of work opens, works and closes, and an open that
meets another process's lock waits with backoff (seconds, not forever).

The first open of a file in a process checks it: a file that is not a DuckDB database, or
one shorter than the data it lists (a truncated copy opens, and even accepts writes), is
refused with ``DatabaseUnusable`` before anything is written to it. Before migrations
change a database, a copy is kept beside it as ``<file>.bak-<migration>``.
"""
from __future__ import annotations

import glob
import logging
import random
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from pipeline.core.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 30.0
_migrated: set[str] = set()
_first_open = threading.Lock()

DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""Every connection: DuckDB never downloads or loads an extension by itself (pointed at an
SQLite file it would fetch ``sqlite_scanner`` from the network)."""

_MAGIC, _MAGIC_OFFSET = b"DUCK", 8
_BLOCKS_START = 3 * 4096
"""DuckDB's main header and its two database headers come before the first block."""


class DatabaseUnusable(ConfigError):
    """The database file is not a DuckDB database or is damaged; the message says how to
    point Octet elsewhere or restore the file (exit 2)."""


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
            return duckdb.connect(str(path), read_only=read_only, config=DUCKDB_CONFIG)
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


def _applied(con: duckdb.DuckDBPyConnection) -> set[str] | None:
    """The migrations recorded in the database; None when it has no ``_migrations`` table."""
    try:
        return {row[0] for row in con.execute("SELECT name FROM _migrations").fetchall()}
    except duckdb.CatalogException:
        return None


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded in ``_migrations``; return their names."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations "
                "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())")
    done = _applied(con)
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
        with _first_open:  # no connection of this process to the file is open in here
            if key not in _migrated or not path.exists():
                _prepare(path, timeout_seconds)
                _migrated.add(key)
    con = _open(path, read_only, timeout_seconds)
    try:
        yield con
    finally:
        con.close()


def _prepare(path: Path, timeout_seconds: float) -> None:
    """Check an existing file, keep a copy when migrations will change it, and migrate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        check_file(path)
        _probe(path, timeout_seconds)
    con = _open(path, False, timeout_seconds)
    try:
        migrate(con)
    finally:
        con.close()


def check_file(path: Path) -> None:
    """Refuse, before DuckDB opens it, a file that is not a DuckDB database.

    Reads the file, which drops this process's DuckDB lock on it (POSIX record locks end
    when any descriptor of the file is closed): call it only while no connection to the
    file is open in this process."""
    if path.is_dir():
        raise DatabaseUnusable(f"{path} is a folder; point OCTET_DB (or --db) at a database file")
    with path.open("rb") as handle:
        head = handle.read(_MAGIC_OFFSET + len(_MAGIC))
    if head[_MAGIC_OFFSET:] != _MAGIC:
        what = "is empty" if not head else "is not a DuckDB database"
        raise DatabaseUnusable(f"{path} {what}; point OCTET_DB (or --db) at an Octet database, "
                               f"{_restore_hint(path)}")


def _probe(path: Path, timeout_seconds: float) -> None:
    """Open read-only (nothing is written) and compare the blocks the data needs with the
    blocks the file has; keep a copy first when migrations are pending."""
    try:
        con = _open(path, True, timeout_seconds)
    except duckdb.Error as error:
        raise _damaged(path, _first_line(error)) from None
    try:
        block_size, needed = _blocks_needed(con)
        _back_up_if_migrating(con, path)
    except duckdb.Error as error:
        raise _damaged(path, _first_line(error)) from None
    finally:
        con.close()
    present = max(0, path.stat().st_size - _BLOCKS_START) // block_size
    if present < needed:
        raise _damaged(path, f"it has {present} of the {needed} blocks its data is in: truncated")


def _blocks_needed(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """``(block size, blocks the file must have)``: past the highest block any table's data
    is in, and at least as many as are in use. (The header's block count can be larger in
    a healthy file: DuckDB cuts free blocks off the end after writing it.)"""
    block_size, used = con.execute("SELECT block_size, used_blocks FROM pragma_database_size() "
                                   "WHERE database_name = current_database()").fetchone()
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                         "current_database() AND schema_name = 'main'").fetchall()
    highest = max([-1, *(_highest_block(con, table) for (table,) in tables)])
    return block_size, max(used, highest + 1)


def _highest_block(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The highest block a table's data is in (-1: none, or a name storage_info cannot take)."""
    name = "'\"" + table.replace("'", "''") + "\"'"
    try:
        row = con.execute("SELECT max(block_id), max(list_max(additional_block_ids)) "
                          f"FROM pragma_storage_info({name})").fetchone()
    except (duckdb.CatalogException, duckdb.ParserException):
        return -1  # a table of someone else's database named with a double quote
    return max([-1, *(value for value in row if value is not None)])


def _back_up_if_migrating(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy a database that migrations are about to change to ``<file>.bak-<migration>``:
    the way back should a migration, or a later accident, damage it."""
    done = _applied(con)
    pending = [name for name, _ in migration_files() if name not in (done or ())]
    if not done or not pending:
        return  # a new database, or nothing to change
    target = path.with_name(f"{path.name}.bak-{Path(pending[0]).stem}")
    for source, copy in ((path, target), (Path(f"{path}.wal"), Path(f"{target}.wal"))):
        if source.exists():
            _copy_in_child(source, copy)
    log.info("kept a copy of %s before migrating it: %s", path, target)


def _copy_in_child(source: Path, target: Path) -> None:
    # A child process copies: closing a descriptor of the file here would drop the read
    # lock this process's connection holds, and a writer could change the file mid-copy.
    try:
        subprocess.run([sys.executable, "-c", "import shutil, sys; shutil.copyfile(*sys.argv[1:])",
                        str(source), str(target)], check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        raise ConfigError(f"could not copy {source} to {target} before migrating it; free some "
                          "disk space (or make the folder writable) and try again") from None


def _first_line(error: Exception) -> str:
    line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _damaged(path: Path, reason: str) -> DatabaseUnusable:
    hint = _restore_hint(path)
    return DatabaseUnusable(f"{path} is damaged ({reason}); nothing was written to it. "
                            f"{hint[0].upper()}{hint[1:]}")


def _restore_hint(path: Path) -> str:
    """How to get a good file back: the copy migrations kept, when there is one."""
    copies = sorted(glob.glob(glob.escape(str(path)) + ".bak-*"))
    copies = [copy for copy in copies if not copy.endswith(".wal")]
    source = (f"the copy kept before the last migration ({copies[-1]}) or your own backup"
              if copies else "your last backup")
    return f"restore it from {source}, or move it away to start a new database"


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
