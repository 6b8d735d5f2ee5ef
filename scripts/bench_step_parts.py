"""Where the default training step's time goes on this machine: the whole step against its parts, in one run.

    .venv/bin/python scripts/bench_step_parts.py            # the bench batch of bench_train.py (32 x 10 s)

Times (median of --repeats, seconds, one intra-op thread per op as `asr train` sets it on a CPU): the whole
`train_on_batch` step; the two BiLSTM layers' forward and backward as the CPU train step computes them
(`asr.lstm`, with the step's products: bfloat16 where `train.mixed_precision: auto` picks it), with their share
of the machine's float32 matmul speed; their forward alone; the CTC loss and its gradient
as the step computes it (`asr.ctc.ctc_loss_in_parts`). The rest of the step (conv, dropout, softmax, Adam, the
finiteness guard) is what remains.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_train import FRAMES_PER_SECOND, N_CLASSES, N_FEATS  # noqa: E402
from benchlib import build_train_model, synthetic_batch  # noqa: E402

from asr.config import Config  # noqa: E402
from asr.model import forward_flops_per_frame  # noqa: E402

# The matmul speed in a process of its own: this one fixes TensorFlow's threads at one per op before any op runs.
PEAK = ("from asr.runtime import import_tensorflow; from bench_train import matmul_gflops; "
        "print(matmul_gflops(import_tensorflow()))")


def median_seconds(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        for tensor in result if isinstance(result, (list, tuple)) else [result]:
            np.asarray(tensor)  # wait for the value
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chars-per-second", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from asr.runtime import available_cores, import_tensorflow

    peak = float(subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.split()[-1])  # TensorFlow's default threads
    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    import keras

    from asr.ctc import ctc_loss_in_parts
    from asr.lstm import bidirectional_lstm

    cfg = Config()
    m, stride = cfg.model, cfg.model.conv_stride
    frames, chars = int(args.seconds * FRAMES_PER_SECOND), int(args.seconds * args.chars_per_second)
    train_model = build_train_model(m, cfg.train, N_FEATS, N_CLASSES)
    batch = synthetic_batch(np.random.default_rng(0), args.batch, frames, chars, N_FEATS, N_CLASSES, stride)
    batch.pop("feat_lens")
    tensors = {k: tf.constant(v) for k, v in batch.items()}
    dummy = np.zeros(args.batch, np.float32)
    blstms = [layer for layer in train_model.layers if isinstance(layer, keras.layers.Bidirectional)]
    out_frames = int(batch["out_lens"][0])
    x = tf.random.normal([args.batch, out_frames, m.conv_channels], seed=0)
    probs = tf.Variable(tf.nn.softmax(tf.random.normal([args.batch, out_frames, N_CLASSES], seed=1)))
    parts = available_cores()

    def lstms() -> Any:
        h = x
        for layer in blstms:
            h = bidirectional_lstm(layer, h, train_model.products)
        return h

    @tf.function
    def lstm_step() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(lstms()))
        return tape.gradient(loss, [v for layer in blstms for v in layer.trainable_variables])

    @tf.function
    def ctc_step() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(ctc_loss_in_parts([probs, tensors["labels"], tensors["out_lens"],
                                                    tensors["label_lens"]], parts))
        return tape.gradient(loss, probs)

    parts_fns = {"whole step (train_on_batch)": lambda: train_model.train_on_batch(batch, dummy),
                 "BiLSTMs forward + backward": lstm_step, "BiLSTMs forward": tf.function(lstms),
                 f"CTC loss + gradient ({parts} pieces)": ctc_step}
    for fn in parts_fns.values():
        fn(), fn()  # tracing, memory
    # The BiLSTM stack's share of the model's FLOPs: no conv in front (its channels are the stack's input), no classes.
    lstm_flops = forward_flops_per_frame(dataclasses.replace(m, conv_channels=0), m.conv_channels, 0) \
        * args.batch * out_frames
    print(f"batch {args.batch} x {args.seconds:g} s; BiLSTM products {train_model.products}; machine: {peak:.0f} "
          "GFLOP/s on a 4096^3 float32 matmul")
    seconds = {name: median_seconds(fn, args.repeats) for name, fn in parts_fns.items()}
    for name, sec in seconds.items():
        line = f"{name:<36} {sec:6.3f} s"
        if name.startswith("BiLSTMs"):
            flops = lstm_flops * (3 if "backward" in name else 1)
            line += f"  {flops / sec / 1e9:6.1f} GFLOP/s = {flops / sec / 1e9 / peak:4.0%} of matmul"
        print(line, flush=True)
    rest = seconds["whole step (train_on_batch)"] - seconds["BiLSTMs forward + backward"]
    print(f"{'the rest of the step':<36} {rest:6.3f} s")


if __name__ == "__main__":
    main()
