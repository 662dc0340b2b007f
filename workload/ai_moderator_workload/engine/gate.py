"""What a candidate policy (with this image's engine) does on a golden set,
beside the policy now serving: the numbers the operator's quality gate
compares with its tolerances before anything rolls out. The verdict is the
operator's; this only measures, so one measurement serves any tolerances."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import corpus as corpus_module
from .categories import CATEGORIES, Category
from .pipeline import Engine
from .policy import Policy

# The container's termination message holds at most 4096 bytes.
RESULT_LIMIT = 4096
BATCH = 128


class GoldenExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    expected: list[Category] = Field(default_factory=list, description="Categories a correct decision flags.")


class GoldenSetError(ValueError):
    pass


def load_golden(path: Path) -> list[GoldenExample]:
    """JSONL of {"text", "expected": [categories]}; a bad line is named."""
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            examples.append(GoldenExample.model_validate_json(line))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "line"
            raise GoldenSetError(f"{path}:{number}: {where}: {problem['msg']}") from None
    if not examples:
        raise GoldenSetError(f"{path} holds no examples")
    return examples


def dev_golden() -> list[GoldenExample]:
    """The image's own held-out dev set, used when the stack names no golden set."""
    return [GoldenExample(text=e.text, expected=list(e.labels)) for e in corpus_module.load("dev").examples]


def golden_digest(examples: Sequence[GoldenExample]) -> str:
    lines = "\n".join(e.model_dump_json() for e in examples)
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def measure(policy: Policy, examples: Sequence[GoldenExample]) -> dict[str, Any]:
    """Flag rate, recall and precision of "flagged at all" against "expected
    anything", and per expected or flagged category."""
    engine = Engine(policy)
    flagged: list[set[str]] = []
    for start in range(0, len(examples), BATCH):
        flagged += [set(d.flagged_categories) for d in engine.moderate([e.text for e in examples[start:start + BATCH]])]
    expected = [set(e.expected) for e in examples]
    hits = sum(1 for f, x in zip(flagged, expected, strict=True) if f and x)
    categories: dict[str, dict[str, Any]] = {}
    for c in CATEGORIES:
        support = sum(c in x for x in expected)
        predicted = sum(c in f for f in flagged)
        if support or predicted:
            true = sum(c in f and c in x for f, x in zip(flagged, expected, strict=True))
            categories[c] = {"recall": _ratio(true, support), "precision": _ratio(true, predicted), "support": support}
    return {"flagRate": _ratio(sum(1 for f in flagged if f), len(examples)),
            "recall": _ratio(hits, sum(1 for x in expected if x)),
            "precision": _ratio(hits, sum(1 for f in flagged if f)),
            "categories": categories, "engine": engine.engine_version, "policy": policy.fingerprint}


def gate_report(candidate: Policy, baseline: Policy | None, examples: Sequence[GoldenExample]) -> dict[str, Any]:
    report: dict[str, Any] = {"examples": len(examples), "golden": golden_digest(examples),
                              "candidate": measure(candidate, examples)}
    if baseline is not None:
        # The baseline's category breakdown is left out: the verdict needs its
        # overall numbers only, and the whole report must fit a termination message.
        measured = measure(baseline, examples) if baseline != candidate else report["candidate"]
        report["baseline"] = {k: v for k, v in measured.items() if k != "categories"}
    return report


def compact(report: dict[str, Any]) -> str:
    text = json.dumps(report, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > RESULT_LIMIT:
        raise ValueError(f"the gate report is {len(text)} bytes, more than a termination message holds")
    return text
