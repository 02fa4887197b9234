"""Paper → a calibrated score per family and a set of labels; training and evaluation.

The model is one logistic regression per family over two kinds of features:
- the paper's MiniLM embedding (title + abstract; stored and reused by search);
- cue-phrase features: whether each of a few dozen written cues (``CUES``) occurs in the
  title, and how often in the abstract. The cues carry the labeling rules' traps, so the
  heads can learn that "sharpness-aware" cancels "SAM", "hate speech" cancels "speech",
  "masked image modelling" is not "masked language model", and "CLIP" is LAM, not VLM.

Each head's output is a probability; a family applies when its probability reaches the
family's threshold (chosen on out-of-fold predictions at training time). No family above
threshold means "none". The head is a handful of numpy arrays in one ``.npz`` file with a
version string; the version is stored with every score, so a retrained head rescores.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.embed import ENCODER_NAME, embed_texts, paper_text
from pipeline.families import CODES, NONE

log = logging.getLogger(__name__)

HEAD_FILE = "families_head.npz"
"""File name of a trained head, in ``pipeline/data/`` (shipped) or ``<home>/models/``."""
SHIPPED_LABELS = "families_labeled.jsonl"
"""The shipped training labels in ``pipeline/data/``."""
BATCH_SIZE = 256
"""Papers per batch in the pipeline stage: encode, then write, then the next batch."""

_W = r"(?<![\w-])"  # a cue starts at a word start (hyphen counts as inside a word)
_E = r"(?![\w])"
CUES: tuple[tuple[str, str], ...] = (
    ("llm", r"llms?|large language models?|language models?|gpt-?[\w.]*|chatgpt|llama[\w.-]*"
            r"|qwen[\d.]*|mistral|deepseek[\w-]*|small language models?|slms?"),
    ("llm_practice", r"prompt(?:ing|s)?|instruction[- ]tun\w*|rlhf|dpo|grpo|preference optimi[sz]ation"
                     r"|chain[- ]of[- ]thought|jailbreak\w*|in-context learning|reasoning models?"
                     r"|agentic|agents?|hallucinat\w*|alignment|reasoning"),
    ("multimodal_llm", r"multi-?modal (?:large )?language models?|multi-?modal llms?|mllms?|lvlms?"
                       r"|large vision[- ]language models?|video[- ]?llms?|large multi-?modal models?"
                       r"|lmms?|llava[\w.-]*|qwen[\d.]*-?vl|internvl[\w.]*|gpt-4v|gpt-4o|omni-?modal"),
    ("vlm_word", r"vision[- ]language models?|vlms?|visual language models?"),
    ("vqa_caption", r"visual question answering|vqa|caption\w*|report generation|image-to-text"
                    r"|visual reasoning|video understanding|ocr|document understanding"),
    ("clip", r"clip|contrastive language-image|image-text contrastive|siglip|clip-based"),
    ("prompt_tuning", r"prompt (?:tuning|learning)|few-shot (?:image )?classification"
                      r"|zero-shot (?:image )?classification|test-time (?:prompt )?(?:tuning|adaptation)"),
    ("open_vocab", r"open[- ]vocabulary|open[- ]set|open[- ]world|zero-shot (?:detection|segmentation)"),
    ("grounding", r"visual grounding|grounding|grounded|referring(?: expressions?)?"),
    ("retrieval", r"text-to-video retrieval|video-text retrieval|text-video retrieval|image-text retrieval"
                  r"|cross-modal retrieval|text-image retrieval|retrieval"),
    ("text_to_x", r"text-to-(?:image|video|3d|motion|audio|4d|music)|t2i|t2v|text-conditioned"
                  r"|text-guided|text-driven|language-conditioned|language-guided|text prompts?"),
    ("editing", r"image editing|video editing|instruction-guided|instruction-based editing|editing"),
    ("diffusion", r"diffusion(?: models?| transformers?)?|stable diffusion|flux|dit|generative"),
    ("generation", r"generat\w+|synthesi\w+"),
    ("vla", r"vision-language-action|vlas?|robot\w*|manipulation|embodied|policy|policies"),
    ("moe", r"mixture[- ]of[- ]experts?|moes?|sparse experts?|expert parallel\w*|\w+-?moe"
            r"|mixtures? of (?:\w+ )?experts"),
    ("experts", r"experts?"),
    ("routing", r"rout(?:ing|er|ers|ed)|gating|gate[sd]?|top-k"),
    ("moe_trap", r"mixture[- ]of[- ](?:transformers|depths)|human experts?|domain experts?"
                 r"|expert[- ]level|expert[- ]annotated|expert demonstrations?|clinical experts?"),
    ("speech", r"speech|spoken|speakers?|asr|tts|text-to-speech|voice|acoustic|prosody|phonem\w*"),
    ("audio", r"audio|music\w*|sound|whisper|wav2vec[\d.]*|hubert|lalms?|speech llms?"
              r"|audio[- ]language models?"),
    ("speech_trap", r"hate[- ]speech|parts?[- ]of[- ]speech|speech acts?|free speech|counter-?speech"
                    r"|offensive speech|toxic speech|figures? of speech"),
    ("bert", r"bert|roberta|deberta\w*|electra|modernbert|xlm-r\w*|albert|distilbert|\w+bert"),
    ("masked_text", r"encoder-only|masked language model\w*|mlm|whole[- ]word masking|fill-mask"
                    r"|text encoders?|encoders?"),
    ("diffusion_lm", r"diffusion language models?|masked diffusion(?: language)?(?: models?)?"
                     r"|discrete diffusion|dllms?|llada[\w-]*|diffusion llms?"),
    ("masked_image", r"masked image model\w*|masked autoencod\w*|mae|masked image"
                     r"|masked (?:patch|point|video) model\w*|bert-style"),
    ("sam", r"segment anything(?: models?)?|sam ?[123]?|sam2|sam3|medsam\w*|mobilesam|efficientsam"
            r"|fastsam|\w+-sam\d?|sam-\w+"),
    ("sam_trap", r"sharpness[- ]aware|sharpness|flat(?:ter)? minima|loss landscape"),
    ("segmentation", r"segment\w*|masks?"),
    ("vision", r"images?|visual|vision|videos?|pixels?|3d|point clouds?"),
    ("text", r"language|texts?|textual|linguistic|nlp|sentences?|words?"),
    ("detection", r"detect\w*|detectors?"),
    ("classification", r"classif\w+"),
)
_COMPILED = tuple((name, re.compile(_W + "(?:" + pattern + ")" + _E, re.IGNORECASE))
                  for name, pattern in CUES)
CUE_NAMES: tuple[str, ...] = tuple(f"title:{name}" for name, _ in CUES) + tuple(
    f"abstract:{name}" for name, _ in CUES)


def cue_features(title: str, abstract: str) -> np.ndarray:
    """Title hits (0/1) then abstract counts (log-scaled) for every cue, float32."""
    title, abstract = title or "", abstract or ""
    in_title = [1.0 if pattern.search(title) else 0.0 for _, pattern in _COMPILED]
    in_abstract = [np.log1p(len(pattern.findall(abstract))) for _, pattern in _COMPILED]
    return np.asarray(in_title + in_abstract, dtype=np.float32)


def feature_matrix(embeddings: np.ndarray, titles: list[str], abstracts: list[str]) -> np.ndarray:
    """The model's input: embedding columns then cue columns, one row per paper."""
    cues = np.stack([cue_features(title, abstract) for title, abstract in zip(titles, abstracts)]) \
        if titles else np.zeros((0, len(CUE_NAMES)), dtype=np.float32)
    return np.hstack([embeddings.astype(np.float32), cues])


# ---- the head ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """A trained classifier head: per-family logistic regressions plus thresholds."""

    version: str
    """``families-<date>-<hash>``; stored beside every score it produced."""

    weights: np.ndarray
    """Shape ``(8, features)``: one row per family, in ``CODES`` order."""

    bias: np.ndarray
    """Shape ``(8,)``: the intercepts."""

    thresholds: np.ndarray
    """Shape ``(8,)``: the probability from which each family's label applies."""

    scale: np.ndarray
    """Shape ``(features,)``: each feature is multiplied by this before the heads."""

    info: dict = field(default_factory=dict)
    """Training facts (counts, settings, encoder, cue names), saved as JSON in the file."""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape ``(papers, 8)``."""
        if features.shape[1] != self.weights.shape[1]:
            raise ValueError(f"this head expects {self.weights.shape[1]} features, got "
                             f"{features.shape[1]}; retrain it with `octet train`")
        return _sigmoid((features * self.scale) @ self.weights.T + self.bias)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean label matrix: a family applies when its probability reaches its threshold."""
        return probabilities >= self.thresholds

    def save(self, path: Path) -> Path:
        """Write the head as one ``.npz`` (numpy arrays and a JSON string; no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, weights=self.weights, bias=self.bias, thresholds=self.thresholds,
                 scale=self.scale, version=np.array(self.version),
                 info=np.array(json.dumps(self.info)))
        temporary.replace(path)  # atomic: a reader never sees half a head
        return path


def load_head(path: Path) -> Head:
    """Read a head written by ``Head.save``."""
    with np.load(path, allow_pickle=False) as data:
        info = json.loads(str(data["info"]))
        head = Head(str(data["version"]), data["weights"], data["bias"], data["thresholds"],
                    data["scale"], info)
    if tuple(info.get("cues", CUE_NAMES)) != CUE_NAMES or info.get("encoder") != ENCODER_NAME:
        raise ValueError(f"{path} was trained with other features; retrain it with `octet train`")
    return head


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -40, 40)))


# ---- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOptions:
    """The knobs of training (chosen by cross-validation on the dev set; see docs/families.md)."""

    l2: float = 1.0
    """L2 penalty on every weight (not the intercepts)."""
    embedding_scale: float = 4.0
    """Multiplier of the embedding columns (unit vectors have tiny components)."""
    cue_scale: float = 1.0
    """Multiplier of the cue columns."""
    threshold_folds: int = 3
    """Folds of the inner cross-validation that picks each family's threshold."""
    threshold_shrink: float = 0.5
    """How far a picked threshold is pulled back toward 0.5 (0 = not at all)."""


def feature_scale(options: TrainingOptions, dimensions: int) -> np.ndarray:
    """The per-column multipliers for a feature matrix of this layout."""
    embedding = np.full(dimensions - len(CUE_NAMES), options.embedding_scale, dtype=np.float32)
    cues = np.full(len(CUE_NAMES), options.cue_scale, dtype=np.float32)
    return np.concatenate([embedding, cues])


def fit_logistic(features: np.ndarray, targets: np.ndarray, sample_weights: np.ndarray,
                 l2: float, iterations: int = 150, tolerance: float = 1e-3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularized logistic regressions, one per target column, fitted together.

    Uses Böhning's bound (the logistic curvature is at most 1/4), so the Newton matrix
    is the same at every step and for every column: inverted once, each step is then
    two matrix products. Returns ``(weights (columns, features), bias (columns,))``.
    """
    rows, dimensions = features.shape
    design = np.hstack([features, np.ones((rows, 1), dtype=features.dtype)]).astype(np.float64)
    penalty = np.full(dimensions + 1, float(l2))
    penalty[-1] = 1e-4  # the intercept is (almost) free
    bound = (design.T * (sample_weights / 4.0)) @ design + np.diag(penalty)
    inverse = np.linalg.inv(bound)
    theta = np.zeros((dimensions + 1, targets.shape[1]))
    weighted = sample_weights[:, None]
    for _ in range(iterations):
        residual = _sigmoid(design @ theta) - targets
        gradient = design.T @ (weighted * residual) + penalty[:, None] * theta
        step = inverse @ gradient
        theta -= step
        if np.max(np.abs(step)) < tolerance:
            break
    return theta[:-1].T.copy(), theta[-1].copy()


def fit_heads(features: np.ndarray, targets: np.ndarray, sample_weights: np.ndarray,
              options: TrainingOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One logistic head per family; returns ``(weights, bias, scale)``."""
    scale = feature_scale(options, features.shape[1])
    weights, bias = fit_logistic(features * scale, targets, sample_weights, options.l2)
    return weights.astype(np.float32), bias.astype(np.float32), scale


def fold_of(count: int, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number for each row: shuffled, as even as the count allows."""
    order = np.random.default_rng(seed).permutation(count)
    assignment = np.empty(count, dtype=int)
    assignment[order] = np.arange(count) % folds
    return assignment


def out_of_fold(features, targets, sample_weights, options, folds: int, seed: int = 0):
    """Probabilities for every row from heads not trained on it."""
    assignment = fold_of(len(features), folds, seed)
    probabilities = np.zeros(targets.shape, dtype=np.float64)
    for fold in range(folds):
        held = assignment == fold
        weights, bias, scale = fit_heads(features[~held], targets[~held],
                                         sample_weights[~held], options)
        probabilities[held] = _sigmoid((features[held] * scale) @ weights.T + bias)
    return probabilities


def pick_thresholds(probabilities: np.ndarray, targets: np.ndarray, shrink: float) -> np.ndarray:
    """Per family, the threshold with the best F1 on these predictions, pulled toward 0.5."""
    grid = np.linspace(0.15, 0.85, 29)
    chosen = []
    for column in range(targets.shape[1]):
        scores = [_f1(targets[:, column] > 0, probabilities[:, column] >= cut) for cut in grid]
        best = float(grid[int(np.argmax(scores))])
        chosen.append(shrink * 0.5 + (1 - shrink) * best)
    return np.asarray(chosen, dtype=np.float32)


def train_head(features: np.ndarray, targets: np.ndarray, sample_weights: np.ndarray | None = None,
               options: TrainingOptions = TrainingOptions(), info: dict | None = None) -> Head:
    """Fit the heads on all rows, thresholds from an inner cross-validation."""
    sample_weights = np.ones(len(features)) if sample_weights is None else sample_weights
    inner = out_of_fold(features, targets, sample_weights, options, options.threshold_folds)
    thresholds = pick_thresholds(inner, targets, options.threshold_shrink)
    weights, bias, scale = fit_heads(features, targets, sample_weights, options)
    info = {**(info or {}), "encoder": ENCODER_NAME, "cues": list(CUE_NAMES),
            "families": list(CODES), "papers": int(len(features)),
            "options": options.__dict__}
    digest = hashlib.sha256(weights.tobytes() + thresholds.tobytes()).hexdigest()[:10]
    return Head(f"families-{digest}", weights, bias, thresholds, scale, info)


def cross_validate(features, targets, folds: int = 5, extra_features=None, extra_targets=None,
                   extra_weight: float = 1.0, options: TrainingOptions = TrainingOptions(),
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ``(probabilities, decisions)`` for every row of ``features``.

    Each fold's model is trained on the other folds plus all the extra rows (papers
    labeled elsewhere), so no row is scored by a model that saw it.
    """
    assignment = fold_of(len(features), folds, seed)
    probabilities = np.zeros(targets.shape)
    decisions = np.zeros(targets.shape, dtype=bool)
    for fold in range(folds):
        held = assignment == fold
        train_x, train_y, train_w = _with_extra(features[~held], targets[~held], extra_features,
                                                extra_targets, extra_weight)
        head = train_head(train_x, train_y, train_w, options)
        probabilities[held] = head.probabilities(features[held])
        decisions[held] = head.decide(probabilities[held])
    return probabilities, decisions


def _with_extra(features, targets, extra_features, extra_targets, extra_weight):
    weights = np.ones(len(features))
    if extra_features is None or len(extra_features) == 0:
        return features, targets, weights
    return (np.vstack([features, extra_features]), np.vstack([targets, extra_targets]),
            np.concatenate([weights, np.full(len(extra_features), extra_weight)]))


# ---- evaluation ----------------------------------------------------------------------------


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    true_positive = float(np.sum(truth & predicted))
    denominator = float(np.sum(truth) + np.sum(predicted))
    return 2 * true_positive / denominator if denominator else 1.0


def evaluate(truth: np.ndarray, predicted: np.ndarray, worst: int = 8) -> dict:
    """Per-family precision/recall/F1, macro-F1, exact-set accuracy, "none" accuracy and
    the most frequent confusions (``"VLM→LAM"``: VLM missed while LAM was predicted)."""
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    families = {}
    for column, code in enumerate(CODES):
        hits = float(np.sum(truth[:, column] & predicted[:, column]))
        said, real = float(np.sum(predicted[:, column])), float(np.sum(truth[:, column]))
        families[code] = {"precision": round(hits / said, 4) if said else 1.0,
                          "recall": round(hits / real, 4) if real else 1.0,
                          "f1": round(_f1(truth[:, column], predicted[:, column]), 4),
                          "support": int(real)}
    true_none, said_none = ~truth.any(axis=1), ~predicted.any(axis=1)
    return {"papers": int(len(truth)), "families": families,
            "macro_f1": round(float(np.mean([item["f1"] for item in families.values()])), 4),
            "exact_set_accuracy": round(float(np.mean((truth == predicted).all(axis=1))), 4),
            "none_accuracy": round(float(np.mean(said_none[true_none])), 4) if true_none.any() else 1.0,
            "none_precision": round(float(np.mean(true_none[said_none])), 4) if said_none.any() else 1.0,
            "confusions": confusions(truth, predicted)[:worst]}


def confusions(truth: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Counted ``missed→extra`` pairs, most frequent first (``none`` stands for nothing)."""
    counts: dict[str, int] = {}
    for real, said in zip(truth, predicted):
        missed = [CODES[i] for i in np.flatnonzero(real & ~said)] or [NONE]
        extra = [CODES[i] for i in np.flatnonzero(said & ~real)] or [NONE]
        if missed == [NONE] and extra == [NONE]:
            continue
        for left in missed:
            for right in extra:
                counts[f"{left}→{right}"] = counts.get(f"{left}→{right}", 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"pair": pair, "count": count} for pair, count in ranked]


def label_matrix(label_lists: list[list[str]]) -> np.ndarray:
    """Rows of 0/1 per family from lists of codes (``none`` or ``[]`` → all zeros)."""
    matrix = np.zeros((len(label_lists), len(CODES)), dtype=np.float64)
    for row, labels in enumerate(label_lists):
        for label in labels:
            if label != NONE:
                matrix[row, CODES.index(label)] = 1.0
    return matrix
