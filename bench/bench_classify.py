"""Speed and quality of the family classifier.

Speed: N real papers (title + abstract) from ../shared/data; each variant is timed 5 times,
the variants taking turns (median). Baseline in the same run: the raw encoder
(``embed_texts``) on the same texts at the 64 word pieces Octet uses (``MAX_TOKENS``), and at
128 and 256 (the library default). Rows: classifying from text (encoder + cue features +
heads), the heads alone on stored embeddings, and the ``octet run`` stage on a real DuckDB
file (read, encode, classify, write).

Quality: ``octet eval`` on the shipped dev set (135 papers, 5-fold cross-validation, each
paper scored by a head not trained on it; shipped rule-labeled papers added to every
training fold), for two fold shuffles.
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


def quality_section() -> str:
    from bench.common import table
    from pipeline.stages import families as classify

    labeled = classify.shipped_labeled("dev")
    rows = []
    for seed in (0, 1):
        started = time.perf_counter()
        metrics = classify.cross_validate_labeled(labeled, folds=5, seed=seed)
        rows.append([f"`octet eval --folds 5 --seed {seed}`", metrics["papers"],
                     f"{metrics['macro_f1']:.3f}", f"{metrics['exact_set_accuracy']:.3f}",
                     f"{metrics['none_accuracy']:.3f}", f"{time.perf_counter() - started:.0f}"])
    per_family = table(["family", "precision", "recall", "F1", "support"],
                       [[code, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                         m["support"]] for code, m in metrics["families"].items()])
    worst = ", ".join(f"{c['pair']} ×{c['count']}" for c in metrics["confusions"][:6])
    return (table(["command", "dev papers", "macro-F1", "exact-set acc.", "none acc.",
                   "seconds"], rows)
            + f"\nPer family (seed 1):\n\n{per_family}\nWorst confusions (seed 1): {worst}\n"
            "\nIssue 3's baselines on the held-out set: keyword rules 0.82 / 0.52, MiniLM + "
            "logistic regression 0.80 / 0.61 (macro-F1 / exact-set accuracy).\n")


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
            + "\n### Quality: 5-fold cross-validation on the dev set\n\n" + quality_section())


if __name__ == "__main__":
    print(main())
