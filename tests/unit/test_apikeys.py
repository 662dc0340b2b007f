"""API keys: what an unauthenticated flood can cost."""

from __future__ import annotations

from typing import Any

from ai_moderator_workload.apikeys import KeyVerifier, new_token, parse_prefix


class NoDatabase:
    """A session that fails the test if anything queries it."""

    def scalar(self, *_: Any) -> None:
        raise AssertionError("the database was queried")


class EmptyDatabase:
    queries = 0

    def scalar(self, *_: Any) -> None:
        self.queries += 1


def test_keys_of_the_wrong_shape_never_reach_the_database() -> None:
    verifier = KeyVerifier(admin_key=None)
    token, prefix = new_token()
    assert parse_prefix(token) == prefix
    for bad in ["", "hello", "amk_", "amk_zzzzzzzzzzzz_" + "a" * 43, "amk_0123456789ab_short",
                "amk_0123456789ab_" + "a" * 44, "xyz_0123456789ab_" + "a" * 43, token + " ", "a" * 100_000]:
        assert verifier.cached(bad) == (True, None), bad
        assert verifier.load(NoDatabase(), bad) is None  # type: ignore[arg-type]


def test_the_key_cache_is_bounded_under_a_flood_of_made_up_keys() -> None:
    verifier = KeyVerifier(admin_key=None, ttl=60, max_entries=100)
    db = EmptyDatabase()
    for _ in range(1_000):
        token, _prefix = new_token()
        assert verifier.cached(token) == (False, None)
        assert verifier.load(db, token) is None  # type: ignore[arg-type]
    assert len(verifier) == 100 and db.queries == 1_000
    # A miss is remembered: the same made-up key again costs no query.
    assert verifier.cached(token) == (True, None)
