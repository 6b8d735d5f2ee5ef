"""CER/WER of a synthetic-corpus test set per engine and per voice, from `asr eval --utts` output.

    python recipes/synth/local/synth_by_voice.py --corpus data/synth-corpus exp/synth/cpu/eval/test-unseen.jsonl

Speaker ids are the first field of the utterance id (LibriSpeech layout); `CORPUS/speakers.tsv` (written by
`synth_corpus.py`) names each speaker's engine and voice. Error rates are pooled (errors / reference length) over the
utterances of each group, as `asr eval` pools them over a set. Prints a Markdown table per file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

COUNTS = ("char_errors", "ref_chars", "word_errors", "ref_words", "utts")


def read_speakers(corpus: Path) -> dict[str, tuple[str, str]]:
    """speaker id -> (engine, voice), from CORPUS/speakers.tsv."""
    path = corpus / "speakers.tsv"
    if not path.is_file():
        sys.exit(f"error: {path}: not found; --corpus must be a folder written by recipes/synth/local/synth_corpus.py")
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]
    return {row[0]: (row[1], row[2]) for row in rows}


def group_counts(utts_path: Path, speakers: dict[str, tuple[str, str]]) -> dict[tuple[str, str], dict[str, int]]:
    """(engine, voice) -> summed error counts; ("all", "") holds the whole file."""
    groups: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    for n, line in enumerate(utts_path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            speaker = row["id"].split("-")[0]
            counts = {"char_errors": row["char_sub"] + row["char_del"] + row["char_ins"], "ref_chars": row["ref_chars"],
                      "word_errors": row["word_sub"] + row["word_del"] + row["word_ins"], "ref_words": row["ref_words"],
                      "utts": 1}
        except (ValueError, KeyError, TypeError) as exc:
            sys.exit(f"error: {utts_path}:{n}: not an `asr eval --utts` JSONL row ({exc})")
        if speaker not in speakers:
            sys.exit(f"error: {utts_path}:{n}: speaker {speaker} is not in speakers.tsv; is --corpus the corpus that "
                     "was scored?")
        engine, voice = speakers[speaker]
        for key in ((engine, ""), (engine, voice), ("all", "")):
            for name, value in counts.items():
                groups[key][name] += value
    return groups


def table(groups: dict[tuple[str, str], dict[str, int]]) -> str:
    """Markdown: one row per engine (its voices below it), then all."""
    rows = ["| engine | voice | utterances | CER % | WER % |", "|---|---|---:|---:|---:|"]
    keys = sorted(k for k in groups if k[0] != "all")
    for engine, voice in [*keys, ("all", "")]:
        c = groups[(engine, voice)]
        cer, wer = 100 * c["char_errors"] / max(c["ref_chars"], 1), 100 * c["word_errors"] / max(c["ref_words"], 1)
        name = f"**{engine}**" if not voice else ""
        rows.append(f"| {name} | {voice} | {c['utts']} | {cer:.2f} | {wer:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("utts", nargs="+", type=Path, help="per-utterance results of `asr eval --utts X.jsonl`")
    parser.add_argument("--corpus", type=Path, required=True, help="the synthetic corpus (holds speakers.tsv)")
    args = parser.parse_args(argv)
    speakers = read_speakers(args.corpus)
    for path in args.utts:
        if not path.is_file():
            sys.exit(f"error: {path}: not found; write it with `asr eval ... --utts {path}`")
        print(f"{path.stem}\n\n{table(group_counts(path, speakers))}\n")


if __name__ == "__main__":
    main()
