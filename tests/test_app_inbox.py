"""The Inbox, the Queue and This week's cards with Streamlit's AppTest on a real DuckDB file:
the order "for you" and its "why", thumbs, keyboard shortcuts on the current card, one
confirmation and undo for dismiss, "Read this week" on any card, the queue's first paper
replacing an unstarted proposal, badges and TL;DR lines everywhere, and the encoder warmed
in the background."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from pipeline.stages.summaries.summary import Summary
from storage import reading
from storage.summaries import save_summaries
from tests.helpers import open_app, states_of, store_families, store_real_papers
from tests.test_ranking import store_labeled_papers
from ui.common import md_escape, short_title



def _shown(app: AppTest, action: str = "queue") -> list[str]:
    """The ids of the cards on the page, in order (from their buttons' keys)."""
    prefix = f"{action}_"
    return [b.key.removeprefix(prefix) for b in app.button if (b.key or "").startswith(prefix)]


def _captions(app: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in app.caption]


@pytest.fixture
def library(settings):
    return store_labeled_papers(settings.db_path, history=60, inbox=60)


def test_the_inbox_opens_for_you_and_a_thumb_reorders_it(settings, library):
    app = open_app("ui/inbox.py")
    assert app.segmented_control(key="inbox_order").value == "for you"
    before = _shown(app)
    # 60 new papers, one of them proposed as this week's pick when the app opened.
    assert len(before) == 25 and "Show 25 more (34 not shown)" in [b.label for b in app.button]
    whys = [c for c in _captions(app) if c.startswith("Why here: ")]
    assert len(whys) == 25
    # The reader likes what the last card is about: a thumb up moves papers like it up.
    liked = before[-1]
    app.button(key=f"like_{liked}").click().run()
    assert reading.thumbs_of(settings.db_path, [liked]) == {liked: 1}
    title = md_escape(next(r for r in library["inbox"] if r["arxiv_id"] == liked)["title"])
    assert [t.value for t in app.toast] == [f"More like “{title}” in your Inbox."]
    after = _shown(app)
    assert after.index(liked) < before.index(liked)
    assert app.button(key=f"like_{liked}").proto.type == "primary"  # the thumb shows as given
    assert any("(you gave it 👍; similarity" in c for c in _captions(app))


def test_newest_and_family_score_orders(settings, library):
    app = open_app("ui/inbox.py")
    app.segmented_control(key="inbox_order").set_value("newest").run()
    pick = reading.get_pick(settings.db_path, weeks.current_week())["arxiv_id"]
    newest = sorted((row["arxiv_id"] for row in library["inbox"] if row["arxiv_id"] != pick),
                    reverse=True)
    assert _shown(app) == newest[:25]  # one listing day: the newer id first
    app.segmented_control(key="inbox_order").set_value("family score").run()
    assert not app.exception and _shown(app) != newest[:25]


def test_the_current_card_has_the_keyboard_shortcuts_and_next_passes_it(settings, library):
    app = open_app("ui/inbox.py")
    first, second = _shown(app)[:2]
    keys = {name: app.button(key=f"{name}_{first}").proto.shortcut
            for name in ("queue", "week", "dismiss", "like", "dislike")}
    assert keys == {"queue": "q", "week": "w", "dismiss": "d", "like": "y", "dislike": "n"}
    assert app.button(key="inbox_next").proto.shortcut == "j"
    assert not any(app.button(key=f"{name}_{second}").proto.shortcut
                   for name in ("queue", "week", "dismiss", "like", "dislike"))
    app.button(key="inbox_next").click().run()
    assert _shown(app)[0] == second and app.button(key=f"queue_{second}").proto.shortcut == "q"
    assert f"passed_queue_{first}" in [b.key for b in app.button]  # kept, below
    assert states_of(settings.db_path, [first]) == {first: "inbox"}  # passing stores nothing


def test_dismiss_confirms_once_with_the_title_and_can_be_undone(settings, library):
    app = open_app("ui/inbox.py")
    target = _shown(app)[0]
    title = short_title(next(r for r in library["inbox"] if r["arxiv_id"] == target)["title"])
    app.button(key=f"dismiss_{target}").click().run()
    assert states_of(settings.db_path, [target]) == {target: "dismissed"}
    assert [t.value for t in app.toast] == [f"Dismissed {title}."]
    assert not app.success and target not in _shown(app)
    undo = app.button(key="undo_dismiss")
    assert undo.proto.shortcut == "u" and title in undo.proto.help
    undo.click().run()
    assert states_of(settings.db_path, [target]) == {target: "inbox"}
    assert reading.reading_of(settings.db_path, target) is None  # nothing left behind
    assert _shown(app)[0] == target and "undo_dismiss" not in [b.key for b in app.button]


def test_undo_returns_a_queued_paper_to_its_place(settings, library):
    ids = [row["arxiv_id"] for row in library["history"][:3]]
    reading.queue_add(settings.db_path, ids)
    previous = reading.reading_of(settings.db_path, ids[1])
    reading.dismiss(settings.db_path, [ids[1]])
    assert reading.undo_dismiss(settings.db_path, ids[1], previous) == "queued"
    assert [row["arxiv_id"] for row in reading.queue_list(settings.db_path)] == ids


def test_read_this_week_from_any_inbox_card(settings, library):
    app = open_app("ui/inbox.py")
    week = weeks.current_week()
    proposed = reading.get_pick(settings.db_path, week)
    assert proposed["chosen_by"] == "octet"
    target = _shown(app)[3]
    app.button(key=f"week_{target}").click().run()
    pick = reading.get_pick(settings.db_path, week)
    assert (pick["arxiv_id"], pick["chosen_by"]) == (target, "reader")
    assert reading.reading_of(settings.db_path, proposed["arxiv_id"]) is None  # back in the inbox
    assert app.toast[0].value.endswith("is this week's paper.")


def test_read_this_week_is_refused_once_the_week_is_read(settings, library):
    week = weeks.current_week()
    done = library["history"][0]["arxiv_id"]
    reading.mark_read(settings.db_path, done, week, 4)
    app = open_app("ui/inbox.py")
    target = _shown(app)[0]
    app.button(key=f"week_{target}").click().run()
    assert reading.get_pick(settings.db_path, week)["arxiv_id"] == done  # the read week stays
    assert any("is read already; queue" in e.value for e in app.error)


def test_queueing_after_a_proposal_replaces_it_until_the_reader_starts(settings, library):
    app = open_app()  # This week proposes a recent paper (the queue is empty)
    week = weeks.current_week()
    proposed = reading.get_pick(settings.db_path, week)["arxiv_id"]
    app.switch_page("ui/inbox.py").run()
    # Newest first: an order that queueing (which teaches "for you") does not change.
    app.segmented_control(key="inbox_order").set_value("newest").run()
    queued = [i for i in _shown(app) if i != proposed][:5]
    for arxiv_id in queued:
        app.button(key=f"queue_{arxiv_id}").click().run()
    app.switch_page("ui/this_week.py").run()
    pick = reading.get_pick(settings.db_path, week)
    assert pick["arxiv_id"] == queued[0] and pick["runners_up"][0] == proposed
    assert "First in your queue" in pick["reason"]
    assert reading.reading_of(settings.db_path, proposed) is None
    # Started: moving another paper to the top changes nothing any more.
    reading.start_reading(settings.db_path, queued[0])
    reading.queue_move(settings.db_path, queued[3], "top")
    app.run()
    assert reading.get_pick(settings.db_path, week)["arxiv_id"] == queued[0]


def test_a_pick_proposed_from_the_queue_stays_until_the_top_changes(settings, library):
    ids = [row["arxiv_id"] for row in library["history"][:4]]
    reading.queue_add(settings.db_path, ids)
    open_app()
    week = weeks.current_week()
    first = reading.get_pick(settings.db_path, week)["arxiv_id"]
    reading.queue_add(settings.db_path, [library["history"][5]["arxiv_id"]])  # at the end
    open_app()
    assert reading.get_pick(settings.db_path, week)["arxiv_id"] == first
    last = [row["arxiv_id"] for row in reading.queue_list(settings.db_path)][-1]
    reading.queue_move(settings.db_path, last, "top")
    open_app()
    assert reading.get_pick(settings.db_path, week)["arxiv_id"] == last


def test_queue_and_runners_up_show_badges_tldr_and_read_this_week(settings):
    papers = store_real_papers(settings.db_path, 12)
    ids = [paper.arxiv_id for paper in papers]
    store_families(settings.db_path, {ids[0]: ["SAM"], ids[1]: ["LLM", "MoE"], ids[2]: []})
    save_summaries(settings.db_path, [Summary(
        arxiv_id=ids[1], version=1, tldr="Experts routed by tokens.", problem="p", method="m",
        results="r", why_it_matters="w", backend="openai", model="m1", prompt_version="v1",
        created_at=datetime.now(timezone.utc))])
    reading.set_pick(settings.db_path, weeks.current_week(), ids[5], "reader", "", [ids[0], ids[1]])
    reading.queue_add(settings.db_path, ids[:3])
    app = open_app()
    runners = "\n".join(m.value for m in app.markdown)
    assert ':color[SAM]{foreground="#000000" background="#14B8A6"}' in runners
    assert "**TL;DR** Experts routed by tokens\\." in runners
    app.switch_page("ui/reading_queue.py").run()
    lines = [m.value for m in app.markdown if m.value.startswith("**[")]
    assert len(lines) == 3 and "not classified yet" not in "".join(lines)
    assert ":gray-badge[no family]" in lines[2] and "(?paper=" + ids[0] + ")" in lines[0]
    app.button(key=f"week_{ids[2]}").click().run()
    assert reading.get_pick(settings.db_path, weeks.current_week())["arxiv_id"] == ids[2]


def test_a_revisit_with_nothing_new_says_so(settings, library):
    reading.set_reader_value(settings.db_path, "last_visit", datetime.now(timezone.utc).isoformat())
    app = open_app("ui/inbox.py")
    scope = _captions(app)[0]
    assert scope.startswith("Nothing new since your last visit")
    assert "untriaged papers of the newest listing day" in scope


def test_the_encoder_is_warmed_in_the_background_when_there_are_embeddings(settings, library):
    from pipeline.stages.search import encode_query
    from ui import common

    common._warming.clear()  # a fresh app process
    encode_query.cache_clear()
    thread = common.warm_encoder(settings.db_path)
    assert thread is not None and common.warm_encoder(settings.db_path) is thread  # once
    common.wait_for_encoder()
    assert not thread.is_alive() and encode_query.cache_info().currsize == 1


def test_no_warm_up_without_embeddings(settings):
    from ui import common

    store_real_papers(settings.db_path, 3)
    common._warming.clear()
    assert common.warm_encoder(settings.db_path) is None
