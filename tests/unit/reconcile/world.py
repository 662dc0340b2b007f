"""A small world for the reconcile steps: the in-memory Kube feeding a child
cache (as watches would), the applier and Job outcomes over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ai_moderator_operator.api import parse_spec
from ai_moderator_operator.builders import Context
from ai_moderator_operator.children import ChildCache
from ai_moderator_operator.reconcile.applier import Applier
from ai_moderator_operator.reconcile.jobs import JobOutcomes
from fake_kube import FakeKube

NS = "prod"


@dataclass
class World:
    kube: FakeKube
    cache: ChildCache
    applier: Applier
    outcomes: JobOutcomes

    def job(self, name: str) -> dict[str, Any] | None:
        return self.kube.objects.get(("batch/v1", "Job", NS, name))

    def finish_job(self, name: str, ok: bool, at: str = "2026-11-26T03:00:00Z", message: str = "") -> None:
        condition = {"type": "Complete" if ok else "Failed", "status": "True", "lastTransitionTime": at,
                     "reason": "Completed" if ok else "BackoffLimitExceeded", "message": message}
        status: dict[str, Any] = {"conditions": [condition], "startTime": "2026-11-26T02:59:00Z"}
        if ok:
            status["completionTime"] = at
        self.kube.set_status("batch/v1", "Job", NS, name, status)


def new_world() -> World:
    cache = ChildCache()
    kube = FakeKube(watch=cache)
    return World(kube, cache, Applier(kube, cache), JobOutcomes(kube))


def context(rolled: str | None = "1.0.0", version: str = "1.0.0", **spec: Any) -> Context:
    return Context("shop", NS, "uid-shop", parse_spec({"version": version, **spec}), rolled, "hash-1")
