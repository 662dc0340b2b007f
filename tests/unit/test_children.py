"""The index that decides which stacks a changed user Secret wakes."""

from __future__ import annotations

from ai_moderator_operator.children import ChildCache


def test_secret_references_follow_the_latest_spec_of_each_stack() -> None:
    cache = ChildCache()
    cache.set_references("shop", "a", {"db-url", "backup-s3"})
    cache.set_references("shop", "b", {"db-url"})
    cache.set_references("other", "a", {"db-url"})
    assert cache.referencing("shop", "db-url") == {"a", "b"}
    assert cache.referencing("shop", "backup-s3") == {"a"}
    cache.set_references("shop", "a", {"db-url"})  # stack a no longer uses S3
    assert cache.referencing("shop", "backup-s3") == set()
    cache.set_references("shop", "b", set())  # stack b deleted
    assert cache.referencing("shop", "db-url") == {"a"}
    assert cache.referencing("other", "db-url") == {"a"}
    assert cache.referencing("shop", "unrelated") == set()
