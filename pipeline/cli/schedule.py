"""`octet schedule print|install|remove`: run `octet run` after each arXiv announcement, and
with ``--digest "Mon 08:00"`` send the weekly digest at that time in the reader's zone."""
from __future__ import annotations

import shlex
import sys

from pipeline.core import weeks
from pipeline.stages import delivery, schedule
from pipeline.core.errors import UsageError


def register(subparsers) -> None:
    """Add `octet schedule …` to the `octet` parser."""
    parser = subparsers.add_parser(
        "schedule", help="run `octet run` after each arXiv announcement (cron or systemd)",
        description="arXiv announces at 20:00 US Eastern, Sunday to Thursday; the schedule "
        "runs `octet run` a little later (in your time zone), and not on the nights with "
        "no announcement. --digest adds the weekly `octet digest --send`.")
    actions = parser.add_subparsers(dest="schedule_action", metavar="ACTION", required=True)

    show = actions.add_parser("print", help="print the crontab line or the systemd units")
    show.add_argument("kind", choices=("cron", "systemd"))
    _add_delay(show)
    show.set_defaults(handler=run_print)

    install = actions.add_parser("install", help="add the crontab line, or write and enable "
                                 "the systemd user units")
    install.add_argument("kind", choices=("cron", "systemd"))
    install.add_argument("--dry-run", action="store_true",
                         help="print what would be written and run; change nothing")
    _add_delay(install)
    install.set_defaults(handler=run_install)

    remove = actions.add_parser("remove", help="take the schedule out of cron and systemd")
    remove.add_argument("kind", nargs="?", choices=("cron", "systemd", "all"), default="all")
    remove.add_argument("--dry-run", action="store_true", help="say what would be removed")
    remove.set_defaults(handler=run_remove)


def _add_delay(parser) -> None:
    parser.add_argument("--delay", type=int, default=schedule.DEFAULT_DELAY_MINUTES,
                        metavar="MINUTES", help="minutes after the 20:00 US Eastern "
                        f"announcement (default {schedule.DEFAULT_DELAY_MINUTES}; 0-720)")
    parser.add_argument("--digest", metavar='"DAY HH:MM"',
                        help='also send the weekly digest (`octet digest --send`) at this day '
                        'and time in your time zone, e.g. "Mon 08:00"')


def _delay(args) -> int:
    if not 0 <= args.delay <= 720:
        raise UsageError(f"--delay {args.delay} is out of range; use 0 to 720 minutes")
    return args.delay


def _digest(args) -> schedule.DigestTime | None:
    return schedule.parse_digest_time(args.digest) if args.digest is not None else None


def _cron(settings, args) -> str:
    return schedule.cron_block(settings, weeks.system_zone(), weeks.reader_zone(settings.timezone),
                               _delay(args), _digest(args))


def _units(settings, args) -> dict[str, str]:
    return schedule.systemd_units(settings, weeks.reader_zone(settings.timezone), _delay(args),
                                  _digest(args))


def _print_units(units: dict[str, str]) -> None:
    folder = schedule.systemd_dir()
    for name, text in units.items():
        print(f"# ---- {folder / name} ----")
        print(text)


def run_print(args, settings) -> int:
    """`octet schedule print cron|systemd`."""
    try:
        if args.kind == "cron":
            print(_cron(settings, args), end="")
        else:
            _print_units(_units(settings, args))
    except schedule.ScheduleError as error:
        raise UsageError(str(error)) from None
    return 0


def run_install(args, settings) -> int:
    """`octet schedule install cron|systemd [--delay M] [--digest "DAY HH:MM"] [--dry-run]`."""
    try:
        if args.kind == "cron":
            _install_cron(settings, args)
        else:
            _install_systemd(settings, args)
    except schedule.ScheduleError as error:
        raise UsageError(str(error)) from None
    if args.digest is not None and not delivery.channels(settings):
        print("octet: note: the digest has nowhere to go yet; set smtp_url and digest_to "
              "(e-mail) or webhook_url in config.toml (see the README)", file=sys.stderr)
    return 0


def _install_cron(settings, args) -> None:
    dry_run = args.dry_run
    report = schedule.install_cron(_cron(settings, args), dry_run)
    if dry_run:
        print("# dry run: the crontab would become (nothing was changed):")
        print(report["crontab"], end="")
        return
    verb = "Replaced the" if report["replaced"] else "Added an"
    what = (f" (the daily run, and the digest on {_digest(args).text()} your time)"
            if args.digest is not None else "")
    print(f"{verb} Octet block{what} in your crontab; see it with `crontab -l`, "
          "take it out with `octet schedule remove cron`.")


def _install_systemd(settings, args) -> None:
    dry_run = args.dry_run
    units = _units(settings, args)
    report = schedule.install_systemd(units, dry_run)
    if dry_run:
        print("# dry run: these files would be written (nothing was changed):")
        _print_units(units)
        for path in report["stale"]:
            print(f"# {path} (an earlier digest timer) would be disabled and removed")
        print("# and these commands run:")
        for command in report["commands"]:
            print(shlex.join(command))
        return
    print(f"Wrote {', '.join(report['files'])}.")
    for path in report["stale"]:
        print(f"Removed {path} (the digest is no longer scheduled).")
    if report["ran"]:
        timers = " ".join(report["timers"])
        print(f"Enabled {' and '.join(report['timers'])}; check with `systemctl --user "
              f"list-timers {timers}`. To run while you are logged out: "
              "`loginctl enable-linger $USER`.")
    else:
        print("systemctl was skipped (OCTET_SYSTEMCTL is empty); to enable the timer run:")
        for command in report["commands"]:
            print("  " + shlex.join(command))


def run_remove(args, settings) -> int:
    """`octet schedule remove [cron|systemd|all] [--dry-run]`."""
    try:
        report = schedule.remove(args.kind, args.dry_run)
    except schedule.ScheduleError as error:
        raise UsageError(str(error)) from None
    if report["cron"]:
        print("The Octet block would be removed from your crontab." if args.dry_run
              else "Removed the Octet block from your crontab.")
    for path in report["systemd"]:
        print(f"{path} would be removed." if args.dry_run else f"Removed {path}.")
    if not report["cron"] and not report["systemd"]:
        print("No Octet schedule found: nothing to remove.")
    return 0
