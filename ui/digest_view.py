"""The Digest page's pieces: the digest's HTML made safe for the app's frame, the line on
the last digest sent, and *Send now*: every channel set up, one line per outcome.

The HTML is shown in an iframe so that its styles stay out of the app. It holds no script
(every paper text in it is escaped), and the policy added here makes sure that nothing in
it could run or fetch anything even if that ever changed: Streamlit's iframe itself allows
scripts with same-origin access to the app.
"""
from __future__ import annotations

import streamlit as st

from pipeline.core import weeks
from pipeline.core.errors import ConfigError
from pipeline.stages import delivery
from pipeline.stages.digest import Digest, build_digest
from pipeline.stages.library import database_stamp
from storage.digests import last_sends
from ui import common

FRAME_HEIGHT = 900
"""The frame's height in CSS pixels; a longer digest scrolls inside it."""

FRAME_POLICY = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                'style-src \'unsafe-inline\'; img-src data:; form-action \'none\'">')
"""No script and no request in the frame: inline styles only (the mail's own)."""

FRAME_BASE = '<base target="_blank">'
"""Links open in a new tab: arXiv refuses to be framed, and the app should not nest itself."""

CHANNEL_NAMES = {"email": "e-mail", "webhook": "webhook"}
"""How the page names each channel."""

SETUP_HINT = ("No channel is set up: set `smtp_url` and `digest_to` (e-mail) or `webhook_url` "
              "in config.toml, or `OCTET_SMTP_URL` and `OCTET_DIGEST_TO`, or `OCTET_WEBHOOK_URL` "
              "in the environment (see the README).")
"""Why *Send now* is disabled when nothing is set up, and what to set."""

DEMO_HINT = "Demo data: nothing is sent. Run `octet run` to fetch your own papers."
"""Why *Send now* is disabled on the demo."""


def digest_of(config) -> Digest:
    """This week's digest, built again only when the database changed or the week turned:
    building it ranks the week's arrivals (a second or two at 75k papers), and every click
    on the page reruns it."""
    return _built(config, str(config.db_path), weeks.current_week(config.timezone),
                  database_stamp(config.db_path))


@st.cache_data(ttl=600, max_entries=4, show_spinner="Building this week's digest…")
def _built(_config, db_path: str, week: str, signature: tuple) -> Digest:
    return build_digest(_config)


def framed(html: str) -> str:
    """The digest's HTML for the app's iframe: links open in a new tab, and a policy that
    forbids scripts and requests heads the document."""
    head = "<head>"
    if head not in html:
        return f"{FRAME_BASE}{FRAME_POLICY}{html}"
    return html.replace(head, f"{head}{FRAME_BASE}{FRAME_POLICY}", 1)


def utc_minute(text) -> str:
    """A stored UTC time to the minute (``2026-12-01 08:00 UTC``)."""
    return f"{str(text)[:16].replace('T', ' ')} UTC"


def last_sent_line(sends: list[dict]) -> str:
    """When the last digest went out and to whom, in one line of Markdown."""
    if not sends:
        return "No digest has gone out yet."
    to = ", ".join(f"{common.code(row['recipient'])} ({CHANNEL_NAMES.get(row['channel'], '')})"
                   for row in sends)
    return (f"Last digest sent: {common.md_escape(sends[0]['week'])}, "
            f"{common.md_escape(utc_minute(sends[0]['sent_at']))}, to {to}.")


def send_now(config, digest: Digest, force: bool = False) -> None:
    """*Send now* (and *Send again*, ``force``): every channel set up, the outcome kept for
    the page (one line per recipient or error); a toast when something went out."""
    common.act(lambda: _deliver(config, digest, force), "")


def _deliver(config, digest: Digest, force: bool) -> str:
    if common.is_demo(config):  # the button is disabled; this holds even if it were not
        lines = [("error", "Demo data: nothing is sent.")]
    else:
        lines = [line for channel in delivery.channels(config)
                 for line in _send_channel(config, digest, channel, force)]
    st.session_state["digest_outcome"] = {"week": digest.week, "lines": lines}
    sent = sum(kind == "sent" for kind, _ in lines)
    return f"The {digest.week} digest went out ({sent} sent)." if sent else ""


def _send_channel(config, digest: Digest, channel: str, force: bool) -> list[tuple[str, str]]:
    """``(kind, line)`` for one channel: ``sent``, ``already`` or ``error`` (the error's
    own one-line message)."""
    send = delivery.send_email if channel == "email" else delivery.send_webhook
    name = CHANNEL_NAMES[channel]
    try:
        report = send(config, digest, force)
    except (delivery.DeliveryUnreachable, ConfigError) as error:
        return [("error", f"{name}: {error}")]
    return ([("sent", f"Sent the {digest.week} digest to {to} ({name}).")
             for to in report["sent"]]
            + [("already", f"Already sent to {to} this week ({name}).")
               for to in report["already"]]
            + [("error", f"{name}: the mail server refused {to}.")
               for to in report.get("refused", [])])


def show_outcome(week: str) -> bool:
    """The last send's outcome, one line each; True when it said *already sent*."""
    outcome = st.session_state.get("digest_outcome")
    if not outcome or outcome["week"] != week:
        return False
    show = {"sent": st.success, "already": st.info, "error": st.error}
    for kind, text in outcome["lines"]:
        show[kind](common.md_escape(text))
    return any(kind == "already" for kind, _ in outcome["lines"])


def send_controls(config, digest: Digest) -> None:
    """*Send now*, disabled on the demo and without a channel (saying why); the outcome;
    *Send again* once it said the digest already went out; when the last one did."""
    demo, channels = common.is_demo(config), delivery.channels(config)
    names = " and ".join(CHANNEL_NAMES[channel] for channel in channels)
    st.button("Send now", key="digest_send", icon=":material/send:", type="primary",
              disabled=demo or not channels, on_click=send_now, args=(config, digest),
              help=f"Send this week's digest by {names}" if names else None)
    if demo:
        st.caption(DEMO_HINT)
    elif not channels:
        st.caption(SETUP_HINT)
    if show_outcome(digest.week) and not demo:
        st.button("Send again", key="digest_send_again", icon=":material/replay:",
                  on_click=send_now, args=(config, digest, True),
                  help="Send it once more to those who already had it this week")
    st.caption(last_sent_line(last_sends(config.db_path)))
