"""Per-category precision and recall of the built-in engine on the
hand-written examples in eval_set.yaml (default policy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.model import profanity_model
from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Policy

EVAL_SET = Path(__file__).with_name("eval_set.yaml")


@dataclass
class Score:
    category: str
    positives: int
    true_pos: int
    false_pos: int

    @property
    def recall(self) -> float:
        return self.true_pos / self.positives if self.positives else 1.0

    @property
    def precision(self) -> float:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else 1.0


def evaluate(engine: Engine | None = None) -> tuple[list[Score], float]:
    engine = engine or Engine(Policy(), profanity_model())
    examples = yaml.safe_load(EVAL_SET.read_text())["examples"]
    decisions = engine.moderate([e["text"] for e in examples])
    scores = []
    for category in CATEGORIES:
        truth = [category in e["labels"] for e in examples]
        predicted = [category in d.flagged_categories for d in decisions]
        scores.append(Score(category, sum(truth), sum(t and p for t, p in zip(truth, predicted)),
                            sum(p and not t for t, p in zip(truth, predicted))))
    benign = [d for e, d in zip(examples, decisions) if not e["labels"]]
    benign_flag_rate = sum(d.flagged for d in benign) / len(benign)
    return scores, benign_flag_rate


def table() -> str:
    scores, benign_rate = evaluate()
    lines = ["| category | examples | recall | precision |", "|---|---|---|---|"]
    lines += [f"| {s.category} | {s.positives} | {s.recall:.2f} | {s.precision:.2f} |" for s in scores]
    lines.append(f"benign examples flagged: {benign_rate:.0%}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
