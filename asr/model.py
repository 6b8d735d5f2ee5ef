"""The acoustic model: CMVN -> [Conv1D, stride s] -> BiLSTM x N -> Dense softmax (vocabulary + blank).

    python -c "from asr.model import *; build_model(ModelConfig(), 20, 29, [0] * 20, [1] * 20).summary()"

Two Keras models share the same layers:

- the inference model: `feats [B, T, n_mfcc]` -> `probs [B, ceil(T / s), V]`; this is what a bundle holds
  and it loads with `safe_mode=True` (no Lambda inside);
- the training model: inputs `feats, labels, label_lens, out_lens` -> CTC loss `[B, 1]` via a Lambda layer.
  Its train step (`asr.trainstep`) skips (and counts) a batch whose loss or gradients are not finite, on
  every replica at once, so one bad batch never reaches the weights or the optimizer state.

LSTM settings stay cuDNN-compatible (tanh/sigmoid, no recurrent_dropout, unroll=False, right padding, no
mask), so the same config runs the fused kernel on a GPU. Padding is on the right and never scored (CTC
reads `out_lens` frames); length bucketing keeps it short. Under mixed precision the output Dense (softmax)
and the CTC Lambda stay float32. Without a GPU the train step computes the same function with the BiLSTMs
by `asr.lstm` (same weights, faster gradient): the models, checkpoints and bundles are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from asr.config import ModelConfig, TrainConfig
from asr.ctc import ctc_batch_loss, identity_loss
from asr.errors import AsrError
from asr.trainstep import training_model_class

OUTPUT_LAYER = "probs"  # the Dense softmax: one column per vocabulary class (blank first)


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
    probs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name=OUTPUT_LAYER)(x)
    return keras.Model(feats, probs, name="asr")


def weight_layers(model: Any) -> list[str]:
    """Names of the layers that hold weights, input to output (what `train.freeze` can name)."""
    return [layer.name for layer in model.layers if layer.weights]


def freeze_layers(model: Any, names: str) -> list[str]:
    """Keep the layers named in `names` ("conv,blstm0") fixed in training; returns them. Call before compiling."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    layers = weight_layers(model)
    unknown = [n for n in wanted if n not in layers]
    if unknown:
        raise AsrError(f"train.freeze: no layer {unknown[0]!r} in this model (layers: {', '.join(layers)})")
    for name in wanted:
        model.get_layer(name).trainable = False
    return wanted


LSTM_PATHS = ("auto", "keras", "fused")  # how the training step computes the BiLSTM layers (build_training_model)


def build_training_model(model: Any, lstm: str = "auto", products: str = "float32") -> Any:
    """Wrap the inference model with the Lambda CTC layer: `[feats, labels, label_lens, out_lens]` -> loss `[B, 1]`.

    `lstm`: how the train step computes the BiLSTM layers. "keras" calls the layers (cuDNN on a GPU);
    "fused" computes the same function from the same weights with `asr.lstm` (the bench step ~1.5x faster on
    a CPU; the model, its weights, checkpoints and bundles are the same either way); "auto": fused when
    TensorFlow sees no GPU and the layers compute in float32 (no Keras mixed-precision policy).
    `products`: the operand type of the fused path's matrix products (`asr.lstm.PRODUCTS`; "bfloat16" is
    mixed precision on a CPU, `asr.train.training_precision`).
    """
    import keras

    from asr.lstm import check_products

    check_products(products)  # here too: a model that does not take the fused path ignores it
    labels = keras.Input((None,), dtype="int32", name="labels")
    label_lens = keras.Input((), dtype="int32", name="label_lens")
    out_lens = keras.Input((), dtype="int32", name="out_lens")
    probs = model.output
    # dtype float32: under mixed precision a float16 Lambda would cast the probabilities down before the log.
    loss = keras.layers.Lambda(ctc_batch_loss, output_shape=(1,), name="ctc", dtype="float32")(
        [probs, labels, out_lens, label_lens])
    inputs = {"feats": model.input, "labels": labels, "label_lens": label_lens, "out_lens": out_lens}
    train_model = training_model_class()(inputs, loss, name="asr_train")
    train_model.fused_chain = tuple(layer.name for layer in model.layers[1:]) if _use_fused(model, lstm) else ()
    train_model.products = products if train_model.fused_chain else "float32"
    if train_model.fused_chain:
        train_model.forward = _cpu_forward
    return train_model


def _use_fused(model: Any, lstm: str) -> bool:
    """Whether the train step computes `model`'s BiLSTM layers with `asr.lstm` (see `build_training_model`)."""
    import keras
    import tensorflow as tf

    from asr.lstm import supports

    if lstm not in LSTM_PATHS:
        raise ValueError(f"lstm={lstm!r}; expected one of {LSTM_PATHS}")
    blstms = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    chain = all(b.input is a.output for a, b in zip(model.layers, model.layers[1:]))  # feats -> ... -> probs
    possible = chain and bool(blstms) and all(supports(layer) for layer in blstms)
    if lstm == "fused" and not possible:
        raise ValueError("lstm='fused' needs a chain of layers whose BiLSTMs asr.lstm supports (float32)")
    return possible and (lstm == "fused" or (lstm == "auto" and not tf.config.list_logical_devices("GPU")))


def compile_training_model(train_model: Any, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Adam with linear warm-up then cosine decay, global-norm clipping; the loss is the Lambda's output.

    Call it inside the distribution strategy's scope, if any (the optimizer's variables are created here).
    """
    import keras
    import tensorflow as tf

    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, cfg.epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.01, decay_steps=total - warmup, alpha=0.05,
        warmup_target=cfg.learning_rate, warmup_steps=warmup)
    # global_clipnorm: one norm over all gradients (`clipnorm` in Keras clips each tensor on its own).
    # Under a distribution strategy Keras clips each replica's share (~1/replicas of the gradient) before
    # summing them: scaling the threshold keeps single-device behaviour (exactly if the shares are equal).
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=cfg.clipnorm / replicas if cfg.clipnorm else None)
    # jit_compile=False: tf.nn.ctc_loss (the fast C++ kernel) cannot be XLA-compiled.
    train_model.compile(optimizer=optimizer, loss=identity_loss, jit_compile=False)


def _cpu_forward(train_model: Any, x: dict) -> Any:
    """The training model's loss `[B, 1]` computed layer by layer along `train_model.fused_chain`, as on a CPU:

    - each BiLSTM by `asr.lstm.bidirectional_lstm`, from its own weights (same function, faster gradient),
      its matrix products of `train_model.products` operands;
    - the dropout mask after a BiLSTM drawn before it (same generator, same draw: the layer's own), so the
      random numbers are made beside the BiLSTM's loops rather than after them;
    - the CTC loss in pieces of the batch that run side by side (`asr.ctc.ctc_loss_in_parts`).
    """
    import keras
    import tensorflow as tf

    from asr.ctc import ctc_loss_in_parts
    from asr.lstm import bidirectional_lstm
    from asr.runtime import available_cores

    layers = [train_model.get_layer(name) for name in train_model.fused_chain]
    masks: dict[int, Any] = {}
    h = x["feats"]
    for k, layer in enumerate(layers):
        after = layers[k + 1] if k + 1 < len(layers) else None
        if isinstance(layer, keras.layers.Bidirectional):
            if isinstance(after, keras.layers.Dropout) and after.rate > 0:
                shape = tf.concat([tf.shape(h)[:2], [2 * layer.forward_layer.units]], 0)  # [B, T', 2H]
                masks[k + 1] = keras.random.dropout(tf.ones(shape), after.rate, seed=after.seed_generator)
            h = bidirectional_lstm(layer, h, train_model.products)
        elif k in masks:  # what Dropout computes: x / (1 - rate) where kept, else 0 (h is finite: tanh * sigmoid)
            h = h * masks[k]
        else:
            h = layer(h, training=True)
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    parts = available_cores() // intra if intra else 1
    return ctc_loss_in_parts([h, x["labels"], x["out_lens"], x["label_lens"]], parts)


def count_params(model: Any) -> int:
    """Number of trainable parameters."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def forward_flops_per_frame(cfg: ModelConfig, n_feats: int, n_classes: int) -> float:
    """Forward FLOPs of the model per output frame (one multiply-add = 2 FLOPs; every kernel weight is used once
    per output frame, the conv's included):

        conv    2 * conv_kernel * n_feats * conv_channels
        BiLSTM  2 directions * 4 gates * 2 * (d_in + units) * units, per layer
                (d_in = conv_channels for the first layer, 2 * units for the others)
        dense   2 * (2 * units) * n_classes

    Training costs about 3x this (the backward pass about twice the forward)."""
    flops, d_in = 0.0, n_feats
    if cfg.conv_channels:
        flops += 2.0 * cfg.conv_kernel * d_in * cfg.conv_channels
        d_in = cfg.conv_channels
    for _ in range(cfg.lstm_layers):
        flops += 2 * 4 * 2.0 * (d_in + cfg.lstm_units) * cfg.lstm_units
        d_in = 2 * cfg.lstm_units
    return flops + 2.0 * d_in * n_classes
