"""Copy a corpus folder with its audio resampled, e.g. to test a model on real 8 kHz files.

    python recipes/synth/local/resample_corpus.py data/synth-corpus/test-unseen data/synth-8k/test-unseen --rate 8000
    asr eval --model asr/models/en-synth --corpus data/synth-8k

Every audio file libsndfile reads (.flac .wav .ogg .mp3) is written as 16-bit FLAC at --rate under the same relative
path and name (so utterance ids stay the same); other files (transcripts) are copied. `asr` resamples such files
back to the model's rate itself, so scoring the copy measures what a user's narrowband recording gets. Existing output
files are kept (an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import load_audio
from asr.errors import AsrError
from asr.files import atomic_path

AUDIO = {".flac", ".wav", ".ogg", ".mp3"}


def resample_corpus(src: Path, dst: Path, rate: int) -> int:
    """Write the resampled copy of `src` to `dst`; returns how many audio files were written."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    written = 0
    for path in tqdm(files, desc="resampling", unit="file"):
        out = dst / path.relative_to(src)
        if path.suffix.lower() in AUDIO:
            out = out.with_suffix(".flac")
        if out.exists():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() not in AUDIO:
            shutil.copyfile(path, out)
            continue
        try:
            narrow = np.clip(load_audio(path, rate), -1.0, 1.0)  # mono, at `rate`
        except AsrError as exc:
            sys.exit(f"error: {exc}")
        with atomic_path(out) as tmp:
            sf.write(tmp, narrow, rate, subtype="PCM_16", format="FLAC")
        written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="corpus folder to copy")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--rate", type=int, default=8000, help="output sample rate in Hz (default 8000)")
    args = parser.parse_args(argv)
    if not args.src.is_dir():
        sys.exit(f"error: {args.src}: not a folder; give the corpus folder to copy")
    if args.rate < 1000:
        sys.exit(f"error: --rate {args.rate}: give a sample rate in Hz, e.g. 8000")
    print(f"{resample_corpus(args.src, args.dst, args.rate)} audio files written to {args.dst} at {args.rate} Hz")


if __name__ == "__main__":
    main()
