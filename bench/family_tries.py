"""What was tried against the family head's plateau (issue 13), one command per try.

Every number is cross-validation on the hand-labeled training papers; nothing here reads the
held-out split. ``BENCHMARKS.md`` ("What was tried against the plateau") has the results.

    python -m bench.family_tries curve       # learning curve: 50 / 75 / 100 % of the labels
    python -m bench.family_tries knobs       # threshold shrink x L2, with none accuracy
    python -m bench.family_tries round4      # rounds 1-3 + dev scored with and without round 4
    python -m bench.family_tries tfidf       # TF-IDF word and word-pair features added
    python -m bench.family_tries mlp         # an MLP head against the linear one
    python -m bench.family_tries finetune    # the encoder fine-tuned end to end, one fold

``tfidf`` and ``mlp`` use scikit-learn, which sentence-transformers installs; ``finetune``
takes about 18 minutes of CPU on two cores.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from pipeline.stages import families as F

TITLE_RULE_WEIGHT = F.SOURCE_WEIGHTS["title-rules"]


def _sets():
    hand = F.shipped_labeled(F.HAND_LABELED)
    return hand, F.shipped_labeled().without(set(hand.ids))


def _stack(parts):
    """(features, targets, weights) of several (features, targets, weight) parts."""
    return (np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts]),
            np.concatenate([np.full(len(p[0]), p[2], dtype=float) for p in parts]))


def _linear_cv(X, Y, extras, options=None, seed=0, fraction=1.0):
    """Out-of-fold decisions for X (5 folds); each fold trained on the rest plus ``extras``."""
    folds, decisions = F.fold_of(len(X), 5, seed), np.zeros(Y.shape, dtype=bool)
    rng = np.random.default_rng(seed)
    for fold in range(5):
        train = np.flatnonzero(folds != fold)
        train = rng.choice(train, int(len(train) * fraction), replace=False) if fraction < 1 else train
        head = F.train_head(*_stack([(X[train], Y[train], 1.0)] + extras), options or F.TrainingOptions())
        decisions[folds == fold] = head.decide(head.probabilities(X[folds == fold]))
    return decisions


def _line(name, metrics_list, extra=""):
    mean = lambda key: round(float(np.mean([m[key] for m in metrics_list])), 4)  # noqa: E731
    print(f"{name}: macro-F1 {mean('macro_f1')} exact {mean('exact_set_accuracy')} "
          f"none {mean('none_accuracy')} badge precision {mean('badge_precision')} {extra}", flush=True)


def curve():
    hand, extra = _sets()
    X, Y, rules = hand.features(), hand.targets(), [(extra.features(), extra.targets(), TITLE_RULE_WEIGHT)]
    for fraction in (0.5, 0.75, 1.0):
        _line(f"{fraction:.0%} of the hand labels", [F.evaluate(Y, _linear_cv(
            X, Y, rules, F.TrainingOptions(threshold_shrink=0.0), seed, fraction)) for seed in (0, 1)])


def knobs():
    hand, extra = _sets()
    X, Y, rules = hand.features(), hand.targets(), [(extra.features(), extra.targets(), TITLE_RULE_WEIGHT)]
    selections = {row["arxiv_id"]: row["selection"] for row in F._shipped_rows()}
    random = np.array([selections.get(i) == "random" for i in hand.ids])
    for shrink in (0.0, 0.25, 0.5):
        for l2 in (1.0, 3.0):
            runs = [_linear_cv(X, Y, rules, F.TrainingOptions(threshold_shrink=shrink, l2=l2), seed)
                    for seed in (0, 1)]
            on_random = np.mean([F.evaluate(Y[random], d[random])["none_accuracy"] for d in runs])
            _line(f"shrink {shrink} l2 {l2}", [F.evaluate(Y, d) for d in runs],
                  f"| none accuracy on the random-drawn papers {on_random:.3f}")


def round4():
    from pathlib import Path

    read = Path(F.data_file(F.READ_LABELS)).read_text(encoding="utf-8").splitlines()
    fourth = {json.loads(line)["arxiv_id"] for line in read[-1050:]}
    hand, extra = _sets()
    old = hand.without(fourth)
    new = hand.without(set(old.ids))
    X, Y = old.features(), old.targets()
    rules = (extra.features(), extra.targets(), TITLE_RULE_WEIGHT)
    for name, extras in (("without round 4", [rules]),
                         ("with round 4", [rules, (new.features(), new.targets(), 1.0)])):
        runs = [F.evaluate(Y, _linear_cv(X, Y, extras, seed=seed)) for seed in (0, 1, 2)]
        families = {code: round(float(np.mean([m["families"][code]["f1"] for m in runs])), 3)
                    for code in runs[0]["families"]}
        _line(f"rounds 1-3 + dev scored, {name}", runs, json.dumps(families))


def _text(labeled):
    return [f"{title} . {title} . {abstract}" for title, abstract in zip(labeled.titles, labeled.abstracts)]


def tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    hand, extra = _sets()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=3, max_features=2000, sublinear_tf=True,
                                 token_pattern=r"(?u)\b[\w][\w-]*\b").fit(_text(hand) + _text(extra))
    words = lambda labeled: vectorizer.transform(_text(labeled)).toarray().astype(np.float32)  # noqa: E731
    Y = hand.targets()
    for name, X, E in (("embedding + cues", hand.features(), extra.features()),
                       ("embedding + cues + TF-IDF", np.hstack([hand.features(), words(hand)]),
                        np.hstack([extra.features(), words(extra)]))):
        _line(name, [F.evaluate(Y, _linear_cv(X, Y, [(E, extra.targets(), TITLE_RULE_WEIGHT)]))])


def _best_threshold_macro(Y, probabilities):
    """Macro-F1 with each family's threshold picked on these very predictions (flatters all)."""
    grid = np.linspace(0.05, 0.9, 35)
    return round(float(np.mean([max(F._f1(Y[:, k] > 0, probabilities[:, k] >= cut) for cut in grid)
                                for k in range(Y.shape[1])])), 4)


def mlp():
    from sklearn.neural_network import MLPClassifier

    hand, extra = _sets()
    scale = F.feature_scale(F.TrainingOptions(), hand.features().shape[1])
    X, Y, E, EY = hand.features() * scale, hand.targets(), extra.features() * scale, extra.targets()

    def linear(train_x, train_y, test_x):
        weights, bias = F.fit_logistic(train_x, train_y, np.ones(len(train_x)), 1.0)
        return F._sigmoid(test_x @ weights.T + bias)

    def network(train_x, train_y, test_x):
        model = MLPClassifier(hidden_layer_sizes=(256,), alpha=1.0, max_iter=300, random_state=0)
        return model.fit(train_x, train_y.astype(int)).predict_proba(test_x)

    folds = F.fold_of(len(X), 5, 0)
    for name, fit in (("linear head", linear), ("MLP head, 256 hidden units", network)):
        probabilities = np.zeros(Y.shape)
        for fold in range(5):
            held = folds == fold
            probabilities[held] = fit(np.vstack([X[~held], E]), np.vstack([Y[~held], EY]), X[held])
        print(f"{name}: macro-F1 {_best_threshold_macro(Y, probabilities)} "
              "(thresholds picked on the same predictions)", flush=True)


def finetune(max_tokens: int = 64, epochs: int = 3):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pipeline.core.text import paper_text
    from pipeline.stages.encoder import model_path

    torch.manual_seed(0)
    hand, extra = _sets()
    held = F.fold_of(len(hand.ids), 5, 0) == 0
    texts = [paper_text(t, a) for t, a in zip(hand.titles, hand.abstracts)]
    rule_texts = [paper_text(t, a) for t, a in zip(extra.titles, extra.abstracts)]
    Y = hand.targets()
    train_texts = [t for t, h in zip(texts, held) if not h] + rule_texts
    train_y = np.vstack([Y[~held], extra.targets()])
    train_w = np.concatenate([np.ones((~held).sum()), np.full(len(rule_texts), TITLE_RULE_WEIGHT)])
    tokenizer, encoder = AutoTokenizer.from_pretrained(str(model_path())), AutoModel.from_pretrained(str(model_path()))
    head = torch.nn.Linear(384, len(F.CODES))

    def pooled(batch):
        tokens = tokenizer(batch, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        return (encoder(**tokens).last_hidden_state * mask).sum(1) / mask.sum(1)

    optimizer = torch.optim.AdamW([{"params": encoder.parameters(), "lr": 4e-5},
                                   {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01)
    steps = epochs * (len(train_texts) // 32 + 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[4e-5, 2e-3], total_steps=steps,
                                                   pct_start=0.1)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        encoder.train()
        order = rng.permutation(len(train_texts))
        for start in range(0, len(order), 32):
            rows = order[start:start + 32]
            logits = head(pooled([train_texts[i] for i in rows]) * 5)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.tensor(train_y[rows], dtype=torch.float32), reduction="none").sum(1)
            loss = (loss * torch.tensor(train_w[rows], dtype=torch.float32)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    encoder.eval()
    test = [t for t, h in zip(texts, held) if h]
    with torch.inference_mode():
        tuned = np.vstack([torch.sigmoid(head(pooled(test[s:s + 64]) * 5)).numpy()
                           for s in range(0, len(test), 64)])
    linear = F.train_head(*_stack([(hand.features()[~held], Y[~held], 1.0),
                                   (extra.features(), extra.targets(), TITLE_RULE_WEIGHT)]))
    for name, probabilities in (("fine-tuned encoder", tuned),
                                ("linear head on the packaged encoder", linear.probabilities(hand.features()[held]))):
        print(f"{name}, fold 0: macro-F1 {_best_threshold_macro(Y[held], probabilities)} "
              "(thresholds picked on that fold)", flush=True)


TRIES = {"curve": curve, "knobs": knobs, "round4": round4, "tfidf": tfidf, "mlp": mlp, "finetune": finetune}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in TRIES:
        sys.exit(f"usage: python -m bench.family_tries {{{','.join(TRIES)}}}")
    TRIES[sys.argv[1]]()
