"""`asr transcribe` and the Python API: audio files -> text.

    asr transcribe exp/demo/bundle recipes/demo/corpus/test/101/1/101-1-0000.flac

    >>> import asr
    >>> m = asr.load_model("exp/demo/bundle")
    >>> m.transcribe("a.wav").text
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.audio import compute_mfcc, load_audio
from asr.bundle import Bundle, load_bundle
from asr.decoding import decode
from asr.errors import AsrError
from asr.inference import Predictor


@dataclass(frozen=True)
class Transcript:
    """Recognition result for one file."""

    path: str
    text: str
    duration: float  # seconds of audio


class Recognizer:
    """A loaded bundle ready to transcribe files."""

    def __init__(self, bundle: Bundle, beam_width: int = 1, batch_size: int = 16):
        self.bundle, self.beam_width = bundle, beam_width
        self.predictor = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"], batch_size)

    def transcribe(self, path: str | Path) -> Transcript:
        """Transcribe one audio file (any format soundfile reads, any sample rate, any channels)."""
        return next(self.transcribe_many([path]))[1]  # type: ignore[return-value]

    def transcribe_many(self, paths: Sequence[str | Path]) -> Iterator[tuple[str, Transcript | AsrError]]:
        """Yield `(path, Transcript)` or `(path, AsrError)` per file; bad files do not stop the rest."""
        feats, good, durations = [], [], []
        for path in paths:
            try:
                audio = load_audio(path, self.bundle.features.sample_rate)
                if audio.size == 0:
                    raise AsrError(f"{path}: empty audio")
            except AsrError as err:
                yield str(path), err
                continue
            feats.append(compute_mfcc(audio, self.bundle.features))
            good.append(str(path))
            durations.append(audio.size / self.bundle.features.sample_rate)
        for path, dur, probs in zip(good, durations, self.predictor(feats) if feats else []):
            text = self.bundle.vocab.decode(decode(probs, beam_width=self.beam_width))
            yield path, Transcript(path, text, round(dur, 3))


def load_model(path: str | Path, beam_width: int = 1) -> Recognizer:
    """Load a model bundle (safely) as a Recognizer."""
    return Recognizer(load_bundle(path), beam_width)
