"""Synthesise a multi-voice English corpus from fortunes sentences, in LibriSpeech layout, with a voice-disjoint test.

    python recipes/synth/local/synth_corpus.py --out data/synth-corpus --n-train 5000 --n-dev 300 --n-test 300 \
        --n-unseen 300

Five Debian synthesisers speak: espeak-ng (English accents x voice variants), flite (kal16, awb, slt, rms),
festival (kal, ked and rab diphones, the HTS slt voice and the MBROLA us1, us2, us3, en1 voices), mbrola (the four
MBROLA diphone voices driven by espeak-ng) and pico (SVOX Pico, en-US and en-GB). The recorded speakers behind them:
kal, ked, rab, slt, awb, rms, the four MBROLA speakers and Pico's two. Every split is dealt round-robin over the
engines, so each has an equal share. Sentences come from `synth_text.py`; each sentence is spoken once, and the splits
are cut by sentence, so no two splits share one. Voices are split too: one espeak-ng accent combined with a set of
held-out variants, flite `rms` and festival `ked_diphone` speak only in `test-unseen`, the voice-disjoint test set,
which is dealt over the engines that have such voices (espeak-ng, flite, festival); mbrola and pico have none, so
they only add training voices and the voice-disjoint test set stays the same whichever engines train. A sixth,
opt-in engine, mbrola-accent (`--engines espeak-ng,flite,festival,mbrola,pico,mbrola-accent`), adds sixteen more
recorded speakers: MBROLA's German, French, Dutch, Swedish, ... voices reading English with their own accent.

Output, in LibriSpeech layout (`asr prepare` reads both test folders as split "test", each its own subset, so
`asr eval --split test --subset test-unseen` scores the voice-disjoint set alone):

    <out>/{train,dev,test-seen}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac   voices of training
    <out>/test-unseen/<speaker>/<chapter>/...                                      voices never seen in training
    <out>/speakers.tsv    speaker id -> engine, voice, seen/unseen, utterances, minutes
    <out>/plan.tsv        every utterance: id, split, voice, speed, pitch, level, spoken text

Audio is 16 kHz mono 16-bit FLAC, peak-normalised to a per-utterance level; transcripts are upper case as in
LibriSpeech. Speed (tempo factor), pitch (semitones) and level are drawn per utterance from a RNG seeded by --seed
and the split, so a rerun gives the same plan; finished FLACs are skipped, so an interrupted run resumes.
Needs (the mbrola, pico and rab/MBROLA festival voices are in Debian's contrib and non-free components):
    apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox \
        festvox-rablpc16k festvox-us1 festvox-us2 festvox-us3 festvox-en1 mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 \
        libttspico-utils
(`--packages` prints the list for the chosen --engines; mbrola-accent needs mbrola-af1, mbrola-de1 ... too.)
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from espeak import espeak_voice, installed_voices
from synth_text import FORTUNES_DIR, Sentence, read_fortunes, select_sentences
from tqdm import tqdm

from asr.files import write_text

DEFAULT_ENGINES = ("espeak-ng", "flite", "festival", "mbrola", "pico")
# mbrola-accent: English read by MBROLA's non-English speakers (espeak-ng's mb-de1-en ...: English phonemes mapped to
# each voice's own diphones, so a German, French, Swedish ... accent). Opt-in until a full run measures it.
ENGINES = (*DEFAULT_ENGINES, "mbrola-accent")
TOOLS = {"espeak-ng": ("espeak-ng",), "flite": ("flite",), "festival": ("festival", "text2wave"),
         "mbrola": ("espeak-ng", "mbrola"), "mbrola-accent": ("espeak-ng", "mbrola"), "pico": ("pico2wave",),
         "sox": ("sox",)}
MBROLA_ACCENT_VOICES = ("af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1", "nl2", "pl1",
                        "ro1", "sw1", "sw2")  # every MBROLA voice that espeak-ng 1.51 has an English (mb-*-en) file for
PACKAGES = {  # Debian packages per engine; * marks those in Debian's contrib or non-free component
    "espeak-ng": "espeak-ng", "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-rablpc16k* festvox-us1* "
                "festvox-us2* festvox-us3* festvox-en1*",
    "mbrola": "espeak-ng mbrola-us1* mbrola-us2* mbrola-us3* mbrola-en1*",
    "mbrola-accent": "espeak-ng " + " ".join(f"mbrola-{v}*" for v in MBROLA_ACCENT_VOICES),
    "pico": "libttspico-utils*", "sox": "sox",
}
ESPEAK_ACCENTS = ("en-gb", "en-us", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-029")
UNSEEN_ESPEAK_ACCENTS = ("en-gb-scotland",)
# Human-sounding espeak-ng variants (no whisper, croak, robot or heavy-echo ones), male, female and Klatt-based.
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m5", "m6", "m7", "m8", "f1", "f2", "f4", "f5", "klatt", "klatt2", "adam", "Alex", "Alicia",
    "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris", "david", "Denis", "ed", "edward", "Gene",
    "iven", "Jacky", "linda", "Mario", "Michael", "Mike", "paul", "robert", "rob", "shelby", "Storm", "victor", "anika",
)
UNSEEN_ESPEAK_VARIANTS = ("m4", "f3", "klatt3", "Andrea", "quincy", "steph", "travis", "grandma")
# Engine voices as (name, seen), in speaker-id order: a new voice is appended, so existing speaker ids never change.
# flite's kal16 is the same speaker as festival's kal_diphone, slt as its HTS slt; festival's *_mbrola voices are the
# mbrola engine's speakers with festival's own text analysis and prosody.
ENGINE_VOICES = {
    "flite": (("kal16", True), ("awb", True), ("slt", True), ("rms", False)),
    "festival": (("kal_diphone", True), ("cmu_us_slt_arctic_hts", True), ("ked_diphone", False),
                 ("rab_diphone", True), ("us1_mbrola", True), ("us2_mbrola", True), ("us3_mbrola", True),
                 ("en1_mbrola", True)),
    "mbrola": (("us1", True), ("us2", True), ("us3", True), ("en1", True)),  # espeak-ng -v mb-us1 ...
    "pico": (("en-US", True), ("en-GB", True)),
    "mbrola-accent": tuple((name, True) for name in MBROLA_ACCENT_VOICES),  # espeak-ng -v mb-de1-en ...
}
SPEAKER_ID_BASE = {"espeak-ng": 1000, "flite": 2000, "festival": 3000, "mbrola": 4000, "pico": 5000,
                   "mbrola-accent": 6000}
FESTIVAL_VOICE_DIRS = Path("/usr/share/festival/voices")
MBROLA_VOICE_DIR = Path("/usr/share/mbrola")
PICO_LANG_DIR = Path("/usr/share/pico/lang")
# Engines that take the pitch (all driven by espeak-ng) or the speed themselves; sox shifts or stretches for the others.
ENGINE_PITCH = ("espeak-ng", "mbrola", "mbrola-accent")
ENGINE_RATE = ("espeak-ng", "flite", "festival", "mbrola", "mbrola-accent")
SPEED = (0.85, 1.2)  # tempo factor relative to the engine's default rate
PITCH = (-3.0, 3.0)  # semitones relative to the voice's own pitch
LEVEL = (-12.0, -1.0)  # peak level in dBFS: real recordings are not all equally loud
ESPEAK_WPM = 175  # espeak-ng's default rate; -s = ESPEAK_WPM * speed
ESPEAK_PITCH_PER_SEMITONE = 6  # measured: -p 50 -> 65 raises the median f0 by 2.5 semitones
SAMPLE_RATE = 16000
# Less audio than this per character of text means the engine gave up part-way (and exited 0): measured, the fastest
# complete utterances (mbrola at speed 1.2) take 0.034 s per character; a truncated one took 0.005.
MIN_SECONDS_PER_CHARACTER = 0.02
SPLITS = ("test-unseen", "test-seen", "dev", "train")  # drawing order: test sets stay put whatever --n-train is
UNSEEN_SPLIT = "test-unseen"  # the voice-disjoint test set: the only split its voices speak in
CHAPTER_IDS = {"train": 1, "dev": 2, "test-seen": 3, "test-unseen": 4}  # unique utterance ids per speaker
WORKERS = 2


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine's voice (and espeak-ng variant), with a LibriSpeech speaker id."""

    speaker_id: int
    engine: str  # espeak-ng | flite | festival
    name: str  # espeak-ng accent, flite voice or festival voice
    variant: str = ""  # espeak-ng voice variant, e.g. "m3"
    seen: bool = True  # False: speaks only in the voice-disjoint test set

    @property
    def label(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name


@dataclass(frozen=True)
class Utterance:
    """Everything needed to synthesise one file; fully determined by the seed."""

    split: str  # train | dev | test-seen | test-unseen (also the folder name)
    voice: Voice
    index: int  # position within the voice's chapter
    sentence: Sentence
    speed: float  # tempo factor, 1 = engine default
    pitch: float  # semitones
    level: float  # peak dBFS

    @property
    def utt_id(self) -> str:
        return f"{self.voice.speaker_id}-{CHAPTER_IDS[self.split]}-{self.index:04d}"

    def chapter_dir(self, out: Path) -> Path:
        return out / self.split / str(self.voice.speaker_id) / str(CHAPTER_IDS[self.split])

    def flac_path(self, out: Path) -> Path:
        return self.chapter_dir(out) / f"{self.utt_id}.flac"

    def plan_row(self) -> str:
        v = self.voice
        return (f"{self.utt_id}\t{self.split}\t{v.engine}\t{v.label}\t{self.speed:.2f}\t{self.pitch:.1f}\t"
                f"{self.level:.1f}\t{self.sentence.spoken}\n")


PLAN_HEADER = "utt_id\tsplit\tengine\tvoice\tspeed\tpitch\tlevel\tspoken\n"


def build_voices() -> list[Voice]:
    """All voices with stable speaker ids: espeak-ng 1000 + 100*accent + variant, flite 2001.., festival 3001..,
    mbrola 4001.., pico 5001.., mbrola-accent 6001.."""
    voices = []
    accents, variants = ESPEAK_ACCENTS + UNSEEN_ESPEAK_ACCENTS, ESPEAK_VARIANTS + UNSEEN_ESPEAK_VARIANTS
    for a, accent in enumerate(accents):
        for v, variant in enumerate(variants):
            seen = accent in ESPEAK_ACCENTS and variant in ESPEAK_VARIANTS
            if seen or (accent in UNSEEN_ESPEAK_ACCENTS and variant in UNSEEN_ESPEAK_VARIANTS):
                voices.append(Voice(1000 + 100 * a + v + 1, "espeak-ng", accent, variant, seen))
    for engine, names in ENGINE_VOICES.items():
        for i, (name, seen) in enumerate(names):
            voices.append(Voice(SPEAKER_ID_BASE[engine] + i + 1, engine, name, "", seen))
    return voices


def packages(engines: Sequence[str]) -> list[str]:
    """Debian packages of `engines`, their voices and sox, in order, once each; "*" marks contrib/non-free ones."""
    return list(dict.fromkeys(p for engine in (*engines, "sox") for p in PACKAGES[engine].split()))


def install_hint(engines: Sequence[str]) -> str:
    """The apt-get command that installs `engines`, their voices and sox."""
    names = packages(engines)
    hint = "apt-get install -y " + " ".join(n.rstrip("*") for n in names)
    non_free = [n.rstrip("*") for n in names if n.endswith("*")]
    if non_free:
        hint += (f" ({', '.join(non_free)} are in Debian's contrib and non-free components: enable them in "
                 "/etc/apt/sources.list.d first, as recipes/synth/run.sh stage 0 does; or choose engines without "
                 "them, e.g. --engines espeak-ng,flite)")
    return hint


INSTALL_HINT = install_hint(DEFAULT_ENGINES)


def check_programs(engines: Sequence[str]) -> None:
    """Exit with the install command if a synthesiser program or sox is not on PATH."""
    for tool in [t for engine in (*engines, "sox") for t in TOOLS[engine]]:
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found on PATH; install the synthesisers with: {install_hint(engines)}")


def check_tools(engines: Sequence[str]) -> None:
    """Exit with the install command if a synthesiser, a voice or sox is missing."""
    check_programs(engines)
    voices = [v for v in build_voices() if v.engine in engines]
    missing = [f"{v.engine} {v.label}" for v in voices if not voice_installed(v)]
    if missing:
        sys.exit(f"error: voices not installed: {', '.join(sorted(set(missing)))}; install them with: "
                 f"{install_hint(engines)}")


@functools.cache
def espeak_names() -> frozenset[str]:
    """espeak-ng's English accents, and its variants as "+name"."""
    languages, variants = installed_voices()
    return frozenset(languages) | {f"+{v}" for v in variants}


@functools.cache
def flite_voices() -> frozenset[str]:
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=True).stdout
    return frozenset(listing.partition(":")[2].split())  # "Voices available: kal awb_time kal16 ..."


def voice_installed(voice: Voice) -> bool:
    """Whether the engine has the voice (espeak-ng silently falls back to its default voice otherwise)."""
    if voice.engine == "espeak-ng":
        return voice.name in espeak_names() and f"+{voice.variant}" in espeak_names()
    if voice.engine == "flite":
        return voice.name in flite_voices()
    if voice.engine in ("mbrola", "mbrola-accent"):
        return (MBROLA_VOICE_DIR / voice.name / voice.name).is_file()
    if voice.engine == "pico":
        return (PICO_LANG_DIR / f"{voice.name}_ta.bin").is_file()
    return any(FESTIVAL_VOICE_DIRS.glob(f"*/{voice.name}/festvox"))


def voices_for(voices: Sequence[Voice], split: str, engine: str) -> list[Voice]:
    """The voices that speak in `split`: unseen ones only in the voice-disjoint test set."""
    return [v for v in voices if v.engine == engine and v.seen == (split != UNSEEN_SPLIT)]


def plan_split(split: str, sentences: Sequence[Sentence], voices: Sequence[Voice], engines: Sequence[str],
               seed: int) -> list[Utterance]:
    """Deal `sentences` round-robin over the engines that have voices for `split`; draw a voice of that engine,
    speed, pitch and level each."""
    rng = random.Random(f"{seed}-{split}")  # one stream per split: evaluation sets do not move with --n-train
    engines = [engine for engine in engines if voices_for(voices, split, engine)]
    if sentences and not engines:
        sys.exit(f"error: no engine among --engines has voices for {split}; add one, or ask for 0 {split} utterances")
    counts: dict[int, int] = {}
    plan = []
    for i, sentence in enumerate(sentences):
        voice = rng.choice(voices_for(voices, split, engines[i % len(engines)]))
        speed, pitch = round(rng.uniform(*SPEED), 2), round(rng.uniform(*PITCH), 1)
        level = round(rng.uniform(*LEVEL), 1)
        index = counts.get(voice.speaker_id, 0)
        counts[voice.speaker_id] = index + 1
        plan.append(Utterance(split, voice, index, sentence, speed, pitch, level))
    return plan


def plan_corpus(sentences: Sequence[Sentence], sizes: dict[str, int], engines: Sequence[str],
                seed: int) -> list[Utterance]:
    """All utterances; the sentences are shuffled once and cut into disjoint pools, one per split."""
    if sum(sizes.values()) > len(sentences):
        sys.exit(f"error: asked for {sum(sizes.values())} utterances but the text has only {len(sentences)} usable "
                 "sentences")
    order = list(sentences)
    random.Random(seed).shuffle(order)
    voices = build_voices()
    plan: list[Utterance] = []
    start = 0
    for split in SPLITS:
        plan += plan_split(split, order[start:start + sizes[split]], voices, engines, seed)
        start += sizes[split]
    return plan


def engine_command(utt: Utterance, wav: Path, text_file: Path) -> list[str]:
    """The synthesiser command that writes `utt` to `wav` (text_file holds the text, for festival)."""
    voice, text = utt.voice, utt.sentence.spoken
    if voice.engine in ENGINE_PITCH:
        pitch = min(99, max(0, round(50 + ESPEAK_PITCH_PER_SEMITONE * utt.pitch)))
        speed = ["-s", str(round(ESPEAK_WPM * utt.speed)), "-p", str(pitch)]
        if voice.engine == "espeak-ng":
            name = espeak_voice(voice.name, voice.variant)
        else:  # espeak-ng's MBROLA voice files: mb-us1, and mb-de1-en for a German voice reading English
            name = f"mb-{voice.name}-en" if voice.engine == "mbrola-accent" else f"mb-{voice.name}"
        return ["espeak-ng", "-v", name, *speed, "-w", str(wav), text]
    if voice.engine == "pico":  # takes neither speed nor pitch: sox applies both
        return ["pico2wave", "-l", voice.name, "-w", str(wav), "--", text]
    if voice.engine == "flite":
        stretch = f"duration_stretch={1 / utt.speed:.3f}"
        return ["flite", "-voice", voice.name, "--setf", stretch, "-t", text, "-o", str(wav)]
    text_file.write_text(text + "\n", encoding="utf-8")
    if voice.name.endswith("_hts"):  # the HTS engine ignores Duration_Stretch but takes a speech rate
        speed = f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {utt.speed:.3f}))))"
    else:
        speed = f"(Parameter.set 'Duration_Stretch {1 / utt.speed:.3f})"
    return ["text2wave", "-eval", f"(voice_{voice.name})", "-eval", speed, str(text_file), "-o", str(wav)]


def sox_command(utt: Utterance, wav: Path, flac: Path) -> list[str]:
    """Resample to 16 kHz mono 16-bit FLAC at the utterance's peak level; change tempo and pitch where the engine
    cannot."""
    # flite's rms voice, festival's HTS voice and pico ignore f0 settings, so sox shifts pitch for those engines.
    pitch = [] if utt.voice.engine in ENGINE_PITCH else ["pitch", f"{100 * utt.pitch:.0f}"]
    tempo = [] if utt.voice.engine in ENGINE_RATE else ["tempo", "-s", f"{utt.speed:.3f}"]
    encoding = ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-C", "8"]
    return ["sox", "-D", str(wav), *encoding, str(flac), *tempo, *pitch, "gain", "-n", f"{utt.level:.1f}"]


def synthesise(utt: Utterance, out: Path) -> str | None:
    """Write one utterance's FLAC atomically; return None on success or a one-line error."""
    target = utt.flac_path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        wav, flac, text_file = Path(tmp) / "engine.wav", Path(tmp) / "out.flac", Path(tmp) / "text.txt"
        for cmd, product in ((engine_command(utt, wav, text_file), wav), (sox_command(utt, wav, flac), flac)):
            result = subprocess.run(cmd, check=False, capture_output=True, text=True)
            # text2wave exits 0 even when it writes nothing, or when MBROLA gives up mid-sentence ("Fatal error:
            # Unknown recovery for ax-ax segment") and the file holds only the words before it.
            if result.returncode != 0 or not product.exists() or "Fatal error" in result.stderr:
                detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                return f"{utt.utt_id} ({utt.voice.engine} {utt.voice.label}): {cmd[0]} failed: {detail}"
        seconds, characters = sf.info(str(flac)).duration, len(utt.sentence.spoken)
        if seconds < MIN_SECONDS_PER_CHARACTER * characters:  # e.g. festival's MBROLA voices on a missing diphone
            return (f"{utt.utt_id} ({utt.voice.engine} {utt.voice.label}): {seconds:.2f} s of audio for {characters} "
                    "characters; the synthesiser stopped part-way")
        flac.replace(target)
    return None


def synthesise_all(plan: Sequence[Utterance], out: Path, workers: int) -> list[str]:
    """Synthesise the utterances whose FLAC is missing, in parallel; return the errors."""
    for leftover in out.glob("*/*/*/.tmp-*"):  # scratch folders of an interrupted run
        shutil.rmtree(leftover, ignore_errors=True)
    todo = [utt for utt in plan if not utt.flac_path(out).exists()]
    print(f"{len(plan) - len(todo)} of {len(plan)} utterances already present; synthesising {len(todo)}")
    # Threads suffice: the work happens in synthesiser and sox subprocesses.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = tqdm(pool.map(lambda utt: synthesise(utt, out), todo), total=len(todo), unit="utt")
        return [error for error in results if error is not None]


def check_plan(plan: Sequence[Utterance], out: Path) -> None:
    """Write <out>/plan.tsv, or exit if the corpus there was made from a different plan (other seed, sizes, text)."""
    text = PLAN_HEADER + "".join(utt.plan_row() for utt in plan)
    path = out / "plan.tsv"
    if path.exists() and path.read_text(encoding="utf-8") != text:
        sys.exit(f"error: {path} was written with other settings (seed, sizes, engines or fortunes text); "
             "rerun with those settings, or use a new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, text)


def write_transcripts(plan: Sequence[Utterance], out: Path) -> None:
    """One <speaker>-<chapter>.trans.txt per chapter, listing only utterances whose audio exists."""
    chapters: dict[Path, list[Utterance]] = {}
    for utt in plan:
        if utt.flac_path(out).exists():
            chapters.setdefault(utt.chapter_dir(out), []).append(utt)
    for chapter_dir, utts in chapters.items():
        lines = "".join(f"{utt.utt_id} {utt.sentence.transcript.upper()}\n" for utt in utts)
        write_text(chapter_dir / f"{utts[0].utt_id.rsplit('-', 1)[0]}.trans.txt", lines)


def durations(plan: Sequence[Utterance], out: Path) -> dict[str, float]:
    """Seconds of audio per utterance id, for the utterances whose FLAC exists."""
    return {u.utt_id: sf.info(str(u.flac_path(out))).duration for u in plan if u.flac_path(out).exists()}


def write_speakers(plan: Sequence[Utterance], seconds: dict[str, float], out: Path) -> None:
    """<out>/speakers.tsv: id, engine, voice, seen/unseen, utterances and minutes of each speaker that speaks."""
    stats: dict[Voice, list[float]] = {}
    for utt in plan:
        if utt.utt_id in seconds:
            stats.setdefault(utt.voice, []).append(seconds[utt.utt_id])
    rows = [f"{v.speaker_id}\t{v.engine}\t{v.label}\t{'seen' if v.seen else 'unseen'}\t{len(s)}\t{sum(s) / 60:.2f}\n"
            for v, s in sorted(stats.items(), key=lambda item: item[0].speaker_id)]
    write_text(out / "speakers.tsv", "id\tengine\tvoice\tset\tutterances\tminutes\n" + "".join(rows))


def report(plan: Sequence[Utterance], seconds: dict[str, float]) -> None:
    """Print utterances and minutes per split and engine."""
    for split in reversed(SPLITS):
        cells = []
        for engine in ENGINES:
            secs = [seconds[u.utt_id] for u in plan if u.split == split and u.voice.engine == engine
                    and u.utt_id in seconds]
            if secs:
                cells.append(f"{engine} {len(secs)} utts {sum(secs) / 60:.1f} min")
        total = sum(seconds.get(u.utt_id, 0.0) for u in plan if u.split == split)
        print(f"{split}: {total / 60:.1f} min ({'; '.join(cells)})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. data/synth-corpus")
    parser.add_argument("--seed", type=int, default=0, help="seeds sentence order, voices, speed, pitch and level")
    parser.add_argument("--n-train", type=int, default=5000, help="training utterances")
    parser.add_argument("--n-dev", type=int, default=300, help="development utterances (seen voices)")
    parser.add_argument("--n-test", type=int, default=300, help="test-seen utterances (seen voices, new sentences)")
    parser.add_argument("--n-unseen", type=int, default=300, help="test-unseen utterances (new voices and sentences)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma-separated subset of {','.join(ENGINES)} (default: {','.join(DEFAULT_ENGINES)})")
    parser.add_argument("--fortunes", type=Path, default=FORTUNES_DIR, help="folder of fortune files")
    parser.add_argument("--workers", type=int, default=WORKERS, help="parallel synthesis jobs")
    parser.add_argument("--max-failed", type=float, default=0.005,
                        help="share of utterances a synthesiser may fail on (left out, exit 0); above it exit 1")
    parser.add_argument("--check", action="store_true", help="only check that the synthesisers and text are there")
    parser.add_argument("--packages", action="store_true",
                        help="only print the Debian packages the engines need (with sox), space-separated")
    args = parser.parse_args(argv)
    if not 0.0 <= args.max_failed < 1.0:
        sys.exit(f"error: --max-failed must be in [0, 1), got {args.max_failed}")
    for name in ("n_train", "n_dev", "n_test", "n_unseen"):
        if getattr(args, name) < 0:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 0, got {getattr(args, name)}")
    if args.workers < 1:
        sys.exit(f"error: --workers must be at least 1, got {args.workers}")
    args.engines = tuple(args.engines.split(","))
    if not args.engines or set(args.engines) - set(ENGINES):
        sys.exit(f"error: --engines: expected a comma-separated subset of {','.join(ENGINES)}, "
                 f"got {','.join(args.engines)!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.packages:
        print(" ".join(p.rstrip("*") for p in packages(args.engines)))
        return 0
    # Checked after --packages: stage 0 of run.sh asks for the package list on a machine without fortunes too.
    if not args.fortunes.is_dir():
        sys.exit(f"error: --fortunes: {args.fortunes} is not a folder; get Debian's fortunes with: "
                 "apt-get install -y fortunes")
    check_tools(args.engines)
    if args.check:
        print(f"found {', '.join(args.engines)}, their voices, sox and {args.fortunes}")
        return 0
    sentences, _ = select_sentences(read_fortunes(args.fortunes))
    sizes = {"train": args.n_train, "dev": args.n_dev, "test-seen": args.n_test, "test-unseen": args.n_unseen}
    plan = plan_corpus(sentences, sizes, args.engines, args.seed)
    check_plan(plan, args.out)
    errors = synthesise_all(plan, args.out, args.workers)
    write_transcripts(plan, args.out)
    seconds = durations(plan, args.out)
    write_speakers(plan, seconds, args.out)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    report(plan, seconds)
    return failure_status(len(errors), len(plan), args.max_failed)


def failure_status(n_failed: int, n_planned: int, max_failed: float) -> int:
    """Exit status after synthesis: a few failures (festival crashes on some texts every time) are left out."""
    if not n_failed:
        return 0
    if n_failed <= max_failed * n_planned:
        print(f"{n_failed} of {n_planned} utterances failed and are left out (--max-failed {max_failed}); "
              "rerun to retry them", file=sys.stderr)
        return 0
    print(f"{n_failed} of {n_planned} utterances failed, more than --max-failed {max_failed} allows; "
          "fix the cause above and rerun (finished files are kept)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
