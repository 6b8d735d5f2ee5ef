"""Error rates with jiwer: CER and WER with substitution/deletion/insertion counts.

    python -c "from asr.metrics import error_rates; print(error_rates(['a b'], ['a c']))"
"""

from __future__ import annotations

from collections.abc import Sequence


def _counts(out) -> dict:  # type: ignore[no-untyped-def]
    """S/D/I/hits of a jiwer alignment output, plus the reference length N = S + D + hits."""
    n = out.substitutions + out.deletions + out.hits
    return {"substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions,
            "ref_len": n, "errors": out.substitutions + out.deletions + out.insertions}


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus-level `{"cer", "wer", "chars": {...}, "words": {...}}` (rates = errors / reference length).

    An empty hypothesis counts as all deletions; references must be non-empty.
    """
    import jiwer

    words = _counts(jiwer.process_words(list(refs), list(hyps)))
    chars = _counts(jiwer.process_characters(list(refs), list(hyps)))
    return {"cer": chars["errors"] / max(1, chars["ref_len"]), "wer": words["errors"] / max(1, words["ref_len"]),
            "chars": chars, "words": words}
