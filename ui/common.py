"""What every page shares: settings, safe text, the paper card and its actions,
confirmations, the encoder warmed in the background.

Paper, feed and model text is untrusted: ``md_escape`` makes it show as typed (no link,
image, HTML, Streamlit color, badge, icon or emoji can come from it) and it is never
rendered as HTML; a ``$...$`` span is kept for math only where KaTeX is sure to draw it.
"""
from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timezone
from urllib.parse import quote

import streamlit as st

from pipeline.core.families import FAMILY_COLOURS
from pipeline.core.settings import load_settings
from pipeline.stages.reading import choose_pick
from storage import reading
from storage.families import families_for
from storage.summaries import summary_for

log = logging.getLogger(__name__)

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


def settings():
    """Settings from the data directory and ``OCTET_*`` env (``octet app`` sets them),
    pointed at the database the commands use too: the reader's own, or the demo while
    their own holds no paper (chosen again on every page, so a run's papers switch it)."""
    from pipeline.stages.library import library_settings
    return library_settings(load_settings())


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
    """Whether the app shows the demo database (``settings()`` chose it, or ``--db`` did)."""
    from pipeline.stages.library import is_demo_database
    return is_demo_database(config)


def flash(message: str, kind: str = "success") -> None:
    """Remember a confirmation to show after the rerun the action causes."""
    st.session_state["flash"] = (kind, message)


def show_flash() -> None:
    """Show (once) the outcome of the last action: a toast when it worked; a banner that
    stays when it did not (the reader must see that nothing was saved)."""
    kind, message = st.session_state.pop("flash", (None, None))
    if not message:
        return
    if kind == "success":
        st.toast(message, icon=":material/check_circle:")
    else:
        st.error(message)


def act(action, message: str) -> None:
    """Run a write and confirm it (with the action's own words when it returns a str); a
    busy database (the job writing) is waited for by storage, and a failure after that is
    said plainly, never swallowed."""
    st.session_state.pop("last_dismissal", None)  # undo is for the last action only
    try:
        result = action()
    except Exception as error:  # shown to the reader: one sentence, nothing lost silently
        flash(f"Not saved: {md_escape(error)}", "error")
        return
    flash(result if isinstance(result, str) else message)


def queue_action(db_path, arxiv_id: str, title: str | None = None):
    """An action for ``act``: queue one paper and say what happened (naming its title
    when given, else its id)."""
    name = short_title(title) if title else arxiv_id
    return lambda: f"{name}: {reading.queue_add(db_path, [arxiv_id])[arxiv_id]}."


def short_title(title, most: int = 80) -> str:
    """A title for a confirmation or a button's caption: one line, cut at ``most``
    characters, in quotes, escaped."""
    flat = " ".join(str(title or "").split())
    return "“" + md_escape(flat if len(flat) <= most else flat[:most - 1] + "…") + "”"


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
    """The first ``most`` authors, then how many more, escaped."""
    authors = list(authors or [])
    more = len(authors) - most
    shown = ", ".join(authors[:most]) + (f" and {more} more" if more > 0 else "")
    return md_escape(shown)


def paper_href(arxiv_id: str) -> str:
    """The address of a paper's page inside the app (``?paper=<id>``, relative, so it
    works whatever page or host the app is on)."""
    return "?paper=" + quote(str(arxiv_id))


def _text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#RRGGBB``): WCAG
    relative luminance, with black from 0.179 (the point of equal contrast)."""
    channels = [int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#ffffff"


def family_badge(family_code: str) -> str:
    """One family as a pill in its colour (``FAMILY_COLOURS``, the charts' colours too)."""
    colour = FAMILY_COLOURS.get(family_code)
    if colour is None:
        return f":gray-badge[{md_escape(family_code)}]"
    return (f':color[{md_escape(family_code)}]{{foreground="{_text_colour(colour)}" '
            f'background="{colour}"}}')


def family_badges(labels) -> str:
    """Family labels as pills in their colours (codes are ours, escaped all the same);
    ``None`` says *not classified yet*, ``[]`` *no family*."""
    if labels is None:
        return ":gray-badge[not classified yet]"
    if not labels:
        return ":gray-badge[no family]"
    return " ".join(family_badge(label) for label in labels)


def paper_line(card: dict, labels=None) -> str:
    """One Markdown line: the title (a link to the paper's page in the app), id, primary
    category, day, families (pass ``labels``: None shows *not classified yet*)."""
    day = card.get("listed_date") or str(card.get("published") or "")[:10]
    return (f"**[{md_escape(card['title'])}]({paper_href(card['arxiv_id'])})** · "
            f"{code(card['arxiv_id'])} · {md_escape(card.get('primary_category'))} · "
            f"{md_escape(day)} {family_badges(labels)}")


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


# ---- paper cards and their actions ----------------------------------------------------

SHORTCUTS = {"queue": "Q", "week": "W", "dismiss": "D", "like": "Y", "dislike": "N",
             "next": "J", "undo": "U"}
"""Keyboard shortcuts of the Inbox's current card (Streamlit reserves C and R)."""
TLDR_MOST = 400
"""The most characters of a TL;DR a card shows (the paper page shows it all)."""


def card_details(db_path, arxiv_ids: list[str], labels: dict | None = None) -> dict[str, dict]:
    """What cards show beside a paper's own fields, for many papers in three queries (two
    when the caller knows the ``labels`` already): ``labels`` (None: not classified yet),
    ``tldr`` (None: no summary yet), ``thumb`` (1, -1 or None)."""
    if labels is None:
        families = families_for(db_path, arxiv_ids)
        labels = {i: families[i]["labels"] if i in families else None for i in arxiv_ids}
    summaries = summary_for(db_path, arxiv_ids)
    thumbs = reading.thumbs_of(db_path, arxiv_ids)
    return {arxiv_id: {"labels": labels.get(arxiv_id),
                       "tldr": (summaries.get(arxiv_id) or {}).get("tldr") or None,
                       "thumb": thumbs.get(arxiv_id)} for arxiv_id in arxiv_ids}


def paper_card(card: dict, details: dict, why: str | None = None) -> None:
    """A paper as a card's body: the line (the title opens its page in the app), authors,
    the TL;DR line, the "why" line when given, and the abstract behind an expander."""
    st.markdown(paper_line(card, details.get("labels")))
    st.caption(authors_line(card.get("authors"), 6))
    tldr = " ".join(str(details.get("tldr") or "").split())
    if tldr:
        cut = tldr if len(tldr) <= TLDR_MOST else tldr[:TLDR_MOST - 1] + "…"
        st.markdown(f"**TL;DR** {md_escape(cut)}")
    else:
        st.caption("No summary yet: the abstract is below.")
    if why:
        st.caption(f"Why here: {md_escape(why)}")
    with st.expander("Abstract"):
        st.markdown(md_escape(card.get("abstract")) or "_No abstract stored._")


def card_actions(config, card: dict, details: dict, prefix: str = "",
                 shortcuts: bool = False, dismiss: bool = True):
    """The buttons of a card: Queue, Read this week, Dismiss (with undo), thumbs up and
    down. ``shortcuts`` gives them their keys (``SHORTCUTS``): only the Inbox's current card
    has them, so a key always means one paper. Widget keys: ``<prefix><action>_<id>``.
    Returns the row's spare column, for a page's own buttons."""
    arxiv_id, title = card["arxiv_id"], card.get("title")
    state = card.get("state") or "inbox"
    thumb = details.get("thumb")
    keys = SHORTCUTS if shortcuts else {}
    row = st.columns([1.4, 2, 1.4, 0.7, 0.7, 2.8], vertical_alignment="center")
    row[0].button("Queue", key=f"{prefix}queue_{arxiv_id}", icon=":material/playlist_add:",
                  shortcut=keys.get("queue"), disabled=state in ("queued", "pick", "read"),
                  on_click=act, args=(queue_action(config.db_path, arxiv_id, title), ""))
    row[1].button("Read this week", key=f"{prefix}week_{arxiv_id}",
                  icon=":material/auto_stories:", shortcut=keys.get("week"),
                  disabled=state == "read", help="Make it this week's paper (as `octet pick ID`)",
                  on_click=act, args=(week_action(config, arxiv_id, title), ""))
    if dismiss:
        row[2].button("Dismiss", key=f"{prefix}dismiss_{arxiv_id}", icon=":material/close:",
                      shortcut=keys.get("dismiss"), disabled=state in ("pick", "read"),
                      on_click=dismiss_with_undo, args=(config, card))
    for column, value, name, icon in ((row[3], 1, "like", ":material/thumb_up:"),
                                      (row[4], -1, "dislike", ":material/thumb_down:")):
        column.button("", key=f"{prefix}{name}_{arxiv_id}", icon=icon, shortcut=keys.get(name),
                      type="primary" if thumb == value else "secondary",
                      help=("More like this" if value > 0 else "Less like this")
                      + " (again to take it back)",
                      on_click=act, args=(thumb_action(config, arxiv_id, title, value, thumb), ""))
    return row[5]


def week_action(config, arxiv_id: str, title: str | None):
    """An action for ``act``: make the paper this week's (``choose_pick``: the same rules
    as ``octet pick ID``)."""
    def action() -> str:
        choose_pick(config, arxiv_id)
        return f"{short_title(title or arxiv_id)} is this week's paper."
    return action


def thumb_action(config, arxiv_id: str, title: str | None, value: int, current: int | None):
    """An action for ``act``: thumb up (1) or down (-1); the same thumb again takes it back."""
    def action() -> str:
        new = None if current == value else value
        reading.set_thumb(config.db_path, arxiv_id, new)
        name = short_title(title or arxiv_id)
        if new is None:
            return f"Thumb taken back for {name}."
        return (f"More like {name} in your Inbox." if new > 0
                else f"Less like {name} in your Inbox.")
    return action


def dismiss_with_undo(config, card: dict) -> None:
    """Dismiss a paper, keeping what it was so that ``undo_bar`` can take it back."""
    arxiv_id = card["arxiv_id"]
    previous = reading.reading_of(config.db_path, arxiv_id)
    act(lambda: reading.dismiss(config.db_path, [arxiv_id]),
        f"Dismissed {short_title(card.get('title') or arxiv_id)}.")
    if st.session_state.get("flash", ("", ""))[0] == "success":
        st.session_state["last_dismissal"] = {"arxiv_id": arxiv_id, "title": card.get("title"),
                                              "previous": previous}


def undo_bar(config) -> None:
    """After a dismissal, until the next action: an *Undo dismiss* button (key U); the
    toast already named the paper, so nothing else is said."""
    undo = st.session_state.get("last_dismissal")
    if not undo:
        return
    st.button("Undo dismiss", key="undo_dismiss", icon=":material/undo:",
              shortcut=SHORTCUTS["undo"], on_click=_undo_dismiss, args=(config,),
              help=f"Bring back {short_title(undo['title'] or undo['arxiv_id'])}")


def _undo_dismiss(config) -> None:
    undo = st.session_state.pop("last_dismissal", None)
    if undo:
        act(lambda: reading.undo_dismiss(config.db_path, undo["arxiv_id"], undo["previous"]),
            f"{short_title(undo['title'] or undo['arxiv_id'])} is back.")


def rating_input(key: str, rating: int | None = None) -> int | None:
    """The one rating widget (1 to 5 stars) wherever a rating is given or changed;
    returns the rating chosen, or None."""
    index = st.feedback("stars", key=key, default=None if rating is None else rating - 1)
    return None if index is None else index + 1


# ---- the encoder, warmed while the reader looks at the first page -------------------------

_warming: dict[str, threading.Thread] = {}
_warming_lock = threading.Lock()


def warm_encoder(db_path) -> threading.Thread | None:
    """Load the search encoder in a background thread, once per app process, when the
    database has embeddings (semantic search is on): the first search then answers at
    once instead of waiting seconds for the model. Returns the thread (None: not needed)."""
    with _warming_lock:
        if "encoder" in _warming:
            return _warming["encoder"]
        # Checked here, in the page's thread: DuckDB connections stay out of the thread.
        if not reading.has_embeddings(db_path):
            return None
        thread = threading.Thread(target=_load_encoder, name="octet-encoder-warm-up",
                                  daemon=True)
        _warming["encoder"] = thread
        thread.start()
        return thread


def warm_search(db_path) -> None:
    """Load the search index (words, authors, embeddings) once the page is drawn, in the
    page's own thread (a second thread's DuckDB connection would clash with the page's
    writes), so the first search does not wait seconds for it; later calls only check that
    the database has not changed."""
    from storage.search_index import current

    try:
        current(db_path, words=True, vectors=True)
    except Exception:  # the search that needs it will load it again and say what failed
        log.exception("warming the search index failed")


def wait_for_encoder() -> None:
    """Wait until a warm-up started by ``warm_encoder`` is done (at once if none runs), so a
    search never loads a second copy of the model."""
    thread = _warming.get("encoder")
    if thread is not None:
        thread.join()


def _load_encoder() -> None:
    from pipeline.stages.search import warm_encoder as load

    try:
        load()
    except Exception:  # the search that needs it will load it again and say what failed
        log.exception("warming the search encoder failed")

