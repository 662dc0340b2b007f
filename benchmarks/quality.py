"""The engine's quality on the dev set, per profile (the README's table)."""

from __future__ import annotations

from typing import Any

from ai_moderator_workload.engine.evaluation import PROFILES, evaluate, table


def run() -> dict[str, dict[str, Any]]:
    return {profile: evaluate(profile) for profile in PROFILES}


if __name__ == "__main__":
    print(table(run()))
