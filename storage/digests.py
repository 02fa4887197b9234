"""The digests that went out (table ``digest_sends``).

A send is recorded only once the server took the message, so a digest that failed is
never counted as sent; the once-per-week rule and the "last digest" lines of ``octet
status`` and the Runs page read this table.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from storage.db import connect, plain_value, rows_of, transaction


def sent_recipients(db_path: Path, week: str, channel: str) -> set[str]:
    """The recipients the week's digest already went to on this channel."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT recipient FROM digest_sends WHERE week = ? AND channel = ?",
                           [week, channel]).fetchall()
    return {row[0] for row in rows}


def record_send(db_path: Path, week: str, channel: str, recipient: str,
                message_id: str | None = None) -> None:
    """Record that the week's digest reached ``recipient`` (a resend counts up ``sends``)."""
    with transaction(db_path) as con:
        con.execute("""
            INSERT INTO digest_sends (week, channel, recipient, message_id)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (week, channel, recipient) DO UPDATE SET sent_at = now(),
                message_id = excluded.message_id, sends = digest_sends.sends + 1""",
                    [week, channel, recipient, message_id])


def last_sends(db_path: Path) -> list[dict]:
    """The sends of the most recent digest that went out (``week``, ``channel``,
    ``recipient``, ``sent_at`` as ISO text), newest first; empty when none ever did."""
    with connect(db_path, read_only=True) as con:
        rows = rows_of(con.execute("""
            SELECT week, channel, recipient, sent_at, sends FROM digest_sends
            WHERE week = (SELECT week FROM digest_sends ORDER BY sent_at DESC LIMIT 1)
            ORDER BY sent_at DESC, channel, recipient"""))
    return [{**row, "sent_at": plain_value(row["sent_at"])} for row in rows]


def previous_digest_at(db_path: Path, week: str) -> datetime | None:
    """When the last digest of a week before ``week`` went out (None: never)."""
    with connect(db_path, read_only=True) as con:
        row = con.execute("SELECT max(sent_at) FROM digest_sends WHERE week < ?",
                          [week]).fetchone()
    return row[0] if row else None

