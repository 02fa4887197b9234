"""The reading model in a real DuckDB file: states, queue, picks, notes; the CLI twins;
and actions taken while another process writes, none lost."""
from __future__ import annotations

from storage.search import BrowseFilter, browse, has_vectors
from storage.families import families_for, set_reader_labels
from tests.helpers import nearest_ids, similar_ids, states_of
from storage import search_index
from storage.summaries import summary_for
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from pipeline.core import weeks
from pipeline.stages.reading import Candidate, ensure_pick, propose, propose_for
from pipeline.cli import main
from storage import reading
from storage.db import connect
from tests.helpers import store_embeddings, store_families, store_real_papers

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def papers(settings):
    return store_real_papers(settings.db_path, 40)


def _row(db_path, arxiv_id):
    with connect(db_path, read_only=True) as con:
        return con.execute("SELECT state, queue_position, week, rating, notes, read_on "
                           "FROM reading WHERE arxiv_id = ?", [arxiv_id]).fetchone()


def test_queue_add_move_remove(settings, papers):
    db = settings.db_path
    a, b, c = (paper.arxiv_id for paper in papers[:3])
    assert reading.queue_add(db, [a, b, c]) == {a: "queued", b: "queued", c: "queued"}
    assert reading.queue_add(db, [a]) == {a: "already queued"}
    assert reading.queue_move(db, c, "top")
    assert [row["arxiv_id"] for row in reading.queue_list(db)] == [c, a, b]
    assert reading.queue_move(db, a, "down")
    assert not reading.queue_move(db, a, "down")  # already last
    assert not reading.queue_move(db, c, "up")  # already first
    assert [row["arxiv_id"] for row in reading.queue_list(db)] == [c, b, a]
    assert reading.queue_remove(db, [b, papers[5].arxiv_id]) == [b]
    assert [row["position"] for row in reading.queue_list(db)] == [1, 2]
    assert states_of(db, [a, b]) == {a: "queued", b: "inbox"}


def test_notes_and_rating_outlive_leaving_the_queue_or_the_pick(settings, papers):
    db, week = settings.db_path, "2026-W48"
    queued, picked, other = (paper.arxiv_id for paper in papers[:3])
    reading.queue_add(db, [queued])
    reading.save_notes(db, queued, "my notes", 4)
    assert reading.queue_remove(db, [queued]) == [queued]
    assert _row(db, queued) == ("inbox", None, None, 4, "my notes", None)
    reading.set_pick(db, week, picked, "octet", "proposed")
    reading.save_notes(db, picked, "started on it")
    reading.set_pick(db, week, other, "reader", "swapped")
    assert _row(db, picked)[0::4] == ("inbox", "started on it")
    reading.set_pick(db, week, queued, "reader", "swapped back")
    assert _row(db, other) is None  # nothing of the reader's: no row left behind
    fourth = papers[3].arxiv_id
    reading.queue_add(db, [fourth])
    assert reading.queue_remove(db, [fourth]) == [fourth] and _row(db, fourth) is None


def test_unknown_paper_is_refused_with_the_fix(settings, papers):
    with pytest.raises(reading.NotStored, match="octet fetch"):
        reading.queue_add(settings.db_path, ["2599.99999"])


def test_pick_swap_and_skip_keep_the_queue(settings, papers):
    db, week = settings.db_path, "2026-W48"
    queued, other = papers[0].arxiv_id, papers[1].arxiv_id
    reading.queue_add(db, [queued])
    reading.set_pick(db, week, queued, "octet", "from your queue", [other])
    assert _row(db, queued)[0] == "pick"
    assert reading.queue_list(db) == []
    reading.set_pick(db, week, other, "reader", "swapped")
    assert _row(db, queued)[0] == "queued"  # back in the queue, not lost
    assert _row(db, other)[0] == "pick"
    assert reading.get_pick(db, week)["arxiv_id"] == other
    assert reading.skip_week(db, week) == other
    assert _row(db, other)[0] == "skipped"
    assert reading.get_pick(db, week)["status"] == "skipped"
    # An automatic proposal never overwrites a pick already there.
    assert not reading.set_pick(db, week, queued, "octet", replace=False)
    assert reading.get_pick(db, week)["arxiv_id"] == other


def test_mark_read_records_rating_notes_and_the_week(settings, papers):
    db, week = settings.db_path, "2026-W48"
    pick = papers[2].arxiv_id
    reading.set_pick(db, week, pick, "octet")
    reading.mark_read(db, pick, week, 4, "Masked *diffusion*", date(2026, 11, 28))
    assert _row(db, pick) == ("read", None, week, 4, "Masked *diffusion*", date(2026, 11, 28))
    assert reading.get_pick(db, week)["status"] == "read"
    reading.save_notes(db, pick, notes="changed my mind", rating=5)
    assert _row(db, pick)[3:5] == (5, "changed my mind")
    with pytest.raises(ValueError, match="1 to 5"):
        reading.mark_read(db, pick, week, 6)
    assert reading.rated_ids(db)["liked"] == [pick]


def test_reading_another_paper_replaces_an_unread_pick(settings, papers):
    db, week = settings.db_path, "2026-W48"
    reading.set_pick(db, week, papers[0].arxiv_id, "octet")
    reading.mark_read(db, papers[1].arxiv_id, week, 3)
    pick = reading.get_pick(db, week)
    assert (pick["arxiv_id"], pick["status"]) == (papers[1].arxiv_id, "read")
    assert _row(db, papers[0].arxiv_id) is None  # the proposed pick went back to the inbox
    reading.mark_read(db, papers[4].arxiv_id, "2026-W49")  # no pick yet that week
    assert reading.get_pick(db, "2026-W49")["status"] == "read"
    assert weeks.streak(reading.read_weeks(db), "2026-W49") == 2


def test_ensure_pick_proposes_once_per_week_from_the_queue(settings, papers):
    reading.queue_add(settings.db_path, [papers[7].arxiv_id, papers[3].arxiv_id])
    first = ensure_pick(settings)
    assert first["arxiv_id"] == papers[7].arxiv_id
    assert first["chosen_by"] == "octet" and first["reason"]
    assert first["runners_up"] == [papers[3].arxiv_id]
    assert ensure_pick(settings)["picked_at"] == first["picked_at"]


def test_ensure_pick_without_queue_takes_untouched_recent_papers(settings, papers):
    reading.dismiss(settings.db_path, [paper.arxiv_id for paper in papers[:30]])
    pick = ensure_pick(settings)
    assert pick["arxiv_id"] in {paper.arxiv_id for paper in papers[30:]}
    assert len(pick["runners_up"]) == 2


def test_browse_filters_and_keyword_search(settings, papers):
    db = settings.db_path
    everything, total = browse(db, BrowseFilter(limit=5))
    assert total == 40 and len(everything) == 5
    word = "segmentation"
    hits, count = browse(db, BrowseFilter(text=word.upper()))
    expected = [p for p in papers if word in (p.title + p.abstract).lower()]
    assert count == len(expected) > 0
    assert {hit["arxiv_id"] for hit in hits} == {p.arxiv_id for p in expected}
    reading.queue_add(db, [expected[0].arxiv_id])
    queued, _ = browse(db, BrowseFilter(text=word, states=("queued",)))
    assert [hit["arxiv_id"] for hit in queued] == [expected[0].arxiv_id]
    assert browse(db, BrowseFilter(text="100%_no_such"))[1] == 0
    category = papers[0].categories[-1]
    _, in_category = browse(db, BrowseFilter(category=category))
    assert in_category == sum(category in p.categories for p in papers)
    _, nothing = browse(db, BrowseFilter(date_to=date(2000, 1, 1)))
    assert nothing == 0


def test_inbox_is_what_arrived_since_the_last_visit(settings, papers):
    db = settings.db_path
    cards, total = reading.inbox(db, None)
    assert total == 40
    reading.dismiss(db, [papers[0].arxiv_id])
    assert reading.inbox(db, None)[1] == 39
    reading.set_reader_value(db, "last_visit", "2026-01-01T00:00:00+00:00")
    assert reading.get_reader_value(db, "last_visit") == "2026-01-01T00:00:00+00:00"


def test_families_and_summaries_degrade_when_absent(settings, papers):
    ids = [papers[0].arxiv_id]
    # Whether or not the other concepts are installed, an unclassified paper has no entry.
    assert families_for(settings.db_path, ids) == {}
    assert summary_for(settings.db_path, ids) == {}


# ---- the CLI twins ------------------------------------------------------------

def test_cli_queue_pick_done(settings, papers, capsys):
    a, b = papers[0].arxiv_id, papers[1].arxiv_id
    assert main(["queue", "add", a, f"arXiv:{b}v2"]) == 0
    assert main(["queue", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert [row["arxiv_id"] for row in listed] == [a, b]
    assert main(["queue", "remove", b]) == 0
    assert main(["pick", "--json"]) == 0
    pick = json.loads(capsys.readouterr().out.split("removed\n")[-1])
    assert pick["arxiv_id"] == a and pick["status"] == "pick"
    assert main(["pick", b]) == 0
    assert reading.get_pick(settings.db_path, weeks.current_week())["arxiv_id"] == b
    assert main(["done", b, "--rating", "5", "--note", "great"]) == 0
    assert "Streak: 1 week" in capsys.readouterr().out
    assert _row(settings.db_path, b)[3:5] == (5, "great")


def test_cli_bad_input_exits_2_with_the_fix(settings, papers, capsys):
    assert main(["done", "not-an-id"]) == 2
    assert "arXiv id" in capsys.readouterr().err
    assert main(["done", papers[0].arxiv_id, "--rating", "9"]) == 2
    assert "1 to 5" in capsys.readouterr().err
    assert main(["queue", "add", "2599.99999"]) == 2
    assert main(["pick", "--timezone", "Nowhere/Land"]) == 2


def test_the_app_falls_back_to_the_demo_only_when_empty(settings, tmp_path):
    # The app is not pinned to a database (OCTET_DB) unless one was named: it chooses on
    # every page, with the commands' rule (pipeline.stages.library).
    from pipeline.cli.reading import app_environment
    from pipeline.stages.library import library_settings

    store_real_papers(settings.demo_db_path, 3)
    assert "OCTET_DB" not in app_environment(settings)
    assert library_settings(settings).db_path == settings.demo_db_path
    store_real_papers(settings.db_path, 3)
    assert library_settings(settings).db_path == settings.db_path


# ---- concurrency: actions while another process writes -------------------------

_WRITER = """
import itertools, json, lzma, sys, time
from tests.helpers import paper_from_row
from tests.helpers import LISTINGS
from storage.papers import upsert_papers
with lzma.open(LISTINGS, "rt", encoding="utf-8") as handle:
    rows = [json.loads(line) for line in itertools.islice(handle, int(sys.argv[2]))]
papers = [paper_from_row(row) for row in rows]
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[3])
step = 0
# At least two batches: on a loaded machine one batch can outlast the deadline.
while time.monotonic() < deadline or step < 2:
    # Like `octet run`: big batches, each in one transaction that holds the file.
    batch = [p.with_changes(version=p.version + step + 1) for p in papers]
    started = time.time()
    upsert_papers(sys.argv[1], batch)
    print("batch", started, time.time(), flush=True)
    step += 1
"""


@pytest.mark.slow
def test_actions_during_a_concurrent_writer_are_never_lost(settings, papers):
    db = settings.db_path
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "3000", "4"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    targets = [paper.arxiv_id for paper in papers[:12]]
    acting = time.time()
    for arxiv_id in targets[:6]:
        reading.queue_add(db, [arxiv_id])
    reading.dismiss(db, targets[6:9])
    for number, arxiv_id in enumerate(targets[9:], start=1):
        reading.mark_read(db, arxiv_id, f"2026-W{number:02d}", number, f"note {number}")
    acted = time.time()
    output, _ = writer.communicate(timeout=180)
    assert writer.returncode == 0
    batches = [tuple(map(float, line.split()[1:])) for line in output.splitlines()]
    # The writer really wrote while we acted: some batch overlaps the actions.
    assert any(start < acted and end > acting for start, end in batches)
    assert [row["arxiv_id"] for row in reading.queue_list(db)] == targets[:6]
    assert set(states_of(db, targets[6:9]).values()) == {"dismissed"}
    assert [_row(db, i)[3:5] for i in targets[9:]] == [(n, f"note {n}") for n in (1, 2, 3)]


@pytest.fixture(scope="module")
def vectors_of():
    """Embed with the real packaged encoder, once per module per text."""
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    cache: dict[str, object] = {}

    def embed(papers):
        missing = [p for p in papers if p.arxiv_id not in cache]
        for paper, vector in zip(missing, embed_texts([paper_text(p.title, p.abstract)
                                                       for p in missing])):
            cache[paper.arxiv_id] = vector
        return [cache[p.arxiv_id] for p in papers]
    return embed


def test_semantic_search_and_similar_papers_use_stored_embeddings(settings, papers, vectors_of):
    from pipeline.stages.encoder import embed_texts

    db = settings.db_path
    assert not has_vectors(db)
    assert similar_ids(db, papers[0].arxiv_id) == []
    store_embeddings(db, papers, vectors_of(papers))
    assert has_vectors(db)
    # A paper's own title finds that paper first.
    query = embed_texts([papers[5].title])[0]
    nearest = nearest_ids(db, query, BrowseFilter(), 3)
    assert nearest[0][0] == papers[5].arxiv_id and nearest[0][1] > nearest[1][1]
    # Filters apply to semantic hits too.
    reading.dismiss(db, [papers[5].arxiv_id])
    kept = nearest_ids(db, query, BrowseFilter(states=("inbox",)), 3)
    assert papers[5].arxiv_id not in [i for i, _ in kept]
    similar = similar_ids(db, papers[0].arxiv_id, 5)
    assert len(similar) == 5 and papers[0].arxiv_id not in [i for i, _ in similar]
    assert [score for _, score in similar] == sorted((score for _, score in similar), reverse=True)


def test_proposal_leans_toward_papers_like_the_ones_rated_well(settings, papers, vectors_of):
    db = settings.db_path
    store_embeddings(db, papers, vectors_of(papers))
    liked = papers[0]
    reading.mark_read(db, liked.arxiv_id, "2026-W40", 5)
    nearest = similar_ids(db, liked.arxiv_id, 1)[0][0]
    proposal = propose_for(settings)
    assert proposal.arxiv_id == nearest
    assert "close to papers you rated well" in proposal.reason


def test_keyword_index_matches_the_scan_and_follows_new_versions(settings, papers):
    db = settings.db_path
    queries = ["segmentation", "Vision-Language", "diffusion model", "3D", "LLM agents", "zzzq"]
    scanned = {q: browse(db, BrowseFilter(text=q, limit=100)) for q in queries}
    assert search_index.refresh_search_index(db) == len(papers)
    assert search_index.refresh_search_index(db) == 0  # nothing new: nothing to do
    for query in queries:
        hits, total = browse(db, BrowseFilter(text=query, limit=100))
        assert total == scanned[query][1]
        assert {h["arxiv_id"] for h in hits} == {h["arxiv_id"] for h in scanned[query][0]}
    # Every word must start a word: "segment" finds "segmentation" too.
    assert browse(db, BrowseFilter(text="segment"))[1] >= scanned["segmentation"][1] > 0
    # A new version with a new title is found under its new words before it is re-indexed
    # (the search index tokenizes what the word table lacks) and after.
    from storage.papers import upsert_papers

    upsert_papers(db, [papers[0].with_changes(version=2, title="Quokkabench: a new title")])
    upsert_papers(db, [papers[1].with_changes(arxiv_id="2699.00001", title="Quokkanet")])
    assert browse(db, BrowseFilter(text="quokka"))[1] == 2
    assert search_index.refresh_search_index(db) == 2
    found = browse(db, BrowseFilter(text="quokka"))[0]
    assert {h["arxiv_id"] for h in found} == {papers[0].arxiv_id, "2699.00001"}


def test_family_filter_uses_model_labels_scores_and_reader_corrections(settings, papers):
    db = settings.db_path
    a, b, c = (p.arxiv_id for p in papers[:3])
    store_families(db, {a: ["VLM"], b: ["VLM", "MoE"]}, score=0.9)
    store_families(db, {c: ["VLM"]}, score=0.55)
    def ids(**kw):
        return {h["arxiv_id"] for h in browse(db, BrowseFilter(**kw))[0]}
    assert ids(family="VLM") == {a, b, c}
    assert ids(family="VLM", min_score=0.6) == {a, b}
    assert ids(family="MoE") == {b}
    set_reader_labels(db, a, ["SAM"])  # the reader's labels win over the model's
    assert ids(family="VLM") == {b, c}
    assert ids(family="SAM", min_score=0.99) == {a}
    assert families_for(db, [a])[a]["labels"] == ["SAM"]
    with pytest.raises(ValueError, match="not a family"):
        browse(db, BrowseFilter(family="GPT"))


def test_neglected_family_drives_the_proposal_from_stored_labels(settings, papers):
    db = settings.db_path
    read, llm, sam = papers[0].arxiv_id, papers[1].arxiv_id, papers[2].arxiv_id
    store_families(db, {read: ["SAM"], llm: ["LLM"], sam: ["SAM"]})
    reading.mark_read(db, read, "2026-W40", 4)
    reading.queue_add(db, [sam, llm])
    proposal = propose_for(settings)
    # LLM was never read, SAM was: the LLM paper wins although the SAM one is first in line.
    assert proposal.arxiv_id == llm
    assert "LLM is the family you have neglected longest" in proposal.reason


def test_newly_listed_is_said_only_of_this_weeks_listings():
    """Issue 15: the demo's pick said "Newly listed" of a paper listed months before."""
    old = Candidate("2507.00001", "Old", listed_date="2026-07-01")
    new = Candidate("2511.00002", "New", listed_date="2026-11-30")
    assert propose([old], [], this_week="2026-W49").reason.startswith(
        "Among the newest papers stored (listed 2026-07-01)")
    assert propose([new], [], this_week="2026-W49").reason.startswith("Newly listed")
    assert propose([Candidate("2511.00003", "Undated")], [], this_week="2026-W49").reason \
        .startswith("Among the newest papers stored")
