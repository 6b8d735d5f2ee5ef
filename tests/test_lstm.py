"""asr.lstm against keras.layers.LSTM: forward, gradients, the training model's step, and which layers it takes."""

from __future__ import annotations

import numpy as np
import pytest

from asr.batch import pad_batch
from asr.config import ModelConfig, TrainConfig
from asr.runtime import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402 - after the quiet TensorFlow import

from asr.lstm import bidirectional_lstm, supports  # noqa: E402
from asr.model import build_model, build_training_model, compile_training_model  # noqa: E402

TOL = 1e-5  # forward and gradients agree with Keras to this, relative to the largest value


def assert_close(got, want, what: str) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL * scale, err_msg=what)


def blstm(units: int, d_in: int, seed: int = 0):
    """A built Bidirectional(LSTM) with random (not initial) weights, so every gate matters."""
    layer = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))
    layer.build((None, None, d_in))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


def forward_and_gradients(fn, layer, x, weights_of_dy):
    """Output and the gradients of sum(y * r) with respect to x and every weight of `layer`."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(y * weights_of_dy)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return y, grads


@pytest.mark.parametrize(("batch", "steps", "d_in", "units"), [(3, 7, 5, 4), (2, 1, 3, 2), (4, 19, 8, 16)])
def test_forward_and_gradients_match_keras(batch, steps, d_in, units):
    layer = blstm(units, d_in)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, steps, d_in)).astype(np.float32)
    r = tf.constant(rng.normal(size=(batch, steps, 2 * units)).astype(np.float32))
    y_keras, g_keras = forward_and_gradients(lambda v: layer(v), layer, x, r)
    y_fused, g_fused = forward_and_gradients(lambda v: bidirectional_lstm(layer, v), layer, x, r)
    assert_close(y_fused, y_keras, "output")
    names = ["x"] + [v.path for v in layer.trainable_variables]
    for name, got, want in zip(names, g_fused, g_keras, strict=True):
        assert_close(got, want, f"gradient of {name}")


BF16_TOL = 3e-2  # bfloat16 operands keep 8 significant bits (relative rounding 2^-9 ~ 0.2 %) over few sums


def test_bfloat16_products_compute_the_same_function_in_mixed_precision():
    """products="bfloat16": the output and every gradient within bfloat16 rounding of Keras' float32 layer, and
    really rounded (not the float32 path under another name); the results are float32."""
    layer = blstm(16, 8)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 19, 8)).astype(np.float32)
    r = tf.constant(rng.normal(size=(4, 19, 32)).astype(np.float32))
    y_keras, g_keras = forward_and_gradients(lambda v: layer(v), layer, x, r)
    y_low, g_low = forward_and_gradients(lambda v: bidirectional_lstm(layer, v, "bfloat16"), layer, x, r)
    assert y_low.dtype == tf.float32 and all(g.dtype == tf.float32 for g in g_low)
    names = ["output", "gradient of x"] + [f"gradient of {v.path}" for v in layer.trainable_variables]
    for name, got, want in zip(names, [y_low, *g_low], [y_keras, *g_keras], strict=True):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=BF16_TOL * scale, err_msg=name)
        assert np.abs(got - want).max() > TOL * scale, f"{name}: no bfloat16 rounding at all"
    with pytest.raises(ValueError, match="products='float16'"):
        bidirectional_lstm(layer, x, "float16")


def test_right_padded_batches_match_keras():
    """Training batches are right-padded without a mask: the backward direction runs through the padding first,
    in Keras and here alike (the padded frames' outputs are never scored by CTC, but they feed the real ones)."""
    layer = blstm(6, 4, seed=2)
    rng = np.random.default_rng(3)
    feats = [rng.normal(size=(n, 4)).astype(np.float32) for n in (11, 5, 1)]
    x = pad_batch(feats, [[1], [1], [1]], 1, np.zeros(4, np.float32))["feats"]
    r = tf.constant(rng.normal(size=(3, 11, 12)).astype(np.float32))
    y_keras, g_keras = forward_and_gradients(lambda v: layer(v), layer, x, r)
    y_fused, g_fused = forward_and_gradients(lambda v: bidirectional_lstm(layer, v), layer, x, r)
    assert_close(y_fused, y_keras, "output")
    for got, want in zip(g_fused, g_keras, strict=True):
        assert_close(got, want, "gradient")


def test_inside_a_tf_function_with_unknown_shapes():
    layer = blstm(4, 3)
    fn = tf.function(lambda v: bidirectional_lstm(layer, v),
                     input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    for shape in [(2, 9, 3), (5, 2, 3)]:
        x = np.random.default_rng(4).normal(size=shape).astype(np.float32)
        assert_close(fn(x), layer(x), f"output {shape}")


def test_supports_only_what_it_reproduces():
    assert supports(blstm(4, 3))
    lstm = keras.layers.LSTM
    assert not supports(keras.layers.Bidirectional(lstm(4, return_sequences=True, recurrent_dropout=0.1)))
    assert not supports(keras.layers.Bidirectional(lstm(4, return_sequences=True, activation="relu")))
    assert not supports(keras.layers.Bidirectional(lstm(4, return_sequences=True), merge_mode="sum"))
    assert not supports(keras.layers.Bidirectional(lstm(4, return_sequences=True, dtype="mixed_float16")))
    assert not supports(keras.layers.Dense(4))


N_FEATS, N_CLASSES = 20, 7


def small_models(lstm: str, dropout: float = 0.0):
    """The same inference model (the same weights and dropout generators) in a training model."""
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(conv_channels=8, conv_kernel=5, conv_stride=2, lstm_units=6, lstm_layers=2, dropout=dropout)
    model = build_model(cfg, N_FEATS, N_CLASSES, [0.0] * N_FEATS, [1.0] * N_FEATS)
    train_model = build_training_model(model, lstm)
    compile_training_model(train_model, TrainConfig(learning_rate=1e-2, warmup_epochs=0.0, epochs=2), 1)
    return model, train_model


def training_batch():
    rng = np.random.default_rng(5)
    feats = [rng.normal(size=(n, N_FEATS)).astype(np.float32) for n in (23, 14, 9)]
    return pad_batch(feats, [[1, 2, 3], [4, 4], [5]], 2, np.zeros(N_FEATS, np.float32))


def test_training_model_uses_the_fused_path_on_cpu_only_in_float32(monkeypatch):
    _, auto = small_models("auto")
    _, plain = small_models("keras")
    assert auto.fused_chain == ("cmvn", "conv", "conv_dropout", "blstm0", "dropout0", "blstm1", "dropout1", "probs")
    assert plain.fused_chain == ()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        _, mixed = small_models("auto")
        with pytest.raises(ValueError, match="fused"):
            small_models("fused")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.fused_chain == ()
    # With a GPU the train step keeps Keras' layers (cuDNN): what TensorFlow lists decides.
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    _, on_gpu = small_models("auto")
    assert on_gpu.fused_chain == ()


def test_a_fused_training_step_equals_a_keras_one():
    """Loss, gradients, and the weights after one Adam step: the fused path trains the very same weights."""
    x = {k: tf.constant(v) for k, v in training_batch().items()}
    results = {}
    for lstm in ("keras", "fused"):
        model, train_model = small_models(lstm)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(train_model.training_loss(x))
        grads = tape.gradient(loss, train_model.trainable_variables)
        if lstm == "fused":  # the real train step (the finiteness guard, the optimizer) ...
            train_model.train_on_batch(x, np.zeros(3, np.float32))
        else:  # ... against the same update from Keras' gradients (eager: no second train function to trace)
            train_model.optimizer.apply(grads, train_model.trainable_variables)
        results[lstm] = (float(loss), grads, model.get_weights())
    assert_close(results["fused"][0], results["keras"][0], "loss")
    for got, want in zip(results["fused"][1], results["keras"][1], strict=True):
        assert_close(got, want, "gradient")
    for got, want in zip(results["fused"][2], results["keras"][2], strict=True):
        assert_close(got, want, "weights after one step")


def test_dropout_draws_are_the_layers_own():
    """The fused path draws each dropout mask from the layer's generator, as the layer would: same losses, step
    after step (so a run's random numbers do not depend on the path, and a resumed run draws the same)."""
    x = {k: tf.constant(v) for k, v in training_batch().items()}
    losses = {}
    for lstm in ("keras", "fused"):
        _, train_model = small_models(lstm, dropout=0.3)
        losses[lstm] = [np.asarray(train_model.training_loss(x)) for _ in range(2)]
    assert not np.allclose(losses["keras"][0], losses["keras"][1])  # the masks change from step to step
    for got, want in zip(losses["fused"], losses["keras"], strict=True):
        assert_close(got, want, "loss with dropout")
