"""The moderation policy: thresholds, block/allow lists and model weighting.
Loaded from a YAML file (the operator mounts it from the stack's ConfigMap)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .categories import Category

Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class BlockedTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: Term = Field(description="Word or phrase (case-insensitive, whole words) that always flags.")
    category: Category = Field(default="harassment", description="Category the term flags.")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Term = Field(default="default", description="Name of this policy revision, recorded with every decision.")
    thresholds: dict[Category, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=dict, max_length=13,
        description="Per-category score at or above which the category is flagged (default 0.5)."
    )
    default_threshold: float = Field(default=0.5, gt=0, le=1, description="Threshold of categories not listed.")
    blocklist: list[BlockedTerm] = Field(default_factory=list, max_length=10_000,
                                         description="Terms that always flag their category.")
    allowlist: list[Term] = Field(
        default_factory=list, max_length=10_000,
        description="Phrases removed before scoring (e.g. \"kill the process\", place names that contain rude words).",
    )
    engine: Literal["fast", "cascade", "accurate"] = Field(
        default="cascade",
        description="Engine profile: fast (static embeddings, profanity and rules only), accurate (MiniLM "
                    "sentence embeddings and the Jigsaw BiLSTM on every text), or cascade (fast first; texts it "
                    "finds suspicious also go through the accurate stage).",
    )

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.default_threshold)  # type: ignore[call-overload]

    @property
    def fingerprint(self) -> str:
        """Version name plus a content hash, so an edited file under the same name is told apart."""
        digest = hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        return f"{self.version}@{digest[:12]}"


def parse_policy(text: str) -> Policy:
    return Policy.model_validate(yaml.safe_load(text) or {})


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    return parse_policy(path.read_text(encoding="utf-8"))
