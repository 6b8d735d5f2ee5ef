"""Decoding speed on CPU: ms per 10 s utterance for greedy and prefix beam search (widths 1/10/50).

    .venv/bin/python scripts/bench_decode.py --bundle exp/demo/bundle [--lm exp/demo/lm.arpa]

The posteriors come from the bundle's model on ~10 s of demo test speech (utterances back to back), so
they are as peaky as real ones. Also times pyctcdecode's beam search (no LM, and with `--lm`) when it
is installed, for comparison. Prints one row per decoder: ms per utterance and x real time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SECONDS = 10.0


def ten_seconds_of_probs(bundle_dir: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """probs [T', V] for ~10 s of demo test speech (utterances back to back), and the bundle's characters."""
    from asr.audio import compute_mfcc, load_audio
    from asr.recognize import Recognizer

    rec = Recognizer(bundle_dir, runtime="auto")
    rate = rec.info.features.sample_rate
    paths = sorted((REPO / "recipes/demo/corpus/test").rglob("*.flac"))[:20]
    audio = np.concatenate([load_audio(p, rate) for p in paths])[: int(SECONDS * rate)]
    return rec.predictor([compute_mfcc(audio, rec.info.features)])[0], rec.info.vocab.chars


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` runs, in milliseconds (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO / "exp/demo/bundle")
    parser.add_argument("--lm", type=Path, default=None, help="ARPA file for the pyctcdecode + LM rows")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from asr.decoding import beam_search, greedy_search

    probs, chars = ten_seconds_of_probs(args.bundle)
    rows = [("greedy", 1, best_ms(lambda: greedy_search(probs), args.repeats))]
    rows += [("prefix beam (asr)", w, best_ms(lambda w=w: beam_search(probs, beam_width=w), args.repeats))
             for w in args.widths]
    if importlib.util.find_spec("pyctcdecode"):
        import logging

        from pyctcdecode import build_ctcdecoder

        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
        log_probs = np.log(np.maximum(probs, 1e-30)).astype(np.float32)
        plain = build_ctcdecoder([""] + list(chars))
        rows += [("pyctcdecode, no LM", w, best_ms(lambda w=w: plain.decode(log_probs, beam_width=w), args.repeats))
                 for w in args.widths]
        if args.lm:
            from asr.lm import LmDecoder
            from asr.text import Vocabulary

            for w in args.widths:
                fused = LmDecoder(Vocabulary(chars), args.lm, 0.5, 1.0, w)
                rows.append(("pyctcdecode + LM", w, best_ms(lambda f=fused: f(probs), args.repeats)))
    print(f"{probs.shape[0]} frames = {SECONDS:g} s of audio, {probs.shape[1]} classes\n")
    print(f"{'decoder':<22}{'width':>6}{'ms/utt':>10}{'x realtime':>12}")
    for name, width, ms in rows:
        print(f"{name:<22}{width:>6}{ms:>10.1f}{SECONDS * 1000 / ms:>12.0f}")
    print(json.dumps([{"decoder": n, "width": w, "ms": round(ms, 2)} for n, w, ms in rows]))


if __name__ == "__main__":
    main()
