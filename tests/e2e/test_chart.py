"""The Helm chart: same CRDs and RBAC as the repo, lints, renders, passes the
API server's dry run, and installs an operator that becomes Available."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from kube import ROOT, Kubectl, condition, k8s_bin_dir, wait_until
from stacks import example, ready

CHART = ROOT / "charts" / "ai-moderator-operator"
pytestmark = pytest.mark.cluster
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}
CLUSTER_ONLY = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}


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


def rendered(*sets: str, namespace: str = "default", release: str = "x") -> list[dict]:
    args = [a for value in sets for a in ("--set", value)]
    return [d for d in yaml.safe_load_all(helm("template", release, str(CHART), "--namespace", namespace,
                                                *args).stdout) if d]


def test_with_watch_namespaces_the_operator_can_write_only_inside_them() -> None:
    docs = rendered("watchNamespaces={a,b}")
    cluster_rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert cluster_rules and not any(set(r["verbs"]) & WRITE_VERBS for r in cluster_rules), cluster_rules
    assert {p for r in cluster_rules for p in r["resources"]} == {"customresourcedefinitions"}, \
        "cluster-wide: only the reads that cannot be namespaced (no Secrets)"
    roles = {d["metadata"]["namespace"]: d["rules"] for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"a", "b"}
    everywhere = next(d for d in rendered() if d["kind"] == "ClusterRole")["rules"]
    for rule in everywhere:
        if not set(rule["resources"]) & CLUSTER_ONLY:
            assert rule in roles["a"] and rule in roles["b"], rule
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "x-operator", "namespace": "default"}]
               for b in bindings.values())


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


def test_the_operator_runs_a_stack_under_the_namespaced_role_alone(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, crd: None, operator, tmp_path: Path) -> None:
    """The chart's Role for one namespace is all this operator gets: it brings
    a stack to Ready, follows the Secret the stack references, and can neither
    read Secrets nor write anything in other namespaces."""
    release = f"r{namespace}"
    account = f"{release}-operator"
    rbac = [d for d in rendered(f"watchNamespaces={{{namespace}}}", namespace=namespace, release=release)
            if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    kubectl.apply(rbac)
    token = kubectl.run("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    restricted_config = tmp_path / "operator.kubeconfig"
    restricted_config.write_text(yaml.safe_dump(config))
    as_operator = Kubectl(kubeconfig=restricted_config, binary=k8s_bin_dir() / "kubectl")

    def can(*args: str) -> bool:
        return as_operator.run("auth", "can-i", *args, check=False).stdout.strip() == "yes"

    assert can("patch", "deployments", "-n", namespace) and can("create", "secrets", "-n", namespace)
    assert not can("list", "secrets", "--all-namespaces") and not can("get", "secrets", "-n", "default")
    assert not can("create", "deployments", "-n", "default")

    kubectl.run("create", "secret", "generic", "orders-db", "-n", namespace,
                "--from-literal=url=postgresql://moderator:first@db.example:5432/moderation")
    operator.stop()  # the suite's cluster-wide operator steps aside while this one runs
    restricted = type(operator)(restricted_config, tmp_path, ("--namespace", namespace))
    try:
        restricted.start()
        kubectl.apply(example(namespace, database={"external": {"urlSecretRef": {"name": "orders-db", "key": "url"}}}))
        ready(kubectl, namespace, timeout=90)
        before = kubectl.get("deployment", "demo-api", namespace)["spec"]["template"]["metadata"]["annotations"]
        rotated = kubectl.run("create", "secret", "generic", "orders-db", "-n", namespace, "--dry-run=client", "-o",
                              "yaml", "--from-literal=url=postgresql://moderator:new@db.example:5432/moderation")
        kubectl.apply(rotated.stdout)
        wait_until("the API to roll for the rotated Secret (watched by name, within the one-minute resync)",
                   lambda: kubectl.get("deployment", "demo-api", namespace)["spec"]["template"]["metadata"][
                       "annotations"] != before, 20)
        ready(kubectl, namespace, timeout=90)
        kubectl.run("delete", "mstack", "demo", "-n", namespace, "--timeout=60s")
        output = restricted.output()
        assert "Forbidden" not in output and " 403 " not in output, output[-3000:]
    finally:
        restricted.stop()
        operator.start()
        kubectl.run("delete", "clusterrolebinding,clusterrole", account, check=False)
