"""`asr prepare`: corpus -> normalised, split, featurised data directory.

    asr prepare recipes/demo/corpus --out data/demo --config configs/demo.yaml

DATA_DIR layout (every file written atomically):

    config.yaml          features + text + model.conv_stride the data was prepared with
    vocab.json           characters; class 0 is the CTC blank
    stats.json           per-coefficient mean/std of the train features (global CMVN)
    {train,dev,test}.jsonl  manifests: id, audio, duration, text, n_frames, shard, row
    feats/SPLIT-NNNNN.npy   float32 [sum of n_frames, n_mfcc]: the utterances of a shard, concatenated
    feats/SPLIT-NNNNN.json  shard metadata; its presence marks the shard as finished
    skipped.jsonl        id, path, reason, detail of every item that was not used

A shard is the unit of parallel and resumable work: a re-run (or a run after `kill -9`) reuses every
shard whose metadata matches its inputs, so it produces the same result as one uninterrupted run.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import multiprocessing
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from asr.audio import compute_mfcc, is_silent, load_audio
from asr.config import Config, config_to_dict, dump_yaml
from asr.corpus import Skipped, Utterance, read_corpus
from asr.errors import AsrError
from asr.files import atomic_path, read_json, write_json, write_jsonl, write_text
from asr.text import Vocabulary, ctc_frames_needed, normalize_text, out_of_alphabet


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to featurise one shard."""

    name: str  # e.g. "train-00003"
    utts: tuple[Utterance, ...]  # normalised, sorted by id
    cfg: Config
    out_dir: str  # DATA_DIR/feats

    @property
    def key(self) -> str:
        """Hash of the inputs: a finished shard is reused only if its key matches."""
        payload = json.dumps([[asdict(u) for u in self.utts], asdict(self.cfg.features), asdict(self.cfg.prepare),
                              self.cfg.model.conv_stride], sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()


@dataclass
class PrepareResult:
    """Summary of a prepare run."""

    counts: dict[str, int]  # utterances per split
    hours: dict[str, float]  # audio hours per split
    skipped: list[Skipped]
    reused_shards: int
    total_shards: int


def _check_item(utt: Utterance, audio: np.ndarray, n_frames: int, cfg: Config) -> tuple[str, str] | None:
    """(reason, detail) when the featurised item is unusable, else None."""
    duration = audio.size / cfg.features.sample_rate
    if audio.size == 0:
        return "empty audio", "0 samples"
    if is_silent(audio):
        return "silent audio", f"peak < {1e-4}"
    if duration < cfg.prepare.min_duration:
        return "too short", f"{duration:.3f} s < prepare.min_duration {cfg.prepare.min_duration}"
    out_frames = math.ceil(n_frames / cfg.model.conv_stride)
    needed = ctc_frames_needed(utt.text)
    if needed > out_frames:
        return "ctc infeasible", f"needs {needed} output frames, model emits {out_frames}"
    return None


def _probe_duration(utt: Utterance) -> float | None:
    """Duration in seconds from the file header (cheap), or None when unknown."""
    if utt.duration is not None:
        return utt.duration
    import soundfile as sf

    try:
        info = sf.info(utt.audio)
    except Exception:  # noqa: BLE001 - any unreadable header is handled by the full read
        return None
    return max(info.duration - utt.offset, 0.0)


def featurise_shard(job: ShardJob) -> dict:
    """Compute MFCC for one shard; write `NAME.npy` then `NAME.json` atomically; return the metadata."""
    from threadpoolctl import threadpool_limits

    items, skipped, feats = [], [], []
    row = 0
    with threadpool_limits(1):  # one core per worker: parallelism comes from processes
        for utt in job.utts:
            dur = _probe_duration(utt)
            if dur is not None and dur > job.cfg.prepare.max_duration:
                skipped.append(asdict(Skipped(utt.id, utt.audio, "too long",
                                              f"{dur:.1f} s > prepare.max_duration {job.cfg.prepare.max_duration}")))
                continue
            try:
                audio = load_audio(utt.audio, job.cfg.features.sample_rate, utt.offset, utt.duration)
            except AsrError as err:
                skipped.append(asdict(Skipped(utt.id, utt.audio, "unreadable audio", str(err).split(": ", 2)[-1])))
                continue
            mfcc = compute_mfcc(audio, job.cfg.features) if audio.size else np.zeros((0, job.cfg.features.n_mfcc))
            problem = _check_item(utt, audio, len(mfcc), job.cfg)
            if problem:
                skipped.append(asdict(Skipped(utt.id, utt.audio, *problem)))
                continue
            feats.append(mfcc)
            items.append({"id": utt.id, "audio": utt.audio, "duration": round(audio.size / job.cfg.features.sample_rate,
                          4), "text": utt.text, "n_frames": len(mfcc), "row": row, "subset": utt.subset})
            row += len(mfcc)
    n_mfcc = job.cfg.features.n_mfcc
    stacked = np.concatenate(feats) if feats else np.zeros((0, n_mfcc), np.float32)
    with atomic_path(Path(job.out_dir) / f"{job.name}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, stacked)
    meta = {"key": job.key, "items": items, "skipped": skipped, "count": int(len(stacked)),
            "sum": stacked.sum(0, dtype=np.float64).tolist(),
            "sumsq": np.square(stacked, dtype=np.float64).sum(0).tolist()}
    write_json(Path(job.out_dir) / f"{job.name}.json", meta)
    return meta


def _normalise(utts: list[Utterance], cfg: Config, strict: bool) -> tuple[list[Utterance], list[Skipped]]:
    """Normalise transcripts; drop duplicates, empty and out-of-alphabet transcripts (reported)."""
    kept, skipped, seen = [], [], set()
    for utt in sorted(utts, key=lambda u: u.id):
        text = normalize_text(utt.text, cfg.text)
        bad = out_of_alphabet(text, cfg.text.alphabet)
        if utt.id in seen:
            skipped.append(Skipped(utt.id, utt.audio, "duplicate id"))
        elif not text:
            skipped.append(Skipped(utt.id, utt.audio, "empty transcript", f"raw: {utt.text!r}"))
        elif bad:
            if strict:
                raise AsrError(f"{utt.audio}: transcript has characters outside text.alphabet: {bad!r} "
                               "(extend text.alphabet, or drop --strict to skip such items)")
            skipped.append(Skipped(utt.id, utt.audio, "out-of-alphabet characters", bad))
        else:
            kept.append(replace(utt, text=text))
        seen.add(utt.id)
    return kept, skipped


def _hash_fraction(uid: str, seed: int) -> float:
    """Deterministic number in [0, 1) for an id: stable splits even when the corpus grows."""
    return int(hashlib.sha1(f"{seed}:{uid}".encode()).hexdigest()[:8], 16) / 2**32


def assign_splits(utts: list[Utterance], cfg: Config) -> dict[str, list[Utterance]]:
    """Use the corpus' own splits when it has any; otherwise a seeded hash split by id."""
    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    own = any(u.split for u in utts)
    for u in utts:
        if own:
            splits[u.split or "train"].append(u)
            continue
        x = _hash_fraction(u.id, cfg.prepare.seed)
        name = "test" if x < cfg.prepare.test_fraction else "dev" if x < cfg.prepare.test_fraction + \
            cfg.prepare.dev_fraction else "train"
        splits[name].append(u)
    return splits


def plan_shards(splits: dict[str, list[Utterance]], cfg: Config, feats_dir: Path) -> list[ShardJob]:
    """Cut each split (sorted by id) into shards of `prepare.shard_size` utterances."""
    size = cfg.prepare.shard_size
    return [ShardJob(f"{name}-{k // size:05d}", tuple(utts[k:k + size]), cfg, str(feats_dir))
            for name, utts in splits.items() for k in range(0, len(utts), size)]


def _finished(job: ShardJob) -> dict | None:
    """The shard's metadata if it was finished with the same inputs, else None."""
    meta_path = Path(job.out_dir) / f"{job.name}.json"
    if not meta_path.is_file() or not (Path(job.out_dir) / f"{job.name}.npy").is_file():
        return None
    meta = read_json(meta_path)
    return meta if meta.get("key") == job.key else None


def run_shards(jobs: list[ShardJob], n_jobs: int, progress: bool = True) -> dict[str, dict]:
    """Featurise the jobs in parallel with a progress bar; returns metadata per shard name."""
    from tqdm import tqdm

    metas = {}
    todo = []
    for job in jobs:
        meta = _finished(job)
        if meta is None:
            todo.append(job)
        else:
            metas[job.name] = meta
    bar = tqdm(total=sum(len(j.utts) for j in todo), unit="utt", desc="features", disable=not progress,
               file=sys.stderr)
    if n_jobs <= 1 or len(todo) <= 1:
        for job in todo:
            metas[job.name] = featurise_shard(job)
            bar.update(len(job.utts))
    else:
        ctx = multiprocessing.get_context("forkserver")  # fork is unsafe once TensorFlow threads exist
        with ctx.Pool(min(n_jobs, len(todo))) as pool:
            for job, meta in zip(todo, pool.imap(featurise_shard, todo)):
                metas[job.name] = meta
                bar.update(len(job.utts))
    bar.close()
    return metas


def _stats(metas: list[dict], n_mfcc: int) -> dict:
    """Global mean/std per coefficient from shard sums (float64)."""
    count = sum(m["count"] for m in metas)
    if count == 0:
        return {"mean": [0.0] * n_mfcc, "std": [1.0] * n_mfcc, "frames": 0}
    total = np.sum([m["sum"] for m in metas], axis=0)
    sumsq = np.sum([m["sumsq"] for m in metas], axis=0)
    mean = total / count
    std = np.sqrt(np.maximum(sumsq / count - mean**2, 1e-8))
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": int(count)}


def _write_outputs(out: Path, cfg: Config, jobs: list[ShardJob], metas: dict[str, dict],
                   skipped: list[Skipped]) -> PrepareResult:
    """Manifests, stats, vocabulary, config and the skipped list from finished shards."""
    rows: dict[str, list[dict]] = collections.defaultdict(list)
    for job in jobs:
        split = job.name.rsplit("-", 1)[0]
        meta = metas[job.name]
        rows[split] += [{**item, "shard": f"feats/{job.name}.npy"} for item in meta["items"]]
        skipped += [Skipped(**s) for s in meta["skipped"]]
    for split in ("train", "dev", "test"):
        write_jsonl(out / f"{split}.jsonl", rows.get(split, []))
    train_metas = [metas[j.name] for j in jobs if j.name.startswith("train-")]
    write_json(out / "stats.json", _stats(train_metas, cfg.features.n_mfcc))
    Vocabulary.from_texts((r["text"] for r in rows.get("train", [])), cfg.text.alphabet).save(out / "vocab.json")
    saved = {"features": config_to_dict(cfg.features), "text": config_to_dict(cfg.text),
             "model": {"conv_stride": cfg.model.conv_stride}}
    write_text(out / "config.yaml", dump_yaml(saved))
    write_jsonl(out / "skipped.jsonl", [asdict(s) for s in skipped])
    return PrepareResult({s: len(r) for s, r in rows.items()},
                         {s: sum(x["duration"] for x in r) / 3600 for s, r in rows.items()}, skipped, 0, len(jobs))


def _clean_temporaries(feats_dir: Path) -> None:
    """Remove half-written temporaries left by a killed run."""
    for tmp in feats_dir.glob(".*.tmp"):
        tmp.unlink()


def prepare(corpus_dir: str | Path, out_dir: str | Path, cfg: Config, fmt: str | None = None, n_jobs: int = 0,
            strict: bool = False, num_shards: int = 1, shard_index: int = 0, progress: bool = True) -> PrepareResult:
    """Prepare `corpus_dir` into `out_dir` (see module docstring). `n_jobs=0` uses all cores.

    With `num_shards > 1`, only shards `k` with `k % num_shards == shard_index` are computed here; a final
    run without sharding (on the shared directory) reuses them all and writes the manifests.
    """
    if not 0 <= shard_index < num_shards:
        raise AsrError(f"--shard-index {shard_index} must be in [0, --num-shards {num_shards})")
    listing = read_corpus(corpus_dir, fmt)
    utts, skipped = _normalise(listing.utts, cfg, strict)
    skipped = listing.skipped + skipped
    if not utts:
        reasons = ", ".join(sorted({s.reason for s in skipped})) or "no audio with transcripts found"
        raise AsrError(f"{corpus_dir}: nothing usable to prepare ({listing.format} format; {reasons})")
    splits = assign_splits(utts, cfg)
    out = Path(out_dir)
    feats_dir = out / "feats"
    feats_dir.mkdir(parents=True, exist_ok=True)
    _clean_temporaries(feats_dir)
    jobs = plan_shards(splits, cfg, feats_dir)
    mine = [j for k, j in enumerate(jobs) if k % num_shards == shard_index]
    n_jobs = n_jobs or len(os.sched_getaffinity(0))
    reused = sum(1 for j in mine if _finished(j) is not None)
    metas = run_shards(mine, n_jobs, progress)
    if num_shards > 1 and len(metas) < len(jobs):
        metas.update({j.name: m for j in jobs if j.name not in metas and (m := _finished(j)) is not None})
        if len(metas) < len(jobs):
            return PrepareResult({}, {}, skipped, reused, len(jobs))
    result = _write_outputs(out, cfg, jobs, metas, skipped)
    result.reused_shards = reused
    if not result.counts.get("train"):
        raise AsrError(f"{corpus_dir}: no usable training utterances after filtering (see {out / 'skipped.jsonl'})")
    return result
