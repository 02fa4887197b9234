"""The Browse page's search: ``pipeline.stages.search`` with what only the app process
needs — the query encoder loaded once, on one thread, behind a spinner."""
from __future__ import annotations

import streamlit as st

from pipeline.stages import search
from storage.search import BrowseFilter, find_keyword, find_similar, search_words


@st.cache_resource(show_spinner="Loading the search encoder…")
def _encoder_ready() -> bool:
    search.warm_encoder()
    return True


def results(db_path, wanted: BrowseFilter, semantic: bool) -> tuple[list[dict], int]:
    """The cards Browse lists and the keyword/filter total: keyword hits, then (with
    ``semantic``) the papers nearest the text. The first search loads the index (seconds
    at 75k papers), hence the spinner (shown only after half a second)."""
    if semantic and search_words(wanted.text):
        _encoder_ready()
        with st.spinner("Searching…"):
            return search.find_hybrid_text(db_path, wanted)
    with st.spinner("Searching…"):
        return find_keyword(db_path, wanted)


def similar(db_path, arxiv_id: str, limit: int = 10) -> list[dict]:
    """The papers nearest one paper, as cards with their ``score``."""
    with st.spinner("Loading embeddings…"):
        return find_similar(db_path, arxiv_id, limit)
