"""Issue 17: a progress bar (papers/s, and an ETA where the total is known) on the long
commands, on standard error when a person watches it, and nothing under cron or ``--json``.

The commands run as real subprocesses with standard error on a pseudo-terminal (what a
person's shell gives them) or on a pipe (what cron and scripts give them).
"""
from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.helpers import LISTINGS, REPO, real_listings


def octet_env(**extra: str) -> dict:
    """The test's environment (its own OCTET_HOME, no OCTET_* from outside) plus ``extra``."""
    return {**os.environ, "OCTET_STAGES": "none", **extra}


def on_terminal(*args: str, **env: str) -> tuple[int, str, str]:
    """`octet ARGS` with standard error on a pseudo-terminal of 100 columns: (exit code,
    standard output, everything the terminal received)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO,
                               env=octet_env(**env), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)  # the child holds the only writer: its exit ends the reading
    received: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(leader, received))
    reader.start()
    try:
        out, _ = process.communicate(timeout=120)
    finally:
        reader.join(timeout=10)
        os.close(leader)
    return process.returncode, out.decode(), b"".join(received).decode(errors="replace")


def _drain(leader: int, received: list[bytes]) -> None:
    """Read the terminal until its last writer closes it (Linux answers EIO then)."""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            return
        if not data:
            return
        received.append(data)


def on_pipe(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO,
                          env=octet_env(**env), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def small_listing(tmp_path) -> Path:
    """30 real papers of the listings slice as plain JSONL."""
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in real_listings(limit=30)),
                    encoding="utf-8")
    return path


def test_import_on_a_terminal_shows_a_bar_with_papers_per_second():
    code, out, screen = on_terminal("import", str(LISTINGS))
    assert code == 0, screen
    assert "import: " in screen and "papers/s" in screen
    assert "import: 1889 papers" in screen  # the bar's last state stays on screen
    assert out.startswith("octet import: done in ")  # the report is unchanged, on stdout
    assert "new 1889" in out


def test_import_under_cron_prints_no_bar(small_listing):
    imported = on_pipe("import", str(small_listing))
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == ""  # no bar, no carriage return: nothing for cron's mail
    assert imported.stdout.startswith("octet import: done in ") and "new 30" in imported.stdout


def test_import_with_json_on_a_terminal_prints_no_bar(small_listing):
    code, out, screen = on_terminal("import", str(small_listing), "--json")
    assert code == 0, screen
    assert "papers/s" not in screen and "\r" not in screen.replace("\r\n", "\n")
    assert json.loads(out)["new"] == 30


def test_octet_progress_0_turns_the_bar_off_on_a_terminal(small_listing):
    code, out, screen = on_terminal("import", str(small_listing), OCTET_PROGRESS="0")
    assert code == 0, screen
    assert "papers/s" not in screen
    assert "new 30" in out


def test_the_classify_stage_shows_its_total_on_a_terminal(small_listing):
    code, out, screen = on_terminal("import", str(small_listing), OCTET_STAGES="classify")
    assert code == 0, screen
    assert "classify: " in screen and "/30 " in screen and "papers/s" in screen
    assert "classify: 100%" in screen
    assert "classified 30" in out


def test_summarize_and_obsidian_export_show_a_bar_when_forced(small_listing, capsys,
                                                             monkeypatch, tmp_path):
    """OCTET_PROGRESS=1 draws where standard error is no terminal (a multiplexer's)."""
    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["import", str(small_listing)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("OCTET_PROGRESS", "1")
    assert main(["summarize", "--backend", "extractive"]) == 0
    summarized = capsys.readouterr()
    assert "summarize: 100%" in summarized.err and "30/30" in summarized.err
    assert summarized.out.startswith("summarized 30 of 30 pending papers")
    assert main(["export", "obsidian", "--vault", str(tmp_path / "vault"), "--all"]) == 0
    exported = capsys.readouterr()
    assert "export: 100%" in exported.err and "30/30" in exported.err
    assert exported.out.startswith("Exported 30 notes")


def test_nothing_pending_draws_no_bar(small_listing, capsys, monkeypatch):
    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["import", str(small_listing)]) == 0
    monkeypatch.setenv("OCTET_PROGRESS", "1")
    assert main(["summarize", "--backend", "extractive"]) == 0
    capsys.readouterr()
    assert main(["summarize", "--backend", "extractive"]) == 0
    again = capsys.readouterr()
    assert again.err == "" and again.out.startswith("summarized 0 of 0 pending papers")


def test_backfill_on_a_terminal_shows_papers_per_second_an_eta_and_shards_merged(small_listing):
    code, out, screen = on_terminal("backfill", str(small_listing), "--stages", "summarize",
                                    "--shard-size", "10")
    assert code == 0, screen
    assert "backfill (local): " in screen and "/30" in screen and "papers/s" in screen
    assert "3/3 shards merged" in screen
    assert "merged 3 shards, 30 papers" in out
