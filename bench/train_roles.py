"""Rebuild the shipped sentence-role model, and show how its settings were chosen.

    python -m bench.train_roles            # train on the train split, write the .npz
    python -m bench.train_roles --search   # the cross-validation behind RoleOptions and
                                           # the extractive thresholds (train split only)

Every choice is made by 5-fold cross-validation on the 260 ``train`` abstracts; the 100
``heldout`` abstracts are measured once, by ``bench/bench_summarize.py``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import role_quality  # noqa: E402
from pipeline.stages.summaries import extractive  # noqa: E402
from pipeline.stages.summaries.roles import (MODEL_FILE, ROLES, RoleOptions, data_file,  # noqa: E402
                                             labeled_rows, out_of_fold, train_roles)

log = logging.getLogger(__name__)

L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3)
"""The penalties tried (the rest of ``RoleOptions`` only sets how the optimum is reached)."""
THRESHOLD_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""The role probabilities tried as each field's ``MIN_PROBABILITY``."""
TLDR_LATENESS_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The values tried for ``TLDR_LATENESS``."""
FIELD_ROLE = {"problem": "problem", "method": "method", "results": "result",
              "why_it_matters": "implication"}
SEARCHED = ("problem", "results", "why_it_matters")
"""The thresholds chosen here. Method's is a rule (more likely a method than not): a higher
one only makes the method field repeat the TL;DR more often, which the count rewards."""


def sentence_scores(rows: list[dict], probabilities: list[np.ndarray]) -> tuple[float, float]:
    """(accuracy, mean log loss) of the role probabilities per sentence."""
    truth = np.concatenate([[ROLES.index(role) for role in row["roles"]] for row in rows])
    stacked = np.vstack(probabilities)
    accuracy = float(np.mean(stacked.argmax(axis=1) == truth))
    loss = float(-np.mean(np.log(stacked[np.arange(len(truth)), truth] + 1e-12)))
    return accuracy, loss


def field_right(rows: list[dict], picks: list[dict[str, int]], name: str) -> float:
    """The share of abstracts where a field is right: on a sentence of its role when the
    abstract has one, empty when it has none."""
    role = FIELD_ROLE[name]
    return float(np.mean([row["roles"][pick[name]] == role if name in pick and role in row["roles"]
                          else name not in pick and role not in row["roles"]
                          for row, pick in zip(rows, picks)]))


def _with(name: str, value, action):
    """``action()`` with one extractive setting changed for the duration."""
    saved = getattr(extractive, name)
    setattr(extractive, name, value)
    try:
        return action()
    finally:
        setattr(extractive, name, saved)


def search_thresholds(rows: list[dict], probabilities: list[np.ndarray]) -> dict[str, float]:
    """Per field the threshold with the most right fields (ties: the lower one)."""
    chosen = {}
    for name in SEARCHED:
        results = []
        for value in THRESHOLD_GRID:
            table = {**extractive.MIN_PROBABILITY, name: value}
            picks = _with("MIN_PROBABILITY", table, lambda: role_quality.picks_from(rows, probabilities))
            results.append((round(field_right(rows, picks, name), 3), -value))
        print(f"  {name}: " + ", ".join(f"{-v}: {r}" for r, v in results))
        chosen[name] = -max(results)[1]
    return chosen


def search_lateness(rows: list[dict], probabilities: list[np.ndarray]) -> float:
    """The ``TLDR_LATENESS`` that most often picks the labeled ``main`` sentence."""
    results = []
    for value in TLDR_LATENESS_GRID:
        picks = _with("TLDR_LATENESS", value, lambda: role_quality.picks_from(rows, probabilities))
        rates = role_quality.hit_rates(rows, picks)
        results.append((round(rates["tldr_main"], 3), -value))
        print(f"  TLDR_LATENESS {value}: TL;DR==main {rates['tldr_main']:.3f}, TL;DR hit {rates['tldr']:.3f}")
    return -max(results)[1]


def search() -> None:
    """Print the cross-validation behind the shipped settings (train split only)."""
    rows = labeled_rows("train")
    best = None
    for l2 in L2_GRID:
        options = dataclasses.replace(RoleOptions(), l2=l2)
        probabilities = out_of_fold(rows, options)
        accuracy, loss = sentence_scores(rows, probabilities)
        print(f"l2 {l2:g}: sentence accuracy {accuracy:.3f}, log loss {loss:.3f}")
        if best is None or loss < best[0]:
            best = (loss, l2, probabilities)
    print(f"lowest log loss: l2 {best[1]:g} (RoleOptions.l2 = {RoleOptions().l2:g})")
    probabilities = best[2]
    print(f"TLDR_LATENESS -> {search_lateness(rows, probabilities)} (shipped {extractive.TLDR_LATENESS})")
    print(f"MIN_PROBABILITY -> {search_thresholds(rows, probabilities)} (shipped {extractive.MIN_PROBABILITY})")
    picks = role_quality.picks_from(rows, probabilities)
    print("CV hit rates with the shipped settings:", role_quality.hit_rates(rows, picks))


def main(argv: list[str] | None = None) -> int:
    """Train on the train split and write the shipped model (or ``--search``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_roles")
    parser.add_argument("--search", action="store_true", help="show the cross-validation")
    parser.add_argument("--output", type=Path, default=data_file(MODEL_FILE))
    arguments = parser.parse_args(argv)
    if arguments.search:
        search()
        return 0
    model = train_roles(labeled_rows("train"))
    model.save(arguments.output)
    print(f"wrote {arguments.output} ({model.version}, {model.info['sentences']} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
