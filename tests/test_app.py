"""Every page of the app with AppTest, on an empty and a filled database; each action's
effect is checked in the database."""
from __future__ import annotations

from storage.search import BrowseFilter
from storage.families import families_for
from tests.helpers import nearest_ids, open_app, similar_ids, states_of

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from storage import reading
from storage.db import connect
from tests.helpers import store_embeddings, store_families, store_real_papers
from ui.common import md_escape

PAGES = ("ui/this_week.py", "ui/inbox.py", "ui/reading_queue.py", "ui/browse.py",
         "ui/progress.py", "ui/digest.py", "ui/runs.py")


def _text(app: AppTest) -> str:
    # Confirmations are toasts (one per action); failures stay as an error banner.
    parts = [e.value for kind in ("markdown", "title", "caption", "info", "success", "warning",
                                  "error", "subheader", "toast") for e in getattr(app, kind)]
    return "\n".join(str(part) for part in parts)


@pytest.fixture
def filled(settings):
    return store_real_papers(settings.db_path, 40)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_database(settings, page):
    app = open_app(page)
    assert app.title, "each page has a title"
    if page == "ui/this_week.py":
        assert "No papers yet" in _text(app)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_filled_database(settings, filled, page):
    app = open_app(page)
    assert app.title
    if page in ("ui/this_week.py", "ui/inbox.py", "ui/browse.py"):
        assert any(p.title.split()[0] in _text(app).replace("\\", "") for p in filled)


def test_this_week_marks_the_pick_read_with_rating_and_notes(settings, filled):
    app = open_app()
    pick = reading.get_pick(settings.db_path, weeks.current_week())
    assert pick is not None and pick["title"].split()[0] in _text(app).replace("\\", "")
    assert "Why this one" in _text(app)
    app.button[0].click().run()  # Start reading
    assert reading.reading_of(settings.db_path, pick["arxiv_id"])["started_at"]
    app.feedback[0].set_value(3)  # the fourth star
    app.text_area[0].input("Key idea: **entity** masks")
    app.button(key="FormSubmitter:mark_read-Mark read").click().run()
    assert not app.exception
    stored = reading.reading_of(settings.db_path, pick["arxiv_id"])
    assert (stored["state"], stored["rating"], stored["notes"]) == ("read", 4, "Key idea: **entity** masks")
    assert "Marked read" in _text(app)
    assert "1 wk" in [m.value for m in app.metric][0]
    app.text_area(key="edit_notes").input("Second thoughts.")
    app.feedback(key="edit_rating").set_value(4)  # the same stars widget: the fifth star
    app.button(key="FormSubmitter:edit_notes_form-Save notes").click().run()
    stored = reading.reading_of(settings.db_path, pick["arxiv_id"])
    assert (stored["state"], stored["rating"], stored["notes"]) == ("read", 5, "Second thoughts.")


def test_this_week_swap_and_skip(settings, filled):
    app = open_app()
    week = weeks.current_week()
    pick = reading.get_pick(settings.db_path, week)
    runner = pick["runners_up"][0]
    app.button(key=f"swap_{runner}").click().run()
    assert reading.get_pick(settings.db_path, week)["arxiv_id"] == runner
    skip = next(b for b in app.button if b.label == "Skip this week")
    skip.click().run()
    assert reading.get_pick(settings.db_path, week)["status"] == "skipped"
    assert "You skipped this week" in _text(app)


def test_inbox_queue_and_dismiss(settings, filled):
    app = open_app("ui/inbox.py")
    shown = [b.key.removeprefix("queue_") for b in app.button if (b.key or "").startswith("queue_")]
    assert len(shown) >= 2
    first, second = shown[:2]
    app.button(key=f"queue_{first}").click().run()
    app.button(key=f"dismiss_{second}").click().run()
    states = states_of(settings.db_path, [first, second])
    assert states == {first: "queued", second: "dismissed"}
    title = md_escape(reading.cards(settings.db_path, [second])[second]["title"])
    assert [t.value for t in app.toast] == [f"Dismissed “{title}”."]  # one confirmation


def test_queue_page_moves_and_removes(settings, filled):
    ids = [paper.arxiv_id for paper in filled[:3]]
    # A pick already chosen, so opening the app does not take the queue's first paper.
    reading.set_pick(settings.db_path, weeks.current_week(), filled[9].arxiv_id, "reader")
    reading.queue_add(settings.db_path, ids)
    app = open_app("ui/reading_queue.py")
    app.button(key=f"top_{ids[2]}").click().run()
    assert [row["arxiv_id"] for row in reading.queue_list(settings.db_path)] == [ids[2], ids[0], ids[1]]
    app.button(key=f"down_{ids[2]}").click().run()
    app.button(key=f"remove_{ids[1]}").click().run()
    assert [row["arxiv_id"] for row in reading.queue_list(settings.db_path)] == [ids[0], ids[2]]


def test_browse_search_and_queue(settings, filled):
    app = open_app("ui/browse.py")
    app.text_input(key="browse_text").input("segmentation").run()
    assert not app.exception
    expected = [p for p in filled if "segmentation" in (p.title + p.abstract).lower()]
    assert f"**{len(expected):,}** papers with every word" in _text(app)
    app.button(key=f"bqueue_{expected[0].arxiv_id}").click().run()
    assert states_of(settings.db_path, [expected[0].arxiv_id])[expected[0].arxiv_id] == "queued"
    assert ": queued." in "\n".join(t.value for t in app.toast)


def test_progress_shows_history_and_notes(settings, filled):
    reading.mark_read(settings.db_path, filled[0].arxiv_id, weeks.current_week(), 5, "*my* note")
    app = open_app("ui/progress.py")
    assert [m.value for m in app.metric][:2] == ["1", "1 wk"]
    assert "*my* note" in [m.value for m in app.markdown]


def test_runs_page_shows_the_run_log(settings, filled):
    from storage.runs import finish_run, start_run

    run_id = start_run(settings.db_path, "run", ("cs.CL",))
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 1, "announced": 12,
                                          "fetched": 12, "new": 9, "errors": ["api: timed out"]})
    app = open_app("ui/runs.py")
    assert "reported 1 error" in _text(app)
    table = app.dataframe[0].value
    assert table.loc[0, "new"] == 9 and table.loc[0, "announced"] == 12


def test_a_killed_run_is_shown_as_stopped_and_closed_by_the_next(settings, filled):
    import os
    from storage.runs import close_interrupted_runs, recent_runs, run_in_progress, start_run

    start_run(settings.db_path, "run", ("cs.CL",))  # a run that never finished
    (settings.home / "run.lock").write_text(str(os.getpid()))
    assert run_in_progress(settings.home)
    assert "in progress" in _text(open_app("ui/runs.py"))
    (settings.home / "run.lock").write_text("999999999")  # that process is gone
    assert not run_in_progress(settings.home)
    assert "stopped before it finished" in _text(open_app("ui/runs.py"))
    assert close_interrupted_runs(settings.db_path) == 1
    assert recent_runs(settings.db_path, 1)[0]["status"] == "interrupted"
    assert "stopped before it finished" in _text(open_app("ui/runs.py"))


def test_untrusted_paper_text_is_escaped(settings):
    from pipeline.core.paper import Paper
    from storage.papers import upsert_papers
    from ui.common import md_escape

    title = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) on $O(n^2)$ **bold**"
    upsert_papers(settings.db_path, [Paper("2601.00001", 1, title, ("A <b>B</b>",), "x",
                                           ("cs.LG",), "cs.LG", abs_url="https://arxiv.org/abs/2601.00001",
                                           pdf_url="https://arxiv.org/pdf/2601.00001",
                                           listed_date="2026-01-05")])
    app = open_app()
    heading = next(m.value for m in app.markdown if m.value.startswith("## "))
    assert heading == "## " + md_escape(title)
    assert "\\<img" in heading and "\\[click\\]\\(javascript" in heading
    assert "$O(n^2)$" in heading  # math kept for LaTeX rendering
    assert all(not m.allow_html for m in app.markdown)


def test_demo_database_is_labeled(settings, monkeypatch):
    store_real_papers(settings.demo_db_path, 5)
    monkeypatch.setenv("OCTET_DB", str(settings.demo_db_path))
    app = open_app()
    assert any("DEMO DATA" in w.value for w in app.sidebar.warning)
    with connect(settings.demo_db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM weekly_picks").fetchone()[0] == 1


def test_browse_semantic_search_and_similar_papers(settings, filled):
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    vectors = embed_texts([paper_text(p.title, p.abstract) for p in filled])
    store_embeddings(settings.db_path, filled, vectors)
    app = open_app("ui/browse.py")
    assert app.selectbox(key="browse_mode").value == "keyword + semantic"
    query = "jailbreak attacks on multimodal models"  # no paper has all these words
    app.text_input(key="browse_text").input(query).run()
    assert not app.exception
    nearest = nearest_ids(settings.db_path, embed_texts([query])[0],
                                      BrowseFilter(), 1)[0][0]
    shown = [b.key.removeprefix("bs_") for b in app.button if (b.key or "").startswith("bs_")]
    count = next(m.value for m in app.markdown if "with every word" in m.value)
    # No paper has every word; the nearest, above the relevance cut-off, comes first.
    assert count.startswith("**0** papers with every word") and shown[0] == nearest
    app.button(key=f"bs_{nearest}").click().run()
    similar = similar_ids(settings.db_path, nearest, 1)[0][0]
    sidebar = "\n".join(m.value for m in app.sidebar.markdown)
    assert f"`{similar}`" in sidebar


def test_app_command_refuses_a_bad_port(settings, capsys):
    from pipeline.cli import main

    assert main(["app", "--port", "70000"]) == 2
    assert "1 to 65535" in capsys.readouterr().err


def test_inbox_groups_by_family_and_corrects_labels(settings, filled):
    store_families(settings.db_path, {filled[-1].arxiv_id: ["VLM"], filled[-2].arxiv_id: ["VLM", "MoE"],
                                      filled[-3].arxiv_id: []})
    reading.set_pick(settings.db_path, weeks.current_week(), filled[0].arxiv_id, "reader")
    app = open_app("ui/inbox.py")
    options = app.segmented_control(key="inbox_family").options
    assert options[:3] == ["all (39)", "MoE (1)", "VLM (2)"]  # every untouched paper, then families
    assert "no family (1)" in options and any(o.startswith("not classified yet") for o in options)
    app.segmented_control(key="inbox_family").set_value("VLM").run()
    target = filled[-1].arxiv_id
    app.multiselect(key=f"labels_{target}").set_value(["SAM", "VLM"])
    app.button(key=f"save_labels_{target}").click().run()
    assert not app.exception
    assert families_for(settings.db_path, [target])[target]["labels"] == ["SAM", "VLM"]
    title = md_escape(filled[-1].title)
    assert [t.value for t in app.toast] == [f"Labels of “{title}” saved: SAM, VLM."]


def test_browse_family_filter(settings, filled):
    store_families(settings.db_path, {filled[0].arxiv_id: ["SLM"]})
    app = open_app("ui/browse.py")
    app.selectbox(key="browse_family").set_value("SLM").run()
    shown = [b.key.removeprefix("bqueue_") for b in app.button
             if (b.key or "").startswith("bqueue_")]
    assert shown == [filled[0].arxiv_id]
