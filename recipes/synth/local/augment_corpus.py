"""Write augmented copies of a LibriSpeech-layout corpus (noise, speed, tempo, pitch, reverb, telephone).

    python recipes/synth/local/augment_corpus.py --in data/synth-corpus --out data/synth-aug --folders train \\
        --effects speed,pitch,reverb,noise,telephone --prob 0.5 --copies 1

Copy k (1..--copies) of utterance SPK-CHAP-UTT in one of the --folders is written as SPK-<CHAP+100k>-UTT to
<out>/<folder><suffix>/SPK/<CHAP+100k>/, with its own trans.txt. Each listed effect is applied with probability
--prob (at least one per copy), with parameters drawn from `augment_audio.AugmentConfig`'s ranges (change one
with --range, e.g. --range speed=0.8,1.2). Every other file of the input is hard-linked into <out> (copied across
file systems), so <out> is a complete corpus for `asr prepare`: clean and augmented training audio, untouched dev
and test sets. With --out equal to --in only the copies are added, e.g. a telephone version of a test set beside
the original:

    python recipes/synth/local/augment_corpus.py --in data/synth-corpus --out data/synth-corpus --folders test-unseen \\
        --suffix=-phone --effects telephone

Copy k of utterance U draws from a RNG seeded by (--seed, k, U), so results do not depend on order or --workers;
finished files are skipped, so an interrupted run resumes. <out>/augment-<folder><suffix>.tsv lists each copy's
source and effects.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from augment_audio import EFFECTS, AugmentConfig, apply_chain, describe, draw_chain
from tqdm import tqdm

from asr.corpus import read_librispeech
from asr.files import write_text

CHAPTER_STEP = 100  # copy k of chapter C is chapter C + 100 k: ids stay LibriSpeech-shaped and unique
WORKERS = 2


@dataclass(frozen=True)
class Job:
    """One augmented copy of one utterance."""

    source: Path  # input audio
    target: Path  # output FLAC
    uid: str  # source utterance id
    copy: int  # 1..copies
    text: str  # transcript, as found in the input
    seed: int
    effects: tuple[str, ...]
    prob: float
    ranges: AugmentConfig = AugmentConfig()  # the parameter ranges effects are drawn from

    @property
    def new_uid(self) -> str:
        return self.target.stem

    def rng(self) -> np.random.Generator:
        """The job's own random stream: the same whatever order or process runs it."""
        return np.random.default_rng([self.seed, self.copy, zlib.crc32(self.uid.encode("utf-8"))])

    def chain(self, rng: np.random.Generator) -> list[tuple[str, dict]]:
        return draw_chain(self.effects, self.ranges, rng, self.prob)


def copy_id(uid: str, copy: int) -> tuple[str, str, str]:
    """(speaker, new chapter, new uid) of copy `copy` of a LibriSpeech id SPEAKER-CHAPTER-UTT."""
    parts = uid.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        sys.exit(f"error: utterance id {uid!r} is not LibriSpeech-shaped (SPEAKER-CHAPTER-UTT with a numeric chapter)")
    chapter = str(int(parts[1]) + CHAPTER_STEP * copy)
    return parts[0], chapter, f"{parts[0]}-{chapter}-{parts[2]}"


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """One job per (utterance in --folders, copy)."""
    jobs = []
    listing = read_librispeech(args.input)
    for utt in listing.utts:
        folder = Path(utt.audio).relative_to(args.input).parts[0]
        if folder not in args.folders:
            continue
        for k in range(1, args.copies + 1):
            speaker, chapter, new_uid = copy_id(utt.id, k)
            target = args.out / f"{folder}{args.suffix}" / speaker / chapter / f"{new_uid}.flac"
            jobs.append(Job(Path(utt.audio), target, utt.id, k, utt.text, args.seed, args.effects, args.prob,
                            args.ranges))
    return jobs


def augment_one(job: Job) -> str | None:
    """Write one augmented copy atomically; None on success, else a one-line error."""
    try:
        audio, rate = sf.read(str(job.source), dtype="float32", always_2d=True)
        rng = job.rng()
        out = apply_chain(audio.mean(axis=1), rate, job.chain(rng), rng)
        job.target.parent.mkdir(parents=True, exist_ok=True)
        tmp = job.target.with_name(f".{job.target.name}.tmp")
        sf.write(str(tmp), out, rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, job.target)
    except (OSError, RuntimeError, ValueError) as err:  # unreadable input or unwritable output: report, go on
        return f"{job.uid} copy {job.copy}: {err}"
    return None


def run_jobs(jobs: Sequence[Job], workers: int) -> list[str]:
    """Run the jobs whose output is missing, in `workers` processes; return the errors."""
    todo = [job for job in jobs if not job.target.exists()]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} augmented files already present; writing {len(todo)}")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = tqdm(pool.map(augment_one, todo, chunksize=8), total=len(todo), unit="utt", desc="augmenting")
        return [error for error in results if error is not None]


def write_transcripts(jobs: Sequence[Job]) -> None:
    """One trans.txt per output chapter, listing the copies whose audio exists."""
    chapters: dict[Path, list[Job]] = {}
    for job in jobs:
        if job.target.exists():
            chapters.setdefault(job.target.parent, []).append(job)
    for chapter_dir, group in chapters.items():
        lines = "".join(f"{job.new_uid} {job.text}\n" for job in sorted(group, key=lambda j: j.new_uid))
        write_text(chapter_dir / f"{group[0].new_uid.rsplit('-', 1)[0]}.trans.txt", lines)


def manifests(jobs: Sequence[Job], out: Path) -> dict[Path, str]:
    """<out>/augment-<folder>.tsv per output folder -> its text: new id, source id, effects with parameters."""
    by_folder: dict[str, list[str]] = {}
    for job in jobs:
        folder = job.target.relative_to(out).parts[0]
        by_folder.setdefault(folder, []).append(f"{job.new_uid}\t{job.uid}\t{describe(job.chain(job.rng()))}\n")
    header = "utt_id\tsource\teffects\n"
    return {out / f"augment-{folder}.tsv": header + "".join(sorted(rows)) for folder, rows in by_folder.items()}


def check_manifests(texts: dict[Path, str]) -> None:
    """Exit if an earlier run wrote copies with other settings: skipping its files would mix two augmentations."""
    for path, text in texts.items():
        if path.exists() and path.read_text(encoding="utf-8") != text:
            sys.exit(f"error: {path} was written with other settings (effects, prob, copies, seed or input); "
                 "rerun with those settings, or use a new --out")


def mirror(source: Path, out: Path) -> int:
    """Hard-link (or copy) every file of `source` into the same place under `out`; return how many were new."""
    added = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = out / path.relative_to(source)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(path, target)
        added += 1
    return added


RANGE_NAMES = tuple(f.name for f in fields(AugmentConfig) if f.name != "noise_colours")


def parse_ranges(items: Sequence[str]) -> AugmentConfig:
    """AugmentConfig with each --range NAME=LO,HI applied, e.g. ['speed=0.8,1.2']."""
    ranges = {}
    for item in items:
        name, _, value = item.partition("=")
        bounds = value.split(",")
        try:
            lo, hi = (float(b) for b in bounds)
        except ValueError:
            lo = hi = None
        if name not in RANGE_NAMES or lo is None or not lo <= hi:
            sys.exit(f"error: --range {item!r}: expected NAME=LO,HI with LO <= HI and NAME one of "
                     f"{', '.join(RANGE_NAMES)}")
        ranges[name] = (lo, hi)
    return replace(AugmentConfig(), **ranges)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--in", dest="input", type=Path, required=True, help="LibriSpeech-layout corpus root")
    parser.add_argument("--out", type=Path, required=True, help="output corpus root (may be --in itself)")
    parser.add_argument("--folders", default="train", help="comma-separated top-level folders to augment")
    parser.add_argument("--effects", default=",".join(EFFECTS), help="comma-separated subset of " + ",".join(EFFECTS))
    parser.add_argument("--prob", type=float, default=1.0, help="probability of each effect per copy (0-1]")
    parser.add_argument("--copies", type=int, default=1, help="augmented copies per utterance")
    parser.add_argument("--suffix", default="", help="appended to each augmented folder's name, e.g. -phone")
    parser.add_argument("--seed", type=int, default=0, help="seeds every copy's effects and parameters")
    parser.add_argument("--no-mirror", action="store_true", help="do not link the input's files into --out")
    parser.add_argument("--workers", type=int, default=WORKERS, help="parallel processes")
    parser.add_argument("--range", dest="ranges", action="append", default=[], metavar="NAME=LO,HI",
                        help="widen or narrow a parameter range, e.g. speed=0.8,1.2 (repeatable; names: "
                             + ", ".join(RANGE_NAMES) + ")")
    args = parser.parse_args(argv)
    args.ranges = parse_ranges(args.ranges)
    args.folders = tuple(f for f in args.folders.split(",") if f)
    args.effects = tuple(e for e in args.effects.split(",") if e)
    if not args.input.is_dir():
        sys.exit(f"error: --in: corpus folder {args.input} not found")
    missing = [f for f in args.folders if not (args.input / f).is_dir()]
    if not args.folders or missing:
        sys.exit(f"error: --folders: {args.input} has no folder {(missing or [''])[0]!r}; its folders: "
             f"{', '.join(sorted(p.name for p in args.input.iterdir() if p.is_dir()))}")
    if not args.effects or set(args.effects) - set(EFFECTS):
        sys.exit(f"error: --effects: expected a comma-separated subset of {','.join(EFFECTS)}, "
                 f"got {','.join(args.effects)!r}")
    if not 0 < args.prob <= 1:
        sys.exit(f"error: --prob must be in (0, 1], got {args.prob}")
    if args.copies < 1 or args.workers < 1:
        sys.exit(f"error: --copies and --workers must be at least 1, got {args.copies} and {args.workers}")
    same = args.out.resolve() == args.input.resolve()
    if not same and args.input.resolve() in args.out.resolve().parents:
        sys.exit(f"error: --out {args.out} is inside --in {args.input}: choose a folder beside it, "
                 f"e.g. {args.input}-aug")
    if same and not args.suffix:
        sys.exit("error: --out is --in: give a --suffix (e.g. -phone) so the copies go to new folders beside "
                 "the originals")
    args.no_mirror = args.no_mirror or same
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = plan_jobs(args)
    texts = manifests(jobs, args.out)
    check_manifests(texts)
    if not args.no_mirror:
        print(f"linked {mirror(args.input, args.out)} files of {args.input} into {args.out}")
    errors = run_jobs(jobs, args.workers)
    write_transcripts(jobs)
    for path, text in texts.items():
        write_text(path, text)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    done = sum(1 for job in jobs if job.target.exists())
    print(f"{done} augmented utterances in {args.out} ({', '.join(f + args.suffix for f in args.folders)})")
    if errors:
        print(f"{len(errors)} copies failed; rerun to retry them", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
