"""One level-based reconciliation of a ModerationStack: read what exists,
compute what should exist with the pure builders, apply only the difference
(server-side apply, one field manager), and write status only when it changed."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .api import API_VERSION, KIND, ModerationStackSpec, SecretKeyRef, parse_spec
from .builders import (S3_CREDENTIAL_KEYS, VERIFY_COMPONENT, Context, app_secret, backup_location, backup_now_job,
                       desired_children, migration_job, policy_yaml, restore_job)
from .children import PRUNABLE, ChildCache
from .diff import contains
from .kube import ApiError, Kube
from .metrics import BACKUP_INTERVAL, LAST_BACKUP_SUCCESS, LAST_VERIFY_SUCCESS, MIGRATION_DURATION
from .schedule import interval_seconds
from .naming import (BACKUP_NOW_ANNOTATION, COMPONENT_LABEL, PAUSED_ANNOTATION, RESTORE_ANNOTATION,
                     RETRY_MIGRATION_ANNOTATION, Names, digest)
from .status import Observed, Workload, derive, now_iso

log = logging.getLogger(__name__)
CAPABILITY_TTL = 60.0


class Retry(Exception):
    """The stack cannot converge yet (e.g. a referenced Secret is missing)."""


class Rejected(Exception):
    """The API server refused a child built from the spec: something the CRD
    schema cannot check (say, a label value in nodeSelector)."""


async def _apply(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    try:
        return await kube.apply(manifest)
    except ApiError as exc:
        if exc.status in (400, 422):
            meta = manifest["metadata"]
            raise Rejected(f"the API server rejected {manifest['kind']} {meta['name']}: {exc.message}") from exc
        raise


@dataclass
class Capabilities:
    """Optional APIs in the cluster (KEDA, Prometheus Operator), checked at most once a minute."""

    kube: Kube
    _checked: dict[str, tuple[float, bool]] = field(default_factory=dict)

    async def has_crd(self, name: str) -> bool:
        hit = self._checked.get(name)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        found = await self.kube.exists("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name)
        self._checked[name] = (time.monotonic() + CAPABILITY_TTL, found)
        return found


def _decode(secret: dict[str, Any] | None) -> dict[str, str]:
    if not secret:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _secret_refs(spec: ModerationStackSpec) -> Iterator[tuple[str, SecretKeyRef, bool]]:
    """(where, reference, consumed by the API and workers) of every Secret key the spec names."""
    for where, external in (("spec.database.external.urlSecretRef", spec.database.external),
                            ("spec.redis.external.urlSecretRef", spec.redis.external)):
        if external is not None:
            yield where, external.urlSecretRef, True
    backup = spec.backup
    s3 = backup.storage.s3 if backup and backup.storage else None
    if s3 is not None:
        for key in S3_CREDENTIAL_KEYS:
            yield "spec.backup.storage.s3.credentialsSecret", SecretKeyRef(name=s3.credentialsSecret.name, key=key), False
    if backup and backup.verify and backup.verify.scratchDatabaseSecretRef:
        yield "spec.backup.verify.scratchDatabaseSecretRef", backup.verify.scratchDatabaseSecretRef, False


def _true_conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def job_state(job: dict[str, Any]) -> tuple[str, str, str | None]:
    """(phase, message, completion time of a successful Job) of a Job."""
    conditions = _true_conditions(job)
    if "Complete" in conditions:
        return "Succeeded", "", (job.get("status") or {}).get("completionTime")
    if "Failed" in conditions:
        c = conditions["Failed"]
        return "Failed", f"{c.get('reason', 'Failed')}: {c.get('message', '')}".strip(": "), None
    return "Running", "", None


def _finished_at(job: dict[str, Any]) -> str:
    """When a Job succeeded or failed ("" while it runs)."""
    failed = _true_conditions(job).get("Failed") or {}
    return (job.get("status") or {}).get("completionTime") or failed.get("lastTransitionTime", "")


def last_failed_attempt(pods: list[dict[str, Any]]) -> str:
    """How the newest failed pod of a Job ended: exit code, reason and the last
    line of its termination message (the log tail, see FallbackToLogsOnError)."""
    ended = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode", 0) != 0:
                ended.append((terminated.get("finishedAt") or "", terminated))
    if not ended:
        return ""
    terminated = max(ended, key=lambda e: e[0])[1]
    lines = [line.strip() for line in (terminated.get("message") or "").splitlines() if line.strip()]
    detail = f"last attempt exited {terminated['exitCode']} ({terminated.get('reason', 'Error')})"
    return f"{detail}: {lines[-1][:300]}" if lines else detail


@dataclass
class Reconciler:
    kube: Kube
    cache: ChildCache
    capabilities: Capabilities
    # Failure details by Job uid: a finished Job never changes, so its pods are read once.
    _failures: dict[str, str] = field(default_factory=dict)

    async def job_outcome(self, job: dict[str, Any]) -> tuple[str, str, str | None]:
        """job_state, with a failed Job's message completed by how its last pod ended."""
        phase, message, completed = job_state(job)
        if phase != "Failed":
            return phase, message, completed
        meta = job["metadata"]
        uid = meta.get("uid", meta["name"])
        if uid not in self._failures:
            pods = await self.kube.list("v1", "Pod", meta["namespace"], f"batch.kubernetes.io/job-name={meta['name']}")
            attempt = last_failed_attempt(pods)
            if len(self._failures) >= 512:
                self._failures.pop(next(iter(self._failures)))
            self._failures[uid] = f"{message}; {attempt}" if attempt else message
        return phase, self._failures[uid], completed

    def _workload(self, namespace: str, deployment: str) -> Workload:
        return Workload.of(self.cache.get("apps/v1", "Deployment", namespace, deployment))

    async def _live(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        meta = manifest["metadata"]
        found = self.cache.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        if found is None:
            # Not seen (yet) by a watch: ask, so a warming cache never causes a write.
            found = await self.kube.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        return found

    async def ensure(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Apply the manifest unless the live object already holds all of it."""
        live = await self._live(manifest)
        if live is not None and contains(live, manifest):
            return live
        applied = await _apply(self.kube, manifest)
        self.cache.observe("MODIFIED", applied)
        log.info("applied %s %s/%s", manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"],
                 extra={"kind": manifest["kind"], "child": manifest["metadata"]["name"], "new": live is None})
        return applied

    async def ensure_once(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a one-shot Job unless it exists; never update it (a Job's
        template is immutable, and a finished Job is a record to keep)."""
        live = await self._live(manifest)
        if live is not None:
            return live
        created = await _apply(self.kube, manifest)
        self.cache.observe("ADDED", created)
        log.info("created %s %s/%s", manifest["kind"], manifest["metadata"]["namespace"],
                 manifest["metadata"]["name"], extra={"kind": manifest["kind"], "child": manifest["metadata"]["name"]})
        return created

    async def _app_secret(self, names: Names, namespace: str, spec: ModerationStackSpec,
                          ctx_for_meta: Context) -> dict[str, str]:
        """The generated Secret: created once; later only keys a new spec needs
        are added. Existing values are never regenerated."""
        live = self.cache.get("v1", "Secret", namespace, names.app_secret) or await self.kube.get(
            "v1", "Secret", namespace, names.app_secret)
        data = _decode(live)
        wanted: dict[str, str] = {}
        wanted.setdefault("SECRET_KEY", data.get("SECRET_KEY") or secrets.token_urlsafe(48))
        wanted.setdefault("ADMIN_API_KEY", data.get("ADMIN_API_KEY") or secrets.token_urlsafe(32))
        if spec.database.managed:
            password = data.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
            wanted["POSTGRES_PASSWORD"] = password
            wanted["DATABASE_URL"] = data.get("DATABASE_URL") or (
                f"postgresql://moderator:{password}@{names.postgres}:5432/moderation_db")
        if spec.redis.managed:
            password = data.get("REDIS_PASSWORD") or secrets.token_urlsafe(24)
            wanted["REDIS_PASSWORD"] = password
            wanted["REDIS_ADDRESS"] = data.get("REDIS_ADDRESS") or f"{names.redis}:6379"
            wanted["REDIS_URL"] = data.get("REDIS_URL") or f"redis://:{password}@{names.redis}:6379/0"
        merged = {**data, **wanted}
        if live is None or merged != data:
            applied = await self.kube.apply(app_secret(ctx_for_meta, merged))
            self.cache.observe("MODIFIED", applied)
        return merged

    async def _external_values(self, namespace: str, stack: str, spec: ModerationStackSpec) -> dict[str, str]:
        """Values of the referenced Secrets the app consumes (they go into the
        config hash); every reference, also those only Jobs use, must resolve.
        A missing one is a clear, retried problem."""
        values: dict[str, str] = {}
        refs = list(_secret_refs(spec))
        self.cache.set_references(namespace, stack, {ref.name for _, ref, _ in refs})
        for where, ref, consumed in refs:
            secret = self.cache.get("v1", "Secret", namespace, ref.name) or await self.kube.get(
                "v1", "Secret", namespace, ref.name)
            if secret is None:
                raise Retry(f"Secret {ref.name!r} referenced by {where} does not exist in namespace {namespace!r}")
            data = _decode(secret)
            if ref.key not in data:
                raise Retry(f"Secret {ref.name!r} has no key {ref.key!r} (referenced by {where})")
            if consumed:
                values[f"{ref.name}/{ref.key}"] = data[ref.key]
        return values

    async def _migrate(self, ctx: Context, status: dict[str, Any], annotations: dict[str, str],
                       observed: Observed) -> str | None:
        """Gate the rollout: the API and workers move to the target version only
        after its migration Job succeeded. Returns the version to run."""
        target, rolled = ctx.spec.version, status.get("version")
        previous = status.get("migration")
        if rolled == target:
            observed.migration = previous
            return rolled
        retry = annotations.get(RETRY_MIGRATION_ANNOTATION, "")
        image = ctx.image(target)
        job_name = ctx.names.migration_job(image + (f"#{retry}" if retry else ""))
        job = self.cache.get("batch/v1", "Job", ctx.namespace, job_name) or await self.kube.get(
            "batch/v1", "Job", ctx.namespace, job_name)
        if job is None:
            manifest = migration_job(ctx, target)
            manifest["metadata"]["name"] = job_name
            job = await _apply(self.kube, manifest)
            self.cache.observe("ADDED", job)
        phase, message, completed = await self.job_outcome(job)
        observed.migration = {"job": job_name, "phase": phase, "targetVersion": target}
        if message:
            observed.migration["message"] = message
        if completed:
            observed.migration["completionTime"] = completed
        if phase == "Succeeded":
            start = (job.get("status") or {}).get("startTime")
            if start and completed and (previous or {}).get("phase") != "Succeeded":
                MIGRATION_DURATION.observe(max(0.0, (_ts(completed) - _ts(start))))
            return target
        observed.migration_failed = phase == "Failed"
        observed.migrating = phase == "Running"
        return rolled

    async def _restore_state(self, ctx: Context, version: str, request: str,
                             previous: dict[str, Any] | None) -> dict[str, Any]:
        """Where the restore of `request` stands; a finished one is not redone."""
        if previous and previous.get("request") == request and previous.get("phase") in ("Succeeded", "Failed"):
            return previous
        name = restore_job(ctx, version, request)["metadata"]["name"]
        job = self.cache.get("batch/v1", "Job", ctx.namespace, name) or await self.kube.get(
            "batch/v1", "Job", ctx.namespace, name)
        phase, message, completed = ("Running", "", None) if job is None else await self.job_outcome(job)
        state: dict[str, Any] = {"request": request, "job": name, "phase": phase}
        if message:
            state["message"] = message
        if completed:
            state["completionTime"] = completed
        return state

    async def _start_restore(self, ctx: Context, version: str, request: str) -> None:
        """Once no API or worker pod is left, run the restore Job."""
        for deployment in (ctx.names.api, ctx.names.worker):
            live = self.cache.get("apps/v1", "Deployment", ctx.namespace, deployment)
            if live and int((live.get("status") or {}).get("replicas", 0)) > 0:
                return
        await self.ensure_once(restore_job(ctx, version, request))

    async def _backup_status(self, ctx: Context, previous: dict[str, Any] | None
                             ) -> tuple[dict[str, Any] | None, bool]:
        """From the backup CronJobs and their Jobs: last schedule, last success,
        last error, and the outcome of the last test restore."""
        if ctx.spec.backup is None:
            return None, False
        BACKUP_INTERVAL.labels(ctx.namespace, ctx.name).set(interval_seconds(ctx.spec.backup.schedule))
        result = dict(previous or {})
        result["location"] = backup_location(ctx)
        cron = self.cache.get("batch/v1", "CronJob", ctx.namespace, ctx.names.backup)
        if cron and (cron.get("status") or {}).get("lastScheduleTime"):
            result["lastScheduleTime"] = cron["status"]["lastScheduleTime"]
        # Only backup and test-restore Jobs: a failed one costs a read of its pods.
        jobs = sorted((o for o in self.cache.owned_by(ctx.namespace, ctx.name) if o["kind"] == "Job"
                       and o["metadata"].get("labels", {}).get(COMPONENT_LABEL) in ("backup", VERIFY_COMPONENT)),
                      key=_finished_at)
        failed: bool | None = None
        for job in jobs:
            component = job["metadata"]["labels"][COMPONENT_LABEL]
            phase, message, completed = await self.job_outcome(job)
            if phase == "Running":
                continue
            if component == "backup":
                failed = phase == "Failed"
                if completed and completed > (result.get("lastSuccessTime") or ""):
                    result["lastSuccessTime"] = completed
                if failed:
                    result["lastError"] = f"{job['metadata']['name']}: {message}"
            elif component == VERIFY_COMPONENT and _finished_at(job) >= (result.get("lastVerifyTime") or ""):
                result["lastVerifyTime"] = _finished_at(job)
                result["lastVerifyResult"] = phase
                if phase == "Failed":
                    result["lastVerifyError"] = f"{job['metadata']['name']}: {message}"
                else:
                    result.pop("lastVerifyError", None)
                    LAST_VERIFY_SUCCESS.labels(ctx.namespace, ctx.name).set(_ts(result["lastVerifyTime"]))
        if failed is False:
            result.pop("lastError", None)
        if result.get("lastSuccessTime"):
            LAST_BACKUP_SUCCESS.labels(ctx.namespace, ctx.name).set(_ts(result["lastSuccessTime"]))
        return result, bool(failed) or (failed is None and "lastError" in result)

    async def _prune(self, ctx: Context, desired: list[dict[str, Any]]) -> None:
        wanted = {ChildCache.key(m) for m in desired}
        for obj in list(self.cache.owned_by(ctx.namespace, ctx.name)):
            if obj["kind"] in PRUNABLE and ChildCache.key(obj) not in wanted:
                meta = obj["metadata"]
                log.info("pruning child no longer in the spec", extra={"kind": obj["kind"], "child": meta["name"]})
                await self.kube.delete(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
                self.cache.observe("DELETED", obj)
        jobs = sorted((o for o in self.cache.owned_by(ctx.namespace, ctx.name) if o["kind"] == "Job"
                       and o["metadata"].get("labels", {}).get(COMPONENT_LABEL) == "migration"),
                      key=lambda j: j["metadata"].get("creationTimestamp", ""))
        for job in jobs[:-3]:  # keep the last three migration Jobs for inspection
            meta = job["metadata"]
            await self.kube.delete("batch/v1", "Job", meta["namespace"], meta["name"])
            self.cache.observe("DELETED", job)

    async def reconcile(self, body: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """Returns the new status and how soon to look again (None: on the next change)."""
        meta = body["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        generation = int(meta.get("generation", 1))
        annotations = meta.get("annotations") or {}
        previous = dict(body.get("status") or {})
        names = Names(name)
        endpoint = f"http://{names.api}.{namespace}.svc:80"
        empty = Observed(generation, str((body.get("spec") or {}).get("version", "")), previous.get("version"),
                         Workload(), Workload(), False, endpoint)
        if annotations.get(PAUSED_ANNOTATION) == "true":
            # No writes: report what exists and keep the recorded history.
            paused = replace(empty, paused=True, api=self._workload(namespace, names.api),
                             worker=self._workload(namespace, names.worker), migration=previous.get("migration"),
                             backup=previous.get("backup"), restore=previous.get("restore"))
            return derive(paused, previous), None
        try:
            spec = parse_spec(body.get("spec") or {})
        except ValidationError as exc:
            empty.problem = ("InvalidSpec", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                      for e in exc.errors()[:3]))
            return derive(empty, previous), None
        keda = await self.capabilities.has_crd("scaledobjects.keda.sh")
        monitor = await self.capabilities.has_crd("servicemonitors.monitoring.coreos.com")
        base = Context(name, namespace, uid, spec, previous.get("version"), "", keda, monitor)
        try:
            external = await self._external_values(namespace, name, spec)
        except Retry as exc:
            empty.problem = ("SecretNotFound", str(exc))
            raise Degraded(derive(empty, previous)) from exc
        generated = await self._app_secret(names, namespace, spec, base)
        config_hash = digest(sorted(generated.items()), sorted(external.items()), policy_yaml(base))
        ctx = replace(base, config_hash=config_hash)
        observed = Observed(generation, spec.version, None, Workload(), Workload(), False, endpoint)
        try:
            # Data services and configuration first: the migration needs them.
            # The app's children follow once the version to run is decided, so a
            # Deployment is only ever applied with that version.
            await asyncio.gather(*(self.ensure(m) for m in desired_children(replace(ctx, rolled_out_version=None))))
            rolled = await self._migrate(ctx, previous, annotations, observed)
            restore_request = annotations.get(RESTORE_ANNOTATION) or (spec.backup.restoreFrom if spec.backup else None)
            hold = False
            if restore_request and rolled is not None:
                observed.restore_requested = True
                observed.restore = await self._restore_state(ctx, rolled, restore_request, previous.get("restore"))
                hold = observed.restore.get("phase") == "Running"
            ctx = replace(ctx, rolled_out_version=rolled, hold_app=hold)
            desired = desired_children(ctx)
            await asyncio.gather(*(self.ensure(m) for m in desired))
            if hold:
                await self._start_restore(ctx, rolled, restore_request)
            elif observed.restore is None and previous.get("restore"):
                observed.restore = previous["restore"]
            request = annotations.get(BACKUP_NOW_ANNOTATION)
            if request and spec.backup is not None and rolled is not None:
                await self.ensure_once(backup_now_job(ctx, rolled, request))
            await self._prune(ctx, desired)
        except Rejected as exc:
            observed.problem = ("ChildRejected", str(exc))
            observed.rolled_out_version = previous.get("version")
            observed.api = self._workload(namespace, names.api)
            observed.worker = self._workload(namespace, names.worker)
            raise Degraded(derive(observed, previous)) from exc
        observed.rolled_out_version = rolled
        observed.api = self._workload(namespace, names.api)
        observed.worker = self._workload(namespace, names.worker)
        observed.data_ready = all(
            Workload.of_statefulset(self.cache.get("apps/v1", "StatefulSet", namespace, n))
            for n, on in ((names.postgres, spec.database.managed), (names.redis, spec.redis.managed)) if on)
        observed.backup, observed.backup_failed = await self._backup_status(ctx, previous.get("backup"))
        status = derive(observed, previous)
        return status, (2.0 if observed.migrating else None)


class Degraded(Exception):
    """Carries the status to write before retrying with backoff."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["conditions"][0]["message"])
        self.status = status



def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


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
