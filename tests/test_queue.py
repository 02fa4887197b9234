"""Weeks, the streak and the pick proposal: pure logic, across week, year and zone edges."""
from __future__ import annotations

from storage.search import BrowseFilter, browse
from datetime import date, datetime, timezone

import numpy as np
import pytest

from pipeline.core import weeks
from pipeline.stages.reading import FAMILY_CODES, neglect_order, propose, run_stage
from pipeline.core.errors import ConfigError
from pipeline.stages.reading import Candidate


def test_iso_week_at_year_boundaries():
    assert weeks.week_of(date(2026, 1, 1)) == "2026-W01"
    assert weeks.week_of(date(2027, 1, 1)) == "2026-W53"  # 2026 has 53 ISO weeks
    assert weeks.week_of(date(2024, 12, 30)) == "2025-W01"
    assert weeks.previous_week("2027-W01") == "2026-W53"
    assert weeks.previous_week("2025-W01") == "2024-W52"
    assert weeks.week_monday("2026-W53") == date(2026, 12, 28)


def test_current_week_follows_the_readers_time_zone():
    # Sunday 23:30 in UTC is already Monday (next ISO week) in Tokyo, still Sunday in New York.
    instant = datetime(2026, 12, 27, 23, 30, tzinfo=timezone.utc)
    assert weeks.current_week("UTC", instant) == "2026-W52"
    assert weeks.current_week("Asia/Tokyo", instant) == "2026-W53"
    assert weeks.current_week("America/New_York", instant) == "2026-W52"
    # Late on 31 December in UTC is already 1 January 2027 in Kiribati (UTC+14): ISO week
    # 2026-W53 either way, because that week runs to Sunday 3 January 2027.
    assert weeks.current_week("Pacific/Kiritimati", datetime(2026, 12, 31, 12, tzinfo=timezone.utc)) == "2026-W53"
    assert weeks.today("Asia/Tokyo", instant) == date(2026, 12, 28)


def test_an_unknown_time_zone_is_a_configuration_error():
    with pytest.raises(ConfigError, match="IANA"):
        weeks.current_week("Mars/Olympus_Mons")


def test_streak_counts_consecutive_read_weeks_across_the_new_year():
    read = {"2026-W52", "2026-W53", "2027-W01"}
    assert weeks.streak(read, "2027-W01") == 3
    # This week's pick not read yet: the streak still stands until the week is over.
    assert weeks.streak(read, "2027-W02") == 3
    # A whole week missed breaks it.
    assert weeks.streak(read, "2027-W03") == 0
    assert weeks.streak(read - {"2026-W53"}, "2027-W01") == 1
    assert weeks.streak(set(), "2027-W01") == 0


def test_longest_streak():
    read = {"2026-W01", "2026-W02", "2026-W05", "2026-W06", "2026-W07"}
    assert weeks.longest_streak(read) == 3
    assert weeks.longest_streak(set()) == 0


def test_neglect_order_puts_never_read_families_first_then_oldest():
    history = [("2026-W10", ("LLM",)), ("2026-W12", ("VLM", "MoE")), ("2026-W11", ("LLM",))]
    order = neglect_order(history)
    assert order[:5] == ["LCM", "LAM", "SLM", "MLM", "SAM"]
    assert order[5:] == ["LLM", "VLM", "MoE"] or order[5:] == ["LLM", "MoE", "VLM"]
    assert order.index("LLM") < order.index("VLM")


def test_proposal_prefers_the_most_neglected_family_and_names_it():
    neglected = ["SAM", "LLM", "VLM", "LCM", "LAM", "MoE", "SLM", "MLM"]
    candidates = [Candidate("1", "an LLM paper", ("LLM",)), Candidate("2", "a SAM paper", ("SAM",)),
                  Candidate("3", "unlabeled", ())]
    proposal = propose(candidates, neglected)
    assert proposal.arxiv_id == "2"
    assert proposal.runners_up == ("1", "3")
    assert "SAM is the family you have neglected longest" in proposal.reason


def test_eight_weeks_of_proposals_cover_the_eight_families():
    pool = [Candidate(f"{code}-{n}", code, (code,)) for n in range(3) for code in FAMILY_CODES]
    history: list[tuple[str, tuple[str, ...]]] = []
    for number in range(1, 9):
        week = f"2026-W{number:02d}"
        proposal = propose(pool, neglect_order(history))
        chosen = next(c for c in pool if c.arxiv_id == proposal.arxiv_id)
        history.append((week, chosen.labels))
        pool = [c for c in pool if c.arxiv_id != chosen.arxiv_id]
    assert {labels[0] for _, labels in history} == set(FAMILY_CODES)


def test_taste_leans_toward_liked_and_away_from_dismissed():
    liked, disliked = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    near_liked = Candidate("a", "like", (), embedding=np.array([0.9, 0.1, 0, 0.42], np.float32))
    near_disliked = Candidate("b", "dislike", (), embedding=np.array([0.1, 0.9, 0, 0.42], np.float32))
    proposal = propose([near_disliked, near_liked], list(FAMILY_CODES), [liked], [disliked])
    assert proposal.arxiv_id == "a"
    assert "close to papers you rated well" in proposal.reason


def test_queue_order_decides_between_equals_and_no_candidates_means_no_proposal():
    candidates = [Candidate("first", "t", (), "queue"), Candidate("second", "t", (), "queue")]
    proposal = propose(candidates, list(FAMILY_CODES))
    assert proposal.arxiv_id == "first"
    assert proposal.reason.startswith("From your queue")
    assert propose([], list(FAMILY_CODES)) is None


def test_run_stage_indexes_new_papers_and_proposes_the_week(settings):
    from storage import reading
    from tests.helpers import store_real_papers

    assert run_stage(settings, {})["pick"] is None  # empty database: nothing to do
    papers = store_real_papers(settings.db_path, 12)
    result = run_stage(settings, {})
    assert result["indexed"] == 12
    assert result["pick"] == reading.get_pick(settings.db_path, result["week"])["arxiv_id"]
    assert run_stage(settings, {}) == {**result, "indexed": 0}
    assert browse(settings.db_path, BrowseFilter(text=papers[0].title))[1] >= 1
