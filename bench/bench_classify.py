"""Speed and quality of the family classifier.

Speed: N real papers (title + abstract) from ../shared/data; each variant is timed 5 times,
the variants taking turns (median). Baseline in the same run: the raw encoder
(``embed_texts``) on the same texts at the 64 word pieces Octet uses (``MAX_TOKENS``), and at
128 and 256 (the library default). Rows: classifying from text (encoder + cue features +
heads), the heads alone on stored embeddings, and the ``octet run`` stage on a real DuckDB
file (read, encode, classify, write).

Quality: ``octet eval``: the shipped head on the held-out split of the papers labeled by
reading (its random and targeted parts; nothing was tuned on it), beside 5-fold
cross-validation on the shipped training labels for two fold shuffles.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS = 5
PAPERS = 128


def _papers():
    from pipeline.core.paper import Paper, clean_text
    from bench.common import real_listings

    return [Paper(arxiv_id=row["id"].split("v")[0], version=1, title=clean_text(row["title"]),
                  abstract=clean_text(row["abstract"]), categories=tuple(row["categories"]),
                  primary_category=row["categories"][0])
            for row in real_listings(limit=PAPERS, day="2025-06-03")]


def _at_length(tokens: int, call):
    """``call`` run with the encoder cut at ``tokens`` word pieces."""
    from pipeline.core.text import MAX_TOKENS
    from pipeline.stages.encoder import encoder, pick_device

    def run():
        model = encoder(pick_device())
        model.max_seq_length = tokens
        try:
            call()
        finally:
            model.max_seq_length = MAX_TOKENS
    return run


def _stage_call(papers, folder: str):
    """A call that runs the classify stage on a fresh DuckDB file holding ``papers``."""
    from pipeline.stages import families as classify
    from pipeline.core.settings import load_settings
    from storage.papers import upsert_papers

    counter = iter(range(100))

    def prepare():
        os.environ["OCTET_HOME"] = f"{folder}/home{next(counter)}"
        upsert_papers(load_settings().db_path, papers)

    return prepare, lambda: classify.run_stage(load_settings(), {})


def _interleaved(variants: list[tuple[str, object, object]]) -> list[tuple[str, float]]:
    """Median seconds per variant; the runs take turns, so a change in the machine's load
    hits every variant alike."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(RUNS):
        for name, call, prepare in variants:
            if prepare:
                prepare()
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return [(name, statistics.median(times[name])) for name, _, _ in variants]


def speed_section() -> str:
    from bench.common import table
    from pipeline.stages import families as classify
    from pipeline.core.text import MAX_TOKENS, paper_text
    from pipeline.stages.encoder import embed_texts, pick_device

    papers = _papers()
    ids, titles = [p.arxiv_id for p in papers], [p.title for p in papers]
    abstracts = [p.abstract for p in papers]
    texts = [paper_text(t, a) for t, a in zip(titles, abstracts)]
    head = classify.current_head()
    vectors = embed_texts(texts)  # also loads the model outside the timings
    baseline_name = f"raw encoder, {MAX_TOKENS} word pieces (baseline: what Octet runs)"
    with tempfile.TemporaryDirectory() as folder:
        prepare, stage = _stage_call(papers, folder)
        measured = _interleaved([
            ("raw encoder, 256 word pieces (library default)",
             _at_length(256, lambda: embed_texts(texts)), None),
            ("raw encoder, 128 word pieces", _at_length(128, lambda: embed_texts(texts)), None),
            (baseline_name, lambda: embed_texts(texts), None),
            ("classify_texts: encoder + cues + heads (`octet classify`)",
             lambda: classify.classify_texts(ids, titles, abstracts, head), None),
            ("heads only, on stored embeddings",
             lambda: classify.classify_embedded(head, ids, titles, abstracts, vectors), None),
            ("`octet run` classify stage on DuckDB (read, encode, classify, write)",
             stage, prepare)])
    baseline = dict(measured)[baseline_name]
    body = table(["what", "papers", "median s", "papers/s", "time vs baseline"],
                 [[name, len(papers), f"{seconds:.3f}", f"{len(papers) / seconds:.1f}",
                   f"{seconds / baseline:.2f}×"] for name, seconds in measured])
    return (f"Device: {pick_device()}; torch threads: {_threads()}; median of {RUNS} "
            f"interleaved runs; {len(papers)} real papers of one daily listing.\n\n" + body)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _row(name: str, metrics: dict) -> list:
    return [name, metrics["papers"], f"{metrics['macro_f1']:.3f}",
            f"{metrics['exact_set_accuracy']:.3f}", f"{metrics['none_accuracy']:.3f}",
            f"{metrics['badge_precision']:.3f}"]


def quality_section() -> str:
    """The shipped head on the held-out split (nothing was tuned on it), beside the 5-fold
    cross-validation on the training labels, and the two readers' agreement."""
    import json

    from bench.common import table
    from pipeline.stages import families as classify

    head = classify.load_head(classify.data_file(classify.HEAD_FILE))
    parts = {"held-out, all": classify.heldout_labeled(),
             "held-out, random part (a real day)": classify.heldout_labeled("random"),
             "held-out, targeted part (hard cases)": classify.heldout_labeled("targeted")}
    scored = {name: classify.evaluate(part.targets(), head.decide(head.probabilities(part.features())))
              for name, part in parts.items()}
    rows = [_row(name, metrics) for name, metrics in scored.items()]
    for seed in (0, 1):
        metrics = classify.cross_validate_shipped(folds=5, seed=seed)
        rows.append(_row(f"5-fold CV on the hand-labeled training papers, seed {seed}", metrics))
    whole = scored["held-out, all"]
    per_family = table(["family", "precision", "recall", "F1", "support"],
                       [[code, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                         m["support"]] for code, m in whole["families"].items()])
    worst = ", ".join(f"{c['pair']} ×{c['count']}" for c in whole["confusions"][:6])
    agreement = [json.loads((REPO / "bench/labeling" / name).read_text()) for name in
                 ("fam_agreement.json", "fam_agreement_round2.json", "fam_agreement_round3.json",
                  "fam_agreement_round4.json")]
    return (f"Shipped head `{head.version}`.\n\n"
            + table(["set", "papers", "macro-F1", "exact-set acc.", "none acc.", "badge precision"],
                    rows)
            + f"\nPer family on the whole held-out split:\n\n{per_family}\n"
            f"Worst confusions on held-out: {worst}\n\nTwo readers, blind, on random 10 % "
            f"samples: {_agreement(agreement)}\n")


def _agreement(rounds: list[dict]) -> str:
    texts = []
    for number, found in enumerate(rounds, start=1):
        exact = found.get("exact_set", found.get("exact_set_agreement"))
        texts.append(f"round {number}, {found.get('papers', found.get('n', '?'))} papers: "
                     f"exact label set {exact}")
    return "; ".join(texts) + " (per-family kappa in `pipeline/data/LABELS.md`)."


def main() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    saved = os.environ.get("OCTET_HOME")
    try:
        speed = speed_section()
    finally:
        if saved is None:
            os.environ.pop("OCTET_HOME", None)
        else:
            os.environ["OCTET_HOME"] = saved
    return ("## Family classifier (issue 3)\n\n### Speed\n\n" + speed
            + "\n### Quality: held-out split beside cross-validation\n\n" + quality_section())


if __name__ == "__main__":
    print(main())
