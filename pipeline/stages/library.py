"""Which database the reader is looking at: their own, or the demo — one answer for the app
and for every reading command, said out loud when it is the demo.

The rule: a database named with ``--db`` / ``OCTET_DB`` / ``config.toml`` is used as it is.
Otherwise the reader's own database (``<home>/octet.duckdb``) is used, unless it holds no
paper yet while the demo database (``<home>/demo.duckdb``, made by ``octet demo`` or by
``octet run --or-demo`` when arXiv cannot be reached) holds some. The first run that stores
papers in the reader's own database therefore switches the app and the commands back to it,
with nothing to undo.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pipeline.core.settings import Settings
from pipeline.core.weeks import reader_zone
from storage import papers, runs


@dataclass(frozen=True)
class Library:
    """The database shown, and why."""

    path: Path
    """The DuckDB file the app and the reading commands read and write."""

    demo: bool
    """Whether that file is the demo database (packaged sample papers, not the reader's)."""

    reason: str
    """One line on why the demo is shown (empty for the reader's own database)."""

    own_path: Path
    """The reader's own database, which ``octet run`` fills."""

    named: bool = False
    """Whether the settings named the database (``--db``, ``OCTET_DB``, config.toml): then
    it is used as it is, demo or not, and no run switches it."""


_READ: dict[tuple[str, str], tuple[tuple, object]] = {}
"""What was read from a file (its paper count, its last run), with the stat of the file
and of its WAL when read: the app asks on every rerun, and the answer changes only when
the file does."""


def home_database(settings: Settings) -> Path:
    """``<home>/octet.duckdb``: the reader's own database unless another one is named."""
    return settings.home / "octet.duckdb"


def own_database(settings: Settings) -> Path:
    """The reader's own database: the one named in the settings, else ``home_database``."""
    return settings.db_path if settings.db is not None else home_database(settings)


def choose_library(settings: Settings) -> Library:
    """The database to show (see the module's rule), whether it is the demo, and why."""
    own, demo_path = own_database(settings), settings.demo_db_path
    if settings.db is not None:
        named_demo = _same_file(own, demo_path)
        return Library(own, named_demo, "named with --db or OCTET_DB" if named_demo else "",
                       home_database(settings) if named_demo else own, named=True)
    if not _papers_in(demo_path) or _papers_in(own):  # no demo: no file is opened at all
        return Library(own, False, "", own)
    return Library(demo_path, True, demo_reason(settings), own)


def library_settings(settings: Settings) -> Settings:
    """``settings`` pointed at the database ``choose_library`` shows."""
    return replace(settings, db=choose_library(settings).path)


def is_demo_database(settings: Settings) -> bool:
    """Whether the settings' database is the demo database."""
    return _same_file(settings.db_path, settings.demo_db_path)


def demo_reason(settings: Settings) -> str:
    """Why the demo is shown, from the last run recorded in the reader's own database:
    ``arXiv was unreachable at 2026-06-29 09:14 CEST`` when that run could not reach it."""
    own = home_database(settings)
    latest = _read(own, "last run", lambda: runs.recent_runs(own, limit=1)) or []
    if latest and latest[0].get("status") == "unreachable":
        return f"arXiv was unreachable at {_local_time(latest[0]['started_at'], settings)}"
    if latest:
        return (f"your own database has no papers yet (last run "
                f"{_local_time(latest[0]['started_at'], settings)}: {latest[0]['status']})")
    return "your own database has no papers yet"


def demo_notice(library: Library) -> str:
    """The one line every reading command and the app say while the demo is shown."""
    if library.named:
        return f"DEMO database {library.path}: {library.reason}."
    return (f"DEMO database {library.path}: {library.reason}. The first `octet run` that "
            f"stores papers switches to your own ({library.own_path}).")


def _papers_in(path: Path) -> int:
    """Papers stored in ``path`` (0 when the file does not exist: it is not created)."""
    return _read(path, "papers", lambda: papers.count_papers(path)) or 0


def _read(path: Path, what: str, reader):
    """``reader()``'s answer for ``path``, read again only when the file changed; None
    when the file does not exist (opening it would create it)."""
    if not path.exists():
        return None
    key = (str(path.resolve()), what)
    stamp = database_stamp(path)
    cached = _READ.get(key)
    if cached is None or cached[0] != stamp:
        cached = _READ[key] = (stamp, reader())
    return cached[1]


def database_stamp(path: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """Size and modification time of the database file and of its WAL: it changes whenever
    anything is written (a write lands in the WAL first)."""
    return (_signature(path), _signature(Path(f"{path}.wal")))


def _signature(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


def _same_file(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


def _local_time(iso_text: str | None, settings: Settings) -> str:
    """A stored UTC time in the reader's zone, to the minute; ``an unknown time`` if absent."""
    if not iso_text:
        return "an unknown time"
    moment = datetime.fromisoformat(str(iso_text)).astimezone(reader_zone(settings.timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
