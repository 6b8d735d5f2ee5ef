"""Audio loading (formats, rates, channels, errors) and MFCC features."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import demo_flacs, write_tone

from asr.audio import _dct_matrix, cepstral_warp, compute_mfcc, is_silent, load_audio, num_frames, vtlp_frequencies
from asr.config import FeatureConfig
from asr.errors import AsrError

CFG = FeatureConfig()


@pytest.mark.parametrize("n_samples", [400, 1599, 1600, 1601, 16000, 23457])
def test_frame_count_formula_matches_librosa(n_samples):
    audio = np.random.default_rng(n_samples).uniform(-0.5, 0.5, n_samples).astype(np.float32)
    mfcc = compute_mfcc(audio, CFG)
    reference = librosa.feature.mfcc(y=audio, sr=CFG.sample_rate, n_mfcc=CFG.n_mfcc, n_fft=CFG.n_fft,
                                     hop_length=CFG.hop_length, n_mels=CFG.n_mels)  # [n_mfcc, T]
    assert mfcc.shape == (reference.shape[1], CFG.n_mfcc) == (1 + n_samples // CFG.hop_length, CFG.n_mfcc)
    assert num_frames(n_samples, CFG) == reference.shape[1]
    assert mfcc.dtype == np.float32
    np.testing.assert_allclose(mfcc, reference.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("n_mfcc", "hop"), [(13, 160), (40, 80), (20, 320)])
def test_mfcc_shape_follows_config(n_mfcc, hop):
    cfg = FeatureConfig(n_mfcc=n_mfcc, hop_length=hop)
    audio = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    assert compute_mfcc(audio, cfg).shape == (num_frames(8000, cfg), n_mfcc) == (1 + 8000 // hop, n_mfcc)


def test_cmn_removes_each_utterances_mean_and_so_a_fixed_gain():
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    cmn = FeatureConfig(cmn=True)
    plain, normed = compute_mfcc(audio, CFG), compute_mfcc(audio, cmn)
    np.testing.assert_allclose(normed, plain - plain.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(normed.mean(axis=0), 0.0, atol=1e-4)
    quiet = audio * 0.1  # -20 dB: a constant offset in every log-mel band, so in c0 only
    assert np.abs(compute_mfcc(quiet, CFG) - plain).max() > 10.0
    np.testing.assert_allclose(compute_mfcc(quiet, cmn), normed, atol=1e-2)


def _envelope_peak(freq: float, alpha: float, cfg: FeatureConfig) -> int:
    """Mel band where the (VTLP-warped) log-mel envelope of a sine at `freq` Hz peaks."""
    t = np.arange(16000) / 16000
    mfcc = compute_mfcc((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), cfg) @ cepstral_warp(cfg, alpha)
    return int((mfcc @ _dct_matrix(cfg.n_mels, cfg.n_mfcc).T).mean(axis=0).argmax())  # cepstra -> envelope


def test_vtlp_warp_is_identity_at_one_and_maps_nyquist_to_itself():
    for cfg in (FeatureConfig(n_mfcc=13, n_mels=80), FeatureConfig(n_mfcc=40, n_mels=40)):
        np.testing.assert_allclose(cepstral_warp(cfg, 1.0), np.eye(cfg.n_mfcc), atol=1e-9)
    hz = np.array([0.0, 1000.0, 8000.0])
    for alpha in (0.8, 1.2):
        warped = vtlp_frequencies(hz, alpha, 16000)
        np.testing.assert_allclose(warped, [0.0, 1000.0 * alpha, 8000.0])
        assert np.all(np.diff(vtlp_frequencies(np.linspace(0, 8000, 200), alpha, 16000)) > 0)  # monotonic


@pytest.mark.parametrize("freq,alpha", [(1000.0, 1.2), (2000.0, 0.85)])
def test_vtlp_moves_a_spectral_peak_where_the_warp_says(freq, alpha):
    # Band i of the warped features reads the original spectrum at alpha * f_i, so a peak at f appears where a
    # peak at f / alpha appears unwarped (within the one-band resolution of the filterbank).
    cfg = FeatureConfig(n_mfcc=80, n_mels=80)
    plain, warped, expected = (_envelope_peak(freq, 1.0, cfg), _envelope_peak(freq, alpha, cfg),
                               _envelope_peak(freq / alpha, 1.0, cfg))
    assert abs(warped - expected) <= 1 and abs(warped - plain) >= 3


def test_load_demo_flac():
    path, _ = demo_flacs(1)[0]
    audio = load_audio(path, 16000)
    data, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000
    assert audio.dtype == np.float32 and audio.ndim == 1
    np.testing.assert_array_equal(audio, data)  # same rate, mono: returned unchanged


@pytest.mark.parametrize(("rate", "suffix"), [(8000, ".wav"), (44100, ".flac"), (22050, ".ogg")])
def test_resampled_to_16k_with_duration_preserved(tmp_path, rate, suffix):
    path = write_tone(tmp_path / f"tone{suffix}", seconds=1.5, rate=rate, freq=300.0)
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 24000) <= 2  # 1.5 s at 16 kHz
    # The tone survives: its spectrum peaks at 300 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 300.0) < 2.0


def test_stereo_is_mixed_down(tmp_path):
    rng = np.random.default_rng(1)
    left, right = rng.uniform(-0.4, 0.4, 8000), rng.uniform(-0.4, 0.4, 8000)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.shape == (8000,)
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1e-6)


def test_stereo_44k_is_mixed_and_resampled(tmp_path):
    path = write_tone(tmp_path / "stereo44.wav", seconds=1.0, rate=44100, channels=2)
    audio = load_audio(path, 16000)
    assert audio.ndim == 1 and abs(len(audio) - 16000) <= 2


def test_offset_and_duration(tmp_path):
    audio = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(str(path), audio, 16000, subtype="FLOAT")
    part = load_audio(path, 16000, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(part, audio[4000:12000])


@pytest.mark.parametrize("content", [b"", b"this is not audio at all\n" * 10])
def test_unreadable_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AsrError, match="broken.wav"):
        load_audio(path, 16000)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AsrError, match="nowhere.flac"):
        load_audio(tmp_path / "nowhere.flac", 16000)


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("missing.flac", None, "no such file"),
    ("empty.wav", b"", "empty file"),
    ("text.wav", b"this is a text file, renamed\n", "not audio"),
    ("junk.flac", b"fLaC junk", "not audio"),
    ("folder.wav", "dir", "a directory"),
])
def test_unreadable_file_says_why(tmp_path, name, content, reason):
    """In words a user can act on, not libsndfile's "System error" or "Format not recognised"."""
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(AsrError) as err:
        load_audio(path, 16000)
    assert str(err.value).startswith(f"cannot read audio {path}: {reason}")
    assert "System error" not in str(err.value) and "Format not recognised" not in str(err.value)


def test_is_silent():
    assert is_silent(np.zeros(100, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert not is_silent(np.full(100, 0.01, np.float32))
