"""Issue 16, item 5: `octet schedule install|print cron|systemd --digest "Mon 08:00"` sends
the weekly digest at that time in the reader's zone, next to the daily run: a second line in
the crontab block (converted to cron's zone, never early), or octet-digest.service/.timer."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.cli import main
from pipeline.core import weeks
from pipeline.core.settings import Settings
from pipeline.stages import schedule
from tests.test_hardening_input_schedule import (PATHS, cron_shell_command, systemd_words)

START = date(2026, 1, 1)
MONDAY_8 = schedule.DigestTime(weekday=1, hour=8, minute=0)


def command_lines(block: str) -> list[str]:
    """The crontab lines that run something (not comments)."""
    return [line for line in block.splitlines() if line and not line.startswith("#")]


# ---- --digest "DAY HH:MM" --------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Mon 08:00", (1, 8, 0)), ("mon 8:00", (1, 8, 0)), ("MONDAY 08:00", (1, 8, 0)),
    ("  Sun   23:59 ", (0, 23, 59)), ("saturday 00:05", (6, 0, 5)), ("Thu 12:30", (4, 12, 30))])
def test_digest_time_is_parsed(text, expected):
    parsed = schedule.parse_digest_time(text)
    assert (parsed.weekday, parsed.hour, parsed.minute) == expected


@pytest.mark.parametrize("text", ["Mo 08:00", "Mon 24:00", "Mon 8", "Mon 08:60", "", "Mon08:00",
                                  "08:00 Mon", "Tues 08:00", "Mon 8am", "Lun 08:00",
                                  "Mon 08:00\n* * * * * touch PWNED"])
def test_a_bad_digest_time_is_one_line_naming_the_format(settings, capsys, text):
    assert main(["schedule", "print", "cron", "--digest", text]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert 'DAY HH:MM' in captured.err and '"Mon 08:00"' in captured.err


# ---- the time in cron's zone -----------------------------------------------------------------

def test_tokyo_monday_morning_is_sunday_night_in_utc():
    when = schedule.digest_cron_time(MONDAY_8, ZoneInfo("Asia/Tokyo"), ZoneInfo("UTC"), START)
    assert (when.clock(), when.weekdays, when.spread_minutes) == ("23:00", (0,), 0)


def test_berlin_digest_in_utc_takes_the_later_winter_time():
    when = schedule.digest_cron_time(MONDAY_8, ZoneInfo("Europe/Berlin"), ZoneInfo("UTC"), START)
    assert (when.clock(), when.weekdays, when.spread_minutes) == ("07:00", (1,), 60)


PAIRS = [("Asia/Tokyo", "UTC"), ("Europe/Berlin", "UTC"), ("Europe/Berlin", "America/New_York"),
         ("America/Los_Angeles", "Europe/London"), ("Australia/Sydney", "Europe/Berlin"),
         ("Pacific/Auckland", "America/Sao_Paulo"), ("UTC", "Asia/Kolkata")]


@pytest.mark.parametrize("reader_name, cron_name", PAIRS)
@pytest.mark.parametrize("text", ["Mon 08:00", "Sun 23:30", "Fri 18:45", "Mon 00:15"])
def test_the_digest_goes_out_once_a_week_never_before_the_reader_time(reader_name, cron_name, text):
    reader, cron_zone = ZoneInfo(reader_name), ZoneInfo(cron_name)
    digest = schedule.parse_digest_time(text)
    when = schedule.digest_cron_time(digest, reader, cron_zone, START)
    assert len(when.weekdays) == 1
    days = [START + timedelta(days=number) for number in range(3, 357)]
    fired = [datetime.combine(day, time(when.hour, when.minute), cron_zone) for day in days
             if schedule.cron_weekday(day) in when.weekdays]
    wanted = [datetime.combine(day, time(digest.hour, digest.minute), reader) for day in days
              if schedule.cron_weekday(day) == digest.weekday]
    for moment in wanted[1:-1]:
        after = [run - moment for run in fired if run >= moment]
        assert timedelta(0) <= after[0] <= timedelta(minutes=when.spread_minutes), moment
        assert after[0] < timedelta(days=1)  # this week's digest, not next week's
    assert abs(len(fired) - len(wanted)) <= 1 and len(wanted) >= 50


# ---- cron ------------------------------------------------------------------------------------

def test_cron_block_with_the_digest_in_tokyo_for_a_utc_cron(settings):
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo"), digest=MONDAY_8)
    assert block.startswith(schedule.BEGIN) and block.rstrip().endswith(schedule.END)
    run, digest = command_lines(block)
    assert run.split(" ", 5)[:5] == ["30", "1", "*", "*", "1-5"]
    assert digest.split(" ", 5)[:5] == ["0", "23", "*", "*", "0"]
    assert shlex.join(["--home", str(settings.home), "digest", "--send"]) in digest
    assert "# The weekly digest (`octet digest --send`): Mon 08:00 in your time zone, Asia/Tokyo." \
        in block
    assert "# That is Sun 23:00 in UTC (the zone cron uses)." in block
    assert "up to" not in block.split(run)[1]  # Tokyo and UTC keep their clocks all year


def test_cron_block_says_how_much_later_the_digest_can_be(settings):
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"),
                                digest=MONDAY_8)
    assert command_lines(block)[1].startswith("0 7 * * 1 ")
    assert "it goes out up to 60 min after 08:00 your time" in block


def test_cron_block_without_the_digest_has_the_run_only(settings):
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"))
    assert len(command_lines(block)) == 1 and "digest" not in block


def test_the_digest_line_prints_only_when_sending_fails(settings):
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"), digest=MONDAY_8)
    command = command_lines(block)[1].split(" ", 5)[5].replace("'\\%'", "'%'")
    job = shlex.join(schedule.digest_command(settings))
    assert job in command
    for script, expected in (("echo sent; exit 0", ""), ("echo no smtp 100%; exit 3",
                                                         "no smtp 100%\n")):
        result = subprocess.run(["/bin/sh", "-c", command.replace(job, f"sh -c {shlex.quote(script)}")],
                                capture_output=True, text=True, timeout=30)
        assert result.stdout == expected


def test_install_print_reinstall_and_remove_cron_with_the_digest(settings, fake_crontab, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv("OCTET_TIMEZONE", "Asia/Tokyo")
    fake_crontab.write_text("MAILTO=me@example.org\n0 5 * * * backup\n")
    assert main(["schedule", "print", "cron", "--digest", "Mon 08:00"]) == 0
    printed = capsys.readouterr().out
    assert "Mon 08:00 in your time zone, Asia/Tokyo" in printed
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n0 5 * * * backup\n"

    assert main(["schedule", "install", "cron", "--digest", "mon 08:00"]) == 0
    captured = capsys.readouterr()
    assert "the digest on Mon 08:00 your time" in captured.out
    assert "nowhere to go" in captured.err  # no smtp_url/digest_to/webhook_url yet
    installed = fake_crontab.read_text()
    assert installed.startswith("MAILTO=me@example.org\n0 5 * * * backup\n")
    block = installed.split("backup\n", 1)[1].strip("\n") + "\n"
    assert block == printed  # print shows exactly what install writes
    when = schedule.digest_cron_time(MONDAY_8, ZoneInfo("Asia/Tokyo"), weeks.system_zone())
    assert command_lines(block)[1].startswith(
        f"{when.minute} {when.hour} * * {schedule.cron_days(when.weekdays)} ")

    assert main(["schedule", "install", "cron"]) == 0  # reinstalled without: the digest goes
    installed = fake_crontab.read_text()
    assert installed.count(schedule.BEGIN) == 1 and "digest" not in installed
    assert len(command_lines(installed)) == 3  # MAILTO, backup, the run

    assert main(["schedule", "install", "cron", "--digest", "Fri 17:30"]) == 0
    assert main(["schedule", "remove", "cron"]) == 0
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n0 5 * * * backup\n"


def test_no_note_when_the_digest_has_somewhere_to_go(settings, fake_crontab, capsys, monkeypatch):
    monkeypatch.setenv("OCTET_WEBHOOK_URL", "https://hooks.example.org/services/T0/B0/secret")
    assert main(["schedule", "install", "cron", "--digest", "Mon 08:00"]) == 0
    assert capsys.readouterr().err == ""


# ---- hostile data folders --------------------------------------------------------------------

@pytest.mark.parametrize("odd_installation", PATHS["names"], indirect=True, ids=repr)
def test_digest_line_sends_on_exactly_that_folder(odd_installation, tmp_path):
    odd, settings = odd_installation
    block = schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo"), digest=MONDAY_8)
    lines = command_lines(block)
    assert len(lines) == 2
    record = tmp_path / "args"
    result = subprocess.run(["/bin/sh", "-c", cron_shell_command(lines[1])], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "OCTET_TEST_ARGS": str(record)})
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    assert record.read_text(encoding="utf-8").split("\0")[:-1] == [
        "--home", str(odd / "home"), "--db", str(odd / "db" / "x.duckdb"), "digest", "--send"]
    assert not list(tmp_path.rglob("PWNED"))
    if not any(character in str(odd) for character in "\"'\\"):  # systemd refuses those
        service = schedule.systemd_units(settings, ZoneInfo("UTC"), digest=MONDAY_8)[
            schedule.DIGEST_SERVICE]
        exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
        assert systemd_words(exec_line[len("ExecStart="):])[1:] == [
            "--home", str(odd / "home"), "--db", str(odd / "db" / "x.duckdb"), "digest", "--send"]


def test_a_control_character_in_home_is_refused_with_the_digest_too(tmp_path, capsys):
    settings = Settings(home=tmp_path / "data\n* * * * * touch PWNED #")
    with pytest.raises(schedule.ScheduleError):
        schedule.cron_block(settings, ZoneInfo("UTC"), ZoneInfo("UTC"), digest=MONDAY_8)
    with pytest.raises(schedule.ScheduleError):
        schedule.systemd_units(settings, ZoneInfo("UTC"), digest=MONDAY_8)
    assert main(["schedule", "print", "cron", "--digest", "Mon 08:00",
                 "--home", str(tmp_path / "data\n0 * * * * touch PWNED")]) == 2
    captured = capsys.readouterr()
    assert "PWNED" not in captured.out and len(captured.err.strip().splitlines()) == 1


# ---- systemd ---------------------------------------------------------------------------------

def calendar_of(timer: str) -> str:
    return re.search(r"^OnCalendar=(.*)$", timer, re.MULTILINE).group(1)


def test_digest_units_name_the_reader_zone(settings):
    units = schedule.systemd_units(settings, ZoneInfo("Europe/Berlin"), digest=MONDAY_8)
    assert list(units) == ["octet.service", "octet.timer", "octet-digest.service",
                           "octet-digest.timer"]
    timer, service = units["octet-digest.timer"], units["octet-digest.service"]
    assert calendar_of(timer) == "Mon *-*-* 08:00:00 Europe/Berlin"
    assert "Persistent=true" in timer and "WantedBy=timers.target" in timer
    exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_line[len("ExecStart="):]) == schedule.digest_command(settings)
    assert "Type=oneshot" in service
    assert list(schedule.systemd_units(settings, ZoneInfo("Europe/Berlin"))) == [
        "octet.service", "octet.timer"]


def test_an_unnamed_reader_zone_is_the_machine_local_time(settings):
    # reader_zone gives an unnamed zone only for the machine's own, which systemd uses by default
    unnamed = timezone(timedelta(hours=9))
    timer = schedule.systemd_units(settings, unnamed, digest=MONDAY_8)["octet-digest.timer"]
    assert calendar_of(timer) == "Mon *-*-* 08:00:00"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_digest_units_and_fires_monday_8_berlin(settings, tmp_path):
    units = schedule.systemd_units(settings, ZoneInfo("Europe/Berlin"), digest=MONDAY_8)
    folder = tmp_path / "verify"
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(["systemd-analyze", "--user", "verify",
                             *(str(folder / name) for name in units)],
                            capture_output=True, text=True, timeout=60,
                            env={"XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin",
                                 "HOME": str(tmp_path)})
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    spec = calendar_of(units["octet-digest.timer"])
    result = subprocess.run(["systemd-analyze", "calendar", "--iterations", "30", spec],
                            capture_output=True, text=True, timeout=60, env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    stamps = re.findall(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC", result.stdout)
    assert len(stamps) == 30  # over half a year: both sides of a clock change
    for stamp in stamps:
        berlin = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc).astimezone(
            ZoneInfo("Europe/Berlin"))
        assert (berlin.weekday(), berlin.hour, berlin.minute) == (0, 8, 0)


def test_install_reinstall_and_remove_systemd_with_the_digest(settings, fake_systemd, capsys):
    units, log = fake_systemd / "units", fake_systemd / "bin" / "systemctl.log"
    assert main(["schedule", "install", "systemd", "--digest", "Mon 08:00", "--dry-run"]) == 0
    assert "enable --now octet.timer octet-digest.timer" in capsys.readouterr().out
    assert not units.exists()

    assert main(["schedule", "install", "systemd", "--digest", "Mon 08:00"]) == 0
    assert sorted(path.name for path in units.iterdir()) == [
        "octet-digest.service", "octet-digest.timer", "octet.service", "octet.timer"]
    assert log.read_text().splitlines() == ["--user daemon-reload",
                                            "--user enable --now octet.timer octet-digest.timer"]
    assert "Enabled octet.timer and octet-digest.timer" in capsys.readouterr().out

    assert main(["schedule", "install", "systemd", "--dry-run"]) == 0  # says, changes nothing
    assert "octet-digest.timer (an earlier digest timer) would be" in capsys.readouterr().out
    assert len(list(units.iterdir())) == 4

    assert main(["schedule", "install", "systemd"]) == 0  # without --digest: the digest goes
    assert sorted(path.name for path in units.iterdir()) == ["octet.service", "octet.timer"]
    assert log.read_text().splitlines()[2:] == ["--user disable --now octet-digest.timer",
                                                "--user daemon-reload",
                                                "--user enable --now octet.timer"]
    assert "Removed" in capsys.readouterr().out

    assert main(["schedule", "install", "systemd", "--digest", "Sun 19:00"]) == 0
    assert main(["schedule", "remove"]) == 0
    assert list(units.iterdir()) == []
    assert log.read_text().splitlines()[-2:] == [
        "--user disable --now octet.timer octet-digest.timer", "--user daemon-reload"]
    assert "octet-digest.timer" in capsys.readouterr().out
