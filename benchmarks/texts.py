"""The texts the benchmarks send: the dev set's short (at most 20 words) and
long (200-400 words) texts. About half of them are harmful, far more than in
ordinary traffic, so the cascade's accurate stage works harder here than it
would in production."""

from __future__ import annotations

from functools import lru_cache

from ai_moderator_workload.engine import corpus


@lru_cache(maxsize=None)
def pool(kind: str) -> tuple[str, ...]:
    texts = [e.text for e in corpus.load("dev").examples]
    if kind == "short":
        return tuple(t for t in texts if len(t.split()) <= 20)
    if kind == "long":
        return tuple(t for t in texts if 200 <= len(t.split()) <= 400)
    raise ValueError(kind)
