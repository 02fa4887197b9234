"""Issue 12, item 11: the data folder cannot inject a crontab line or split ``ExecStart``.

A data folder (``OCTET_HOME``, ``--home``, ``OCTET_DB``) with a control character is refused
when settings load (exit 2, one line). Any other folder name survives the crontab line and
the systemd units exactly: the cron line is run through cron's ``%`` rule and a real
``/bin/sh``, the units through ``systemd-analyze verify``. Folder names are in
``tests/fixtures/hostile/input/paths.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.core.settings import Settings, load_settings
from pipeline.stages import schedule
from tests.helpers import REPO, systemd_verify

PATHS = json.loads((REPO / "tests" / "fixtures" / "hostile" / "input" / "paths.json")
                   .read_text(encoding="utf-8"))
FAKE_OCTET = """#!/bin/sh
# Stands in for the octet executable: records the arguments it was given, one per NUL.
printf '%s\\0' "$@" > "$OCTET_TEST_ARGS"
"""


def octet(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "OCTET_CRONTAB": str(tmp_path / "no-crontab"), "PYTHONPATH": str(REPO),
            **env}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, timeout=120, env=full, cwd=tmp_path)


@pytest.mark.parametrize("variable", ["OCTET_HOME", "OCTET_DB"])
def test_newline_in_the_data_folder_is_refused_not_printed(tmp_path, variable):
    result = octet(tmp_path, "schedule", "print", "cron",
                   **{variable: "data\n* * * * * touch PWNED #"})
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and variable in result.stderr
    assert "PWNED" not in result.stdout and schedule.BEGIN not in result.stdout
    assert list(tmp_path.iterdir()) == []  # no folder was created for it either


@pytest.mark.parametrize("name", PATHS["refused"], ids=repr)
def test_every_control_character_in_home_is_refused(tmp_path, capsys, name):
    from pipeline.cli import main
    assert main(["schedule", "print", "systemd", "--home", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--home" in err


def test_schedule_refuses_a_control_character_even_past_settings(tmp_path):
    settings = Settings(home=tmp_path / "data\n* * * * * touch PWNED #")
    with pytest.raises(schedule.ScheduleError):
        schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"))
    with pytest.raises(schedule.ScheduleError):
        schedule.systemd_units(settings, ZoneInfo("UTC"))


def install(folder: Path, monkeypatch) -> Path:
    """A fake octet executable in ``folder``/bin, which the schedule will run."""
    (folder / "bin").mkdir(parents=True)
    (folder / "work").mkdir()
    fake = folder / "bin" / "octet"
    fake.write_text(FAKE_OCTET)
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(folder / "bin" / "python"))
    monkeypatch.setattr(schedule, "working_directory", lambda: folder / "work")
    return fake


@pytest.fixture
def odd_data(tmp_path, monkeypatch, request):
    """A plain installation whose working folder and data folder have an odd name."""
    odd = tmp_path / request.param
    install(tmp_path / "plain", monkeypatch)
    monkeypatch.setattr(schedule, "working_directory", lambda: odd / "work")
    (odd / "work").mkdir(parents=True)
    settings = load_settings({"home": str(odd / "home"), "db": str(odd / "db" / "x.duckdb")},
                             environ={})
    return odd, settings


def cron_shell_command(line: str) -> str:
    """What cron hands to /bin/sh for a crontab line (vixie cron and cronie): the command
    field up to the first unescaped ``%``, each ``\\%`` turned into ``%``."""
    command, kept, escaped = line.split(" ", 5)[5], [], False
    for character in command:
        if escaped:
            kept[-1:] = [character] if character == "%" else [kept[-1], character]
            escaped = False
        elif character == "\\":
            kept.append(character)
            escaped = True
        elif character == "%":
            break
        else:
            kept.append(character)
    return "".join(kept)


@pytest.mark.parametrize("odd_installation", PATHS["names"], indirect=True, ids=repr)
def test_cron_line_runs_octet_on_exactly_that_folder(odd_installation, tmp_path):
    odd, settings = odd_installation
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"))
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    record = tmp_path / "args"
    result = subprocess.run(["/bin/sh", "-c", cron_shell_command(lines[0])], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "OCTET_TEST_ARGS": str(record)})
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    assert record.read_text(encoding="utf-8").split("\0")[:-1] == [
        "--home", str(odd / "home"), "--db", str(odd / "db" / "x.duckdb"), "run"]
    assert not list(tmp_path.rglob("PWNED"))


def systemd_words(text: str) -> list[str]:
    """ExecStart's words as systemd reads Octet's quoting: double-quoted, ``\\\\`` and ``\\"``
    unescaped, then ``%%`` (specifiers) and ``$$`` (variables) each read as one character."""
    words, index = [], 0
    while index < len(text):
        if text[index] == " ":
            index += 1
            continue
        assert text[index] == '"', text
        index, word = index + 1, []
        while text[index] != '"':
            step = 2 if text[index] == "\\" else 1
            word.append(text[index + step - 1])
            index += step
        words.append("".join(word).replace("%%", "%").replace("$$", "$"))
        index += 1
    return words


@pytest.mark.parametrize("odd_data", PATHS["names"], indirect=True, ids=repr)
def test_systemd_units_hold_exactly_that_folder(odd_data, tmp_path):
    odd, settings = odd_data
    units = schedule.systemd_units(settings, ZoneInfo("UTC"))
    service = units["octet.service"]
    exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert systemd_words(exec_line[len("ExecStart="):]) == [
        str(tmp_path / "plain" / "bin" / "octet"), "--home", str(odd / "home"),
        "--db", str(odd / "db" / "x.duckdb"), "run"]
    work_line = next(line for line in service.splitlines() if line.startswith("WorkingDirectory="))
    assert work_line[len("WorkingDirectory="):].replace("%%", "%") == str(odd / "work")
    verify(units, tmp_path)


def verify(units: dict[str, str], tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the units (a no-op where systemd is missing)."""
    if not shutil.which("systemd-analyze"):
        return
    folder = tmp_path / "verify"
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text, encoding="utf-8")
    result = systemd_verify(folder, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("odd_installation", PATHS["names"], indirect=True, ids=repr)
def test_systemd_finds_the_program_in_that_folder(odd_installation, tmp_path):
    """systemd checks that ExecStart's program is executable: it finds the fake octet in the
    odd folder only when it reads the path back exactly. A path systemd refuses outright
    (quotes, backslashes) is refused by Octet first, with the fix."""
    odd, settings = odd_installation
    if any(character in str(odd) for character in "\"'\\"):
        with pytest.raises(schedule.ScheduleError, match="install Octet in another folder"):
            schedule.systemd_units(settings, ZoneInfo("UTC"))
        return
    verify(schedule.systemd_units(settings, ZoneInfo("UTC")), tmp_path)


def test_install_cron_with_a_newline_home_leaves_the_crontab_alone(tmp_path):
    crontab = tmp_path / "bin" / "crontab"
    crontab.parent.mkdir()
    crontab.write_text("#!/bin/sh\ncase \"$1\" in -l) cat \"$(dirname \"$0\")/table\" ;; "
                       "-) cat > \"$(dirname \"$0\")/table\" ;; esac\n")
    crontab.chmod(0o755)
    (tmp_path / "bin" / "table").write_text("MAILTO=me@example.org\n")
    result = octet(tmp_path, "schedule", "install", "cron", OCTET_CRONTAB=str(crontab),
                   OCTET_HOME=str(tmp_path / "data\n* * * * * touch PWNED #"))
    assert result.returncode == 2
    assert (tmp_path / "bin" / "table").read_text() == "MAILTO=me@example.org\n"
