"""Builders are pure: spec in, manifests out. These tests pin what users rely on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ai_moderator_operator.api import parse_spec
from ai_moderator_operator.builders import (Context, backup_args, backup_now_job, desired_children, final_backup_job,
                                            migration_job, quality_gate_job, restore_job)
from ai_moderator_operator.crdgen import CRD_FILE, render


def ctx(rolled: str | None = "1.0.0", keda: bool = False, **spec) -> Context:
    return Context("shop", "prod", "uid-1", parse_spec({"version": "1.0.0", **spec}), rolled, "hash-1", keda=keda)


def by_kind(children: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_crd_in_repo_is_generated_from_the_api_types() -> None:
    assert CRD_FILE.read_text() == render(), "run: python -m ai_moderator_operator.crdgen"
    check = subprocess.run([sys.executable, "-m", "ai_moderator_operator.crdgen", "--check"], capture_output=True)
    assert check.returncode == 0


def test_nothing_of_the_app_runs_before_its_first_migration() -> None:
    kinds = {k for k, _ in by_kind(desired_children(ctx(rolled=None)))}
    assert "Deployment" not in kinds and "CronJob" not in kinds
    assert {"ConfigMap", "StatefulSet", "Service"} <= kinds


def test_every_child_is_labelled_and_owned() -> None:
    for child in desired_children(ctx(backup={"schedule": "0 3 * * *"})):
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ai-moderator"
        assert labels["app.kubernetes.io/instance"] == "shop"
        assert labels["app.kubernetes.io/managed-by"] == "ai-moderator-operator"
        assert child["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_autoscaling_leaves_replicas_out_and_pdb_follows_min_replicas() -> None:
    children = by_kind(desired_children(ctx(api={"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}})))
    assert "replicas" not in children[("Deployment", "shop-api")]["spec"]
    assert children[("HorizontalPodAutoscaler", "shop-api")]["spec"]["minReplicas"] == 3
    assert ("PodDisruptionBudget", "shop-api") in children
    single = by_kind(desired_children(ctx(api={"replicas": 1})))
    assert single[("Deployment", "shop-api")]["spec"]["replicas"] == 1
    assert ("PodDisruptionBudget", "shop-api") not in single


def test_workers_scale_on_queue_length_with_keda() -> None:
    spec = {"worker": {"autoscaling": {"enabled": True, "maxReplicas": 8, "queueLengthTarget": 50}}}
    keda = by_kind(desired_children(ctx(keda=True, **spec)))
    scaler = keda[("ScaledObject", "shop-worker")]
    assert scaler["spec"]["triggers"][0]["metadata"] == {
        "addressFromEnv": "REDIS_ADDRESS", "passwordFromEnv": "REDIS_PASSWORD", "listName": "moderation_queue",
        "listLength": "50"}
    env = {e["name"] for e in keda[("Deployment", "shop-worker")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"REDIS_ADDRESS", "REDIS_PASSWORD"} <= env
    assert ("HorizontalPodAutoscaler", "shop-worker") in by_kind(desired_children(ctx(**spec)))


def test_external_services_replace_managed_ones() -> None:
    children = by_kind(desired_children(ctx(
        database={"external": {"urlSecretRef": {"name": "db", "key": "url"}}},
        redis={"external": {"urlSecretRef": {"name": "cache", "key": "url"}}})))
    assert not [k for k in children if k[0] == "StatefulSet"]
    env = {e["name"]: e for e in children[("Deployment", "shop-api")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "url"}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "cache", "key": "url"}


def test_optional_children_appear_only_when_asked_for() -> None:
    plain = by_kind(desired_children(ctx()))
    assert not [k for k in plain if k[0] in ("Ingress", "NetworkPolicy", "ServiceMonitor")]
    full = by_kind(desired_children(ctx(api={"ingress": {"enabled": True, "host": "mod.example.com",
                                                        "className": "nginx", "tlsSecretName": "mod-tls"}},
                                        networkPolicy={"enabled": True})))
    ingress = full[("Ingress", "shop-api")]
    assert ingress["spec"]["tls"] == [{"hosts": ["mod.example.com"], "secretName": "mod-tls"}]
    policy = full[("NetworkPolicy", "shop-data")]
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_every_pod_runs_restricted() -> None:
    """Deployments, StatefulSets, CronJobs and every one-shot Job (migration,
    restore, backup-now, final backup): the restricted Pod Security Standard."""
    full = ctx(backup={"schedule": "0 3 * * *", "verify": {"schedule": "0 5 1 * *"}, "finalBackupOnDelete": True},
               api={"autoscaling": {"enabled": True}}, qualityGate={"maxFlagRateChange": 5})
    children = [*desired_children(full), migration_job(full, "1.0.0"), restore_job(full, "1.0.0", "f.sql.gz"),
                backup_now_job(full, "1.0.0", "now"), final_backup_job(full, "1.0.0"),
                quality_gate_job(full, "1.0.0", "shop-gate-1", "version: new\n", None)]
    checked = set()
    for child in children:
        spec = child.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if not template:
            continue
        checked.add((child["kind"], child["metadata"]["name"]))
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert "privileged" not in security and "runAsUser" not in security or security["runAsUser"] != 0
    assert len(checked) == 12, sorted(checked)


@pytest.mark.parametrize(("retention", "args"), [
    (None, ["--keep-days", "30"]),
    ({"count": 7}, ["--keep", "7"]),
    ({"count": 7, "maxAgeDays": 30}, ["--keep", "7", "--keep-days", "30"]),
])
def test_backup_command_line_carries_retention(retention, args) -> None:
    backup = {"schedule": "0 3 * * *", **({"retention": retention} if retention else {})}
    assert backup_args(ctx(backup=backup)) == ["backup", "--to", "/backups", *args]


S3 = {"endpoint": "http://minio.storage:9000", "bucket": "moderation-backups", "region": "eu-west-1",
      "credentialsSecret": {"name": "backup-s3"}}


def _job_pod(manifest: dict) -> dict:
    spec = manifest["spec"]
    return (spec["jobTemplate"]["spec"] if manifest["kind"] == "CronJob" else spec)["template"]["spec"]


def test_s3_backups_get_credentials_from_the_secret_and_no_volume() -> None:
    stack = ctx(backup={"schedule": "0 3 * * *", "storage": {"s3": S3}, "verify": {"schedule": "0 5 1 * *"}})
    children = by_kind(desired_children(stack))
    assert ("PersistentVolumeClaim", "shop-backups") not in children
    for name in ("shop-backup", "shop-backup-verify"):
        pod = _job_pod(children[("CronJob", name)])
        container = pod["containers"][0]
        assert "s3://moderation-backups/prod/shop" in container["args"]  # default prefix: <namespace>/<stack>
        env = {e["name"]: e for e in container["env"]}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "backup-s3", "key": key}
        assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
        assert env["AWS_DEFAULT_REGION"]["value"] == "eu-west-1"
        assert all(v.get("persistentVolumeClaim") is None for v in pod["volumes"])
    with_prefix = ctx(backup={"schedule": "0 3 * * *", "storage": {"s3": {**S3, "prefix": "team-a/mod"}}})
    assert backup_args(with_prefix)[:3] == ["backup", "--to", "s3://moderation-backups/team-a/mod"]
    restore = restore_job(with_prefix, "1.0.0", "db-backup-20261126T030000Z.sql.gz")
    assert _job_pod(restore)["containers"][0]["args"] == [
        "restore", "--from", "s3://moderation-backups/team-a/mod/db-backup-20261126T030000Z.sql.gz", "--migrate"]


def test_verify_cronjob_follows_its_own_schedule_and_scratch_database() -> None:
    backup = {"schedule": "0 3 * * *", "verify": {"schedule": "0 5 1 * *", "suspend": True,
                                                  "scratchDatabaseSecretRef": {"name": "scratch", "key": "url"}}}
    cron = by_kind(desired_children(ctx(backup=backup)))[("CronJob", "shop-backup-verify")]
    assert cron["spec"]["schedule"] == "0 5 1 * *" and cron["spec"]["suspend"] is True
    container = _job_pod(cron)["containers"][0]
    assert container["args"] == ["verify-backup", "--from", "/backups"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SCRATCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "scratch", "key": "url"}
    assert ("CronJob", "shop-backup-verify") not in by_kind(desired_children(ctx(backup={"schedule": "0 3 * * *"})))


def test_schedules_run_in_the_time_zone_asked_for() -> None:
    stack = ctx(backup={"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "verify": {"schedule": "0 5 1 * *"}},
                cleanup={"timeZone": "America/New_York"})
    crons = {name: c for (kind, name), c in by_kind(desired_children(stack)).items() if kind == "CronJob"}
    assert crons["shop-backup"]["spec"]["timeZone"] == "Europe/Berlin"
    assert crons["shop-backup-verify"]["spec"]["timeZone"] == "Europe/Berlin"
    assert crons["shop-cleanup"]["spec"]["timeZone"] == "America/New_York"
    plain = by_kind(desired_children(ctx(backup={"schedule": "0 3 * * *"})))[("CronJob", "shop-backup")]
    assert "timeZone" not in plain["spec"]


def test_final_backup_job_outlives_the_stack() -> None:
    job = final_backup_job(ctx(backup={"schedule": "0 3 * * *", "finalBackupOnDelete": True}), "1.0.0")
    assert job["metadata"]["name"].startswith("shop-final-backup-")
    assert "ownerReferences" not in job["metadata"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 7 * 24 * 3600
    assert _job_pod(job)["containers"][0]["args"][:3] == ["backup", "--to", "/backups"]


def test_a_daily_storage_quota_reaches_the_app_in_bytes_and_only_when_set() -> None:
    def env_of(**spec) -> dict[str, str]:
        api = by_kind(desired_children(ctx(**spec)))[("Deployment", "shop-api")]
        return {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert "DAILY_STORAGE_QUOTA_BYTES" not in env_of(), "unset: no variable, so existing stacks do not roll"
    assert env_of(limits={"dailyStorageQuotaPerKey": "500Mi"})["DAILY_STORAGE_QUOTA_BYTES"] == str(500 * 2**20)
    assert env_of(limits={"dailyStorageQuotaPerKey": "1500m"})["DAILY_STORAGE_QUOTA_BYTES"] == "2", "rounded up"


def test_the_quality_gate_job_gets_both_policies_and_the_golden_set_but_no_app_secret() -> None:
    gated = ctx(qualityGate={"golden": {"configMapKeyRef": {"name": "golden", "key": "set.jsonl"}}})
    job = quality_gate_job(gated, "2.0.0", "shop-gate-1", "version: new\n", "version: old\n")
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].endswith(":2.0.0")
    env = {e["name"]: e for e in container["env"]}
    assert env["GATE_POLICY"]["value"] == "version: new\n" and env["GATE_BASELINE_POLICY"]["value"] == "version: old\n"
    assert not any("valueFrom" in e for e in container["env"]), "no database, Redis or admin key in the gate pod"
    assert container["args"][:2] == ["evaluate", "--gate"] and "/dev/termination-log" in container["args"]
    assert container["args"][-2:] == ["--golden", "/etc/ai-moderator/golden/golden.jsonl"]
    golden = next(v for v in pod["volumes"] if v["name"] == "golden")
    assert golden["configMap"] == {"name": "golden", "items": [{"key": "set.jsonl", "path": "golden.jsonl"}]}
    first = quality_gate_job(ctx(qualityGate={}), "2.0.0", "shop-gate-1", "version: new\n", None)
    assert "--golden" not in first["spec"]["template"]["spec"]["containers"][0]["args"], "the image's dev set"
    assert "--baseline-policy" not in first["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_shadow_policy_is_mounted_beside_the_live_one_with_its_allowlist_and_engine() -> None:
    import yaml

    shadowed = ctx(policy={"thresholds": {"sexual": 0.4}, "allowlist": ["kill the process"], "engine": "fast"},
                   shadowPolicy={"version": "next", "thresholds": {"sexual": 0.3}})
    children = by_kind(desired_children(shadowed))
    data = children[("ConfigMap", "shop-policy")]["data"]
    shadow = yaml.safe_load(data["shadow.yaml"])
    assert shadow["thresholds"] == {"sexual": 0.3} and shadow["version"] == "next"
    assert shadow["allowlist"] == ["kill the process"] and shadow["engine"] == "fast", "the same scores as live"
    env = {e["name"]: e.get("value") for e in
           children[("Deployment", "shop-worker")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SHADOW_POLICY_FILE"] == "/etc/ai-moderator/policy/shadow.yaml"
    plain = by_kind(desired_children(ctx()))
    assert "shadow.yaml" not in plain[("ConfigMap", "shop-policy")]["data"]
    assert "SHADOW_POLICY_FILE" not in str(plain[("Deployment", "shop-api")]), "no variable: existing stacks do not roll"


def test_callback_hosts_reach_the_app_only_when_listed() -> None:
    def env_of(**spec) -> dict[str, str]:
        api = by_kind(desired_children(ctx(**spec)))[("Deployment", "shop-worker")]
        return {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}

    listed = env_of(callbacks={"allowedHosts": ["hooks.example.com", "*.internal.example"]})
    assert listed["CALLBACK_ALLOWED_HOSTS"] == "hooks.example.com,*.internal.example"
    assert "CALLBACK_ALLOWED_HOSTS" not in env_of()
    with pytest.raises(ValueError):
        ctx(callbacks={"allowedHosts": ["http://hooks.example.com/x"]})
