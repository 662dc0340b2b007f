"""Engine throughput per profile, texts/s on one core: each measurement runs
in its own process pinned to one CPU with every math library limited to one
thread, so the number is per core, whatever the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

PROFILES = ("fast", "cascade", "accurate")
KINDS = ("short", "long")
BATCH = 64

_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def measure(profile: str, kind: str, seconds: float) -> dict[str, Any]:
    """Runs inside the pinned child process."""
    from ai_moderator_workload.engine.pipeline import Engine
    from ai_moderator_workload.engine.policy import Policy

    from .texts import pool

    engine = Engine(Policy(engine=profile))
    engine.warm_up()
    texts = list(pool(kind))
    engine.moderate(texts[:BATCH])
    done = accurate = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or done < len(texts):
        start = done % len(texts)
        batch = (texts + texts)[start:start + BATCH]
        accurate += sum(int(d.signals["accurate_stage"]) for d in engine.moderate(batch))
        done += len(batch)
    elapsed = time.perf_counter() - started
    return {"profile": profile, "texts": kind, "texts_per_s_per_core": round(done / elapsed, 1),
            "accurate_stage_share": round(accurate / done, 3), "pool": len(texts)}


def run(seconds: float = 8.0) -> list[dict[str, Any]]:
    rows = []
    for profile in PROFILES:
        for kind in KINDS:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.engine", profile, kind, str(seconds)],
                env={**os.environ, **_ONE_THREAD}, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| profile | texts | texts/s per core | through the accurate stage |", "|---|---|---|---|"]
    lines += [f"| {r['profile']} | {r['texts']} ({r['pool']} dev texts) | {r['texts_per_s_per_core']:,} | "
              f"{r['accurate_stage_share']:.0%} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    print(json.dumps(measure(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
