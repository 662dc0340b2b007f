"""Scores as matrices (texts × CATEGORIES): the taxonomy's consistency rules
and the quality measures the README's table and the train command report."""

from __future__ import annotations

from typing import Any

import numpy as np

from .categories import CATEGORIES, IMPLIES, PARENTS

# The categories of the held-out evaluation users compare engines on (the
# OpenAI moderation evaluation taxonomy: S, H, V, HR, SH, S3, H2, V2).
EVALUATED: tuple[str, ...] = ("sexual", "hate", "violence", "harassment", "self-harm", "sexual/minors",
                              "hate/threatening", "violence/graphic")


def consistent(scores: np.ndarray) -> np.ndarray:
    """Scores (texts × CATEGORIES) raised so a parent is at least its
    sub-category and a threat's implied categories at least the threat."""
    out = scores.copy()
    for child, parent in PARENTS.items():
        p = CATEGORIES.index(parent)
        out[:, p] = np.maximum(out[:, p], out[:, CATEGORIES.index(child)])
    for source, implied in IMPLIES.items():
        for category in implied:
            c = CATEGORIES.index(category)
            out[:, c] = np.maximum(out[:, c], out[:, CATEGORIES.index(source)])
    return out


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve (scikit-learn's average precision)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, scores)) if truth.any() else float("nan")


def quality(truth: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
    """Per category: positives, AUPRC, precision and recall at the thresholds;
    the mean AUPRC over EVALUATED and the any-category AUPRC (a text's score is
    its highest over EVALUATED)."""
    flagged = scores >= thresholds
    per_category: dict[str, Any] = {}
    for c, category in enumerate(CATEGORIES):
        t = truth[:, c].astype(bool)
        tp = int((flagged[:, c] & t).sum())
        per_category[category] = {
            "positives": int(t.sum()),
            "auprc": round(average_precision(t, scores[:, c]), 4),
            "precision": round(tp / max(1, int(flagged[:, c].sum())), 4),
            "recall": round(tp / max(1, int(t.sum())), 4),
        }
    columns = [CATEGORIES.index(c) for c in EVALUATED]
    any_truth = np.asarray(truth[:, columns].any(axis=1), dtype=bool)
    any_score = scores[:, columns].max(axis=1)
    return {
        "categories": per_category,
        "mean_auprc": round(float(np.mean([per_category[c]["auprc"] for c in EVALUATED])), 4),
        "any_auprc": round(average_precision(any_truth, any_score), 4),
        "texts": int(len(truth)),
    }
