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

from .api import GROUP, PLURAL, VERSION
from .children import MANAGED_SELECTOR, ChildCache
from .kube import ApiError, HttpKube
from .metrics import CONTROLLER, RECONCILE_ERRORS, RECONCILE_TIME, RECONCILE_TOTAL, PhaseBook, forget_stack
from .naming import PREFIX
from .reconcile.deletion import apply_deletion_policy
from .reconciler import Degraded, Reconciler
from .resources import WATCHED
from .secretwatch import ReferencedSecrets

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
    kube: HttpKube | None = None
    reconciler: Reconciler | None = None
    secrets: ReferencedSecrets | None = None

    def attach(self, conn: kopf.ConnectionInfo) -> None:
        self.kube = HttpKube(conn)
        self.reconciler = Reconciler.over(self.kube, self.cache)
        self.secrets = ReferencedSecrets(self.kube, self.secret_changed)

    def secret_changed(self, namespace: str, name: str) -> None:
        """A user's Secret that stacks reference changed (e.g. a rotated
        database URL): reconcile them now, so the config hash rolls their pods."""
        for stack in self.cache.referencing(namespace, name):
            self.wake((namespace, stack))

    def follow_references(self) -> None:
        if self.secrets is not None:
            self.secrets.sync(self.cache.referenced())

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
    if STATE.secrets is not None:
        await STATE.secrets.close()
    if STATE.kube is not None:
        await STATE.kube.close()


async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    obj = dict(body)
    STATE.cache.observe(event.get("type"), obj)
    meta = obj["metadata"]
    instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance")
    if instance:
        STATE.wake((meta.get("namespace", ""), instance))


for _resource in WATCHED:
    kopf.on.event(_resource.api_version, _resource.plural, labels=MANAGED_SELECTOR,
                  id=f"watch-{_resource.plural}")(child_event)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def stack_event(event: kopf.RawEvent, name: str | None, namespace: str | None, **_: Any) -> None:
    assert namespace and name
    if event.get("type") == "DELETED":
        forget_stack(namespace, name)
        STATE.cache.set_references(namespace, name, set())
        STATE.follow_references()
        STATE.phases.set((namespace, name), None)
        STATE.wakeups.pop((namespace, name), None)
    else:
        STATE.wake((namespace, name))


@kopf.on.delete(GROUP, VERSION, PLURAL, id="deletion-policy")
async def deletion_policy(body: kopf.Body, name: str | None, namespace: str | None, **_: Any) -> None:
    """The final backup (if asked for) and the deletion policy, in
    reconcile/deletion.py; kopf keeps the finalizer and retries while it waits."""
    assert STATE.reconciler is not None and namespace and name
    wait = await apply_deletion_policy(STATE.reconciler.applier, STATE.reconciler.outcomes, dict(body))
    if wait is not None:
        STATE.phases.set((namespace, name), "Deleting")
        raise kopf.TemporaryError(wait.message, delay=wait.delay)


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
async def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, name: str | None, namespace: str | None,
                         **_: Any) -> None:
    assert namespace and name
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
        assert STATE.reconciler is not None
        try:
            try:
                status, delay = await STATE.reconciler.reconcile(snapshot)
                result = "requeue" if delay else "success"
            except Degraded as degraded:
                status, delay, result = degraded.status, None, "error"
            await STATE.reconciler.applier.write_status(snapshot, status)
        except (TimeoutError, ApiError, aiohttp.ClientError) as exc:
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
        STATE.follow_references()
        if result == "error":
            # Back off even if children keep changing: wake-ups only shorten idle waits.
            await stopped.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
            failures += 1
            continue
        failures = 0
        await _sleep(wake, stopped, delay or RESYNC_SECONDS)
