"""Training FLOPs per audio-second of a config, a projected GPU epoch time, and (optionally) a measured speed.

    .venv/bin/python scripts/project_gpu_time.py recipes/*/*.yaml --hours 100
    .venv/bin/python scripts/project_gpu_time.py recipes/librispeech/cpu.yaml --measure --batch 8 --steps 2

Forward FLOPs per output frame: `asr.model.forward_flops_per_frame` (n_classes = alphabet + blank).
Output frames per audio-second = sample_rate / hop_length / s (25 for a 10 ms hop and s = 4).
Training FLOPs per audio-second = 3 x forward (the backward pass costs about twice the forward).
Projected GPU time per epoch = train hours x 3600 x training FLOPs per audio-second / sustained FLOP/s,
with the sustained rate an assumption (`--tflops`), not a measurement; see the recipes' READMEs.

`--measure` times `train_on_batch` of the exact `asr train` model on random batches of `--batch` utterances
of `--seconds` s (random transcripts of 15 characters per second) on whatever device TensorFlow picks,
after one untimed warm-up step, and prints audio-seconds per wall-second and the achieved GFLOP/s.
Mixed precision is used only when the config asks for it and a GPU is present.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import build_train_model, synthetic_batch  # noqa: E402 - after the path insert

from asr.config import Config, load_config  # noqa: E402 - after the path insert, so a checkout needs no install
from asr.model import forward_flops_per_frame  # noqa: E402

CHARS_PER_SECOND = 15.0  # read English: ~14-16 characters (spaces included) per second


def n_classes(cfg: Config) -> int:
    """Softmax width: every alphabet character + the blank (an upper bound on the trained vocabulary)."""
    return len(cfg.text.alphabet) + 1


def count_params(cfg: Config) -> int:
    """Trainable parameters of the model (weights + biases of conv, BiLSTM stack and dense)."""
    m, d_in = cfg.model, cfg.features.n_mfcc
    total = 0
    if m.conv_channels:
        total += (m.conv_kernel * d_in + 1) * m.conv_channels
        d_in = m.conv_channels
    for _ in range(m.lstm_layers):
        total += 2 * 4 * (d_in + m.lstm_units + 1) * m.lstm_units  # 2 directions x 4 gates
        d_in = 2 * m.lstm_units
    return total + (d_in + 1) * n_classes(cfg)


def output_frames_per_second(cfg: Config) -> float:
    """Model output frames per second of audio."""
    return cfg.features.sample_rate / cfg.features.hop_length / cfg.model.conv_stride


def train_flops_per_audio_second(cfg: Config) -> float:
    """Training (forward + backward) FLOPs per second of audio."""
    return 3 * forward_flops_per_frame(cfg.model, cfg.features.n_mfcc, n_classes(cfg)) * output_frames_per_second(cfg)


def projected_epoch_seconds(cfg: Config, hours: float, tflops: float) -> float:
    """Seconds per epoch over `hours` of training audio at a sustained `tflops` TFLOP/s."""
    return hours * 3600 * train_flops_per_audio_second(cfg) / (tflops * 1e12)


def measure(cfg: Config, batch: int, seconds: float, steps: int) -> tuple[float, str]:
    """(audio-seconds per wall-second, device) of `steps` timed training steps after one warm-up step."""
    from asr.runtime import import_tensorflow

    tf = import_tensorflow()
    import keras

    keras.backend.clear_session()  # free the previous config's model
    gpus = tf.config.list_physical_devices("GPU")
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision and gpus else "float32")
    n_feats = cfg.features.n_mfcc
    train_model = build_train_model(cfg.model, cfg.train, n_feats, n_classes(cfg))
    frames = int(seconds * cfg.features.sample_rate / cfg.features.hop_length)
    inputs = synthetic_batch(np.random.default_rng(0), batch, frames, int(seconds * CHARS_PER_SECOND), n_feats,
                             n_classes(cfg), cfg.model.conv_stride)
    inputs.pop("feat_lens")
    dummy = np.zeros(batch, np.float32)
    train_model.train_on_batch(inputs, dummy)  # warm-up: tracing and memory allocation
    start = time.perf_counter()
    for _ in range(steps):
        train_model.train_on_batch(inputs, dummy)
    elapsed = (time.perf_counter() - start) / steps
    device = f"GPU {gpus[0].name}" if gpus else f"CPU ({len(os.sched_getaffinity(0))} cores)"
    return batch * seconds / elapsed, device


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", help="YAML configs, e.g. recipes/*/*.yaml")
    parser.add_argument("--hours", type=float, default=100.0, help="hours of training audio per epoch")
    parser.add_argument("--tflops", type=float, default=40.0,
                        help="assumed sustained TFLOP/s of the GPU for this workload (default: 40)")
    parser.add_argument("--measure", action="store_true", help="also time training steps on this machine")
    parser.add_argument("--batch", type=int, default=8, help="utterances per timed batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed utterance")
    parser.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up step)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(f"projection: {args.hours:g} h of training audio per epoch at an assumed {args.tflops:g} TFLOP/s sustained")
    print(f"{'config':<36}{'params (M)':>11}{'GFLOP/audio-s':>14}{'epoch (min)':>12}",
          "  measured" if args.measure else "", flush=True)
    for path in args.configs:
        cfg = load_config(path)
        gflops = train_flops_per_audio_second(cfg) / 1e9
        line = (f"{path:<36}{count_params(cfg) / 1e6:>11.1f}{gflops:>14.2f}"
                f"{projected_epoch_seconds(cfg, args.hours, args.tflops) / 60:>12.1f}")
        if args.measure:
            speed, device = measure(cfg, args.batch, args.seconds, args.steps)
            line += (f"  {speed:.1f} audio-s/s = {speed * gflops:.0f} GFLOP/s on {device} "
                     f"(batch {args.batch} x {args.seconds:g} s, {args.steps} steps)")
        print(line, flush=True)


if __name__ == "__main__":
    main()
