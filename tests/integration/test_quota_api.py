"""Daily storage quotas: on real PostgreSQL and Redis a key stores up to its
quota and no further, other keys are unaffected, requests racing on two API
processes never pass it together, and a Redis outage lets requests through;
in the embedded mode the same quota is kept in memory."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, inspect, text
from test_api_postgres import through_proxy

from ai_moderator_workload.db import migrate as migrate_module
from ai_moderator_workload.settings import Settings
from servers import alembic_to, api_server, database_at, run_cli


@pytest.fixture(scope="module")
def env(pg_env: dict[str, str]) -> dict[str, str]:
    return {**pg_env, "DAILY_STORAGE_QUOTA_BYTES": "2k"}


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(env, tmp_path_factory.mktemp("api")) as base:
        yield base


def new_key(env: dict[str, str], name: str, *extra: str) -> tuple[dict[str, object], dict[str, str]]:
    """The key as `apikey create` describes it, and the headers that use it."""
    created = json.loads(run_cli("apikey", "create", "--name", name, *extra, env=env).stdout)
    return created, {"Authorization": f"Bearer {created['key']}"}


def stored_texts(env: dict[str, str], tenant: object) -> list[str]:
    engine = create_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT text FROM content WHERE tenant = :t"), {"t": tenant}).scalars())
    finally:
        engine.dispose()


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    return (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now).total_seconds()


def assert_quota_refusal(response: httpx.Response, message: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "daily_quota_exceeded" and error["type"] == "rate_limit_exceeded"
    assert error["message"] == message
    assert abs(int(response.headers["retry-after"]) - seconds_to_midnight()) < 10


@pytest.mark.postgres
@pytest.mark.redis
def test_a_key_stores_up_to_its_quota_and_then_gets_429(api: str, env: dict[str, str]) -> None:
    small, auth = new_key(env, "small", "--daily-quota", "100")
    assert small["daily_storage_quota_bytes"] == 100
    # 20 bytes of text (10 two-byte characters) and 9 of metadata: 29.
    first = httpx.post(f"{api}/api/v1/content", json={"text": "é" * 10, "metadata": {"k": "v"}}, headers=auth)
    assert first.status_code == 202, first.text
    assert httpx.post(f"{api}/api/v1/moderate", json={"text": "x" * 40}, headers=auth).status_code == 200  # 69
    both = httpx.post(f"{api}/v1/moderations", json={"input": ["y" * 20, "z" * 10]}, headers=auth)  # 99
    assert both.status_code == 200
    for path, body in (("/v1/moderations", {"input": "ab"}), ("/api/v1/moderate", {"text": "ab"}),
                       ("/api/v1/content", {"text": "ab"})):
        assert_quota_refusal(httpx.post(f"{api}{path}", json=body, headers=auth),
                             "This key stored 99 bytes of its 100 bytes daily quota; this request needs 2 bytes. "
                             "The quota resets at 00:00 UTC.")
    # The refusals were not counted: exactly the last byte still fits.
    assert httpx.post(f"{api}/v1/moderations", json={"input": "a"}, headers=auth).status_code == 200
    assert stored_texts(env, small["id"]) == sorted(["é" * 10, "x" * 40, "y" * 20, "z" * 10, "a"])

    unlimited, other = new_key(env, "unlimited", "--daily-quota", "0")
    for _ in range(3):  # 4,500 bytes, over the 2 kB default
        assert httpx.post(f"{api}/api/v1/moderate", json={"text": "w" * 1500}, headers=other).status_code == 200
    assert len(stored_texts(env, unlimited["id"])) == 3


@pytest.mark.postgres
@pytest.mark.redis
def test_keys_without_their_own_quota_get_the_default(api: str, env: dict[str, str]) -> None:
    big, _ = new_key(env, "big", "--daily-quota", "10Gi")
    assert big["daily_storage_quota_bytes"] == 10 * 2**30  # past a 32-bit column
    default, auth = new_key(env, "default")
    assert default["daily_storage_quota_bytes"] is None
    assert httpx.post(f"{api}/api/v1/moderate", json={"text": "d" * 1500}, headers=auth).status_code == 200
    assert_quota_refusal(httpx.post(f"{api}/api/v1/moderate", json={"text": "e" * 1500}, headers=auth),
                         "This key stored 1.5 kB of its 2 kB daily quota; this request needs 1.5 kB. "
                         "The quota resets at 00:00 UTC.")
    assert stored_texts(env, default["id"]) == ["d" * 1500]


@pytest.mark.postgres
@pytest.mark.redis
def test_requests_racing_on_two_api_processes_never_pass_the_quota(
        api: str, env: dict[str, str], tmp_path: Path) -> None:
    racy, auth = new_key(env, "racy", "--daily-quota", "1000")

    async def race(bases: list[str]) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(
                client.post(f"{bases[i % 2]}/api/v1/moderate", json={"text": f"{i:03d}" + "r" * 297}, headers=auth)
                for i in range(12)))

    with api_server(env, tmp_path) as second:
        responses = asyncio.run(race([api, second]))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 9  # 300 bytes each, 1,000 a day
    assert sum(len(t) for t in stored_texts(env, racy["id"])) == 900
    key = f"quota:{racy['id']}:{datetime.now(UTC):%Y%m%d}"
    with redis.Redis.from_url(env["REDIS_URL"]) as counter:
        assert int(counter.get(key) or 0) == 900
        assert 86400 < counter.ttl(key) <= 2 * 86400  # gone a day after its day ends


@pytest.mark.postgres
@pytest.mark.redis
def test_a_redis_outage_lets_requests_through(env: dict[str, str], tmp_path: Path) -> None:
    proxied, proxy = through_proxy(env, "REDIS_URL")
    _, auth = new_key(env, "tiny", "--daily-quota", "10")
    over = {"input": "seventeen bytes!!"}
    with api_server(proxied, tmp_path) as base:
        assert httpx.post(f"{base}/v1/moderations", json=over, headers=auth).status_code == 429
        proxy.cut()
        allowed = httpx.post(f"{base}/v1/moderations", json=over, headers=auth, timeout=20)
        assert allowed.status_code == 200, allowed.text
        errors = [line for line in httpx.get(f"{base}/metrics").text.splitlines()
                  if line.startswith("storage_quota_errors_total ")]
        assert errors and float(errors[0].split()[1]) >= 1
        proxy.start()
        deadline = time.monotonic() + 20
        while httpx.post(f"{base}/v1/moderations", json=over, headers=auth, timeout=20).status_code != 429:
            assert time.monotonic() < deadline, "the quota did not apply again after Redis came back"
            time.sleep(0.2)
    proxy.cut()


def test_the_embedded_mode_keeps_the_quota_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    embedded = {"DATABASE_URL": f"sqlite:///{tmp_path}/ai-moderator.sqlite3", "REDIS_URL": "",
                "AI_MODERATOR_KEY_FILE": str(tmp_path / "admin.key"), "RATE_LIMIT_PER_MINUTE": "0",
                "DAILY_STORAGE_QUOTA_BYTES": "50"}
    with api_server(embedded, tmp_path) as base:
        auth = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
        assert httpx.post(f"{base}/api/v1/moderate", json={"text": "m" * 40}, headers=auth).status_code == 200
        assert_quota_refusal(httpx.post(f"{base}/api/v1/content", json={"text": "n" * 20}, headers=auth),
                             "This key stored 40 bytes of its 50 bytes daily quota; this request needs 20 bytes. "
                             "The quota resets at 00:00 UTC.")
        assert httpx.post(f"{base}/api/v1/content", json={"text": "n" * 10}, headers=auth).status_code == 202


@pytest.mark.postgres
def test_the_migration_keeps_existing_keys_and_reverts() -> None:
    with database_at("0002") as (url, engine):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_key (id, name, prefix, key_hash, is_admin, "
                              "rate_limit_per_minute, created_at) VALUES "
                              "(gen_random_uuid(), 'old', '0123456789ab', :h, false, 60, now())"), {"h": "0" * 64})
        assert migrate_module.migrate(Settings(database_url=url)) == migrate_module.head_revision()
        with engine.begin() as conn:
            row = conn.execute(text("SELECT name, rate_limit_per_minute, daily_storage_quota_bytes FROM api_key"))
            assert tuple(row.one()) == ("old", 60, None)
            alembic_to(conn, "downgrade", "0002")
            assert "daily_storage_quota_bytes" not in {c["name"] for c in inspect(conn).get_columns("api_key")}
            assert conn.execute(text("SELECT name FROM api_key")).scalar_one() == "old"
