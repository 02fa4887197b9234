"""Benchmark: extractive summaries/s on real papers, and hf generation tokens/s for a
random model shaped like a 0.5B instruct model (Qwen2-0.5B) in bf16 on this CPU.

``main()`` returns the Markdown section for BENCHMARKS.md. Bounded in time: a few new
tokens per run, three runs per row, the median reported.
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
    from pipeline.stages.summaries.extractive import ExtractiveSummarizer
    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import embed_texts

    papers = _papers(EXTRACTIVE_PAPERS)
    summarizer = ExtractiveSummarizer()
    texts = [paper_text(paper.title, paper.abstract) for paper in papers[:PAPERS]]
    embed_texts(texts[:4], device="cpu")  # load the encoder outside the timing
    baseline = PAPERS / median_seconds(lambda: embed_texts(texts, device="cpu"))
    rate = len(papers) / median_seconds(lambda: summarizer.summarize(papers))
    return [
        f"| encoder only: `embed_texts(title + abstract)` (baseline) | {PAPERS} papers | "
        f"{PAPERS / baseline:.2f} s | {baseline:.1f} papers/s | 1.00 |",
        f"| `ExtractiveSummarizer.summarize` (word overlap, v2) | {len(papers)} papers | "
        f"{len(papers) / rate:.2f} s | {rate:.0f} summaries/s | {rate / baseline:.1f}× the rate |",
    ]


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
    header = ["## Summaries", "",
              f"Median of {RUNS} runs on {cpu}. Extractive: the first {EXTRACTIVE_PAPERS} "
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
