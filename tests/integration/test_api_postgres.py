"""The production path: API and workers on real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import create_engine, text

from servers import Process, TcpProxy, api_server, run_cli, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def api(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(pg_env, tmp_path_factory.mktemp("api")) as base:
        yield base


@pytest.fixture(scope="module")
def worker(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with worker_process(pg_env, tmp_path_factory.mktemp("worker")) as proc:
        yield proc


def admin(pg_env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pg_env['ADMIN_API_KEY']}"}


def new_key(pg_env: dict[str, str], name: str, *extra: str) -> str:
    return str(json.loads(run_cli("apikey", "create", "--name", name, *extra, env=pg_env).stdout)["key"])


def db_count(pg_env: dict[str, str], sql: str) -> int:
    engine = create_engine(pg_env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def wait_done(base: str, headers: dict[str, str], ids: list[str], timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    items: dict[str, dict] = {}
    while pending:
        for content_id in list(pending):
            item = httpx.get(f"{base}/api/v1/content/{content_id}", headers=headers).json()
            if item["status"] == "done":
                items[content_id] = item
                pending.discard(content_id)
        assert time.monotonic() < deadline, f"{len(pending)} items still pending"
        time.sleep(0.2)
    return [items[i] for i in ids]


def test_openai_sdk_decisions_are_stored(api: str, pg_env: dict[str, str]) -> None:
    before = db_count(pg_env, "SELECT count(*) FROM moderation_result")
    client = openai.OpenAI(base_url=f"{api}/v1", api_key=pg_env["ADMIN_API_KEY"], max_retries=0)
    response = client.moderations.create(input=["lovely weather", "you are a worthless idiot"])
    assert [r.flagged for r in response.results] == [False, True]
    assert db_count(pg_env, "SELECT count(*) FROM moderation_result") == before + 2
    assert db_count(pg_env, "SELECT count(*) FROM moderation_result WHERE flagged AND policy_version LIKE 'default@%'") >= 1


def test_native_moderate_returns_spans_and_is_idempotent(api: str, pg_env: dict[str, str]) -> None:
    body = {"text": "Honestly, you are a worthless idiot.", "external_id": "msg-42", "metadata": {"channel": "c1"}}
    first = httpx.post(f"{api}/api/v1/moderate", json=body, headers=admin(pg_env)).json()
    assert first["result"]["categories"] == ["harassment"]
    assert first["result"]["spans"][0]["text"] == "you are a worthless idiot"
    again = httpx.post(f"{api}/api/v1/moderate", json=body, headers=admin(pg_env))
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert db_count(pg_env, "SELECT count(*) FROM content WHERE external_id = 'msg-42'") == 1
    looked_up = httpx.get(f"{api}/api/v1/content", params={"external_id": "msg-42"}, headers=admin(pg_env)).json()
    assert looked_up["id"] == first["id"] and looked_up["metadata"] == {"channel": "c1"}


def test_async_content_is_moderated_by_the_worker(api: str, pg_env: dict[str, str], worker: Process) -> None:
    headers = admin(pg_env)
    ids = []
    for i in range(20):
        r = httpx.post(f"{api}/api/v1/content", json={"text": f"message {i}: send me nudes", "external_id": f"a-{i}"},
                       headers=headers)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    items = wait_done(api, headers, ids)
    assert all(item["result"]["flagged"] and "sexual" in item["result"]["categories"] for item in items)
    dup = httpx.post(f"{api}/api/v1/content", json={"text": "other", "external_id": "a-3"}, headers=headers)
    assert dup.status_code == 200 and dup.json()["id"] == ids[3]
    assert db_count(pg_env, "SELECT count(*) FROM moderation_result r JOIN content c ON c.id = r.content_id "
                            "WHERE c.external_id LIKE 'a-%'") == 20


def test_keys_are_isolated_and_revocable(api: str, pg_env: dict[str, str]) -> None:
    alice, bob = new_key(pg_env, "alice"), new_key(pg_env, "bob")
    created = httpx.post(f"{api}/api/v1/moderate", json={"text": "hi", "external_id": "same"},
                         headers={"Authorization": f"Bearer {alice}"}).json()
    bobs = httpx.post(f"{api}/api/v1/moderate", json={"text": "hi", "external_id": "same"},
                      headers={"Authorization": f"Bearer {bob}"}).json()
    assert bobs["id"] != created["id"]
    assert httpx.get(f"{api}/api/v1/content/{created['id']}", headers={"Authorization": f"Bearer {bob}"}).status_code == 404
    assert httpx.get(f"{api}/api/v1/content/{created['id']}", headers=admin(pg_env)).status_code == 200
    listed = json.loads(run_cli("apikey", "list", env=pg_env).stdout)
    assert {"alice", "bob"} <= {k["name"] for k in listed} and all("key_hash" not in k for k in listed)
    stored = db_count(pg_env, f"SELECT count(*) FROM api_key WHERE key_hash = '{alice}'")
    assert stored == 0, "keys must be stored hashed"
    prefix = alice.split("_")[1]
    run_cli("apikey", "revoke", prefix, env=pg_env)
    time.sleep(0.6)
    assert httpx.post(f"{api}/api/v1/moderate", json={"text": "hi"},
                      headers={"Authorization": f"Bearer {alice}"}).status_code == 401


def test_rate_limit_answers_429_with_retry_after(api: str, pg_env: dict[str, str]) -> None:
    key = new_key(pg_env, "limited", "--rate-limit", "3")
    client = openai.OpenAI(base_url=f"{api}/v1", api_key=key, max_retries=0)
    for _ in range(3):
        client.moderations.create(input="hello")
    with pytest.raises(openai.RateLimitError) as limited:
        client.moderations.create(input="hello")
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert "3 units per minute" in limited.value.message


def test_rate_limits_charge_by_work(api: str, pg_env: dict[str, str]) -> None:
    """A unit per input per started 4,000 characters: a list of long texts
    costs what it makes the engine do, not what "hi" costs."""
    key = new_key(pg_env, "by-work", "--rate-limit", "20")
    auth = {"Authorization": f"Bearer {key}"}
    heavy = {"input": ["word " * 1600] * 4}  # 4 inputs of 8,000 characters: 8 units
    assert httpx.post(f"{api}/v1/moderations", json=heavy, headers=auth, timeout=60).status_code == 200
    assert httpx.post(f"{api}/v1/moderations", json=heavy, headers=auth, timeout=60).status_code == 200
    refused = httpx.post(f"{api}/v1/moderations", json=heavy, headers=auth, timeout=60)
    assert refused.status_code == 429, "three heavy requests must cost more than 20 units"


def through_proxy(pg_env: dict[str, str], variable: str) -> tuple[dict[str, str], TcpProxy]:
    """The test environment with one server's URL pointed at a proxy the test can cut."""
    real_port = int(pg_env[variable].rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(real_port)
    proxy.start()
    return {**pg_env, variable: pg_env[variable].replace(f":{real_port}/", f":{proxy.port}/")}, proxy


def test_database_outage_gives_503_and_recovers(pg_env: dict[str, str], tmp_path: Path) -> None:
    env, proxy = through_proxy(pg_env, "DATABASE_URL")
    with api_server(env, tmp_path) as base:
        headers = admin(pg_env)
        assert httpx.get(f"{base}/ready").status_code == 200
        proxy.cut()
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")
        write = httpx.post(f"{base}/api/v1/moderate", json={"text": "hello"}, headers=headers, timeout=20)
        assert write.status_code == 503 and write.headers["retry-after"] == "5"
        submit = httpx.post(f"{base}/api/v1/content", json={"text": "hello"}, headers=headers, timeout=20)
        assert submit.status_code == 503
        proxy.start()
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "API did not recover after the database came back"
            time.sleep(0.2)
        assert httpx.post(f"{base}/api/v1/moderate", json={"text": "hello"}, headers=headers).status_code == 200
    proxy.cut()


def test_a_broker_outage_degrades_only_the_async_route(pg_env: dict[str, str], tmp_path: Path) -> None:
    env, proxy = through_proxy(pg_env, "REDIS_URL")
    with api_server(env, tmp_path) as base:
        headers = admin(pg_env)
        assert httpx.get(f"{base}/health").json()["broker"] == "ok"
        proxy.cut()
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/health").json()["broker"] != "unavailable":
            assert time.monotonic() < deadline, "the API never noticed the broker was gone"
            time.sleep(0.2)
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "unavailable"
        assert httpx.post(f"{base}/v1/moderations", json={"input": "hello"}, headers=headers, timeout=20).status_code == 200
        assert httpx.post(f"{base}/api/v1/moderate", json={"text": "hello"}, headers=headers, timeout=20).status_code == 200
        submit = httpx.post(f"{base}/api/v1/content", json={"text": "later"}, headers=headers, timeout=20)
        assert submit.status_code == 503 and submit.headers["retry-after"] == "5"
        started = time.monotonic()
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert time.monotonic() - started < 1.0, "a scrape waited on the broker"
        assert "broker_up 0.0" in metrics
        proxy.start()
        while httpx.get(f"{base}/health").json()["broker"] != "ok":
            assert time.monotonic() < deadline + 20, "the API never noticed the broker was back"
            time.sleep(0.2)
        assert httpx.post(f"{base}/api/v1/content", json={"text": "now"}, headers=headers).status_code == 202
    proxy.cut()


def test_one_tenants_unstorable_request_never_fails_anothers(api: str, pg_env: dict[str, str]) -> None:
    alice, mallory = new_key(pg_env, "alice-batch"), new_key(pg_env, "mallory-batch")
    poisons = [({"text": "fine\x00text"}, "text"), ({"text": "ok", "metadata": {"n": 2**70}}, "metadata"),
               ({"text": "ok", "metadata": {"a": [[[[[[[[[["deep"]]]]]]]]]]}}, "metadata"),
               ({"text": "ok", "metadata": {"note": "x\x00"}}, "metadata")]

    async def both(poison: dict[str, object]) -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            good, bad = await asyncio.gather(
                client.post("/api/v1/moderate", json={"text": "a perfectly normal message"},
                            headers={"Authorization": f"Bearer {alice}"}),
                client.post("/api/v1/moderate", json=poison, headers={"Authorization": f"Bearer {mallory}"}))
            return good, bad

    for poison, field in poisons:
        good, bad = asyncio.run(both(poison))
        assert good.status_code == 200, good.text
        assert bad.status_code == 422 and bad.json()["error"]["param"] == field, bad.text


class ExplodingEngine:
    """An engine that fails on every text, as a poison item would."""

    def moderate(self, texts: list[str], rules: object = None) -> list[object]:
        raise RuntimeError("model exploded\nsecond line")


def test_content_that_always_fails_ends_as_failed_with_its_reason(api: str, pg_env: dict[str, str]) -> None:
    from ai_moderator_workload import store
    from ai_moderator_workload.metrics import CONTENT_FAILED
    from ai_moderator_workload.runtime import Runtime
    from ai_moderator_workload.settings import Settings

    runtime = Runtime(Settings(database_url=pg_env["DATABASE_URL"]))
    record = store.submit(runtime.sessions, store.Submission("admin", "poison pill", "poison-1", None))
    failed_before = CONTENT_FAILED._value.get()
    for _ in range(3):
        with pytest.raises(RuntimeError):
            store.process(runtime.sessions, ExplodingEngine(), record.id, max_attempts=3)  # type: ignore[arg-type]
    assert store.process(runtime.sessions, ExplodingEngine(), record.id, max_attempts=3) == "failed"  # type: ignore[arg-type]
    assert store.process(runtime.sessions, ExplodingEngine(), record.id, max_attempts=3) == "skipped"  # type: ignore[arg-type]
    assert CONTENT_FAILED._value.get() == failed_before + 1
    item = httpx.get(f"{api}/api/v1/content/{record.id}", headers=admin(pg_env)).json()
    assert item["status"] == "failed" and item["attempts"] == 3 and item["result"] is None
    assert item["failure_reason"] == "gave up after 3 attempts: RuntimeError: model exploded"
    assert record.id not in store.claim_stale_pending(runtime.sessions, timedelta(0))
