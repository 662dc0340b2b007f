"""The Argo CD health check, executed by the real Lua 5.1 interpreter."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from kube import ROOT

HEALTH = ROOT / "deploy" / "argocd" / "health.lua"
LUA = shutil.which("lua5.1")


def lua_literal(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def health(obj: dict[str, Any]) -> tuple[str, str]:
    if LUA is None:
        pytest.fail("lua5.1 is not installed (Debian package lua5.1; .ci/run installs it)", pytrace=False)
    script = (f"obj = {lua_literal(obj)}\nlocal function check()\n{HEALTH.read_text()}\nend\n"
              "local hs = check()\nio.write(hs.status, '\\n', hs.message or '')\n")
    out = subprocess.run([LUA, "-"], input=script, capture_output=True, text=True, check=True).stdout
    status, _, message = out.partition("\n")
    return status, message


def stack(phase: str | None, generation: int = 2, observed: int = 2, message: str = "msg") -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "demo", "generation": generation}}
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": observed,
                         "conditions": [{"type": "Ready", "status": "True" if phase == "Ready" else "False",
                                         "message": message}]}
    return obj


@pytest.mark.parametrize(("phase", "expected"), [
    ("Ready", "Healthy"), ("Migrating", "Progressing"), ("Progressing", "Progressing"), ("Pending", "Progressing"),
    ("Degraded", "Degraded"), ("Paused", "Suspended"), ("Deleting", "Progressing"),
])
def test_phase_maps_to_argocd_health(phase: str, expected: str) -> None:
    assert health(stack(phase, message=f"{phase} here")) == (expected, f"{phase} here")


def test_stale_observed_generation_is_progressing() -> None:
    status, message = health(stack("Ready", generation=3, observed=2))
    assert status == "Progressing" and "generation 3" in message


def test_no_status_yet_is_progressing() -> None:
    assert health(stack(None))[0] == "Progressing"


def test_argocd_cm_snippet_embeds_the_same_script() -> None:
    cm = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    embedded = cm["data"]["resource.customizations.health.moderation.ai-moderator.io_ModerationStack"]
    assert embedded.strip() == HEALTH.read_text().strip()
