"""Audio loading and MFCC features (numpy only, numerically the same as librosa's).

    >>> from asr.audio import compute_mfcc, load_audio; from asr.config import FeatureConfig
    >>> compute_mfcc(load_audio("x.wav", 16000), FeatureConfig()).shape  # float32 [n_frames, n_mfcc]

`compute_mfcc` reproduces `librosa.feature.mfcc(y, sr, n_mfcc, n_fft, hop_length, n_mels)` (centred
frames with zero padding, periodic Hann window, power spectrum, Slaney mel filters, dB with an 80 dB
floor, orthonormal DCT-II) to float32 rounding. It is written out here because importing
`librosa.feature` costs ~2 s per process (scipy.signal, numba), which dominated `asr prepare` on a
normal corpus (scipy.fft alone costs 0.1-0.3 s), and because computing in cache-sized blocks of frames
is ~1.5x faster than librosa.

Frame count (centred frames): `n_frames = 1 + n_samples // hop_length`.

`AudioStream` reads the same sources block by block (a file, standard input, a file-like object, raw 16-bit PCM or
a numpy array), resampling as it goes, so long recordings and live pipes are read in bounded memory.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf

from asr.config import FeatureConfig
from asr.errors import AsrError

FEATURES_VERSION = 2  # bump when load_audio/compute_mfcc change numerically: prepared shards are then recomputed
SILENCE_PEAK = 1e-4  # peak amplitude below which audio counts as all-silent (about -80 dBFS)
TOP_DB = 80.0  # log-mel floor below the utterance's loudest bin (librosa.power_to_db's top_db)
AMIN = 1e-10  # power floor before the log (librosa.power_to_db's amin)
BLOCK_FRAMES = 256  # frames per FFT block: [256, n_fft] float64 stays in L2 cache


def load_audio(path: str | Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Read any format soundfile/libsndfile reads; mix to mono; resample to `sample_rate`.

    Returns float32 `[n_samples]` in [-1, 1]. Raises AsrError naming the file when it cannot be read.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            if offset:
                f.seek(int(offset * rate))
            frames = -1 if duration is None else int(round(duration * rate))
            audio = f.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
        raise AsrError(f"cannot read audio {path}: {_unreadable_reason(Path(path), err)}") from None
    audio = audio[:, 0] if audio.shape[1] == 1 else audio.mean(axis=1)  # [n, channels] -> [n]: mixed down
    if rate != sample_rate and audio.size:
        audio = resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


STDIN = "-"  # the source name that means standard input
# Audio is read this much at a time: little from stdin, file objects and microphones (a live stream's line waits for
# its block), more from named files and arrays (fewer calls). The cuts at pauses do not depend on it.
BLOCK_SECONDS, FILE_BLOCK_SECONDS = 0.02, 0.5
PCM_SCALE = 32768.0  # 16-bit PCM sample -> [-1, 1)
# Containers libsndfile reads from a pipe (FLAC and MP3 need to seek: it cannot)
PIPE_FORMATS = "WAV, AIFF, AU and OGG (Vorbis, Opus)"
# A path, "-" (stdin), samples [n] or [n, channels], an open binary file, or an iterable of float32 blocks [n]
AudioSource = Union[str, Path, np.ndarray, BinaryIO, Iterable[np.ndarray]]


class AudioStream:
    """Float32 mono blocks `[n]` at `sample_rate` from any `AudioSource`, read and resampled as they are needed.

    `source_rate`: the rate of a numpy array or of blocks (required), or, for a path, stdin or a file object, that
    it holds raw 16-bit little-endian mono PCM at this rate (no header). `seconds` counts what has been read so far.
    """

    def __init__(self, source: AudioSource, sample_rate: int, source_rate: int | None = None):
        self.source, self.rate, self.source_rate = source, sample_rate, source_rate
        self.name = source_name(source)
        self.n_samples = 0  # at `sample_rate`, read so far
        if _is_samples(source) and not source_rate:
            raise AsrError("audio samples need their sample rate: transcribe(audio, sample_rate=16000)")

    @property
    def seconds(self) -> float:
        return self.n_samples / self.rate

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None
        for block, rate, last in self._blocks():
            if rate != self.rate:
                if resampler is None:
                    import soxr

                    resampler = soxr.ResampleStream(rate, self.rate, 1, dtype="float32", quality="HQ")
                block = resampler.resample_chunk(block, last=last)  # = `resample` of the whole, in pieces
            self.n_samples += block.size
            if block.size:
                yield block

    def _blocks(self) -> Iterator[tuple[np.ndarray, int, bool]]:
        """(mono float32 block at its own rate, that rate, is it the last) from the source."""
        if isinstance(self.source, np.ndarray):
            yield from _array_blocks(self.source, int(self.source_rate or 0))
        elif _is_samples(self.source):
            for block in self.source:  # type: ignore[union-attr]
                yield np.asarray(block, dtype=np.float32).reshape(-1), int(self.source_rate or 0), False
            yield np.zeros(0, dtype=np.float32), int(self.source_rate or 0), True
        elif not self.source_rate:
            yield from self._soundfile_blocks()
        elif not isinstance(self.source, (str, Path)):
            yield from _pcm_blocks(self.source, self.source_rate)  # type: ignore[arg-type]  # a file object
        elif str(self.source) == STDIN:
            yield from _pcm_blocks(sys.stdin.buffer, self.source_rate)
        else:
            try:
                with open(self.source, "rb") as f:
                    yield from _pcm_blocks(f, self.source_rate)
            except OSError as err:
                raise AsrError(f"cannot read audio {self.name}: {_unreadable_reason(Path(self.source), err)}") from None

    def _soundfile_blocks(self) -> Iterator[tuple[np.ndarray, int, bool]]:
        source: Any = str(self.source) if isinstance(self.source, (str, Path)) else self.source
        if source == STDIN:
            source = _stdin_for_libsndfile()
            if source is None:
                raise AsrError(f"cannot read audio {self.name}: standard input is empty; pipe audio into it, e.g. "
                               "`sox x.flac -t wav - | asr transcribe -`")
        try:
            with sf.SoundFile(source) as f:
                named = isinstance(self.source, (str, Path)) and str(self.source) != STDIN
                block = max(1, int((FILE_BLOCK_SECONDS if named else BLOCK_SECONDS) * f.samplerate))
                while True:
                    audio = f.read(frames=block, dtype="float32", always_2d=True)
                    last = len(audio) < block
                    yield audio[:, 0] if audio.shape[1] == 1 else audio.mean(axis=1), f.samplerate, last
                    if last:
                        return
        except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
            raise AsrError(f"cannot read audio {self.name}: {self._reason(err)}") from None

    def _reason(self, err: Exception) -> str:
        if isinstance(self.source, (str, Path)) and str(self.source) != STDIN:
            return _unreadable_reason(Path(self.source), err)
        detail = re.sub(r"^Error opening (\d+|<_io\.\w+ [^>]*>): ", "", str(err))  # a descriptor is no name
        return (f"{detail}; from a pipe libsndfile reads {PIPE_FORMATS} (convert, e.g. `sox x.flac -t wav - | asr "
                f"transcribe -`), or raw 16-bit mono PCM with --rate")


def _stdin_for_libsndfile() -> Any:
    """Standard input as libsndfile reads it: the file object when seekable, else a pipe descriptor (libsndfile
    reads a pipe through its descriptor); None when it holds no bytes at all.

    A pipe's first bytes are read here to tell an empty one apart, so libsndfile gets a new pipe that a thread
    fills with those bytes and then the rest of standard input, as it arrives (a live stream stays live)."""
    import os
    import threading

    stdin = sys.stdin.buffer
    if stdin.seekable():
        start = stdin.tell()
        empty = not stdin.read(1)
        stdin.seek(start)
        return None if empty else stdin
    fd = stdin.fileno()
    first = os.read(fd, PIPE_CHUNK)
    if not first:
        return None
    read_end, write_end = os.pipe()

    def relay() -> None:
        data = first
        try:
            while data:
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view):]
                data = os.read(fd, PIPE_CHUNK)
        except OSError:  # the reader closed its end (libsndfile stopped early or failed)
            pass
        finally:
            os.close(write_end)

    threading.Thread(target=relay, name="stdin-relay", daemon=True).start()
    return read_end


PIPE_CHUNK = 1 << 16  # bytes a read from a pipe asks for; it returns as soon as any are there


def source_name(source: AudioSource) -> str:
    """How results and errors name a source: its path, "-" for stdin, "<array>", or a file object's name."""
    if isinstance(source, (str, Path)):
        return str(source)
    if _is_samples(source):
        return "<array>"
    return str(getattr(source, "name", "<file>"))


def _is_samples(source: AudioSource) -> bool:
    """A numpy array or an iterable of sample blocks (not a path, not a file object)."""
    return isinstance(source, np.ndarray) or not isinstance(source, (str, Path)) and not hasattr(source, "read")


def microphone(sample_rate: int, device: str | None = None, stop: Any = None) -> Iterator[np.ndarray]:
    """Float32 blocks `[n]` from an input device at `sample_rate`, as they are recorded (needs `asr[mic]`).

    The stream ends, after the blocks already recorded, once `stop` (a `threading.Event`) is set: a consumer
    such as `Recognizer.segments` then finishes the utterance in progress as at the end of a file.
    AsrError at once (not at the first block) when sounddevice or PortAudio is missing.
    """
    try:
        import sounddevice as sd
    except ImportError:
        raise AsrError("the microphone needs sounddevice: pip install 'asr[mic]'") from None
    except OSError as err:  # sounddevice imports, then finds no PortAudio library
        raise AsrError(f"sounddevice: {err}; on Debian or Ubuntu: apt-get install libportaudio2") from None
    return _record(sd, sample_rate, int(device) if device and device.isdigit() else device, stop)


def _record(sd: Any, sample_rate: int, device: int | str | None, stop: Any) -> Iterator[np.ndarray]:
    import queue

    blocks: queue.Queue[np.ndarray] = queue.Queue()
    try:
        with sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32", device=device,
                            blocksize=int(BLOCK_SECONDS * sample_rate),
                            callback=lambda data, *_: blocks.put(data[:, 0].copy())):
            while stop is None or not stop.is_set():
                try:
                    yield blocks.get(timeout=0.1)  # a timeout keeps Ctrl-C and `stop` responsive
                except queue.Empty:
                    continue
        while not blocks.empty():  # recorded before the stop
            yield blocks.get_nowait()
    except (sd.PortAudioError, ValueError) as err:
        raise AsrError(f"microphone {device if device is not None else '(default)'}: {err}; `python -m sounddevice` "
                       "lists devices") from None


def _array_blocks(audio: np.ndarray, rate: int) -> Iterator[tuple[np.ndarray, int, bool]]:
    """Blocks of a `[n]` or `[n, channels]` array (integers are read as PCM: int16 scaled to [-1, 1))."""
    if audio.ndim not in (1, 2):
        raise AsrError(f"audio array of shape {audio.shape}: expected [n_samples] or [n_samples, channels]")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
    mono = (audio if audio.ndim == 1 else audio.mean(axis=1)).astype(np.float32, copy=False)
    block = max(1, int(FILE_BLOCK_SECONDS * rate))
    for lo in range(0, max(1, mono.size), block):
        yield mono[lo:lo + block], rate, lo + block >= mono.size


def _pcm_blocks(stream: BinaryIO, rate: int) -> Iterator[tuple[np.ndarray, int, bool]]:
    """Raw 16-bit little-endian mono PCM from a binary stream (an odd trailing byte is dropped)."""
    size = 2 * max(1, int(BLOCK_SECONDS * rate))
    while True:
        data = b""
        while len(data) < size:  # a pipe may return less than asked before its end
            more = stream.read(size - len(data))
            if not more:
                break
            data += more
        last = len(data) < size
        data = data[: len(data) // 2 * 2]
        yield np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM_SCALE, rate, last
        if last:
            return


SF_ERR_UNRECOGNISED_FORMAT = 1  # libsndfile's error code for "Format not recognised"


def _unreadable_reason(path: Path, err: Exception) -> str:
    """Why `path` could not be read, in words a user can act on (libsndfile says "System error" for a missing
    file and "Format not recognised" for an empty one)."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "a directory, not an audio file"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if getattr(err, "code", None) == SF_ERR_UNRECOGNISED_FORMAT:
        return "not audio, or an audio format libsndfile does not read (WAV, FLAC, OGG, MP3 and more are read)"
    return str(err)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """float32 `[n]` at `rate` -> `[ceil(n * target / rate)]` at `target` (soxr HQ, as librosa.resample)."""
    import soxr

    out = soxr.resample(audio, rate, target, quality="soxr_hq")
    size = int(np.ceil(audio.size * target / rate))
    return out[:size] if out.size >= size else np.pad(out, (0, size - out.size))


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of MFCC frames for `n_samples` samples (centred frames)."""
    return 1 + n_samples // cfg.hop_length


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(hz, 1e-30) / min_log_hz) / logstep,
                    hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of `_hz_to_mel`."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def _mel_edges(cfg: FeatureConfig) -> np.ndarray:
    """Band edges on the mel scale, `[n_mels + 2]`, evenly spaced from 0 Hz to Nyquist: band i has lower edge
    i, centre i + 1 and upper edge i + 2."""
    return np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(cfg.sample_rate / 2)), cfg.n_mels + 2)


@functools.lru_cache(maxsize=8)
def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Slaney-normalised triangular mel filters, float32 `[n_fft // 2 + 1, n_mels]` (librosa.filters.mel.T)."""
    fft_hz = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)  # [F]
    edges = _mel_to_hz(_mel_edges(cfg))  # [n_mels + 2] in Hz
    width = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]  # [n_mels + 2, F]
    rising, falling = -ramps[:-2] / width[:-1, None], ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # [n_mels, F]
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney norm: each filter has unit area
    return np.ascontiguousarray(weights.T, dtype=np.float32)  # [n_mels, F] -> [F, n_mels]


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window, float64 `[n_fft]` (scipy.signal.get_window('hann', n_fft))."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, float64 `[n_mels, n_mfcc]` (scipy.fft.dct(type=2, norm='ortho'))."""
    k, n = np.arange(n_mfcc)[None, :], np.arange(n_mels)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)  # [n_mels, n_mfcc]
    basis[:, 0] /= np.sqrt(2.0)
    return basis


def log_mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel power spectrogram in dB of float32 `[n_samples]` -> float32 `[n_frames, n_mels]`, 80 dB floor."""
    padded = np.pad(np.asarray(audio, dtype=np.float32), cfg.n_fft // 2)  # centred frames, zero padding
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop_length]  # [T, n_fft] view
    window, filters = _hann(cfg.n_fft), mel_filterbank(cfg)
    mel = np.empty((len(frames), cfg.n_mels), dtype=np.float32)
    for start in range(0, len(frames), BLOCK_FRAMES):
        spec = np.fft.rfft(frames[start:start + BLOCK_FRAMES] * window, axis=1).astype(np.complex64)  # [b, F]
        power = np.square(spec.real)
        power += np.square(spec.imag)
        np.matmul(power, filters, out=mel[start:start + BLOCK_FRAMES])  # [b, F] @ [F, n_mels]
    db = np.log10(np.maximum(mel, AMIN, out=mel), out=mel)
    db *= 10.0
    return np.maximum(db, db.max() - TOP_DB, out=db)


def compute_mfcc(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCC of float32 `[n_samples]` audio -> float32 `[n_frames, n_mfcc]` (as librosa.feature.mfcc(...).T).

    With `cfg.cmn` each coefficient's mean over the frames is subtracted (per-utterance cepstral mean
    normalisation: removes a fixed channel or speaker spectral tilt; audio recognised in chunks gets it per chunk).
    """
    mfcc = log_mel(audio, cfg).astype(np.float64) @ _dct_matrix(cfg.n_mels, cfg.n_mfcc)  # [T, n_mels] -> [T, n_mfcc]
    if cfg.cmn:  # never empty: centred framing gives at least one frame
        mfcc -= mfcc.mean(axis=0)
    return mfcc.astype(np.float32)


VTLP_HIGH_HZ = 4800.0  # at 16 kHz: warp linearly up to here, then bend so Nyquist maps to Nyquist (Jaitly & Hinton)


def vtlp_frequencies(hz: np.ndarray, alpha: float, sample_rate: int) -> np.ndarray:
    """Vocal tract length warp of frequencies (Hz): `alpha * f` below a boundary, then linear to Nyquist.

    The boundary is `VTLP_HIGH_HZ * min(alpha, 1) / alpha`, scaled with the sample rate, so [0, Nyquist] maps
    onto itself (Jaitly & Hinton 2013, "Vocal Tract Length Perturbation improves speech recognition").
    """
    nyquist = sample_rate / 2
    high = VTLP_HIGH_HZ * sample_rate / 16000 * min(alpha, 1.0)
    bend = high / alpha
    upper = nyquist - (nyquist - high) / (nyquist - bend) * (nyquist - hz)
    return np.where(hz <= bend, alpha * hz, upper)


def cepstral_warp(cfg: FeatureConfig, alpha: float) -> np.ndarray:
    """VTLP as a linear map of MFCC frames: float64 `[n_mfcc, n_mfcc]`, `warped = mfcc @ M`.

    Each mel band of the warped spectrum reads the original log-mel envelope at its warped centre frequency
    (linear interpolation between bands): DCT^-1 (cepstra -> envelope), resample, DCT. The envelope is smooth
    at 13-20 cepstra, so this moves formants by `alpha` while pitch and timing stay; `alpha = 1` is the identity
    (the truncated orthonormal DCT is exactly invertible on its own span). Per-utterance CMN commutes with it.
    """
    dct = _dct_matrix(cfg.n_mels, cfg.n_mfcc)  # [n_mels, n_mfcc]
    mel_edges = _mel_edges(cfg)
    centres = _mel_to_hz(mel_edges[1:-1])  # [n_mels] band centres in Hz
    source = _hz_to_mel(vtlp_frequencies(centres, alpha, cfg.sample_rate))  # where each band reads, in mel
    pos = np.clip((source - mel_edges[1]) / (mel_edges[1] - mel_edges[0]), 0.0, cfg.n_mels - 1)  # band index
    lo = np.minimum(np.floor(pos).astype(np.int64), cfg.n_mels - 2)
    w = pos - lo
    interp = np.zeros((cfg.n_mels, cfg.n_mels))  # [n_mels out, n_mels in]
    interp[np.arange(cfg.n_mels), lo] = 1.0 - w
    interp[np.arange(cfg.n_mels), lo + 1] += w
    return dct.T @ interp.T @ dct  # row-vector frames: mfcc [.., n_mfcc] -> envelope -> warped -> cepstra


def is_silent(audio: np.ndarray) -> bool:
    """True when the audio is empty or its peak is below SILENCE_PEAK."""
    return audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK
