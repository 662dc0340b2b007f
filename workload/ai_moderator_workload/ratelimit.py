"""Per-key token buckets. In Redis (shared by every API pod) in production;
in process memory in the embedded mode."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from .metrics import RATE_LIMITED, RATE_LIMITER_ERRORS

log = logging.getLogger(__name__)

# Server time (TIME) keeps buckets consistent across pods with skewed clocks.
# A request costs `cost` tokens; one costlier than the whole bucket is let
# through when the bucket is full and leaves it in debt, so large requests are
# possible but pay for their size in the time that follows.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local need = math.min(cost, burst)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= need then
  tokens = tokens - cost
  allowed = 1
else
  wait = (need - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


async def run_failing_open(script: AsyncScript, what: str, errors: Counter, keys: list[str],
                           args: list[Any]) -> Any:
    """The script's reply, or None when Redis fails: the caller then lets the
    request through, as an unavailable store must not take the API down with it."""
    try:
        return await script(keys=keys, args=args)
    except RedisError as exc:
        errors.inc()
        log.warning("%s unavailable, allowing request", what, extra={"error": type(exc).__name__})
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    async def hit(self, key: str, per_minute: int, burst: int, cost: int = 1) -> Verdict: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, key: str, per_minute: int, burst: int, cost: int = 1) -> Verdict:
        rate = per_minute / 60.0
        now = time.monotonic()
        tokens, ts = self._buckets.get(key, (float(burst), now))
        tokens = min(burst, tokens + (now - ts) * rate)
        need = min(cost, burst)
        if tokens >= need:
            self._buckets[key] = (tokens - cost, now)
            return Verdict(True)
        self._buckets[key] = (tokens, now)
        RATE_LIMITED.inc()
        return Verdict(False, (need - tokens) / rate)


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_TOKEN_BUCKET)

    async def hit(self, key: str, per_minute: int, burst: int, cost: int = 1) -> Verdict:
        reply = await run_failing_open(self._script, "rate limiter", RATE_LIMITER_ERRORS,
                                       keys=[f"ratelimit:{key}"], args=[per_minute / 60.0, burst, cost])
        if reply is None:
            return Verdict(True)
        allowed, wait = reply
        if int(allowed):
            return Verdict(True)
        RATE_LIMITED.inc()
        return Verdict(False, float(wait))
