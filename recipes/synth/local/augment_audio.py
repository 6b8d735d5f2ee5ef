"""Waveform augmentation: speed, tempo, pitch, reverberation, additive noise, telephone channel.

    python recipes/synth/local/augment_corpus.py --in data/synth-corpus --out data/synth-aug --effects noise,reverb

Each effect is a pure function of `audio: float32 [n_samples]` (mono, at `sample_rate` Hz) and its parameters;
randomness comes only from an explicit `numpy.random.Generator`, so a seed fixes the result. `draw_chain` picks
effects and parameters, `apply_chain` runs them in the order sound meets them: the speaker (speed, tempo, pitch),
the room (reverb), background noise, then the channel (telephone). Feature-level augmentation (SpecAugment) lives
elsewhere; this module is about making clean synthetic speech sound like a real recording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

EFFECTS = ("speed", "tempo", "pitch", "reverb", "noise", "telephone")  # in the order they are applied
TELEPHONE_RATE = 8000  # Hz: narrowband telephony (G.711)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # exponent of the 1/f^c noise power spectrum
MU = 255  # G.711 mu-law companding constant
PEAK = 0.99  # outputs are scaled down to this peak if an effect pushed them past full scale
DECAY_60DB = np.log(1000.0)  # amplitude falls by 1000x (60 dB) in one RT60: exp(-DECAY_60DB * t / rt60)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges each effect's parameter is drawn from (uniformly)."""

    speed: tuple[float, float] = (0.9, 1.1)  # resampling factor: tempo and pitch together, like sox `speed`
    tempo: tuple[float, float] = (0.85, 1.15)  # time-stretch factor, pitch kept
    pitch: tuple[float, float] = (-2.0, 2.0)  # semitones, duration kept
    rt60: tuple[float, float] = (0.2, 0.8)  # seconds for the room's reverberation to decay by 60 dB
    drr_db: tuple[float, float] = (0.0, 10.0)  # direct-to-reverberant energy ratio, dB
    snr_db: tuple[float, float] = (5.0, 30.0)  # signal-to-noise ratio over the whole utterance, dB
    noise_colours: tuple[str, ...] = ("white", "pink", "brown")  # drawn uniformly
    telephone_band: tuple[float, float] = (300.0, 3400.0)  # Hz: the telephone pass band


Chain = list[tuple[str, dict]]  # [(effect name, its parameters)] in application order


def change_speed(audio: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play `factor` times faster by resampling: duration / factor, pitch * factor. [n] -> [~n / factor]."""
    return soxr.resample(audio, sample_rate * factor, sample_rate).astype(np.float32)


def change_tempo(audio: np.ndarray, factor: float) -> np.ndarray:
    """Time-stretch by `factor` (phase vocoder), pitch unchanged. [n] -> [~n / factor]."""
    import librosa  # slow import; only this effect and pitch need it

    return librosa.effects.time_stretch(audio, rate=factor).astype(np.float32)


def shift_pitch(audio: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones`, duration unchanged. [n] -> [n]."""
    import librosa

    return librosa.effects.pitch_shift(audio, sr=sample_rate, n_steps=semitones).astype(np.float32)


def coloured_noise(n_samples: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^colour (0 white, 1 pink, 2 brown), unit mean power. [n]."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = freqs[1] if len(freqs) > 1 else 1.0  # no infinite DC gain
    noise = np.fft.irfft(spectrum / freqs ** (colour / 2), n=n_samples)
    noise -= noise.mean()
    return (noise / np.sqrt(np.mean(noise**2) + 1e-20)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator, colour: float = 0.0) -> np.ndarray:
    """Add coloured noise at `snr_db` = 10 log10(mean(audio^2) / mean(noise^2)). [n] -> [n]."""
    power = float(np.mean(audio.astype(np.float64) ** 2))
    noise = coloured_noise(len(audio), colour, rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def telephone(audio: np.ndarray, sample_rate: int, band: tuple[float, float] = (300.0, 3400.0)) -> np.ndarray:
    """Narrowband telephone channel: resample to 8 kHz, band-pass, 8-bit mu-law, back to `sample_rate`. [n] -> [n]."""
    narrow = soxr.resample(audio, sample_rate, TELEPHONE_RATE)
    sos = signal.butter(4, band, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    narrow = np.clip(signal.sosfilt(sos, narrow), -1.0, 1.0)
    companded = np.sign(narrow) * np.log1p(MU * np.abs(narrow)) / np.log1p(MU)
    quantised = np.round(companded * 127) / 127  # 8 bits per sample, as G.711 sends them
    narrow = np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU
    wide = soxr.resample(narrow, TELEPHONE_RATE, sample_rate)
    return _fit_length(wide, len(audio)).astype(np.float32)


def synthetic_rir(sample_rate: int, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Room impulse response: a unit direct path, then exponentially decaying noise. float32 [rt60 * sample_rate]."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-DECAY_60DB * t / rt60)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))  # tail energy relative to the direct path's 1.0
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(audio: np.ndarray, sample_rate: int, rt60: float, rng: np.random.Generator,
                drr_db: float = 5.0) -> np.ndarray:
    """Convolve with a synthetic room response; the tail past the input's end is cut, peak kept. [n] -> [n]."""
    wet = signal.fftconvolve(audio, synthetic_rir(sample_rate, rt60, drr_db, rng))[: len(audio)]
    peak_in, peak_out = float(np.max(np.abs(audio))), float(np.max(np.abs(wet)))
    return (wet * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


def draw_chain(effects: Sequence[str], cfg: AugmentConfig, rng: np.random.Generator, prob: float = 1.0) -> Chain:
    """Pick each of `effects` with probability `prob` (at least one is always picked) and draw its parameters."""
    unknown = sorted(set(effects) - set(EFFECTS))
    assert not unknown, f"unknown effects {unknown}"  # callers validate user input against EFFECTS
    chosen = [e for e in EFFECTS if e in effects and rng.random() < prob]
    if not chosen and effects:
        chosen = [str(rng.choice([e for e in EFFECTS if e in effects]))]  # a copy never equals the original

    def uniform(bounds: tuple[float, float], digits: int) -> float:
        return round(float(rng.uniform(*bounds)), digits)

    params: dict[str, Callable[[], dict]] = {
        "speed": lambda: {"factor": uniform(cfg.speed, 3)},
        "tempo": lambda: {"factor": uniform(cfg.tempo, 3)},
        "pitch": lambda: {"semitones": uniform(cfg.pitch, 2)},
        "reverb": lambda: {"rt60": uniform(cfg.rt60, 2), "drr_db": uniform(cfg.drr_db, 1)},
        "noise": lambda: {"snr_db": uniform(cfg.snr_db, 1), "colour": str(rng.choice(cfg.noise_colours))},
        "telephone": lambda: {"low_hz": cfg.telephone_band[0], "high_hz": cfg.telephone_band[1]},
    }
    return [(effect, params[effect]()) for effect in chosen]


def apply_chain(audio: np.ndarray, sample_rate: int, chain: Chain, rng: np.random.Generator) -> np.ndarray:
    """Run a drawn chain on `audio` float32 [n]; the result may be longer or shorter (speed, tempo)."""
    for effect, p in chain:
        if effect == "speed":
            audio = change_speed(audio, sample_rate, p["factor"])
        elif effect == "tempo":
            audio = change_tempo(audio, p["factor"])
        elif effect == "pitch":
            audio = shift_pitch(audio, sample_rate, p["semitones"])
        elif effect == "reverb":
            audio = reverberate(audio, sample_rate, p["rt60"], rng, p["drr_db"])
        elif effect == "noise":
            audio = add_noise(audio, p["snr_db"], rng, NOISE_COLOURS[p["colour"]])
        elif effect == "telephone":
            audio = telephone(audio, sample_rate, (p["low_hz"], p["high_hz"]))
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return (audio * (PEAK / peak) if peak > PEAK else audio).astype(np.float32)


def describe(chain: Chain) -> str:
    """A chain as one readable field, e.g. 'speed(factor=1.04) noise(snr_db=12.5,colour=pink)'."""
    return " ".join(f"{e}({','.join(f'{k}={v}' for k, v in p.items())})" for e, p in chain) or "none"


def _fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad to exactly `n` samples (resampling round trips can be off by a sample or two)."""
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))
