"""Training: resume after `kill -9`, the non-finite-loss guard, mixed precision, distribution, augmentation, logs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES

from asr.augment import Augmentation, augment, spec_augment, stretch_time
from asr.batch import pad_batch
from asr.config import ModelConfig, TrainConfig, load_config
from asr.data import BatchSource, PreparedData, make_batches
from asr.errors import AsrError
from asr.runtime import import_tensorflow
from asr.text import ctc_frames_needed

tf = import_tensorflow()
import keras  # noqa: E402 - after the quiet TensorFlow import

from asr.inference import Predictor  # noqa: E402
from asr.model import OUTPUT_LAYER, build_model, build_training_model, compile_training_model  # noqa: E402
from asr.train import read_history, score_split, train  # noqa: E402

N_FEATS = 20
EPOCHS = 3  # 32 train utterances, batch 8: 4 batches per epoch
RESUME_SETTINGS = (f"train.epochs={EPOCHS}", "train.patience=99", "model.dropout=0.2")  # dropout: RNG state too


def run_config(prepared: Path, out: Path, *overrides: str):
    """The tiny test config on `prepared`, writing to `out`."""
    return load_config(REPO / "configs" / "demo.yaml", [*TINY_OVERRIDES, f"train.data_dir={prepared}",
                                                        f"train.out_dir={out}", *overrides])


def cli_args(prepared: Path, out: Path, *overrides: str) -> list[str]:
    """`python -m asr train` with the same config as `run_config`."""
    sets = [a for o in (*TINY_OVERRIDES, *overrides) for a in ("--set", o)]
    return [sys.executable, "-m", "asr", "train", "--config", str(REPO / "configs" / "demo.yaml"),
            "--data", str(prepared), "--out", str(out), *sets]


def read_state(out: Path) -> dict | None:
    """checkpoint/state.json, or None while there is none (or it is being replaced)."""
    try:
        return json.loads((out / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def checkpoint_arrays(out: Path) -> dict[str, np.ndarray]:
    """Every array of a checkpoint: model weights (by HDF5 path) and optimizer variables (incl. step count)."""
    import h5py

    arrays: dict[str, np.ndarray] = {}
    with h5py.File(out / "checkpoint" / "model.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    for name in ("optimizer", "rng"):
        with np.load(out / "checkpoint" / f"{name}.npz") as saved:
            arrays.update({f"{name}/{k}": saved[k] for k in saved.files})
    return arrays


def kill_when(args: list[str], out: Path, ready, timeout: float = 240.0) -> dict:
    """Start `args`, SIGKILL it as soon as `ready(state.json)` holds; returns that state."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            state = read_state(out)
            if state is not None and ready(state):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return state
            time.sleep(0.005)
        pytest.fail(f"training ended (rc={proc.returncode}) before the kill: {proc.stderr.read().decode()[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.fixture(scope="module")
def reference_run(tiny_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of EPOCHS epochs: what every resumed run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    train(run_config(tiny_prepared, out, *RESUME_SETTINGS), verbose=0)
    return out


# --- resume after kill -9 ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid_epoch", "epoch_end"])
def test_resume_after_kill_matches_an_uninterrupted_run(where, reference_run, tiny_prepared, tmp_path, capsys):
    out = tmp_path / "run"
    common = RESUME_SETTINGS
    if where == "mid_epoch":  # checkpoint after every batch; kill once one was written inside an epoch
        args = cli_args(tiny_prepared, out, *common, "train.checkpoint_minutes=1e-9")
        killed = kill_when(args, out, lambda s: s["epoch"] >= 1 and s["batch"] >= 1)
    else:  # checkpoints at epoch ends only; kill during the second epoch
        args = cli_args(tiny_prepared, out, *common, "train.checkpoint_minutes=0")
        killed = kill_when(args, out, lambda s: s["epoch"] >= 1)
    assert killed["epoch"] < EPOCHS
    state = read_state(out)  # what --resume will read (a later checkpoint may have landed before the kill)
    assert state is not None and state["epoch"] < EPOCHS
    assert (state["batch"] >= 1) == (where == "mid_epoch")
    capsys.readouterr()
    train(run_config(tiny_prepared, out, *common), resume=True, verbose=2)
    where_text = f"starting at epoch {state['epoch'] + 1}" + (f", batch {state['batch'] + 1}" if state["batch"] else "")
    printed = capsys.readouterr().out
    assert where_text in printed
    assert f"Epoch {state['epoch'] + 1}/{EPOCHS}\n" in printed  # the run's total, also for a lone resumed epoch
    # Same weights, Adam moments and step count as the uninterrupted run: the resumed run restored the
    # optimizer state and drew exactly the batches (data order) the uninterrupted run drew.
    expected, got = checkpoint_arrays(reference_run), checkpoint_arrays(out)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert read_state(out)["epoch"] == EPOCHS
    assert [int(r["epoch"]) for r in read_history(out / "log.csv")] == list(range(1, EPOCHS + 1))
    resumed = {int(r["epoch"]): int(r["resumed_at_batch"]) for r in read_history(out / "log.csv")}
    assert resumed == {e: state["batch"] if e == state["epoch"] + 1 else 0 for e in range(1, EPOCHS + 1)}
    assert not list(out.glob(".*"))  # no temporaries left behind by the kill


def test_resume_refuses_another_data_order(reference_run, tiny_prepared, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    with pytest.raises(AsrError, match="batch_size"):
        train(run_config(tiny_prepared, out, "train.batch_size=4"), resume=True, verbose=0)
    with pytest.raises(AsrError, match="no checkpoint"):
        train(run_config(tiny_prepared, tmp_path / "empty"), resume=True, verbose=0)


def test_interrupted_checkpoint_write_is_recovered(reference_run, tiny_prepared, tmp_path):
    """A kill between atomic_dir's two renames leaves only `.NAME.old`: --resume puts it back."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    for name in ("checkpoint", "bundle"):
        (out / name).rename(out / f".{name}.old")
        (out / f".{name}.abc123.tmp").mkdir()  # a half-written new one
    train(run_config(tiny_prepared, out, *RESUME_SETTINGS, f"train.epochs={EPOCHS + 1}"), resume=True, verbose=0)
    assert read_state(out)["epoch"] == EPOCHS + 1
    assert (out / "bundle" / "model.keras").is_file()
    assert not list(out.glob(".*"))


def test_state_json_is_strict_json_before_the_first_dev_score(tmp_path):
    """A checkpoint written before any dev score (mid first epoch) has best_cer inf: stored as null."""
    from asr.checkpoint import load_checkpoint, save_checkpoint

    keras.utils.set_random_seed(0)
    _, train_model = small_training_model()
    train_model.optimizer.build(train_model.trainable_variables)
    state = {"seed": 0, "batch_size": 8, "n_train": 3, "steps_per_epoch": 1, "epoch": 0, "batch": 1,
             "best_cer": float("inf"), "best_epoch": 0, "wait": 0}
    save_checkpoint(tmp_path, train_model, state)

    def refuse(name: str) -> None:
        raise AssertionError(f"state.json holds {name}, which is not JSON")

    saved = json.loads((tmp_path / "checkpoint" / "state.json").read_text(), parse_constant=refuse)
    assert saved["best_cer"] is None and state["best_cer"] == float("inf")  # the run's own state is unchanged
    _, fresh = small_training_model()
    assert load_checkpoint(tmp_path, fresh, state)["best_cer"] == float("inf")


def test_resume_continues_the_same_data_order(tiny_prepared):
    """`iterate` from (epoch, batch) yields exactly the tail of the uninterrupted iteration."""
    source = BatchSource(PreparedData(tiny_prepared), "train", 8, 2, seed=0)
    full = list(source.iterate(range(0, 3)))
    per_epoch = len(source)
    for epoch in range(3):
        for batch in range(per_epoch):
            tail = list(source.iterate(range(epoch, 3), start_batch=batch))
            assert len(tail) == len(full) - epoch * per_epoch - batch
            for a, b in zip(tail, full[epoch * per_epoch + batch:]):
                np.testing.assert_array_equal(a["labels"], b["labels"])
                np.testing.assert_array_equal(a["feats"], b["feats"])


# --- one run per directory -------------------------------------------------------------------------------


def invoke_train(prepared: Path, out: Path, *args: str):
    """`asr train` (as `cli_args`) through Typer's CliRunner; `args`: --set overrides, or options from `--`."""
    from typer.testing import CliRunner

    from asr.cli import app

    options = [a for a in args if a.startswith("--")]
    return CliRunner().invoke(app, [*cli_args(prepared, out, *(a for a in args if a not in options))[3:], *options])


def tree_digest(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_locked_run_directory_is_refused_naming_the_process(tiny_prepared, tmp_path):
    from test_cli import assert_user_error

    from asr.lock import lock_dir

    out = tmp_path / "run"
    with lock_dir(out, "asr train"):  # as another `asr train` into the same --out would hold it
        assert_user_error(invoke_train(tiny_prepared, out), f"{out} is in use by asr train (pid {os.getpid()})")
        assert [p.name for p in out.iterdir()] == [".lock"]  # nothing written
    assert not out.exists()


def test_only_the_chief_locks_the_run_directory(tiny_prepared, tmp_path, monkeypatch):
    """Under multi_worker every worker runs `asr train` with the same --out: the others neither lock nor wait."""
    import asr.train
    from asr.distribute import is_chief
    from asr.lock import lock_dir

    monkeypatch.setattr(asr.train, "_train", lambda *args: Path("trained"))  # no cluster to train with here
    cfg = run_config(tiny_prepared, tmp_path / "run", "train.strategy=multi_worker")
    with lock_dir(tmp_path / "run", "asr train"):
        for index in (1, 0):
            monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                        "task": {"type": "worker", "index": index}}))
            assert is_chief("multi_worker") == (index == 0)
            if index:
                assert train(cfg) == Path("trained")
            else:
                with pytest.raises(AsrError, match="is in use by asr train"):
                    train(cfg)
    assert is_chief("default") and is_chief("mirrored")


def test_a_run_directory_with_results_needs_resume_or_overwrite(reference_run, tiny_prepared, tmp_path):
    import shutil

    from test_cli import assert_user_error

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    before = tree_digest(out)
    assert_user_error(invoke_train(tiny_prepared, out), f"{out} already holds a run (checkpoint/, bundle/)",
                      "--resume", "--overwrite")
    assert_user_error(invoke_train(tiny_prepared, out, "--resume", "--overwrite"), "give one of them")
    assert tree_digest(out) == before  # not a byte changed


def test_a_run_killed_before_its_first_checkpoint_holds_no_results(tiny_prepared, tmp_path):
    from asr.train import _check_out_dir

    out, cfg = tmp_path / "run", run_config(tiny_prepared, tmp_path / "run")
    out.mkdir()
    (out / "config.yaml").write_text("train: {}\n")
    (out / "log.csv").write_text("epoch,loss\n")
    _check_out_dir(out, cfg, resume=False, overwrite=False)  # training may start here
    (out / ".checkpoint.old").mkdir()  # a kill while the checkpoint was replaced: `checkpoint` is put back from it
    with pytest.raises(AsrError, match=r"already holds a run \(checkpoint/\)"):
        _check_out_dir(out, cfg, resume=False, overwrite=False)


def test_overwrite_replaces_the_earlier_run(reference_run, tiny_prepared, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    (out / ".bundle.old").mkdir()  # what a kill inside the earlier run's bundle write left
    old_events = {p.name for p in (out / "tensorboard").iterdir()}
    result = invoke_train(tiny_prepared, out, "train.epochs=1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert [int(r["epoch"]) for r in read_history(out / "log.csv")] == [1]
    assert read_state(out)["epoch"] == 1 and json.loads((out / "bundle" / "train.json").read_text())["epoch"] == 1
    assert old_events.isdisjoint(p.name for p in (out / "tensorboard").iterdir())  # one run's curves only
    assert not list(out.glob(".*"))


def test_resume_with_another_model_is_one_line(reference_run, tiny_prepared, tmp_path):
    import shutil

    from test_cli import assert_user_error

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    before = tree_digest(out)
    assert_user_error(invoke_train(tiny_prepared, out, "model.lstm_units=64", "--resume"),
                      f"the checkpoint in {out} does not match this config (model.lstm_units is 64, the run's is 32",
                      "--overwrite")
    assert tree_digest(out) == before
    (out / "config.yaml").unlink()  # without the run's config, the weights themselves are refused
    assert_user_error(invoke_train(tiny_prepared, out, "model.lstm_units=64", "--resume"),
                      f"{out / 'checkpoint'}: the checkpoint does not match this config")
    assert not (out / "config.yaml").exists()  # a refused --resume writes nothing


# --- logs -------------------------------------------------------------------------------------------------


def test_run_directory_has_csv_tensorboard_and_plot(reference_run):
    rows = read_history(reference_run / "log.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    for row in rows:
        assert np.isfinite(float(row["loss"])) and 0 <= float(row["dev_cer"]) <= 1.5
        assert float(row["audio_s_per_s"]) > 0 and int(row["skipped"]) == 0
    png = (reference_run / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    events = sorted((reference_run / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    seen: dict[str, list[int]] = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen.setdefault(value.tag, []).append(event.step)
    assert seen["epoch/dev_cer"] == list(range(1, EPOCHS + 1))
    assert seen["epoch/loss"] == list(range(1, EPOCHS + 1))


PLOT_IN_ANOTHER_BACKEND = """
import sys, matplotlib
matplotlib.use("svg")  # the process's own choice, e.g. a notebook's inline backend
from asr.plots import plot_history
plot_history([{"epoch": "1", "loss": "9.5", "dev_cer": "0.9"}, {"epoch": "2", "loss": "4.0", "dev_cer": "0.6"}],
             sys.argv[1])
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_plotting_leaves_the_process_backend_alone(tmp_path):
    png = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, "-c", PLOT_IN_ANOTHER_BACKEND, str(png)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["svg", "False"]
    assert png.read_bytes().startswith(b"\x89PNG")


# --- non-finite loss guard --------------------------------------------------------------------------------


def small_training_model(mixed: bool = False):
    cfg = ModelConfig(conv_channels=8, conv_kernel=5, conv_stride=2, lstm_units=8, lstm_layers=1, dropout=0.0)
    model = build_model(cfg, N_FEATS, 7, np.zeros(N_FEATS), np.ones(N_FEATS))
    train_model = build_training_model(model)
    compile_training_model(train_model, TrainConfig(), steps_per_epoch=10)
    return model, train_model


def small_batch(n_frames=(20, 12, 9)) -> dict:
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(n, N_FEATS)).astype(np.float32) for n in n_frames]
    return pad_batch(feats, [[1, 2, 3], [4, 4], [5]][: len(feats)], 2, np.zeros(N_FEATS, np.float32))


def test_a_non_finite_batch_leaves_weights_and_optimizer_untouched():
    keras.utils.set_random_seed(0)
    _, train_model = small_training_model()
    good = small_batch()
    bad = {k: v.copy() for k, v in good.items()}
    bad["feats"][1, 3, 0] = np.nan
    dummy = np.zeros(3, np.float32)
    train_model.optimizer.build(train_model.trainable_variables)
    before = [keras.ops.convert_to_numpy(v) for v in train_model.weights + train_model.optimizer.variables]
    logs = train_model.train_on_batch(bad, dummy, return_dict=True)
    assert logs["skipped"] == 1.0 and logs["loss"] == 0.0
    after = [keras.ops.convert_to_numpy(v) for v in train_model.weights + train_model.optimizer.variables]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # weights, Adam moments and the step count
    logs = train_model.train_on_batch(good, dummy, return_dict=True)
    assert logs["skipped"] == 0.0 and np.isfinite(logs["loss"]) and logs["loss"] > 0
    assert int(train_model.optimizer.iterations.numpy()) == 1
    assert not all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(before, train_model.weights))


def poison_first_row(monkeypatch):
    """Make every batch that holds train row 0 non-finite, as a corrupt feature file would."""
    original = BatchSource.pad

    def pad(self, idx, epoch=0):
        batch = original(self, idx, epoch)
        if 0 in list(idx):
            batch["feats"][list(idx).index(0), 0, 0] = np.inf
        return batch

    monkeypatch.setattr(BatchSource, "pad", pad)


def test_non_finite_batches_are_reported_and_skipped(tiny_prepared, tmp_path, monkeypatch, capsys):
    poison_first_row(monkeypatch)
    out = tmp_path / "run"
    train(run_config(tiny_prepared, out, "train.epochs=2"), verbose=0)
    err = capsys.readouterr().err
    first_id = PreparedData(tiny_prepared).rows("train")[0]["id"]
    assert err.count("non-finite loss, batch skipped") == 2 and first_id in err  # once per epoch
    rows = read_history(out / "log.csv")
    assert [int(r["skipped"]) for r in rows] == [1, 1]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert all(np.all(np.isfinite(w)) for w in checkpoint_arrays(out).values())


def test_too_many_non_finite_batches_stop_training(tiny_prepared, tmp_path, monkeypatch):
    poison_first_row(monkeypatch)
    with pytest.raises(AsrError, match="non-finite loss.*max_skipped_batches=0"):
        train(run_config(tiny_prepared, tmp_path / "run", "train.max_skipped_batches=0"), verbose=0)


# --- mixed precision --------------------------------------------------------------------------------------


def test_mixed_precision_keeps_softmax_and_loss_in_float32():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, train_model = small_training_model()
        assert model.get_layer("conv").compute_dtype == "float16"
        assert model.get_layer("blstm0").compute_dtype == "float16"
        assert model.get_layer("probs").compute_dtype == "float32" and model.output.dtype == "float32"
        assert train_model.get_layer("ctc").compute_dtype == "float32"
        assert isinstance(train_model.optimizer, keras.optimizers.LossScaleOptimizer)
        batch = small_batch()
        loss = train_model(batch, training=False)
        assert loss.dtype == tf.float32 and np.all(np.isfinite(loss))
        logs = train_model.train_on_batch(batch, np.zeros(3, np.float32), return_dict=True)
        assert logs["skipped"] == 0.0 and np.isfinite(logs["loss"])
    finally:
        keras.mixed_precision.set_global_policy(policy)


def test_mixed_precision_training_writes_a_float32_bundle(tiny_prepared, tmp_path, capsys):
    from asr.bundle import load_bundle

    policy = keras.mixed_precision.global_policy().name
    bundle = train(run_config(tiny_prepared, tmp_path / "run", "train.epochs=1", "train.mixed_precision=true"),
                   verbose=0)
    assert "; mixed_float16;" in capsys.readouterr().out
    assert json.loads((bundle / "train.json").read_text())["precision"] == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == policy  # restored for whatever the process does next
    model = load_bundle(bundle).model  # float16 layers would be slow (or unsupported) where the bundle is used
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_bfloat16_products_on_a_cpu_train_and_write_a_float32_bundle(tiny_prepared, tmp_path, capsys, monkeypatch):
    """auto on a CPU with native bfloat16 (faked here: the products work anywhere, only slower): the train step's
    BiLSTM products are bfloat16, the run says so, learns, and its bundle is the same float32 model."""
    import asr.train
    from asr.bundle import load_bundle

    monkeypatch.setattr(asr.train, "native_bfloat16", lambda: True)
    bundle = train(run_config(tiny_prepared, tmp_path / "run", "train.epochs=2"), verbose=0)
    assert "; float32 with bfloat16 BiLSTM products;" in capsys.readouterr().out
    losses = [float(row["loss"]) for row in read_history(tmp_path / "run" / "log.csv")]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert json.loads((bundle / "train.json").read_text())["precision"] == "float32 with bfloat16 BiLSTM products"
    model = load_bundle(bundle).model
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_mixed_precision_setting(monkeypatch):
    import asr.train
    from asr.train import training_precision

    devices = {"GPU": [], "CPU": ["cpu:0"]}  # what TensorFlow sees, faked: a CPU-only machine, then one with a GPU
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: devices.get(kind, []))
    for native, want in ((False, "float32"), (True, "bfloat16")):  # a CPU without, then with bfloat16 products
        monkeypatch.setattr(asr.train, "native_bfloat16", lambda native=native: native)
        assert training_precision("auto") == want
        assert training_precision(False) == "float32" and training_precision(True) == "mixed_float16"
    devices["GPU"] = ["gpu:0"]
    assert training_precision("auto") == "mixed_float16"  # cuDNN's LSTM, as before: no change on a GPU
    assert training_precision(False) == "float32"
    for bad in ("train.mixed_precision=gpu", "train.strategy=horovod", "train.tempo_perturb=0.7", "train.vtlp=0.5"):
        with pytest.raises(AsrError, match=bad.split("=")[0]):
            load_config(None, [bad])


# --- distribution -----------------------------------------------------------------------------------------

MIRRORED_SCRIPT = r"""
import sys
import numpy as np
from asr.runtime import import_tensorflow
tf = import_tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from asr.config import load_config
from asr.data import BatchSource
from asr.train import train

original = BatchSource.load
def load(self, idx, epoch=0):  # train row 0 has a non-finite feature: its batch must be skipped everywhere
    feats = original(self, idx, epoch)
    return [np.full_like(f, np.inf) if i == 0 else f for f, i in zip(feats, idx)]
BatchSource.load = load

config, out, *overrides = sys.argv[1:]
for strategy in ("mirrored", "default"):  # a second MirroredStrategy in one process would clash
    train(load_config(config, [*overrides, f"train.strategy={strategy}", f"train.out_dir={out}/{strategy}"]))
"""


@pytest.mark.slow
def test_mirrored_training_on_two_logical_cpus(tiny_prepared, tmp_path):
    """2 replicas on 2 logical CPUs train exactly like one device on the same global batches (a subprocess:
    the CPU must be split before TensorFlow starts). A non-finite loss on one replica skips the step on both."""
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(REPO / "configs" / "demo.yaml"), str(tmp_path),
                           *TINY_OVERRIDES, f"train.data_dir={tiny_prepared}", "train.epochs=2",
                           "train.clipnorm=0",  # Keras clips per replica; without clipping the match is exact
                           "train.mixed_precision=false"],  # bfloat16 products round each replica's half apart
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "strategy mirrored (2 replicas, 1 workers)" in proc.stdout
    assert "strategy default (1 replicas, 1 workers)" in proc.stdout
    mirrored, default = checkpoint_arrays(tmp_path / "mirrored"), checkpoint_arrays(tmp_path / "default")
    for key in default:
        np.testing.assert_allclose(mirrored[key], default[key], rtol=1e-4, atol=1e-5, err_msg=key)  # rounding
    for run in ("mirrored", "default"):
        rows = read_history(tmp_path / run / "log.csv")
        assert [int(r["skipped"]) for r in rows] == [1, 1]  # the batch holding row 0, once per epoch
        assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (tmp_path / "mirrored" / "bundle" / "model.keras").is_file()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_training_with_two_local_workers(tiny_prepared, tmp_path):
    """Two `asr train` processes on this machine, configured by TF_CONFIG, as on two machines."""
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    out = tmp_path / "run"
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        args = cli_args(tiny_prepared, out, "train.strategy=multi_worker", "train.epochs=2")
        procs.append(subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    assert "strategy multi_worker (2 replicas, 2 workers)" in outputs[0][0]  # only the chief reports
    assert "strategy" not in outputs[1][0]
    assert [int(r["epoch"]) for r in read_history(out / "log.csv")] == [1, 2]
    assert (out / "bundle" / "model.keras").is_file()


def test_global_batches_are_split_so_every_replica_gets_utterances():
    lengths = list(range(50, 50 + 33))  # 33 = 4 x 8 + 1: the last batch would hold one utterance
    batches = make_batches(lengths, 8, seed=0, min_size=2)
    assert sorted(i for b in batches for i in b) == list(range(33))
    assert len(batches) == 4 and all(len(b) >= 8 for b in batches)
    for b in batches:
        assert all(len(part) >= 1 for part in np.array_split(np.asarray(b), 2))


def test_multi_worker_needs_tf_config(monkeypatch):
    from asr.distribute import make_cluster

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(AsrError, match="TF_CONFIG"):
        make_cluster("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(AsrError, match="TF_CONFIG is not valid"):
        make_cluster("multi_worker")


# --- augmentation -----------------------------------------------------------------------------------------


def test_stretch_time_keeps_end_frames_and_interpolates():
    feats = np.arange(20, dtype=np.float32).reshape(10, 2)
    out = stretch_time(feats, 19)
    assert out.shape == (19, 2)
    np.testing.assert_array_equal(out[0], feats[0])
    np.testing.assert_array_equal(out[-1], feats[-1])
    np.testing.assert_allclose(out[1], (feats[0] + feats[1]) / 2)  # halfway between the first two frames
    assert stretch_time(feats, 10) is feats


def test_tempo_perturbation_stays_ctc_feasible():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(100, 4)).astype(np.float32)
    aug = Augmentation(tempo=0.3)
    lengths = {len(augment(feats, np.random.default_rng(s), aug, np.zeros(4), 0)) for s in range(50)}
    assert min(lengths) >= round(100 / 1.3) and max(lengths) <= round(100 / 0.7) and len(lengths) > 10
    assert all(len(augment(feats, np.random.default_rng(s), aug, np.zeros(4), 98)) >= 98 for s in range(50))


def test_vtlp_keeps_shape_and_cmn_and_varies_per_draw():
    from asr.config import FeatureConfig

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(120, 13)).astype(np.float32)
    feats -= feats.mean(axis=0)  # per-utterance CMN, as features.cmn makes them
    aug = Augmentation(vtlp=0.1, features=FeatureConfig(n_mfcc=13, n_mels=80))
    outs = [augment(feats, np.random.default_rng(s), aug, np.zeros(13), 0) for s in range(3)]
    for out in outs:
        assert out.shape == feats.shape and out.dtype == np.float32
        np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)  # a linear map keeps a zero mean
        assert not np.allclose(out, feats, atol=1e-3)
    assert not np.allclose(outs[0], outs[1])


def test_spec_augment_masks_with_the_fill_value():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 20)).astype(np.float32) + 10.0
    fill = np.arange(20, dtype=np.float32)
    aug = Augmentation(time_masks=2, time_width=15, freq_masks=2, freq_width=3)
    out = spec_augment(feats, np.random.default_rng(1), aug, fill)
    assert out.shape == feats.shape and not np.shares_memory(out, feats)
    masked = out != feats
    assert masked.any()
    np.testing.assert_array_equal(out[masked], np.broadcast_to(fill, feats.shape)[masked])
    full_frames = np.all(masked, axis=1).sum()
    full_coeffs = np.all(masked, axis=0).sum()
    assert full_frames <= 2 * 15 and full_coeffs <= 2 * 3


def test_batch_source_augmentation_is_reproducible_and_optional(tiny_prepared):
    data = PreparedData(tiny_prepared)
    aug = Augmentation(tempo=0.1, time_masks=2, time_width=10, freq_masks=1, freq_width=3)
    plain = BatchSource(data, "train", 8, 2, seed=0)
    noisy = BatchSource(data, "train", 8, 2, seed=0, augmentation=aug)
    off = BatchSource(data, "train", 8, 2, seed=0, augmentation=Augmentation())
    a, b, c = (next(source.iterate(range(1))) for source in (plain, noisy, off))
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_array_equal(a["feats"], c["feats"])  # all off: exactly the plain batch
    assert a["feats"].shape != b["feats"].shape or not np.array_equal(a["feats"], b["feats"])
    again = next(BatchSource(data, "train", 8, 2, seed=0, augmentation=aug).iterate(range(1)))
    np.testing.assert_array_equal(b["feats"], again["feats"])  # a function of (seed, epoch, row)
    for k, n in enumerate(b["out_lens"]):
        assert n >= ctc_frames_needed(list(b["labels"][k, : b["label_lens"][k]]))


def test_training_with_augmentation_runs(tiny_prepared, tmp_path):
    cfg = run_config(tiny_prepared, tmp_path / "run", "train.epochs=1", "train.tempo_perturb=0.1", "train.vtlp=0.1",
                     "train.specaug_time_masks=2", "train.specaug_freq_masks=1", "train.tensorboard=false")
    train(cfg, verbose=0)
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert np.isfinite(float(read_history(tmp_path / "run" / "log.csv")[0]["loss"]))


# --- the bench's FLOP estimate ----------------------------------------------------------------------------


def test_bench_flop_estimate_matches_the_model():
    from bench_train import N_CLASSES, train_flops

    cfg = ModelConfig(conv_channels=16, conv_kernel=5, conv_stride=3, lstm_units=12, lstm_layers=2)
    model = build_model(cfg, N_FEATS, N_CLASSES, np.zeros(N_FEATS), np.ones(N_FEATS))
    kernels = sum(int(np.prod(w.shape)) for w in model.trainable_weights if "kernel" in w.path)
    frames = 300  # -> 100 output frames
    per_frame = train_flops(frames, cfg) / 100
    assert per_frame == pytest.approx(3 * 2 * kernels)  # one multiply-add per kernel weight per output frame


def test_config_of_a_test_run_is_written(reference_run):
    saved = load_config(reference_run / "config.yaml")
    assert saved.train.epochs == EPOCHS and dataclasses.asdict(saved)["model"]["lstm_units"] == 32


def test_without_a_dev_split_the_model_is_selected_on_held_out_train_utterances(tiny_prepared, tmp_path, capsys):
    import shutil

    from asr.train import HOLD_OUT_EVERY, split_dev

    data_dir = tmp_path / "nodev"
    shutil.copytree(tiny_prepared, data_dir)
    (data_dir / "dev.jsonl").write_text("", encoding="utf-8")
    train_rows, dev_rows = split_dev(PreparedData(data_dir))
    all_train = PreparedData(data_dir).rows("train")
    assert len(dev_rows) == -(-len(all_train) // HOLD_OUT_EVERY) and len(train_rows) + len(dev_rows) == len(all_train)
    assert not {r["id"] for r in train_rows} & {r["id"] for r in dev_rows}
    assert "no dev split" in capsys.readouterr().err
    assert split_dev(PreparedData(tiny_prepared))[1] == PreparedData(tiny_prepared).rows("dev")  # a dev split is used


def test_refit_trains_on_train_and_dev_for_the_epochs_dev_chose(tiny_prepared, tmp_path, monkeypatch):
    """train.refit: select/ is an ordinary run on train alone; the bundle then trains from the same start on
    train + dev for select's best epoch count, keeps its last epoch, and names the dev score that stands for it."""
    from asr.bundle import load_bundle

    out, settings = tmp_path / "run", ("train.epochs=2", "train.patience=99", "train.refit=true")
    train(run_config(tiny_prepared, out, *settings), verbose=0)
    data = PreparedData(tiny_prepared)
    chosen = json.loads((out / "select" / "bundle" / "train.json").read_text(encoding="utf-8"))
    info = json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8"))
    assert chosen["data"]["train_utterances"] == len(data.rows("train")) and "refit" not in chosen
    assert info["data"]["train_utterances"] == len(data.rows("train")) + len(data.rows("dev"))
    assert info["epoch"] == info["refit"]["epochs"] == chosen["epoch"]
    assert (info["dev_cer"], info["refit"]["selected_by"]) == (chosen["dev_cer"], str(out / "select" / "bundle"))
    assert len(read_history(out / "select" / "log.csv")) == 2  # select/ is a run like any other
    log = read_history(out / "log.csv")
    assert [int(r["epoch"]) for r in log] == list(range(1, chosen["epoch"] + 1))
    assert all(r["dev_cer"] == "" for r in log)  # dev is trained on: not scored
    assert (out / "curves.png").is_file() and (out / "bundle" / "model.tflite").is_file()
    final, selected = load_bundle(out / "bundle").model, load_bundle(out / "select" / "bundle").model
    assert not np.array_equal(*(m.get_layer(OUTPUT_LAYER).get_weights()[0] for m in (final, selected)))
    assert load_config(out / "config.yaml").train.epochs == 2  # the user's config, not the refit's epoch count
    with pytest.raises(AsrError, match="already holds a run"):
        train(run_config(tiny_prepared, out, *settings), verbose=0)
    import asr.train

    monkeypatch.setattr(asr.train, "_train", lambda *args: out / "bundle")  # what --overwrite clears, not a new run
    train(run_config(tiny_prepared, out, *settings), verbose=0, overwrite=True)
    assert not {"select", "checkpoint", "bundle", "log.csv"} & {p.name for p in out.iterdir()}


SOUP_SETTINGS = ("train.epochs=1", "train.patience=99", "train.soup=2")


def test_soup_averages_the_weights_of_runs_that_differ_in_seed(tiny_prepared, tmp_path):
    """train.soup=2: two runs (seeds 0 and 1) in soup/0 and soup/1; the bundle holds the mean of their weights,
    scored on dev, and names its runs."""
    from asr.bundle import load_bundle

    out = tmp_path / "run"
    train(run_config(tiny_prepared, out, *SOUP_SETTINGS), verbose=0)
    runs = [load_bundle(out / "soup" / str(i) / "bundle").model for i in (0, 1)]
    soup = load_bundle(out / "bundle").model
    first, second, mean = (m.get_layer(OUTPUT_LAYER).get_weights()[0] for m in (*runs, soup))
    assert not np.array_equal(first, second)  # the seeds differ
    np.testing.assert_allclose(mean, (first + second) / 2, rtol=1e-6)
    info = json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8"))
    assert [(part["seed"], part["run"]) for part in info["soup"]] == [(0, str(out / "soup" / "0")),
                                                                      (1, str(out / "soup" / "1"))]
    data = PreparedData(tiny_prepared)
    predictor = Predictor(soup, 2, data.stats["mean"])
    assert info["dev_cer"] == pytest.approx(score_split(predictor, data, data.rows("dev"))["cer"])
    assert (out / "bundle" / "model.tflite").is_file() and not (out / "checkpoint").exists()


@pytest.mark.slow
def test_a_finished_soup_resumes_as_it_is(tiny_prepared, tmp_path):
    out = tmp_path / "run"
    train(run_config(tiny_prepared, out, *SOUP_SETTINGS), verbose=0)
    info = json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8"))
    train(run_config(tiny_prepared, out, *SOUP_SETTINGS), resume=True, verbose=0)  # nothing is trained again
    assert json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8")) == info
    assert [len(read_history(out / "soup" / str(i) / "log.csv")) for i in (0, 1)] == [1, 1]


@pytest.mark.parametrize(("held", "config", "soup", "message"), [
    ("checkpoint", "", 2, r"without train.soup \(no soup/\); continue it with --set train.soup=1,"),
    ("soup/0/checkpoint", "train: {soup: 3}", 1, r"with train.soup \(soup/\); continue it with --set train.soup=3,"),
    ("soup/0/checkpoint", "", 1, r"with train.soup \(soup/\); continue it with --set train.soup=N,")])
def test_resuming_with_another_soup_setting_is_one_line(tiny_prepared, tmp_path, held, config, soup, message):
    out = tmp_path / "run"
    (out / held).mkdir(parents=True)  # refused before anything is loaded
    if config:
        (out / "config.yaml").write_text(config + "\n", encoding="utf-8")
    with pytest.raises(AsrError, match=message):
        train(run_config(tiny_prepared, out, *RESUME_SETTINGS, f"train.soup={soup}"), resume=True, verbose=0)


def test_resuming_a_run_without_refit_with_refit_is_one_line(reference_run, tiny_prepared, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    with pytest.raises(AsrError, match=r"without train.refit .*--set train.refit=false"):
        train(run_config(tiny_prepared, out, *RESUME_SETTINGS, "train.refit=true"), resume=True, verbose=0)


def test_resuming_a_refit_without_refit_is_one_line(tiny_prepared, tmp_path):
    out = tmp_path / "run"
    (out / "select" / "checkpoint").mkdir(parents=True)  # killed during the selection run; refused before loading
    with pytest.raises(AsrError, match=r"with train.refit \(only select/ has a checkpoint\); .*train.refit=true"):
        train(run_config(tiny_prepared, out, *RESUME_SETTINGS), resume=True, verbose=0)


@pytest.mark.slow
def test_refit_resumes_after_the_selection_run(tiny_prepared, tmp_path):
    """Killed once select/ finished (only select/ holds a checkpoint): --resume keeps it and trains the refit."""
    import shutil

    out, settings = tmp_path / "run", ("train.epochs=2", "train.patience=99", "train.refit=true")
    train(run_config(tiny_prepared, out, *settings), verbose=0)
    info = json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8"))
    for name in ("checkpoint", "bundle", "log.csv"):
        (shutil.rmtree if (out / name).is_dir() else Path.unlink)(out / name)
    selected = (out / "select" / "bundle" / "model.keras").stat().st_mtime_ns
    train(run_config(tiny_prepared, out, *settings), resume=True, verbose=0)
    assert (out / "select" / "bundle" / "model.keras").stat().st_mtime_ns == selected  # not trained again
    assert len(read_history(out / "select" / "log.csv")) == 2 and len(read_history(out / "log.csv")) == info["epoch"]
    assert json.loads((out / "bundle" / "train.json").read_text(encoding="utf-8"))["refit"] == info["refit"]


# --- full disk ---------------------------------------------------------------------------------------------


def low_disk_at(monkeypatch, name: str, free: int = 2**20) -> None:
    """shutil.disk_usage reports `free` bytes for a folder called `name`, plenty elsewhere."""
    import shutil
    from collections import namedtuple

    usage, real = namedtuple("Usage", "total used free"), shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 0, free) if Path(p).name == name else real(p))


def test_a_checkpoint_or_bundle_without_space_is_refused_and_the_previous_one_kept(tmp_path, monkeypatch):
    from asr.bundle import save_bundle
    from asr.checkpoint import save_checkpoint
    from asr.config import FeatureConfig, TextConfig
    from asr.text import Vocabulary

    model, train_model = small_training_model()
    train_model.optimizer.build(train_model.trainable_variables)
    state = {"seed": 0, "batch_size": 8, "n_train": 3, "steps_per_epoch": 1, "epoch": 1, "batch": 0,
             "best_cer": 0.5, "best_epoch": 1, "wait": 0}
    vocab = Vocabulary.from_texts(["abcde"], "abcde '")
    bundle_args = (FeatureConfig(n_mfcc=N_FEATS), TextConfig(), ModelConfig(), vocab, {"mean": [0.0], "std": [1.0]})
    save_checkpoint(tmp_path, train_model, state)
    save_bundle(tmp_path / "bundle", model, *bundle_args, {"epoch": 1})
    before = tree_digest(tmp_path)
    low_disk_at(monkeypatch, "checkpoint")
    with pytest.raises(AsrError, match=rf"^no space left on device for {tmp_path / 'checkpoint'}: needs ~\d+ MB, "
                                       r"1 MB free; free some space"):
        save_checkpoint(tmp_path, train_model, {**state, "epoch": 2})
    low_disk_at(monkeypatch, "bundle")
    with pytest.raises(AsrError, match=rf"^no space left on device for {tmp_path / 'bundle'}: needs"):
        save_bundle(tmp_path / "bundle", model, *bundle_args, {"epoch": 2})
    assert tree_digest(tmp_path) == before


@pytest.mark.slow
def test_training_out_of_space_at_the_second_checkpoint_is_one_line_and_resumable(tiny_prepared, tmp_path,
                                                                                   monkeypatch):
    import shutil

    out, real = tmp_path / "run", shutil.disk_usage
    low_disk_at(monkeypatch, "checkpoint")  # only once a first checkpoint exists: the second write is refused
    result = invoke_train(tiny_prepared, out, "train.epochs=2", "train.patience=99", "train.checkpoint_minutes=0")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [f"error: no space left on device for {out / 'checkpoint'}: needs ~"
                     f"{lines[0].split('~')[1].split(' ')[0]} MB, 1 MB free; free some space, then re-run the command "
                     "(asr train: with --resume)"]
    assert read_state(out)["epoch"] == 1  # the last good checkpoint
    assert not list(out.glob(".checkpoint*"))
    monkeypatch.setattr(shutil, "disk_usage", real)
    result = invoke_train(tiny_prepared, out, "train.epochs=2", "train.patience=99", "--resume")
    assert result.exit_code == 0, result.output
    assert read_state(out)["epoch"] == 2


def test_an_epoch_is_logged_before_its_checkpoint(tiny_prepared, tmp_path, monkeypatch):
    """A kill between the two writes must not lose the epoch's log row: the row is written first, and a checkpoint
    never gets ahead of log.csv (a resumed run drops rows past the checkpoint and writes them again)."""
    import asr.train

    real, seen = asr.train.save_checkpoint, []

    def checked(out, model, state):
        if state["batch"] == 0:  # an epoch's end
            seen.append([int(r["epoch"]) for r in read_history(out / "log.csv")])
            assert seen[-1][-1:] == [state["epoch"]]
        real(out, model, state)

    monkeypatch.setattr(asr.train, "save_checkpoint", checked)
    train(run_config(tiny_prepared, tmp_path / "run", "train.epochs=2", "train.checkpoint_minutes=0"), verbose=0)
    assert seen == [[1], [1, 2]]
