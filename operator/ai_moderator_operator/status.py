"""Status from what exists: pure functions from what the reconcile steps
observed to the status block (keeping lastTransitionTime unless a condition
really changes), the merge patch that writes it, and the Event of a phase
transition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .api import (
    API_VERSION,
    KIND,
    BackupStatus,
    MaintenanceStatus,
    MigrationStatus,
    QualityGateStatus,
    RestoreStatus,
    ShadowStatus,
)
from .naming import APPLY_NOW_ANNOTATION


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


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
    migration: MigrationStatus | None = None
    migration_failed: bool = False
    migrating: bool = False
    backup: BackupStatus | None = None
    backup_failed: bool = False
    backup_overdue: str | None = None  # why there is no recent enough backup (degrades the stack)
    restore: RestoreStatus | None = None
    restore_requested: bool = False  # a failed restore degrades the stack only while it is still asked for
    gate: QualityGateStatus | None = None
    gate_failed: bool = False
    gate_running: bool = False
    maintenance: MaintenanceStatus | None = None
    shadow: ShadowStatus | None = None


def dumped(block: MigrationStatus | BackupStatus | RestoreStatus | QualityGateStatus | MaintenanceStatus
           | ShadowStatus | None) -> dict[str, Any] | None:
    """A status block as it is stored (times as RFC 3339 with Z, no empty fields)."""
    return None if block is None else block.model_dump(mode="json", exclude_none=True)


def _condition(previous: list[dict[str, Any]], ctype: str, ok: bool, reason: str, message: str,
               generation: int) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation}


def phase_of(o: Observed) -> tuple[str, str, str]:
    """(phase, reason, message) in order of precedence. The reason is the
    phase's own name except for Degraded, where it says which problem."""
    if o.paused:
        return "Paused", "Paused", "reconciliation paused by annotation"
    if o.problem:
        return "Degraded", *o.problem
    if o.migration_failed:
        message = (o.migration.message if o.migration else None) or "migration failed"
        return "Degraded", "MigrationFailed", f"migration to {o.target_version} failed: {message}"
    if o.migrating:
        return "Migrating", "Migrating", f"migrating the database schema for {o.target_version}"
    if o.gate_failed and o.gate is not None:
        return "Degraded", "QualityGateFailed", f"quality gate failed for {o.gate.candidate}: {o.gate.message or ''}"
    if o.gate_running and o.gate is not None:
        return "Progressing", "QualityGate", f"evaluating {o.gate.candidate} on the golden set before it rolls out"
    if o.restore is not None and o.restore.phase == "Running":
        return "Progressing", "Restoring", f"restoring backup {o.restore.request}; the API is held out of service"
    if o.restore is not None and o.restore.phase == "Failed" and o.restore_requested:
        return "Degraded", "RestoreFailed", f"restore of {o.restore.request} failed: {o.restore.message or ''}"
    if o.maintenance is not None and o.maintenance.waiting:
        start = o.maintenance.nextWindowStart.isoformat() if o.maintenance.nextWindowStart else "(none found)"
        return "Pending", "MaintenanceWindow", (f"{o.maintenance.waiting} waits for the maintenance window at {start}"
                                                f" (or annotate {APPLY_NOW_ANNOTATION}=true)")
    if o.rolled_out_version is None:
        return "Pending", "Pending", "waiting for the first migration"
    if not (o.api.settled and o.worker.settled and o.data_ready):
        return "Progressing", "Progressing", (f"api {o.api.summary}, workers {o.worker.summary}"
                                              + ("" if o.data_ready else ", database/redis starting"))
    if o.backup_overdue:
        return "Degraded", "BackupOverdue", f"{o.backup_overdue}; the API keeps serving"
    return "Ready", "Ready", f"version {o.rolled_out_version} serving: api {o.api.summary}, workers {o.worker.summary}"


def deleting(previous: dict[str, Any], message: str) -> dict[str, Any]:
    """The status of a stack whose deletion waits for its final backup: the
    last status, with phase Deleting and the reason in the Ready condition."""
    generation = previous.get("observedGeneration") or 0
    conditions = [c for c in previous.get("conditions") or [] if c.get("type") != "Ready"]
    ready = _condition(previous.get("conditions") or [], "Ready", False, "Deleting", message, generation)
    return {**previous, "phase": "Deleting", "conditions": [ready, *conditions]}


def derive(o: Observed, previous: dict[str, Any]) -> dict[str, Any]:
    conditions_before = previous.get("conditions") or []
    phase, reason, message = phase_of(o)
    serving = o.api.ready > 0 and o.rolled_out_version is not None
    ready = phase == "Ready"
    degraded = phase == "Degraded"

    def cond(ctype: str, ok: bool, reason: str, msg: str) -> dict[str, Any]:
        return _condition(conditions_before, ctype, ok, reason, msg, o.generation)

    conditions = [
        cond("Ready", ready, "Ready" if ready else phase, message),
        cond("Progressing", phase in ("Migrating", "Progressing", "Pending"), phase, message),
        cond("Degraded", degraded, reason if degraded else "AsExpected", message if degraded else ""),
        cond("Paused", o.paused, "Paused" if o.paused else "Reconciling", ""),
    ]
    if o.migration is not None:
        succeeded = not o.migration_failed and not o.migrating
        migration_reason = "MigrationFailed" if o.migration_failed else ("Migrating" if o.migrating else "Succeeded")
        conditions.append(cond("MigrationSucceeded", succeeded, migration_reason,
                               o.migration.message or ""))
    if o.gate is not None and o.gate.phase in ("Passed", "Failed"):
        conditions.append(cond("QualityGatePassed", o.gate.phase == "Passed",
                               "Passed" if o.gate.phase == "Passed" else "QualityGateFailed",
                               o.gate.message or f"{o.gate.candidate}: flag rate {o.gate.flagRate}"))
    backup = dumped(o.backup)
    if backup is not None and (backup.get("lastSuccessTime") or o.backup_failed or o.backup_overdue):
        backup_ok = not (o.backup_failed or o.backup_overdue)
        backup_reason = "BackupFailed" if o.backup_failed else "BackupOverdue" if o.backup_overdue else "Succeeded"
        conditions.append(cond("BackupSucceeded", backup_ok, backup_reason,
                               backup.get("lastError") or o.backup_overdue or ""))
    if backup is not None and backup.get("lastVerifyResult"):
        verified = backup["lastVerifyResult"] == "Succeeded"
        conditions.append(cond("BackupVerified", verified, "Verified" if verified else "VerifyFailed",
                               backup.get("lastVerifyError") or f"test restore at {backup['lastVerifyTime']}"))
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
    for key, block in (("migration", dumped(o.migration)), ("backup", backup), ("restore", dumped(o.restore)),
                       ("qualityGate", dumped(o.gate)), ("maintenance", dumped(o.maintenance)),
                       ("shadow", dumped(o.shadow))):
        if block is not None:
            status[key] = block
    if serving and degraded and reason != "BackupOverdue":
        conditions[0]["message"] = f"{message} (the previous version keeps serving)"
    return status


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch (RFC 7386) from old to new status, None when equal.
    Keys gone from new become null at every depth, so a nested block such as
    status.migration never keeps a stale field."""
    if old == new:
        return None
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = status_patch(before, value)
            if nested is not None:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


def transition_event(name: str, namespace: str, uid: str, old_phase: str | None, status: dict[str, Any]
                     ) -> dict[str, Any] | None:
    """The Event of a phase change (Warning when it becomes Degraded), None without one."""
    phase = status.get("phase")
    if phase == old_phase:
        return None
    message = next((c["message"] for c in status.get("conditions", []) if c["type"] == "Ready"), "")
    stamp = now_iso()
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": name, "namespace": namespace,
                               "uid": uid},
            "reason": phase, "message": message[:1024], "type": "Warning" if phase == "Degraded" else "Normal",
            "source": {"component": "ai-moderator-operator"}, "firstTimestamp": stamp, "lastTimestamp": stamp,
            "count": 1}
