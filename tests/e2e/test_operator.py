"""The operator against the local control plane: a ModerationStack becomes a
running, self-healing service, with the built kubectl as the user's tool."""

from __future__ import annotations

import copy
import json
import time

import pytest

from kube import Kubectl, KubectlError, condition, wait_until
from stacks import example, get_stack, ready, wait_phase

pytestmark = pytest.mark.cluster

COMPONENT = "app.kubernetes.io/component"


def child(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict | None:
    return kubectl.get(kind, name, namespace)


def test_example_stack_becomes_ready_with_every_child(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    stack = ready(kubectl, namespace)
    status = stack["status"]
    assert status["version"] == "0.1.0" and status["api"]["summary"] == "2/2" and status["worker"]["summary"] == "2/2"
    assert status["endpoint"] == f"http://demo-api.{namespace}.svc:80"
    assert condition(stack, "MigrationSucceeded")["status"] == "True"
    expected = {("secret", "demo-app"), ("configmap", "demo-policy"), ("deployment", "demo-api"),
                ("service", "demo-api"), ("poddisruptionbudget", "demo-api"), ("deployment", "demo-worker"),
                ("statefulset", "demo-postgres"), ("service", "demo-postgres"), ("statefulset", "demo-redis"),
                ("service", "demo-redis"), ("cronjob", "demo-backup"), ("cronjob", "demo-backup-verify"),
                ("cronjob", "demo-cleanup"),
                ("persistentvolumeclaim", "demo-backups")}
    for kind, name in expected:
        obj = child(kubectl, kind, name, namespace)
        assert obj is not None, f"{kind}/{name} missing"
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "ai-moderator-operator"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "ModerationStack"
    [job] = kubectl.items("jobs", namespace, f"{COMPONENT}=migration")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]

    api = child(kubectl, "deployment", "demo-api", namespace)
    pod = api["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/ai-moderator/ai-moderator-workload:0.1.0"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert "moderation.ai-moderator.io/config-hash" in pod["metadata"]["annotations"]

    table = kubectl.run("get", "mstack", "-n", namespace).stdout.split()
    assert table[:7] == ["NAME", "READY", "PHASE", "VERSION", "API", "WORKERS", "LAST"]
    assert table[9:14] == ["demo", "True", "Ready", "0.1.0", "2/2"]
    wide = kubectl.run("get", "mstack", "-n", namespace, "-o", "wide").stdout
    assert "MESSAGE" in wide and "version 0.1.0 serving" in wide


def test_spec_changes_propagate_and_children_heal(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    before = child(kubectl, "deployment", "demo-api", namespace)["spec"]["template"]["metadata"]["annotations"]

    changed = example(namespace)
    changed["spec"]["api"] = {**changed["spec"]["api"], "replicas": 3,
                              "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}
    changed["spec"]["policy"] = {**changed["spec"]["policy"], "allowlist": ["kill the process", "Scunthorpe"]}
    kubectl.apply(changed)
    stack = ready(kubectl, namespace)
    assert stack["status"]["api"]["summary"] == "3/3"
    api = child(kubectl, "deployment", "demo-api", namespace)
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    after = api["spec"]["template"]["metadata"]["annotations"]
    assert after["moderation.ai-moderator.io/config-hash"] != before["moderation.ai-moderator.io/config-hash"]
    assert "Scunthorpe" in child(kubectl, "configmap", "demo-policy", namespace)["data"]["policy.yaml"]

    started = time.monotonic()
    kubectl.run("delete", "service", "demo-api", "-n", namespace)
    kubectl.run("scale", "deployment", "demo-worker", "-n", namespace, "--replicas=7")
    wait_until("the deleted Service to come back", lambda: child(kubectl, "service", "demo-api", namespace), 10)
    wait_until("the hand-scaled workers to be restored",
               lambda: child(kubectl, "deployment", "demo-worker", namespace)["spec"]["replicas"] == 2, 10)
    assert time.monotonic() - started < 10


def test_deleting_the_stack_collects_its_children(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    kubectl.run("delete", "mstack", "demo", "-n", namespace, "--timeout=60s")
    for kind, name in (("deployment", "demo-api"), ("deployment", "demo-worker"), ("service", "demo-api"),
                       ("statefulset", "demo-postgres"), ("cronjob", "demo-backup")):
        wait_until(f"{kind}/{name} to be garbage-collected", lambda: child(kubectl, kind, name, namespace) is None, 30)


def test_autoscaled_deployments_leave_replicas_to_the_hpa(kubectl: Kubectl, namespace: str, operator) -> None:
    stack = example(namespace)
    stack["spec"]["api"] = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}}
    stack["spec"]["worker"] = {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4}}
    kubectl.apply(stack)
    ready(kubectl, namespace)
    hpa = child(kubectl, "hpa", "demo-api", namespace)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    assert child(kubectl, "hpa", "demo-worker", namespace)["spec"]["maxReplicas"] == 4  # no KEDA here
    api = json.loads(kubectl.run("get", "deployment", "demo-api", "-n", namespace, "-o", "json",
                                 "--show-managed-fields").stdout)
    ours = [m for m in api["metadata"]["managedFields"] if m["manager"] == "ai-moderator-operator"]
    assert ours
    assert all("f:replicas" not in m.get("fieldsV1", {}).get("f:spec", {}) for m in ours)
    # Turning autoscaling off again removes the HPA and pins the replicas.
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    wait_until("the api HPA to be pruned", lambda: child(kubectl, "hpa", "demo-api", namespace) is None, 15)


def test_pause_stops_all_writes_and_resume_heals(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/paused=true")
    stack = wait_phase(kubectl, namespace, "Paused", generation=False)
    assert condition(stack, "Paused")["status"] == "True"
    kubectl.run("scale", "deployment", "demo-api", "-n", namespace, "--replicas=5")
    time.sleep(3)
    assert child(kubectl, "deployment", "demo-api", namespace)["spec"]["replicas"] == 5
    kubectl.run("annotate", "mstack", "demo", "-n", namespace, "moderation.ai-moderator.io/paused-")
    wait_until("the paused edit to be undone",
               lambda: child(kubectl, "deployment", "demo-api", namespace)["spec"]["replicas"] == 2, 15)
    ready(kubectl, namespace)


def test_missing_secret_degrades_only_its_stack_then_recovers(kubectl: Kubectl, namespace: str, operator) -> None:
    other = f"{namespace}-b"
    kubectl.run("create", "namespace", other)
    try:
        broken = example(namespace)
        broken["spec"]["database"] = {"external": {"urlSecretRef": {"name": "prod-db", "key": "url"}}}
        kubectl.apply(broken)
        kubectl.apply(example(other))
        stack = wait_phase(kubectl, namespace, "Degraded")
        degraded = condition(stack, "Degraded")
        assert degraded["reason"] == "SecretNotFound" and "prod-db" in degraded["message"]
        assert condition(stack, "Ready")["status"] == "False"
        ready(kubectl, other)
        kubectl.run("create", "secret", "generic", "prod-db", "-n", namespace,
                    "--from-literal=url=postgresql://u:p@db.example:5432/moderation")
        ready(kubectl, namespace, timeout=90)
        api = child(kubectl, "deployment", "demo-api", namespace)
        env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "prod-db", "key": "url"}
        assert child(kubectl, "statefulset", "demo-postgres", namespace) is None
    finally:
        kubectl.run("delete", "namespace", other, "--wait=false", check=False)


def test_an_idle_ready_stack_causes_no_writes(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    # Earlier tests' namespaces are still being torn down: let that finish.
    wait_until("other test namespaces to be gone", lambda: not [
        n for n in json.loads(kubectl.run("get", "ns", "-o", "json").stdout)["items"]
        if n["metadata"]["name"].startswith("t-") and n["metadata"]["name"] != namespace], 90)
    time.sleep(2)
    before = operator.writes()
    time.sleep(12)
    assert operator.writes() == before


def test_generated_secret_is_never_regenerated(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    first = child(kubectl, "secret", "demo-app", namespace)["data"]
    changed = example(namespace)
    changed["spec"]["limits"] = {"maxTextChars": 1000}
    kubectl.apply(changed)
    ready(kubectl, namespace)
    assert child(kubectl, "secret", "demo-app", namespace)["data"] == first


def test_new_version_rolls_out_only_after_its_migration(kubectl: Kubectl, namespace: str, operator) -> None:
    kubectl.apply(example(namespace))
    ready(kubectl, namespace)
    upgraded = example(namespace, version="0.2.0")
    kubectl.apply(upgraded)
    stack = ready(kubectl, namespace)
    assert stack["status"]["version"] == "0.2.0"
    jobs = kubectl.items("jobs", namespace, f"{COMPONENT}=migration")
    versions = sorted(j["metadata"]["labels"]["app.kubernetes.io/version"] for j in jobs)
    assert versions == ["0.1.0", "0.2.0"]
    new_job = next(j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0")
    api = child(kubectl, "deployment", "demo-api", namespace)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    assert new_job["status"]["completionTime"]
    assert stack["status"]["migration"]["job"] == new_job["metadata"]["name"]


INVALID = [
    ({"version": ""}, "version"),
    ({"api": {"replicas": -1}}, "replicas"),
    ({"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
     "minReplicas must be less than or equal to autoscaling.maxReplicas"),
    ({"database": {"managed": {}, "external": {"urlSecretRef": {"name": "db", "key": "url"}}}},
     "database: set exactly one of managed or external"),
    ({"redis": {}}, "redis: set exactly one of managed or external"),
    ({"api": {"ingress": {"enabled": True}}}, "ingress.host is required"),
    ({"policy": {"thresholds": {"spam": 0.5}}}, "keys must be among"),
    ({"worker": {"concurrency": 0}}, "concurrency"),
    ({"api": {"resources": {"requests": {"cpu": "lots"}}}}, "spec.api.resources.requests.cpu in body should match"),
    ({"api": {"replicas": 2, "replica": 3}}, "replica"),
    ({"policy": {"thresholds": {"sexual": 1.5}}}, "spec.policy.thresholds.sexual"),
    ({"database": {"managed": {"storage": "-5Gi"}}}, "spec.database.managed.storage"),
    ({"worker": {"resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}}},
     "spec.worker.resources: Invalid value: \"object\": resources.limits must be at least resources.requests"),
]


S3 = {"bucket": "moderation-backups", "credentialsSecret": {"name": "backup-s3"}}


def _backup(**fields: object) -> dict:
    return {"backup": {"schedule": "0 3 * * *", **fields}}


# Rollout, backup, restore, cleanup and deletion settings.
INVALID_LIFECYCLE = [
    ({"backup": {"schedule": "every day at 3"}}, "5-field cron expression"),
    ({"backup": {"schedule": "0 3 * *"}}, "5-field cron expression"),
    ({"cleanup": {"schedule": "61 25 * * * *"}}, "5-field cron expression"),
    ({"backup": {"schedule": "99 3 * * *"}}, "5-field cron expression"),
    ({"cleanup": {"schedule": "0 3 * 13 *"}}, "5-field cron expression"),
    (_backup(verify={"schedule": "monthly"}), "spec.backup.verify.schedule"),
    ({"cleanup": {"retentionDays": 0}}, "spec.cleanup.retentionDays: Invalid value: 0"),
    (_backup(retention={"count": -1}), "spec.backup.retention.count: Invalid value: -1"),
    (_backup(retention={"maxAgeDays": 0}), "spec.backup.retention.maxAgeDays: Invalid value: 0"),
    (_backup(retention={}), "backup.retention needs count or maxAgeDays"),
    (_backup(storage={"s3": {"bucket": "moderation-backups"}}), "spec.backup.storage.s3.credentialsSecret: Required"),
    (_backup(storage={"pvc": {}, "s3": S3}), "backup.storage: set pvc or s3, not both"),
    (_backup(storage={"s3": {**S3, "endpoint": "minio:9000"}}), "spec.backup.storage.s3.endpoint"),
    (_backup(storage={"s3": {**S3, "bucket": "Moderation_Backups"}}), "spec.backup.storage.s3.bucket"),
    (_backup(restoreFrom="../../etc/passwd"), "spec.backup.restoreFrom"),
    (_backup(finalBackupOnDelete="yes"), "spec.backup.finalBackupOnDelete"),
    (_backup(timeZone="UTC +1"), "spec.backup.timeZone"),
    ({"deletionPolicy": "Maybe"}, 'supported values: "Retain", "Delete"'),
]


@pytest.mark.parametrize(("change", "message"), INVALID + INVALID_LIFECYCLE,
                         ids=[m for _, m in INVALID + INVALID_LIFECYCLE])
def test_invalid_specs_are_rejected_with_a_clear_message(kubectl: Kubectl, namespace: str, crd: None,
                                                        change: dict, message: str) -> None:
    stack = example(namespace)
    spec = copy.deepcopy(stack["spec"])
    spec.update(change)
    stack["spec"] = spec
    with pytest.raises(KubectlError) as rejected:
        kubectl.apply(stack)
    assert message in rejected.value.stderr
    assert get_stack(kubectl, namespace) is None


def test_long_names_are_rejected(kubectl: Kubectl, namespace: str, crd: None) -> None:
    with pytest.raises(KubectlError, match="at most 40 characters"):
        kubectl.apply(example(namespace, name="x" * 41))
