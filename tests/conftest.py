"""Shared fixtures: tiny corpora built in `tmp_path` from the bundled demo audio, and a tiny trained model.

Nothing is downloaded. Helpers (plain functions, importable as `from conftest import demo_utterances`):

    demo_utterances(split, n)        the first n demo (uid, flac path, TRANSCRIPT) of a split, spread over speakers
    demo_flacs(n, split)             the first n demo (flac path, transcript) pairs
    write_folder_corpus(root, items)   audio + same-named .txt transcripts
    write_librispeech_corpus(root, {split: items})   SPLIT/SPEAKER/CHAPTER/*.flac + *.trans.txt
    write_tone(path, seconds, rate, channels)  a synthetic tone file (any soundfile format)
    write_sentences_with_pauses(path, n)   demo sentences separated by known silences; their times and texts

Fixtures:

    folder_corpus       tmp corpus in folder layout (6 utterances, no split folders)
    librispeech_corpus  tmp corpus in LibriSpeech layout with train/dev/test folders
    tiny_config         a Config with a very small model (session scope)
    tiny_prepared       a prepared data dir of a small demo subset (session scope; do not modify it)
    tiny_bundle         a model bundle trained 2 epochs on `tiny_prepared` (session scope; read only)
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))  # lets test modules `from conftest import ...`

REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = REPO / "recipes" / "demo" / "corpus"

# A very small model: trains an epoch on a few dozen utterances in a second or two on 2 cores.
TINY_OVERRIDES = [
    "model.conv_channels=32", "model.conv_stride=2", "model.lstm_units=32", "model.lstm_layers=1",
    "model.dropout=0.0", "train.epochs=2", "train.batch_size=8", "train.learning_rate=0.003",
    "prepare.shard_size=50", "decode.batch_size=16",
]


def demo_utterances(split: str = "train", n: int | None = None) -> list[tuple[str, Path, str]]:
    """Demo utterances `(uid, flac, TRANSCRIPT)` of `split`, round-robin over speakers (varied voices)."""
    per_speaker: list[list[tuple[str, Path, str]]] = []
    for speaker in sorted((DEMO_CORPUS / split).iterdir()):
        items = []
        for trans in sorted(speaker.rglob("*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                uid, _, text = line.strip().partition(" ")
                items.append((uid, trans.parent / f"{uid}.flac", text))
        per_speaker.append(items)
    out = [item for group in zip(*per_speaker, strict=False) for item in group]  # interleave speakers
    return out if n is None else out[:n]


def demo_flacs(n: int, split: str = "train") -> list[tuple[Path, str]]:
    """The first `n` demo `(flac path, transcript)` pairs of `split` (read-only: copy before changing)."""
    return [(path, text) for _, path, text in demo_utterances(split, n)]


def write_folder_corpus(root: Path, items: Iterable[tuple[Path, str]]) -> Path:
    """Copy audio to `root/utt_NNN.flac` with the transcript in `root/utt_NNN.txt`; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (audio, text) in enumerate(items):
        shutil.copy(audio, root / f"utt_{k:03d}{audio.suffix}")
        (root / f"utt_{k:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return root


def write_librispeech_corpus(root: Path, splits: dict[str, list[tuple[Path, str]]]) -> Path:
    """LibriSpeech layout `root/SPLIT/1/2/1-2-NNNN.flac` + `1-2.trans.txt`; returns `root`."""
    for split, items in splits.items():
        chapter = root / split / "1" / "2"
        chapter.mkdir(parents=True, exist_ok=True)
        lines = []
        for k, (audio, text) in enumerate(items):
            uid = f"1-2-{split}{k:04d}"
            shutil.copy(audio, chapter / f"{uid}{audio.suffix}")
            lines.append(f"{uid} {text}")
        (chapter / "1-2.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> Path:
    """Write a sine tone (amplitude 0.5; channel c has frequency freq * (c + 1)) in the format of `path`."""
    t = np.arange(int(round(seconds * rate))) / rate
    audio = np.stack([0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio if channels > 1 else audio[:, 0], rate)
    return path


def write_sentences_with_pauses(path: Path, n: int = 10, seed: int = 0, snr_db: float | None = None
                                ) -> list[tuple[float, float, str]]:
    """`n` demo test sentences (varied voices) with 0.6-1.5 s of silence between them and 1 s at each end, at 16 kHz
    (white noise at `snr_db` against the speech, if given). Returns each sentence's `(start, end, TRANSCRIPT)`:
    seconds of its speech (10 ms frames within 40 dB of its loudest), the file's own silence left out."""
    rng = np.random.default_rng(seed)
    parts, spans, pos = [np.zeros(16000, np.float32)], [], 16000
    for k, (audio_path, text) in enumerate(demo_flacs(n, "test")):
        audio, _ = sf.read(str(audio_path), dtype="float32")
        frames = np.square(audio[: len(audio) // 160 * 160].reshape(-1, 160)).mean(axis=1) + 1e-12
        loud = np.flatnonzero(10 * np.log10(frames / frames.max()) > -40)
        spans.append(((pos + loud[0] * 160) / 16000, (pos + (loud[-1] + 1) * 160) / 16000, text))
        pause = np.zeros(16000 if k == n - 1 else int(rng.uniform(0.6, 1.5) * 16000), np.float32)
        parts += [audio, pause]
        pos += len(audio) + len(pause)
    audio = np.concatenate(parts)
    if snr_db is not None:
        speech = np.concatenate([audio[int(a * 16000):int(b * 16000)] for a, b, _ in spans])
        scale = np.sqrt(np.mean(speech ** 2) / 10 ** (snr_db / 10))
        audio += scale * rng.standard_normal(len(audio)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, 16000)
    return spans


@pytest.fixture
def folder_corpus(tmp_path: Path) -> Path:
    """Six demo utterances in folder layout (no split folders: prepare splits them by hash)."""
    return write_folder_corpus(tmp_path / "folder_corpus", demo_flacs(6))


@pytest.fixture
def librispeech_corpus(tmp_path: Path) -> Path:
    """LibriSpeech layout with train (12), dev (3) and test (3) split folders.

    12 train utterances are the fewest whose characters cover every demo transcript, so every dev and
    test character is one the model can emit.
    """
    return write_librispeech_corpus(tmp_path / "librispeech_corpus", {
        "train": demo_flacs(12, "train"), "dev": demo_flacs(3, "dev"), "test": demo_flacs(3, "test")})


@pytest.fixture(scope="session")
def tiny_config():  # -> asr.config.Config
    """Defaults + configs/demo.yaml with the TINY_OVERRIDES model and training settings."""
    from asr.config import load_config

    return load_config(REPO / "configs" / "demo.yaml", TINY_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LibriSpeech-layout corpus of 32 train, 8 dev and 8 test demo utterances (session scope, read only)."""
    root = tmp_path_factory.mktemp("tiny") / "corpus"
    return write_librispeech_corpus(root, {
        "train": demo_flacs(32, "train"), "dev": demo_flacs(8, "dev"), "test": demo_flacs(8, "test")})


@pytest.fixture(scope="session")
def tiny_prepared(tiny_corpus: Path, tiny_config) -> Path:
    """`asr prepare` output of `tiny_corpus` with `tiny_config` (session scope: never write into it)."""
    from asr.prepare import prepare

    out = tiny_corpus.parent / "data"
    prepare(tiny_corpus, out, tiny_config, n_jobs=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_prepared: Path, tiny_config) -> Path:
    """A model bundle trained 2 epochs on `tiny_prepared` (it transcribes badly; it exists to be loaded)."""
    import dataclasses

    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.train import train

    run = tiny_prepared.parent / "exp"
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(
        tiny_config.train, data_dir=str(tiny_prepared), out_dir=str(run)))
    return train(cfg, verbose=0)
