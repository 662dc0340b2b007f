"""Micro-batching gathers concurrent callers into few batch calls."""

from __future__ import annotations

import asyncio
import threading

from ai_moderator_workload.batching import MicroBatcher


async def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    calls: list[int] = []

    def double(items: list[int]) -> list[int]:
        calls.append(len(items))
        threading.Event().wait(0.01)  # a model call takes time; callers pile up meanwhile
        return [i * 2 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(double, max_size=64, max_wait=0.005)
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit([i, i + 1000]) for i in range(200)))
    finally:
        await batcher.stop()
    assert results == [[i * 2, (i + 1000) * 2] for i in range(200)]
    assert sum(calls) == 400
    assert len(calls) <= 20 and max(calls) <= 64


async def test_a_failing_batch_fails_only_its_callers() -> None:
    def fail_on_negative(items: list[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(fail_on_negative, max_size=1, max_wait=0)
    batcher.start()
    try:
        bad, good = await asyncio.gather(batcher.submit([-1]), batcher.submit([1]), return_exceptions=True)
    finally:
        await batcher.stop()
    assert isinstance(bad, ValueError) and good == [1]


async def test_a_request_larger_than_the_batch_goes_alone() -> None:
    sizes: list[int] = []

    def record(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(record, max_size=4, max_wait=0.001)
    batcher.start()
    try:
        assert await batcher.submit(list(range(10))) == list(range(10))
    finally:
        await batcher.stop()
    assert sizes == [10]


async def test_one_callers_bad_item_does_not_fail_the_others_in_its_batch() -> None:
    calls: list[list[int]] = []

    def fail_on_negative(items: list[int]) -> list[int]:
        calls.append(list(items))
        threading.Event().wait(0.01)
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(fail_on_negative, max_size=64, max_wait=0.02)
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit([i]) for i in (1, 2, -3, 4)), return_exceptions=True)
    finally:
        await batcher.stop()
    assert results[:2] == [[1], [2]] and isinstance(results[2], ValueError) and results[3] == [4]
    assert [1, 2, -3, 4] in calls, "the four callers shared one batch first"
