"""Alert rules (promtool) and dashboards: valid, tested, and using only metric names the code exports."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from kube import ROOT
from metric_names import CHART, RULES, used_metric_names

PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (Debian package prometheus; .ci/run installs it)", pytrace=False)
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=ROOT / "tests" / "promtool")


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 rules found" in result.stdout


def test_rules_fire_when_they_should() -> None:
    result = promtool("test", "rules", "rules_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


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
