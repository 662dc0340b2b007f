"""The trained artifacts shipped with the package, written by `ai-moderator
train`: the static token table, the word-piece weights and `heads.json` (per stage: feature scaling,
one logistic head per category, its dev-set calibration; the cascade's gates;
the digests of the corpus and of the table they were trained from)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .categories import CATEGORIES


def weights_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("weights")))


def static_table_path() -> Path:
    return weights_dir() / "static-table.npy"


def token_weights_path() -> Path:
    return weights_dir() / "token-weights.npy"


def heads_path() -> Path:
    return weights_dir() / "heads.json"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


@dataclass(frozen=True)
class Heads:
    """One stage's heads: standardise the window features, one linear logit
    per category, strongest window per text, then the dev-set calibration
    (Platt scaling: a monotone map, so rankings are the heads' own)."""

    mean: np.ndarray  # (features,)
    scale: np.ndarray  # (features,)
    weight: np.ndarray  # (features, categories)
    bias: np.ndarray  # (categories,)
    slope: np.ndarray  # (categories,)
    intercept: np.ndarray  # (categories,)

    def window_logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weight + self.bias

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(logits * self.slope + self.intercept)

    def to_json(self) -> dict[str, Any]:
        return {name: np.asarray(getattr(self, name), dtype=np.float64).round(7).tolist()
                for name in ("mean", "scale", "weight", "bias", "slope", "intercept")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Heads:
        arrays = {k: np.asarray(data[k], dtype=np.float32)
                  for k in ("mean", "scale", "weight", "bias", "slope", "intercept")}
        if arrays["weight"].shape[1] != len(CATEGORIES):
            raise ValueError("heads.json does not have one head per category")
        return cls(**arrays)


@dataclass(frozen=True)
class Trained:
    heads: dict[str, Heads]  # by stage
    gates: np.ndarray  # (categories,) fast-stage probability that sends a text to the accurate stage
    manifest: dict[str, Any]

    @property
    def window(self) -> tuple[int, int]:
        """The windows the heads were trained on: words per window and the stride between them."""
        return int(self.manifest["windows"]["words"]), int(self.manifest["windows"]["stride"])

    @property
    def digest(self) -> str:
        return str(self.manifest["heads_digest"])


def heads_digest(document: dict[str, Any]) -> str:
    """Digest of what decides scores (heads, gates), not of the report beside them."""
    payload = json.dumps({"heads": document["heads"], "gates": document["gates"],
                          "token_weights": document["token_weights"]["sha256"]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@lru_cache(maxsize=1)
def load_trained(path: Path | None = None) -> Trained:
    document = json.loads((path or heads_path()).read_text(encoding="utf-8"))
    heads = {stage: Heads.from_json(data) for stage, data in document["heads"].items()}
    gates = np.asarray([document["gates"][c] for c in CATEGORIES], dtype=np.float32)
    manifest = {k: v for k, v in document.items() if k not in ("heads", "gates")}
    manifest["heads_digest"] = heads_digest(document)
    return Trained(heads, gates, manifest)
