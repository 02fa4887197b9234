"""Fixtures every test gets: an isolated data directory, and the settings that point at it.
Shared helpers and fixture paths are in ``tests.helpers``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


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
    from pipeline.core.settings import load_settings

    return load_settings()
