"""Operator benchmark: apply-to-Ready time for 1 and 50 stacks, operator RSS
and CPU, API requests during convergence and while idle — against a
baseline in the same run: the same objects rendered by the builders and
applied directly with `kubectl apply --server-side`, timed to the same
readiness (Deployments and StatefulSets ready, migration Job complete)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ai_moderator_operator.api import parse_spec
from ai_moderator_operator.builders import Context, app_secret, desired_children, migration_job
from tests.kube import ROOT, Kubectl, k8s_bin_dir
from tests.servers import CLI, free_port

EXAMPLE = yaml.safe_load((ROOT / "examples" / "moderationstack.yaml").read_text())
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def apiserver_requests(kubectl: Kubectl) -> dict[str, float]:
    """apiserver_request_total summed by verb (every client)."""
    totals: dict[str, float] = {}
    for line in kubectl.run("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels, value = line.rsplit(" ", 1)
            verb = labels.split('verb="', 1)[1].split('"', 1)[0]
            totals[verb] = totals.get(verb, 0.0) + float(value)
    return totals


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(after.get(k, 0) - before.get(k, 0)) for k in sorted(set(after) | set(before))
            if after.get(k, 0) - before.get(k, 0)}


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def stack(namespace: str, name: str = "demo") -> dict[str, Any]:
    return {**EXAMPLE, "metadata": {"name": name, "namespace": namespace}}


def baseline_manifests(namespace: str) -> list[dict[str, Any]]:
    """What the operator would create, rendered by its builders, for direct apply."""
    spec = parse_spec(EXAMPLE["spec"])
    ctx = Context("demo", namespace, "", spec, spec.version, "bench", False, False)
    data = {"SECRET_KEY": secrets.token_urlsafe(32), "ADMIN_API_KEY": secrets.token_urlsafe(32),
            "POSTGRES_PASSWORD": "pw", "DATABASE_URL": "postgresql://moderator:pw@demo-postgres:5432/moderation_db",
            "REDIS_PASSWORD": "pw", "REDIS_ADDRESS": "demo-redis:6379", "REDIS_URL": "redis://:pw@demo-redis:6379/0"}
    objects = [app_secret(ctx, data), migration_job(ctx, spec.version), *desired_children(ctx)]
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)  # no owner: applied without the CR
    return objects


def baseline_ready(kubectl: Kubectl, namespaces: set[str]) -> bool:
    items = json.loads(kubectl.run("get", "deploy,sts,job", "-A", "-l", "app.kubernetes.io/instance=demo",
                                   "-o", "json").stdout)["items"]
    done: dict[str, int] = {}
    for obj in items:
        ns = obj["metadata"]["namespace"]
        if ns not in namespaces:
            continue
        status = obj.get("status") or {}
        if obj["kind"] == "Job":
            ok = int(status.get("succeeded", 0)) >= 1
        else:
            ok = int(status.get("readyReplicas", 0)) >= int(obj["spec"].get("replicas", 1)) and (
                obj["kind"] != "Deployment" or int(status.get("updatedReplicas", 0)) >= int(obj["spec"]["replicas"]))
        done[ns] = done.get(ns, 0) + (1 if ok else 0)
    return all(done.get(ns, 0) >= 5 for ns in namespaces)  # api, worker, postgres, redis, migration


def operator_ready(kubectl: Kubectl, namespaces: set[str]) -> bool:
    items = json.loads(kubectl.run("get", "mstack", "-A", "-o", "json").stdout)["items"]
    ready = {s["metadata"]["namespace"] for s in items if (s.get("status") or {}).get("phase") == "Ready"}
    return namespaces <= ready


def timed(kubectl: Kubectl, check: Any, namespaces: set[str], timeout: float = 600) -> float:
    started = time.monotonic()
    while not check(kubectl, namespaces):
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not ready after {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - started


def apply_all(kubectl: Kubectl, objects: list[dict[str, Any]], server_side: bool) -> None:
    text = yaml.safe_dump_all(objects)
    args = ["apply", "-f", "-"] + (["--server-side", "--field-manager", "baseline"] if server_side else [])
    kubectl.run(*args, stdin=text)


def make_namespaces(kubectl: Kubectl, names: list[str]) -> None:
    """Namespaces ready for pods: their default ServiceAccount exists (pods
    created before it are refused and their controllers back off for long)."""
    kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump_all(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]))
    wanted = set(names)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        accounts = json.loads(kubectl.run("get", "serviceaccounts", "-A", "--field-selector",
                                          "metadata.name=default", "-o", "json").stdout)["items"]
        if wanted <= {a["metadata"]["namespace"] for a in accounts}:
            return
        time.sleep(0.2)
    raise SystemExit("default ServiceAccounts did not appear")


@dataclass
class Run:
    stacks: int
    baseline_s: float
    operator_s: float
    baseline_requests: dict[str, int]
    operator_requests: dict[str, int]

    @property
    def ratio(self) -> float:
        return self.operator_s / self.baseline_s


def run(out_dir: Path, idle_seconds: int = 60) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(ROOT / "hack/cluster-up.sh")], check=True)
    kubeconfig = ROOT / ".cluster" / "kubeconfig"
    kubectl = Kubectl(kubeconfig, k8s_bin_dir() / "kubectl")
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl.run("wait", "--for=condition=Established", "crd/moderationstacks.moderation.ai-moderator.io")
    tag = secrets.token_hex(3)
    metrics_port = free_port()
    log = (out_dir / "operator.log").open("w")
    operator = subprocess.Popen([*CLI, "operator", "--metrics-port", str(metrics_port), "--liveness", ""],
                                env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(3)
    runs: list[Run] = []
    try:
        for count in (1, 50):
            base_ns = [f"bb-{tag}-{count}-{i}" for i in range(count)]
            op_ns = [f"bo-{tag}-{count}-{i}" for i in range(count)]
            make_namespaces(kubectl, base_ns + op_ns)
            before = apiserver_requests(kubectl)
            apply_all(kubectl, [o for ns in base_ns for o in baseline_manifests(ns)], server_side=True)
            baseline_s = timed(kubectl, baseline_ready, set(base_ns))
            baseline_requests = delta(apiserver_requests(kubectl), before)
            before = apiserver_requests(kubectl)
            apply_all(kubectl, [stack(ns) for ns in op_ns], server_side=False)
            operator_s = timed(kubectl, operator_ready, set(op_ns))
            runs.append(Run(count, baseline_s, operator_s, baseline_requests,
                            delta(apiserver_requests(kubectl), before)))
        time.sleep(5)  # let status writes and rollouts settle
        own_before = _own_writes(metrics_port)
        before = apiserver_requests(kubectl)
        cpu_before = proc_stats(operator.pid)[1]
        time.sleep(idle_seconds)
        idle_all = delta(apiserver_requests(kubectl), before)
        idle_own_writes = _own_writes(metrics_port) - own_before
        rss, cpu = proc_stats(operator.pid)
        idle_cpu = cpu - cpu_before
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        for ns in [n for n in json.loads(kubectl.run("get", "ns", "-o", "json").stdout)["items"]
                   if n["metadata"]["name"].startswith(f"bb-{tag}") or n["metadata"]["name"].startswith(f"bo-{tag}")]:
            kubectl.run("delete", "ns", ns["metadata"]["name"], "--wait=false", check=False)
    result = {
        "runs": [{**r.__dict__, "ratio": round(r.ratio, 2)} for r in runs],
        "operator_rss_mib_with_50_stacks": round(rss, 1),
        "operator_cpu_seconds_total": round(cpu, 2),
        "idle_seconds": idle_seconds,
        "idle_operator_cpu_seconds": round(idle_cpu, 2),
        "idle_operator_writes": idle_own_writes,
        "idle_apiserver_requests_all_clients": idle_all,
    }
    (out_dir / "operator.json").write_text(json.dumps(result, indent=2))
    return result


def _own_writes(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ai_moderator_operator_kube_requests_total{")
               and any(f'verb="{v}"' in line for v in WRITE_VERBS))


def table(result: dict[str, Any]) -> str:
    lines = ["| stacks | baseline (kubectl apply --server-side) s | operator s | operator/baseline | "
             "API requests baseline | API requests operator |", "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['stacks']} | {r['baseline_s']:.2f} | {r['operator_s']:.2f} | {r['ratio']} | "
                     f"{r['baseline_requests']} | {r['operator_requests']} |")
    lines.append(f"operator RSS with 50 stacks: {result['operator_rss_mib_with_50_stacks']} MiB; "
                 f"CPU seconds total: {result['operator_cpu_seconds_total']}")
    lines.append(f"idle {result['idle_seconds']} s: operator writes {result['idle_operator_writes']:.0f}, "
                 f"operator CPU {result['idle_operator_cpu_seconds']} s, all apiserver requests "
                 f"{result['idle_apiserver_requests_all_clients']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(Path("bench-results"), int(sys.argv[1]) if len(sys.argv) > 1 else 60)))
