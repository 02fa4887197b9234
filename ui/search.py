"""Semantic search and similar papers for the app, over an in-memory copy of the stored
embeddings (reading 75k vectors through a fresh connection on every keystroke costs ~1 s;
a matrix product costs ~10 ms). The copy is refreshed whenever the stored embeddings change.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from storage import reading

CANDIDATES = 500  # nearest papers fetched before filters are applied


@st.cache_resource(max_entries=2, show_spinner="Loading embeddings…")
def _matrix(db_path: str, stamp: tuple) -> tuple[list[str], dict[str, int], np.ndarray]:
    ids, matrix = reading.all_embeddings(db_path)
    return ids, {arxiv_id: row for row, arxiv_id in enumerate(ids)}, matrix


def _embeddings(db_path):
    return _matrix(str(db_path), reading.embeddings_stamp(db_path))


def _top(ids, scores: np.ndarray, count: int) -> list[tuple[str, float]]:
    count = min(count, len(ids))
    if count == 0:
        return []
    best = np.argpartition(-scores, count - 1)[:count]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(ids[i], float(scores[i])) for i in best]


def nearest(db_path, vector: np.ndarray, wanted: reading.BrowseFilter,
            limit: int) -> list[tuple[str, float]]:
    """The papers nearest ``vector`` among those passing the filter's non-text conditions."""
    ids, _, matrix = _embeddings(db_path)
    ranked = _top(ids, matrix @ np.asarray(vector, dtype=np.float32), CANDIDATES)
    passing = reading.passing_filter(db_path, [i for i, _ in ranked], replace(wanted, text=""))
    return [(i, score) for i, score in ranked if i in passing][:limit]


def similar(db_path, arxiv_id: str, limit: int = 10) -> list[tuple[str, float]]:
    """The papers most like one paper (itself left out)."""
    ids, rows, matrix = _embeddings(db_path)
    if arxiv_id not in rows:
        return []
    ranked = _top(ids, matrix @ matrix[rows[arxiv_id]], limit + 1)
    return [(i, score) for i, score in ranked if i != arxiv_id][:limit]
