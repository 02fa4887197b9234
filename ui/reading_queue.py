"""Queue: the papers lined up for the coming weeks, in order; any of them can be this week's."""
from __future__ import annotations

import streamlit as st

from storage import reading
from ui import common

config = common.settings()
st.title("Queue")
rows = reading.queue_list(config.db_path)
if not rows:
    st.info("The queue is empty. Queue papers from the Inbox or Browse (or "
            "`octet queue add ARXIV_ID`); the weekly pick comes from here first.")
    st.stop()
st.caption(f"{len(rows)} papers; the first one is proposed when a week has no pick yet, and "
           "putting one first replaces a proposal you have not started.")
details = common.card_details(config.db_path, [row["arxiv_id"] for row in rows])


def _move(arxiv_id: str, where: str, title: str) -> None:
    common.act(lambda: reading.queue_move(config.db_path, arxiv_id, where),
               f"Moved {common.short_title(title)} "
               f"{where if where != 'top' else 'to the top'}.")


def _remove(arxiv_id: str, title: str) -> None:
    common.act(lambda: reading.queue_remove(config.db_path, [arxiv_id]),
               f"Removed {common.short_title(title)} from the queue.")


def _row(row: dict) -> None:
    arxiv_id, title, position = row["arxiv_id"], row["title"], row["position"]
    line = st.columns([0.4, 7, 0.5, 0.5, 0.5, 0.5], vertical_alignment="top")
    line[0].markdown(f"**{position}**")
    with line[1]:
        common.paper_card(row, details[arxiv_id])
        st.button("Read this week", key=f"week_{arxiv_id}", icon=":material/auto_stories:",
                  help="Make it this week's paper (as `octet pick ID`)", on_click=common.act,
                  args=(common.week_action(config, arxiv_id, title), ""))
    line[2].button("", key=f"top_{arxiv_id}", icon=":material/vertical_align_top:",
                   help="Move to the top", on_click=_move, args=(arxiv_id, "top", title),
                   disabled=position == 1)
    line[3].button("", key=f"up_{arxiv_id}", icon=":material/arrow_upward:", help="Move up",
                   on_click=_move, args=(arxiv_id, "up", title), disabled=position == 1)
    line[4].button("", key=f"down_{arxiv_id}", icon=":material/arrow_downward:",
                   help="Move down", on_click=_move, args=(arxiv_id, "down", title),
                   disabled=position == len(rows))
    line[5].button("", key=f"remove_{arxiv_id}", icon=":material/delete:", help="Remove",
                   on_click=_remove, args=(arxiv_id, title))


for queued in rows:
    with st.container(border=True):
        _row(queued)
