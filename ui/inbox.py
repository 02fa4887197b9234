"""Inbox: the untriaged papers that arrived since the last visit, in the order you choose
("for you" by default: what your actions say, learned from the stored embeddings; newest;
family score), each with a one-line "why", triaged from the keyboard on the current card."""
from __future__ import annotations

import streamlit as st

from pipeline.core.families import CODES as FAMILY_CODES
from pipeline.stages.ranking import ORDERS, rank
from storage import reading
from storage.families import set_reader_labels
from ui import common

PAGE_SIZE = 25
ALL = "all"
NO_FAMILY, UNCLASSIFIED = "no family", "not classified yet"

config = common.settings()
since = common.visit_since(config)
st.title("Inbox")
found = reading.inbox_candidates(config.db_path, since)
if not found["ids"]:
    st.info("Nothing new. New papers arrive with `octet run` (it runs daily once scheduled).")
    st.stop()


def _scope_line() -> str:
    total, ranked = found["total"], len(found["ids"])
    if found["new"]:
        line = f"{total:,} new since your last visit ({since:%Y-%m-%d %H:%M} UTC)"
    elif since:
        line = (f"Nothing new since your last visit ({since:%Y-%m-%d %H:%M} UTC); the "
                f"{total:,} untriaged papers of the newest listing day")
    else:
        line = f"{total:,} papers of the newest listing day"
    return line + (f"; ordering the newest {ranked:,}" if total > ranked else "")


def _group(labels) -> list[str]:
    if labels is None:
        return [UNCLASSIFIED]
    return list(labels) or [NO_FAMILY]


st.caption(_scope_line())
common.undo_bar(config)
controls = st.columns([2, 5])
order = controls[0].segmented_control("Order", ORDERS, default=ORDERS[0], key="inbox_order",
                                      help="For you: family fit plus what your ratings, "
                                           "queue, reads, dismissals and thumbs say") or ORDERS[0]
ranked = rank(config.db_path, found["ids"], order)
counts: dict[str, int] = {}
for paper in ranked:
    for group in _group(paper.labels):
        counts[group] = counts.get(group, 0) + 1
groups = [ALL] + [c for c in FAMILY_CODES if c in counts] + \
    [g for g in (NO_FAMILY, UNCLASSIFIED) if g in counts]
family = controls[1].segmented_control(
    "Family", groups, default=ALL, key="inbox_family",
    format_func=lambda g: f"{g} ({len(ranked) if g == ALL else counts[g]})") or ALL
chosen = [p for p in ranked if family == ALL or family in _group(p.labels)]
passed = st.session_state.setdefault("inbox_passed", [])
waiting = [p for p in chosen if p.arxiv_id not in passed]
shown_count = st.session_state.setdefault("inbox_shown", PAGE_SIZE)
shown = waiting[:shown_count]
held_back = [p for p in chosen if p.arxiv_id in passed]
cards = reading.cards(config.db_path, [p.arxiv_id for p in shown + held_back])
details = common.card_details(config.db_path, list(cards),
                              {p.arxiv_id: p.labels for p in shown + held_back})


def _labels_editor(arxiv_id: str, labels) -> None:
    with st.popover("Labels", icon=":material/label:"):
        st.multiselect("Families", FAMILY_CODES, default=labels or [], key=f"labels_{arxiv_id}")
        st.button("Save labels", key=f"save_labels_{arxiv_id}", on_click=_save_labels,
                  args=(arxiv_id,))


def _save_labels(arxiv_id: str) -> None:
    picked = st.session_state.get(f"labels_{arxiv_id}") or []
    title = cards.get(arxiv_id, {}).get("title") or arxiv_id
    common.act(lambda: set_reader_labels(config.db_path, arxiv_id, picked),
               f"Labels of {common.short_title(title)} saved: {', '.join(picked) or 'no family'}.")


def _pass(arxiv_id: str) -> None:
    st.session_state["inbox_passed"].append(arxiv_id)


def _show_more() -> None:
    st.session_state["inbox_shown"] += PAGE_SIZE


def _card(paper, current: bool = False, prefix: str = "") -> None:
    card = cards.get(paper.arxiv_id)
    if card is None:  # triaged meanwhile (another tab, the CLI)
        return
    with st.container(border=True):
        if current:
            st.caption("**Next up** · keys: Q queue · W read this week · D dismiss · "
                       "Y more like this · N less like this · J next · U undo")
        common.paper_card(card, details[paper.arxiv_id], paper.why)
        spare = common.card_actions(config, card, details[paper.arxiv_id], prefix, current)
        with spare:
            row = st.columns(2)
            with row[0]:
                _labels_editor(paper.arxiv_id, details[paper.arxiv_id]["labels"])
            if current:
                row[1].button("Next", key="inbox_next", icon=":material/skip_next:",
                              shortcut=common.SHORTCUTS["next"], on_click=_pass,
                              args=(paper.arxiv_id,), help="Leave it for now")


if not waiting:
    st.success("All triaged in this view. Papers you passed are below.")
for index, paper in enumerate(shown):
    _card(paper, current=index == 0)
if len(waiting) > len(shown):
    st.button(f"Show {min(PAGE_SIZE, len(waiting) - len(shown))} more "
              f"({len(waiting) - len(shown):,} not shown)", key="inbox_more",
              on_click=_show_more)
if held_back:
    with st.expander(f"Passed this visit ({len(held_back)})"):
        for paper in held_back:
            _card(paper, prefix="passed_")
