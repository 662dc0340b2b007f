"""Guards the engine's measured quality (README table) against regressions."""

from __future__ import annotations

from benchmarks.quality import evaluate


def test_every_category_keeps_its_recall_and_precision() -> None:
    scores, benign_flag_rate = evaluate()
    weak = [(s.category, round(s.recall, 2), round(s.precision, 2)) for s in scores
            if s.recall < 0.8 or s.precision < 0.75]
    assert weak == []
    assert benign_flag_rate <= 0.10
