"""`asr prepare`: corpus -> normalised, split, featurised data directory.

    asr prepare recipes/demo/corpus --out data/demo --config configs/demo.yaml

DATA_DIR layout (every file written atomically; the corpus itself is only read):

    config.yaml          the corpus folder, features + text + model.conv_stride the data was prepared with
    vocab.json           characters of the normalised training text; class 0 is the CTC blank
    stats.json           per-coefficient mean/std of the train features (global CMVN)
    {train,dev,test}.jsonl  manifests: id, audio, duration, text, n_frames, shard, row, subset
    feats/SPLIT-NNNNN.npy   float32 [sum of n_frames, n_mfcc]: the utterances of a shard, concatenated
    feats/SPLIT-NNNNN.json  shard metadata; its presence marks the shard as finished
    skipped.jsonl        id, path, reason, detail of every item that was not used
    .lock                held while `asr prepare` writes DATA_DIR (asr/lock.py; --num-shards runs share it)

A shard (`prepare.shard_size` utterances of one split, sorted by id) is the unit of parallel and
resumable work. Its metadata carries a key hashing its inputs (utterances, the size and mtime of their
audio files, the settings); a re-run, or a run after `kill -9`, reuses every shard whose key matches, so
it produces the same result as one uninterrupted run, and a fixed audio file is picked up again.
`--num-shards N --shard-index I` computes every N-th shard only, so N machines can share the work on
one shared DATA_DIR; a last run without them (or the last machine to finish) writes the manifests.
A DATA_DIR holds one corpus: re-running on the same corpus folder resumes, another one is refused unless
`--overwrite` (which deletes what prepare wrote there first).

Bad items never stop the run: each is skipped with a reason (see `SKIP_REASONS`).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from asr.config import SPLITS, Config, config_to_dict, dump_yaml, read_yaml
from asr.corpus import Skipped, Utterance, read_corpus
from asr.errors import AsrError
from asr.files import remove, write_json, write_jsonl, write_text
from asr.lock import lock_dir
from asr.runtime import available_cores
from asr.shards import ShardJob, finished, plan_shards, run_shards, start_forkserver
from asr.text import Vocabulary, normalise_text, out_of_alphabet

# Every reason an item can be skipped for, from reading the corpus to the vocabulary check.
SKIP_REASONS = (
    "missing audio", "missing transcript", "non-utf8 transcript", "bad metadata line", "bad table row",
    "bad manifest line", "duplicate id", "empty transcript", "out-of-alphabet characters", "unreadable audio",
    "empty audio", "non-finite samples", "silent audio", "too short", "too long", "ctc infeasible",
    "feature extraction failed",
)


@dataclass
class PrepareResult:
    """Summary of a prepare run; `counts` is empty after a `--num-shards` run that left shards to others."""

    counts: dict[str, int]  # utterances per split
    hours: dict[str, float]  # audio hours per split
    skipped: list[Skipped]
    reused_shards: int
    total_shards: int
    unseen: dict[str, str] = field(default_factory=dict)  # dev/test id -> characters no training text has


def normalise_transcripts(utts: list[Utterance], cfg: Config, strict: bool,
                          allowed: str | None = None) -> tuple[list[Utterance], list[Skipped]]:
    """Normalise transcripts (sorted by id); drop duplicate ids, empty and out-of-alphabet transcripts (reported).

    `allowed`: the characters a transcript may use (default `text.alphabet`; a parent bundle's vocabulary
    under `--like`; "" allows any, for `--grow-vocab`). With `strict`, a transcript with other characters is an
    AsrError instead.
    """
    allowed = cfg.text.alphabet if allowed is None else allowed
    kept, skipped, seen = [], [], set()
    for utt in sorted(utts, key=lambda u: u.id):
        text = normalise_text(utt.text, cfg.text)
        bad = out_of_alphabet(text, allowed) if allowed else ""
        if utt.id in seen:
            skipped.append(Skipped(utt.id, utt.audio, "duplicate id", "an earlier item has the same id"))
        elif not text:
            skipped.append(Skipped(utt.id, utt.audio, "empty transcript", f"raw: {utt.text!r}"))
        elif bad:
            skipped.append(Skipped(utt.id, utt.audio, "out-of-alphabet characters", bad))
        else:
            kept.append(replace(utt, text=text))
        seen.add(utt.id)
    if strict:
        _fail_on_out_of_alphabet(skipped)
    return kept, skipped


def _fail_on_out_of_alphabet(skipped: list[Skipped]) -> None:
    """`--strict`: raise AsrError naming every character outside the alphabet and the first transcript."""
    bad = [s for s in skipped if s.reason == "out-of-alphabet characters"]
    if bad:
        chars = "".join(sorted(set("".join(s.detail for s in bad))))
        raise AsrError(f"--strict: {len(bad)} transcript(s) have characters outside text.alphabet: {chars!r} "
                       f"(first: {bad[0].id} in {bad[0].path}); add them to text.alphabet, or drop --strict to "
                       "skip these items")


def _hash_fraction(uid: str, seed: int) -> float:
    """Deterministic number in [0, 1) for an id: stable splits even when the corpus grows."""
    return int(hashlib.sha1(f"{seed}:{uid}".encode()).hexdigest()[:8], 16) / 2**32


def assign_splits(utts: list[Utterance], cfg: Config) -> dict[str, list[Utterance]]:
    """`prepare.split_as` when set; else the corpus' own splits when it has any; else a seeded hash split by id.

    A hash split that leaves dev empty (a corpus of a few minutes) moves the train utterances nearest to the
    dev share there instead: at least one, `dev_fraction` of the corpus when that is more.
    """
    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    if cfg.prepare.split_as:
        splits[cfg.prepare.split_as] = list(utts)
        return splits
    own = any(u.split for u in utts)
    test, dev = cfg.prepare.test_fraction, cfg.prepare.dev_fraction
    for u in utts:
        if own:
            splits[u.split or "train"].append(u)
            continue
        x = _hash_fraction(u.id, cfg.prepare.seed)
        splits["test" if x < test else "dev" if x < test + dev else "train"].append(u)
    if not own and dev > 0 and not splits["dev"] and len(splits["train"]) > 1:
        nearest = sorted(splits["train"], key=lambda u: _hash_fraction(u.id, cfg.prepare.seed))
        n = min(max(1, round(dev * len(utts))), len(nearest) - 1)
        moved = {u.id for u in nearest[:n]}
        splits["dev"] = [u for u in splits["train"] if u.id in moved]
        splits["train"] = [u for u in splits["train"] if u.id not in moved]
    return splits


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


def _manifest_rows(jobs: list[ShardJob], metas: dict[str, dict]) -> tuple[dict[str, list[dict]], list[Skipped]]:
    """Manifest rows per split and the items the shards skipped, in shard order."""
    rows: dict[str, list[dict]] = {name: [] for name in SPLITS}
    skipped = []
    for job in jobs:
        split = job.name.rsplit("-", 1)[0]
        rows[split] += [{**item, "shard": f"feats/{job.name}.npy"} for item in metas[job.name]["items"]]
        skipped += [Skipped(**s) for s in metas[job.name]["skipped"]]
    return rows, skipped


def unseen_characters(rows: dict[str, list[dict]], vocab: Vocabulary) -> dict[str, str]:
    """Dev/test ids whose text has characters no training text has, with those characters.

    They stay in the manifests and are scored (dropping them would flatter the error rates); the
    model simply cannot emit those characters.
    """
    known = set(vocab.chars)
    return {r["id"]: "".join(sorted(set(r["text"]) - known)) for split in ("dev", "test") for r in rows[split]
            if not set(r["text"]) <= known}


def _write_outputs(out: Path, cfg: Config, corpus: Path, jobs: list[ShardJob], metas: dict[str, dict],
                   skipped: list[Skipped], base_vocab: Vocabulary | None) -> PrepareResult:
    """Manifests, stats, vocabulary, config and the skipped list from finished shards."""
    rows, shard_skipped = _manifest_rows(jobs, metas)
    train_texts = [r["text"] for r in rows["train"]]
    vocab = Vocabulary.from_texts(train_texts, cfg.text.alphabet) if base_vocab is None else \
        base_vocab.grown(train_texts)
    skipped = skipped + shard_skipped
    for split, split_rows in rows.items():
        write_jsonl(out / f"{split}.jsonl", split_rows)
    write_json(out / "stats.json", _stats([metas[j.name] for j in jobs if j.name.startswith("train-")],
                                          cfg.features.n_mfcc))
    vocab.save(out / "vocab.json")
    saved = {"corpus": str(corpus.resolve()), "features": config_to_dict(cfg.features),
             "text": config_to_dict(cfg.text), "model": {"conv_stride": cfg.model.conv_stride}}
    write_text(out / "config.yaml", dump_yaml(saved))
    write_jsonl(out / "skipped.jsonl", [asdict(s) for s in skipped])
    return PrepareResult({s: len(r) for s, r in rows.items()},
                         {s: sum(x["duration"] for x in r) / 3600 for s, r in rows.items()}, skipped, 0, len(jobs),
                         unseen_characters(rows, vocab))


def _remove_leftovers(out: Path, jobs: list[ShardJob]) -> None:
    """Remove temporaries of killed runs and shards that are no longer part of the plan."""
    names = {job.name for job in jobs}
    for path in [*out.glob(".*.tmp"), *(out / "feats").iterdir()]:
        if path.name.endswith(".tmp") or (path.suffix in (".npy", ".json") and path.stem not in names):
            path.unlink()


def _check_arguments(corpus_dir: Path, out: Path, cfg: Config, n_jobs: int, num_shards: int, shard_index: int,
                     overwrite: bool) -> None:
    """AsrError for arguments or settings that cannot work."""
    if not 0 <= shard_index < num_shards:
        raise AsrError(f"--shard-index {shard_index} must be in [0, --num-shards {num_shards})")
    if overwrite and num_shards > 1:
        raise AsrError("--overwrite clears --out, where the other machines of a --num-shards run write: clear it once, "
                       "with a run without --num-shards")
    if n_jobs < 0:
        raise AsrError(f"--jobs {n_jobs}: expected a number of processes >= 1, or 0 for all cores")
    if cfg.prepare.shard_size < 1:
        raise AsrError(f"prepare.shard_size must be >= 1, got {cfg.prepare.shard_size}")
    if not 0 <= cfg.prepare.min_duration < cfg.prepare.max_duration:
        raise AsrError(f"prepare.min_duration {cfg.prepare.min_duration} must be >= 0 and below "
                       f"prepare.max_duration {cfg.prepare.max_duration}")
    if out.exists() and not out.is_dir():
        raise AsrError(f"--out {out} is a file; give a directory (it is created if missing)")
    if out.resolve().is_relative_to(corpus_dir.resolve()):
        raise AsrError(f"--out {out} is inside the corpus {corpus_dir}; prepare never writes into a corpus: "
                       "choose an output directory outside it")


PREPARED = ("config.yaml", "vocab.json", "stats.json", *(f"{split}.jsonl" for split in SPLITS), "skipped.jsonl",
            "feats")  # what `prepare --overwrite` deletes; anything else in --out is left alone


def _claim(out: Path, corpus: Path, overwrite: bool) -> None:
    """Make `out` the data directory of `corpus`: with `overwrite`, clear what prepare wrote there; without, refuse
    one prepared from another corpus folder (recorded as `corpus:` in its config.yaml; older ones have none)."""
    if overwrite:
        for name in PREPARED:
            remove(out / name)
        return
    saved = read_yaml(out / "config.yaml").get("corpus") if (out / "config.yaml").is_file() else None
    if saved is not None and Path(saved) != corpus.resolve():
        raise AsrError(f"--out {out} holds data prepared from {saved}, not {corpus.resolve()}: choose another --out, "
                       "or replace that data with --overwrite")


def prepare(corpus_dir: str | Path, out_dir: str | Path, cfg: Config, fmt: str | None = None, n_jobs: int = 0,
            strict: bool = False, num_shards: int = 1, shard_index: int = 0, progress: bool = True,
            base_vocab: Vocabulary | None = None, grow_vocab: bool = False, overwrite: bool = False) -> PrepareResult:
    """Prepare `corpus_dir` into `out_dir` (see module docstring). `n_jobs=0` uses all cores.

    With `num_shards > 1`, only shards `k` with `k % num_shards == shard_index` are computed here; a final
    run without sharding (on the shared directory) reuses them all and writes the manifests.
    `base_vocab` (a parent bundle's, `asr prepare --like`) is the vocabulary the data must fit: transcripts
    with other characters are skipped, or with `grow_vocab` the characters are appended to it (and to
    `text.alphabet`). `out_dir` is locked while it is written (except by `num_shards > 1` runs, which share it by
    design); one prepared from another corpus folder is refused unless `overwrite` (which clears it first).
    Raises AsrError when nothing usable is found.
    """
    corpus, out = Path(corpus_dir), Path(out_dir)
    _check_arguments(corpus, out, cfg, n_jobs, num_shards, shard_index, overwrite)
    n_jobs = n_jobs or available_cores()
    if n_jobs > 1:
        start_forkserver()
    with lock_dir(out, "asr prepare") if num_shards == 1 else contextlib.nullcontext():  # shards share `out`
        _claim(out, corpus, overwrite)
        listing = read_corpus(corpus, fmt)
        allowed = None if base_vocab is None else "" if grow_vocab else "".join(base_vocab.chars)
        utts, skipped = normalise_transcripts(listing.utts, cfg, strict, allowed)
        skipped = listing.skipped + skipped
        if not utts:
            reasons = ", ".join(sorted({s.reason for s in skipped})) or "no audio with transcripts found"
            raise AsrError(f"{corpus_dir}: nothing usable to prepare ({listing.format} format; {reasons})")
        if grow_vocab:  # the alphabet gains the new characters, so later normalisation (eval, transcribe) keeps them
            cfg = replace(cfg, text=replace(cfg.text, alphabet=cfg.text.alphabet + out_of_alphabet(
                "".join(u.text for u in utts), cfg.text.alphabet)))
        feats_dir = out / "feats"
        feats_dir.mkdir(parents=True, exist_ok=True)
        jobs = plan_shards(assign_splits(utts, cfg), cfg, feats_dir)
        mine = [j for k, j in enumerate(jobs) if k % num_shards == shard_index]
        metas, reused = run_shards(mine, n_jobs, progress)
        metas.update({j.name: m for j in jobs if j.name not in metas and (m := finished(j)) is not None})
        if len(metas) < len(jobs):  # other machines of a --num-shards run are still working
            return PrepareResult({}, {}, skipped, reused, len(jobs))
        if num_shards == 1:  # with several machines on one directory, another may be writing a temporary now
            _remove_leftovers(out, jobs)
        result = _write_outputs(out, cfg, corpus, jobs, metas, skipped, base_vocab)
    result.reused_shards = reused
    if not sum(result.counts.values()):
        raise AsrError(f"{corpus_dir}: no usable utterances ({len(result.skipped)} items skipped; "
                       f"reasons in {out / 'skipped.jsonl'})")
    return result
