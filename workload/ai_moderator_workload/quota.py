"""Per-key daily quotas of stored content, so one key cannot fill the database
volume: bytes per UTC day, in Redis (shared by every API pod) in production,
in process memory in the embedded mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from .db.models import utcnow
from .metrics import STORAGE_QUOTA_ERRORS
from .ratelimit import Verdict, run_failing_open

# Adds ARGV[1] bytes to the day's counter unless the total would pass the
# quota ARGV[2], and answers what was used before. One script, so requests
# racing on several pods never pass the quota together. The counter expires
# at ARGV[3], a day after its own day ends.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return {0, used}
end
redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {1, used}
"""


@dataclass(frozen=True, slots=True)
class QuotaVerdict(Verdict):
    used: int = 0  # bytes the key had stored today before this request


class StorageQuota(Protocol):
    async def take(self, key: str, size: int, quota: int) -> QuotaVerdict: ...


def stored_bytes(texts: Sequence[str], metadata: dict[str, Any] | None = None) -> int:
    """What storing a request adds to the database: its texts in UTF-8 and its metadata as JSON."""
    # surrogatepass: json.loads lets a lone surrogate through, and counting it must not fail the request.
    size = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
    return size if metadata is None else size + len(orjson.dumps(metadata))


def human_bytes(size: int) -> str:
    """Decimal units, three significant digits: 950 bytes, 9.84 MB, 10 GB."""
    if size < 1000:
        return "1 byte" if size == 1 else f"{size} bytes"
    power = min(4, (len(str(size)) - 1) // 3)
    value = float(f"{size / 1000**power:.3g}")
    return f"{value:g} {'kMGT'[power - 1]}B"


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)


def _verdict(allowed: bool, used: int, now: datetime) -> QuotaVerdict:
    return QuotaVerdict(allowed, (_next_midnight(now) - now).total_seconds(), used)


class MemoryStorageQuota:
    """Counts of the current UTC day; `clock` answers aware UTC datetimes (tests pass their own)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._day = datetime.min.date()
        self._used: dict[str, int] = {}

    async def take(self, key: str, size: int, quota: int) -> QuotaVerdict:
        now = self._clock()
        if now.date() != self._day:
            # Yesterday's counts are of no further use: forgetting them keeps memory bounded.
            self._day, self._used = now.date(), {}
        used = self._used.get(key, 0)
        allowed = used + size <= quota
        if allowed:
            self._used[key] = used + size
        return _verdict(allowed, used, now)


class RedisStorageQuota:
    def __init__(self, client: aioredis.Redis, clock: Callable[[], datetime] = utcnow) -> None:
        self._script = client.register_script(_TAKE)
        self._clock = clock

    async def take(self, key: str, size: int, quota: int) -> QuotaVerdict:
        # The day is this pod's: clocks a second apart at midnight only move a request to the next day.
        now = self._clock()
        expires = int((_next_midnight(now) + timedelta(days=1)).timestamp())
        reply = await run_failing_open(self._script, "storage quota", STORAGE_QUOTA_ERRORS,
                                       keys=[f"quota:{key}:{now:%Y%m%d}"], args=[size, quota, expires])
        if reply is None:
            return QuotaVerdict(True)
        allowed, used = reply
        return _verdict(bool(allowed), int(used), now)
