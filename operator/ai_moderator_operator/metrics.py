"""Operator metrics, named like controller-runtime's so kubebuilder-style
dashboards work unchanged."""

from __future__ import annotations

import contextlib
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from .api import Phase

CONTROLLER = "moderationstack"

RECONCILE_TOTAL = Counter("controller_runtime_reconcile_total", "Reconciliations by result.", ["controller", "result"])
RECONCILE_ERRORS = Counter("controller_runtime_reconcile_errors_total", "Failed reconciliations.", ["controller"])
RECONCILE_TIME = Histogram("controller_runtime_reconcile_time_seconds", "Time per reconciliation.", ["controller"],
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
STACKS = Gauge("ai_moderator_stacks", "ModerationStacks by phase.", ["phase"])
MIGRATION_DURATION = Histogram("ai_moderator_migration_duration_seconds", "Migration Job run time.",
                               buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800))
LAST_BACKUP_SUCCESS = Gauge("ai_moderator_last_backup_success_timestamp_seconds",
                            "Unix time of the last successful backup.", ["namespace", "stack"])
LAST_VERIFY_SUCCESS = Gauge("ai_moderator_last_backup_verify_success_timestamp_seconds",
                            "Unix time of the last successful test restore of a backup.", ["namespace", "stack"])
BACKUP_INTERVAL = Gauge("ai_moderator_backup_interval_seconds",
                        "Longest expected gap between scheduled backups.", ["namespace", "stack"])
BACKUP_SCHEDULE_START = Gauge("ai_moderator_backup_schedule_start_timestamp_seconds",
                              "Unix time the backup schedule began (its CronJob was created).", ["namespace", "stack"])
LAST_BACKUP_ATTEMPT = Gauge("ai_moderator_last_backup_attempt_timestamp_seconds",
                            "Unix time the last backup Job finished, whether it succeeded or not.",
                            ["namespace", "stack"])
BACKUP_FAILURES = Gauge("ai_moderator_backup_failed_jobs",
                        "Failed backup Jobs among those still kept (the CronJob keeps the last three).",
                        ["namespace", "stack"])
QUALITY_GATE_PASSED = Gauge("ai_moderator_quality_gate_passed",
                            "1 when the last evaluated candidate passed its quality gate, 0 when it failed.",
                            ["namespace", "stack"])
QUALITY_GATE_FLAG_RATE = Gauge("ai_moderator_quality_gate_flag_rate",
                               "Share of golden texts the last evaluated candidate flags.", ["namespace", "stack"])
QUALITY_GATE_BASELINE_FLAG_RATE = Gauge("ai_moderator_quality_gate_baseline_flag_rate",
                                        "The same share for what served when it was evaluated.", ["namespace", "stack"])
BACKUP_SERIES = (LAST_BACKUP_SUCCESS, LAST_VERIFY_SUCCESS, BACKUP_INTERVAL, BACKUP_SCHEDULE_START, LAST_BACKUP_ATTEMPT,
                 BACKUP_FAILURES)
GATE_SERIES = (QUALITY_GATE_PASSED, QUALITY_GATE_FLAG_RATE, QUALITY_GATE_BASELINE_FLAG_RATE)
PER_STACK = BACKUP_SERIES + GATE_SERIES
API_REQUESTS = Counter("ai_moderator_operator_kube_requests_total", "Requests the operator sent to the API server.",
                       ["verb", "code"])

PHASES = get_args(Phase)


def forget_stack(namespace: str, stack: str, series: tuple[Gauge, ...] = PER_STACK) -> None:
    """Drop a stack's series (deleted, or backups or the gate turned off): no
    alert may fire for what no longer exists."""
    for gauge in series:
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, stack)


class PhaseBook:
    """Phase of each stack, kept so the per-phase gauge is exact."""

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str] = {}

    def set(self, key: tuple[str, str], phase: str | None) -> None:
        if phase is None:
            self._phases.pop(key, None)
        else:
            self._phases[key] = phase
        for name in PHASES:
            STACKS.labels(name).set(sum(1 for p in self._phases.values() if p == name))


# Like controller-runtime: every series exists from the start (at 0), so rate()
# and alerts work before the first error.
RECONCILE_ERRORS.labels(CONTROLLER)
for _result in ("success", "error", "requeue"):
    RECONCILE_TOTAL.labels(CONTROLLER, _result)
