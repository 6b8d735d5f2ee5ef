"""The bench model of `scripts/bench_train.py` in plain PyTorch: what a SpeechBrain or icefall user trains with.

    /tmp/torchpeer/bin/python scripts/peer_torch.py --batch 32 --seconds 10          # any Python with torch
    .venv/bin/python scripts/bench_train.py --no-baseline --peer torch --peer-python /tmp/torchpeer/bin/python

torch is never a dependency of this project: install it in a virtual environment of its own
(`python3 -m venv /tmp/torchpeer && /tmp/torchpeer/bin/pip install torch`). The model is the project's
(`asr.model.build_model`) layer for layer: Conv1D (same padding, stride) + ReLU -> dropout -> N x BiLSTM,
each followed by dropout -> Linear -> log-softmax; `F.ctc_loss` (blank 0); Adam with global-norm clipping.
`--bf16` runs the forward under `torch.autocast("cpu", dtype=torch.bfloat16)` (log-softmax and loss float32):
the like-for-like peer of the project's bfloat16 products (`train.mixed_precision: auto` on such a CPU).
Inputs: one synthetic batch of full-length utterances, as in bench_train.py. It prints one `RESULT {json}`
line: seconds per step, audio-s per wall-s and per CPU-s (all threads' process time), with torch's default
thread count unless `--threads` says otherwise (bench_train.py runs it with OMP_WAIT_POLICY=PASSIVE unless the
environment sets it: see `_peer_env` there). Only torch and the standard library are imported.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chars-per-second", type=float, default=12.0)
    parser.add_argument("--feats", type=int, default=20)
    parser.add_argument("--classes", type=int, default=29)
    parser.add_argument("--conv-channels", type=int, default=256)
    parser.add_argument("--conv-kernel", type=int, default=5)
    parser.add_argument("--conv-stride", type=int, default=3)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--clipnorm", type=float, default=5.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--bf16", action="store_true",
                        help="mixed precision: the forward under torch.autocast('cpu', bfloat16), log-softmax float32")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args, torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames, chars = int(args.seconds * 100), int(args.seconds * args.chars_per_second)
    feats = torch.randn(args.batch, frames, args.feats)
    labels = torch.randint(1, args.classes, (args.batch, chars))
    out_lens = torch.full((args.batch,), -(-frames // args.conv_stride))
    label_lens = torch.full((args.batch,), chars)

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(feats)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [B, T', V] -> [T', B, V]
        loss = torch.nn.functional.ctc_loss(log_probs, labels, out_lens, label_lens, blank=0, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        if args.clipnorm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clipnorm)
        optimizer.step()
        return loss.item() / args.batch

    model.train()
    for _ in range(args.warmup):
        step()
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = float("nan")
    for _ in range(args.steps):
        loss = step()
    sec, cpu = (time.perf_counter() - start) / args.steps, (time.process_time() - cpu_start) / args.steps
    audio = args.batch * args.seconds
    wait = os.environ.get("OMP_WAIT_POLICY", "default wait")
    precision = ", bf16 autocast" if args.bf16 else ""
    name = f"plain PyTorch {torch.__version__} ({torch.get_num_threads()} thr, {wait}{precision})"
    print("RESULT " + json.dumps({"name": name,
                                  "sec": sec, "speed": audio / sec, "cpu_speed": audio / cpu, "loss": loss}),
          flush=True)


def build(args: argparse.Namespace, torch):  # noqa: ANN001 - torch is imported by main
    """conv -> dropout -> BiLSTM stack (dropout after each layer) -> Linear (logits), batch-first."""
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(args.feats, args.conv_channels, args.conv_kernel, stride=args.conv_stride,
                                  padding=args.conv_kernel // 2)  # 'same': ceil(T / stride) output frames
            self.lstms = nn.ModuleList(
                nn.LSTM(args.conv_channels if i == 0 else 2 * args.units, args.units, batch_first=True,
                        bidirectional=True) for i in range(args.layers))
            self.drop = nn.Dropout(args.dropout)
            self.out = nn.Linear(2 * args.units, args.classes)

        def forward(self, x):  # noqa: ANN001, ANN202
            x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # [B, T, F] -> [B, T', C]
            x = self.drop(x)
            for lstm in self.lstms:
                x = self.drop(lstm(x)[0])
            return self.out(x)  # logits: log-softmax in float32 in the step

    return Model()


if __name__ == "__main__":
    main()
