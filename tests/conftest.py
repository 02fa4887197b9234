"""Shared fixtures: an isolated data directory per test, and the real data in ../shared."""
from __future__ import annotations

import json
import lzma
import os
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OCTET_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "arxiv"
LISTINGS = SHARED / "data" / "arxiv_listings_cs_2025_2026.jsonl.xz"
LABELED_DEV = SHARED / "data" / "labeled_dev.jsonl"


@pytest.fixture(autouse=True)
def octet_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data directory; no OCTET_* setting leaks in from outside."""
    for key in list(os.environ):
        if key.startswith("OCTET_"):
            monkeypatch.delenv(key)
    home = tmp_path / "octet-home"
    monkeypatch.setenv("OCTET_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def settings(octet_home):
    from pipeline.config import load_settings

    return load_settings()


@lru_cache(maxsize=1)
def _listings() -> tuple[dict, ...]:
    with lzma.open(LISTINGS, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


def real_listings(limit: int | None = None, day: str | None = None) -> list[dict]:
    """Real papers from ../shared/data (the whole file is read once per test session)."""
    rows = [row for row in _listings() if day is None or row["listed_date"] == day]
    return rows[:limit] if limit else rows
