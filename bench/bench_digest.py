"""Cost of the weekly digest at 75k papers: building it (the pick, the runners-up, the
family sections ranked as the Inbox ranks them, the habit), rendering each format, the Atom
feed, and sending it to a local SMTP server.

Loads the 74,602 real papers of ../shared/data into a fresh database with a reading history
and an embedding and family scores for every paper (``bench_app``'s helpers: random vectors
and scores, the cost does not depend on the values). All of them count as arrived since the
last digest, so the family sections rank the newest 20,000 (the most a digest ranks), more
than a real week (about 10,000). Baseline measured in the same run: one ``rank()`` of the
same papers, the Inbox's ranking, which the digest must do anyway.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import median_seconds  # noqa: E402


def _library(home: Path) -> Path:
    from bench.bench_app import add_history, load_papers, store_families_and_vectors
    from pipeline.core.settings import load_settings
    from storage.search import BrowseFilter, browse

    os.environ["OCTET_HOME"] = str(home)
    db_path = load_settings().db_path
    load_papers(db_path)
    ids = [card["arxiv_id"] for card in browse(db_path, BrowseFilter(limit=60))[0]]
    add_history(db_path, ids)
    store_families_and_vectors(db_path)
    return db_path


def _smtp_send(settings, digest) -> float:
    """Median seconds to mail the digest to a local aiosmtpd server."""
    from dataclasses import replace

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from pipeline.stages.delivery import send_email

    with socket.socket() as probe:  # aiosmtpd needs a port named up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", digest_to=("me@example.org",),
                       digest_from="octet@example.org")
        return median_seconds(lambda: send_email(mail, digest, force=True), 5)
    finally:
        controller.stop()


def main() -> str:
    from pipeline.core.settings import load_settings
    from pipeline.stages import digest_format
    from pipeline.stages.digest import ARRIVALS, build_digest
    from pipeline.stages.ranking import rank
    from storage import reading

    started = time.perf_counter()
    db_path = _library(Path(tempfile.mkdtemp(prefix="octet-bench-digest-")))
    setup = time.perf_counter() - started
    settings = load_settings()
    start, end = _window(settings)
    ids = reading.inbox_candidates(db_path, start, ARRIVALS, end)["ids"]
    baseline = median_seconds(lambda: rank(db_path, ids, "for you"))
    build = median_seconds(lambda: build_digest(settings))
    digest = build_digest(settings)
    formats = {form: median_seconds(lambda form=form: digest_format.render(digest, form), 5)
               for form in digest_format.FORMATS}
    sizes = {form: len(digest_format.render(digest, form).encode()) for form in digest_format.FORMATS}
    feed = _feed_time(settings)
    send = _smtp_send(settings, digest)
    return _report(len(ids), setup, baseline, build, formats, sizes, feed, send, digest)


def _window(settings):
    from pipeline.core import weeks
    from pipeline.stages.digest import window_end, window_start
    from datetime import datetime, timezone

    week = weeks.current_week(settings.timezone)
    return window_start(settings, week), window_end(settings, week, datetime.now(timezone.utc))


def _feed_time(settings) -> float | None:
    try:
        from pipeline.stages import feed
    except ImportError:
        return None
    builder = getattr(feed, "build_feed", None) or getattr(feed, "render_feed", None)
    return median_seconds(lambda: builder(settings)) if builder else None


def _report(count, setup, baseline, build, formats, sizes, feed, send, digest) -> str:
    shown = sum(len(section.papers) for section in digest.sections)
    lines = ["## Weekly digest (`python -m bench digest`)", "",
             f"{count:,} papers ranked for the family sections (74,602 stored; library built in "
             f"{setup:.0f} s, not counted). Median of 3 runs (formats and send: 5).", "",
             "| step | seconds | vs. one Inbox ranking of the same papers |", "|---|---|---|",
             f"| baseline: `rank()` of the {count:,} papers, for you | {baseline:.3f} | 1.0x |",
             f"| `build_digest` (pick, runners-up, {len(digest.sections)} family sections with "
             f"{shown} papers, habit, last week) | {build:.3f} | {build / baseline:.2f}x |"]
    for form, seconds in formats.items():
        lines.append(f"| render `{form}` ({sizes[form] / 1024:.0f} KiB) | {seconds:.4f} | "
                     f"{seconds / baseline:.3f}x |")
    if feed is not None:
        lines.append(f"| `octet feed`'s feed (picks + the digest's papers) | {feed:.3f} | "
                     f"{feed / baseline:.2f}x |")
    lines.append(f"| mail it to a local SMTP server (aiosmtpd, one recipient) | {send:.3f} | "
                 f"{send / baseline:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
