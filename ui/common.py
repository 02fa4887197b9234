"""What every page shares: settings, safe text, the paper card, confirmations.

Paper, feed and model text is untrusted: ``md_escape`` makes it show as typed (no link,
image, HTML, Streamlit color, badge, icon or emoji can come from it) and it is never
rendered as HTML; a ``$...$`` span is kept for math only where KaTeX is sure to draw it.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import quote

import streamlit as st

from pipeline.core.paper import abs_url
from pipeline.core.settings import load_settings
from storage import reading

# A span Streamlit draws as math: one dollar each side (not part of `$$`, which would
# leave it open), no space just inside, no digit after (Streamlit's own test for math).
_MATH = re.compile(r"(?<![$\\])\$(?![\s$])[^$\n]{0,298}?[^\s$\\]\$(?![$\d])")
# Kept as math only without what would be markup should the span not be read as math,
# and without KaTeX's commands that link or fetch.
_UNSAFE_MATH = re.compile(r"\]\(|!\[|<|@|www\.|[a-z][a-z0-9+.-]*://|(?:javascript|data|vbscript|file"
                          r"|mailto|xmpp):|:[\w+-]+:|:[a-z][a-z0-9-]*\[|\\(?:href|url|includegraphics"
                          r"|html[a-z]*)(?![a-z])", re.IGNORECASE)
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&=:^$])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Streamlit turns these into emoji, icons, links and arrows in the text itself, after
# Markdown escapes are gone; an invisible word joiner after the first character stops it.
WORD_JOINER = "\u2060"
_TEXT_MARKUP = re.compile(r"(?<=:)(?=\S)|(?<=@)(?=\w)|(?<=\bwww)(?=\.)"
                          r"|(?<=(?<!\S)[<~>-])(?=(?:->|-|>|=)(?!\S))", re.IGNORECASE)
_WEB_URL = re.compile(r"https?://[^\s/]", re.IGNORECASE)
_URL_SAFE = "/:?#&=%.-_~+,;@"  # everything else (spaces, brackets, quotes, dollars) is %-encoded
FAMILY_COLORS = {"LLM": "blue", "LCM": "violet", "LAM": "orange", "MoE": "red",
                 "VLM": "green", "SLM": "yellow", "MLM": "primary", "SAM": "gray"}


def settings():
    """Settings from the data directory and ``OCTET_*`` env (``octet app`` sets them)."""
    return load_settings()


def md_escape(text) -> str:
    """Untrusted text as Markdown that shows it as typed, on one line: every Markdown
    character escaped, Streamlit's text markup broken, and only balanced ``$...$`` spans
    with no link, image, HTML or URL in them kept for math."""
    flat = " ".join(_CONTROL.sub("", "" if text is None else str(text)).split())
    pieces, done = [], 0
    for span in _MATH.finditer(flat):
        if not _UNSAFE_MATH.search(span[0]):
            pieces += [_escape_text(flat[done:span.start()]), span[0]]
            done = span.end()
    return "".join(pieces) + _escape_text(flat[done:])


def _escape_text(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", _TEXT_MARKUP.sub(WORD_JOINER, text))


def code(text) -> str:
    """Text as inline code (ids, file names): a backtick in it cannot end the span."""
    return "`" + " ".join(str(text or "").replace("`", "'").split()) + "`"


def link_target(url, fallback: str = "") -> str:
    """A link destination that stays inside ``[...](...)``: an http(s) URL (``fallback``
    otherwise) with spaces, brackets, quotes and backslashes %-encoded."""
    text = "" if url is None else str(url).strip()
    return quote(text if _WEB_URL.match(text) else fallback, safe=_URL_SAFE)


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
        flash(f"Not saved: {md_escape(error)}", "error")
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
    """Colored Markdown badges for family labels (codes are ours, escaped all the same)."""
    if labels is None:
        return ":gray-badge[not classified yet]"
    if not labels:
        return ":gray-badge[no family]"
    return " ".join(f":{FAMILY_COLORS.get(code, 'gray')}-badge[{md_escape(code)}]" for code in labels)


def paper_line(card: dict, labels=None) -> str:
    """One Markdown line: linked title, id, primary category, day, families."""
    day = card.get("listed_date") or str(card.get("published") or "")[:10]
    target = link_target(card.get("abs_url"), abs_url(card["arxiv_id"]))
    return (f"**[{md_escape(card['title'])}]({target})** · {code(card['arxiv_id'])} · "
            f"{md_escape(card.get('primary_category'))} · {md_escape(day)} {family_badges(labels)}")


SUMMARY_FIELDS = (("tldr", "TL;DR"), ("problem", "Problem."), ("method", "Method."),
                  ("results", "Results."), ("why_it_matters", "Why it matters."))
EXTRACTIVE_MARK = "_(extractive: copied from the abstract)_"


def summary_block(summary: dict | None, abstract: str) -> None:
    """The summary, each field the model did not write (copied from the abstract) marked
    extractive, or the abstract when there is no summary."""
    if not summary:
        st.caption("No summary yet — the abstract:")
        st.markdown(md_escape(abstract))
        return
    shown = [(field, label) for field, label in SUMMARY_FIELDS if summary.get(field)]
    copied = set(summary.get("fallback_fields") or ()) & {field for field, _ in shown}
    whole = bool(summary.get("extractive")) or bool(shown) and len(copied) == len(shown)
    st.caption(_summary_caption(summary, whole, len(copied), len(shown)))
    for field, label in shown:
        mark = f" {EXTRACTIVE_MARK}" if field in copied and not whole else ""
        st.markdown(f"**{label}**{mark} {md_escape(summary[field])}")
    with st.expander("Abstract"):
        st.markdown(md_escape(abstract))


def _summary_caption(summary: dict, whole: bool, copied: int, shown: int) -> str:
    if whole:
        caption = "Extractive summary (sentences taken from the abstract)"
    else:
        caption = f"Summary by {md_escape(summary.get('model') or summary.get('backend'))}"
        if copied:
            caption += f" · {copied} of {shown} fields copied from the abstract (marked extractive)"
    return caption + (" · the paper has a newer version" if summary.get("stale") else "")
