"""The stack's Secrets: the generated one (passwords and keys made once,
never regenerated; only keys a new spec needs are added) and the user's
Secrets the spec references, which must all resolve. Both feed the config
hash that rolls the pods when a value changes."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

from ..api import ModerationStackSpec, SecretKeyRef
from ..builders import S3_CREDENTIAL_KEYS, Context, app_secret
from .applier import Applier, Retry


def decode(secret: dict[str, Any] | None) -> dict[str, str]:
    """A Secret's values as text; a value that is not UTF-8 is a clear, retried problem."""
    if not secret:
        return {}
    values: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            raise Retry(f"Secret {secret['metadata']['name']!r} key {key!r} is not UTF-8 text",
                        "SecretInvalid") from None
    return values


# The URL schemes the API and workers can connect with, by reference.
URL_SCHEMES = {"spec.database.external.urlSecretRef": ("postgresql://", "postgres://", "postgresql+psycopg://"),
               "spec.redis.external.urlSecretRef": ("redis://", "rediss://")}


def secret_refs(spec: ModerationStackSpec) -> Iterator[tuple[str, SecretKeyRef, bool]]:
    """(where, reference, consumed by the API and workers) of every Secret key the spec names."""
    for where, external in (("spec.database.external.urlSecretRef", spec.database.external),
                            ("spec.redis.external.urlSecretRef", spec.redis.external)):
        if external is not None:
            yield where, external.urlSecretRef, True
    backup = spec.backup
    s3 = backup.storage.s3 if backup and backup.storage else None
    if s3 is not None:
        for key in S3_CREDENTIAL_KEYS:
            ref = SecretKeyRef(name=s3.credentialsSecret.name, key=key)
            yield "spec.backup.storage.s3.credentialsSecret", ref, False
    if backup and backup.verify and backup.verify.scratchDatabaseSecretRef:
        yield "spec.backup.verify.scratchDatabaseSecretRef", backup.verify.scratchDatabaseSecretRef, False
    golden = spec.qualityGate.golden if spec.qualityGate else None
    if golden is not None and golden.secretKeyRef is not None:
        yield "spec.qualityGate.golden.secretKeyRef", golden.secretKeyRef, False


def generated_values(names_postgres: str, names_redis: str, spec: ModerationStackSpec,
                     existing: dict[str, str]) -> dict[str, str]:
    """Existing values kept, missing ones made; only what the spec needs is added."""
    wanted = {"SECRET_KEY": existing.get("SECRET_KEY") or secrets.token_urlsafe(48),
              "ADMIN_API_KEY": existing.get("ADMIN_API_KEY") or secrets.token_urlsafe(32)}
    if spec.database.managed:
        password = existing.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
        wanted["POSTGRES_PASSWORD"] = password
        wanted["DATABASE_URL"] = existing.get("DATABASE_URL") or (
            f"postgresql://moderator:{password}@{names_postgres}:5432/moderation_db")
    if spec.redis.managed:
        password = existing.get("REDIS_PASSWORD") or secrets.token_urlsafe(24)
        wanted["REDIS_PASSWORD"] = password
        wanted["REDIS_ADDRESS"] = existing.get("REDIS_ADDRESS") or f"{names_redis}:6379"
        wanted["REDIS_URL"] = existing.get("REDIS_URL") or f"redis://:{password}@{names_redis}:6379/0"
    return {**existing, **wanted}


async def ensure_generated(applier: Applier, ctx: Context) -> dict[str, str]:
    """The generated Secret's values, written when it is missing or lacks a key."""
    live = await applier.read("v1", "Secret", ctx.namespace, ctx.names.app_secret)
    existing = decode(live)
    merged = generated_values(ctx.names.postgres, ctx.names.redis, ctx.spec, existing)
    if live is None or merged != existing:
        await applier.apply(app_secret(ctx, merged))
    return merged


async def referenced_values(applier: Applier, ctx: Context) -> dict[str, str]:
    """Values of the referenced Secrets the app consumes (they go into the
    config hash); every reference, also those only Jobs use, must resolve.
    A missing one is a clear, retried problem."""
    values: dict[str, str] = {}
    refs = list(secret_refs(ctx.spec))
    applier.cache.set_references(ctx.namespace, ctx.name, {ref.name for _, ref, _ in refs})
    for where, ref, consumed in refs:
        secret = await applier.read("v1", "Secret", ctx.namespace, ref.name)
        if secret is None:
            raise Retry(f"Secret {ref.name!r} referenced by {where} does not exist in namespace {ctx.namespace!r}")
        data = decode(secret)
        if ref.key not in data:
            raise Retry(f"Secret {ref.name!r} has no key {ref.key!r} (referenced by {where})")
        schemes = URL_SCHEMES.get(where)
        if schemes and not data[ref.key].strip().startswith(schemes):
            raise Retry(f"Secret {ref.name!r} key {ref.key!r} (referenced by {where}) is not a URL starting with "
                        f"{' or '.join(schemes)}", "SecretInvalid")
        if consumed:
            values[f"{ref.name}/{ref.key}"] = data[ref.key]
    return values
