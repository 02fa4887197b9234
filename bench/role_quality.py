"""How often each extractive field lands on a sentence of its role, on abstracts labeled
sentence by sentence (``pipeline/data/sentence_roles.jsonl``), beside trivial rules.

A field hits when its sentence has the field's role: TL;DR ↔ problem or method (the task
or the idea), problem ↔ problem, method ↔ method, results ↔ result. The share is over
every abstract of the split: an empty field, or an abstract without a sentence of that
role, is a miss (so no rule reaches 1.0 on problem: some abstracts state none).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pipeline.stages.summaries.extractive import FIELD_ROLES, pick_indices, standalone
from pipeline.stages.summaries.roles import RoleModel, out_of_fold, role_probabilities

SCORED = ("tldr", "problem", "method", "results")
"""The fields of the goal (why it matters is counted apart: few abstracts have one)."""

RANDOM_DRAWS = 200
"""Seeded draws averaged for the random-sentence rule."""


def hit_rates(rows: Sequence[dict], picks: Sequence[dict[str, int]]) -> dict[str, float]:
    """Per field the share of abstracts whose field sentence has the field's role, their
    mean over ``SCORED``, and ``tldr_main``: the share whose TL;DR is the labeled ``main``."""
    rates = {name: float(np.mean([name in pick and row["roles"][pick[name]] in FIELD_ROLES[name]
                                  for row, pick in zip(rows, picks)])) for name in SCORED}
    rates["mean"] = float(np.mean([rates[name] for name in SCORED]))
    rates["tldr_main"] = float(np.mean([pick.get("tldr") == row["main"]
                                        for row, pick in zip(rows, picks)]))
    return rates


def why_counts(rows: Sequence[dict], picks: Sequence[dict[str, int]]) -> dict[str, int]:
    """How "why it matters" behaves: abstracts with an implication sentence, how many of
    them show the field, how many of those land on one, and how many without show it."""
    having = [row for row in rows if "implication" in row["roles"]]
    shown = [(row, pick["why_it_matters"]) for row, pick in zip(rows, picks) if "why_it_matters" in pick]
    return {"with_implication": len(having),
            "shown_with": sum("implication" in row["roles"] for row, _ in shown),
            "shown_on_implication": sum(row["roles"][index] == "implication" for row, index in shown),
            "shown_without": sum("implication" not in row["roles"] for row, _ in shown)}


def first_sentence(row: dict) -> dict[str, int]:
    """Every field is the first sentence."""
    return {name: 0 for name in SCORED}


def position_rule(row: dict) -> dict[str, int]:
    """TL;DR and problem the first sentence, method the one a third of the way in, results
    the last sentence that is not labeled ``other``."""
    count = len(row["sentences"])
    last = max((i for i, role in enumerate(row["roles"]) if role != "other"), default=count - 1)
    return {"tldr": 0, "problem": 0, "method": count // 3, "results": last}


def random_rates(rows: Sequence[dict], seed: int = 0, draws: int = RANDOM_DRAWS) -> dict[str, float]:
    """Hit rates of a field drawn uniformly from the abstract's sentences, averaged over
    ``draws`` seeded draws."""
    generator = np.random.default_rng(seed)
    runs = []
    for _ in range(draws):
        picks = [{name: int(generator.integers(len(row["sentences"]))) for name in SCORED}
                 for row in rows]
        runs.append(hit_rates(rows, picks))
    return {name: float(np.mean([run[name] for run in runs])) for name in runs[0]}


def picks_from(rows: Sequence[dict], probabilities: Sequence[np.ndarray],
               choose: Callable = pick_indices) -> list[dict[str, int]]:
    """The v3 field indices of each labeled abstract from its role probabilities."""
    return [choose(matrix, [standalone(sentence)[1] for sentence in row["sentences"]])
            for row, matrix in zip(rows, probabilities)]


def model_probabilities(rows: Sequence[dict], model: RoleModel | None = None) -> list[np.ndarray]:
    """Role probabilities of each labeled abstract from one model (the shipped one by default)."""
    return [role_probabilities(row["sentences"], row["title"], model) for row in rows]


def cv_probabilities(rows: Sequence[dict], folds: int = 5) -> list[np.ndarray]:
    """Out-of-fold role probabilities (for choices made on the train split only)."""
    return out_of_fold(rows, folds=folds)


def trivial_rates(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """The trivial rules' hit rates on these rows."""
    return {"first sentence": hit_rates(rows, [first_sentence(row) for row in rows]),
            "position rule": hit_rates(rows, [position_rule(row) for row in rows]),
            "random sentence": random_rates(rows)}
