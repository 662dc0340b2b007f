"""Alert rules (promtool) and dashboards: valid, tested, and using only metric names the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from kube import ROOT

CHART = ROOT / "charts" / "ai-moderator-operator"
RULES = CHART / "files" / "prometheus-rules.yaml"
PROMTOOL = shutil.which("promtool")
NOT_METRICS = {"sum", "rate", "by", "le", "histogram_quantile", "time", "on", "max", "count", "up", "job", "status",
               "route", "result", "phase", "category", "outcome", "state", "controller", "namespace", "stack", "pod"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (Debian package prometheus; .ci/run installs it)", pytrace=False)
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=ROOT / "tests" / "promtool")


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 rules found" in result.stdout


def test_rules_fire_when_they_should() -> None:
    result = promtool("test", "rules", "rules_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def used_metric_names() -> set[str]:
    exprs = [RULES.read_text()]
    for board in (CHART / "files" / "dashboards").glob("*.json"):
        exprs += [t["expr"] for p in json.loads(board.read_text())["panels"] for t in p["targets"]]
    names: set[str] = set()
    for expr in exprs:
        for word in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*[{\[)/<>*+-]|\s*$)", expr):
            if word not in NOT_METRICS and "_" in word:
                names.add(re.sub(r"_(bucket|sum|count)$", "", word))
    return names


def test_dashboards_cover_the_seed_panels() -> None:
    titles = {json.loads(b.read_text())["title"]: [p["title"] for p in json.loads(b.read_text())["panels"]]
              for b in (CHART / "files" / "dashboards").glob("*.json")}
    assert {"ai-moderator / Operator", "ai-moderator / API", "ai-moderator / Workers",
            "ai-moderator / Application health"} == set(titles)
    assert {"Request rate", "Latency", "Error rate", "Status codes"} <= set(titles["ai-moderator / API"])
    assert {"Active tasks", "Queue depth", "Task success rate", "Task latency"} <= set(titles["ai-moderator / Workers"])


def test_every_metric_used_is_exported_by_our_code() -> None:
    from prometheus_client import REGISTRY

    import ai_moderator_operator.metrics  # noqa: F401
    import ai_moderator_workload.metrics  # noqa: F401

    exported = {m.name for m in REGISTRY.collect()} | {f"{m.name}_total" for m in REGISTRY.collect()}
    scrape_time = {"celery_queue_length", "db_connection_pool_used", "db_connection_pool_size"}
    missing = used_metric_names() - exported - scrape_time
    assert not missing, missing
