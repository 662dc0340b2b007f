"""Cross-field rules are written once and hold in both places: the CRD's CEL
(the API server refuses at admission, proven end to end in tests/e2e) and
parse_spec (what the operator accepts), with the same message."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import ValidationError

from ai_moderator_operator.api import SHADOW_SHARES_SCORES, Strict, parse_spec
from ai_moderator_operator.crdgen import CRD_FILE

BAD = {
    "ingress.host is required when ingress.enabled is true": {"api": {"ingress": {"enabled": True}}},
    "backup.retention needs count or maxAgeDays": {"backup": {"schedule": "0 3 * * *", "retention": {}}},
    "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas":
        {"worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
    "database: set exactly one of managed or external":
        {"database": {"managed": {}, "external": {"urlSecretRef": {"name": "db", "key": "url"}}}},
    "backup.storage: set pvc or s3, not both": {"backup": {"schedule": "0 3 * * *", "storage": {
        "pvc": {}, "s3": {"bucket": "bkt", "credentialsSecret": {"name": "s3"}}}}},
    "qualityGate.golden: set exactly one of configMapKeyRef or secretKeyRef": {"qualityGate": {"golden": {}}},
    SHADOW_SHARES_SCORES: {"shadowPolicy": {"allowlist": ["x"]}},
    "resources.limits must be at least resources.requests (cpu, memory, ephemeral-storage)":
        {"api": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}},
}


def every_rule() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def walk(cls: type[Strict]) -> None:
        seen.extend((r.cel, r.message) for r in cls.rules if (r.cel, r.message) not in seen)
        for sub in cls.__subclasses__():
            walk(sub)
    walk(Strict)
    return seen


def crd_rules() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            found.extend((v["rule"], v["message"]) for v in node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(yaml.safe_load(CRD_FILE.read_text()))
    return found


def test_every_python_rule_is_in_the_crd_and_every_crd_rule_with_a_message_here() -> None:
    python, crd = every_rule(), crd_rules()
    assert set(python) <= set(crd)
    assert {m for _, m in python} >= set(BAD), "each rule has a refused example below"


@pytest.mark.parametrize("message", sorted(BAD))
def test_parse_spec_refuses_what_the_api_server_refuses(message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_spec({"version": "1.0.0", **BAD[message]})


def test_limits_equal_to_requests_in_other_units_are_accepted() -> None:
    spec = parse_spec({"version": "1.0.0", "api": {"resources": {
        "requests": {"cpu": "1000m", "memory": "1024Mi"},
        "limits": {"cpu": 1, "memory": "1Gi", "ephemeral-storage": "1Gi"}}}})
    assert spec.api.resources is not None
