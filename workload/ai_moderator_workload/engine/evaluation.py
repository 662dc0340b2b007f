"""Quality of the engine as it runs, measured on the dev set: the numbers the
README's table, `ai-moderator evaluate` and `make bench` print, and that a
test holds the shipped heads to."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import corpus as corpus_module
from .categories import CATEGORIES
from .pipeline import Engine
from .policy import Policy
from .scoring import EVALUATED, quality

PROFILES = ("fast", "cascade", "accurate")


def score_matrix(engine: Engine, texts: list[str], batch: int = 128) -> tuple[np.ndarray, float]:
    """Scores (texts × categories) and the share of texts the accurate stage saw."""
    rows: list[list[float]] = []
    accurate = 0.0
    for start in range(0, len(texts), batch):
        for d in engine.moderate(texts[start:start + batch]):
            rows.append([d.scores[c] for c in CATEGORIES])
            accurate += d.signals["accurate_stage"]
    return np.asarray(rows), accurate / max(1, len(texts))


def evaluate(profile: str, split: corpus_module.Split = "dev", policy: Policy | None = None) -> dict[str, Any]:
    base = policy or Policy()
    engine = Engine(base.model_copy(update={"engine": profile}))
    data = corpus_module.load(split)
    scores, escalated = score_matrix(engine, [e.text for e in data.examples])
    truth = np.asarray(data.labels_matrix(), dtype=bool)
    thresholds = np.asarray([base.threshold(c) for c in CATEGORIES])
    result = quality(truth, scores, thresholds)
    result["accurate_stage_share"] = round(escalated, 4)
    result["engine_version"] = engine.engine_version
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: AUPRC per category and profile, then precision / recall at
    the default thresholds."""
    profiles = list(results)
    lines = ["| category | dev positives | " + " | ".join(f"AUPRC {p}" for p in profiles)
             + " | " + " | ".join(f"P / R {p}" for p in profiles) + " |",
             "|---|---|" + "---|" * (2 * len(profiles))]
    first = results[profiles[0]]
    for c in CATEGORIES:
        cells = [f"{results[p]['categories'][c]['auprc']:.2f}" for p in profiles]
        cells += [f"{results[p]['categories'][c]['precision']:.2f} / {results[p]['categories'][c]['recall']:.2f}"
                  for p in profiles]
        marker = "" if c in EVALUATED else " ◦"
        lines.append(f"| {c}{marker} | {first['categories'][c]['positives']} | " + " | ".join(cells) + " |")
    lines.append("| **mean of the 8 evaluated categories** | | "
                 + " | ".join(f"**{results[p]['mean_auprc']:.3f}**" for p in profiles) + " |" + " |" * len(profiles))
    lines.append("| **any category** (highest score of the 8) | | "
                 + " | ".join(f"**{results[p]['any_auprc']:.3f}**" for p in profiles) + " |" + " |" * len(profiles))
    lines.append("| share of texts through the accurate stage | | "
                 + " | ".join(f"{results[p]['accurate_stage_share']:.0%}" for p in profiles)
                 + " |" + " |" * len(profiles))
    return "\n".join(lines)
