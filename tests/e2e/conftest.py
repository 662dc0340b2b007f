from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import ROOT, Kubectl, condition, env_with_kubeconfig, wait_until
from servers import CLI, free_port


class OperatorProcess:
    """`ai-moderator operator` running against the local control plane."""

    def __init__(self, kubeconfig: Path, log_dir: Path, args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.args = args
        self.log_dir = log_dir
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"operator-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [*CLI, "operator", "--metrics-port", str(self.metrics_port),
             "--liveness", f"http://127.0.0.1:{self.health_port}/healthz", *self.args],
            env=env_with_kubeconfig(self.kubeconfig), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until("the operator's liveness endpoint", self._alive, timeout=60)

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited:\n{self.output()}")
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1).status == 200
        except OSError:
            return False

    def stop(self, sig: int = 15) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def output(self) -> str:
        return (self.log_dir / f"operator-{self.starts}.log").read_text()

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def writes(self) -> float:
        """API requests that change something, sent by the operator so far."""
        return sum(v for k, v in self.metrics().items() if k.startswith("ai_moderator_operator_kube_requests_total")
                   and any(f'verb="{verb}"' in k for verb in ("PATCH", "POST", "PUT", "DELETE")))


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    # Polled: `kubectl wait` errors out when the CRD has no status written yet.
    wait_until("the ModerationStack CRD to be Established", lambda: (
        (c := condition(kubectl.get("crd", "moderationstacks.moderation.ai-moderator.io"), "Established"))
        and c["status"] == "True"))
    _wait_for_garbage_collector(kubectl)


def _wait_for_garbage_collector(kubectl: Kubectl) -> None:
    """The garbage collector learns new CRDs on its own discovery resync (up
    to ~30 s): until then it cannot collect children of a deleted stack.
    Probe it with a stack (no operator yet) owning one ConfigMap."""
    ns = "t-gc-probe"
    kubectl.run("create", "namespace", ns, check=False)
    kubectl.apply({"apiVersion": "moderation.ai-moderator.io/v1alpha1", "kind": "ModerationStack",
                   "metadata": {"name": "probe", "namespace": ns}, "spec": {"version": "0"}})
    owner = kubectl.get("mstack", "probe", ns)
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "probe-child", "namespace": ns, "ownerReferences": [{
            "apiVersion": "moderation.ai-moderator.io/v1alpha1", "kind": "ModerationStack", "name": "probe",
            "uid": owner["metadata"]["uid"]}]}})
    kubectl.run("delete", "mstack", "probe", "-n", ns)
    wait_until("the garbage collector to know ModerationStacks",
               lambda: kubectl.get("configmap", "probe-child", ns) is None, timeout=90)
    kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="session")
def operator(kubeconfig: Path, crd: None, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator"))
    process.start()
    yield process
    # Let the operator release its finalizers before it goes.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        left = [ns for ns in json.loads(kubectl.run("get", "ns", "-o", "json").stdout)["items"]
                if ns["metadata"]["name"].startswith("t-")]
        if not left:
            break
        time.sleep(1)
    process.stop()
