"""`octet digest`: the week's digest written (md, html, text), or mailed and posted
(``--send``); ``pipeline.stages.digest`` builds it, ``delivery`` sends it."""
from __future__ import annotations

import re
import sys
from datetime import date

from pipeline.cli.export import emit
from pipeline.core import weeks
from pipeline.core.errors import EXIT_UNREACHABLE, EXIT_USAGE, UsageError
from pipeline.core.paper import clean_text
from pipeline.stages import delivery
from pipeline.stages.digest import build_digest
from pipeline.stages.digest_format import FORMATS, render, to_json
from pipeline.stages.library import is_demo_database

_WEEK = re.compile(r"(\d{4})-W(\d{2})", re.ASCII)


def register(subparsers) -> None:
    """Add `octet digest` and `octet feed` to the `octet` parser."""
    parser = subparsers.add_parser(
        "digest", help="the week's digest: write it, or send it by e-mail and webhook",
        description="This week's paper and why, the runners-up, the top papers of each "
        "family since the last digest, your streak and family coverage, last week's read. "
        "--send mails it (smtp_url, digest_to) and posts it (webhook_url), once a week each.")
    parser.add_argument("--week", metavar="YYYY-Www", help="the ISO week (default: this week)")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="md (default), html (for mail clients) or text")
    parser.add_argument("--output", "-o", default="-", metavar="FILE",
                        help="file to write (default: standard output)")
    parser.add_argument("--send", action="store_true",
                        help="e-mail it (text + HTML) and post it to the webhook")
    parser.add_argument("--force", action="store_true",
                        help="with --send: send again to those who had this week's digest")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --send: print what would be sent; send and mark nothing")
    parser.set_defaults(handler=run_digest)


def parse_week(text: str | None, zone: str) -> str | None:
    """``--week``: an ISO week not after this one; ``UsageError`` otherwise."""
    if text is None:
        return None
    match = _WEEK.fullmatch(text.strip())
    try:
        week = weeks.week_of(date.fromisocalendar(int(match[1]), int(match[2]), 1)) \
            if match else None
    except ValueError:
        week = None
    if week is None:
        raise UsageError(f"--week {text!r} is not an ISO week; use YYYY-Www, e.g. "
                         f"{weeks.current_week(zone)}")
    if week > weeks.current_week(zone):
        raise UsageError(f"--week {week} has not begun; use this week "
                         f"({weeks.current_week(zone)}) or an earlier one")
    return week


def run_digest(args, settings) -> int:
    """`octet digest [--week W] [--format F] [--output FILE] [--send [--force] [--dry-run]]`."""
    if (args.force or args.dry_run) and not args.send:
        raise UsageError("--force and --dry-run go with --send; add --send")
    week = parse_week(args.week, settings.timezone)
    if not args.send:
        emit(render(build_digest(settings, week), args.format), args.output)
        return 0
    if is_demo_database(settings):
        raise UsageError("your library holds no paper yet (Octet shows the demo); run "
                         "`octet run` first, then send the digest")
    return _send(settings, build_digest(settings, week), args.force, args.dry_run)


def _send(settings, digest, force: bool, dry_run: bool) -> int:
    channels = delivery.channels(settings)
    if not channels:
        raise UsageError("nothing to send to; set smtp_url and digest_to (e-mail) or "
                         "webhook_url in config.toml or the environment (see the README)")
    code = 0
    for channel in channels:
        try:
            refused = _channel(settings, digest, channel, force, dry_run)
        except delivery.DeliveryUnreachable as error:
            code = EXIT_UNREACHABLE  # the other channel still goes out
            print(f"octet: {clean_text(str(error))}", file=sys.stderr)
        else:
            code = code or (EXIT_USAGE if refused else 0)
    return code


def _channel(settings, digest, channel: str, force: bool, dry_run: bool) -> bool:
    """Send (or preview) one channel; True when the server refused a recipient."""
    plan_of = delivery.email_plan if channel == "email" else delivery.webhook_plan
    send = delivery.send_email if channel == "email" else delivery.send_webhook
    shown = "e-mail" if channel == "email" else "webhook"
    if dry_run:
        _preview(settings, digest, plan_of(settings, digest, force))
        return False
    report = send(settings, digest, force)
    for recipient in report["already"]:
        print(f"{digest.week} digest already sent to {recipient} ({shown}); --force sends again")
    for recipient in report["sent"]:
        print(f"Sent the {digest.week} digest to {recipient} ({shown})")
    for recipient in report.get("refused", ()):
        answer = clean_text(report.get("answers", {}).get(recipient, "refused"))
        print(f"octet: the mail server refused {clean_text(recipient)} ({answer}); "
              "check that address in digest_to (OCTET_DIGEST_TO)", file=sys.stderr)
    return bool(report.get("refused"))


def _preview(settings, digest, plan: dict) -> None:
    """What ``--dry-run`` prints: per channel, who would get it and the message itself."""
    print(f"# dry run: {plan['channel']}: would send to {', '.join(plan['due']) or 'nobody'}"
          + (f"; already sent to {', '.join(plan['already'])}" if plan["already"] else ""))
    if not plan["due"]:
        return
    if plan["channel"] == "webhook":
        print(to_json(digest), end="")
        return
    message = delivery.build_message(digest, delivery.sender(settings), plan["due"][0])
    for name in ("From", "To", "Subject", "Date"):
        print(f"{name}: {message[name]}")
    print("(multipart: text and HTML; the text part follows)\n")
    print(message.get_body(("plain",)).get_content(), end="")
