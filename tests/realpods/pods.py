"""Helpers for the real-node tests: namespaces under the restricted Pod
Security Standard, one-shot pods, exec, and the node's containerd."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from ai_moderator_operator.builders.common import container_security, pod_security
from kube import ROOT, Kubectl, wait_until

CONTAINERD_SOCK = ROOT / ".cluster-real" / "containerd" / "containerd.sock"
WORKLOAD_IMAGE = "localhost/ai-moderator-workload"
OPERATOR_IMAGE = "localhost/ai-moderator-operator"
POSTGRES_IMAGE = "localhost/postgres:15"
REDIS_IMAGE = "localhost/redis:7"
VERSION = "0.1.0"


def restricted_namespace(kubectl: Kubectl, name: str) -> str:
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}})
    return name


def pod(name: str, image: str, uid: int, command: list[str] | None = None, env: dict[str, str] | None = None,
        writable: tuple[str, ...] = ("/tmp",), labels: dict[str, str] | None = None) -> dict[str, Any]:
    # The operator's own security contexts: what its pods run with.
    pod_sec, container_sec = pod_security(uid), container_security()
    container: dict[str, Any] = {
        "name": "main", "image": image, "imagePullPolicy": "Never", "securityContext": container_sec,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "volumeMounts": [{"name": f"w{i}", "mountPath": path} for i, path in enumerate(writable)],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}}
    if command:
        container["command"] = command
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"test": name}},
            "spec": {"restartPolicy": "Never", "securityContext": pod_sec, "automountServiceAccountToken": False,
                     "enableServiceLinks": False, "containers": [container],
                     "volumes": [{"name": f"w{i}", "emptyDir": {}} for i in range(len(writable))]}}


def phase(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    obj = kubectl.get("pod", name, namespace)
    return ((obj or {}).get("status") or {}).get("phase")


def run_to_completion(kubectl: Kubectl, namespace: str, manifest: dict[str, Any], timeout: float = 120) -> str:
    """Run a one-shot pod; return its log (it must succeed)."""
    name = manifest["metadata"]["name"]
    kubectl.apply({**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}})
    done = wait_until(f"pod {name} to finish", lambda: phase(kubectl, namespace, name) in ("Succeeded", "Failed")
                      and phase(kubectl, namespace, name), timeout=timeout, interval=0.5)
    log = kubectl.run("logs", "-n", namespace, name).stdout
    assert done == "Succeeded", f"pod {name} {done}:\n{log}"
    return log


def wait_running(kubectl: Kubectl, namespace: str, name: str, timeout: float = 120) -> None:
    def ready() -> bool:
        obj = kubectl.get("pod", name, namespace) or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (obj.get("status") or {}).get("conditions") or [])
    wait_until(f"pod {name} to be Ready", ready, timeout=timeout, interval=0.5)


def exec_(kubectl: Kubectl, namespace: str, target: str, *command: str, check: bool = True
          ) -> subprocess.CompletedProcess[str]:
    return kubectl.run("exec", "-n", namespace, target, "--", *command, check=check)


def wait_endpoints(kubectl: Kubectl, namespace: str, service: str, count: int = 1, timeout: float = 120) -> None:
    """Traffic is sent only once kube-proxy can have programmed the endpoints."""
    def ready_addresses() -> bool:
        slices = kubectl.items("endpointslices", namespace, f"kubernetes.io/service-name={service}")
        ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
        return len(ready) >= count
    wait_until(f"{count} ready endpoint(s) of {service}", ready_addresses, timeout=timeout, interval=0.5)
    time.sleep(1.5)  # kube-proxy's iptables sync follows the EndpointSlice by up to ~1 s


def cluster_ip(kubectl: Kubectl, namespace: str, service: str) -> str:
    svc = kubectl.get("service", service, namespace)
    assert svc, f"no Service {namespace}/{service}"
    return svc["spec"]["clusterIP"]


def ctr(*args: str) -> str:
    return subprocess.run(["ctr", "-a", str(CONTAINERD_SOCK), "-n", "k8s.io", *args], check=True,
                          capture_output=True, text=True).stdout


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]
