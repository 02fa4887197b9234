"""Parsing model output, choosing a backend, and the summarize stage on a real DuckDB file."""
from __future__ import annotations

import dataclasses
import json

import pytest

from storage.papers import upsert_papers
from tests.helpers import first_papers
from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.core.paper import Paper
from pipeline.stages.summaries import resolve_backend, run_stage, summarize_pending
from pipeline.stages.summaries.extractive import ALGORITHM_VERSION, ExtractiveSummarizer
from pipeline.stages.summaries.summary import FIELDS, Summary, parse_summary
from storage.summaries import pending_ids, summary_counts, summary_for

MODEL = ExtractiveSummarizer().model
"""The role model's version: stored as the extractive summaries' model."""

FALLBACK = Summary(tldr="Copied tldr.", problem="Copied problem.", method="Copied method.",
                   results="Copied results.", why_it_matters="")
FULL = {"tldr": "It does X.", "problem": "P.", "method": "M.", "results": "R.",
        "why_it_matters": "W."}


# ---- parse_summary -----------------------------------------------------------

def test_plain_json_gives_every_field_and_no_fallback():
    summary = parse_summary(json.dumps(FULL), FALLBACK)
    assert summary.fields() == FULL
    assert summary.fallback_fields == ()


def test_code_fences_and_prose_around_the_json_are_ignored():
    text = "Sure! Here is the summary:\n```json\n" + json.dumps(FULL) + "\n```\nHope it helps {."
    assert parse_summary(text, FALLBACK).fields() == FULL


def test_missing_and_empty_fields_come_from_the_fallback_and_are_listed():
    summary = parse_summary('{"tldr": "Only this.", "results": "  ", "method": null}', FALLBACK)
    assert summary.tldr == "Only this."
    assert summary.results == "Copied results." and summary.method == "Copied method."
    assert summary.fallback_fields == ("problem", "method", "results")
    assert summary.why_it_matters == ""  # nothing to borrow: stays empty, never invented


def test_garbage_output_falls_back_entirely():
    summary = parse_summary("\x00\x17 ]]]] {not json", FALLBACK)
    assert summary.fields() == {**FALLBACK.fields()}
    assert summary.fallback_fields == ("tldr", "problem", "method", "results")


def test_aliases_lists_and_line_answers_are_understood():
    summary = parse_summary('{"TL;DR": "A.", "Approach": ["step one", "step two"], '
                            '"Why it matters": "B.", "problem": 7}')
    assert (summary.tldr, summary.method, summary.why_it_matters, summary.problem) == (
        "A.", "step one step two", "B.", "7")
    lines = parse_summary("TL;DR: Short.\nProblem: Hard.\n**Results**: Good.")
    assert (lines.tldr, lines.problem, lines.results) == ("Short.", "Hard.", "Good.")


def test_first_json_object_with_known_fields_wins():
    text = '{"note": "x"} then {"tldr": "Second."} and {"tldr": "Third."}'
    assert parse_summary(text).tldr == "Second."


def test_output_is_plain_text_with_control_characters_removed_and_length_capped():
    text = json.dumps({"tldr": "<script>alert(1)</script>\u0007 bell", "method": "m" * 5000})
    summary = parse_summary(text)
    assert summary.tldr == "<script>alert(1)</script> bell"  # kept as text, not interpreted
    assert len(summary.method) == 1200


# ---- backend choice -----------------------------------------------------------

def test_auto_is_extractive_without_cuda_even_with_a_model(settings):
    assert resolve_backend(settings) == "extractive"
    assert resolve_backend(dataclasses.replace(settings, model="some/model")) == "extractive"
    assert resolve_backend(dataclasses.replace(settings, summarizer="OpenAI")) == "openai"


def test_unknown_backend_names_the_choices(settings):
    with pytest.raises(ConfigError, match="auto, extractive, hf, openai"):
        resolve_backend(dataclasses.replace(settings, summarizer="gpt"))


# ---- the stage on a real database ----------------------------------------------

@pytest.fixture
def stored(settings) -> list[Paper]:
    papers = first_papers(3)
    upsert_papers(settings.db_path, papers)
    return papers


def test_run_stage_summarizes_every_paper_with_provenance(settings, stored):
    report = {"errors": []}
    result = run_stage(settings, report)
    assert result["summarized"] == 3 and result["failed"] == 0 and report["errors"] == []
    shown = summary_for(settings.db_path, [paper.arxiv_id for paper in stored])
    assert set(shown) == {paper.arxiv_id for paper in stored}
    for paper in stored:
        record = shown[paper.arxiv_id]
        assert record["tldr"] and record["extractive"] is True and record["stale"] is False
        assert (record["backend"], record["model"], record["prompt_version"], record["version"]) \
            == ("extractive", MODEL, ALGORITHM_VERSION, 1)
        assert record["created_at"].endswith("+00:00")
        abstract = " ".join(paper.abstract.split())
        assert all(record[name][1:] in abstract for name in FIELDS if record[name])


def test_only_stale_and_missing_papers_are_summarized_again(settings, stored):
    summarize_pending(settings)
    assert summarize_pending(settings)["pending"] == 0
    revised = stored[2].with_changes(version=2, abstract="We propose a new router. "
                                     "It improves accuracy by 4%.")
    upsert_papers(settings.db_path, [revised] + first_papers(4)[3:])
    stale_view = summary_for(settings.db_path, [revised.arxiv_id])[revised.arxiv_id]
    assert stale_view["stale"] is True and stale_view["version"] == 1
    result = summarize_pending(settings)
    assert result["pending"] == 2 and result["summarized"] == 2
    fresh = summary_for(settings.db_path, [revised.arxiv_id])[revised.arxiv_id]
    assert (fresh["version"], fresh["stale"], fresh["tldr"]) == (
        2, False, "We propose a new router.")
    assert fresh["results"] == "It improves accuracy by 4%."


def test_a_new_model_or_prompt_makes_every_summary_pending(settings, stored):
    summarize_pending(settings)
    assert pending_ids(settings.db_path, "extractive", MODEL, ALGORITHM_VERSION) == []
    assert len(pending_ids(settings.db_path, "extractive", "all-MiniLM-L6-v2",
                           "extractive.v1")) == 3
    assert len(pending_ids(settings.db_path, "hf", "some/model", "summarize.v1")) == 3
    assert summary_counts(settings.db_path) == [
        {"backend": "extractive", "model": MODEL, "prompt_version": ALGORITHM_VERSION,
         "current": 3, "stale": 0}]


def test_summary_for_prefers_a_generated_summary_at_the_current_version(settings, stored):
    from storage.summaries import save_summaries

    summarize_pending(settings)
    target = stored[0].arxiv_id
    generated = Summary(arxiv_id=target, version=1, tldr="Generated.", backend="hf",
                        model="m", prompt_version="summarize.v1")
    save_summaries(settings.db_path, [generated])
    assert summary_for(settings.db_path, [target])[target]["tldr"] == "Generated."
    upsert_papers(settings.db_path, [stored[0].with_changes(version=2)])
    summarize_pending(settings)  # extractive at v2 beats the generated one at v1
    shown = summary_for(settings.db_path, [target])[target]
    assert (shown["backend"], shown["version"]) == ("extractive", 2)
    assert summary_for(settings.db_path, []) == {}


def test_cli_summarize_prints_and_limits(settings, stored, capsys):
    assert main(["summarize", "--limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["pending"], result["summarized"], result["backend"]) == (2, 2, "extractive")
    assert main(["summarize", "--backend", "extractive"]) == 0
    assert "summarized 1 of 1 pending papers with extractive" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["summarize", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["summarize", "--limit", "0"], "--limit must be at least 1"),
    (["summarize", "--backend", "hf"], "the hf backend needs a model"),
    (["summarize", "--backend", "openai"], "the openai backend needs a model name"),
])
def test_cli_bad_input_exits_2_with_the_fix(settings, argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
