"""Recognition, the library under `asr transcribe`, `asr eval --corpus` and the Python API: audio -> utterances ->
text with word times and confidences.

    >>> import asr
    >>> m = asr.load_model("exp/demo/bundle")
    >>> t = m.transcribe("a.wav"); t.text, t.words[0].start, t.segments[0].end
    >>> m.transcribe(samples, sample_rate=16000)          # a numpy array [n] or [n, channels]
    >>> for seg in m.segments(open("long.wav", "rb")): print(seg.start, seg.text)   # as each utterance ends

Audio: any source `asr.audio.AudioStream` reads (a file of any format and rate soundfile reads, standard input,
a file object, raw PCM, a numpy array), read block by block. `asr.segment.Segmenter` cuts it into utterances at
pauses as it goes; each utterance (with a little context each side) is recognised on its own, as soon as it ends, so
memory stays bounded and the text of an utterance depends only on its own audio: a file, the same file through a
pipe, and the file among many others give the same text. An utterance longer than `decode.chunk_seconds` (speech
with no pause) is recognised in chunks that overlap by CONTEXT_SECONDS on each side; only each chunk's centre is
kept. Chunks start on multiples of `hop_length * conv_stride` samples, so their frames line up exactly.

Word times come from the decoded path: each emitted character's frames (`asr.decoding.char_spans`),
grouped at spaces; a frame lasts `ModelInfo.frame_period` seconds. A word's confidence is the mean, over its
frames, of the posterior of the class the path emits there.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import STDIN, AudioSource, AudioStream, compute_mfcc, is_silent, load_audio, num_frames
from asr.batch import frame_period, output_lengths
from asr.bundle import MODEL_FILE
from asr.config import DecodeConfig, FeatureConfig, TextConfig
from asr.decoding import Decoder, WordSpan
from asr.errors import AsrError
from asr.inference import TFLITE_FILE, LiteRTPredictor, Predictor, choose_runtime
from asr.segment import Segmenter, Utterance
from asr.text import Vocabulary

CONTEXT_SECONDS = 2.0  # audio each side of a long-audio chunk that the model sees but whose frames are dropped


@dataclass(frozen=True)
class Word:
    """One recognised word."""

    word: str
    start: float  # seconds from the start of the audio
    end: float  # seconds
    confidence: float  # 0..1, see the module docstring


@dataclass(frozen=True)
class Segment:
    """One utterance: speech between two pauses, recognised on its own."""

    start: float  # seconds from the start of the audio
    end: float  # seconds
    text: str
    words: tuple[Word, ...] = ()

    def to_json(self) -> dict:
        """`{"start", "end", "text", "words": [{"word", "start", "end", "confidence"}]}`."""
        return {"start": self.start, "end": self.end, "text": self.text,
                "words": [dataclasses.asdict(w) for w in self.words]}


@dataclass(frozen=True)
class Transcript:
    """Recognition result for one source: its utterances (`segments`) and all their words."""

    path: str
    text: str
    duration: float  # seconds of audio
    words: tuple[Word, ...] = ()
    segments: tuple[Segment, ...] = ()

    def to_json(self) -> dict:
        """`{"path", "text", "duration", "segments": [{"start", "end", "text"}], "words": [...]}`."""
        return {"path": self.path, "text": self.text, "duration": self.duration,
                "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in self.segments],
                "words": [dataclasses.asdict(w) for w in self.words]}


@dataclass(frozen=True)
class Span:
    """A stretch of an audio file to recognise whole, as `asr eval` does (a whole file by default)."""

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
        """Seconds per output frame (`asr.batch.frame_period`)."""
        return frame_period(self.features, self.stride)


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a bundle's config, vocabulary and statistics (not its Keras model); AsrError if it is no bundle."""
    from asr.bundle import bundle_dir, read_bundle_config, read_stats

    path = bundle_dir(path)
    features, text, model_cfg = read_bundle_config(path)
    return ModelInfo(path, features, text, model_cfg.conv_stride, Vocabulary.load(path / "vocab.json"),
                     tuple(read_stats(path, features.n_mfcc)["mean"]))


def audio_seconds(path: str) -> float:
    """Duration of an audio file from its header (0 when unreadable or standard input)."""
    import soundfile as sf

    if path == STDIN:
        return 0.0
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return 0.0
    return info.frames / max(1, info.samplerate)


class Recognizer:
    """A loaded model ready to transcribe: read, cut at pauses, featurise, run the network (TF or LiteRT), decode."""

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

    def transcribe(self, audio: AudioSource, sample_rate: int | None = None) -> Transcript:
        """Transcribe a file path, "-" (stdin), an open binary file or a numpy array (float in [-1, 1] or int16,
        `[n]` or `[n, channels]`, at `sample_rate` Hz) or an iterable of float32 blocks at `sample_rate` Hz. For a
        path, stdin or a file object, `sample_rate` means headerless 16-bit mono PCM at that rate. AsrError when the
        audio cannot be read or is empty."""
        stream = AudioStream(audio, self._rate, sample_rate)
        return self._transcript(stream, list(self._segments(stream)))

    def segments(self, audio: AudioSource, sample_rate: int | None = None) -> Iterator[Segment]:
        """The utterances of `audio` (as for `transcribe`), each yielded as soon as its pause has been read."""
        yield from self._segments(AudioStream(audio, self._rate, sample_rate))

    def transcribe_many(self, paths: Sequence[str | Path], progress: bool = False
                        ) -> Iterator[tuple[str, Transcript | AsrError]]:
        """Yield `(path, Transcript)` or `(path, AsrError)` per file, in order; bad files do not stop the rest.

        `progress`: a bar on stderr over the seconds of audio (tqdm).
        """
        for path, item in self.stream_many(paths, progress=progress):
            if not isinstance(item, Segment):
                yield path, item

    def stream_many(self, paths: Sequence[str | Path], sample_rate: int | None = None, progress: bool = False
                    ) -> Iterator[tuple[str, Segment | Transcript | AsrError]]:
        """Per file, in order: `(path, Segment)` as each utterance ends, then `(path, Transcript)`, or
        `(path, AsrError)` where the file could not be read (utterances before the damage were yielded)."""
        from tqdm import tqdm

        total = sum(audio_seconds(str(p)) for p in paths) if progress else 0.0  # 0: stdin, no length to show
        with tqdm(total=round(total, 1), unit="s", disable=not progress or not total, leave=False,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]") as bar:
            for path in paths:
                stream = AudioStream(path, self._rate, sample_rate)
                segments: list[Segment] = []
                try:
                    for segment in self._segments(stream, bar):
                        segments.append(segment)
                        yield str(path), segment
                    yield str(path), self._transcript(stream, segments)
                except AsrError as err:
                    yield str(path), err

    def _segments(self, stream: AudioStream, bar: Any = None) -> Iterator[Segment]:
        """Read `stream` block by block, cut it at pauses, recognise each utterance as it ends."""
        segmenter = Segmenter(self._rate)
        for block in stream:
            if bar is not None:
                bar.update(block.size / self._rate)
            for utterance in segmenter.push(block):
                yield from self._recognise_utterance(utterance)
        if stream.n_samples == 0:
            raise AsrError(f"{stream.name}: empty audio")
        for utterance in segmenter.flush():
            yield from self._recognise_utterance(utterance)

    def _recognise_utterance(self, utterance: Utterance) -> Iterator[Segment]:
        """The utterance as a Segment with times from the start of the stream (nothing when no word is heard)."""
        words = self.words(utterance.audio, utterance.start)
        if words:
            yield Segment(round(min(utterance.speech_start, words[0].start), 3),
                          round(max(utterance.speech_end, words[-1].end), 3), " ".join(w.word for w in words), words)

    def words(self, audio: np.ndarray, offset: float = 0.0) -> tuple[Word, ...]:
        """Recognise float32 `[n]` samples at the model's rate as one utterance; times are `offset` + seconds."""
        if is_silent(audio):  # nothing was said: the model would still guess a letter from the noise
            return ()
        _, spans = self.decoder(self._probs(audio))
        return tuple(self._word(w, offset) for w in spans)

    def _transcript(self, stream: AudioStream, segments: list[Segment]) -> Transcript:
        words = tuple(w for s in segments for w in s.words)
        return Transcript(stream.name, " ".join(s.text for s in segments), round(stream.seconds, 3), words,
                          tuple(segments))

    def recognize(self, spans: Sequence[Span]) -> Iterator[tuple[Span, Transcript | AsrError]]:
        """Yield a result per span, each recognised whole (no cutting at pauses), in order; short spans are
        batched. `asr eval` uses it: its references are whole utterances."""
        window = 4 * self.decode.batch_size  # spans featurised at a time: bounded memory for many files
        for k in range(0, len(spans), window):
            yield from self._recognize_window(spans[k:k + window])

    def _recognize_window(self, spans: Sequence[Span]) -> Iterator[tuple[Span, Transcript | AsrError]]:
        results: list[Transcript | AsrError | None] = [None] * len(spans)
        short: list[tuple[int, np.ndarray, float]] = []  # (position, feats, seconds)
        for i, span in enumerate(spans):
            try:
                audio = load_audio(span.path, self._rate, span.offset, span.duration)
                if audio.size == 0:
                    raise AsrError(f"{span.path}: empty audio")
                seconds = audio.size / self._rate
                if is_silent(audio) or seconds > self.decode.chunk_seconds:
                    results[i] = self._whole(span, self.words(audio), seconds)
                else:
                    short.append((i, compute_mfcc(audio, self.info.features), seconds))
            except AsrError as err:
                results[i] = err
        for (i, _, seconds), probs in zip(short, self.predictor([f for _, f, _ in short]) if short else []):
            _, spans_ = self.decoder(probs)
            results[i] = self._whole(spans[i], tuple(self._word(w) for w in spans_), seconds)
        for span, result in zip(spans, results):
            assert result is not None
            yield span, result

    def _whole(self, span: Span, words: tuple[Word, ...], seconds: float) -> Transcript:
        text = " ".join(w.word for w in words)
        segments = (Segment(words[0].start, words[-1].end, text, words),) if words else ()
        return Transcript(span.path, text, round(seconds, 3), words, segments)

    @property
    def _rate(self) -> int:
        return self.info.features.sample_rate

    def _probs(self, audio: np.ndarray) -> np.ndarray:
        """probs [T', V] of float32 samples: in one pass, or, beyond `decode.chunk_seconds`, from overlapping
        chunks whose centres are kept (every kept frame sees CONTEXT_SECONDS of audio each side)."""
        features = self.info.features
        if audio.size <= self.decode.chunk_seconds * self._rate:
            return self.predictor([compute_mfcc(audio, features)])[0]
        hop = features.hop_length * self.info.stride  # samples per output frame
        context = int(CONTEXT_SECONDS * self._rate) // hop  # output frames seen but dropped, each side
        core = int(self.decode.chunk_seconds * self._rate) // hop - 2 * context  # output frames kept per chunk
        total = int(output_lengths(num_frames(audio.size, features), self.info.stride))
        starts = list(range(0, total, core))
        pieces: list[np.ndarray] = []
        for k in range(0, len(starts), self.decode.batch_size):
            feats, keep = [], []
            for first in starts[k:k + self.decode.batch_size]:
                lo = max(0, first - context)  # output frame where the chunk's audio starts
                feats.append(compute_mfcc(audio[lo * hop:(first + core + context) * hop], features))
                keep.append((first - lo, min(core, total - first)))
            for probs, (skip, n) in zip(self.predictor(feats), keep):
                pieces.append(probs[skip:skip + n])
        return np.concatenate(pieces)

    def _word(self, span: WordSpan, offset: float = 0.0) -> Word:
        period = self.info.frame_period
        return Word(span.text, round(offset + span.start * period, 3), round(offset + span.end * period, 3),
                    span.confidence)


def load_model(path: str | Path, beam_width: int = 1, runtime: str = "auto", **decode: Any) -> Recognizer:
    """Load a model bundle as a Recognizer (`decode`: other DecodeConfig fields, e.g. lm_path)."""
    return Recognizer(path, runtime=runtime, beam_width=beam_width, **decode)


