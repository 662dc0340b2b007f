"""Helpers for ModerationStack end-to-end tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from kube import ROOT, Kubectl, condition, wait_until

EXAMPLE = yaml.safe_load((ROOT / "examples" / "moderationstack.yaml").read_text())


def example(namespace: str, name: str = "demo", **spec_changes: Any) -> dict[str, Any]:
    stack = copy.deepcopy(EXAMPLE)
    stack["metadata"] = {"name": name, "namespace": namespace}
    stack["spec"].update(spec_changes)
    return stack


def get_stack(kubectl: Kubectl, namespace: str, name: str = "demo") -> dict[str, Any] | None:
    return kubectl.get("moderationstack", name, namespace)


def wait_phase(kubectl: Kubectl, namespace: str, phase: str, name: str = "demo", timeout: float = 60,
               generation: bool = True) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        stack = get_stack(kubectl, namespace, name)
        status = (stack or {}).get("status") or {}
        current = not generation or status.get("observedGeneration") == stack["metadata"]["generation"]
        return stack if status.get("phase") == phase and current else None

    try:
        return wait_until(f"stack {namespace}/{name} to be {phase}", probe, timeout=timeout)
    except AssertionError as exc:
        stack = get_stack(kubectl, namespace, name)
        raise AssertionError(f"{exc}\nstatus: {yaml.safe_dump((stack or {}).get('status'))}") from None


def ready(kubectl: Kubectl, namespace: str, name: str = "demo", timeout: float = 60) -> dict[str, Any]:
    stack = wait_phase(kubectl, namespace, "Ready", name, timeout)
    assert condition(stack, "Ready")["status"] == "True"
    return stack
