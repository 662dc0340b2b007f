"""The Helm chart: same CRDs and RBAC as the repo, lints, renders, passes the
API server's dry run, and installs an operator that becomes Available."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from kube import ROOT, Kubectl, condition, k8s_bin_dir, wait_until

CHART = ROOT / "charts" / "ai-moderator-operator"
pytestmark = pytest.mark.cluster


def helm(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(k8s_bin_dir() / "helm"), *args] + (["--kubeconfig", str(kubeconfig)] if kubeconfig else [])
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_chart_crds_are_the_repository_crds() -> None:
    assert (CHART / "crds" / "moderationstacks.yaml").read_text() == (ROOT / "crds" / "moderationstacks.yaml").read_text()


def test_chart_rbac_is_the_documented_least_privilege_role() -> None:
    rendered = yaml.safe_load_all(helm("template", "x", str(CHART)).stdout)
    chart_role = next(d for d in rendered if d and d["kind"] == "ClusterRole")
    example = next(d for d in yaml.safe_load_all((ROOT / "examples" / "operator-rbac.yaml").read_text())
                   if d["kind"] == "ClusterRole")
    assert chart_role["rules"] == example["rules"]


def test_chart_lints_and_renders_every_option() -> None:
    helm("lint", str(CHART), "--strict")
    full = helm("template", "x", str(CHART), "--set", "replicas=2", "--set", "metrics.serviceMonitor.enabled=true",
                "--set", "prometheusRule.enabled=true", "--set", "watchNamespaces={a,b}").stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(full) if d]
    assert {"Deployment", "ServiceMonitor", "PrometheusRule", "KopfPeering", "ConfigMap"} <= set(kinds)
    deployment = next(d for d in yaml.safe_load_all(full) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=a" in args and "--peering=x-operator" in args
    bad = subprocess.run([str(k8s_bin_dir() / "helm"), "template", "x", str(CHART), "--set", "replicas=0"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "replicas" in bad.stderr


def test_rendered_chart_passes_server_dry_run(kubectl: Kubectl, namespace: str, crd: None) -> None:
    rendered = helm("template", "aimod", str(CHART), "--namespace", namespace, "--include-crds").stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "CustomResourceDefinition"]
    kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(docs))


def test_helm_install_brings_the_operator_up(kubectl: Kubectl, kubeconfig: Path, crd: None) -> None:
    namespace = "t-helm"
    try:
        helm("upgrade", "--install", "aimod", str(CHART), "--namespace", namespace, "--create-namespace",
             "--set", "dashboards.enabled=true", "--wait", "--timeout", "120s", kubeconfig=kubeconfig)
        deployment = wait_until("the operator Deployment to be Available", lambda: (
            d := kubectl.get("deployment", "aimod-operator", namespace)) and condition(d, "Available")
            and condition(d, "Available")["status"] == "True" and d, 60)
        assert deployment["status"]["readyReplicas"] == 1
        dashboards = kubectl.items("configmaps", namespace, "grafana_dashboard=1")
        assert len(dashboards) == 4
    finally:
        subprocess.run([str(k8s_bin_dir() / "helm"), "uninstall", "aimod", "--namespace", namespace,
                        "--kubeconfig", str(kubeconfig)], capture_output=True)
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
