"""The acoustic model: CMVN -> [Conv1D, stride s] -> BiLSTM x N -> Dense softmax (vocabulary + blank).

    python -c "from asr.model import build_model; from asr.config import ModelConfig; build_model(ModelConfig(), 20, 29, [0]*20, [1]*20).summary()"

Two Keras models share the same layers:

- the inference model: `feats [B, T, n_mfcc]` -> `probs [B, ceil(T / s), V]`; this is what a bundle holds
  and it loads with `safe_mode=True` (no Lambda inside);
- the training model: inputs `feats, labels, label_lens, out_lens` -> CTC loss `[B, 1]` via a Lambda layer.

LSTM settings stay cuDNN-compatible (tanh/sigmoid, no recurrent_dropout, unroll=False), so the same
config runs the fused kernel on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from asr.config import ModelConfig, TrainConfig
from asr.ctc import ctc_batch_loss, identity_loss


def build_model(cfg: ModelConfig, n_feats: int, n_classes: int, mean: Sequence[float], std: Sequence[float]) -> Any:
    """Inference model `feats float32 [B, T, n_feats]` -> `probs float32 [B, T', n_classes]`.

    `mean`/`std` (train statistics) are baked into a Normalization layer, so the bundle takes raw MFCC.
    """
    import keras

    feats = keras.Input((None, n_feats), name="feats")
    x = keras.layers.Normalization(mean=np.asarray(mean), variance=np.square(std), name="cmvn")(feats)
    if cfg.conv_channels:
        x = keras.layers.Conv1D(cfg.conv_channels, cfg.conv_kernel, strides=cfg.conv_stride, padding="same",
                                activation="relu", name="conv")(x)  # [B, T, F] -> [B, ceil(T/s), C]
        x = keras.layers.Dropout(cfg.dropout, name="conv_dropout")(x)
    for i in range(cfg.lstm_layers):
        lstm = keras.layers.LSTM(cfg.lstm_units, return_sequences=True, name=f"lstm{i}")
        x = keras.layers.Bidirectional(lstm, name=f"blstm{i}")(x)  # [B, T', 2 * units]
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout{i}")(x)
    # float32 even under mixed precision: the softmax and the CTC loss need the range.
    probs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(feats, probs, name="asr")


def build_training_model(model: Any) -> Any:
    """Wrap the inference model with the Lambda CTC layer: `[feats, labels, label_lens, out_lens]` -> loss."""
    import keras

    labels = keras.Input((None,), dtype="int32", name="labels")
    label_lens = keras.Input((), dtype="int32", name="label_lens")
    out_lens = keras.Input((), dtype="int32", name="out_lens")
    probs = model.output
    loss = keras.layers.Lambda(ctc_batch_loss, output_shape=(1,), name="ctc")([probs, labels, out_lens, label_lens])
    inputs = {"feats": model.input, "labels": labels, "label_lens": label_lens, "out_lens": out_lens}
    return keras.Model(inputs, loss, name="asr_train")


def compile_training_model(train_model: Any, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Adam with linear warm-up then cosine decay, global-norm clipping; the loss is the Lambda's output."""
    import keras

    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, cfg.epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.01, decay_steps=total - warmup, alpha=0.05,
        warmup_target=cfg.learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.Adam(schedule, clipnorm=cfg.clipnorm)
    # jit_compile=False: tf.nn.ctc_loss (the fast C++ kernel) cannot be XLA-compiled.
    train_model.compile(optimizer=optimizer, loss=identity_loss, jit_compile=False)


def count_params(model: Any) -> int:
    """Number of trainable parameters."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
