"""Issue 12, items 2 and 5 (display): paper, feed and model text is shown as text in the app.

``md_escape`` is checked on the hostile strings of ``tests/fixtures/hostile/app/strings.jsonl``
and every page is opened with AppTest on the hostile paper of ``.../app/paper.json``; the
real browser check (no request leaves for the injected URL) is in ``tests/test_browser.py``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from pipeline.core.paper import Paper, abs_url, pdf_url
from storage import reading
from tests.helpers import open_app, store_real_papers
from ui.common import link_target, md_escape

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "app"
INJECTED = "http://127.0.0.1:9"  # the address the hostile strings point at (nothing listens)
HOSTILE_ID = "2601.00077"
WORD_JOINER = "\u2060"
MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~&=:^$")
UNSAFE_MATH = re.compile(r"\]\(|!\[|<|://|javascript:|\\(?:href|url|includegraphics)", re.IGNORECASE)


def hostile_strings() -> list[dict]:
    """The hostile strings, each with ``{url}`` replaced by ``INJECTED``."""
    lines = (HOSTILE / "strings.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line.replace("{url}", INJECTED)) for line in lines if line.strip()]


def hostile_paper(url: str = INJECTED) -> dict:
    """The hostile paper's fields, with ``{url}`` replaced by ``url``."""
    return json.loads((HOSTILE / "paper.json").read_text(encoding="utf-8").replace("{url}", url))


def store_hostile_paper(settings, url: str = INJECTED, fallback_fields=(), queued: bool = True) -> dict:
    """Store the hostile paper with a model summary, queued (so it becomes this week's pick)
    unless ``queued`` is false; listed on the newest day, so it is in the Inbox."""
    from pipeline.stages.summaries.summary import Summary
    from storage.summaries import save_summaries
    from storage.papers import upsert_papers

    fields = hostile_paper(url)
    upsert_papers(settings.db_path, [Paper(
        HOSTILE_ID, 1, fields["title"], tuple(fields["authors"]), fields["abstract"],
        tuple(fields["categories"]), fields["primary_category"], abs_url=abs_url(HOSTILE_ID),
        pdf_url=pdf_url(HOSTILE_ID), listed_date="2026-12-31")])
    summary = fields["summary"]
    save_summaries(settings.db_path, [Summary(
        arxiv_id=HOSTILE_ID, version=1, backend="openai", prompt_version="summarize.v1",
        fallback_fields=tuple(fallback_fields), **summary)])
    if queued:
        reading.queue_add(settings.db_path, [HOSTILE_ID])
    return fields


def _read_escaped(escaped: str) -> tuple[str, str, list[str], list[str]]:
    """Read md_escape's output: the text as typed (math spans as their source), the text
    outside math, the math spans, and the Markdown characters left unescaped outside math."""
    typed, outside, spans, unescaped, math, index = [], [], [], [], None, 0
    while index < len(escaped):
        char = escaped[index]
        if math is not None:
            math += char
            if char == "$":
                spans.append(math)
                typed.append(math)
                math = None
        elif char == "\\":
            index += 1
            typed.append(escaped[index])
            outside.append(escaped[index])
        elif char == "$":
            math = "$"
        else:
            typed.append(char)
            outside.append(char)
            unescaped += [char] if char in MARKDOWN_SPECIAL else []
        index += 1
    assert math is None, f"an open math span: {escaped!r}"
    return "".join(typed).replace(WORD_JOINER, ""), "".join(outside), spans, unescaped


@pytest.mark.parametrize("case", hostile_strings(), ids=lambda case: case["name"])
def test_md_escape_shows_every_hostile_string_as_text(case):
    typed, outside, kept, unescaped = _read_escaped(md_escape(case["text"]))
    assert not [span for span in kept if UNSAFE_MATH.search(span)], kept
    assert unescaped == []
    # Streamlit turns these into emoji, icons and links even when their colons are escaped.
    assert not re.search(r":[\w+/-]|://|@\w|www\.", outside, re.IGNORECASE), outside
    assert not re.search(r"(?<!\S)(?:<->|->|<-|--|>=|<=|~=)(?!\S)", outside), outside  # arrows
    assert typed == " ".join(case["text"].split())


@pytest.mark.parametrize("text, expected", [
    ("$ ![pix](http://host/m.png) $$",
     "\\$ \\!\\[pix\\]\\(http\\:\u2060//host/m\\.png\\) \\$\\$"),
    ("on $O(n^2)$ time", "on $O(n^2)$ time"),
    ("$x$ and $y$", "$x$ and $y$"),
    ("costs $5 and $10", "costs \\$5 and \\$10"),
    ("$a$$b$", "\\$a\\$\\$b\\$"),
    ("$x$5", "\\$x\\$5"),
    ("$![a](http://h/x.png)$ then $z$", "\\$\\!\\[a\\]\\(http\\:\u2060//h/x\\.png\\)\\$ then $z$"),
    ("Title: a subtitle", "Title\\: a subtitle"),
    ("a -> b", "a \\-\u2060\\> b"),
])
def test_md_escape_keeps_only_balanced_safe_math(text, expected):
    assert md_escape(text) == expected


@pytest.mark.parametrize("url", [
    "https://arxiv.org/abs/2601.00001) ![x](http://127.0.0.1:9/x.png",
    "https://arxiv.org/abs/2601.00001 \"title\" <b>",
    "https://arxiv.org/abs/2601.00001>[x](y)`",
])
def test_a_link_target_cannot_leave_the_markdown_link(url):
    target = link_target(url)
    assert target.startswith("https://arxiv.org/abs/2601.00001")
    assert not set(target) & set(" ()<>[]`\"'\\")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "//127.0.0.1:9/x", ""])
def test_a_link_target_is_a_web_address_or_the_fallback(url):
    assert link_target(url, "https://arxiv.org/abs/2601.00001") == "https://arxiv.org/abs/2601.00001"


def _sources(app: AppTest) -> list[str]:
    """Every Markdown source the page shows, labels included."""
    kinds = ("markdown", "title", "caption", "info", "success", "warning", "error", "subheader",
             "header")
    texts = [str(e.value) for kind in kinds for e in getattr(app, kind)]
    texts += [str(e.value) for kind in kinds for e in getattr(app.sidebar, kind)]
    return texts + [str(e.label) for e in app.expander]


def _renders_injected_markup(source: str) -> bool:
    """True when the injected address would reach the page as a link or an image."""
    return INJECTED in source.replace("\\", "") or any(
        mark in source.replace("\\", "") for mark in (":red[", ":material/", ":blue-badge["))


@pytest.mark.parametrize("page", ["ui/inbox.py", "ui/reading_queue.py", "ui/browse.py",
                                  "ui/progress.py", "ui/runs.py"])
def test_every_page_shows_the_hostile_paper_as_text(settings, page):
    from storage.runs import finish_run, start_run

    real = store_real_papers(settings.db_path, 5)
    fields = store_hostile_paper(settings, queued=page == "ui/reading_queue.py")
    week = weeks.current_week()
    reading.set_pick(settings.db_path, week, real[0].arxiv_id, "reader")  # not the hostile one
    if page == "ui/progress.py":
        reading.mark_read(settings.db_path, HOSTILE_ID, weeks.previous_week(week), 4, "my *own* notes")
    run_id = start_run(settings.db_path, "run", ("cs.CL",))
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 1, "errors": [fields["run_error"]]})
    app = open_app(page)
    shown = _sources(app)
    assert any("Click me" in source for source in shown), "the hostile paper is on the page"
    assert not [source for source in shown if _renders_injected_markup(source)]
    assert all(not element.allow_html for element in app.markdown)


def test_this_week_shows_every_field_of_the_hostile_pick_escaped(settings):
    fields = store_hostile_paper(settings)
    app = open_app()
    shown = "\n".join(_sources(app))
    for text in (fields["title"], fields["summary"]["model"],
                 fields["summary"]["problem"], *fields["categories"], *fields["authors"]):
        assert md_escape(text) in shown, text
    assert not [source for source in _sources(app) if _renders_injected_markup(source)]


EXTRACTIVE_MARK = "extractive"


def _field_line(app: AppTest, label: str) -> str:
    return next(m.value for m in app.markdown if m.value.startswith(f"**{label}"))


def test_summary_marks_the_fields_copied_from_the_abstract(settings):
    store_hostile_paper(settings, fallback_fields=("problem", "tldr"))
    app = open_app()
    assert EXTRACTIVE_MARK in _field_line(app, "Problem").lower()
    assert EXTRACTIVE_MARK in _field_line(app, "TL;DR").lower()
    assert EXTRACTIVE_MARK not in _field_line(app, "Method").lower()
    caption = next(c.value for c in app.caption if c.value.startswith("Summary by"))
    assert "2 of 5 fields" in caption and EXTRACTIVE_MARK in caption.lower()


def test_a_summary_copied_whole_from_the_abstract_is_called_extractive(settings):
    store_hostile_paper(settings, fallback_fields=("tldr", "problem", "method", "results",
                                                   "why_it_matters"))
    app = open_app()
    captions = [c.value for c in app.caption]
    assert any(c.startswith("Extractive summary") for c in captions), captions
    assert not any(c.startswith("Summary by") for c in captions)
