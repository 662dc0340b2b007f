"""The project's labelled texts: `train/` teaches the heads, `dev/` (written
apart from it, by other hands and prompts) calibrates them and is the only
source of the quality figures. Format and labelling rules: LABELLING.md."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..categories import CATEGORIES, Category, with_implied

Split = Literal["train", "dev"]
Register = Literal["chat", "forum", "review", "story", "assistant", "news", "code", "social", "email", "other"]
Tag = Literal["hard-negative", "long", "buried", "obfuscated", "typos", "quoted"]


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    text: str = Field(min_length=1)
    labels: tuple[Category, ...] = ()
    style: Register = Field(alias="register", description="Where such a text is written (LABELLING.md).")
    tags: tuple[Tag, ...] = ()
    source: str | None = Field(default=None, min_length=1, max_length=200, description=(
        "Where a text that was not written for the corpus came from, e.g. `review:<content id>` from "
        "`ai-moderator export-feedback` (LABELLING.md)."))

    @field_validator("labels")
    @classmethod
    def _with_implied(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        """A sub-category implies its parent and a threat implies violence."""
        return with_implied(labels)


@dataclass(frozen=True)
class Corpus:
    split: str
    examples: list[Example]
    digest: str

    def labels_matrix(self) -> list[list[bool]]:
        return [[c in e.labels for c in CATEGORIES] for e in self.examples]


def corpus_dir() -> Path:
    return Path(str(resources.files(__package__)))


def _files(split: str, root: Path | None = None) -> list[Path]:
    return sorted((root or corpus_dir()).joinpath(split).glob("*.jsonl"))


def load(split: Split, root: Path | None = None) -> Corpus:
    """Every example of a split, in file then line order; the digest covers
    the files' bytes, so the shipped weights can say which corpus made them."""
    examples: list[Example] = []
    digest = hashlib.sha256()
    for path in _files(split, root):
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw)
        for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    examples.append(Example.model_validate(json.loads(line)))
                except ValueError as exc:
                    raise ValueError(f"{path.name}:{number}: {exc}") from exc
    return Corpus(split, examples, digest.hexdigest())


def _length_bucket(words: int) -> str:
    for limit, name in ((1, "1"), (20, "2-20"), (120, "21-120"), (199, "121-199"), (400, "200-400")):
        if words <= limit:
            return name
    return ">400"


def stats(corpus: Corpus) -> dict[str, object]:
    """Counts a reader needs to judge the corpus: per category, clean and hard
    negative texts, length distribution (in words), registers."""
    per_category: Counter[str] = Counter(label for e in corpus.examples for label in e.labels)
    lengths = Counter(_length_bucket(len(e.text.split())) for e in corpus.examples)
    return {
        "split": corpus.split,
        "texts": len(corpus.examples),
        "digest": corpus.digest,
        "categories": {c: per_category[c] for c in CATEGORIES},
        "clean": sum(not e.labels for e in corpus.examples),
        "hard_negatives": sum("hard-negative" in e.tags for e in corpus.examples),
        "words": dict(sorted(lengths.items(), key=lambda kv: _order(kv[0]))),
        "registers": dict(Counter(e.style for e in corpus.examples).most_common()),
        "tags": dict(Counter(t for e in corpus.examples for t in e.tags).most_common()),
    }


def _order(bucket: str) -> int:
    return ["1", "2-20", "21-120", "121-199", "200-400", ">400"].index(bucket)


def render_stats(corpora: Iterable[Corpus]) -> str:
    rows = [stats(c) for c in corpora]
    lines = ["| | " + " | ".join(str(r["split"]) for r in rows) + " |", "|---|" + "---|" * len(rows)]

    def row(name: str, values: Iterable[object]) -> None:
        lines.append(f"| {name} | " + " | ".join(str(v) for v in values) + " |")

    row("texts", (r["texts"] for r in rows))
    for category in CATEGORIES:
        row(category, (r["categories"][category] for r in rows))  # type: ignore[index]
    row("clean", (r["clean"] for r in rows))
    row("hard negatives", (r["hard_negatives"] for r in rows))
    for bucket in ["1", "2-20", "21-120", "121-199", "200-400", ">400"]:
        row(f"{bucket} words", (r["words"].get(bucket, 0) for r in rows))  # type: ignore[attr-defined]
    return "\n".join(lines)
