"""Adaptation curve by K-fold cross-validation: how a bundle improves on one speaker with 0 / 2 / 5 / all minutes
of their speech, every recording scored once, by models that never trained on it.

    bash ../shared/data/allison-adapt/build.sh data/allison-adapt      # or any folder of audio + .txt
    .venv/bin/python scripts/bench_adapt.py --corpus data/allison-adapt --synth-voice rms

For each corpus (yours, and with `--synth-voice` the same sentences spoken by a flite voice the base model never
heard, e.g. rms), the recordings are cut into `--folds` K parts by a seeded hash of their names. For fold k, a
corpus folder `fold-k/{train,dev,test}` of links to the recordings is made: test is part k, dev a seeded tenth of
the rest, train the rest (recordings are dealt to the folds round-robin in hash order, so folds differ in size by
one at most). That folder is prepared as a user would (`asr prepare --like BASE`), then per amount of train audio
(a seeded subset of train; dev and test stay the same) `asr train --init BASE` runs with the default fine-tuning
settings (no flags), timed as a user would time it: the preset chooses the epoch count by dev CER, then trains the
final model on train + dev (`train.refit`; twice with two seeds, weights averaged: `train.soup`), so the minutes in
the table are train + dev. `asr eval` scores fold k's test part greedily, and with a word 3-gram LM of the train
and dev transcripts plus general English sentences
(`asr lm --text`, default: Debian's fortunes, `apt-get install fortunes`; beam 32, the preset's lm_alpha/lm_beta;
needs `pip install '.[lm]'`). Errors are pooled over the folds (CER = all character errors / all reference
characters). "all" runs on every fold; the smaller amounts and the "scratch" rows (the same
architecture from random weights, same settings, twice the epochs and no early stopping) on the first
`--curve-folds` folds only, so those rows score fewer recordings (the table says how many); so do all trained rows
of the synthetic voice, which checks the mechanism on a second speaker.
Every command runs through the CLI (`python -m asr`) and is printed; the table is Markdown.
Work goes to --work and is reused when re-run: finished trainings and evaluations are not repeated.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from asr.config import load_config
from asr.corpus import read_corpus
from asr.finetune import read_parent

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "finetune.yaml"
EPOCHS = load_config(PRESET).train.epochs
DEV_SHARE = 0.1  # of each fold's non-test recordings: selects the model, as `asr prepare`'s default dev_fraction


def asr(*args: object) -> None:
    """Run `python -m asr ARGS`, echoing the command; stop the benchmark if it fails."""
    cmd = [sys.executable, "-m", "asr", *map(str, args)]
    print("$ asr " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def share(name: str, salt: str) -> float:
    """A seeded hash of `name` in [0, 1)."""
    return int(hashlib.sha1(f"{salt}:{name}".encode()).hexdigest()[:12], 16) / 16**12


def speak(corpus: Path, voice: str, out: Path) -> Path:
    """The corpus' transcripts spoken by flite voice `voice`, as a folder corpus `out` (reused when complete)."""
    if (out / ".done").is_file():
        return out
    if shutil.which("flite") is None:
        sys.exit("--synth-voice needs flite: apt-get install flite")
    out.mkdir(parents=True, exist_ok=True)
    for txt in sorted(corpus.glob("*.txt")):
        text = txt.read_text(encoding="utf-8").strip()
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out / f"{txt.stem}.wav")], check=True)
        shutil.copy(txt, out / txt.name)
    (out / ".done").touch()
    return out


def fold_corpus(corpus: Path, k: int, folds: int, out: Path) -> Path:
    """Corpus folder `out/{train,dev,test}` of links to `corpus`' recordings and transcripts: test is fold `k`."""
    if (out / ".done").is_file():
        return out
    audios = sorted((Path(u.audio) for u in read_corpus(corpus).utts), key=lambda a: share(a.stem, "fold"))
    for rank, audio in enumerate(audios):  # dealt round-robin in hash order: folds differ in size by one at most
        split = "test" if rank % folds == k else "dev" if share(audio.stem, "dev") < DEV_SHARE else "train"
        (out / split).mkdir(parents=True, exist_ok=True)
        for src in (audio, audio.with_suffix(".txt")):
            link = out / split / src.name
            if not link.exists():
                link.symlink_to(src.resolve())
    (out / ".done").touch()
    return out


def subset(data: Path, minutes: float | None, out: Path) -> Path:
    """A prepared data dir whose train split is a seeded subset of `data`'s with at least `minutes` of audio."""
    if minutes is None:
        return data
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda r: share(r["id"], "subset"))
    chosen, seconds = [], 0.0
    for row in rows:
        if seconds >= 60 * minutes:
            break
        chosen.append(row)
        seconds += row["duration"]
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "vocab.json", "stats.json", "dev.jsonl", "test.jsonl"):
        shutil.copy(data / name, out / name)
    if not (out / "feats").exists():
        (out / "feats").symlink_to((data / "feats").resolve())
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sorted(chosen, key=lambda r: r["id"])),
                                     encoding="utf-8")
    return out


def evaluate(model: Path | str, data: Path, report: Path, *args: object) -> dict:
    """`asr eval` of `model` on the test split of `data` (reused when `report` exists); the report."""
    if not report.is_file():
        asr("eval", "--model", model, "--data", data, "--split", "test", "--report", report, *args)
    return json.loads(report.read_text(encoding="utf-8"))


def train(data: Path, run: Path, base: str, scratch: bool) -> float:
    """Fine-tune (or, `scratch`, train from random weights) into `run`; the wall seconds it took."""
    timing = run.parent / f"{run.name}.seconds"
    if timing.is_file() and (run / "bundle").is_dir():
        return float(timing.read_text())
    t0 = time.perf_counter()
    if scratch:
        model = dataclasses.asdict(read_parent(base).model)  # the same architecture, random weights
        sets = [a for k, v in model.items() for a in ("--set", f"model.{k}={v}")]
        # Random weights need far more steps than a fine-tune: twice the epochs and no early stopping
        # (with the preset's patience, CTC's blank-only start ends the run while dev CER is still 100 %).
        asr("train", "--config", PRESET, *sets, "--set", f"train.epochs={2 * EPOCHS}",
            "--set", f"train.patience={2 * EPOCHS}", "--data", data, "--out", run, "--overwrite")
    else:
        asr("train", "--init", base, "--data", data, "--out", run, "--overwrite")
    seconds = time.perf_counter() - t0
    timing.write_text(f"{seconds:.1f}")
    return seconds


def general_text(path: str, work: Path) -> list[str]:
    """`asr lm --text` arguments: `path`, or English sentences from Debian's fortunes when installed, or none."""
    if path:
        return ["--text", path]
    if not Path("/usr/share/games/fortunes").is_dir():
        print("note: no general English text for the LM (apt-get install fortunes, or --lm-text FILE)")
        return []
    out = work / "general-english.txt"
    if not out.is_file():
        script = REPO / "recipes" / "synth" / "local" / "synth_text.py"  # the synthetic recipe's sentence picker
        lines = subprocess.run([sys.executable, str(script)], check=True, text=True,
                               capture_output=True).stdout.splitlines()
        work.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line.split("\t")[1] + "\n" for line in lines), encoding="utf-8")
    return ["--text", str(out)]


def has_lm() -> bool:
    """The optional LM packages are installed."""
    return all(importlib.util.find_spec(m) for m in ("kenlm", "pyctcdecode", "arpabo"))


@dataclasses.dataclass
class Pool:
    """Errors pooled over folds."""

    char_errors: int = 0
    chars: int = 0
    word_errors: int = 0
    words: int = 0
    utts: int = 0

    def add(self, report: dict) -> None:
        self.char_errors += report["chars"]["errors"]
        self.chars += report["chars"]["ref_len"]
        self.word_errors += report["words"]["errors"]
        self.words += report["words"]["ref_len"]
        self.utts += report["n_utts"]

    def rates(self) -> str:
        return f"{100 * self.char_errors / self.chars:.1f} | {100 * self.word_errors / self.words:.1f}"


def curve(name: str, corpus: Path, work: Path, base: str, args: argparse.Namespace, text: list[str],
          every_fold: bool) -> list[str]:
    """Table rows for one corpus (`every_fold`: the bundle fine-tuned on all of train runs on every fold)."""
    datas = []
    for k in range(args.folds):
        data = work / f"fold-{k}" / "data"
        if not (data / "test.jsonl").is_file():
            asr("prepare", fold_corpus(corpus, k, args.folds, work / f"fold-{k}" / "corpus"), "--out", data,
                "--like", base, "--jobs", 1)
        datas.append(data)
    rows = []
    for amount in args.minutes.split(","):
        scratch = amount != "0" and amount in args.scratch.split(",")
        starts = ["bundle", "scratch"] if scratch else ["bundle"]
        for start in starts:
            full = amount == "0" or (amount == "all" and start == "bundle" and every_fold)
            folds = range(args.folds) if full else range(args.curve_folds)
            rows.append(_row(name, [datas[k] for k in folds], base, amount, start, text))
    return rows


def _row(name: str, datas: list[Path], base: str, amount: str, start: str, text: list[str]) -> str:
    """One table row: train `amount` minutes from `start` (bundle | scratch) on each fold, pooled scores."""
    greedy, fused, minutes, seconds = Pool(), Pool(), [], []
    for data in datas:
        fold = data.parent
        if amount == "0":
            greedy.add(evaluate(base, data, fold / "eval-0.json"))
            continue
        sub = subset(data, None if amount == "all" else float(amount), fold / f"data-{amount}")
        minutes.append(sum(json.loads(line)["duration"] for split in ("train", "dev")  # what the final model learnt
                           for line in (sub / f"{split}.jsonl").open()) / 60)
        run = fold / f"{start}-{amount}"
        seconds.append(train(sub, run, base, start == "scratch"))
        greedy.add(evaluate(run / "bundle", sub, fold / f"eval-{start}-{amount}.json"))
        if has_lm():
            arpa = fold / f"lm-{amount}.arpa"
            if not arpa.is_file():
                asr("lm", sub, "--split", "train", "--split", "dev", "--out", arpa, *text)
            fused.add(evaluate(run / "bundle", sub, fold / f"eval-{start}-{amount}-lm.json", "--lm", arpa,
                               "--config", PRESET))
    if amount == "0":
        return f"| {name} | 0 | {base} as is | {len(datas)} | {greedy.utts} | {greedy.rates()} | – | – | – |"
    lm = fused.rates() if fused.chars else "– | –"
    label = "fine-tuned" if start == "bundle" else "from scratch"
    wall = f"{statistics.median(seconds) / 60:.1f} ({min(seconds) / 60:.1f}-{max(seconds) / 60:.1f})"
    return (f"| {name} | {statistics.mean(minutes):.1f} | {label} | {len(datas)} | {greedy.utts} | {greedy.rates()} "
            f"| {lm} | {wall} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder corpus of one speaker (audio + .txt)")
    parser.add_argument("--synth-voice", default="", help="also: the same sentences by this flite voice, e.g. rms")
    parser.add_argument("--base", default="en-synth", help="bundle to adapt (a bundled name)")
    parser.add_argument("--folds", type=int, default=10, help="cross-validation folds: each tests 1/K of the corpus")
    parser.add_argument("--curve-folds", type=int, default=2, help="folds used for the smaller amounts and scratch")
    parser.add_argument("--minutes", default="0,2,5,all", help="amounts of train audio, minutes (0: no training)")
    parser.add_argument("--scratch", default="all", help="amounts also trained from random weights")
    parser.add_argument("--work", type=Path, default=Path("exp/bench-adapt"), help="work folder (reused)")
    parser.add_argument("--lm-text", default="", help="general sentences for the LM (default: Debian's fortunes)")
    args = parser.parse_args()
    if not 2 <= args.folds or not 1 <= args.curve_folds <= args.folds:
        parser.error("need --folds >= 2 and 1 <= --curve-folds <= --folds")
    corpora = [(args.corpus.name, args.corpus)]
    if args.synth_voice:
        corpora.append((f"flite {args.synth_voice}", speak(args.corpus, args.synth_voice,
                                                           args.work / f"synth-{args.synth_voice}")))
    rows = []
    text = general_text(args.lm_text, args.work)
    for k, (name, corpus) in enumerate(corpora):
        rows += curve(name, corpus.resolve(), args.work / name.replace(" ", "-"), args.base, args, text, k == 0)
    print(f"\n{args.folds}-fold cross-validation; errors pooled over the folds a row ran on; speech min: what the "
          "final model learnt from (train + dev)")
    print("| speaker | speech min | model | folds | test utts | CER % | WER % | CER % (LM) | WER % (LM) "
          "| train min (wall), median (range) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
