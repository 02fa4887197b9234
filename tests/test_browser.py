"""End to end in a real headless Chromium: `octet app` on a free port, mark this week's
pick read with a rating and a note, check the database, keep a screenshot of every page.

This week's pick is the hostile paper of ``tests/fixtures/hostile/app/paper.json``, whose
every field carries Markdown pointing at a local recording server: no page may hold an
<img> or <a> for it, and no request may reach it (issue 12, item 2). The app runs in its
own session and is stopped with every process group it made (issue 12, item 6)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.core import weeks
from storage import reading
from tests.helpers import serving, store_real_papers
from tests.test_hardening_app import HOSTILE_ID, store_hostile_paper

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ("inbox", "queue", "browse", "progress", "digest", "runs")

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`octet app` exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"`octet app` did not answer at {url} within {seconds} s")


def start_app(octet_home: Path, port: int, *extra: str) -> subprocess.Popen:
    """`octet app` on ``port`` as a real subprocess, in its own session so that the test can
    stop it (and everything it started) without touching the test runner."""
    environment = dict(os.environ, OCTET_HOME=str(octet_home), PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "app", "--port", str(port), *extra],
                            cwd=REPO, env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, process group)`` of a live process, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[1]), int(fields[2])) if fields[0] != "Z" else None


def descendants(pid: int) -> set[int]:
    """The live processes started (directly or not) by ``pid``."""
    parents = {int(entry.name): _proc_stat(int(entry.name)) for entry in Path("/proc").iterdir()
               if entry.name.isdigit()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, stat in parents.items()
                    if stat and stat[0] in frontier and child not in found}
        found |= frontier
    return found


def app_groups(process: subprocess.Popen) -> set[int]:
    """The process groups of `octet app` and of everything it started (Streamlit)."""
    groups = {os.getpgid(process.pid)} if process.poll() is None else set()
    return groups | {stat[1] for pid in descendants(process.pid) if (stat := _proc_stat(pid))}


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition, seconds: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_app(process: subprocess.Popen, groups: set[int]) -> None:
    """SIGTERM to `octet app` (which stops Streamlit's group), then SIGKILL to every group
    of ``groups`` still there after 15 s: no server keeps its port after the test."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the group id is its pid
    wait_for(lambda: process.poll() is not None and not any(map(group_alive, groups)), 15)
    for group in filter(group_alive, groups | {process.pid}):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=15)


@contextmanager
def app_server(octet_home: Path, *extra: str):
    """`octet app` on a free port, up and answering; yields its URL and stops it (and every
    process group it started) afterwards."""
    port = free_port()
    process = start_app(octet_home, port, *extra)
    url = f"http://127.0.0.1:{port}"
    groups: set[int] = set()
    try:
        wait_until_up(url, process)
        groups = app_groups(process)
        yield url
    finally:
        stop_app(process, groups)


@pytest.fixture
def injected_server():
    """A local server that records every request: the address the hostile paper's Markdown
    points at (tests/fixtures/hostile/app/paper.json). Yields ``(base URL, requests)``."""
    requests: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            requests.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Recorder)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests


@pytest.fixture
def running_app(settings, octet_home, injected_server):
    papers = store_real_papers(settings.db_path, 30)
    from storage.runs import finish_run, start_run

    # Something on every page: a queue (the pick comes from it) and runs in the log. The
    # first in the queue, so this week's pick, is the hostile paper; a run error is hostile too.
    hostile = store_hostile_paper(settings, injected_server[0])
    reading.queue_add(settings.db_path, [paper.arxiv_id for paper in papers[:4]])
    run_id = start_run(settings.db_path, "run", settings.categories)
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 0, "announced": 30,
                                          "fetched": 30, "new": 30, "duration_seconds": 41.2})
    run_id = start_run(settings.db_path, "run", settings.categories)
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 1, "announced": 30,
                                          "errors": [hostile["run_error"]]})
    with app_server(octet_home) as url:
        yield url, papers, hostile


def assert_nothing_injected(page, injected_url: str, requests: list[str], name: str) -> None:
    """No <img>, <a> or request for the address the paper text points at, no HTML from it."""
    links = page.locator(f'img[src^="{injected_url}"], a[href^="{injected_url}"], '
                         'a[href^="javascript:"], a[href^="mailto:"], b, .stMarkdownColoredText')
    assert links.count() == 0, (name, [links.nth(i).evaluate("e => e.outerHTML")
                                       for i in range(links.count())])
    assert requests == [], (name, requests)


def test_mark_the_pick_read_in_a_real_browser(settings, running_app, injected_server):
    from playwright.sync_api import expect, sync_playwright

    url, papers, hostile = running_app
    injected_url, requests = injected_server
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # a fresh folder: only this run's pictures
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.set_default_timeout(30_000)
        page.goto(url)
        expect(page.get_by_text("Why this one")).to_be_visible()
        page.wait_for_timeout(800)  # let images (there must be none) and math load
        page.screenshot(path=str(ARTIFACTS / "this-week.png"), full_page=True)
        pick = reading.get_pick(settings.db_path, weeks.current_week())
        assert pick is not None and pick["status"] == "pick"
        assert pick["arxiv_id"] == HOSTILE_ID  # the queue comes first
        # The hostile title is shown as typed (up to its math, which KaTeX draws).
        heading = page.locator("h2").first.inner_text().replace("\u2060", "")
        assert heading.startswith(hostile["title"].split(" on $")[0]), heading
        assert_nothing_injected(page, injected_url, requests, "this-week")

        page.locator('[data-testid="stFeedback"] button, [data-testid="stFeedback"] [role=button]'
                     ).nth(3).click()
        page.get_by_label("Notes (Markdown)").fill("Read in a **real** browser.")
        page.get_by_role("button", name="Mark read").click()
        expect(page.get_by_text("Marked read").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "this-week-read.png"), full_page=True)

        stored = reading.reading_of(settings.db_path, pick["arxiv_id"])
        assert (stored["state"], stored["rating"], stored["notes"]) == (
            "read", 4, "Read in a **real** browser.")
        assert reading.get_pick(settings.db_path, weeks.current_week())["status"] == "read"

        for name in PAGES:
            page.goto(f"{url}/{name}")
            expect(page.locator("h1").first).to_be_visible()
            page.wait_for_timeout(800)  # let charts and tables settle before the picture
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            assert not page.locator('[data-testid="stException"]').count(), name
            assert_nothing_injected(page, injected_url, requests, name)
        browser.close()
    assert {p.name for p in ARTIFACTS.glob("*.png")} >= {f"{name}.png" for name in PAGES}
