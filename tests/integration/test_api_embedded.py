"""`ai-moderator serve` with no services at all (SQLite, in-process tasks):
what a newcomer gets from one command, driven by the official OpenAI SDK."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ai_moderator_workload.engine.categories import CATEGORIES
from servers import api_server


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("embedded")
    env = {"DATABASE_URL": f"sqlite:///{tmp}/ai-moderator.sqlite3", "REDIS_URL": "",
           "AI_MODERATOR_KEY_FILE": str(tmp / "admin.key"), "MAX_TEXT_CHARS": "1000", "MAX_INPUTS": "8",
           "MAX_BODY_BYTES": "65536", "RATE_LIMIT_PER_MINUTE": "0"}
    os.environ.pop("ADMIN_API_KEY", None)
    with api_server(env, tmp) as base:
        yield base, (tmp / "admin.key").read_text().strip()


@pytest.fixture
def client(embedded: tuple[str, str]) -> openai.OpenAI:
    base, key = embedded
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


def test_openai_sdk_single_string(client: openai.OpenAI) -> None:
    response = client.moderations.create(input="I will kill you", model="omni-moderation-latest")
    [result] = response.results
    assert response.id.startswith("modr-")
    assert result.flagged
    assert result.categories.harassment_threatening and not result.categories.sexual
    assert result.category_scores.harassment_threatening > 0.9
    raw = client.moderations.with_raw_response.create(input="hello").parse().model_dump(by_alias=True)
    assert set(raw["results"][0]["categories"]) >= set(CATEGORIES)
    assert set(raw["results"][0]["category_scores"]) >= set(CATEGORIES)


def test_openai_sdk_list_of_strings_keeps_order(client: openai.OpenAI) -> None:
    response = client.moderations.create(input=["have a lovely day", "send me nudes", "all immigrants are vermin"])
    assert [r.flagged for r in response.results] == [False, True, True]
    assert response.results[1].categories.sexual and response.results[2].categories.hate


def test_openai_sdk_text_parts(client: openai.OpenAI) -> None:
    response = client.moderations.create(input=[{"type": "text", "text": "how to make a pipe bomb"}])
    assert response.results[0].categories.illicit_violent


def test_a_long_text_points_at_the_passage_that_flagged_it(embedded: tuple[str, str]) -> None:
    base, key = embedded
    calm = ("We hiked the ridge trail on Saturday. The weather was perfect, the kids found a frog by the "
            "stream and we ate sandwiches by the lake before heading back down to the car park.")
    threat = ("As for you, Mark: I know where you live and I know when your shift ends. Keep posting about my "
              "family and one night I will be waiting outside your door, and I will break every bone in your "
              "worthless body. Nobody will find what is left of you.")
    text = "\n\n".join([calm, calm, calm, threat, calm])  # under this server's MAX_TEXT_CHARS of 1000
    r = httpx.post(f"{base}/api/v1/moderate", json={"text": text}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert "harassment/threatening" in result["categories"]
    [window] = [s for s in result["spans"] if s["source"] == "model" and s["category"] == "harassment/threatening"]
    assert threat in window["text"] and text[window["start"]:window["end"]] == window["text"]


def test_the_key_is_checked_before_the_body_is_read(embedded: tuple[str, str]) -> None:
    base, key = embedded
    garbage = b"{" + b"x" * 60_000
    for headers in ({}, {"Authorization": "Bearer amk_0123456789ab_" + "a" * 43}, {"Authorization": "Bearer nope"}):
        r = httpx.post(f"{base}/v1/moderations", content=garbage, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "authentication_error"
    with_key = httpx.post(f"{base}/v1/moderations", content=garbage,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert with_key.status_code == 400


def test_bad_input_gets_readable_4xx_not_500(client: openai.OpenAI, embedded: tuple[str, str]) -> None:
    base, key = embedded
    auth = {"Authorization": f"Bearer {key}"}
    with pytest.raises(openai.APIStatusError) as too_long:
        client.moderations.create(input="x" * 1001)
    assert too_long.value.status_code == 413 and "limit is 1000" in too_long.value.message
    with pytest.raises(openai.APIStatusError) as too_many:
        client.moderations.create(input=["a"] * 9)
    assert too_many.value.status_code == 413
    with pytest.raises(openai.BadRequestError) as unknown_model:
        client.moderations.create(input="hi", model="gpt-4o")
    assert "Unknown model" in unknown_model.value.message
    with pytest.raises(openai.BadRequestError, match="image"):
        client.moderations.create(input=[{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])

    malformed = httpx.post(f"{base}/v1/moderations", content=b'{"input": ', headers={**auth, "content-type": "application/json"})
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]["message"]
    wrong_type = httpx.post(f"{base}/v1/moderations", json={"input": 42}, headers=auth)
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["param"].startswith("input")
    empty = httpx.post(f"{base}/v1/moderations", json={"input": []}, headers=auth)
    assert empty.status_code == 422
    blank = httpx.post(f"{base}/api/v1/moderate", json={"text": "   "}, headers=auth)
    assert blank.status_code == 422 and "empty" in blank.json()["error"]["message"]
    huge = httpx.post(f"{base}/api/v1/moderate", content=b"{" + b" " * 70000 + b"}", headers={**auth, "content-type": "application/json"})
    assert huge.status_code == 413
    unknown_field = httpx.post(f"{base}/api/v1/moderate", json={"text": "hi", "txt": "typo"}, headers=auth)
    assert unknown_field.status_code == 422 and "txt" in unknown_field.json()["error"]["message"]


def test_auth_is_required_and_checked(embedded: tuple[str, str]) -> None:
    base, _ = embedded
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="amk_000000000000_wrong", max_retries=0).moderations.create(input="x")
    missing = httpx.post(f"{base}/v1/moderations", json={"input": "x"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"


def test_security_headers_and_gzip(embedded: tuple[str, str]) -> None:
    base, key = embedded
    response = httpx.post(f"{base}/v1/moderations", json={"input": ["hello"] * 8},
                          headers={"Authorization": f"Bearer {key}", "Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    health = httpx.get(f"{base}/health")
    assert health.json() == {"status": "ok", "broker": "embedded"} and health.headers["cache-control"] == "no-cache"


def test_async_content_runs_in_process(embedded: tuple[str, str]) -> None:
    base, key = embedded
    auth = {"Authorization": f"Bearer {key}"}
    accepted = httpx.post(f"{base}/api/v1/content", json={"text": "you are a worthless idiot", "external_id": "post-1"},
                          headers=auth)
    assert accepted.status_code == 202
    content_id = accepted.json()["id"]
    deadline = time.monotonic() + 20
    while (item := httpx.get(f"{base}/api/v1/content/{content_id}", headers=auth).json())["status"] != "done":
        assert time.monotonic() < deadline, item
        time.sleep(0.1)
    assert item["result"]["flagged"] and item["result"]["categories"] == ["harassment"]
    again = httpx.post(f"{base}/api/v1/content", json={"text": "something else", "external_id": "post-1"}, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == content_id


def test_ready_docs_and_metrics(embedded: tuple[str, str]) -> None:
    base, _ = embedded
    ready = httpx.get(f"{base}/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "embedded"}
    assert httpx.get(f"{base}/docs").status_code == 200
    spec = httpx.get(f"{base}/openapi.json").json()
    assert {"/v1/moderations", "/api/v1/moderate", "/api/v1/content", "/api/v1/content/{content_id}"} <= set(spec["paths"])
    metrics = httpx.get(f"{base}/metrics").text
    for name in ("http_requests_total", "http_request_duration_seconds_bucket", "moderation_decisions_total",
                 "celery_queue_length", "db_connection_pool_used", "db_connection_pool_size",
                 "celery_task_duration_seconds_bucket"):
        assert name in metrics, name
    assert 'route="/v1/moderations"' in metrics
