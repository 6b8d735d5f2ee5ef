"""Training-time augmentation of feature matrices: VTLP, tempo perturbation and SpecAugment masks (numpy).

    asr train --config configs/demo.yaml --set train.specaug_time_masks=2 --set train.tempo_perturb=0.1

All work on the prepared (unnormalised) MFCC `feats float32 [T, n_mfcc]`, so no audio is re-read:

- VTLP (vocal tract length perturbation, Jaitly & Hinton 2013): the mel axis of the spectral envelope is
  warped by a factor uniform in `[1 - x, 1 + x]`, as a linear map of the cepstra (`asr.audio.cepstral_warp`),
  so formants move as between a shorter and a longer vocal tract while pitch and tempo stay (unlike speed
  perturbation, which moves all three).
- tempo perturbation: the time axis is resampled by linear interpolation to `round(T / factor)` frames,
  `factor` uniform in `[1 - x, 1 + x]` (> 1 is faster speech). The frames' spectra are unchanged, as with
  sox `tempo` (not `speed`, which also shifts pitch). A factor that would leave fewer output frames than
  CTC needs for the transcript is pulled back to the largest feasible one.
- SpecAugment (Park et al. 2019, without time warping): `time_masks` spans of up to `time_width` frames
  (never more than 20% of the utterance each) and `freq_masks` spans of up to `freq_width` coefficients
  are set to the train mean, which the model's CMVN layer maps to 0.

Draws come from a generator seeded by (seed, epoch, row) (`asr.data.BatchSource`), so a resumed run, or a run on
another number of replicas, sees the same augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.audio import cepstral_warp
from asr.config import FeatureConfig, TrainConfig

MAX_TIME_MASK_FRACTION = 0.2  # one time mask never hides more than this share of an utterance


@dataclass(frozen=True)
class Augmentation:
    """What to do to each training utterance; `active` is False when everything is off."""

    tempo: float = 0.0  # max relative tempo change x: factor in [1 - x, 1 + x]
    time_masks: int = 0  # SpecAugment time masks per utterance
    time_width: int = 20  # widest time mask, frames
    freq_masks: int = 0  # SpecAugment coefficient masks per utterance
    freq_width: int = 4  # widest coefficient mask
    vtlp: float = 0.0  # max relative mel-axis warp x: factor in [1 - x, 1 + x]
    features: FeatureConfig = FeatureConfig()  # how the feats were made (VTLP needs the mel and DCT sizes)

    @classmethod
    def from_config(cls, train: TrainConfig, features: FeatureConfig) -> Augmentation:
        """The augmentation asked for by the `train` section, for feats made with `features`."""
        return cls(train.tempo_perturb, train.specaug_time_masks, train.specaug_time_width,
                   train.specaug_freq_masks, train.specaug_freq_width, train.vtlp, features)

    @property
    def active(self) -> bool:
        return self.vtlp > 0 or self.tempo > 0 or (self.time_masks > 0 and self.time_width > 0) or (
            self.freq_masks > 0 and self.freq_width > 0)


def stretch_time(feats: np.ndarray, n_out: int) -> np.ndarray:
    """Linearly resample `feats [T, F]` along time to `[n_out, F]` (first and last frames kept)."""
    n_in = len(feats)
    if n_out == n_in or n_in < 2:
        return feats
    pos = np.linspace(0.0, n_in - 1, n_out)  # fractional source frame of each output frame
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = (pos - lo).astype(np.float32)[:, None]
    return (1.0 - w) * feats[lo] + w * feats[hi]


def perturb_vtlp(feats: np.ndarray, rng: np.random.Generator, max_warp: float, features: FeatureConfig) -> np.ndarray:
    """Warp the spectral envelope of `feats [T, n_mfcc]` by a random VTLP factor in [1 - x, 1 + x]."""
    alpha = rng.uniform(1.0 - max_warp, 1.0 + max_warp)
    return (feats @ cepstral_warp(features, alpha)).astype(np.float32)  # [T, n_mfcc] @ [n_mfcc, n_mfcc]


def perturb_tempo(feats: np.ndarray, rng: np.random.Generator, max_change: float, min_frames: int) -> np.ndarray:
    """Tempo-perturb `feats [T, F]` by a random factor, keeping at least `min_frames` frames."""
    factor = rng.uniform(1.0 - max_change, 1.0 + max_change)
    n_out = max(int(round(len(feats) / factor)), min(min_frames, len(feats)), 1)
    return stretch_time(feats, n_out)


def spec_augment(feats: np.ndarray, rng: np.random.Generator, aug: Augmentation, fill: np.ndarray) -> np.ndarray:
    """A copy of `feats [T, F]` with time and coefficient spans set to `fill [F]` (the train mean)."""
    out = np.array(feats, dtype=np.float32, copy=True)
    n_frames, n_coeffs = out.shape
    max_t = min(aug.time_width, int(MAX_TIME_MASK_FRACTION * n_frames))
    for _ in range(aug.time_masks if max_t > 0 else 0):
        width = int(rng.integers(0, max_t + 1))
        start = int(rng.integers(0, n_frames - width + 1))
        out[start:start + width] = fill
    max_f = min(aug.freq_width, n_coeffs)
    for _ in range(aug.freq_masks if max_f > 0 else 0):
        width = int(rng.integers(0, max_f + 1))
        start = int(rng.integers(0, n_coeffs - width + 1))
        out[:, start:start + width] = fill[start:start + width]
    return out


def augment(feats: np.ndarray, rng: np.random.Generator, aug: Augmentation, fill: np.ndarray,
            min_frames: int) -> np.ndarray:
    """VTLP, tempo perturbation, then SpecAugment, of one utterance `feats [T, F]` -> `[T', F]`, T' >= min_frames."""
    if aug.vtlp > 0:
        feats = perturb_vtlp(feats, rng, aug.vtlp, aug.features)
    if aug.tempo > 0:
        feats = perturb_tempo(feats, rng, aug.tempo, min_frames)
    if aug.time_masks or aug.freq_masks:
        feats = spec_augment(feats, rng, aug, fill)
    return feats
