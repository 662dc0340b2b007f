"""Optional APIs in the cluster (KEDA, Prometheus Operator): whether their
CRDs exist decides which children the builders emit. Asked by the reconciler
once per pass; each answer is kept for a minute."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..kube import Kube

CAPABILITY_TTL = 60.0
KEDA_CRD = "scaledobjects.keda.sh"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"


@dataclass
class Capabilities:
    kube: Kube
    _checked: dict[str, tuple[float, bool]] = field(default_factory=dict)

    async def has_crd(self, name: str) -> bool:
        hit = self._checked.get(name)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        found = await self.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name) is not None
        self._checked[name] = (time.monotonic() + CAPABILITY_TTL, found)
        return found
