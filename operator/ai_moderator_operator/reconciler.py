"""One level-based reconciliation of a ModerationStack, as an order of named
steps (reconcile/): read what exists, compute what should exist with the pure
builders, apply only the difference, and derive the status from what was
observed. Called by the reconcile daemon in handlers.py, which writes the
status it returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .api import BackupStatus, MigrationStatus, QualityGateStatus, RestoreStatus, ShadowStatus, parse_spec
from .builders import Context, desired_children, policy_yaml, shadow_policy_yaml, spec_policy_yaml
from .children import ChildCache
from .kube import Kube
from .naming import (
    APPLY_NOW_ANNOTATION,
    BACKUP_NOW_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_SHADOW_ANNOTATION,
    RESTORE_ANNOTATION,
    RETRY_MIGRATION_ANNOTATION,
    RETRY_QUALITY_GATE_ANNOTATION,
    Names,
    digest,
)
from .reconcile.applier import Applier, Rejected, Retry
from .reconcile.backups import backup_now, backup_status
from .reconcile.capabilities import KEDA_CRD, SERVICE_MONITOR_CRD, Capabilities
from .reconcile.jobs import JobOutcomes
from .reconcile.migration import Rollout, migrate
from .reconcile.pruning import prune
from .reconcile.quality_gate import gate_candidate, quality_gate
from .reconcile.restore import restore_state, start_restore
from .reconcile.secrets import ensure_generated, referenced_values
from .reconcile.shadow import promote_shadow, shadow_status
from .reconcile.window import Hold, waiting, window_hold
from .status import Observed, Workload, derive

Block = TypeVar("Block", bound=BaseModel)
MIGRATION_POLL_SECONDS = 2.0


class Degraded(Exception):
    """Carries the status to write before retrying with backoff."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["conditions"][0]["message"])
        self.status = status


def _block(model: type[Block], previous: dict[str, Any], key: str) -> Block | None:
    return model.model_validate(previous[key]) if previous.get(key) else None


@dataclass
class Reconciler:
    applier: Applier
    capabilities: Capabilities
    outcomes: JobOutcomes

    @classmethod
    def over(cls, kube: Kube, cache: ChildCache) -> Reconciler:
        return cls(Applier(kube, cache), Capabilities(kube), JobOutcomes(kube))

    def _observe_app(self, observed: Observed, namespace: str, names: Names) -> None:
        cached = self.applier.cached
        observed.api = Workload.of(cached("apps/v1", "Deployment", namespace, names.api))
        observed.worker = Workload.of(cached("apps/v1", "Deployment", namespace, names.worker))

    async def reconcile(self, body: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """Returns the new status and how soon to look again (None: on the next change)."""
        meta = body["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        now = datetime.now(UTC).replace(microsecond=0)
        annotations = meta.get("annotations") or {}
        previous = dict(body.get("status") or {})
        names = Names(name)
        observed = Observed(int(meta.get("generation", 1)), str((body.get("spec") or {}).get("version", "")),
                            previous.get("version"), Workload(), Workload(), False,
                            f"http://{names.api}.{namespace}.svc:80")
        last_migration = _block(MigrationStatus, previous, "migration")
        last_backup = _block(BackupStatus, previous, "backup")
        last_restore = _block(RestoreStatus, previous, "restore")
        last_gate = _block(QualityGateStatus, previous, "qualityGate")
        last_shadow = _block(ShadowStatus, previous, "shadow")
        if annotations.get(PAUSED_ANNOTATION) == "true":
            # No writes: report what exists and keep the recorded history.
            observed.paused = True
            observed.migration, observed.backup, observed.restore = last_migration, last_backup, last_restore
            observed.gate, observed.shadow = last_gate, last_shadow
            self._observe_app(observed, namespace, names)
            return derive(observed, previous), None
        try:
            spec = parse_spec(body.get("spec") or {})
        except ValidationError as exc:
            observed.problem = ("InvalidSpec", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                         for e in exc.errors()[:3]))
            return derive(observed, previous), None

        ctx = Context(name, namespace, meta["uid"], spec, previous.get("version"), "",
                      await self.capabilities.has_crd(KEDA_CRD), await self.capabilities.has_crd(SERVICE_MONITOR_CRD))
        observed.gate, observed.shadow = (last_gate if spec.qualityGate else None), last_shadow
        try:
            external = await referenced_values(self.applier, ctx)
            generated = await ensure_generated(self.applier, ctx)
            # Until the gate passes what the spec asks for, the policy that serves keeps serving.
            candidate = await gate_candidate(self.applier, ctx)
            gated = candidate is not None and (last_gate is None or last_gate.passed != candidate)
        except Retry as exc:
            observed.problem = (exc.reason, str(exc))
            raise Degraded(derive(observed, previous)) from exc

        def hashed(ctx: Context) -> Context:
            # The shadow policy only when there is one: existing stacks keep their hash (no roll).
            shadow = shadow_policy_yaml(ctx)
            return replace(ctx, config_hash=digest(sorted(generated.items()), sorted(external.items()),
                                                   policy_yaml(ctx), *([shadow] if shadow else [])))

        window = window_hold(spec, previous.get("version"), bool(annotations.get(APPLY_NOW_ANNOTATION)), now)
        if gated or window.policy:
            live = self.applier.cached("v1", "ConfigMap", namespace, names.policy)
            ctx = replace(ctx, serving_policy=(live.get("data") or {}).get("policy.yaml") if live else None)
        held_policy = window.policy and ctx.serving_policy not in (None, spec_policy_yaml(ctx))
        observed.maintenance = waiting(window, spec.version, held_policy)
        ctx = hashed(ctx)
        try:
            # Data services and configuration first: the migration needs them.
            # The app's children follow once the version to run is decided, so a
            # Deployment is only ever applied with that version.
            await self._ensure_all(desired_children(replace(ctx, rolled_out_version=None)))
            version, released = await self._version_to_run(ctx, observed, annotations, previous.get("version"),
                                                            last_migration, last_gate, candidate if gated else None,
                                                            window)
            if released:
                ctx = hashed(replace(ctx, serving_policy=None))
            restore_request = await self._restore(ctx, observed, annotations, version, last_restore)
            hold = observed.restore_requested and observed.restore is not None and observed.restore.phase == "Running"
            ctx = replace(ctx, rolled_out_version=version, hold_app=hold)
            desired = desired_children(ctx)
            await self._ensure_all(desired)
            if hold and restore_request and version:
                await start_restore(self.applier, ctx, version, restore_request)
            request = annotations.get(BACKUP_NOW_ANNOTATION)
            if request and spec.backup is not None and version is not None:
                await backup_now(self.applier, ctx, version, request)
            await prune(self.applier, ctx, desired)
        except Rejected as exc:
            observed.problem = ("ChildRejected", str(exc))
            self._observe_app(observed, namespace, names)
            raise Degraded(derive(observed, previous)) from exc
        observed.rolled_out_version = version
        self._observe_app(observed, namespace, names)
        observed.data_ready = all(
            Workload.of_statefulset(self.applier.cached("apps/v1", "StatefulSet", namespace, n))
            for n, on in ((names.postgres, spec.database.managed), (names.redis, spec.redis.managed)) if on)
        observed.backup, observed.backup_failed, observed.backup_overdue = await backup_status(
            self.applier, self.outcomes, ctx, last_backup)
        kube = self.applier.kube
        shadow = await shadow_status(kube, ctx, last_shadow, now) if version else last_shadow
        observed.shadow = await promote_shadow(kube, body, annotations.get(PROMOTE_SHADOW_ANNOTATION, ""), shadow)
        waiting_on_job = observed.migrating or observed.gate_running
        return derive(observed, previous), (MIGRATION_POLL_SECONDS if waiting_on_job else None)

    async def _version_to_run(self, ctx: Context, observed: Observed, annotations: dict[str, str],
                              rolled: str | None, last_migration: MigrationStatus | None,
                              last_gate: QualityGateStatus | None, gated: str | None, window: Hold
                              ) -> tuple[str | None, bool]:
        """The version the app runs after this pass -- the spec's once its
        migration succeeded (and its window is open, and its quality gate
        passed) -- and whether the spec's policy was released by the gate now.
        `gated` is the candidate the gate still has to pass, if any."""
        spec = ctx.spec
        rollout = Rollout(rolled, last_migration) if window.version else await migrate(
            self.applier, self.outcomes, ctx, rolled, last_migration, annotations.get(RETRY_MIGRATION_ANNOTATION, ""))
        observed.migration, observed.migration_failed, observed.migrating = (
            rollout.status, rollout.failed, rollout.running)
        if gated is None:
            return rollout.version, False
        if rollout.version != spec.version or window.policy:
            return rolled, False
        gate = await quality_gate(self.applier, self.outcomes, ctx, gated, last_gate,
                                  annotations.get(RETRY_QUALITY_GATE_ANNOTATION, ""), ctx.serving_policy)
        observed.gate, observed.gate_failed, observed.gate_running = gate.status, gate.failed, gate.running
        return (spec.version, True) if gate.passed else (rolled, False)

    async def _restore(self, ctx: Context, observed: Observed, annotations: dict[str, str], version: str | None,
                       last_restore: RestoreStatus | None) -> str | None:
        """The restore asked for (annotation or spec.backup.restoreFrom) and its state, into `observed`."""
        backup = ctx.spec.backup
        request = annotations.get(RESTORE_ANNOTATION) or (backup.restoreFrom if backup else None)
        observed.restore = last_restore
        if request and backup is None:
            observed.problem = ("RestoreRefused", f"cannot restore {request}: spec.backup is not set, "
                                                  "so there is no backup location to restore from")
            return None
        if request and version is not None:
            observed.restore_requested = True
            observed.restore = await restore_state(self.applier, self.outcomes, ctx, request, last_restore)
        return request

    async def _ensure_all(self, manifests: list[dict[str, Any]]) -> None:
        await asyncio.gather(*(self.applier.ensure(m) for m in manifests))
