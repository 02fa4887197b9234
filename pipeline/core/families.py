"""The eight families of "The New Intelligence": the single source of truth.

Codes, seed names and taglines, an operational definition a careful reader applies, and
the traps (look-alikes that do not belong). The definitions follow the labeling rules of
the shipped data (``pipeline/data/README.md``); the classifier, the app and the export
all read them from here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One of the eight model families."""

    code: str
    """Short code used everywhere (``LLM``, ``VLM``, …); stored with every score."""

    name: str
    """The family's full name, e.g. ``Large Language Model``."""

    tagline: str
    """The seed document's nickname, e.g. ``The Universal Translator``."""

    definition: str
    """One paragraph: what a paper must be about for this family to apply."""

    traps: tuple[str, ...]
    """Look-alikes that do not belong to this family (one sentence each)."""

    @property
    def seed_name(self) -> str:
        """``The Universal Translator — Large Language Model``."""
        return f"{self.tagline} — {self.name}"


NONE = "none"
"""The label of a paper that belongs to no family; never combined with a family."""

FAMILIES: tuple[Family, ...] = (
    Family(
        "LLM", "Large Language Model", "The Universal Translator",
        "Text-only (decoder) language models and everything around them: pretraining, "
        "alignment (RLHF, DPO), reasoning, prompting, agents, evaluation, safety and "
        "jailbreaks, compression, serving. Applied studies whose contribution is using or "
        "evaluating LLMs count too.",
        ("An LLM used only to make training data for another model is not LLM.",
         "Routing requests between LLMs is LLM, not MoE.",
         "A multimodal LLM with images in is VLM; one with speech in is SLM.")),
    Family(
        "LCM", "Language-Conditioned Model", "The Conductor",
        "Language-conditioned generation or action: text-to-image, text-to-video, "
        "text-to-3D and text-to-motion, text-conditioned diffusion, instruction-guided "
        "editing, and vision-language-action (VLA) policies that turn instructions into "
        "physical action.",
        ("Unconditional or class-conditional generation is not LCM.",
         "Text-to-video retrieval is LAM, not LCM.",
         "Masked generative image models are LCM only when text-conditioned, never MLM.")),
    Family(
        "LAM", "Language-Augmented Model", "The Fusion Engine",
        "Vision grounded in language: CLIP-style contrastive image-text training and its "
        "adaptation (prompt tuning, few-shot, continual), open-vocabulary detection and "
        "segmentation, visual and 3D grounding, referring segmentation, text-video "
        "retrieval. An MLLM used for grounding gets LAM and VLM.",
        ("CLIP-style dual encoders are LAM, not VLM, even when the paper says "
         "'vision-language model'.",
         "'LAM' meaning large audio model or large action model is not this family.")),
    Family(
        "MoE", "Mixture of Experts", "The Specialist Collective",
        "Sparse expert architectures: gating and routing over experts, expert "
        "parallelism, expert pruning, compression and serving, and application models "
        "whose architectural contribution is a mixture of experts. MoE language models "
        "get MoE and LLM.",
        ("Token routing without experts, mixture-of-transformers, gates without experts "
         "and LLM request routers are not MoE.",
         "Ensembles of separate models are not MoE.")),
    Family(
        "VLM", "Vision Language Model", "The Interpreter",
        "Images or video in, text out: multimodal LLMs, visual question answering, image "
        "and video captioning, report generation, visual reasoning and the benchmarks and "
        "efficiency work for such models.",
        ("CLIP-style dual encoders are not VLM (they are LAM).",
         "Text-to-image generation is LCM, not VLM.")),
    Family(
        "SLM", "Speech Language Model", "The Listener",
        "Speech and audio language models: spoken dialogue, ASR, speech translation and "
        "TTS built on or around language models, speech tokenizers, self-supervised speech "
        "encoders (wav2vec 2.0, HuBERT), audio-LLM benchmarks, music understanding with "
        "audio LMs.",
        ("'Hate speech', 'parts of speech' and 'speech acts' are text, not speech.",
         "Vibration or sensor signals treated as audio are not SLM.")),
    Family(
        "MLM", "Masked Language Model", "The Restorer",
        "BERT-style encoders (new encoders, continued pretraining, probing, fine-tuning "
        "as the studied model) and masked or denoising text objectives, including masked "
        "diffusion language models (MLM, plus LLM when used as LLM-scale generators).",
        ("Masked image modelling (MAE, 'BERT-style' pretraining of vision models) is "
         "never MLM.",
         "Masked generative image models (MaskGIT-style) are not MLM.")),
    Family(
        "SAM", "Segment Anything Model", "The Dissector",
        "Segment Anything and its descendants: SAM, SAM 2, SAM 3, MedSAM, efficient SAMs, "
        "and SAM-based tracking, annotation and adaptation; promptable segmentation "
        "foundation models.",
        ("'SAM' as sharpness-aware minimization is not SAM.",
         "A system merely named *-SAM that does not build on Segment Anything is not SAM.",
         "A CLIP-based open-vocabulary segmenter is LAM; it gets SAM only if it builds "
         "on SAM.")),
)

CODES: tuple[str, ...] = tuple(family.code for family in FAMILIES)
"""The eight codes in the seed document's order."""

BY_CODE: dict[str, Family] = {family.code: family for family in FAMILIES}

FAMILY_COLOURS: dict[str, str] = {
    "LLM": "#3B82F6", "LCM": "#8B5CF6", "LAM": "#F97316", "MoE": "#EF4444",
    "VLM": "#22A35A", "SLM": "#D4A017", "MLM": "#EC4899", "SAM": "#14B8A6",
}
"""One colour per family (hex), shared by badges and charts so a family looks the same
everywhere; mid-tone so it stays readable on light and dark backgrounds."""


def family(code: str) -> Family:
    """The family with this code (case-insensitive); ``KeyError`` names the valid codes."""
    for known in CODES:
        if known.lower() == (code or "").strip().lower():
            return BY_CODE[known]
    raise KeyError(f"{code!r} is not a family; use one of {', '.join(CODES)}")


def normalize_labels(labels) -> list[str]:
    """Canonical codes in family order; ``none`` and unknown-empty lists become ``[]``.

    Raises ``KeyError`` (naming the valid codes) for a label that is not a family.
    """
    wanted = {family(label).code for label in labels or () if str(label).lower() != NONE}
    return [code for code in CODES if code in wanted]
