"""Run every ``bench/bench_*.py`` (each ``main()`` returns a Markdown section) and write
BENCHMARKS.md. ``python -m bench day classify`` runs only the named ones and keeps the
other sections from the previous file.

``python -m bench gpu [flags]`` runs ``bench/gpu_summarize.py`` alone (it needs a CUDA GPU
and minutes, so ``python -m bench`` leaves it out) and writes its section; without CUDA it
says so in one line, exits 0 and leaves the file as it was."""
from __future__ import annotations

import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "BENCHMARKS.md"
MARK = "<!-- bench:{} -->"


GPU = "gpu"
"""The section ``bench/gpu_summarize.py`` writes; run only when named."""


def _names() -> list[str]:
    return sorted(path.stem[len("bench_"):] for path in (ROOT / "bench").glob("bench_*.py"))


def _sections() -> list[str]:
    """Every section the file may hold, in the order it holds them."""
    return [*_names(), GPU]


def _previous_sections() -> dict[str, str]:
    if not OUTPUT.exists():
        return {}
    text = OUTPUT.read_text(encoding="utf-8")
    found = re.findall(r"<!-- bench:(\w+) -->\n(.*?)(?=\n<!-- bench:|\Z)", text, re.S)
    return {name: body.rstrip() + "\n" for name, body in found}


def _header() -> str:
    import os
    return ("# Benchmarks\n\n"
            f"Written by `make bench` (`python -m bench`) on "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.python_version()}, "
            f"{os.cpu_count()} CPU cores, {platform.machine()}. The machine is shared and noisy: "
            "each row gives the median of several runs and a baseline measured in the same "
            "run, so read the ratios rather than the absolute times.\n")


_CHILD = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import importlib
section = importlib.import_module("bench.bench_{name}").main()
open({out!r}, "w", encoding="utf-8").write(section)
"""


def _run_one(name: str) -> str:
    """One benchmark in its own process, so no setting (torch threads, caches, peak memory)
    leaks from one benchmark into the next."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "section.md")
        code = _CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), name=name, out=out)
        subprocess.run([sys.executable, "-c", code], check=True)
        return Path(out).read_text(encoding="utf-8").rstrip() + "\n"


def _run_gpu(arguments: list[str]) -> str | None:
    """The GPU section, or None when the script measured nothing (no CUDA)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "section.md"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_summarize.py"), *arguments,
                        "--section", str(out)], check=True)
        return out.read_text(encoding="utf-8").rstrip() + "\n" if out.exists() else None


def _write(fresh: dict[str, str]) -> None:
    # Read the file only now: a benchmark started meanwhile may have written its section.
    sections = {**_previous_sections(), **fresh}
    body = "\n".join(f"{MARK.format(name)}\n{sections[name]}" for name in _sections()
                     if name in sections)
    OUTPUT.write_text(_header() + "\n" + body, encoding="utf-8")
    print(f"wrote {OUTPUT}")


def main(argv: list[str]) -> int:
    if argv[:1] == [GPU]:
        section = _run_gpu(argv[1:])
        if section is not None:
            _write({GPU: section})
        return 0
    wanted = argv or _names()
    unknown = sorted(set(wanted) - set(_names()))
    if unknown:
        print(f"no benchmark named {unknown[0]!r}; choose from {', '.join(_names())}")
        return 2
    fresh = {}
    for name in wanted:
        started = time.perf_counter()
        print(f"bench {name} ...", flush=True)
        fresh[name] = _run_one(name)
        print(f"bench {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    _write(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
