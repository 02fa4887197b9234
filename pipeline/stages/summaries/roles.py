"""The sentence-role model: what each sentence of an abstract does (background, problem,
method, result, implication, other), as probabilities.

A multinomial logistic regression in numpy over sparse binary features of each sentence:
its place in the abstract, its first words, cue words per role, person and tense, numbers,
hashed word uni- and bigrams, its overlap with the title, and the first words and cues of
the sentences before and after it. No encoder pass: a 2,000-paper day takes seconds.

The weights ship as ``pipeline/data/sentence_roles_model.npz`` (numpy arrays and a JSON
string, no pickle), trained by ``train_roles`` on the ``train`` split of the labels read
sentence by sentence (``pipeline/data/sentence_roles.jsonl``); ``bench/train_roles.py``
rebuilds the file. The ``heldout`` split is never used for a choice: it is measured once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

ROLES = ("background", "problem", "method", "result", "implication", "other")
"""The roles, in the order of the probability columns (the labeling rules' roles)."""

MODEL_FILE = "sentence_roles_model.npz"
"""The shipped weights, in ``pipeline/data/``."""

LABELS_FILE = "sentence_roles.jsonl"
"""The abstracts labeled by reading, sentence by sentence, in ``pipeline/data/``."""

FEATURES_VERSION = "role-features.v1"
"""Bumped whenever ``sentence_features`` changes: a model trained on other features is refused."""


@dataclass(frozen=True)
class RoleOptions:
    """The knobs of training, chosen by cross-validation on the train split (``bench/train_roles.py``)."""

    hash_bits: int = 15
    """Features are hashed into ``2 ** hash_bits`` columns."""

    l2: float = 1e-3
    """L2 penalty per weight, relative to the mean loss per sentence."""

    iterations: int = 300
    """Full-batch Adam steps (deterministic: no sampling)."""

    learning_rate: float = 0.1
    """Adam's step size."""


@dataclass(frozen=True)
class RoleModel:
    """A trained sentence-role model."""

    version: str
    """``roles-<hash>``: a digest of the training labels, the options and the feature version."""

    weights: np.ndarray
    """Shape ``(2 ** hash_bits, roles)``: the weight of each hashed feature for each role."""

    bias: np.ndarray
    """Shape ``(roles,)``: the intercepts."""

    info: dict = field(default_factory=dict)
    """Training facts (options, counts, feature version), saved as JSON in the file."""

    def probabilities(self, indices: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Role probabilities, shape ``(sentences, roles)``, from ``feature_indices`` output."""
        if not len(starts):
            return np.zeros((0, len(ROLES)))
        scores = np.add.reduceat(self.weights[indices], starts, axis=0) + self.bias
        return softmax(scores)

    def save(self, path: Path) -> Path:
        """Write the model as one ``.npz`` (arrays and a JSON string; no pickle), atomically."""
        path = Path(path)
        temporary = path.with_suffix(".tmp.npz")
        np.savez_compressed(temporary, weights=self.weights, bias=self.bias,
                            version=np.array(self.version), info=np.array(json.dumps(self.info)))
        temporary.replace(path)
        return path


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large scores."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def data_file(name: str) -> Path:
    """A file shipped in ``pipeline/data/``."""
    from importlib import resources

    return Path(str(resources.files("pipeline") / "data" / name))


def load_model(path: Path) -> RoleModel:
    """Read a model written by ``RoleModel.save``; refuse one trained on other features."""
    with np.load(path, allow_pickle=False) as data:
        info = json.loads(str(data["info"]))
        model = RoleModel(str(data["version"]), data["weights"], data["bias"], info)
    if info.get("features") != FEATURES_VERSION or tuple(info.get("roles", ())) != ROLES:
        raise ValueError(f"{path} was trained on other features; rebuild it with "
                         "`python -m bench.train_roles`")
    return model


@lru_cache(maxsize=1)
def shipped_model() -> RoleModel:
    """The shipped model, loaded once per process."""
    return load_model(data_file(MODEL_FILE))


# ---- features ----------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d")
_PERCENT = re.compile(r"\d\s?(%|\\%|percent)|\d(\.\d+)?\s?(x|×)\b|\bpoints?\b")
_PAST = re.compile(r"\b(was|were|had|found|showed|observed|achieved|obtained|revealed|"
                   r"yielded|\w+ed)\b")
_MODAL = re.compile(r"\b(can|could|may|might|should|would|will)\b")

# Cue words per role: written from the labeling rules and the train split's sentences, so
# the model sees synonyms that 260 abstracts cannot teach it word by word.
_CUES = {
    "gap": r"\b(however|yet|but|remains?|remained|unclear|unexplored|underexplored|lack\w*|"
           r"limit(ed|ation|ations|s)?|challeng\w*|struggl\w*|fail\w*|suffer\w*|difficult\w*|"
           r"bottleneck\w*|issues?|problems?|insufficient|costly|expensive|hinder\w*|ignore\w*|"
           r"overlook\w*|neglect\w*|restrict\w*|drawbacks?|gap|open question|little is known)\b",
    "propose": r"\b(we (first )?(propos|introduc|present|develop|design|buil|construct|devis|"
               r"formulat|curat|collect|release|creat|establish|offer|describe|put forward)\w*|"
               r"this (paper|work|study|article) (propos|introduc|present|develop)\w*|"
               r"called|named|dubbed|termed)\b",
    "how": r"\b(consists? of|comprises?|first|then|finally|module|encoder|decoder|layer|"
           r"framework|pipeline|architecture|mechanism|leverag\w*|utiliz\w*|employ\w*|"
           r"incorporat\w*|integrat\w*|specifically|by (using|leveraging|combining))\b",
    "finding": r"\b(experiments?|results?|outperform\w*|achiev\w*|surpass\w*|improv\w*|"
               r"state-of-the-art|sota|significantly|demonstrat\w*|show(s|ed|n)?|reveal\w*|"
               r"find|found|findings?|observe\w*|evaluat\w*|compar\w*|accuracy|baselines?|"
               r"benchmarks?|gains?|reduc\w*|speedup)\b",
    "meaning": r"\b(suggest\w*|implication\w*|highlight\w*|underscor\w*|pav\w* the way|"
               r"insights?|future|potential|promising|opens?|enabl\w*|foundation|valuable|"
               r"broader|practical|we hope|call for|need for|lessons?|step toward\w*|"
               r"paradigm|impact\w*)\b",
    "aside": r"(https?://|github|available at|code (is|and|will)|data (is|are) available|"
             r"accepted|project page|\bwww\.|publicly available|open-?source)",
    "context": r"\b(recent(ly)?|have (shown|emerged|become|achieved|gained|attracted)|"
               r"has (shown|emerged|become|achieved|gained|attracted)|widely|increasingly|"
               r"popular|essential|crucial|important|plays? an? )\b",
}
_CUE_PATTERNS = {name: re.compile(pattern) for name, pattern in _CUES.items()}
_STOP = frozenset("a an the of in on for to and or with by from as at is are be this that "
                  "these those it its we our their which into via".split())


def _words(sentence: str) -> list[str]:
    """Lower-cased word tokens; every number becomes ``0`` (its value carries no role)."""
    return ["0" if token[0].isdigit() else token for token in _TOKEN.findall(sentence.lower())]


def _local_features(sentence: str, words: list[str]) -> tuple[list[str], list[str]]:
    """(features of the sentence itself, the subset shared with its neighbours)."""
    lower = sentence.lower()
    lead = [f"f1:{' '.join(words[:1])}", f"f2:{' '.join(words[:2])}", f"f3:{' '.join(words[:3])}"]
    cues = [f"cue:{name}" for name, pattern in _CUE_PATTERNS.items() if pattern.search(lower)]
    shared = lead[:2] + cues
    grams = [f"u:{word}" for word in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    person = [f"p:{word}" for word in ("we", "our", "i", "us") if word in words]
    tense = ["past"] if _PAST.search(lower) else []
    tense += ["modal"] if _MODAL.search(lower) else []
    tense += [f"{p}+{t}" for p in person[:1] for t in tense]
    numbers = ["num"] if _NUMBER.search(sentence) else []
    numbers += ["pct"] if _PERCENT.search(lower) else []
    size = [f"len:{min(len(words) // 8, 6)}"]
    return lead + cues + grams + person + tense + numbers + size, shared


def _position_features(index: int, count: int) -> list[str]:
    relative = index / max(count - 1, 1)
    names = [f"pos:{min(index, 4)}", f"rel:{int(relative * 4.999)}", f"cnt:{min(count // 3, 4)}"]
    if index == count - 1:
        names.append("last")
    if index == count - 2:
        names.append("last2")
    return names


def _title_feature(words: list[str], title_words: set[str]) -> str:
    content = {word for word in words if word not in _STOP and len(word) > 2}
    shared = len(content & title_words) / len(title_words) if title_words else 0.0
    return f"title:{min(int(shared * 4), 3)}"


def sentence_features(sentences: Sequence[str], title: str) -> list[list[str]]:
    """The named binary features of each sentence of one abstract (before hashing)."""
    tokenized = [_words(sentence) for sentence in sentences]
    title_words = {word for word in _words(title) if word not in _STOP and len(word) > 2}
    local = [_local_features(sentence, words) for sentence, words in zip(sentences, tokenized)]
    count, rows = len(sentences), []
    for index, (own, _) in enumerate(local):
        before = local[index - 1][1] if index else ["none"]
        after = local[index + 1][1] if index + 1 < count else ["none"]
        rows.append(["bias", *own, *_position_features(index, count),
                     _title_feature(tokenized[index], title_words),
                     *(f"prev:{name}" for name in before), *(f"next:{name}" for name in after)])
    return rows


def _hash(name: str, mask: int) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the weights must line up.
    return zlib.crc32(name.encode("utf-8")) & mask


def feature_indices(rows: Sequence[Sequence[str]], hash_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, starts)``: each row's distinct hashed columns, concatenated, and where each
    row starts (the layout ``np.add.reduceat`` takes)."""
    mask = (1 << hash_bits) - 1
    indices, starts = [], []
    for row in rows:
        starts.append(len(indices))
        indices.extend(sorted({_hash(name, mask) for name in row}))
    return np.asarray(indices, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def role_probabilities(sentences: Sequence[str], title: str,
                       model: RoleModel | None = None) -> np.ndarray:
    """The probability of each role (columns in ``ROLES`` order) for each sentence of one
    abstract, shape ``(sentences, 6)``."""
    model = model or shipped_model()
    bits = int(model.info["options"]["hash_bits"])
    return model.probabilities(*feature_indices(sentence_features(sentences, title), bits))


# ---- training ----------------------------------------------------------------------------

def labeled_rows(split: str) -> list[dict]:
    """The shipped labeled abstracts of one split (``train`` or ``heldout``), in file order."""
    text = data_file(LABELS_FILE).read_text(encoding="utf-8")
    return [row for row in map(json.loads, filter(str.strip, text.splitlines()))
            if row["split"] == split]


def _design(rows: Sequence[dict], hash_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices, starts, targets)`` for every sentence of the rows."""
    features = [names for row in rows for names in sentence_features(row["sentences"], row["title"])]
    indices, starts = feature_indices(features, hash_bits)
    targets = np.asarray([ROLES.index(role) for row in rows for role in row["roles"]])
    return indices, starts, targets


def _fit(indices: np.ndarray, starts: np.ndarray, targets: np.ndarray,
         options: RoleOptions) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch Adam on the mean cross-entropy."""
    columns, classes = 1 << options.hash_bits, len(ROLES)
    sentences = len(starts)
    owner = np.repeat(np.arange(sentences), np.diff(np.append(starts, len(indices))))
    onehot = np.eye(classes)[targets]
    weights, bias = np.zeros((columns, classes)), np.zeros(classes)
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros(classes), np.zeros(classes)]
    for step in range(1, options.iterations + 1):
        scores = np.add.reduceat(weights[indices], starts, axis=0) + bias
        residual = (softmax(scores) - onehot) / sentences
        spread = residual[owner]
        gradient = np.stack([np.bincount(indices, spread[:, role], columns)
                             for role in range(classes)], axis=1) + options.l2 * weights
        _adam(weights, gradient, moments[0], moments[1], step, options.learning_rate)
        _adam(bias, residual.sum(axis=0), moments[2], moments[3], step, options.learning_rate)
    return weights.astype(np.float32), bias.astype(np.float32)


def _adam(value, gradient, first, second, step, rate, beta1=0.9, beta2=0.999) -> None:
    first *= beta1
    first += (1 - beta1) * gradient
    second *= beta2
    second += (1 - beta2) * gradient * gradient
    correction = rate * (1 - beta2 ** step) ** 0.5 / (1 - beta1 ** step)
    value -= correction * first / (np.sqrt(second) + 1e-8)


def _version(rows: Sequence[dict], options: RoleOptions) -> str:
    digest = hashlib.sha256(json.dumps(
        [FEATURES_VERSION, asdict(options),
         [[row["arxiv_id"], row["title"], row["sentences"], row["roles"]] for row in rows]],
        sort_keys=True).encode("utf-8")).hexdigest()
    return f"roles-{digest[:12]}"


def train_roles(rows: Sequence[dict], options: RoleOptions = RoleOptions()) -> RoleModel:
    """A role model trained on these labeled abstracts (deterministic: the same rows and
    options give the same weights and version)."""
    indices, starts, targets = _design(rows, options.hash_bits)
    weights, bias = _fit(indices, starts, targets, options)
    info = {"features": FEATURES_VERSION, "roles": list(ROLES), "options": asdict(options),
            "abstracts": len(rows), "sentences": int(len(targets))}
    return RoleModel(_version(rows, options), weights, bias, info)


def fold_of(count: int, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number for each abstract: shuffled, as even as the count allows."""
    order = np.random.default_rng(seed).permutation(count)
    assignment = np.empty(count, dtype=int)
    assignment[order] = np.arange(count) % folds
    return assignment


def out_of_fold(rows: Sequence[dict], options: RoleOptions = RoleOptions(), folds: int = 5,
                seed: int = 0) -> list[np.ndarray]:
    """Each abstract's role probabilities from a model not trained on it (cross-validation)."""
    assignment = fold_of(len(rows), folds, seed)
    found: list[np.ndarray] = [np.zeros(0)] * len(rows)
    for fold in range(folds):
        model = train_roles([row for row, f in zip(rows, assignment) if f != fold], options)
        for position in np.flatnonzero(assignment == fold):
            found[position] = role_probabilities(rows[position]["sentences"],
                                                 rows[position]["title"], model)
    return found
