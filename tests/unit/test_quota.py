"""Daily storage quotas: what a request is charged, and the in-memory counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ai_moderator_workload.metrics import STORAGE_QUOTA_ERRORS
from ai_moderator_workload.quota import MemoryStorageQuota, RedisStorageQuota, human_bytes, stored_bytes
from ai_moderator_workload.settings import Settings, parse_bytes
from servers import free_port


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_texts_are_charged_their_utf8_bytes_not_their_characters() -> None:
    assert stored_bytes(["hello"]) == 5
    assert stored_bytes(["héllo", "日本", "👍"]) == 6 + 6 + 4
    # json.loads lets a lone surrogate through; counting it must not fail the request.
    assert stored_bytes(["a\ud800"]) == 4


def test_metadata_is_charged_as_the_json_that_is_stored() -> None:
    assert stored_bytes(["hi"], {"channel": "c1"}) == 2 + len('{"channel":"c1"}')
    assert stored_bytes(["hi"], {"note": "ü"}) == 2 + len('{"note":""}') + 2
    assert stored_bytes(["hi"], None) == 2


async def test_a_key_stores_up_to_its_quota_and_a_refusal_costs_nothing() -> None:
    quota = MemoryStorageQuota(Clock(datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)))
    assert (await quota.take("k", 60, 100)).allowed
    refused = await quota.take("k", 50, 100)
    assert not refused.allowed and refused.used == 60
    assert refused.retry_after_header == "30"  # seconds to the next 00:00 UTC
    fits = await quota.take("k", 40, 100)  # the refused 50 bytes were not counted
    assert fits.allowed and fits.used == 60
    assert not (await quota.take("k", 1, 100)).allowed
    assert (await quota.take("other", 100, 100)).allowed


async def test_a_request_larger_than_the_whole_quota_is_refused() -> None:
    quota = MemoryStorageQuota(Clock(datetime(2026, 11, 26, 12, tzinfo=UTC)))
    refused = await quota.take("k", 101, 100)
    assert not refused.allowed and refused.used == 0 and refused.retry_after == 12 * 3600


async def test_the_quota_starts_again_at_midnight_utc() -> None:
    clock = Clock(datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC))
    quota = MemoryStorageQuota(clock)
    assert (await quota.take("k", 100, 100)).allowed
    assert not (await quota.take("k", 1, 100)).allowed
    clock.now += timedelta(seconds=1)
    renewed = await quota.take("k", 100, 100)
    assert renewed.allowed and renewed.used == 0


async def test_an_unreachable_redis_lets_requests_through_and_counts_the_error() -> None:
    client = aioredis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    errors = STORAGE_QUOTA_ERRORS._value.get()
    try:
        verdict = await RedisStorageQuota(client).take("k", 10**9, 1)
    finally:
        await client.aclose()
    assert verdict.allowed
    assert STORAGE_QUOTA_ERRORS._value.get() == errors + 1


@pytest.mark.parametrize("size, text", [(0, "0 bytes"), (1, "1 byte"), (999, "999 bytes"), (1000, "1 kB"),
                                        (412_345, "412 kB"), (9_840_000, "9.84 MB"), (10**7, "10 MB"),
                                        (2**30, "1.07 GB")])
def test_sizes_in_messages_are_readable(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize("value, size", [("1048576", 2**20), ("500M", 500 * 10**6), ("2G", 2 * 10**9),
                                         ("1Gi", 2**30), ("1.5k", 1500), (" 64Ki ", 65536), ("0", 0)])
def test_byte_sizes(value: str, size: int) -> None:
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["", "ten", "1.5", "-1", "5MB", "1g", "0.5"])
def test_bad_byte_sizes(value: str) -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        parse_bytes(value)


def test_the_default_quota_setting_takes_suffixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAILY_STORAGE_QUOTA_BYTES", raising=False)
    assert Settings().daily_storage_quota_bytes == 0
    monkeypatch.setenv("DAILY_STORAGE_QUOTA_BYTES", "10Gi")
    assert Settings().daily_storage_quota_bytes == 10 * 2**30
