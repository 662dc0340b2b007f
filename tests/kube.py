"""Test helpers that drive the local control plane through the kubectl we built."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def k8s_bin_dir() -> Path:
    """The cached binary folder of the pinned Kubernetes version (hack/versions.sh)."""
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT}/hack/versions.sh && echo $K8S_BIN"],
        check=True, capture_output=True, text=True,
    )
    return Path(out.stdout.strip())


class KubectlError(RuntimeError):
    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} failed: {stderr.strip()}")
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path
    binary: Path

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.stderr)
        return proc

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]] | str, *extra: str) -> str:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump_all(
            manifest if isinstance(manifest, list) else [manifest]
        )
        return self.run("apply", "-f", "-", *extra, stdin=text).stdout

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise KubectlError(args, proc.stderr)
        return json.loads(proc.stdout)

    def items(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.run(*args).stdout)["items"]


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll probe until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def env_with_kubeconfig(kubeconfig: Path) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kubeconfig)}
