"""Jobs and CronJobs: the migration that gates each rollout, scheduled
backups (on their volume or in S3) with restore, test restore and the final
backup, and the retention cleanup."""

from __future__ import annotations

from typing import Any

from ..api import S3Storage
from ..naming import Component
from .common import Context, Manifest, app_container, app_volumes, metadata, pod_template, secret_env

BACKUP_DIR = "/backups"
S3_CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _job_spec(ctx: Context, component: str, version: str, args: list[str], backoff: int, deadline: int,
              storage: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] = ([], [], [])
              ) -> dict[str, Any]:
    """A Job's spec; `storage` adds (volumes, mounts, env) for the backup storage."""
    extra_volumes, extra_mounts, extra_env = storage
    container = app_container(ctx, component, version, args, extra_env)
    container["volumeMounts"] = container["volumeMounts"] + extra_mounts
    volumes, _ = app_volumes(ctx)
    return {"backoffLimit": backoff, "activeDeadlineSeconds": deadline,
            "template": pod_template(ctx, component, version, [container], volumes + extra_volumes,
                                     restart_policy="Never")}


def migration_job(ctx: Context, version: str) -> Manifest:
    """`ai-moderator migrate` for a target version; its name is unique per image."""
    name = ctx.names.migration_job(ctx.image(version))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, Component.MIGRATION, version),
            "spec": _job_spec(ctx, Component.MIGRATION, version, ["migrate"], backoff=2, deadline=900)}


GOLDEN_DIR = "/etc/ai-moderator/golden"


def quality_gate_job(ctx: Context, version: str, name: str, candidate_policy: str, serving_policy: str | None
                     ) -> Manifest:
    """`ai-moderator evaluate --gate` of the candidate policy (and the serving
    one beside it) with the image of `version` on the golden set. It needs no
    database, Redis or Secret of the app: its pod gets none of them. The
    report is its termination message, read back by the operator."""
    gate = ctx.spec.qualityGate
    assert gate is not None
    args = ["evaluate", "--gate", "--policy", "env:GATE_POLICY", "--result-file", "/dev/termination-log"]
    env = [{"name": "GATE_POLICY", "value": candidate_policy}, {"name": "LOG_JSON", "value": "true"}]
    if serving_policy is not None:
        args += ["--baseline-policy", "env:GATE_BASELINE_POLICY"]
        env.append({"name": "GATE_BASELINE_POLICY", "value": serving_policy})
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if gate.golden is not None:
        ref = gate.golden.configMapKeyRef or gate.golden.secretKeyRef
        assert ref is not None
        items = [{"key": ref.key, "path": "golden.jsonl"}]
        source = ({"configMap": {"name": ref.name, "items": items}} if gate.golden.configMapKeyRef
                  else {"secret": {"secretName": ref.name, "items": items}})
        volumes.append({"name": "golden", **source})
        mounts.append({"name": "golden", "mountPath": GOLDEN_DIR, "readOnly": True})
        args += ["--golden", f"{GOLDEN_DIR}/golden.jsonl"]
    container = {**app_container(ctx, Component.QUALITY_GATE, version, args), "env": env, "volumeMounts": mounts}
    template = pod_template(ctx, Component.QUALITY_GATE, version, [container], volumes, restart_policy="Never")
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": metadata(ctx, name, Component.QUALITY_GATE, version),
            "spec": {"backoffLimit": 1, "activeDeadlineSeconds": 1800,
                     "template": template}}


def _cronjob(ctx: Context, name: str, component: str, version: str, schedule: str, time_zone: str | None,
             suspend: bool, job_spec: dict[str, Any]) -> Manifest:
    spec: dict[str, Any] = {
        # Nothing scheduled runs while a restore holds the app out of service.
        "schedule": schedule, "suspend": suspend or ctx.hold_app, "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": metadata(ctx, name, component, version)["labels"]}, "spec": job_spec}}
    if time_zone:
        spec["timeZone"] = time_zone
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata(ctx, name, component, version),
            "spec": spec}


def cleanup_cronjob(ctx: Context, version: str) -> Manifest | None:
    cleanup = ctx.spec.cleanup
    if not cleanup.enabled:
        return None
    spec = _job_spec(ctx, Component.CLEANUP, version, ["cleanup", "--older-than", f"{cleanup.retentionDays}d"],
                     backoff=3, deadline=6 * 3600)
    return _cronjob(ctx, ctx.names.cleanup, Component.CLEANUP, version, cleanup.schedule, cleanup.timeZone, False, spec)


def _s3(ctx: Context) -> S3Storage | None:
    backup = ctx.spec.backup
    return backup.storage.s3 if backup is not None and backup.storage is not None else None


def backup_location(ctx: Context) -> str:
    """Where the backup Jobs read and write: the PVC's mount or s3://bucket/prefix."""
    s3 = _s3(ctx)
    if s3 is None:
        return BACKUP_DIR
    return f"s3://{s3.bucket}/{s3.prefix or f'{ctx.namespace}/{ctx.name}'}"


def backup_pvc(ctx: Context) -> Manifest | None:
    backup = ctx.spec.backup
    if backup is None or _s3(ctx) is not None:
        return None
    pvc = backup.storage.pvc if backup.storage and backup.storage.pvc else None
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": str(pvc.size if pvc else "20Gi")}}}
    if pvc and pvc.storageClassName:
        spec["storageClassName"] = pvc.storageClassName
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": metadata(ctx, ctx.names.backups_pvc, Component.BACKUP), "spec": spec}


def backup_args(ctx: Context) -> list[str]:
    """The `ai-moderator backup` command line of the CronJob (also run by the tests)."""
    backup = ctx.spec.backup
    assert backup is not None
    retention = backup.retention
    args = ["backup", "--to", backup_location(ctx)]
    if retention is None:
        args += ["--keep-days", "30"]
    else:
        if retention.count is not None:
            args += ["--keep", str(retention.count)]
        if retention.maxAgeDays is not None:
            args += ["--keep-days", str(retention.maxAgeDays)]
    return args


def _storage(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts, env) that give a Job the backup storage."""
    s3 = _s3(ctx)
    if s3 is None:
        return ([{"name": "backups", "persistentVolumeClaim": {"claimName": ctx.names.backups_pvc}}],
                [{"name": "backups", "mountPath": BACKUP_DIR}], [])
    secret = s3.credentialsSecret.name
    env = [secret_env(key, secret, key) for key in S3_CREDENTIAL_KEYS]
    if s3.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint})
    if s3.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": s3.region})
    return [], [], env


def _backup_job_spec(ctx: Context, version: str, component: str, args: list[str],
                     extra_env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    volumes, mounts, env = _storage(ctx)
    return _job_spec(ctx, component, version, args, backoff=2, deadline=6 * 3600,
                     storage=(volumes, mounts, env + (extra_env or [])))


def restore_job(ctx: Context, version: str, backup_file: str) -> Manifest:
    """`ai-moderator restore --migrate` of one backup (a backup taken by an
    older version is upgraded to the running one); one Job per file asked for."""
    name = ctx.names.restore_job(backup_file)
    args = ["restore", "--from", f"{backup_location(ctx)}/{backup_file}", "--migrate"]
    spec = _backup_job_spec(ctx, version, Component.RESTORE, args)
    spec["backoffLimit"] = 0  # a failed restore is for a human to look at, not to repeat
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, Component.RESTORE, version),
            "spec": spec}


def backup_cronjob(ctx: Context, version: str) -> Manifest | None:
    backup = ctx.spec.backup
    if backup is None:
        return None
    spec = _backup_job_spec(ctx, version, Component.BACKUP, backup_args(ctx))
    return _cronjob(ctx, ctx.names.backup, Component.BACKUP, version, backup.schedule, backup.timeZone,
                    backup.suspend, spec)


def verify_cronjob(ctx: Context, version: str) -> Manifest | None:
    """The scheduled test restore of the newest backup into a scratch database."""
    verify = ctx.spec.backup.verify if ctx.spec.backup else None
    if verify is None:
        return None
    ref = verify.scratchDatabaseSecretRef
    env = [secret_env("SCRATCH_DATABASE_URL", ref.name, ref.key)] if ref else []
    spec = _backup_job_spec(ctx, version, Component.BACKUP_VERIFY,
                            ["verify-backup", "--from", backup_location(ctx)], env)
    spec["backoffLimit"] = 0  # a failed check is the finding; repeating it only delays the report
    time_zone = ctx.spec.backup.timeZone if ctx.spec.backup else None
    return _cronjob(ctx, ctx.names.backup_verify, Component.BACKUP_VERIFY, version, verify.schedule, time_zone,
                    verify.suspend, spec)


def backup_now_job(ctx: Context, version: str, request: str) -> Manifest:
    """The on-demand backup for one request token: its name makes it run once."""
    name = ctx.names.backup_now_job(request)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, Component.BACKUP, version),
            "spec": _backup_job_spec(ctx, version, Component.BACKUP, backup_args(ctx))}


def final_backup_job(ctx: Context, version: str) -> Manifest:
    """The backup taken when the stack is deleted. It has no owner, so it
    outlives the stack as the record of that backup, until its TTL."""
    meta = metadata(ctx, ctx.names.final_backup_job(ctx.uid), Component.BACKUP, version)
    del meta["ownerReferences"]
    spec = _backup_job_spec(ctx, version, Component.BACKUP, backup_args(ctx))
    spec["ttlSecondsAfterFinished"] = 7 * 24 * 3600
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
