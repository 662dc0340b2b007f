"""Overlapping word windows over a text, as character ranges into it.

Models see a bounded amount of text (MiniLM 128 word pieces, the Jigsaw
BiLSTM 100 words), so a long text is scored window by window and each category
takes its strongest window: a threat in paragraph four is not averaged away by
three harmless ones. 64 words every 48 measured best on the dev set, ahead of
32-word windows and of windows that follow paragraphs."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\S+")

WINDOW_WORDS = 64
STRIDE_WORDS = 48


def windows(text: str, size: int = WINDOW_WORDS, stride: int = STRIDE_WORDS) -> list[tuple[int, int]]:
    """Character ranges of runs of `size` words every `stride` words, the last
    one ending at the last word; a text of at most `size` words is one window
    covering all of it."""
    words = [m.span() for m in _WORD.finditer(text)]
    if len(words) <= size:
        return [(0, len(text))]
    starts = list(range(0, len(words) - size, stride)) + [len(words) - size]
    return [(words[s][0], words[s + size - 1][1]) for s in starts]


def window_spans(texts: Sequence[str], size: int = WINDOW_WORDS,
                 stride: int = STRIDE_WORDS) -> list[tuple[int, int, int]]:
    """Every window of a batch of texts as (text index, start, end)."""
    return [(i, a, b) for i, text in enumerate(texts) for a, b in windows(text, size, stride)]


def text_max(values: np.ndarray, owner: np.ndarray, texts: int) -> np.ndarray:
    """Per text, the highest of its windows' values (rows of `values`, owned by `owner`)."""
    out = np.full((texts, values.shape[1]), -np.inf, dtype=values.dtype)
    np.maximum.at(out, owner, values)
    return out
