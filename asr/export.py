"""`asr export`: the bundle's model as a SavedModel or a TFLite file, `feats -> log_probs`; decoding stays outside.

    asr export exp/demo/bundle --format tflite         # -> exp/demo/bundle/model.tflite (used by transcribe)
    asr export exp/demo/bundle --format savedmodel     # -> exp/demo/bundle/savedmodel/

Both take raw MFCC `feats float32 [B, T, n_mfcc]` (the bundle's CMVN is inside the model; compute the
features as `asr.audio.compute_mfcc` does with the bundle's `features` config) and return natural-log
posteriors `log_probs float32 [B, ceil(T / conv_stride), V]`, class 0 = blank, classes 1.. = `vocab.json`.

TFLite: the LSTM loops become a TFLite `WHILE`, whose tensor lists need a static batch, so the TFLite
model takes one utterance at a time (`B = 1`, any `T`). Variables are frozen into constants first;
without that the interpreter fails on READ_VARIABLE inside the loop.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from asr.bundle import Bundle
from asr.errors import AsrError
from asr.files import atomic_dir, atomic_path
from asr.inference import TFLITE_FILE, LiteRTPredictor

FORMATS = ("savedmodel", "tflite")
LOG_FLOOR = 1e-30  # probabilities are floored before the log
SIDECAR_FILES = ("config.yaml", "vocab.json", "stats.json")  # copied beside a SavedModel: it decodes alone


def default_output(bundle_dir: str | Path, fmt: str) -> Path:
    """Where `asr export` writes when `--out` is not given: inside the bundle."""
    return Path(bundle_dir) / (TFLITE_FILE if fmt == "tflite" else "savedmodel")


def log_probs_function(model: Any, batch: int | None) -> Any:
    """`tf.function` feats [batch, None, n_mfcc] -> log_probs [batch, None, V]."""
    import tensorflow as tf

    n_feats = int(model.input.shape[-1])

    @tf.function(input_signature=[tf.TensorSpec([batch, None, n_feats], tf.float32, name="feats")])
    def log_probs(feats: Any) -> Any:
        return tf.math.log(tf.maximum(model(feats, training=False), LOG_FLOOR))

    return log_probs


def export_savedmodel(bundle: Bundle, out: str | Path) -> Path:
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


def export_tflite(bundle: Bundle, out: str | Path) -> Path:
    """Write the TFLite model (atomically): what `asr transcribe --runtime litert` runs."""
    data = tflite_bytes(bundle.model)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return Path(out)


def export(bundle: Bundle, fmt: str, out: str | Path | None = None) -> Path:
    """Export `bundle` in `fmt` (savedmodel | tflite) to `out` (default: inside the bundle)."""
    if fmt not in FORMATS:
        raise AsrError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    target = Path(out) if out is not None else default_output(bundle.path, fmt)
    return export_tflite(bundle, target) if fmt == "tflite" else export_savedmodel(bundle, target)


def exported_log_probs(path: str | Path, fmt: str, feats: np.ndarray) -> np.ndarray:
    """Run an exported model on one utterance: float32 [T, n_mfcc] -> log_probs [T', V]."""
    if fmt == "tflite":
        return LiteRTPredictor(path).log_probs(feats)
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return fn(feats=tf.constant(feats[None]))["output_0"].numpy()[0]


def max_difference(bundle: Bundle, path: str | Path, fmt: str, seconds: float = 3.0, seed: int = 0) -> float:
    """Largest |log p| difference between the export and the bundle on random MFCC-like features."""
    from asr.inference import Predictor

    rng = np.random.default_rng(seed)
    n_frames = int(seconds * bundle.features.sample_rate / bundle.features.hop_length)
    mean, std = np.asarray(bundle.stats["mean"]), np.asarray(bundle.stats["std"])
    feats = (mean + std * rng.standard_normal((n_frames, len(mean)))).astype(np.float32)  # [T, n_mfcc]
    ref = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"], 1)([feats])[0]
    got = exported_log_probs(path, fmt, feats)
    return float(np.max(np.abs(got - np.log(np.maximum(ref, LOG_FLOOR)))))
