"""The schedule: arXiv's calendar in the reader's zone, cron and systemd, install/remove."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.core import weeks
from pipeline.stages import schedule
from pipeline.cli import main
from tests.helpers import systemd_verify

ZONES = ["Europe/Berlin", "America/Los_Angeles", "America/New_York", "Asia/Tokyo",
         "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland", "UTC", "America/Sao_Paulo"]
START = date(2026, 1, 1)

FAKE_CRONTAB = """#!/bin/sh
# Stands in for crontab(1): keeps the table in a file beside this script.
store="$(dirname "$0")/crontab.txt"
case "$1" in
  -l) if [ -f "$store" ]; then cat "$store"; else echo "no crontab for tester" >&2; exit 1; fi ;;
  -) cat > "$store" ;;
  *) echo "unexpected $*" >&2; exit 2 ;;
esac
"""

FAKE_SYSTEMCTL = """#!/bin/sh
# Stands in for systemctl(1): records each call.
echo "$*" >> "$(dirname "$0")/systemctl.log"
"""


def announcements(start: date, end: date) -> list[datetime]:
    """Every announcement instant (20:00 US Eastern, Sunday to Thursday), in UTC."""
    days = (start + timedelta(days=n) for n in range((end - start).days))
    return [datetime.combine(day, time(20), schedule.ARXIV_ZONE).astimezone(timezone.utc)
            for day in days if schedule.cron_weekday(day) in schedule.ANNOUNCEMENT_DAYS]


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("delay", [0, 30, 300])
def test_each_announcement_is_followed_by_exactly_one_run(zone_name, delay):
    zone = ZoneInfo(zone_name)
    when = schedule.run_time(zone, delay, START)
    end = START + timedelta(days=360)
    runs = [datetime.combine(day, time(when.hour, when.minute), zone).astimezone(timezone.utc)
            for day in (START + timedelta(days=n) for n in range(3, 357))
            if schedule.cron_weekday(day) in when.weekdays]
    marks = announcements(START, end)
    for run in runs:
        before = [mark for mark in marks if mark <= run]
        gap = run - before[-1]
        assert timedelta(minutes=delay) <= gap <= timedelta(minutes=delay + when.spread_minutes)
        # the run after this one comes after the next announcement: no night without news
        later = [other for other in runs if other > run]
        if later:
            assert any(run < mark <= later[0] for mark in marks)
    for mark in marks[5:-5]:  # and no announcement goes without a run
        assert any(timedelta(minutes=delay) <= run - mark
                   <= timedelta(minutes=delay + when.spread_minutes) for run in runs)
    assert len(runs) >= 250


def test_known_zones():
    berlin = schedule.run_time(ZoneInfo("Europe/Berlin"), 30, START)
    assert (berlin.clock(), berlin.days(), berlin.spread_minutes) == ("02:30", "Mon-Fri", 60)
    pacific = schedule.run_time(ZoneInfo("America/Los_Angeles"), 30, START)
    assert (pacific.clock(), pacific.days(), pacific.spread_minutes) == ("17:30", "Sun-Thu", 0)
    tokyo = schedule.run_time(ZoneInfo("Asia/Tokyo"), 30, START)
    assert (tokyo.clock(), schedule.cron_days(tokyo.weekdays)) == ("10:30", "1-5")
    assert schedule.cron_days((0, 1, 2, 3, 6)) == "0-3,6"
    assert schedule.systemd_days((0, 1, 2, 3, 4)) == "Mon..Thu,Sun"


# ---- cron ------------------------------------------------------------------------------------

def cron_line(block: str) -> str:
    return next(line for line in block.splitlines() if line and not line.startswith("#"))


def test_cron_block_runs_octet_on_this_data_dir(settings):
    block = schedule.cron_block(settings, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo"))
    assert block.startswith(schedule.BEGIN) and block.rstrip().endswith(schedule.END)
    line = cron_line(block)
    minute, hour, day, month, weekdays, command = line.split(" ", 5)
    assert (minute, hour, day, month, weekdays) == ("30", "2", "*", "*", "1-5")
    assert shlex.join(["--home", str(settings.home), "run"]) in command
    assert "10:30 Mon-Fri in your time zone, Asia/Tokyo" in block


def test_cron_command_prints_only_when_the_run_fails(settings, tmp_path):
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"))
    command = cron_line(block).split(" ", 5)[5].replace("\\%", "%")
    job = shlex.join(schedule.job_command(settings))
    assert job in command
    for script, expected in (("echo fine; exit 0", ""), ("echo boom 100%; exit 3", "boom 100%\n")):
        result = subprocess.run(["/bin/sh", "-c", command.replace(job, f"sh -c {shlex.quote(script)}")],
                                capture_output=True, text=True, timeout=30)
        assert result.stdout == expected


def test_install_and_remove_cron_keep_other_lines(settings, fake_crontab, capsys):
    fake_crontab.write_text("MAILTO=me@example.org\n0 5 * * * backup\n")
    assert main(["schedule", "install", "cron", "--dry-run"]) == 0
    assert schedule.BEGIN in capsys.readouterr().out
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n0 5 * * * backup\n"
    assert main(["schedule", "install", "cron"]) == 0
    assert main(["schedule", "install", "cron", "--delay", "45"]) == 0  # replaces, not appends
    installed = fake_crontab.read_text()
    assert installed.startswith("MAILTO=me@example.org\n0 5 * * * backup\n")
    when = schedule.run_time(weeks.system_zone(), 45)
    assert installed.count(schedule.BEGIN) == 1
    assert cron_line(installed.split(schedule.BEGIN)[1]).startswith(f"{when.minute} {when.hour} ")
    capsys.readouterr()
    assert main(["schedule", "remove", "cron"]) == 0
    assert "Removed the Octet block" in capsys.readouterr().out
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n0 5 * * * backup\n"


def test_install_cron_on_an_empty_crontab(settings, fake_crontab):
    assert main(["schedule", "install", "cron"]) == 0
    assert fake_crontab.read_text().startswith(schedule.BEGIN)


def test_missing_crontab_names_the_fix(settings, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OCTET_CRONTAB", str(tmp_path / "no-such-crontab"))
    assert main(["schedule", "install", "cron"]) == 2
    assert "is not installed" in capsys.readouterr().err


# ---- systemd ---------------------------------------------------------------------------------

def test_units_use_arxiv_time_and_this_installation(settings):
    units = schedule.systemd_units(settings, ZoneInfo("Europe/Berlin"))
    timer, service = units["octet.timer"], units["octet.service"]
    assert "OnCalendar=Mon..Thu,Sun *-*-* 20:30:00 America/New_York" in timer
    assert "02:30 Mon-Fri in your time zone (Europe/Berlin)" in timer
    assert "Persistent=true" in timer and "WantedBy=timers.target" in timer
    exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_line[len("ExecStart="):]) == schedule.job_command(settings)
    assert "Type=oneshot" in service


def test_systemd_quoting():
    assert schedule.systemd_quote('/a b/100%$x"\\') == '"/a b/100%%$$x\\"\\\\"'


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_user_instance_accepts_the_units(settings, fake_systemd, tmp_path, capsys):
    assert main(["schedule", "install", "systemd", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert not (tmp_path / "units").exists()
    assert "systemctl --user enable --now octet.timer" in printed
    folder = tmp_path / "verify"
    folder.mkdir()
    for name, text in schedule.systemd_units(settings, weeks.reader_zone(settings.timezone)).items():
        assert f"# ---- {tmp_path / 'units' / name} ----\n{text}" in printed
        (folder / name).write_text(text)
    result = systemd_verify(folder, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_timer_elapses_after_announcements_only(settings):
    timer = schedule.systemd_units(settings, ZoneInfo("UTC"))["octet.timer"]
    spec = re.search(r"^OnCalendar=(.*)$", timer, re.MULTILINE).group(1)
    result = subprocess.run(["systemd-analyze", "calendar", "--iterations", "10", spec],
                            capture_output=True, text=True, timeout=60, env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    stamps = re.findall(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC", result.stdout)
    assert len(stamps) == 10
    for stamp in stamps:
        moment = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
        eastern = moment.astimezone(schedule.ARXIV_ZONE)
        assert (eastern.hour, eastern.minute) == (20, 30)
        assert schedule.cron_weekday(eastern.date()) in schedule.ANNOUNCEMENT_DAYS


def test_install_and_remove_systemd(settings, fake_systemd, capsys):
    assert main(["schedule", "install", "systemd"]) == 0
    units = fake_systemd / "units"
    assert sorted(path.name for path in units.iterdir()) == ["octet.service", "octet.timer"]
    log = (fake_systemd / "bin" / "systemctl.log").read_text().splitlines()
    assert log == ["--user daemon-reload", "--user enable --now octet.timer"]
    assert "Enabled octet.timer" in capsys.readouterr().out
    assert main(["schedule", "remove", "systemd"]) == 0
    assert list(units.iterdir()) == []
    log = (fake_systemd / "bin" / "systemctl.log").read_text().splitlines()
    assert log[2:] == ["--user disable --now octet.timer", "--user daemon-reload"]
    assert main(["schedule", "remove"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_systemctl_can_be_skipped(settings, fake_systemd, monkeypatch, capsys):
    monkeypatch.setenv("OCTET_SYSTEMCTL", "")
    assert main(["schedule", "install", "systemd"]) == 0
    assert "systemctl was skipped" in capsys.readouterr().out
    assert (fake_systemd / "units" / "octet.timer").is_file()
    assert not (fake_systemd / "bin" / "systemctl.log").exists()


def test_print_uses_the_reader_zone(settings, monkeypatch, capsys):
    monkeypatch.setenv("OCTET_TIMEZONE", "Asia/Kolkata")
    assert main(["schedule", "print", "systemd"]) == 0
    assert "(Asia/Kolkata)" in capsys.readouterr().out
    assert main(["schedule", "print", "cron", "--delay", "900"]) == 2
    assert "--delay 900 is out of range" in capsys.readouterr().err
