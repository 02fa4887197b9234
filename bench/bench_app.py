"""Speed of the reading app at 75k papers: every page (AppTest), the first semantic search
after the encoder's background warm-up, and the queue, inbox, "for you" and weekly-pick
queries; and the quality of the Inbox's "for you" order (NDCG@10 of simulated readers
against newest first). Search (keyword, semantic, hybrid, similar, filters) is measured in
``bench/bench_search.py``.

Loads the 74,602 real papers of ../shared/data into a fresh database (in chunks, through
``storage.papers.upsert_papers``), adds a reading history, a queue and a run log, and stores
an embedding and family scores for every paper (random unit vectors and scores: the cost
of the queries does not depend on the values) so family grouping, the family filter,
semantic search and similarity are timed at full size.
Baselines measured in the same run: each page on an empty database, and for queries the
floor cost of one storage call (open, count, close).
"""
from __future__ import annotations

from storage.search import BrowseFilter, browse
from storage import search_index
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import median_seconds  # noqa: E402

RUNS = 3
PAGES = (("This week", "ui/this_week.py"), ("Inbox", "ui/inbox.py"),
         ("Queue", "ui/reading_queue.py"), ("Browse", "ui/browse.py"),
         ("Progress", "ui/progress.py"), ("Digest", "ui/digest.py"), ("Runs", "ui/runs.py"))


def load_papers(db_path: Path, rows: list[dict] | None = None) -> tuple[int, float]:
    """Store real papers (all of ../shared/data unless ``rows``) in 10k chunks; returns
    how many and the seconds it took."""
    from storage.papers import upsert_papers
    from bench.common import real_listings
    from tests.helpers import paper_from_row

    rows = real_listings() if rows is None else rows
    started = time.perf_counter()
    for start in range(0, len(rows), 10_000):
        upsert_papers(db_path, [paper_from_row(row) for row in rows[start:start + 10_000]])
    return len(rows), time.perf_counter() - started


def add_history(db_path: Path, ids: list[str]) -> None:
    """A queue of 20, 12 weeks read, 28 dismissed and 30 runs (``ids``: 60 paper ids)."""
    from storage import reading
    from storage.runs import finish_run, start_run

    reading.queue_add(db_path, ids[:20])
    for number, arxiv_id in enumerate(ids[20:32], start=1):
        reading.mark_read(db_path, arxiv_id, f"2026-W{number:02d}", 1 + number % 5,
                          f"notes {number}")
    reading.dismiss(db_path, ids[32:60])
    for _ in range(30):
        run_id = start_run(db_path, "run", ("cs.CL",))
        finish_run(db_path, run_id, {"status": "done", "exit_code": 0, "announced": 500,
                                     "fetched": 500, "new": 480, "errors": []})


def store_families_and_vectors(db_path: Path, ids: list[str] | None = None,
                               known: dict | None = None, seed: int = 0) -> None:
    """An embedding and family scores for every paper (or ``ids``), stored as the classify
    stage does: the vectors in ``known`` where given, else random unit vectors."""
    import numpy as np

    from pipeline.core.families import CODES
    from storage.families import store_results

    generator = np.random.default_rng(seed)
    all_ids = ids if ids is not None else [card["arxiv_id"] for card in browse(
        db_path, BrowseFilter(limit=1_000_000))[0]]
    known = known or {}
    for start in range(0, len(all_ids), 20_000):
        chunk = all_ids[start:start + 20_000]
        vectors = generator.standard_normal((len(chunk), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for row, arxiv_id in enumerate(chunk):
            if arxiv_id in known:
                vectors[row] = known[arxiv_id]
        scores = generator.random((len(chunk), len(CODES))) ** 3
        store_results(db_path, [{"arxiv_id": i, "version": 1, "vector": v}
                                for i, v in zip(chunk, vectors)],
                      [{"arxiv_id": i, "version": 1,
                        "scores": dict(zip(CODES, map(float, row))),
                        "labels": [c for c, x in zip(CODES, row) if x >= 0.5]}
                       for i, row in zip(chunk, scores)], "bench")


def _page_time(page: str) -> float:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    app.run()
    app.switch_page(page)
    app.run()  # first visit: proposes the pick, records the visit, fills caches
    assert not app.exception, [e.value for e in app.exception]
    return median_seconds(app.run)


def _search_time() -> float:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    app.run()
    app.switch_page("ui/browse.py")
    app.run()
    words = iter(["mixture of experts routing", "speech tokenizer", "open vocabulary detection",
                  "masked diffusion language model"])
    # The first search loads the encoder and the search index (its cold cost is in
    # bench_search); the page is then timed as the reader types.
    app.text_input(key="browse_text").input("segment anything").run()
    return median_seconds(lambda: app.text_input(key="browse_text").input(next(words)).run())


def _first_search(db_path: Path) -> dict:
    """A fresh app process (nothing loaded yet): how long the encoder's warm-up, started by
    the app's first run, takes in the background, then the first semantic search."""
    from streamlit.testing.v1 import AppTest

    from pipeline.stages.search import encode_query
    from ui import common

    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    started = time.perf_counter()
    app.run()
    common.warm_encoder(db_path)  # what app.py starts on its first run (a no-op if it did)
    common.wait_for_encoder()
    warm = time.perf_counter() - started
    app.switch_page("ui/browse.py")
    app.run()
    started = time.perf_counter()
    app.text_input(key="browse_text").input("mixture of experts routing").run()
    page = time.perf_counter() - started
    assert not app.exception, [e.value for e in app.exception]
    started = time.perf_counter()
    encode_query("sparse expert gating")  # a query not seen yet: the encoder alone
    return {"warm": warm, "page": page, "encode": time.perf_counter() - started}


def _query_rows(db_path: Path) -> list[tuple[str, float]]:
    from pipeline.stages import ranking
    from storage import reading

    candidates = reading.inbox_candidates(db_path, None)["ids"]
    queries = {
        "one storage call (baseline: open, count, close)": lambda: reading.paper_count(db_path),
        "inbox (newest listing day)": lambda: reading.inbox(db_path, None),
        f"inbox ranked for you ({len(candidates)} papers; the model retrained on 60 actions)":
            lambda: ranking.rank(db_path, candidates),
        "queue (20 papers, in order)": lambda: reading.queue_list(db_path),
        "pick candidates (queue, else recent)": lambda: reading.pick_candidates(db_path),
        "this week's pick": lambda: reading.get_pick(db_path, "2026-W05"),
    }
    return [(name, median_seconds(call, 5)) for name, call in queries.items()]


def main() -> str:
    home = Path(tempfile.mkdtemp(prefix="octet-bench-app-"))
    os.environ["OCTET_HOME"] = str(home / "empty")
    from pipeline.core.settings import load_settings

    empty = {name: _page_time(page) for name, page in PAGES}
    os.environ["OCTET_HOME"] = str(home / "full")
    db_path = load_settings().db_path
    count, load_seconds = load_papers(db_path)

    ids = [card["arxiv_id"] for card in browse(db_path, BrowseFilter(limit=60))[0]]
    add_history(db_path, ids)
    store_families_and_vectors(db_path)
    started = time.perf_counter()
    search_index.refresh_search_index(db_path)
    index_seconds = time.perf_counter() - started
    first = _first_search(db_path)
    full = {name: _page_time(page) for name, page in PAGES}
    search = _search_time()
    queries = _query_rows(db_path)
    return (_report(count, load_seconds, index_seconds, empty, full, search, queries, first)
            + "\n" + _ranking_report())


def _ranking_report() -> str:
    """NDCG@10 of simulated readers' Inboxes (``pipeline.stages.ranking.simulate_readers``)."""
    from collections import defaultdict

    import numpy as np

    from pipeline.stages import ranking

    result = ranking.simulate_readers(ranking.labeled_papers(), inboxes=10, seed=0)
    orders = list(result["mean"])
    lines = ["### The Inbox's \"for you\" order: NDCG@10 of simulated readers", "",
             f"{len(ranking.SIMULATED_TASTES)} simulated readers (each family alone and eight "
             f"pairs) each give {result['ratings']} ratings to papers of the labeled training "
             "split (`pipeline/data/families_read.jsonl`, shipped embeddings, the shipped "
             "head's family scores): each time the top of their own \"for you\" order, "
             "retrained after every rating; 5★ when the paper is of a family they like, else "
             f"1★. Their Inboxes: {result['inboxes'] // len(ranking.SIMULATED_TASTES)} random "
             f"draws each of {result['inbox_size']} held-out papers (never trained on) with at "
             "least one they like; relevance: the paper is of a family they like (read labels). "
             f"Seed 0; {result['inboxes']} Inboxes in all. The model's settings were not tuned "
             "on these papers.", "",
             "| readers | " + " | ".join(orders) + " |",
             "|---|" + "---:|" * len(orders)]
    lines.append("| all | " + " | ".join(f"**{result['mean'][o]:.3f}**" if o == "for you"
                                          else f"{result['mean'][o]:.3f}" for o in orders) + " |")
    per_taste = defaultdict(list)
    for row in result["readers"]:
        per_taste[row["taste"]].append(row)
    for taste, rows in per_taste.items():
        lines.append(f"| {taste} | " + " | ".join(
            f"{np.mean([row[o] for row in rows]):.3f}" for o in orders) + " |")
    gain = result["mean"]["for you"] / max(result["mean"]["newest first"], 1e-9)
    lines += ["", f"\"For you\" after 20 ratings: {result['mean']['for you']:.3f} against "
              f"{result['mean']['newest first']:.3f} for newest first ({gain:.1f}x)."]
    return "\n".join(lines) + "\n"


def _report(count, load_seconds, index_seconds, empty, full, search, queries, first) -> str:
    lines = ["## Reading app at 75k papers (`bench/bench_app.py`)", "",
             f"{count:,} real papers loaded through `upsert_papers` in 10k chunks in "
             f"{load_seconds:.1f} s; the keyword index over all of them built in "
             f"{index_seconds:.1f} s (`refresh_search_index`, once; later runs index only new "
             f"papers). Page times are AppTest reruns (median of {RUNS}); the "
             "baseline is the same page on an empty database. Target: < 1 s per page.", "",
             "| page | papers | median (s) | empty db (s) | ratio |", "|---|---:|---:|---:|---:|"]
    for name in full:
        lines.append(f"| {name} | {count:,} | {full[name]:.3f} | {empty[name]:.3f} | "
                     f"{full[name] / empty[name]:.1f}x |")
    lines.append(f"| Browse, typing a search (keyword + semantic) | {count:,} | {search:.3f} | "
                 f"{empty['Browse']:.3f} | {search / empty['Browse']:.1f}x |")
    lines += ["", "Digest: a rerun (a click on the page) reuses the digest built on the first visit "
              "until the database changes; building it (a second or two at 75k papers) is timed "
              "in the weekly digest section."]
    lines += ["", f"First semantic search of a fresh app process: the encoder (loaded in a "
              f"background thread started with the app's first run, `ui.common.warm_encoder`) "
              f"and the search index (loaded by that run once its page is drawn, "
              f"`ui.common.warm_search`) were ready {first['warm']:.1f} s after the app "
              f"started; the first search then took {first['page']:.2f} s (Browse page) and "
              f"encoding a new query {first['encode'] * 1000:.0f} ms."]
    baseline = queries[0][1]
    lines += ["", "Queries (median of 5; target < 200 ms); baseline: one storage call. Search "
              "and filters: see the search section.", "",
              "| query | papers | median (ms) | ratio to baseline |", "|---|---:|---:|---:|"]
    for name, seconds in queries:
        lines.append(f"| {name} | {count:,} | {seconds * 1000:.1f} | {seconds / baseline:.1f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
