"""The ranked Inbox in a real headless Chromium: `octet app` on a free port over real labeled
papers (shipped embeddings, the head's families) and a reader who likes SAM and LAM papers;
the order "for you" with its "why", family pills in the charts' colours, a thumb, the
keyboard (J next, D dismiss, U undo), the abstract behind its expander, and a title opening
the paper's page inside the app. Screenshot: test-artifacts/browser-inbox/inbox-ranked.png."""
from __future__ import annotations

import shutil

import pytest

from pipeline.core.families import FAMILY_COLOURS
from pipeline.stages import ranking
from storage import reading
from tests.helpers import states_of
from tests.test_browser import (CHROMIUM, CHROMIUM_ARGS, REPO, app_server, wait_for)
from tests.test_ranking import likes, store_labeled_papers

ARTIFACTS = REPO / "test-artifacts" / "browser-inbox"
TASTE = {"VLM", "SAM"}

pytestmark = pytest.mark.browser


@pytest.fixture
def ranked_app(settings, octet_home):
    library = store_labeled_papers(settings.db_path, history=80, inbox=40, summaries=True)
    db = settings.db_path
    for row in library["history"]:
        if likes(row, TASTE):
            reading.mark_read(db, row["arxiv_id"], "2026-W02", 5)
    reading.dismiss(db, [row["arxiv_id"] for row in library["history"]
                         if not likes(row, TASTE) and row["labels"] != ["none"]][:20])
    with app_server(octet_home) as url:
        yield url, library


def _current_title(page) -> str:
    """The title of the Inbox's current card (the one whose buttons have the keys): the
    first link to a paper page after the "Next up" line."""
    card = page.get_by_text("Next up").locator(
        "xpath=ancestor::div[.//a[starts-with(@href, '?paper=')]][1]")
    return card.locator("a[href^='?paper=']").first.inner_text().replace("\u2060", "")


def _settle(page) -> None:
    """Wait until the app has finished its rerun (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)  # the indicator appears a moment after the key press
    wait_for(lambda: page.locator('[data-testid="stStatusWidget"]').count() == 0, 15)


def _id_of_title(library: dict, title: str) -> str:
    return next(row["arxiv_id"] for row in library["inbox"]
                if " ".join(row["title"].split()) == title)


def test_the_ranked_inbox_in_a_real_browser(settings, ranked_app):
    from playwright.sync_api import expect, sync_playwright

    url, library = ranked_app
    db = settings.db_path
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/inbox")
        expect(page.get_by_text("Next up")).to_be_visible()
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "inbox-ranked.png"), full_page=True)
        assert not page.locator('[data-testid="stException"]').count()

        # The order on the page is the model's, and the first paper is one the reader likes.
        expected = ranking.rank(db, reading.inbox_candidates(db, None)["ids"])
        first = _id_of_title(library, _current_title(page))
        assert first == expected[0].arxiv_id
        assert likes(next(r for r in library["inbox"] if r["arxiv_id"] == first), TASTE)
        expect(page.get_by_text("you liked").first).to_be_visible()
        expect(page.get_by_text("TL;DR").first).to_be_visible()
        # Family pills carry the charts' colours.
        family = expected[0].labels[0]
        pill = page.locator("span.stMarkdownColoredBackground", has_text=family).first
        colour = FAMILY_COLOURS[family]
        expected_rgb = "rgb(" + ", ".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5)) + ")"
        assert pill.evaluate("e => getComputedStyle(e).backgroundColor") == expected_rgb

        # The abstract behind its expander.
        page.get_by_text("Abstract", exact=True).first.click()
        abstract = next(r for r in library["inbox"] if r["arxiv_id"] == first)["abstract"]
        expect(page.get_by_text(" ".join(abstract.split()[:6])).first).to_be_visible()

        # Keyboard: J passes the current card, D dismisses the next, U takes it back.
        _settle(page)  # a key pressed while the page reruns may meet no button
        page.locator("h1").first.click()
        page.keyboard.press("j")
        wait_for(lambda: _id_of_title(library, _current_title(page)) != first, 15)
        second = _id_of_title(library, _current_title(page))
        assert second != first and states_of(db, [first]) == {first: "inbox"}
        _settle(page)  # a key pressed while the page reruns may meet no button
        page.locator("h1").first.click()
        page.keyboard.press("d")
        assert wait_for(lambda: states_of(db, [second])[second] == "dismissed", 15)
        expect(page.get_by_text("Dismissed “").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "inbox-dismissed.png"), full_page=True)
        expect(page.locator(".st-key-undo_dismiss button").first).to_be_visible()
        _settle(page)  # a key pressed while the page reruns may meet no button
        page.locator("h1").first.click()
        page.keyboard.press("u")
        assert wait_for(lambda: states_of(db, [second])[second] == "inbox", 15)

        # A thumb on the current card is stored (once the undo's rerun has drawn the cards:
        # the order is retrained on every rerun, so the current card may change).
        # The paper taken back is the current card again (read once the rerun has drawn it).
        assert wait_for(lambda: _id_of_title(library, _current_title(page)) == second, 15)
        current = second
        # N: thumb down, the key bound to the current card (a mouse click can land on a
        # card that the undo's rerun is still moving).
        _settle(page)  # a key pressed while the page reruns may meet no button
        page.locator("h1").first.click()
        page.keyboard.press("n")
        assert wait_for(lambda: reading.thumbs_of(db, [current]) == {current: -1}, 15)

        # Every title opens the paper's page inside the app (the current card's, read once
        # the thumb's rerun has reordered the cards).
        _settle(page)
        shown = _id_of_title(library, _current_title(page))
        assert page.locator(f"a[href='?paper={shown}']").count() >= 1
        page.goto(f"{url}/?paper={first}")
        title = " ".join(next(r for r in library["inbox"] if r["arxiv_id"] == first)["title"].split())
        expect(page.locator("h1").first).to_contain_text(title.split(":")[0].split()[0])
        assert not page.locator('[data-testid="stException"]').count()
        browser.close()
    assert (ARTIFACTS / "inbox-ranked.png").stat().st_size > 10_000
