"""Progress and the demo label in a real headless Chromium (issue 15, items 1, 7, 8).

`octet app` starts on a data directory whose own database is empty and whose demo holds
papers: at a phone's width the DEMO DATA label is on the page (the sidebar is collapsed).
Then the reader's own papers arrive, as from a run: the same app, reloaded, shows them with
no label. Progress is photographed at 1 week read and at 100 weeks read, at desktop and
phone widths, into ``test-artifacts/browser-progress/``."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.core import weeks
from pipeline.core.families import CODES
from storage import reading
from tests.helpers import store_families, store_real_papers
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, app_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser-progress"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_app(settings, octet_home):
    """`octet app` on a home with the demo filled and the reader's own database empty."""
    store_real_papers(settings.demo_db_path, 20)
    with app_server(octet_home) as url:
        yield url


def _read_weeks(settings, papers, count: int) -> None:
    """Paper i read i weeks ago (this week first), in family i mod 8."""
    monday = weeks.week_monday(weeks.current_week())
    for index, paper in enumerate(papers[:count]):
        week = weeks.week_of(monday - timedelta(weeks=index))
        store_families(settings.db_path, {paper.arxiv_id: [CODES[index % len(CODES)]]})
        reading.mark_read(settings.db_path, paper.arxiv_id, week, 1 + index % 5,
                          f"note{index:03d}x", weeks.week_monday(week))


def _shoot(page, url: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("h1").first).to_be_visible()
    page.wait_for_timeout(1200)  # charts draw after the page
    assert not page.locator('[data-testid="stException"]').count(), name
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_demo_label_on_a_phone_then_progress_at_one_and_a_hundred_weeks(settings, demo_app):
    from playwright.sync_api import expect, sync_playwright

    url = demo_app
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        phone = browser.new_page(viewport=PHONE)
        phone.set_default_timeout(30_000)
        _shoot(phone, url, "demo-phone")
        label = phone.locator('[data-testid="stMain"]').get_by_text("DEMO DATA").first
        expect(label).to_be_visible()  # on the page, though the sidebar is collapsed
        box = label.bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]

        papers = store_real_papers(settings.db_path, 100)  # a run stores the reader's papers
        _read_weeks(settings, papers, 1)
        desktop = browser.new_page(viewport=DESKTOP)
        desktop.set_default_timeout(30_000)
        _shoot(desktop, f"{url}/progress", "progress-1-week")
        assert not desktop.get_by_text("DEMO DATA").count()  # switched to the reader's own
        expect(desktop.get_by_text("Next:").first).to_be_visible()
        assert desktop.locator('[data-testid="stVegaLiteChart"]').count() == 2
        _shoot(phone, f"{url}/progress", "progress-1-week-phone")
        assert not phone.get_by_text("DEMO DATA").count()

        _read_weeks(settings, papers, 100)
        _shoot(desktop, f"{url}/progress", "progress-100-weeks")
        expect(desktop.get_by_text("100 of 100 papers read").first).to_be_visible()
        _shoot(phone, f"{url}/progress", "progress-100-weeks-phone")
        desktop.get_by_label("Search your reading history").fill("NOTE042X")
        desktop.keyboard.press("Enter")
        expect(desktop.get_by_text("1 of 100 papers read match").first).to_be_visible()
        browser.close()
    assert {p.name for p in ARTIFACTS.glob("*.png")} == {
        "demo-phone.png", "progress-1-week.png", "progress-1-week-phone.png",
        "progress-100-weeks.png", "progress-100-weeks-phone.png"}
