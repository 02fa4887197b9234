"""The text a paper is encoded from, and the encoder's identity.

Storage records ``ENCODER_NAME`` beside every vector and the stages encode
``paper_text``; both live here so neither floor has to load the encoder to agree on them.
"""
from __future__ import annotations

ENCODER_NAME = "all-MiniLM-L6-v2"
"""Stored beside every embedding, so a future encoder change is detectable."""

DIMENSIONS = 384
"""Length of one embedding vector."""

MAX_TOKENS = 64
"""Word pieces per input; longer texts are truncated (title + the opening of the abstract)."""


def paper_text(title: str, abstract: str) -> str:
    """The text Octet embeds for a paper: title, then abstract."""
    title, abstract = (title or "").strip(), (abstract or "").strip()
    return f"{title}. {abstract}" if abstract else title
