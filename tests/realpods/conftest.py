"""The real-node cluster (hack/cluster-up.sh REAL=1): containerd, a kubelet,
kube-proxy, CoreDNS, and the project's own images. Started here when it is not
running and stopped again at the end; skipped only when the kernel refuses
containers (cluster-up exits 3 after a plain `runc run` fails)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import ROOT, Kubectl, k8s_bin_dir

STATE = ROOT / ".cluster-real"
KERNEL_REFUSES_CONTAINERS = 3


def _healthy() -> bool:
    kubeconfig = STATE / "kubeconfig"
    return kubeconfig.exists() and subprocess.run(
        [str(k8s_bin_dir() / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def real_kubeconfig() -> Iterator[Path]:
    started = False
    if not _healthy():
        env = {**os.environ, "REAL": "1"}
        proc = subprocess.run([str(ROOT / "hack" / "cluster-up.sh")], env=env, capture_output=True, text=True,
                              timeout=3600)
        if proc.returncode == KERNEL_REFUSES_CONTAINERS:
            pytest.skip(f"the kernel refuses containers here: {proc.stderr.strip().splitlines()[-1]}")
        assert proc.returncode == 0, f"hack/cluster-up.sh REAL=1 failed:\n{proc.stderr[-4000:]}"
        started = True
    yield STATE / "kubeconfig"
    if started and not os.environ.get("KEEP_CLUSTER"):
        subprocess.run([str(ROOT / "hack" / "cluster-down.sh")], env={**os.environ, "REAL": "1"},
                       capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def rkubectl(real_kubeconfig: Path) -> Kubectl:
    return Kubectl(real_kubeconfig, k8s_bin_dir() / "kubectl")
