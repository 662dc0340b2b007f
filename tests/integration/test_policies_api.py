"""Tenant policies and blocklists managed by the API, on real PostgreSQL and
Redis, with two API processes and a worker: admins create lists and
policies, bind keys to policies, and every process decides with a change
within 5 s; a request may name extra blocklists; each decision records the
fingerprint of the exact policy it used; every change is audited; and
migration 0007 keeps existing keys and content."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from test_api_postgres import admin, wait_done
from test_quota_api import new_key

from servers import Process, alembic_to, api_server, database_at, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BENIGN = "The recipe needs two cups of flour."


@pytest.fixture(scope="module")
def apis(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two API processes on one database: a change made through one must reach the other."""
    with api_server(pg_env, tmp_path_factory.mktemp("a")) as a, api_server(pg_env, tmp_path_factory.mktemp("b")) as b:
        yield a, b


@pytest.fixture(scope="module")
def worker(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with worker_process(pg_env, tmp_path_factory.mktemp("worker")) as proc:
        yield proc


def call(method: str, url: str, headers: dict[str, str], body: Any = None, expect: int = 200) -> Any:
    response = httpx.request(method, url, headers=headers, json=body, timeout=30)
    assert response.status_code == expect, response.text
    return response.json() if response.content else None


def moderate(base: str, headers: dict[str, str], text_: str, **extra: Any) -> dict[str, Any]:
    return call("POST", f"{base}/api/v1/moderate", headers, {"text": text_, **extra})["result"]


def until(check: Any, timeout: float = 5.0) -> float:
    """Seconds until `check()` is true; fails the test after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_an_item_queued_with_a_blocklist_deleted_before_it_is_decided_is_still_decided(
        apis: tuple[str, str], pg_env: dict[str, str], tmp_path: Path) -> None:
    """No worker runs yet (this test comes before those that start the
    module's worker): the item waits while its list is deleted, then is
    decided without the list rather than failing."""
    a, _ = apis
    head = admin(pg_env)
    call("PUT", f"{a}/api/v1/blocklists/short-lived", head, {}, expect=201)
    call("POST", f"{a}/api/v1/blocklists/short-lived/items", head, {"items": [{"term": "flour", "category": "hate"}]})
    submitted = call("POST", f"{a}/api/v1/content", head, {"text": BENIGN, "blocklists": ["short-lived"]},
                     expect=202)
    call("DELETE", f"{a}/api/v1/blocklists/short-lived", head, expect=204)
    with worker_process(pg_env, tmp_path):
        [done] = wait_done(a, head, [submitted["id"]])
    assert done["status"] == "done" and not done["result"]["flagged"]


def test_blocklists_are_managed_by_admins_and_terms_are_one_per_spelling(
        apis: tuple[str, str], pg_env: dict[str, str]) -> None:
    a, _ = apis
    head = admin(pg_env)
    created = call("PUT", f"{a}/api/v1/blocklists/brands", head, {"description": "competitors"}, expect=201)
    assert (created["name"], created["items"]) == ("brands", 0)
    assert call("PUT", f"{a}/api/v1/blocklists/brands", head, {"description": "rival brands"})["description"] == \
        "rival brands"
    added = call("POST", f"{a}/api/v1/blocklists/brands/items", head,
                 {"items": [{"term": "AcmeCorp", "category": "harassment"},
                            {"term": "globex widgets", "category": "illicit"}]})["items"]
    assert [t["term"] for t in added] == ["AcmeCorp", "globex widgets"]
    # The same term in another case is the same item, with the new spelling and category.
    again = call("POST", f"{a}/api/v1/blocklists/brands/items", head,
                 {"items": [{"term": "ACMECORP", "category": "hate"}]})["items"]
    assert again[0]["id"] == added[0]["id"] and again[0]["category"] == "hate"
    assert call("GET", f"{a}/api/v1/blocklists/brands", head)["items"] == 2
    first = call("GET", f"{a}/api/v1/blocklists/brands/items?limit=1", head)
    second = call("GET", f"{a}/api/v1/blocklists/brands/items?limit=1&cursor={first['next_cursor']}", head)
    assert [t["id"] for t in first["items"] + second["items"]] == [t["id"] for t in added]
    assert second["next_cursor"] is None
    call("DELETE", f"{a}/api/v1/blocklists/brands/items/{added[1]['id']}", head, expect=204)
    call("DELETE", f"{a}/api/v1/blocklists/brands/items/{added[1]['id']}", head, expect=404)
    assert [b["name"] for b in call("GET", f"{a}/api/v1/blocklists", head)["items"]] == ["brands"]

    error = call("PUT", f"{a}/api/v1/blocklists/Not%20A%20Name", head, {}, expect=422)["error"]
    assert error["param"] == "path.name"
    assert call("POST", f"{a}/api/v1/blocklists/missing/items", head,
                {"items": [{"term": "x", "category": "hate"}]}, expect=404)["error"]["code"] == "not_found"
    _, tenant = new_key(pg_env, "not-an-admin")
    assert call("GET", f"{a}/api/v1/blocklists", tenant, expect=403)["error"]["code"] == "admin_key_required"


def test_a_blocklist_holds_ten_thousand_terms_and_refuses_more(apis: tuple[str, str], pg_env: dict[str, str]) -> None:
    a, _ = apis
    head = admin(pg_env)
    call("PUT", f"{a}/api/v1/blocklists/big", head, {}, expect=201)
    for batch in range(10):
        call("POST", f"{a}/api/v1/blocklists/big/items", head,
             {"items": [{"term": f"zqx{batch}n{i}", "category": "hate"} for i in range(1000)]})
    too_many = call("POST", f"{a}/api/v1/blocklists/big/items", head,
                    {"items": [{"term": "onemore", "category": "hate"}]}, expect=400)["error"]
    assert too_many["code"] == "blocklist_full" and "10000" in too_many["message"]
    # Terms already on the list can still be changed.
    call("POST", f"{a}/api/v1/blocklists/big/items", head, {"items": [{"term": "zqx0n0", "category": "violence"}]})
    assert call("POST", f"{a}/api/v1/blocklists/big/items", head,
                {"items": [{"term": f"t{i}", "category": "hate"} for i in range(1001)]},
                expect=422)["error"]["param"] == "items"
    flagged = moderate(a, head, "a zqx9n999 appears", blocklists=["big"])
    assert flagged["categories"] == ["hate"]
    assert flagged["spans"][0]["blocklist"] == "big"


def test_a_request_names_extra_blocklists_on_every_route(apis: tuple[str, str], pg_env: dict[str, str],
                                                         worker: Process) -> None:
    a, _ = apis
    head = admin(pg_env)
    call("PUT", f"{a}/api/v1/blocklists/flour", head, {}, expect=201)
    call("POST", f"{a}/api/v1/blocklists/flour/items", head, {"items": [{"term": "cups of flour",
                                                                          "category": "illicit"}]})
    plain = moderate(a, head, BENIGN)
    listed = moderate(a, head, BENIGN, blocklists=["flour"])
    assert not plain["flagged"] and listed["categories"] == ["illicit"]
    assert listed["spans"] == [{"category": "illicit", "start": 21, "end": 34, "text": "cups of flour",
                                "source": "blocklist", "blocklist": "flour"}]
    assert plain["policy_version"] != listed["policy_version"]

    openai = call("POST", f"{a}/v1/moderations", head, {"input": [BENIGN, "hello"], "blocklists": ["flour"]})
    assert [r["flagged"] for r in openai["results"]] == [True, False]

    submitted = call("POST", f"{a}/api/v1/content", head, {"text": BENIGN, "blocklists": ["flour"]}, expect=202)
    [done] = wait_done(a, head, [submitted["id"]])
    assert done["result"]["categories"] == ["illicit"]
    assert done["result"]["policy_version"] == listed["policy_version"]

    unknown = call("POST", f"{a}/api/v1/moderate", head, {"text": BENIGN, "blocklists": ["nope"]}, expect=422)
    assert unknown["error"]["code"] == "unknown_blocklist" and unknown["error"]["param"] == "blocklists"
    too_many = call("POST", f"{a}/v1/moderations", head, {"input": "x", "blocklists": [f"l{i}" for i in range(11)]},
                    expect=422)
    assert too_many["error"]["param"] == "blocklists"


def test_a_key_bound_to_a_policy_is_decided_by_it_on_every_pod_within_five_seconds(
        apis: tuple[str, str], pg_env: dict[str, str], worker: Process) -> None:
    a, b = apis
    head = admin(pg_env)
    tenant_key, tenant = new_key(pg_env, "kids-app")
    _, other = new_key(pg_env, "adults-app")
    strict = {"description": "strict", "thresholds": {"harassment": 0.000001}}
    policy = call("PUT", f"{a}/api/v1/policies/kids", head, strict, expect=201)
    assert policy["keys"] == [] and policy["fingerprint"].startswith("kids@")
    bound = call("PATCH", f"{a}/api/v1/keys/{tenant_key['id']}", head, {"policy": "kids"})
    assert bound["policy"] == "kids"

    # The other API process had not seen the policy nor the binding: it must within 5 s.
    took = until(lambda: moderate(b, tenant, BENIGN)["flagged"])
    assert took < 5
    decided = moderate(b, tenant, BENIGN)
    assert decided["categories"] == ["harassment"] and decided["policy_version"] == policy["fingerprint"]
    assert not moderate(b, other, BENIGN)["flagged"], "another tenant's key keeps the stack's policy"

    # The worker decides async items with the key's policy as well.
    submitted = call("POST", f"{b}/api/v1/content", tenant, {"text": BENIGN}, expect=202)
    [done] = wait_done(b, tenant, [submitted["id"]])
    assert done["result"]["policy_version"] == policy["fingerprint"]

    # A change to the policy: a new fingerprint everywhere, old decisions keep theirs.
    relaxed = call("PUT", f"{a}/api/v1/policies/kids", head, {"description": "relaxed"})
    assert relaxed["fingerprint"] != policy["fingerprint"] and relaxed["keys"] == [tenant_key["id"]]
    assert until(lambda: not moderate(b, tenant, BENIGN)["flagged"]) < 5
    assert moderate(b, tenant, BENIGN)["policy_version"] == relaxed["fingerprint"]
    assert call("GET", f"{b}/api/v1/content/{submitted['id']}", tenant)["result"]["policy_version"] == \
        policy["fingerprint"]

    # A blocklist added to the list the policy attaches reaches its keys within 5 s too.
    call("PUT", f"{a}/api/v1/blocklists/kids-words", head, {}, expect=201)
    call("PUT", f"{a}/api/v1/policies/kids", head, {"blocklists": ["kids-words"]})
    call("POST", f"{a}/api/v1/blocklists/kids-words/items", head, {"items": [{"term": "flour", "category": "illicit"}]})
    assert until(lambda: moderate(b, tenant, BENIGN)["categories"] == ["illicit"]) < 5
    assert not moderate(b, other, BENIGN)["flagged"]

    in_use = call("DELETE", f"{a}/api/v1/blocklists/kids-words", head, expect=400)["error"]
    assert in_use["code"] == "blocklist_in_use" and "kids" in in_use["message"]
    bound_error = call("DELETE", f"{a}/api/v1/policies/kids", head, expect=400)["error"]
    assert bound_error["code"] == "policy_in_use" and tenant_key["id"] in bound_error["message"]
    assert call("PATCH", f"{a}/api/v1/keys/{tenant_key['id']}", head, {"policy": "nope"},
                expect=422)["error"]["code"] == "unknown_policy"
    call("PATCH", f"{a}/api/v1/keys/{tenant_key['id']}", head, {"policy": None})
    call("DELETE", f"{a}/api/v1/policies/kids", head, expect=204)
    assert until(lambda: not moderate(b, tenant, BENIGN)["flagged"]) < 5


def test_every_change_is_audited_with_who_and_what(apis: tuple[str, str], pg_env: dict[str, str]) -> None:
    a, _ = apis
    head = admin(pg_env)
    key, _ = new_key(pg_env, "audited")
    call("PUT", f"{a}/api/v1/blocklists/audited", head, {"description": "one"}, expect=201)
    call("POST", f"{a}/api/v1/blocklists/audited/items", head, {"items": [{"term": "zork", "category": "hate"}]})
    call("PUT", f"{a}/api/v1/policies/audited", head, {"default_threshold": 0.3, "blocklists": ["audited"]},
         expect=201)
    call("PUT", f"{a}/api/v1/policies/audited", head, {"default_threshold": 0.4, "blocklists": ["audited"]})
    call("PATCH", f"{a}/api/v1/keys/{key['id']}", head, {"policy": "audited"})
    events = call("GET", f"{a}/api/v1/audit?limit=200", head)["items"]
    # apikey.create was the CLI's (actor "cli"); the rest went through the API with the bootstrap admin key.
    mine = {(e["action"], e["target"]): e for e in events
            if e["target"] in ("audited", key["id"]) and e["action"] != "apikey.create"}
    assert set(mine) == {("blocklist.create", "audited"), ("blocklist.items.add", "audited"),
                         ("policy.create", "audited"), ("policy.update", "audited"), ("apikey.update", key["id"])}
    assert {e["actor"] for e in mine.values()} == {"bootstrap-admin"}
    assert mine[("blocklist.items.add", "audited")]["details"]["added"] == [{"term": "zork", "category": "hate"}]
    update = mine[("policy.update", "audited")]["details"]
    assert (update["before"]["default_threshold"], update["after"]["default_threshold"]) == (0.3, 0.4)
    assert mine[("apikey.update", key["id"])]["details"]["after"] == {"policy": "audited"}
    assert pg_env["ADMIN_API_KEY"] not in str(events)


def test_migration_0007_keeps_keys_and_content_and_reverts() -> None:
    with database_at("0006") as (url, engine):
        key_id, content_id = uuid.uuid4(), uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_key (id, name, prefix, key_hash, is_admin, created_at) "
                              "VALUES (:id, 'old', 'abcdefabcdef', 'h', false, now())"), {"id": key_id})
            conn.execute(text("INSERT INTO content (id, tenant, text, status, attempts, created_at, delivery_attempts)"
                              " VALUES (:id, 't', 'kept', 'pending', 0, now(), 0)"), {"id": content_id})
            alembic_to(conn, "upgrade", "0007")
            assert conn.execute(text("SELECT policy FROM api_key WHERE id = :id"), {"id": key_id}).scalar() is None
            assert conn.execute(text("SELECT text, policy, blocklists FROM content")).one() == ("kept", None, None)
            assert conn.execute(text("SELECT revision FROM policy_revision")).scalar() == 0
            alembic_to(conn, "downgrade", "0006")
            tables = inspect(conn).get_table_names()
            assert "tenant_policy" not in tables and "blocklist" not in tables
            assert conn.execute(text("SELECT text FROM content")).scalar() == "kept"


def test_the_new_routes_are_documented_with_the_error_shape(apis: tuple[str, str]) -> None:
    spec = httpx.get(f"{apis[0]}/openapi.json").json()
    admin_errors = {"401", "403", "422", "429"}
    routes = {("get", "/api/v1/blocklists"): {"200"}, ("get", "/api/v1/blocklists/{name}"): {"200", "404"},
              ("put", "/api/v1/blocklists/{name}"): {"200", "201"},
              ("delete", "/api/v1/blocklists/{name}"): {"204", "400", "404"},
              ("post", "/api/v1/blocklists/{name}/items"): {"200", "400", "404"},
              ("get", "/api/v1/blocklists/{name}/items"): {"200", "404"},
              ("delete", "/api/v1/blocklists/{name}/items/{item_id}"): {"204", "404"},
              ("get", "/api/v1/policies"): {"200"}, ("get", "/api/v1/policies/{name}"): {"200", "404"},
              ("put", "/api/v1/policies/{name}"): {"200", "201"},
              ("delete", "/api/v1/policies/{name}"): {"204", "400", "404"},
              ("get", "/api/v1/keys"): {"200"}, ("patch", "/api/v1/keys/{key_id}"): {"200", "404"}}
    for (method, path), statuses in routes.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses | admin_errors, (method, path)
        for status in (statuses | admin_errors) - {"200", "201", "204"}:
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    schemas = spec["components"]["schemas"]
    for body in ("ModerateRequest", "ContentRequest", "OpenAIModerationRequest"):
        assert "blocklists" in schemas[body]["properties"], body


def test_the_admin_routes_are_rate_limited(apis: tuple[str, str], pg_env: dict[str, str]) -> None:
    _, limited = new_key(pg_env, "limited-admin", "--admin", "--rate-limit", "2")
    a, _ = apis
    call("GET", f"{a}/api/v1/policies", limited)
    call("PUT", f"{a}/api/v1/blocklists/limited", limited, {}, expect=201)
    refused = httpx.get(f"{a}/api/v1/keys", headers=limited)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
