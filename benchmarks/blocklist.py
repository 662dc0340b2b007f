"""What a 10,000-term blocklist adds to one moderation: single-text calls of
the engine with the stack's policy alone (the baseline) and with a tenant's
10,000-term blocklist, on one pinned core, in the same process and run.

The terms are built to be hard on the matcher: words of the texts themselves
with suffixes, and phrases starting with them, so every common two-letter
start has many candidate lengths. For scale, the same terms as one regular
expression alternation (how policy-file blocklists were matched before the
indexed matcher) are timed on the same texts."""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

TERMS = 10_000
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def terms(texts: Sequence[str], n: int = TERMS, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = sorted({w.lower() for t in texts for w in re.findall(r"[A-Za-z]{3,}", t)})
    out: set[str] = set()
    while len(out) < n:
        word = rng.choice(words) + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
        out.add(word if rng.random() < 0.8 else f"{rng.choice(words)} {word}")
    return sorted(out)


def _per_call(fns: Sequence[Callable[[str], Any]], texts: Sequence[str], rounds: int) -> list[list[float]]:
    """Seconds per call of each function on each text: the fastest of
    `rounds` (noise only adds). The functions take turns on each text, so a
    slower stretch of the machine hits them alike."""
    best = [[float("inf")] * len(texts) for _ in fns]
    for _ in range(rounds):
        for i, text in enumerate(texts):
            for times, fn in zip(best, fns, strict=True):
                started = time.perf_counter()
                fn(text)
                times[i] = min(times[i], time.perf_counter() - started)
    return best


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"mean_ms": round(statistics.fmean(ms), 4), "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 4)}


def measure(kind: str, rounds: int) -> dict[str, Any]:
    """Runs inside the pinned child process."""
    from ai_moderator_workload.engine.pipeline import Engine
    from ai_moderator_workload.engine.policy import Policy
    from ai_moderator_workload.engine.policy_rules import Blocklist, PolicyRules
    from ai_moderator_workload.engine.terms import TermMatcher

    from .texts import pool

    texts = list(pool(kind))[:200]
    listed = terms(texts)
    engine = Engine(Policy())
    engine.warm_up()
    blocklist = Blocklist.compile("bench", ((t, "harassment") for t in listed))
    blocked = PolicyRules("bench@0", [0.5] * 13, TermMatcher([]), [blocklist])
    baseline, with_list, matching = _per_call(
        [lambda t: engine.moderate([t]), lambda t: engine.moderate([t], [blocked]),
         lambda t: list(blocklist.matcher.finditer(t))], texts, rounds)
    alternation = re.compile(rf"(?<!\w)(?:{'|'.join(re.escape(p) for p in sorted(listed, key=len, reverse=True))})"
                             r"(?!\w)", re.IGNORECASE)
    [regex] = _per_call([lambda t: list(alternation.finditer(t))], texts, 1)
    base, added = _summary(baseline), _summary(with_list)
    return {"texts": kind, "pool": len(texts), "chars_mean": round(statistics.fmean(len(t) for t in texts)),
            "terms": len(listed), "baseline": base, "with_blocklist": added,
            "added_mean_ms": round(added["mean_ms"] - base["mean_ms"], 4),
            "ratio": round(added["mean_ms"] / base["mean_ms"], 3),
            "matcher": _summary(matching), "regex_alternation": _summary(regex)}


def run(rounds: int = 5) -> list[dict[str, Any]]:
    rows = []
    for kind in ("short", "long"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.blocklist", kind, str(rounds)],
                             env={**os.environ, **_ONE_THREAD}, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| texts | stack policy (ms per text) | + 10,000-term blocklist | added | ratio | matcher alone, p99 | "
             "as one regex, p99 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['texts']} ({r['pool']} dev texts, {r['chars_mean']} chars) | {r['baseline']['mean_ms']:.3f} | "
              f"{r['with_blocklist']['mean_ms']:.3f} | {r['added_mean_ms']:+.3f} ms | {r['ratio']:.3f} | "
              f"{r['matcher']['p99_ms']:.3f} ms | {r['regex_alternation']['p99_ms']:.3f} ms |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
