"""Feedback, the human review queue, reviews, the audit log and
export-feedback, on real PostgreSQL and Redis: owners give feedback on their
own content only; admins see flagged, near-threshold and reported items
oldest first, page through them without repeats or gaps, and override the
model while its decision stays beside theirs; every review is audited without
the text; the export is the corpus's format; migration 0005 keeps the data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from test_api_postgres import admin, db_count
from test_quota_api import new_key
from test_shadow_api import sql

from ai_moderator_workload import store
from ai_moderator_workload.db import migrate as migrate_module
from ai_moderator_workload.engine import corpus
from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.pipeline import Decision
from ai_moderator_workload.engine.policy import parse_policy
from ai_moderator_workload.runtime import Runtime
from ai_moderator_workload.settings import Settings
from servers import alembic_to, api_server, database_at, metric, run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# REVIEW_BAND is left at its default, 0.1: violence is near from 0.5 to 0.7, the other categories from 0.4 to 0.6.
POLICY = parse_policy("version: review-test\nthresholds: {violence: 0.6}\n")
CLEAR = {c: 0.05 for c in CATEGORIES}


class ScoresEngine:
    """Decides on given scores under POLICY, as the engine would: the test
    chooses how close to a threshold each item is."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = {**CLEAR, **scores}

    def moderate(self, texts: list[str], rules: object = None) -> list[Decision]:
        flagged = [c for c in CATEGORIES if self.scores[c] >= POLICY.threshold(c)]
        return [Decision(flagged=bool(flagged), categories={c: c in flagged for c in CATEGORIES},
                         scores=self.scores, spans=[], signals={}, engine_version="e", policy_version="p",
                         flagged_categories=flagged) for _ in texts]


@pytest.fixture(scope="module")
def env(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text("version: review-test\nthresholds: {violence: 0.6}\n")
    return {**pg_env, "POLICY_FILE": str(policy)}


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(env, tmp_path_factory.mktemp("api")) as base:
        yield base


@pytest.fixture(scope="module")
def owner(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A tenant's key: its id (the tenant) and its headers."""
    created, headers = new_key(env, "owner")
    return str(created["id"]), headers


@pytest.fixture(scope="module")
def reviewer(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    created, headers = new_key(env, "reviewer", "--admin")
    return str(created["id"]), headers


def runtime(env: dict[str, str]) -> Runtime:
    return Runtime(Settings(database_url=env["DATABASE_URL"]))


def decided(env: dict[str, str], tenant: str, content: str, scores: dict[str, float],
            copies: int = 1) -> list[store.ContentRecord]:
    """Items stored as the API stores them, decided on these scores (one
    batch: `copies` items share one created_at)."""
    items = [store.Submission(tenant, content if copies == 1 else f"{content} {i}") for i in range(copies)]
    return store.moderate_and_store(runtime(env).sessions, ScoresEngine(scores), items)  # type: ignore[arg-type]


def oldest_first(records: list[store.ContentRecord]) -> list[str]:
    return [str(r.id) for r in sorted(records, key=lambda r: (r.created_at, r.id))]



def feedback(base: str, headers: dict[str, str], content_id: object, **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/content/{content_id}/feedback", json=body, headers=headers, timeout=10)


def review(base: str, headers: dict[str, str], content_id: object, **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/review/{content_id}", json=body, headers=headers, timeout=10)


def queue(base: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/v1/review", params=params, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def whole_queue(base: str, headers: dict[str, str], limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = queue(base, headers, limit=limit, **({"cursor": cursor} if cursor else {}))
        pages.append([item["id"] for item in page["items"]])
        if (cursor := page["next_cursor"]) is None:
            return pages


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and set(error) == {"message", "type", "param", "code"}
    return dict(error)


def test_the_owner_gives_feedback_and_it_is_counted(api: str, env: dict[str, str],
                                                    owner: tuple[str, dict[str, str]]) -> None:
    tenant, headers = owner
    item = httpx.post(f"{api}/api/v1/moderate", json={"text": "you are a worthless idiot"}, headers=headers).json()
    assert item["result"]["categories"] == ["harassment"] and item["decided_by"] == "model"
    before = (metric(api, "moderation_feedback_total", verdict="false_positive", category="harassment"),
              metric(api, "moderation_feedback_total", verdict="correct", category="none"))

    first = feedback(api, headers, item["id"], verdict="false_positive", categories=["harassment"], note="banter")
    assert first.status_code == 201, first.text
    body = first.json()
    assert {k: body[k] for k in ("content_id", "verdict", "categories", "note")} == {
        "content_id": item["id"], "verdict": "false_positive", "categories": ["harassment"], "note": "banter"}
    second = feedback(api, headers, item["id"], verdict="correct")
    assert second.status_code == 201 and second.json()["id"] != body["id"] and second.json()["categories"] == []
    # An admin may give feedback too; it belongs with the item's tenant.
    assert feedback(api, admin(env), item["id"], verdict="correct").status_code == 201

    assert db_count(env, f"SELECT count(*) FROM feedback WHERE content_id = '{item['id']}' "
                         f"AND tenant = '{tenant}'") == 3
    assert db_count(env, f"SELECT count(*) FROM feedback WHERE key_id = '{tenant}'") == 2
    after = (metric(api, "moderation_feedback_total", verdict="false_positive", category="harassment"),
             metric(api, "moderation_feedback_total", verdict="correct", category="none"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)


def test_another_tenants_content_is_not_found(api: str, env: dict[str, str],
                                              owner: tuple[str, dict[str, str]]) -> None:
    _, headers = owner
    _, stranger = new_key(env, "stranger")
    item = httpx.post(f"{api}/api/v1/moderate", json={"text": "see you at lunch"}, headers=headers).json()
    error = assert_error(feedback(api, stranger, item["id"], verdict="false_negative", categories=["hate"]),
                         404, "not_found")
    assert error["type"] == "not_found_error" and item["id"] in error["message"]
    assert_error(feedback(api, headers, "00000000-0000-4000-8000-000000000000", verdict="correct"), 404, "not_found")
    assert db_count(env, f"SELECT count(*) FROM feedback WHERE content_id = '{item['id']}'") == 0


@pytest.mark.parametrize(("body", "param"), [
    ({"verdict": "wrong"}, "verdict"),
    ({"categories": ["hate"]}, "verdict"),
    ({"verdict": "false_negative", "categories": ["spam"]}, "categories.0"),
    ({"verdict": "correct", "note": "x" * 2001}, "note"),
    ({"verdict": "correct", "note": "a\x00b"}, "note"),
    ({"verdict": "correct", "score": 1}, "score"),
])
def test_feedback_is_validated(api: str, owner: tuple[str, dict[str, str]], body: dict[str, Any],
                               param: str) -> None:
    _, headers = owner
    item = httpx.post(f"{api}/api/v1/moderate", json={"text": "hello there"}, headers=headers).json()
    error = assert_error(feedback(api, headers, item["id"], **body), 422, "invalid_value")
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_undecided_content_cannot_be_judged_yet(api: str, owner: tuple[str, dict[str, str]],
                                                reviewer: tuple[str, dict[str, str]]) -> None:
    _, headers = owner
    # No worker runs in this module: the item stays pending.
    pending = httpx.post(f"{api}/api/v1/content", json={"text": "later"}, headers=headers).json()
    assert pending["status"] == "pending" and pending["decided_by"] is None
    error = assert_error(feedback(api, headers, pending["id"], verdict="correct"), 400, "not_decided")
    assert "no decision yet" in error["message"]
    assert_error(review(api, reviewer[1], pending["id"], flagged=False), 400, "not_decided")


def test_the_queue_holds_flagged_near_threshold_and_reported_items_oldest_first(
        api: str, env: dict[str, str], owner: tuple[str, dict[str, str]],
        reviewer: tuple[str, dict[str, str]]) -> None:
    tenant, headers = owner
    sql(env["DATABASE_URL"], "DELETE FROM content")  # the queue holds only this test's items
    flagged = decided(env, tenant, "flagged", {"hate": 0.9})
    far = decided(env, tenant, "far from every threshold", {"violence": 0.45, "harassment": 0.35})
    near_violence = decided(env, tenant, "near violence", {"violence": 0.55})
    clear = decided(env, tenant, "clear", {})
    near_below = decided(env, tenant, "just under harassment", {"harassment": 0.42})
    reported = decided(env, tenant, "missed", {})
    judged_right = decided(env, tenant, "right", {})
    batch = decided(env, tenant, "batch", {"sexual": 0.8}, copies=3)  # one created_at: ordered by id
    assert feedback(api, headers, reported[0].id, verdict="false_negative", categories=["illicit"]).status_code == 201
    assert feedback(api, headers, judged_right[0].id, verdict="correct").status_code == 201
    expected = oldest_first([*flagged, *near_violence, *near_below, *reported, *batch])
    assert not {str(r.id) for r in [*far, *clear, *judged_right]} & set(expected)

    page = queue(api, reviewer[1], limit=50)
    assert [item["id"] for item in page["items"]] == expected and page["next_cursor"] is None
    assert all(item["decided_by"] == "model" and item["review"] is None for item in page["items"])
    assert metric(api, "moderation_review_queue_depth") == len(expected)
    assert metric(api, "moderation_review_oldest_age_seconds") > 0


def test_the_queue_pages_without_repeats_or_gaps(api: str, env: dict[str, str],
                                                 reviewer: tuple[str, dict[str, str]]) -> None:
    _, headers = reviewer
    everything = queue(api, headers, limit=200)["items"]
    assert len(everything) == 7
    for limit in (1, 2, 3):
        pages = whole_queue(api, headers, limit)
        assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
        assert [i for p in pages for i in p] == [item["id"] for item in everything]

    # Reviewed between two pages: it leaves the queue, and the next page
    # still starts right after the last item seen.
    first = queue(api, headers, limit=2)
    assert review(api, headers, everything[3]["id"], flagged=True, categories=["sexual"]).status_code == 200
    rest = queue(api, headers, limit=50, cursor=first["next_cursor"])
    assert [i["id"] for i in rest["items"]] == [everything[2]["id"], *(i["id"] for i in everything[4:])]
    for cursor in ("nonsense", "bm9wZQ", "MjAyNi0xMS0wMXx4"):
        response = httpx.get(f"{api}/api/v1/review", params={"cursor": cursor}, headers=headers)
        assert assert_error(response, 422, "invalid_cursor")["param"] == "query.cursor"


def test_review_routes_and_the_audit_log_are_for_admin_keys(api: str, owner: tuple[str, dict[str, str]]) -> None:
    _, headers = owner
    for response in (httpx.get(f"{api}/api/v1/review", headers=headers),
                     review(api, headers, "00000000-0000-4000-8000-000000000000", flagged=False),
                     httpx.get(f"{api}/api/v1/audit", headers=headers)):
        error = assert_error(response, 403, "admin_key_required")
        assert error["type"] == "permission_error" and "admin API key" in error["message"]
    assert httpx.get(f"{api}/api/v1/review").status_code == 401


def test_a_review_overrides_the_model_and_keeps_its_decision(api: str, env: dict[str, str],
                                                             owner: tuple[str, dict[str, str]],
                                                             reviewer: tuple[str, dict[str, str]]) -> None:
    tenant, headers = owner
    reviewer_id, reviewer_headers = reviewer
    [item] = decided(env, tenant, "a slur, quoted to condemn it", {"hate": 0.9})
    model = httpx.get(f"{api}/api/v1/content/{item.id}", headers=headers).json()["result"]
    outcomes = {o: metric(api, "moderation_reviews_total", outcome=o) for o in ("agree", "overturn")}

    overturned = review(api, reviewer_headers, item.id, flagged=False, note="quoted, not meant")
    assert overturned.status_code == 200, overturned.text
    body = overturned.json()
    assert body["decided_by"] == "human" and body["result"] == model
    assert {k: v for k, v in body["review"].items() if k != "reviewed_at"} == {
        "flagged": False, "categories": [], "note": "quoted, not meant", "reviewed_by": reviewer_id}
    # The owner sees the human decision beside the model's; the item left the queue.
    seen = httpx.get(f"{api}/api/v1/content/{item.id}", headers=headers).json()
    assert (seen["decided_by"], seen["review"], seen["result"]) == ("human", body["review"], model)
    assert str(item.id) not in {i["id"] for i in queue(api, reviewer_headers, limit=200)["items"]}

    again = review(api, admin(env), item.id, flagged=True, categories=["hate", "hate"])
    assert again.json()["review"]["categories"] == ["hate"] and again.json()["review"]["reviewed_by"] == \
        "bootstrap-admin"
    assert db_count(env, f"SELECT count(*) FROM review WHERE content_id = '{item.id}'") == 1
    assert (metric(api, "moderation_reviews_total", outcome="overturn") - outcomes["overturn"],
            metric(api, "moderation_reviews_total", outcome="agree") - outcomes["agree"]) == (1, 1)

    assert_error(review(api, reviewer_headers, item.id, flagged=True), 422, "invalid_value")
    assert_error(review(api, reviewer_headers, item.id, flagged=False, categories=["hate"]), 422, "invalid_value")
    assert_error(review(api, reviewer_headers, "00000000-0000-4000-8000-000000000000", flagged=False),
                 404, "not_found")


def test_reviews_and_key_changes_are_audited_without_text_or_keys(api: str, env: dict[str, str],
                                                                   owner: tuple[str, dict[str, str]],
                                                                   reviewer: tuple[str, dict[str, str]]) -> None:
    tenant, _ = owner
    reviewer_id, headers = reviewer
    secret_text = "a secret text no audit event may hold"
    [item] = decided(env, tenant, secret_text, {"violence": 0.9})
    for decision in ({"flagged": False, "note": f"it says {secret_text}"}, {"flagged": True,
                                                                          "categories": ["violence"]}):
        assert review(api, headers, item.id, **decision).status_code == 200
    created, _ = new_key(env, "audited")

    def audit(**params: Any) -> dict[str, Any]:
        response = httpx.get(f"{api}/api/v1/audit", params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert secret_text not in response.text and str(created["key"]) not in response.text
        return dict(response.json())

    events = audit(action="review.record", actor=reviewer_id)["items"]
    mine = [e for e in events if e["target"] == str(item.id)]
    assert [e["details"]["outcome"] for e in mine] == ["agree", "overturn"]  # newest first
    assert mine[0]["details"] == {
        "tenant": tenant, "outcome": "agree",
        "model": {"decided_by": "model", "flagged": True, "categories": ["violence"]},
        "before": {"decided_by": "human", "flagged": False, "categories": []},
        "after": {"decided_by": "human", "flagged": True, "categories": ["violence"]}}
    assert mine[1]["details"]["before"] == mine[0]["details"]["model"]
    assert {e["actor"] for e in events} == {reviewer_id}

    [key_event] = audit(action="apikey.create", actor="cli", since=mine[0]["created_at"])["items"]
    assert key_event["target"] == created["id"] and key_event["details"] == {"name": "audited", "is_admin": False}
    assert audit(action="review.record", since=mine[0]["created_at"], until=mine[0]["created_at"])["items"] == []
    assert [e["id"] for e in audit(until=mine[0]["created_at"], action="review.record")["items"]][0] == mine[1]["id"]

    everything = audit(limit=200)["items"]
    assert len(everything) > 3
    paged, cursor = [], None
    while True:
        page = audit(limit=2, **({"cursor": cursor} if cursor else {}))
        paged += [e["id"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == [e["id"] for e in everything]
    times = [datetime.fromisoformat(e["created_at"]) for e in everything]
    assert times == sorted(times, reverse=True)


def test_routes_are_rate_limited(api: str, env: dict[str, str], owner: tuple[str, dict[str, str]]) -> None:
    item = httpx.post(f"{api}/api/v1/moderate", json={"text": "nice day"}, headers=owner[1]).json()
    calls = [lambda h: feedback(api, h, item["id"], verdict="correct"),
             lambda h: httpx.get(f"{api}/api/v1/review", headers=h),
             lambda h: review(api, h, item["id"], flagged=False),
             lambda h: httpx.get(f"{api}/api/v1/audit", headers=h)]
    for call in calls:
        _, headers = new_key(env, "one-a-minute", "--admin", "--rate-limit", "1")
        assert call(headers).status_code in (200, 201)
        assert_error(call(headers), 429, "rate_limit_exceeded")


def test_export_feedback_writes_corpus_lines(api: str, env: dict[str, str], owner: tuple[str, dict[str, str]],
                                             reviewer: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    tenant, headers = owner
    sql(env["DATABASE_URL"], "DELETE FROM content")
    start = datetime.now(UTC) - timedelta(seconds=1)
    [reviewed] = decided(env, tenant, "reviewed: a human's labels win", {"hate": 0.9})
    [missed] = decided(env, tenant, "missed an illicit tip", {})
    [threat] = decided(env, tenant, "a threat that is not one", {"hate/threatening": 0.9, "hate": 0.9,
                                                                 "violence": 0.9})
    [all_wrong] = decided(env, tenant, "flagged for nothing 👍", {"harassment": 0.8})
    [right] = decided(env, tenant, "rightly flagged", {"sexual": 0.9})
    [changed] = decided(env, tenant, "the owner changed their mind", {})
    [old] = decided(env, tenant, "reported long ago", {"violence": 0.9})
    decided(env, tenant, "never judged", {"hate": 0.9})
    assert review(api, reviewer[1], reviewed.id, flagged=True, categories=["harassment"]).status_code == 200
    for content_id, verdict, categories in ((reviewed.id, "false_positive", []),
                                            (missed.id, "false_negative", ["illicit"]),
                                            (threat.id, "false_positive", ["violence"]),
                                            (all_wrong.id, "false_positive", []),
                                            (right.id, "correct", ["sexual"]),
                                            (changed.id, "false_negative", ["hate"]),
                                            (changed.id, "correct", []),
                                            (old.id, "false_positive", [])):
        assert feedback(api, headers, content_id, verdict=verdict, categories=categories).status_code == 201
    sql(env["DATABASE_URL"], "UPDATE feedback SET created_at = now() - interval '30 days' WHERE content_id = :id",
        id=str(old.id))

    out = tmp_path / "train" / "export.jsonl"
    out.parent.mkdir()
    exported = run_cli("export-feedback", "--since", start.isoformat(), "--output", str(out), env=env)
    assert "exported 6 examples" in exported.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(list(line) in (["text", "labels", "register", "source"], ["text", "labels", "register", "tags",
                                                                          "source"]) for line in lines)
    assert {line["source"]: (line["labels"], line.get("tags")) for line in lines} == {
        f"review:{reviewed.id}": (["harassment"], None),
        f"feedback:false_negative:{missed.id}": (["illicit"], None),
        f"feedback:false_positive:{threat.id}": (["hate"], None),
        f"feedback:false_positive:{all_wrong.id}": ([], ["hard-negative"]),
        f"feedback:correct:{right.id}": (["sexual"], None),
        f"feedback:correct:{changed.id}": ([], None)}
    assert lines[0]["text"] == "reviewed: a human's labels win" and "flagged for nothing 👍" in out.read_text()
    # The corpus's own loader (what `ai-moderator train` reads) accepts the file.
    examples = corpus.load("train", tmp_path).examples
    assert [e.source for e in examples] == [line["source"] for line in lines]
    assert all(e.style == "other" for e in examples)

    # Standard output, and a window that holds nothing.
    assert run_cli("export-feedback", "--since", start.date().isoformat(), env=env).stdout == out.read_text()
    until = run_cli("export-feedback", "--since", "2020-01-01", "--until", start.isoformat(), env=env)
    assert [json.loads(line)["source"] for line in until.stdout.splitlines()] == [
        f"feedback:false_positive:{old.id}"]
    bad = run_cli("export-feedback", "--since", "last week", env=env, check=False)
    assert bad.returncode == 2 and "not a date or time" in bad.stderr


def test_the_migration_keeps_existing_rows_and_reverts() -> None:
    content_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    with database_at("0004") as (url, engine):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO content (id, tenant, text, status, attempts, created_at) VALUES "
                              "(:id, 't', 'kept', 'done', 0, now())"), {"id": content_id})
            conn.execute(text("INSERT INTO moderation_result (content_id, flagged, categories, scores, spans, "
                              "engine_version, policy_version, created_at, shadow) VALUES "
                              "(:id, true, '[\"hate\"]', '{\"hate\": 0.9}', '[]', 'e', 'old@1', now(), NULL)"),
                         {"id": content_id})
            conn.execute(text("INSERT INTO audit_event (created_at, actor, action, target, details) VALUES "
                              "(now(), 'cli', 'apikey.create', 'k', '{\"name\": \"old\"}')"))
        assert migrate_module.migrate(Settings(database_url=url)) == migrate_module.head_revision()
        # Read as the API reads it: decided by the model, no review.
        record = store.get(Runtime(Settings(database_url=url)).sessions, content_id, "t")
        assert record is not None and record.result is not None and record.review is None
        assert (record.result.categories, record.result.policy_version) == (["hate"], "old@1")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT actor FROM audit_event")).scalar_one() == "cli"
            assert {"feedback", "review"} <= set(inspect(conn).get_table_names())
            assert {i["name"] for i in inspect(conn).get_indexes("feedback")} == {
                "idx_feedback_content_id", "idx_feedback_created_at"}
            alembic_to(conn, "downgrade", "0004")
            assert not {"feedback", "review"} & set(inspect(conn).get_table_names())
            assert conn.execute(text("SELECT policy_version FROM moderation_result")).scalar_one() == "old@1"


def test_the_routes_are_documented_with_the_error_shape(api: str) -> None:
    spec = httpx.get(f"{api}/openapi.json").json()
    routes = {("post", "/api/v1/content/{content_id}/feedback"): {"201", "400", "401", "404", "422", "429"},
              ("get", "/api/v1/review"): {"200", "401", "403", "422", "429"},
              ("post", "/api/v1/review/{content_id}"): {"200", "400", "401", "403", "404", "422", "429"},
              ("get", "/api/v1/audit"): {"200", "401", "403", "422", "429"}}
    for (method, path), statuses in routes.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses, path
        for status in statuses - {"200", "201"}:
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}, (path, status)
    content = spec["components"]["schemas"]["ContentView"]["properties"]
    assert {"decided_by", "review", "result"} <= set(content)
