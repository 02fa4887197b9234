"""Speed of search at 75k papers — keyword, semantic, hybrid and similar papers, through
``storage.search`` (what the Browse page calls) — against the targets of issue 7.

Setup: the real papers of ../shared/data stored as ``bench_app`` stores them, 600 held back;
a reading history; family scores; an embedding for every paper: MiniLM vectors for a real
sample (every 75th paper, so real titles find real neighbours), random unit vectors for the
rest (a cosine scan costs the same whatever the values); the keyword index built once.
Then, in order: the cold query (the in-process index loaded from DuckDB), three refreshes
after a run stored 200 of the held-back papers with their embeddings and scores, the refresh
after the app's own write, and warm queries at all 74,602 papers.

Each query is timed as the median of 3 runs (the query-embedding cache cleared before each,
so encoding counts); a row gives the median and p95 over the varied queries. The baseline,
measured in the same run between the queries, is one bare storage call (open, count, close).
"""
from __future__ import annotations

from storage.search import BrowseFilter, browse
from pipeline.stages import search as stage_search
from storage import search_index
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import median_seconds  # noqa: E402

RUNS = 3
HELD_BACK = 600
SAMPLE_EVERY = 75
TARGETS_MS = {"keyword": 50, "semantic": 100, "hybrid": 150}
PHRASES = ("mixture of experts routing", "speech tokenizer", "open vocabulary detection",
           "masked diffusion language model", "segment anything", "vision language action policy",
           "text to video generation", "small language model distillation")


def _queries(sample: list[dict]) -> list[str]:
    """Family names, phrases a reader would type, and the openings of real titles."""
    from pipeline.core.families import FAMILIES
    from storage.search_index import search_words

    titles = [" ".join(search_words(row["title"])[:3]) for row in sample[::len(sample) // 10]]
    return [family.name.lower() for family in FAMILIES] + list(PHRASES) + titles[:10]


def _setup(db_path: Path) -> tuple[list[dict], list[dict], dict]:
    """Store everything but the held-back papers; returns the sample, the held-back rows
    and the setup times."""
    from bench.bench_app import add_history, load_papers, store_families_and_vectors
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts
    from bench.common import real_listings

    rows = real_listings()
    stored, held = rows[:-HELD_BACK], rows[-HELD_BACK:]
    count, load_seconds = load_papers(db_path, stored)
    ids = [card["arxiv_id"] for card in browse(db_path, BrowseFilter(limit=60))[0]]
    add_history(db_path, ids)
    sample = stored[::SAMPLE_EVERY]
    started = time.perf_counter()
    vectors = embed_texts([paper_text(row["title"], row["abstract"]) for row in sample])
    encode_seconds = time.perf_counter() - started
    store_families_and_vectors(db_path, known={row["id"]: v for row, v in zip(sample, vectors)})
    started = time.perf_counter()
    search_index.refresh_search_index(db_path)
    return sample, held, {"load": load_seconds, "stored": count, "sample": len(sample),
                          "encode": encode_seconds, "index": time.perf_counter() - started}


def _cold(db_path: Path, text: str) -> float:
    """The first hybrid query of a process: the index loaded from DuckDB, then searched."""
    from storage import search_index

    def cold_query():
        search_index.forget()
        stage_search.encode_query.cache_clear()
        started = time.perf_counter()
        stage_search.find_hybrid_text(db_path, BrowseFilter(text=text, limit=25))
        return time.perf_counter() - started

    return statistics.median(cold_query() for _ in range(RUNS))


def _after_writes(db_path: Path, held: list[dict]) -> tuple[float, float]:
    """The first query after a run stored new papers (embeddings and scores too), and after
    the app queued a paper: medians of 3."""
    from bench.bench_app import load_papers, store_families_and_vectors
    from storage import reading, search

    wanted = BrowseFilter(text="language model", limit=25)
    after_run, after_queue = [], []
    batch = len(held) // RUNS
    for number in range(RUNS):
        rows = held[number * batch:(number + 1) * batch]
        load_papers(db_path, rows)
        store_families_and_vectors(db_path, [row["id"] for row in rows], seed=number + 1)
        started = time.perf_counter()
        search.find_keyword(db_path, wanted)
        after_run.append(time.perf_counter() - started)
        reading.queue_add(db_path, [rows[0]["id"]])
        started = time.perf_counter()
        search.find_keyword(db_path, wanted)
        after_queue.append(time.perf_counter() - started)
    return statistics.median(after_run), statistics.median(after_queue)


def _measure(db_path: Path, calls: dict, arguments: list,
             baseline: list[float]) -> dict[tuple, list[float]]:
    """Per call, the median of ``RUNS`` runs for each argument; one baseline sample
    (median of ``RUNS``) is taken after each argument, so both see the same load."""
    from storage import reading

    times = {name: [] for name in calls}
    for argument in arguments:
        for name, call in calls.items():
            times[name].append(median_seconds(lambda: call(argument), RUNS,
                                              before=stage_search.encode_query.cache_clear))
        baseline.append(median_seconds(lambda: reading.paper_count(db_path), RUNS))
    return times


def _warm(db_path: Path, queries: list[str], similar_ids: list[str]) -> tuple[dict, list]:
    from pipeline.stages.encoder import embed_texts
    from storage import search, search_index

    narrow = dict(category="cs.CL", states=("inbox",), family="LLM", min_score=0.3)
    wanted = lambda text, **more: BrowseFilter(text=text, limit=25, **more)  # noqa: E731
    index = search_index.current(db_path, words=True, vectors=True)
    baseline: list[float] = []
    times = _measure(db_path, {
        ("keyword", ""): lambda q: search.find_keyword(db_path, wanted(q)),
        ("keyword", "filter"): lambda q: search.find_keyword(db_path, wanted(q, **narrow)),
        ("semantic", ""): lambda q: stage_search.find_semantic(db_path, q, wanted(""), 25),
        ("semantic", "filter"): lambda q: stage_search.find_semantic(db_path, q, wanted("", **narrow)),
        ("hybrid", ""): lambda q: stage_search.find_hybrid_text(db_path, wanted(q)),
        ("hybrid", "filter"): lambda q: stage_search.find_hybrid_text(db_path, wanted(q, **narrow)),
        ("filters only, no text", "filter"):
            lambda q: search.find_keyword(db_path, wanted("", **narrow)),
        ("encode the query alone (MiniLM, warm, 1 thread)", ""): lambda q: embed_texts([q]),
        ("cosine over every vector alone (one matrix product)", ""):
            lambda q: index.vectors @ index.vectors[0],
    }, queries, baseline)
    times.update(_measure(db_path, {
        ("similar papers", ""): lambda arxiv_id: search.find_similar(db_path, arxiv_id, 10),
    }, similar_ids, baseline))
    return times, baseline


def main() -> str:
    home = Path(tempfile.mkdtemp(prefix="octet-bench-search-"))
    try:
        return _run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # a 75k-paper database: ~400 MB


def _run(home: Path) -> str:
    os.environ["OCTET_HOME"] = str(home)
    from pipeline.core.settings import load_settings
    from storage import search

    db_path = load_settings().db_path
    sample, held, setup = _setup(db_path)
    queries = _queries(sample)
    stage_search.warm_encoder()  # as the app does: the encoder loaded, one torch thread
    cold = _cold(db_path, queries[0])
    after_run, after_queue = _after_writes(db_path, held)
    count = search.find_keyword(db_path, BrowseFilter(limit=1))[1]
    times, baseline = _warm(db_path, queries, [row["id"] for row in sample[3::40]][:len(queries)])
    return _report(setup, count, len(queries), cold, after_run, after_queue, times, baseline)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _missed(times: dict, floor: float) -> list[str]:
    """A sentence on each missed target: how much of it the unavoidable parts took."""
    stats = {key: (statistics.median(values), float(np.percentile(values, 95)))
             for key, values in times.items()}
    encode = stats[("encode the query alone (MiniLM, warm, 1 thread)", "")]
    scan = stats[("cosine over every vector alone (one matrix product)", "")]
    missed = [(name, narrowed, median, p95) for (name, narrowed), (median, p95) in stats.items()
              if name in TARGETS_MS and max(median, p95) * 1000 > TARGETS_MS[name]]
    if not missed:
        return []
    said = "; ".join(f"{name}{' with the filter' if narrowed else ''} (median {_ms(median)}, "
                     f"p95 {_ms(p95)} ms)" for name, narrowed, median, p95 in missed)
    return ["", f"Missed in this run: {said}. Encoding the query alone took {_ms(encode[0])} ms "
            f"(p95 {_ms(encode[1])}) and one cosine pass {_ms(scan[0])} ms (p95 "
            f"{_ms(scan[1])}): both are memory-bound passes (MiniLM's ~90 MB of weights, 115 MB "
            "of vectors) that slow down with the machine's load; this run's baseline storage "
            f"call took {_ms(floor)} ms. The rest of a semantic search is the filter and the "
            "cards, a few ms."]


def _report(setup, count, query_count, cold, after_run, after_queue, times, baseline) -> str:
    floor = statistics.median(baseline)
    lines = [
        "## Search at 75k papers (`bench/bench_search.py`)", "",
        f"{count:,} real papers; {setup['sample']:,} of them (every {SAMPLE_EVERY}th) embedded "
        f"with MiniLM ({setup['encode']:.0f} s), the others given random unit vectors (a "
        "cosine scan costs the same whatever the values); family scores random. Searches go "
        "through `storage.search` (what Browse calls) on the in-process index, which opens no "
        "DuckDB connection while the database file is unchanged. "
        f"{query_count} queries (the family names, phrases a reader types, the openings of "
        "real titles; similar papers: as many sample papers), each the median of "
        f"{RUNS} runs with the query embedding not cached; median and p95 over the queries. "
        "Filter: category cs.CL, state inbox, family LLM with score >= 0.3. Baseline, measured "
        "between the queries: one bare storage call (open, count, close).", "",
        "| search | filter | median (ms) | p95 (ms) | target (ms) | met | median / baseline |",
        "|---|---|---:|---:|---:|---|---:|"]
    for (name, narrowed), values in times.items():
        median, p95 = statistics.median(values), float(np.percentile(values, 95))
        target = TARGETS_MS.get(name) or (TARGETS_MS["keyword"] if "filters" in name else None)
        met = "—" if target is None else (
            "yes" if max(median, p95) * 1000 <= target else "**no**")
        lines.append(f"| {name} | {narrowed or 'none'} | {_ms(median)} | {_ms(p95)} | "
                     f"{target or '—'} | {met} | {median / floor:.2f}x |")
    lines.append(f"| baseline: one storage call (open, count, close) | — | {_ms(floor)} | "
                 f"{_ms(float(np.percentile(baseline, 95)))} | — | — | 1.00x |")
    lines += _missed(times, floor)
    lines += [
        "", "Keeping the index fresh: the first query after each event (median of 3; cold: "
        "a hybrid query, the others: a keyword query):", "",
        "| event | first query (ms) | median / baseline |", "|---|---:|---:|",
        f"| cold: the first search of a process loads the index from DuckDB (papers, "
        f"words, vectors) | {_ms(cold)} | {cold / floor:.1f}x |",
        f"| a run stored {HELD_BACK // RUNS} new papers with embeddings and scores (index "
        f"follows incrementally) | {_ms(after_run)} | {after_run / floor:.1f}x |",
        f"| the app queued a paper (states read again) | {_ms(after_queue)} | "
        f"{after_queue / floor:.1f}x |",
        "", f"Setup: {setup['stored']:,} papers stored in {setup['load']:.0f} s, keyword index "
        f"built in {setup['index']:.0f} s (`refresh_search_index`); {HELD_BACK} papers added "
        "during the run. The two \"alone\" rows are the parts semantic and hybrid cannot avoid: "
        "encoding the query, and one pass over 74,602 x 384 floats (115 MB, memory-bound)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
