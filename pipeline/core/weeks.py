"""Weeks and the reader's time zone: the calendar of the one-paper-a-week habit.

A week is an ISO week ``YYYY-Www`` in the reader's zone; the streak counts consecutive
weeks whose pick was read.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.core.errors import ConfigError


def system_zone() -> tzinfo:
    """The machine's time zone, which cron uses (/etc/localtime), named when possible."""
    localtime = Path("/etc/localtime")
    candidates = []
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text(encoding="utf-8").strip())
    for name in candidates:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return datetime.now().astimezone().tzinfo


# ---- weeks ------------------------------------------------------------------

def reader_zone(name: str) -> tzinfo:
    """The reader's time zone (the ``timezone`` setting); empty means the machine's, which
    cron uses too."""
    if not name:
        return system_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
        raise ConfigError(f"timezone = {name!r} is not an IANA time zone; use a name such as "
                          "Europe/Berlin, or leave it empty for the system's") from None


def week_of(moment: datetime | date) -> str:
    """The ISO week ``YYYY-Www`` of a date (or of a datetime, in its own zone)."""
    day = moment.date() if isinstance(moment, datetime) else moment
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def current_week(zone_name: str = "", now: datetime | None = None) -> str:
    """This ISO week in the reader's zone (``now`` defaults to the current instant)."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return week_of(moment.astimezone(reader_zone(zone_name)))


def today(zone_name: str = "", now: datetime | None = None) -> date:
    """Today's date in the reader's zone."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(reader_zone(zone_name)).date()


NON_BREAKING_HYPHEN = "\u2011"


def week_label(week: str) -> str:
    """``2026-W49`` for headings, with a non-breaking hyphen: a narrow screen wraps the line
    around the week, never inside it (``2026-`` / ``W49``)."""
    return week.replace("-", NON_BREAKING_HYPHEN)


def week_monday(week: str) -> date:
    """The Monday that starts an ISO week ``YYYY-Www``."""
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def previous_week(week: str) -> str:
    return week_of(week_monday(week) - timedelta(days=7))


def streak(read_weeks: set[str], this_week: str) -> int:
    """Consecutive weeks whose pick was read, ending this week (or last week, while this
    week's pick is still unread: the streak is not broken before the week is over)."""
    week = this_week if this_week in read_weeks else previous_week(this_week)
    count = 0
    while week in read_weeks:
        count += 1
        week = previous_week(week)
    return count


def longest_streak(read_weeks: set[str]) -> int:
    """The longest run of consecutive read weeks ever."""
    best = 0
    for week in read_weeks:
        if previous_week(week) in read_weeks:
            continue
        length, cursor = 0, week
        while cursor in read_weeks:
            length += 1
            cursor = week_of(week_monday(cursor) + timedelta(days=7))
        best = max(best, length)
    return best
