"""End to end in a real headless Chromium: `octet app` on a free port, mark this week's
pick read with a rating and a note, check the database, keep a screenshot of every page."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.core import weeks
from storage import reading
from tests.helpers import store_real_papers

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ("inbox", "queue", "browse", "progress", "runs")

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
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


@pytest.fixture
def running_app(settings, octet_home):
    papers = store_real_papers(settings.db_path, 30)
    from storage.runs import finish_run, start_run

    # Something on every page: a queue (the pick comes from it) and one run in the log.
    reading.queue_add(settings.db_path, [paper.arxiv_id for paper in papers[:4]])
    run_id = start_run(settings.db_path, "run", settings.categories)
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 0, "announced": 30,
                                          "fetched": 30, "new": 30, "duration_seconds": 41.2})
    port = _free_port()
    environment = dict(os.environ, OCTET_HOME=str(octet_home), PYTHONPATH=str(REPO))
    # Its own process group: `octet app` starts Streamlit as a child, and the whole group
    # must stop with the test, or a server keeps the port after the suite.
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "app", "--port", str(port)],
                               cwd=REPO, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url, papers
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the app's whole process group (Streamlit included), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break  # the group has already gone
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def test_mark_the_pick_read_in_a_real_browser(settings, running_app):
    from playwright.sync_api import expect, sync_playwright

    url, papers = running_app
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # a fresh folder: only this run's pictures
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.set_default_timeout(30_000)
        page.goto(url)
        expect(page.get_by_text("Why this one")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "this-week.png"), full_page=True)
        pick = reading.get_pick(settings.db_path, weeks.current_week())
        assert pick is not None and pick["status"] == "pick"
        assert pick["arxiv_id"] == papers[0].arxiv_id  # the queue comes first

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
        browser.close()
    assert {p.name for p in ARTIFACTS.glob("*.png")} >= {f"{name}.png" for name in PAGES}
