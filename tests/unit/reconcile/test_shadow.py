"""The shadow policy in status (asked of the API at most every few minutes)
and its promotion to the live policy, once per promote-shadow request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_moderator_operator.api import ShadowStatus
from ai_moderator_operator.naming import PROMOTE_SHADOW_ANNOTATION
from ai_moderator_operator.reconcile.shadow import promote_shadow, shadow_status
from test_reconciler import STACK_KEY, add_stack, one_pass, settle
from world import NS, World, context

SHADOW = {"version": "next", "thresholds": {"sexual": 0.3}, "blocklist": [{"term": "spamword"}]}
SUMMARY = {"seconds": 3600, "decisions": 200, "liveFlagged": 20, "shadowFlagged": 30, "agreement": 0.95,
           "shadowPolicy": "next@abc"}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def test_the_summary_of_the_last_hour_is_asked_of_the_api_at_most_every_five_minutes(world: World) -> None:
    ctx = context(shadowPolicy=SHADOW)
    world.kube.services[(NS, "shop-api", "/shadow/summary")] = SUMMARY
    status = await shadow_status(world.kube, ctx, None, NOW)
    assert (status.liveFlagRate, status.shadowFlagRate, status.agreement, status.decisions) == (0.1, 0.15, 0.95, 200)
    world.kube.services[(NS, "shop-api", "/shadow/summary")] = {**SUMMARY, "decisions": 400}
    assert await shadow_status(world.kube, ctx, status, NOW + timedelta(minutes=4)) == status, "not asked again yet"
    later = await shadow_status(world.kube, ctx, status, NOW + timedelta(minutes=6))
    assert later.decisions == 400 and later.liveFlagRate == 0.05


async def test_an_api_that_does_not_answer_is_said_in_status(world: World) -> None:
    status = await shadow_status(world.kube, context(shadowPolicy=SHADOW), None, NOW)
    assert status.decisions is None and "no endpoints available" in status.message
    assert await shadow_status(world.kube, context(), status, NOW) is None, "no shadow policy, no block"


async def test_promotion_makes_the_shadow_live_once_per_request(world: World) -> None:
    add_stack(world, shadowPolicy=SHADOW)
    status, _ = await one_pass(world)
    world.finish_job(status["migration"]["job"], ok=True)
    await one_pass(world)
    settle(world)
    await one_pass(world)
    before = world.kube.objects[STACK_KEY]["spec"]["policy"]
    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {PROMOTE_SHADOW_ANNOTATION: "t1"}
    status, _ = await one_pass(world)
    spec = world.kube.objects[STACK_KEY]["spec"]
    assert "shadowPolicy" not in spec
    assert spec["policy"] == {"version": "next", "thresholds": {"sexual": 0.3}, "blocklist": [{"term": "spamword"}],
                              "allowlist": before["allowlist"]}, "the live allowlist kept, old thresholds gone"
    assert status["shadow"]["promoted"] == "t1"
    patches = [w for w in world.kube.writes if w == ("patch", "ModerationStack", "shop")]
    status, _ = await one_pass(world)
    assert status["shadow"] == {"promoted": "t1"}, "the request is remembered, the summary gone with the shadow"
    assert [w for w in world.kube.writes if w == ("patch", "ModerationStack", "shop")] == patches, "once per token"


async def test_a_promotion_without_a_shadow_policy_changes_nothing(world: World) -> None:
    body = {"metadata": {"name": "shop", "namespace": NS}, "spec": {"version": "1.0.0"}}
    status = await promote_shadow(world.kube, body, "t1", ShadowStatus())
    assert status.promoted == "t1" and world.kube.writes == []


async def test_until_there_are_numbers_the_api_is_asked_on_every_pass_without_rewriting_status(world: World) -> None:
    ctx = context(shadowPolicy=SHADOW)
    world.kube.services[(NS, "shop-api", "/shadow/summary")] = {**SUMMARY, "decisions": 0, "liveFlagged": 0,
                                                                 "shadowFlagged": 0, "agreement": None}
    empty = await shadow_status(world.kube, ctx, None, NOW)
    assert await shadow_status(world.kube, ctx, empty, NOW + timedelta(minutes=1)) is empty, "same numbers: no write"
    world.kube.services[(NS, "shop-api", "/shadow/summary")] = SUMMARY
    first = await shadow_status(world.kube, ctx, empty, NOW + timedelta(minutes=2))
    assert first.decisions == 200, "asked again within a minute, not after five"
