"""`asr train`: fit the BiLSTM-CTC model through the Lambda CTC layer; keep the best bundle by dev CER.

    asr train --config configs/demo.yaml --set train.epochs=3
    asr train --config configs/demo.yaml --resume     # after a crash or `kill -9`: continue where it stopped

Run directory (`train.out_dir`; under `train.strategy=multi_worker` only worker 0 writes it):

    config.yaml     the resolved configuration
    log.csv         one row per epoch: loss, dev_cer, dev_wer, lr, audio_s_per_s, skipped, seconds,
                    resumed_at_batch (not 0: a mid-epoch --resume; that row covers the batches from there on)
    curves.png      train loss and dev CER per epoch (asr/runlog.py)
    tensorboard/    the same scalars for `tensorboard --logdir OUT/tensorboard`
    checkpoint/     weights, optimizer state, progress, every epoch and every `train.checkpoint_minutes`
                    (asr/checkpoint.py): `--resume` loses at most that much work
    bundle/         best model so far by dev CER (atomic): what eval and transcribe load
    select/         with `train.refit`: the run on train alone whose best epoch by dev CER sets how many epochs
                    the final model trains on train + dev (a run directory like this one)
    soup/0, soup/1  with `train.soup` N > 1: the N runs (seeds seed, seed+1, ...) whose averaged weights are
                    bundle/ (run directories like this one; this one then holds no checkpoint/ or log.csv)
    .lock           held while `asr train` runs (asr/lock.py): a second run into the same folder is refused

`train.refit` (the fine-tuning preset's choice): with minutes of speech, a tenth held out to choose the epoch
is a tenth less to learn from. So the run first trains on train alone into `select/`, choosing the epoch by dev
CER as any run does; then it trains again from the same start on train + dev for that many epochs (the learning
rate schedule ending there) and keeps the last epoch. Nothing is selected on data the model trained on; the
bundle's `train.json` gives the dev CER of the selection run, which is the estimate for the final model.

`train.soup` (also the fine-tuning preset's): runs from the same start that differ only in their seed (data
order, augmentation, dropout) land near each other, and the average of their weights (a "model soup",
Wortsman et al. 2022) is better than each: on one real speaker's dev parts, 2 runs gave 7.24 % CER against 7.44
and 7.54 % for the runs alone (recipes/adapt/README.md). With `train.refit` the refit is trained N times; without,
each run keeps its best epoch by dev CER and the soup is scored on dev for `train.json`.

A folder that holds a checkpoint or a bundle is continued with `--resume`, replaced with `--overwrite`
(which deletes them and the logs first), and otherwise refused: one run never mixes into another.

The data order is a function of (seed, epoch) (asr/data.py), so a resumed run draws the same batches as
an uninterrupted one, from the batch after its checkpoint. A batch whose loss is not finite is skipped by
the train step (asr/model.py) and reported here; more than `train.max_skipped_batches` in one epoch stop
training. Speed is measured by `scripts/bench_train.py` (audio-seconds per wall-second).
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asr.augment import Augmentation
from asr.bundle import MODEL_FILE, save_bundle
from asr.checkpoint import CHECKPOINT_DIR, load_checkpoint, recover_dir, save_checkpoint
from asr.config import (
    SHAPE_KEYS,
    Config,
    FeatureConfig,
    TextConfig,
    config_to_dict,
    differences,
    dump_yaml,
    read_yaml,
)
from asr.data import BatchSource, PreparedData, make_dataset
from asr.decoding import Decoder
from asr.distribute import Cluster, any_worker, distribute_dataset, is_chief, make_cluster
from asr.errors import AsrError
from asr.files import read_json, remove, write_text
from asr.finetune import Parent, check_architecture, check_data, init_weights, layer_weights, read_parent
from asr.inference import TFLITE_FILE, Predictor
from asr.lock import lock_dir
from asr.metrics import error_rates
from asr.model import (
    build_model,
    build_training_model,
    compile_training_model,
    count_params,
    freeze_layers,
    weight_layers,
)
from asr.runlog import LOG_FILE, PLOT_FILE, TENSORBOARD_DIR, RunLog, read_history
from asr.runtime import available_cores, native_bfloat16

BUNDLE_DIR = "bundle"
SELECT_DIR = "select"  # train.refit: the run on train alone that chooses the epoch count
SOUP_DIR = "soup"  # train.soup > 1: the runs whose weights are averaged into the bundle
__all__ = ["train", "score_split", "read_history", "intra_op_threads", "training_precision",
           "bilstm_products"]


@dataclass
class Run:
    """Everything one training run works with."""

    cfg: Config
    data: PreparedData
    out: Path
    cluster: Cluster
    model: Any  # inference model (feats -> probs)
    train_model: Any  # the same layers + Lambda CTC
    source: BatchSource
    state: dict  # what checkpoint/state.json holds
    history: list[dict]  # rows of log.csv
    dev_rows: list[dict]  # what selects the best model: the dev split, or train rows held out from training
    parent: Parent | None  # fine-tuning: the bundle the weights started from
    refit: dict | None = None  # train.refit's second run (train + dev, no selection): the selection it follows


def score_split(predictor: Predictor, data: PreparedData, rows: list[dict]) -> dict:
    """Greedy-decode `rows` and return jiwer error rates (cer, wer, counts)."""
    probs = predictor([data.feats(r) for r in rows])
    decoder = Decoder(data.vocab.chars)  # greedy
    hyps = [decoder.text(p) for p in probs]
    return error_rates([r["text"] for r in rows], hyps)


def training_precision(setting: bool | str) -> str:
    """`train.mixed_precision` resolved for this machine:

    - "mixed_float16" (Keras' policy: float16 compute; float32 weights, softmax and loss) when true, or when
      auto and TensorFlow sees a GPU (cuDNN's LSTM);
    - "bfloat16" when auto on a CPU that multiplies bfloat16 natively (`asr.runtime.native_bfloat16`): the
      BiLSTMs' matrix products take bfloat16 operands in the CPU train step (`asr.lstm`), all else is float32.
      The bench step ~1.3x faster, the demo's dev and test CER the same within seeds (2026-12);
    - "float32" otherwise, and always when false.

    On a CPU float16 is no help: it made the BiLSTM stack 2.3x slower on the 2-core machine.
    """
    import tensorflow as tf

    if setting != "auto":
        return "mixed_float16" if setting else "float32"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "bfloat16" if native_bfloat16() else "float32"


def bilstm_products(precision: str) -> str:
    """The operand type of the CPU train step's BiLSTM products (`asr.lstm.PRODUCTS`) at a `training_precision`."""
    return "bfloat16" if precision == "bfloat16" else "float32"


def intra_op_threads(threads: int) -> int:
    """`train.threads`, with 0 (auto) resolved to half the usable cores, at least 1.

    Measured on 2 cores (scripts/bench_train.py --ladder): one thread per op trains ~1.6x faster than
    TensorFlow's default of one per core. The per-time-step LSTM ops are too small to split, and with one
    thread each, the forward and backward directions (and other independent ops) run side by side on
    TensorFlow's inter-op threads instead of queueing for one shared pool.
    """
    if threads > 0:
        return threads
    return max(1, available_cores() // 2)


def _set_threads(threads: int) -> None:
    """Size TensorFlow's intra-op thread pool; only possible before TensorFlow starts its runtime."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads(threads))
    except RuntimeError:  # TensorFlow already runs in this process (a notebook, a test): keep its setting
        if threads > 0:
            print("warning: train.threads ignored: TensorFlow already started in this process", file=sys.stderr)


def _check_data(cfg: Config, data: PreparedData) -> None:
    """The data must have been checked for CTC feasibility at (at least) this model's subsampling, and a
    `features` or `text` section the config sets must be the one the data was prepared with: training takes
    both from the data, so a different one would be silently ignored."""
    if cfg.model.conv_stride > data.prepared_stride:
        raise AsrError(f"model.conv_stride {cfg.model.conv_stride} > {data.prepared_stride} used by `asr prepare` "
                       f"for {data.dir}: re-run prepare with this config so CTC-infeasible items are filtered")
    for name, ours, theirs, default in (("features", cfg.features, data.features, FeatureConfig()),
                                        ("text", cfg.text, data.text, TextConfig())):
        if ours not in (theirs, default):
            diff = ", ".join(f"{name}.{k} {a!r} (data: {b!r})" for k, a, b in differences(ours, theirs))
            raise AsrError(f"the config's {name} section differs from the one {data.dir} was prepared with: {diff}; "
                           f"training takes it from the data: prepare again with this config, or drop the section")


def split_dev(data: PreparedData) -> tuple[list[dict], list[dict]]:
    """(train rows, dev rows). Without a dev split every 10th train utterance is held out (at least one), so the
    model is never selected on what it trained on."""
    train, dev = data.rows("train"), data.rows("dev")
    if dev or len(train) < 2:
        return train, dev
    held = set(range(0, len(train), HOLD_OUT_EVERY))
    print(f"warning: {data.dir} has no dev split: {len(held)} of {len(train)} train utterances are held out to "
          "select the model (prepare with prepare.dev_fraction > 0 to choose them)", file=sys.stderr, flush=True)
    return [r for i, r in enumerate(train) if i not in held], [r for i, r in enumerate(train) if i in held]


HOLD_OUT_EVERY = 10  # without a dev split, every 10th train utterance selects the model instead


def _setup(cfg: Config, data: PreparedData, rows: tuple[list[dict], list[dict]], out: Path, cluster: Cluster,
           resume: bool, parent: Parent | None, refit: dict | None) -> Run:
    """Build and compile the models under the strategy for (train, dev) `rows` (`refit`: on both, no dev); start
    from the parent bundle, or from the checkpoint when resuming."""
    import keras

    keras.utils.set_random_seed(cfg.train.seed)
    precision = training_precision(cfg.train.mixed_precision)
    keras.mixed_precision.set_global_policy("mixed_float16" if precision == "mixed_float16" else "float32")
    train_rows, dev_rows = (rows[0] + rows[1], []) if refit is not None else rows
    source = BatchSource(data, "train", cfg.train.batch_size, cfg.model.conv_stride, cfg.train.seed,
                         Augmentation.from_config(cfg.train, data.features), min_batch=cluster.num_replicas,
                         rows=train_rows)
    if len(source.rows) < cluster.num_replicas:
        raise AsrError(f"{data.dir}: {len(source.rows)} train utterances for {cluster.num_replicas} replicas")
    order = {"seed": cfg.train.seed, "batch_size": cfg.train.batch_size, "n_train": len(source.rows),
             "steps_per_epoch": len(source)}
    state = {**order, "epoch": 0, "batch": 0, "best_cer": float("inf"), "best_epoch": 0, "wait": 0}
    start = _parent_weights(parent) if parent is not None and not resume else None
    with cluster.strategy.scope():
        model = build_model(cfg.model, data.features.n_mfcc, data.vocab.size, data.stats["mean"], data.stats["std"])
        if start is not None:
            init_weights(model, start, cfg.train.reset_output)
        freeze_layers(model, cfg.train.freeze)
        train_model = build_training_model(model, products=bilstm_products(precision))
        compile_training_model(train_model, cfg.train, len(source))
        if resume:
            state.update(load_checkpoint(out, train_model, order))
    history = [h for h in read_history(out / LOG_FILE) if int(h["epoch"]) <= state["epoch"]] if resume else []
    return Run(cfg, data, out, cluster, model, train_model, source, state, history, dev_rows, parent, refit)


def _parent_weights(parent: Parent) -> dict[str, list]:
    """The parent bundle's weights per layer, read outside any distribution strategy."""
    from asr.bundle import load_bundle

    return layer_weights(load_bundle(parent.path).model)


def _bundle_model(run: Run) -> Any:
    """The model to save in a bundle: float32 layers even when training used mixed precision."""
    import keras

    policy = keras.mixed_precision.global_policy()
    if policy.name == "float32":
        return run.model
    keras.mixed_precision.set_global_policy("float32")
    try:
        d = run.data
        model = build_model(run.cfg.model, d.features.n_mfcc, d.vocab.size, d.stats["mean"], d.stats["std"])
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model.set_weights(run.model.get_weights())
    return model


def _save_bundle(run: Run, epoch: int, scores: dict) -> None:
    """Write the bundle of `epoch`, its `train.json` giving the dev `scores` (cer, wer) that chose it."""
    d = run.data
    info = {"data_dir": str(d.dir), "epoch": epoch, "dev_cer": scores["cer"], "dev_wer": scores["wer"],
            "precision": _precision_name(run), "data": data_info(d, run.source.rows)}
    if run.refit is not None:
        info["refit"] = run.refit
    if run.parent is not None:
        info["parent"] = run.parent.info()
    save_bundle(run.out / BUNDLE_DIR, _bundle_model(run), d.features, d.text, run.cfg.model, d.vocab, d.stats, info)


def data_info(data: PreparedData, rows: list[dict]) -> dict:
    """Provenance of the training data: where, how much, and a hash of its train manifest."""
    import hashlib

    manifest = (data.dir / "train.jsonl").read_bytes()
    return {"dir": str(data.dir.resolve()), "train_utterances": len(rows),
            "train_hours": round(sum(r["duration"] for r in rows) / 3600, 4),
            "train_manifest_sha256": hashlib.sha256(manifest).hexdigest()}


class EpochBook:
    """The bookkeeping of a run, called from Keras' `fit` (see `_callback`): throughput, skipped batches and
    mid-epoch checkpoints per batch; dev CER, best bundle, early stopping, checkpoint and logs per epoch."""

    def __init__(self, run: Run):
        cfg, data = run.cfg, run.data
        self.run, self.chief = run, run.cluster.is_chief
        self.predictor = Predictor(run.model, cfg.model.conv_stride, data.stats["mean"], cfg.decode.batch_size)
        self.dev_rows = run.dev_rows
        self.log = RunLog(run.out, run.history, cfg.train.tensorboard) if self.chief else None
        self.offset = 0  # batches of the first epoch done before this `fit` started (mid-epoch resume)
        self.stopped = False

    def epoch_begin(self, epoch: int) -> None:
        self.epoch, self.batches = epoch, self.run.source.epoch_batches(epoch)
        self.t0 = self.last_save = time.perf_counter()
        self.audio, self.skipped = 0.0, 0

    def batch_end(self, batch: int, logs: dict, train_model: Any) -> None:
        """After step `batch` of this `fit`'s epoch: logs gain `audio_s_per_s` and lose the step's `skipped`."""
        b, rows = self.offset + batch, self.run.source.rows
        self.audio += sum(rows[i]["duration"] for i in self.batches[b])
        if logs.pop("skipped", 0.0) > 0:
            self._skip(b)
        now = time.perf_counter()
        logs["audio_s_per_s"] = self.audio / max(now - self.t0, 1e-9)
        minutes = self.run.cfg.train.checkpoint_minutes
        if self.chief and minutes > 0 and now - self.last_save > 60 * minutes and b + 1 < len(self.batches):
            self.run.state["batch"] = b + 1
            save_checkpoint(self.run.out, train_model, self.run.state)
            self.last_save = time.perf_counter()

    def _skip(self, b: int) -> None:
        """Report the skipped batch `b`; stop training when an epoch has too many."""
        self.skipped += 1
        limit, n = self.run.cfg.train.max_skipped_batches, len(self.batches)
        ids = [self.run.source.rows[i]["id"] for i in self.batches[b]]
        if self.chief:
            print(f"warning: epoch {self.epoch + 1} batch {b + 1}/{n}: non-finite loss, batch skipped (weights "
                  f"unchanged); utterances: {' '.join(ids[:8])}{' ...' if len(ids) > 8 else ''}", file=sys.stderr,
                  flush=True)
        if self.skipped > limit:
            raise AsrError(f"epoch {self.epoch + 1}: {self.skipped} batches with a non-finite loss (more than "
                           f"train.max_skipped_batches={limit}); lower train.learning_rate or check the data, "
                           "then continue with --resume")

    def epoch_end(self, epoch: int, logs: dict, train_model: Any) -> bool:
        """Score dev, keep the best bundle, checkpoint, log; returns True to stop training."""
        import keras

        seconds = time.perf_counter() - self.t0
        logs.update(audio_s_per_s=self.audio / seconds, skipped=self.skipped, seconds=seconds,
                    lr=float(keras.ops.convert_to_numpy(train_model.optimizer.learning_rate)))
        resumed_at = self.offset  # for log.csv only: the progress line need not show it
        state, refit = self.run.state, self.run.refit
        state.update(epoch=epoch + 1, batch=0)
        if refit is not None:  # trained on dev too: nothing to select on; the last epoch is the model
            if self.chief and epoch + 1 == self.run.cfg.train.epochs:
                _save_bundle(self.run, epoch + 1, {"cer": refit["dev_cer"], "wer": refit["dev_wer"]})
        else:
            scores = score_split(self.predictor, self.run.data, self.dev_rows)
            logs["dev_cer"], logs["dev_wer"] = scores["cer"], scores["wer"]
            if scores["cer"] < state["best_cer"]:
                state.update(best_cer=scores["cer"], best_epoch=epoch + 1, wait=0)
                if self.chief:
                    _save_bundle(self.run, epoch + 1, scores)
            else:
                state["wait"] += 1
        self.stopped = any_worker(self.run.cluster, state["wait"] >= self.run.cfg.train.patience)
        self.offset = 0
        if self.chief and self.log is not None:
            # The log row first: a kill between the two leaves a row that the checkpoint has not reached, which
            # --resume drops and writes again; the other order would lose the row for good.
            self.log.add({"epoch": epoch + 1, "loss": logs.get("loss", float("nan")), **logs,
                          "resumed_at_batch": resumed_at})
            save_checkpoint(self.run.out, train_model, state)
        return self.stopped

    def train_end(self) -> None:
        if self.log is not None:
            self.log.plot()


def _callback(book: EpochBook, stop: int) -> Any:
    """A Keras callback that hands `fit`'s events to `book` (Keras passes one `logs` dict to all callbacks,
    and the progress bar comes last, so what `book` adds to it is shown and logged)."""
    import keras

    class Callback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            book.epoch_begin(epoch)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            book.batch_end(batch, logs if logs is not None else {}, self.model)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            stopped = book.epoch_end(epoch, logs if logs is not None else {}, self.model)
            self.model.stop_training = stopped or epoch + 1 >= stop

        def on_train_end(self, logs: dict | None = None) -> None:
            book.train_end()

    return Callback()


def _fit(run: Run, verbose: int) -> None:
    """Train from the checkpointed (epoch, batch) to `train.epochs`, or until early stopping."""
    epoch, batch, last = run.state["epoch"], run.state["batch"], run.cfg.train.epochs
    if run.state["wait"] >= run.cfg.train.patience:
        print(f"nothing to do: early stopping ended this run after epoch {epoch}", flush=True)
        return
    book = EpochBook(run)
    if batch and epoch < last:  # killed mid-epoch: finish that epoch alone (it has fewer steps left)
        _fit_epochs(run, book, range(epoch, epoch + 1), batch, verbose)
        epoch += 1
    if epoch < last and not book.stopped:
        _fit_epochs(run, book, range(epoch, last), 0, verbose)


def _fit_epochs(run: Run, book: EpochBook, epochs: range, start_batch: int, verbose: int) -> None:
    """One `model.fit` over `epochs`, the first one starting at batch `start_batch` of its data order."""
    n_feats = run.data.features.n_mfcc
    dataset = distribute_dataset(run.cluster, lambda parts, ids: make_dataset(
        run.source, n_feats, epochs, start_batch, parts, ids))
    book.offset = start_batch
    # epochs= the run's total, so the progress line says "Epoch 3/5", not "3/3", for a lone resumed epoch;
    # the callback stops `fit` after `epochs.stop`.
    run.train_model.fit(dataset, epochs=run.cfg.train.epochs, initial_epoch=epochs.start, verbose=verbose,
                        shuffle=False, steps_per_epoch=len(run.source) - start_batch,
                        callbacks=[_callback(book, epochs.stop)])


def _summary(run: Run) -> str:
    import tensorflow as tf

    s, c = run.state, run.cluster
    where = f"epoch {s['epoch'] + 1}" + (f", batch {s['batch'] + 1}" if s["batch"] else "")
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    start = f"fine-tuning {run.parent.name}" if run.parent is not None else "random weights"
    frozen = f" (frozen: {run.cfg.train.freeze})" if run.cfg.train.freeze else ""
    layers = ", ".join(weight_layers(run.model))
    rows = (f"{len(run.source.rows)} train + dev utterances, {run.cfg.train.epochs} epochs (refit: the best epoch "
            f"count of {run.refit['selected_by']})" if run.refit is not None
            else f"{len(run.source.rows)} train utterances, {len(run.dev_rows)} dev")
    return (f"model: {count_params(run.model):,} trainable parameters, {start}; layers {layers}{frozen}; "
            f"{rows}; {len(run.source)} "
            f"batches/epoch; strategy {c.name} ({c.num_replicas} replicas, {c.num_workers} workers); "
            f"{_precision_name(run)}; {threads} intra-op threads; starting at {where}")


def _precision_name(run: Run) -> str:
    """The precision the train step computes in, as the summary line names it."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    if run.train_model.products != "float32":
        return f"{policy} with {run.train_model.products} BiLSTM products"
    return policy


def train(cfg: Config, resume: bool = False, verbose: int = 2, overwrite: bool = False) -> Path:
    """Train per `cfg` (from the last checkpoint in `train.out_dir` if `resume`); returns the best bundle's path.

    The run directory is locked while training (asr/lock.py). One that holds a previous run's results is
    continued with `resume`, replaced with `overwrite`, and refused otherwise. With `train.init`, the run
    fine-tunes that bundle (asr/finetune.py): data and model section must fit it.
    """
    parent = read_parent(cfg.train.init) if cfg.train.init else None
    if parent is not None:
        check_architecture(cfg.model, parent)
    data = PreparedData(cfg.train.data_dir, stats=parent.stats if parent else None)
    if parent is not None:
        check_data(parent, data)  # before TensorFlow starts: a mismatch costs no time
    _check_data(cfg, data)
    out = Path(cfg.train.out_dir)
    chief = is_chief(cfg.train.strategy)  # only the chief writes the run directory, so only it locks it
    with lock_dir(out, "asr train") if chief else contextlib.nullcontext():
        _check_out_dir(out, cfg, resume, overwrite)
        if chief and overwrite:
            _clear_run(out)
        elif chief:  # before the other workers (if any) can read the checkpoint
            for run_dir in _run_dirs(out):
                for name in RESULTS:
                    recover_dir(run_dir / name)
        return _train(cfg, data, parent, out, resume, verbose)


# What a run leaves: a new run continues (--resume) or replaces them only
RESULTS = (CHECKPOINT_DIR, BUNDLE_DIR, SELECT_DIR, SOUP_DIR)
RUN_FILES = (*RESULTS, LOG_FILE, PLOT_FILE, TENSORBOARD_DIR)  # what --overwrite deletes (config.yaml is rewritten)


def _results(out: Path) -> list[str]:
    """The RESULTS in run directory `out`, also as `.NAME.old` (a kill inside an atomic write); it is not changed."""
    return [name for name in RESULTS if (out / name).exists() or (out / f".{name}.old").exists()]


def _run_dirs(out: Path) -> list[Path]:
    """Run directory `out` and the runs inside it: select/ (train.refit) and soup/N (train.soup)."""
    soup = sorted((out / SOUP_DIR).iterdir()) if (out / SOUP_DIR).is_dir() else []
    return [out, out / SELECT_DIR, *soup]


def _check_out_dir(out: Path, cfg: Config, resume: bool, overwrite: bool) -> None:
    """AsrError unless `out` is new, holds no results, or the run is asked to continue or replace them."""
    if resume and overwrite:
        raise AsrError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    found, selected = _results(out), _results(out / SELECT_DIR)
    if resume and not any(CHECKPOINT_DIR in _results(run_dir) for run_dir in _run_dirs(out)):
        hint = "train afresh with --overwrite" if found else "start without --resume"
        raise AsrError(f"--resume: no checkpoint in {out}; {hint}")
    if resume and cfg.train.refit and CHECKPOINT_DIR in found and CHECKPOINT_DIR not in selected:
        raise AsrError(f"--resume: {out} holds a run without train.refit (no {SELECT_DIR}/ run); continue it with "
                       "--set train.refit=false, or train afresh with --overwrite")
    if resume and not cfg.train.refit and CHECKPOINT_DIR in selected and not {CHECKPOINT_DIR, SOUP_DIR} & set(found):
        raise AsrError(f"--resume: {out} holds a run with train.refit (only {SELECT_DIR}/ has a checkpoint); continue "
                       "it with --set train.refit=true, or train afresh with --overwrite")
    souped = cfg.train.soup > 1
    if resume and (CHECKPOINT_DIR in found if souped else SOUP_DIR in found):  # a soup's runs are in soup/N
        path = out / "config.yaml"
        was = read_yaml(path).get("train", {}).get("soup", "N") if path.is_file() else "N"  # N: as it started
        held = f"without train.soup (no {SOUP_DIR}/)" if souped else f"with train.soup ({SOUP_DIR}/)"
        raise AsrError(f"--resume: {out} holds a run {held}; continue it with --set train.soup="
                       f"{1 if souped else was}, or train afresh with --overwrite")
    if resume:
        _check_resumed_model(out, cfg)
    elif found and not overwrite:
        raise AsrError(f"{out} already holds a run ({', '.join(f'{name}/' for name in found)}): continue it with "
                       "--resume, replace it with --overwrite, or choose another --out")


def _check_resumed_model(out: Path, cfg: Config) -> None:
    """--resume needs the model the checkpoint holds: compared with the run's config.yaml before TensorFlow
    starts (`load_checkpoint` refuses other weight shapes too, with less detail)."""
    path = out / "config.yaml"
    saved = read_yaml(path).get("model", {}) if path.is_file() else {}
    changed = [f"model.{key} is {getattr(cfg.model, key)}, the run's is {saved[key]}" for key in SHAPE_KEYS
               if key in saved and saved[key] != getattr(cfg.model, key)]
    if changed:
        raise AsrError(f"--resume: the checkpoint in {out} does not match this config ({'; '.join(changed)}, in "
                       f"{path}); resume with the run's model settings, or train afresh with --overwrite")


def _clear_run(out: Path) -> None:
    """--overwrite: delete the previous run's RUN_FILES, with what interrupted atomic writes left of them."""
    for name in RUN_FILES:
        for path in [out / name, out / f".{name}.old", *out.glob(f".{name}.*.tmp")]:
            remove(path)


def _train(cfg: Config, data: PreparedData, parent: Parent | None, out: Path, resume: bool, verbose: int) -> Path:
    """`train` once the run directory is checked (and locked): one run, or with `train.refit` the selection run
    into OUT/select and then the refit into OUT."""
    import keras

    from asr.runtime import import_tensorflow

    import_tensorflow()
    _set_threads(cfg.train.threads)  # before anything starts TensorFlow's runtime
    cluster = make_cluster(cfg.train.strategy)
    policy = keras.mixed_precision.global_policy()
    rows = split_dev(data)
    try:
        final, refit = cfg, None
        if cfg.train.refit:
            select = out / SELECT_DIR
            if cluster.is_chief:
                print(f"train.refit: a run on train chooses the epoch count by dev CER in {select}, then the model "
                      f"trains again on train + dev into {out}", flush=True)
            select_cfg = replace(cfg, train=replace(cfg.train, refit=False, soup=1, out_dir=str(select)))
            _run(select_cfg, select_cfg, data, rows, select, cluster, resume, parent, None, verbose)
            refit = _refit_info(select, len(rows[1]))
            final = replace(cfg, train=replace(cfg.train, epochs=refit["epochs"]))
        if cfg.train.soup == 1:
            _run(final, cfg, data, rows, out, cluster, resume, parent, refit, verbose)
        else:
            _soup(final, cfg, data, rows, out, cluster, resume, parent, refit, verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)  # the process may build other models afterwards
    if cluster.is_chief:
        _add_tflite(out / BUNDLE_DIR)
    return out / BUNDLE_DIR


def _run(cfg: Config, written: Config, data: PreparedData, rows: tuple[list[dict], list[dict]], out: Path,
         cluster: Cluster, resume: bool, parent: Parent | None, refit: dict | None, verbose: int) -> None:
    """Set up and fit one run into `out`, whose config.yaml is `written` (the user's config for a refit); with
    `resume`, from its checkpoint if it has one (the runs of a refit or soup that had not started yet start now)."""
    run = _setup(cfg, data, rows, out, cluster, resume and (out / CHECKPOINT_DIR).is_dir(), parent, refit)
    if cluster.is_chief:  # after the checkpoint loaded: a refused --resume leaves the run's config as it was
        write_text(out / "config.yaml", dump_yaml(config_to_dict(written)))
        print(_summary(run), flush=True)
    _fit(run, verbose if cluster.is_chief else 0)
    if cluster.is_chief and not (out / BUNDLE_DIR).is_dir():
        raise AsrError(f"{out}: training ended without a bundle (no epoch finished)")


def _soup(cfg: Config, written: Config, data: PreparedData, rows: tuple[list[dict], list[dict]], out: Path,
          cluster: Cluster, resume: bool, parent: Parent | None, refit: dict | None, verbose: int) -> None:
    """train.soup: `cfg` trained with seeds seed, seed+1, ... into OUT/soup/N; their weights averaged into the
    bundle, scored on dev (or, after a refit, with the selection run's dev scores). OUT/config.yaml is `written`
    (the user's config), kept as it is when resuming: it says what train.soup the run started with."""
    import numpy as np

    from asr.bundle import load_bundle

    runs = [out / SOUP_DIR / str(i) for i in range(cfg.train.soup)]
    if cluster.is_chief:
        print(f"train.soup: {len(runs)} runs (seeds {cfg.train.seed} to {cfg.train.seed + len(runs) - 1}) into "
              f"{out / SOUP_DIR}, their weights averaged into {out / BUNDLE_DIR}", flush=True)
        if not (resume and (out / "config.yaml").is_file()):
            write_text(out / "config.yaml", dump_yaml(config_to_dict(written)))
    for i, run_dir in enumerate(runs):
        seed_cfg = replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i, soup=1, out_dir=str(run_dir)))
        _run(seed_cfg, seed_cfg, data, rows, run_dir, cluster, resume, parent, refit, verbose)
    if not cluster.is_chief:
        return
    models = [load_bundle(run_dir / BUNDLE_DIR).model for run_dir in runs]
    soup = models[0]
    soup.set_weights([np.mean(layer, axis=0) for layer in zip(*(m.get_weights() for m in models))])
    if refit is not None:
        scores = {"cer": refit["dev_cer"], "wer": refit["dev_wer"]}
    else:
        predictor = Predictor(soup, cfg.model.conv_stride, data.stats["mean"], cfg.decode.batch_size)
        scores = score_split(predictor, data, rows[1])
    parts = [read_json(run_dir / BUNDLE_DIR / "train.json") for run_dir in runs]
    info = {**parts[0], "dev_cer": scores["cer"], "dev_wer": scores["wer"],
            "soup": [{"run": str(run_dir), "seed": cfg.train.seed + i, "epoch": part["epoch"],
                      **({"dev_cer": part["dev_cer"]} if refit is None else {})}  # a refit is not scored on dev
                     for i, (run_dir, part) in enumerate(zip(runs, parts))]}
    save_bundle(out / BUNDLE_DIR, soup, data.features, data.text, cfg.model, data.vocab, data.stats, info)
    if refit is None:
        alone = ", ".join(f"{100 * part['dev_cer']:.2f}" for part in parts)
        print(f"train.soup: dev CER {100 * scores['cer']:.2f} % with the averaged weights ({alone} % for the runs "
              "alone)", flush=True)
    else:
        print(f"train.soup: {len(runs)} refits averaged into {out / BUNDLE_DIR}", flush=True)


def _refit_info(select: Path, n_dev: int) -> dict:
    """What the refit follows: the selection run's best epoch and its dev scores (its bundle's train.json)."""
    chosen = read_json(select / BUNDLE_DIR / "train.json")  # every worker: the run directory is shared
    return {"selected_by": str(select / BUNDLE_DIR), "epochs": chosen["epoch"], "dev_cer": chosen["dev_cer"],
            "dev_wer": chosen["dev_wer"], "dev_utterances": n_dev}


def _add_tflite(bundle_dir: Path) -> None:
    """Write the bundle's `model.tflite`: `asr transcribe` starts in ~0.5 s with it instead of ~6 s (TF import)."""
    from asr.bundle import load_bundle
    from asr.convert import write_tflite

    target = bundle_dir / TFLITE_FILE
    if target.is_file() and target.stat().st_mtime >= (bundle_dir / MODEL_FILE).stat().st_mtime:
        return  # already exported from this model (a finished run resumed again)
    try:
        write_tflite(load_bundle(bundle_dir), target)
    except Exception as err:  # noqa: BLE001 - the bundle is complete without it; transcribe falls back to TF
        print(f"warning: no model.tflite written ({type(err).__name__}: {err}); transcribe will use TensorFlow; "
              f"retry with `asr export {bundle_dir} --format tflite`", flush=True)
