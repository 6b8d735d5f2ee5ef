"""Error rates with jiwer: CER and WER with substitution/deletion/insertion counts, per corpus and per utterance.

    python -c "from asr.metrics import error_rates; print(error_rates(['a b'], ['a c']))"

One jiwer alignment of the words and one of the characters give both: each utterance's counts come from its
alignment chunks, and the corpus counts are their sums (what jiwer itself reports).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COUNT_KEYS = ("substitutions", "deletions", "insertions", "ref_len", "errors")


def _chunk_counts(chunks: Sequence[Any]) -> dict:
    """S/D/I, reference length N and errors S + D + I of one utterance's jiwer alignment chunks."""
    s = d = i = n = 0
    for c in chunks:
        ref, hyp = c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx
        n += ref
        s += ref if c.type == "substitute" else 0
        d += ref if c.type == "delete" else 0
        i += hyp if c.type == "insert" else 0
    return {"substitutions": s, "deletions": d, "insertions": i, "ref_len": n, "errors": s + d + i}


def _total(counts: Sequence[dict]) -> dict:
    return {key: sum(c[key] for c in counts) for key in COUNT_KEYS}


def _rates(words: dict, chars: dict) -> dict:
    return {"cer": chars["errors"] / max(1, chars["ref_len"]), "wer": words["errors"] / max(1, words["ref_len"]),
            "chars": chars, "words": words}


def score(refs: Sequence[str], hyps: Sequence[str]) -> tuple[dict, list[dict]]:
    """(corpus rates as `error_rates` gives them, per-utterance rates in the same form), from one alignment."""
    import jiwer

    words = [_chunk_counts(a) for a in jiwer.process_words(list(refs), list(hyps)).alignments]
    chars = [_chunk_counts(a) for a in jiwer.process_characters(list(refs), list(hyps)).alignments]
    return _rates(_total(words), _total(chars)), [_rates(w, c) for w, c in zip(words, chars)]


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus-level `{"cer", "wer", "chars": {...}, "words": {...}}` (rates = errors / reference length).

    An empty hypothesis counts as all deletions; references must be non-empty.
    """
    return score(refs, hyps)[0]
