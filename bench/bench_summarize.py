"""Benchmark: how often extractive fields land on a sentence of their role (held-out
labels, cross-validation and trivial rules beside), extractive summaries/s on real papers
(v3 and the frozen v2 in the same run), and hf generation tokens/s for a random model
shaped like a 0.5B instruct model (Qwen2-0.5B) in bf16 on this CPU.

``main()`` returns the Markdown section for BENCHMARKS.md. Bounded in time: a few new
tokens per run, three runs per row (five for the extractive rates), the median reported.
"""
from __future__ import annotations

from bench.common import median_seconds
import itertools
import json
import lzma
import os
import platform
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
LISTINGS = Path(os.environ.get("OCTET_SHARED", REPO.parent / "shared")) / "data" / \
    "arxiv_listings_cs_2025_2026.jsonl.xz"
RUNS = 3
EXTRACTIVE_RUNS = 5
PAPERS = 32
EXTRACTIVE_PAPERS = 500
PROMPT_TOKENS = 8
NEW_TOKENS = 4


def qwen2_half_b_config():
    """The shape of Qwen2-0.5B-Instruct (494M parameters), weights left random."""
    import transformers

    return transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True, rope_theta=1_000_000.0)




def _papers(count: int):
    from pipeline.core.paper import Paper

    with lzma.open(LISTINGS, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, count)]
    return [Paper(arxiv_id=row["id"], version=1, title=row["title"], abstract=row["abstract"])
            for row in rows]


def bench_extractive() -> list[str]:
    from bench.extractive_v2 import fields_v2
    from pipeline.stages.summaries.extractive import ExtractiveSummarizer
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    papers = _papers(EXTRACTIVE_PAPERS)
    summarizer = ExtractiveSummarizer()
    texts = [paper_text(paper.title, paper.abstract) for paper in papers[:PAPERS]]
    embed_texts(texts[:4], device="cpu")  # load the encoder outside the timing
    baseline = PAPERS / median_seconds(lambda: embed_texts(texts, device="cpu"))
    summarizer.summarize(papers[:4])  # load the role model outside the timing
    rate = len(papers) / median_seconds(lambda: summarizer.summarize(papers), EXTRACTIVE_RUNS)
    rate_v2 = len(papers) / median_seconds(lambda: fields_v2(papers), EXTRACTIVE_RUNS)
    return [
        f"| encoder only: `embed_texts(title + abstract)` (baseline) | {PAPERS} papers | "
        f"{PAPERS / baseline:.2f} s | {baseline:.1f} papers/s | 1.00 |",
        f"| `ExtractiveSummarizer.summarize` (sentence roles, v3) | {len(papers)} papers | "
        f"{len(papers) / rate:.2f} s | {rate:.0f} summaries/s | {rate / baseline:.1f}× the rate |",
        f"| v2 fields (word overlap, `bench/extractive_v2.py`), same run | {len(papers)} papers | "
        f"{len(papers) / rate_v2:.2f} s | {rate_v2:.0f} summaries/s | {rate_v2 / baseline:.1f}× the rate |",
    ]


def _quality_row(name: str, split: str, rates: dict[str, float]) -> str:
    cells = " | ".join(f"{rates[key]:.2f}" for key in ("tldr", "problem", "method", "results", "mean",
                                                       "tldr_main"))
    return f"| {name} | {split} | {cells} |"


def bench_roles() -> list[str]:
    """The role-quality table: v3 on the held-out labels (measured, never tuned on), v3 by
    cross-validation on the train split, v2, and the trivial rules on the same held-out split."""
    from bench import role_quality as quality
    from bench.extractive_v2 import pick_indices_v2
    from pipeline.stages.summaries.roles import labeled_rows

    heldout, train = labeled_rows("heldout"), labeled_rows("train")
    picks = quality.picks_from(heldout, quality.model_probabilities(heldout))
    cv = quality.hit_rates(train, quality.picks_from(train, quality.cv_probabilities(train)))
    v2 = [pick_indices_v2(row["sentences"], row["title"]) for row in heldout]
    held = f"held-out ({len(heldout)})"
    rows = [_quality_row("**v3: roles model (shipped)**", held, quality.hit_rates(heldout, picks)),
            _quality_row("v3, 5-fold cross-validation", f"train ({len(train)})", cv),
            _quality_row("v2: word overlap + cue words", held, quality.hit_rates(heldout, v2))]
    rows += [_quality_row(name, held, rates) for name, rates in quality.trivial_rates(heldout).items()]
    why = quality.why_counts(heldout, picks)
    header = ["", "Share of abstracts whose field lands on a sentence of its role (labels read sentence "
              "by sentence, `pipeline/data/sentence_roles.jsonl`): TL;DR ↔ problem or method, problem ↔ "
              "problem, method ↔ method, results ↔ result; an empty field or an abstract without that "
              "role is a miss. TL;DR == main: the labeled best TL;DR sentence. Random sentence: "
              f"mean of {quality.RANDOM_DRAWS} seeded draws.", "",
              "| selection | split | TL;DR | problem | method | results | mean of four | TL;DR == main |",
              "|---|---|---|---|---|---|---|---|"]
    footer = ["", f"Why it matters (v3, held-out): {why['with_implication']} abstracts have an implication "
              f"sentence; the field is shown for {why['shown_with']} of them ({why['shown_on_implication']} "
              f"on an implication sentence) and for {why['shown_without']} of the "
              f"{len(heldout) - why['with_implication']} without.", ""]
    return header + rows + footer


def memory_bandwidth_gbs(megabytes: int = 512) -> float:
    """Main-memory copy bandwidth of this machine (bytes read + written per second)."""
    import numpy as np

    source = np.ones(megabytes * 2**20, dtype=np.uint8)
    target = np.empty_like(source)
    seconds = median_seconds(lambda: np.copyto(target, source), 5)
    return 2 * source.nbytes / seconds / 1e9


def generation_tokens_per_second(model, batch: int, device: str, prompt_tokens: int,
                                 new_tokens: int, runs: int = RUNS) -> tuple[float, float]:
    """``(median seconds, new tokens/s)`` for greedy generation of exactly ``new_tokens``
    per row after a random prompt of ``prompt_tokens``."""
    import torch

    generator = torch.Generator().manual_seed(batch)
    ids = torch.randint(10, 1000, (batch, prompt_tokens), generator=generator).to(device)
    mask = torch.ones_like(ids)

    def run(count: int = new_tokens):
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=count,
                           min_new_tokens=count, do_sample=False, pad_token_id=0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run(2)  # warm-up for these shapes (kernels, caches), kept short: prefill costs most
    seconds = median_seconds(run, runs)
    return seconds, batch * new_tokens / seconds


def random_model(dtype, device: str = "cpu"):
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(qwen2_half_b_config(), dtype=dtype)
    return model.to(device).eval()


def bench_hf() -> list[str]:
    """bf16 (the issue's rows; batch 1 is the baseline) and fp32 (what ``auto`` picks on a
    CPU without native bf16 kernels), each at batch 1 and 16."""
    import torch

    rows, baseline = [], None
    bandwidth = memory_bandwidth_gbs()
    for dtype in (torch.bfloat16, torch.float32):
        model = random_model(dtype)
        name = str(dtype).replace("torch.", "")
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        for batch in (1, 16):
            seconds, rate = generation_tokens_per_second(model, batch, "cpu", PROMPT_TOKENS,
                                                         NEW_TOKENS)
            baseline = baseline or rate
            bound = batch * bandwidth * 1e9 / weight_bytes
            label = " (baseline)" if rows == [] else ""
            rows.append(f"| hf generate, Qwen2-0.5B-shaped random model, {name} CPU, batch "
                        f"{batch}{label} | {batch} × ({PROMPT_TOKENS} prompt + {NEW_TOKENS} new) "
                        f"tokens | {seconds:.2f} s | {rate:.1f} tokens/s (bandwidth bound "
                        f"{bound:.0f}) | {rate / baseline:.2f}× |")
        del model
    rows.append(f"\nBandwidth bound: each decoding step reads every weight once, so a batch "
                f"makes at most batch × {bandwidth:.1f} GB/s (this machine's measured memory "
                "copy) / weight bytes new tokens/s; prefill and the 4-token runs keep the "
                "measured rates below it.")
    return rows


def main() -> str:
    import torch

    cpu = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    header = ["## Summaries", "", "`python -m bench summarize`"] + bench_roles() + [
              f"Median of {RUNS} runs ({EXTRACTIVE_RUNS} for the extractive rates) on {cpu}. "
              f"Extractive: the first {EXTRACTIVE_PAPERS} "
              f"papers of the shared listings (the encoder baseline: the first {PAPERS}). "
              f"hf: greedy generation of exactly {NEW_TOKENS} new tokens per "
              f"row after a {PROMPT_TOKENS}-token prompt (tokens/s = new tokens / wall time, "
              f"prefill included). GPU: `python bench/gpu_summarize.py`.", "",
              "| command | input | median | rate | ratio |", "|---|---|---|---|---|"]
    return "\n".join(header + bench_extractive() + bench_hf()) + "\n"


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))
    print(main())
