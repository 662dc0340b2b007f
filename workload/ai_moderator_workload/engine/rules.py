"""The project's own per-category rules: compiled patterns with weights that
return the spans they matched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import re2
import yaml

from .categories import CATEGORIES


@dataclass(frozen=True, slots=True)
class Span:
    category: str
    start: int
    end: int
    source: str  # "rule", "blocklist" or "model" (the window that drove a category)
    blocklist: str | None = None  # the named blocklist a "blocklist" span's term is on

    def as_dict(self, text: str) -> dict[str, Any]:
        out = {"category": self.category, "start": self.start, "end": self.end,
               "text": text[self.start:self.end], "source": self.source}
        if self.blocklist is not None:
            out["blocklist"] = self.blocklist
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    weight: float


class RuleSet:
    """All rules compiled into one RE2 set, which tells in a single linear scan
    which rules match; only those are re-run with `re` to collect spans. A text
    with no hit (the common case) costs about a microsecond."""

    def __init__(self, rules: list[Rule]) -> None:
        unknown = {r.category for r in rules} - set(CATEGORIES)
        if unknown:
            raise ValueError(f"rules name unknown categories: {sorted(unknown)}")
        self.rules = rules
        options = re2.Options()
        options.case_sensitive = False
        self._set = re2.Set.SearchSet(options)
        for rule in rules:
            self._set.Add(rule.pattern.pattern)
        self._set.Compile()

    def match(self, text: str) -> tuple[dict[str, float], list[Span]]:
        """Per-category noisy-or of matched weights, and the matched spans."""
        hit_indices = self._set.Match(text) if self.rules else None
        if not hit_indices:
            return {}, []
        misses: dict[str, float] = {}
        spans: list[Span] = []
        for rule in (self.rules[i] for i in sorted(hit_indices)):
            hits = [m for m in rule.pattern.finditer(text) if m.end() > m.start()]
            if hits:
                misses[rule.category] = misses.get(rule.category, 1.0) * (1.0 - rule.weight)
                spans.extend(Span(rule.category, m.start(), m.end(), "rule") for m in hits)
        return {c: 1.0 - miss for c, miss in misses.items()}, spans


def compile_rules(data: dict[str, Any]) -> RuleSet:
    groups = "|".join(data.get("groups", []))
    rules = [
        Rule(category, re.compile(entry["pattern"].replace("{group}", groups), re.IGNORECASE), float(entry["weight"]))
        for category, entries in data["rules"].items()
        for entry in entries
    ]
    return RuleSet(rules)


@lru_cache(maxsize=1)
def builtin_rules() -> RuleSet:
    text = resources.files(__package__).joinpath("lexicons/rules.yaml").read_text(encoding="utf-8")
    return compile_rules(yaml.safe_load(text))
