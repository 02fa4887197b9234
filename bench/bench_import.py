"""Bulk import of all 74,602 shared papers through ``octet import FILE``, in both formats
it reads (Octet JSONL, here .jsonl.xz, and arXiv's metadata snapshot JSON lines), then the
classify stage's throughput on that 75k-paper database against the bare encoder."""
from __future__ import annotations

import json
import lzma
import os
import statistics
import tempfile
import time
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

from bench.common import median_seconds, octet, table
from bench.common import LISTINGS

REPEATS = 3
CLASSIFY_SAMPLE = 256
TARGET_STORE_SECONDS = 30.0


def _snapshot_record(row: dict) -> dict:
    """One shared listing row in the layout of arXiv's public metadata snapshot."""
    day = datetime.fromisoformat(row["listed_date"]).replace(tzinfo=timezone.utc)
    return {"id": row["id"].split("v")[0], "submitter": None,
            "authors": ", ".join(row["authors"]), "title": row["title"],
            "comments": row.get("comment"), "journal-ref": None, "doi": None,
            "categories": " ".join(row["categories"]), "abstract": row["abstract"],
            "versions": [{"version": "v1", "created": format_datetime(day)}],
            "update_date": row["listed_date"]}


def _write_snapshot(folder: Path) -> Path:
    path = folder / "arxiv-metadata-snapshot.jsonl"
    with lzma.open(LISTINGS, "rt", encoding="utf-8") as source, \
            path.open("w", encoding="utf-8") as target:
        for line in source:
            target.write(json.dumps(_snapshot_record(json.loads(line))) + "\n")
    return path


def _raw_read(path: Path) -> int:
    """Baseline: decompress and ``json.loads`` every line, nothing else."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return sum(1 for line in handle if json.loads(line))


def _imports(path: Path) -> list[dict]:
    runs = []
    for _ in range(REPEATS):
        home = tempfile.mkdtemp(prefix="octet-bench-import-")
        result = octet(["import", str(path), "--json"], {"OCTET_HOME": home,
                                                          "OCTET_STAGES": "none"})
        result["report"] = json.loads(result["stdout"])
        result["home"] = home
        runs.append(result)
    return runs


def _classify_rates(home: str) -> tuple[float, float]:
    """Papers/s of the classify stage on the imported database, and of the bare encoder
    on the same number of that database's texts (each repeat takes the next pending)."""
    os.environ["OCTET_HOME"] = home
    from pipeline.stages.families import classify_pending, current_head
    from pipeline.core.settings import load_settings
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts
    from storage.families import pending_papers

    settings = load_settings()
    sample = pending_papers(settings.db_path, current_head(settings.home).version,
                            limit=CLASSIFY_SAMPLE)
    texts = [paper_text(row["title"], row["abstract"]) for row in sample]
    embed_texts(texts[:8])  # the model loads outside the timings
    stage, bare = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        done = classify_pending(settings, limit=CLASSIFY_SAMPLE)["classified"]
        stage.append(done / (time.perf_counter() - started))
        bare.append(CLASSIFY_SAMPLE / median_seconds(lambda: embed_texts(texts), 1))
    return statistics.median(stage), statistics.median(bare)


def _row(label: str, runs: list[dict], baseline: float) -> list:
    papers = runs[0]["report"]["new"]
    store = statistics.median(run["report"]["stages"]["store"]["seconds"] for run in runs)
    wall = statistics.median(run["wall_seconds"] for run in runs)
    rss = statistics.median(run["peak_rss_mb"] for run in runs)
    met = "yes" if store <= TARGET_STORE_SECONDS else "**no**"
    return [label, f"{papers:,}", f"{store:.1f}", f"{wall:.1f}", f"{baseline:.1f}",
            f"{store / baseline:.1f}x", f"{rss:.0f} MB", met]


def main() -> str:
    with tempfile.TemporaryDirectory() as folder:
        snapshot = _write_snapshot(Path(folder))
        octet_runs, snapshot_runs = _imports(LISTINGS), _imports(snapshot)
        octet_read = median_seconds(lambda: _raw_read(LISTINGS), REPEATS)
        snapshot_read = median_seconds(lambda: _raw_read(snapshot), REPEATS)
    stage_rate, encoder_rate = _classify_rates(octet_runs[-1]["home"])
    rows = [
        _row("`OCTET_STAGES=none octet import listings.jsonl.xz` (Octet JSONL, xz)",
             octet_runs, octet_read),
        _row("`OCTET_STAGES=none octet import arxiv-metadata-snapshot.jsonl` (snapshot)",
             snapshot_runs, snapshot_read),
    ]
    classify_rows = [[f"classify stage on the imported database ({CLASSIFY_SAMPLE} pending "
                      "papers: read, encode, heads, write)", f"{stage_rate:.1f}",
                      f"{stage_rate / encoder_rate:.2f}x"],
                     [f"bare encoder on {CLASSIFY_SAMPLE} of its texts (baseline)",
                      f"{encoder_rate:.1f}", "1.00x"]]
    hours = octet_runs[0]["report"]["new"] / stage_rate / 3600
    return (
        "## Bulk import (issue 7)\n\n"
        f"`python -m bench import`: all papers of `../shared/data` through `octet import`, "
        f"each format in a fresh data directory and process, median of {REPEATS}. *store s* "
        "is the import's own report (read, check, store); *wall s* includes the interpreter. "
        "Baseline: only decompressing and `json.loads` of every line of the same file, in "
        f"the same run. Target: ≤ {TARGET_STORE_SECONDS:.0f} s to store.\n\n"
        + table(["command", "papers", "store s", "wall s", "baseline s", "ratio", "peak RSS",
                 "≤ 30 s"], rows)
        + "\nClassification after the import (in-process, 75k papers stored, median of "
          f"{REPEATS}):\n\n" + table(["what", "papers/s", "vs bare encoder"], classify_rows)
        + f"\nAt that rate the first `octet run` after importing all "
          f"{octet_runs[0]['report']['new']:,} papers classifies them in about {hours:.1f} h "
          "on this 2-core CPU (the encoder is the cost; see the classifier section).\n")
