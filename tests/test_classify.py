"""The classifier: training maths, metrics, the pipeline stage on a real DuckDB file, the
staleness rules, and the `classify`, `eval`, `label` and `train` commands."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pipeline.stages import families as classify
from pipeline.cli import main
from pipeline.core.families import CODES
from pipeline.core.paper import Paper, split_id
from storage import families as store
from storage.papers import upsert_papers
from tests.helpers import LABELED_DEV, real_listings


def _paper(row: dict, version: int | None = None, abstract: str | None = None) -> Paper:
    arxiv_id, listed_version = split_id(row["id"])
    return Paper(arxiv_id=arxiv_id, version=version or listed_version or 1,
                 title=" ".join(row["title"].split()), authors=tuple(row["authors"]),
                 abstract=" ".join((row["abstract"] if abstract is None else abstract).split()),
                 categories=tuple(row["categories"]), primary_category=row["categories"][0],
                 abs_url=f"https://arxiv.org/abs/{arxiv_id}", announce_type="new",
                 listed_date=row["listed_date"])


@pytest.fixture(scope="module")
def day_rows():
    return real_listings(limit=10, day="2025-06-02")


# ---- maths and metrics (no encoder) ----------------------------------------------------------


def test_fit_logistic_learns_a_separable_rule():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 5))
    targets = np.stack([features[:, 0] > 0, features[:, 1] + features[:, 2] > 0], axis=1) * 1.0
    weights, bias = classify.fit_logistic(features, targets, np.ones(200), l2=0.1)
    predicted = classify._sigmoid(features @ weights.T + bias) >= 0.5
    assert (predicted == targets.astype(bool)).mean() > 0.95
    assert abs(weights[0, 0]) > 5 * abs(weights[0, 3])


def test_evaluate_counts_exact_sets_none_and_confusions():
    truth = classify.label_matrix([["VLM"], [], ["LLM", "MoE"], ["LAM"]])
    predicted = classify.label_matrix([["LAM"], [], ["LLM", "MoE"], ["LAM"]])
    metrics = classify.evaluate(truth, predicted)
    assert metrics["exact_set_accuracy"] == 0.75
    assert metrics["none_accuracy"] == 1.0
    assert metrics["families"]["LAM"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667,
                                          "support": 1}
    assert metrics["families"]["VLM"]["recall"] == 0.0
    assert metrics["confusions"] == [{"pair": "VLM→LAM", "count": 1}]


def test_head_round_trips_through_npz(tmp_path):
    head = classify.current_head()
    path = replace(head, version="families-copy").save(tmp_path / "head.npz")
    again = classify.load_head(path)
    assert again.version == "families-copy"
    assert np.array_equal(again.weights, head.weights)
    assert np.array_equal(again.thresholds, head.thresholds)
    assert again.info["encoder"] == "all-MiniLM-L6-v2"


def test_a_head_with_other_features_is_refused(tmp_path):
    head = classify.current_head()
    broken = replace(head, info={**head.info, "cues": ["title:other"]})
    with pytest.raises(ValueError, match="octet train"):
        classify.load_head(broken.save(tmp_path / "head.npz"))


# ---- the pipeline stage ----------------------------------------------------------------------


def test_run_stage_scores_embeds_once_and_rescores_only_what_is_stale(settings, day_rows):
    papers = [_paper(row) for row in day_rows[:6]]
    papers[0] = papers[0].with_changes(abstract="")
    upsert_papers(settings.db_path, papers)
    first = classify.run_stage(settings, {})
    assert (first["classified"], first["embedded"], first["low_confidence"]) == (6, 6, 1)

    families = store.families_for(settings.db_path, [p.arxiv_id for p in papers])
    assert set(families) == {p.arxiv_id for p in papers}
    for record in families.values():
        assert record["source"] == "model" and set(record["scores"]) == set(CODES)
        assert record["model_version"] == first["model_version"]
    assert families[papers[0].arxiv_id]["low_confidence"] is True

    again = classify.run_stage(settings, {})
    assert (again["classified"], again["embedded"]) == (0, 0)

    # A new version of one paper: only it is embedded and scored again.
    upsert_papers(settings.db_path, [papers[1].with_changes(version=papers[1].version + 1)])
    updated = classify.run_stage(settings, {})
    assert (updated["classified"], updated["embedded"]) == (1, 1)

    # A new head: everything is rescored, and no embedding is computed twice.
    head = classify.current_head()
    replace(head, version="families-retrained").save(classify.user_head_path(settings.home))
    rescored = classify.run_stage(settings, {})
    assert (rescored["classified"], rescored["embedded"]) == (6, 0)
    assert rescored["model_version"] == "families-retrained"


def test_classify_pending_stops_at_its_limit_and_the_next_call_goes_on(settings, day_rows):
    upsert_papers(settings.db_path, [_paper(row) for row in day_rows[:7]])
    assert classify.classify_pending(settings, limit=3)["classified"] == 3
    assert store.count_pending(settings.db_path, classify.current_head().version) == 4
    assert classify.classify_pending(settings, limit=10)["classified"] == 4
    assert classify.classify_pending(settings, limit=10)["classified"] == 0


def test_embeddings_are_reused_for_similarity(settings, day_rows):
    papers = [_paper(row) for row in day_rows[:4]]
    upsert_papers(settings.db_path, papers)
    classify.run_stage(settings, {})
    ids, matrix = store.embeddings_for(settings.db_path, [papers[2].arxiv_id, "0000.00000"])
    assert ids == [papers[2].arxiv_id] and matrix.shape == (1, 384)
    # Unit length to the precision of the encoder's dtype: bf16 (on CPUs with native bf16
    # and on GPUs) keeps 8 bits of mantissa, so the norm can be off by a few tenths of a
    # percent there; float32 is exact to 1e-6.
    assert np.linalg.norm(matrix[0]) == pytest.approx(1.0, abs=1e-2)
    hits = store.nearest(settings.db_path, matrix[0], limit=3)
    assert hits[0][0] == papers[2].arxiv_id and hits[0][1] == pytest.approx(1.0, abs=1e-2)
    assert len(hits) == 3 and hits[1][1] < hits[0][1]
    others = store.nearest(settings.db_path, matrix[0], limit=10, exclude=[papers[2].arxiv_id],
                           arxiv_ids=[p.arxiv_id for p in papers[:2]] + [papers[2].arxiv_id])
    assert [hit[0] for hit in others] == sorted(
        [p.arxiv_id for p in papers[:2]], key=lambda i: -dict(others)[i])


# ---- commands ---------------------------------------------------------------------------------


def test_classify_command_reports_bad_lines_and_classifies_the_rest(tmp_path, capsys, day_rows):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = [{"id": day_rows[0]["id"], "title": day_rows[0]["title"],
             "abstract": day_rows[0]["abstract"]},
            {"arxiv_id": "2501.00001", "title": "Segment Anything in Medical Images"}]
    source.write_text(json.dumps(good[0]) + "\n\n{not json\n" + json.dumps({"id": "x"}) + "\n"
                      + json.dumps(good[1]) + "\n", encoding="utf-8")
    code = main(["classify", "--input", str(source), "--output", str(output)])
    captured = capsys.readouterr()
    assert code == 2
    assert "in.jsonl:2: empty line" in captured.err
    assert "in.jsonl:3: not valid JSON" in captured.err
    assert "in.jsonl:4: needs a non-empty" in captured.err
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == [good[0]["id"], "2501.00001"]
    assert rows[1]["low_confidence"] is True and rows[0]["low_confidence"] is False
    assert rows[1]["labels"] == ["SAM"]
    assert all(set(row["scores"]) == set(CODES) for row in rows)


def test_classify_command_with_a_missing_file_is_a_usage_error(tmp_path, capsys):
    assert main(["classify", "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_scores_the_model_in_use_on_a_labeled_file(tmp_path, capsys):
    rows = [json.loads(line) for line in LABELED_DEV.read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:12])
                    + json.dumps({**rows[0], "labels": ["GAN"]}) + "\n", encoding="utf-8")
    code = main(["eval", "--labeled", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "labeled.jsonl:13: 'GAN' is not a family" in captured.err
    metrics = json.loads(captured.out)
    assert metrics["papers"] == 12 and metrics["method"].startswith("model in use")
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and set(metrics["families"]) == set(CODES)


def test_training_never_sees_the_held_out_split():
    """Issue 13: the held-out papers are in no training source, not even the 9 that a title
    rule also labeled (they are in the shipped title-rule rows)."""
    held = set(classify.heldout_labeled().ids)
    assert len(classify.heldout_labeled("random").ids) >= 300
    for source in (None, "dev", "title-rules", "read"):
        assert not held & set(classify.shipped_labeled(source).ids), source
    labeled, weights = classify.training_set()
    assert not held & set(labeled.ids) and len(weights) == len(labeled.ids)
    rule_rows = [json.loads(line)["arxiv_id"] for line in classify.data_file(
        classify.SHIPPED_LABELS).read_text(encoding="utf-8").splitlines()]
    assert held & set(rule_rows), "the overlap this test guards against is gone"


def test_the_shipped_head_is_the_one_trained_on_the_shipped_labels(tmp_path):
    """The head measured in BENCHMARKS.md is what `octet train --no-reader` rebuilds."""
    shipped = classify.load_head(classify.data_file(classify.HEAD_FILE))
    rebuilt = classify.train_and_save(tmp_path / "head.npz")
    assert shipped.info["papers"] == rebuilt.info["papers"] == len(classify.shipped_labeled().ids)
    assert np.allclose(shipped.weights, rebuilt.weights, atol=1e-3)
    assert np.allclose(shipped.thresholds, rebuilt.thresholds, atol=0.03)


def test_eval_reports_the_held_out_split_beside_cross_validation(capsys):
    assert main(["eval", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["papers"] == len(classify.heldout_labeled().ids)
    assert metrics["method"].endswith("on the held-out split")
    assert metrics["random"]["papers"] + metrics["targeted"]["papers"] == metrics["papers"]
    cross = metrics["cross_validation"]
    assert cross["papers"] == len(classify.shipped_labeled(classify.HAND_LABELED).ids)
    for part in (metrics, metrics["random"], metrics["targeted"], cross):
        assert 0.0 <= part["badge_precision"] <= 1.0 and set(part["families"]) == set(CODES)


def test_eval_refuses_one_fold(capsys):
    assert main(["eval", "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_label_corrections_win_and_train_uses_them(settings, capsys, day_rows):
    papers = [_paper(row) for row in day_rows[:3]]
    upsert_papers(settings.db_path, papers)
    classify.run_stage(settings, {})
    target = papers[0].arxiv_id
    model_labels = store.families_for(settings.db_path, [target])[target]["labels"]

    assert main(["label", target, "+VLM", "-LLM"]) == 0
    record = store.families_for(settings.db_path, [target])[target]
    expected = [code for code in CODES if code in (set(model_labels) | {"VLM"}) - {"LLM"}]
    assert record["source"] == "reader" and record["labels"] == expected
    assert f"{target}: {', '.join(expected)} (reader)" in capsys.readouterr().out

    assert main(["label", target, "none"]) == 0
    assert store.families_for(settings.db_path, [target])[target]["labels"] == []
    assert main(["label", target, "SLM", "+MoE"]) == 0
    assert store.families_for(settings.db_path, [target])[target]["labels"] == ["MoE", "SLM"]

    assert main(["label", target, "+GAN"]) == 2
    assert "'GAN' is not a family" in capsys.readouterr().err
    assert main(["label", "2501.99999", "+VLM"]) == 2
    assert "not in the database" in capsys.readouterr().err

    old_version = classify.current_head(settings.home).version
    assert main(["train"]) == 0
    assert "(1 labeled by you)" in capsys.readouterr().out
    head = classify.current_head(settings.home)
    assert head.version != old_version and head.info["reader_papers"] == 1
    assert classify.head_path(settings.home) == classify.user_head_path(settings.home)
    rescored = classify.run_stage(settings, {})
    assert (rescored["classified"], rescored["embedded"]) == (3, 0)
    assert store.families_for(settings.db_path, [target])[target]["labels"] == ["MoE", "SLM"]

    assert main(["label", target, "--clear"]) == 0
    assert store.families_for(settings.db_path, [target])[target]["source"] == "model"
