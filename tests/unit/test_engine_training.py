"""The shipped engine is the corpus's: its corpus, its guide's promises, a
deterministic `train`, and nothing fetched at run time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ai_moderator_workload.engine import corpus
from ai_moderator_workload.engine.categories import CATEGORIES
from ai_moderator_workload.engine.train import train
from ai_moderator_workload.engine.weights import (
    file_digest,
    heads_path,
    load_trained,
    static_table_path,
    token_weights_path,
)


def test_shipped_heads_were_trained_on_this_corpus_and_table() -> None:
    manifest = load_trained().manifest
    assert manifest["corpus"]["train"] == corpus.load("train").digest, \
        "the training corpus changed since the heads were trained: run `ai-moderator train`"
    assert manifest["corpus"]["dev"] == corpus.load("dev").digest, \
        "the dev set changed since the heads were calibrated: run `ai-moderator train`"
    assert manifest["static_table"]["sha256"] == file_digest(static_table_path())
    assert manifest["token_weights"]["sha256"] == file_digest(token_weights_path())


def test_corpus_meets_what_the_labelling_guide_promises() -> None:
    train_stats = corpus.stats(corpus.load("train"))
    dev_stats = corpus.stats(corpus.load("dev"))
    assert train_stats["texts"] >= 4000 and dev_stats["texts"] >= 1000
    assert min(train_stats["categories"].values()) >= 150  # type: ignore[attr-defined]
    assert train_stats["hard_negatives"] >= 1500
    assert train_stats["words"].get("200-400", 0) >= 100  # type: ignore[attr-defined]
    train_texts = {e.text.strip().lower() for e in corpus.load("train").examples}
    assert not train_texts & {e.text.strip().lower() for e in corpus.load("dev").examples}, \
        "a dev text also appears in the training corpus"


def test_a_bad_corpus_line_is_refused_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.jsonl").write_text(
        '{"text": "ok", "labels": [], "register": "chat"}\n{"text": "hm", "labels": ["rude"], "register": "chat"}\n')
    with pytest.raises(ValueError, match="x.jsonl:2"):
        corpus.load("train", tmp_path)


def _tiny_corpus(root: Path) -> None:
    """A few texts per category from each split: enough to exercise every step of training."""
    for split in ("train", "dev"):
        picked: list[str] = []
        seen: dict[str, int] = {}
        for e in corpus.load(split).examples:  # type: ignore[arg-type]
            key = e.labels[-1] if e.labels else ""
            if seen.get(key, 0) < (6 if split == "train" else 3):
                seen[key] = seen.get(key, 0) + 1
                picked.append(e.model_dump_json(by_alias=True))
        (root / split).mkdir(parents=True)
        (root / split / "tiny.jsonl").write_text("\n".join(picked) + "\n")


def test_training_is_deterministic(tmp_path: Path) -> None:
    _tiny_corpus(tmp_path / "corpus")
    table = tmp_path / "table.npy"
    shutil.copy(static_table_path(), table)
    first = train(threads=1, rebuild_table=False, corpus_root=tmp_path / "corpus", out=tmp_path / "a.json",
                  table_path=table)
    train(threads=1, rebuild_table=False, corpus_root=tmp_path / "corpus", out=tmp_path / "b.json", table_path=table)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "token-weights.npy").exists()
    assert set(first["gates"]) == set(CATEGORIES)
    assert first["corpus"]["train"] == corpus.load("train", tmp_path / "corpus").digest


OFFLINE = r"""
import socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from ai_moderator_workload.engine.pipeline import Engine
from ai_moderator_workload.engine.policy import Policy
for profile in ("fast", "cascade", "accurate"):
    d = Engine(Policy(engine=profile)).moderate(["I will find you and kill you, you worthless rat"])[0]
    assert "harassment" in d.flagged_categories, (profile, d.scores)
print("ok")
"""


def test_engine_runs_with_networking_disabled() -> None:
    command = [sys.executable, "-c", OFFLINE]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        command = [unshare, "-n", *command]  # a network namespace with no interface up
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_heads_file_is_what_the_engine_reads() -> None:
    document = json.loads(heads_path().read_text())
    assert set(document["heads"]) == {"fast", "accurate"}
    assert document["heads_digest"] == load_trained().digest
