"""Forward pass for many utterances: feature matrices -> per-frame probabilities, with TensorFlow or LiteRT.

    python -c "from asr.inference import Predictor"   # used by train (dev CER), eval, align and transcribe

Two runtimes with the same call, `predictor(list of feats [T_i, n_mfcc]) -> list of probs [ceil(T_i / s), V]`:

- `Predictor` (TensorFlow): length-sorted padded batches through one traced `tf.function` (traced once
  for every shape; `model.predict` would rebuild its graph per call). Fastest in steady state.
- `LiteRTPredictor`: the bundle's `model.tflite` (written by `asr export BUNDLE --format tflite`) in the
  LiteRT interpreter (`ai-edge-litert`), which loads in ~0.1 s instead of TensorFlow's ~5 s import. One
  utterance per call (the LSTM loop exports only with a fixed batch of 1); slower per second of audio.

`choose_runtime` picks LiteRT whenever it can, TensorFlow otherwise: whatever else a job holds, a file is always
run on the same runtime, so it gets the same text (the two differ slightly), and memory stays ~130 MB, not ~1 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asr.batch import output_lengths, pad_features
from asr.errors import AsrError, first_line
from asr.runtime import silenced_stderr_fd

TFLITE_FILE = "model.tflite"  # in the bundle directory; `asr export --format tflite` writes it
RUNTIMES = ("auto", "tf", "litert")


class Predictor:
    """Runs an inference model on lists of feature matrices; returns per-utterance `probs [T'_i, V]`."""

    def __init__(self, model: Any, stride: int, pad_value: Sequence[float], batch_size: int = 16):
        import tensorflow as tf

        self.stride, self.batch_size = stride, batch_size
        self.pad_value = np.asarray(pad_value, dtype=np.float32)
        n_feats = int(model.input.shape[-1])
        # One trace for every batch shape (None dims); model.predict would rebuild per call.
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                    input_signature=[tf.TensorSpec([None, None, n_feats], tf.float32)])

    def __call__(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`feats`: list of float32 [T_i, n_mfcc] -> list of float32 probs [ceil(T_i / stride), V]."""
        order = np.argsort([len(f) for f in feats], kind="stable")  # similar lengths share a batch
        out: list[np.ndarray] = [np.empty(0)] * len(feats)
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size]
            probs = self._forward(pad_features([feats[i] for i in idx], self.pad_value)).numpy()  # [B, T', V]
            for b, i in enumerate(idx):
                out[i] = probs[b, : int(output_lengths(len(feats[i]), self.stride))]
        return out


class LiteRTPredictor:
    """Same call as `Predictor`, running an exported `model.tflite` (feats -> log-probs) in LiteRT."""

    def __init__(self, tflite_path: str | Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(tflite_path), num_threads=num_threads)
        except (ValueError, RuntimeError) as err:  # truncated or damaged: LiteRT checks the flatbuffer here
            raise AsrError(f"{tflite_path}: not a valid TFLite model ({first_line(err)}); write it again with "
                           f"`asr export {Path(tflite_path).parent} --format tflite`") from None
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._shape: tuple[int, ...] = ()

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """float32 [T, n_mfcc] -> float32 log-probabilities [ceil(T / stride), V]."""
        shape = (1, *feats.shape)
        if shape != self._shape:  # re-planning memory costs ~1 ms; skip it when the length repeats
            self.interpreter.resize_tensor_input(self._input, shape)
            with silenced_stderr_fd():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter.allocate_tensors()
            self._shape = shape
        self.interpreter.set_tensor(self._input, np.ascontiguousarray(feats, dtype=np.float32)[None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)[0]

    def __call__(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`feats`: list of float32 [T_i, n_mfcc] -> list of float32 probs [ceil(T_i / stride), V]."""
        return [np.exp(self.log_probs(f)) for f in feats]


def litert_available() -> bool:
    """True when the LiteRT interpreter (`pip install ai-edge-litert`) can be imported."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def choose_runtime(runtime: str, bundle_dir: str | Path) -> str:
    """Resolve `auto` to `litert` (bundle has model.tflite, LiteRT installed) or `tf`; check the rest.

    Never by the size of the job: the same file must give the same text whatever else is transcribed with it.
    """
    if runtime not in RUNTIMES:
        raise AsrError(f"--runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    has_tflite = (Path(bundle_dir) / TFLITE_FILE).is_file()
    if runtime == "litert":
        if not has_tflite:
            raise AsrError(f"{bundle_dir}/{TFLITE_FILE} not found: run `asr export {bundle_dir} --format tflite`")
        if not litert_available():
            raise AsrError("--runtime litert needs the LiteRT interpreter: pip install ai-edge-litert")
        return "litert"
    if runtime == "auto":
        return "litert" if has_tflite and litert_available() else "tf"
    return runtime
