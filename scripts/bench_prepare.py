"""End-to-end throughput of `asr prepare`, in x real time, with 1 job and with all cores, in one run.

    .venv/bin/python scripts/bench_prepare.py --minutes 60
    .venv/bin/python scripts/bench_prepare.py --minutes 60 --rate 48000 --suffix .mp3   # Common Voice-like

Builds its own corpus in a temporary directory: LibriSpeech layout, 5-15 s utterances made by
concatenating demo clips (recipes/demo/corpus) into FLAC (or another soundfile format, and another
sample rate to include resampling). Then it times the whole command, `python -m asr prepare CORPUS
--out DATA --jobs N`, in a fresh process each time (interpreter start-up, imports, worker start-up,
reading the corpus, features, writing shards and manifests: everything a user waits for), and prints
audio seconds, wall seconds, x real time, and the parallel speed-up (best of `--repeat` interleaved
runs). It also counts the CPU seconds of all processes of each run (the workers included), which stay
meaningful on a machine others are busy with, where wall times and speed-ups do not.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo" / "corpus"
UTTS_PER_CHAPTER = 50


def demo_clips() -> list[tuple[np.ndarray, str]]:
    """All demo clips as (float32 [n] at 16 kHz, TRANSCRIPT)."""
    clips = []
    for trans in sorted(DEMO.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            uid, _, text = line.strip().partition(" ")
            audio, _ = sf.read(trans.parent / f"{uid}.flac", dtype="float32")
            clips.append((audio, text))
    return clips


def make_corpus(root: Path, seconds: float, rate: int, suffix: str, seed: int = 0) -> float:
    """Write utterances of 5-15 s (concatenated demo clips) until `seconds` of audio; returns the total."""
    import soxr

    clips, rng, total, k = demo_clips(), random.Random(seed), 0.0, 0
    lines: list[str] = []
    while total < seconds:
        target, parts, texts = rng.uniform(5.0, 15.0), [], []
        while sum(len(p) for p in parts) < target * 16000:
            audio, text = rng.choice(clips)
            parts.append(audio)
            texts.append(text)
        audio = np.concatenate(parts)
        audio = soxr.resample(audio, 16000, rate) if rate != 16000 else audio
        chapter, n = divmod(k, UTTS_PER_CHAPTER)
        folder = root / "train" / "1" / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"1-{chapter}-{n:04d}{suffix}", audio, rate)
        lines.append(f"1-{chapter}-{n:04d} {' '.join(texts)}")
        total += len(audio) / rate
        k += 1
        if n == UTTS_PER_CHAPTER - 1 or total >= seconds:
            (folder / f"1-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            lines = []
    return total


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux), so the forkserver and its workers count in RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_descendants() -> None:
    """Wait for every adopted descendant (the forkserver exits just after the main process)."""
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()


def time_prepare(corpus: Path, out: Path, jobs: int, shard_size: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all its processes) of one fresh `python -m asr prepare` run."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "asr", "prepare", str(corpus), "--out", str(out), "--jobs", str(jobs),
           "--set", f"prepare.shard_size={shard_size}", "--set", "prepare.max_duration=20"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    reap_descendants()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of audio in the corpus")
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the files (16000: no resampling)")
    parser.add_argument("--suffix", default=".flac", help="audio file type: .flac, .wav, .mp3, ...")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="the 'all cores' job count")
    parser.add_argument("--shard-size", type=int, default=50, help="prepare.shard_size (utterances per shard)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each setting; the fastest counts")
    parser.add_argument("--keep", type=Path, default=None, help="build the corpus here and keep it")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_prepare."))
    corpus = args.keep or work / "corpus"
    try:
        start = time.perf_counter()
        seconds = make_corpus(corpus, args.minutes * 60, args.rate, args.suffix)
        n_files = sum(1 for _ in corpus.rglob(f"*{args.suffix}"))
        print(f"corpus: {n_files} files, {seconds:.0f} s of audio, {args.rate} Hz {args.suffix} "
              f"(built in {time.perf_counter() - start:.1f} s)")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (others' work skews wall times)")
        become_subreaper()
        walls, cpus = {}, {}
        for _ in range(args.repeat):  # interleaved, so that both settings see the same background load
            for jobs in sorted({1, args.jobs}):
                wall, cpu = time_prepare(corpus, work / "data", jobs, args.shard_size)
                walls[jobs], cpus[jobs] = min(wall, walls.get(jobs, wall)), min(cpu, cpus.get(jobs, cpu))
        for jobs in sorted(walls):
            print(f"--jobs {jobs:>2}: {walls[jobs]:6.2f} s wall = {seconds / walls[jobs]:6.0f}x real time "
                  f"({seconds / walls[jobs] / jobs:5.0f}x per core); {cpus[jobs]:6.2f} CPU s in all processes "
                  f"= {seconds / cpus[jobs]:5.0f}x real time per CPU second")
        if len(walls) > 1:
            print(f"speed-up --jobs {args.jobs} vs --jobs 1: {walls[1] / walls[args.jobs]:.2f}x wall "
                  f"(ideal {args.jobs}); CPU cost of parallelism: {cpus[args.jobs] / cpus[1]:.2f}x the CPU seconds")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
