"""Browse: filter and search every stored paper (keyword and semantic), and find similar ones."""
from __future__ import annotations

import streamlit as st

from pipeline.core.families import CODES as FAMILY_CODES
from storage import reading
from storage.search import BrowseFilter, has_vectors
from ui import common, search

PAGE_SIZE = 25

config = common.settings()
st.title("Browse")


@st.cache_data(ttl=300, show_spinner=False)
def _categories(db_path: str) -> list[str]:
    return [name for name, _ in reading.category_counts(db_path)]


with st.container(border=True):
    top = st.columns([3, 1, 1])
    text = top[0].text_input("Search titles and abstracts", key="browse_text",
                             placeholder="e.g. mixture of experts routing")
    semantic_on = has_vectors(config.db_path)
    mode = top[1].selectbox("Search", ["keyword + semantic", "keyword"] if semantic_on
                            else ["keyword"], key="browse_mode")
    family = top[2].selectbox("Family", ["any", *FAMILY_CODES], key="browse_family")
    row = st.columns([1, 2, 2, 1])
    category = row[0].selectbox("Category", ["any", *_categories(str(config.db_path))],
                                key="browse_category")
    dates = row[1].date_input("Listed between", value=[], key="browse_dates")
    states = row[2].multiselect("State", reading.STATES, key="browse_states")
    min_score = row[3].slider("Min family score", 0.0, 1.0, 0.0, 0.05, key="browse_score",
                              disabled=family == "any",
                              help="Lowest model score for the family; "
                                   "your own labels always count")

wanted = BrowseFilter(
    text=text, category="" if category == "any" else category,
    date_from=dates[0] if len(dates) > 0 else None, date_to=dates[1] if len(dates) > 1 else None,
    states=tuple(states), family="" if family == "any" else family, min_score=min_score,
    limit=PAGE_SIZE)
# Keyword hits first (they contain every word), then the semantic neighbours.
cards, total = search.results(config.db_path, wanted, mode.startswith("keyword +"))
st.caption(f"{total:,} keyword/filter matches" + (f" · showing {len(cards)}" if cards else ""))


def _show_similar(arxiv_id: str) -> None:
    st.session_state["similar_to"] = arxiv_id


for card in cards:
    with st.container(border=True):
        st.markdown(common.paper_line(card, card["labels"]) + f" · _{card['state']}_")
        line = st.columns([1, 1, 6])
        line[0].button("Queue", key=f"bq_{card['arxiv_id']}", icon=":material/playlist_add:",
                       on_click=common.act,
                       args=(common.queue_action(config.db_path, card["arxiv_id"]), ""))
        line[1].button("Similar", key=f"bs_{card['arxiv_id']}", icon=":material/hub:",
                       on_click=_show_similar, args=(card["arxiv_id"],), disabled=not semantic_on)

similar_to = st.session_state.get("similar_to")
if similar_to:
    with st.sidebar:
        st.subheader(f"Similar to {common.md_escape(similar_to)}")
        for other in search.similar(config.db_path, similar_to, 10):
            st.markdown(f"{other['score']:.2f} · " + common.paper_line(other, other["labels"]))
