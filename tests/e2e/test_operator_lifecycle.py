"""Lifecycle proofs: operator crashes, on-demand backups, what deletion keeps."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from ai_moderator_operator.naming import Names

from kube import ROOT, Kubectl, condition, wait_until
from stacks import example, ready, wait_phase

pytestmark = pytest.mark.cluster
COMPONENT = "app.kubernetes.io/component"
CONFIG_HASH = "moderation.ai-moderator.io/config-hash"


def test_operator_killed_during_creation_converges_without_duplicates(kubectl: Kubectl, namespace: str,
                                                                        operator) -> None:
    kubectl.apply(example(namespace))
    secret = wait_until("the generated Secret", lambda: kubectl.get("secret", "demo-app", namespace), 30)
    operator.stop(9)  # SIGKILL in the middle of the first reconciliations
    try:
        upgraded = example(namespace, version="0.3.0")
        kubectl.apply(upgraded)
    finally:
        operator.start()
    stack = ready(kubectl, namespace, timeout=90)
    assert stack["status"]["version"] == "0.3.0"
    jobs = kubectl.items("jobs", namespace, f"{COMPONENT}=migration")
    per_version: dict[str, int] = {}
    for job in jobs:
        version = job["metadata"]["labels"]["app.kubernetes.io/version"]
        per_version[version] = per_version.get(version, 0) + 1
    assert all(count == 1 for count in per_version.values()), per_version
    assert kubectl.get("secret", "demo-app", namespace)["data"] == secret["data"]


def _migration_jobs(kubectl: Kubectl, namespace: str, version: str) -> list[dict[str, Any]]:
    return [j for j in kubectl.items("jobs", namespace, f"{COMPONENT}=migration")
            if j["metadata"]["labels"]["app.kubernetes.io/version"] == version]


def _api_image(kubectl: Kubectl, namespace: str) -> str:
    return kubectl.get("deployment", "demo-api", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_operator_killed_during_a_migration_runs_it_once(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    secret = kubectl.get("secret", "demo-app", namespace)
    slow = "0.2.0-slow-8s"  # the kwok stages keep this migration running for 8 s
    kubectl.apply(example(namespace, version=slow))
    wait_until("the slow migration to start", lambda: _migration_jobs(kubectl, namespace, slow), 30)
    operator.stop(9)
    try:
        time.sleep(2)
    finally:
        operator.start()
    stack = ready(kubectl, namespace, timeout=90)
    assert stack["status"]["version"] == slow
    assert len(_migration_jobs(kubectl, namespace, slow)) == 1
    assert _api_image(kubectl, namespace).endswith(f":{slow}")
    assert kubectl.get("secret", "demo-app", namespace)["data"] == secret["data"]


def test_failed_migration_keeps_the_old_version_until_retried_or_corrected(kubectl: Kubectl, namespace: str,
                                                                           operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    broken = "0.2.0-fail-migrate"  # the kwok stages make `ai-moderator migrate` exit 1 for this image
    kubectl.apply(example(namespace, version=broken))
    stack = wait_phase(kubectl, namespace, "Degraded", timeout=120)
    failed = condition(stack, "MigrationSucceeded")
    assert failed["status"] == "False" and failed["reason"] == "MigrationFailed"
    assert "BackoffLimitExceeded" in failed["message"], failed
    # How the container ended, from its termination message (kwok's failing stage writes this one).
    assert "last attempt exited 1 (Error): simulated failure" in failed["message"], failed
    assert stack["status"]["version"] == "0.1.0"
    assert "previous version keeps serving" in condition(stack, "Ready")["message"]
    assert _api_image(kubectl, namespace).endswith(":0.1.0")
    warnings = [e for e in kubectl.items("events", namespace) if e.get("involvedObject", {}).get("name") == "demo"
                and e.get("type") == "Warning" and "migration to 0.2.0-fail-migrate failed" in e.get("message", "")]
    assert warnings, "no Warning event tells about the failed migration"
    time.sleep(5)  # several reconciles later: still one attempt, no Job churn
    assert len(_migration_jobs(kubectl, namespace, broken)) == 1

    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/retry-migration=1")
    wait_until("a second attempt", lambda: len(_migration_jobs(kubectl, namespace, broken)) == 2, 30)

    kubectl.apply(example(namespace, version="0.2.0"))
    stack = ready(kubectl, namespace, timeout=90)
    assert stack["status"]["version"] == "0.2.0"
    assert condition(stack, "MigrationSucceeded")["status"] == "True"
    assert _api_image(kubectl, namespace).endswith(":0.2.0")


def test_backup_now_runs_one_backup_and_status_follows(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/backup-now=first")
    stack = wait_until("the on-demand backup to be recorded", lambda: (
        s := kubectl.get("mstack", "demo", namespace)) and (s.get("status") or {}).get("backup", {}).get(
        "lastSuccessTime") and s, 30)
    assert condition(stack, "BackupSucceeded")["status"] == "True"
    [job] = kubectl.items("jobs", namespace, f"{COMPONENT}=backup")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:3] == ["backup", "--to", "/backups"]
    ready(kubectl, namespace)
    assert len(kubectl.items("jobs", namespace, f"{COMPONENT}=backup")) == 1  # the same request runs once


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy_decides_what_data_survives(kubectl: Kubectl, namespace: str, operator, policy: str) -> None:
    kubectl.apply(example(namespace, deletionPolicy=policy))
    ready(kubectl, namespace)
    kubectl.run("delete", "mstack", "demo", "-n", namespace, "--timeout=60s")
    wait_until("the API Deployment to be collected", lambda: kubectl.get("deployment", "demo-api", namespace) is None, 30)
    data = [("secret", "demo-app"), ("pvc", "demo-backups"), ("pvc", "data-demo-postgres-0"),
            ("pvc", "data-demo-redis-0")]
    if policy == "Retain":
        for kind, name in data:
            obj = kubectl.get(kind, name, namespace)
            assert obj is not None and obj["metadata"].get("deletionTimestamp") is None, f"{kind}/{name} not kept"
    else:
        for kind, name in data:
            wait_until(f"{kind}/{name} to be deleted", lambda: kubectl.get(kind, name, namespace) is None, 30)


def test_restore_holds_the_api_out_of_service_then_brings_it_back(kubectl: Kubectl, namespace: str,
                                                                   operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    kubectl.run("annotate", "mstack", "demo", "-n", namespace,
                "moderation.ai-moderator.io/restore=db-backup-20261126T030000Z.sql.gz")
    stack = wait_until("the restore to succeed", lambda: (
        s := kubectl.get("mstack", "demo", namespace)) and (s.get("status") or {}).get("restore", {}).get(
        "phase") == "Succeeded" and s, 60)
    [job] = kubectl.items("jobs", namespace, f"{COMPONENT}=restore")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "restore", "--from", "/backups/db-backup-20261126T030000Z.sql.gz", "--migrate"]
    assert stack["status"]["restore"]["job"] == job["metadata"]["name"]
    stack = ready(kubectl, namespace)
    assert stack["status"]["api"]["summary"] == "2/2"
    events = kubectl.items("events", namespace)
    held = [e for e in events if e.get("involvedObject", {}).get("kind") == "ModerationStack"
            and "held out of service" in e.get("message", "")]
    assert held, "no event shows the API held out of service during the restore"
    # The API was scaled to zero before the restore Job started.
    pods_gone_before = [e for e in events if e.get("involvedObject", {}).get("kind") == "ReplicaSet"
                        and "Deleted pod" in e.get("message", "")]
    assert pods_gone_before


def test_operator_converges_across_an_apiserver_restart(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    restart = subprocess.run(["bash", str(ROOT / "hack" / "restart-apiserver.sh"), "2"], capture_output=True,
                             text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr
    changed = example(namespace)
    changed["spec"]["api"] = {**changed["spec"]["api"], "replicas": 3}
    kubectl.apply(changed)
    stack = ready(kubectl, namespace, timeout=120)
    assert stack["status"]["api"]["summary"] == "3/3"


def _backup_status(kubectl: Kubectl, namespace: str, key: str, value: Any = None, name: str = "demo"
                   ) -> dict[str, Any] | None:
    """The stack once status.backup[key] is set (to value, when given)."""
    stack = kubectl.get("mstack", name, namespace)
    found = ((stack or {}).get("status") or {}).get("backup", {}).get(key)
    return stack if found and (value is None or found == value) else None


def test_failed_backups_are_reported_until_a_backup_succeeds(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace, version="0.1.0-fail-backup"))  # `ai-moderator backup` exits 1 in this image
    ready(kubectl, namespace)
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/backup-now=1")
    stack = wait_until("the failed backup to be reported", lambda: _backup_status(kubectl, namespace, "lastError"), 90)
    failed = condition(stack, "BackupSucceeded")
    assert failed["status"] == "False" and failed["reason"] == "BackupFailed"
    assert "BackoffLimitExceeded" in stack["status"]["backup"]["lastError"]
    assert "exited 1 (Error): simulated failure" in stack["status"]["backup"]["lastError"]
    assert "lastSuccessTime" not in stack["status"]["backup"]

    kubectl.apply(example(namespace, version="0.2.0"))
    ready(kubectl, namespace)
    kubectl.run("annotate", "--overwrite", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/backup-now=2")
    stack = wait_until("the next backup to succeed", lambda: _backup_status(kubectl, namespace, "lastSuccessTime"), 60)
    assert condition(stack, "BackupSucceeded")["status"] == "True"
    assert "lastError" not in stack["status"]["backup"]


def test_scheduled_verify_records_each_test_restore(kubectl: Kubectl, namespace: str, operator) -> None:
    backup = {"schedule": "0 3 * * *", "verify": {"schedule": "0 5 1 * *"}}
    kubectl.apply(example(namespace, backup=backup))
    ready(kubectl, namespace)
    cron = kubectl.get("cronjob", "demo-backup-verify", namespace)
    assert cron["spec"]["schedule"] == "0 5 1 * *"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "verify-backup", "--from", "/backups"]
    kubectl.run("create", "job", "verify-1", "--from=cronjob/demo-backup-verify", "-n", namespace)
    stack = wait_until("the test restore to be recorded",
                       lambda: _backup_status(kubectl, namespace, "lastVerifyResult", "Succeeded"), 60)
    assert condition(stack, "BackupVerified")["status"] == "True"
    first = stack["status"]["backup"]["lastVerifyTime"]

    kubectl.apply(example(namespace, backup=backup, version="0.2.0-fail-verify-backup"))  # its verify exits 1
    ready(kubectl, namespace)
    kubectl.run("create", "job", "verify-2", "--from=cronjob/demo-backup-verify", "-n", namespace)
    stack = wait_until("the failed test restore to be recorded",
                       lambda: _backup_status(kubectl, namespace, "lastVerifyResult", "Failed"), 60)
    verified = condition(stack, "BackupVerified")
    assert verified["status"] == "False" and verified["reason"] == "VerifyFailed"
    assert stack["status"]["backup"]["lastVerifyError"].startswith("verify-2: ")
    assert stack["status"]["backup"]["lastVerifyTime"] >= first


def test_s3_storage_needs_its_secret_and_passes_it_to_the_jobs(kubectl: Kubectl, namespace: str, operator) -> None:
    s3 = {"endpoint": "http://minio.storage:9000", "bucket": "moderation-backups",
          "credentialsSecret": {"name": "backup-s3"}}
    kubectl.apply(example(namespace, backup={"schedule": "0 3 * * *", "storage": {"s3": s3}}))
    stack = wait_phase(kubectl, namespace, "Degraded")
    degraded = condition(stack, "Degraded")
    assert degraded["reason"] == "SecretNotFound"
    assert "'backup-s3'" in degraded["message"] and "spec.backup.storage.s3.credentialsSecret" in degraded["message"]

    kubectl.run("create", "secret", "generic", "backup-s3", "-n", namespace,
                "--from-literal=AWS_ACCESS_KEY_ID=writer", "--from-literal=AWS_SECRET_ACCESS_KEY=not-real")
    stack = ready(kubectl, namespace, timeout=90)
    assert stack["status"]["backup"]["location"] == f"s3://moderation-backups/{namespace}/demo"
    assert kubectl.get("pvc", "demo-backups", namespace) is None
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/backup-now=s3")
    wait_until("the S3 backup to succeed", lambda: _backup_status(kubectl, namespace, "lastSuccessTime"), 60)
    [job] = kubectl.items("jobs", namespace, f"{COMPONENT}=backup")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["backup", "--to", f"s3://moderation-backups/{namespace}/demo"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "backup-s3"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"


def test_final_backup_runs_before_deletion_and_its_volume_survives(kubectl: Kubectl, namespace: str,
                                                                    operator) -> None:
    backup = {"schedule": "0 3 * * *", "finalBackupOnDelete": True}
    kubectl.apply(example(namespace, backup=backup, deletionPolicy="Delete"))
    final = Names("demo").final_backup_job(ready(kubectl, namespace)["metadata"]["uid"])
    kubectl.run("delete", "mstack", "demo", "-n", namespace, "--timeout=90s")
    job = kubectl.get("job", final, namespace)
    assert job is not None and job["status"].get("succeeded") == 1, "the stack went before its final backup"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:3] == ["backup", "--to", "/backups"]
    wait_until("the database volume to be deleted", lambda: kubectl.get("pvc", "data-demo-postgres-0", namespace)
               is None, 30)
    kept = kubectl.get("pvc", "demo-backups", namespace)
    assert kept is not None and kept["metadata"].get("deletionTimestamp") is None
    assert not kept["metadata"].get("ownerReferences")


def test_a_failing_final_backup_holds_deletion_until_the_user_decides(kubectl: Kubectl, namespace: str,
                                                                       operator) -> None:
    backup = {"schedule": "0 3 * * *", "finalBackupOnDelete": True}
    kubectl.apply(example(namespace, backup=backup, version="0.1.0-fail-backup"))
    final = Names("demo").final_backup_job(ready(kubectl, namespace)["metadata"]["uid"])
    kubectl.run("delete", "mstack", "demo", "-n", namespace, "--wait=false")
    wait_until("the final backup to fail", lambda: any(
        c.get("type") == "Failed" and c.get("status") == "True"
        for c in ((kubectl.get("job", final, namespace) or {}).get("status") or {}).get("conditions", [])),
        90)
    stack = wait_until("the stack to say why it waits", lambda: (s := kubectl.get("mstack", "demo", namespace)) and (
        "failed" in condition(s, "Ready")["message"]) and s, 60)
    assert stack["status"]["phase"] == "Deleting"
    waiting = condition(stack, "Ready")
    assert waiting["reason"] == "Deleting" and f"final backup Job {final} failed" in waiting["message"]
    assert "finalBackupOnDelete to false" in waiting["message"]
    kubectl.run("patch", "mstack", "demo", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"backup":{"finalBackupOnDelete":false}}}')
    wait_until("the stack to be deleted", lambda: kubectl.get("mstack", "demo", namespace) is None, 60)


def _template_annotations(kubectl: Kubectl, namespace: str, deployment: str) -> dict[str, str]:
    live = kubectl.get("deployment", deployment, namespace)
    return live["spec"]["template"]["metadata"].get("annotations") or {}


def test_a_rotated_external_secret_rolls_the_pods_and_keeps_a_manual_restart(kubectl: Kubectl, namespace: str,
                                                                              operator) -> None:
    kubectl.run("create", "secret", "generic", "orders-db", "-n", namespace,
                "--from-literal=url=postgresql://moderator:first@db.example:5432/moderation")
    kubectl.apply(example(namespace, database={"external": {"urlSecretRef": {"name": "orders-db", "key": "url"}}}))
    ready(kubectl, namespace)
    kubectl.run("rollout", "restart", "deployment/demo-api", "-n", namespace)
    restarted = wait_until("the manual restart", lambda: _template_annotations(kubectl, namespace, "demo-api").get(
        "kubectl.kubernetes.io/restartedAt"), 10)
    ready(kubectl, namespace)
    hashes = {d: _template_annotations(kubectl, namespace, d)[CONFIG_HASH] for d in ("demo-api", "demo-worker")}

    rotated = kubectl.run("create", "secret", "generic", "orders-db", "-n", namespace, "--dry-run=client", "-o",
                          "yaml", "--from-literal=url=postgresql://moderator:rotated@db.example:5432/moderation").stdout
    kubectl.apply(rotated)
    # Well within the one-minute resync: the operator watches the Secrets stacks reference.
    for deployment in ("demo-api", "demo-worker"):
        wait_until(f"{deployment} to roll for the rotated Secret", lambda: _template_annotations(
            kubectl, namespace, deployment)[CONFIG_HASH] != hashes[deployment], 15)
    assert _template_annotations(kubectl, namespace, "demo-api")["kubectl.kubernetes.io/restartedAt"] == restarted
    ready(kubectl, namespace)


def test_a_child_the_api_server_refuses_degrades_the_stack_until_fixed(kubectl: Kubectl, namespace: str,
                                                                        operator) -> None:
    # Label values cannot contain spaces; the CRD does not check nodeSelector, the API server does.
    kubectl.apply(example(namespace, nodeSelector={"type": "kwok node"}))
    stack = wait_phase(kubectl, namespace, "Degraded")
    degraded = condition(stack, "Degraded")
    assert degraded["reason"] == "ChildRejected"
    assert "the API server rejected" in degraded["message"] and "kwok node" in degraded["message"]
    kubectl.apply(example(namespace, nodeSelector={"type": "kwok"}))  # the label of the kwok node
    ready(kubectl, namespace, timeout=90)

    backup = {"schedule": "0 3 * * *", "timeZone": "Mars/Olympus"}  # well-formed, but no such zone
    kubectl.apply(example(namespace, backup=backup))
    stack = wait_phase(kubectl, namespace, "Degraded")
    assert "unknown time zone Mars/Olympus" in condition(stack, "Degraded")["message"]
    kubectl.apply(example(namespace, backup={**backup, "timeZone": "Europe/Berlin"}))
    ready(kubectl, namespace)
    assert kubectl.get("cronjob", "demo-backup", namespace)["spec"]["timeZone"] == "Europe/Berlin"


def test_a_failed_restore_degrades_until_the_request_is_withdrawn(kubectl: Kubectl, namespace: str,
                                                                   operator) -> None:
    kubectl.apply(example(namespace, version="0.1.0-fail-restore"))  # `ai-moderator restore` exits 1 in this image
    ready(kubectl, namespace)
    kubectl.run("annotate", "mstack", "demo", "-n", namespace,
                "moderation.ai-moderator.io/restore=db-backup-20261126T030000Z.sql.gz")
    stack = wait_phase(kubectl, namespace, "Degraded")
    assert stack["status"]["restore"]["phase"] == "Failed"
    assert "simulated failure" in condition(stack, "Ready")["message"]
    assert len(kubectl.items("jobs", namespace, f"{COMPONENT}=restore")) == 1  # not retried
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/restore-")
    stack = ready(kubectl, namespace)
    assert stack["status"]["restore"]["phase"] == "Failed"  # the record stays
    assert stack["status"]["api"]["summary"] == "2/2"


def test_a_version_change_outside_the_maintenance_window_waits_until_apply_now(kubectl: Kubectl, namespace: str,
                                                                                operator) -> None:
    once_a_year = {"schedule": "0 0 1 1 *", "duration": "1m", "timeZone": "Europe/Berlin"}
    kubectl.apply(example(namespace, maintenanceWindow=once_a_year))
    ready(kubectl, namespace)
    kubectl.apply(example(namespace, version="0.2.0", maintenanceWindow=once_a_year))
    stack = wait_phase(kubectl, namespace, "Pending")
    window = stack["status"]["maintenance"]
    assert window["open"] is False and window["waiting"] == "version 0.2.0"
    assert window["nextWindowStart"].endswith("-12-31T23:00:00Z"), "midnight of 1 January in Berlin"
    assert "waits for the maintenance window" in condition(stack, "Ready")["message"]
    time.sleep(3)
    assert len(kubectl.items("jobs", namespace, "app.kubernetes.io/component=migration")) == 1, "no migration yet"
    api = kubectl.get("deployment", "demo-api", namespace)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
    assert api["status"].get("readyReplicas") == 2, "the old version keeps serving"

    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/apply-now=true")
    stack = ready(kubectl, namespace, timeout=90)
    assert stack["status"]["version"] == "0.2.0"
    assert len(kubectl.items("jobs", namespace, "app.kubernetes.io/component=migration")) == 2


def test_promoting_the_shadow_policy_makes_it_live(kubectl: Kubectl, namespace: str, operator) -> None:
    shadow = {"version": "next", "thresholds": {"violence": 0.3}}
    kubectl.apply(example(namespace, shadowPolicy=shadow))
    ready(kubectl, namespace)
    policy = kubectl.get("configmap", "demo-policy", namespace)["data"]
    assert "violence: 0.3" in policy["shadow.yaml"] and "kill the process" in policy["shadow.yaml"]
    stack = wait_until("a shadow summary attempt in status",
                       lambda: (s := kubectl.get("mstack", "demo", namespace))["status"].get("shadow") and s, 60)
    assert stack["status"]["shadow"]["windowSeconds"] == 3600, "kwok's pods answer nothing: a message, no numbers"
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/promote-shadow=1")
    spec = wait_until("the shadow policy to become the live one", lambda: (
        s := kubectl.get("mstack", "demo", namespace)["spec"]) and "shadowPolicy" not in s and s, 30)
    assert spec["policy"] == {"version": "next", "thresholds": {"violence": 0.3}, "allowlist": ["kill the process"]}
    wait_until("the policy ConfigMap to follow", lambda: "violence: 0.3" in kubectl.get(
        "configmap", "demo-policy", namespace)["data"]["policy.yaml"], 30)
    assert "shadow.yaml" not in kubectl.get("configmap", "demo-policy", namespace)["data"]
