"""The page of one paper, at the app's URL with ``?paper=<arXiv id>`` (every title links
there): what Octet knows about it and every action on it.

Shown: title, authors (each a link to their other stored papers in Browse), families with
the scores and who labeled them, the summary with where it came from, the abstract, links
to arXiv (abstract, PDF, HTML), the versions seen and what changed between them, similar
papers, the reader's notes and rating. Actions: queue, dismiss (and take it back), make it
this week's paper (the rules of ``octet pick ID``), labels, notes and rating — each through
the library function the CLI and the other pages use.

A module, not a page script: ``app.py`` calls ``show`` whenever the URL names a paper.
Paper text is untrusted: every field goes through ``common.md_escape``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from urllib.parse import quote

import streamlit as st

from pipeline.core import weeks
from pipeline.core.families import CODES as FAMILY_CODES
from pipeline.core.paper import InvalidArxivId, abs_url, normalize_id, pdf_url
from storage import reading
from storage.families import clear_reader_labels, families_for, set_reader_labels
from storage.papers import paper_with_versions
from storage.summaries import summary_for
from ui import common, search

SIMILAR_COUNT = 6
"""How many similar papers the page lists."""
MOST_AUTHORS = 40
"""Authors linked one by one; a longer list ends with "and N more"."""
MOST_CHANGES = 12
"""Changed passages shown per pair of versions (the rest are counted)."""
CONTEXT_WORDS = 4
"""Unchanged words shown each side of a changed passage."""
MOST_CHANGED_WORDS = 60
"""Words shown of one removed or added passage (the rest are elided)."""
LOWEST_SCORE_SHOWN = 0.10
"""Family scores below this are left out of the scores line."""
BROWSE_PATH = "browse"
"""The Browse page's URL path (``app.py``), which reads ``?author=``."""
STATE_WORDS = {"inbox": "In your inbox", "queued": "In your queue", "pick": "This week's pick",
               "read": "Read", "skipped": "Skipped (was a weekly pick)",
               "dismissed": "Dismissed: not interested"}


@dataclass(frozen=True)
class Change:
    """One changed passage between two versions of a text, as words."""

    before: str
    """Unchanged words just before the passage (empty at the start)."""

    removed: str
    """Words of the older version no longer there (may be empty)."""

    added: str
    """Words of the newer version not there before (may be empty)."""

    after: str
    """Unchanged words just after the passage (empty at the end)."""

    cut_before: bool = False
    """Whether the text goes on before ``before`` (the passage is shown with "…")."""

    cut_after: bool = False
    """Whether the text goes on after ``after``."""


def text_changes(older: str, newer: str) -> list[Change]:
    """The passages that differ between two texts, word by word, in order, with a few
    unchanged words of context each side (none when the texts have the same words)."""
    old_words, new_words = (older or "").split(), (newer or "").split()
    matcher = difflib.SequenceMatcher(None, old_words, new_words, autojunk=False)
    return [Change(" ".join(old_words[max(0, i1 - CONTEXT_WORDS):i1]),
                   " ".join(old_words[i1:i2]), " ".join(new_words[j1:j2]),
                   " ".join(old_words[i2:i2 + CONTEXT_WORDS]),
                   i1 > CONTEXT_WORDS, i2 + CONTEXT_WORDS < len(old_words))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def author_href(name: str) -> str:
    """The Browse page filtered to one author's papers."""
    return f"{BROWSE_PATH}?author={quote(' '.join(str(name).split()), safe='')}"


def html_url(arxiv_id: str, version: int | None) -> str:
    """arXiv's HTML rendering of the paper (of its stored version)."""
    return f"https://arxiv.org/html/{arxiv_id}" + (f"v{version}" if version else "")


def requested_id(raw) -> str | None:
    """The arXiv id the URL names (any form ``octet`` accepts), or None when it names none."""
    try:
        return normalize_id(str(raw or "").strip())
    except InvalidArxivId:
        return None


# ---- the page ---------------------------------------------------------------------

def show(config, raw_id) -> None:
    """The page of the paper ``raw_id`` names, or one sentence on why there is none."""
    arxiv_id = requested_id(raw_id)
    paper = paper_with_versions(config.db_path, arxiv_id) if arxiv_id else None
    if paper is None:
        _not_found(raw_id, arxiv_id)
        return
    st.set_page_config(page_title=f"{' '.join(paper['title'].split())[:60]} · Octet")
    held = reading.reading_of(config.db_path, arxiv_id) or {"state": "inbox"}
    families = families_for(config.db_path, [arxiv_id]).get(arxiv_id)
    # The similar papers come from the in-process index (no connection once it is loaded);
    # their summaries and thumbs are read with the paper's, in one query each.
    similar = search.similar(config.db_path, arxiv_id, SIMILAR_COUNT)
    ids = [arxiv_id, *(other["arxiv_id"] for other in similar)]
    summaries, thumbs = summary_for(config.db_path, ids), reading.thumbs_of(config.db_path, ids)
    _heading(paper, families)
    _actions(config, paper, held, {"labels": families["labels"] if families else None,
                                   "tldr": (summaries.get(arxiv_id) or {}).get("tldr"),
                                   "thumb": thumbs.get(arxiv_id)})
    main, side = st.columns([3, 2], gap="large")
    with main:
        _links(paper)
        _summary(summaries.get(arxiv_id), paper)
        st.markdown("#### Abstract")
        st.markdown(common.md_escape(paper["abstract"]) or "_No abstract stored._")
        _versions(paper["versions"])
    with side:
        _families(config, arxiv_id, families)
        _notes(config, paper, held)
    _similar(config, similar, summaries, thumbs)


def _not_found(raw_id, arxiv_id: str | None) -> None:
    st.title("Paper not found", anchor=False)
    if arxiv_id is None:
        st.error(f"{common.code(str(raw_id)[:80])} is not an arXiv id: use the form "
                 "`?paper=2503.18541` (or `2503.18541v2`, `hep-th/9901001`).")
    else:
        st.error(f"{common.code(arxiv_id)} is not stored; fetch it with "
                 f"{common.code(f'octet fetch --ids {arxiv_id}')} (or check the id).")
    st.page_link("ui/browse.py", label="Search the stored papers", icon=":material/search:")


def _heading(paper: dict, families: dict | None) -> None:
    st.title(common.md_escape(paper["title"]), anchor=False)
    st.markdown(_authors(paper["authors"]))
    facts = [common.code(f"{paper['arxiv_id']}v{paper['version']}"),
             " ".join(common.md_escape(category) for category in paper["categories"] or [])]
    for label, value in (("published", paper["published"]), ("listed", paper["listed_date"]),
                         ("updated", paper["updated"])):
        if value:
            facts.append(f"{label} {common.md_escape(str(value)[:10])}")
    labels = families["labels"] if families else None
    st.markdown(" · ".join(fact for fact in facts if fact) + " " + common.family_badges(labels))


def _authors(authors) -> str:
    """Each author a link to Browse filtered to them; a long list is cut with a count."""
    names = [name for name in authors or () if str(name).strip()]
    if not names:
        return "_No authors stored._"
    links = [f"[{common.md_escape(name)}]({author_href(name)})" for name in names[:MOST_AUTHORS]]
    more = len(names) - MOST_AUTHORS
    return ", ".join(links) + (f" and {more} more" if more > 0 else "")


def _links(paper: dict) -> None:
    arxiv_id, version = paper["arxiv_id"], paper["version"]
    row = st.columns(3, width=360)
    row[0].link_button("Abstract", common.link_target(paper["abs_url"], abs_url(arxiv_id)),
                       icon=":material/article:")
    row[1].link_button("PDF", common.link_target(paper["pdf_url"], pdf_url(arxiv_id)),
                       icon=":material/picture_as_pdf:")
    row[2].link_button("HTML", html_url(arxiv_id, version), icon=":material/code:")


# ---- summary and versions -----------------------------------------------------------

def _summary(summary: dict | None, paper: dict) -> None:
    st.markdown("#### Summary")
    if not summary:
        st.caption("No summary yet: `octet summarize` (or the next `octet run`) writes one.")
        return
    st.caption(_provenance(summary, paper["version"]))
    copied = set(summary.get("fallback_fields") or ())
    whole = bool(summary.get("extractive"))
    for field, label in common.SUMMARY_FIELDS:
        if summary.get(field):
            mark = f" {common.EXTRACTIVE_MARK}" if field in copied and not whole else ""
            st.markdown(f"**{label}**{mark} {common.md_escape(summary[field])}")


def _provenance(summary: dict, version: int) -> str:
    """Who wrote the summary, how, when and for which version."""
    if summary.get("extractive"):
        who = "Extractive summary: sentences taken from the abstract"
    else:
        who = f"Summary by {common.md_escape(summary.get('model') or summary.get('backend'))}"
        if summary.get("backend"):
            who += f" ({common.md_escape(summary['backend'])} backend"
            who += (f", prompt {common.md_escape(summary['prompt_version'])})"
                    if summary.get("prompt_version") else ")")
    parts = [who]
    if summary.get("created_at"):
        parts.append(f"written {common.md_escape(str(summary['created_at'])[:10])}")
    parts.append(f"for v{summary.get('version') or version}")
    copied = [f for f, _ in common.SUMMARY_FIELDS if f in (summary.get("fallback_fields") or ())]
    if copied and not summary.get("extractive"):
        parts.append(f"{len(copied)} field(s) copied from the abstract (marked extractive)")
    if summary.get("stale"):
        parts.append("the paper has a newer version since")
    return " · ".join(parts)


def _versions(seen: list[dict]) -> None:
    st.markdown("#### Versions seen")
    if not seen:
        st.caption("No version recorded.")
        return
    st.markdown("  \n".join(_version_line(version) for version in seen))
    if len(seen) == 1:
        st.caption(f"Only v{seen[0]['version']} has been seen; a newer version's changes "
                   "will show here.")
    for older, newer in zip(seen, seen[1:]):
        st.markdown(_change_lines(older, newer))


def _version_line(version: dict) -> str:
    parts = [f"**v{version['version']}**"]
    if version.get("updated"):
        parts.append(f"updated {common.md_escape(str(version['updated'])[:10])}")
    if version.get("seen_at"):
        parts.append(f"first seen {common.md_escape(str(version['seen_at'])[:10])}")
    return " · ".join(parts)


def _change_lines(older: dict, newer: dict) -> str:
    """Markdown: what changed from ``older`` to ``newer`` (title, then abstract passages)."""
    head = f"**v{older['version']} → v{newer['version']}**"
    lines = []
    if " ".join(older["title"].split()) != " ".join(newer["title"].split()):
        lines.append(f"- Title: ~~{_capped(older['title'])}~~ → **{_capped(newer['title'])}**")
    changes = text_changes(older["abstract"], newer["abstract"])
    if changes:
        lines.append(f"- Abstract: {len(changes)} passage{'s' if len(changes) > 1 else ''} "
                     "changed (removed ~~struck~~, added **bold**)")
        lines += [f"    - {_passage(change)}" for change in changes[:MOST_CHANGES]]
    if len(changes) > MOST_CHANGES:
        lines.append(f"    - … and {len(changes) - MOST_CHANGES} more")
    if not lines:
        return f"{head}: title and abstract unchanged (the change is in the paper itself)."
    return f"{head}:\n" + "\n".join(lines)


def _passage(change: Change) -> str:
    """One changed passage: context, the removed words struck out, the added words bold."""
    parts = [("…" if change.cut_before else "") + common.md_escape(change.before),
             f"~~{_capped(change.removed)}~~" if change.removed else "",
             f"**{_capped(change.added)}**" if change.added else "",
             common.md_escape(change.after) + ("…" if change.cut_after else "")]
    return " ".join(part for part in parts if part)


def _capped(text: str) -> str:
    words = str(text).split()
    shown = " ".join(words[:MOST_CHANGED_WORDS])
    return common.md_escape(shown) + (" …" if len(words) > MOST_CHANGED_WORDS else "")


# ---- actions, families, notes ---------------------------------------------------------

def _actions(config, paper: dict, held: dict, details: dict) -> None:
    """The state in words, then the card actions every page has (queue, read this week,
    dismiss with undo, thumbs; ``details`` as ``common.card_details`` gives them), and a way
    back from a dismissal made earlier."""
    arxiv_id = paper["arxiv_id"]
    week = weeks.current_week(config.timezone)
    st.markdown(f"**{_state_line(config, arxiv_id, held, week)}**")
    card = {**paper, "state": held.get("state") or "inbox"}
    common.card_actions(config, card, details, prefix="paper_")
    common.undo_bar(config)
    # A dismissal made on another visit (the undo bar offers only this visit's last one).
    undo = st.session_state.get("last_dismissal") or {}
    if card["state"] == "dismissed" and undo.get("arxiv_id") != arxiv_id:
        st.button("Take back the dismissal", key="paper_undismiss", icon=":material/undo:",
                  on_click=common.act, args=(_undismiss(config, paper), ""))


def _undismiss(config, paper: dict):
    """An action for ``common.act``: the paper back in the inbox, said with its title."""
    def action() -> str:
        state = reading.undo_dismiss(config.db_path, paper["arxiv_id"], None)
        return f"{common.short_title(paper['title'])}: {STATE_WORDS.get(state, state)}."
    return action


def _state_line(config, arxiv_id: str, held: dict, week: str) -> str:
    state = held.get("state") or "inbox"
    words = STATE_WORDS.get(state, state)
    if state == "queued":
        order = [row["arxiv_id"] for row in reading.queue_list(config.db_path)]
        if arxiv_id in order:
            words += f" (#{order.index(arxiv_id) + 1} of {len(order)})"
    elif state == "pick" and held.get("week") and held["week"] != week:
        words = f"The pick of {common.md_escape(held['week'])}"
    elif state == "read":
        day = held.get("read_on") or held.get("week")
        words += f" on {common.md_escape(day)}" if day else ""
    return words


def _families(config, arxiv_id: str, families: dict | None) -> None:
    st.markdown("#### Families")
    if families is None:
        st.markdown(common.family_badges(None))
        st.caption("The classify stage has not scored this paper yet (`octet run`).")
    else:
        st.markdown(common.family_badges(families["labels"]) + " " + _labeled_by(families))
        scores = families.get("scores") or {}
        shown = sorted((code for code in FAMILY_CODES if scores.get(code, 0) >= LOWEST_SCORE_SHOWN),
                       key=lambda code: -scores[code])
        if shown:
            st.caption("Classifier scores: " + " · ".join(f"{code} {scores[code]:.2f}"
                                                         for code in shown))
    _labels_editor(config, arxiv_id, families)


def _labeled_by(families: dict) -> str:
    source = families.get("source")
    if source == "reader":
        return "_labeled by you_"
    if source == "llm":
        return f"_labeled by the LLM judge ({common.md_escape(families.get('judge_version'))})_"
    unsure = ", unsure" if families.get("low_confidence") else ""
    return f"_labeled by the classifier{unsure}_"


def _labels_editor(config, arxiv_id: str, families: dict | None) -> None:
    labels = list(families["labels"]) if families else []
    with st.popover("Correct the labels", icon=":material/label:"):
        st.multiselect("Families", FAMILY_CODES, default=[c for c in labels if c in FAMILY_CODES],
                       key=f"paper_labels_{arxiv_id}")
        st.button("Save labels", key="paper_save_labels", on_click=_save_labels,
                  args=(config, arxiv_id))
        if families and families.get("source") == "reader":
            st.button("Use the model's labels again", key="paper_clear_labels",
                      on_click=common.act, args=(
                          lambda: clear_reader_labels(config.db_path, arxiv_id),
                          f"Labels of {arxiv_id}: the model's again."))


def _save_labels(config, arxiv_id: str) -> None:
    picked = list(st.session_state.get(f"paper_labels_{arxiv_id}") or [])
    common.act(lambda: set_reader_labels(config.db_path, arxiv_id, picked),
               f"Labels of {arxiv_id} saved: {', '.join(picked) or 'no family'}.")


def _notes(config, paper: dict, held: dict) -> None:
    st.markdown("#### Your notes and rating")
    arxiv_id = paper["arxiv_id"]
    rating = held.get("rating")
    with st.form("paper_notes_form", border=False):
        common.rating_input(f"paper_rating_{arxiv_id}", rating)
        st.text_area("Notes (Markdown)", value=held.get("notes") or "",
                     key=f"paper_notes_{arxiv_id}",
                     height=120, placeholder="What is the idea? What will you remember?")
        st.form_submit_button("Save notes", on_click=_save_notes, args=(config, arxiv_id,
                                                                       paper["title"]))
    if held.get("notes"):
        with st.expander("Your notes, as they render"):
            st.markdown(held["notes"])  # the reader's own Markdown, never paper text


def _save_notes(config, arxiv_id: str, title: str) -> None:
    stars = st.session_state.get(f"paper_rating_{arxiv_id}")
    notes = st.session_state.get(f"paper_notes_{arxiv_id}") or ""
    common.act(lambda: reading.save_notes(config.db_path, arxiv_id, notes,
                                          stars + 1 if stars is not None else None),
               f"Notes on {common.short_title(title)} saved.")


# ---- similar papers -------------------------------------------------------------------

def _similar(config, similar: list[dict], summaries: dict, thumbs: dict) -> None:
    """The papers most like this one, each as a card with the actions every card has."""
    st.divider()
    st.markdown("#### Similar papers")
    if not similar:
        st.caption("Similar papers show once this paper has an embedding (the classify "
                   "stage of `octet run`).")
        return
    full = reading.cards(config.db_path, [other["arxiv_id"] for other in similar])
    for other in similar:
        other_id = other["arxiv_id"]
        card = {**other, **full.get(other_id, {})}
        # What ``common.card_details`` gives, from what this page has read already.
        details = {"labels": other["labels"], "tldr": (summaries.get(other_id) or {}).get("tldr"),
                   "thumb": thumbs.get(other_id)}
        with st.container(border=True):
            st.caption(f"Similarity {other['score']:.2f} · {STATE_WORDS.get(card['state'], '')}")
            common.paper_card(card, details)
            common.card_actions(config, card, details, prefix="similar_")
