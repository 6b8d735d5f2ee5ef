"""Transcription speed, memory and stream latency: cold start for a 5 s file, steady-state real-time factor, peak
memory for a 20-minute file, delay from the end of an utterance to its `--stream` line.

    .venv/bin/python scripts/bench_transcribe.py --bundle exp/demo/bundle [--default-model] [--forward]
    .venv/bin/python scripts/bench_transcribe.py --memory --latency      # the bundled default model, default settings

cold start   wall time of `asr transcribe -m BUNDLE five.wav` as a new process (process start to printed text),
             per runtime: LiteRT (needs BUNDLE/model.tflite; this script exports it into a copy of the bundle
             when missing) and TensorFlow. Target: <= 3 s.
steady state RTF = wall seconds / audio seconds for 24 files of 5-10 s in one warm Recognizer, per runtime.
             Target: <= 0.02 for the default model. `--default-model` also measures an untrained model with
             the default ModelConfig (speed does not depend on the weights).
--forward    one 5 s utterance through model.predict, a traced tf.function, tf.function(jit_compile=True)
             and LiteRT: milliseconds each.
--memory     peak RSS of `asr transcribe long.wav` (a new process, default settings) for a 20-minute recording of
             demo sentences and pauses. Target: <= 400 MB.
--latency    feeds a recording of sentences and pauses to `asr transcribe --stream -` through a pipe in real time
             (WAV, 20 ms writes) and times each JSON line from the moment the end of its sentence's speech was
             written. Target: <= 0.5 s on 2 cores.
Run on an otherwise idle machine; numbers drift by up to 2x with other load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
ASR = str(Path(sys.executable).with_name("asr"))


def demo_audio(seconds: float, start: int = 0, rate: int = 16000) -> np.ndarray:
    """`seconds` of demo test speech, utterances back to back from the `start`-th file on."""
    files = sorted((REPO / "recipes/demo/corpus/test").rglob("*.flac"))
    chunks, total = [], 0
    for path in files[start:] + files[:start]:
        audio, _ = sf.read(str(path), dtype="float32")
        chunks.append(audio)
        total += len(audio)
        if total >= seconds * rate:
            break
    return np.concatenate(chunks)[: int(seconds * rate)]


def sentences_with_pauses(seconds: float, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Demo sentences (test then dev, repeated) with 0.5-1.5 s pauses, `seconds` long at 16 kHz, and each
    sentence's (start, end) of speech in seconds (its 10 ms frames within 40 dB of the loudest)."""
    rng = np.random.default_rng(seed)
    files = sorted((REPO / "recipes/demo/corpus/test").rglob("*.flac")) + \
        sorted((REPO / "recipes/demo/corpus/dev").rglob("*.flac"))
    parts, spans, pos, k = [np.zeros(16000, np.float32)], [], 16000, 0
    while pos < seconds * 16000:
        audio, _ = sf.read(str(files[k % len(files)]), dtype="float32")
        power = np.square(audio[: len(audio) // 160 * 160].reshape(-1, 160)).mean(axis=1) + 1e-12
        loud = np.flatnonzero(power > power.max() * 1e-4)
        spans.append(((pos + loud[0] * 160) / 16000, (pos + (loud[-1] + 1) * 160) / 16000))
        pause = np.zeros(int(rng.uniform(0.5, 1.5) * 16000), np.float32)
        parts += [audio, pause]
        pos, k = pos + len(audio) + len(pause), k + 1
    return np.concatenate(parts)[: int(seconds * 16000)], [s for s in spans if s[1] < seconds]


# Runs a command and prints its peak RSS (KiB). A child counts its parent's pages until it execs, so the
# measuring parent must be small: this one, not the benchmark holding 20 minutes of audio.
MEASURE = "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); " \
          "_, status, usage = os.wait4(p.pid, 0); print(status, usage.ru_maxrss)"


def peak_memory(bundle: Path, wav: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of `asr transcribe -m BUNDLE wav` in a new process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", MEASURE, ASR, "transcribe", "-m", str(bundle), str(wav)],
                         capture_output=True, text=True, check=True)
    status, kib = out.stdout.split()
    if status != "0":
        raise SystemExit(f"asr transcribe failed: {out.stderr}")
    return int(kib) / 1024, time.perf_counter() - t0  # ru_maxrss: KiB on Linux


def stream_latency(bundle: Path, audio: np.ndarray, spans: list[tuple[float, float]]) -> list[float]:
    """Seconds from writing the end of each sentence's speech to reading its `--stream` line (one per sentence)."""
    import io
    import threading

    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    data, header = buf.getvalue(), 44  # a WAV header, then 16-bit samples
    proc = subprocess.Popen([ASR, "transcribe", "--stream", "-m", str(bundle), "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    arrivals: list[tuple[float, dict]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # binary lines: json.loads takes UTF-8 bytes
            arrivals.append((time.perf_counter(), json.loads(line)))

    reader = threading.Thread(target=read)
    reader.start()
    assert proc.stdin is not None
    proc.stdin.write(data[:header])
    proc.stdin.flush()
    time.sleep(3.0)  # the process starts (model load) before the speaker does
    t0, step = time.perf_counter(), 320  # 20 ms of samples per write, as arecord's period
    for k in range(0, len(audio), step):
        time.sleep(max(0.0, t0 + k / 16000 - time.perf_counter()))
        proc.stdin.write(data[header + 2 * k: header + 2 * (k + step)])
        proc.stdin.flush()
    proc.stdin.close()
    reader.join()
    proc.wait()
    delays = []
    for start, end in spans:  # the line whose segment holds this sentence
        lines = [t for t, line in arrivals if line["start"] < end and line["end"] > start]
        if lines:
            delays.append(lines[-1] - (t0 + end))
    print(f"  {len(arrivals)} lines for {len(spans)} sentences ({len(spans) - len(delays)} sentences without one)")
    return delays


def memory_and_latency(bundle: Path, work: Path, memory: bool, latency: bool) -> None:
    """Print the --memory and --latency measurements."""
    if memory:
        wav = work / "twenty.wav"
        audio, spans = sentences_with_pauses(1200.0)
        sf.write(str(wav), audio, 16000)
        rss, wall = peak_memory(bundle, wav)
        print(f"20-minute file ({len(spans)} sentences): peak RSS {rss:.0f} MB (target <= 400), {wall:.1f} s wall, "
              f"RTF {wall / 1200:.4f}")
    if not latency:
        return
    audio, spans = sentences_with_pauses(60.0, seed=1)
    delays = stream_latency(bundle, audio, spans)
    print(f"stream latency, end of speech -> JSON line, {len(delays)} sentences: median "
          f"{statistics.median(delays):.2f} s, 90th percentile {np.percentile(delays, 90):.2f} s, max "
          f"{max(delays):.2f} s (target <= 0.5 s; {os.cpu_count()} cores)")


def with_tflite(bundle: Path, work: Path) -> Path:
    """`bundle` itself when it has model.tflite, else a copy of it with the export added."""
    if (bundle / "model.tflite").is_file():
        return bundle
    copy = shutil.copytree(bundle, work / "bundle_tflite")
    subprocess.run([ASR, "export", str(copy), "--format", "tflite"], check=True, capture_output=True)
    return copy


def cold_start(bundle: Path, wav: Path, runtime: str, repeats: int) -> list[float]:
    """Wall seconds of each `asr transcribe` run (a new process each time)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([ASR, "transcribe", "-m", str(bundle), str(wav), "--runtime", runtime],
                             capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise SystemExit(f"asr transcribe failed: {out.stderr}")
    return times


def steady_rtf(bundle: Path, runtime: str, files: list[Path], audio_seconds: float) -> float:
    """Wall / audio for transcribing `files` with a warm Recognizer (one warm-up pass first)."""
    from asr.recognize import Recognizer

    rec = Recognizer(bundle, runtime=runtime)
    list(rec.transcribe_many(files[:2]))
    t0 = time.perf_counter()
    results = list(rec.transcribe_many(files))
    assert all(not isinstance(r, Exception) for _, r in results)
    return (time.perf_counter() - t0) / audio_seconds


def default_model_bundle(like: Path, work: Path) -> Path:
    """A bundle with the default ModelConfig and random weights, with `like`'s features and vocabulary."""
    from asr.runtime import import_tensorflow

    import_tensorflow()  # quietly, before Keras imports it
    from asr.bundle import load_bundle, save_bundle
    from asr.config import ModelConfig
    from asr.model import build_model

    ref = load_bundle(like)
    model = build_model(ModelConfig(), ref.features.n_mfcc, ref.vocab.size, ref.stats["mean"], ref.stats["std"])
    out = work / "default_model"
    save_bundle(out, model, ref.features, ref.text, ModelConfig(), ref.vocab, ref.stats, {"note": "untrained"})
    return out


def forward_table(bundle: Path, wav: Path) -> None:
    """Milliseconds for one 5 s utterance through each way of running the network."""
    from asr.runtime import import_tensorflow

    tf = import_tensorflow()
    from asr.audio import compute_mfcc, load_audio
    from asr.bundle import load_bundle
    from asr.inference import LiteRTPredictor

    b = load_bundle(bundle)
    x = compute_mfcc(load_audio(wav, b.features.sample_rate), b.features)[None]  # [1, T, n_mfcc]
    graph = tf.function(lambda f: b.model(f, training=False))
    xla = tf.function(lambda f: b.model(f, training=False), jit_compile=True)
    t0 = time.perf_counter()
    xla(x)
    compile_s = time.perf_counter() - t0
    ways = {"model.predict": lambda: b.model.predict(x, verbose=0), "tf.function (graph)": lambda: graph(x),
            "tf.function(jit_compile=True)": lambda: xla(x)}
    if (bundle / "model.tflite").is_file():
        lite = LiteRTPredictor(bundle / "model.tflite")
        ways["LiteRT (model.tflite)"] = lambda: lite.log_probs(x[0])
    print(f"\nforward pass, one {x.shape[1] / 100:.1f} s utterance (XLA compile for this shape: {compile_s:.2f} s)")
    for name, fn in ways.items():
        fn()
        best = min(_timed(fn) for _ in range(5))
        print(f"  {name:<32}{1000 * best:8.1f} ms   RTF {best / (x.shape[1] / 100):.4f}")


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="default: exp/demo/bundle; with --memory or "
                        "--latency only: the bundled default model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--default-model", action="store_true", help="also time the default ModelConfig")
    parser.add_argument("--forward", action="store_true", help="compare ways of running the network")
    parser.add_argument("--memory", action="store_true", help="peak RSS for a 20-minute file")
    parser.add_argument("--latency", action="store_true", help="--stream delay, fed in real time")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_transcribe_"))
    if args.memory or args.latency:
        from asr.bundle import DEFAULT_MODEL, bundle_dir

        memory_and_latency(bundle_dir(str(args.bundle) if args.bundle else DEFAULT_MODEL), work, args.memory,
                           args.latency)
        shutil.rmtree(work)
        return
    args.bundle = args.bundle or REPO / "exp/demo/bundle"
    wav = work / "five.wav"
    sf.write(str(wav), demo_audio(5.0), 16000)
    files = []
    for k in range(24):
        files.append(work / f"utt{k:02d}.wav")
        sf.write(str(files[-1]), demo_audio(5.0 + 5.0 * k / 23, start=3 * k), 16000)
    audio_seconds = sum(sf.info(str(f)).duration for f in files)

    bundles = {"bundle": with_tflite(args.bundle, work)}
    if args.default_model:
        bundles["default model"] = with_tflite(default_model_bundle(args.bundle, work), work / "d")
    print(f"{'model':<15}{'runtime':<9}{'cold start 5 s file (s)':>26}{'steady RTF':>12}")
    for label, bundle in bundles.items():
        for runtime in ("litert", "tf"):
            cold = cold_start(bundle, wav, runtime, args.repeats)
            rtf = steady_rtf(bundle, runtime, files, audio_seconds)
            print(f"{label:<15}{runtime:<9}{min(cold):>12.2f} (median {statistics.median(cold):.2f}){rtf:>12.4f}")
    print(f"(steady state: {len(files)} files, {audio_seconds:.0f} s of audio; targets: cold <= 3 s, RTF <= 0.02)")
    if args.forward:
        for label, bundle in bundles.items():
            print(f"\n[{label}]", end="")
            forward_table(bundle, wav)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
