"""Summaries from a Hugging Face model with transformers + torch (the only module that
imports transformers' generation).

Any hub id or local folder: a causal LM through its chat template (or the plain prompt
when it has none) or a seq2seq model. The model loads once, on first use (on CUDA in bf16
with PyTorch's scaled-dot-product attention); generation is greedy, batched by prompt
length (neighbours in length share a batch, so little is padding) with left padding for
decoder-only models, capped at ``max_new_tokens``; on CUDA out-of-memory the batch halves
and the run continues. ``fetch_default_model`` gets ``DEFAULT_MODEL`` for ``auto`` on a
machine with CUDA and no model configured.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pipeline.core.paper import Paper
from pipeline.stages.summaries.replies import summaries_from_replies
from pipeline.stages.summaries.summary import (BackendUnavailable, Summary, SummaryFailure,
                                               with_provenance)
from prompts import SUMMARY_PROMPT, plain_prompt, summary_messages

log = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
"""The small instruct model ``auto`` uses on a machine with CUDA and no model configured
(Apache-2.0, 1.5B parameters, 3.1 GB in bf16), fetched once into the Hugging Face cache."""

_MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
"""What a fetch downloads: config, weights, tokenizer; never other weight formats."""


def fetch_default_model(name: str = DEFAULT_MODEL) -> tuple[str, bool]:
    """``(folder, fetched)``: the model's folder in the Hugging Face cache, taken from the
    cache with no network when it is there (``fetched`` False), else downloaded into it.
    Raises whatever the hub client raises when it cannot (offline, no network, no such
    model)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True, allow_patterns=_MODEL_FILES), False
    except Exception:  # not cached (the hub client's errors differ by version): fetch it
        pass
    return snapshot_download(name, allow_patterns=_MODEL_FILES), True


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 kernels (AVX512-BF16 / AMX); without them bf16 is slow."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_device(requested: str = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; a forced CUDA device must exist."""
    import torch

    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"device {requested!r} was asked for but CUDA is not "
                                 f"available here; use --device cpu or --device auto")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise BackendUnavailable(f"device {requested!r} is not known; use auto, cpu, cuda "
                                 f"or cuda:N")
    return requested


def choose_dtype(device: str, requested: str | None = None):
    """CUDA → bf16 (fp16 on GPUs without it); CPU → bf16 where the CPU supports it, else fp32."""
    import torch

    if requested:
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error (torch raises its own type, older paths a RuntimeError)."""
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error)


def generate_halving(items: list, batch_size: int, generate: Callable[[list], list],
                     on_out_of_memory: Callable[[], None] = lambda: None) -> list:
    """``generate`` over batches of ``items``; an out-of-memory batch is retried at half
    the size, and the rest of the run keeps the smaller size. Batch 1 running out raises."""
    results, start, size = [], 0, max(1, batch_size)
    while start < len(items):
        batch = items[start:start + size]
        try:
            results.extend(generate(batch))
        except Exception as error:
            if size == 1 or not is_out_of_memory(error):
                raise
            size = max(1, size // 2)
            log.warning("out of memory at batch %d; halving to %d", len(batch), size)
            on_out_of_memory()
            continue
        start += len(batch)
    return results


def model_identity(name: str) -> str:
    """What is stored as the model: a local folder as its absolute path, a hub id as given."""
    path = Path(os.path.expanduser(name))
    return str(path.resolve()) if path.is_dir() else name


@dataclass
class HFSummarizer:
    """A Hugging Face model that writes the JSON summary the prompt asks for."""

    model: str
    device: str = "auto"
    batch_size: int = 8
    max_new_tokens: int = 256
    dtype: str | None = None
    """``bfloat16``/``float16``/``float32`` to force; ``None`` picks by device."""
    backend: str = "hf"
    prompt_version: str = SUMMARY_PROMPT
    weights: str | None = None
    """The folder the model loads from when it is not ``model`` itself (a hub id already
    fetched into the cache: ``model`` stays the id that is stored with every summary)."""
    generated_tokens: int = 0
    """New tokens generated since construction (for benchmarks and logs)."""
    last_new_token_counts: list[int] = field(default_factory=list)
    """New tokens per prompt of the latest ``generate_texts`` call, in input order."""
    _loaded: tuple | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings) -> "HFSummarizer":
        if not settings.model:
            raise BackendUnavailable(f"the hf backend needs a model: pass --model with a "
                                     f"Hugging Face id (e.g. {DEFAULT_MODEL}) or a local "
                                     f"folder, or set OCTET_MODEL")
        return cls(model=model_identity(settings.model), device=settings.device,
                   batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens)

    # ---- loading -------------------------------------------------------------
    def load(self):
        """``(tokenizer, model, device, encoder_decoder)``, loaded on first call only."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self):
        import transformers

        transformers.utils.logging.disable_progress_bar()
        device = choose_device(self.device)
        source = self.weights or self.model
        try:
            config = transformers.AutoConfig.from_pretrained(source)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source)
            auto = (transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder
                    else transformers.AutoModelForCausalLM)
            model = _from_pretrained(auto, source, device, choose_dtype(device, self.dtype))
        except (OSError, ValueError) as error:
            raise BackendUnavailable(
                f"could not load model {self.model!r} ({str(error).splitlines()[0]}); pass "
                f"--model with a local folder or a Hugging Face id reachable from here") from None
        if not config.is_encoder_decoder:
            tokenizer.padding_side = "left"  # generation continues from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        log.info("loaded %s on %s (%s, %s attention)", self.model, device, model.dtype,
                 getattr(model.config, "_attn_implementation", "default"))
        return tokenizer, model.to(device).eval(), device, bool(config.is_encoder_decoder)

    @property
    def tokenizer(self):
        return self.load()[0]

    # ---- prompts and generation --------------------------------------------
    def prompt_for(self, paper: Paper) -> str:
        """The chat-templated summary prompt, or the plain one for models without a template."""
        return self.prompt_from(summary_messages(paper.title, paper.abstract))

    def prompt_from(self, messages: list[dict[str, str]]) -> str:
        """Chat ``messages`` as this model's prompt: through its chat template, or as one
        plain text for models without a template."""
        tokenizer = self.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            return plain_prompt(messages)
        try:
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=False)
        except Exception:  # some templates refuse a system turn: fold it into the user's
            merged = [{"role": "user",
                       "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            return tokenizer.apply_chat_template(merged, add_generation_prompt=True,
                                                 tokenize=False)

    def generate_texts(self, prompts: list[str]) -> list[str]:
        """Greedy completions of the prompts, in input order; longest prompts batch together."""
        tokenizer, _, device, _ = self.load()
        lengths = [len(tokenizer(prompt)["input_ids"]) for prompt in prompts]
        order = sorted(range(len(prompts)), key=lambda index: -lengths[index])

        def release():
            import torch

            if device.startswith("cuda"):
                torch.cuda.empty_cache()

        outputs = generate_halving([prompts[index] for index in order], self.batch_size,
                                   self._generate_batch, release)
        texts, counts = [""] * len(prompts), [0] * len(prompts)
        for index, (text, count) in zip(order, outputs):
            texts[index], counts[index] = text, count
        self.last_new_token_counts = counts
        self.generated_tokens += sum(counts)
        return texts

    def _generate_batch(self, prompts: list[str]) -> list[tuple[str, int]]:
        import torch

        tokenizer, model, device, encoder_decoder = self.load()
        templated = bool(getattr(tokenizer, "chat_template", None))
        # A chat template already holds the special tokens the model expects.
        inputs = tokenizer(prompts, return_tensors="pt", padding=True,
                           add_special_tokens=not templated).to(device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                    do_sample=False, num_beams=1, temperature=None,
                                    top_p=None, top_k=None,
                                    pad_token_id=tokenizer.pad_token_id)
        new = output if encoder_decoder else output[:, inputs["input_ids"].shape[1]:]
        counts = _new_token_counts(new, _end_ids(tokenizer, model), encoder_decoder)
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        return list(zip(texts, counts))

    # ---- the Summarizer protocol -------------------------------------------
    def summarize(self, papers: Sequence[Paper]) -> list[Summary | SummaryFailure]:
        papers = list(papers)
        texts = self.generate_texts([self.prompt_for(paper) for paper in papers])
        # The same checks as the openai backend: a reply with no usable field, or about
        # another paper, is a failure; fields it left empty are filled from the abstract.
        return [with_provenance(result, paper, self) if isinstance(result, Summary) else result
                for paper, result in zip(papers, summaries_from_replies(texts, papers))]

    def close(self) -> None:
        """Free the model (and the GPU memory it held)."""
        on_cuda = self._loaded is not None and self._loaded[2].startswith("cuda")
        self._loaded = None
        if on_cuda:
            import torch

            torch.cuda.empty_cache()


def _from_pretrained(auto, source: str, device: str, dtype):
    """The model, with PyTorch's fused scaled-dot-product attention on CUDA; an
    architecture without it keeps its default attention."""
    if device.startswith("cuda"):
        try:
            return auto.from_pretrained(source, dtype=dtype, attn_implementation="sdpa")
        except (ValueError, ImportError) as error:
            log.info("%s has no sdpa attention (%s); using its default", source, error)
    return auto.from_pretrained(source, dtype=dtype)


def _new_token_counts(new, end_ids: set[int], encoder_decoder: bool) -> list[int]:
    """Generated tokens per row, up to and including the first end token (the padding
    after an early end and a seq2seq decoder's start token do not count)."""
    rows = new[:, 1:] if encoder_decoder else new
    counts = []
    for row in rows.tolist():
        counts.append(next((place + 1 for place, token in enumerate(row) if token in end_ids),
                           len(row)))
    return counts


def _end_ids(tokenizer, model) -> set[int]:
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return {token for token in [*configured, tokenizer.eos_token_id] if token is not None}
