"""Queue: the papers lined up for the coming weeks, in order."""
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
st.caption(f"{len(rows)} papers; the first one is proposed when a week has no pick yet.")


def _move(arxiv_id: str, where: str) -> None:
    common.act(lambda: reading.queue_move(config.db_path, arxiv_id, where),
               f"Moved {arxiv_id} {where if where != 'top' else 'to the top'}.")


for row in rows:
    arxiv_id = row["arxiv_id"]
    line = st.columns([0.4, 6, 0.5, 0.5, 0.5, 0.5], vertical_alignment="center")
    line[0].markdown(f"**{row['position']}**")
    line[1].markdown(common.paper_line(row))
    line[2].button("", key=f"top_{arxiv_id}", icon=":material/vertical_align_top:",
                   help="Move to the top", on_click=_move, args=(arxiv_id, "top"),
                   disabled=row["position"] == 1)
    line[3].button("", key=f"up_{arxiv_id}", icon=":material/arrow_upward:", help="Move up",
                   on_click=_move, args=(arxiv_id, "up"), disabled=row["position"] == 1)
    line[4].button("", key=f"down_{arxiv_id}", icon=":material/arrow_downward:",
                   help="Move down", on_click=_move, args=(arxiv_id, "down"),
                   disabled=row["position"] == len(rows))
    line[5].button("", key=f"remove_{arxiv_id}", icon=":material/delete:", help="Remove",
                   on_click=common.act, args=(
                       lambda i=arxiv_id: reading.queue_remove(config.db_path, [i]),
                       f"Removed {arxiv_id} from the queue."))
