"""Operator benchmark: apply-to-Ready time for 1, 50 and 200 stacks, operator
RSS and CPU, API requests during convergence and while idle, against a
baseline in the same run: the same objects rendered by the builders and
applied with `kubectl apply --server-side` the way a careful person would
(Secret, data services and migration Job; wait for the migration; then the
app), timed to the same readiness. Every measurement starts from a quiet
cluster, and baseline and operator alternate; medians and ranges are reported."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from tests.kube import ROOT, Kubectl, k8s_bin_dir
from tests.servers import CLI, free_port

from ai_moderator_operator.api import parse_spec
from ai_moderator_operator.builders import Context, app_secret, desired_children, migration_job

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


def baseline_phases(namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a careful person applies by hand, rendered by the operator's own
    builders: first the Secret, the data services and the migration Job; then,
    once the migration has succeeded, the app."""
    spec = parse_spec(EXAMPLE["spec"])
    before = Context("demo", namespace, "", spec, None, "bench", False, False)
    data = {"SECRET_KEY": secrets.token_urlsafe(32), "ADMIN_API_KEY": secrets.token_urlsafe(32),
            "POSTGRES_PASSWORD": "pw", "DATABASE_URL": "postgresql://moderator:pw@demo-postgres:5432/moderation_db",
            "REDIS_PASSWORD": "pw", "REDIS_ADDRESS": "demo-redis:6379", "REDIS_URL": "redis://:pw@demo-redis:6379/0"}
    first = [app_secret(before, data), migration_job(before, spec.version), *desired_children(before)]
    names = {(o["kind"], o["metadata"]["name"]) for o in first}
    second = [o for o in desired_children(replace(before, rolled_out_version=spec.version))
              if (o["kind"], o["metadata"]["name"]) not in names]
    for obj in first + second:
        obj["metadata"].pop("ownerReferences", None)  # no owner: applied without the CR
    return first, second


def _items(kubectl: Kubectl, kinds: str, namespaces: set[str]) -> list[dict[str, Any]]:
    items = json.loads(kubectl.run("get", kinds, "-A", "-l", "app.kubernetes.io/instance=demo",
                                   "-o", "json").stdout)["items"]
    return [o for o in items if o["metadata"]["namespace"] in namespaces]


def migrated(kubectl: Kubectl, namespaces: set[str]) -> bool:
    done = {j["metadata"]["namespace"] for j in _items(kubectl, "job", namespaces)
            if int((j.get("status") or {}).get("succeeded", 0)) >= 1}
    return namespaces <= done


def baseline_ready(kubectl: Kubectl, namespaces: set[str]) -> bool:
    done: dict[str, int] = {}
    for obj in _items(kubectl, "deploy,sts", namespaces):
        status, replicas = obj.get("status") or {}, int(obj["spec"].get("replicas", 1))
        ok = int(status.get("readyReplicas", 0)) >= replicas and (
            obj["kind"] != "Deployment" or int(status.get("updatedReplicas", 0)) >= replicas)
        done[obj["metadata"]["namespace"]] = done.get(obj["metadata"]["namespace"], 0) + ok
    return all(done.get(ns, 0) >= 4 for ns in namespaces)  # api, worker, postgres, redis


def operator_ready(kubectl: Kubectl, namespaces: set[str]) -> bool:
    items = json.loads(kubectl.run("get", "mstack", "-A", "-o", "json").stdout)["items"]
    ready = {s["metadata"]["namespace"] for s in items if (s.get("status") or {}).get("phase") == "Ready"}
    return namespaces <= ready


def wait(kubectl: Kubectl, check: Any, namespaces: set[str], timeout: float = 900) -> None:
    started = time.monotonic()
    while not check(kubectl, namespaces):
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{check.__name__}: not there after {timeout}s")
        time.sleep(0.2)


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


def quiet(kubectl: Kubectl, prefix: str, timeout: float = 900) -> None:
    """Delete this benchmark's namespaces and wait until they are gone, so the
    next measurement starts from an idle cluster."""
    def ours() -> list[str]:
        return [n["metadata"]["name"] for n in json.loads(kubectl.run("get", "ns", "-o", "json").stdout)["items"]
                if n["metadata"]["name"].startswith(prefix)]
    for name in ours():
        kubectl.run("delete", "ns", name, "--wait=false", check=False)
    deadline = time.monotonic() + timeout
    while ours():
        if time.monotonic() > deadline:
            raise SystemExit(f"namespaces {prefix}* not gone after {timeout}s")
        time.sleep(1)
    time.sleep(2)


def measure_baseline(kubectl: Kubectl, namespaces: list[str]) -> tuple[float, dict[str, int]]:
    phases = [baseline_phases(ns) for ns in namespaces]
    wanted = set(namespaces)
    before = apiserver_requests(kubectl)
    started = time.monotonic()
    apply_all(kubectl, [o for first, _ in phases for o in first], server_side=True)
    wait(kubectl, migrated, wanted)
    apply_all(kubectl, [o for _, second in phases for o in second], server_side=True)
    wait(kubectl, baseline_ready, wanted)
    return time.monotonic() - started, delta(apiserver_requests(kubectl), before)


def measure_operator(kubectl: Kubectl, namespaces: list[str]) -> tuple[float, dict[str, int]]:
    before = apiserver_requests(kubectl)
    started = time.monotonic()
    apply_all(kubectl, [stack(ns) for ns in namespaces], server_side=False)
    wait(kubectl, operator_ready, set(namespaces))
    return time.monotonic() - started, delta(apiserver_requests(kubectl), before)


@dataclass
class Series:
    stacks: int
    baseline_s: list[float]
    operator_s: list[float]
    baseline_requests: dict[str, int]
    operator_requests: dict[str, int]

    def summary(self) -> dict[str, Any]:
        base, op = statistics.median(self.baseline_s), statistics.median(self.operator_s)
        return {"stacks": self.stacks, "repeats": len(self.operator_s),
                "baseline_median_s": round(base, 2), "baseline_range_s": [round(min(self.baseline_s), 2),
                                                                          round(max(self.baseline_s), 2)],
                "operator_median_s": round(op, 2), "operator_range_s": [round(min(self.operator_s), 2),
                                                                        round(max(self.operator_s), 2)],
                "ratio_of_medians": round(op / base, 2),
                "baseline_requests_last": self.baseline_requests, "operator_requests_last": self.operator_requests}


def run(out_dir: Path, idle_seconds: int = 60, counts: tuple[int, ...] = (1, 50, 200), repeats: int = 3
        ) -> dict[str, Any]:
    """Each count is measured `repeats` times, baseline and operator
    interleaved, each time from a quiet cluster."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(ROOT / "hack/cluster-up.sh")], check=True, env={**os.environ, "REAL": "0"})
    kubeconfig = ROOT / ".cluster" / "kubeconfig"
    kubectl = Kubectl(kubeconfig, k8s_bin_dir() / "kubectl")
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl.run("wait", "--for=condition=Established", "crd/moderationstacks.moderation.ai-moderator.io")
    prefix = f"b{secrets.token_hex(3)}-"
    metrics_port = free_port()
    log = (out_dir / "operator.log").open("w")
    operator = subprocess.Popen([*CLI, "operator", "--metrics-port", str(metrics_port), "--liveness", ""],
                                env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(3)
    series: list[Series] = []
    rss_by_count: dict[int, float] = {}
    try:
        for count in counts:
            current = Series(count, [], [], {}, {})
            for rep in range(repeats):
                for mode in ("baseline", "operator") if rep % 2 == 0 else ("operator", "baseline"):
                    names = [f"{prefix}{mode[0]}{count}-{rep}-{i}" for i in range(count)]
                    make_namespaces(kubectl, names)
                    if mode == "baseline":
                        seconds, requests = measure_baseline(kubectl, names)
                        current.baseline_s.append(seconds)
                        current.baseline_requests = requests
                    else:
                        seconds, requests = measure_operator(kubectl, names)
                        current.operator_s.append(seconds)
                        current.operator_requests = requests
                        rss_by_count[count] = max(rss_by_count.get(count, 0.0), proc_stats(operator.pid)[0])
                    quiet(kubectl, prefix)
            series.append(current)
            print(json.dumps(current.summary()), flush=True)
        # Idle: the largest count applied once more and left alone.
        names = [f"{prefix}idle-{i}" for i in range(counts[-1])]
        make_namespaces(kubectl, names)
        measure_operator(kubectl, names)
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
        quiet(kubectl, prefix)  # while the operator runs: it releases the stacks' finalizers
        operator.terminate()
        operator.wait(timeout=30)
    result = {
        "series": [s.summary() for s in series],
        "operator_rss_mib_by_stacks": {str(k): round(v, 1) for k, v in rss_by_count.items()},
        "idle_stacks": counts[-1],
        "operator_rss_mib_idle": round(rss, 1),
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
    lines = ["| stacks | repeats | baseline median s (range) | operator median s (range) | operator/baseline | "
             "API requests baseline | API requests operator |", "|---|---|---|---|---|---|---|"]
    for r in result["series"]:
        lines.append(f"| {r['stacks']} | {r['repeats']} | {r['baseline_median_s']:.2f} ({r['baseline_range_s'][0]}–"
                     f"{r['baseline_range_s'][1]}) | {r['operator_median_s']:.2f} ({r['operator_range_s'][0]}–"
                     f"{r['operator_range_s'][1]}) | {r['ratio_of_medians']} | {r['baseline_requests_last']} | "
                     f"{r['operator_requests_last']} |")
    lines.append(f"operator RSS MiB by stacks: {result['operator_rss_mib_by_stacks']}; with "
                 f"{result['idle_stacks']} idle stacks: {result['operator_rss_mib_idle']}")
    lines.append(f"idle {result['idle_seconds']} s with {result['idle_stacks']} stacks: operator writes "
                 f"{result['idle_operator_writes']:.0f}, operator CPU {result['idle_operator_cpu_seconds']} s, "
                 f"all apiserver requests {result['idle_apiserver_requests_all_clients']}")
    return "\n".join(lines)


if __name__ == "__main__":
    counts = tuple(int(c) for c in os.environ.get("BENCH_STACKS", "1,50,200").split(","))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    print(table(run(Path("bench-results"), int(sys.argv[1]) if len(sys.argv) > 1 else 60, counts, repeats)))
