"""asr.trainstep: the Keras versions it runs on, the private hooks it needs, and its loss on public APIs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import tomllib

from asr.batch import pad_batch
from asr.config import ModelConfig, TrainConfig
from asr.errors import AsrError
from asr.runtime import import_tensorflow
from asr.trainstep import KERAS_VERSIONS, check_keras

tf = import_tensorflow()
import keras  # noqa: E402 - after the quiet TensorFlow import

from asr.model import build_model, build_training_model, compile_training_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_the_installed_keras_is_supported_and_has_the_private_hooks():
    check_keras()  # raises AsrError on a Keras this module was not tested on
    hook = inspect.signature(keras.Model._maybe_symbolic_build)
    assert list(hook.parameters) == ["self", "iterator", "data_batch"], \
        "Keras changed Model._maybe_symbolic_build: asr/trainstep.py's override needs updating"
    assert callable(tf.__internal__.distribute.strategy_supports_no_merge_call), \
        "TensorFlow moved strategy_supports_no_merge_call: asr/trainstep.py's _apply_if needs updating"


@pytest.mark.parametrize("version", ["3.14.2", "3.16.0", "4.0.0", "3.3", "nightly"])
def test_another_keras_is_refused_with_the_fix(version):
    fix = re.escape("pip install 'keras>=3.15,<3.16'")
    with pytest.raises(AsrError, match=rf"keras {re.escape(version)} is not supported.*{fix}"):
        check_keras(version)


@pytest.mark.parametrize("version", ["3.15.0", "3.15.1", "3.15.2.dev2026"])
def test_the_tested_versions_pass(version):
    check_keras(version)


def test_pyproject_bounds_are_the_tested_versions():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (keras_dep,) = [d for d in deps if re.match(r"keras\b", d)]
    (first, stop) = KERAS_VERSIONS
    assert keras_dep.replace(" ", "") == f"keras>={first[0]}.{first[1]},<{stop[0]}.{stop[1]}"


def test_the_logged_loss_is_the_mean_utterance_loss_and_resets():
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(conv_channels=8, conv_kernel=5, conv_stride=2, lstm_units=8, lstm_layers=1, dropout=0.0)
    model = build_model(cfg, 4, 7, np.zeros(4), np.ones(4))
    train_model = build_training_model(model)
    compile_training_model(train_model, TrainConfig(learning_rate=0.0, warmup_epochs=0.0), steps_per_epoch=10)
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(n, 4)).astype(np.float32) for n in (20, 12, 9)]
    batch = pad_batch(feats, [[1, 2, 3], [4, 4], [5]], 2, np.zeros(4, np.float32))
    per_utt = keras.ops.convert_to_numpy(train_model(batch, training=False))[:, 0]  # [B, 1] -> [B]
    logs = train_model.train_on_batch(batch, np.zeros(3, np.float32), return_dict=True)
    assert logs["skipped"] == 0.0
    np.testing.assert_allclose(logs["loss"], per_utt.mean(), rtol=1e-5)
    assert train_model.metrics == [train_model.loss_tracker]  # what fit resets each epoch
    train_model.reset_metrics()
    assert float(train_model.loss_tracker.count.numpy()) == 0.0
