"""API keys: random tokens shown once, stored as SHA-256 hashes, compared in
constant time. Keys have high entropy, so a fast hash is enough (no KDF)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from .audit import record
from .callbacks import new_secret
from .db.models import ApiKey, TenantPolicy, utcnow
from .policies import UnknownName
from .policy_admin import bump_revision

KEY_PREFIX = "amk"
ADMIN_TENANT = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    tenant: str
    is_admin: bool
    rate_limit_per_minute: int | None
    daily_storage_quota_bytes: int | None
    callback_url: str | None = None  # the key's default
    can_sign_callbacks: bool = False  # the key has a callback secret


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh key and its lookup prefix: amk_<prefix>_<secret>."""
    prefix = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


# amk_ + 12 hex characters + _ + token_urlsafe(32): anything else is refused
# without a database query.
_TOKEN = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{12}})_[A-Za-z0-9_-]{{43}}")


def parse_prefix(token: str) -> str | None:
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def create_key(session: Session, name: str, *, is_admin: bool = False,
               rate_limit_per_minute: int | None = None, daily_storage_quota_bytes: int | None = None,
               callback_url: str | None = None, policy: str | None = None,
               actor: str = "cli") -> tuple[ApiKey, str]:
    """A new key and its token. The key's callback secret is on the returned
    row: like the token, show it now, it is not shown again. A `policy` must
    exist (UnknownName)."""
    if policy is not None and session.get(TenantPolicy, policy) is None:
        raise UnknownName("tenant policy", policy)
    token, prefix = new_token()
    key = ApiKey(name=name, prefix=prefix, key_hash=hash_key(token), is_admin=is_admin,
                 rate_limit_per_minute=rate_limit_per_minute, daily_storage_quota_bytes=daily_storage_quota_bytes,
                 callback_url=callback_url, callback_secret=new_secret(), policy=policy)
    session.add(key)
    session.flush()
    record(session, actor, "apikey.create", str(key.id),
           {"name": name, "is_admin": is_admin, **({"callback_url": callback_url} if callback_url else {}),
            **({"policy": policy} if policy else {})})
    if policy is not None:
        bump_revision(session)
    return key, token


def _find(key_id_or_prefix: str) -> Any:
    condition = ApiKey.prefix == key_id_or_prefix
    with contextlib.suppress(ValueError):
        condition = condition | (ApiKey.id == uuid.UUID(key_id_or_prefix))
    return condition


def rotate_callback_secret(session: Session, key_id_or_prefix: str, actor: str = "cli") -> str | None:
    """A new callback secret for an active key (the old one stops signing at
    once), or None if there is no such key. Audited without the secret."""
    key = session.scalar(select(ApiKey).where(_find(key_id_or_prefix), ApiKey.revoked_at.is_(None)))
    if key is None:
        return None
    key.callback_secret = new_secret()
    record(session, actor, "apikey.rotate_callback_secret", str(key.id), {"name": key.name})
    return key.callback_secret


def update_key(session: Session, key_id_or_prefix: str, changes: dict[str, Any], actor: str = "cli") -> ApiKey | None:
    """Set an active key's `policy` and/or default `callback_url` (None
    clears either), or None if there is no such key. A policy must exist
    (UnknownName). Audited with the fields' values before and after."""
    key = session.scalar(select(ApiKey).where(_find(key_id_or_prefix), ApiKey.revoked_at.is_(None)).with_for_update())
    if key is None:
        return None
    policy = changes.get("policy")
    if policy is not None and session.get(TenantPolicy, policy) is None:
        raise UnknownName("tenant policy", policy)
    before = {field: getattr(key, field) for field in changes if getattr(key, field) != changes[field]}
    if not before:
        return key
    for field in before:
        setattr(key, field, changes[field])
    record(session, actor, "apikey.update", str(key.id), {"name": key.name, "before": before,
                                                          "after": {field: changes[field] for field in before}})
    if "policy" in before:
        bump_revision(session)
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id_or_prefix: str, actor: str = "cli") -> bool:
    done = cast(CursorResult[Any], session.execute(
        update(ApiKey).where(_find(key_id_or_prefix), ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())))
    if done.rowcount:
        record(session, actor, "apikey.revoke", key_id_or_prefix, None)
    return bool(done.rowcount)


class KeyVerifier:
    """Resolves bearer tokens to principals. Database rows (and misses) are
    cached for `ttl` seconds, so a revocation takes effect within that time;
    the cache keeps the `max_entries` most recently used prefixes, so a flood
    of made-up keys cannot grow it without bound."""

    def __init__(self, admin_key: str | None, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, tuple[str, Principal] | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """(known, principal) without touching the database."""
        digest = hash_key(token)
        if self._admin_hash and hmac.compare_digest(digest, self._admin_hash):
            return True, Principal("bootstrap-admin", "bootstrap-admin", ADMIN_TENANT, True, None, None)
        prefix = parse_prefix(token)
        if prefix is None:
            return True, None
        hit = self._cache.get(prefix)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        self._cache.move_to_end(prefix)
        return True, self._check(hit[1], digest)

    def load(self, session: Session, token: str) -> Principal | None:
        prefix = parse_prefix(token)
        if prefix is None:
            return None
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        entry = None
        if row is not None and row.revoked_at is None:
            entry = (row.key_hash, Principal(str(row.id), row.name, str(row.id), row.is_admin,
                                              row.rate_limit_per_minute, row.daily_storage_quota_bytes,
                                              row.callback_url, row.callback_secret is not None))
        self._cache[prefix] = (time.monotonic() + self._ttl, entry)
        self._cache.move_to_end(prefix)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return self._check(entry, hash_key(token))

    @staticmethod
    def _check(entry: tuple[str, Principal] | None, digest: str) -> Principal | None:
        if entry is None:
            return None
        stored_hash, principal = entry
        return principal if hmac.compare_digest(digest, stored_hash) else None


def describe(key: ApiKey) -> dict[str, str | bool | int | None]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": str(key.id), "name": key.name, "prefix": key.prefix, "is_admin": key.is_admin,
            "rate_limit_per_minute": key.rate_limit_per_minute,
            "daily_storage_quota_bytes": key.daily_storage_quota_bytes, "callback_url": key.callback_url,
            "policy": key.policy, "created_at": ts(key.created_at),
            "revoked_at": ts(key.revoked_at)}
