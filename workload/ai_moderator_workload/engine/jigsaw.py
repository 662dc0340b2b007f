"""The Jigsaw toxic-comment BiLSTM shipped in `toxic-comment-classifier`
(MIT), run without TensorFlow: its Keras tokenizer and HDF5 weights are read
from the installed wheel and the forward pass is written in NumPy.
`hack/check-jigsaw-tf.py` compares it with TensorFlow's own forward pass.

Architecture (the package's model.py): Embedding(20000, 50) -> Bidirectional
LSTM(50, return_sequences) -> global max pool -> Dense(50, relu) ->
Dense(6, sigmoid); inputs are the last 100 known words, zero-padded in front."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
MAX_WORDS = 100
BATCH = 64
# Keras' default Tokenizer filters: each becomes a word boundary.
_FILTERS = str.maketrans({c: " " for c in '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'})


class _Attributes:
    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _KerasFreeUnpickler(pickle.Unpickler):
    """The tokenizer was pickled as a Keras object; only its attributes are
    needed, so Keras classes load as plain attribute holders."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(("keras", "tensorflow")):
            return type(name, (_Attributes,), {})
        return super().find_class(module, name)


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it: importing
    toxic_classifier would import TensorFlow."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the model package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class JigsawBiLSTM:
    dim = len(LABELS)

    def __init__(self) -> None:
        import h5py

        model_dir = _package_dir("toxic_classifier") / "model"
        with (model_dir / "tokenizer.pickle").open("rb") as f:
            tokenizer = _KerasFreeUnpickler(f).load()
        vocab = int(tokenizer.num_words)
        # 210k words were indexed; the model knows the first 20k.
        self._index = {w: i for w, i in tokenizer.word_index.items() if i < vocab}
        with h5py.File(model_dir / "model.weights.h5", "r") as f:
            def var(path: str) -> np.ndarray:
                return np.asarray(f["layers/" + path][()], dtype=np.float32)

            self._embedding = var("embedding/vars/0")
            self._forward = [var(f"bidirectional/forward_layer/cell/vars/{i}") for i in range(3)]
            self._backward = [var(f"bidirectional/backward_layer/cell/vars/{i}") for i in range(3)]
            self._dense = (var("dense/vars/0"), var("dense/vars/1"))
            self._out = (var("dense_1/vars/0"), var("dense_1/vars/1"))
        self.version = f"toxic-comment-classifier-{version('toxic-comment-classifier')}"

    def sequences(self, texts: Sequence[str]) -> np.ndarray:
        """Keras texts_to_sequences + pad_sequences(maxlen=100): unknown words
        dropped, the last 100 kept, zeros in front."""
        out = np.zeros((len(texts), MAX_WORDS), np.int64)
        for row, text in enumerate(texts):
            ids = [i for w in text.lower().translate(_FILTERS).split(" ") if (i := self._index.get(w))]
            ids = ids[-MAX_WORDS:]
            if ids:
                out[row, MAX_WORDS - len(ids):] = ids
        return out

    @staticmethod
    def _step(z: np.ndarray, h: np.ndarray, c: np.ndarray, recurrent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One LSTM step: gates i, f, c, o with the sigmoid recurrent activation
        (Keras 3's default); tanh(x) = 2 sigmoid(2x) - 1, so one exp serves all four gates."""
        units = recurrent.shape[0]
        pre = z + h @ recurrent
        pre[..., 2 * units:3 * units] *= 2.0
        gates = 1.0 / (1.0 + np.exp(-pre))
        c = gates[..., units:2 * units] * c + gates[..., :units] * (2.0 * gates[..., 2 * units:3 * units] - 1.0)
        return gates[..., 3 * units:] * np.tanh(c), c

    @cached_property
    def _padding_states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forward direction's (h, c, running max) after 0..100 steps of
        padding: the same for every text, so a batch starts after the padding
        all its texts share instead of recomputing it."""
        kernel, recurrent, bias = self._forward
        units = recurrent.shape[0]
        z = self._embedding[0] @ kernel + bias
        h, c = np.zeros(units, np.float32), np.zeros(units, np.float32)
        best = np.full(units, -np.inf, np.float32)
        states = [(h, c, best)]
        for _ in range(MAX_WORDS):
            h, c = self._step(z, h, c, recurrent)
            best = np.maximum(best, h)
            states.append((h, c, best))
        return tuple(np.stack(parts) for parts in zip(*states, strict=True))  # type: ignore[return-value]

    def _direction(self, x: np.ndarray, weights: list[np.ndarray], steps: range,
                   start: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Max over `steps` of one direction's hidden state."""
        kernel, recurrent, bias = weights
        z_in = x @ kernel + bias
        h, c, best = (np.repeat(part[None], len(x), 0) for part in start)
        for t in steps:
            h, c = self._step(z_in[:, t], h, c, recurrent)
            np.maximum(best, h, out=best)
        return best

    def predict_sequences(self, seqs: np.ndarray) -> np.ndarray:
        x = self._embedding[seqs]
        units = self._forward[1].shape[0]
        # Words have indices from 1, so the leading zeros of a row are its padding.
        shared = int(np.where((seqs != 0).any(axis=1), (seqs != 0).argmax(axis=1), MAX_WORDS).min())
        hs, cs, bests = self._padding_states
        forward = self._direction(x, self._forward, range(shared, MAX_WORDS), (hs[shared], cs[shared], bests[shared]))
        zero = np.zeros(units, np.float32)
        backward = self._direction(x, self._backward, range(MAX_WORDS - 1, -1, -1),
                                   (zero, zero, np.full(units, -np.inf, np.float32)))
        hidden = np.maximum(np.concatenate([forward, backward], axis=1) @ self._dense[0] + self._dense[1], 0.0)
        return _sigmoid(hidden @ self._out[0] + self._out[1])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 6) probabilities in LABELS order."""
        seqs = self.sequences(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        # Texts of similar length share a batch, and so most of their padding.
        order = np.argsort((seqs != 0).sum(axis=1), kind="stable")
        for start in range(0, len(texts), BATCH):
            rows = order[start:start + BATCH]
            out[rows] = self.predict_sequences(seqs[rows])
        return out
