"""Search for the pages (Browse, the paper page): ``pipeline.stages.search`` with what only
the app process needs — the query encoder loaded once, on one thread, behind a spinner."""
from __future__ import annotations

import streamlit as st

from pipeline.stages import search
from storage.search import BrowseFilter, SearchPage, find_similar, search_words
from ui import common


@st.cache_resource(show_spinner="Loading the search encoder…")
def _encoder_ready() -> bool:
    common.wait_for_encoder()  # a warm-up under way: wait for it, never load a second copy
    search.warm_encoder()
    return True


def results(db_path, wanted: BrowseFilter, semantic: bool, related_limit: int = 10) -> SearchPage:
    """One page of what Browse lists: ``wanted.limit`` papers matching every word and
    filter from ``wanted.offset`` and, with ``semantic``, up to ``related_limit`` papers
    related by meaning above the cut-off. The first search loads the index (seconds at 75k
    papers), hence the spinner (shown only after half a second)."""
    if semantic and search_words(wanted.text):
        _encoder_ready()
    with st.spinner("Searching…"):
        return search.search_text(db_path, wanted, semantic, related_limit)


def similar(db_path, arxiv_id: str, limit: int = 10) -> list[dict]:
    """The papers nearest one paper, as cards with their ``score``."""
    with st.spinner("Loading embeddings…"):
        return find_similar(db_path, arxiv_id, limit)
