"""A real Prometheus server scrapes the running operator and the running API;
every metric name the dashboards and alert rules use must be in what it got."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kube import Kubectl, wait_until
from metric_names import used_metric_names
from servers import api_server, free_port
from stacks import example, ready

pytestmark = pytest.mark.cluster
# Set only once a quality-gate Job has reported numbers, which kwok's fake pods
# cannot do: tests/realpods/test_stack.py reads them from the operator pod.
REAL_GATE_METRICS = {"ai_moderator_quality_gate_passed", "ai_moderator_quality_gate_flag_rate",
                     "ai_moderator_quality_gate_baseline_flag_rate"}


def test_prometheus_scrapes_every_metric_the_dashboards_and_alerts_use(
        kubectl: Kubectl, namespace: str, operator, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is not installed (Debian package prometheus; .ci/run installs it)", pytrace=False)
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    # A backup run, as the CronJob would start it, so the backup metrics exist.
    kubectl.run("create", "job", "--from=cronjob/demo-backup", "demo-backup-manual", "-n", namespace)
    wait_until("the stack to record the backup", lambda: (
        (kubectl.get("mstack", "demo", namespace).get("status") or {}).get("backup", {}).get("lastSuccessTime")), 30)

    # A shadow policy, so the shadow agreement counters exist.
    (tmp_path / "shadow.yaml").write_text("version: trial\ndefault_threshold: 0.2\n")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/api.sqlite3", "REDIS_URL": "", "ADMIN_API_KEY": "prom-key",
           "RATE_LIMIT_PER_MINUTE": "0", "SHADOW_POLICY_FILE": str(tmp_path / "shadow.yaml")}
    with api_server(env, tmp_path) as base:
        auth = {"Authorization": "Bearer prom-key"}
        httpx.post(f"{base}/v1/moderations", json={"input": ["hello", "I will kill you"]}, headers=auth)
        submitted = httpx.post(f"{base}/api/v1/content", json={"text": "send me nudes"}, headers=auth).json()
        wait_until("the in-process task", lambda: httpx.get(
            f"{base}/api/v1/content/{submitted['id']}", headers=auth).json()["status"] == "done", 20)

        port = free_port()
        config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [
            {"job_name": "ai-moderator-operator", "static_configs": [{"targets": [f"127.0.0.1:{operator.metrics_port}"]}]},
            {"job_name": "ai-moderator-api", "static_configs": [{"targets": [base.removeprefix("http://")]}]},
        ]}
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        server = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
        try:
            def scraped() -> set[str] | None:
                try:
                    up = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}).json()
                    if sum(float(r["value"][1]) for r in up["data"]["result"]) < 2:
                        return None
                    return set(httpx.get(f"http://127.0.0.1:{port}/api/v1/label/__name__/values").json()["data"])
                except (httpx.HTTPError, KeyError, ValueError):
                    return None

            time.sleep(2)
            names = wait_until("Prometheus to scrape both targets", scraped, 60)
        finally:
            server.terminate()
            server.wait(timeout=30)
    expected = used_metric_names() - REAL_GATE_METRICS
    histograms = {n for n in expected if f"{n}_bucket" in names}
    missing = expected - names - histograms
    assert not missing, f"used in dashboards/alerts but not scraped: {sorted(missing)}"
