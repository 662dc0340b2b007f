"""Token buckets charge by cost."""

from __future__ import annotations

from ai_moderator_workload.api.routes.limits import text_units
from ai_moderator_workload.ratelimit import MemoryRateLimiter


def test_text_units_grow_with_inputs_and_length() -> None:
    assert text_units(["hi"]) == 1
    assert text_units(["x" * 4000, "x" * 4001]) == 3
    assert text_units(["x" * 32_000] * 256) == 2048


async def test_a_costly_request_passes_on_a_full_bucket_and_leaves_it_in_debt() -> None:
    limiter = MemoryRateLimiter()
    assert (await limiter.hit("k", per_minute=60, burst=10, cost=50)).allowed
    denied = await limiter.hit("k", per_minute=60, burst=10, cost=1)
    assert not denied.allowed and denied.retry_after > 30  # 40 units of debt at 1 unit/s


async def test_cheap_requests_share_the_bucket() -> None:
    limiter = MemoryRateLimiter()
    assert all([(await limiter.hit("k", 60, 5, 1)).allowed for _ in range(5)])
    assert not (await limiter.hit("k", 60, 5, 1)).allowed
