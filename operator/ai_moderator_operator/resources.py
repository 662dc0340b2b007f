"""Every Kubernetes kind the operator reads or writes, in one table: the
client builds its URLs from it, the handlers select the kinds to watch, and
pruning the kinds it may delete when the spec stops asking for them."""

from __future__ import annotations

from dataclasses import dataclass

from .api import API_VERSION, KIND, PLURAL


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    watched: bool = False  # its changes wake the stack it belongs to (feeds the child cache)
    prunable: bool = False  # deleted when the spec stops asking for it (never what holds data)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


TABLE = (
    Resource("v1", "Secret", "secrets", watched=True),
    Resource("v1", "ConfigMap", "configmaps", watched=True),
    Resource("v1", "Service", "services", watched=True, prunable=True),
    Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims", watched=True),
    Resource("v1", "Event", "events"),
    Resource("v1", "Pod", "pods"),
    Resource("apps/v1", "Deployment", "deployments", watched=True),
    Resource("apps/v1", "StatefulSet", "statefulsets", watched=True, prunable=True),
    Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", watched=True, prunable=True),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", watched=True, prunable=True),
    Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", watched=True, prunable=True),
    Resource("networking.k8s.io/v1", "Ingress", "ingresses", watched=True, prunable=True),
    Resource("batch/v1", "Job", "jobs", watched=True),
    Resource("batch/v1", "CronJob", "cronjobs", watched=True, prunable=True),
    # Optional APIs (KEDA, Prometheus Operator): not watched, since their CRDs may be missing.
    Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects", prunable=True),
    Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", prunable=True),
    Resource(API_VERSION, KIND, PLURAL),
    Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
)
BY_KIND = {(r.api_version, r.kind): r for r in TABLE}
WATCHED = [r for r in TABLE if r.watched]
PRUNABLE = {r.kind for r in TABLE if r.prunable}
