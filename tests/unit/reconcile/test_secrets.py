"""The generated Secret is made once and only grows; referenced Secrets must resolve."""

from __future__ import annotations

import base64

import pytest

from ai_moderator_operator.reconcile.applier import Retry
from ai_moderator_operator.reconcile.secrets import decode, ensure_generated, referenced_values
from world import NS, World, context

EXTERNAL_DB = {"database": {"external": {"urlSecretRef": {"name": "db", "key": "url"}}}}


async def test_the_generated_secret_is_made_once_and_never_regenerated(world: World) -> None:
    first = await ensure_generated(world.applier, context())
    second = await ensure_generated(world.applier, context())
    assert first == second and {"SECRET_KEY", "ADMIN_API_KEY", "POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_URL"} <= set(first)
    assert world.kube.written("apply", "Secret") == [("apply", "Secret", "shop-app")]
    stored = decode(world.kube.objects[("v1", "Secret", NS, "shop-app")])
    assert stored == first and first["DATABASE_URL"].startswith(f"postgresql://moderator:{first['POSTGRES_PASSWORD']}@")


async def test_a_missing_referenced_secret_is_a_clear_retry(world: World) -> None:
    with pytest.raises(Retry, match=r"Secret 'db' referenced by spec.database.external.urlSecretRef does not exist"):
        await referenced_values(world.applier, context(**EXTERNAL_DB))
    world.kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": NS},
                    "data": {"other": base64.b64encode(b"x").decode()}})
    with pytest.raises(Retry, match="has no key 'url'"):
        await referenced_values(world.applier, context(**EXTERNAL_DB))
    world.kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": NS},
                    "data": {"url": base64.b64encode(b"postgresql://u:p@db/x").decode()}})
    assert await referenced_values(world.applier, context(**EXTERNAL_DB)) == {"db/url": "postgresql://u:p@db/x"}
    assert world.cache.referencing(NS, "db") == {"shop"}, "a change of that Secret must wake the stack"


def secret(name: str, **values: bytes) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "data": {k: base64.b64encode(v).decode() for k, v in values.items()}}


async def test_a_value_that_is_not_text_or_not_a_url_is_named(world: World) -> None:
    world.kube.put(secret("db", url=b"\xff\xfe not utf-8"))
    with pytest.raises(Retry, match="Secret 'db' key 'url' is not UTF-8 text") as raised:
        await referenced_values(world.applier, context(**EXTERNAL_DB))
    assert raised.value.reason == "SecretInvalid"
    world.kube.put(secret("db", url=b"db.example.com:5432/x"))
    with pytest.raises(Retry, match="Secret 'db' key 'url' .* is not a URL starting with postgresql://"):
        await referenced_values(world.applier, context(**EXTERNAL_DB))
