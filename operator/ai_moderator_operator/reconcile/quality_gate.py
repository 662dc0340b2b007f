"""The quality gate: a new version or policy rolls out only after an
evaluation Job of the new image with the new policy on the golden set came
out within the stack's tolerances. As with migrations, there is one Job per
candidate (image, policy, golden set) and retry token -- its name is the
idempotency key across operator restarts -- and a failed candidate stays
failed until the spec or the retry annotation changes. Meanwhile the version
and policy that serve keep serving."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..api import CategoryQuality, ConfigMapKeyRef, QualityGateSpec, QualityGateStatus, SecretKeyRef
from ..builders import Context, quality_gate_job, spec_policy_yaml
from ..metrics import (
    GATE_SERIES,
    QUALITY_GATE_BASELINE_FLAG_RATE,
    QUALITY_GATE_FLAG_RATE,
    QUALITY_GATE_PASSED,
    forget_stack,
)
from .applier import Applier, Retry
from .jobs import JobOutcomes
from .secrets import decode

IMAGE_DEV_SET = "image-dev-set"


@dataclass
class GateOutcome:
    status: QualityGateStatus | None
    passed: bool  # the candidate may roll out
    running: bool = False
    failed: bool = False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


async def golden_digest(applier: Applier, ctx: Context) -> str:
    """What the golden set holds now (a changed set is a new candidate)."""
    gate = ctx.spec.qualityGate
    golden = gate.golden if gate else None
    if golden is None:
        return IMAGE_DEV_SET
    ref: ConfigMapKeyRef | SecretKeyRef | None = golden.configMapKeyRef or golden.secretKeyRef
    assert ref is not None
    kind = "ConfigMap" if golden.configMapKeyRef is not None else "Secret"
    found = await applier.read("v1", kind, ctx.namespace, ref.name)
    data = None if found is None else dict(found.get("data") or {}) if kind == "ConfigMap" else decode(found)
    if data is None:
        raise Retry(f"{kind} {ref.name!r} referenced by spec.qualityGate.golden does not exist in namespace "
                    f"{ctx.namespace!r}", "GoldenSetNotFound")
    if ref.key not in data:
        raise Retry(f"{kind} {ref.name!r} has no key {ref.key!r} (referenced by spec.qualityGate.golden)",
                    "GoldenSetNotFound")
    return _digest(data[ref.key])


def candidate_of(image: str, policy_yaml: str, golden: str) -> str:
    return f"{image} policy@{_digest(policy_yaml)} golden@{golden}"


async def gate_candidate(applier: Applier, ctx: Context) -> str | None:
    """The candidate the spec asks for; None without a gate, whose series then go
    (no alert may fire for a gate that was turned off)."""
    if ctx.spec.qualityGate is None:
        forget_stack(ctx.namespace, ctx.name, GATE_SERIES)
        return None
    return candidate_of(ctx.image(ctx.spec.version), spec_policy_yaml(ctx), await golden_digest(applier, ctx))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def verdict(report: dict[str, Any], gate: QualityGateSpec, baseline_flag_rate: float | None) -> list[str]:
    """What the candidate's numbers break of the tolerances (nothing: it passes)."""
    candidate = report["candidate"]
    failures = []
    rate = candidate.get("flagRate")
    if gate.maxFlagRateChange is not None and rate is not None and baseline_flag_rate is not None:
        change = (rate - baseline_flag_rate) * 100
        if abs(change) > gate.maxFlagRateChange:
            failures.append(f"flag rate {_pct(baseline_flag_rate)} -> {_pct(rate)} ({change:+.1f} points; "
                            f"maxFlagRateChange {gate.maxFlagRateChange:g})")
    checks: list[tuple[str, float | None, float | None]] = [
        ("recall", candidate.get("recall"), gate.minRecall),
        ("precision", candidate.get("precision"), gate.minPrecision)]
    for category, tolerance in (gate.categories or {}).items():
        measured = candidate.get("categories", {}).get(category, {})
        checks += [(f"{category} recall", measured.get("recall"), tolerance.minRecall),
                   (f"{category} precision", measured.get("precision"), tolerance.minPrecision)]
    for name, value, floor in checks:
        if floor is not None and (value is None or value < floor):
            failures.append(f"{name} {_pct(value)} below {_pct(floor)}")
    return failures


def _measured(report: dict[str, Any], baseline_flag_rate: float | None) -> dict[str, Any]:
    candidate = report["candidate"]
    return {"examples": report.get("examples"), "golden": report.get("golden"),
            "flagRate": candidate.get("flagRate"), "baselineFlagRate": baseline_flag_rate,
            "recall": candidate.get("recall"), "precision": candidate.get("precision"),
            "categories": {c: CategoryQuality(**q) for c, q in (candidate.get("categories") or {}).items()}}


async def quality_gate(applier: Applier, outcomes: JobOutcomes, ctx: Context, candidate: str,
                       previous: QualityGateStatus | None, retry: str, serving_policy: str | None) -> GateOutcome:
    """Run or read the evaluation of a candidate that has not passed yet."""
    gate = ctx.spec.qualityGate
    assert gate is not None
    outcome = await _evaluate(applier, outcomes, ctx, gate, candidate, previous, retry, serving_policy)
    if outcome.status is not None and outcome.status.phase in ("Passed", "Failed"):
        labels = (ctx.namespace, ctx.name)
        QUALITY_GATE_PASSED.labels(*labels).set(outcome.passed)
        for gauge, value in ((QUALITY_GATE_FLAG_RATE, outcome.status.flagRate),
                             (QUALITY_GATE_BASELINE_FLAG_RATE, outcome.status.baselineFlagRate)):
            if value is not None:
                gauge.labels(*labels).set(value)
    return outcome


async def _evaluate(applier: Applier, outcomes: JobOutcomes, ctx: Context, gate: QualityGateSpec, candidate: str,
                    previous: QualityGateStatus | None, retry: str, serving_policy: str | None) -> GateOutcome:
    version = ctx.spec.version
    name = ctx.names.quality_gate_job(candidate, retry)
    job = await applier.ensure_once(quality_gate_job(ctx, version, name, spec_policy_yaml(ctx), serving_policy))
    state = await outcomes.of(job)
    kept = {} if previous is None else previous.model_dump(include={"passed", "passedFlagRate", "passedGolden"})
    status = QualityGateStatus(candidate=candidate, job=name, **kept)
    if state.phase == "Running":
        status.phase = "Running"
        return GateOutcome(status, passed=False, running=True)
    if state.phase == "Failed":
        status.phase, status.message = "Failed", f"the evaluation Job failed: {state.message}"
        return GateOutcome(status, passed=False, failed=True)
    try:
        report = json.loads(await outcomes.report(job))
        report["candidate"]
    except (ValueError, KeyError, TypeError):
        status.phase, status.message = "Failed", f"the evaluation Job {name} left no report"
        return GateOutcome(status, passed=False, failed=True)
    # What serves now, measured when it passed on this same golden set; else
    # the serving policy measured beside the candidate by the Job.
    if previous is not None and previous.passedGolden == report.get("golden") and previous.passedFlagRate is not None:
        baseline: float | None = previous.passedFlagRate
    else:
        baseline = (report.get("baseline") or {}).get("flagRate")
    status = status.model_copy(update=_measured(report, baseline))
    failures = verdict(report, gate, baseline)
    if failures:
        status.phase, status.message = "Failed", "; ".join(failures)
        return GateOutcome(status, passed=False, failed=True)
    status.phase = "Passed"
    status.passed, status.passedFlagRate, status.passedGolden = candidate, status.flagRate, status.golden
    return GateOutcome(status, passed=True)
