"""What a policy decides on top of the model scores, compiled: the allowlist
that masks text before scoring, the blocklists whose terms flag their
category, and the per-category thresholds. One `PolicyRules` per effective
policy: the stack's, or a tenant's layered on it (policies.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .categories import CATEGORIES
from .policy import Policy
from .rules import Span
from .scoring import consistent
from .terms import TermMatcher, lowered


@dataclass(frozen=True, slots=True)
class Blocklist:
    """A compiled blocklist. `name` is None for the policy file's own list;
    spans of a named list carry its name."""

    name: str | None
    categories: dict[str, str]  # term in lower case: category
    matcher: TermMatcher
    digest: str  # of its terms and categories, for fingerprints

    @classmethod
    def compile(cls, name: str | None, terms: Iterable[tuple[str, str]]) -> Blocklist:
        categories = {lowered(term): category for term, category in terms}
        # JSON, not joined text: a term may hold a tab or a newline.
        digest = hashlib.sha256(json.dumps(sorted(categories.items())).encode()).hexdigest()
        return cls(name, categories, TermMatcher(categories), digest)


def blocklist_of(policy: Policy) -> Blocklist:
    return Blocklist.compile(None, ((b.term, b.category) for b in policy.blocklist))


class PolicyRules:
    """Rules of one effective policy. `version` is its fingerprint, recorded
    with every decision it makes; `policy` and `blocklists` name where it came
    from (None and () for the stack's policy as it stands)."""

    def __init__(self, version: str, thresholds: Sequence[float], allowlist: TermMatcher,
                 blocklists: Sequence[Blocklist], policy: str | None = None, extra: Sequence[str] = ()) -> None:
        self.version = version
        self.policy = policy
        self.extra = tuple(extra)
        self._thresholds = list(thresholds)
        self._allow = allowlist
        self._blocklists = tuple(b for b in blocklists if len(b.matcher))

    @classmethod
    def of(cls, policy: Policy) -> PolicyRules:
        return cls(policy.fingerprint, [policy.threshold(c) for c in CATEGORIES], TermMatcher(policy.allowlist),
                   [blocklist_of(policy)])

    @property
    def allowlist(self) -> frozenset[str]:
        return self._allow.phrases

    def mask(self, text: str) -> str:
        """Allowlisted phrases blanked (same length, so offsets stay valid)."""
        return self._allow.mask(text)

    def scores(self, model: np.ndarray, masked: Sequence[str], found: list[set[Span]] | None = None) -> np.ndarray:
        """`model` scores (texts × categories) with every blocked term's
        category at 1.0, made consistent; `model` is left as is for another
        policy. The terms' spans go into `found` when it is given."""
        scores = model.copy()
        for blocklist in self._blocklists:
            for i, text in enumerate(masked):
                for start, end, term in blocklist.matcher.finditer(text):
                    category = blocklist.categories[term]
                    if found is not None:
                        found[i].add(Span(category, start, end, "blocklist", blocklist.name))
                    scores[i, CATEGORIES.index(category)] = 1.0
        return consistent(scores)

    def flags(self, rounded: Sequence[float]) -> list[bool]:
        return [v >= t for v, t in zip(rounded, self._thresholds, strict=True)]
