"""The shipped engine reproduces the dev-set quality recorded when it was
trained (the numbers in the README), for every profile."""

from __future__ import annotations

import pytest

from ai_moderator_workload.engine.evaluation import PROFILES, evaluate
from ai_moderator_workload.engine.weights import load_trained

TOLERANCE = 0.01


@pytest.mark.parametrize("profile", PROFILES)
def test_dev_set_quality_matches_the_recorded_numbers(profile: str) -> None:
    recorded = load_trained().manifest["dev_quality"][profile]
    measured = evaluate(profile)
    assert measured["mean_auprc"] == pytest.approx(recorded["mean_auprc"], abs=TOLERANCE)
    assert measured["any_auprc"] == pytest.approx(recorded["any_auprc"], abs=TOLERANCE)
    for category, numbers in recorded["categories"].items():
        assert measured["categories"][category]["auprc"] == pytest.approx(numbers["auprc"], abs=2 * TOLERANCE), category
