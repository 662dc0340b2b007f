"""The quality gate: what serves keeps serving until the candidate's numbers
on the golden set are within the tolerances; one Job per candidate."""

from __future__ import annotations

import copy
import json
from typing import Any

from ai_moderator_operator.api import QualityGateSpec
from ai_moderator_operator.naming import RETRY_QUALITY_GATE_ANNOTATION
from ai_moderator_operator.reconcile.quality_gate import verdict
from test_reconciler import STACK_KEY, add_stack, one_pass, settle
from world import NS, World

GATE = {"maxFlagRateChange": 5, "minRecall": 0.5}


def report(flag_rate: float, recall: float = 0.8, baseline: float | None = 0.2) -> dict[str, Any]:
    result: dict[str, Any] = {"examples": 200, "golden": "g1", "candidate": {
        "flagRate": flag_rate, "recall": recall, "precision": 0.9,
        "categories": {"violence": {"recall": recall, "precision": 0.9, "support": 40}}}}
    if baseline is not None:
        result["baseline"] = {"flagRate": baseline, "recall": 0.8, "precision": 0.9}
    return result


def test_verdict_names_every_tolerance_broken() -> None:
    gate = QualityGateSpec(maxFlagRateChange=5, minRecall=0.7, categories={"violence": {"minPrecision": 0.95}})
    assert verdict(report(0.22), gate, 0.2) == ["violence precision 90.0% below 95.0%"]
    failures = verdict(report(0.41, recall=0.6), gate, 0.2)
    assert failures[0] == "flag rate 20.0% -> 41.0% (+21.0 points; maxFlagRateChange 5)"
    assert "recall 60.0% below 70.0%" in failures
    assert verdict(report(0.22), QualityGateSpec(), None) == [], "no tolerance, nothing to break"


def gate_jobs(world: World) -> list[str]:
    return sorted(k[3] for k in world.kube.objects if k[1] == "Job" and "-gate-" in k[3])


def finish_gate(world: World, job: str, result: dict[str, Any]) -> None:
    world.finish_job(job, ok=True)
    world.kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"{job}-pod", "namespace": NS, "labels": {"batch.kubernetes.io/job-name": job}},
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": json.dumps(result)}}}]}})


def policy_served(world: World) -> str:
    return world.kube.objects[("v1", "ConfigMap", NS, "shop-policy")]["data"]["policy.yaml"]


def api_hash(world: World) -> str:
    api = world.kube.objects[("apps/v1", "Deployment", NS, "shop-api")]
    return api["spec"]["template"]["metadata"]["annotations"]["moderation.ai-moderator.io/config-hash"]


async def ready_gated_stack(world: World) -> dict[str, Any]:
    add_stack(world, qualityGate=GATE)
    status, _ = await one_pass(world)
    world.finish_job(status["migration"]["job"], ok=True)
    status, _ = await one_pass(world)
    assert status["phase"] == "Progressing" and status["qualityGate"]["phase"] == "Running"
    assert not [k for k in world.kube.objects if k[1] == "Deployment"], "nothing serves before the first gate"
    [job] = gate_jobs(world)
    finish_gate(world, job, report(0.2, baseline=None))
    status, _ = await one_pass(world)
    settle(world)
    status, _ = await one_pass(world)
    assert status["phase"] == "Ready" and status["qualityGate"]["passedFlagRate"] == 0.2
    return status


def edit_policy(world: World, **policy: Any) -> None:
    stack = world.kube.objects[STACK_KEY]
    stack["spec"] = {**copy.deepcopy(stack["spec"]), "policy": {**stack["spec"]["policy"], **policy}}
    stack["metadata"]["generation"] += 1


async def test_a_policy_that_doubles_the_flag_rate_is_held_while_the_old_one_serves(world: World) -> None:
    await ready_gated_stack(world)
    served, rolled = policy_served(world), api_hash(world)
    edit_policy(world, thresholds={"sexual": 0.1, "harassment": 0.1})
    status, _ = await one_pass(world)
    assert status["phase"] == "Progressing" and status["qualityGate"]["phase"] == "Running"
    assert policy_served(world) == served and api_hash(world) == rolled, "held while it is evaluated"
    job = gate_jobs(world)[-1]
    finish_gate(world, job, report(0.41))
    status, _ = await one_pass(world)
    gate = status["qualityGate"]
    assert status["phase"] == "Degraded" and gate["phase"] == "Failed"
    assert gate["flagRate"] == 0.41 and gate["baselineFlagRate"] == 0.2, "against what serves, as measured then"
    assert "flag rate 20.0% -> 41.0%" in gate["message"] and "previous version keeps serving" in \
        status["conditions"][0]["message"]
    assert policy_served(world) == served and api_hash(world) == rolled
    jobs = gate_jobs(world)
    for _ in range(3):
        await one_pass(world)
    assert gate_jobs(world) == jobs, "a failed candidate is not evaluated again by itself"

    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {RETRY_QUALITY_GATE_ANNOTATION: "1"}
    await one_pass(world)
    assert len(gate_jobs(world)) == len(jobs) + 1, "the retry annotation runs it once more"


async def test_a_harmless_policy_change_rolls_out_after_its_gate(world: World) -> None:
    await ready_gated_stack(world)
    served, rolled = policy_served(world), api_hash(world)
    edit_policy(world, allowlist=["kill the process", "shoot the messenger"])
    await one_pass(world)
    finish_gate(world, gate_jobs(world)[-1], report(0.19))
    status, _ = await one_pass(world)
    assert status["qualityGate"]["phase"] == "Passed"
    assert "shoot the messenger" in policy_served(world) and policy_served(world) != served
    assert api_hash(world) != rolled, "the pods roll for the new policy"
    jobs = gate_jobs(world)
    settle(world)
    status, _ = await one_pass(world)
    assert status["phase"] == "Ready"
    writes = len(world.kube.writes)
    await one_pass(world)
    assert gate_jobs(world) == jobs and world.kube.writes[writes:] == [], "passed: no new Job, no write"


async def test_turning_the_gate_off_drops_its_status_and_its_series(world: World) -> None:
    from prometheus_client import REGISTRY

    await ready_gated_stack(world)
    series = {"namespace": NS, "stack": "shop"}
    assert REGISTRY.get_sample_value("ai_moderator_quality_gate_passed", series) == 1
    stack = world.kube.objects[STACK_KEY]
    stack["spec"] = {k: v for k, v in stack["spec"].items() if k != "qualityGate"}
    stack["metadata"]["generation"] += 1
    status, _ = await one_pass(world)
    assert "qualityGate" not in status, "no stale gate in status"
    assert REGISTRY.get_sample_value("ai_moderator_quality_gate_passed", series) is None, "no alert for a gate gone"
