"""Sending the digest: e-mail through SMTP, and a JSON webhook.

A send is recorded (``storage.digests``) only after the server accepted it, one row per
week, channel and recipient, so a digest goes out at most once a week to each recipient
(``force`` sends again) and a failure leaves nothing marked as sent.

SMTP: ``smtp_url`` is ``smtp://host:port`` (STARTTLS whenever the server offers it) or
``smtps://host:port`` (TLS from the start). Certificates are verified, except on a
loopback address (a local relay's self-signed certificate; the mail never leaves the
machine there). The password is read from the environment variable ``smtp_password_env``
names, never from ``config.toml``, never printed, and never sent unencrypted to a server
off this machine.

Exit codes: a server that cannot be reached or drops the connection is ``DeliveryUnreachable``
(exit 3, try again later); a login, a certificate, a sender or a message the server refuses
for good (SMTP 5xx) is ``ConfigError`` (exit 2: the setting to fix is named). A recipient
the server refuses is reported and left unmarked; the others still get the digest.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import random
import secrets
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import urlsplit

import requests

from pipeline.core.errors import ConfigError
from pipeline.core.paper import strip_controls
from pipeline.core.settings import Settings
from pipeline.stages.digest import Digest
from pipeline.stages.digest_format import to_html, to_payload, to_text
from pipeline.stages.http import BodyTooLarge, http_request
from pipeline.stages.sources import USER_AGENT, _retry_after
from storage import digests

log = logging.getLogger(__name__)

SMTP_PORTS = {"smtp": 25, "smtps": 465}
"""The port when ``smtp_url`` names none."""

MAX_WAIT_SECONDS = 60.0
"""The longest wait between two tries."""


class DeliveryUnreachable(RuntimeError):
    """The mail server or the webhook could not be reached (exit 3); nothing was marked
    sent for what did not go out."""


@dataclass(frozen=True)
class SmtpServer:
    """Where the mail goes, from ``smtp_url``."""

    scheme: str
    """``smtp`` (STARTTLS when offered) or ``smtps`` (TLS from the start)."""

    host: str
    """The server's host name or address."""

    port: int
    """Its port."""

    @property
    def loopback(self) -> bool:
        """Whether the server is on this machine (a local relay)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def smtp_server(settings: Settings) -> SmtpServer:
    """The server ``smtp_url`` names; ``ConfigError`` when it is not set."""
    if not settings.smtp_url:
        raise ConfigError("no mail server is set; set smtp_url in config.toml or "
                          "OCTET_SMTP_URL (smtp://host:587 or smtps://host:465)")
    parts = urlsplit(settings.smtp_url)
    return SmtpServer(parts.scheme, parts.hostname or "", parts.port or SMTP_PORTS[parts.scheme])


def sender(settings: Settings) -> str:
    """The From address: ``digest_from``, else ``smtp_user`` when it is an address."""
    if settings.digest_from:
        return settings.digest_from
    if "@" in parseaddr(settings.smtp_user)[1]:
        return settings.smtp_user
    raise ConfigError("the digest needs a From address; set digest_from in config.toml or "
                      "OCTET_DIGEST_FROM (for example Octet <me@example.org>)")


def recipient_key(recipient: str) -> str:
    """The address alone (``Me <me@x.org>`` → ``me@x.org``), lower-cased: one row per
    mailbox in the once-per-week rule."""
    return parseaddr(recipient)[1].lower()


def build_message(digest: Digest, from_address: str, to_address: str) -> EmailMessage:
    """The digest as a multipart/alternative mail: the plain text first, then the HTML."""
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = from_address
    message["To"] = to_address
    message["Date"] = formatdate(usegmt=True)  # "GMT": a zone; "-0000" would say "unknown"
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "octet.invalid"
    # Short enough for one header line (make_msgid's ids fold, and some readers keep the fold).
    message["Message-ID"] = f"<octet.{digest.week}.{secrets.token_hex(8)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies to a digest
    message["X-Octet-Week"] = digest.week
    message.set_content(to_text(digest))
    message.add_alternative(to_html(digest), subtype="html")
    return message


def recipients(settings: Settings) -> list[str]:
    """``digest_to`` with each mailbox once (``me@x.org`` and ``Me <me@x.org>`` are one)."""
    by_key: dict[str, str] = {}
    for address in settings.digest_to:
        by_key.setdefault(recipient_key(address), address)
    return list(by_key.values())


def email_plan(settings: Settings, digest: Digest, force: bool = False) -> dict:
    """Who gets the digest now and who had it already this week."""
    if not settings.digest_to:
        raise ConfigError("no recipient is set; set digest_to in config.toml or "
                          "OCTET_DIGEST_TO (one address, or several separated by commas)")
    done = digests.sent_recipients(settings.db_path, digest.week, "email")
    wanted = recipients(settings)
    due = [to for to in wanted if force or recipient_key(to) not in done]
    return {"channel": "email", "due": due, "already": [to for to in wanted if to not in due]}


def send_email(settings: Settings, digest: Digest, force: bool = False) -> dict:
    """Mail the digest to every recipient due; record each send the server accepted.
    ``refused`` lists the recipients the server turned down, ``answers`` what it said.
    Raises ``DeliveryUnreachable`` (exit 3) or ``ConfigError`` (exit 2: login, certificate,
    sender or message refused)."""
    plan = {**email_plan(settings, digest, force), "sent": [], "refused": [], "answers": {}}
    if not plan["due"]:
        return plan
    server, from_address = smtp_server(settings), sender(settings)
    connection = _connected(settings, server)
    try:
        _send_each(settings, digest, server, connection, from_address, plan)
    finally:
        _quit(connection)
    return plan


def _send_each(settings: Settings, digest: Digest, server: SmtpServer, connection: smtplib.SMTP,
               from_address: str, plan: dict) -> None:
    """One message per recipient due, each recorded as soon as the server took it."""
    for to_address in plan["due"]:
        message = build_message(digest, from_address, to_address)
        try:
            connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:  # this mailbox only; the others go
            plan["refused"].append(to_address)
            plan["answers"][to_address] = _first(error)
            continue
        except smtplib.SMTPResponseException as error:
            raise _refusal(server, plan, error) from None
        except OSError as error:  # SMTPServerDisconnected too
            raise DeliveryUnreachable(
                f"the mail server {server.host}:{server.port} dropped the connection "
                f"({type(error).__name__}) after {len(plan['sent'])} of "
                f"{len(plan['due'])} messages; run `octet digest --send` again: those "
                "sent are marked and are not sent twice") from None
        digests.record_send(settings.db_path, digest.week, "email",
                            recipient_key(to_address), message["Message-ID"])
        plan["sent"].append(to_address)


def _quit(connection: smtplib.SMTP) -> None:
    """Say goodbye; what the server answers to QUIT changes nothing that was sent."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _answer(code: int, text: bytes | str) -> str:
    """The server's answer on one short line (it is untrusted text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = " ".join(strip_controls(text).split())
    return f"SMTP {code} {line[:160]}".rstrip()


def _first(error: smtplib.SMTPRecipientsRefused) -> str:
    """The server's answer to the (one) refused recipient of a message."""
    return next((_answer(*answer) for answer in error.recipients.values()), "refused")


def _refusal(server: SmtpServer, plan: dict, error: smtplib.SMTPResponseException) -> Exception:
    """A refused sender or message: for good (5xx, exit 2) or for now (4xx, exit 3)."""
    answer = _answer(error.smtp_code, error.smtp_error)
    sent = f"{len(plan['sent'])} of {len(plan['due'])} messages went out and are marked"
    if error.smtp_code >= 500:
        return ConfigError(f"the mail server {server.host}:{server.port} refused the digest "
                           f"({answer}); {sent}; check digest_from (OCTET_DIGEST_FROM) and "
                           "what the server allows")
    return DeliveryUnreachable(f"the mail server {server.host}:{server.port} put the digest "
                               f"off ({answer}); {sent}; run `octet digest --send` again later")


def _connected(settings: Settings, server: SmtpServer) -> smtplib.SMTP:
    """An open, logged-in connection, tried ``http_retries`` more times when the server
    cannot be reached."""
    last_error = ""
    for attempt in range(settings.http_retries + 1):
        try:
            return _open(settings, server)
        except ssl.SSLCertVerificationError as error:  # trying again will not help
            raise ConfigError(
                f"the certificate of the mail server {server.host}:{server.port} could not be "
                f"verified ({error.verify_message}); put the host name its certificate names "
                "in smtp_url (OCTET_SMTP_URL)") from None
        except OSError as error:  # SMTPConnectError and SMTPServerDisconnected too
            last_error = f"{type(error).__name__}: {error}"
            log.warning("mail server %s:%s: %s (try %d)", server.host, server.port, last_error,
                        attempt + 1)
        if attempt < settings.http_retries:
            time.sleep(_backoff(attempt))
    raise DeliveryUnreachable(
        f"the mail server {server.host}:{server.port} could not be reached after "
        f"{settings.http_retries + 1} tries ({last_error}); check smtp_url (OCTET_SMTP_URL) and "
        "the network, then run `octet digest --send` again — nothing was marked sent")


def _open(settings: Settings, server: SmtpServer) -> smtplib.SMTP:
    context = _tls_context(server)
    if server.scheme == "smtps":
        connection = smtplib.SMTP_SSL(server.host, server.port, timeout=settings.http_timeout,
                                      context=context)
    else:
        connection = smtplib.SMTP(server.host, server.port, timeout=settings.http_timeout)
    try:
        connection.ehlo()
        if server.scheme == "smtp" and connection.has_extn("starttls"):
            connection.starttls(context=context)
            connection.ehlo()
        _login(settings, server, connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if server.loopback:  # a local relay's own certificate; the mail stays on this machine
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _login(settings: Settings, server: SmtpServer, connection: smtplib.SMTP) -> None:
    if not settings.smtp_user:
        return
    if not server.loopback and not isinstance(connection.sock, ssl.SSLSocket):
        raise ConfigError(f"the mail server {server.host}:{server.port} offers no STARTTLS, and "
                          "Octet sends no password unencrypted; use smtps://host:465 or the "
                          "server's STARTTLS port (usually 587) in smtp_url")
    password = os.environ.get(settings.smtp_password_env)
    if password is None:
        raise ConfigError(f"smtp_user is set but the environment variable "
                          f"{settings.smtp_password_env} (smtp_password_env) holding the "
                          "password is not; export it, e.g. in the schedule's environment")
    try:
        connection.login(settings.smtp_user, password)
    except smtplib.SMTPAuthenticationError as error:
        raise ConfigError(f"the mail server refused the login of {settings.smtp_user!r} "
                          f"(SMTP {error.smtp_code}); check smtp_user and the password in "
                          f"{settings.smtp_password_env}") from None
    except smtplib.SMTPNotSupportedError:
        raise ConfigError("the mail server offers no login (AUTH) on this connection; use "
                          "smtps:// or a port with STARTTLS, or leave smtp_user empty") from None


def _backoff(attempt: int) -> float:
    return min(MAX_WAIT_SECONDS, 2.0 * (2 ** attempt)) * (0.8 + 0.4 * random.random())


# ---- the webhook ---------------------------------------------------------------------------

def webhook_key(url: str) -> str:
    """How a webhook is recorded: its host and a digest of the whole URL (Slack and
    Discord put the secret in the path: it is never stored or shown)."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return f"{urlsplit(url).hostname or 'webhook'}#{digest}"


def webhook_plan(settings: Settings, digest: Digest, force: bool = False) -> dict:
    """Whether the webhook is due this week."""
    if not settings.webhook_url:
        raise ConfigError("no webhook is set; set webhook_url in config.toml or "
                          "OCTET_WEBHOOK_URL")
    key = webhook_key(settings.webhook_url)
    done = key in digests.sent_recipients(settings.db_path, digest.week, "webhook")
    return {"channel": "webhook", "due": [key] if force or not done else [],
            "already": [key] if done and not force else []}


def send_webhook(settings: Settings, digest: Digest, force: bool = False) -> dict:
    """POST the digest's JSON to ``webhook_url`` (retries as for arXiv); record it."""
    plan = webhook_plan(settings, digest, force)
    plan["sent"] = []
    if plan["due"]:
        _post(settings, to_payload(digest))
        digests.record_send(settings.db_path, digest.week, "webhook", plan["due"][0])
        plan["sent"] = plan["due"]
    return plan


def _post(settings: Settings, payload: dict) -> None:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    host, waited, last_error = urlsplit(settings.webhook_url).hostname, 0.0, ""
    for attempt in range(settings.http_retries + 1):
        wait = _backoff(attempt)
        try:
            response, body = http_request(session, "POST", settings.webhook_url, json=payload,
                                          seconds=settings.http_timeout, max_bytes=1024 * 1024)
        except (requests.RequestException, BodyTooLarge) as error:
            last_error = type(error).__name__
        else:
            if 200 <= response.status_code < 300:
                return
            last_error = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                raise ConfigError(f"the webhook at {host} refused the digest ({last_error}: "
                                  f"{_unsecret(body, settings.webhook_url)!r}); check "
                                  "webhook_url (OCTET_WEBHOOK_URL)")
            wait = max(wait, _retry_after(response.headers.get("Retry-After")))
        if attempt == settings.http_retries or waited + wait > settings.http_retry_budget:
            break
        waited += wait
        time.sleep(wait)
    raise DeliveryUnreachable(
        f"the webhook at {host} could not be reached after {attempt + 1} tries ({last_error}); "
        "check webhook_url (OCTET_WEBHOOK_URL) and the network — nothing was marked sent")


def _unsecret(body: bytes, url: str) -> str:
    """The start of a refusal's body without the URL's path or query (a server may echo
    the request, "Cannot POST /services/…", and the path is the webhook's secret)."""
    text = body.decode("utf-8", "replace")
    parts = urlsplit(url)
    secrets_in_url = [parts.path, parts.query, *parts.path.split("/"), *parts.query.split("&")]
    for secret in sorted((part for part in secrets_in_url if len(part) >= 6), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text[:200]


def channels(settings: Settings) -> list[str]:
    """The channels set up: ``email`` (smtp_url and digest_to), ``webhook``."""
    found = ["email"] if settings.smtp_url or settings.digest_to else []
    return found + (["webhook"] if settings.webhook_url else [])

