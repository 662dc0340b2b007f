"""The moderation engine: allowlist masking, windows, the learned stages and
the policy's blocklist and thresholds, combined into one decision per text.

Profiles (policy `engine`):
- fast: the fast stage alone (static embeddings, profanity, rules).
- accurate: the accurate stage alone (MiniLM, Jigsaw BiLSTM, profanity, rules).
- cascade (default): the fast stage scores everything; a text whose fast
  score for some category reaches that category's gate also goes through the
  accurate stage, whose scores then replace the fast ones. Gates are set in
  training so the fast stage lets through almost every dev-set positive.

A shadow policy is decided beside the live one on the same model scores: it
may differ only in thresholds and blocklist, never in what is scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, TypedDict

import numpy as np

from .categories import CATEGORIES
from .features import Featurizer, Stage
from .policy import Policy
from .policy_rules import PolicyRules
from .rules import Span
from .scoring import consistent
from .weights import Trained, load_trained
from .windows import text_max, window_spans


class ShadowDecision(TypedDict):
    """What the shadow policy would have decided; stored and returned as is."""

    flagged: bool
    categories: list[str]
    policy_version: str


@dataclass(slots=True)
class Decision:
    flagged: bool
    categories: dict[str, bool]
    scores: dict[str, float]
    spans: list[dict[str, Any]]
    signals: dict[str, float]
    engine_version: str
    policy_version: str
    flagged_categories: list[str] = field(default_factory=list)
    shadow: ShadowDecision | None = None


@dataclass(slots=True)
class _Scored:
    """One stage's view of a batch of texts."""

    scores: np.ndarray  # (texts, categories), calibrated
    window: np.ndarray  # (texts, categories): index into the batch's windows of the strongest one
    profanity: np.ndarray  # (texts,) highest over the text's windows
    spans: list[list[Span]]  # rule spans per window, relative to the window


def _rounded(scores: np.ndarray) -> list[float]:
    # Six decimals are what is stored and returned, so thresholds are compared
    # with those: a stored score at a threshold is flagged, whichever policy.
    return [round(float(s), 6) for s in scores]


def _grouped(rules: list[PolicyRules]) -> dict[PolicyRules, list[int]]:
    """Indices of the texts under each policy (most batches have one)."""
    groups: dict[PolicyRules, list[int]] = {}
    for i, r in enumerate(rules):
        groups.setdefault(r, []).append(i)
    return groups


def _shadow_decision(rules: PolicyRules, scores: np.ndarray) -> ShadowDecision:
    categories = [c for c, flag in zip(CATEGORIES, rules.flags(_rounded(scores)), strict=True) if flag]
    return {"flagged": bool(categories), "categories": categories, "policy_version": rules.version}


class Engine:
    def __init__(self, policy: Policy, featurizer: Featurizer | None = None, trained: Trained | None = None,
                 shadow: Policy | None = None) -> None:
        self.live = PolicyRules.of(policy)
        self._shadow = None if shadow is None else PolicyRules.of(shadow)
        if shadow is not None and self._shadow is not None and (self._shadow.allowlist != self.live.allowlist
                                                               or shadow.engine != policy.engine):
            # Both decide on one set of model scores: the allowlist masks text
            # before scoring and the engine profile picks the models.
            raise ValueError("the shadow policy's allowlist and engine must match the live policy's "
                             f"(live: engine {policy.engine}, {len(policy.allowlist)} allowlist phrases; "
                             f"shadow: engine {shadow.engine}, {len(shadow.allowlist)} allowlist phrases)")
        self.policy = policy
        self.profile = policy.engine
        self.featurizer = featurizer or Featurizer()
        self.trained = trained or load_trained()
        self.engine_version = f"ai-moderator-{version('ai-moderator')}+{self.profile}+heads-{self.trained.digest[:12]}"
        self.policy_version = policy.fingerprint
        self.shadow_version = None if self._shadow is None else self._shadow.version

    def warm_up(self) -> None:
        """Load every model this profile can use, so the first request does not pay for it."""
        self.moderate(["warm up"] * 2)
        if self.profile != "fast":
            self._stage("accurate", ["warm up"], [(0, 0, 7)])

    def _stage(self, stage: Stage, texts: Sequence[str], spans: list[tuple[int, int, int]]) -> _Scored:
        """Score `texts` (masked) whose windows are `spans` (text, start, end)."""
        owner = np.asarray([s[0] for s in spans], dtype=np.int64)
        features = self.featurizer.compute(stage, [texts[i][a:b] for i, a, b in spans])
        heads = self.trained.heads[stage]
        logits = heads.window_logits(features.matrix)
        best = text_max(logits, owner, len(texts))
        hit = logits >= best[owner]
        index = np.zeros((len(texts), len(CATEGORIES)), np.int64)
        # The first window that reaches the text's maximum drives the category.
        for w in range(len(spans) - 1, -1, -1):
            index[owner[w], hit[w]] = w
        profanity = text_max(features.profanity[:, None], owner, len(texts))[:, 0]
        return _Scored(heads.calibrate(best), index, profanity, features.spans)

    def moderate(self, texts: Sequence[str], rules: Sequence[PolicyRules | None] | None = None) -> list[Decision]:
        """Decide a batch of texts: one model call per stage for the whole
        batch. `rules` are each text's policy (None: the stack's); texts of
        different policies share the model call, since allowlists mask each
        text before it is scored."""
        if not texts:
            return []
        chosen_rules = [self.live if r is None else r for r in rules or [None] * len(texts)]
        masked = [r.mask(t) for r, t in zip(chosen_rules, texts, strict=True)]
        spans = window_spans(masked, *self.trained.window)
        first: Stage = "accurate" if self.profile == "accurate" else "fast"
        scored = self._stage(first, masked, spans)
        scores = scored.scores.copy()
        window_of = np.asarray([(s[1], s[2]) for s in spans])[scored.window]
        found = self._window_spans(len(texts), spans, scored.spans)
        accurate = np.full(len(texts), self.profile == "accurate")
        if self.profile == "cascade":
            # Gates were set on consistent scores (a parent at least its child).
            accurate = np.asarray((consistent(scored.scores) >= self.trained.gates).any(axis=1), dtype=bool)
            chosen = np.flatnonzero(accurate)
            if len(chosen):
                renumber = {int(i): n for n, i in enumerate(chosen)}
                sub_spans = [(renumber[i], a, b) for i, a, b in spans if i in renumber]
                second = self._stage("accurate", [masked[i] for i in chosen], sub_spans)
                scores[chosen] = second.scores
                window_of[chosen] = np.asarray([(s[1], s[2]) for s in sub_spans])[second.window]
        decided = np.empty_like(scores)
        for r, members in _grouped(chosen_rules).items():
            decided[members] = r.scores(scores[members], [masked[i] for i in members], [found[i] for i in members])
        decisions = [self._decide(r, texts[i], decided[i], window_of[i], found[i], float(scored.profanity[i]),
                                  bool(accurate[i])) for i, r in enumerate(chosen_rules)]
        if self._shadow is not None:
            # The shadow is a variant of the stack's policy: texts under a tenant's policy have none.
            live = [i for i, r in enumerate(chosen_rules) if r is self.live]
            if live:
                shadow_scores = self._shadow.scores(scores[live], [masked[i] for i in live])
                for i, row in zip(live, shadow_scores, strict=True):
                    decisions[i].shadow = _shadow_decision(self._shadow, row)
        return decisions

    @staticmethod
    def _window_spans(texts: int, spans: list[tuple[int, int, int]], per_window: list[list[Span]]) -> list[set[Span]]:
        """Rule spans of every window, as offsets into the whole text (a phrase
        seen by two overlapping windows is one span)."""
        out: list[set[Span]] = [set() for _ in range(texts)]
        for (i, start, _), hits in zip(spans, per_window, strict=True):
            out[i].update(Span(s.category, s.start + start, s.end + start, s.source) for s in hits)
        return out

    def _decide(self, rules: PolicyRules, text: str, scores: np.ndarray, window_of: np.ndarray, spans: set[Span],
                profanity: float, accurate: bool) -> Decision:
        rounded = _rounded(scores)
        values = dict(zip(CATEGORIES, rounded, strict=True))
        found = list(spans)
        flags = dict(zip(CATEGORIES, rules.flags(rounded), strict=True))
        flagged_categories = [c for c in CATEGORIES if flags[c]]
        # The window that drove each flagged category, so a reviewer of a long
        # text is pointed at the passage; a one-window text points at itself.
        for c in flagged_categories:
            start, end = (int(v) for v in window_of[CATEGORIES.index(c)])
            if (start, end) != (0, len(text)):
                found.append(Span(c, start, end, "model"))
        return Decision(
            flagged=bool(flagged_categories),
            categories=flags,
            scores=values,
            spans=[s.as_dict(text) for s in sorted(found, key=lambda s: (s.start, s.end, s.category))],
            signals={"profanity": profanity, "accurate_stage": float(accurate)},
            engine_version=self.engine_version,
            policy_version=rules.version,
            flagged_categories=flagged_categories,
        )
