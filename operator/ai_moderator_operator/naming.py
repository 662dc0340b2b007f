"""Names, labels and annotations that users and tests depend on (DESIGN.md §1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

MANAGER = "ai-moderator-operator"
PREFIX = "moderation.ai-moderator.io"
PAUSED_ANNOTATION = f"{PREFIX}/paused"
CONFIG_HASH_ANNOTATION = f"{PREFIX}/config-hash"
RETRY_MIGRATION_ANNOTATION = f"{PREFIX}/retry-migration"
BACKUP_NOW_ANNOTATION = f"{PREFIX}/backup-now"
RESTORE_ANNOTATION = f"{PREFIX}/restore"
RETRY_QUALITY_GATE_ANNOTATION = f"{PREFIX}/retry-quality-gate"
PROMOTE_SHADOW_ANNOTATION = f"{PREFIX}/promote-shadow"
APPLY_NOW_ANNOTATION = f"{PREFIX}/apply-now"
APP_NAME = "ai-moderator"
COMPONENT_LABEL = "app.kubernetes.io/component"


class Component:
    """Values of the component label: what selectors, status and tests match on."""

    API = "api"
    WORKER = "worker"
    DATABASE = "database"
    REDIS = "redis"
    MIGRATION = "migration"
    BACKUP = "backup"
    BACKUP_VERIFY = "backup-verify"
    CLEANUP = "cleanup"
    RESTORE = "restore"
    QUALITY_GATE = "quality-gate"
    # Pods that run the workload image (the data NetworkPolicy admits them).
    APP = (API, WORKER, MIGRATION, BACKUP, BACKUP_VERIFY, CLEANUP, RESTORE)


def labels(stack: str, component: str | None, version: str | None = None) -> dict[str, str]:
    result = {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": stack,
        "app.kubernetes.io/managed-by": MANAGER,
    }
    if component:
        result[COMPONENT_LABEL] = component
    if version:
        result["app.kubernetes.io/version"] = version[:63]
    return result


def selector(stack: str, component: str) -> dict[str, str]:
    """The immutable subset of labels used in selectors (never the version)."""
    return {k: v for k, v in labels(stack, component).items() if k != "app.kubernetes.io/managed-by"}


def digest(*parts: Any, length: int = 10) -> str:
    data = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:length]


class Names:
    """Children of stack S are named S-<suffix>."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.app_secret = f"{stack}-app"
        self.policy = f"{stack}-policy"
        self.api = f"{stack}-api"
        self.worker = f"{stack}-worker"
        self.postgres = f"{stack}-postgres"
        self.redis = f"{stack}-redis"
        self.backup = f"{stack}-backup"
        self.backups_pvc = f"{stack}-backups"
        self.backup_verify = f"{stack}-backup-verify"
        self.cleanup = f"{stack}-cleanup"
        self.network_policy = f"{stack}-data"

    def migration_job(self, image: str, retry: str = "") -> str:
        """One Job per target image (and retry token): the name is the
        idempotency key across restarts."""
        return f"{self.stack}-migrate-{digest(image + (f'#{retry}' if retry else ''), length=8)}"

    def quality_gate_job(self, candidate: str, retry: str = "") -> str:
        """One evaluation Job per candidate (image, policy, golden set) and retry token."""
        return f"{self.stack}-gate-{digest(candidate + (f'#{retry}' if retry else ''), length=8)}"

    def final_backup_job(self, uid: str) -> str:
        """This stack's final backup: a stack deleted, re-created and deleted
        again within the Job's TTL must not find the first one's Job."""
        return f"{self.stack}-final-backup-{digest(uid, length=8)}"

    def restore_job(self, backup_file: str) -> str:
        """One Job per backup file: each file is restored once."""
        return f"{self.stack}-restore-{digest(backup_file, length=8)}"

    def backup_now_job(self, request: str) -> str:
        """One Job per backup-now request token."""
        return f"{self.backup}-now-{digest(request, length=8)}"
