"""`asr transcribe` and the Python API: audio files -> text with word times and confidences.

    asr transcribe -m exp/demo/bundle recipes/demo/corpus/test/101/1/101-1-0000.flac
    asr transcribe -m exp/demo/bundle 'recordings/**/*.wav' --format json

    >>> import asr
    >>> m = asr.load_model("exp/demo/bundle")
    >>> t = m.transcribe("a.wav"); t.text, t.words[0].start

Audio: any format soundfile reads, any sample rate (resampled), any channel count (mixed down).
Audio longer than `decode.chunk_seconds` is recognised in chunks that overlap by CONTEXT_SECONDS on each
side; only each chunk's centre is kept, so every output frame sees context and memory stays bounded.
Chunks start on multiples of `hop_length * conv_stride` samples, so their frames line up exactly.

Word times come from the decoded path: each emitted character's frames (`asr.decoding.char_spans`),
grouped at spaces; a frame lasts `hop_length * conv_stride / sample_rate` seconds. A word's confidence is
the mean, over its frames, of the posterior of the class the path emits there.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import compute_mfcc, is_silent, load_audio
from asr.bundle import MODEL_FILE
from asr.config import DecodeConfig, FeatureConfig, TextConfig
from asr.corpus import AUDIO_SUFFIXES
from asr.decoding import Decoder, WordSpan
from asr.errors import AsrError
from asr.inference import TFLITE_FILE, LiteRTPredictor, Predictor, choose_runtime
from asr.text import Vocabulary

CONTEXT_SECONDS = 2.0  # audio each side of a long-audio chunk that the model sees but whose frames are dropped
FORMATS = ("txt", "json", "srt")
SRT_MAX_SECONDS, SRT_MAX_CHARS = 6.0, 42  # one subtitle cue at most this long / this many characters


@dataclass(frozen=True)
class Word:
    """One recognised word."""

    word: str
    start: float  # seconds from the start of the file
    end: float  # seconds
    confidence: float  # 0..1, see the module docstring


@dataclass(frozen=True)
class Transcript:
    """Recognition result for one file."""

    path: str
    text: str
    duration: float  # seconds of audio
    words: tuple[Word, ...] = ()

    def to_json(self) -> dict:
        """`{"path", "text", "duration", "words": [{"word", "start", "end", "confidence"}]}`."""
        return {"path": self.path, "text": self.text, "duration": self.duration,
                "words": [dataclasses.asdict(w) for w in self.words]}


@dataclass(frozen=True)
class Segment:
    """A stretch of an audio file to recognise (a whole file by default)."""

    path: str
    offset: float = 0.0  # seconds
    duration: float | None = None  # seconds; None = to the end of the file


@dataclass(frozen=True)
class ModelInfo:
    """What featurising and decoding need from a bundle, read without loading TensorFlow."""

    path: Path
    features: FeatureConfig
    text: TextConfig
    stride: int  # model.conv_stride: input frames per output frame
    vocab: Vocabulary
    pad_value: tuple[float, ...]  # the train-set feature mean (padding that normalises to 0)

    @property
    def frame_period(self) -> float:
        """Seconds per output frame: hop_length * conv_stride / sample_rate."""
        return self.features.hop_length * self.stride / self.features.sample_rate


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a bundle's config, vocabulary and statistics (not its Keras model); AsrError if it is no bundle."""
    from asr.bundle import bundle_dir, read_bundle_config, read_stats

    path = bundle_dir(path)
    features, text, model_cfg = read_bundle_config(path)
    return ModelInfo(path, features, text, model_cfg.conv_stride, Vocabulary.load(path / "vocab.json"),
                     tuple(read_stats(path, features.n_mfcc)["mean"]))


def expand_inputs(items: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """FILE | DIR | GLOB arguments -> (audio paths in order, [(argument, reason)] for those matching nothing).

    A directory contributes its audio files (by suffix, recursively, sorted); a pattern its matches.
    """
    paths: list[str] = []
    unmatched: list[tuple[str, str]] = []
    for item in items:
        if Path(item).is_dir():
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            paths += found
            unmatched += [] if found else [(item, "no audio files in this directory")]
        elif glob.has_magic(item) and not Path(item).exists():
            found = sorted(glob.glob(item, recursive=True))
            paths += found
            unmatched += [] if found else [(item, "no files match this pattern")]
        else:
            paths.append(item)  # a missing file is reported when it is read, in order
    return paths, unmatched


def audio_seconds(path: str) -> float:
    """Duration of an audio file from its header (0 when unreadable: the read reports it later)."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return 0.0
    return info.frames / max(1, info.samplerate)


class Recognizer:
    """A loaded model ready to transcribe files: featurise, run the network (TF or LiteRT), decode."""

    def __init__(self, bundle: Any, decode: DecodeConfig | None = None, runtime: str = "auto", **overrides: Any):
        """`bundle`: a loaded `asr.bundle.Bundle` or a bundle directory. `overrides`: DecodeConfig fields.

        `runtime`: tf | litert | auto (LiteRT when the bundle has model.tflite and LiteRT is installed; see
        `asr.inference.choose_runtime`).
        """
        self.decode = dataclasses.replace(decode or DecodeConfig(), **{k: v for k, v in overrides.items()
                                                                       if v is not None})
        if self.decode.chunk_seconds <= 2 * CONTEXT_SECONDS:
            raise AsrError(f"decode.chunk_seconds {self.decode.chunk_seconds}: must exceed {2 * CONTEXT_SECONDS}")
        loaded = not isinstance(bundle, (str, Path))
        self.info = read_model_info(bundle.path if loaded else bundle)
        self.runtime = "tf" if loaded else choose_runtime(runtime, self.info.path)
        self.predictor = self._predictor(bundle if loaded else None, fallback=runtime == "auto")
        self.decoder = Decoder.from_config(self.decode, self.info.vocab.chars)

    def _predictor(self, bundle: Any, fallback: bool) -> Any:
        """LiteRT on the bundle's model.tflite, or TensorFlow on its Keras model (imported quietly); with
        `fallback` (runtime auto), a damaged model.tflite falls back to TensorFlow with a warning."""
        if self.runtime == "litert":
            try:
                return LiteRTPredictor(self.info.path / TFLITE_FILE)
            except AsrError as err:
                if not fallback:
                    raise
                print(f"warning: {err}; using {MODEL_FILE} (TensorFlow) instead", file=sys.stderr, flush=True)
                self.runtime = "tf"
        if bundle is None:
            from asr.bundle import load_bundle
            from asr.runtime import import_tensorflow

            import_tensorflow()
            bundle = load_bundle(self.info.path)
        return Predictor(bundle.model, self.info.stride, self.info.pad_value, self.decode.batch_size)

    def transcribe(self, path: str | Path) -> Transcript:
        """Transcribe one audio file; AsrError when it cannot be read."""
        _, result = next(self.recognize([Segment(str(path))]))
        if isinstance(result, AsrError):
            raise result
        return result

    def transcribe_many(self, paths: Sequence[str | Path]) -> Iterator[tuple[str, Transcript | AsrError]]:
        """Yield `(path, Transcript)` or `(path, AsrError)` per file, in order; bad files do not stop the rest."""
        for segment, result in self.recognize([Segment(str(p)) for p in paths]):
            yield segment.path, result

    def recognize(self, segments: Sequence[Segment]) -> Iterator[tuple[Segment, Transcript | AsrError]]:
        """Yield a result per segment, in order. Short segments are batched, long ones chunked."""
        window = 4 * self.decode.batch_size  # segments featurised at a time: bounded memory for many files
        for k in range(0, len(segments), window):
            yield from self._recognize_window(segments[k:k + window])

    def _recognize_window(self, segments: Sequence[Segment]) -> Iterator[tuple[Segment, Transcript | AsrError]]:
        results: list[Transcript | AsrError | None] = [None] * len(segments)
        short: list[tuple[int, np.ndarray, float]] = []  # (position, feats, seconds)
        for i, seg in enumerate(segments):
            try:
                seconds = self._duration(seg)
                if seconds > self.decode.chunk_seconds:
                    results[i] = self._finish(seg, self._long_probs(seg, seconds), seconds)
                else:
                    audio = self._load(seg)
                    if is_silent(audio):  # nothing was said: the model would still guess a letter from the noise
                        results[i] = Transcript(seg.path, "", round(audio.size / self._rate, 3), ())
                        continue
                    short.append((i, compute_mfcc(audio, self.info.features), audio.size / self._rate))
            except AsrError as err:
                results[i] = err
        for (i, _, seconds), probs in zip(short, self.predictor([f for _, f, _ in short]) if short else []):
            results[i] = self._finish(segments[i], probs, seconds)
        for seg, result in zip(segments, results):
            assert result is not None
            yield seg, result

    @property
    def _rate(self) -> int:
        return self.info.features.sample_rate

    def _duration(self, seg: Segment) -> float:
        return seg.duration if seg.duration is not None else max(0.0, audio_seconds(seg.path) - seg.offset)

    def _load(self, seg: Segment) -> np.ndarray:
        """float32 samples of a segment at the model's rate; AsrError when unreadable or empty."""
        audio = load_audio(seg.path, self._rate, seg.offset, seg.duration)
        if audio.size == 0:
            raise AsrError(f"{seg.path}: empty audio")
        return audio

    def _long_probs(self, seg: Segment, seconds: float) -> np.ndarray:
        """probs [T', V] of a long segment, from overlapping chunks whose centres are kept."""
        hop = self.info.features.hop_length * self.info.stride  # samples per output frame
        context = int(CONTEXT_SECONDS * self._rate) // hop  # output frames seen but dropped, each side
        core = int(self.decode.chunk_seconds * self._rate) // hop - 2 * context  # output frames kept per chunk
        total = math.ceil((1 + int(seconds * self._rate) // self.info.features.hop_length) / self.info.stride)
        starts = list(range(0, total, core))
        pieces: list[np.ndarray] = []
        for k in range(0, len(starts), self.decode.batch_size):
            feats, keep = [], []
            for first in starts[k:k + self.decode.batch_size]:
                lo = max(0, first - context)  # output frame where the chunk's audio starts
                offset = lo * hop / self._rate
                length = min((first + core + context - lo) * hop / self._rate, seconds - offset)
                feats.append(compute_mfcc(load_audio(seg.path, self._rate, seg.offset + offset, length),
                                          self.info.features))
                keep.append((first - lo, min(core, total - first)))
            for probs, (skip, n) in zip(self.predictor(feats), keep):
                pieces.append(probs[skip:skip + n])
        return np.concatenate(pieces)

    def _finish(self, seg: Segment, probs: np.ndarray, seconds: float) -> Transcript:
        """Decode `probs` [T', V] into a Transcript with word times in seconds."""
        text, spans = self.decoder(probs)
        return Transcript(seg.path, text, round(seconds, 3), tuple(self._word(w) for w in spans))

    def _word(self, span: WordSpan) -> Word:
        period = self.info.frame_period
        return Word(span.text, round(span.start * period, 3), round(span.end * period, 3), span.confidence)


def load_model(path: str | Path, beam_width: int = 1, runtime: str = "auto", **decode: Any) -> Recognizer:
    """Load a model bundle as a Recognizer (`decode`: other DecodeConfig fields, e.g. lm_path)."""
    return Recognizer(path, runtime=runtime, beam_width=beam_width, **decode)


def transcribe_inputs(model: str | Path, paths: Sequence[str], decode: DecodeConfig | None = None,
                      runtime: str = "auto") -> Iterator[tuple[str, Transcript | AsrError]]:
    """`asr transcribe`: audio `paths` (from `expand_inputs`); yields `(path, Transcript | AsrError)` in order."""
    if paths:
        yield from Recognizer(model, decode, runtime).transcribe_many(paths)


def output_paths(paths: Sequence[str], out_dir: Path, fmt: str) -> dict[str, Path]:
    """Where `--output-dir` writes each input's transcript, so that no result overwrites another.

    Like whisper and Vosk: OUT/x.FMT for x.wav, while the inputs' names are unique. When two files share a name,
    every transcript keeps its folder below the inputs' common folder (a/x.wav -> OUT/a/x.txt, b/x.wav ->
    OUT/b/x.txt) and files of one folder that differ only in suffix keep it (c/y.wav, c/y.flac ->
    OUT/c/y.wav.txt, OUT/c/y.flac.txt).
    """
    files = {p: Path(p).resolve() for p in paths}
    unique = set(files.values())
    if len({f.stem for f in unique}) == len(unique):
        targets = {p: out_dir / f"{f.stem}.{fmt}" for p, f in files.items()}
    else:
        root = Path(os.path.commonpath([f.parent for f in unique]))
        bases = Counter(f.with_suffix("") for f in unique)
        names = {f: f.name if bases[f.with_suffix("")] > 1 else f.stem for f in unique}
        targets = {p: out_dir / f.parent.relative_to(root) / f"{names[f]}.{fmt}" for p, f in files.items()}
    first: dict[Path, str] = {}
    for p, target in targets.items():
        other = first.setdefault(target, p)
        if files[other] != files[p]:  # only names like x.wav.mp3 beside x.wav and x.flac get here
            raise AsrError(f"--output-dir: {other} and {p} would both be written to {target}; rename one of them")
    return targets


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_cues(words: Sequence[Word]) -> list[tuple[float, float, str]]:
    """Group words into subtitle cues of at most SRT_MAX_SECONDS and SRT_MAX_CHARS."""
    cues: list[list[Word]] = []
    for w in words:
        cue = cues[-1] if cues else None
        if cue and w.end - cue[0].start <= SRT_MAX_SECONDS and \
                sum(len(x.word) + 1 for x in cue) + len(w.word) <= SRT_MAX_CHARS:
            cue.append(w)
        else:
            cues.append([w])
    return [(c[0].start, c[-1].end, " ".join(w.word for w in c)) for c in cues]


def format_transcript(t: Transcript, fmt: str, with_path: bool = False) -> str:
    """The text to print for one file: txt (`PATH<TAB>text` when `with_path`), a JSON line, or SRT."""
    if fmt == "json":
        return json.dumps(t.to_json(), ensure_ascii=False)
    if fmt == "srt":
        return "\n".join(f"{k}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n"
                         for k, (a, b, text) in enumerate(srt_cues(t.words), start=1))
    return f"{t.path}\t{t.text}" if with_path else t.text
