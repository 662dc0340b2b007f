"""Learned word-piece weights: per category, one weight for every entry of
MiniLM's vocabulary, fitted on the corpus (a logistic regression over which
word pieces a window contains). A window's logits are a lookup and a sum, so
the fast stage gets the corpus's vocabulary knowledge at the cost of the
static table; the fast heads read these logits beside the static embedding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .categories import CATEGORIES
from .encoders import word_pieces

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def presence(texts: Sequence[str], tokenizer: Tokenizer | None = None) -> sp.csr_matrix:
    """Which word pieces each text contains, scaled by 1/sqrt(distinct pieces)
    so a long window does not outvote a short one by length alone."""
    tok = tokenizer or word_pieces(None)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for i, e in enumerate(tok.encode_batch(list(texts), add_special_tokens=False)):
        ids = np.unique(np.asarray(e.ids, dtype=np.int64))
        rows.append(np.full(len(ids), i))
        cols.append(ids)
        vals.append(np.full(len(ids), 1.0 / np.sqrt(max(1, len(ids)))))
    empty = np.zeros(0)
    return sp.csr_matrix((np.concatenate(vals or [empty]), (np.concatenate(rows or [empty]).astype(np.int64),
                                                           np.concatenate(cols or [empty]).astype(np.int64))),
                         shape=(len(texts), tok.get_vocab_size()))


def fit(x: sp.csr_matrix, labels: np.ndarray, c: float) -> np.ndarray:
    """Weights (vocabulary + 1 bias row) × categories: one class-balanced,
    L2-regularised logistic regression per category (liblinear, fixed seed)."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((x.shape[1] + 1, len(CATEGORIES)))
    for k in range(len(CATEGORIES)):
        if labels[:, k].all() or not labels[:, k].any():
            out[-1, k] = 20.0 if labels[:, k].any() else -20.0
            continue
        model = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=1000,
                                   random_state=0).fit(x, labels[:, k])
        out[:-1, k] = model.coef_[0]
        out[-1, k] = model.intercept_[0]
    return out


def logits(x: sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    return np.asarray(x @ weights[:-1] + weights[-1], dtype=np.float32)


class TokenScorer:
    def __init__(self, path: Path) -> None:
        self._weights = np.load(path).astype(np.float32)
        self._tok = word_pieces(None)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return logits(presence(texts, self._tok), self._weights)
