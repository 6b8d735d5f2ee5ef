"""Test-time VTLN probe: decode a prepared split at several formant warps; pick one per utterance by confidence.

    .venv/bin/python recipes/synth/local/warp_search.py --model exp/x/bundle --data data/x --subset test-unseen

Each utterance's stored MFCC is warped by every factor of `--alphas` (`asr.audio.cepstral_warp`, the warp that
`train.vtlp` trains with) and decoded greedily. Prints CER/WER per factor, then for the factor chosen per utterance by
the model's own confidence (mean log of the best class's probability per output frame), as a speaker-normalising
front end would choose it without the transcript. A measurement, not a decoding option: `asr eval` does not do this.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from asr.audio import cepstral_warp
from asr.bundle import load_bundle
from asr.config import DecodeConfig
from asr.data import PreparedData
from asr.decoding import Decoder
from asr.errors import AsrError
from asr.evaluate import check_features, select_subset
from asr.inference import Predictor
from asr.metrics import error_rates


def warp_search(model: str, data_dir: str, split: str, subset: str | None, alphas: Sequence[float]) -> dict:
    """`{"per_alpha": {alpha: error_rates}, "selected": error_rates, "chosen": [count per alpha]}`."""
    bundle, data = load_bundle(model), PreparedData(data_dir)
    check_features(bundle, data)
    rows = select_subset(data.rows(split), subset, f"{data.dir}/{split}.jsonl")
    predictor = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"])
    decoder = Decoder.from_config(DecodeConfig(), bundle.vocab.chars)
    refs, feats = [r["text"] for r in rows], [np.asarray(data.feats(r)) for r in rows]
    hyps, scores = [], []
    for alpha in alphas:
        warp = cepstral_warp(bundle.features, alpha)
        probs = predictor([(f @ warp).astype(np.float32) for f in feats])  # [T, n_mfcc] @ [n_mfcc, n_mfcc]
        hyps.append([decoder(p)[0] for p in probs])
        scores.append([float(np.log(p.max(axis=1) + 1e-9).mean()) for p in probs])
    best = np.argmax(np.array(scores), axis=0)  # [n_utts]: most confident factor of each utterance
    selected = [hyps[b][i] for i, b in enumerate(best)]
    return {"per_alpha": {a: error_rates(refs, h) for a, h in zip(alphas, hyps)},
            "selected": error_rates(refs, selected), "chosen": np.bincount(best, minlength=len(alphas)).tolist()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model bundle")
    parser.add_argument("--data", required=True, help="prepared data directory (asr prepare)")
    parser.add_argument("--split", default="test", help="split to score (default test)")
    parser.add_argument("--subset", default=None, help="corpus subset, e.g. test-unseen")
    parser.add_argument("--alphas", default="0.85,0.9,0.95,1.0,1.05,1.1,1.15", help="warp factors, comma-separated")
    args = parser.parse_args(argv)
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        parser.error(f"--alphas: expected comma-separated numbers such as 0.9,1.0,1.1, got {args.alphas!r}")
    try:
        result = warp_search(args.model, args.data, args.split, args.subset, alphas)
    except AsrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("| warp | CER % | WER % | utterances choosing it |\n|---|---:|---:|---:|")
    for (alpha, rates), n in zip(result["per_alpha"].items(), result["chosen"]):
        print(f"| {alpha:g} | {100 * rates['cer']:.2f} | {100 * rates['wer']:.2f} | {n} |")
    sel = result["selected"]
    print(f"| chosen per utterance by confidence | {100 * sel['cer']:.2f} | {100 * sel['wer']:.2f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
