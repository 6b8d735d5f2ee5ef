"""Training checkpoints: weights, optimizer state and progress, written atomically for `asr train --resume`.

    asr train --config configs/demo.yaml --resume    # continues from OUT/checkpoint

    OUT/checkpoint/
      model.weights.h5   the training model's weights
      optimizer.npz      every optimizer variable (Adam moments, step count, loss scale), in order
      rng.npz            the dropout layers' random-generator states (so a resumed run draws the same masks)
      state.json         progress: epoch (finished), batch (finished in the next epoch), best dev CER (null
                         before the first dev score), ...

The directory is replaced as a whole (`asr.files.atomic_dir`), so a `kill -9` at any moment leaves either
the previous checkpoint or the new one. The one window in which neither is called `checkpoint` (between
the two renames) leaves the previous one as `.checkpoint.old`, which `recover_dir` puts back.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AsrError
from asr.files import atomic_dir, ensure_free_space, path_size, read_json, write_json

CHECKPOINT_DIR = "checkpoint"
# State keys that fix the data order and the step count: a resumed run must agree with them.
ORDER_KEYS = ("seed", "batch_size", "n_train", "steps_per_epoch")
# A checkpoint holds the weights and Adam's two moments per weight; a little more for HDF5 and npz headers.
CHECKPOINT_COPIES = 3.2


def weight_bytes(model: Any) -> int:
    """Bytes of `model`'s weights as stored (float32 and friends)."""
    return sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)


def recover_dir(path: Path) -> None:
    """Undo what a kill inside `atomic_dir(path)` can leave: put `.NAME.old` back, delete `.NAME.*.tmp`."""
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.is_dir():
        os.replace(old, path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def _rng_variables(model: Any) -> list[Any]:
    """The variables that `save_weights` skips: the random-generator states (a Keras `SeedGenerator` per dropout
    layer and per LSTM cell), in `model.variables` order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _save_arrays(path: Path, variables: list[Any]) -> None:
    arrays = {f"v{i:04d}": np.asarray(v) for i, v in enumerate(variables)}
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stubs mistake the arrays for allow_pickle


def _load_arrays(path: Path, variables: list[Any], what: str) -> None:
    with np.load(path) as saved:
        if len(saved.files) != len(variables):
            raise AsrError(f"{path}: {what} does not match this config; resume with the run's settings, or train "
                           "afresh with --overwrite")
        for i, var in enumerate(variables):
            var.assign(saved[f"v{i:04d}"])


def save_checkpoint(out_dir: Path, train_model: Any, state: dict) -> None:
    """Weights + optimizer variables + generator states + state.json, written as one atomic directory.

    The free space is checked first (AsrError when short): h5py can crash the process on a full disk.
    """
    path = out_dir / CHECKPOINT_DIR
    ensure_free_space(path, max(path_size(path), int(CHECKPOINT_COPIES * weight_bytes(train_model))))
    with atomic_dir(path) as tmp:
        train_model.save_weights(tmp / "model.weights.h5")
        _save_arrays(tmp / "optimizer.npz", train_model.optimizer.variables)
        _save_arrays(tmp / "rng.npz", _rng_variables(train_model))
        write_json(tmp / "state.json", _finite(state))


def _finite(state: dict) -> dict:
    """state.json is strict JSON: a best_cer of inf (no dev score yet) is written as null."""
    best = state.get("best_cer")
    return {**state, "best_cer": None} if isinstance(best, float) and not math.isfinite(best) else state


def _load_weights(train_model: Any, ckpt: Path) -> None:
    """The checkpoint's weights into `train_model`; AsrError when they do not fit (another model config)."""
    with warnings.catch_warnings(record=True) as caught:  # a refused checkpoint's warnings would bury the error
        warnings.simplefilter("always")
        try:
            train_model.load_weights(ckpt / "model.weights.h5")
        except ValueError:  # Keras lists every layer whose weights do not fit, over many lines
            raise AsrError(f"{ckpt}: the checkpoint does not match this config (its weights do not fit this model); "
                           "resume with the run's model settings, or train afresh with --overwrite") from None
    for w in caught:  # the optimizer is not built yet: its variables come from optimizer.npz, below
        if not str(w.message).startswith("Skipping variable loading for optimizer"):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def load_checkpoint(out_dir: Path, train_model: Any, expected: dict) -> dict:
    """Restore weights and optimizer state into a compiled training model; return the saved state.

    `expected` holds this run's ORDER_KEYS: a checkpoint written with another data order is refused.
    Call it inside the distribution strategy's scope (the optimizer creates its variables here).
    """
    ckpt = out_dir / CHECKPOINT_DIR
    if not (ckpt / "state.json").is_file():
        raise AsrError(f"{ckpt}: not a checkpoint (no state.json); train afresh with --overwrite")
    state = read_json(ckpt / "state.json")
    if state.get("best_cer") is None:  # written as null while inf (`_finite`); older checkpoints hold Infinity
        state["best_cer"] = float("inf")
    for key in ORDER_KEYS:
        if key in state and state[key] != expected[key]:
            raise AsrError(f"{ckpt}: {key} was {state[key]}, this run has {expected[key]}; --resume needs the same "
                           "train.seed, train.batch_size and data (or train afresh: --overwrite, or another --out)")
    _load_weights(train_model, ckpt)
    train_model.optimizer.build(train_model.trainable_variables)
    _load_arrays(ckpt / "optimizer.npz", train_model.optimizer.variables, "the optimizer state")
    if (ckpt / "rng.npz").is_file():
        _load_arrays(ckpt / "rng.npz", _rng_variables(train_model), "the dropout generator state")
    return state
