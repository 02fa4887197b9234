"""Issue 16, item 5: `octet status` (text and --json) and the Runs page say when the last
digest went out and to whom; a webhook shows as its host only (its URL is a secret)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from pipeline.cli import main
from pipeline.stages.delivery import webhook_key
from storage import digests
from storage.db import transaction
from tests.helpers import open_app, store_real_papers

WEBHOOK = "https://hooks.slack.com/services/T0000/B0000/SECRETsecret"


def send(db_path, week: str, channel: str, recipient: str, at: datetime) -> None:
    """Record a send as `octet digest --send` does, at a known instant."""
    digests.record_send(db_path, week, channel, recipient, "<id@octet>")
    with transaction(db_path) as con:
        con.execute("UPDATE digest_sends SET sent_at = ? WHERE week = ? AND channel = ? "
                    "AND recipient = ?", [at, week, channel, recipient])


@pytest.fixture
def sent(settings, monkeypatch):
    """Last week's digest went to one address; this week's to an address and a webhook."""
    monkeypatch.setenv("OCTET_TIMEZONE", "Asia/Tokyo")
    db = settings.db_path
    send(db, "2026-W48", "email", "old@example.org", datetime(2026, 11, 22, 23, tzinfo=timezone.utc))
    send(db, "2026-W49", "webhook", webhook_key(WEBHOOK),
         datetime(2026, 11, 29, 23, 0, 5, tzinfo=timezone.utc))
    send(db, "2026-W49", "email", "me@example.org", datetime(2026, 11, 29, 23, tzinfo=timezone.utc))
    return db


def test_status_before_any_digest(settings, capsys):
    assert main(["status"]) == 0
    assert "No digest sent yet" in capsys.readouterr().out.splitlines()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_digest"] is None


def test_status_names_the_last_digest_in_the_reader_zone(sent, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert ("Last digest: 2026-W49 sent 2026-11-30 08:00 Asia/Tokyo to me@example.org (e-mail), "
            "hooks.slack.com (webhook)") in out.splitlines()
    assert "SECRET" not in out and "#" not in out and "old@example.org" not in out


def test_status_json_has_the_last_digest(sent, capsys):
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    last = json.loads(out)["last_digest"]
    assert last["week"] == "2026-W49"
    assert datetime.fromisoformat(last["sent_at"]) == datetime(2026, 11, 29, 23, 0, 5,
                                                               tzinfo=timezone.utc)
    assert last["recipients"] == [{"channel": "email", "recipient": "me@example.org"},
                                  {"channel": "webhook", "recipient": "hooks.slack.com"}]
    assert "SECRET" not in out


def _page_text(app) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in getattr(app, kind)]
    # md_escape adds backslashes and word joiners (U+2060) that the page does not show
    return "\n".join(str(part) for part in parts).replace("\\", "").replace("\u2060", "")


def test_runs_page_shows_the_last_digest(settings, sent):
    from storage.runs import finish_run, start_run

    store_real_papers(settings.db_path, 10)
    run_id = start_run(settings.db_path, "run", ("cs.CL",))
    finish_run(settings.db_path, run_id, {"status": "done", "exit_code": 0, "announced": 10,
                                          "fetched": 10, "new": 10})
    text = _page_text(open_app("ui/runs.py"))
    assert ("Last digest: 2026-W49 sent 2026-11-30 08:00 Asia/Tokyo to me@example.org (e-mail), "
            "hooks.slack.com (webhook)") in text
    assert "SECRET" not in text


def test_runs_page_without_runs_or_digests_says_so(settings):
    text = _page_text(open_app("ui/runs.py"))
    assert "No runs yet" in text and "No digest sent yet" in text
    assert "--digest" in text  # and how to schedule one
