"""Soak tests for `octet run` with every stage on (fetch, classify, summarize, reading):
days replayed with seeded faults, SIGKILLs at seeded points of every stage, and 500 reader
actions issued from another process while a run writes. Real papers, a real DuckDB file,
real HTTP to the local arXiv replay server, the packaged encoder and the extractive
summarizer (offline); nothing is mocked.

Sizes are set by the CPU: on the shared 2-core test machine the packaged encoder classifies
20-60 papers a second, and each `octet run` process that classifies spends 5-20 s importing
torch and the encoder. So the fault soak replays three full real days of a quiet week
(126-137 papers each) in one process, and the kill and concurrency tests use 90-100 papers.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests.arxiv_server import Fault, ReplayServer
from tests.helpers import REPO, real_listings, states_of
from pipeline.cli import main
from storage.db import connect

pytestmark = pytest.mark.slow


@pytest.fixture
def server(monkeypatch):
    with ReplayServer() as running:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("OCTET_CATEGORIES", "cs.CL,cs.CV")
        # Every stage, with the offline summarizer named outright (not left to "auto").
        monkeypatch.setenv("OCTET_STAGES", "classify,summarize,reading")
        monkeypatch.setenv("OCTET_SUMMARIZER", "extractive")
        monkeypatch.setenv("OCTET_DEVICE", "cpu")
        monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield running


def db_path(home: Path) -> Path:
    return home / "octet.duckdb"


def query(home: Path, sql: str, params=()) -> list[tuple]:
    with connect(db_path(home), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def subprocess_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


# ---- what the store holds ------------------------------------------------------------

def store_state(home: Path) -> dict:
    """Counts that must hold at every moment, even right after a SIGKILL: no paper, version,
    family row or summary twice, nothing derived from a paper that is not stored, nothing
    derived from a version newer than the stored one; plus how far the work has come."""
    with connect(db_path(home), read_only=True) as con:
        def one(sql: str) -> tuple:
            return con.execute(sql).fetchone()

        papers, paper_ids, hydrated = one(
            "SELECT count(*), count(DISTINCT arxiv_id), count(*) FILTER (WHERE hydrated) "
            "FROM papers")
        versions, version_keys = one(
            "SELECT count(*), count(DISTINCT (arxiv_id, version)) FROM paper_versions")
        families, family_ids, families_current, families_orphan, families_ahead, heads = one(
            "SELECT count(*), count(DISTINCT s.arxiv_id), "
            "count(*) FILTER (WHERE s.version = p.version), "
            "count(*) FILTER (WHERE p.arxiv_id IS NULL), "
            "count(*) FILTER (WHERE s.version > p.version), count(DISTINCT s.model_version) "
            "FROM family_scores s LEFT JOIN papers p USING (arxiv_id)")
        summaries, summary_keys, summaries_current, summaries_orphan, summaries_ahead = one(
            "SELECT count(*), count(DISTINCT (s.arxiv_id, s.backend, s.model, "
            "s.prompt_version)), count(*) FILTER (WHERE s.version = p.version), "
            "count(*) FILTER (WHERE p.arxiv_id IS NULL), "
            "count(*) FILTER (WHERE s.version > p.version) "
            "FROM summaries s LEFT JOIN papers p USING (arxiv_id)")
        embeddings, embedding_keys = one(
            "SELECT count(*), count(DISTINCT (arxiv_id, version, encoder)) FROM embeddings")
        runs = one("SELECT count(*) FROM runs")[0]
    assert papers == paper_ids, "a paper is stored twice"
    assert versions == version_keys, "a paper version is stored twice"
    assert families == family_ids, "a paper has two family rows"
    assert summaries == summary_keys, "a paper has two summaries from one backend"
    assert embeddings == embedding_keys, "a paper version is embedded twice"
    assert families_orphan == summaries_orphan == 0, "families/summaries of unstored papers"
    assert families_ahead == summaries_ahead == 0, "derived from a version not stored"
    assert heads <= 1, "family rows from two classifier heads"
    return {"papers": papers, "hydrated": hydrated, "families": families_current,
            "summaries": summaries_current, "runs": runs}


def summarizer_identity() -> tuple[str, str, str]:
    """(backend, model, prompt version) of the summarizer the settings configure."""
    from pipeline.core.settings import load_settings
    from pipeline.stages.summaries import make_summarizer

    summarizer = make_summarizer(load_settings())
    try:
        return summarizer.backend, summarizer.model, summarizer.prompt_version
    finally:
        summarizer.close()


def assert_complete(home: Path, expected: dict[str, int], seen: set[tuple[str, int]]) -> None:
    """Every announced paper stored once at its announced version, hydrated, with every
    version seen, one current family row, one current summary (none stale), embedded."""
    state = store_state(home)
    assert query(home, "SELECT arxiv_id, version FROM papers ORDER BY arxiv_id") == sorted(
        expected.items())
    assert state["hydrated"] == len(expected)
    assert set(query(home, "SELECT arxiv_id, version FROM paper_versions")) == seen
    assert query(home, "SELECT count(*) FROM family_scores s JOIN papers p USING (arxiv_id) "
                       "WHERE s.version = p.version") == [(len(expected),)]
    assert query(home, "SELECT backend, model, prompt_version, count(*), count(DISTINCT "
                       "arxiv_id), count(*) FILTER (WHERE s.version = p.version) "
                       "FROM summaries s JOIN papers p USING (arxiv_id) GROUP BY ALL") == [
        (*summarizer_identity(), len(expected), len(expected), len(expected))]
    assert query(home, "SELECT count(*) FROM embeddings e JOIN papers p ON p.arxiv_id = "
                       "e.arxiv_id AND p.version = e.version") == [(len(expected),)]


def is_complete(home: Path, expected: dict[str, int]) -> bool:
    state = store_state(home)
    stored = dict(query(home, "SELECT arxiv_id, version FROM papers"))
    return (stored == expected and state["hydrated"] == len(expected)
            and state["families"] == state["summaries"] == len(expected))


def derived_rows(home: Path) -> dict[str, tuple]:
    """Per paper: its stored version, family row and summary, with their write times."""
    rows = query(home, """
        SELECT p.arxiv_id, p.version, f.version, f.labels, f.scored_at, s.version, s.tldr,
               s.created_at
        FROM papers p LEFT JOIN family_scores f USING (arxiv_id)
        LEFT JOIN summaries s USING (arxiv_id)""")
    return {row[0]: row[1:] for row in rows}


# ---- 1. a day at a time, with every fault mixed in -------------------------------------

FAULTS = (
    dict(kind="status", status=503),
    dict(kind="status", status=502),
    dict(kind="status", status=500),
    dict(kind="status", status=429, headers={"Retry-After": "1"}),
    dict(kind="reset"),
    dict(kind="hang", seconds=2.5),  # past OCTET_HTTP_TIMEOUT=2
    dict(kind="truncate"),
    dict(kind="garbage"),
)
TRIES = 3  # OCTET_HTTP_RETRIES=2: three tries per request
API_BATCH = 25


def fault_plan(rng: random.Random, to_hydrate: int) -> tuple[list[Fault], list[Fault | None]]:
    """Every fault kind once and two more at random, each on the RSS or the API path.
    The RSS faults answer the first RSS requests of the day (the feed is asked for until it
    answers); the API faults are shuffled among the hydration requests that must succeed,
    the last request succeeding, so every planned fault is met."""
    kinds = list(FAULTS) + rng.sample(FAULTS, 2)
    rng.shuffle(kinds)
    rss, api = [], []
    for kind in kinds:
        (rss if rng.random() < 0.4 else api).append(Fault(**kind))
    successes = math.ceil(to_hydrate / API_BATCH)
    middle: list[Fault | None] = api + [None] * (successes - 1)
    rng.shuffle(middle)
    return rss, middle + [None]


def hydration_give_ups(api: list[Fault | None]) -> list[int]:
    """The exit code of each run the API plan makes give up hydrating (three faults in a
    row): 3 when that run hydrated no paper (a total API outage), else 0."""
    codes, streak, hydrated = [], 0, False
    for answer in api:
        streak, hydrated = (0, True) if answer is None else (streak + 1, hydrated)
        if streak == TRIES:
            codes.append(0 if hydrated else 3)
            streak, hydrated = 0, False
    return codes


def test_three_days_with_seeded_faults_lose_and_double_nothing(server, octet_home, monkeypatch):
    # A normal answer takes milliseconds; 2 s keeps a busy machine from adding a timeout
    # that the plan does not have.
    monkeypatch.setenv("OCTET_HTTP_TIMEOUT", "2")
    monkeypatch.setenv("OCTET_HTTP_RETRIES", str(TRIES - 1))
    monkeypatch.setenv("OCTET_API_BATCH_SIZE", str(API_BATCH))
    # Three real days in full (137, 126 and 130 papers), announced on their own days.
    first = real_listings(day="2025-04-23")
    second = real_listings(day="2025-04-24")
    third = real_listings(day="2025-04-25")
    # Day three re-announces twenty papers of day one and ten of day two as version 2, and
    # lists fifteen new papers as cross-lists.
    revised = {row["id"]: "replace" for row in first[:20]}
    revised.update({row["id"]: "replace-cross" for row in second[:10]})
    third_kinds = dict(revised, **{row["id"]: "cross" for row in third[:15]})
    days = [
        (date(2025, 4, 23), first, {}, {}),
        (date(2025, 4, 24), second, {}, {}),
        (date(2025, 4, 25), third + first[:20] + second[:10], third_kinds,
         dict.fromkeys(revised, 2)),
    ]
    rng = random.Random(18)
    expected: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    before: dict[str, tuple] = {}
    exits_3 = give_ups = 0
    for day, rows, kinds, versions in days:
        server.replay.set_day(rows, day, kinds=kinds, versions=versions)
        to_hydrate = [row["id"] for row in rows if expected.get(row["id"], 0)
                      < versions.get(row["id"], 1)]
        new_ids = [row["id"] for row in rows if row["id"] not in expected]
        for row in rows:
            expected[row["id"]] = versions.get(row["id"], 1)
            seen.add((row["id"], versions.get(row["id"], 1)))
        rss, api = fault_plan(rng, len(to_hydrate))
        server.replay.script_faults("/rss", rss)
        server.replay.script_faults("/api", api)
        runs_before = store_state(octet_home)["runs"] if db_path(octet_home).exists() else 0
        codes = []
        while not codes or codes[-1] != 0 or not is_complete(octet_home, expected):
            assert len(codes) < 10, f"no convergence on {day}: exit codes {codes}"
            papers_before = (query(octet_home, "SELECT * FROM papers ORDER BY arxiv_id")
                             if db_path(octet_home).exists() else [])
            codes.append(main(["run"]))
            assert codes[-1] in (0, 3)
            [(outage,)] = query(octet_home, "SELECT json_extract_string(report, "
                                "'$.unreachable') FROM runs ORDER BY run_id DESC LIMIT 1")
            if codes[-1] == 3 and outage is None:  # the feed unreachable: no paper changed
                assert query(octet_home, "SELECT * FROM papers ORDER BY arxiv_id") == \
                    papers_before
                assert query(octet_home, "SELECT status FROM runs ORDER BY run_id DESC "
                                         "LIMIT 1") == [("unreachable",)]
        # The runs went as the plan says: exit 3 for each three RSS faults in a row (the feed
        # is a run's first request; nothing changes), then for each three API faults in a row
        # hydration gives up and the feed's papers wait for the next run: exit 3 when that run
        # hydrated nothing (a total API outage), else 0; and the run that completes the day.
        assert codes == [3] * (len(rss) // TRIES) + hydration_give_ups(api) + [0], (
            day, codes, len(rss), hydration_give_ups(api))
        exits_3 += len(rss) // TRIES
        give_ups += len(hydration_give_ups(api))
        assert server.replay.script_left() == {}, "a planned fault was never met"
        assert_complete(octet_home, expected, seen)
        # The run log adds up: one row per run, and the day's new and updated papers
        # counted once each over all of the day's runs.
        runs = query(octet_home, "SELECT sum(new), sum(updated), count(*) FROM runs "
                                 "WHERE run_id > ?", [runs_before])
        assert runs == [(len(new_ids), len(revised) if versions else 0, len(codes))]
        # Nothing of the earlier days was lost or redone: their family rows and summaries
        # are the very rows written then, except for the papers re-announced as v2.
        now = derived_rows(octet_home)
        for arxiv_id, row in before.items():
            if arxiv_id in versions:  # paper, family row and summary all at v2, redone
                assert (now[arxiv_id][0], now[arxiv_id][1], now[arxiv_id][4]) == (2, 2, 2)
                assert now[arxiv_id][3] > row[3] and now[arxiv_id][6] > row[6]
            else:
                assert now[arxiv_id] == row
        before = now
    # The seeded plan includes runs that met arXiv down and runs that gave up hydrating.
    assert exits_3 >= 1 and give_ups >= 1


# ---- 2. SIGKILL at seeded points of every stage ----------------------------------------

def _log_text(home: Path, offset: int) -> str:
    path = home / "logs" / "octet.log"
    if not path.exists():
        return ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


def _log_size(home: Path) -> int:
    path = home / "logs" / "octet.log"
    return path.stat().st_size if path.exists() else 0


def stage_reached(home: Path, expected: dict[str, int], runs_before: int) -> str:
    """Where a killed run stopped, read from what it left: the first stage whose work is
    unfinished ("startup": it had not recorded its run yet; "reading": only the end of the
    run was missing; "finished": it ended before the kill)."""
    state = store_state(home)
    stored = dict(query(home, "SELECT arxiv_id, version FROM papers"))
    if state["runs"] == runs_before:
        return "startup"
    if stored != expected or state["hydrated"] < len(expected):
        return "fetch"
    if state["families"] < len(expected):
        return "classify"
    if state["summaries"] < len(expected):
        return "summarize"
    last = query(home, "SELECT status FROM runs ORDER BY run_id DESC LIMIT 1")[0][0]
    return "reading" if last == "running" else "finished"


def test_sigkill_at_seeded_points_of_every_stage_then_rerun(server, octet_home):
    rows = real_listings(day="2026-06-10")[:100]
    server.replay.set_day(rows, date(2026, 6, 10))
    expected = {row["id"]: 1 for row in rows}
    # Small paced hydration batches (10 ids, 0.2 s apart), so kills land between writes.
    env = subprocess_env(OCTET_ARXIV_DELAY="0.2", OCTET_API_BATCH_SIZE="10")
    rng = random.Random(7100)
    # Ten kill points that cannot miss their run (fetch, classify), and three after the
    # classify stage, whose run may already have finished on a fast machine.
    plan = ["fetch"] * rng.randint(7, 8) + ["classify"] * 2 + ["summarize"] * 3
    hits: list[tuple] = []
    progress = store_state(octet_home) if db_path(octet_home).exists() else None
    for target in plan:
        done = progress or {"runs": 0, "hydrated": 0, "families": 0}
        pending_batches = math.ceil((len(expected) - done["hydrated"]) / 10)
        api_seen = len(server.replay.paths("/api"))
        rss_seen = len(server.replay.paths("/rss"))
        log_offset = _log_size(octet_home)
        # The seeded point: as the 1st or 2nd hydration request goes out, or a moment after
        # the feed was fetched (fetch); a moment after the encoder starts loading (classify);
        # a moment after the classify stage logs its batch stored, when it had one, else a
        # moment after the feed was fetched (summarize: the extractive summarizer takes
        # under a second for the day, so this is the stage hardest to hit).
        if target == "fetch" and pending_batches and rng.random() < 0.7:
            trigger = ("api", rng.randint(1, min(2, pending_batches)))
            delay = rng.uniform(0, 0.1)
        elif target == "fetch":
            trigger, delay = ("rss", 1), rng.uniform(0.0, 0.4)
        elif target == "classify":
            trigger, delay = ("log", "pipeline.stages.encoder: loading"), rng.uniform(0.0, 0.8)
        elif done["families"] < len(expected):
            trigger, delay = ("log", "pipeline.stages.families: classified"), rng.uniform(0.0, 0.2)
        else:
            trigger, delay = ("rss", 1), rng.uniform(0.2, 0.9)
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while process.poll() is None:
            assert time.monotonic() - started < 180, f"run stuck before {trigger}"
            kind, value = trigger
            if ((kind == "api" and len(server.replay.paths("/api")) - api_seen >= value)
                    or (kind == "rss" and len(server.replay.paths("/rss")) > rss_seen)
                    or (kind == "log" and value in _log_text(octet_home, log_offset))):
                time.sleep(delay)
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        error = process.stderr.read().decode("utf-8", "replace")
        process.stderr.close()
        assert process.returncode in (-signal.SIGKILL, 0), error
        # The store opens after the kill, and holds nothing twice or out of step.
        stage = stage_reached(octet_home, expected, done["runs"])
        now = store_state(octet_home)
        hits.append((target, stage, round(time.monotonic() - started, 1),
                     now["hydrated"], now["families"], now["summaries"]))
        if progress:  # finished work is never lost
            for key in ("papers", "hydrated", "families", "summaries"):
                assert now[key] >= progress[key], (key, hits)
        progress = now
    print("kills (target, stage reached, seconds, hydrated, classified, summarized):", hits)
    killed = [hit[1] for hit in hits if hit[1] != "finished"]
    assert len(killed) >= 10, hits
    assert len({"fetch", "classify", "summarize"} & set(killed)) >= 2, hits
    final = subprocess.run([sys.executable, "-m", "pipeline.cli", "run"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert_complete(octet_home, expected, {(arxiv_id, 1) for arxiv_id in expected})


# ---- 3. reader actions from another process while a run writes ---------------------------

ACTIONS = r'''
import json, sys, time
from datetime import date
from pipeline.core.settings import load_settings
from storage import reading
from storage.families import set_reader_labels

plan = json.load(open(sys.argv[1]))
db = load_settings().db_path


def perform(action):
    op, arxiv_id = action["op"], action.get("id")
    if op == "queue_add":
        return reading.queue_add(db, [arxiv_id])[arxiv_id]
    if op == "queue_remove":
        return reading.queue_remove(db, [arxiv_id])
    if op == "queue_move":
        return reading.queue_move(db, arxiv_id, action["where"])
    if op == "dismiss":
        return reading.dismiss(db, [arxiv_id])
    if op == "note":  # the app's notes box: the stored text, edited, saved with a rating
        held = reading.reading_of(db, arxiv_id) or {}
        notes = (held.get("notes") or "") + action["add"]
        reading.save_notes(db, arxiv_id, notes, action["rating"])
        return notes
    if op == "labels":
        return set_reader_labels(db, arxiv_id, action["labels"])
    if op == "start":
        return reading.start_reading(db, arxiv_id)
    if op == "read":
        return reading.mark_read(db, arxiv_id, action["week"], action["rating"],
                                 action["notes"], date.fromisoformat(action["read_on"]))
    if op == "pick":
        return reading.set_pick(db, action["week"], arxiv_id, "reader",
                                "swapped in from the runners-up")
    if op == "count":
        value = int(reading.get_reader_value(db, "soak_counter") or 0) + 1
        reading.set_reader_value(db, "soak_counter", str(value))
        return value
    raise ValueError(op)


done = []
for action in plan:
    started = time.time()
    try:
        result, error = perform(action), None
    except Exception as failure:
        result, error = None, f"{type(failure).__name__}: {failure}"
    done.append({"i": action["i"], "t0": started, "t1": time.time(), "result": result,
                 "error": error})
json.dump(done, open(sys.argv[2], "w"))
'''

FAMILY_CODES = ["LLM", "LCM", "LAM", "MoE", "VLM", "SLM", "MLM", "SAM"]
PICK_WEEK = "2025-W30"


def action_plan(rng: random.Random, ids: list[str], count: int = 500):
    """Seeded reader actions over disjoint groups of stored papers, with what each must
    return and the state it must leave, computed one action after another."""
    queue_ids, note_ids, label_ids = ids[:10], ids[10:18], ids[18:26]
    read_ids, pick_ids = ids[26:32], ids[32:36]
    read_weeks = {arxiv_id: f"2025-W{10 + n:02d}" for n, arxiv_id in enumerate(read_ids)}
    model = {"state": {i: "inbox" for i in queue_ids}, "queue": [], "notes": {},
             "ratings": {}, "labels": {}, "read": {}, "pick": None, "counter": 0}
    plan, expect = [], []
    ops = ["queue_add"] * 14 + ["queue_remove"] * 4 + ["queue_move"] * 8 + ["dismiss"] * 3 \
        + ["note"] * 20 + ["labels"] * 15 + ["start"] * 3 + ["read"] * 7 + ["pick"] * 5 \
        + ["count"] * 10
    for i in range(count):
        op = rng.choice(ops)
        action: dict = {"i": i, "op": op}
        if op in ("queue_add", "queue_remove", "queue_move", "dismiss"):
            arxiv_id = action["id"] = rng.choice(queue_ids)
            state, queue = model["state"], model["queue"]
            if op == "queue_add":
                held = state[arxiv_id]
                result = {"queued": "already queued", "read": "already read",
                          "pick": "this week's pick"}.get(held, "queued")
                if result == "queued":
                    state[arxiv_id] = "queued"
                    queue.append(arxiv_id)
            elif op == "queue_remove":
                result = [arxiv_id] if state[arxiv_id] == "queued" else []
                if result:
                    state[arxiv_id] = "inbox"
                    queue.remove(arxiv_id)
            elif op == "dismiss":
                result = 1
                state[arxiv_id] = "dismissed"
                if arxiv_id in queue:
                    queue.remove(arxiv_id)
            else:
                where = action["where"] = rng.choice(["up", "down", "top"])
                result = False
                if arxiv_id in queue:
                    index = queue.index(arxiv_id)
                    target = {"up": index - 1, "down": index + 1, "top": 0}[where]
                    if 0 <= target < len(queue) and target != index:
                        queue.insert(target, queue.pop(index))
                        result = True
        elif op == "note":
            arxiv_id = action["id"] = rng.choice(note_ids)
            action["add"] = f"[{i}] read §{rng.randint(1, 9)} again.\n"
            action["rating"] = rng.randint(1, 5)
            model["notes"][arxiv_id] = model["notes"].get(arxiv_id, "") + action["add"]
            model["ratings"][arxiv_id] = action["rating"]
            result = model["notes"][arxiv_id]
        elif op == "labels":
            arxiv_id = action["id"] = rng.choice(label_ids)
            action["labels"] = sorted(rng.sample(FAMILY_CODES, rng.randint(0, 3)))
            model["labels"][arxiv_id] = action["labels"]
            result = None
        elif op == "start":  # records a start only on a paper with a reading row
            action["id"] = rng.choice(read_ids)
            result = None
        elif op == "read":
            arxiv_id = action["id"] = rng.choice(read_ids)
            action.update(week=read_weeks[arxiv_id], rating=rng.randint(1, 5),
                          notes=f"read in action {i}", read_on="2025-07-01")
            model["read"][arxiv_id] = (action["rating"], action["notes"])
            result = None
        elif op == "pick":
            arxiv_id = action["id"] = rng.choice(pick_ids)
            action["week"] = PICK_WEEK
            model["pick"] = arxiv_id
            result = True
        else:
            model["counter"] += 1
            result = model["counter"]
        plan.append(action)
        expect.append(result)
    groups = dict(queue=queue_ids, notes=note_ids, labels=label_ids, read=read_ids,
                  pick=pick_ids, weeks=read_weeks)
    return plan, expect, model, groups


def test_500_reader_actions_from_another_process_while_a_run_writes(
        server, octet_home, monkeypatch, tmp_path):
    from pipeline.core.weeks import current_week
    from storage import reading

    # Day one is stored first (fetch only); the reader acts on its papers while the run of
    # day two fetches, then classifies and summarizes both days.
    first = real_listings(day="2026-06-16")[:60]
    second = real_listings(day="2026-06-17")[:30]
    server.replay.set_day(first, date(2026, 6, 16))
    monkeypatch.setenv("OCTET_STAGES", "none")
    assert main(["run"]) == 0
    monkeypatch.setenv("OCTET_STAGES", "classify,summarize,reading")
    ids = sorted(row["id"] for row in first)
    # This week's pick is the reader's, so the run's proposal leaves the groups alone.
    this_week, reader_pick = current_week(""), ids[-1]
    assert reading.set_pick(db_path(octet_home), this_week, reader_pick, "reader", "mine")
    plan, expect, model, groups = action_plan(random.Random(500), ids)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    server.replay.set_day(second, date(2026, 6, 17))

    env = subprocess_env(OCTET_ARXIV_DELAY="0.2", OCTET_API_BATCH_SIZE="5")
    run = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--json"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not server.replay.paths("/rss") and run.poll() is None:
        assert time.monotonic() < deadline, "the run never asked for the feed"
        time.sleep(0.01)
    actions = subprocess.Popen(
        [sys.executable, "-c", ACTIONS, str(tmp_path / "plan.json"), str(tmp_path / "done.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = actions.communicate(timeout=240)
    assert actions.returncode == 0, err
    run_out, run_err = run.communicate(timeout=240)
    assert run.returncode == 0, run_err

    done = json.loads((tmp_path / "done.json").read_text())
    assert [entry["i"] for entry in done] == list(range(len(plan))) and len(done) == 500
    failed = [(plan[e["i"]], e["error"]) for e in done if e["error"]]
    assert failed == [], failed[:5]
    # Each action saw every earlier one: what it returned is what the model says.
    got = [entry["result"] for entry in done]
    wrong = [(plan[i], got[i], expect[i]) for i in range(len(plan)) if got[i] != expect[i]]
    assert wrong == [], wrong[:5]
    # The run was writing while the actions ran.
    report = json.loads(run_out)
    [(run_start, run_end, status)] = query(
        octet_home, "SELECT epoch(started_at), epoch(finished_at), status FROM runs "
                    "ORDER BY run_id DESC LIMIT 1")
    assert status == "done"
    during = [e for e in done if e["t1"] >= run_start and e["t0"] <= run_end]
    print(f"{len(during)} of 500 actions ({done[-1]['t1'] - done[0]['t0']:.1f} s) ran during "
          f"the run ({run_end - run_start:.1f} s); slowest action "
          f"{max(e['t1'] - e['t0'] for e in done):.2f} s")
    assert len(during) >= 100
    assert report["new"] == len(second) and report["stages"]["summarize"]["summarized"] == 90

    # The state each action left is in the database.
    db = db_path(octet_home)
    states = states_of(db, groups["queue"])
    assert states == model["state"]
    assert [row["arxiv_id"] for row in reading.queue_list(db)] == model["queue"]
    for arxiv_id in groups["notes"]:
        held = reading.reading_of(db, arxiv_id)
        if arxiv_id in model["notes"]:
            assert (held["state"], held["notes"], held["rating"]) == (
                "inbox", model["notes"][arxiv_id], model["ratings"][arxiv_id])
        else:
            assert held is None
    labels = dict(query(octet_home, "SELECT arxiv_id, labels FROM reader_labels"))
    assert labels == model["labels"]
    picks = {row["week"]: row for row in reading.all_picks(db)}
    for arxiv_id in groups["read"]:
        held = reading.reading_of(db, arxiv_id)
        week = groups["weeks"][arxiv_id]
        if arxiv_id in model["read"]:
            assert (held["state"], held["week"], held["rating"], held["notes"]) == (
                "read", week, *model["read"][arxiv_id])
            assert held["started_at"] is not None
            assert (picks[week]["arxiv_id"], picks[week]["status"]) == (arxiv_id, "read")
        else:
            assert held is None and week not in picks
    if model["pick"]:
        assert (picks[PICK_WEEK]["arxiv_id"], picks[PICK_WEEK]["status"]) == (
            model["pick"], "pick")
    for arxiv_id in groups["pick"]:
        held = reading.reading_of(db, arxiv_id)
        if arxiv_id == model["pick"]:
            assert (held["state"], held["week"]) == ("pick", PICK_WEEK)
        else:  # swapped out: back to the inbox
            assert held is None
    assert reading.get_reader_value(db, "soak_counter") == str(model["counter"])
    pick = reading.get_pick(db, this_week)
    assert (pick["arxiv_id"], pick["chosen_by"]) == (reader_pick, "reader")
    # No stray rows: reading rows and weekly picks are exactly those the actions made.
    touched = ({i for i, state in model["state"].items() if state != "inbox"}
               | set(model["notes"]) | set(model["read"]) | {reader_pick}
               | ({model["pick"]} if model["pick"] else set()))
    assert {row[0] for row in query(octet_home, "SELECT arxiv_id FROM reading")} == touched
    assert set(picks) == ({this_week} | {groups["weeks"][i] for i in model["read"]}
                          | ({PICK_WEEK} if model["pick"] else set()))
    # And the run's own work is complete.
    expected = {row["id"]: 1 for row in first + second}
    assert_complete(octet_home, expected, {(arxiv_id, 1) for arxiv_id in expected})
