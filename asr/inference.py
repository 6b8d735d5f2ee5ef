"""Forward pass for many utterances: length-sorted padded batches through one traced function.

    python -c "from asr.inference import Predictor"   # used by train (dev CER), eval and transcribe
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from asr.data import output_lengths


class Predictor:
    """Runs an inference model on lists of feature matrices; returns per-utterance `probs [T'_i, V]`."""

    def __init__(self, model: Any, stride: int, pad_value: Sequence[float], batch_size: int = 16):
        import tensorflow as tf

        self.stride, self.batch_size = stride, batch_size
        self.pad_value = np.asarray(pad_value, dtype=np.float32)
        n_feats = int(model.input.shape[-1])
        # One trace for every batch shape (None dims); model.predict would rebuild per call.
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                    input_signature=[tf.TensorSpec([None, None, n_feats], tf.float32)])

    def __call__(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`feats`: list of float32 [T_i, n_mfcc] -> list of float32 probs [ceil(T_i / stride), V]."""
        order = np.argsort([len(f) for f in feats], kind="stable")  # similar lengths share a batch
        out: list[np.ndarray] = [np.empty(0)] * len(feats)
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size]
            t_max = max(len(feats[i]) for i in idx)
            batch = np.empty((len(idx), t_max, len(self.pad_value)), dtype=np.float32)
            batch[:] = self.pad_value
            for b, i in enumerate(idx):
                batch[b, : len(feats[i])] = feats[i]
            probs = self._forward(batch).numpy()  # [B, T', V]
            for b, i in enumerate(idx):
                out[i] = probs[b, : int(output_lengths(len(feats[i]), self.stride))]
        return out
