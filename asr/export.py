"""`asr export`: the bundle's model as a SavedModel or a TFLite file, `feats -> log_probs`; decoding stays outside.

    asr export exp/demo/bundle --format tflite         # -> exp/demo/bundle/model.tflite (used by transcribe)
    asr export exp/demo/bundle --format savedmodel     # -> exp/demo/bundle/savedmodel/

What the exported model takes and gives, and how it is converted: `asr.convert`. `max_difference` checks an
export against the bundle it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asr.bundle import Bundle
from asr.convert import write_savedmodel, write_tflite
from asr.ctc import LOG_FLOOR
from asr.errors import AsrError
from asr.inference import TFLITE_FILE, LiteRTPredictor

FORMATS = ("savedmodel", "tflite")


def default_output(bundle_dir: str | Path, fmt: str) -> Path:
    """Where `asr export` writes when `--out` is not given: inside the bundle."""
    return Path(bundle_dir) / (TFLITE_FILE if fmt == "tflite" else "savedmodel")


def export(bundle: Bundle, fmt: str, out: str | Path | None = None) -> Path:
    """Export `bundle` in `fmt` (savedmodel | tflite) to `out` (default: inside the bundle)."""
    if fmt not in FORMATS:
        raise AsrError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    target = Path(out) if out is not None else default_output(bundle.path, fmt)
    return write_tflite(bundle, target) if fmt == "tflite" else write_savedmodel(bundle, target)


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
