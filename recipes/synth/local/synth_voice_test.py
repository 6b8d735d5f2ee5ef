"""Speak the voice-disjoint test sentences with one more voice, to score a model on a voice no recipe trains on.

    python recipes/synth/local/synth_voice_test.py --engine festival --voice don_diphone --out data/synth-don
    asr eval --model asr/models/en-synth --corpus data/synth-don

The sentences, speeds, pitches and levels are those of `synth_corpus.py`'s test-unseen set (same --seed and sizes),
so scores are comparable with it; the audio goes to OUT/test-unseen/<speaker>/4/ in LibriSpeech layout, speaker id
9001. Resumable: finished files are kept. Any voice the engine has will do (festival: a folder under
/usr/share/festival/voices/*/; espeak-ng: ACCENT+VARIANT; mbrola: us1..; pico: en-US, en-GB; flite: flite -lv).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import synth_corpus as sc
from synth_text import FORTUNES_DIR, read_fortunes, select_sentences

SPEAKER_ID = 9001


def test_voice(engine: str, name: str) -> sc.Voice:
    """The voice as an unseen speaker; exit with the fix if the engine does not have it."""
    accent, _, variant = name.partition("+") if engine == "espeak-ng" else (name, "", "")
    voice = sc.Voice(SPEAKER_ID, engine, accent, variant, seen=False)
    sc.check_programs([engine])  # only this voice need be installed, not all the recipe's voices of the engine
    if not sc.voice_installed(voice):
        sys.exit(f"error: --voice: {engine} has no voice {name!r}; install it, or pick one it has")
    return voice


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", required=True, choices=sc.ENGINES)
    parser.add_argument("--voice", required=True, help="the engine's voice name, e.g. don_diphone")
    parser.add_argument("--out", type=Path, required=True, help="output corpus folder")
    parser.add_argument("--seed", type=int, default=0, help="synth_corpus.py's --seed")
    parser.add_argument("--n-unseen", type=int, default=300, help="synth_corpus.py's --n-unseen")
    parser.add_argument("--fortunes", type=Path, default=FORTUNES_DIR, help="folder of fortune files")
    parser.add_argument("--workers", type=int, default=sc.WORKERS, help="parallel synthesis jobs")
    args = parser.parse_args(argv)
    voice = test_voice(args.engine, args.voice)
    sentences, _ = select_sentences(read_fortunes(args.fortunes))
    sizes = {"train": 0, "dev": 0, "test-seen": 0, "test-unseen": args.n_unseen}  # test-unseen is drawn first
    plan = [u for u in sc.plan_corpus(sentences, sizes, sc.ENGINES, args.seed) if u.split == sc.UNSEEN_SPLIT]
    utts = [sc.Utterance(sc.UNSEEN_SPLIT, voice, i, u.sentence, u.speed, u.pitch, u.level) for i, u in enumerate(plan)]
    errors = sc.synthesise_all(utts, args.out, args.workers)
    sc.write_transcripts(utts, args.out)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(utts) - len(errors)} utterances of {args.engine} {args.voice} in {args.out}")
    return sc.failure_status(len(errors), len(utts), 0.01)


if __name__ == "__main__":
    sys.exit(main())
