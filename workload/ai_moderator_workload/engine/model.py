"""The trained profanity model that ships inside the alt-profanity-check
package (a calibrated linear SVM over a bag of words). Loaded from
site-packages; nothing is downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version

import numpy as np


class ProfanityModel:
    def __init__(self) -> None:
        # Imported here: loading the model costs ~1 s and the operator never needs it.
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self.version = f"alt-profanity-check-{version('alt-profanity-check')}"

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is profane, in one vectorised call."""
        if not texts:
            return np.zeros(0)
        return np.asarray(self._predict_prob(list(texts)), dtype=float)


@lru_cache(maxsize=1)
def profanity_model() -> ProfanityModel:
    return ProfanityModel()
