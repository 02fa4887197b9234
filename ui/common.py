"""What every page shares: settings, safe text, the paper card, confirmations.

Paper text is untrusted: it is escaped for Markdown (so ``<b>`` or ``[x](javascript:)`` in
a title shows as typed) and never rendered as HTML; ``$...$`` LaTeX is kept for math.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import streamlit as st

from pipeline.core.settings import load_settings
from storage import reading

_MATH = re.compile(r"(\$[^$\n]{1,300}\$)")
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&=:^])")
FAMILY_COLORS = {"LLM": "blue", "LCM": "violet", "LAM": "orange", "MoE": "red",
                 "VLM": "green", "SLM": "yellow", "MLM": "primary", "SAM": "gray"}


def settings():
    """Settings from the data directory and ``OCTET_*`` env (``octet app`` sets them)."""
    return load_settings()


def md_escape(text: str | None) -> str:
    """Escape Markdown in untrusted text, keeping ``$...$`` spans as math."""
    parts = _MATH.split(" ".join((text or "").split()))
    return "".join(part if index % 2 else _SPECIAL.sub(r"\\\1", part)
                   for index, part in enumerate(parts))


def is_demo(config) -> bool:
    return config.db_path.resolve() == config.demo_db_path.resolve()


def flash(message: str, kind: str = "success") -> None:
    """Remember a confirmation to show after the rerun the action causes."""
    st.session_state["flash"] = (kind, message)


def show_flash() -> None:
    """Show (once) the confirmation of the last action, as a toast and a banner."""
    kind, message = st.session_state.pop("flash", (None, None))
    if not message:
        return
    st.toast(message, icon=":material/check_circle:" if kind == "success" else ":material/error:")
    (st.success if kind == "success" else st.error)(message)


def act(action, message: str) -> None:
    """Run a write and confirm it (with the action's own words when it returns a str); a
    busy database (the job writing) is waited for by storage, and a failure after that is
    said plainly, never swallowed."""
    try:
        result = action()
    except Exception as error:  # shown to the reader: one sentence, nothing lost silently
        flash(f"Not saved: {error}", "error")
        return
    flash(result if isinstance(result, str) else message)


def queue_action(db_path, arxiv_id: str):
    """An action for ``act``: queue one paper and say what happened."""
    return lambda: f"{arxiv_id}: {reading.queue_add(db_path, [arxiv_id])[arxiv_id]}."


def visit_since(config) -> datetime | None:
    """When the reader's previous visit began (fixed for this session); records this one."""
    if "visit_since" not in st.session_state:
        previous = reading.get_reader_value(config.db_path, "last_visit")
        st.session_state["visit_since"] = datetime.fromisoformat(previous) if previous else None
        act(lambda: reading.set_reader_value(config.db_path, "last_visit",
                                             datetime.now(timezone.utc).isoformat()), "")
        st.session_state.pop("flash", None)
    return st.session_state["visit_since"]


def authors_line(authors, most: int = 6) -> str:
    authors = list(authors or [])
    more = len(authors) - most
    shown = ", ".join(authors[:most]) + (f" and {more} more" if more > 0 else "")
    return md_escape(shown)


def family_badges(labels) -> str:
    """Colored Markdown badges for family labels (codes are ours, not paper text)."""
    if labels is None:
        return ":gray-badge[not classified yet]"
    if not labels:
        return ":gray-badge[no family]"
    return " ".join(f":{FAMILY_COLORS.get(code, 'gray')}-badge[{code}]" for code in labels)


def paper_line(card: dict, labels=None) -> str:
    """One Markdown line: linked title, id, day, families."""
    day = card.get("listed_date") or (card.get("published") or "")[:10]
    return (f"**[{md_escape(card['title'])}]({card['abs_url']})** · `{card['arxiv_id']}` · "
            f"{card.get('primary_category', '')} · {day} {family_badges(labels)}")


def summary_block(summary: dict | None, abstract: str) -> None:
    """The summary (marked extractive where it is), or the abstract when there is none."""
    if not summary:
        st.caption("No summary yet — the abstract:")
        st.markdown(md_escape(abstract))
        return
    kind = ("Extractive summary (sentences taken from the abstract)" if summary.get("extractive")
            else f"Summary by {md_escape(summary.get('model') or summary.get('backend'))}")
    st.caption(kind + (" · the paper has a newer version" if summary.get("stale") else ""))
    st.markdown(f"**TL;DR** {md_escape(summary.get('tldr'))}")
    for field, label in (("problem", "Problem"), ("method", "Method"), ("results", "Results"),
                         ("why_it_matters", "Why it matters")):
        if summary.get(field):
            st.markdown(f"**{label}.** {md_escape(summary[field])}")
    with st.expander("Abstract"):
        st.markdown(md_escape(abstract))
