"""The per-process objects built from settings: database sessions and the
moderation engine. Built once and shared by the API, the worker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from .db.session import get_engine, session_factory
from .engine.pipeline import Engine
from .engine.policy import Policy, load_policy
from .policies import PolicyCatalog
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.settings)

    @cached_property
    def engine(self) -> Engine:
        engine = Engine(load_policy(self.settings.policy_file), shadow=_shadow_policy(self.settings.shadow_policy_file))
        engine.warm_up()
        return engine

    @cached_property
    def policies(self) -> PolicyCatalog:
        return PolicyCatalog(self.engine.policy, self.settings.policy_refresh_seconds)

    def pool_used(self) -> float:
        return float(get_engine(self.settings).pool.checkedout())  # type: ignore[attr-defined]

    def pool_size(self) -> float:
        pool = get_engine(self.settings).pool
        return float(pool.size() + getattr(pool, "_max_overflow", 0))  # type: ignore[attr-defined]


def _shadow_policy(path: Path | None) -> Policy | None:
    if path is None:
        return None
    if not path.is_file():
        # Named here: a bare FileNotFoundError would not say which setting points at it.
        raise FileNotFoundError(f"SHADOW_POLICY_FILE={path} does not exist: unset it to run without a shadow "
                                "policy, or mount the stack's policy ConfigMap with its shadow.yaml key")
    return load_policy(path)
