"""The hf backend on tiny random models built here from a config (no download, no GPU)."""
from __future__ import annotations

import json

import pytest
import torch
import transformers

from pipeline.cli import main
from pipeline.stages.summaries import summarize_pending
from pipeline.stages.summaries.hf import (HFSummarizer, choose_device, choose_dtype,
                                          cpu_supports_bf16, generate_halving)
from pipeline.stages.summaries.summary import BackendUnavailable, Summary, SummaryFailure
from prompts import summary_text
from storage.papers import upsert_papers
from storage.summaries import summary_for
from tests.helpers import first_papers

CHAT_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
                 "\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choices")


def _tokenizer(chat: bool):
    tokenizer = transformers.ByT5Tokenizer()  # byte-level: needs no vocabulary file
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _save(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Three tiny random models saved as local folders: Llama with a chat template,
    Qwen2 without one, and T5 (seq2seq)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    tokenizer = _tokenizer(chat=True)
    special = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   bos_token_id=None, vocab_size=len(tokenizer))
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(**small, **special))
    qwen = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**small, **special))
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
        d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4,
        decoder_start_token_id=tokenizer.pad_token_id, **special))
    return {"llama": _save(llama, tokenizer, root / "llama"),
            "qwen2": _save(qwen, _tokenizer(chat=False), root / "qwen2"),
            "t5": _save(t5, _tokenizer(chat=False), root / "t5")}


PROMPTS = ["Summarize: sparse experts.", "x", "A much longer prompt about masked diffusion "
           "language models and their sampling schedules.", "Speech tokens."]


# ---- device and dtype ---------------------------------------------------------------

@no_cuda
def test_auto_device_is_cpu_and_forcing_cuda_names_the_fix():
    assert choose_device("auto") == "cpu" and choose_device("") == "cpu"
    assert choose_device("cpu") == "cpu"
    with pytest.raises(BackendUnavailable, match="--device cpu"):
        choose_device("cuda:0")
    with pytest.raises(BackendUnavailable, match="auto, cpu, cuda"):
        choose_device("tpu")


def test_cpu_dtype_is_bf16_only_where_the_cpu_supports_it(models):
    expected = torch.bfloat16 if cpu_supports_bf16() else torch.float32
    assert choose_dtype("cpu") == expected
    assert choose_dtype("cpu", "bfloat16") == torch.bfloat16
    loaded = HFSummarizer(model=models["llama"], device="cpu")
    assert loaded.load()[1].dtype == expected and loaded.load()[2] == "cpu"


# ---- batching, padding, the cap -------------------------------------------------------

def test_decoder_only_pads_left_and_seq2seq_keeps_the_default(models):
    assert HFSummarizer(model=models["llama"]).tokenizer.padding_side == "left"
    assert HFSummarizer(model=models["qwen2"]).tokenizer.padding_side == "left"
    assert HFSummarizer(model=models["t5"]).tokenizer.padding_side == "right"


@pytest.mark.parametrize("name", ["llama", "t5"])
def test_a_batch_gives_the_same_greedy_text_as_each_prompt_alone(models, name):
    batched = HFSummarizer(model=models[name], batch_size=4, max_new_tokens=8)
    alone = HFSummarizer(model=models[name], batch_size=1, max_new_tokens=8)
    assert batched.generate_texts(PROMPTS) == [alone.generate_texts([p])[0] for p in PROMPTS]


@pytest.mark.parametrize("name", ["llama", "t5"])
def test_new_tokens_never_exceed_the_cap(models, name):
    summarizer = HFSummarizer(model=models[name], batch_size=3, max_new_tokens=5)
    summarizer.generate_texts(PROMPTS)
    counts = summarizer.last_new_token_counts
    assert len(counts) == len(PROMPTS) and max(counts) == 5  # the random model never stops early
    assert summarizer.generated_tokens == sum(counts) > 0


def _fake_out_of_memory(limit: int, seen: list):
    def generate(batch):
        seen.append(len(batch))
        if len(batch) > limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [item * 10 for item in batch]
    return generate


def test_out_of_memory_halves_the_batch_and_continues():
    seen, released = [], []
    results = generate_halving(list(range(7)), 8, _fake_out_of_memory(2, seen),
                               lambda: released.append(True))
    assert results == [item * 10 for item in range(7)]
    assert seen == [7, 4, 2, 2, 2, 1] and len(released) == 2


def test_out_of_memory_at_batch_one_and_other_errors_are_raised():
    with pytest.raises(RuntimeError, match="out of memory"):
        generate_halving([1, 2], 4, _fake_out_of_memory(0, []))

    def broken(batch):
        raise ValueError("not memory")
    with pytest.raises(ValueError):
        generate_halving([1, 2], 4, broken)


# ---- prompts and parsing -------------------------------------------------------------

def test_chat_template_is_used_when_present_and_plain_prompt_otherwise(models):
    paper = first_papers(1)[0]
    chat = HFSummarizer(model=models["llama"]).prompt_for(paper)
    assert chat.startswith("<|system|>You summarize arXiv papers")
    assert chat.endswith("</paper>\n<|assistant|>")
    plain = HFSummarizer(model=models["qwen2"]).prompt_for(paper)
    assert plain == summary_text(paper.title, paper.abstract)


def test_random_model_output_is_a_failure_not_abstract_sentences(models):
    papers = first_papers(2)
    results = HFSummarizer(model=models["llama"], max_new_tokens=8).summarize(papers)
    assert [result.arxiv_id for result in results] == [paper.arxiv_id for paper in papers]
    assert all(isinstance(result, SummaryFailure) and "no usable summary field" in result.error
               for result in results)


class TitleEcho(HFSummarizer):
    """The hf backend with a model that answers every prompt with a summary of its paper
    (a random tiny model writes no JSON), to follow what the stage stores."""

    def prompt_for(self, paper) -> str:
        return " ".join(paper.title.split())

    def generate_texts(self, prompts: list[str]) -> list[str]:
        return [json.dumps({"tldr": f"{title}.", "method": f"How {title}?"}) for title in prompts]


# ---- end to end through the CLI and the stage ------------------------------------------

def test_cli_hf_on_a_local_folder_fails_junk_and_stores_nothing(models, settings, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("OCTET_MAX_NEW_TOKENS", "8")
    papers = first_papers(2)
    upsert_papers(settings.db_path, papers)
    argv = ["summarize", "--backend", "hf", "--model", models["llama"], "--device", "cpu",
            "--batch-size", "2", "--json"]
    for _ in range(2):  # nothing stored: the next run tries both again
        assert main(argv) == 1
        result = json.loads(capsys.readouterr().out)
        assert (result["pending"], result["summarized"], result["failed"], result["backend"],
                result["model"], result["prompt_version"]) == (
            2, 0, 2, "hf", models["llama"], "summarize.v1")
    assert summary_for(settings.db_path, [paper.arxiv_id for paper in papers]) == {}


def test_hf_summaries_are_stored_and_made_again_when_stale(settings):
    papers = first_papers(2)
    upsert_papers(settings.db_path, papers)
    result = summarize_pending(settings, summarizer=TitleEcho(model="echo"))
    assert (result["summarized"], result["failed"]) == (2, 0)
    shown = summary_for(settings.db_path, [paper.arxiv_id for paper in papers])
    for paper in papers:
        record = shown[paper.arxiv_id]
        assert (record["backend"], record["model"], record["extractive"]) == ("hf", "echo", False)
        assert record["tldr"] == " ".join(paper.title.split()) + "."
        assert "tldr" not in record["fallback_fields"] and "method" not in record["fallback_fields"]

    assert summarize_pending(settings, summarizer=TitleEcho(model="echo"))["pending"] == 0
    upsert_papers(settings.db_path, [papers[1].with_changes(version=2)])
    assert summarize_pending(settings, summarizer=TitleEcho(model="echo"))["summarized"] == 1
    assert summary_for(settings.db_path, [papers[1].arxiv_id])[papers[1].arxiv_id]["version"] == 2

    # Another model is another summary: every paper is pending for it.
    assert summarize_pending(settings, summarizer=TitleEcho(model="other"))["summarized"] == 2
    assert isinstance(TitleEcho(model="echo").summarize(papers[:1])[0], Summary)


def test_a_model_that_cannot_be_loaded_names_the_fix(settings, tmp_path, capsys):
    upsert_papers(settings.db_path, first_papers(1))
    code = main(["summarize", "--backend", "hf", "--model", str(tmp_path / "no-such-model")])
    assert code == 2
    assert "pass --model with a local folder or a Hugging Face id" in capsys.readouterr().err


# ---- CUDA (skipped here; run where a GPU is) -------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_device_on_cuda_is_bf16_and_batches_match(models):
    batched = HFSummarizer(model=models["llama"], batch_size=4, max_new_tokens=6)
    _, model, device, _ = batched.load()
    assert device == "cuda" and model.dtype == choose_dtype("cuda")
    assert len(batched.generate_texts(PROMPTS)) == len(PROMPTS)
    assert max(batched.last_new_token_counts) <= 6
