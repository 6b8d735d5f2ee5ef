"""What the training benchmarks share (`bench_train.py`, `project_gpu_time.py`): a synthetic batch and the
training model exactly as `asr train` builds and compiles it. The FLOP estimate is `asr.model.forward_flops_per_frame`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.batch import output_lengths
from asr.config import ModelConfig, TrainConfig


def synthetic_batch(rng: np.random.Generator, batch: int, frames: int, chars: int, n_feats: int, n_classes: int,
                    stride: int) -> dict:
    """`batch` full-length random utterances as `asr.batch.pad_batch` makes them: feats float32 [B, frames, n_feats],
    labels int32 [B, chars] in 1..n_classes-1, label_lens and out_lens int32 [B]; plus feat_lens int32 [B]."""
    return {"feats": rng.normal(size=(batch, frames, n_feats)).astype(np.float32),
            "labels": rng.integers(1, n_classes, size=(batch, chars)).astype(np.int32),
            "label_lens": np.full(batch, chars, np.int32),
            "out_lens": np.full(batch, output_lengths(frames, stride), np.int32),
            "feat_lens": np.full(batch, frames, np.int32)}


def build_train_model(model_cfg: ModelConfig, train_cfg: TrainConfig, n_feats: int, n_classes: int,
                      lstm: str = "auto") -> Any:
    """The training model as `asr train` builds and compiles it (identity CMVN statistics; the BiLSTM products'
    precision per `train_cfg.mixed_precision`, as `asr.train.training_precision` resolves it); `lstm` as
    `asr.model.build_training_model` takes it."""
    from asr.model import build_model, build_training_model, compile_training_model
    from asr.train import bilstm_products, training_precision

    model = build_model(model_cfg, n_feats, n_classes, [0.0] * n_feats, [1.0] * n_feats)
    products = bilstm_products(training_precision(train_cfg.mixed_precision))
    train_model = build_training_model(model, lstm, products)
    compile_training_model(train_model, train_cfg, steps_per_epoch=100)
    return train_model
