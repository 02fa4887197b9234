"""Search as the reader asks it: text in, papers out. Encodes the query with the packaged
encoder and asks the in-process index in ``storage.search`` (which never loads a model)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from storage.search import (RELATED_MIN_SCORE, BrowseFilter, SearchPage, find_hybrid,
                            find_nearest, has_vectors, search_page, search_words)


@lru_cache(maxsize=64)
def encode_query(text: str) -> np.ndarray:
    """The query's embedding. Cached: Streamlit reruns the page, with the same text, on
    every click."""
    from pipeline.stages.encoder import embed_texts

    vector = embed_texts([text])[0]
    vector.setflags(write=False)
    return vector


def warm_encoder() -> None:
    """Load the query encoder and give torch one thread, for a process that encodes short
    queries (the app): one query is ~20 ms on one thread, and 3-5x slower and erratic with
    idle OpenMP workers contending with DuckDB and other processes for two cores. The
    thread count is set after loading, since loading sets it to every core."""
    import torch

    encode_query("warm up")
    torch.set_num_threads(1)


def find_semantic(db_path: Path, query: str, wanted: BrowseFilter | None = None,
                  limit: int | None = None) -> list[dict]:
    """The papers nearest the meaning of ``query`` among those passing the filter's other
    conditions, best first; [] for an empty query or without embeddings."""
    if not query.strip():
        return []
    return find_nearest(db_path, encode_query(query), wanted or BrowseFilter(), limit)


def find_hybrid_text(db_path: Path, wanted: BrowseFilter) -> tuple[list[dict], int]:
    """What Browse shows for ``wanted.text``: keyword hits, then the nearest papers not
    already listed (see ``storage.search.find_hybrid``); and the keyword total."""
    vector = encode_query(wanted.text) if search_words(wanted.text) else None
    return find_hybrid(db_path, wanted, vector)


def search_text(db_path: Path, wanted: BrowseFilter, semantic: bool = True,
                related_limit: int = 10, min_score: float = RELATED_MIN_SCORE) -> SearchPage:
    """What Browse and ``octet search`` show: one page of the papers matching every word
    and filter, and (with ``semantic``, search words and stored embeddings) the papers
    related by meaning above the cut-off. The encoder loads only when it is needed."""
    vector = None
    if semantic and search_words(wanted.text) and has_vectors(db_path):
        vector = encode_query(wanted.text)
    return search_page(db_path, wanted, vector, related_limit, min_score)
