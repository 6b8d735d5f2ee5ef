"""`asr train`: fit the BiLSTM-CTC model through the Lambda CTC layer; keep the best bundle by dev CER.

    asr train --config configs/demo.yaml --set train.epochs=3

Run directory (`train.out_dir`):

    config.yaml     the resolved configuration
    log.csv         one row per epoch: loss, dev_cer, dev_wer, lr, audio-seconds per second
    checkpoint/     last epoch: weights, optimizer state, epoch, best dev CER (atomic; `--resume` reads it)
    bundle/         best model so far by dev CER (atomic): what eval and transcribe load
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from asr.bundle import save_bundle
from asr.config import Config, config_to_dict, dump_yaml
from asr.data import BatchSource, PreparedData, to_tf_dataset
from asr.decoding import greedy_decode
from asr.errors import AsrError
from asr.files import atomic_dir, read_json, write_json, write_text
from asr.inference import Predictor
from asr.metrics import error_rates
from asr.model import build_model, build_training_model, compile_training_model, count_params

CHECKPOINT_DIR = "checkpoint"
BUNDLE_DIR = "bundle"


def score_split(predictor: Predictor, data: PreparedData, rows: list[dict]) -> dict:
    """Greedy-decode `rows` and return jiwer error rates (cer, wer, counts)."""
    probs = predictor([data.feats(r) for r in rows])
    hyps = [data.vocab.decode(greedy_decode(p)) for p in probs]
    return error_rates([r["text"] for r in rows], hyps)


def save_checkpoint(out_dir: Path, train_model: Any, state: dict) -> None:
    """Weights + optimizer variables + state.json, written as one atomic directory."""
    with atomic_dir(out_dir / CHECKPOINT_DIR) as tmp:
        train_model.save_weights(tmp / "model.weights.h5")
        opt_vars = {f"v{i:04d}": np.asarray(v) for i, v in enumerate(train_model.optimizer.variables)}
        np.savez(tmp / "optimizer.npz", **opt_vars)
        write_json(tmp / "state.json", state)


def load_checkpoint(out_dir: Path, train_model: Any) -> dict:
    """Restore weights and optimizer state into a compiled training model; return the saved state."""
    ckpt = out_dir / CHECKPOINT_DIR
    train_model.load_weights(ckpt / "model.weights.h5")
    train_model.optimizer.build(train_model.trainable_variables)
    saved = np.load(ckpt / "optimizer.npz")
    variables = train_model.optimizer.variables
    if len(saved.files) != len(variables):
        raise AsrError(f"{ckpt}: optimizer state does not match this config; train afresh without --resume")
    for i, var in enumerate(variables):
        var.assign(saved[f"v{i:04d}"])
    return read_json(ckpt / "state.json")


def _callbacks(cfg: Config, data: PreparedData, model: Any, source: BatchSource, state: dict, out: Path) -> list:
    """Epoch bookkeeping: data order, dev CER + best bundle + early stopping, checkpoint, CSV log."""
    import keras

    predictor = Predictor(model, cfg.model.conv_stride, data.stats["mean"], cfg.decode.batch_size)
    dev_rows = data.rows("dev") or data.rows("train")[: 200]  # no dev split: score on a train subset
    audio_seconds = sum(r["duration"] for r in source.rows)

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            source.epoch = epoch  # the generator reads this: data order is a function of (seed, epoch)
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            logs["audio_s_per_s"] = audio_seconds / (time.perf_counter() - self.t0)
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if not np.isfinite(logs.get("loss", 0.0)):
                raise AsrError(f"epoch {epoch + 1}: training loss is {logs['loss']}; lower train.learning_rate "
                               "or check the data with `asr prepare` (CTC-infeasible items are skipped there)")
            scores = score_split(predictor, data, dev_rows)
            logs["dev_cer"], logs["dev_wer"] = scores["cer"], scores["wer"]
            state["epoch"] = epoch + 1
            if scores["cer"] < state["best_cer"]:
                state.update(best_cer=scores["cer"], best_epoch=epoch + 1, wait=0)
                save_bundle(out / BUNDLE_DIR, model, data.features, data.text, cfg.model, data.vocab, data.stats,
                            {"data_dir": str(data.dir), "epoch": epoch + 1, "dev_cer": scores["cer"],
                             "dev_wer": scores["wer"]})
            else:
                state["wait"] += 1
            self.model.stop_training = state["wait"] >= cfg.train.patience
            save_checkpoint(out, self.model, state)

    csv = keras.callbacks.CSVLogger(str(out / "log.csv"), append=True)
    return [EpochEnd(), csv]


def _check_data(cfg: Config, data: PreparedData) -> None:
    """The data must have been checked for CTC feasibility at (at least) this model's subsampling."""
    if cfg.model.conv_stride > data.prepared_stride:
        raise AsrError(f"model.conv_stride {cfg.model.conv_stride} > {data.prepared_stride} used by `asr prepare` "
                       f"for {data.dir}: re-run prepare with this config so CTC-infeasible items are filtered")


def train(cfg: Config, resume: bool = False, verbose: int = 2) -> Path:
    """Train per `cfg`; returns the path of the best model bundle."""
    import keras

    data = PreparedData(cfg.train.data_dir)
    _check_data(cfg, data)
    out = Path(cfg.train.out_dir)
    if resume and not (out / CHECKPOINT_DIR / "state.json").is_file():
        raise AsrError(f"--resume: no checkpoint in {out / CHECKPOINT_DIR}; start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", dump_yaml(config_to_dict(cfg)))
    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_model(cfg.model, data.features.n_mfcc, data.vocab.size, data.stats["mean"], data.stats["std"])
    train_model = build_training_model(model)
    source = BatchSource(data, "train", cfg.train.batch_size, cfg.model.conv_stride, cfg.train.seed)
    compile_training_model(train_model, cfg.train, len(source))
    state = {"epoch": 0, "best_cer": float("inf"), "best_epoch": 0, "wait": 0}
    if resume:
        state = load_checkpoint(out, train_model)
    elif (out / "log.csv").exists():
        (out / "log.csv").unlink()  # a fresh run starts a fresh log
    print(f"model: {count_params(model):,} parameters; {len(source.rows)} train utterances, "
          f"{len(source)} batches/epoch; starting at epoch {state['epoch'] + 1}", flush=True)
    dataset = to_tf_dataset(source, data.features.n_mfcc)
    train_model.fit(dataset, epochs=cfg.train.epochs, initial_epoch=state["epoch"], verbose=verbose, shuffle=False,
                    callbacks=_callbacks(cfg, data, model, source, state, out))
    if not (out / BUNDLE_DIR).is_dir():
        raise AsrError(f"{out}: training ended without a bundle (no epoch finished)")
    return out / BUNDLE_DIR
