"""What a Job says about itself: phase, finish time and, for a failed one,
how its last pod ended. Read by the migration, restore, backup and deletion
steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ..kube import Kube

FAILURE_MEMORY = 512


class JobState(NamedTuple):
    phase: Literal["Running", "Succeeded", "Failed"]
    message: str
    completed: datetime | None  # when a successful Job completed


def parse_time(value: str) -> datetime:
    """An RFC 3339 time as the API server writes it (UTC, with Z)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _true_conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def job_state(job: dict[str, Any]) -> JobState:
    conditions = _true_conditions(job)
    if "Complete" in conditions:
        completed = (job.get("status") or {}).get("completionTime")
        return JobState("Succeeded", "", parse_time(completed) if completed else None)
    if "Failed" in conditions:
        c = conditions["Failed"]
        return JobState("Failed", f"{c.get('reason', 'Failed')}: {c.get('message', '')}".strip(": "), None)
    return JobState("Running", "", None)


def finished_at(job: dict[str, Any]) -> str:
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


def success_message(pods: list[dict[str, Any]]) -> str:
    """The termination message of a Job's pod that succeeded (what a Job
    reports back, such as the quality gate's numbers)."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated and terminated.get("exitCode") == 0:
                return str(terminated.get("message") or "")
    return ""


def _remember(memo: dict[str, str], key: str, value: str) -> None:
    """A finished Job never changes: keep what was read, up to FAILURE_MEMORY Jobs."""
    if len(memo) >= FAILURE_MEMORY:
        memo.pop(next(iter(memo)))
    memo[key] = value


@dataclass
class JobOutcomes:
    """job_state, with a failed Job's message completed by how its last pod
    ended. A finished Job never changes, so its pods are read once."""

    kube: Kube
    _failures: dict[str, str] = field(default_factory=dict)
    _reports: dict[str, str] = field(default_factory=dict)

    async def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        meta = job["metadata"]
        return await self.kube.list("v1", "Pod", meta["namespace"], f"batch.kubernetes.io/job-name={meta['name']}")

    async def report(self, job: dict[str, Any]) -> str:
        """What a succeeded Job's pod left as its termination message."""
        uid = job["metadata"].get("uid", job["metadata"]["name"])
        if uid not in self._reports:
            _remember(self._reports, uid, success_message(await self._pods(job)))
        return self._reports[uid]

    async def of(self, job: dict[str, Any]) -> JobState:
        state = job_state(job)
        if state.phase != "Failed":
            return state
        meta = job["metadata"]
        uid = meta.get("uid", meta["name"])
        if uid not in self._failures:
            attempt = last_failed_attempt(await self._pods(job))
            _remember(self._failures, uid, f"{state.message}; {attempt}" if attempt else state.message)
        return state._replace(message=self._failures[uid])
