"""Status from what exists: pure functions from observed children to the
status block, keeping lastTransitionTime unless a condition really changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Workload:
    desired: int = 0
    ready: int = 0
    current: bool = False  # the controller has seen the latest spec and every pod is updated

    @classmethod
    def of(cls, deployment: dict[str, Any] | None) -> Workload:
        if deployment is None:
            return cls()
        spec, status = deployment.get("spec", {}), deployment.get("status", {})
        desired = int(spec.get("replicas", 1))
        # Settled means the rollout is over: every pod updated and no old pod left.
        current = (status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
                   and int(status.get("updatedReplicas", 0)) >= desired
                   and int(status.get("replicas", 0)) == desired)
        return cls(desired, int(status.get("readyReplicas", 0)), current)

    @staticmethod
    def of_statefulset(statefulset: dict[str, Any] | None) -> bool:
        """A managed database or Redis is ready when its one pod is."""
        if statefulset is None:
            return False
        return int((statefulset.get("status") or {}).get("readyReplicas", 0)) >= int(
            statefulset.get("spec", {}).get("replicas", 1))

    @property
    def settled(self) -> bool:
        return self.current and self.ready >= self.desired

    @property
    def summary(self) -> str:
        return f"{self.ready}/{self.desired}"


@dataclass
class Observed:
    """What the reconciler found; the status is a function of this."""

    generation: int
    target_version: str
    rolled_out_version: str | None
    api: Workload
    worker: Workload
    data_ready: bool
    endpoint: str
    paused: bool = False
    problem: tuple[str, str] | None = None  # (reason, message) that makes the stack Degraded
    migration: dict[str, Any] | None = None
    migration_failed: bool = False
    migrating: bool = False
    backup: dict[str, Any] | None = None
    backup_failed: bool = False
    restore: dict[str, Any] | None = None
    restore_requested: bool = False  # a failed restore degrades the stack only while it is still asked for


def _condition(previous: list[dict[str, Any]], ctype: str, ok: bool, reason: str, message: str,
               generation: int) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation}


def phase_of(o: Observed) -> tuple[str, str]:
    """(phase, message) in order of precedence."""
    if o.paused:
        return "Paused", "reconciliation paused by annotation"
    if o.problem:
        return "Degraded", o.problem[1]
    if o.migration_failed:
        message = (o.migration or {}).get("message") or "migration failed"
        return "Degraded", f"migration to {o.target_version} failed: {message}"
    if o.migrating:
        return "Migrating", f"migrating the database schema for {o.target_version}"
    if o.restore is not None and o.restore.get("phase") == "Running":
        return "Progressing", f"restoring backup {o.restore.get('request')}; the API is held out of service"
    if o.restore is not None and o.restore.get("phase") == "Failed" and o.restore_requested:
        return "Degraded", f"restore of {o.restore.get('request')} failed: {o.restore.get('message', '')}"
    if o.rolled_out_version is None:
        return "Pending", "waiting for the first migration"
    if not (o.api.settled and o.worker.settled and o.data_ready):
        return "Progressing", (f"api {o.api.summary}, workers {o.worker.summary}"
                               + ("" if o.data_ready else ", database/redis starting"))
    return "Ready", f"version {o.rolled_out_version} serving: api {o.api.summary}, workers {o.worker.summary}"


def deleting(previous: dict[str, Any], message: str) -> dict[str, Any]:
    """The status of a stack whose deletion waits for its final backup: the
    last status, with phase Deleting and the reason in the Ready condition."""
    generation = previous.get("observedGeneration") or 0
    conditions = [c for c in previous.get("conditions") or [] if c.get("type") != "Ready"]
    ready = _condition(previous.get("conditions") or [], "Ready", False, "Deleting", message, generation)
    return {**previous, "phase": "Deleting", "conditions": [ready, *conditions]}


def derive(o: Observed, previous: dict[str, Any]) -> dict[str, Any]:
    conditions_before = previous.get("conditions") or []
    phase, message = phase_of(o)
    serving = o.api.ready > 0 and o.rolled_out_version is not None
    ready = phase == "Ready"

    def cond(ctype: str, ok: bool, reason: str, msg: str) -> dict[str, Any]:
        return _condition(conditions_before, ctype, ok, reason, msg, o.generation)

    conditions = [
        cond("Ready", ready, "Ready" if ready else phase, message),
        cond("Progressing", phase in ("Migrating", "Progressing", "Pending"), phase, message),
        cond("Degraded", phase == "Degraded", o.problem[0] if o.problem else
             ("MigrationFailed" if o.migration_failed else "AsExpected"), message if phase == "Degraded" else ""),
        cond("Paused", o.paused, "Paused" if o.paused else "Reconciling", ""),
    ]
    if o.migration is not None:
        succeeded = not o.migration_failed and not o.migrating
        conditions.append(cond("MigrationSucceeded", succeeded,
                               "MigrationFailed" if o.migration_failed else ("Migrating" if o.migrating else "Succeeded"),
                               o.migration.get("message") or ""))
    if o.backup is not None and (o.backup.get("lastSuccessTime") or o.backup_failed):
        conditions.append(cond("BackupSucceeded", not o.backup_failed,
                               "BackupFailed" if o.backup_failed else "Succeeded", o.backup.get("lastError") or ""))
    if o.backup is not None and o.backup.get("lastVerifyResult"):
        verified = o.backup["lastVerifyResult"] == "Succeeded"
        conditions.append(cond("BackupVerified", verified, "Verified" if verified else "VerifyFailed",
                               o.backup.get("lastVerifyError") or f"test restore at {o.backup['lastVerifyTime']}"))
    status: dict[str, Any] = {
        "observedGeneration": o.generation,
        "phase": phase,
        "targetVersion": o.target_version,
        "api": {"replicas": o.api.desired, "readyReplicas": o.api.ready, "summary": o.api.summary},
        "worker": {"replicas": o.worker.desired, "readyReplicas": o.worker.ready, "summary": o.worker.summary},
        "endpoint": o.endpoint,
        "conditions": conditions,
    }
    if o.rolled_out_version is not None:
        status["version"] = o.rolled_out_version
    if o.migration is not None:
        status["migration"] = o.migration
    if o.backup is not None:
        status["backup"] = o.backup
    if o.restore is not None:
        status["restore"] = o.restore
    if serving and phase == "Degraded":
        conditions[0]["message"] = f"{message} (the previous version keeps serving)"
    return status
