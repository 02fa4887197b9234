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


# ---- the schedule's stand-ins for crontab and systemctl (tests never touch the real ones) ---

@pytest.fixture
def fake_crontab(tmp_path, monkeypatch) -> Path:
    from tests.test_schedule import FAKE_CRONTAB

    script = tmp_path / "bin" / "crontab"
    script.parent.mkdir()
    script.write_text(FAKE_CRONTAB)
    script.chmod(0o755)
    monkeypatch.setenv("OCTET_CRONTAB", str(script))
    return script.parent / "crontab.txt"


@pytest.fixture
def fake_systemd(tmp_path, monkeypatch) -> Path:
    from tests.test_schedule import FAKE_SYSTEMCTL

    script = tmp_path / "bin" / "systemctl"
    script.parent.mkdir(exist_ok=True)
    script.write_text(FAKE_SYSTEMCTL)
    script.chmod(0o755)
    monkeypatch.setenv("OCTET_SYSTEMCTL", str(script))
    monkeypatch.setenv("OCTET_SYSTEMD_DIR", str(tmp_path / "units"))
    return tmp_path


@pytest.fixture
def odd_installation(tmp_path, monkeypatch, request):
    """An installation whose executable, working folder and data folder have an odd name."""
    from pipeline.core.settings import load_settings
    from tests.test_hardening_input_schedule import install

    odd = tmp_path / request.param
    install(odd, monkeypatch)
    settings = load_settings({"home": str(odd / "home"), "db": str(odd / "db" / "x.duckdb")},
                             environ={})
    return odd, settings


# ---- backfills: the input and the daily stages' rows, computed once per session ------

@pytest.fixture(scope="session")
def papers_file(tmp_path_factory) -> Path:
    """The first ``BACKFILL_PAPERS`` papers of the listings slice, as an Octet JSONL file."""
    from tests.helpers import BACKFILL_PAPERS, real_listings, write_input

    return write_input(tmp_path_factory.mktemp("input"), real_listings(limit=BACKFILL_PAPERS))


@pytest.fixture(scope="session")
def daily_rows(papers_file, tmp_path_factory) -> dict[str, dict]:
    """The same papers through `octet import`, whose stages are the daily job's: what a
    backfill on either engine must equal (computed once per test session)."""
    from tests.helpers import octet, result_rows

    home = tmp_path_factory.mktemp("daily")
    octet(home, "import", str(papers_file), "--json")
    return result_rows(home / "octet.duckdb")


# ---- the real browser: how long an expectation waits ------------------------------------

@pytest.fixture(autouse=True, scope="session")
def browser_expectations_wait_like_pages():
    """Playwright's ``expect`` waits 5 s by default, not the pages' 30 s: a first Streamlit
    render on a busy machine (two test files side by side) takes longer than 5 s. A wait
    bounds how long to look for something; it is not a measure of speed."""
    try:
        from playwright.sync_api import expect
    except ImportError:  # the app's browser tests then fail on their own import
        return
    expect.set_options(timeout=30_000)
