"""The moderation service itself: Secret, policy, API and workers, and how
they scale and are reached."""

from __future__ import annotations

from typing import Any

import yaml

from ai_moderator_workload.engine.policy import Policy

from ..naming import Component, selector
from .common import (
    SHADOW_FILE,
    Context,
    Manifest,
    app_container,
    app_volumes,
    metadata,
    pod_template,
    resources,
    secret_env,
)

API_PORT = 8000
WORKER_METRICS_PORT = 9100


def app_secret(ctx: Context, data: dict[str, str]) -> Manifest:
    """Generated credentials; `data` holds the values (made once, never regenerated)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(ctx, ctx.names.app_secret, None), "stringData": data}


def spec_policy_yaml(ctx: Context) -> str:
    policy = ctx.spec.policy or Policy()
    return yaml.safe_dump(policy.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


def policy_yaml(ctx: Context) -> str:
    """The policy the API and workers run: the spec's, unless a quality gate holds it back."""
    return ctx.serving_policy if ctx.serving_policy is not None else spec_policy_yaml(ctx)


def shadow_policy_yaml(ctx: Context) -> str | None:
    """The shadow policy with the live policy's allowlist and engine: the two
    decide on the same scores, which those two settings determine."""
    if ctx.spec.shadowPolicy is None:
        return None
    live = Policy.model_validate(yaml.safe_load(policy_yaml(ctx)) or {})
    shadow = ctx.spec.shadowPolicy.model_copy(update={"allowlist": live.allowlist, "engine": live.engine})
    return yaml.safe_dump(shadow.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


def policy_config_map(ctx: Context) -> Manifest:
    data = {"policy.yaml": policy_yaml(ctx)}
    shadow = shadow_policy_yaml(ctx)
    if shadow is not None:
        data[SHADOW_FILE] = shadow
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(ctx, ctx.names.policy, None), "data": data}


def _probe(path: str, port: int | str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 3,
            "failureThreshold": failures}


def _deployment(ctx: Context, name: str, component: str, version: str, container: dict[str, Any],
                replicas: int | None) -> Manifest:
    volumes, _ = app_volumes(ctx)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(ctx.name, component)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 5,
        "template": pod_template(ctx, component, version, [container], volumes),
    }
    # With an autoscaler the replica count is its field: leaving it out of our
    # apply means we never fight it.
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(ctx, name, component, version),
            "spec": spec}


def _replicas(ctx: Context, replicas: int, autoscaling: Any) -> int | None:
    """Zero while a restore runs; left to the autoscaler when there is one."""
    if ctx.hold_app:
        return 0
    return None if autoscaling is not None and autoscaling.enabled else replicas


def api_deployment(ctx: Context, version: str) -> Manifest:
    api = ctx.spec.api
    container = app_container(ctx, Component.API, version, ["serve", "--host", "0.0.0.0", "--port", str(API_PORT)],
                              [{"name": "API_WORKERS", "value": str(api.processes)}])
    container |= {
        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/health", "http", 10, 3),
        "readinessProbe": _probe("/ready", "http", 5, 2),
        "startupProbe": _probe("/health", "http", 2, 30),
        **resources(api.resources),
    }
    return _deployment(ctx, ctx.names.api, Component.API, version, container,
                       _replicas(ctx, api.replicas, api.autoscaling))


def api_service(ctx: Context) -> Manifest:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(ctx, ctx.names.api, Component.API),
            "spec": {"type": ctx.spec.api.serviceType, "selector": selector(ctx.name, Component.API),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def api_pdb(ctx: Context) -> Manifest | None:
    """Only when more than one API pod runs: a PDB on one pod would block node drains."""
    api = ctx.spec.api
    least = api.autoscaling.minReplicas if api.autoscaling and api.autoscaling.enabled else api.replicas
    if least <= 1:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(ctx, ctx.names.api, Component.API),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(ctx.name, Component.API)}}}


def _hpa(ctx: Context, name: str, component: str, autoscaling: Any) -> Manifest:
    metrics = []
    for resource, target in (("cpu", autoscaling.targetCPUUtilizationPercentage),
                             ("memory", autoscaling.targetMemoryUtilizationPercentage)):
        if target is not None:
            metrics.append({"type": "Resource", "resource": {
                "name": resource, "target": {"type": "Utilization", "averageUtilization": target}}})
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(ctx, name, component),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": autoscaling.minReplicas, "maxReplicas": autoscaling.maxReplicas,
                     "metrics": metrics}}


def api_hpa(ctx: Context) -> Manifest | None:
    scaling = ctx.spec.api.autoscaling
    if scaling and scaling.enabled and not ctx.hold_app:
        return _hpa(ctx, ctx.names.api, Component.API, scaling)
    return None


def api_ingress(ctx: Context) -> Manifest | None:
    ingress = ctx.spec.api.ingress
    if ingress is None or not ingress.enabled:
        return None
    meta = metadata(ctx, ctx.names.api, Component.API, annotations=ingress.annotations)
    spec: dict[str, Any] = {"rules": [{"host": ingress.host, "http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": ctx.names.api, "port": {"name": "http"}}}}]}}]}
    if ingress.className:
        spec["ingressClassName"] = ingress.className
    if ingress.tlsSecretName:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tlsSecretName}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def worker_deployment(ctx: Context, version: str) -> Manifest:
    worker = ctx.spec.worker
    container = app_container(ctx, Component.WORKER, version, [
        "worker", "--concurrency", str(worker.concurrency), "--metrics-port", str(WORKER_METRICS_PORT)],
        _keda_env(ctx))
    container |= {
        "ports": [{"name": "metrics", "containerPort": WORKER_METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/metrics", "metrics", 15, 4),
        **resources(worker.resources),
    }
    return _deployment(ctx, ctx.names.worker, Component.WORKER, version, container,
                       _replicas(ctx, worker.replicas, worker.autoscaling))


def _keda_env(ctx: Context) -> list[dict[str, Any]]:
    """What KEDA's redis scaler reads from the worker: host:port and password,
    from our Secret (managed Redis) or optional keys of the external Secret."""
    scaling = ctx.spec.worker.autoscaling
    if not (ctx.keda and scaling and scaling.enabled):
        return []
    external = ctx.spec.redis.external
    if external is None:
        return [secret_env("REDIS_ADDRESS", ctx.names.app_secret, "REDIS_ADDRESS"),
                secret_env("REDIS_PASSWORD", ctx.names.app_secret, "REDIS_PASSWORD")]
    ref = external.urlSecretRef.name
    return [{"name": env, "valueFrom": {"secretKeyRef": {"name": ref, "key": key, "optional": True}}}
            for env, key in (("REDIS_ADDRESS", "address"), ("REDIS_PASSWORD", "password"))]


def worker_scaler(ctx: Context) -> Manifest | None:
    """KEDA ScaledObject on the queue length when KEDA is installed, else a CPU/memory HPA."""
    scaling = ctx.spec.worker.autoscaling
    if scaling is None or not scaling.enabled or ctx.hold_app:
        return None
    if not ctx.keda:
        return _hpa(ctx, ctx.names.worker, Component.WORKER, scaling)
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": metadata(ctx, ctx.names.worker, Component.WORKER),
            "spec": {"scaleTargetRef": {"name": ctx.names.worker},
                     "minReplicaCount": scaling.minReplicas, "maxReplicaCount": scaling.maxReplicas,
                     "triggers": [{"type": "redis", "metadata": {
                         "addressFromEnv": "REDIS_ADDRESS", "passwordFromEnv": "REDIS_PASSWORD",
                         "listName": "moderation_queue", "listLength": str(scaling.queueLengthTarget)}}]}}


def service_monitor(ctx: Context) -> Manifest | None:
    if not (ctx.service_monitor and ctx.spec.monitoring.serviceMonitor):
        return None
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": metadata(ctx, ctx.names.api, Component.API),
            "spec": {"selector": {"matchLabels": selector(ctx.name, Component.API)},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}]}}
