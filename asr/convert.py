"""A bundle's model as a standalone `feats -> log_probs` function: SavedModel and TFLite conversion.

    python -c "from asr.bundle import load_bundle; from asr.convert import write_tflite; \
        b = load_bundle('exp/demo/bundle'); write_tflite(b, 'model.tflite')"

Used by `asr export` (any bundle, either format) and by `asr train`, which writes each new bundle's
`model.tflite` (what `asr transcribe` runs). Both formats take raw MFCC `feats float32 [B, T, n_mfcc]` (the
bundle's CMVN is inside the model) and return natural-log posteriors `log_probs float32 [B, ceil(T / conv_stride),
V]`, class 0 = blank, classes 1.. = `vocab.json`.

TFLite: the LSTM loops become a TFLite `WHILE`, whose tensor lists need a static batch, so the TFLite
model takes one utterance at a time (`B = 1`, any `T`). Variables are frozen into constants first;
without that the interpreter fails on READ_VARIABLE inside the loop. TensorFlow has no public API for that
freezing: `convert_variables_to_constants_v2` (tensorflow.python.framework, TF 2.16-2.21) is this project's one
use of a private TensorFlow module; tests/test_export.py fails loudly if it changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from asr.bundle import Bundle
from asr.ctc import LOG_FLOOR
from asr.files import atomic_dir, atomic_path

SIDECAR_FILES = ("config.yaml", "vocab.json", "stats.json")  # copied beside a SavedModel: it decodes alone


def log_probs_function(model: Any, batch: int | None) -> Any:
    """`tf.function` feats [batch, None, n_mfcc] -> log_probs [batch, None, V]."""
    import tensorflow as tf

    n_feats = int(model.input.shape[-1])

    @tf.function(input_signature=[tf.TensorSpec([batch, None, n_feats], tf.float32, name="feats")])
    def log_probs(feats: Any) -> Any:
        return tf.math.log(tf.maximum(model(feats, training=False), LOG_FLOOR))

    return log_probs


def write_savedmodel(bundle: Bundle, out: str | Path) -> Path:
    """Write a SavedModel with signature `serving_default(feats) -> {"log_probs"}` plus the bundle's sidecars."""
    import tensorflow as tf

    fn = log_probs_function(bundle.model, None)
    module = tf.Module()
    module.model = bundle.model  # tracked, so the variables are saved with the function
    module.log_probs = fn
    with atomic_dir(out) as tmp:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": fn.get_concrete_function()})
        for name in SIDECAR_FILES:
            shutil.copy(bundle.path / name, tmp / name)
    return Path(out)


def tflite_bytes(model: Any) -> bytes:
    """Convert the inference model to a TFLite flatbuffer: feats [1, T, n_mfcc] -> log_probs [1, T', V]."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = log_probs_function(model, 1).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen], model).convert()


def write_tflite(bundle: Bundle, out: str | Path) -> Path:
    """Write the TFLite model (atomically): what `asr transcribe --runtime litert` runs."""
    data = tflite_bytes(bundle.model)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return Path(out)
