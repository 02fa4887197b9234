"""The paper page end to end in a real headless Chromium (`octet app` on a free port, the
fixtures and helpers of ``tests/test_browser.py``): opened at ``/?paper=<id>``, queued from
there, an author link to Browse, a title from Browse back to a paper page, the sidebar
leading away again, and the hostile paper's page with nothing injected. Screenshots of the
paper page (and of Browse filtered to an author) go to ``test-artifacts/browser-paper/``."""
from __future__ import annotations

import re
import shutil

import pytest

from storage import reading
from storage.papers import upsert_papers
from tests.helpers import store_embeddings, store_families, store_real_papers
from tests.test_browser import (CHROMIUM, CHROMIUM_ARGS, REPO, assert_nothing_injected,
                                injected_server, app_server)
from tests.test_hardening_app import HOSTILE_ID, store_hostile_paper

ARTIFACTS = REPO / "test-artifacts" / "browser-paper"

pytestmark = pytest.mark.browser
__all__ = ["injected_server"]  # the fixture, imported for pytest to find it here


@pytest.fixture
def paper_app(settings, octet_home, injected_server):
    """`octet app` over 30 real papers with embeddings, families and summaries; the first
    seen again as v2 with a changed title and abstract; the hostile paper too."""
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts
    from pipeline.stages.summaries.summary import Summary
    from storage.summaries import save_summaries

    papers = store_real_papers(settings.db_path, 30)
    first = papers[0]
    words = first.abstract.split()
    papers[0] = first.with_changes(version=2, title=first.title + ": Revisited",
                                   abstract=" ".join(words[:12] + ["(now", "with", "video)"]
                                                     + words[12:]))
    upsert_papers(settings.db_path, [papers[0]])
    store_embeddings(settings.db_path, papers,
                     embed_texts([paper_text(p.title, p.abstract) for p in papers]))
    store_families(settings.db_path, {p.arxiv_id: ["VLM"] for p in papers[:10]}, score=0.7)
    save_summaries(settings.db_path, [Summary(
        arxiv_id=first.arxiv_id, version=2, tldr=first.abstract.split(". ")[0] + ".",
        backend="extractive", model="all-MiniLM-L6-v2", prompt_version="extractive.v3",
        extractive=True)])
    store_hostile_paper(settings, injected_server[0], queued=False)
    with app_server(octet_home) as url:
        yield url, papers


def test_the_paper_page_in_a_real_browser(settings, paper_app, injected_server):
    from playwright.sync_api import expect, sync_playwright

    url, papers = paper_app
    first = papers[0]
    injected_url, requests = injected_server
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1300})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?paper={first.arxiv_id}")
        expect(page.locator("h1").first).to_contain_text("Revisited")
        expect(page.get_by_text("Similarity").first).to_be_visible()
        expect(page.get_by_text("v1 → v2")).to_be_visible()
        expect(page.locator("del").first).to_be_visible()  # the removed words, struck
        # Streamlit scrolls inside the page: a tall window takes the whole page in one picture.
        page.set_viewport_size({"width": 1400, "height": 3200})
        page.wait_for_timeout(800)  # let math and fonts settle before the picture
        page.screenshot(path=str(ARTIFACTS / "paper.png"), full_page=True)
        page.set_viewport_size({"width": 1400, "height": 1300})
        assert not page.locator('[data-testid="stException"]').count()

        page.get_by_role("button", name="Queue").first.click()
        expect(page.get_by_text("queued.").first).to_be_visible()
        assert reading.reading_of(settings.db_path, first.arxiv_id)["state"] == "queued"

        # An author's link opens Browse filtered to them (links open a new tab).
        author = first.authors[0]
        with context.expect_page() as opened:
            page.get_by_role("link", name=author, exact=True).first.click()
        browse = opened.value
        browse.set_default_timeout(30_000)
        expect(browse.get_by_role("textbox", name="Author", exact=True)).to_have_value(author)
        expect(browse.get_by_text(re.compile(r"papers? match"))).to_be_visible()
        browse.wait_for_timeout(800)
        browse.screenshot(path=str(ARTIFACTS / "browse-author.png"), full_page=True)
        # A title in Browse opens that paper's page.
        with context.expect_page() as opened:
            browse.locator(f'a[href="?paper={first.arxiv_id}"]').first.click()
        again = opened.value
        expect(again.locator("h1").first).to_contain_text("Revisited")

        # The sidebar leads away from a paper page.
        page.get_by_role("link", name="Inbox").first.click()
        expect(page.locator("h1").first).to_have_text("Inbox")
        assert "paper=" not in page.url

        page.goto(f"{url}/?paper={HOSTILE_ID}")
        expect(page.get_by_text("Versions seen")).to_be_visible()
        page.wait_for_timeout(800)
        assert_nothing_injected(page, injected_url, requests, "paper page")
        page.goto(f"{url}/?paper=2699.99999")
        expect(page.get_by_text("is not stored")).to_be_visible()
        browser.close()
    assert {p.name for p in ARTIFACTS.glob("*.png")} == {"paper.png", "browse-author.png"}
