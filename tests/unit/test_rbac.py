"""The shipped ClusterRole grants every verb the operator's client uses on every kind it manages."""

from __future__ import annotations

import yaml

from ai_moderator_operator.resources import TABLE, WATCHED
from kube import ROOT


def rules() -> list[dict]:
    docs = list(yaml.safe_load_all((ROOT / "examples" / "operator-rbac.yaml").read_text()))
    return next(d for d in docs if d["kind"] == "ClusterRole")["rules"]


def allowed(group: str, plural: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules():
        if group in rule["apiGroups"] and plural in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_every_child_kind_can_be_watched_applied_and_pruned() -> None:
    for resource in TABLE:
        if resource.plural in ("moderationstacks", "customresourcedefinitions", "events", "pods"):
            continue
        assert {"get", "list", "watch", "create", "patch", "delete"} <= allowed(resource.group, resource.plural), \
            resource.plural
    for resource in WATCHED:
        assert {"list", "watch"} <= allowed(resource.group, resource.plural), resource.plural


def test_stacks_and_their_status() -> None:
    assert {"get", "list", "watch", "patch"} <= allowed("moderation.ai-moderator.io", "moderationstacks")
    assert "patch" in allowed("moderation.ai-moderator.io", "moderationstacks/status")
    assert "delete" not in allowed("moderation.ai-moderator.io", "moderationstacks")
    assert allowed("apiextensions.k8s.io", "customresourcedefinitions") == {"get", "list", "watch"}
