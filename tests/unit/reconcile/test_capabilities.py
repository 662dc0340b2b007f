"""Optional APIs are looked up once a minute, not on every pass."""

from __future__ import annotations

from ai_moderator_operator.reconcile.capabilities import KEDA_CRD, Capabilities
from world import World


class CountingKube:
    def __init__(self, world: World) -> None:
        self.world, self.gets = world, 0

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        self.gets += 1
        return await self.world.kube.get(api_version, kind, namespace, name)


async def test_a_crd_is_looked_up_once_per_minute(world: World) -> None:
    kube = CountingKube(world)
    capabilities = Capabilities(kube)  # type: ignore[arg-type]
    assert not await capabilities.has_crd(KEDA_CRD) and not await capabilities.has_crd(KEDA_CRD)
    assert kube.gets == 1
    world.kube.put({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": KEDA_CRD}})
    fresh = Capabilities(kube)  # type: ignore[arg-type]
    assert await fresh.has_crd(KEDA_CRD)
