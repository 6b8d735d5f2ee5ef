"""Audio loading and MFCC features (librosa).

    python -c "import asr.audio as a, asr.config as c; print(a.compute_mfcc(a.load_audio('x.wav', 16000), c.FeatureConfig()).shape)"

Frame count (librosa, `center=True`): `n_frames = 1 + n_samples // hop_length`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr.config import FeatureConfig
from asr.errors import AsrError

SILENCE_PEAK = 1e-4  # peak amplitude below which audio counts as all-silent (about -80 dBFS)


def load_audio(path: str | Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Read any format soundfile/libsndfile reads; mix to mono; resample to `sample_rate`.

    Returns float32 `[n_samples]` in [-1, 1]. Raises AsrError naming the file when it cannot be read.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            f.seek(int(offset * rate))
            frames = -1 if duration is None else int(round(duration * rate))
            audio = f.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
        raise AsrError(f"cannot read audio {path}: {err}") from None
    audio = audio.mean(axis=1)  # [n, channels] -> [n]: stereo mixed down
    if rate != sample_rate and audio.size:
        import librosa  # imported late: loading librosa costs ~1 s

        audio = librosa.resample(audio, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(audio, dtype=np.float32)


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of MFCC frames librosa produces for `n_samples` samples (centred frames)."""
    return 1 + n_samples // cfg.hop_length


def compute_mfcc(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCC of float32 `[n_samples]` audio -> float32 `[n_frames, n_mfcc]`."""
    import librosa

    mfcc = librosa.feature.mfcc(
        y=audio, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels
    )  # [n_mfcc, n_frames]
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)  # [n_mfcc, T] -> [T, n_mfcc]


def is_silent(audio: np.ndarray) -> bool:
    """True when the audio is empty or its peak is below SILENCE_PEAK."""
    return audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK
