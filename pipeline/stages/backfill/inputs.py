"""The input of a backfill: FILE as a list of files, and the papers they hold, filtered."""
from __future__ import annotations

import glob
from datetime import date
from pathlib import Path
from typing import Callable

from pipeline.core.errors import UsageError
from pipeline.core.paper import Paper

SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.xz", ".json.xz")
"""The files a directory contributes: Octet JSONL and arXiv's snapshot (JSON lines)."""


def input_files(source: str) -> list[Path]:
    """FILE, a directory of shards or a glob, as a sorted list of files."""
    if any(mark in source for mark in "*?["):
        files = sorted(Path(name) for name in glob.glob(source, recursive=True))
        files = [path for path in files if path.is_file()]
        if not files:
            raise UsageError(f"no file matches {source}; check the pattern (quote it so the "
                             "shell leaves it to octet)")
        return files
    path = Path(source)
    if path.is_dir():
        files = sorted(item for item in path.iterdir()
                       if item.is_file() and item.name.endswith(SUFFIXES))
        if not files:
            raise UsageError(f"{source} holds no .jsonl, .json, .gz or .xz file; give a "
                             "file, a folder of shards or a glob")
        return files
    if not path.is_file():
        raise UsageError(f"{source} does not exist; give an arXiv metadata snapshot or an "
                         "Octet .jsonl file (.gz/.xz ok), a folder of them or a glob")
    return [path]


def paper_filter(categories: tuple[str, ...], since: date | None,
                 until: date | None) -> Callable[[Paper], bool] | None:
    """Whether a paper is kept: in one of ``categories`` and first submitted in
    [since, until] (a paper with no submission date is left out when a day is given)."""
    if not (categories or since or until):
        return None
    wanted = set(categories)

    def keep(paper: Paper) -> bool:
        if wanted and not wanted & set(paper.categories):
            return False
        if since or until:
            day = paper.published.date() if paper.published else None
            if day is None or (since and day < since) or (until and day > until):
                return False
        return True
    return keep
