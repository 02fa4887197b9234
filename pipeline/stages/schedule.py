"""Run ``octet run`` on arXiv's calendar: a user crontab line or systemd user units.

arXiv announces new papers at 20:00 US Eastern, Sunday to Thursday; there is nothing
new on Friday and Saturday evenings. The job runs a little after each announcement:
systemd can say so in US Eastern time directly; cron reads times in the machine's zone,
so the time is converted there, at the latest local time the announcement can map to
during the year (the US and the local zone change clocks on different dates), so it
never runs before the announcement.

With ``--digest "Mon 08:00"`` the schedule also sends the weekly digest (``octet digest
--send``) at that time in the reader's zone: a second crontab line in the same block, or the
units octet-digest.service and octet-digest.timer.

The external tools are overridable (tests must never touch the reader's real crontab or
systemd): ``OCTET_CRONTAB`` (the crontab command), ``OCTET_SYSTEMD_DIR`` (where the units
go) and ``OCTET_SYSTEMCTL`` (the systemctl command; empty skips it).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.core.paper import find_control
from pipeline.core.settings import Settings

ARXIV_ZONE_NAME = "America/New_York"
ARXIV_ZONE = ZoneInfo(ARXIV_ZONE_NAME)
ANNOUNCEMENT = time(20, 0)
ANNOUNCEMENT_DAYS = (0, 1, 2, 3, 4)  # cron weekday numbers: Sunday (0) to Thursday (4)
DEFAULT_DELAY_MINUTES = 30
DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
BEGIN, END = "# >>> octet schedule >>>", "# <<< octet schedule <<<"
SERVICE, TIMER = "octet.service", "octet.timer"
DIGEST_SERVICE, DIGEST_TIMER = "octet-digest.service", "octet-digest.timer"
UNITS = (TIMER, SERVICE, DIGEST_TIMER, DIGEST_SERVICE)
DIGEST_FORMAT = 'DAY HH:MM (DAY Mon..Sun, 24-hour time), e.g. --digest "Mon 08:00"'
FULL_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class ScheduleError(RuntimeError):
    """Installing or removing the schedule failed; the message names the fix."""


# ---- when ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunTime:
    """When the job runs, as clock time and weekdays in one time zone."""

    hour: int
    """Hour of day, 0-23."""

    minute: int
    """Minute, 0-59."""

    weekdays: tuple[int, ...]
    """Cron weekday numbers (0 = Sunday … 6 = Saturday)."""

    zone: str
    """The time zone those are in (an IANA name, or a UTC offset when unnamed)."""

    spread_minutes: int
    """How much earlier than this the moment it follows (the announcement + delay, or the
    digest time in the reader's zone) falls on some days of the year (the zones change
    clocks on different dates); 0 when the zones move together."""

    def clock(self) -> str:
        """``02:30``."""
        return f"{self.hour:02d}:{self.minute:02d}"

    def days(self) -> str:
        """``Mon-Fri`` or ``Sun, Mon, Tue``."""
        return days_text(self.weekdays)


def run_time(zone: tzinfo, delay_minutes: int = DEFAULT_DELAY_MINUTES,
             start: date | None = None) -> RunTime:
    """The latest local time, over the coming year, that an announcement plus
    ``delay_minutes`` maps to in ``zone``; and the local weekdays it falls on."""
    minutes = ANNOUNCEMENT.hour * 60 + ANNOUNCEMENT.minute + delay_minutes
    return latest_time(ANNOUNCEMENT_DAYS, minutes, ARXIV_ZONE, zone, start)


def latest_time(weekdays: tuple[int, ...], minutes: int, source: tzinfo, target: tzinfo,
                start: date | None = None) -> RunTime:
    """``minutes`` after midnight on ``weekdays`` (cron numbers) in ``source``, as the latest
    clock time in ``target`` over the coming year, so a job at that time never runs early."""
    start = start or date.today()
    offsets = []
    for day in (start + timedelta(days=number) for number in range(371)):
        if cron_weekday(day) not in weekdays:
            continue
        # Wall-clock arithmetic: 20:00 + 300 min is 01:00 the next day in ``source``.
        moment = datetime.combine(day, time(0), source) + timedelta(minutes=minutes)
        local = moment.astimezone(target)
        offsets.append((local.date() - day).days * 1440 + local.hour * 60 + local.minute)
    shift, clock = divmod(max(offsets), 1440)
    shifted = tuple(sorted({(day + shift) % 7 for day in weekdays}))
    return RunTime(hour=clock // 60, minute=clock % 60, weekdays=shifted,
                   zone=zone_name(target), spread_minutes=max(offsets) - min(offsets))


@dataclass(frozen=True)
class DigestTime:
    """When the weekly digest goes out: a weekday and a clock time in the reader's zone."""

    weekday: int
    """Cron weekday number (0 = Sunday … 6 = Saturday)."""

    hour: int
    """Hour of day, 0-23."""

    minute: int
    """Minute, 0-59."""

    def clock(self) -> str:
        """``08:00``."""
        return f"{self.hour:02d}:{self.minute:02d}"

    def text(self) -> str:
        """``Mon 08:00``, as ``--digest`` takes it."""
        return f"{DAY_NAMES[self.weekday]} {self.clock()}"


_DIGEST_TIME = re.compile(r"([A-Za-z]+)\s+([01]?\d|2[0-3]):([0-5]\d)", re.ASCII)


def parse_digest_time(text: str) -> DigestTime:
    """``--digest "Mon 08:00"`` (English day, 3 letters or in full, any case; 24-hour time);
    ``ScheduleError`` naming the format otherwise."""
    match = _DIGEST_TIME.fullmatch(text.strip())
    day = match[1].lower() if match else ""
    names = [name[:3] for name in FULL_DAY_NAMES]
    if day in FULL_DAY_NAMES:
        day = day[:3]
    if day not in names:
        raise ScheduleError(f"--digest {text!r} is not a day and time; use {DIGEST_FORMAT}")
    return DigestTime(weekday=names.index(day), hour=int(match[2]), minute=int(match[3]))


def digest_cron_time(digest: DigestTime, reader: tzinfo, cron_zone: tzinfo,
                     start: date | None = None) -> RunTime:
    """The digest time in cron's zone: the latest over the coming year, so the digest never
    goes out before the reader's time (the weekday shifts with the zones)."""
    return latest_time((digest.weekday,), digest.hour * 60 + digest.minute, reader, cron_zone,
                       start)


def cron_weekday(day: date) -> int:
    """Cron's weekday number of a date (0 = Sunday)."""
    return (day.weekday() + 1) % 7


def days_text(weekdays: tuple[int, ...]) -> str:
    """Weekday numbers as names, runs joined: ``Mon-Fri``, ``Sun-Thu``, ``Sat, Sun-Wed``."""
    return ", ".join(f"{DAY_NAMES[first]}-{DAY_NAMES[last]}" if last > first
                     else DAY_NAMES[first] for first, last in _runs(weekdays))


def cron_days(weekdays: tuple[int, ...]) -> str:
    """Weekday numbers in cron syntax: ``1-5``, ``0-3,6``."""
    return ",".join(f"{first}-{last}" if last > first else str(first)
                    for first, last in _runs(weekdays))


def _runs(weekdays: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for day in sorted(set(weekdays)):
        if runs and day == runs[-1][1] + 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(first, last) for first, last in runs]


def zone_name(zone: tzinfo) -> str:
    """An IANA name when the zone has one, else its current UTC offset."""
    return getattr(zone, "key", None) or datetime.now(zone).strftime("UTC%z")


# ---- what ------------------------------------------------------------------------------------

def job_command(settings: Settings) -> list[str]:
    """The command the schedule runs: this installation's ``octet run`` on this data dir."""
    return octet_command(settings) + ["run"]


def digest_command(settings: Settings) -> list[str]:
    """The weekly command: this installation's ``octet digest --send`` on this data dir."""
    return octet_command(settings) + ["digest", "--send"]


def octet_command(settings: Settings) -> list[str]:
    """This installation's ``octet --home H [--db D]``; ``ScheduleError`` when a folder has
    a control character."""
    beside = Path(sys.executable).parent / "octet"
    found = str(beside) if beside.is_file() else shutil.which("octet")
    command = [found] if found else [sys.executable, "-m", "pipeline.cli"]
    command += ["--home", str(settings.home)]
    if settings.db:
        command += ["--db", str(settings.db)]
    _refuse_controls([*command, str(working_directory())])
    return command


def _refuse_controls(words: list[str]) -> None:
    # A newline would end the crontab line (or the unit setting) and start one of its own.
    for word in words:
        if find_control(word) is not None:
            raise ScheduleError(f"{word!r} contains a control character, which cannot go into a "
                                "crontab or a systemd unit; use a folder name without one")


def working_directory() -> Path:
    """Where the job starts: the project folder, so ``python -m pipeline.cli`` finds the
    package even when it is not installed."""
    return Path(__file__).resolve().parents[2]


def cron_block(settings: Settings, cron_zone: tzinfo, reader: tzinfo,
               delay_minutes: int = DEFAULT_DELAY_MINUTES,
               digest: DigestTime | None = None) -> str:
    """The crontab lines, between markers that ``remove`` finds again: the daily run, and
    the weekly digest when ``digest`` is given."""
    when = run_time(cron_zone, delay_minutes)
    comments = [
        "# Managed by `octet schedule install cron`; `octet schedule remove` deletes this block.",
        f"# arXiv announces at 20:00 US Eastern, Sun-Thu; Octet runs {delay_minutes} min later:",
        f"# {when.clock()} {when.days()} in {when.zone} (the zone cron uses on this machine).",
        *_reader_line(when, reader, delay_minutes),
        *_spread_line(when),
        "# Output is printed (so cron mails it) only when the run fails.",
    ]
    lines = [*comments, cron_line(when, job_command(settings))]
    if digest:
        lines += _digest_cron_lines(settings, digest, cron_zone, reader)
    return "\n".join([BEGIN, *lines, END]) + "\n"


def cron_line(when: RunTime, command: list[str]) -> str:
    """One crontab line running ``command`` from the project folder at ``when``; it prints
    the command's output only when the command fails."""
    joined = shlex.join(command)
    return (f"{when.minute} {when.hour} * * {cron_days(when.weekdays)} "
            + cron_escape(f"out=$(cd {shlex.quote(str(working_directory()))} && {joined} 2>&1) "
                          f"|| echo \"$out\""))


def _digest_cron_lines(settings: Settings, digest: DigestTime, cron_zone: tzinfo,
                       reader: tzinfo) -> list[str]:
    when = digest_cron_time(digest, reader, cron_zone)
    mine = f"{digest.text()} in your time zone, {zone_name(reader)}"
    where = (f"# That is {when.days()} {when.clock()} in {when.zone} (the zone cron uses)."
             if when.zone != zone_name(reader) else None)
    spread = ([f"# For a few weeks a year (the zones change clocks on different dates) it goes "
               f"out up to {when.spread_minutes} min after {digest.clock()} your time."]
              if when.spread_minutes else [])
    return [f"# The weekly digest (`octet digest --send`): {mine}.",
            *([where] if where else []), *spread,
            "# Output is printed (so cron mails it) only when sending fails.",
            cron_line(when, digest_command(settings))]


def cron_escape(command: str) -> str:
    """A shell command (quoted with ``shlex``: single quotes only) as a crontab line holds it.

    cron ends the command at an unescaped ``%`` and only ``\\%`` escapes one, so a backslash
    in a path right before a ``%`` would turn ``\\\\%`` into the end of the command. Each ``%``
    is written as ``'\\%'`` instead: cron makes it ``'%'``, which the shell reads as ``%``
    inside or outside a single-quoted word."""
    return command.replace("%", "'\\%'")


def _reader_line(when: RunTime, reader: tzinfo, delay_minutes: int) -> list[str]:
    mine = run_time(reader, delay_minutes)
    if mine.zone == when.zone:
        return []
    return [f"# That is {mine.clock()} {mine.days()} in your time zone, {mine.zone}."]


def _spread_line(when: RunTime) -> list[str]:
    if not when.spread_minutes:
        return []
    return [f"# For a few weeks a year (the zones change clocks on different dates) this is "
            f"up to {when.spread_minutes} min later than that."]


def systemd_units(settings: Settings, reader: tzinfo,
                  delay_minutes: int = DEFAULT_DELAY_MINUTES,
                  digest: DigestTime | None = None) -> dict[str, str]:
    """``{"octet.service": text, "octet.timer": text}`` for a systemd user instance, and
    octet-digest.service and octet-digest.timer when ``digest`` is given."""
    shift, minutes = divmod(ANNOUNCEMENT.hour * 60 + delay_minutes, 1440)
    days = tuple((day + shift) % 7 for day in ANNOUNCEMENT_DAYS)
    mine = run_time(reader, delay_minutes)
    service = _service_unit("Octet: fetch and process the latest arXiv announcement",
                            job_command(settings))
    timer = "\n".join([
        "# Managed by `octet schedule install systemd`; `octet schedule remove` deletes it.",
        f"# arXiv announces at 20:00 US Eastern, Sun-Thu; this runs {delay_minutes} min later,",
        f"# which is {mine.clock()} {mine.days()} in your time zone ({mine.zone}).",
        "[Unit]",
        "Description=Run Octet after each arXiv announcement",
        "",
        *_timer_section(f"{systemd_days(days)} *-*-* {minutes // 60:02d}:{minutes % 60:02d}:00 "
                        f"{ARXIV_ZONE_NAME}")])
    units = {SERVICE: service, TIMER: timer}
    if digest:
        units.update(_digest_units(settings, reader, digest))
    return units


def _service_unit(description: str, command: list[str]) -> str:
    return "\n".join([
        "# Managed by `octet schedule install systemd`; `octet schedule remove` deletes it.",
        "[Unit]",
        f"Description={description}",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={str(working_directory()).replace('%', '%%')}",
        "ExecStart=" + systemd_command(command),
        "Nice=10",
        ""])


def _timer_section(calendar: str) -> list[str]:
    return [
        "[Timer]",
        f"OnCalendar={calendar}",
        "# Catch up at the next boot or login when the machine was off at that time.",
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        ""]


def _digest_units(settings: Settings, reader: tzinfo, digest: DigestTime) -> dict[str, str]:
    """octet-digest.service and .timer. The timer names the reader's zone; a zone without an
    IANA name is the machine's own (``reader_zone``), which systemd uses when none is given."""
    named = getattr(reader, "key", None)
    calendar = (f"{systemd_days((digest.weekday,))} *-*-* {digest.clock()}:00"
                + (f" {named}" if named else ""))
    timer = "\n".join([
        "# Managed by `octet schedule install systemd`; `octet schedule remove` deletes it.",
        f"# The weekly digest (`octet digest --send`): {digest.text()} in your time zone "
        f"({zone_name(reader)}).",
        "[Unit]",
        "Description=Send Octet's weekly digest",
        "",
        *_timer_section(calendar)])
    service = _service_unit("Octet: send the weekly digest (e-mail, webhook)",
                            digest_command(settings))
    return {DIGEST_SERVICE: service, DIGEST_TIMER: timer}


def systemd_days(weekdays: tuple[int, ...]) -> str:
    """Weekdays in systemd syntax. Its weeks start on Monday and ranges cannot wrap, so
    Sunday to Thursday is ``Mon..Thu,Sun``."""
    names = {0: "Sun", 1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat"}
    ordered = sorted(set(weekdays), key=lambda day: (day + 6) % 7)  # Monday first
    runs: list[list[int]] = []
    for day in ordered:
        if runs and (day + 6) % 7 == (runs[-1][1] + 6) % 7 + 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return ",".join(f"{names[first]}..{names[last]}" if first != last else names[first]
                    for first, last in runs)


def systemd_command(command: list[str]) -> str:
    """``ExecStart``'s value. systemd takes the program's path as it is (no ``$$``) and
    refuses one with quotes or backslashes; the arguments are quoted (``systemd_quote``)."""
    program, *arguments = command
    if any(character in program for character in "\"'\\"):
        raise ScheduleError(f"systemd cannot start a program whose path has quotes or "
                            f"backslashes ({program}); install Octet in another folder, or use "
                            "`octet schedule install cron`")
    return " ".join(['"' + program.replace("%", "%%") + '"',
                     *(systemd_quote(word) for word in arguments)])


def systemd_quote(word: str) -> str:
    """One argument in systemd's unit syntax: quoted, with %, $, \\ and " escaped."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


# ---- install and remove ----------------------------------------------------------------------

def crontab_command() -> list[str]:
    """The crontab command (``OCTET_CRONTAB`` overrides it, e.g. for tests)."""
    return shlex.split(os.environ.get("OCTET_CRONTAB") or "crontab")


def systemd_dir() -> Path:
    """Where user units go: ``OCTET_SYSTEMD_DIR``, else ``$XDG_CONFIG_HOME/systemd/user``."""
    override = os.environ.get("OCTET_SYSTEMD_DIR")
    if override:
        return Path(override).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def systemctl_command() -> list[str] | None:
    """The systemctl command (``OCTET_SYSTEMCTL``; set it empty to skip systemctl)."""
    value = os.environ.get("OCTET_SYSTEMCTL")
    if value is None:
        return ["systemctl"]
    return shlex.split(value) or None


def _call(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ScheduleError(f"{command[0]} is not installed; install it or use the other "
                            "schedule kind (cron or systemd)") from None


def read_crontab() -> str:
    """The user's crontab ('' when there is none)."""
    result = _call(crontab_command() + ["-l"])
    if result.returncode == 0:
        return result.stdout
    if "no crontab" in result.stderr.lower():
        return ""
    raise ScheduleError(f"`crontab -l` failed: {result.stderr.strip()}; check that cron is "
                        "installed and you may use it")


def without_block(crontab: str) -> str:
    """The crontab with Octet's block (between the markers) taken out."""
    kept, inside = [], False
    for line in crontab.splitlines():
        if line.strip() == BEGIN:
            inside = True
            if kept and not kept[-1].strip():  # the blank line install put before the block
                kept.pop()
        elif line.strip() == END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def install_cron(block: str, dry_run: bool) -> dict:
    """Put the block into the user's crontab, replacing an earlier one."""
    current = read_crontab()
    updated = without_block(current)
    updated = (updated.rstrip("\n") + "\n\n" if updated.strip() else "") + block
    if not dry_run:
        result = _call(crontab_command() + ["-"], stdin=updated)
        if result.returncode != 0:
            raise ScheduleError(f"`crontab -` refused the new crontab: {result.stderr.strip()}")
    return {"kind": "cron", "dry_run": dry_run, "replaced": BEGIN in current,
            "crontab": updated}


def install_systemd(units: dict[str, str], dry_run: bool) -> dict:
    """Write the units and enable their timers with ``systemctl --user``; digest units left
    from an earlier install that ``units`` no longer has are disabled and removed."""
    folder = systemd_dir()
    systemctl = systemctl_command()
    stale = [folder / name for name in (DIGEST_TIMER, DIGEST_SERVICE)
             if name not in units and (folder / name).is_file()]
    timers = [name for name in units if name.endswith(".timer")]
    commands = [["daemon-reload"], ["enable", "--now", *timers]]
    planned = [(systemctl or ["systemctl"]) + ["--user", *args] for args in commands]
    report = {"kind": "systemd", "dry_run": dry_run, "folder": str(folder),
              "files": [str(folder / name) for name in units], "commands": planned,
              "timers": timers, "stale": [str(path) for path in stale], "ran": []}
    if dry_run:
        return report
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (folder / name).write_text(text, encoding="utf-8")
    _drop_units(stale, systemctl)
    if systemctl is None:
        return report
    for command in planned:
        result = _call(command)
        if result.returncode != 0:
            raise ScheduleError(
                f"`{shlex.join(command)}` failed: {result.stderr.strip()}; the units are in "
                f"{folder}: start a user session with systemd (or `loginctl enable-linger`) "
                "and run the command again")
        report["ran"].append(command)
    return report


def remove(kind: str = "all", dry_run: bool = False) -> dict:
    """Take the schedule out of the crontab and/or the systemd user folder."""
    report = {"dry_run": dry_run, "cron": None, "systemd": []}
    if kind in ("all", "cron"):
        report["cron"] = _remove_cron(dry_run, required=kind == "cron")
    if kind in ("all", "systemd"):
        report["systemd"] = _remove_systemd(dry_run)
    return report


def _remove_cron(dry_run: bool, required: bool) -> bool:
    """True when a block was found (and, unless dry run, removed)."""
    try:
        current = read_crontab()
    except ScheduleError:
        if required:
            raise
        return False  # no cron on this machine: nothing of ours to remove
    if BEGIN not in current:
        return False
    if not dry_run:
        result = _call(crontab_command() + ["-"], stdin=without_block(current))
        if result.returncode != 0:
            raise ScheduleError(f"`crontab -` refused the new crontab: {result.stderr.strip()}")
    return True


def _remove_systemd(dry_run: bool) -> list[str]:
    """The unit files removed (or that would be): the daily ones and the digest's."""
    folder = systemd_dir()
    present = [folder / name for name in UNITS if (folder / name).is_file()]
    if not present or dry_run:
        return [str(path) for path in present]
    systemctl = systemctl_command()
    _drop_units(present, systemctl)
    if systemctl:
        _try(systemctl + ["--user", "daemon-reload"])
    return [str(path) for path in present]


def _drop_units(paths: list[Path], systemctl: list[str] | None) -> None:
    """Stop and disable the timers among ``paths``, then delete the files."""
    timers = [path.name for path in paths if path.name.endswith(".timer")]
    if systemctl and timers:  # failing to stop a timer that is not running is fine
        _try(systemctl + ["--user", "disable", "--now", *timers])
    for path in paths:
        path.unlink()


def _try(command: list[str]) -> None:
    try:
        subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        pass
