"""Tenant policies and named blocklists at decision time (PolicyCatalog,
PolicyRules), against a SQLite database the admin functions write to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ai_moderator_workload import apikeys, policy_admin
from ai_moderator_workload.db.migrate import migrate
from ai_moderator_workload.db.models import BlocklistItem, TenantPolicy
from ai_moderator_workload.db.session import session_factory
from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Policy
from ai_moderator_workload.engine.policy_rules import PolicyRules
from ai_moderator_workload.policies import PolicyCatalog, UnknownName
from ai_moderator_workload.settings import Settings

T = TypeVar("T")

# The stack's policy (spec.policy): harassment at 0.9, the rest at 0.5, its
# own blocklist and allowlist.
STACK_SPEC: dict[str, Any] = {
    "version": "stack", "thresholds": {"harassment": 0.9}, "default_threshold": 0.5,
    "blocklist": [{"term": "frobnicate", "category": "violence"}], "allowlist": ["frobnicate the widget"]}
STACK = Policy.model_validate(STACK_SPEC)
HARASSING = "you are a worthless idiot and everyone hates you"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(STACK)


def database(path: Path) -> sessionmaker[Session]:
    settings = Settings(database_url=f"sqlite:///{path}")
    migrate(settings)
    return session_factory(settings)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return database(tmp_path / "policies.sqlite3")


def change(sessions: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    with sessions() as session, session.begin():
        return fn(session)


def put_list(sessions: sessionmaker[Session], name: str, terms: Sequence[tuple[str, str]] = ()) -> None:
    def run(session: Session) -> None:
        policy_admin.put_blocklist(session, name, None, "test")
        if terms:
            policy_admin.add_items(session, name, list(terms), "test")

    change(sessions, run)


def add_terms(sessions: sessionmaker[Session], name: str, terms: Sequence[tuple[str, str]]) -> None:
    change(sessions, lambda session: policy_admin.add_items(session, name, list(terms), "test"))


def put_policy(sessions: sessionmaker[Session], name: str, *, thresholds: dict[str, float] | None = None,
               default_threshold: float | None = None, allowlist: Sequence[str] = (),
               blocklists: Sequence[str] = ()) -> None:
    fields = policy_admin.PolicyFields(None, dict(thresholds or {}), default_threshold, list(allowlist),
                                       list(blocklists))
    change(sessions, lambda session: policy_admin.put_policy(session, name, fields, "test"))


def catalog(sessions: sessionmaker[Session], stack: Policy = STACK) -> PolicyCatalog:
    policies = PolicyCatalog(stack)
    assert policies.refresh(sessions)
    return policies


def rules_of(policies: PolicyCatalog, policy: str | None, extra: Sequence[str] = ()) -> PolicyRules:
    rules = policies.rules(policy, extra)
    assert rules is not None
    return rules


def flagged_at(rules: PolicyRules, score: float) -> set[str]:
    """The categories flagged when every category scores `score`."""
    return {c for c, flag in zip(CATEGORIES, rules.flags([score] * len(CATEGORIES)), strict=True) if flag}


def everything_but(*categories: str) -> set[str]:
    return set(CATEGORIES) - set(categories)


# Thresholds


def test_a_tenants_thresholds_replace_the_stacks_for_listed_categories_and_default_threshold_the_rest(
        sessions: sessionmaker[Session]) -> None:
    put_list(sessions, "empty")
    put_policy(sessions, "strict", thresholds={"violence": 0.2})
    put_policy(sessions, "lenient", thresholds={"violence": 0.2}, default_threshold=0.7)
    policies = catalog(sessions)
    stack, strict, lenient = rules_of(policies, None, ["empty"]), rules_of(policies, "strict"), \
        rules_of(policies, "lenient")

    # The stack's: harassment at 0.9, every other category at 0.5.
    assert flagged_at(stack, 0.3) == set()
    assert flagged_at(stack, 0.6) == everything_but("harassment")
    # Only violence listed, no default_threshold: the stack's thresholds for the rest.
    assert flagged_at(strict, 0.3) == {"violence"}
    assert flagged_at(strict, 0.6) == everything_but("harassment")
    assert flagged_at(strict, 0.95) == set(CATEGORIES)
    # default_threshold replaces the stack's for every category not listed, harassment's 0.9 included.
    assert flagged_at(lenient, 0.3) == {"violence"}
    assert flagged_at(lenient, 0.6) == {"violence"}
    assert flagged_at(lenient, 0.8) == set(CATEGORIES)


def test_a_tenants_threshold_changes_the_decision_on_a_real_text(engine: Engine,
                                                                 sessions: sessionmaker[Session]) -> None:
    stack = engine.moderate([HARASSING])[0]
    score = stack.scores["harassment"]
    assert "harassment" in stack.flagged_categories and score < 1.0
    put_policy(sessions, "forgiving", thresholds={"harassment": 1.0})
    rules = rules_of(catalog(sessions, engine.policy), "forgiving")
    tenant = engine.moderate([HARASSING], [rules])[0]
    assert tenant.scores["harassment"] == score  # the same model scores, another threshold
    assert "harassment" not in tenant.flagged_categories
    assert tenant.policy_version == rules.version != stack.policy_version


# Allowlists


def test_a_phrase_allowlisted_by_a_tenant_is_masked_only_for_that_tenant(engine: Engine,
                                                                         sessions: sessionmaker[Session]) -> None:
    put_policy(sessions, "games", allowlist=["Frobnicate"])
    put_policy(sessions, "other", thresholds={"violence": 0.5})
    policies = catalog(sessions, engine.policy)
    games, other = rules_of(policies, "games"), rules_of(policies, "other")
    text = "please frobnicate now"
    # One batch, one model call, three policies.
    decided = engine.moderate([text, text, text], [games, other, None])
    assert [d.flagged_categories for d in decided] == [[], ["violence"], ["violence"]]
    assert decided[0].spans == []
    assert games.mask(text) == "please            now"
    assert other.mask(text) == text


def test_a_tenants_allowlist_adds_to_the_stacks(engine: Engine, sessions: sessionmaker[Session]) -> None:
    put_policy(sessions, "games", allowlist=["frobnicate"])
    games = rules_of(catalog(sessions, engine.policy), "games")
    # The stack's longer phrase still wins where it matches.
    assert games.mask("Frobnicate the widget, frobnicate it") == " " * 21 + ",            it"
    assert games.allowlist == {"frobnicate", "frobnicate the widget"}
    assert not engine.moderate(["frobnicate the widget"], [games])[0].flagged


# Blocklists


def test_a_named_blocklist_flags_its_category_with_spans_naming_the_list(engine: Engine,
                                                                         sessions: sessionmaker[Session]) -> None:
    put_list(sessions, "brands", [("ACME corp", "hate"), ("globex", "illicit")])
    put_policy(sessions, "shop", blocklists=["brands"])
    policies = catalog(sessions, engine.policy)
    text = "I love acme CORP products, frobnicate"
    shop, stack = engine.moderate([text, text], [rules_of(policies, "shop"), None])
    assert "hate" in shop.flagged_categories and "violence" in shop.flagged_categories
    assert shop.scores["hate"] == 1.0
    assert {"category": "hate", "start": 7, "end": 16, "text": "acme CORP", "source": "blocklist",
            "blocklist": "brands"} in shop.spans
    # The stack's own blocklist: its spans name no list.
    assert {"category": "violence", "start": 27, "end": 37, "text": "frobnicate", "source": "blocklist"} in shop.spans
    assert "hate" not in stack.flagged_categories
    assert all("blocklist" not in s for s in stack.spans)
    # A request may name the list itself, without a tenant policy.
    named = engine.moderate([text], [rules_of(policies, None, ["brands"])])[0]
    assert "hate" in named.flagged_categories and named.policy_version != stack.policy_version


def test_a_new_empty_blocklist_can_be_named_at_once(sessions: sessionmaker[Session]) -> None:
    policies = catalog(sessions)
    put_list(sessions, "fresh")
    assert policies.refresh(sessions)  # creating a list is a change every process loads
    assert policies.unknown_blocklists(["fresh", "nope"]) == ["nope"]
    assert policies.rules(None, ["fresh"]) is not None


def test_a_list_holds_at_most_its_limit_of_distinct_terms(sessions: sessionmaker[Session],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_admin, "MAX_BLOCKLIST_TERMS", 3)
    put_list(sessions, "small", [("one", "hate"), ("two", "hate")])
    with pytest.raises(policy_admin.TooManyTerms, match="holds 2 terms; adding 2 new ones"):
        add_terms(sessions, "small", [("three", "hate"), ("four", "hate")])
    # A term already on the list, in another case, is not a new one: it takes the new spelling and category.
    add_terms(sessions, "small", [("TWO", "violence"), ("three", "hate")])
    with sessions() as session:
        stored = {i.term: i.category for i in session.scalars(select(BlocklistItem))}
    assert stored == {"one": "hate", "TWO": "violence", "three": "hate"}


def test_attached_lists_must_exist_and_cannot_be_deleted(sessions: sessionmaker[Session]) -> None:
    put_list(sessions, "brands")
    with pytest.raises(UnknownName, match="no blocklist named 'ghost'"):
        put_policy(sessions, "shop", blocklists=["brands", "ghost"])
    put_policy(sessions, "shop", blocklists=["brands"])
    with pytest.raises(policy_admin.InUse, match="attached to the policies \\['shop'\\]"):
        change(sessions, lambda session: policy_admin.delete_blocklist(session, "brands", "test"))


# Fingerprints


def shop_database(path: Path, *, reverse: bool = False) -> sessionmaker[Session]:
    """One tenant policy with two lists; `reverse` builds the same content in another order (and case)."""
    sessions = database(path)
    lists = [("brands", [("ACME corp", "hate"), ("globex", "illicit")]), ("words", [("zork", "violence")])]
    for name, terms in (lists[::-1] if reverse else lists):
        put_list(sessions, name, terms[::-1] if reverse else terms)
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.4}, default_threshold=0.6,
               allowlist=["A Side", "b side", "a side"] if reverse else ["b side", "a side"],
               blocklists=["brands", "words"])
    return sessions


FINGERPRINTS = """
import json, sys
from ai_moderator_workload.db.session import session_factory
from ai_moderator_workload.engine.policy import Policy
from ai_moderator_workload.policies import PolicyCatalog
from ai_moderator_workload.settings import Settings

policies = PolicyCatalog(Policy.model_validate(json.loads(sys.argv[2])))
policies.refresh(session_factory(Settings(database_url=sys.argv[1])))
print(json.dumps([policies.rules("shop").version, policies.rules(None, ["words", "brands"]).version]))
"""


def test_fingerprints_are_equal_for_equal_content_in_any_process_and_order(tmp_path: Path) -> None:
    first = catalog(shop_database(tmp_path / "first.sqlite3"))
    second = catalog(shop_database(tmp_path / "second.sqlite3", reverse=True))
    version = rules_of(first, "shop").version
    assert version.startswith("shop@") and len(version) == len("shop@") + 12
    assert rules_of(second, "shop").version == version
    # The order a request names its lists in changes nothing.
    named = rules_of(first, None, ["brands", "words"]).version
    assert rules_of(first, None, ["words", "brands"]).version == named == \
        rules_of(second, None, ["words", "brands", "words"]).version
    # Another process, with another hash seed: the same fingerprints.
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", FINGERPRINTS, f"sqlite:///{tmp_path / 'first.sqlite3'}",
                              json.dumps(STACK_SPEC)], env={**os.environ, "PYTHONHASHSEED": seed},
                             capture_output=True, text=True, check=True).stdout
        assert json.loads(out.splitlines()[-1]) == [version, named]


def test_a_fingerprint_changes_with_anything_that_decides(tmp_path: Path) -> None:
    sessions = shop_database(tmp_path / "shop.sqlite3")
    policies = catalog(sessions)
    seen: dict[str, str] = {}

    def fingerprint(after: str) -> str:
        policies.refresh(sessions)
        version = rules_of(policies, "shop").version
        assert version not in seen, f"{after} left the fingerprint of {seen.get(version)}"
        seen[version] = after
        return version

    original = fingerprint("the start")
    add_terms(sessions, "words", [("gnusto", "violence")])
    fingerprint("a term added")
    add_terms(sessions, "words", [("gnusto", "hate")])
    fingerprint("a term's category changed")
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.45}, default_threshold=0.6,
               allowlist=["a side", "b side"], blocklists=["brands", "words"])
    fingerprint("a threshold changed")
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.45}, default_threshold=0.65,
               allowlist=["a side", "b side"], blocklists=["brands", "words"])
    fingerprint("default_threshold changed")
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.45}, default_threshold=0.65,
               allowlist=["a side", "c side"], blocklists=["brands", "words"])
    fingerprint("the allowlist changed")
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.45}, default_threshold=0.65,
               allowlist=["a side", "c side"], blocklists=["brands"])
    last = fingerprint("a list detached")
    # The stack's policy is part of every fingerprint.
    changes: list[dict[str, Any]] = [{"thresholds": {"harassment": 0.8}}, {"blocklist": []}, {"allowlist": []}]
    for changed in changes:
        other = catalog(sessions, Policy.model_validate({**STACK_SPEC, **changed}))
        assert rules_of(other, "shop").version not in seen, changed
    # Equal content, equal fingerprint: undoing the changes gives the first one back.
    with sessions() as session:
        gnusto = session.scalar(select(BlocklistItem.id).where(BlocklistItem.term == "gnusto"))
    assert gnusto is not None
    change(sessions, lambda session: policy_admin.delete_item(session, "words", gnusto, "test"))
    put_policy(sessions, "shop", thresholds={"violence": 0.3, "hate": 0.4}, default_threshold=0.6,
               allowlist=["a side", "b side"], blocklists=["brands", "words"])
    policies.refresh(sessions)
    assert rules_of(policies, "shop").version == original != last


# Unknown names


def test_unknown_names_raise_in_strict_mode_and_are_left_out_otherwise(sessions: sessionmaker[Session]) -> None:
    put_list(sessions, "brands", [("acme", "hate")])
    put_policy(sessions, "shop", blocklists=["brands"])
    policies = catalog(sessions)
    with pytest.raises(UnknownName) as raised:
        policies.rules("nope")
    assert (raised.value.kind, raised.value.name) == ("tenant policy", "nope")
    with pytest.raises(UnknownName) as raised:
        policies.rules("shop", ["ghost"])
    assert (raised.value.kind, raised.value.name) == ("blocklist", "ghost")

    lenient = policies.rules("shop", ["ghost"], strict=False)
    assert lenient is not None and lenient.version == rules_of(policies, "shop").version
    assert lenient.scores(np.zeros((1, len(CATEGORIES))), ["acme"])[0, CATEGORIES.index("hate")] == 1
    # Deciding without the missing list once does not make it known.
    with pytest.raises(UnknownName):
        policies.rules("shop", ["ghost"])
    stackish = policies.rules("nope", strict=False)
    assert stackish is not None and flagged_at(stackish, 0.6) == everything_but("harassment")
    with pytest.raises(UnknownName):
        policies.rules("nope")


def test_a_policy_naming_a_missing_blocklist_does_not_stop_the_catalog_loading(
        sessions: sessionmaker[Session]) -> None:
    put_policy(sessions, "shop")
    policies = catalog(sessions)

    def legacy(session: Session) -> None:
        # As a delete of the list racing a PUT of the policy could leave it.
        session.add(TenantPolicy(name="legacy", thresholds={}, allowlist=[], blocklists=["ghost"]))
        policy_admin.bump_revision(session)

    change(sessions, legacy)
    assert policies.refresh(sessions)
    assert policies.rules("legacy", strict=False) is not None
    with pytest.raises(UnknownName, match="ghost"):
        policies.rules("legacy")


def test_the_stacks_policy_as_it_stands_has_no_rules_of_its_own(sessions: sessionmaker[Session]) -> None:
    put_list(sessions, "brands")
    policies = catalog(sessions)
    assert policies.rules(None, ()) is None
    assert policies.rules(None) is None
    assert policies.rules(None, []) is None
    assert policies.rules(None, ["brands"]) is not None


# Keys


def test_a_key_is_decided_with_the_policy_it_is_bound_to(sessions: sessionmaker[Session]) -> None:
    put_policy(sessions, "shop")
    bound, _ = change(sessions, lambda session: apikeys.create_key(session, "bound", policy="shop"))
    free, _ = change(sessions, lambda session: apikeys.create_key(session, "free"))
    with pytest.raises(UnknownName, match="no tenant policy named 'nope'"):
        change(sessions, lambda session: apikeys.create_key(session, "lost", policy="nope"))
    policies = catalog(sessions)
    assert policies.policy_of(str(bound.id)) == "shop"
    assert policies.policy_of(str(free.id)) is None

    change(sessions, lambda session: apikeys.update_key(session, str(free.id), {"policy": "shop"}))
    assert policies.refresh(sessions)
    assert policies.policy_of(str(free.id)) == "shop"
    change(sessions, lambda session: apikeys.update_key(session, bound.prefix, {"policy": None}))
    assert policies.refresh(sessions)
    assert policies.policy_of(str(bound.id)) is None
    assert not policies.refresh(sessions)  # nothing changed since
