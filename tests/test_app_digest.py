"""The Digest page with Streamlit's AppTest on a real DuckDB file: the week's digest in its
frame (pick, family sections), the two downloads carrying exactly the HTML and the Markdown,
*Send now* disabled without a channel and on the demo, and a real SMTP server (aiosmtpd on
127.0.0.1) receiving one mail, then *already sent*, then *Send again*; an unreachable
server is said in one line and nothing is marked sent."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from pipeline.core import weeks
from pipeline.core.families import BY_CODE
from pipeline.stages.digest import build_digest
from pipeline.stages.digest_format import to_html, to_markdown
from storage import digests
from tests.helpers import open_app, store_real_papers
from tests.test_ranking import store_labeled_papers
from ui.common import WORD_JOINER, md_escape
from ui.digest_view import DEMO_HINT, FRAME_POLICY

PAGE = "ui/digest.py"
READER = "reader@example.org"


def _text(app: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "title", "caption", "info", "success", "warning",
                                  "error", "toast") for e in getattr(app, kind)]
    return "\n".join(str(part) for part in parts).replace("\\", "").replace(WORD_JOINER, "")


def _frame(app: AppTest) -> str:
    """The HTML the page's iframe shows."""
    frames = app.get("iframe")
    assert len(frames) == 1
    return frames[0].proto.srcdoc


def _send_button(app: AppTest):
    return app.button(key="digest_send")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content,
                                                                    policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def library(settings):
    """The reader's own database: real papers with the shipped head's families and
    extractive summaries, all arrived this week."""
    return store_labeled_papers(settings.db_path, history=20, inbox=40, summaries=True)


@pytest.fixture
def mail_server(monkeypatch):
    """A real SMTP server on 127.0.0.1 that the settings point at; yields its mailbox."""
    from aiosmtpd.controller import Controller

    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OCTET_SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("OCTET_DIGEST_TO", READER)
    monkeypatch.setenv("OCTET_DIGEST_FROM", "Octet <octet@example.org>")
    try:
        yield mailbox
    finally:
        controller.stop()


def test_the_page_shows_the_weeks_digest_with_its_pick_and_family_sections(settings, library):
    app = open_app(PAGE)
    assert [t.value for t in app.title] == ["Digest"]
    assert not app.main.markdown  # captions only: no bare string of the page became text
    digest = build_digest(settings)
    assert digest.pick is not None and digest.sections
    frame = _frame(app)
    assert digest.pick.title.split()[0] in frame
    for section in digest.sections:
        assert f"{section.code} · {BY_CODE[section.code].name}" in frame
    assert "<script" not in frame.lower()
    assert frame.index(FRAME_POLICY) < frame.index("<body")  # the policy heads the document
    assert digest.week in _text(app)


def test_an_empty_database_shows_a_digest_with_no_paper_yet(settings):
    app = open_app(PAGE)
    assert "No paper stored yet" in _frame(app)
    assert _send_button(app).disabled


def test_the_downloads_carry_the_html_and_the_markdown(settings, library):
    app = open_app(PAGE)
    digest = build_digest(settings)
    buttons = {button.proto.label: button.proto for button in app.get("download_button")}
    assert set(buttons) == {"Download HTML", "Download Markdown"}
    # The button's URL names its file by a hash of the data, the type and the file name:
    # the same hash means the same bytes under the same name.
    for label, data, mime, name in (
            ("Download HTML", to_html(digest), "text/html", f"octet-digest-{digest.week}.html"),
            ("Download Markdown", to_markdown(digest), "text/markdown",
             f"octet-digest-{digest.week}.md")):
        file_id = _calculate_file_id(data.encode("utf-8"), mime, name)
        assert buttons[label].url.rsplit("/", 1)[1].split(".")[0] == file_id, label
    assert digest.week == weeks.current_week(settings.timezone)  # octet-digest-2026-W49.html


def test_send_now_is_disabled_without_a_channel_and_says_what_to_set(settings, library):
    app = open_app(PAGE)
    assert _send_button(app).disabled
    text = _text(app)
    assert "smtp_url" in text and "digest_to" in text and "webhook_url" in text
    assert "No digest has gone out yet." in text


def test_the_demo_is_never_sent(settings, mail_server):
    store_real_papers(settings.demo_db_path, 20)
    app = open_app(PAGE)
    assert _send_button(app).disabled
    assert DEMO_HINT.replace("`", "") in _text(app).replace("`", "")
    assert mail_server.messages == []


def test_send_now_mails_once_then_says_already_sent_then_sends_again(settings, library,
                                                                     mail_server):
    app = open_app(PAGE)
    week = weeks.current_week(settings.timezone)
    assert not _send_button(app).disabled
    _send_button(app).click().run()
    assert not app.exception
    assert len(mail_server.messages) == 1
    recipients, message = mail_server.messages[0]
    assert recipients == [READER] and message["Subject"].startswith(f"Octet {week}")
    assert [s.value for s in app.success] == [
        md_escape(f"Sent the {week} digest to {READER} (e-mail).")]
    assert "Send again" not in [b.label for b in app.button]
    assert f"Last digest sent: {week}" in _text(app) and READER in _text(app)

    _send_button(app).click().run()  # the once-per-week rule
    assert len(mail_server.messages) == 1
    assert [i.value for i in app.info] == [
        md_escape(f"Already sent to {READER} this week (e-mail).")]
    app.button(key="digest_send_again").click().run()  # on purpose
    assert len(mail_server.messages) == 2
    assert [row["sends"] for row in digests.last_sends(settings.db_path)] == [2]


def test_an_unreachable_server_is_one_line_and_nothing_is_marked_sent(settings, library,
                                                                      monkeypatch):
    monkeypatch.setenv("OCTET_SMTP_URL", f"smtp://127.0.0.1:{_free_port()}")  # nobody listens
    monkeypatch.setenv("OCTET_DIGEST_TO", READER)
    monkeypatch.setenv("OCTET_DIGEST_FROM", "octet@example.org")
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "0")
    app = open_app(PAGE)
    _send_button(app).click().run()
    errors = [e.value.replace("\\", "").replace(WORD_JOINER, "") for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("e-mail: the mail server 127.0.0.1:")
    assert "nothing was marked sent" in errors[0] and "\n" not in errors[0]
    assert digests.last_sends(settings.db_path) == []
    assert "Send again" not in [b.label for b in app.button]
