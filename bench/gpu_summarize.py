"""GPU check for summaries: the hf benchmark on CUDA, next to the memory-bandwidth limit.

    python bench/gpu_summarize.py [--batch-sizes 1,16,64,256] [--new-tokens 64]

Runs the Qwen2-0.5B-shaped random model in bf16 on the first CUDA device and reports new
tokens/s per batch size beside the bandwidth bound: each decoding step reads every weight
once, so a batch cannot produce more than ``batch × bandwidth / weight bytes`` tokens/s.
It also runs the real ``HFSummarizer`` on a tiny local model on CUDA (auto device and
dtype) as an end-to-end check. Without CUDA it says so and exits 0. Prints Markdown.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def spec_bandwidth_gbs(properties) -> float | None:
    """Peak DRAM bandwidth from the device's memory clock and bus width, when torch knows them."""
    clock_khz = getattr(properties, "memory_clock_rate", None)
    bus_bits = getattr(properties, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return clock_khz * 1e3 * 2 * bus_bits / 8 / 1e9  # double data rate


def measured_bandwidth_gbs(gibibytes: float = 2.0, runs: int = 10) -> float:
    """Device-to-device copy bandwidth (bytes read + written per second)."""
    import torch

    source = torch.empty(int(gibibytes * 2**30), dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    target.copy_(source)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(runs):
        target.copy_(source)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / runs
    del source, target
    torch.cuda.empty_cache()
    return 2 * gibibytes * 2**30 / seconds / 1e9


def tiny_end_to_end() -> str:
    """The real backend on CUDA: a tiny random Llama saved locally, auto device and dtype."""
    import torch
    import transformers

    from pipeline.core.paper import Paper
    from pipeline.stages.summaries.hf import HFSummarizer
    from pipeline.stages.summaries.summary import Summary, SummaryFailure

    tokenizer = transformers.ByT5Tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    folder = tempfile.mkdtemp()
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    summarizer = HFSummarizer(model=folder, device="auto", batch_size=8, max_new_tokens=16)
    papers = [Paper(arxiv_id=f"2501.{index:05d}", version=1, title=f"Paper {index}",
                    abstract="We propose a method. It improves accuracy by 3%.")
              for index in range(12)]
    summaries = summarizer.summarize(papers)
    _, model, device, _ = summarizer.load()
    # A random model writes no usable JSON: each paper is a failure, never abstract sentences.
    ok = ([item.arxiv_id for item in summaries] == [paper.arxiv_id for paper in papers]
          and all(isinstance(item, (Summary, SummaryFailure)) for item in summaries))
    summarizer.close()
    return (f"HFSummarizer end to end on {device} ({model.dtype}): "
            f"{'ok' if ok else 'FAILED'}, {summarizer.generated_tokens} tokens, "
            f"GPU memory after close {torch.cuda.memory_allocated() / 2**20:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("CUDA is not available here; the GPU summary benchmark was skipped.")
        return 0
    from bench.bench_summarize import generation_tokens_per_second, random_model

    properties = torch.cuda.get_device_properties(0)
    spec = spec_bandwidth_gbs(properties)
    measured = measured_bandwidth_gbs()
    model = random_model(torch.bfloat16, "cuda")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"## Summaries on {properties.name} ({properties.total_memory / 2**30:.0f} GiB)\n")
    print(f"Qwen2-0.5B-shaped random model, bf16, {weight_bytes / 1e9:.2f} GB of weights; "
          f"{args.prompt_tokens} prompt + {args.new_tokens} new tokens per row, greedy, "
          f"median of {args.runs} runs. Bandwidth: "
          + (f"spec {spec:.0f} GB/s, " if spec else "spec unknown, ")
          + f"measured copy {measured:.0f} GB/s.\n")
    print("| batch | median | new tokens/s | bound at measured bandwidth | share of bound |")
    print("|---|---|---|---|---|")
    for batch in [int(size) for size in args.batch_sizes.split(",")]:
        seconds, rate = generation_tokens_per_second(model, batch, "cuda", args.prompt_tokens,
                                                     args.new_tokens, args.runs)
        bound = batch * measured * 1e9 / weight_bytes
        print(f"| {batch} | {seconds:.2f} s | {rate:,.0f} | {bound:,.0f} | {rate / bound:.0%} |")
    del model
    torch.cuda.empty_cache()
    print("\n" + tiny_end_to_end())
    return 0


if __name__ == "__main__":
    sys.exit(main())
