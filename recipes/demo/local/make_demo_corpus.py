"""Synthesise the multi-voice demo corpus with espeak-ng, in LibriSpeech layout.

    python recipes/demo/local/make_demo_corpus.py --out recipes/demo/corpus --seed 0 --n-train 260 --n-dev 50 \
        --n-test 50

Sentences are 2-5 words from a 20-word vocabulary (digits and short commands), so a small character-level CTC
model can learn them on a CPU in minutes. Each utterance has its own sentence, and the splits are cut by sentence
text, so no dev/test sentence occurs in train. Speakers are (espeak-ng voice, variant) pairs, shared by all splits;
speed and pitch vary per utterance. Everything is drawn from one seeded RNG, so a rerun gives the same files, and
finished files are skipped, so an interrupted run can simply be restarted.

Output: <out>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac (16 kHz mono 16-bit) and one
<speaker>-<chapter>.trans.txt per chapter, lines "UTTID TRANSCRIPT" in upper case, as LibriSpeech has them.
Needs espeak-ng and sox: apt-get install -y --no-install-recommends espeak-ng sox
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from espeak import espeak_voice, installed_voices

from asr.files import write_text

INSTALL_HINT = "apt-get install -y --no-install-recommends espeak-ng sox"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOCABULARY = DIGITS + COMMANDS
MIN_WORDS, MAX_WORDS = 2, 5
SPEED_WPM = (130, 190)  # espeak-ng -s; its default is 175
PITCH = (30, 70)  # espeak-ng -p, 0-99; its default is 50
SAMPLE_RATE = 16000  # what the asr features expect; espeak-ng itself writes 22050 Hz
GAIN_DB = "-6"  # sox gain applied while resampling
# One male and one female variant per accent gives 16 speakers; all are plain formant voices (no whisper/robot).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
MALE_VARIANTS = ("m1", "m3", "m5", "m7")
FEMALE_VARIANTS = ("f2", "f4", "f1", "f3")
FIRST_SPEAKER_ID = 101
SPLITS = ("test", "dev", "train")  # in drawing order: test and dev stay the same whatever --n-train is
CHAPTER_IDS = {"train": 1, "dev": 2, "test": 3}  # one chapter per (speaker, split) keeps utterance ids unique
WORKERS = 2


@dataclass(frozen=True)
class Speaker:
    """A numeric LibriSpeech-style speaker id for one espeak-ng voice and variant."""

    speaker_id: int
    voice: str  # e.g. "en-gb-scotland"
    variant: str  # e.g. "m3"

    @property
    def label(self) -> str:
        return f"{self.voice}+{self.variant}"


@dataclass(frozen=True)
class Utterance:
    """Everything needed to synthesise one file; fully determined by the seed."""

    split: str
    speaker: Speaker
    index: int  # position within the speaker's chapter
    text: str  # lower case, as espeak-ng reads it
    speed: int  # words per minute
    pitch: int

    @property
    def chapter_id(self) -> int:
        return CHAPTER_IDS[self.split]

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.speaker_id}-{self.chapter_id}-{self.index:04d}"

    def chapter_dir(self, out: Path) -> Path:
        return out / self.split / str(self.speaker.speaker_id) / str(self.chapter_id)

    def flac_path(self, out: Path) -> Path:
        return self.chapter_dir(out) / f"{self.utt_id}.flac"



def check_tools() -> None:
    """Exit with an install hint if espeak-ng or sox is not on PATH."""
    for tool in ("espeak-ng", "sox", "soxi"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found on PATH; install it with: {INSTALL_HINT}")


def build_speakers() -> list[Speaker]:
    """One male and one female speaker per accent, with numeric ids from FIRST_SPEAKER_ID."""
    pairs = []
    for i, accent in enumerate(ACCENTS):
        pairs.append((accent, MALE_VARIANTS[i % len(MALE_VARIANTS)]))
        pairs.append((accent, FEMALE_VARIANTS[i % len(FEMALE_VARIANTS)]))
    return [Speaker(FIRST_SPEAKER_ID + i, voice, variant) for i, (voice, variant) in enumerate(pairs)]


def check_speakers(speakers: Sequence[Speaker]) -> None:
    """espeak-ng silently falls back to its default voice on an unknown name, so check names up front."""
    languages, variants = installed_voices()
    for speaker in speakers:
        if speaker.voice not in languages or speaker.variant not in variants:
            sys.exit(f"error: espeak-ng has no voice {speaker.label!r}; see espeak-ng --voices=en and --voices=variant")


def draw_sentences(rng: random.Random, count: int) -> list[str]:
    """`count` distinct sentences of MIN_WORDS..MAX_WORDS words, in drawing order."""
    sentences: dict[str, None] = {}  # a dict keeps insertion order, so the result is deterministic
    while len(sentences) < count:
        n_words = rng.randint(MIN_WORDS, MAX_WORDS)
        sentences[" ".join(rng.choice(VOCABULARY) for _ in range(n_words))] = None
    return list(sentences)


def plan_split(
    rng: random.Random, split: str, sentences: Sequence[str], speakers: Sequence[Speaker]
) -> list[Utterance]:
    """Deal the sentences round-robin over the speakers, drawing speed and pitch per utterance."""
    counts = {speaker.speaker_id: 0 for speaker in speakers}
    plan = []
    for i, text in enumerate(sentences):
        speaker = speakers[i % len(speakers)]
        speed, pitch = rng.randint(*SPEED_WPM), rng.randint(*PITCH)
        plan.append(Utterance(split, speaker, counts[speaker.speaker_id], text, speed, pitch))
        counts[speaker.speaker_id] += 1
    return plan


def plan_corpus(seed: int, sizes: dict[str, int], speakers: Sequence[Speaker]) -> list[Utterance]:
    """All utterances of all splits; splits are cut by sentence text, so they share no sentence."""
    rng = random.Random(seed)
    sentences = draw_sentences(rng, sum(sizes.values()))
    plan: list[Utterance] = []
    start = 0
    for split in SPLITS:
        plan += plan_split(rng, split, sentences[start : start + sizes[split]], speakers)
        start += sizes[split]
    return plan


def synthesise(utt: Utterance, out: Path) -> str | None:
    """Write one utterance's FLAC atomically; return None on success or a one-line error."""
    target = utt.flac_path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        wav, flac = Path(tmp) / "espeak.wav", Path(tmp) / "out.flac"
        voice = ["-v", espeak_voice(utt.speaker.voice, utt.speaker.variant), "-s", str(utt.speed), "-p", str(utt.pitch)]
        espeak = ["espeak-ng", *voice, "-w", str(wav), utt.text]
        # -D: no dither, so espeak-ng's digital silence stays silent and compresses to almost nothing;
        # the gain leaves headroom (espeak-ng peaks near 0 dBFS) and shrinks the FLAC files by ~10%.
        encoding = ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-C", "8"]
        sox = ["sox", "-D", str(wav), *encoding, str(flac), "gain", GAIN_DB]
        for cmd in (espeak, sox):
            result = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if result.returncode != 0:
                return f"{utt.utt_id}: {cmd[0]} failed: {result.stderr.strip().splitlines()[-1:]}"
        os.replace(flac, target)
    return None


def progress(items: Iterable[str | None], total: int) -> Iterator[str | None]:
    """Wrap in a tqdm bar when tqdm is installed."""
    try:
        tqdm = importlib.import_module("tqdm").tqdm  # optional dependency, and it ships no type stubs
    except ImportError:
        return iter(items)
    return iter(tqdm(items, total=total, desc="synthesising", unit="utt"))


def synthesise_all(plan: Sequence[Utterance], out: Path, workers: int) -> list[str]:
    """Synthesise the utterances whose FLAC is missing; return the errors."""
    todo = [utt for utt in plan if not utt.flac_path(out).exists()]
    print(f"{len(plan) - len(todo)} of {len(plan)} utterances already present; synthesising {len(todo)}")
    # Threads suffice: the work happens in espeak-ng and sox subprocesses.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = progress(pool.map(lambda utt: synthesise(utt, out), todo), len(todo))
        return [error for error in results if error is not None]



def write_transcripts(plan: Sequence[Utterance], out: Path) -> None:
    """One <speaker>-<chapter>.trans.txt per chapter, listing only utterances whose audio exists."""
    chapters: dict[Path, list[Utterance]] = {}
    for utt in plan:
        if utt.flac_path(out).exists():
            chapters.setdefault(utt.chapter_dir(out), []).append(utt)
    for chapter_dir, utts in chapters.items():
        lines = "".join(f"{utt.utt_id} {utt.text.upper()}\n" for utt in utts)
        write_text(chapter_dir / f"{utts[0].speaker.speaker_id}-{utts[0].chapter_id}.trans.txt", lines)


def total_duration(paths: Sequence[Path]) -> float:
    """Seconds of audio in `paths`, summed by soxi in batches to keep command lines short."""
    seconds = 0.0
    for start in range(0, len(paths), 200):
        batch = [str(p) for p in paths[start : start + 200]]
        result = subprocess.run(["soxi", "-D", "-T", *batch], check=True, capture_output=True, text=True)
        seconds += float(result.stdout)
    return seconds


def report(plan: Sequence[Utterance], out: Path) -> None:
    """Print utterances and seconds per split."""
    for split in ("train", "dev", "test"):
        paths = [u.flac_path(out) for u in plan if u.split == split and u.flac_path(out).exists()]
        print(f"{split}: {len(paths)} utterances, {total_duration(paths):.1f} s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="corpus root, e.g. recipes/demo/corpus")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sentences and each utterance's speed and pitch")
    parser.add_argument("--n-train", type=int, default=260, help="training utterances")
    parser.add_argument("--n-dev", type=int, default=50, help="development utterances")
    parser.add_argument("--n-test", type=int, default=50, help="test utterances")
    parser.add_argument("--workers", type=int, default=WORKERS, help="parallel synthesis jobs")
    args = parser.parse_args(argv)
    for name in ("n_train", "n_dev", "n_test", "workers"):
        if getattr(args, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools()
    speakers = build_speakers()
    check_speakers(speakers)
    plan = plan_corpus(args.seed, {"train": args.n_train, "dev": args.n_dev, "test": args.n_test}, speakers)
    errors = synthesise_all(plan, args.out, args.workers)
    write_transcripts(plan, args.out)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    report(plan, args.out)
    if errors:
        print(f"{len(errors)} utterances failed; rerun to retry them", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
