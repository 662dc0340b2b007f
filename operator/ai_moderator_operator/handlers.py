"""kopf wiring, kept thin: watch events feed the child cache and wake the
stack they belong to; one daemon per ModerationStack runs the level-based
reconcile loop (on every change, and at least once a minute)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from .api import API_VERSION, GROUP, KIND, PLURAL, VERSION, parse_spec
from .builders import Context, final_backup_job
from .children import MANAGED_SELECTOR, WATCHED, ChildCache
from .kube import ApiError, Kube, resource_path
from .metrics import CONTROLLER, RECONCILE_ERRORS, RECONCILE_TIME, RECONCILE_TOTAL, PhaseBook
from .naming import PREFIX, Names
from .reconciler import Capabilities, Degraded, Reconciler, status_patch, transition_event
from .status import deleting

log = logging.getLogger(__name__)
RESYNC_SECONDS = 60.0
DEBOUNCE_SECONDS = 0.25
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

Key = tuple[str, str]


@dataclass
class OperatorState:
    cache: ChildCache = field(default_factory=ChildCache)
    phases: PhaseBook = field(default_factory=PhaseBook)
    wakeups: dict[Key, asyncio.Event] = field(default_factory=dict)
    kube: Kube | None = None
    reconciler: Reconciler | None = None

    def attach(self, conn: kopf.ConnectionInfo) -> None:
        self.kube = Kube(conn)
        self.reconciler = Reconciler(self.kube, self.cache, Capabilities(self.kube))

    def wakeup(self, key: Key) -> asyncio.Event:
        return self.wakeups.setdefault(key, asyncio.Event())

    def wake(self, key: Key) -> None:
        event = self.wakeups.get(key)
        if event is not None:
            event.set()


STATE = OperatorState()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Events are posted by us on phase transitions only; kopf's would be a
    # write per handler run. Its bookkeeping goes to annotations so it never
    # collides with our strict status schema.
    settings.posting.enabled = False
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    conn = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if conn is not None:
        STATE.attach(conn)
    return conn


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    if STATE.kube is not None:
        await STATE.kube.close()


async def child_event(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
    obj = dict(body)
    STATE.cache.observe(event.get("type"), obj)
    meta = obj["metadata"]
    instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance")
    if instance:
        STATE.wake((meta.get("namespace", ""), instance))


for _group, _version, _plural, _kind in WATCHED:
    kopf.on.event(f"{_group}/{_version}" if _group else _version, _plural, labels=MANAGED_SELECTOR,
                  id=f"watch-{_plural}")(child_event)


def _referenced(namespace: str, name: str, **_: Any) -> bool:
    return bool(STATE.cache.referencing(namespace, name))


@kopf.on.event("v1", "secrets", when=_referenced, id="watch-referenced-secrets")
async def referenced_secret_event(namespace: str, name: str, **_: Any) -> None:
    """A user's Secret that stacks reference changed (e.g. a rotated database
    URL): reconcile them now, so the config hash rolls their pods."""
    for stack in STATE.cache.referencing(namespace, name):
        STATE.wake((namespace, stack))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def stack_event(event: dict[str, Any], name: str, namespace: str, **_: Any) -> None:
    if event.get("type") == "DELETED":
        STATE.cache.set_references(namespace, name, set())
        STATE.phases.set((namespace, name), None)
        STATE.wakeups.pop((namespace, name), None)
    else:
        STATE.wake((namespace, name))


async def _final_backup(reconciler: Reconciler, body: dict[str, Any]) -> None:
    """Run the final backup Job and wait for it (kopf retries this handler,
    keeping the finalizer, until the Job has succeeded)."""
    meta = body["metadata"]
    spec = parse_spec(body.get("spec") or {})
    version = (body.get("status") or {}).get("version")
    if version is None:
        log.info("no final backup of %s/%s: no version was ever rolled out", meta["namespace"], meta["name"])
        return
    ctx = Context(meta["name"], meta["namespace"], meta["uid"], spec, version, "")
    manifest = final_backup_job(ctx, version)
    kube = reconciler.kube
    job = await kube.get("batch/v1", "Job", ctx.namespace, manifest["metadata"]["name"]) or await kube.apply(manifest)
    phase, message, _ = await reconciler.job_outcome(job)
    if phase == "Succeeded":
        log.info("final backup of %s/%s done", ctx.namespace, ctx.name)
        return
    if phase == "Failed":
        why = (f"the final backup Job {ctx.names.final_backup} failed ({message}); deletion waits: delete the Job "
               "to try again, or set spec.backup.finalBackupOnDelete to false to delete without it")
    else:
        why = f"waiting for the final backup Job {ctx.names.final_backup} before deleting"
    await _write_status(kube, body, deleting(body.get("status") or {}, why))
    STATE.phases.set((ctx.namespace, ctx.name), "Deleting")
    raise kopf.TemporaryError(why, delay=30 if phase == "Failed" else 2)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="deletion-policy")
async def apply_deletion_policy(body: kopf.Body, name: str, namespace: str, **_: Any) -> None:
    """Optionally back up once more, then apply the deletion policy. Retain:
    the data Secret and backup volume lose their owner reference, so garbage
    collection keeps them (database and Redis volumes are never owned).
    Delete: those volumes go too -- except the backup volume holding a final
    backup."""
    assert STATE.kube is not None and STATE.reconciler is not None
    names = Names(name)
    spec = dict(body.get("spec") or {})
    final = bool((spec.get("backup") or {}).get("finalBackupOnDelete"))
    if final:
        await _final_backup(STATE.reconciler, dict(body))
    retain = spec.get("deletionPolicy", "Retain") == "Retain"
    kept = ([("Secret", names.app_secret)] if retain else []) + (
        [("PersistentVolumeClaim", names.backups_pvc)] if retain or final else [])
    for kind, child in kept:
        if await STATE.kube.get("v1", kind, namespace, child) is not None:
            await STATE.kube.merge_patch("v1", kind, namespace, child, {"metadata": {"ownerReferences": None}})
    if not retain:
        claims = [f"data-{names.postgres}-0", f"data-{names.redis}-0"] + ([] if final else [names.backups_pvc])
        for claim in claims:
            await STATE.kube.delete("v1", "PersistentVolumeClaim", namespace, claim)
    log.info("deletion policy %s applied to %s/%s", "Retain" if retain else "Delete", namespace, name,
             extra={"kept": [c for _, c in kept]})


async def _write_status(kube: Kube, body: dict[str, Any], status: dict[str, Any]) -> None:
    meta = body["metadata"]
    old = body.get("status") or {}
    patch = status_patch(old, status)
    if patch is None:
        return
    await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"], {"status": patch}, "status")
    event = transition_event(meta["name"], meta["namespace"], meta["uid"], old.get("phase"), status)
    if event is not None:
        try:
            await kube.request("POST", resource_path("v1", "Event", meta["namespace"]), event)
        except ApiError as exc:  # an Event is informative; never fail a reconcile over it
            log.debug("could not post event: %s", exc)


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if wake.is_set() and not stopped:
        # Children change in bursts (a rollout updates a Deployment's status
        # several times): let the burst land and reconcile once for all of it.
        await stopped.wait(DEBOUNCE_SECONDS)


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconcile", cancellation_timeout=10)
async def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, name: str, namespace: str,
                         **_: Any) -> None:
    key = (namespace, name)
    wake = STATE.wakeup(key)
    failures = 0
    while not stopped:
        wake.clear()
        snapshot = copy.deepcopy(dict(body))
        if snapshot["metadata"].get("deletionTimestamp"):
            # Being deleted: the garbage collector removes the children; any
            # write now would only race it.
            await _sleep(wake, stopped, RESYNC_SECONDS)
            continue
        started = time.perf_counter()
        assert STATE.reconciler is not None and STATE.kube is not None
        try:
            try:
                status, delay = await STATE.reconciler.reconcile(snapshot)
                result = "requeue" if delay else "success"
            except Degraded as degraded:
                status, delay, result = degraded.status, None, "error"
            await _write_status(STATE.kube, snapshot, status)
        except (ApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # Transient (API server restarting, namespace terminating): retry
            # with backoff, leave the status as it was.
            log.warning("reconcile of %s/%s failed; retrying: %s", namespace, name, str(exc)[:300],
                        extra={"stack": name, "namespace": namespace})
            status, result = snapshot.get("status") or {}, "error"
        except Exception:  # noqa: BLE001 - a bug must not stop this stack for kopf's long retry
            log.exception("reconcile of %s/%s crashed; retrying", namespace, name,
                          extra={"stack": name, "namespace": namespace})
            status, result = snapshot.get("status") or {}, "error"
        RECONCILE_TIME.labels(CONTROLLER).observe(time.perf_counter() - started)
        RECONCILE_TOTAL.labels(CONTROLLER, result).inc()
        if result == "error":
            RECONCILE_ERRORS.labels(CONTROLLER).inc()
        STATE.phases.set(key, status.get("phase"))
        if result == "error":
            # Back off even if children keep changing: wake-ups only shorten idle waits.
            await stopped.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
            failures += 1
            continue
        failures = 0
        await _sleep(wake, stopped, delay or RESYNC_SECONDS)
