"""`octet queue`, `octet pick`, `octet done`, `octet app`: the reading habit from a terminal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.cli.papers import ensure_demo
from pipeline.core.errors import UsageError
from pipeline.core import weeks
from pipeline.core.paper import InvalidArxivId, normalize_id
from pipeline.stages.library import Library, choose_library, demo_notice
from pipeline.stages.reading import choose_pick, ensure_pick
from storage import reading as store
from storage.db import DatabaseBusy
from storage.reading import NotStored
from storage.search_index import refresh_search_index

APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"


def register(subparsers) -> None:
    """Add the reading subcommands to the `octet` parser."""
    queue = subparsers.add_parser("queue", help="the reading queue: add, remove, list")
    actions = queue.add_subparsers(dest="queue_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="append papers to the end of the queue")
    add.add_argument("arxiv_ids", nargs="+", metavar="ARXIV_ID")
    add.set_defaults(handler=queue_add)
    remove = actions.add_parser("remove", help="take papers out of the queue")
    remove.add_argument("arxiv_ids", nargs="+", metavar="ARXIV_ID")
    remove.set_defaults(handler=queue_remove)
    listing = actions.add_parser("list", help="show the queue in reading order")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=queue_list)

    pick = subparsers.add_parser("pick", help="show this week's pick, or set it")
    pick.add_argument("arxiv_id", nargs="?", metavar="ARXIV_ID")
    pick.add_argument("--json", action="store_true", help="print the pick as JSON")
    pick.add_argument("--timezone", help="IANA time zone for the week (env OCTET_TIMEZONE)")
    pick.set_defaults(handler=pick_command)

    done = subparsers.add_parser("done",
                                 help="mark a paper read this week, with a rating and notes")
    done.add_argument("arxiv_id", metavar="ARXIV_ID")
    done.add_argument("--rating", type=int, help="1 (poor) to 5 (excellent)")
    done.add_argument("--note", help="your notes (Markdown)")
    done.add_argument("--timezone", help="IANA time zone for the week (env OCTET_TIMEZONE)")
    done.set_defaults(handler=done_command)

    app = subparsers.add_parser("app", help="open the reading app (Streamlit) in a browser")
    app.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    app.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1: this machine only)")
    app.add_argument("--or-demo", action="store_true",
                     help="when neither your database nor the demo has papers, load the "
                     "demo first (the app shows the demo whenever yours has none)")
    app.set_defaults(handler=app_command)


def _ids(raw_ids: list[str]) -> list[str]:
    try:
        return [normalize_id(raw) for raw in raw_ids]
    except InvalidArxivId as error:
        raise UsageError(str(error)) from None


def _stored(call):
    """Run a storage call, turning "not stored" / bad rating into a usage error."""

    try:
        return call()
    except (NotStored, ValueError) as error:
        raise UsageError(str(error)) from None


def queue_add(args, settings) -> int:

    outcomes = _stored(lambda: store.queue_add(settings.db_path, _ids(args.arxiv_ids)))
    for arxiv_id, outcome in outcomes.items():
        print(f"{arxiv_id}: {outcome}")
    return 0


def queue_remove(args, settings) -> int:

    ids = _ids(args.arxiv_ids)
    removed = set(store.queue_remove(settings.db_path, ids))
    for arxiv_id in ids:
        print(f"{arxiv_id}: {'removed' if arxiv_id in removed else 'was not queued'}")
    return 0


def queue_list(args, settings) -> int:

    rows = store.queue_list(settings.db_path)
    if args.json:
        fields = ("position", "arxiv_id", "title", "primary_category", "listed_date",
                  "abs_url", "queued_at")
        print(json.dumps([{name: row[name] for name in fields} for row in rows], indent=2))
        return 0
    if not rows:
        print("The queue is empty; add papers with `octet queue add ARXIV_ID`.")
    for row in rows:
        print(f"{row['position']:>3}. {row['arxiv_id']}  {row['title']}")
    return 0


def _pick_json(pick: dict) -> dict:
    fields = ("week", "arxiv_id", "title", "status", "chosen_by", "reason", "runners_up",
              "rating", "notes", "abs_url", "pdf_url")
    return {name: pick.get(name) for name in fields}


def pick_command(args, settings) -> int:

    week = weeks.current_week(settings.timezone)
    if args.arxiv_id:
        arxiv_id = _ids([args.arxiv_id])[0]
        # One rule for the CLI and the app's "Read this week": a read week is never replaced.
        _stored(lambda: choose_pick(settings, arxiv_id))
        pick = store.get_pick(settings.db_path, week)
    else:
        pick = ensure_pick(settings)
    if pick is None:
        print(f"No pick for {week}: no papers yet. Run `octet run` (or `octet demo`) first.")
        return 0
    if args.json:
        print(json.dumps(_pick_json(pick), indent=2))
        return 0
    print(f"{week} ({pick['status']}): {pick['arxiv_id']}  {pick['title']}")
    print(f"  why: {pick['reason'] or '-'}")
    print(f"  {pick['abs_url']}")
    if pick.get("runners_up"):
        print(f"  runners-up: {', '.join(pick['runners_up'])}")
    return 0


def done_command(args, settings) -> int:

    arxiv_id = _ids([args.arxiv_id])[0]
    week = weeks.current_week(settings.timezone)
    _stored(lambda: store.mark_read(settings.db_path, arxiv_id, week, args.rating, args.note,
                                      weeks.today(settings.timezone)))
    rating = f", rated {args.rating}/5" if args.rating else ""
    print(f"{arxiv_id}: read in {week}{rating}. Streak: "
          f"{weeks.streak(store.read_weeks(settings.db_path), week)} week(s).")
    return 0


def app_environment(settings) -> dict:
    """The environment the Streamlit process reads its settings from. A database is passed
    only when one was named (``--db``, ``OCTET_DB``, config.toml): otherwise the app chooses
    on every page as the commands do, so a run that stores papers switches it to them."""

    environment = {key: value for key, value in os.environ.items() if key != "OCTET_DB"}
    environment["OCTET_HOME"] = str(settings.home)
    if settings.db is not None:
        environment["OCTET_DB"] = str(settings.db_path)
    if settings.timezone:
        environment["OCTET_TIMEZONE"] = settings.timezone
    return environment


def _open_library(settings, or_demo: bool) -> Library:
    """The database the app opens on; with ``or_demo``, the demo is loaded first when
    neither the reader's database nor the demo holds a paper yet."""
    library = choose_library(settings)
    if or_demo and not library.demo and settings.db is None and not _has_papers(library.path):
        print("Your database has no papers yet: loading the DEMO database first "
              f"({settings.demo_db_path}).", flush=True)
        ensure_demo(settings)
        library = choose_library(settings)
    if library.demo:
        print(f"octet: {demo_notice(library)}", flush=True)
    return library


def _has_papers(db_path: Path) -> bool:
    return db_path.exists() and store.paper_count(db_path) > 0


def _refresh_search(db_path: Path) -> None:
    """Index new papers for keyword search before the app opens (search still works
    without it, by a slower scan, so a busy database is not a reason to stop)."""

    try:
        indexed = refresh_search_index(db_path)
    except DatabaseBusy:
        return
    if indexed:
        print(f"Indexed {indexed:,} papers for keyword search.", flush=True)


def app_command(args, settings) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port; give a number from 1 to 65535")
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
               "--server.address", args.host, "--server.port", str(args.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    environment = app_environment(settings)
    _refresh_search(_open_library(settings, args.or_demo).path)
    print(f"Octet app: http://{args.host}:{args.port}  (Ctrl+C to stop)", flush=True)
    return serve_until_stopped(command, environment)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_SECONDS = 10.0
"""How long Streamlit gets to stop after SIGTERM before its group is killed."""


class _StopRequested(Exception):
    """A stop signal reached `octet app`."""


def _request_stop(signum, frame) -> None:
    raise _StopRequested(signum)


def serve_until_stopped(command: list[str], environment: dict) -> int:
    """Run ``command`` (Streamlit) in its own session until it exits or a stop signal
    (SIGTERM, SIGINT, SIGHUP) reaches this process; either way its whole process group is
    stopped before returning, so no server is left holding the port. Returns its exit
    status, or 0 when stopped on request."""
    # A signal already ignored (SIGHUP under nohup, SIGINT in a background job) stays so.
    previous = {number: signal.signal(number, _request_stop) for number in STOP_SIGNALS
                if signal.getsignal(number) is not signal.SIG_IGN}
    server = None
    try:
        # Its own session: a signal meant for `octet app` (a terminal's Ctrl+C included)
        # reaches this process only, and the group id to stop is the server's pid.
        server = subprocess.Popen(command, env=environment, start_new_session=True)
        return server.wait()
    except (_StopRequested, KeyboardInterrupt):
        return 0
    finally:
        for number in previous:  # a second Ctrl+C must not cut the stopping short
            signal.signal(number, signal.SIG_IGN)
        if server is not None:
            stop_process_group(server, STOP_GRACE_SECONDS)
        for number, handler in previous.items():
            signal.signal(number, handler)


def stop_process_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM to the process group ``process`` leads, SIGKILL to what is left of it after
    ``grace_seconds``; returns once the group is gone."""
    for number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:
            break
        if _group_gone(process, grace_seconds):
            break
    process.wait()


def _group_gone(process: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        process.poll()  # reaps the leader, so that an empty group reads as gone
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
