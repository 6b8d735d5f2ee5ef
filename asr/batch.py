"""One batch and its time axis: the tensors the model and the CTC loss see, and how long an output frame lasts.

    python -c "from asr.batch import output_lengths; print(output_lengths([100, 101], 3))"   # [34 34]

The tensors of one batch (names used everywhere in this project):

    feats       float32 [B, T_max, n_mfcc]  right-padded with the train mean (normalises to 0)
    labels      int32   [B, L_max]          char indices (>= 1), right-padded with PAD_INDEX (-1): `y_true`
    label_lens  int32   [B]                 true transcript lengths: `label_length`
    out_lens    int32   [B]                 output frames after subsampling, ceil(n_frames / stride): `input_length`

Training (`asr.data`) and inference (`asr.inference`) pad features the same way, so a lone utterance and the same
utterance in a padded batch give the same output frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr.config import FeatureConfig
from asr.text import PAD_INDEX


def output_lengths(n_frames: Sequence[int] | np.ndarray | int, stride: int) -> np.ndarray:
    """Output frames of the model for `n_frames` input frames: ceil(n / stride) ('same' padding)."""
    return (np.asarray(n_frames) + stride - 1) // stride


def frame_period(features: FeatureConfig, stride: int) -> float:
    """Seconds per model output frame: hop_length * conv_stride / sample_rate."""
    return features.hop_length * stride / features.sample_rate


def pad_features(feats: Sequence[np.ndarray], pad_value: np.ndarray, t_max: int = 0) -> np.ndarray:
    """float32 `[B, max(T_i, t_max), n_mfcc]`: each `feats[i]` `[T_i, n_mfcc]` right-padded with `pad_value`.

    The pad value is the train mean, which the model's CMVN layer maps to 0, like the zero padding of a lone
    utterance.
    """
    t_max = max(max(len(f) for f in feats), t_max)
    out = np.empty((len(feats), t_max, len(pad_value)), dtype=np.float32)
    out[:] = pad_value
    for b, f in enumerate(feats):
        out[b, : len(f)] = f
    return out


def pad_batch(feats: Sequence[np.ndarray], labels: Sequence[Sequence[int]], stride: int, pad_value: np.ndarray,
              t_max: int = 0, l_max: int = 0) -> dict:
    """The four tensors of one training batch (to at least `t_max` frames and `l_max` labels); see above."""
    n_frames = np.array([len(f) for f in feats], dtype=np.int32)
    label_lens = np.array([len(y) for y in labels], dtype=np.int32)
    y_true = np.full((len(labels), max(1, int(label_lens.max()), l_max)), PAD_INDEX, dtype=np.int32)
    for b, y in enumerate(labels):
        y_true[b, : len(y)] = y
    return {"feats": pad_features(feats, pad_value, t_max), "labels": y_true, "label_lens": label_lens,
            "out_lens": output_lengths(n_frames, stride).astype(np.int32)}
