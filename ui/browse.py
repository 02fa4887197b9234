"""Browse: every stored paper, filtered and searched, page by page — the twin of
``octet search``.

The search words must all start words of the title, the abstract or an author's name; those
papers are listed newest first, a page at a time. With embeddings, the papers related by
meaning (close to the words, without all of them) follow under their own heading, best
first, each with its similarity, above a relevance cut-off. ``?author=NAME`` (the paper
page's author links), ``?q=WORDS`` and ``?family=CODE`` fill the filters.
"""
from __future__ import annotations

import math

import streamlit as st

from pipeline.core.families import CODES as FAMILY_CODES
from storage import reading
from storage.search import BrowseFilter, SearchPage, has_vectors, search_words
from ui import common, search

# (Comments, not docstrings: Streamlit's magic would show a bare string on the page.)
PAGE_SIZE = 25  # papers per page of the matches
RELATED_STEP = 10  # related papers shown at first, and added by each "Show more"
# URL parameters that fill a filter, and the widget each fills.
URL_FILTERS = {"author": "browse_author", "q": "browse_text", "family": "browse_family"}

config = common.settings()
st.title("Browse")


@st.cache_data(ttl=300, show_spinner=False)
def _categories(db_path: str) -> list[str]:
    return [name for name, _ in reading.category_counts(db_path)]


def _apply_url() -> None:
    """Fill the filters from the URL once per new value (the reader may change them after)."""
    for name, key in URL_FILTERS.items():
        value = st.query_params.get(name)
        if value is None or st.session_state.get(f"browse_url_{name}") == value:
            continue
        st.session_state[f"browse_url_{name}"] = value
        value = " ".join(value.split())[:200]
        if name != "family":
            st.session_state[key] = value
        elif value in FAMILY_CODES:
            st.session_state[key] = value


_apply_url()
semantic_on = has_vectors(config.db_path)
with st.container(border=True):
    top = st.columns([3, 1, 1])
    text = top[0].text_input("Search titles, abstracts and authors", key="browse_text",
                             placeholder="e.g. mixture of experts routing")
    mode = top[1].selectbox("Search", ["keyword + semantic", "keyword"] if semantic_on
                            else ["keyword"], key="browse_mode")
    family = top[2].selectbox("Family", ["any", *FAMILY_CODES], key="browse_family")
    row = st.columns([2, 1, 2, 2, 1])
    author = row[0].text_input("Author", key="browse_author", placeholder="e.g. Yann LeCun",
                               help="One author's name must hold every word (the last may be cut short)")
    category = row[1].selectbox("Category", ["any", *_categories(str(config.db_path))],
                                key="browse_category")
    dates = row[2].date_input("Listed between", value=[], key="browse_dates")
    states = row[3].multiselect("State", reading.STATES, key="browse_states")
    min_score = row[4].slider("Min family score", 0.0, 1.0, 0.0, 0.05, key="browse_score",
                              disabled=family == "any",
                              help="Lowest model score for the family; "
                                   "your own labels always count")

searching = bool(search_words(text))
semantic = searching and mode.startswith("keyword +")
signature = (text, mode, family, author, category, tuple(dates), tuple(states), min_score)
# Each search has its own page widget, so a new search starts on its first page.
PAGE_KEY = f"browse_page_{abs(hash(signature))}"
if st.session_state.get("browse_signature") != signature:
    st.session_state["browse_signature"] = signature
    st.session_state["browse_related"] = RELATED_STEP


def _wanted(page: int) -> BrowseFilter:
    return BrowseFilter(
        text=text, category="" if category == "any" else category, author=author,
        date_from=dates[0] if len(dates) > 0 else None,
        date_to=dates[1] if len(dates) > 1 else None, states=tuple(states),
        family="" if family == "any" else family, min_score=min_score,
        limit=PAGE_SIZE, offset=page * PAGE_SIZE)


def _search() -> tuple[SearchPage, int]:
    """The page asked for (0-based), or the last one when the results shrank under it
    (an action took papers out of the filter)."""
    page = int(st.session_state.get(PAGE_KEY) or 1) - 1
    found = search.results(config.db_path, _wanted(page), semantic,
                           st.session_state["browse_related"])
    last = max(math.ceil(found.match_total / PAGE_SIZE) - 1, 0)
    if page > last:
        page = last
        st.session_state.pop(PAGE_KEY, None)  # the widget starts again on that page
        found = search.results(config.db_path, _wanted(page), semantic,
                               st.session_state["browse_related"])
    return found, page


def _papers(count: int) -> str:
    return f"**{count:,}** paper" + ("" if count == 1 else "s")


def _count_line(found: SearchPage) -> str:
    """One count for the whole result: the matches, then the related papers."""
    if not searching:
        filtered = author or family != "any" or category != "any" or dates or states
        verb = " matches" if found.match_total == 1 else " match"
        return _papers(found.match_total) + (f"{verb} the filters" if filtered
                                             else " stored, newest first")
    line = f"{_papers(found.match_total)} with every word (in the title, abstract or authors)"
    if semantic:
        line += (f" · **{found.related_total:,}** more related by meaning "
                 f"(similarity ≥ {found.min_score:.2f})")
    return line


def _more_related() -> None:
    st.session_state["browse_related"] += RELATED_STEP


def _show_similar(arxiv_id: str) -> None:
    st.session_state["similar_to"] = arxiv_id


def _cards(cards: list[dict]) -> None:
    """Each paper as the card every page shows (the linked title line, authors, TL;DR,
    abstract to expand, the actions), with its similarity when related by meaning, and
    *Similar* to list its neighbours in the sidebar."""
    ids = [card["arxiv_id"] for card in cards]
    full, details = reading.cards(config.db_path, ids), common.card_details(config.db_path, ids)
    for found in cards:
        card = {**found, **full.get(found["arxiv_id"], {})}
        with st.container(border=True):
            head = st.columns([6, 1], vertical_alignment="center")
            if "score" in found:
                head[0].caption(f"Similarity {found['score']:.2f}")
            head[1].button("Similar", key=f"bs_{card['arxiv_id']}", icon=":material/hub:",
                           type="tertiary", on_click=_show_similar, args=(card["arxiv_id"],),
                           disabled=not semantic_on, help="List the papers nearest this one "
                                                          "in the sidebar")
            common.paper_card(card, details[card["arxiv_id"]])
            common.card_actions(config, card, details[card["arxiv_id"]], prefix="b")


def _matches(found: SearchPage, page: int) -> None:
    if not found.matches:
        return
    first = page * PAGE_SIZE + 1
    last = first + len(found.matches) - 1
    pages = math.ceil(found.match_total / PAGE_SIZE)
    heading = "Every word, newest first" if searching else "Newest first"
    st.markdown(f"##### {heading}")
    st.caption(f"Papers {first:,}–{last:,} of {found.match_total:,} · page {page + 1} of {pages:,}")
    _cards(found.matches)
    if pages > 1:
        st.pagination(pages, default=page + 1, key=PAGE_KEY)


def _related(found: SearchPage) -> None:
    if not semantic:
        return
    st.divider()
    st.markdown(f"##### Related by meaning ({found.related_total:,})")
    st.caption("Papers without every word whose meaning is close to the search, best first; "
               "the number before each is its similarity (cosine, 0 to 1), and only papers "
               f"at {found.min_score:.2f} or more are listed.")
    _cards(found.related)
    if found.related_total > len(found.related):
        st.button(f"Show {min(RELATED_STEP, found.related_total - len(found.related))} more "
                  "related", key="browse_more_related", icon=":material/expand_more:",
                  on_click=_more_related)


found, page = _search()
st.markdown(_count_line(found))
common.undo_bar(config)
if not found.matches and not found.related:
    st.info("Nothing matches. Try fewer or shorter words, another family, or clear a filter.")
_matches(found, page)
_related(found)

similar_to = st.session_state.get("similar_to")
if similar_to:
    with st.sidebar:
        st.subheader(f"Similar to {common.md_escape(similar_to)}")
        for other in search.similar(config.db_path, similar_to, 10):
            st.markdown(f"{other['score']:.2f} · " + common.paper_line(other, other["labels"]))
