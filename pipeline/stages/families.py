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
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.text import DIMENSIONS, ENCODER_NAME, paper_text
from pipeline.stages import progress
from pipeline.stages.encoder import embed_texts
from pipeline.core.families import CODES, NONE

log = logging.getLogger(__name__)

HEAD_FILE = "families_head.npz"
"""File name of a trained head, in ``pipeline/data/`` (shipped) or ``<home>/models/``."""
SHIPPED_LABELS = "families_labeled.jsonl"
"""The dev set and the title-rule labels, in ``pipeline/data/``."""
READ_LABELS = "families_read.jsonl"
"""The papers labeled by reading, with their train and held-out splits (``LABELS.md``)."""
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
# The patterns are lower case and match lower-cased text: a quarter faster than
# IGNORECASE, with the same hits on 1,000 real papers.
_COMPILED = tuple((name, re.compile(_W + "(?:" + pattern + ")" + _E)) for name, pattern in CUES)
CUE_NAMES: tuple[str, ...] = tuple(f"title:{name}" for name, _ in CUES) + tuple(
    f"abstract:{name}" for name, _ in CUES)


def cue_features(title: str, abstract: str) -> np.ndarray:
    """Title hits (0/1) then abstract counts (log-scaled) for every cue, float32."""
    title, abstract = (title or "").lower(), (abstract or "").lower()
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

    title: "Head | None" = None
    """The head for papers without an abstract, trained on the same papers' titles alone
    (a head trained on abstracts gave a title-only paper almost no family); None in a
    head saved before it existed."""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape ``(papers, 8)``."""
        if features.shape[1] != self.weights.shape[1]:
            raise ValueError(f"this head expects {self.weights.shape[1]} features, got "
                             f"{features.shape[1]}; retrain it with `octet train`")
        return _sigmoid((features * self.scale) @ self.weights.T + self.bias)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean label matrix: a family applies when its probability reaches its threshold."""
        return probabilities >= self.thresholds

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The head's arrays by name (the title head's under ``title_``)."""
        arrays = {f"{prefix}{name}": getattr(self, name)
                  for name in ("weights", "bias", "thresholds", "scale")}
        return {**arrays, **(self.title.arrays("title_") if self.title is not None else {})}

    def save(self, path: Path) -> Path:
        """Write the head as one ``.npz`` (numpy arrays and a JSON string; no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, **self.arrays(), version=np.array(self.version),
                 info=np.array(json.dumps(self.info)))
        temporary.replace(path)  # atomic: a reader never sees half a head
        return path


def load_head(path: Path) -> Head:
    """Read a head written by ``Head.save``."""
    with np.load(path, allow_pickle=False) as data:
        info = json.loads(str(data["info"]))
        title = Head(str(data["version"]), data["title_weights"], data["title_bias"],
                     data["title_thresholds"], data["title_scale"]) \
            if "title_weights" in data else None
        head = Head(str(data["version"]), data["weights"], data["bias"], data["thresholds"],
                    data["scale"], info, title)
    if tuple(info.get("cues", CUE_NAMES)) != CUE_NAMES or info.get("encoder") != ENCODER_NAME:
        raise ValueError(f"{path} was trained with other features; retrain it with `octet train`")
    return head


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -40, 40)))


# ---- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOptions:
    """The knobs of training, chosen by 5-fold cross-validation on the hand-labeled training
    papers (dev and the read train split; README, "The eight families"), never on held-out."""

    l2: float = 1.0
    """L2 penalty on every weight (not the intercepts)."""
    embedding_scale: float = 2.0
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
               options: TrainingOptions = TrainingOptions(), info: dict | None = None,
               title_features: np.ndarray | None = None) -> Head:
    """Fit the heads on all rows, thresholds from an inner cross-validation; with
    ``title_features`` (the same rows from their titles alone) also the title head."""
    sample_weights = np.ones(len(features)) if sample_weights is None else sample_weights
    inner = out_of_fold(features, targets, sample_weights, options, options.threshold_folds)
    thresholds = pick_thresholds(inner, targets, options.threshold_shrink)
    weights, bias, scale = fit_heads(features, targets, sample_weights, options)
    title = None if title_features is None else train_head(
        title_features, targets, sample_weights, options)
    info = {**(info or {}), "encoder": ENCODER_NAME, "cues": list(CUE_NAMES),
            "families": list(CODES), "papers": int(len(features)),
            "options": options.__dict__}
    arrays = [weights, thresholds] + ([title.weights, title.thresholds] if title else [])
    digest = hashlib.sha256(b"".join(array.tobytes() for array in arrays)).hexdigest()[:10]
    return Head(f"families-{digest}", weights, bias, thresholds, scale, info, title)


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
    extra_weights = np.broadcast_to(np.asarray(extra_weight, dtype=float), (len(extra_features),))
    return (np.vstack([features, extra_features]), np.vstack([targets, extra_targets]),
            np.concatenate([weights, extra_weights]))


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
    badges = int(predicted.sum())
    return {"papers": int(len(truth)), "families": families,
            "badge_precision": round(float((truth & predicted).sum()) / badges, 4) if badges else 1.0,
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


# ---- classifying papers ------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    """The families of one paper as the model sees them."""

    arxiv_id: str
    """The paper's id (or whatever id the input row carried)."""

    labels: tuple[str, ...]
    """Family codes that apply, in family order; empty means none."""

    scores: dict
    """Probability in [0, 1] for every family code."""

    low_confidence: bool
    """True when the paper had no abstract and was judged on its title alone."""

    model_version: str
    """The head that produced this (``Head.version``)."""

    def to_json(self) -> dict:
        """The JSON row of ``octet classify``: ``labels`` is ``["none"]`` when none applies."""
        return {"id": self.arxiv_id, "labels": list(self.labels) or [NONE],
                "scores": self.scores, "low_confidence": self.low_confidence,
                "model_version": self.model_version}


def data_file(name: str) -> Path:
    """A file shipped in ``pipeline/data/``."""
    from importlib import resources

    return Path(str(resources.files("pipeline") / "data" / name))


def user_head_path(home: Path) -> Path:
    """Where ``octet train`` writes the reader's retrained head."""
    return Path(home) / "models" / HEAD_FILE


def head_path(home: Path | None = None) -> Path:
    """The head in use: the reader's retrained one when present, else the shipped one."""
    if home is not None and user_head_path(home).is_file():
        return user_head_path(home)
    return data_file(HEAD_FILE)


_HEADS: dict[tuple[str, float], Head] = {}


def current_head(home: Path | None = None) -> Head:
    """The head in use, loaded once per file version (a retrain is picked up at once)."""
    path = head_path(home)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `octet train` to build a head")
    key = (str(path), path.stat().st_mtime)
    if key not in _HEADS:
        _HEADS[key] = load_head(path)
    return _HEADS[key]


def classify_embedded(head: Head, ids: list[str], titles: list[str], abstracts: list[str],
                      embeddings: np.ndarray) -> list[Classification]:
    """Classify papers whose embeddings are already known."""
    if not ids:
        return []
    features = feature_matrix(embeddings, titles, abstracts)
    probabilities = head.probabilities(features)
    decisions = head.decide(probabilities)
    bare = np.flatnonzero([not (abstract or "").strip() for abstract in abstracts])
    if head.title is not None and len(bare):
        probabilities[bare] = head.title.probabilities(features[bare])
        decisions[bare] = head.title.decide(probabilities[bare])
    results = []
    for row, arxiv_id in enumerate(ids):
        scores = {code: round(float(value), 4) for code, value in zip(CODES, probabilities[row])}
        labels = tuple(code for code, chosen in zip(CODES, decisions[row]) if chosen)
        results.append(Classification(arxiv_id, labels, scores,
                                      not (abstracts[row] or "").strip(), head.version))
    return results


def classify_texts(ids: list[str], titles: list[str], abstracts: list[str],
                   head: Head | None = None, device: str = "auto") -> list[Classification]:
    """Embed and classify papers given as text (no database involved)."""
    head = head or current_head()
    vectors = embed_texts([paper_text(t, a) for t, a in zip(titles, abstracts)], device=device)
    return classify_embedded(head, ids, titles, abstracts, vectors)


# ---- the pipeline stage --------------------------------------------------------------------


def run_stage(settings, report: dict | None = None) -> dict:
    """The ``octet run`` stage: score every stored paper without current scores."""
    return classify_pending(settings)


def classify_pending(settings, limit: int | None = None) -> dict:
    """Score up to ``limit`` (default: all) papers without current scores, one batch at a
    time: read (then close), embed what has no stored embedding, classify, write."""
    head = current_head(settings.home)
    counts = {"classified": 0, "embedded": 0, "low_confidence": 0, "model_version": head.version}
    total = _pending_total(settings, head, limit)
    if not total:
        return counts
    with progress.bar("classify", total) as shown:
        while limit is None or counts["classified"] < limit:
            wanted = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - counts["classified"])
            done = _classify_next(settings, head, wanted, counts)
            if not done:
                break
            shown.update(done)
    return counts


def _pending_total(settings, head: Head, limit: int | None) -> int:
    """How many papers this pass scores (the bar's total): every pending one, or ``limit``."""
    from storage import families as store

    pending = store.count_pending(settings.db_path, head.version)
    return pending if limit is None else min(limit, pending)


def _classify_next(settings, head: Head, wanted: int, counts: dict) -> int:
    """Score and store the next ``wanted`` pending papers; returns how many (0: none left)."""
    from storage import families as store

    batch = store.pending_papers(settings.db_path, head.version, limit=wanted)
    if not batch:
        return 0
    embedded, results = _classify_batch(settings, head, batch)
    store.store_results(settings.db_path, embedded, results, head.version)
    counts["classified"] += len(results)
    counts["embedded"] += len(embedded)
    counts["low_confidence"] += sum(1 for row in results if row["low_confidence"])
    log.info("classified %d papers (%d embedded)", counts["classified"], counts["embedded"])
    return len(results)


def _classify_batch(settings, head: Head, batch: list[dict]) -> tuple[list[dict], list[dict]]:
    from storage import families as store

    keys = [(row["arxiv_id"], row["version"]) for row in batch]
    known = store.stored_vectors(settings.db_path, [k for k, row in zip(keys, batch)
                                                    if row["has_embedding"]])
    missing = [row for key, row in zip(keys, batch) if key not in known]
    # No connection is open here: the encoder may take seconds.
    fresh = embed_texts([paper_text(row["title"], row["abstract"]) for row in missing],
                        device=settings.device)
    embedded = [{**row, "vector": vector} for row, vector in zip(missing, fresh)]
    known.update({(row["arxiv_id"], row["version"]): row["vector"] for row in embedded})
    matrix = np.stack([known[key] for key in keys])
    found = classify_embedded(head, [row["arxiv_id"] for row in batch],
                              [row["title"] for row in batch],
                              [row["abstract"] for row in batch], matrix)
    results = [{"arxiv_id": item.arxiv_id, "version": row["version"], "scores": item.scores,
                "labels": item.labels, "low_confidence": item.low_confidence}
               for item, row in zip(found, batch)]
    return embedded, results


# ---- labeled data and retraining ---------------------------------------------------------


@dataclass(frozen=True)
class LabeledSet:
    """Papers with known families, aligned with their embeddings."""

    ids: list[str]
    """Paper ids, one per row."""
    titles: list[str]
    """Titles, one per row."""
    abstracts: list[str]
    """Abstracts, one per row (may be empty)."""
    labels: list[list[str]]
    """Family codes per row; ``[]`` means none."""
    vectors: np.ndarray
    """Embeddings, shape ``(rows, 384)``."""
    title_vectors: np.ndarray | None = None
    """Embeddings of the titles alone, shape ``(rows, 384)``; None when not known (they are
    then computed when the title head is trained)."""

    def features(self) -> np.ndarray:
        """The model input for these rows."""
        return feature_matrix(self.vectors, self.titles, self.abstracts)

    def title_features(self) -> np.ndarray:
        """The title head's input for these rows: their titles alone, no abstract."""
        return feature_matrix(self.known_title_vectors(), self.titles, [""] * len(self.ids))

    def known_title_vectors(self) -> np.ndarray:
        """``title_vectors``, embedding the titles when they are not known."""
        if self.title_vectors is not None:
            return self.title_vectors
        return embed_texts([paper_text(title, "") for title in self.titles])

    def targets(self) -> np.ndarray:
        """0/1 matrix, one column per family."""
        return label_matrix(self.labels)

    def without(self, excluded: set[str]) -> "LabeledSet":
        """The rows whose id is not in ``excluded``."""
        keep = [row for row, arxiv_id in enumerate(self.ids) if arxiv_id not in excluded]
        return LabeledSet([self.ids[r] for r in keep], [self.titles[r] for r in keep],
                          [self.abstracts[r] for r in keep], [self.labels[r] for r in keep],
                          self.vectors[keep] if keep else self.vectors[:0],
                          None if self.title_vectors is None else self.title_vectors[keep])


SOURCE_WEIGHTS = {"read": 1.0, "dev": 1.0, "title-rules": 0.25}
"""The shipped training labels and the weight of each row in training, in order of trust:
the papers labeled by reading (``families_read.jsonl``, train split), the 135 dev papers,
and the title-rule rows (weak labels). A paper in several sources keeps the first one's
labels, so a read label replaces a title rule's where they disagree. The weights were
chosen by cross-validation on the hand-labeled papers (``bench/bench_classify.py``)."""
TRAINING_SOURCES = tuple(SOURCE_WEIGHTS)
"""Every source the shipped head is trained on."""
HAND_LABELED = ("read", "dev")
"""The sources labeled by a person: the rows cross-validation scores."""


@lru_cache(maxsize=1)
def _shipped_rows() -> tuple[dict, ...]:
    """Every shipped labeled row, each with ``source`` (``dev``, ``title-rules``, ``read``),
    ``split`` and ``selection``; read once per process (training asks for several subsets)."""
    rows = [json.loads(line) for line in
            data_file(SHIPPED_LABELS).read_text(encoding="utf-8").splitlines() if line.strip()]
    read = [json.loads(line) for line in
            data_file(READ_LABELS).read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple([{**row, "split": "train", "selection": row["source"]} for row in rows]
                 + [{**row, "source": "read"} for row in read])


def _labeled(rows: list[dict]) -> LabeledSet:
    with np.load(data_file("families_embeddings.npz"), allow_pickle=False) as data:
        ids = data["ids"].tolist()
        by_id = dict(zip(ids, data["vectors"].astype(np.float32)))
        titles = dict(zip(ids, data["title_vectors"].astype(np.float32)))
    return LabeledSet([r["arxiv_id"] for r in rows], [r["title"] for r in rows],
                      [r["abstract"] for r in rows],
                      [[x for x in r["labels"] if x != NONE] for r in rows],
                      _stacked(by_id, rows), _stacked(titles, rows))


def _stacked(vectors: dict[str, np.ndarray], rows: list[dict]) -> np.ndarray:
    if not rows:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([vectors[row["arxiv_id"]] for row in rows])


@lru_cache(maxsize=1)
def _training_sources() -> dict[str, str]:
    """Each training paper's source: the most trusted one that labeled it (none held out)."""
    rows = _shipped_rows()
    held = {row["arxiv_id"] for row in rows if row["split"] == "heldout"}
    chosen: dict[str, str] = {}
    for name in TRAINING_SOURCES:
        for row in rows:
            if row["source"] == name and row["split"] == "train" and row["arxiv_id"] not in held:
                chosen.setdefault(row["arxiv_id"], name)
    return chosen


def shipped_labeled(source: str | tuple[str, ...] | None = None) -> LabeledSet:
    """The shipped labeled papers a head may be trained on, with their shipped embeddings:
    ``source`` one of ``read`` (its train split), ``dev``, ``title-rules``, or a tuple of
    them; None for every training source (``TRAINING_SOURCES``). One row per paper, from the
    most trusted source that has it (a read label replaces a title rule's). No paper of the
    held-out split is in it, not even one a title rule also labeled."""
    wanted = (source,) if isinstance(source, str) else tuple(source or TRAINING_SOURCES)
    sources = _training_sources()
    return _labeled([row for row in _shipped_rows() if row["split"] == "train"
                     and row["source"] in wanted and sources.get(row["arxiv_id"]) == row["source"]])


def source_weights(labeled: LabeledSet, reader_ids: set[str] = frozenset()) -> np.ndarray:
    """Each row's training weight: 1 for the reader's own labels, else its source's weight
    (``SOURCE_WEIGHTS``); a paper from no shipped source counts as hand-labeled."""
    sources = _training_sources()
    return np.asarray([1.0 if arxiv_id in reader_ids
                       else SOURCE_WEIGHTS.get(sources.get(arxiv_id, "read"), 1.0)
                       for arxiv_id in labeled.ids])


def heldout_labeled(selection: str | None = None) -> LabeledSet:
    """The held-out split of the papers labeled by reading: nothing is tuned on it.
    ``selection`` ``random`` (a real day) or ``targeted`` (hard cases); None for both."""
    return _labeled([row for row in _shipped_rows() if row["split"] == "heldout"
                     and (selection is None or row["selection"] == selection)])


def merge(base: LabeledSet, override: LabeledSet) -> LabeledSet:
    """``base`` with every row whose id is in ``override`` replaced by the override row."""
    kept = base.without(set(override.ids))
    titles = None if kept.title_vectors is None else np.vstack(
        [kept.title_vectors, override.known_title_vectors()])
    return LabeledSet(kept.ids + override.ids, kept.titles + override.titles,
                      kept.abstracts + override.abstracts, kept.labels + override.labels,
                      np.vstack([kept.vectors, override.vectors]), titles)


def train(labeled: LabeledSet, weights: np.ndarray | None = None,
          options: TrainingOptions = TrainingOptions(), info: dict | None = None) -> Head:
    """A head trained on these papers."""
    return train_head(labeled.features(), labeled.targets(), weights, options, info,
                      labeled.title_features())


def training_set(reader: LabeledSet | None = None) -> tuple[LabeledSet, np.ndarray]:
    """Shipped labels plus the reader's (the reader's win), with each row's weight."""
    shipped = shipped_labeled()
    reader_ids = set(reader.ids) if reader else set()
    labeled = merge(shipped, reader) if reader and reader.ids else shipped
    return labeled, source_weights(labeled, reader_ids)


def train_and_save(path: Path, reader: LabeledSet | None = None,
                   options: TrainingOptions = TrainingOptions()) -> Head:
    """Train on shipped (+ reader) labels and write the head to ``path``."""
    labeled, weights = training_set(reader)
    info = {"reader_papers": len(reader.ids) if reader else 0,
            "shipped_papers": len(labeled.ids) - (len(reader.ids) if reader else 0)}
    head = train(labeled, weights, options, info)
    head.save(path)
    log.info("trained head %s on %d papers → %s", head.version, len(labeled.ids), path)
    return head


def cross_validate_labeled(labeled: LabeledSet, folds: int = 5, seed: int = 0,
                           options: TrainingOptions = TrainingOptions()) -> dict:
    """K-fold cross-validation on ``labeled``: each fold is scored by a head trained on the
    other folds plus every shipped training paper that is not in ``labeled`` (each at its
    source's weight)."""
    extra = shipped_labeled().without(set(labeled.ids))
    _, decisions = cross_validate(labeled.features(), labeled.targets(), folds,
                                  extra.features(), extra.targets(), source_weights(extra),
                                  options, seed)
    return evaluate(labeled.targets(), decisions)


def cross_validate_shipped(folds: int = 5, seed: int = 0) -> dict:
    """Cross-validation of the shipped training: the hand-labeled papers in folds, the
    title-rule rows always in training at their weight."""
    return cross_validate_labeled(shipped_labeled(HAND_LABELED), folds, seed)
