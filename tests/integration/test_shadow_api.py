"""Shadow policies end to end, on real PostgreSQL and Redis: every decision,
synchronous or decided by a worker, carries the shadow policy's decision; the
native API returns it, the OpenAI-compatible one does not; /shadow/summary
counts live against shadow flags in the database without an API key; the
0004 migration keeps existing results. The embedded mode (SQLite) too."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, inspect, text
from test_api_postgres import admin, wait_done

from ai_moderator_workload import store
from ai_moderator_workload.db import migrate as migrate_module
from ai_moderator_workload.engine.pipeline import Decision
from ai_moderator_workload.engine.policy import parse_policy
from ai_moderator_workload.runtime import Runtime
from ai_moderator_workload.settings import Settings
from servers import Process, alembic_to, api_server, database_at, worker_process

LIVE = "version: live\nthresholds: {violence: 0.6}\n"
# The operator writes the live policy's allowlist and engine into the shadow: only thresholds and lists differ.
SHADOW = "version: trial\nthresholds: {violence: 0.6}\nblocklist: [{term: zorgon, category: hate}]\n"
SHADOW_VERSION = parse_policy(SHADOW).fingerprint

BENIGN = ["Thanks for the quick delivery, the parcel arrived in perfect shape.",
          "Can you recommend a good book about the history of Rome?", "The meeting is moved to 3pm on Thursday.",
          "I killed it at the gym today!", "Our garden is full of tomatoes this year."]
HARMFUL = ["you are a worthless idiot and everyone hates you", "send me nudes babe, I want to see all of you tonight"]
TEXT_OUTCOMES = ("both_flagged", "both_clear", "live_only", "shadow_only")
ZORGON = ["the zorgon visited us on Thursday", "Have you met the Zorgon from next door?", "a zorgon is a kind of lamp"]


def policy_env(tmp: Path, shadow: str | None = SHADOW) -> dict[str, str]:
    (tmp / "policy.yaml").write_text(LIVE)
    env = {"POLICY_FILE": str(tmp / "policy.yaml")}
    if shadow is not None:
        (tmp / "shadow.yaml").write_text(shadow)
        env["SHADOW_POLICY_FILE"] = str(tmp / "shadow.yaml")
    return env


@pytest.fixture(scope="module")
def env(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**pg_env, **policy_env(tmp_path_factory.mktemp("policy"))}


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(env, tmp_path_factory.mktemp("api")) as base:
        yield base


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with worker_process(env, tmp_path_factory.mktemp("worker")) as proc:
        yield proc


def sql(url: str, statement: str, **params: Any) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def summary(base: str, **params: Any) -> dict[str, Any]:
    # No Authorization header: the Kubernetes API server's service proxy drops it.
    response = httpx.get(f"{base}/shadow/summary", params=params, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-cache"
    return dict(response.json())


def shadow_texts(base: str) -> dict[str, float]:
    families = text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text)
    return {s.labels["outcome"]: s.value for f in families if f.name == "moderation_shadow_texts"
            for s in f.samples if s.name == "moderation_shadow_texts_total"}


@pytest.mark.postgres
@pytest.mark.redis
def test_native_decisions_carry_the_shadow_and_openai_ones_do_not(api: str, env: dict[str, str]) -> None:
    decided = httpx.post(f"{api}/api/v1/moderate", json={"text": "ask the zorgon"}, headers=admin(env)).json()
    result = decided["result"]
    assert (result["flagged"], result["policy_version"].split("@")[0]) == (False, "live")
    assert result["shadow"] == {"flagged": True, "categories": ["hate"], "policy_version": SHADOW_VERSION}
    fetched = httpx.get(f"{api}/api/v1/content/{decided['id']}", headers=admin(env)).json()
    assert fetched["result"]["shadow"] == result["shadow"]
    openai_shaped = httpx.post(f"{api}/v1/moderations", json={"input": "ask the zorgon"}, headers=admin(env)).json()
    assert set(openai_shaped) == {"id", "model", "results"}
    assert set(openai_shaped["results"][0]) == {"flagged", "categories", "category_scores",
                                                "category_applied_input_types"}
    documented = httpx.get(f"{api}/openapi.json").json()["components"]["schemas"]
    assert documented["DecisionView"]["properties"]["shadow"]["anyOf"][0] == {"$ref": "#/components/schemas/ShadowView"}
    assert "shadow" not in json.dumps(documented["OpenAIResult"])


@pytest.mark.postgres
@pytest.mark.redis
def test_content_decided_by_a_worker_carries_the_shadow(api: str, env: dict[str, str], worker: Process) -> None:
    ids = []
    for body in ({"text": ZORGON[0]}, {"text": HARMFUL[0]}):
        submitted = httpx.post(f"{api}/api/v1/content", json=body, headers=admin(env))
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["result"] is None
        ids.append(submitted.json()["id"])
    zorgon, insult = (item["result"] for item in wait_done(api, admin(env), ids))
    assert not zorgon["flagged"] and zorgon["shadow"] == {"flagged": True, "categories": ["hate"],
                                                          "policy_version": SHADOW_VERSION}
    assert insult["flagged"] and insult["shadow"]["categories"] == insult["categories"]


@pytest.mark.postgres
@pytest.mark.redis
def test_the_summary_counts_what_was_sent(api: str, env: dict[str, str]) -> None:
    url = env["DATABASE_URL"]
    sql(url, "DELETE FROM content")  # the window holds only this test's decisions (results go by cascade)
    assert summary(api) == {"seconds": 3600, "decisions": 0, "liveFlagged": 0, "shadowFlagged": 0,
                            "agreement": None, "shadowPolicy": None, "categories": {}}
    metrics_before = shadow_texts(api)
    results = [httpx.post(f"{api}/api/v1/moderate", json={"text": t}, headers=admin(env)).json()["result"]
               for t in [*BENIGN, ZORGON[0]]]
    openai_shaped = httpx.post(f"{api}/v1/moderations", json={"input": [*HARMFUL, *ZORGON[1:]]}, headers=admin(env))
    assert [r["flagged"] for r in openai_shaped.json()["results"]] == [True, True, False, False]
    assert [r["flagged"] for r in results] == [False] * 6
    expected_categories: dict[str, dict[str, int]] = {"hate": {"live": 0, "shadow": 3}}
    for r in openai_shaped.json()["results"][:2]:
        for category, flagged in r["categories"].items():
            if flagged:
                counts = expected_categories.setdefault(category, {"live": 0, "shadow": 0})
                counts["live"] += 1
                counts["shadow"] += 1

    got = summary(api)
    assert {**got, "categories": None} == {"seconds": 3600, "decisions": 10, "liveFlagged": 2, "shadowFlagged": 5,
                                           "agreement": 0.7, "shadowPolicy": SHADOW_VERSION, "categories": None}
    assert got["categories"] == expected_categories
    metrics_after = shadow_texts(api)
    assert {o: metrics_after.get(o, 0) - metrics_before.get(o, 0) for o in TEXT_OUTCOMES} == {
        "both_flagged": 2, "both_clear": 5, "shadow_only": 3, "live_only": 0}

    # Older than the window: not counted; a longer window counts them again.
    sql(url, "UPDATE moderation_result SET created_at = now() - interval '2 hours' "
             "WHERE (shadow -> 'categories') ? 'hate'")
    recent = summary(api, seconds=3600)
    assert (recent["decisions"], recent["shadowFlagged"], recent["agreement"]) == (7, 2, 1.0)
    assert "hate" not in recent["categories"]
    assert summary(api, seconds=86400)["decisions"] == 10


class ShadowlessEngine:
    """Decides as an engine without a shadow policy would (stored before one was set)."""

    def moderate(self, texts: list[str], rules: object = None) -> list[Decision]:
        return [Decision(flagged=True, categories={"hate": True}, scores={"hate": 0.9}, spans=[],
                         signals={}, engine_version="e", policy_version="live@0", flagged_categories=["hate"])
                for _ in texts]


@pytest.mark.postgres
@pytest.mark.redis
def test_decisions_without_a_shadow_are_not_counted(api: str, env: dict[str, str]) -> None:
    before = summary(api)
    runtime = Runtime(Settings(database_url=env["DATABASE_URL"]))
    record = store.submit(runtime.sessions, store.Submission("admin", "no shadow then", None, None))
    # store.process inserts with a plain INSERT (not COPY): None must be SQL NULL there too.
    assert store.process(runtime.sessions, ShadowlessEngine(), record.id, max_attempts=3) == "flagged"  # type: ignore[arg-type]
    assert httpx.get(f"{api}/api/v1/content/{record.id}", headers=admin(env)).json()["result"]["shadow"] is None
    assert summary(api) == before


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("seconds", ["59", "86401", "an hour"])
def test_the_summary_window_is_bounded(api: str, seconds: str) -> None:
    response = httpx.get(f"{api}/shadow/summary", params={"seconds": seconds})
    assert response.status_code == 422 and response.json()["error"]["param"] == "query.seconds"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize(("shadow", "message"), [
    (None, "SHADOW_POLICY_FILE="),
    ("version: x\nengine: fast\n", "the shadow policy's allowlist and engine must match the live policy's"),
])
def test_a_missing_or_mismatched_shadow_policy_stops_the_start(pg_env: dict[str, str], tmp_path: Path,
                                                                shadow: str | None, message: str) -> None:
    env = {**pg_env, **policy_env(tmp_path, shadow)}
    env.setdefault("SHADOW_POLICY_FILE", str(tmp_path / "absent.yaml"))
    with pytest.raises(AssertionError, match="API exited during start") as exited, api_server(env, tmp_path):
        pass
    assert message in str(exited.value)


@pytest.mark.postgres
def test_the_migration_keeps_existing_results_and_reverts() -> None:
    with database_at("0003") as (url, engine):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO content (id, tenant, text, status, attempts, created_at) VALUES "
                              "('00000000-0000-4000-8000-000000000001', 't', 'kept', 'done', 0, now())"))
            conn.execute(text("INSERT INTO moderation_result (content_id, flagged, categories, scores, spans, "
                              "engine_version, policy_version, created_at) VALUES "
                              "('00000000-0000-4000-8000-000000000001', true, '[\"hate\"]', '{\"hate\": 0.9}', "
                              "'[]', 'e', 'old@1', now())"))
        assert migrate_module.migrate(Settings(database_url=url)) == migrate_module.head_revision()
        with engine.begin() as conn:
            row = conn.execute(text("SELECT flagged, categories, policy_version, shadow FROM moderation_result"))
            assert tuple(row.one()) == (True, ["hate"], "old@1", None)
            indexes = {i["name"] for i in inspect(conn).get_indexes("moderation_result")}
            assert "idx_moderation_result_created_at" in indexes
            alembic_to(conn, "downgrade", "0003")
            assert "shadow" not in {c["name"] for c in inspect(conn).get_columns("moderation_result")}
            assert "idx_moderation_result_created_at" not in {
                i["name"] for i in inspect(conn).get_indexes("moderation_result")}
            assert conn.execute(text("SELECT policy_version FROM moderation_result")).scalar_one() == "old@1"


def test_the_embedded_mode_stores_and_summarises_the_shadow(tmp_path: Path) -> None:
    os.environ.pop("ADMIN_API_KEY", None)
    embedded = {"DATABASE_URL": f"sqlite:///{tmp_path}/ai-moderator.sqlite3", "REDIS_URL": "",
                "AI_MODERATOR_KEY_FILE": str(tmp_path / "admin.key"), "RATE_LIMIT_PER_MINUTE": "0",
                **policy_env(tmp_path)}
    with api_server(embedded, tmp_path) as base:
        auth = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
        for t in (BENIGN[0], HARMFUL[0], ZORGON[0]):
            assert httpx.post(f"{base}/api/v1/moderate", json={"text": t}, headers=auth).status_code == 200
        queued = httpx.post(f"{base}/api/v1/content", json={"text": ZORGON[1]}, headers=auth).json()
        [item] = wait_done(base, auth, [queued["id"]])
        assert item["result"]["shadow"] == {"flagged": True, "categories": ["hate"], "policy_version": SHADOW_VERSION}
        got = summary(base)
        assert (got["decisions"], got["liveFlagged"], got["shadowFlagged"], got["agreement"]) == (4, 1, 3, 0.5)
        assert got["shadowPolicy"] == SHADOW_VERSION and got["categories"]["hate"] == {"live": 0, "shadow": 2}
        assert got["categories"]["harassment"] == {"live": 1, "shadow": 1}
