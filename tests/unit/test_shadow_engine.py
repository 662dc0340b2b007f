"""Shadow policies in the engine: decided on the live policy's model scores with
the shadow's own thresholds and blocklist, never changing the live decision;
counted by agreement in the metrics; loaded from SHADOW_POLICY_FILE."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.features import Featurizer
from ai_moderator_workload.engine.pipeline import Decision, Engine
from ai_moderator_workload.engine.policy import Policy
from ai_moderator_workload.engine.policy_rules import Blocklist, PolicyRules
from ai_moderator_workload.engine.terms import TermMatcher
from ai_moderator_workload.engine.weights import load_trained
from ai_moderator_workload.metrics import record_decisions
from ai_moderator_workload.runtime import Runtime
from ai_moderator_workload.settings import Settings

INSULT = "you are a worthless idiot and everyone hates you"
TEXTS = ["hello there", INSULT, "send me nudes babe", "kill the process then ask the zorgon",
         "I know where you live and I will kill you " * 60, "this fucking movie is great"]

MakeEngine = Callable[..., Engine]


@pytest.fixture(scope="module")
def make() -> MakeEngine:
    """Engines sharing one featurizer and one set of heads (loaded once)."""
    featurizer, trained = Featurizer(), load_trained()
    return lambda policy, shadow=None: Engine(policy, featurizer=featurizer, trained=trained, shadow=shadow)


def test_without_a_shadow_there_is_no_shadow_decision(make: MakeEngine) -> None:
    assert all(d.shadow is None for d in make(Policy()).moderate(TEXTS))


def test_the_live_decision_is_the_same_with_or_without_a_shadow(make: MakeEngine) -> None:
    live = Policy(allowlist=["kill the process"], blocklist=[{"term": "nudes", "category": "sexual"}],
                  thresholds={"violence": 0.3})
    shadow = Policy(version="trial", allowlist=["kill the process"], default_threshold=0.2,
                    blocklist=[{"term": "zorgon", "category": "hate"}])
    alone = make(live).moderate(TEXTS)
    beside = make(live, shadow).moderate(TEXTS)
    assert [dataclasses.replace(d, shadow=None) for d in beside] == alone
    assert [d.scores for d in beside] == [d.scores for d in alone]
    assert all(d.shadow is not None and d.shadow["policy_version"] == shadow.fingerprint for d in beside)


def test_a_shadow_identical_to_the_live_policy_always_agrees(make: MakeEngine) -> None:
    live = Policy(blocklist=[{"term": "zorgon", "category": "hate"}], thresholds={"violence": 0.3})
    for d in make(live, live.model_copy(update={"version": "copy"})).moderate(TEXTS):
        assert d.shadow is not None
        assert (d.shadow["flagged"], d.shadow["categories"]) == (d.flagged, d.flagged_categories)


def shadow_of(decision: Decision) -> list[str]:
    assert decision.shadow is not None
    assert decision.shadow["flagged"] == bool(decision.shadow["categories"])
    return decision.shadow["categories"]


def test_a_lower_shadow_threshold_flags_what_the_live_policy_does_not(make: MakeEngine) -> None:
    score = make(Policy()).moderate([INSULT])[0].scores["violence"]
    [d] = make(Policy(), Policy(thresholds={"violence": score * 0.9})).moderate([INSULT])
    assert "violence" not in d.flagged_categories and "harassment" in d.flagged_categories
    assert shadow_of(d) == sorted([*d.flagged_categories, "violence"], key=list(d.categories).index)


def test_a_higher_shadow_threshold_clears_what_the_live_policy_flags(make: MakeEngine) -> None:
    [d] = make(Policy(), Policy(default_threshold=1.0)).moderate([INSULT])
    assert d.flagged and "harassment" in d.flagged_categories
    assert shadow_of(d) == [] and d.shadow is not None and d.shadow["flagged"] is False


def test_a_shadow_blocklist_term_flags_only_the_shadow_decision(make: MakeEngine) -> None:
    text = "then ask the zorgon"
    [d] = make(Policy(), Policy(blocklist=[{"term": "Zorgon", "category": "hate"}])).moderate([text])
    assert not d.flagged and d.scores["hate"] < 0.5
    assert not any(s["source"] == "blocklist" for s in d.spans)
    assert shadow_of(d) == ["hate"]


def test_the_live_blocklist_does_not_reach_the_shadow_decision(make: MakeEngine) -> None:
    # The shadow starts from the model scores, before the live blocklist set a category to 1.0.
    [d] = make(Policy(blocklist=[{"term": "zorgon", "category": "hate"}]), Policy()).moderate(["ask the zorgon"])
    assert d.flagged_categories == ["hate"] and d.scores["hate"] == 1.0
    assert shadow_of(d) == []


def test_texts_under_a_tenant_policy_have_no_shadow_decision_in_a_shared_batch(make: MakeEngine) -> None:
    """The shadow is a variant of the stack's policy: in one batch, the
    stack's texts get a shadow decision and a tenant's (here: the stack's
    policy with a request blocklist) do not, and their live decisions stay
    what they are alone."""
    engine = make(Policy(), Policy(version="trial", default_threshold=0.2))
    tenant = PolicyRules("tenant@0", [0.5] * len(CATEGORIES), TermMatcher([]),
                         [Blocklist.compile("extra", [("zorgon", "hate")])])
    mixed = engine.moderate([INSULT, "ask the zorgon"], [None, tenant])
    assert mixed[0].shadow is not None and mixed[1].shadow is None
    assert mixed[1].flagged_categories == ["hate"] and mixed[1].policy_version == "tenant@0"
    alone = engine.moderate([INSULT])[0]
    assert (mixed[0].flagged_categories, mixed[0].shadow) == (alone.flagged_categories, alone.shadow)


@pytest.mark.parametrize("shadow", [Policy(allowlist=["Scunthorpe", "kill the process"]),
                                    Policy(allowlist=["Scunthorpe"], engine="fast")])
def test_a_shadow_must_share_the_allowlist_and_engine(make: MakeEngine, shadow: Policy) -> None:
    with pytest.raises(ValueError, match="allowlist and engine must match the live policy's"):
        make(Policy(allowlist=["Scunthorpe"]), shadow)
    make(Policy(allowlist=["Scunthorpe"]), Policy(allowlist=["Scunthorpe"], thresholds={"hate": 0.2}))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def decision(live: list[str], shadow: list[str] | None) -> Decision:
    return Decision(flagged=bool(live), categories={}, scores={}, spans=[], signals={}, engine_version="e",
                    policy_version="live@0", flagged_categories=live,
                    shadow=None if shadow is None else {"flagged": bool(shadow), "categories": shadow,
                                                        "policy_version": "trial@0"})


TEXT_OUTCOMES = ("both_flagged", "both_clear", "live_only", "shadow_only")
CATEGORY_OUTCOMES = [("harassment", "both_flagged"), ("harassment", "live_only"), ("hate", "shadow_only"),
                     ("violence", "live_only"), ("sexual", "both_flagged"), ("sexual", "shadow_only")]


def counts() -> dict[object, float]:
    texts = {o: sample("moderation_shadow_texts_total", outcome=o) for o in TEXT_OUTCOMES}
    categories = {c: sample("moderation_shadow_categories_total", category=c[0], outcome=c[1])
                  for c in CATEGORY_OUTCOMES}
    return {**texts, **categories}


def test_metrics_count_agreement_by_text_and_category() -> None:
    before = counts()
    record_decisions([decision(["harassment", "violence"], ["harassment", "hate"]), decision([], []),
                      decision([], ["hate"]), decision(["harassment"], []), decision([], [])])
    record_decisions([decision(["sexual"], ["sexual"])])
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {
        "both_flagged": 2, "both_clear": 2, "live_only": 1, "shadow_only": 1,
        ("harassment", "both_flagged"): 1, ("harassment", "live_only"): 1, ("hate", "shadow_only"): 2,
        ("violence", "live_only"): 1, ("sexual", "both_flagged"): 1, ("sexual", "shadow_only"): 0}
    assert REGISTRY.get_sample_value("moderation_shadow_categories_total",
                                     {"category": "sexual", "outcome": "both_clear"}) is None


def test_nothing_is_counted_without_a_shadow() -> None:
    before = counts()
    record_decisions([decision(["harassment"], None), decision([], None)])
    assert counts() == before


def test_a_missing_shadow_policy_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    missing = tmp_path / "shadow.yaml"
    with pytest.raises(FileNotFoundError, match=f"SHADOW_POLICY_FILE={missing} does not exist"):
        _ = Runtime(Settings(shadow_policy_file=missing)).engine
    assert Settings(shadow_policy_file="").shadow_policy_file is None
