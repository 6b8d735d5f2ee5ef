"""Adaptation curve: how a bundle improves on one speaker with 0 / 2 / 5 / all minutes of their speech.

    bash ../shared/data/allison-adapt/build.sh data/allison-adapt      # or any folder of audio + .txt
    .venv/bin/python scripts/bench_adapt.py --corpus data/allison-adapt --synth-voice rms

For each corpus (yours, and with `--synth-voice` the same sentences spoken by a synthetic voice the base model
never heard, flite's rms): `asr prepare --like BASE` with a seeded split (test 20 %, dev 10 %: the test part is
never trained, tuned or selected on), then per amount of train audio (a seeded subset of the train split; dev
stays the same) `asr train --init BASE` with the default fine-tuning settings (no flags), timed as a user would
time it, `asr eval` greedy, and with a word 3-gram LM of that subset's transcripts plus general English sentences
(`asr lm --text`, default: Debian's fortunes, `apt-get install fortunes`; beam 32, the preset's lm_alpha/lm_beta;
needs `pip install '.[lm]'`). "scratch" rows train the same architecture from random weights on the same data with
the same settings but twice the epochs and no early stopping. Every command runs through the CLI (`python -m asr`),
and is printed. Prints a Markdown table.
Work goes to --work (reused when re-run: finished trainings are not repeated).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from asr.config import load_config
from asr.finetune import read_parent

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "finetune.yaml"
EPOCHS = load_config(PRESET).train.epochs


def asr(*args: object) -> None:
    """Run `python -m asr ARGS`, echoing the command; stop the benchmark if it fails."""
    cmd = [sys.executable, "-m", "asr", *map(str, args)]
    print("$ asr " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


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


def subset(data: Path, minutes: float | None, out: Path) -> Path:
    """A prepared data dir whose train split is a seeded subset of `data`'s with at least `minutes` of audio."""
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    chosen, seconds = [], 0.0
    for row in rows:
        if minutes is not None and seconds >= 60 * minutes:
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
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    if scratch:
        model = dataclasses.asdict(read_parent(base).model)  # the same architecture, random weights
        sets = [a for k, v in model.items() for a in ("--set", f"model.{k}={v}")]
        # Random weights need far more steps than a fine-tune: twice the epochs and no early stopping
        # (with the preset's patience, CTC's blank-only start ends the run while dev CER is still 100 %).
        asr("train", "--config", PRESET, *sets, "--set", f"train.epochs={2 * EPOCHS}",
            "--set", f"train.patience={2 * EPOCHS}", "--data", data, "--out", run)
    else:
        asr("train", "--init", base, "--data", data, "--out", run)
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


def curve(name: str, corpus: Path, work: Path, base: str, amounts: list[str], scratch: list[str],
          text: list[str]) -> list[str]:
    """Table rows for one corpus."""
    data = work / "data"
    if not (data / "test.jsonl").is_file():
        asr("prepare", corpus, "--out", data, "--like", base, "--set", "prepare.test_fraction=0.2", "--jobs", 1)
    rows = []
    for amount in amounts:
        for start in (["bundle"] + (["scratch"] if amount in scratch else [])) if amount != "0" else ["bundle"]:
            rows.append(_row(name, data, work, base, amount, start, text))
    return rows


def _row(name: str, data: Path, work: Path, base: str, amount: str, start: str, text: list[str]) -> str:
    """One table row: train `amount` minutes from `start` (bundle | scratch), score greedy and with the LM."""
    if amount == "0":
        greedy = evaluate(base, data, work / "eval-0.json")
        return (f"| {name} | 0 | {base} as is | {100 * greedy['cer']:.1f} | {100 * greedy['wer']:.1f} | – | – | – |")
    sub = subset(data, None if amount == "all" else float(amount), work / f"data-{amount}")
    train_min = sum(json.loads(line)["duration"] for line in (sub / "train.jsonl").open()) / 60
    run = work / f"{start}-{amount}"
    seconds = train(sub, run, base, start == "scratch")
    greedy = evaluate(run / "bundle", sub, work / f"eval-{start}-{amount}.json")
    lm = "– | –"
    if has_lm():
        arpa = work / f"lm-{amount}.arpa"
        if not arpa.is_file():
            asr("lm", sub, "--out", arpa, *text)
        fused = evaluate(run / "bundle", sub, work / f"eval-{start}-{amount}-lm.json", "--lm", arpa, "--config",
                         PRESET)
        lm = f"{100 * fused['cer']:.1f} | {100 * fused['wer']:.1f}"
    label = "fine-tuned" if start == "bundle" else "from scratch"
    return (f"| {name} | {train_min:.1f} | {label} | {100 * greedy['cer']:.1f} | {100 * greedy['wer']:.1f} | {lm} | "
            f"{seconds / 60:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder corpus of one speaker (audio + .txt)")
    parser.add_argument("--synth-voice", default="", help="also: the same sentences by this flite voice, e.g. rms")
    parser.add_argument("--base", default="en-synth", help="bundle to adapt (a bundled name)")
    parser.add_argument("--minutes", default="0,2,5,all", help="amounts of train audio, minutes (0: no training)")
    parser.add_argument("--scratch", default="all", help="amounts also trained from random weights")
    parser.add_argument("--work", type=Path, default=Path("exp/bench-adapt"), help="work folder (reused)")
    parser.add_argument("--lm-text", default="", help="general sentences for the LM (default: Debian's fortunes)")
    args = parser.parse_args()
    amounts, scratch = args.minutes.split(","), args.scratch.split(",")
    corpora = [(args.corpus.name, args.corpus)]
    if args.synth_voice:
        corpora.append((f"flite {args.synth_voice}", speak(args.corpus, args.synth_voice,
                                                           args.work / f"synth-{args.synth_voice}")))
    rows = []
    for name, corpus in corpora:
        rows += curve(name, corpus, args.work / name.replace(" ", "-"), args.base, amounts, scratch,
                      general_text(args.lm_text, args.work))
    print("\n| speaker | train min | model | CER % | WER % | CER % (LM) | WER % (LM) | train min (wall) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
