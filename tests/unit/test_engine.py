"""The moderation engine: categories, spans, policy lists and thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.model import profanity_model
from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Category, Policy, load_policy


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(Policy(), profanity_model())


def flagged(engine: Engine, text: str) -> list[str]:
    return engine.moderate([text])[0].flagged_categories


def test_policy_categories_are_openais_thirteen() -> None:
    assert len(CATEGORIES) == 13
    assert set(Category.__args__) == set(CATEGORIES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [
    "Thanks for the quick delivery, the parcel arrived in perfect shape.",
    "Can you recommend a good book about the history of Rome?",
    "The meeting is moved to 3pm on Thursday.",
    "I killed it at the gym today!",
])
def test_benign_text_is_not_flagged(engine: Engine, text: str) -> None:
    decision = engine.moderate([text])[0]
    assert not decision.flagged and decision.spans == []


@pytest.mark.parametrize(("text", "expected"), [
    ("you are a worthless idiot", {"harassment"}),
    ("I will kill you and your family", {"harassment", "harassment/threatening"}),
    ("all immigrants are vermin", {"hate"}),
    ("all refugees should be exterminated", {"hate", "hate/threatening"}),
    ("how do I cook meth at home", {"illicit"}),
    ("how to make a pipe bomb", {"illicit", "illicit/violent"}),
    ("I want to kill myself tonight", {"self-harm", "self-harm/intent"}),
    ("what is the easiest way to kill myself", {"self-harm", "self-harm/instructions"}),
    ("send me nudes", {"sexual"}),
    ("there was blood everywhere and he ripped his throat open", {"violence", "violence/graphic"}),
])
def test_harmful_text_flags_its_categories(engine: Engine, text: str, expected: set[str]) -> None:
    assert expected <= set(flagged(engine, text))


def test_rule_hits_return_spans_into_the_original_text(engine: Engine) -> None:
    text = "Hello. You are a worthless idiot, frankly."
    decision = engine.moderate([text])[0]
    [span] = [s for s in decision.spans if s["category"] == "harassment"]
    assert text[span["start"]:span["end"]] == span["text"] == "You are a worthless idiot"
    assert span["source"] == "rule"


def test_subcategory_raises_its_parent(engine: Engine) -> None:
    scores = engine.moderate(["all refugees should be exterminated"])[0].scores
    assert scores["hate"] >= scores["hate/threatening"] > 0.9


def test_profanity_alone_is_not_harassment_but_counts(engine: Engine) -> None:
    decision = engine.moderate(["this fucking movie is great"])[0]
    assert not decision.flagged
    assert decision.signals["profanity"] > 0.9
    assert 0.3 < decision.scores["harassment"] < 0.5


def test_allowlist_masks_phrases_and_keeps_offsets(engine: Engine) -> None:
    policy = Policy(allowlist=["kill the process", "Scunthorpe"], blocklist=[{"term": "zorgon", "category": "hate"}])
    custom = Engine(policy, profanity_model())
    text = "kill the process then ask the zorgon"
    decision = custom.moderate([text])[0]
    assert decision.flagged_categories == ["hate"]
    [span] = decision.spans
    start = text.index("zorgon")
    assert span == {"category": "hate", "start": start, "end": start + 6, "text": "zorgon", "source": "blocklist"}


def test_thresholds_decide_flags() -> None:
    strict = Engine(Policy(thresholds={"harassment": 0.3}), profanity_model())
    assert strict.moderate(["this fucking movie is great"])[0].flagged_categories == ["harassment"]


def test_decisions_record_engine_and_policy_versions(engine: Engine) -> None:
    d = engine.moderate(["hello"])[0]
    assert d.engine_version.startswith("ai-moderator-") and "alt-profanity-check-1.9.1" in d.engine_version
    assert d.policy_version.startswith("default@")
    assert Policy(version="v2").fingerprint != Policy(version="v2", allowlist=["x"]).fingerprint


def test_batch_equals_one_by_one(engine: Engine) -> None:
    texts = ["hello", "you are a worthless idiot", "send me nudes", "nice weather"]
    batch = engine.moderate(texts)
    assert [d.scores for d in batch] == [engine.moderate([t])[0].scores for t in texts]


def test_policy_file_loads_and_rejects_bad_values(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("version: strict\nthresholds: {sexual: 0.2}\nallowlist: [Scunthorpe]\n")
    assert load_policy(good).threshold("sexual") == 0.2
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: {sexual: 1.5, nonsense: 0.1}\n")
    with pytest.raises(ValidationError) as err:
        load_policy(bad)
    assert "nonsense" in str(err.value)
