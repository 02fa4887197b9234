"""The weekly digest in a real headless Chromium (issue 16, item 6 and the screenshots).

`octet app` runs over real labeled papers (the shipped head's families, extractive
summaries) with last week's paper read and noted: /digest shows the week's digest in its
own frame, where no script can run; the page is photographed. Then the HTML mail itself is
rendered (``page.set_content``) at a phone's 375 px and at 800 px, light and dark, and each
is photographed: the dark one really is dark, every text reads on what is behind it
(contrast at least 4.5, WCAG AA), nothing scrolls sideways on the phone, and every link goes
to arXiv or the app. Screenshots: test-artifacts/browser-digest/."""
from __future__ import annotations

import shutil

import pytest

from pipeline.core import weeks
from pipeline.stages.digest import build_digest
from pipeline.stages.digest_format import to_html
from storage import reading
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, REPO, app_server
from tests.test_ranking import store_labeled_papers

ARTIFACTS = REPO / "test-artifacts" / "browser-digest"
AA_CONTRAST = 4.5
NOTES = "Worth it: <b>the ablation</b> in § 4.\nRead the appendix next time."

pytestmark = pytest.mark.browser

# Every element with text of its own: its text, colour, and the first opaque background
# behind it (the element's or an ancestor's), with the WCAG contrast between the two.
CONTRASTS_JS = """() => {
  const parse = text => {
    const parts = text.match(/[\\d.]+/g).map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const channel = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = c => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const behind = element => {
    for (let e = element; e; e = e.parentElement) {
      const colour = parse(getComputedStyle(e).backgroundColor);
      if (colour.a > 0) return colour;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const found = [];
  for (const element of document.body.querySelectorAll('*')) {
    const own = [...element.childNodes].filter(n => n.nodeType === 3)
      .map(n => n.textContent).join('').trim();
    if (!own || !element.getClientRects().length) continue;
    const text = parse(getComputedStyle(element).color), back = behind(element);
    const [light, dark] = [luminance(text), luminance(back)].sort((a, b) => b - a);
    found.push({text: own.slice(0, 40), colour: getComputedStyle(element).color,
                background: getComputedStyle(element).backgroundColor,
                ratio: (light + 0.05) / (dark + 0.05)});
  }
  return found;
}"""


@pytest.fixture
def digest_app(settings, octet_home):
    """`octet app` on the reader's own papers, last week's paper read with a note."""
    library = store_labeled_papers(settings.db_path, history=20, inbox=40, summaries=True)
    last_week = weeks.previous_week(weeks.current_week(settings.timezone))
    reading.mark_read(settings.db_path, library["history"][0]["arxiv_id"], last_week, 4, NOTES,
                      weeks.week_monday(last_week))
    with app_server(octet_home) as url:
        yield url


def _shoot_page(browser, url: str, week: str) -> None:
    """/digest in the app: the digest in its frame, where no script runs; a screenshot."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.set_default_timeout(30_000)
    page.goto(f"{url}/digest")
    expect(page.locator("h1").first).to_have_text("Digest")
    frame = page.frame_locator(f'iframe[title="The {week} digest"]')
    expect(frame.get_by_text("This week's paper")).to_be_visible()
    expect(frame.get_by_text("Your habit")).to_be_visible()
    expect(page.get_by_role("button", name="Download HTML")).to_be_visible()
    page.wait_for_timeout(800)  # let the frame draw before the picture
    page.screenshot(path=str(ARTIFACTS / "digest-page.png"), full_page=True)
    assert not page.locator('[data-testid="stException"]').count()
    body = frame.locator("body")
    assert body.evaluate("b => b.querySelectorAll('script').length") == 0
    # A script added to the frame's document is refused by its policy (the app's iframe
    # itself would let it run, with access to the app).
    ran = body.evaluate("""b => { const s = document.createElement('script');
        s.textContent = 'window.octetRan = true;'; b.appendChild(s);
        return window.octetRan === true; }""")
    assert ran is False
    page.close()


def _render(browser, html: str, width: int, scheme: str) -> dict:
    """The HTML digest at ``width`` in ``scheme``: screenshot, body background, contrasts,
    page width, links."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    page.set_content(html, wait_until="load")
    page.screenshot(path=str(ARTIFACTS / f"digest-html-{width}-{scheme}.png"), full_page=True)
    found = {
        "background": page.evaluate("getComputedStyle(document.body).backgroundColor"),
        "contrasts": page.evaluate(CONTRASTS_JS),
        "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
        "links": page.eval_on_selector_all("a", "links => links.map(a => a.href)"),
        "title": page.title()}
    page.close()
    return found


def test_the_digest_page_and_the_html_digest_in_a_real_browser(settings, digest_app):
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # a fresh folder: only this run's pictures
    ARTIFACTS.mkdir(parents=True)
    digest = build_digest(settings)
    assert digest.pick and digest.sections and digest.last_week
    html = to_html(digest)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _shoot_page(browser, digest_app, digest.week)
        shown = {(width, scheme): _render(browser, html, width, scheme)
                 for width in (375, 800) for scheme in ("light", "dark")}
        browser.close()

    for width in (375, 800):
        assert shown[(width, "light")]["background"] != shown[(width, "dark")]["background"]
    for (width, scheme), found in shown.items():
        assert found["title"] == digest.subject
        low = [c for c in found["contrasts"] if c["ratio"] < AA_CONTRAST]
        assert found["contrasts"] and not low, (width, scheme, low[:5])
        assert found["scroll_width"] <= width, (width, scheme, found["scroll_width"])
        assert found["links"] and all(
            link.startswith(("https://arxiv.org/", settings.app_url)) for link in found["links"]
        ), [link for link in found["links"] if "arxiv.org" not in link]
    assert {p.name for p in ARTIFACTS.glob("*.png")} == {
        "digest-page.png", "digest-html-375-light.png", "digest-html-375-dark.png",
        "digest-html-800-light.png", "digest-html-800-dark.png"}
