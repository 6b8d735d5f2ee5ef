"""Generation speed of the synthetic corpus, per engine: audio seconds per wall second, and the time a corpus takes.

    python recipes/synth/local/bench_synth.py --n 30 --workers 2 --hours 6

Synthesises the first `--n` training utterances of each engine's plan (same sentences, voices and settings as
synth_corpus.py) into a temporary folder, then extrapolates to a corpus of `--hours` hours balanced over the
engines (a third of the utterances each). This machine's speed drifts between runs; compare numbers taken together.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from synth_corpus import ENGINES, check_tools, durations, plan_corpus, synthesise_all
from synth_text import read_fortunes, select_sentences


def bench_engine(engine: str, n: int, workers: int, seed: int) -> tuple[float, float, int]:
    """(audio seconds, wall seconds, utterances) for `n` utterances of one engine."""
    sentences, _ = select_sentences(read_fortunes())
    plan = plan_corpus(sentences, {"train": n, "dev": 0, "test-seen": 0, "test-unseen": 0}, (engine,), seed)
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        start = time.perf_counter()
        errors = synthesise_all(plan, Path(tmp), workers)
        wall = time.perf_counter() - start
        audio = sum(durations(plan, Path(tmp)).values())
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return audio, wall, n - len(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30, help="utterances per engine")
    parser.add_argument("--workers", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--hours", type=float, default=6.0, help="corpus size to extrapolate to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    check_tools(ENGINES)
    rows = {engine: bench_engine(engine, args.n, args.workers, args.seed) for engine in ENGINES}
    print(f"\n{'engine':<10} {'utts':>5} {'audio s':>8} {'wall s':>7} {'audio s/wall s':>15} {'mean utt s':>10}")
    for engine, (audio, wall, done) in rows.items():
        print(f"{engine:<10} {done:>5} {audio:>8.1f} {wall:>7.1f} {audio / wall:>15.1f} {audio / max(done, 1):>10.2f}")
    # A balanced corpus has equal utterance counts per engine, so its hours split by mean utterance length.
    mean_len = {e: audio / max(done, 1) for e, (audio, _, done) in rows.items()}
    n_utts = args.hours * 3600 / (sum(mean_len.values()) / len(ENGINES))
    wall = sum(n_utts / len(ENGINES) * mean_len[e] / (audio / w) for e, (audio, w, _) in rows.items())
    print(f"\n{args.hours:g} h balanced over engines: ~{n_utts:.0f} utterances, ~{wall / 60:.0f} min wall "
          f"with {args.workers} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
