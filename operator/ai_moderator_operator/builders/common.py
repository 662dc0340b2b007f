"""Pieces every child shares: metadata with owner reference and labels, the
restricted pod security settings, and the environment of the app's pods."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..api import API_VERSION, KIND, ModerationStackSpec
from ..naming import CONFIG_HASH_ANNOTATION, Names, labels
from ..quantity import quantity

Manifest = dict[str, Any]
APP_UID = 10001
POLICY_DIR = "/etc/ai-moderator/policy"
SHADOW_FILE = "shadow.yaml"


@dataclass(frozen=True)
class Context:
    """Everything the builders need; they read nothing else."""

    name: str
    namespace: str
    uid: str
    spec: ModerationStackSpec
    rolled_out_version: str | None
    config_hash: str
    keda: bool = False
    service_monitor: bool = False
    hold_app: bool = False  # a restore runs: API and workers scaled to zero
    serving_policy: str | None = None  # policy YAML kept while a quality gate holds the spec's back

    @property
    def names(self) -> Names:
        return Names(self.name)

    def image(self, version: str) -> str:
        return f"{self.spec.image}:{version}"


def metadata(ctx: Context, name: str, component: str | None, version: str | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ctx.namespace,
        "labels": labels(ctx.name, component, version),
        "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": ctx.name, "uid": ctx.uid,
                             "controller": True, "blockOwnerDeletion": True}],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security(uid: int = APP_UID) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def app_env(ctx: Context) -> list[dict[str, Any]]:
    """Settings of the workload (ai_moderator_workload.settings) for every app pod."""
    spec, names = ctx.spec, ctx.names
    db = spec.database.external.urlSecretRef if spec.database.external else None
    redis = spec.redis.external.urlSecretRef if spec.redis.external else None
    limits = spec.limits
    env = [
        secret_env("DATABASE_URL", db.name if db else names.app_secret, db.key if db else "DATABASE_URL"),
        secret_env("REDIS_URL", redis.name if redis else names.app_secret, redis.key if redis else "REDIS_URL"),
        secret_env("ADMIN_API_KEY", names.app_secret, "ADMIN_API_KEY"),
        secret_env("SECRET_KEY", names.app_secret, "SECRET_KEY"),
        {"name": "POLICY_FILE", "value": f"{POLICY_DIR}/policy.yaml"},
        {"name": "LOG_JSON", "value": "true"},
        {"name": "MAX_TEXT_CHARS", "value": str(limits.maxTextChars)},
        {"name": "MAX_INPUTS", "value": str(limits.maxInputs)},
        {"name": "RATE_LIMIT_PER_MINUTE", "value": str(limits.rateLimitPerMinute)},
        {"name": "RATE_LIMIT_BURST", "value": str(limits.rateLimitBurst)},
    ]
    # Only when set: a variable every stack had would roll all their pods on an operator upgrade.
    if spec.callbacks is not None and spec.callbacks.allowedHosts:
        env.append({"name": "CALLBACK_ALLOWED_HOSTS", "value": ",".join(spec.callbacks.allowedHosts)})
    if spec.shadowPolicy is not None:
        env.append({"name": "SHADOW_POLICY_FILE", "value": f"{POLICY_DIR}/{SHADOW_FILE}"})
    if limits.dailyStorageQuotaPerKey is not None:
        quota = math.ceil(quantity(limits.dailyStorageQuotaPerKey) or 1)
        env.append({"name": "DAILY_STORAGE_QUOTA_BYTES", "value": str(quota)})
    return env


def app_volumes(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts): the policy ConfigMap and a writable /tmp (the root filesystem is read-only)."""
    volumes: list[dict[str, Any]] = [{"name": "policy", "configMap": {"name": ctx.names.policy}},
                                     {"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "policy", "mountPath": POLICY_DIR, "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"}]
    return volumes, mounts


def resources(spec_resources: Any) -> dict[str, Any]:
    if spec_resources is None:
        return {}
    return {"resources": spec_resources.model_dump(exclude_none=True)}


def pod_template(ctx: Context, component: str, version: str, containers: list[dict[str, Any]],
                 volumes: list[dict[str, Any]], restart_policy: str | None = None,
                 uid: int = APP_UID) -> dict[str, Any]:
    """A pod template with the stack's labels, the config hash (so a change of
    Secret or policy rolls the pods) and the restricted security profile."""
    spec: dict[str, Any] = {
        "securityContext": pod_security(uid),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": containers,
        "volumes": volumes,
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    if ctx.spec.imagePullSecrets:
        spec["imagePullSecrets"] = [{"name": n} for n in ctx.spec.imagePullSecrets]
    if ctx.spec.nodeSelector:
        spec["nodeSelector"] = ctx.spec.nodeSelector
    return {
        "metadata": {"labels": labels(ctx.name, component, version),
                     "annotations": {CONFIG_HASH_ANNOTATION: ctx.config_hash}},
        "spec": spec,
    }


def app_container(ctx: Context, name: str, version: str, args: list[str],
                  extra_env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    _, mounts = app_volumes(ctx)
    return {
        "name": name,
        "image": ctx.image(version),
        "imagePullPolicy": ctx.spec.imagePullPolicy,
        "args": args,
        "env": app_env(ctx) + (extra_env or []),
        "volumeMounts": mounts,
        "securityContext": container_security(),
        # A failed container's last log lines become its termination message,
        # which the operator quotes in the stack's status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
