"""Inbox: what arrived since the last visit, grouped by family; queue, dismiss or relabel."""
from __future__ import annotations

import streamlit as st

from pipeline.core.families import CODES as FAMILY_CODES
from storage import reading
from storage.families import families_for, set_reader_labels
from ui import common

PER_GROUP = 25

config = common.settings()
since = common.visit_since(config)
st.title("Inbox")
cards, total = reading.inbox(config.db_path, since)
if not cards:
    st.info("Nothing new. New papers arrive with `octet run` (it runs daily once scheduled).")
    st.stop()
st.caption((f"{total:,} new since your last visit ({since:%Y-%m-%d %H:%M} UTC)" if since
            else f"{total:,} papers of the newest listing day") +
           (f"; showing the newest {len(cards)}" if total > len(cards) else ""))

ids = [card["arxiv_id"] for card in cards]
families = families_for(config.db_path, ids)
groups: dict[str, list[dict]] = {}
for card in cards:
    labels = families.get(card["arxiv_id"], {}).get("labels") if families else None
    keys = labels or (["no family"] if labels is not None else ["not classified yet"])
    for key in keys:
        groups.setdefault(key, []).append(card)
order = [code for code in FAMILY_CODES if code in groups] + \
        [key for key in groups if key not in FAMILY_CODES]
choice = st.segmented_control("Family", order, default=order[0], key="inbox_family",
                              format_func=lambda key: f"{common.md_escape(key)} ({len(groups[key])})")
shown = groups.get(choice or order[0], [])


def _labels_editor(card: dict, labels) -> None:
    with st.popover("Labels", icon=":material/label:"):
        st.multiselect("Families", FAMILY_CODES, default=labels or [],
                       key=f"labels_{card['arxiv_id']}")
        st.button("Save labels", key=f"save_labels_{card['arxiv_id']}", on_click=_save_labels,
                  args=(card["arxiv_id"],))


def _save_labels(arxiv_id: str) -> None:
    picked = st.session_state.get(f"labels_{arxiv_id}") or []
    common.act(lambda: set_reader_labels(config.db_path, arxiv_id, picked),
               f"Labels of {arxiv_id} saved: {', '.join(picked) or 'no family'}.")


for card in shown[:PER_GROUP]:
    labels = families.get(card["arxiv_id"], {}).get("labels") if families else None
    with st.container(border=True):
        st.markdown(common.paper_line(card, labels))
        st.caption(common.authors_line(card["authors"], 4))
        row = st.columns([1, 1, 1, 5])
        row[0].button("Queue", key=f"queue_{card['arxiv_id']}", icon=":material/playlist_add:",
                      on_click=common.act,
                      args=(common.queue_action(config.db_path, card["arxiv_id"]), ""))
        row[1].button("Dismiss", key=f"dismiss_{card['arxiv_id']}", icon=":material/close:",
                      on_click=common.act, args=(
                          lambda i=card["arxiv_id"]: reading.dismiss(config.db_path, [i]),
                          f"Dismissed {card['arxiv_id']}: not interested."))
        with row[2]:
            _labels_editor(card, labels)
if len(shown) > PER_GROUP:
    st.caption(f"{len(shown) - PER_GROUP} more in this group: find them in Browse.")
