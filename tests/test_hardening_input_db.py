"""Issue 12, items 12 and 13: the database file is checked before Octet uses it.

A file that is not a DuckDB database (``tests/fixtures/hostile/input/not_duckdb.*``) is
refused with one line, and DuckDB never tries to download an extension for it. A real
database truncated on disk is refused before anything is written to it (its bytes stay as
they were), with one line saying how to restore it; migrations keep a copy of the file
before they change it. A healthy database that DuckDB itself has shortened still opens.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import duckdb
import pytest

from pipeline.core.errors import ConfigError
from storage import db as storage_db
from storage.db import connect, migration_files
from tests.helpers import REPO, real_listings

HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "input"


def octet(home, *args, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "OCTET_HOME": str(home), "OCTET_STAGES": "none", **env}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, timeout=120, env=full, cwd=REPO)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("fixture", ["not_duckdb.sqlite", "not_duckdb.csv"])
def test_a_file_that_is_not_duckdb_is_refused_without_a_download(tmp_path, fixture):
    target = tmp_path / fixture
    shutil.copyfile(HOSTILE / fixture, target)
    before = digest(target)
    result = octet(tmp_path / "home", "status", OCTET_DB=str(target))
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(target) in line and "not a DuckDB database" in line and "OCTET_DB" in line
    assert "download" not in line.lower() and "sqlite_scanner" not in line
    assert digest(target) == before


def test_an_empty_file_is_refused_in_process(tmp_path):
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    with pytest.raises(ConfigError, match="is empty"):
        with connect(empty):
            pass
    assert empty.stat().st_size == 0


def test_connections_never_install_or_load_extensions_by_themselves(tmp_path):
    with connect(tmp_path / "x.duckdb", read_only=True) as con:
        settings = con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                               "current_setting('autoload_known_extensions')").fetchone()
        assert settings == (False, False)
        with pytest.raises(duckdb.Error) as caught:
            con.execute("SELECT * FROM sqlite_scan(?, 'papers')", [str(HOSTILE / "not_duckdb.sqlite")])
        assert "download" not in str(caught.value).lower()


@pytest.fixture(scope="module")
def real_database(tmp_path_factory):
    """A real database: the 1,889 papers of the listings slice, stored by `octet import`."""
    folder = tmp_path_factory.mktemp("real")
    listing = folder / "listing.jsonl"
    listing.write_text("".join(json.dumps(row) + "\n" for row in real_listings()), encoding="utf-8")
    imported = octet(folder, "import", str(listing))
    assert imported.returncode == 0, imported.stderr
    return folder / "octet.duckdb"


@pytest.mark.parametrize("kept", [0.5, 0.8, 0.9])
def test_a_truncated_database_refuses_writes_and_keeps_its_bytes(tmp_path, real_database, kept):
    home = tmp_path / "home"
    home.mkdir()
    target = home / "octet.duckdb"
    shutil.copyfile(real_database, target)
    os.truncate(target, int(target.stat().st_size * kept))
    before = digest(target)
    added = octet(home, "queue", "add", "2503.11742")
    assert added.returncode == 2, added.stdout + added.stderr
    line = one_line(added.stderr)
    assert str(target) in line and "damaged" in line and "Restore" in line
    assert digest(target) == before
    status = octet(home, "status")
    assert status.returncode == 2 and "damaged" in one_line(status.stderr)
    assert digest(target) == before and not (home / "octet.duckdb.wal").exists()


def test_the_whole_database_still_opens_and_takes_writes(tmp_path, real_database):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(real_database, home / "octet.duckdb")
    added = octet(home, "queue", "add", "2503.11742")
    assert added.returncode == 0, added.stderr
    assert "queued" in added.stdout


def test_a_database_duckdb_shortened_itself_still_opens(tmp_path):
    """DuckDB cuts free blocks off the end after writing a header that still counts them."""
    path = tmp_path / "octet.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE big AS SELECT range AS i, repeat('y', 100) || range AS s "
                    "FROM range(300000)")
    with connect(path) as con:
        con.execute("DROP TABLE big")
    with connect(path) as con:
        con.execute("INSERT INTO reader_state (key, value) VALUES ('k', 'v')")
    assert path.stat().st_size < size_in_header(path)
    storage_db._migrated.clear()
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT value FROM reader_state").fetchone() == ("v",)


def size_in_header(path) -> int:
    """The size DuckDB's newer database header gives: its 3 header blocks + block count x size."""
    with path.open("rb") as handle:
        head = handle.read(3 * 4096)
    headers = [struct.unpack_from("<8Q", head, offset) for offset in (4096, 8192)]
    _, _, _, _, block_count, block_size, _, _ = max(headers, key=lambda header: header[1])
    return 3 * 4096 + block_count * block_size


def test_migrations_keep_a_copy_and_the_refusal_names_it(tmp_path):
    home = tmp_path / "home"
    path = home / "octet.duckdb"
    last, last_sql = migration_files()[-1]
    with connect(path) as con:  # an older database: the last migration not yet applied
        for table in re.findall(r"CREATE TABLE (\w+)", last_sql):
            con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM _migrations WHERE name = ?", [last])
        con.execute("CREATE TABLE mine AS SELECT 42 AS answer")
    storage_db._migrated.clear()
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(migration_files())
    backup = home / f"octet.duckdb.bak-{last.removesuffix('.sql')}"
    assert backup.is_file()
    copy = duckdb.connect(str(backup), read_only=True)
    try:
        assert copy.execute("SELECT answer FROM mine").fetchone() == (42,)
        assert last not in {row[0] for row in copy.execute("SELECT name FROM _migrations").fetchall()}
    finally:
        copy.close()
    storage_db._migrated.clear()
    os.truncate(path, 20000)
    status = octet(home, "status")
    assert status.returncode == 2 and str(backup) in one_line(status.stderr)
