"""`asr eval`: decode a prepared split, or a raw corpus directory, with a bundle; report CER/WER (jiwer).

    asr eval --model exp/demo/bundle --data data/demo --split test --report exp/demo/report.json
    asr eval --model exp/demo/bundle --corpus recipes/demo/corpus --utts /tmp/utts.csv

The report (JSON) has the corpus-level `cer`, `wer`, `n_utts`, substitution/deletion/insertion counts
for characters and words, decoding speed (`decode_x_realtime`: seconds of audio per second of forward
pass + decoding), one row per utterance (`utterances`) and the `worst` ones by word errors.

`--corpus DIR` reads a corpus that was never prepared (any format `asr.corpus` reads), normalises its
transcripts with the bundle's text config and featurises the audio with the bundle's feature config.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from asr.bundle import Bundle
from asr.config import DecodeConfig
from asr.data import PreparedData
from asr.decoding import Decoder, search_width
from asr.errors import AsrError
from asr.files import write_jsonl, write_text
from asr.inference import Predictor
from asr.metrics import score

N_WORST = 10  # utterances listed in the report and on the terminal
UTT_COLUMNS = ("id", "audio", "duration", "ref", "hyp", "wer", "cer", "word_sub", "word_del", "word_ins",
               "ref_words", "char_sub", "char_del", "char_ins", "ref_chars")


def check_features(bundle: Bundle, data: PreparedData) -> None:
    """The data must have been featurised exactly as the model's training data was."""
    if asdict(bundle.features) != asdict(data.features):
        raise AsrError(f"{data.dir}: prepared with features {asdict(data.features)}, but the model {bundle.path} "
                       f"expects {asdict(bundle.features)}; prepare the data with the model's config")


def select_subset(rows: list[dict], subset: str | None, where: str) -> list[dict]:
    """Rows whose corpus subset (e.g. LibriSpeech's "test-clean") is `subset`; all rows when it is None."""
    if subset is None:
        return rows
    chosen = [r for r in rows if r.get("subset") == subset]
    if not chosen:
        found = sorted({str(r.get("subset")) for r in rows})
        raise AsrError(f"{where}: no utterances of subset {subset!r} (subsets there: {', '.join(found)})")
    return chosen


def utterance_rows(rows: Sequence[dict], per_utt: Sequence[dict], hyps: Sequence[str]) -> list[dict]:
    """Per-utterance errors (`per_utt` from `asr.metrics.score`): one flat dict per utterance, UTT_COLUMNS keys."""
    out = []
    for row, hyp, r in zip(rows, hyps, per_utt):
        w, c = r["words"], r["chars"]
        out.append({"id": row["id"], "audio": row.get("audio", ""), "duration": row.get("duration"),
                    "ref": row["text"], "hyp": hyp, "wer": round(r["wer"], 4), "cer": round(r["cer"], 4),
                    "word_sub": w["substitutions"], "word_del": w["deletions"], "word_ins": w["insertions"],
                    "ref_words": w["ref_len"], "char_sub": c["substitutions"], "char_del": c["deletions"],
                    "char_ins": c["insertions"], "ref_chars": c["ref_len"]})
    return out


def worst(utts: Sequence[dict], n: int = N_WORST) -> list[dict]:
    """The `n` utterances with the most word errors (then character errors); only those with errors."""
    def errors(u: dict) -> tuple[int, int]:
        return (u["word_sub"] + u["word_del"] + u["word_ins"], u["char_sub"] + u["char_del"] + u["char_ins"])

    return sorted((u for u in utts if errors(u) > (0, 0)), key=errors, reverse=True)[:n]


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar over `total` utterances on stderr (a no-op unless `enabled`)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", disable=not enabled, leave=False)


def _decode_prepared(bundle: Bundle, data: PreparedData, rows: list[dict], decoder: Decoder,
                     batch_size: int, progress: bool = False) -> tuple[list[str], dict]:
    """Hypotheses for prepared rows (stored features) and the forward/decode seconds."""
    predictor = Predictor(bundle.model, bundle.model_cfg.conv_stride, bundle.stats["mean"], batch_size)
    hyps: list[str] = []
    forward = decoding = 0.0
    step = 8 * batch_size  # rows per forward call: the bar moves, batches stay length-sorted within a step
    with _progress(len(rows), progress) as bar:
        for k in range(0, len(rows), step):
            t0 = time.perf_counter()
            probs = predictor([data.feats(r) for r in rows[k:k + step]])
            t1 = time.perf_counter()
            hyps += [decoder(p)[0] for p in probs]
            forward, decoding = forward + t1 - t0, decoding + time.perf_counter() - t1
            bar.update(len(probs))
    return hyps, {"forward_seconds": round(forward, 3), "decode_seconds": round(decoding, 3)}


def corpus_rows(corpus: str | Path, bundle: Bundle, split: str | None, subset: str | None) -> tuple[list[dict],
                                                                                                   list[dict]]:
    """Rows (id, audio, offset, duration, text normalised like the bundle's training text) and skipped items."""
    from asr.corpus import read_corpus
    from asr.text import normalise_text

    listing = read_corpus(corpus)
    utts = listing.utts
    if split is not None:
        if not any(u.split for u in utts):
            raise AsrError(f"{corpus}: the corpus names no train/dev/test splits; leave out --split")
        utts = [u for u in utts if u.split == split]
    skipped = [{"id": s.id, "audio": s.path, "reason": s.reason} for s in listing.skipped]
    rows = []
    for u in utts:
        text = normalise_text(u.text, bundle.text)
        if not text:
            skipped.append({"id": u.id, "audio": u.audio, "reason": "empty transcript"})
            continue
        rows.append({"id": u.id, "audio": u.audio, "offset": u.offset, "duration": u.duration, "text": text,
                     "subset": u.subset})
    return select_subset(rows, subset, str(corpus)), skipped


def _decode_corpus(bundle: Bundle, rows: list[dict], decode: DecodeConfig, progress: bool = False
                   ) -> tuple[list[dict], list[str], dict, list[dict]]:
    """Recognise corpus audio (featurised here); returns the rows that could be read, hyps, timing, skipped."""
    from asr.recognize import Recognizer, Span

    recognizer = Recognizer(bundle, decode)
    spans = [Span(r["audio"], r["offset"], r["duration"]) for r in rows]
    t0 = time.perf_counter()
    good, hyps, skipped = [], [], []
    with _progress(len(rows), progress) as bar:
        for row, (_, result) in zip(rows, recognizer.recognize(spans)):
            if isinstance(result, AsrError):
                skipped.append({"id": row["id"], "audio": row["audio"], "reason": str(result)})
            else:
                good.append({**row, "duration": result.duration})
                hyps.append(result.text)
            bar.update(1)
    return good, hyps, {"total_seconds": round(time.perf_counter() - t0, 3)}, skipped


def evaluate(bundle: Bundle, data_dir: str | Path | None = None, split: str | None = "test",
             beam_width: int | None = None, batch_size: int | None = None, subset: str | None = None,
             decode: DecodeConfig | None = None, corpus: str | Path | None = None, n_worst: int = N_WORST,
             progress: bool = False) -> dict:
    """Decode a prepared `split` of `data_dir` (or every utterance of a raw `corpus`); return the report.

    `beam_width`/`batch_size` override the `decode` config; `subset` keeps one corpus subset (test-clean);
    `progress` shows a bar over the utterances on stderr.
    """
    overrides: dict[str, Any] = {k: v for k, v in {"beam_width": beam_width, "batch_size": batch_size}.items()
                                 if v is not None}
    decode = replace(decode or DecodeConfig(), **overrides)
    if (data_dir is None) == (corpus is None):
        raise AsrError("pass either --data (a prepared directory) or --corpus (a raw corpus directory)")
    decoder = Decoder.from_config(decode, bundle.vocab.chars)
    skipped: list[dict] = []
    if corpus is not None:
        rows, skipped = corpus_rows(corpus, bundle, split, subset)
        if not rows:
            raise AsrError(f"{corpus}: no utterances to evaluate" + (f" in split {split!r}" if split else ""))
        rows, hyps, timing, unreadable = _decode_corpus(bundle, rows, decode, progress)
        skipped += unreadable
        source = str(corpus)
    else:
        data = PreparedData(data_dir)  # type: ignore[arg-type]
        check_features(bundle, data)
        split = split or "test"
        rows = select_subset(data.rows(split), subset, f"{data.dir}/{split}.jsonl")
        if not rows:
            raise AsrError(f"{data.dir}/{split}.jsonl is empty: nothing to evaluate")
        hyps, timing = _decode_prepared(bundle, data, rows, decoder, decode.batch_size, progress)
        source = str(data.dir)
    if not rows:
        raise AsrError(f"{corpus}: none of the audio could be read ({skipped[0]['reason']})")
    return _report(bundle, rows, hyps, timing, decode, split, subset, source, skipped, n_worst)


def _report(bundle: Bundle, rows: list[dict], hyps: list[str], timing: dict, decode: DecodeConfig,
            split: str | None, subset: str | None, source: str, skipped: list[dict], n_worst: int) -> dict:
    """Assemble the JSON report (see the module docstring)."""
    rates, per_utt = score([r["text"] for r in rows], hyps)  # one alignment for the corpus and each utterance
    utts = utterance_rows(rows, per_utt, hyps)
    audio = sum(float(r["duration"] or 0.0) for r in rows)
    busy = timing.get("total_seconds") or timing["forward_seconds"] + timing["decode_seconds"]
    return {"cer": rates["cer"], "wer": rates["wer"], "n_utts": len(rows), "split": split, "subset": subset,
            "beam_width": search_width(decode.beam_width, decode.lm_path), "lm": decode.lm_path or None,
            "model": str(bundle.path), "data": source,
            "audio_seconds": round(audio, 2), "decode_x_realtime": round(audio / max(busy, 1e-9), 1), **timing,
            "chars": rates["chars"], "words": rates["words"], "n_skipped": len(skipped), "skipped": skipped,
            "worst": worst(utts, n_worst), "utterances": utts}


def write_utterances(utts: Sequence[dict], path: str | Path) -> None:
    """Per-utterance rows as CSV (`.csv`) or JSON lines (anything else), atomically."""
    if Path(path).suffix.lower() != ".csv":
        write_jsonl(path, utts)
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=UTT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(utts)
    write_text(path, buf.getvalue())


def format_report(report: dict) -> str:
    """A small table for the terminal, then the worst utterances."""
    c, w = report["chars"], report["words"]
    name = report.get("subset") or report.get("split") or "corpus"  # e.g. "test-clean" when one subset was scored
    lines = [
        f"{'split':<8}{'utts':>6}{'CER %':>8}{'WER %':>8}{'S/D/I (words)':>18}{'x realtime':>12}",
        f"{name:<8}{report['n_utts']:>6}{100 * report['cer']:>8.2f}{100 * report['wer']:>8.2f}"
        f"{w['substitutions']:>8}/{w['deletions']}/{w['insertions']:<5}{report['decode_x_realtime']:>10}",
        f"(characters: {c['substitutions']} sub, {c['deletions']} del, {c['insertions']} ins of {c['ref_len']})",
    ]
    if report.get("n_skipped"):
        lines.append(f"skipped {report['n_skipped']} utterances (see the report's `skipped`)")
    if report.get("worst"):
        lines.append(f"worst {len(report['worst'])} by word errors (S/D/I):")
        for u in report["worst"]:
            lines += [f"  {u['id']}  {u['word_sub']}/{u['word_del']}/{u['word_ins']}", f"    ref: {u['ref']}",
                      f"    hyp: {u['hyp']}"]
    return "\n".join(lines)
