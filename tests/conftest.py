from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube import ROOT, Kubectl, k8s_bin_dir

CLUSTER_DIR = ROOT / ".cluster"


def _cluster_running() -> bool:
    pids = CLUSTER_DIR / "pids"
    return pids.is_dir() and (CLUSTER_DIR / "kubeconfig").exists()


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """A kubeconfig for the local control plane: reuses a running one or starts
    one for this session (and then stops it again)."""
    started_here = not _cluster_running()
    proc = subprocess.run(["bash", str(ROOT / "hack/cluster-up.sh")], capture_output=True, text=True,
                          env={**os.environ, "REAL": "0"})
    if proc.returncode != 0:
        pytest.fail(f"local control plane did not start:\n{proc.stderr}", pytrace=False)
    yield CLUSTER_DIR / "kubeconfig"
    if started_here:
        subprocess.run(["bash", str(ROOT / "hack/cluster-down.sh")], check=False, env={**os.environ, "REAL": "0"})


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(kubeconfig=kubeconfig, binary=k8s_bin_dir() / "kubectl")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)
