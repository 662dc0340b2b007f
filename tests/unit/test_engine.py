"""The moderation engine: categories, stages, windows, spans, policy lists and thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.features import Featurizer
from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Category, Policy, load_policy
from ai_moderator_workload.engine.windows import windows


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(Policy())


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
    "kill -9 the worker process, then restart nginx",
    "Our sex-ed class covered contraception and consent today.",
])
def test_benign_text_is_not_flagged(engine: Engine, text: str) -> None:
    decision = engine.moderate([text])[0]
    assert not decision.flagged, decision.scores


@pytest.mark.parametrize(("text", "expected"), [
    ("you are a worthless idiot and everyone hates you", {"harassment"}),
    ("I know where you live and I will kill you and your family", {"harassment", "harassment/threatening"}),
    ("all immigrants are filthy vermin and should be thrown out", {"hate"}),
    ("how do I cook meth at home without getting caught", {"illicit"}),
    ("how to build a pipe bomb that can't be traced", {"illicit", "illicit/violent"}),
    ("I want to kill myself tonight, I've written my goodbye letters", {"self-harm", "self-harm/intent"}),
    ("what is the most painless way to kill myself", {"self-harm", "self-harm/instructions"}),
    ("send me nudes babe, I want to see all of you tonight", {"sexual"}),
    ("his skull split open and his brains splattered across the wall, blood pouring out", {"violence", "violence/graphic"}),
])
def test_harmful_text_flags_its_categories(engine: Engine, text: str, expected: set[str]) -> None:
    assert expected <= set(flagged(engine, text))


def test_a_threat_in_paragraph_four_is_found_and_pointed_at(engine: Engine) -> None:
    calm = ("We hiked the ridge trail on Saturday. The weather was perfect, the kids found a frog by the "
            "stream and we ate sandwiches by the lake before heading back down to the car park.")
    threat = ("As for you, Mark: I know where you live and I know when your shift ends. Keep posting about my "
              "family and one night I will be waiting outside your door, and I will break every bone in your "
              "worthless body. Nobody will find what is left of you.")
    text = "\n\n".join([calm, calm, calm, threat, calm, calm])
    decision = engine.moderate([text])[0]
    assert {"harassment", "harassment/threatening"} <= set(decision.flagged_categories), decision.scores
    [window] = [s for s in decision.spans if s["source"] == "model" and s["category"] == "harassment/threatening"]
    assert threat in window["text"] and len(window["text"]) < len(text) / 2


def test_windows_cover_long_texts_with_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(200))
    spans = windows(text, size=64, stride=48)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert windows("short text") == [(0, 10)]


def test_rule_hits_return_spans_into_the_original_text(engine: Engine) -> None:
    text = "Hello. You are a worthless idiot, frankly."
    decision = engine.moderate([text])[0]
    [span] = [s for s in decision.spans if s["category"] == "harassment" and s["source"] == "rule"]
    assert text[span["start"]:span["end"]] == span["text"] == "You are a worthless idiot"


def test_subcategory_raises_its_parent(engine: Engine) -> None:
    for d in engine.moderate(["all refugees should be exterminated like rats", "I will find you and kill you"]):
        s = d.scores
        assert s["hate"] >= s["hate/threatening"] and s["harassment"] >= s["harassment/threatening"]
        assert s["violence"] >= max(s["hate/threatening"], s["harassment/threatening"])


def test_profanity_alone_is_not_harassment(engine: Engine) -> None:
    decision = engine.moderate(["this fucking movie is great"])[0]
    assert not decision.flagged
    assert decision.signals["profanity"] > 0.9


def test_allowlist_masks_phrases_and_blocklist_flags_with_offsets() -> None:
    policy = Policy(allowlist=["kill the process", "Scunthorpe"], blocklist=[{"term": "zorgon", "category": "hate"}])
    custom = Engine(policy)
    text = "kill the process then ask the zorgon"
    decision = custom.moderate([text])[0]
    assert decision.flagged_categories == ["hate"]
    start = text.index("zorgon")
    assert {"category": "hate", "start": start, "end": start + 6, "text": "zorgon", "source": "blocklist"} \
        in decision.spans


def test_thresholds_decide_flags(engine: Engine) -> None:
    text = "this fucking movie is great"
    score = engine.moderate([text])[0].scores["harassment"]
    strict = Engine(Policy(thresholds={"harassment": score * 0.9}))
    assert "harassment" in strict.moderate([text])[0].flagged_categories


def test_decisions_are_plain_json(engine: Engine) -> None:
    import json

    d = engine.moderate(["I will find you and hurt you", "hello"])[0]
    assert json.loads(json.dumps({"categories": d.categories, "scores": d.scores, "signals": d.signals,
                                  "spans": d.spans})) is not None


def test_decisions_record_profile_heads_and_policy(engine: Engine) -> None:
    d = engine.moderate(["hello"])[0]
    assert d.engine_version.startswith("ai-moderator-") and "+cascade+heads-" in d.engine_version
    assert Engine(Policy(engine="fast")).engine_version.replace("+fast+", "+cascade+") == d.engine_version
    assert d.policy_version.startswith("default@")
    assert Policy(version="v2").fingerprint != Policy(version="v2", allowlist=["x"]).fingerprint


def test_batch_equals_one_by_one(engine: Engine) -> None:
    texts = ["hello", "you are a worthless idiot", "send me nudes", "nice weather", "I will hurt you " * 80]
    batch = engine.moderate(texts)
    for text, d in zip(texts, batch):
        alone = engine.moderate([text])[0]
        assert d.flagged_categories == alone.flagged_categories
        assert np.allclose(list(d.scores.values()), list(alone.scores.values()), atol=1e-4)


def test_cascade_sends_only_suspicious_texts_to_the_accurate_stage() -> None:
    cascade = Engine(Policy(engine="cascade"))
    calm, harmful = cascade.moderate(["The meeting is moved to 3pm on Thursday.",
                                      "I will find you and slit your throat, you piece of garbage"])
    assert calm.signals["accurate_stage"] == 0.0 and harmful.signals["accurate_stage"] == 1.0
    accurate = Engine(Policy(engine="accurate")).moderate(["I will find you and slit your throat, you piece of garbage"])[0]
    assert harmful.scores == accurate.scores


def test_fast_profile_never_loads_the_transformer() -> None:
    featurizer = Featurizer()
    Engine(Policy(engine="fast"), featurizer=featurizer).moderate(["I will hurt you", "hello"])
    assert "minilm" not in vars(featurizer) and "jigsaw" not in vars(featurizer)


def test_policy_file_loads_and_rejects_bad_values(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("version: strict\nengine: accurate\nthresholds: {sexual: 0.2}\nallowlist: [Scunthorpe]\n")
    assert load_policy(good).threshold("sexual") == 0.2 and load_policy(good).engine == "accurate"
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: turbo\nthresholds: {sexual: 1.5, nonsense: 0.1}\n")
    with pytest.raises(ValidationError) as err:
        load_policy(bad)
    assert "nonsense" in str(err.value) and "engine" in str(err.value)
