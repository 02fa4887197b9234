"""One paper a week: the pick proposal (which paper, and why) and the reading stage.

The proposal is pure logic over plain data; ``storage.reading`` stores the pick and the
app and CLI show it. Weeks and the streak are in ``pipeline.core.weeks``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from pipeline.core.families import CODES as FAMILY_CODES
from pipeline.core.settings import Settings
from pipeline.core.weeks import current_week, week_of
from storage import reading as store
from storage.families import families_for
from storage.search_index import refresh_search_index

log = logging.getLogger(__name__)


# ---- the proposal -------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """A paper the week's pick may be."""

    arxiv_id: str
    """The arXiv id without version."""

    title: str
    """The paper's title (for the reason line)."""

    labels: tuple[str, ...] = ()
    """Its family labels (empty when not classified yet or when none fits)."""

    source: str = "recent"
    """``queue`` (the reader queued it) or ``recent`` (newly listed)."""

    embedding: np.ndarray | None = field(default=None, compare=False)
    """Its stored unit-length embedding, when there is one."""

    listed_date: str | None = None
    """The day arXiv listed it (``YYYY-MM-DD``), when known: "newly listed" only this week."""


@dataclass(frozen=True)
class Proposal:
    """Octet's choice for the week, with the runners-up and one line on why."""

    arxiv_id: str
    """The proposed pick."""

    runners_up: tuple[str, ...]
    """The next two candidates, best first (the reader may swap to one)."""

    reason: str
    """One line saying why this one."""


def neglect_order(read_labels: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Families from most to least neglected, given ``(week, labels)`` of papers read:
    never-read families first (in the seed order), then by oldest last store."""
    last_read: dict[str, str] = {}
    for week, labels in read_labels:
        for label in labels:
            if label in FAMILY_CODES and week > last_read.get(label, ""):
                last_read[label] = week
    return sorted(FAMILY_CODES,
                  key=lambda code: (last_read.get(code, ""), FAMILY_CODES.index(code)))


def _taste(candidate: Candidate, liked: np.ndarray | None, disliked: np.ndarray | None) -> float:
    """Closeness to papers rated well minus closeness to dismissed or poorly rated ones."""
    if candidate.embedding is None:
        return 0.0
    score = 0.0
    if liked is not None:
        score += float(np.max(liked @ candidate.embedding))
    if disliked is not None:
        score -= float(np.max(disliked @ candidate.embedding))
    return score


def _stack(vectors: list[np.ndarray]) -> np.ndarray | None:
    return np.vstack(vectors) if vectors else None


def propose(candidates: list[Candidate], neglected: list[str],
            liked: list[np.ndarray] = (), disliked: list[np.ndarray] = (),
            this_week: str | None = None) -> Proposal | None:
    """Choose the week's paper: the most neglected family counts most, then taste (like the
    papers rated well, unlike the dismissed), then the queue's order (or recency)."""
    if not candidates:
        return None
    liked_matrix, disliked_matrix = _stack(list(liked)), _stack(list(disliked))
    rank = {code: index for index, code in enumerate(neglected)}

    def score(position: int, candidate: Candidate) -> float:
        family = max((len(FAMILY_CODES) - rank.get(label, len(FAMILY_CODES))
                      for label in candidate.labels), default=0) / len(FAMILY_CODES)
        # The reader's queue order matters; recency only breaks ties.
        order = (0.3 if candidate.source == "queue" else 0.05) / (1 + position)
        return 2.0 * family + 1.0 * _taste(candidate, liked_matrix, disliked_matrix) + order

    scored = sorted(enumerate(candidates), key=lambda item: -score(*item))
    best = scored[0][1]
    runners = tuple(candidate.arxiv_id for _, candidate in scored[1:3])
    return Proposal(best.arxiv_id, runners, _reason(best, neglected, liked_matrix,
                                                    disliked_matrix, scored[0][0], this_week))


def _origin(best: Candidate, this_week: str | None) -> str:
    """Where the paper comes from, in words: "newly listed" only for this week's listings."""
    if best.source == "queue":
        return "from your queue"
    listed = str(best.listed_date or "")[:10]
    try:
        if this_week and week_of(date.fromisoformat(listed)) == this_week:
            return "newly listed"
    except ValueError:
        listed = ""
    return f"among the newest papers stored (listed {listed})" if listed \
        else "among the newest papers stored"


def _reason(best: Candidate, neglected: list[str], liked, disliked, position: int,
            this_week: str | None = None) -> str:
    parts = [_origin(best, this_week)]
    touched = [code for code in neglected if code in best.labels]
    if touched:
        place = neglected.index(touched[0])
        parts.append(f"{touched[0]} is the family you have neglected longest" if place == 0
                     else f"{touched[0]} is your #{place + 1} most neglected family")
    elif not best.labels:
        parts.append("not classified into a family yet")
    if best.embedding is not None and liked is not None and _taste(best, liked, None) > 0.5:
        parts.append("close to papers you rated well")
    if best.source == "queue" and position == 0:
        parts.append("first in line")
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


# ---- gluing it to the store ---------------------------------------------------

def propose_for(settings: Settings) -> Proposal | None:
    """A proposal from what is stored: the queue first, else recent papers."""

    db_path = settings.db_path
    rows = store.pick_candidates(db_path)
    if not rows:
        return None
    ids = [row["arxiv_id"] for row in rows]
    families = families_for(db_path, ids)
    taste = store.rated_ids(db_path)
    vectors = store.embeddings_of(db_path, ids + taste["liked"] + taste["disliked"])
    history = store.read_history(db_path)
    history_families = families_for(db_path, [row["arxiv_id"] for row in history])
    read_labels = [(row["week"] or "", tuple(history_families.get(row["arxiv_id"], {})
                                             .get("labels", ()))) for row in history]
    candidates = [Candidate(row["arxiv_id"], row["title"],
                            tuple(families.get(row["arxiv_id"], {}).get("labels", ())),
                            row["source"], vectors.get(row["arxiv_id"]),
                            row.get("listed_date")) for row in rows]
    return propose(candidates, neglect_order(read_labels),
                   [vectors[i] for i in taste["liked"] if i in vectors],
                   [vectors[i] for i in taste["disliked"] if i in vectors],
                   current_week(settings.timezone))


def ensure_pick(settings: Settings, now: datetime | None = None) -> dict | None:
    """This week's pick, proposing and storing one when the week has none yet."""

    week = current_week(settings.timezone, now)
    pick = store.get_pick(settings.db_path, week)
    if pick is not None:
        return _queue_first(settings, week, pick)
    # The proposal runs with no connection open (it may read embeddings in bulk).
    proposal = propose_for(settings)
    if proposal is None:
        return None
    store.set_pick(settings.db_path, week, proposal.arxiv_id, "octet", proposal.reason,
                     list(proposal.runners_up), replace=False)
    log.info("proposed %s for %s", proposal.arxiv_id, week)
    return store.get_pick(settings.db_path, week)


def _queue_first(settings: Settings, week: str, pick: dict) -> dict:
    """A pick Octet proposed and the reader has not started gives way to the paper the
    reader put first in the queue after it was proposed."""
    if pick["chosen_by"] != "octet" or pick["status"] != "pick" or pick["started_at"]:
        return pick
    first = store.queue_top_after_pick(settings.db_path, week)
    if first is None or first == pick["arxiv_id"]:
        return pick
    queue = [row["arxiv_id"] for row in store.queue_list(settings.db_path)]
    store.set_pick(settings.db_path, week, first, "octet", QUEUE_FIRST_REASON,
                   [pick["arxiv_id"], *[i for i in queue if i != first][:1]])
    log.info("%s first in the queue: it replaces the proposal %s for %s", first,
             pick["arxiv_id"], week)
    return store.get_pick(settings.db_path, week)


QUEUE_FIRST_REASON = ("First in your queue; it replaced Octet's proposal, which you had not "
                      "started.")
"""The reason a pick gets when the reader's queue replaced the proposal."""


class PickRefused(ValueError):
    """The paper cannot be this week's pick; the message says why and what to do."""


def choose_pick(settings: Settings, arxiv_id: str, now: datetime | None = None) -> str:
    """Make a paper this week's pick by the reader's choice (``octet pick ID`` and the
    app's *Read this week*): the earlier pick goes back to the queue or the inbox. Refused
    with ``PickRefused`` when this week's paper is read already or the paper was read.
    Returns one sentence saying what happened."""
    week = current_week(settings.timezone, now)
    pick = store.get_pick(settings.db_path, week)
    if pick is not None and pick["arxiv_id"] == arxiv_id and pick["status"] == "pick":
        return f"{arxiv_id} is already this week's paper."
    if pick is not None and pick["status"] == "read":
        raise PickRefused(f"this week's paper ({pick['arxiv_id']}) is read already; queue "
                          f"{arxiv_id} for next week instead")
    state = store.reading_of(settings.db_path, arxiv_id)
    if state is not None and state["state"] == "read":
        raise PickRefused(f"{arxiv_id} was read on {state['read_on'] or 'an earlier week'}; "
                          "choose a paper you have not read")
    store.set_pick(settings.db_path, week, arxiv_id, "reader", "chosen by you")
    return f"{arxiv_id} is this week's paper ({week})."


def run_stage(settings: Settings, report: dict) -> dict:
    """The reading stage of ``octet run`` (after classify and summarize): index the new
    papers for keyword search, and propose this week's pick if the week has none, so the
    app opens on it at once."""

    indexed = refresh_search_index(settings.db_path)
    pick = ensure_pick(settings)
    return {"indexed": indexed, "week": current_week(settings.timezone),
            "pick": pick["arxiv_id"] if pick else None}
