"""Augmentation speed per effect, in audio seconds per wall second of one process.

    python recipes/synth/local/bench_augment.py data/synth-corpus/train --n 40

Loads the first `--n` FLACs under the folder (sorted), runs each effect of `augment_audio` on all of them with
parameters drawn as `recipes/synth/local/augment_corpus.py` draws them, and prints the throughput. The first call of an
effect that needs librosa (tempo, pitch) includes its import and JIT warm-up, so one untimed warm-up runs first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from augment_audio import EFFECTS, AugmentConfig, apply_chain, draw_chain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder with FLAC files, e.g. data/synth-corpus/train")
    parser.add_argument("--n", type=int, default=40, help="files to load")
    args = parser.parse_args()
    files = sorted(args.folder.rglob("*.flac"))[: args.n]
    if not files:
        print(f"error: no FLAC files under {args.folder}", file=sys.stderr)
        return 1
    clips = [sf.read(str(f), dtype="float32") for f in files]
    seconds = sum(len(audio) / rate for audio, rate in clips)
    print(f"{len(clips)} files, {seconds:.1f} s of audio")
    for effect in EFFECTS:
        rng = np.random.default_rng(0)
        apply_chain(clips[0][0], clips[0][1], draw_chain((effect,), AugmentConfig(), rng), rng)  # warm-up
        start = time.perf_counter()
        for audio, rate in clips:
            apply_chain(audio, rate, draw_chain((effect,), AugmentConfig(), rng), rng)
        wall = time.perf_counter() - start
        print(f"{effect:<10} {seconds / wall:8.0f} audio-s per wall-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
