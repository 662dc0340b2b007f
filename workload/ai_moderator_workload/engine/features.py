"""What the heads read for each window of text.

Two feature sets, one per stage:
- fast: the static-table embedding, the learned word-piece logits
  (tokens.py), the profanity probability and the rule scores; well under a
  millisecond per short text.
- accurate: MiniLM's sentence embedding, the Jigsaw BiLSTM's six outputs, the
  profanity probability and the rule scores.
Rule scores are features, not verdicts: the heads learn how much a rule hit
is worth next to what the models see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from .categories import CATEGORIES
from .encoders import MiniLM, StaticEmbedder
from .jigsaw import JigsawBiLSTM
from .model import ProfanityModel, profanity_model
from .rules import RuleSet, Span, builtin_rules
from .tokens import TokenScorer
from .weights import static_table_path, token_weights_path

Stage = Literal["fast", "accurate"]
STAGES: tuple[Stage, ...] = ("fast", "accurate")


@dataclass
class WindowFeatures:
    matrix: np.ndarray  # (windows, features)
    profanity: np.ndarray  # (windows,)
    spans: list[list[Span]]  # rule spans per window, offsets relative to the window


class Featurizer:
    """Loads each model once, on first use; the fast stage never loads the
    transformer or the BiLSTM."""

    def __init__(self, rules: RuleSet | None = None, profanity: ProfanityModel | None = None,
                 threads: int = 1, static_table: Path | None = None, token_weights: Path | None = None) -> None:
        self.rules = rules or builtin_rules()
        self._profanity = profanity
        self._threads = threads
        self._static_table = static_table
        self._token_weights = token_weights

    @cached_property
    def profanity(self) -> ProfanityModel:
        return self._profanity or profanity_model()

    @cached_property
    def static(self) -> StaticEmbedder:
        return StaticEmbedder(self._static_table or static_table_path())

    @cached_property
    def tokens(self) -> TokenScorer:
        return TokenScorer(self._token_weights or token_weights_path())

    @cached_property
    def minilm(self) -> MiniLM:
        return MiniLM(threads=self._threads)

    @cached_property
    def jigsaw(self) -> JigsawBiLSTM:
        return JigsawBiLSTM()

    def versions(self, stage: Stage) -> list[str]:
        models = [self.profanity.version]
        if stage == "accurate":
            models += [self.minilm.version, self.jigsaw.version]
        return models

    def _rules(self, windows: Sequence[str]) -> tuple[np.ndarray, list[list[Span]]]:
        scores = np.zeros((len(windows), len(CATEGORIES)), np.float32)
        spans: list[list[Span]] = []
        for row, window in enumerate(windows):
            hits, window_spans = self.rules.match(window)
            for category, score in hits.items():
                scores[row, CATEGORIES.index(category)] = score
            spans.append(window_spans)
        return scores, spans

    def compute(self, stage: Stage, windows: Sequence[str]) -> WindowFeatures:
        base = self.base(stage, windows)
        if stage == "fast":
            base.matrix = np.concatenate([base.matrix, self.tokens.logits(windows)], axis=1)
        return base

    def base(self, stage: Stage, windows: Sequence[str]) -> WindowFeatures:
        """The features that do not depend on the corpus (training caches
        them; the word-piece logits are fitted, so training adds its own)."""
        profanity = self.profanity.predict(windows).astype(np.float32)
        rule_scores, spans = self._rules(windows)
        if stage == "fast":
            blocks = [self.static.encode(windows)]
        else:
            blocks = [self.minilm.encode(windows), self.jigsaw.predict(windows)]
        matrix = np.concatenate(blocks + [profanity[:, None], rule_scores], axis=1)
        return WindowFeatures(matrix, profanity, spans)
