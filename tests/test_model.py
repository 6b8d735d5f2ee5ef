"""The acoustic model: output lengths, bundles that load in safe mode, and the overfit test."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import demo_flacs

from asr.batch import output_lengths, pad_batch
from asr.config import FeatureConfig, ModelConfig, TextConfig, TrainConfig
from asr.runtime import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402 - after the quiet TensorFlow import

from asr.bundle import load_bundle, save_bundle  # noqa: E402
from asr.model import build_model, build_training_model, compile_training_model, count_params  # noqa: E402
from asr.text import Vocabulary  # noqa: E402

N_FEATS, N_CLASSES = 20, 7


def small_model(channels: int = 8, stride: int = 2, units: int = 8, layers: int = 1):
    cfg = ModelConfig(conv_channels=channels, conv_kernel=5, conv_stride=stride, lstm_units=units,
                      lstm_layers=layers, dropout=0.0)
    rng = np.random.default_rng(0)
    return cfg, build_model(cfg, N_FEATS, N_CLASSES, rng.normal(size=N_FEATS), rng.uniform(0.5, 2, N_FEATS))


@pytest.mark.parametrize(("channels", "stride"), [(0, 1), (8, 1), (8, 2), (8, 3)])
def test_output_length_is_output_lengths(channels, stride):
    _, model = small_model(channels, stride)
    for t_len in (1, 2, 3, 4, 5, 7, 16, 31, 100):
        probs = model(np.zeros((2, t_len, N_FEATS), np.float32), training=False)
        assert probs.shape == (2, int(output_lengths(t_len, stride)), N_CLASSES), (t_len, stride)
        assert int(output_lengths(t_len, stride)) == -(-t_len // stride)  # ceil: no frame thrown away


def test_output_lengths_vectorised():
    np.testing.assert_array_equal(output_lengths(np.array([1, 2, 3, 4, 100]), 2), [1, 1, 2, 2, 50])
    np.testing.assert_array_equal(output_lengths(np.array([5, 6, 7]), 3), [2, 2, 3])
    np.testing.assert_array_equal(output_lengths(np.array([5, 6]), 1), [5, 6])


def test_probs_are_a_distribution_over_vocabulary_plus_blank():
    _, model = small_model()
    probs = model(np.random.default_rng(1).normal(size=(3, 11, N_FEATS)).astype(np.float32), training=False)
    probs = np.asarray(probs)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert np.all(probs >= 0)


def test_training_model_outputs_one_loss_per_utterance():
    _, model = small_model()
    train_model = build_training_model(model)
    rng = np.random.default_rng(2)
    batch = pad_batch([rng.normal(size=(n, N_FEATS)).astype(np.float32) for n in (20, 12, 9)],
                      [[1, 2, 3], [4, 4], [5]], 2, np.zeros(N_FEATS, np.float32))
    loss = np.asarray(train_model(batch, training=False))
    assert loss.shape == (3, 1)
    assert np.all(np.isfinite(loss)) and np.all(loss > 0)


def test_bundle_round_trip_in_safe_mode(tmp_path):
    cfg, model = small_model(stride=2, layers=2)
    vocab = Vocabulary(tuple("abcdef"))
    stats = {"mean": [0.0] * N_FEATS, "std": [1.0] * N_FEATS, "frames": 10}
    save_bundle(tmp_path / "bundle", model, FeatureConfig(), TextConfig(), cfg, vocab, stats, {"epoch": 1})
    assert not list(tmp_path.glob(".*"))  # the atomic write left no temporaries
    x = np.random.default_rng(3).normal(size=(2, 23, N_FEATS)).astype(np.float32)
    bundle = load_bundle(tmp_path / "bundle")
    np.testing.assert_array_equal(np.asarray(bundle.model(x, training=False)), np.asarray(model(x, training=False)))
    assert bundle.model_cfg == cfg and bundle.vocab == vocab and bundle.stats == stats
    assert bundle.info == {"epoch": 1}
    direct = keras.saving.load_model(tmp_path / "bundle" / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(direct(x, training=False)), np.asarray(model(x, training=False)))


def test_trained_bundle_loads_in_safe_mode(tiny_bundle, tiny_prepared):
    from asr.data import PreparedData

    bundle = load_bundle(tiny_bundle)
    data = PreparedData(tiny_prepared)
    assert bundle.vocab == data.vocab
    assert bundle.features == data.features
    assert bundle.model.output.shape[-1] == data.vocab.size
    x = np.asarray(data.feats(data.rows("test")[0]))[None]
    reloaded = keras.saving.load_model(tiny_bundle / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), np.asarray(bundle.model(x, training=False)))


# --- overfit: a handful of utterances must be learnt almost perfectly ---------------------------------------

OVERFIT_UTTS = 5
OVERFIT_MAX_STEPS = 300  # reaches CER <= 5% after ~60-80 steps (~10 s on 2 cores)


def _overfit_setup():
    from asr.audio import compute_mfcc, load_audio
    from asr.text import normalise_text

    features, text_cfg = FeatureConfig(), TextConfig()
    items = demo_flacs(OVERFIT_UTTS)
    feats = [compute_mfcc(load_audio(path, features.sample_rate), features) for path, _ in items]
    texts = [normalise_text(text, text_cfg) for _, text in items]
    vocab = Vocabulary.from_texts(texts, text_cfg.alphabet)
    frames = np.concatenate(feats)
    return feats, texts, vocab, frames.mean(0), frames.std(0)


def test_overfit_a_handful_of_utterances():
    from asr.decoding import Decoder
    from asr.inference import Predictor
    from asr.metrics import error_rates

    keras.utils.set_random_seed(0)
    feats, texts, vocab, mean, std = _overfit_setup()
    cfg = ModelConfig(conv_channels=64, conv_stride=2, lstm_units=64, lstm_layers=1, dropout=0.0)
    model = build_model(cfg, N_FEATS, vocab.size, mean, std)
    assert count_params(model) < 100_000
    train_model = build_training_model(model)
    compile_training_model(train_model, TrainConfig(learning_rate=5e-3, warmup_epochs=5, epochs=OVERFIT_MAX_STEPS),
                           steps_per_epoch=1)
    batch = pad_batch(feats, [vocab.encode(t) for t in texts], cfg.conv_stride, mean)
    dummy_y = np.zeros(len(texts), np.float32)
    predictor = Predictor(model, cfg.conv_stride, mean)
    losses, cer, hyps = [], 1.0, []
    for _ in range(OVERFIT_MAX_STEPS // 10):
        history = train_model.fit(batch, dummy_y, batch_size=len(texts), epochs=10, verbose=0, shuffle=False)
        losses += history.history["loss"]
        hyps = [Decoder(vocab.chars).text(p) for p in predictor(feats)]
        cer = error_rates(texts, hyps)["cer"]
        if cer <= 0.05:
            break
    assert losses[-1] < 0.1 * losses[0], f"loss {losses[0]:.1f} -> {losses[-1]:.1f}"
    assert cer <= 0.05, f"training CER {cer:.3f} after {len(losses)} steps: {list(zip(texts, hyps, strict=True))}"
