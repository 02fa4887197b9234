"""This week: the one paper to read, why it was chosen, and the actions on it."""
from __future__ import annotations

import streamlit as st

from pipeline.core import weeks
from pipeline.core.paper import abs_url, pdf_url
from pipeline.stages.reading import ensure_pick
from storage import reading
from storage.families import families_for
from storage.summaries import summary_for
from ui import common

config = common.settings()
week = weeks.current_week(config.timezone)
read_weeks = reading.read_weeks(config.db_path)

left, right = st.columns([4, 1])
left.title(f"This week · {weeks.week_label(week)}")
right.metric("Streak", f"{weeks.streak(read_weeks, week)} wk",
             help="Consecutive weeks whose pick was read")

pick = ensure_pick(config)
if pick is None:
    st.info("No papers yet. Run `octet run` to fetch today's arXiv listing "
            "(or `octet demo` for a demo library), then come back.")
    st.stop()

arxiv_id = pick["arxiv_id"]
title = common.short_title(pick["title"])
families = families_for(config.db_path, [arxiv_id])
labels = families[arxiv_id].get("labels", []) if arxiv_id in families else None
summary = summary_for(config.db_path, [arxiv_id]).get(arxiv_id)

st.markdown(f"## {common.md_escape(pick['title'])}")
categories = " ".join(common.md_escape(category) for category in pick["categories"] or [])
st.markdown(f"{common.authors_line(pick['authors'])}  \n{common.code(arxiv_id)} · {categories} · "
            f"listed {common.md_escape(pick['listed_date'] or '-')} · {common.family_badges(labels)}")
links = st.columns([1, 1, 6])
links[0].link_button("Abstract", common.link_target(pick["abs_url"], abs_url(arxiv_id)),
                     icon=":material/article:")
links[1].link_button("PDF", common.link_target(pick["pdf_url"], pdf_url(arxiv_id)),
                     icon=":material/picture_as_pdf:")
st.markdown(f"**Why this one:** {common.md_escape(pick['reason'] or 'chosen by you')}")
common.summary_block(summary, pick["abstract"])
st.divider()


def _stars(key: str) -> int | None:
    """The rating a ``common.rating_input`` holds (its widget stores 0-4)."""
    index = st.session_state.get(key)
    return None if index is None else index + 1


def _mark_read() -> None:
    notes = st.session_state.get("read_notes") or None
    common.act(lambda: reading.mark_read(config.db_path, arxiv_id, week, _stars("read_rating"),
                                         notes, weeks.today(config.timezone)),
               f"Marked read: {title}. See you next week!")


def _swap(other: str, other_title: str) -> None:
    common.act(lambda: reading.set_pick(config.db_path, week, other, "reader",
                                        "swapped in from the runners-up",
                                        [arxiv_id] + [i for i in pick["runners_up"] or []
                                                      if i != other]),
               f"{common.short_title(other_title)} is this week's paper.")


def _save_notes() -> None:
    rating = _stars("edit_rating")
    common.act(lambda: reading.save_notes(config.db_path, arxiv_id,
                                          st.session_state.get("edit_notes") or "",
                                          rating if rating is not None else pick["rating"]),
               f"Notes of {title} saved.")


if pick["status"] == "read":
    stars = "★" * (pick["rating"] or 0)
    st.success(f"Read on {common.md_escape(pick['read_on'])} {stars}. Well done — one paper this week.")
    if pick["notes"]:
        st.markdown("**Your notes**")
        st.markdown(pick["notes"])  # the reader's own Markdown, never paper text
    with st.expander("Edit notes and rating"):
        with st.form("edit_notes_form"):
            st.markdown("**Rating**")
            common.rating_input("edit_rating", pick["rating"])
            st.text_area("Notes (Markdown)", value=pick["notes"] or "", key="edit_notes",
                         height=140)
            st.form_submit_button("Save notes", on_click=_save_notes)
    st.stop()

if pick["status"] == "skipped":
    st.warning("You skipped this week. Swap in a paper below to read one after all.")
elif pick["started_at"]:
    st.caption(f"Started {pick['started_at'][:16].replace('T', ' ')} UTC")
else:
    st.button("Start reading", icon=":material/play_arrow:", on_click=common.act,
              args=(lambda: reading.start_reading(config.db_path, arxiv_id),
                    f"Started {title}. Enjoy!"))

if pick["status"] == "pick":
    with st.form("mark_read"):
        st.markdown("**Done? Rate it and keep your notes**")
        common.rating_input("read_rating")
        st.text_area("Notes (Markdown)", key="read_notes", height=140,
                     placeholder="What is the idea, what did they show, what will you remember?")
        st.form_submit_button("Mark read", type="primary", on_click=_mark_read)

runners = [i for i in pick["runners_up"] or [] if i != arxiv_id]
if runners:
    cards = reading.cards(config.db_path, runners)
    details = common.card_details(config.db_path, runners)
    st.markdown("**Runners-up**")
    for other in runners:
        if other not in cards:
            continue
        with st.container(border=True):
            common.paper_card(cards[other], details[other])
            st.button("Read this instead", key=f"swap_{other}", icon=":material/swap_horiz:",
                      on_click=_swap, args=(other, cards[other]["title"]))
if pick["status"] == "pick":
    st.button("Skip this week", icon=":material/skip_next:", on_click=common.act,
              args=(lambda: reading.skip_week(config.db_path, week),
                    f"Skipped {week}. The streak starts again next week."))
