"""Featurising a corpus in shards: utterance -> checked MFCC features, one shard per unit of parallel and
resumable work (`asr prepare`, see asr/prepare.py for the DATA_DIR layout).

    python -c "from asr.shards import featurise; help(featurise)"

A shard (`prepare.shard_size` utterances of one split, sorted by id) is written as `feats/NAME.npy` (the features,
concatenated) then `feats/NAME.json` (metadata: items, skipped items, sums for the statistics), each atomically;
the metadata's presence marks the shard as finished. Its key hashes the inputs (utterances, the size and mtime of
their audio files, the settings): a finished shard is reused only while its key matches. Workers are processes
forked from one forkserver (TensorFlow's threads make plain fork unsafe), one core each.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr.audio import FEATURES_VERSION, SILENCE_PEAK, compute_mfcc, is_silent, load_audio
from asr.batch import output_lengths
from asr.config import Config
from asr.corpus import Skipped, Utterance
from asr.errors import AsrError
from asr.files import atomic_path, ensure_free_space, read_json, write_json
from asr.text import ctc_frames_needed


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to featurise one shard."""

    name: str  # e.g. "train-00003"
    utts: tuple[Utterance, ...]  # normalised, sorted by id
    cfg: Config
    out_dir: str  # DATA_DIR/feats

    @functools.cached_property
    def key(self) -> str:
        """Hash of the inputs: a finished shard is reused only if its key matches."""
        payload = json.dumps([[[asdict(u), _file_stamp(u.audio)] for u in self.utts], asdict(self.cfg.features),
                              FEATURES_VERSION, self.cfg.prepare.min_duration, self.cfg.prepare.max_duration,
                              self.cfg.model.conv_stride], sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()


def _file_stamp(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file (None if it cannot be stat'ed): a changed file invalidates its shard."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _probe_duration(utt: Utterance) -> float | None:
    """Duration in seconds from the corpus or the file header (cheap), or None when unknown."""
    if utt.duration is not None:
        return utt.duration
    import soundfile as sf

    try:
        info = sf.info(utt.audio)
    except Exception:  # noqa: BLE001 - any unreadable header is reported by the full read
        return None
    return max(info.duration - utt.offset, 0.0)


def _audio_problem(audio: np.ndarray, cfg: Config) -> tuple[str, str] | None:
    """(reason, detail) when decoded audio is unusable, else None."""
    seconds = audio.size / cfg.features.sample_rate
    if audio.size == 0:
        return "empty audio", "0 samples"
    if not np.isfinite(audio).all():
        return "non-finite samples", f"{int(np.count_nonzero(~np.isfinite(audio)))} NaN/inf samples"
    if is_silent(audio):
        return "silent audio", f"peak amplitude < {SILENCE_PEAK} (about -80 dBFS)"
    if seconds < cfg.prepare.min_duration:
        return "too short", f"{seconds:.3f} s < prepare.min_duration {cfg.prepare.min_duration}"
    if seconds > cfg.prepare.max_duration:
        return "too long", f"{seconds:.1f} s > prepare.max_duration {cfg.prepare.max_duration}"
    return None


def _ctc_problem(text: str, n_frames: int, cfg: Config) -> tuple[str, str] | None:
    """("ctc infeasible", detail) when the model's output frames cannot hold the transcript, else None."""
    out_frames = int(output_lengths(n_frames, cfg.model.conv_stride))
    needed = ctc_frames_needed(text)
    if needed <= out_frames:
        return None
    return "ctc infeasible", (f"needs {needed} output frames ({len(text)} characters + {needed - len(text)} "
                              f"repeats), model emits {out_frames} ({n_frames} frames / model.conv_stride "
                              f"{cfg.model.conv_stride})")


def featurise(utt: Utterance, cfg: Config) -> tuple[np.ndarray, float] | Skipped:
    """(MFCC float32 `[n_frames, n_mfcc]`, seconds of audio) of one utterance, or why it is unusable. Never raises."""
    try:
        return _featurise_checked(utt, cfg)
    except Exception as err:  # noqa: BLE001 - one bad item must never stop the run; it is reported
        return Skipped(utt.id, utt.audio, "feature extraction failed", f"{type(err).__name__}: {err}")


def _featurise_checked(utt: Utterance, cfg: Config) -> tuple[np.ndarray, float] | Skipped:
    """`featurise` without the safety net."""
    seconds = _probe_duration(utt)
    if seconds is not None and seconds > cfg.prepare.max_duration:
        return Skipped(utt.id, utt.audio, "too long", f"{seconds:.1f} s > prepare.max_duration "
                       f"{cfg.prepare.max_duration}")
    if Path(utt.audio).is_dir():
        return Skipped(utt.id, utt.audio, "unreadable audio", "is a directory, not an audio file")
    try:
        audio = load_audio(utt.audio, cfg.features.sample_rate, utt.offset, utt.duration)
    except AsrError as err:
        return Skipped(utt.id, utt.audio, "unreadable audio", str(err).removeprefix(f"cannot read audio {utt.audio}: "))
    problem = _audio_problem(audio, cfg)
    if problem:
        return Skipped(utt.id, utt.audio, *problem)
    feats = compute_mfcc(audio, cfg.features)
    problem = _ctc_problem(utt.text, len(feats), cfg)
    return Skipped(utt.id, utt.audio, *problem) if problem else (feats, audio.size / cfg.features.sample_rate)


_worker_progress: Callable[[int], None] | None = None  # set in pool workers: reports finished utterances


def _init_worker(queue) -> None:  # noqa: ANN001 - a multiprocessing.Queue
    """Pool initializer: progress of each utterance goes to the parent through `queue`."""
    global _worker_progress
    _worker_progress = queue.put


def featurise_shard(job: ShardJob, progress: Callable[[int], None] | None = None) -> dict:
    """Featurise one shard; write `NAME.npy` then `NAME.json` atomically; return the metadata.

    `progress(1)` is called after each utterance (in a pool worker: through the parent's queue).
    """
    from threadpoolctl import threadpool_limits

    progress = progress or _worker_progress or (lambda n: None)
    items, skipped, feats, row = [], [], [], 0
    with threadpool_limits(1):  # one core per worker: parallelism comes from processes
        for utt in job.utts:
            result = featurise(utt, job.cfg)
            if isinstance(result, Skipped):
                skipped.append(asdict(result))
            else:
                feats.append(result[0])
                items.append({"id": utt.id, "audio": utt.audio, "duration": round(result[1], 4), "text": utt.text,
                              "n_frames": len(result[0]), "row": row, "subset": utt.subset})
                row += len(result[0])
            progress(1)
    return _write_shard(job, feats, items, skipped)


def _write_shard(job: ShardJob, feats: list[np.ndarray], items: list[dict], skipped: list[dict]) -> dict:
    """Write the shard's features, then its metadata (which marks it finished); return the metadata."""
    stacked = np.concatenate(feats) if feats else np.zeros((0, job.cfg.features.n_mfcc), np.float32)
    path = Path(job.out_dir) / f"{job.name}.npy"
    ensure_free_space(path, stacked.nbytes)  # the metadata is small; SPACE_MARGIN covers it and the manifests
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, stacked)
    meta = {"key": job.key, "items": items, "skipped": skipped, "count": int(len(stacked)),
            "sum": stacked.sum(0, dtype=np.float64).tolist(),
            "sumsq": np.square(stacked, dtype=np.float64).sum(0).tolist()}
    write_json(Path(job.out_dir) / f"{job.name}.json", meta)
    return meta


def plan_shards(splits: dict[str, list[Utterance]], cfg: Config, feats_dir: Path) -> list[ShardJob]:
    """Cut each split (sorted by id) into shards of `prepare.shard_size` utterances."""
    size = cfg.prepare.shard_size
    return [ShardJob(f"{name}-{k // size:05d}", tuple(utts[k:k + size]), cfg, str(feats_dir))
            for name, utts in splits.items() for k in range(0, len(utts), size)]


def finished(job: ShardJob) -> dict | None:
    """The shard's metadata if it was finished with the same inputs, else None."""
    meta_path = Path(job.out_dir) / f"{job.name}.json"
    if not meta_path.is_file() or not (Path(job.out_dir) / f"{job.name}.npy").is_file():
        return None
    try:
        meta = read_json(meta_path)
    except (OSError, AsrError):  # unreadable metadata: compute the shard again
        return None
    return meta if isinstance(meta, dict) and meta.get("key") == job.key else None


def run_shards(jobs: list[ShardJob], n_jobs: int, progress: bool = True) -> tuple[dict[str, dict], int]:
    """Featurise the unfinished jobs on `n_jobs` processes, progress per utterance.

    Returns (metadata per shard name, number of shards reused from an earlier run).
    """
    from tqdm import tqdm

    metas = {job.name: meta for job in jobs if (meta := finished(job)) is not None}
    todo = sorted((j for j in jobs if j.name not in metas), key=lambda j: -len(j.utts))  # longest first: less tail
    with tqdm(total=sum(len(j.utts) for j in todo), unit="utt", desc="features", disable=not progress,
              file=sys.stderr, smoothing=0.1) as bar:
        if n_jobs <= 1 or len(todo) <= 1:
            metas.update({job.name: featurise_shard(job, bar.update) for job in todo})
        else:
            metas.update(_run_pool(todo, min(n_jobs, len(todo)), bar.update))
    return metas, len(jobs) - len(todo)


def start_forkserver():  # -> multiprocessing.context.ForkServerContext
    """Start (once) the process that forks the workers, with their modules imported; returns its context.

    Workers fork from it ready to run, instead of each importing numpy & co. Starting it is asynchronous,
    so `prepare` starts it before reading the corpus and the imports overlap with that.
    """
    import multiprocessing
    import multiprocessing.forkserver

    ctx = multiprocessing.get_context("forkserver")  # fork is unsafe once TensorFlow threads exist
    ctx.set_forkserver_preload(["asr.shards", "soxr", "threadpoolctl", "concurrent.futures.process"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def _run_pool(todo: list[ShardJob], n_jobs: int, progress: Callable[[int], None]) -> dict[str, dict]:
    """Featurise `todo` on a pool of `n_jobs` worker processes; `progress(n)` as utterances finish."""
    import queue as queue_lib
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = start_forkserver()
    ticks = ctx.Queue()
    metas: dict[str, dict] = {}
    expected, received = sum(len(job.utts) for job in todo), 0
    with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_init_worker, initargs=(ticks,)) as pool:
        futures = {pool.submit(featurise_shard, job): job.name for job in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            with contextlib.suppress(queue_lib.Empty):
                while True:
                    n = ticks.get_nowait()
                    received += n
                    progress(n)
            for future in done:
                try:
                    metas[futures[future]] = future.result()
                except BrokenProcessPool:
                    raise AsrError("a feature worker process died (out of memory?); finished shards are kept: "
                                   "re-run the same command to resume, perhaps with fewer --jobs") from None
    # A worker's last ticks can still be in the queue's pipe when its result arrives: collect them.
    with contextlib.suppress(queue_lib.Empty):
        while received < expected:
            n = ticks.get(timeout=5.0)
            received += n
            progress(n)
    return metas
