"""GPU benchmark of generated summaries: real papers through the hf backend and, when vLLM
is installed, through a local vLLM server driven by the openai backend; each beside the
memory-bandwidth roofline of the GPU for the model.

    python -m bench gpu [--model FOLDER_OR_ID] [--papers 256] [--max-new-tokens 256]
    python bench/gpu_summarize.py [same flags]      (prints the section only)

``python -m bench gpu`` writes the table into BENCHMARKS.md's GPU section. Without CUDA it
says so in one line and exits 0, leaving the file alone.

The model is ``--model`` (a local folder or hub id), else ``DEFAULT_MODEL`` from the
Hugging Face cache (fetched once when the hub is reachable); with neither, the hf row runs
random weights of DEFAULT_MODEL's shape on synthetic prompts (throughput only, marked).
The papers are the first ``--papers`` of ``pipeline/data/demo_papers.jsonl`` (real arXiv
papers, fixed). The whole run keeps within ``--budget`` seconds (default 450: 7.5 minutes):
each part is skipped, or stops early and says so, when its share of the time is spent.

Roofline: decoding one step reads every weight once, and every sequence of the batch gets
one token from that read; so a batch of B sequences cannot produce more than
``B × bandwidth / weight bytes`` output tokens/s (weight bytes per decoded token = weight
bytes / B). B is the hf batch size (the mean rows per batch) and the server's concurrency
for vLLM; bandwidth is the measured device-to-device copy bandwidth; KV-cache reads and
prefill are left out, so the bound is generous and the share a lower bound of efficiency.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEMO_PAPERS = REPO / "pipeline" / "data" / "demo_papers.jsonl"
SERVED_NAME = "octet-bench"
NO_CUDA = ("CUDA is not available here; the GPU summary benchmark was skipped (run "
           "`python -m bench gpu` on a machine with a CUDA GPU).")


@dataclass
class Measurement:
    """One backend's timed run over the papers."""

    backend: str
    """What ran: ``hf``, ``vllm (openai backend)`` or ``hf, random weights``."""

    papers: int = 0
    """Papers summarized in the timed run (fewer than asked when the time share ran out)."""

    seconds: float = 0.0
    """Wall time of the timed run."""

    output_tokens: int = 0
    """Tokens generated (hf: counted up to each row's end; vLLM: the server's usage)."""

    batch: float = 1.0
    """Sequences that share one read of the weights (hf: mean rows per batch; vLLM: the
    concurrency)."""

    stored: int = 0
    """Replies accepted as summaries."""

    ungrounded: int = 0
    """Fields of accepted summaries replaced because they were not grounded."""

    failed: int = 0
    """Replies refused (junk, another topic, nothing grounded) or requests failed."""

    notes: list[str] = field(default_factory=list)
    """Lines printed under the table (early stops, what was skipped)."""

    @property
    def papers_per_second(self) -> float:
        """Papers per second of the timed run."""
        return self.papers / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Output tokens per second of the timed run."""
        return self.output_tokens / self.seconds if self.seconds else 0.0


def roofline_tokens_per_second(batch: float, bandwidth_gbs: float, weight_bytes: int) -> float:
    """The most output tokens/s a batch can decode: each step reads the weights once."""
    return batch * bandwidth_gbs * 1e9 / weight_bytes


def demo_papers(count: int) -> list:
    """The first ``count`` real papers of the shipped demo set."""
    from pipeline.core.paper import Paper

    rows = [json.loads(line) for line in DEMO_PAPERS.read_text(encoding="utf-8").splitlines()]
    return [Paper(arxiv_id=row["id"], version=1, title=row["title"], abstract=row["abstract"])
            for row in rows[:count]]


def tally(measurement: Measurement, results: list) -> None:
    """Count the accepted, partly replaced and refused summaries of a run."""
    from pipeline.stages.summaries.summary import Summary

    for result in results:
        if isinstance(result, Summary):
            measurement.stored += 1
            measurement.ungrounded += len(result.ungrounded_fields)
        else:
            measurement.failed += 1


def timed_chunks(summarize, papers: list, chunk: int, seconds_left: float,
                 measurement: Measurement) -> list:
    """``summarize`` over the papers chunk by chunk, stopping when the time is spent."""
    results, started = [], time.perf_counter()
    for start in range(0, len(papers), chunk):
        if time.perf_counter() - started > seconds_left:
            measurement.notes.append(f"{measurement.backend}: stopped after {len(results)} of "
                                     f"{len(papers)} papers (its time share was spent)")
            break
        results += summarize(papers[start:start + chunk])
    measurement.seconds = time.perf_counter() - started
    measurement.papers = len(results)
    return results


def run_hf(summarizer, papers: list, seconds_left: float) -> Measurement:
    """The hf backend over the papers after a short warm-up (loading, kernels)."""
    measurement = Measurement("hf")
    summarizer.summarize(papers[:2])
    summarizer.generated_tokens = 0
    batches = []
    original = summarizer._generate_batch

    def counted(prompts):
        batches.append(len(prompts))
        return original(prompts)

    summarizer._generate_batch = counted
    results = timed_chunks(summarizer.summarize, papers, summarizer.batch_size * 2,
                           seconds_left, measurement)
    measurement.output_tokens = summarizer.generated_tokens
    measurement.batch = sum(batches) / len(batches) if batches else 1.0
    tally(measurement, results)
    return measurement


def run_server(client, papers: list, seconds_left: float, backend: str) -> Measurement:
    """The openai backend against a running server, after a short warm-up."""
    measurement = Measurement(backend, batch=float(client.concurrency))
    client.summarize(papers[:2])
    client.completion_tokens = 0
    results = timed_chunks(client.summarize, papers, client.concurrency * 2, seconds_left,
                           measurement)
    measurement.output_tokens = client.completion_tokens
    tally(measurement, results)
    if not client.sends_structured:
        measurement.notes.append(f"{backend}: the server refused structured output; plain "
                                 "requests, parsed strictly")
    return measurement


def table(rows: list[Measurement], bandwidth_gbs: float, weight_bytes: int) -> str:
    """The Markdown table of the runs."""
    lines = ["| backend | papers | papers/s | output tokens/s | tokens/paper | batch | "
             "roofline tokens/s | share of roofline | summaries / fields replaced / refused |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        bound = roofline_tokens_per_second(row.batch, bandwidth_gbs, weight_bytes)
        per_paper = row.output_tokens / row.papers if row.papers else 0
        lines.append(f"| {row.backend} | {row.papers} | {row.papers_per_second:.2f} | "
                     f"{row.tokens_per_second:,.0f} | {per_paper:.0f} | {row.batch:.0f} | "
                     f"{bound:,.0f} | {row.tokens_per_second / bound:.1%} | "
                     f"{row.stored} / {row.ungrounded} / {row.failed} |")
    return "\n".join(lines)


# ---- CUDA facts ----------------------------------------------------------------------------

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


def weight_bytes_of(model) -> int:
    """Bytes of the model's weights (tied weights once)."""
    return sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())


def free_gpu() -> None:
    """Give back what the last model held, before the next one loads."""
    import torch

    gc.collect()
    torch.cuda.empty_cache()


# ---- the parts ------------------------------------------------------------------------------

def find_model(requested: str | None) -> tuple[str, str | None, str | None]:
    """``(model id or folder, folder to load from, note)``; the folder is None when no
    model can be had (the note says why)."""
    from pipeline.stages.summaries.hf import DEFAULT_MODEL, fetch_default_model

    if requested:
        folder = os.path.abspath(os.path.expanduser(requested))
        if os.path.isdir(folder):
            return folder, folder, None
        try:
            return requested, fetch_default_model(requested)[0], None
        except Exception as error:
            return requested, None, f"{requested} could not be fetched ({str(error)[:120]})"
    try:
        return DEFAULT_MODEL, fetch_default_model(DEFAULT_MODEL)[0], None
    except Exception as error:
        return DEFAULT_MODEL, None, (f"{DEFAULT_MODEL} is neither cached nor reachable "
                                     f"({' '.join(str(error).split())[:120]}); pass --model FOLDER")


def hf_part(name: str, folder: str, papers: list, args, seconds_left: float):
    """``(measurement, weight bytes)`` of the hf backend on the real model."""
    from pipeline.stages.summaries.hf import HFSummarizer

    summarizer = HFSummarizer(model=name, weights=folder, device="cuda",
                              batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    try:
        measurement = run_hf(summarizer, papers, seconds_left)
        _, model, _, _ = summarizer.load()
        measurement.backend = f"hf ({model.dtype}, {model.config._attn_implementation})"
        return measurement, weight_bytes_of(model)
    finally:
        summarizer.close()
        free_gpu()


def qwen25_1_5b_config():
    """The shape of Qwen2.5-1.5B-Instruct (1.54B parameters), weights left random."""
    import transformers

    return transformers.Qwen2Config(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True, rope_theta=1_000_000.0)


def random_part(args, seconds_left: float):
    """``(measurement, weight bytes)`` of plain greedy decoding on random weights of the
    default model's shape: synthetic 512-token prompts, exactly ``max_new_tokens`` each."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(
        qwen25_1_5b_config(), dtype=torch.bfloat16, attn_implementation="sdpa").to("cuda").eval()
    measurement = Measurement("hf, random weights (no summaries)", batch=args.batch_size)
    try:
        decode_for(model, args, seconds_left, measurement)
        return measurement, weight_bytes_of(model)
    finally:
        model = None
        free_gpu()


def decode_for(model, args, seconds_left: float, measurement: Measurement) -> None:
    """Batches of exactly ``max_new_tokens`` new tokens until the papers or the time run out."""
    import torch

    ids = torch.randint(10, 150000, (args.batch_size, 512), device="cuda")

    def decode(new_tokens: int) -> None:
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
        torch.cuda.synchronize()

    decode(4)
    started = time.perf_counter()
    while measurement.papers < args.papers and time.perf_counter() - started < seconds_left:
        decode(args.max_new_tokens)
        measurement.papers += args.batch_size
    measurement.seconds = time.perf_counter() - started
    measurement.output_tokens = measurement.papers * args.max_new_tokens


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def start_vllm(folder: str, args, seconds_left: float, log_path: Path):
    """``(process, base_url)`` of a vLLM OpenAI server on the model, once it answers
    ``/v1/models``; ``(None, reason)`` when it did not within its time."""
    port = _free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", folder,
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
               "--dtype", "bfloat16", "--max-model-len", "4096",
               "--gpu-memory-utilization", "0.85", "--max-num-seqs", str(args.concurrency)]
    log_file = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)  # its own group: stopped as one
    base_url = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    while time.perf_counter() - started < seconds_left:
        if process.poll() is not None:
            return None, f"vLLM exited with {process.returncode} ({_tail(log_path)})"
        if _server_ready(base_url):
            return process, base_url
        time.sleep(2)
    stop(process)
    return None, f"vLLM did not answer within {seconds_left:.0f} s ({_tail(log_path)})"


def _tail(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " ".join(lines[-1].split())[:160] if lines else "no output"


def stop(process) -> None:
    """Stop the server and the workers it started (its process group)."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def vllm_part(folder: str, papers: list, args, deadline: float) -> Measurement | str:
    """The openai backend against a local vLLM server, or why it did not run."""
    from pipeline.stages.summaries.openai import OpenAISummarizer

    start_within = min(300.0, deadline - time.perf_counter() - 60)
    if start_within < 60:
        return f"skipped: {start_within + 60:.0f} s left, too little to start a server"
    log_path = Path(tempfile.mkdtemp()) / "vllm.log"
    process, answer = start_vllm(folder, args, start_within, log_path)
    if process is None:
        return answer
    try:
        client = OpenAISummarizer(model=SERVED_NAME, base_url=answer,
                                  concurrency=args.concurrency,
                                  max_new_tokens=args.max_new_tokens, timeout=120, retries=1)
        return run_server(client, papers, deadline - time.perf_counter() - 30,
                          f"vllm (openai backend, {args.concurrency} in flight)")
    finally:
        stop(process)


# ---- the command ---------------------------------------------------------------------------

def parse(argv: list[str] | None):
    """The command's flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="local folder or hub id (default: DEFAULT_MODEL)")
    parser.add_argument("--papers", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds the whole run may take")
    parser.add_argument("--section", help="also write the section to this file")
    return parser.parse_args(argv)


def section(args) -> str:
    """Every part that fits the budget, as the Markdown section."""
    import torch

    deadline = time.perf_counter() + args.budget
    properties = torch.cuda.get_device_properties(0)
    spec, measured = spec_bandwidth_gbs(properties), measured_bandwidth_gbs()
    papers = demo_papers(args.papers)
    name, folder, problem = find_model(args.model)
    notes = [problem] if problem else []
    # hf gets 40% of what is left when vLLM runs next (its start-up alone takes minutes).
    vllm_installed = importlib.util.find_spec("vllm") is not None and folder is not None
    share = 0.4 if vllm_installed else 0.9
    if folder is None:
        hf, weight_bytes = random_part(args, share * (deadline - time.perf_counter()))
        name = f"random weights of {name}'s shape"
        notes.append("the hf row decoded synthetic 512-token prompts, not the papers")
    else:
        hf, weight_bytes = hf_part(name, folder, papers, args,
                                   share * (deadline - time.perf_counter()))
    rows = [hf]
    if not vllm_installed:
        notes.append("vLLM is not installed here (or no model folder): its row was skipped")
    else:
        served = vllm_part(folder, papers, args, deadline)
        rows += [served] if isinstance(served, Measurement) else []
        notes += [] if isinstance(served, Measurement) else [f"vLLM: {served}"]
    for row in rows:
        notes += row.notes
    return "\n".join([
        "## Summaries on a GPU (`python -m bench gpu`)\n",
        f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB), torch "
        f"{torch.__version__}; model {name}, {weight_bytes / 1e9:.2f} GB of weights in bf16; "
        f"{len(papers)} real papers of `pipeline/data/demo_papers.jsonl`, greedy, at most "
        f"{args.max_new_tokens} new tokens each. Bandwidth: "
        + (f"spec {spec:,.0f} GB/s, " if spec else "spec unknown, ")
        + f"measured copy {measured:,.0f} GB/s (the roofline uses the measured one: "
        "batch × bandwidth / weight bytes).\n",
        table(rows, measured, weight_bytes), "",
        *[f"- {note}" for note in notes]]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    text = section(args)
    print(text)
    if args.section:
        Path(args.section).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
