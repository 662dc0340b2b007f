"""Jobs and CronJobs: the migration that gates each rollout, scheduled
backups with their volume, and the retention cleanup."""

from __future__ import annotations

from typing import Any

from ..naming import digest
from .common import Context, Manifest, app_container, app_volumes, metadata, pod_template

BACKUP_DIR = "/backups"


def _job_spec(ctx: Context, component: str, version: str, args: list[str], backoff: int, deadline: int,
              extra_volumes: list[dict[str, Any]] | None = None,
              extra_mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container = app_container(ctx, component, version, args)
    container["volumeMounts"] = container["volumeMounts"] + (extra_mounts or [])
    volumes, _ = app_volumes(ctx)
    return {"backoffLimit": backoff, "activeDeadlineSeconds": deadline,
            "template": pod_template(ctx, component, version, [container], volumes + (extra_volumes or []),
                                     restart_policy="Never")}


def migration_job(ctx: Context, version: str) -> Manifest:
    """`ai-moderator migrate` for a target version; its name is unique per image."""
    name = ctx.names.migration_job(ctx.image(version))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, "migration", version),
            "spec": _job_spec(ctx, "migration", version, ["migrate"], backoff=2, deadline=900)}


def _cronjob(ctx: Context, name: str, component: str, version: str, schedule: str, suspend: bool,
             job_spec: dict[str, Any]) -> Manifest:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata(ctx, name, component, version),
            "spec": {"schedule": schedule, "suspend": suspend, "concurrencyPolicy": "Forbid",
                     "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"metadata": {"labels": metadata(ctx, name, component, version)["labels"]},
                                     "spec": job_spec}}}


def cleanup_cronjob(ctx: Context, version: str) -> Manifest | None:
    cleanup = ctx.spec.cleanup
    if not cleanup.enabled:
        return None
    spec = _job_spec(ctx, "cleanup", version, ["cleanup", "--older-than", f"{cleanup.retentionDays}d"],
                     backoff=3, deadline=6 * 3600)
    return _cronjob(ctx, ctx.names.cleanup, "cleanup", version, cleanup.schedule, False, spec)


def backup_pvc(ctx: Context) -> Manifest | None:
    backup = ctx.spec.backup
    if backup is None or (backup.storage is not None and backup.storage.s3 is not None):
        return None
    pvc = backup.storage.pvc if backup.storage and backup.storage.pvc else None
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": str(pvc.size if pvc else "20Gi")}}}
    if pvc and pvc.storageClassName:
        spec["storageClassName"] = pvc.storageClassName
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": metadata(ctx, ctx.names.backups_pvc, "backup"), "spec": spec}


def backup_args(ctx: Context) -> list[str]:
    """The `ai-moderator backup` command line of the CronJob (also run by the tests)."""
    backup = ctx.spec.backup
    assert backup is not None
    retention = backup.retention
    args = ["backup", "--to", BACKUP_DIR]
    if retention is None:
        args += ["--keep-days", "30"]
    else:
        if retention.count is not None:
            args += ["--keep", str(retention.count)]
        if retention.maxAgeDays is not None:
            args += ["--keep-days", str(retention.maxAgeDays)]
    return args


def _backup_job_spec(ctx: Context, version: str, component: str = "backup",
                     args: list[str] | None = None) -> dict[str, Any]:
    volumes = [{"name": "backups", "persistentVolumeClaim": {"claimName": ctx.names.backups_pvc}}]
    mounts = [{"name": "backups", "mountPath": BACKUP_DIR}]
    return _job_spec(ctx, component, version, args or backup_args(ctx), backoff=2, deadline=6 * 3600,
                     extra_volumes=volumes, extra_mounts=mounts)


def restore_job(ctx: Context, version: str, backup_file: str) -> Manifest:
    """`ai-moderator restore` of one file of the backup volume; one Job per file asked for."""
    name = f"{ctx.name}-restore-{digest(backup_file, length=8)}"
    spec = _backup_job_spec(ctx, version, "restore", ["restore", "--from", f"{BACKUP_DIR}/{backup_file}"])
    spec["backoffLimit"] = 0  # a failed restore is for a human to look at, not to repeat
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, "restore", version), "spec": spec}


def backup_cronjob(ctx: Context, version: str) -> Manifest | None:
    backup = ctx.spec.backup
    if backup is None:
        return None
    spec = _backup_job_spec(ctx, version)
    return _cronjob(ctx, ctx.names.backup, "backup", version, backup.schedule, backup.suspend, spec)


def backup_now_job(ctx: Context, version: str, request: str) -> Manifest:
    """The on-demand backup for one request token: its name makes it run once."""
    name = f"{ctx.names.backup}-now-{digest(request, length=8)}"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, name, "backup", version),
            "spec": _backup_job_spec(ctx, version)}
