"""The LLM judge on the hf path, with tiny random models built here from a config (no
download, no GPU): the prompt goes through the chat template (or the plain text), generation
is greedy and capped, and random output is a parsed failure, never a label."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import transformers

from pipeline.core.families import CODES
from pipeline.stages.families import current_head
from pipeline.stages.family_judge import (JUDGE_MAX_NEW_TOKENS, JudgeFailure, make_judge,
                                          recheck_uncertain)
from prompts import families_messages
from storage.families import families_for, store_results
from tests.helpers import first_papers, store_real_papers

SHORT = 6
"""New tokens in these tests: too few for any reply the parser accepts (16 characters)."""

CHAT_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
                 "\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _tiny_llama(folder, chat: bool) -> str:
    """A 2-layer random Llama with a byte-level tokenizer (needs no vocabulary file)."""
    torch.manual_seed(0)
    tokenizer = transformers.ByT5Tokenizer()
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=8192, vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("judge-models")
    return {"chat": _tiny_llama(root / "chat", chat=True),
            "plain": _tiny_llama(root / "plain", chat=False)}


def _hf(settings, folder: str):
    return replace(settings, summarizer="hf", model=folder, device="cpu", batch_size=2)


def test_the_prompt_goes_through_the_chat_template_or_the_plain_text(settings, models):
    paper = first_papers(1)[0]
    system, user = families_messages(paper.title, paper.abstract)
    chat = make_judge(_hf(settings, models["chat"])).client.prompt_from([system, user])
    assert chat == f"<|system|>{system['content']}\n<|user|>{user['content']}\n<|assistant|>"
    plain = make_judge(_hf(settings, models["plain"])).client.prompt_from([system, user])
    assert plain == f"{system['content']}\n\n{user['content']}\n\nJSON:"


def _short_judge(settings, folder: str):
    """The judge with fewer new tokens than in use (each one costs a pass over a 5,000-byte
    prompt here); the cap itself is checked by ``test_backend_hf``."""
    judge = make_judge(_hf(settings, folder))
    assert judge.client.max_new_tokens == JUDGE_MAX_NEW_TOKENS
    judge.client.max_new_tokens = SHORT
    return judge


def test_random_output_is_a_parsed_failure_not_a_label(settings, models):
    judge = _short_judge(settings, models["chat"])
    assert judge.judge_version == f"hf:{models['chat']}:families.v1"
    papers = first_papers(2)
    verdicts = judge.judge(papers)
    assert [type(verdict) for verdict in verdicts] == [JudgeFailure] * 2
    assert [verdict.arxiv_id for verdict in verdicts] == [paper.arxiv_id for paper in papers]
    assert all(verdict.error.startswith("the reply is not one JSON object") for verdict in verdicts)
    assert judge.client.last_new_token_counts == [SHORT] * 2  # greedy, capped, batched
    judge.close()


def test_a_recheck_on_the_hf_path_stores_nothing_from_junk(settings, models):
    papers = store_real_papers(settings.db_path, limit=2)
    head = current_head(settings.home)
    store_results(settings.db_path, [], [
        {"arxiv_id": paper.arxiv_id, "version": 1, "labels": [], "low_confidence": True,
         "scores": {code: 0.0 for code in CODES}} for paper in papers], head.version)
    result = recheck_uncertain(settings, judge=_short_judge(settings, models["plain"]))
    assert (result["checked"], result["changed"], result["failed"]) == (2, 0, 2)
    shown = families_for(settings.db_path, [paper.arxiv_id for paper in papers])
    assert {record["source"] for record in shown.values()} == {"model"}
