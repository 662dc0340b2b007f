from __future__ import annotations

import secrets
from collections.abc import Iterator
from itertools import count

import pytest
import redis

from servers import fresh_database, required_env, run_cli

_redis_db = count(1)


@pytest.fixture(scope="module")
def pg_env() -> Iterator[dict[str, str]]:
    """Settings for a migrated, empty PostgreSQL database and a Redis database
    of this test module's own (so queues of different modules never mix)."""
    redis_url = required_env("TEST_REDIS_URL").rsplit("/", 1)[0] + f"/{next(_redis_db)}"
    redis.Redis.from_url(redis_url).flushdb()
    with fresh_database() as db_url:
        env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "ADMIN_API_KEY": secrets.token_urlsafe(24),
               "API_KEY_CACHE_SECONDS": "0.5", "PENDING_TIMEOUT_SECONDS": "2", "SWEEP_INTERVAL_SECONDS": "0.5",
               "RATE_LIMIT_PER_MINUTE": "0"}
        run_cli("migrate", env=env)
        yield env
