"""`octet digest --send` against real local servers: an aiosmtpd SMTP server (plain,
STARTTLS with a self-signed certificate, login), a closed port, and a stdlib HTTP server
for the webhook; the once-per-week rule, --force, --dry-run, what is marked sent, what is
never printed or stored; and the digest settings' validation."""
from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.server import ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipeline.cli import main
from pipeline.core import weeks
from pipeline.core.settings import load_settings
from pipeline.stages.digest import build_digest
from storage.db import connect
from tests.helpers import REPO, JsonHandler, serving
from tests.test_digest import (CONTROL, PICK_ID, TextCollector, build_library, copy_library,
                               store_hostile_library, unjoined)

FROM, TO = "Octet Digest <octet@example.org>", "me@example.org"
APP_URL = "http://octet.example:8501"
SECRET_PATH = "/services/T0000/B0000/s3cr3tWebhookToken"
PASSWORD = "correct horse battery staple"


# ---- servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps every message, how it came (TLS, login), and
    refuses the recipients in ``refuse`` and, with ``refuse_data``, every message; with
    ``quit_answer`` it answers QUIT so."""

    def __init__(self, refuse: tuple[str, ...] = (), refuse_data: str = "", quit_answer: str = ""):
        self.messages: list[dict] = []
        self.refuse, self.refuse_data, self.quit_answer = refuse, refuse_data, quit_answer
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_QUIT(self, server, session, envelope):
        return self.quit_answer or "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        self.messages.append({
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "message": email.message_from_bytes(envelope.original_content,
                                                policy=email.policy.default),
            "raw": envelope.original_content,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": session.authenticated})
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login, auth_data.password))
            good = (auth_data.login, auth_data.password) == (b"octet", PASSWORD.encode())
            return AuthResult(success=good, handled=False)  # aiosmtpd answers 235 or 535
        return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_factory():
    """Start aiosmtpd servers on 127.0.0.1 (free ports); all stopped after the test. The
    servers run in this process, so their log (``mail.log``) is kept out of the root logger,
    where the CLI under test would print the server's own errors as its own."""
    started = []
    server_log = logging.getLogger("mail.log")
    server_log.propagate = False

    def start(mailbox: Mailbox | None = None, host: str = "127.0.0.1", **options):
        mailbox = mailbox or Mailbox()
        if "authenticator" in options:
            options["authenticator"] = mailbox.authenticate
        controller = Controller(mailbox, hostname=host, port=free_port(), **options)
        controller.start()
        started.append(controller)
        return controller, mailbox

    yield start
    for controller in started:
        controller.stop()
    server_log.propagate = True


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 (openssl)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def tls_context(certificate):
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def webhook_handler(statuses: list[int], received: list[dict]):
    """A handler that answers each POST with the next of ``statuses`` (then 200)."""

    class Webhook(JsonHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body),
                             "type": self.headers["Content-Type"]})
            status = statuses.pop(0) if statuses else 200
            # A refusal echoes the request, as many servers do: the secret path comes back.
            self.send_json(status, {"ok": True} if status == 200 else
                           {"error": f"Cannot POST {self.path}"})

    return Webhook


@pytest.fixture
def webhook():
    """A local webhook receiver: ``(url with a secret path, received, statuses)``."""
    received, statuses = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), webhook_handler(statuses, received))
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}{SECRET_PATH}", received, statuses


# ---- the library and the settings ---------------------------------------------------------

@pytest.fixture(scope="module")
def library_file(tmp_path_factory):
    return build_library(tmp_path_factory)


@pytest.fixture
def library(settings, library_file):
    return copy_library(settings, library_file)


@pytest.fixture
def mail_env(monkeypatch, library):
    """Settings for one local SMTP server; returns a function that points them at a port."""
    monkeypatch.setenv("OCTET_DIGEST_FROM", FROM)
    monkeypatch.setenv("OCTET_DIGEST_TO", TO)
    monkeypatch.setenv("OCTET_APP_URL", APP_URL)
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "0")
    monkeypatch.setenv("OCTET_HTTP_TIMEOUT", "20")

    def point(controller, scheme: str = "smtp"):
        monkeypatch.setenv("OCTET_SMTP_URL", f"{scheme}://{controller.hostname}:{controller.port}")
    return point


def sends(settings) -> list[dict]:
    with connect(settings.db_path, read_only=True) as con:
        rows = con.execute("SELECT week, channel, recipient, message_id, sends FROM digest_sends "
                           "ORDER BY channel, recipient").fetchall()
    return [dict(zip(("week", "channel", "recipient", "message_id", "sends"), row)) for row in rows]


def this_week(settings) -> str:
    return weeks.current_week(settings.timezone)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`octet` in a process of its own, with this test's environment."""
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True, timeout=120)


def everything_written(settings, *outputs: str) -> str:
    """The outputs, the digest_sends table and every text file under the data directory."""
    texts = list(outputs) + [json.dumps(sends(settings), default=str)]
    for path in settings.home.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


# ---- e-mail ------------------------------------------------------------------------------

def test_the_mail_arrives_with_its_headers_both_parts_and_links(settings, mail_env, smtp_factory):
    controller, mailbox = smtp_factory()
    mail_env(controller)
    result = run_cli("digest", "--send")
    week = this_week(settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Sent the {week} digest to {TO} (e-mail)\n" and result.stderr == ""
    [received] = mailbox.messages
    assert received["mail_from"] == "octet@example.org" and received["rcpt_tos"] == [TO]
    message, digest = received["message"], build_digest(load_settings())
    assert message["From"] == FROM and message["To"] == TO
    assert message["Subject"] == digest.subject == f"Octet {week}: {digest.pick.title}"
    sent_at = parsedate_to_datetime(message["Date"])
    assert sent_at.tzinfo is not None  # a known zone (GMT), not "-0000"
    assert abs(sent_at - datetime.now(timezone.utc)) < timedelta(hours=1)
    assert re.fullmatch(rf"<octet\.{week}\.[0-9a-f]{{16}}@example\.org>", message["Message-ID"])
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Octet-Week"] == week
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, page = (part.get_content() for part in parts)
    pick_url, pick_app = f"https://arxiv.org/abs/{digest.pick.arxiv_id}", \
        f"{APP_URL}/?paper={digest.pick.arxiv_id}"
    assert f"arXiv: {pick_url}" in text and f"In Octet: {pick_app}" in text
    parser = TextCollector()
    parser.feed(page)
    hrefs = [href for href, _ in parser.links]
    assert pick_url in hrefs and pick_app in hrefs and APP_URL in hrefs
    assert all(href.startswith(("https://arxiv.org/abs/", APP_URL)) for href in hrefs)
    for runner in digest.runners_up:
        assert runner.url in hrefs and runner.app_url in hrefs and runner.url in text
    assert sends(settings) == [{"week": week, "channel": "email", "recipient": TO,
                                "message_id": message["Message-ID"], "sends": 1}]


def test_a_hostile_title_is_escaped_in_both_parts_and_the_subject(settings, mail_env,
                                                                   smtp_factory, library):
    store_hostile_library(settings, library)
    controller, mailbox = smtp_factory()
    mail_env(controller)
    assert main(["digest", "--send"]) == 0
    [received] = mailbox.messages
    message, digest = received["message"], build_digest(load_settings())
    assert digest.pick.arxiv_id == PICK_ID
    assert received["rcpt_tos"] == [TO]  # no Bcc: smuggled in by the title
    assert message["Bcc"] is None and message["X-Injected"] is None
    header_names = [line.split(b":")[0] for line in received["raw"].split(b"\r\n\r\n")[0]
                    .split(b"\r\n") if line and not line[:1].isspace()]
    assert b"Bcc" not in header_names and b"X-Injected" not in header_names
    assert message["Subject"] == digest.subject and "\n" not in message["Subject"]
    assert message["Subject"].startswith(f"Octet {digest.week}: # Heading Bcc: evil@example.org")
    text, page = (part.get_content() for part in message.iter_parts())
    assert not CONTROL.search(text.replace("\n", "").replace("\r", ""))
    parser = TextCollector()
    parser.feed(page)
    parser.close()
    assert parser.open == [] and "script" not in parser.tags and "img" not in parser.tags
    assert all(href.startswith(("https://arxiv.org/abs/", APP_URL)) for href, _ in parser.links)
    pick_titles = [unjoined(t) for h, t in parser.links if h == digest.pick.url]
    assert digest.pick.title in pick_titles
    assert "<script>" in unjoined("".join(parser.text))  # shown as text, intact


def test_once_a_week_unless_forced(settings, mail_env, smtp_factory, capsys):
    controller, mailbox = smtp_factory()
    mail_env(controller)
    week = this_week(settings)
    assert main(["digest", "--send"]) == 0
    capsys.readouterr()
    assert main(["digest", "--send"]) == 0
    assert capsys.readouterr().out == \
        f"{week} digest already sent to {TO} (e-mail); --force sends again\n"
    assert len(mailbox.messages) == 1
    assert main(["digest", "--send", "--force"]) == 0
    assert capsys.readouterr().out == f"Sent the {week} digest to {TO} (e-mail)\n"
    assert len(mailbox.messages) == 2 and sends(settings)[0]["sends"] == 2
    assert mailbox.messages[0]["message"]["Message-ID"] != mailbox.messages[1]["message"]["Message-ID"]


def test_several_recipients_each_get_one_mail(settings, mail_env, smtp_factory, monkeypatch,
                                              capsys):
    controller, mailbox = smtp_factory()
    mail_env(controller)
    monkeypatch.setenv("OCTET_DIGEST_TO", "a@example.org, Bee <B@example.org>, b@example.org")
    assert main(["digest", "--send"]) == 0
    assert [(m["rcpt_tos"], m["message"]["To"]) for m in mailbox.messages] == [
        (["a@example.org"], "a@example.org"), (["B@example.org"], "Bee <B@example.org>")]
    assert [row["recipient"] for row in sends(settings)] == ["a@example.org", "b@example.org"]
    monkeypatch.setenv("OCTET_DIGEST_TO", "a@example.org, c@example.org")
    capsys.readouterr()
    assert main(["digest", "--send"]) == 0
    assert len(mailbox.messages) == 3 and mailbox.messages[2]["rcpt_tos"] == ["c@example.org"]
    out = capsys.readouterr().out
    assert "already sent to a@example.org" in out and "Sent the" in out and "to c@example.org" in out


def test_a_refused_recipient_is_reported_and_left_unmarked(settings, mail_env, smtp_factory,
                                                          monkeypatch, capsys):
    controller, mailbox = smtp_factory(Mailbox(refuse=("nobody@example.org",)))
    mail_env(controller)
    monkeypatch.setenv("OCTET_DIGEST_TO", "nobody@example.org, me@example.org")
    assert main(["digest", "--send"]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert "refused nobody@example.org" in line and "SMTP 550" in line and "digest_to" in line
    assert [m["rcpt_tos"] for m in mailbox.messages] == [["me@example.org"]]
    assert [row["recipient"] for row in sends(settings)] == ["me@example.org"]


def test_a_refused_message_is_exit_2_and_marks_nothing(settings, mail_env, smtp_factory, capsys):
    controller, _ = smtp_factory(Mailbox(refuse_data="554 5.7.1 rejected as spam"))
    mail_env(controller)
    assert main(["digest", "--send"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "SMTP 554" in line and "digest_from" in line and sends(settings) == []


def test_an_odd_answer_to_quit_changes_nothing_that_was_sent(settings, mail_env, smtp_factory,
                                                             monkeypatch, capsys):
    controller, mailbox = smtp_factory(Mailbox(quit_answer="421 4.3.2 shutting down"))
    mail_env(controller)
    monkeypatch.setenv("OCTET_DIGEST_TO", "a@example.org, b@example.org")
    assert main(["digest", "--send"]) == 0
    assert capsys.readouterr().err == "" and len(mailbox.messages) == 2
    assert [row["recipient"] for row in sends(settings)] == ["a@example.org", "b@example.org"]


def test_dry_run_sends_and_marks_nothing(settings, mail_env, smtp_factory, webhook, monkeypatch,
                                         capsys):
    controller, mailbox = smtp_factory()
    mail_env(controller)
    url, received, _ = webhook
    monkeypatch.setenv("OCTET_WEBHOOK_URL", url)
    assert main(["digest", "--send", "--dry-run"]) == 0
    out = capsys.readouterr().out
    digest = build_digest(load_settings())
    assert f"# dry run: email: would send to {TO}" in out
    assert f"Subject: {digest.subject}" in out and f"From: {FROM}" in out
    assert "# dry run: webhook: would send to 127.0.0.1#" in out and '"octet_digest": 1' in out
    assert SECRET_PATH not in out and "s3cr3t" not in out
    assert mailbox.messages == [] and received == [] and sends(settings) == []


def test_an_unreachable_server_is_exit_3_and_marks_nothing(settings, mail_env, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("OCTET_SMTP_URL", f"smtp://127.0.0.1:{port}")
    result = run_cli("digest", "--send")
    assert result.returncode == 3 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("octet: ") and f"127.0.0.1:{port}" in line and "smtp_url" in line
    assert "nothing was marked sent" in line and sends(settings) == []


def test_starttls_with_a_self_signed_certificate_on_loopback(settings, mail_env, smtp_factory,
                                                             certificate):
    controller, mailbox = smtp_factory(tls_context=tls_context(certificate),
                                       require_starttls=True)
    mail_env(controller)
    assert main(["digest", "--send"]) == 0
    [received] = mailbox.messages
    assert received["tls"] and not received["authenticated"]
    assert sends(settings)[0]["recipient"] == TO


def test_smtps_from_the_start(settings, mail_env, smtp_factory, certificate):
    controller, mailbox = smtp_factory(ssl_context=tls_context(certificate))
    mail_env(controller, "smtps")
    assert main(["digest", "--send"]) == 0
    assert [m["tls"] for m in mailbox.messages] == [True]


def test_login_over_starttls_and_a_wrong_password(settings, mail_env, smtp_factory, certificate,
                                                  monkeypatch, capsys):
    controller, mailbox = smtp_factory(tls_context=tls_context(certificate), authenticator=True,
                                       auth_require_tls=True, auth_required=True)
    mail_env(controller)
    monkeypatch.setenv("OCTET_SMTP_USER", "octet")
    monkeypatch.setenv("OCTET_SMTP_PASSWORD_ENV", "MY_MAIL_PASSWORD")
    assert main(["digest", "--send"]) == 2  # the variable is not set
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MY_MAIL_PASSWORD" in err and mailbox.logins == []
    monkeypatch.setenv("MY_MAIL_PASSWORD", "wrong password 123")
    assert main(["digest", "--send"]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert "refused the login of 'octet'" in line and "MY_MAIL_PASSWORD" in line
    assert mailbox.messages == [] and sends(settings) == []
    assert "wrong password 123" not in everything_written(settings, captured.out, captured.err)
    monkeypatch.setenv("MY_MAIL_PASSWORD", PASSWORD)
    assert main(["digest", "--send"]) == 0
    captured = capsys.readouterr()
    [received] = mailbox.messages
    assert received["tls"] and received["authenticated"]
    assert PASSWORD not in everything_written(settings, captured.out, captured.err)


def non_loopback_address() -> str | None:
    """This machine's own address on a network interface, if it has one (no packet is sent:
    a UDP socket only picks the route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_off_this_machine_no_password_goes_unencrypted_and_certificates_are_checked(
        settings, mail_env, smtp_factory, certificate, monkeypatch, capsys):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    plain, mailbox = smtp_factory(host=address, authenticator=True, auth_require_tls=False)
    mail_env(plain)
    monkeypatch.setenv("OCTET_SMTP_USER", "octet")
    monkeypatch.setenv("OCTET_SMTP_PASSWORD", PASSWORD)
    assert main(["digest", "--send"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "offers no STARTTLS" in line and "smtps://" in line
    assert mailbox.logins == [] and mailbox.messages == [] and sends(settings) == []
    secured, _ = smtp_factory(host=address, tls_context=tls_context(certificate))
    mail_env(secured)  # a self-signed certificate for localhost, not this address
    assert main(["digest", "--send"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "certificate" in lines[0] and "smtp_url" in lines[0] and sends(settings) == []


# ---- the webhook -------------------------------------------------------------------------

PAPER_FIELDS = {"role", "family", "arxiv_id", "title", "url", "app_url", "families", "tldr", "why"}


def test_the_webhook_gets_the_documented_json_once_a_week(settings, mail_env, webhook,
                                                          monkeypatch, capsys):
    url, received, _ = webhook
    monkeypatch.delenv("OCTET_DIGEST_TO")  # the webhook alone
    monkeypatch.setenv("OCTET_WEBHOOK_URL", url)
    assert main(["digest", "--send"]) == 0
    captured = capsys.readouterr()
    [post] = received
    body, digest, week = post["body"], build_digest(load_settings()), this_week(settings)
    assert post["path"] == SECRET_PATH and post["type"] == "application/json"
    assert (body["octet_digest"], body["week"], body["title"], body["url"]) == \
        (1, week, digest.subject, APP_URL)
    roles = [paper["role"] for paper in body["papers"]]
    assert roles[:3] == ["pick", "runner-up", "runner-up"] and set(roles[3:]) == {"family"}
    assert all(set(paper) == PAPER_FIELDS for paper in body["papers"])
    pick = body["papers"][0]
    assert pick["arxiv_id"] == digest.pick.arxiv_id and pick["tldr"] and pick["why"]
    assert pick["app_url"] == f"{APP_URL}/?paper={pick['arxiv_id']}"
    assert pick["url"] == f"https://arxiv.org/abs/{pick['arxiv_id']}"
    assert all(p["family"] in p["families"] for p in body["papers"] if p["role"] == "family")
    assert set(body["habit"]) >= {"streak", "longest_streak", "papers_read", "coverage",
                                  "next_family"}
    assert body["last_week"] is None
    assert body["markdown"].startswith("# Octet · week") and body["text"]
    assert 0 < len(body["content"]) <= 2000 and body["allowed_mentions"] == {"parse": []}
    assert captured.out.startswith(f"Sent the {week} digest to 127.0.0.1#")
    [row] = sends(settings)
    assert row["channel"] == "webhook" and row["recipient"].startswith("127.0.0.1#")
    assert main(["digest", "--send"]) == 0
    assert len(received) == 1 and "already sent to 127.0.0.1#" in capsys.readouterr().out
    assert main(["digest", "--send", "--force"]) == 0 and len(received) == 2
    captured = capsys.readouterr()
    assert "s3cr3t" not in everything_written(settings, captured.out, captured.err)


def test_a_503_then_200_is_retried(settings, mail_env, webhook, monkeypatch):
    url, received, statuses = webhook
    monkeypatch.delenv("OCTET_DIGEST_TO")  # the webhook alone
    statuses.append(503)
    monkeypatch.setenv("OCTET_WEBHOOK_URL", url)
    monkeypatch.setenv("OCTET_HTTP_RETRIES", "2")
    assert main(["digest", "--send"]) == 0
    assert len(received) == 2 and received[0]["body"] == received[1]["body"]
    assert [row["channel"] for row in sends(settings)] == ["webhook"]


def test_a_refusing_webhook_is_exit_2_naming_the_setting(settings, mail_env, webhook, monkeypatch,
                                                         capsys):
    url, received, statuses = webhook
    monkeypatch.delenv("OCTET_DIGEST_TO")  # the webhook alone
    statuses.append(404)
    monkeypatch.setenv("OCTET_WEBHOOK_URL", url)
    assert main(["digest", "--send"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "HTTP 404" in line and "webhook_url" in line and "s3cr3t" not in line
    assert sends(settings) == []


def test_an_unreachable_webhook_is_exit_3_while_the_mail_goes_out(settings, mail_env,
                                                                  smtp_factory, monkeypatch):
    controller, mailbox = smtp_factory()
    mail_env(controller)
    secret_url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens
    monkeypatch.setenv("OCTET_WEBHOOK_URL", secret_url)
    result = run_cli("digest", "--send")
    assert result.returncode == 3
    assert result.stdout == f"Sent the {this_week(settings)} digest to {TO} (e-mail)\n"
    [line] = result.stderr.splitlines()
    assert "webhook" in line and "webhook_url" in line
    assert len(mailbox.messages) == 1
    assert [(row["channel"], row["recipient"]) for row in sends(settings)] == [("email", TO)]
    assert "s3cr3t" not in everything_written(settings, result.stdout, result.stderr)


# ---- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("smtp_url", "http://mail.example.org:587"), ("smtp_url", "smtp://"),
    ("smtp_url", "smtp://mail.example.org:587?tls=off"),
    ("smtp_url", "smtp://me:password@mail.example.org"), ("smtp_url", "smtp://mail.example.org:x"),
    ("digest_to", "a@b.c\nBcc: x@y.z"), ("digest_to", "a@b.c, Bcc: x@y.z"),
    ("digest_to", "not an address"), ("digest_to", "a@b.c <d@e.f>"), ("digest_to", "me@example"),
    ("digest_from", "Octet <octet@example.org>\r\nBcc: x@y.z"), ("digest_from", "octet"),
    ("webhook_url", "ftp://hooks.example.org/s3cr3t"), ("webhook_url", "hooks.example.org/s3cr3t"),
    ("webhook_url", "https:///s3cr3t"), ("webhook_url", "https://hooks.example.org/s3cr3t\x1b[2J"),
    ("smtp_password_env", "MY PASSWORD"), ("digest_per_family", "21"), ("app_url", "localhost:8501"),
])
def test_bad_digest_settings_are_exit_2_naming_the_setting(settings, library, capsys, name, value):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"OCTET_{name.upper()}", value)
        assert main(["digest"]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert f"OCTET_{name.upper()}" in line and captured.out == ""
    assert "s3cr3t" not in line


def test_bad_addresses_in_config_toml_name_the_setting(settings, library, capsys, monkeypatch):
    monkeypatch.setenv("OCTET_DIGEST_FROM", FROM)
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "config.toml").write_text(
        'digest_to = ["me@example.org", "a@b.c\\nBcc: x@y.z"]\n', encoding="utf-8")
    assert main(["digest"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "config.toml: digest_to" in line and "control characters" in line
    (settings.home / "config.toml").write_text(
        'digest_to = ["Me <me@example.org>", "\\"Doe, J\\" <j@example.org>"]\n', encoding="utf-8")
    assert main(["digest", "--send", "--dry-run"]) == 0  # names with commas, quoted, are fine
    assert "would send to Me <me@example.org>, \"Doe, J\" <j@example.org>" in capsys.readouterr().out


def test_send_without_any_channel_says_what_to_set(settings, library, capsys):
    assert main(["digest", "--send"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "smtp_url" in line and "digest_to" in line and "webhook_url" in line
