"""Managed, dev-grade PostgreSQL and Redis (StatefulSet + PVC + Service) for
stacks that do not name external ones, and the NetworkPolicy around them."""

from __future__ import annotations

from typing import Any

from ..naming import Component, labels, selector
from .common import Context, Manifest, container_security, metadata, pod_security, resources, secret_env

POSTGRES_UID = 70   # the postgres user of the alpine image
REDIS_UID = 999     # the redis user of the alpine image


def _statefulset(ctx: Context, name: str, component: str, container: dict[str, Any], storage: Any,
                 storage_class: str | None, uid: int, data_path: str, scratch: list[str]) -> Manifest:
    claim: dict[str, Any] = {"metadata": {"name": "data", "labels": labels(ctx.name, component)},
                             "spec": {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": str(storage)}}}}
    if storage_class:
        claim["spec"]["storageClassName"] = storage_class
    mounts = [{"name": "data", "mountPath": data_path}] + [
        {"name": f"scratch-{i}", "mountPath": path} for i, path in enumerate(scratch)]
    container = {**container, "volumeMounts": mounts, "securityContext": container_security()}
    pod_spec: dict[str, Any] = {
        "securityContext": pod_security(uid),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": [{"name": f"scratch-{i}", "emptyDir": {}} for i in range(len(scratch))],
    }
    if ctx.spec.nodeSelector:
        pod_spec["nodeSelector"] = ctx.spec.nodeSelector
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata(ctx, name, component),
            "spec": {"serviceName": name, "replicas": 1, "selector": {"matchLabels": selector(ctx.name, component)},
                     "template": {"metadata": {"labels": labels(ctx.name, component)}, "spec": pod_spec},
                     "volumeClaimTemplates": [claim]}}


def _service(ctx: Context, name: str, component: str, port: int) -> Manifest:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(ctx, name, component),
            "spec": {"selector": selector(ctx.name, component),
                     "ports": [{"name": component, "port": port, "targetPort": port, "protocol": "TCP"}]}}


def postgres(ctx: Context) -> list[Manifest]:
    managed = ctx.spec.database.managed
    if managed is None:
        return []
    name, secret = ctx.names.postgres, ctx.names.app_secret
    container = {
        "name": "postgres", "image": managed.image,
        "env": [{"name": "POSTGRES_DB", "value": "moderation_db"}, {"name": "POSTGRES_USER", "value": "moderator"},
                secret_env("POSTGRES_PASSWORD", secret, "POSTGRES_PASSWORD"),
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", "moderator", "-d", "moderation_db"]},
                           "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {"exec": {"command": ["pg_isready", "-U", "moderator"]}, "periodSeconds": 20,
                          "timeoutSeconds": 5, "failureThreshold": 6},
        **resources(managed.resources),
    }
    return [_statefulset(ctx, name, Component.DATABASE, container, managed.storage, managed.storageClassName,
                         POSTGRES_UID,
                         "/var/lib/postgresql/data", ["/var/run/postgresql", "/tmp"]),
            _service(ctx, name, Component.DATABASE, 5432)]


def redis(ctx: Context) -> list[Manifest]:
    managed = ctx.spec.redis.managed
    if managed is None:
        return []
    name = ctx.names.redis
    container = {
        "name": "redis", "image": managed.image,
        "args": ["--appendonly", "yes", "--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data"],
        "env": [secret_env("REDIS_PASSWORD", ctx.names.app_secret, "REDIS_PASSWORD")],
        "ports": [{"name": "redis", "containerPort": 6379}],
        "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 20, "failureThreshold": 6},
        **resources(managed.resources),
    }
    return [_statefulset(ctx, name, Component.REDIS, container, managed.storage, managed.storageClassName, REDIS_UID,
                         "/data", []),
            _service(ctx, name, Component.REDIS, 6379)]


def network_policy(ctx: Context) -> Manifest | None:
    """Only this stack's own pods may reach its managed database and Redis."""
    if not ctx.spec.networkPolicy.enabled:
        return None
    data_components = [c for c, on in ((Component.DATABASE, ctx.spec.database.managed),
                                       (Component.REDIS, ctx.spec.redis.managed)) if on]
    if not data_components:
        return None
    peers = {"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/instance", "operator": "In", "values": [ctx.name]},
        {"key": "app.kubernetes.io/component", "operator": "In", "values": Component.APP}]}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(ctx, ctx.names.network_policy, None),
            "spec": {"podSelector": {"matchExpressions": [
                        {"key": "app.kubernetes.io/instance", "operator": "In", "values": [ctx.name]},
                        {"key": "app.kubernetes.io/component", "operator": "In", "values": data_components}]},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [peers]}]}}
