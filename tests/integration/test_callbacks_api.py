"""Callbacks against the real PostgreSQL, Redis and worker processes, with a
receiver in the test on 127.0.0.1: signatures, retries, giving up, SSRF
refusals, the key's default URL, secret rotation, and at-least-once
delivery with a stable delivery id when a worker is killed mid-delivery."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from test_quota_api import new_key

from ai_moderator_workload.callbacks import verify
from ai_moderator_workload.db.migrate import head_revision
from servers import (
    Process,
    Receiver,
    alembic_to,
    api_server,
    callback_receiver,
    database_at,
    free_port,
    metric,
    run_cli,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def env(pg_env: dict[str, str]) -> dict[str, str]:
    # The receiver is on loopback: allowed here explicitly, refused by default (test_ssrf_...).
    return {**pg_env, "CALLBACK_ALLOWED_HOSTS": "127.0.0.1", "CALLBACK_ALLOW_PRIVATE": "true",
            "CALLBACK_BACKOFF_BASE_SECONDS": "0.2", "CALLBACK_BACKOFF_CAP_SECONDS": "0.5",
            "CALLBACK_TIMEOUT_SECONDS": "2", "CALLBACK_MAX_AGE_SECONDS": "120"}


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(env, tmp_path_factory.mktemp("api")) as base:
        yield base


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with callback_receiver() as r:
        yield r


@contextmanager
def worker(env: dict[str, str], tmp: Path, name: str, metrics_port: int = 0, **settings: str) -> Iterator[Process]:
    process = Process(["worker", "--concurrency", "4", "--metrics-port", str(metrics_port)], {**env, **settings},
                      tmp / f"worker-{name}.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def key(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    return new_key(env, "callbacks")


def submit(api: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{api}/api/v1/content", json={"text": "a friendly message", **body}, headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def settled(api: str, headers: dict[str, str], content_id: str, process: Process,
            timeout: float = 60) -> dict[str, Any]:
    """The item once its callback is delivered or failed."""
    deadline = time.monotonic() + timeout
    while True:
        item = httpx.get(f"{api}/api/v1/content/{content_id}", headers=headers).json()
        if item["callback"] and item["callback"]["status"] in ("delivered", "failed"):
            return dict(item)
        assert time.monotonic() < deadline, f"{item}\n{process.output()}"
        time.sleep(0.1)



def test_the_decision_is_delivered_signed_with_the_keys_secret(api: str, env: dict[str, str], hook: Receiver,
                                                                key: tuple[dict[str, Any], dict[str, str]],
                                                                tmp_path: Path) -> None:
    created, headers = key
    accepted = submit(api, headers, callback_url=hook.url("/signed"))
    assert accepted["callback"] == {"url": hook.url("/signed"), "status": None, "attempts": 0, "delivered_at": None,
                                    "error": None}
    with worker(env, tmp_path, "signed") as process:
        item = settled(api, headers, accepted["id"], process)
    assert item["callback"]["status"] == "delivered" and item["callback"]["attempts"] == 1
    assert item["callback"]["delivered_at"] is not None and item["callback"]["error"] is None
    [delivery] = hook.at("/signed")
    assert verify(str(created["callback_secret"]), delivery.signature, delivery.body)
    assert not verify("whsec_not-the-secret", delivery.signature, delivery.body)
    uuid.UUID(delivery.delivery_id)
    # The JSON of GET /api/v1/content/{id}, as it was when the attempt started.
    sent = json.loads(delivery.body)
    assert {k: v for k, v in sent.items() if k != "callback"} == {k: v for k, v in item.items() if k != "callback"}
    assert sent["callback"]["status"] == "pending" and sent["callback"]["attempts"] == 1


def test_a_500_is_retried_with_the_same_delivery_id(api: str, env: dict[str, str], hook: Receiver,
                                                    key: tuple[dict[str, Any], dict[str, str]],
                                                    tmp_path: Path) -> None:
    _, headers = key
    hook.scripts["/flaky"] = [500, 500, 200]
    port = free_port()
    accepted = submit(api, headers, callback_url=hook.url("/flaky"))
    with worker(env, tmp_path, "flaky", metrics_port=port) as process:
        item = settled(api, headers, accepted["id"], process)
        assert metric(f"http://127.0.0.1:{port}", "moderation_callback_deliveries_total", outcome="retry") == 2
        assert metric(f"http://127.0.0.1:{port}", "moderation_callback_deliveries_total", outcome="delivered") == 1
        assert metric(f"http://127.0.0.1:{port}", "moderation_callback_delivery_seconds_count") == 1
    assert item["callback"]["status"] == "delivered" and item["callback"]["attempts"] == 3
    deliveries = hook.at("/flaky")
    assert len(deliveries) == 3 and len({d.delivery_id for d in deliveries}) == 1


def test_retries_end_in_failed_once_the_max_age_passes(api: str, env: dict[str, str], hook: Receiver,
                                                       key: tuple[dict[str, Any], dict[str, str]],
                                                       tmp_path: Path) -> None:
    _, headers = key
    hook.scripts["/down"] = [503] * 1000
    hook.scripts["/gone"] = [404]
    down = submit(api, headers, callback_url=hook.url("/down"))
    gone = submit(api, headers, callback_url=hook.url("/gone"))
    with worker(env, tmp_path, "down", CALLBACK_MAX_AGE_SECONDS="3") as process:
        failed = settled(api, headers, down["id"], process)
        final = settled(api, headers, gone["id"], process)
    assert failed["callback"]["status"] == "failed" and failed["callback"]["attempts"] >= 3
    assert "gave up" in failed["callback"]["error"] and "HTTP 503" in failed["callback"]["error"]
    assert len(hook.at("/down")) == failed["callback"]["attempts"]
    # Any other 4xx is final at once.
    assert final["callback"] == {**final["callback"], "status": "failed", "attempts": 1, "error": "HTTP 404"}


def test_the_keys_default_url_is_used_and_rotation_changes_the_signature(api: str, env: dict[str, str],
                                                                          hook: Receiver, tmp_path: Path) -> None:
    created, headers = new_key(env, "with-default", "--callback-url", hook.url("/default"))
    assert created["callback_url"] == hook.url("/default")
    first = submit(api, headers)
    assert first["callback"]["url"] == hook.url("/default")
    with worker(env, tmp_path, "default") as process:
        settled(api, headers, first["id"], process)
        rotated = json.loads(run_cli("apikey", "rotate-callback-secret", str(created["prefix"]), env=env).stdout)
        assert rotated["callback_secret"] != created["callback_secret"]
        second = submit(api, headers, callback_url=hook.url("/override"))
        settled(api, headers, second["id"], process)
    [before] = hook.at("/default")
    [after] = hook.at("/override")
    assert verify(str(created["callback_secret"]), before.signature, before.body)
    assert verify(str(rotated["callback_secret"]), after.signature, after.body)
    assert not verify(str(created["callback_secret"]), after.signature, after.body)
    # Audited, never with the secret.
    admin = {"Authorization": f"Bearer {env['ADMIN_API_KEY']}"}
    events = httpx.get(f"{api}/api/v1/audit", params={"action": "apikey.rotate_callback_secret"},
                       headers=admin).json()["items"]
    assert [e["target"] for e in events] == [created["id"]]
    assert str(rotated["callback_secret"]) not in json.dumps(events)
    missing = run_cli("apikey", "rotate-callback-secret", "nope", env=env, check=False)
    assert missing.returncode == 1


def test_a_worker_killed_mid_delivery_redelivers_with_the_same_id(api: str, env: dict[str, str], hook: Receiver,
                                                                  key: tuple[dict[str, Any], dict[str, str]],
                                                                  tmp_path: Path) -> None:
    _, headers = key
    hook.slow["/slow"] = 1.5  # below the 2 s timeout: only the kill stops the first attempt
    items = [submit(api, headers, callback_url=hook.url("/slow"))["id"] for _ in range(3)]
    first = Process(["worker", "--concurrency", "4", "--metrics-port", "0"], env, tmp_path / "first.log")
    deadline = time.monotonic() + 60
    while not hook.at("/slow"):
        assert time.monotonic() < deadline, first.output()
        time.sleep(0.01)
    first.kill()  # SIGKILL after the POST, before its answer is recorded
    with worker(env, tmp_path, "second") as second:
        done = [settled(api, headers, i, second) for i in items]
    assert all(d["callback"]["status"] == "delivered" for d in done)
    deliveries = hook.at("/slow")
    ids = {d.delivery_id for d in deliveries}
    # At least once: something was sent twice, and deduping on the delivery id leaves one per item.
    assert len(deliveries) > len(ids) == len(items)
    assert max(d["callback"]["attempts"] for d in done) >= 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost:9/x",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x",
                                 "ftp://example.com/x", "not a url"])
def test_ssrf_internal_addresses_are_refused_by_default(pg_env: dict[str, str], url: str,
                                                        refusing_api: str) -> None:
    _, headers = new_key(pg_env, "ssrf")
    response = httpx.post(f"{refusing_api}/api/v1/content", json={"text": "hi", "callback_url": url},
                          headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "callback_url"


@pytest.fixture(scope="module")
def refusing_api(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API with the default callback settings."""
    with api_server(pg_env, tmp_path_factory.mktemp("refusing")) as base:
        yield base


def test_callbacks_need_a_key_with_a_secret_and_an_allowed_host(api: str, env: dict[str, str],
                                                                key: tuple[dict[str, Any], dict[str, str]]) -> None:
    admin = {"Authorization": f"Bearer {env['ADMIN_API_KEY']}"}  # the bootstrap key has no row, so no secret
    response = httpx.post(f"{api}/api/v1/content", json={"text": "hi", "callback_url": "http://127.0.0.1:9/x"},
                          headers=admin)
    assert response.status_code == 422 and "callback secret" in response.json()["error"]["message"]
    _, headers = key
    response = httpx.post(f"{api}/api/v1/content", json={"text": "hi", "callback_url": "http://127.0.0.2:9/x"},
                          headers=headers)
    assert response.status_code == 422 and "CALLBACK_ALLOWED_HOSTS" in response.json()["error"]["message"]
    refused = run_cli("apikey", "create", "--name", "bad", "--callback-url", "http://127.0.0.2/x", env=env,
                      check=False)
    assert refused.returncode == 2 and "CALLBACK_ALLOWED_HOSTS" in refused.stderr
    # The synchronous route takes no callback.
    assert httpx.post(f"{api}/api/v1/moderate", json={"text": "hi", "callback_url": "http://127.0.0.1:9/x"},
                      headers=headers).status_code == 422


def test_the_migration_keeps_existing_rows_and_reverts() -> None:
    content_id = uuid.UUID("00000000-0000-4000-8000-000000000006")
    with database_at("0005") as (_, engine), engine.begin() as conn:
        conn.execute(text("INSERT INTO content (id, tenant, text, status, attempts, created_at) VALUES "
                          "(:id, 't', 'kept', 'done', 0, now())"), {"id": content_id})
        conn.execute(text("INSERT INTO api_key (id, name, prefix, key_hash, is_admin, created_at) VALUES "
                          "(gen_random_uuid(), 'old', 'abcdefabcdef', 'h', false, now())"))
        alembic_to(conn, "upgrade", head_revision())
        row = conn.execute(text("SELECT text, callback_url, delivery_status, delivery_attempts FROM content")).one()
        assert tuple(row) == ("kept", None, None, 0)
        assert tuple(conn.execute(text("SELECT name, callback_url, callback_secret FROM api_key")).one()) == (
            "old", None, None)
        assert "idx_content_delivery_due" in {i["name"] for i in inspect(conn).get_indexes("content")}
        alembic_to(conn, "downgrade", "0005")
        assert "callback_url" not in {c["name"] for c in inspect(conn).get_columns("content")}
        assert "callback_secret" not in {c["name"] for c in inspect(conn).get_columns("api_key")}
        assert conn.execute(text("SELECT text FROM content")).scalar_one() == "kept"
