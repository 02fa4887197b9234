"""Helpers shared by the benchmarks: timing, medians, child processes with peak memory."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OCTET_SHARED", ROOT.parent / "shared"))
"""The development data beside the clone (benchmarks only; tests read tests/fixtures/)."""
LISTINGS = SHARED / "data" / "arxiv_listings_cs_2025_2026.jsonl.xz"
"""All 74,602 papers of the daily listings, for benchmarks at scale."""


def real_listings(limit: int | None = None, day: str | None = None) -> list[dict]:
    """Real papers of ../shared/data's listings (read once per process)."""
    from tests.helpers import listing_rows

    return listing_rows(LISTINGS, limit, day)

# Peak RSS from VmHWM, not getrusage: Linux carries ru_maxrss across execve, so a child of a
# big benchmark process would report its parent's peak.
_CHILD = """
import json, sys, time
sys.argv = ["octet"] + sys.argv[1:]
from pipeline.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(json.dumps({"code": code, "seconds": seconds, "peak_rss_mb": int(status) / 1024,
                  "torch_loaded": "torch" in sys.modules}), file=sys.stderr)
"""


def octet(args: list[str], env: dict[str, str]) -> dict:
    """Run ``octet ARGS`` in a fresh process: its exit code, seconds inside ``main``,
    ``wall_seconds`` of the whole process (interpreter and imports included), peak RSS,
    whether torch was imported, and its ``stdout``."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, *args], env={**os.environ, **env,
                            "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    last = result.stderr.strip().splitlines()[-1]
    measured = json.loads(last)
    if measured["code"] != 0:
        raise RuntimeError(f"octet {' '.join(args)} exited {measured['code']}: {result.stderr}")
    return {**measured, "wall_seconds": wall, "stdout": result.stdout}


def median_seconds(function: Callable[[], object], repeats: int = 3,
                   before: Callable[[], object] | None = None) -> float:
    """Median wall time of ``function`` over ``repeats`` calls (``before`` runs untimed)."""
    times = []
    for _ in range(repeats):
        if before:
            before()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
