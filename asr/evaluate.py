"""`asr eval`: decode a prepared split with a bundle and report CER/WER (jiwer).

    asr eval --model exp/demo/bundle --data data/demo --split test --report exp/demo/report.json
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from asr.bundle import Bundle
from asr.data import PreparedData
from asr.decoding import decode
from asr.errors import AsrError
from asr.inference import Predictor
from asr.metrics import error_rates


def check_features(bundle: Bundle, data: PreparedData) -> None:
    """The data must have been featurised exactly as the model's training data was."""
    if asdict(bundle.features) != asdict(data.features):
        raise AsrError(f"{data.dir}: prepared with features {asdict(data.features)}, but the model {bundle.path} "
                       f"expects {asdict(bundle.features)}; prepare the data with the model's config")


def evaluate(bundle: Bundle, data_dir: str | Path, split: str = "test", beam_width: int = 1,
             batch_size: int = 16) -> dict:
    """Decode every utterance of `split`; return the report (cer, wer, n_utts, counts, per-utterance rows)."""
    data = PreparedData(data_dir)
    check_features(bundle, data)
    rows = data.rows(split)
    if not rows:
        raise AsrError(f"{data.dir}/{split}.jsonl is empty: nothing to evaluate")
    predictor = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"], batch_size)
    t0 = time.perf_counter()
    probs = predictor([data.feats(r) for r in rows])
    hyps = [bundle.vocab.decode(decode(p, beam_width=beam_width)) for p in probs]
    seconds = time.perf_counter() - t0
    refs = [r["text"] for r in rows]
    rates = error_rates(refs, hyps)
    audio = sum(r["duration"] for r in rows)
    utts = [{"id": r["id"], "ref": ref, "hyp": hyp} for r, ref, hyp in zip(rows, refs, hyps)]
    return {"cer": rates["cer"], "wer": rates["wer"], "n_utts": len(rows), "split": split,
            "beam_width": beam_width, "model": str(bundle.path), "data": str(data.dir),
            "audio_seconds": round(audio, 2), "decode_x_realtime": round(audio / max(seconds, 1e-9), 1),
            "chars": rates["chars"], "words": rates["words"], "utterances": utts}


def format_report(report: dict) -> str:
    """A small table for the terminal."""
    c, w = report["chars"], report["words"]
    return "\n".join([
        f"{'split':<8}{'utts':>6}{'CER %':>8}{'WER %':>8}{'S/D/I (words)':>18}{'x realtime':>12}",
        f"{report['split']:<8}{report['n_utts']:>6}{100 * report['cer']:>8.2f}{100 * report['wer']:>8.2f}"
        f"{w['substitutions']:>8}/{w['deletions']}/{w['insertions']:<5}{report['decode_x_realtime']:>10}",
        f"(characters: {c['substitutions']} sub, {c['deletions']} del, {c['insertions']} ins of {c['ref_len']})",
    ])
