"""Compare the NumPy forward pass of the Jigsaw BiLSTM (engine/jigsaw.py) with
TensorFlow's own, on the dev set. Run once with a Python that has TensorFlow:

    python -m venv ~/.cache/tfenv && ~/.cache/tfenv/bin/pip install tensorflow-cpu h5py
    ~/.cache/tfenv/bin/python hack/check-jigsaw-tf.py .venv/lib/python3.11/site-packages

The site-packages argument is where `toxic-comment-classifier` is installed
(appended to the path, so the TensorFlow environment's NumPy is the one used)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "workload"))
sys.path.append(sys.argv[1])

import numpy as np  # noqa: E402
from toxic_classifier.model import ToxicCommentClassifier  # noqa: E402

from ai_moderator_workload.engine.jigsaw import JigsawBiLSTM  # noqa: E402


def main() -> None:
    texts = [json.loads(line)["text"] for path in sorted((root / "workload/ai_moderator_workload/engine/corpus/dev").glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ours = JigsawBiLSTM()
    keras = ToxicCommentClassifier()
    seqs = ours.sequences(texts)
    from tensorflow.keras.preprocessing.sequence import pad_sequences

    reference_seqs = pad_sequences(keras.tokenizer.texts_to_sequences(texts), maxlen=seqs.shape[1])
    assert (reference_seqs == seqs).all(), "tokenisation differs from Keras"
    expected = keras.model.predict(reference_seqs, verbose=0, batch_size=256)
    got = ours.predict_sequences(seqs)
    print(json.dumps({"texts": len(texts), "sequences_identical": True,
                      "max_abs_difference": float(np.abs(expected - got).max())}))


if __name__ == "__main__":
    main()
