"""When the last digest went out and to whom: the line of ``octet status`` and the Runs page.

A webhook is recorded as ``host#hash`` (its URL is a secret); only the host is shown.
Recipients come from the database, so they are cleaned of control characters before a
terminal or the page shows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from pipeline.core.paper import clean_text
from storage import digests

CHANNEL_NAMES = {"email": "e-mail", "webhook": "webhook"}
"""How each channel is named to the reader."""


@dataclass(frozen=True)
class LastDigest:
    """The most recent week whose digest went out."""

    week: str
    """The digest's ISO week, ``2026-W49``."""

    sent_at: datetime
    """When its newest send went out (aware, UTC)."""

    recipients: tuple[tuple[str, str], ...]
    """``(channel, recipient as shown)`` pairs, e-mail first; a webhook shown as its host."""


def last_digest(db_path: Path) -> LastDigest | None:
    """The last digest sent from this database; None when none ever was."""
    sends = digests.last_sends(db_path)
    if not sends:
        return None
    shown = {(send["channel"], shown_recipient(send["channel"], send["recipient"]))
             for send in sends}
    return LastDigest(week=sends[0]["week"], sent_at=datetime.fromisoformat(sends[0]["sent_at"]),
                      recipients=tuple(sorted(shown)))


def shown_recipient(channel: str, recipient: str) -> str:
    """An e-mail address as it is; a webhook's ``host#hash`` as the host alone."""
    text = recipient.split("#", 1)[0] if channel == "webhook" else recipient
    return clean_text(text)[:200]


def sentence(last: LastDigest, zone: tzinfo) -> str:
    """``2026-W49 sent 2026-11-30 08:00 Europe/Berlin to me@example.org (e-mail),
    hooks.slack.com (webhook)``, the time in the reader's zone."""
    local = last.sent_at.astimezone(zone)
    zone_label = getattr(zone, "key", None) or local.strftime("UTC%z")
    to = ", ".join(f"{recipient} ({CHANNEL_NAMES.get(channel, channel)})"
                   for channel, recipient in last.recipients)
    return f"{last.week} sent {local:%Y-%m-%d %H:%M} {zone_label} to {to}"


def status_line(last: LastDigest | None, zone: tzinfo) -> str:
    """``Last digest: …`` or ``No digest sent yet``."""
    return f"Last digest: {sentence(last, zone)}" if last else "No digest sent yet"


def as_json(last: LastDigest | None) -> dict | None:
    """``{"week", "sent_at" (UTC ISO), "recipients": [{"channel", "recipient"}]}`` or None."""
    if last is None:
        return None
    return {"week": last.week, "sent_at": last.sent_at.isoformat(),
            "recipients": [{"channel": channel, "recipient": recipient}
                           for channel, recipient in last.recipients]}
