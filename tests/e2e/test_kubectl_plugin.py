"""`kubectl moderation` as users run it: through the real kubectl, which finds
the kubectl-moderation console script on PATH (plugin discovery), against
the local control plane and the real operator."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_moderator_operator.naming import (
    BACKUP_NOW_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_SHADOW_ANNOTATION,
    RESTORE_ANNOTATION,
    RETRY_QUALITY_GATE_ANNOTATION,
    Names,
)
from kube import ROOT, Kubectl, env_with_kubeconfig, k8s_bin_dir
from stacks import example, ready, wait_phase

pytestmark = pytest.mark.cluster
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-moderation"
BACKUP_FILE = "db-backup-20261126T030000Z.sql.gz"


def plugin_env(kubeconfig: Path) -> dict[str, str]:
    """The user's environment: KUBECONFIG, and the plugin's folder on PATH."""
    assert PLUGIN.exists(), f"{PLUGIN} is missing: reinstall the project (pip install -e '.[operator]')"
    env = env_with_kubeconfig(kubeconfig)
    env["PATH"] = f"{PLUGIN.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def moderation(kubeconfig: Path, *args: str, stdin: Any = subprocess.DEVNULL, timeout: float = 180
               ) -> subprocess.CompletedProcess[str]:
    """`kubectl moderation ARGS`; stdin is no terminal unless one is given."""
    return subprocess.run([str(k8s_bin_dir() / "kubectl"), "moderation", *args], env=plugin_env(kubeconfig),
                          stdin=stdin, capture_output=True, text=True, timeout=timeout)


def annotations(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    return kubectl.get("mstack", "demo", namespace)["metadata"].get("annotations") or {}


def test_kubectl_discovers_the_plugin(kubeconfig: Path) -> None:
    listed = subprocess.run([str(k8s_bin_dir() / "kubectl"), "plugin", "list"], env=plugin_env(kubeconfig),
                            capture_output=True, text=True, timeout=60)
    assert str(PLUGIN) in listed.stdout.splitlines(), listed.stdout + listed.stderr
    usage = moderation(kubeconfig)
    assert usage.returncode == 2 and "usage: kubectl moderation" in usage.stderr


def test_status_of_a_ready_stack_shows_its_conditions_and_children(kubectl: Kubectl, kubeconfig: Path,
                                                                    namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    shown = moderation(kubeconfig, "status", "demo", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"ModerationStack {namespace}/demo: Ready"
    assert any(re.fullmatch(r"  Ready +True +Ready +\d+[smhd] +version 0\.1\.0 serving: api 2/2, workers 2/2", line)
               for line in lines), shown.stdout
    assert 'Backup  "0 3 * * *" to /backups' in lines
    tree = lines[lines.index("Children") + 1:]
    assert tree[0] == "demo" and "├── Deployment" in tree
    assert any(re.fullmatch(r"│   ├── demo-api +Ready +2/2 ready", line) for line in tree), shown.stdout
    assert any(re.fullmatch(r"│   [├└]── demo-postgres +Ready +1/1 ready", line) for line in tree), shown.stdout
    assert any(re.fullmatch(r"│   [├└]── demo-app +Present +\d+ keys", line) for line in tree), shown.stdout

    as_json = moderation(kubeconfig, "status", "demo", "-n", namespace, "-o", "json")
    report = yaml.safe_load(as_json.stdout)
    assert as_json.returncode == 0 and report["phase"] == "Ready" and report["unlisted"] == {}
    assert {"kind": "Deployment", "name": "demo-api", "health": "Ready", "detail": "2/2 ready"} in report["children"]
    assert {c["kind"] for c in report["children"]} >= {"Secret", "ConfigMap", "Service", "PersistentVolumeClaim",
                                                        "Deployment", "StatefulSet", "CronJob", "Job"}

    missing = moderation(kubeconfig, "status", "nope", "-n", namespace)
    assert missing.returncode == 1
    assert missing.stderr == f'error: moderationstack "nope" not found in namespace "{namespace}"\n'


def test_a_user_without_rights_gets_one_line_and_a_partial_tree(kubectl: Kubectl, kubeconfig: Path,
                                                                 namespace: str, operator, tmp_path: Path) -> None:
    """A user who may read the stack and list its children but not Secrets,
    and may patch nothing: status works (Secrets marked), pause is refused."""
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    rules = [{"apiGroups": ["moderation.ai-moderator.io"], "resources": ["moderationstacks"], "verbs": ["get"]},
             {"apiGroups": [""], "resources": ["configmaps", "services", "persistentvolumeclaims"], "verbs": ["list"]},
             {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["list"]},
             {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["list"]},
             {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list"]},
             {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"], "verbs": ["list"]},
             {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["list"]},
             {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors"], "verbs": ["list"]}]
    kubectl.apply([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "stack-viewer", "namespace": namespace}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "stack-viewer", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "stack-viewer"},
         "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}]}])
    token = kubectl.run("create", "token", "viewer", "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "viewer", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"].update(user="viewer", namespace=namespace)  # no -n below: the context's namespace
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(yaml.safe_dump(config))

    shown = moderation(viewer, "status", "demo")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"├── Secret\n│   └── \? +Unknown +cannot list: secrets is forbidden: "
                     rf'User "system:serviceaccount:{namespace}:viewer" cannot list', shown.stdout), shown.stdout
    assert re.search(r"demo-api +Ready +2/2 ready", shown.stdout)

    refused = moderation(viewer, "pause", "demo")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith('error: moderationstacks.moderation.ai-moderator.io "demo" is forbidden: '
                                     f'User "system:serviceaccount:{namespace}:viewer" cannot patch')
    assert PAUSED_ANNOTATION not in annotations(kubectl, namespace)


def test_backup_runs_one_backup_now_and_prints_its_outcome(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                           operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    done = moderation(kubeconfig, "backup", "demo", "-n", namespace, "--timeout", "60")
    assert done.returncode == 0, done.stderr
    token = annotations(kubectl, namespace)[BACKUP_NOW_ANNOTATION]
    job = Names("demo").backup_now_job(token)
    assert re.fullmatch(rf"backup of {namespace}/demo succeeded: Job {job} completed at \S+Z, stored in /backups\n",
                        done.stdout), done.stdout
    assert kubectl.get("job", job, namespace)["status"]["succeeded"] == 1
    assert f"waiting for Job {job}" in done.stderr


def test_a_failing_backup_exits_1_with_why(kubectl: Kubectl, kubeconfig: Path, namespace: str, operator) -> None:
    kubectl.apply(example(namespace, version="0.1.0-fail-backup"))  # `ai-moderator backup` exits 1 in this image
    ready(kubectl, namespace)
    failed = moderation(kubeconfig, "backup", "demo", "-n", namespace, "--timeout", "120")
    assert failed.returncode == 1
    error = failed.stderr.splitlines()[-1]
    assert re.fullmatch(rf"error: backup of {namespace}/demo failed: Job demo-backup-now-\w+: BackoffLimitExceeded.*"
                        r"last attempt exited 1 \(Error\): simulated failure \(hack/kwok-stages.yaml\)", error), error


def test_restore_asks_first_then_waits_for_the_restore(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                       operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    refused = moderation(kubeconfig, "restore", "demo", "-n", namespace, "--from", BACKUP_FILE)
    assert refused.returncode == 1
    assert refused.stderr == "error: refusing without --yes: stdin is not a terminal to confirm on\n"

    # On a terminal it asks; anything but y/yes leaves the stack alone.
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"n\n")
        declined = moderation(kubeconfig, "restore", "demo", "-n", namespace, "--from", BACKUP_FILE, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert declined.returncode == 1
    assert declined.stderr == (f"Restore {BACKUP_FILE} into demo? The API goes out of service until it finishes "
                               "[y/N] error: cancelled\n")
    assert RESTORE_ANNOTATION not in annotations(kubectl, namespace)

    restored = moderation(kubeconfig, "restore", "demo", "-n", namespace, "--from", BACKUP_FILE, "--yes",
                          "--timeout", "90")
    assert restored.returncode == 0, restored.stderr
    job = Names("demo").restore_job(BACKUP_FILE)
    assert re.fullmatch(rf"restore of {BACKUP_FILE} into {namespace}/demo succeeded: Job {job} completed at \S+Z\n",
                        restored.stdout), restored.stdout
    assert annotations(kubectl, namespace)[RESTORE_ANNOTATION] == BACKUP_FILE
    ready(kubectl, namespace)

    again = moderation(kubeconfig, "restore", "demo", "-n", namespace, "--from", BACKUP_FILE, "--yes")
    assert again.returncode == 1 and "was restored into" in again.stderr


def test_pause_then_resume(kubectl: Kubectl, kubeconfig: Path, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    paused = moderation(kubeconfig, "pause", "demo", "-n", namespace)
    assert paused.returncode == 0, paused.stderr
    assert annotations(kubectl, namespace)[PAUSED_ANNOTATION] == "true"
    wait_phase(kubectl, namespace, "Paused")
    shown = moderation(kubeconfig, "status", "demo", "-n", namespace)
    assert shown.returncode == 4 and shown.stdout.startswith(f"ModerationStack {namespace}/demo: Paused\n")

    resumed = moderation(kubeconfig, "resume", "demo", "-n", namespace)
    assert resumed.returncode == 0, resumed.stderr
    assert PAUSED_ANNOTATION not in annotations(kubectl, namespace)
    ready(kubectl, namespace)
    assert moderation(kubeconfig, "status", "demo", "-n", namespace).returncode == 0


def test_promote_shadow_and_gate_retry_set_a_fresh_token(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                         crd: None) -> None:
    kubectl.apply(example(namespace))
    for args, annotation in ((["promote-shadow"], PROMOTE_SHADOW_ANNOTATION),
                             (["gate", "retry"], RETRY_QUALITY_GATE_ANNOTATION)):
        asked = moderation(kubeconfig, *args, "demo", "-n", namespace)
        assert asked.returncode == 0, asked.stderr
        token = annotations(kubectl, namespace)[annotation]
        assert asked.stdout.endswith(f"of {namespace}/demo ({annotation}={token})\n"), asked.stdout
        time.sleep(1.1)  # tokens are timestamps to the second
        again = moderation(kubeconfig, *args, "demo", "-n", namespace)
        assert again.returncode == 0 and annotations(kubectl, namespace)[annotation] != token
