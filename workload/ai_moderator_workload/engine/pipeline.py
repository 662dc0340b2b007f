"""The moderation pipeline: allowlist masking, the profanity model, the
project's rules and the policy's blocklist, combined into one decision per text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Protocol

import numpy as np

from .categories import CATEGORIES, IMPLIES, PARENTS
from .policy import Policy
from .rules import RuleSet, Span, builtin_rules, phrase_pattern


class BatchModel(Protocol):
    version: str

    def predict(self, texts: Sequence[str]) -> np.ndarray: ...


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


class Engine:
    def __init__(self, policy: Policy, model: BatchModel, rules: RuleSet | None = None) -> None:
        self.policy = policy
        self.model = model
        self.rules = rules or builtin_rules()
        self.engine_version = f"ai-moderator-{version('ai-moderator')}+{model.version}"
        self.policy_version = policy.fingerprint
        self._allow = phrase_pattern(policy.allowlist)
        self._block: dict[str, str] = {b.term.lower(): b.category for b in policy.blocklist}
        self._block_re = phrase_pattern(list(self._block))
        self._thresholds = {c: policy.threshold(c) for c in CATEGORIES}

    def _mask(self, text: str) -> str:
        # Same-length blanks keep span offsets valid against the original text.
        if self._allow is None:
            return text
        return self._allow.sub(lambda m: " " * len(m.group(0)), text)

    def moderate(self, texts: Sequence[str]) -> list[Decision]:
        """Decide a batch of texts with one model call."""
        masked = [self._mask(t) for t in texts]
        profanity = self.model.predict(masked)
        return [self._decide(text, masked_text, float(p)) for text, masked_text, p in zip(texts, masked, profanity)]

    def _decide(self, text: str, masked: str, profanity: float) -> Decision:
        rule_scores, spans = self.rules.match(masked)
        scores = dict.fromkeys(CATEGORIES, 0.0)
        scores.update(rule_scores)
        # Noisy-or: the model raises harassment, more so when a rule also fired.
        model_part = profanity * self.policy.model.harassment
        scores["harassment"] = 1.0 - (1.0 - scores["harassment"]) * (1.0 - model_part)
        if self._block_re is not None:
            for m in self._block_re.finditer(masked):
                category = self._block[m.group(0).lower()]
                scores[category] = 1.0
                spans.append(Span(category, m.start(), m.end(), "blocklist"))
        for child, parent in PARENTS.items():
            scores[parent] = max(scores[parent], scores[child])
        for source, implied in IMPLIES.items():
            for category in implied:
                scores[category] = max(scores[category], scores[source])
        categories = {c: scores[c] >= self._thresholds[c] for c in CATEGORIES}
        flagged_categories = [c for c in CATEGORIES if categories[c]]
        return Decision(
            flagged=bool(flagged_categories),
            categories=categories,
            scores=scores,
            spans=[s.as_dict(text) for s in sorted(spans, key=lambda s: (s.start, s.end))],
            signals={"profanity": profanity},
            engine_version=self.engine_version,
            policy_version=self.policy_version,
            flagged_categories=flagged_categories,
        )
