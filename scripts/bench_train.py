"""Training throughput, in audio-seconds per wall-second: the naive Keras-3 baseline vs this project, in one run.

    .venv/bin/python scripts/bench_train.py                       # baseline + default config (a few minutes)
    .venv/bin/python scripts/bench_train.py --ladder              # + one lever at a time, baseline -> default
    .venv/bin/python scripts/bench_train.py --no-baseline --set model.conv_stride=4 --set train.batch_size=64
    .venv/bin/python scripts/bench_train.py --no-baseline --peer torch --peer-python /tmp/torchpeer/bin/python --pairs 3

Both models train on the same synthetic batches: `--batch` utterances of `--seconds` seconds of 20-dim
features (100 frames per second, i.e. the 10 ms hop) and random transcripts of `--chars-per-second`
characters over a 28-letter alphabet (+ blank = 29 classes). Every number is measured after warm-up
steps (tracing, memory allocation), with nothing else but the training step in the timed loop.

(a) baseline: Masking -> 2 x BiLSTM-256 -> Dense(29) logits, `keras.ops.ctc_loss` (dense, pure-TF CTC):
    the classic Keras pattern ported naively to Keras 3. Very slow: keep --baseline-steps small.
(b) project: `build_model` + `build_training_model` + `compile_training_model` from `asr.model`, with the
    project's default config (or `--config`/`--set` overrides): the exact train step of `asr train`.

(a) runs with TensorFlow's default thread pools, as a naive script would; (b) with the intra-op thread
count `asr train` sets (`train.threads`, auto: cores // 2). Thread pools are fixed once TensorFlow starts,
so each part runs in its own subprocess. `--ladder` also measures the steps in between, one lever at a
time and with the default threads: (a) with the sparse C++ CTC kernel (softmax + `asr.ctc.ctc_batch_loss`),
then without the Masking layer (right padding + lengths), then the project model at stride 1, 2 and
`model.conv_stride` (all three with Keras' LSTM layers), then with the BiLSTMs computed by `asr.lstm` (what
`asr train` does on a CPU) in float32, then, where the CPU multiplies bfloat16 natively, with bfloat16 products
(`train.mixed_precision: auto`, `asr.train.training_precision`); the last step to (b) is the thread setting.
`--set train.mixed_precision=false` measures (b) in float32.

`--peer torch` also trains the same model in plain PyTorch (`scripts/peer_torch.py`, run by `--peer-python`,
a Python that has torch: never a dependency of this project) right after each (b); `--pairs N` repeats
((b), peer) N times back to back and prints each pair's ratio and their median. The machine's speed drifts
(other processes, turbo, the host): only numbers of the same pair are compared.

Printed: the machine's float32 matmul speed (a practical FLOP/s bound, TensorFlow's default threads), then per
model the seconds per step, audio-s per wall-s and per CPU-s (process time of all threads: steadier than wall
time when other processes share the cores), the achieved GFLOP/s against an analytic estimate of the model's
training FLOPs (matmul FLOPs x 3 for forward + backward) and as a share of the matmul speed, and the ratio
(b)/(a). Last, the input pipeline on its own: batches of `--pipeline-config`'s train settings (augmentation
included) from a synthetic prepared corpus, through `asr.data.make_dataset`, on one core, in audio-s/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchlib import build_train_model, synthetic_batch  # noqa: E402 - after the path insert

from asr.batch import output_lengths  # noqa: E402
from asr.config import ModelConfig  # noqa: E402
from asr.model import forward_flops_per_frame  # noqa: E402

N_FEATS = 20  # MFCC coefficients
N_CLASSES = 29  # 28 characters + blank
FRAMES_PER_SECOND = 100  # 10 ms hop


def synthetic_batches(n: int, batch: int, seconds: float, chars_per_second: float, stride: int,
                      seed: int = 0) -> list[dict]:
    """`n` batches of full-length utterances (`benchlib.synthetic_batch`, 20 features, labels in 1..28)."""
    rng = np.random.default_rng(seed)
    frames, chars = int(seconds * FRAMES_PER_SECOND), int(seconds * chars_per_second)
    return [synthetic_batch(rng, batch, frames, chars, N_FEATS, N_CLASSES, stride) for _ in range(n)]


def train_flops(frames: int, model: ModelConfig) -> float:
    """Training FLOPs of one utterance of `frames` input frames (forward x 3)."""
    return 3 * forward_flops_per_frame(model, N_FEATS, N_CLASSES) * int(output_lengths(frames, model.conv_stride))


def build_baseline(mask: bool = True, ctc: str = "dense") -> Any:
    """The naive port: Masking + 2 x BiLSTM-256 + logits, dense `keras.ops.ctc_loss` in a Lambda, Adam.

    `mask=False` drops the Masking layer; `ctc="sparse"` puts a softmax and the project's sparse-label
    `tf.nn.ctc_loss` (`asr.ctc.ctc_batch_loss`) in place of the dense `keras.ops.ctc_loss`.
    """
    import keras

    from asr.ctc import ctc_batch_loss

    feats = keras.Input((None, N_FEATS), name="feats")
    labels = keras.Input((None,), dtype="int32", name="labels")
    label_lens = keras.Input((), dtype="int32", name="label_lens")
    feat_lens = keras.Input((), dtype="int32", name="feat_lens")
    x = keras.layers.Masking(0.0)(feats) if mask else feats
    for _ in range(2):
        x = keras.layers.Bidirectional(keras.layers.LSTM(256, return_sequences=True))(x)
    if ctc == "dense":
        logits = keras.layers.Dense(N_CLASSES)(x)
        loss = keras.layers.Lambda(
            lambda a: keras.ops.ctc_loss(a[1], a[0], a[2], a[3], mask_index=0)[:, None], output_shape=(1,)
        )([logits, labels, label_lens, feat_lens])
    else:
        probs = keras.layers.Dense(N_CLASSES, activation="softmax")(x)
        loss = keras.layers.Lambda(ctc_batch_loss, output_shape=(1,))([probs, labels, feat_lens, label_lens])
    model = keras.Model({"feats": feats, "labels": labels, "label_lens": label_lens, "feat_lens": feat_lens}, loss)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=lambda y_true, y_pred: y_pred)
    return model


def build_project(cfg: Any, lstm: str = "auto") -> Any:
    """The training model exactly as `asr train` builds and compiles it; `lstm` as `build_training_model` takes it."""
    return build_train_model(cfg.model, cfg.train, N_FEATS, N_CLASSES, lstm)


def with_stride(batches: list[dict], stride: int) -> list[dict]:
    """The batches with the output lengths of another conv stride."""
    return [{**b, "out_lens": output_lengths(b["feat_lens"], stride).astype(np.int32)} for b in batches]


def inputs_without(batches: list[dict], key: str) -> list[dict]:
    """The batches without `key`: the project's model takes `out_lens`, the naive port `feat_lens`."""
    return [{k: v for k, v in b.items() if k != key} for b in batches]


def time_steps(model: Any, inputs: list[dict], warmup: int, steps: int) -> tuple[float, float, float]:
    """Run `warmup` untimed then `steps` timed `train_on_batch` calls.

    Returns (wall seconds per step, CPU seconds per step, last loss)."""
    dummy = np.zeros(len(inputs[0]["label_lens"]), np.float32)
    for k in range(warmup):
        model.train_on_batch(inputs[k % len(inputs)], dummy)
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = float("nan")
    for k in range(steps):
        logs = model.train_on_batch(inputs[(warmup + k) % len(inputs)], dummy, return_dict=True)
        loss = float(logs["loss"])
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu_start) / steps, loss


def measure(name: str, model: Any, inputs: list[dict], warmup: int, steps: int, audio_s: float, flops: float) -> dict:
    """Time `model`; print one result line (and a machine-readable copy for the parent process)."""
    sec, cpu, loss = time_steps(model, inputs, warmup, steps)
    result = {"name": name, "sec": sec, "speed": audio_s / sec, "cpu_speed": audio_s / cpu,
              "gflops": flops / sec / 1e9, "est_gflop": flops / 1e9, "loss": loss}
    print("RESULT " + json.dumps(result), flush=True)
    return result


def format_result(r: dict, peak: float | None = None) -> str:
    line = f"{r['name']:<40} {r['sec']:6.2f} s/step {r['speed']:7.1f} audio-s/s {r['cpu_speed']:6.1f} audio-s/CPU-s"
    if "gflops" in r:
        share = f" = {r['gflops'] / peak:4.0%} of matmul" if peak else ""
        line += f" {r['gflops']:6.1f} GFLOP/s{share} (est. {r['est_gflop']:4.0f} GFLOP/step)"
    return line + f"  loss {r['loss']:.0f}"


def run_part(args: argparse.Namespace, cfg: Any, part: str) -> None:
    """Measure one part in this process: `project` ((b), threads as `asr train` sets them), `baseline` ((a),
    TensorFlow's default threads) or `ladder` (the levers in between, with TensorFlow's default threads)."""
    from asr.runtime import import_tensorflow

    tf = import_tensorflow()
    if part == "project":
        from asr.train import intra_op_threads

        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads(args.threads or cfg.train.threads))
    if args.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)
    batch, m = args.batch or cfg.train.batch_size, cfg.model
    frames, audio_s = int(args.seconds * FRAMES_PER_SECOND), batch * args.seconds
    inputs = synthetic_batches(3, batch, args.seconds, args.chars_per_second, m.conv_stride)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    naive = batch * train_flops(frames, ModelConfig(conv_channels=0, conv_stride=1, lstm_units=256, lstm_layers=2))
    project, naive_inputs = inputs_without(inputs, "feat_lens"), inputs_without(inputs, "out_lens")
    if part == "peak":
        print(f"RESULT_PEAK {matmul_gflops(tf):.0f}", flush=True)
    elif part == "baseline":
        measure("(a) naive baseline", build_baseline(), naive_inputs, 1, args.baseline_steps, audio_s, naive)
    elif part == "ladder":
        from asr.train import bilstm_products, training_precision

        steps = max(1, args.steps // 2)
        measure("    + sparse CTC kernel", build_baseline(mask=True, ctc="sparse"), naive_inputs, 1, steps, audio_s,
                naive)
        measure("    + no Masking (right padding)", build_baseline(mask=False, ctc="sparse"), naive_inputs, 1, steps,
                audio_s, naive)
        for stride in sorted({1, 2, m.conv_stride}):
            c = dataclasses.replace(cfg, model=dataclasses.replace(m, conv_stride=stride))
            strided = inputs_without(with_stride(inputs, stride), "feat_lens")
            measure(f"    project model, stride {stride}", build_project(c, "keras"), strided, 1, steps, audio_s,
                    batch * train_flops(frames, c.model))
        fp32 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mixed_precision=False))
        measure("    + BiLSTM by asr.lstm (CPU path)", build_project(fp32, "fused"), project, 1, steps, audio_s,
                batch * train_flops(frames, m))
        products = bilstm_products(training_precision(cfg.train.mixed_precision))
        if products != "float32":  # a CPU with native bfloat16: the next lever
            measure(f"    + {products} products (mixed prec.)", build_project(cfg, "fused"), project, 1, steps,
                    audio_s, batch * train_flops(frames, m))
    else:
        model = build_project(cfg, args.lstm)
        lstm = "" if args.lstm == "auto" else f", {args.lstm} LSTM"
        lstm += "" if model.products == "float32" else f", {model.products} products"
        measure(f"(b) project ({threads} intra-op threads{lstm})", model, project, args.warmup, args.steps, audio_s,
                batch * train_flops(frames, m))


def matmul_gflops(tf: Any, n: int = 4096, repeats: int = 5) -> float:
    """This machine's dense float32 matmul speed (n x n x n), a practical upper bound for the models."""
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    matmul = tf.function(lambda: tf.matmul(a, b))
    matmul().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = matmul()
    out.numpy()
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e9


PIPELINE_UTTERANCES = 1024  # synthetic corpus of the input-pipeline measurement (~32 batches of 32)


def write_synthetic_prepared(out: Path, cfg: Any, seconds: float, chars_per_second: float) -> Path:
    """A directory in the layout `asr prepare` writes (one shard), of random features and transcripts for
    `cfg`'s features and alphabet; utterances last 0.2 to 1.5 x `seconds` (uniform)."""
    from asr.config import config_to_dict, dump_yaml
    from asr.files import write_json, write_jsonl, write_text
    from asr.text import Vocabulary

    rng = np.random.default_rng(0)
    frames = (rng.uniform(0.2, 1.5, PIPELINE_UTTERANCES) * seconds * FRAMES_PER_SECOND).astype(int)
    (out / "feats").mkdir(parents=True)
    np.save(out / "feats" / "train-00000.npy", rng.normal(size=(int(frames.sum()), cfg.features.n_mfcc)).astype(
        np.float32))
    letters = np.array(sorted(set(cfg.text.alphabet)))
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]])
    rows = [{"id": f"u{k:05d}", "audio": "", "duration": n / FRAMES_PER_SECOND, "n_frames": int(n),
             "text": "".join(rng.choice(letters, size=max(1, int(n / FRAMES_PER_SECOND * chars_per_second)))),
             "shard": "feats/train-00000.npy", "row": int(start)} for k, (n, start) in enumerate(zip(frames, starts))]
    write_jsonl(out / "train.jsonl", rows)
    Vocabulary.from_texts([r["text"] for r in rows], cfg.text.alphabet).save(out / "vocab.json")
    write_text(out / "config.yaml", dump_yaml(config_to_dict(cfg)))
    write_json(out / "stats.json", {"mean": [0.0] * cfg.features.n_mfcc, "std": [1.0] * cfg.features.n_mfcc})
    return out


def measure_pipeline(cfg: Any, seconds: float, chars_per_second: float) -> None:
    """The input pipeline alone on one core (this process pinned to one CPU): padded, length-bucketed batches
    with `cfg.train`'s augmentation, through `asr.data.make_dataset` as `asr train` consumes them; also the
    numpy batches alone and padding without augmentation. Prints `RESULT {"pipeline": ...}` lines."""
    import tempfile

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from asr.augment import Augmentation
    from asr.data import BatchSource, PreparedData, make_dataset
    from asr.runtime import import_tensorflow

    tf = import_tensorflow()

    @tf.function
    def consume(dataset: Any) -> Any:  # as Keras' fit does: the batches are taken inside a graph
        n_batches = tf.constant(0)
        for _ in dataset:
            n_batches += 1
        return n_batches

    with tempfile.TemporaryDirectory() as tmp:
        data = PreparedData(write_synthetic_prepared(Path(tmp), cfg, seconds, chars_per_second))
        augmentation = Augmentation.from_config(cfg.train, data.features)
        for name, aug, through_tf in (("augmented, through tf.data", augmentation, True),
                                      ("augmented, numpy batches alone", augmentation, False),
                                      ("padding alone, through tf.data", None, True)):
            source = BatchSource(data, "train", cfg.train.batch_size, cfg.model.conv_stride, cfg.train.seed, aug)
            epoch = (lambda s=source: int(consume(make_dataset(s, cfg.features.n_mfcc, range(1))))) if through_tf \
                else (lambda s=source: sum(1 for _ in s.iterate(range(1))))
            epoch()  # warm-up: tracing, first reads of the shard
            start = time.perf_counter()
            n_batches = epoch()
            sec = time.perf_counter() - start
            audio = sum(r["duration"] for r in source.rows)
            print("RESULT " + json.dumps({"pipeline": name, "speed": audio / sec, "batches_per_s": n_batches / sec,
                                          "audio_per_batch": audio / n_batches}), flush=True)


def run_subprocess(part: str, peak: float | None = None) -> list[dict]:
    """Run this script with `--part PART` (a fresh TensorFlow: thread pools are fixed once it starts)."""
    return _run_results([sys.executable, __file__, *sys.argv[1:], "--part", part], f"--part {part}", peak)


def _run_results(argv: list[str], what: str, peak: float | None = None, env: dict | None = None) -> list[dict]:
    """Run `argv`, print and return its `RESULT {json}` lines (`RESULT_PEAK x`: {"peak": x})."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    lines = proc.stdout.splitlines()
    results = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    results += [{"peak": float(line.split()[1])} for line in lines if line.startswith("RESULT_PEAK ")]
    if proc.returncode != 0 or not results:
        sys.exit(f"{what} failed:\n{proc.stderr[-3000:]}")
    for r in results:
        if "peak" in r:
            print(f"machine: {r['peak']:.0f} GFLOP/s on a 4096^3 float32 matmul (TensorFlow's default threads)")
        elif "pipeline" in r:
            print(f"input pipeline, {r['pipeline']:<32} {r['speed']:9.0f} audio-s/s on one core "
                  f"({r['batches_per_s']:.0f} batches/s of {r['audio_per_batch']:.0f} audio-s)", flush=True)
        else:
            print(format_result(r, peak), flush=True)
    return results


def run_peer(args: argparse.Namespace, cfg: Any) -> dict | None:
    """The same model and batch in plain PyTorch (`scripts/peer_torch.py` under `--peer-python`)."""
    python = args.peer_python or sys.executable
    check = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    if check.returncode != 0:
        print(f"peer torch: `import torch` fails under {python}; give --peer-python, a Python with torch "
              "(e.g. python3 -m venv /tmp/torchpeer && /tmp/torchpeer/bin/pip install torch)", flush=True)
        return None
    m, batch = cfg.model, args.batch or cfg.train.batch_size
    argv = [python, str(Path(__file__).with_name("peer_torch.py")), "--batch", str(batch),
            "--seconds", str(args.seconds), "--chars-per-second", str(args.chars_per_second), "--feats", str(N_FEATS),
            "--classes", str(N_CLASSES), "--conv-channels", str(m.conv_channels), "--conv-kernel", str(m.conv_kernel),
            "--conv-stride", str(m.conv_stride), "--units", str(m.lstm_units), "--layers", str(m.lstm_layers),
            "--dropout", str(m.dropout), "--clipnorm", str(cfg.train.clipnorm), "--warmup", str(args.warmup),
            "--steps", str(args.steps), "--threads", str(args.peer_threads), *(["--bf16"] if args.peer_bf16 else [])]
    return _run_results(argv, "peer torch", env=_peer_env())[0]


def _peer_env() -> dict:
    """The peer's environment: OpenMP threads wait passively unless OMP_WAIT_POLICY says otherwise. torch's
    spinning threads (its default) run 5-10x slower while another process holds one of the cores, which would
    credit the project with the machine's load (measured 2026-12 on the shared 2-core machine; on an idle
    machine the policy makes little difference)."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def compare_pairs(args: argparse.Namespace, cfg: Any, peak: float | None) -> None:
    """`--pairs` rounds of ((b), peer), back to back; each pair's ratio (b) / peer, then the median. The matmul
    speed is measured again before each (b): on a shared machine it drifts as much as the models' speed."""
    ratios, cpu_ratios = [], []
    for k in range(args.pairs):
        ours = run_subprocess("project", run_subprocess("peak")[0]["peak"] if k else peak)[0]
        peer = run_peer(args, cfg)
        if peer is None:
            return
        ratios.append(ours["speed"] / peer["speed"])
        cpu_ratios.append(ours["cpu_speed"] / peer["cpu_speed"])
        print(f"pair {k + 1}: (b) / PyTorch {ratios[-1]:.2f}x per wall-s, {cpu_ratios[-1]:.2f}x per CPU-s", flush=True)
    print(f"(b) / PyTorch, median of {len(ratios)} pairs: {np.median(ratios):.2f}x per wall-s "
          f"({min(ratios):.2f}-{max(ratios):.2f}), {np.median(cpu_ratios):.2f}x per CPU-s "
          f"({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML config for (b); default: the built-in defaults")
    parser.add_argument("--set", action="append", default=[], help="override for (b), e.g. model.conv_stride=3")
    parser.add_argument("--batch", type=int, help="utterances per batch (default: train.batch_size of (b))")
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--chars-per-second", type=float, default=12.0, help="transcript length per second")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of (b)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of (b) (the ladder's: half as many)")
    parser.add_argument("--baseline-steps", type=int, default=2, help="timed steps of (a), after 1 warm-up step")
    parser.add_argument("--no-baseline", action="store_true", help="measure (b) only")
    parser.add_argument("--ladder", action="store_true", help="also measure one lever at a time")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads of (b) (0: as `asr train`)")
    parser.add_argument("--inter-threads", type=int, default=0, help="TF inter-op threads (0: TensorFlow's default)")
    parser.add_argument("--lstm", choices=("auto", "keras", "fused"), default="auto",
                        help="how (b) computes the BiLSTMs (asr.model.build_training_model; auto: as `asr train`)")
    parser.add_argument("--peer", choices=("torch",), help="also train the same model in plain PyTorch")
    parser.add_argument("--peer-python", help="a Python that can import torch (default: this one)")
    parser.add_argument("--peer-threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--peer-bf16", action="store_true",
                        help="the peer in mixed precision (torch.autocast bfloat16), like (b)'s bfloat16 products")
    parser.add_argument("--pairs", type=int, default=1, help="rounds of (b) then the peer, back to back")
    parser.add_argument("--pipeline-config", default=str(REPO / "recipes" / "synth" / "cpu.yaml"),
                        help="config whose train settings (augmentation, batch size) the input pipeline runs with")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline measurement")
    parser.add_argument("--part", choices=("project", "baseline", "ladder", "peak", "pipeline"),
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from asr.config import load_config

    cfg = load_config(args.config, args.set)
    if args.part == "pipeline":
        measure_pipeline(load_config(args.pipeline_config), args.seconds, args.chars_per_second)
        return
    if args.part:
        run_part(args, cfg, args.part)
        return
    batch = args.batch or cfg.train.batch_size
    print(f"batch {batch} x {args.seconds:g} s ({int(args.seconds * FRAMES_PER_SECOND)} frames), "
          f"{args.chars_per_second:g} chars/s; {os.cpu_count()} CPUs; (b) model: {cfg.model}", flush=True)
    peak = run_subprocess("peak")[0]["peak"]
    speed_a = None if args.no_baseline else run_subprocess("baseline", peak)[0]["speed"]
    if args.ladder:
        run_subprocess("ladder", peak)
    if args.peer:
        compare_pairs(args, cfg, peak)
    else:
        speed_b = run_subprocess("project", peak)[0]["speed"]
        if speed_a:
            print(f"speed-up (b) / (a): {speed_b / speed_a:.1f}x", flush=True)
    if not args.no_pipeline:
        run_subprocess("pipeline")


if __name__ == "__main__":
    main()
